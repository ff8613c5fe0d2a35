/** Talking to a running agent (`waffle agent deploy`, `waffle history`, `waffle status --agent`): its URL and bearer token. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { Exit, type Cli } from './context.ts';

export interface ClientOptions {
  agent?: string;
  tokenFile?: string;
}

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8787';

/** Adds `--agent <url>` and `--token-file <file>` (with their environment variables) to a command. */
export function clientOptions(cmd: Command, agentRequired = true): Command {
  return cmd
    .addOption(new Option('--agent <url>', `the running agent's URL${agentRequired ? ` (default ${DEFAULT_AGENT_URL})` : ''}`).env('WAFFLE_AGENT_URL'))
    .addOption(new Option('--token-file <file>', 'file holding the management token (or set WAFFLE_AGENT_TOKEN)').env('WAFFLE_AGENT_TOKEN_FILE'));
}

function tokenOf(cli: Cli, o: ClientOptions): string {
  if (o.tokenFile) {
    const file = path.resolve(cli.cwd, o.tokenFile);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8').trim();
    } catch (e) {
      throw new Exit(1, `waffle: cannot read the token file ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Fix: pass --token-file with the agent's management token file`);
    }
    if (!text) throw new Exit(1, `waffle: the token file ${file} is empty`);
    return text;
  }
  const env = cli.env.WAFFLE_AGENT_TOKEN?.trim();
  if (env) return env;
  throw new Exit(1, 'waffle: the agent needs its management token. Fix: pass --token-file <file> or set WAFFLE_AGENT_TOKEN');
}

/** One request to the agent's API; a JSON answer, or an Exit naming what went wrong. */
export async function agentRequest<T = unknown>(cli: Cli, o: ClientOptions, method: 'GET' | 'POST', route: string, body?: object): Promise<T> {
  const base = (o.agent ?? DEFAULT_AGENT_URL).replace(/\/+$/, '');
  const token = tokenOf(cli, o);
  let res: Response;
  try {
    res = await fetch(base + route, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.any([cli.interrupt.signal, AbortSignal.timeout(30_000)]),
    });
  } catch (e) {
    throw new Exit(1, `waffle: cannot reach the agent at ${base} (${(e as Error).cause ? String(((e as Error).cause as Error).message ?? (e as Error).cause) : (e as Error).message}). Fix: check --agent and that \`waffle agent\` runs`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    throw new Exit(1, `waffle: the agent at ${base} answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const why = (json as { error?: string }).error ?? res.statusText;
    throw new Exit(1, `waffle: the agent answered ${res.status}: ${why}`);
  }
  return json as T;
}
