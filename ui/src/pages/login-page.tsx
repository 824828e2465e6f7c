import { useState, type FormEvent } from "react";
import { Button } from "../kit/button";
import { login } from "../state/session";

export function LoginPage({ reason, checking }: { reason?: string; checking: boolean }) {
  const [token, setToken] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (token.trim()) void login(token);
  };
  return (
    <div className="login">
      <form className="login-card" onSubmit={submit} data-testid="login-form">
        <h1>Switchyard console</h1>
        <p className="muted">Paste an API token. It decides what you can do: viewers read, operators also retry, purge and move dead letters, admins also declare and delete queues.</p>
        <label htmlFor="token">Token</label>
        <input id="token" type="password" autoComplete="off" autoFocus value={token} onChange={(e) => setToken(e.target.value)} data-testid="token-input" />
        {reason && <p className="error-text" role="alert">{reason}</p>}
        <Button type="submit" variant="primary" disabled={checking || !token.trim()} data-testid="login-button">{checking ? "Checking…" : "Log in"}</Button>
        <p className="muted small">The token is kept for this browser tab only (sessionStorage).</p>
      </form>
    </div>
  );
}
