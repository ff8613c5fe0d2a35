/** `waffle status`: rows from desired × observed, and a plain table that fits the terminal width. */
import kleur from 'kleur';
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
  if (text.length <= width) return text.padEnd(width);
  return text.slice(0, Math.max(0, width - 1)) + '…';
}

export function formatStatus(rows: StatusRow[], columns: number): string {
  const headers = ['SERVICE', 'STATE', 'HEALTH', 'IMAGE', 'COMMIT', 'UPTIME', 'PORTS'];
  const cells = rows.map((r) => [
    r.service + (r.desired ? '' : ' (orphan)'),
    r.state,
    r.health,
    r.image ?? '-',
    r.commit ?? '-',
    formatUptime(r.uptimeSeconds),
    r.ports.join(',') || '-',
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  // Shrink the widest columns (image, service, ports) until the table fits.
  const total = () => widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1);
  const shrinkable = [3, 0, 6, 4];
  while (total() > columns && shrinkable.some((i) => widths[i] > 8)) {
    const i = shrinkable.reduce((best, j) => (widths[j] > widths[best] ? j : best), shrinkable[0]);
    widths[i]--;
  }
  const colour = (state: string, text: string) =>
    state === 'running' ? kleur.green(text) : state === 'missing' ? kleur.yellow(text) : kleur.red(text);
  const lines = [headers.map((h, i) => fit(h, widths[i])).join('  ').trimEnd()];
  cells.forEach((c, r) => {
    lines.push(
      c
        .map((v, i) => (i === 1 ? colour(rows[r].state, fit(v, widths[i])) : fit(v, widths[i])))
        .join('  ')
        .trimEnd(),
    );
  });
  if (rows.length === 0) lines.push('(no services)');
  return lines.join('\n') + '\n';
}
