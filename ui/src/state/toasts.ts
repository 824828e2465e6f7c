import { createStore } from "./store";

export interface Toast { id: number; kind: "ok" | "error"; text: string }

export const toasts = createStore<Toast[]>([]);
let next = 1;

export function toast(kind: Toast["kind"], text: string, ms = kind === "error" ? 8000 : 4000): void {
  const id = next++;
  toasts.set((t) => [...t, { id, kind, text }]);
  setTimeout(() => dismiss(id), ms);
}

export function dismiss(id: number): void {
  toasts.set((t) => t.filter((x) => x.id !== id));
}
