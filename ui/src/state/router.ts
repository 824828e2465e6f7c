import { useSyncExternalStore } from "react";
import { parseRoute, type Route } from "../util/route";

function subscribe(cb: () => void): () => void {
  window.addEventListener("hashchange", cb);
  return () => window.removeEventListener("hashchange", cb);
}
const getHash = () => window.location.hash;

/** The current route, re-rendering on hash changes. */
export function useRoute(): Route {
  const hash = useSyncExternalStore(subscribe, getHash, () => "");
  return parseRoute(hash);
}

export function navigate(href: string, replace = false): void {
  if (replace) {
    const url = new URL(window.location.href);
    url.hash = href.replace(/^#/, "");
    window.history.replaceState(null, "", url);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    window.location.hash = href.replace(/^#/, "");
  }
}
