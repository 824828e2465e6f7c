// The confirmation for retry / purge / move: shows the dry-run count before anything changes.

import { ConfirmDialog } from "../../kit/confirm-dialog";
import { actionVerb, confirmText, type useDeadLetterActions } from "../../state/dead-letter-actions";
import { formatCount, plural } from "../../util/format";

export function DeadLetterActionDialog({ actions }: { actions: ReturnType<typeof useDeadLetterActions> }) {
  const p = actions.pending;
  if (!p) return null;
  return (
    <ConfirmDialog
      title={`${actionVerb(p.action)} ${p.count === null ? "…" : plural(p.count, "dead letter")}?`}
      confirmLabel={p.count === null ? "Counting…" : `${actionVerb(p.action)} ${formatCount(p.count)}`}
      danger={p.action.kind === "purge"}
      busy={actions.busy}
      disabled={p.count === null || p.count === 0}
      onCancel={actions.cancel}
      onConfirm={() => void actions.confirm()}
    >
      <p className="muted">Scope: {p.describe}.</p>
      {p.error ? <p className="error-text">The preview failed: {p.error}</p> :
        p.count === null ? <p>Counting how many will be affected…</p> :
        p.count === 0 ? <p>Nothing matches any more; it was probably handled already.</p> :
        <p data-testid="confirm-count">{confirmText(p)}</p>}
    </ConfirmDialog>
  );
}
