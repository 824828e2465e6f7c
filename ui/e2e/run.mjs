// `npm run e2e`: the browser suite against SWITCHYARD_URL (see e2e/harness.mjs for the env).
import { readEnv, run } from "./harness.mjs";
import { writePerf } from "./console.e2e.mjs";

const env = readEnv();
const ok = await run(env);
writePerf(env);
process.exit(ok ? 0 : 1);
