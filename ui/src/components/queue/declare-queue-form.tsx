// Admin only: declare a queue (PUT /api/queues/{name}); idempotent on the server.

import { useState, type FormEvent } from "react";
import { explain } from "../../api/client";
import { declareQueue } from "../../api/queues";
import type { QueueSpec } from "../../api/types";
import { Button } from "../../kit/button";
import { useClient } from "../../state/resource";
import { toast } from "../../state/toasts";

export function DeclareQueueForm({ onDone }: { onDone: () => void }) {
  const client = useClient();
  const [name, setName] = useState("");
  const [dlq, setDlq] = useState("");
  const [maxRetries, setMaxRetries] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const spec: QueueSpec = { durable: true };
    if (dlq.trim()) spec.dead_letter_queue = dlq.trim();
    if (maxRetries.trim()) spec.max_retries = Number(maxRetries);
    try {
      await declareQueue(client, name.trim(), spec);
      toast("ok", `Queue ${name.trim()} declared`);
      setName("");
      onDone();
    } catch (err) {
      setError(explain(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid="declare-form">
      <input required placeholder="queue name" value={name} onChange={(e) => setName(e.target.value)} aria-label="queue name" />
      <input placeholder="dead-letter queue (optional)" value={dlq} onChange={(e) => setDlq(e.target.value)} aria-label="dead-letter queue" />
      <input placeholder="max retries" inputMode="numeric" pattern="[0-9]*" value={maxRetries} onChange={(e) => setMaxRetries(e.target.value)} aria-label="max retries" size={10} />
      <Button type="submit" variant="primary" disabled={busy || !name.trim()}>Declare queue</Button>
      {error && <span className="error-text">{error}</span>}
    </form>
  );
}
