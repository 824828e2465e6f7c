// Generates src/api/schema.d.ts from src/api/openapi.json (written by the server's tests).
// Until the server writes that file, the hand-written src/api/types.ts is the source of types.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const input = path.join(root, "src/api/openapi.json");
const output = path.join(root, "src/api/schema.d.ts");
if (!existsSync(input)) {
  console.log("gen:api: src/api/openapi.json does not exist yet; keeping hand-written src/api/types.ts");
  process.exit(0);
}
const bin = path.join(root, "node_modules/.bin/openapi-typescript");
const run = spawnSync(bin, [input, "-o", output], { stdio: "inherit" });
process.exit(run.status ?? 1);
