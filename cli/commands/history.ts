/** `waffle history`: the deployments a running agent made (newest first), or one of them with its events. */
import type { Command } from 'commander';
import { cliOf, type App } from '../context.ts';
import { agentRequest, clientOptions, type ClientOptions } from '../agent-client.ts';

interface Row {
  id: string;
  trigger: string;
  commit?: string;
  state: string;
  planSummary?: string;
  services?: Array<{ service: string; action: string; outcome: string; message?: string }>;
  error?: string;
  queuedAt: number;
  finishedAt?: number;
  durationMs?: number;
  delivery?: string;
}

const time = (ms?: number) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '-');

/** One deployment, several lines: what, when, result, per-service outcome, the error. */
export function formatDeployment(r: Row): string {
  const lines = [
    `${r.id}  ${r.state}  ${r.commit ? r.commit.slice(0, 12) : '-'}  ${r.trigger}${r.delivery ? ` (delivery ${r.delivery})` : ''}`,
    `  queued ${time(r.queuedAt)}  finished ${time(r.finishedAt)}${r.durationMs !== undefined ? `  ${(r.durationMs / 1000).toFixed(1)} s` : ''}`,
  ];
  if (r.planSummary) lines.push(`  plan: ${r.planSummary}`);
  for (const s of r.services ?? []) lines.push(`  ${s.service}: ${s.action} ${s.outcome}${s.message ? ` — ${s.message}` : ''}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  return lines.join('\n') + '\n';
}

export function formatHistory(rows: Row[]): string {
  if (!rows.length) return 'no deployments yet\n';
  const cols = rows.map((r) => [r.id, time(r.finishedAt ?? r.queuedAt), r.state, r.commit ? r.commit.slice(0, 12) : '-', r.trigger, r.error ?? r.planSummary ?? '']);
  const head = ['ID', 'WHEN', 'RESULT', 'COMMIT', 'TRIGGER', 'SUMMARY'];
  const widths = head.map((h, i) => Math.max(h.length, ...cols.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...cols.map(line)].join('\n') + '\n';
}

export function register(program: Command, app: App): void {
  clientOptions(
    program
      .command('history')
      .description("show a running agent's deployments (newest first), or one deployment with its events")
      .argument('[id]', 'a deployment id')
      .option('-n, --limit <n>', 'how many deployments', '20'),
  ).action(async (id: string | undefined, o: ClientOptions & { limit: string }, cmd: Command) => {
    const cli = cliOf(cmd, app);
    if (id) {
      const row = await agentRequest<Row & { events: object[] }>(cli, o, 'GET', `/deployments/${encodeURIComponent(id)}`);
      if (cli.mode === 'json') return void cli.out(JSON.stringify(row, null, 2) + '\n');
      cli.out(formatDeployment(row));
      return;
    }
    const { deployments } = await agentRequest<{ deployments: Row[] }>(cli, o, 'GET', `/deployments?limit=${encodeURIComponent(o.limit)}`);
    if (cli.mode === 'json') return void cli.out(JSON.stringify({ deployments }, null, 2) + '\n');
    cli.out(formatHistory(deployments));
  });
}
