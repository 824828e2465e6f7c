// Retry / purge / move of dead letters, always in two steps: a dry run answers how many
// would be touched, the operator confirms that exact count, then the real call runs.

import { useState } from "react";
import { explain } from "../api/client";
import { runAction, type DeadLetterAction, type Selection } from "../api/dead-letters";
import { plural } from "../util/format";
import { useClient } from "./resource";
import { toast } from "./toasts";

/** One queue's part of an action (a selection across queues has one group per queue). */
export interface ActionGroup { queue: string; selection: Selection }

export interface PendingAction {
  action: DeadLetterAction;
  groups: ActionGroup[];
  /** What the selection is, for the dialog: "3 selected", "all matching reason expired". */
  describe: string;
  /** null while the dry run is in flight. */
  count: number | null;
  error?: string;
}

export function actionVerb(a: DeadLetterAction): string {
  return a.kind === "retry" ? "Retry" : a.kind === "purge" ? "Purge" : "Move";
}

export function confirmText(p: PendingAction): string {
  const n = p.count ?? 0;
  const what = plural(n, "dead letter");
  const queues = [...new Set(p.groups.map((g) => g.queue))].join(", ");
  switch (p.action.kind) {
    case "retry": return `Send ${what} of ${queues} back to ${n === 1 ? "its" : "their"} original queue.`;
    case "purge": return `Delete ${what} of ${queues} for good. This cannot be undone.`;
    case "move": return `Move ${what} of ${queues} to queue ${p.action.to}.`;
  }
}

export function useDeadLetterActions(onDone: () => void) {
  const client = useClient();
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [busy, setBusy] = useState(false);

  const prepare = async (action: DeadLetterAction, groups: ActionGroup[], describe: string) => {
    const p: PendingAction = { action, groups, describe, count: null };
    setPending(p);
    try {
      let count = 0;
      for (const g of groups) count += await runAction(client, g.queue, action, g.selection, true);
      setPending((cur) => (cur === p ? { ...p, count } : cur));
    } catch (e) {
      setPending((cur) => (cur === p ? { ...p, count: 0, error: explain(e) } : cur));
    }
  };

  const confirm = async () => {
    if (!pending || pending.count === null) return;
    setBusy(true);
    try {
      let done = 0;
      for (const g of pending.groups) done += await runAction(client, g.queue, pending.action, g.selection, false);
      const verb = pending.action.kind === "retry" ? "Retried" : pending.action.kind === "purge" ? "Purged" : "Moved";
      toast("ok", `${verb} ${plural(done, "dead letter")}`);
      setPending(null);
      onDone();
    } catch (e) {
      toast("error", `${actionVerb(pending.action)} failed: ${explain(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return { pending, busy, prepare, confirm, cancel: () => setPending(null) };
}
