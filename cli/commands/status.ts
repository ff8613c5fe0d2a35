/** `waffle status`: each service's container, state, health, image, commit, uptime and ports; `--watch` keeps it live. */
import type { Command } from 'commander';
import { cliOf, type App } from '../context.ts';
import { agentRequest, clientOptions, type ClientOptions } from '../agent-client.ts';

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

export function register(program: Command, app: App): void {
  clientOptions(
    program
      .command('status')
      .description('show each service: state, health, image, commit, uptime, ports and domains (with --agent: as a running agent sees it)')
      .option('-w, --watch', 'keep the table live (refreshed every 2 s)'),
  )
    .action(async (o: { watch?: boolean } & ClientOptions, cmd: Command) => {
      const cli = cliOf(cmd, app);
      if (o.agent) {
        const doc = await agentRequest<AgentStatusDoc>(cli, o, 'GET', '/status');
        if (cli.mode === 'json') return void cli.out(JSON.stringify(doc, null, 2) + '\n');
        return void cli.out(formatAgentStatus(doc));
      }
      const engine = await cli.engine();
      const { statusRows, formatStatus } = await import('../status.ts');
      const { graph, observed, observe } = await engine.status(cli.source(), { signal: cli.interrupt.signal });
      let first: typeof observed | undefined = observed;
      const read = async () => {
        const state = first ?? (await observe());
        first = undefined;
        return statusRows(graph, state, Date.now());
      };
      const signal = cli.interrupt.signal;
      if (o.watch && cli.mode === 'ink') {
        const { runStatusWatch } = await import('../ui/status.tsx');
        await runStatusWatch({ project: graph.project, read, intervalMs: 2000 });
        return;
      }
      if (o.watch && cli.mode === 'json') {
        // One JSON document per refresh (NDJSON), until interrupted.
        while (!signal.aborted) {
          cli.out(JSON.stringify({ project: graph.project, at: Date.now(), services: await read() }) + '\n');
          await sleep(2000, signal);
        }
        return;
      }
      if (cli.mode === 'json') {
        cli.out(JSON.stringify({ project: graph.project, services: await read() }, null, 2) + '\n');
        return;
      }
      // The table is the command's data: stdout, coloured only when stdout is a terminal.
      const { useColorFor } = await import('../render/color.ts');
      useColorFor(cli.stdout, cli.env);
      // Cut to the width of a terminal; piped or redirected, every line whole (image names included).
      const columns = cli.stdout.isTTY ? cli.stdout.columns || 80 : Infinity;
      const print = async () => cli.out(formatStatus(await read(), columns));
      if (!o.watch) return void (await print());
      // Plain watch: re-print the table every 2 s with a time stamp (no cursor movement).
      while (!signal.aborted) {
        cli.out(`--- ${graph.project} ${new Date().toISOString()}\n`);
        await print();
        await sleep(2000, signal);
      }
    });
}

interface AgentStatusDoc {
  project?: string;
  branch: string;
  deployedCommit?: string;
  lastDeploy?: { id: string; state: string; commit?: string; finishedAt?: number; error?: string };
  queue: { running?: string; pending?: string };
  services: Array<{ service: string; state: string; health: string; image?: string; commit?: string; lastDeploy?: { id: string; action: string; outcome: string } }>;
}

/** The agent's view: project, branch, deployed commit, last deploy, then one line per service. */
export function formatAgentStatus(d: AgentStatusDoc): string {
  const lines = [
    `project ${d.project ?? '(not loaded yet)'}  branch ${d.branch}  deployed ${d.deployedCommit ? d.deployedCommit.slice(0, 12) : '-'}`,
    `last deploy ${d.lastDeploy ? `${d.lastDeploy.id} ${d.lastDeploy.state}${d.lastDeploy.error ? `: ${d.lastDeploy.error}` : ''}` : '-'}` +
      (d.queue.running ? `  running ${d.queue.running}` : '') +
      (d.queue.pending ? `  waiting ${d.queue.pending}` : ''),
  ];
  const rows = d.services.map((s) => [s.service, s.state, s.health, s.image ?? '-', s.commit ?? '-', s.lastDeploy ? `${s.lastDeploy.action} ${s.lastDeploy.outcome}` : '-']);
  const head = ['SERVICE', 'STATE', 'HEALTH', 'IMAGE', 'COMMIT', 'LAST DEPLOY'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) lines.push(r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd());
  return lines.join('\n') + '\n';
}
