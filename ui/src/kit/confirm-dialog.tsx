// Every destructive action goes through this dialog, which states the exact count.

import { useEffect, useRef, type ReactNode } from "react";
import { Button } from "./button";

export function ConfirmDialog(props: {
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  disabled?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    cancelRef.current?.focus();
    const onKey = (e: KeyboardEvent) => { if (e.key === "Escape") props.onCancel(); };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [props]);
  return (
    <div className="modal-backdrop" onClick={props.onCancel}>
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="confirm-title" onClick={(e) => e.stopPropagation()} data-testid="confirm-dialog">
        <h2 id="confirm-title">{props.title}</h2>
        <div className="modal-body">{props.children}</div>
        <div className="modal-actions">
          <Button ref={cancelRef} onClick={props.onCancel}>Cancel</Button>
          <Button variant={props.danger ? "danger" : "primary"} onClick={props.onConfirm} disabled={props.busy || props.disabled} data-testid="confirm-button">
            {props.busy ? "Working…" : props.confirmLabel}
          </Button>
        </div>
      </div>
    </div>
  );
}
