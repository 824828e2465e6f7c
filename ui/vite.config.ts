import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// The console is served by `switchyard serve` at `/` and loaded by the Tauri app from disk,
// so asset paths are relative. `npm run dev` proxies the API to a local server
// (SWITCHYARD_URL, default http://127.0.0.1:8080) so the page stays same-origin.
const target = process.env.SWITCHYARD_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "./",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      "/api": { target, changeOrigin: true },
      "/healthz": { target, changeOrigin: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
