/**
 * `waffle status`: rows from desired × observed, and a table that fits the terminal width (long values
 * are truncated with `…`, never wrapped). The same lines feed the Ink status table (`status --watch`).
 */
import kleur from 'kleur';
import { truncate } from './render/text.ts';
import type { ObservedState, ServiceGraph } from '../runtime/model.ts';

export interface StatusRow {
  service: string;
  container: string | null;
  state: string;
  health: string;
  image: string | null;
  commit: string | null;
  /** Seconds since the container was created. */
  uptimeSeconds: number | null;
  ports: string[];
  /** Public domains routed to the service (ingress, when configured). */
  domains?: string[];
  /** desired: in the repository; orphan: running but no longer defined. */
  desired: boolean;
}

export function statusRows(graph: ServiceGraph, observed: ObservedState, now: number): StatusRow[] {
  const rows: StatusRow[] = [];
  const byService = new Map(observed.containers.map((c) => [c.service, c]));
  const names = new Set([...Object.keys(graph.services), ...byService.keys()]);
  for (const name of [...names].sort()) {
    const c = byService.get(name);
    rows.push({
      service: name,
      container: c?.name ?? null,
      state: c?.state ?? 'missing',
      health: c?.health ?? '-',
      image: c?.image ?? null,
      commit: c?.commit ?? null,
      uptimeSeconds: c ? Math.max(0, Math.round((now - c.createdAt) / 1000)) : null,
      ports: (c?.ports ?? [])
        .filter((p) => p.host)
        .map((p) => `${p.hostIp && p.hostIp !== '0.0.0.0' ? p.hostIp + ':' : ''}${p.host}->${p.container}/${p.protocol}`),
      desired: name in graph.services,
    });
  }
  return rows;
}

export function formatUptime(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

function fit(text: string, width: number): string {
  const t = truncate(text, width);
  return t + ' '.repeat(Math.max(0, width - [...t].length));
}

/** The table's lines (header first), each at most `columns` wide. */
export function statusLines(rows: StatusRow[], columns: number): string[] {
  const headers = ['SERVICE', 'STATE', 'HEALTH', 'IMAGE', 'COMMIT', 'UPTIME', 'PORTS/DOMAINS'];
  const cells = rows.map((r) => [
    r.service + (r.desired ? '' : ' (orphan)'),
    r.state,
    r.health,
    r.image ?? '-',
    r.commit ? r.commit.slice(0, 7) : '-',
    formatUptime(r.uptimeSeconds),
    [...r.ports, ...(r.domains ?? [])].join(',') || '-',
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  // Shrink the widest columns (image, service, ports) until the table fits.
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  // First the image and the service name down to 16, then those, the ports and the commit down to 8.
  for (const [shrinkable, min] of [
    [[3, 0], 16],
    [[3, 0, 6, 4], 8],
  ] as Array<[number[], number]>) {
    while (total() > columns && shrinkable.some((i) => widths[i] > min)) {
      const i = shrinkable.reduce((best, j) => (widths[j] > widths[best] ? j : best), shrinkable[0]);
      widths[i]--;
    }
  }
  const colour = (state: string, text: string) =>
    state === 'running' ? kleur.green(text) : state === 'missing' ? kleur.yellow(text) : kleur.red(text);
  // Last resort for very narrow terminals: the last column takes what is left.
  const rest = columns - (total() - widths[6]);
  if (rest < widths[6]) widths[6] = Math.max(1, rest);
  const lines = [truncate(headers.map((h, i) => fit(h, widths[i])).join('  ').trimEnd(), columns)];
  cells.forEach((c, r) => {
    const plain = c.map((v, i) => fit(v, widths[i])).join('  ').trimEnd();
    const cut = truncate(plain, columns);
    // Colour the state cell after fitting, so the width stays exact.
    const start = widths[0] + 2;
    const state = cut.slice(start, start + widths[1]);
    lines.push(state ? cut.slice(0, start) + colour(rows[r].state, state) + cut.slice(start + widths[1]) : cut);
  });
  if (rows.length === 0) lines.push('(no services)');
  return lines;
}

export function formatStatus(rows: StatusRow[], columns: number): string {
  return statusLines(rows, columns).join('\n') + '\n';
}
