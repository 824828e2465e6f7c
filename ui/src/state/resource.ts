// Loading data for a view: one hook that runs a fetcher with the session's client,
// cancels it when the inputs change or the view goes away, and reports loading/error.

import { useCallback, useEffect, useRef, useState } from "react";
import { ApiError, type Client } from "../api/client";
import { expireSession, session } from "./session";
import { useStore } from "./store";

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

export function useClient(): Client {
  const s = useStore(session);
  if (s.status !== "ready") throw new Error("useClient outside a logged-in session");
  return s.client;
}

export function useResource<T>(fetcher: (client: Client, signal: AbortSignal) => Promise<T>, deps: readonly unknown[]): Resource<T> {
  const client = useClient();
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const reload = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: undefined }));
    fetcherRef.current(client, ctrl.signal).then(
      (data) => { if (!ctrl.signal.aborted) setState({ data, error: undefined, loading: false }); },
      (error) => {
        if (ctrl.signal.aborted) return;
        if (error instanceof ApiError && error.code === "unauthorized") expireSession();
        setState((s) => ({ data: s.data, error, loading: false }));
      },
    );
    return () => ctrl.abort();
    // The fetcher is read through a ref; `deps` say when to fetch again.
  }, [client, tick, ...deps]);

  return { ...state, reload };
}
