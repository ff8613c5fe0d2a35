/**
 * The agent's log: one JSON object per line when stderr is not a terminal (journald, `docker logs`, a
 * log shipper), readable `time level message key=value` lines on a terminal. Fields never carry a
 * secret value: callers pass ids, commits, outcomes and messages the engine has already redacted.
 */
import type { Logger } from '../runtime/agent/notify/notifier.ts';

export function agentLogger(out: NodeJS.WriteStream, opts: { json?: boolean } = {}): Logger {
  const json = opts.json ?? !out.isTTY;
  const write = (level: string, msg: string, fields?: object) => {
    const time = new Date().toISOString();
    if (json) {
      out.write(JSON.stringify({ time, level, msg, ...fields }) + '\n');
      return;
    }
    const kv = Object.entries(fields ?? {})
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
      .join(' ');
    out.write(`${time} ${level.padEnd(5)} ${msg}${kv ? ' ' + kv : ''}\n`);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
