// Entry point: find the engine (platform.ts), restore the session, mount the app.

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./app";
import { resolvePlatform } from "./platform";
import { session, startSession } from "./state/session";
import "./styles.css";

const root = createRoot(document.getElementById("root")!);
root.render(<StrictMode><App /></StrictMode>);

resolvePlatform()
  .then((p) => startSession(p))
  .catch((e: unknown) => session.set({ status: "logged-out", reason: `Cannot find the engine: ${e instanceof Error ? e.message : String(e)}` }));
