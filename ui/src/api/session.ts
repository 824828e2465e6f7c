import type { Client } from "./client";
import type { Role } from "./types";

export async function whoami(client: Client, signal?: AbortSignal): Promise<Role> {
  const body = await client.get<{ role: Role }>("/api/whoami", { signal });
  return body.role;
}
