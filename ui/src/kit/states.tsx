// Loading, empty and error states. Each says what is happening and what to do next.

import type { ReactNode } from "react";
import { explain } from "../api/client";
import { Button } from "./button";

export function Loading({ what }: { what: string }) {
  return <div className="state state-loading" role="status"><span className="spinner" aria-hidden /> Loading {what}…</div>;
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <div className="state-title">{title}</div>
      {children && <div className="state-hint">{children}</div>}
    </div>
  );
}

export function ErrorState({ error, what, onRetry }: { error: unknown; what: string; onRetry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <div className="state-title">Could not load {what}</div>
      <div className="state-hint">{explain(error)}</div>
      {onRetry && <Button onClick={onRetry}>Try again</Button>}
    </div>
  );
}
