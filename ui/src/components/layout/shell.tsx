// The frame around every page: navigation, the id search box, live status, role, logout.

import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import type { Role } from "../../api/types";
import { Badge } from "../../kit/badge";
import { Button } from "../../kit/button";
import { live } from "../../state/live";
import { navigate } from "../../state/router";
import { logout } from "../../state/session";
import { useStore } from "../../state/store";
import { dismiss, toasts } from "../../state/toasts";
import { hrefs, type Route } from "../../util/route";

const NAV: [string, string, Route["page"][]][] = [
  ["Overview", hrefs.overview(), ["overview"]],
  ["Queues", hrefs.queues(), ["queues", "queue"]],
  ["Dead letters", hrefs.deadLetters(), ["dead-letters"]],
  ["Flows", hrefs.flows(), ["flows", "flow", "message"]],
];

export function Shell({ route, role, children }: { route: Route; role: Role; children: ReactNode }) {
  const [q, setQ] = useState("");
  const searchRef = useRef<HTMLInputElement>(null);
  // "/" focuses the id search from anywhere, as in most consoles.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement | null;
      if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
      e.preventDefault();
      searchRef.current?.focus();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const search = (e: FormEvent) => {
    e.preventDefault();
    if (q.trim()) navigate(hrefs.flow(q.trim()));
  };
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href={hrefs.overview()}>Switchyard</a>
        <nav>
          {NAV.map(([label, link, pages]) => (
            <a key={label} href={link} className={pages.includes(route.page) ? "is-active" : ""}>{label}</a>
          ))}
        </nav>
        <form className="search" onSubmit={search} role="search">
          <input value={q} onChange={(e) => setQ(e.target.value)} ref={searchRef} placeholder="Correlation, message or trace id  ( / )" aria-label="Find a flow by correlation, message or trace id" data-testid="global-search" />
        </form>
        <LiveStatus />
        <Badge tone={role === "viewer" ? "neutral" : "info"} title="your role">{role}</Badge>
        <Button variant="ghost" onClick={() => logout()}>Log out</Button>
      </header>
      <main className="page">{children}</main>
      <Toasts />
    </div>
  );
}

function LiveStatus() {
  const s = useStore(live);
  const text = s.connection === "live" ? "live" : s.connection === "connecting" ? "connecting…" : s.connection === "retrying" ? "reconnecting…" : "offline";
  return (
    <span className={`live live-${s.connection}`} title={s.lastError ?? "live updates over /api/stream"} data-testid="live-status">
      <i aria-hidden /> {text}
    </span>
  );
}

function Toasts() {
  const list = useStore(toasts);
  return (
    <div className="toasts" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} className={`toast toast-${t.kind}`} role={t.kind === "error" ? "alert" : "status"} onClick={() => dismiss(t.id)}>{t.text}</div>
      ))}
    </div>
  );
}
