/**
 * `waffle status`: rows from desired × observed, and a table that fits the terminal width (long values
 * are truncated with `…`, never wrapped). The same lines feed the Ink status table (`status --watch`).
 */
import kleur from 'kleur';
import { truncate } from './render/text.ts';
import type { ObservedContainer, ObservedState, ServiceGraph } from '../runtime/model.ts';

/**
 * What is odd about a container, in the terms the next apply acts on:
 * - `duplicate`: a second container of one service (a crash between create and remove leaves one);
 * - `temporary`: named `<project>-<service>-next-<generation>`, a replacement's temporary name;
 * - `no-service`: our project label but no service label (made by hand or by a foreign tool);
 * - `orphan`: its service is no longer defined in the repository.
 */
export type StatusMark = 'duplicate' | 'temporary' | 'no-service' | 'orphan';

export interface StatusRow {
  /** null: the container has no service label. */
  service: string | null;
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
  /** Empty for an ordinary row: one container of a defined service, under its usual name. */
  marks: StatusMark[];
  /** For a marked row: what it is and what the next apply does about it. */
  note?: string;
}

/**
 * One row per container of the project (every one, duplicates and strays included), plus a `missing`
 * row for each defined service without a container. Within a service, the container under the usual
 * name comes first (else the newest running one), then the others by name.
 */
export function statusRows(graph: ServiceGraph, observed: ObservedState, now: number): StatusRow[] {
  const rows: StatusRow[] = [];
  const project = observed.project;
  const byService = new Map<string, ObservedContainer[]>();
  for (const c of observed.containers) {
    // Containers kept for rollback (`<project>-<service>-kept-<generation>`) are not the service's: `waffle rollback --list` shows them.
    if (c.service && c.name === `${project}-${c.service}-kept-${c.generation}`) continue;
    const list = byService.get(c.service) ?? [];
    list.push(c);
    byService.set(c.service, list);
  }
  const names = new Set([...Object.keys(graph.services), ...[...byService.keys()].filter((s) => s !== '')]);
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const row = (service: string | null, c: ObservedContainer | undefined, desired: boolean, marks: StatusMark[], note?: string): StatusRow => ({
    service,
    container: c?.name ?? null,
    state: c?.state ?? 'missing',
    health: c?.health ?? '-',
    image: c?.image ?? null,
    commit: c?.commit || null,
    uptimeSeconds: c ? Math.max(0, Math.round((now - c.createdAt) / 1000)) : null,
    ports: (c?.ports ?? [])
      .filter((p) => p.host)
      .map((p) => `${p.hostIp && p.hostIp !== '0.0.0.0' ? p.hostIp + ':' : ''}${p.host}->${p.container}/${p.protocol}`),
    desired,
    marks,
    ...(note ? { note } : {}),
  });
  for (const name of [...names].sort()) {
    const desired = name in graph.services;
    const list = byService.get(name) ?? [];
    if (list.length === 0) {
      rows.push(row(name, undefined, desired, []));
      continue;
    }
    // Shown first: the container under the usual name, else the newest running one, else the newest. Which
    // one the next apply keeps is the planner's choice (it prefers a running container that already has the
    // desired configuration, which status cannot know without the secrets): the notes do not guess it.
    const usual = `${project}-${name}`;
    const sorted = [...list].sort((a, b) => b.createdAt - a.createdAt || cmp(a.name, b.name));
    const first = sorted.find((c) => c.name === usual) ?? sorted.find((c) => c.state === 'running') ?? sorted[0];
    const temp = new RegExp(`^${escapeRegExp(`${project}-${name}-next-`)}\\d+$`);
    for (const c of [first, ...sorted.filter((c) => c !== first).sort((a, b) => cmp(a.name, b.name))]) {
      const marks: StatusMark[] = [];
      const why: string[] = [];
      if (!desired) {
        marks.push('orphan');
        why.push(`service "${name}" is no longer defined`);
      }
      if (temp.test(c.name)) {
        marks.push('temporary');
        why.push('temporary name left by an interrupted replacement');
      }
      if (c !== first) {
        marks.push('duplicate');
        why.push(`another container of "${name}" besides ${first.name}`);
      }
      let note: string | undefined;
      if (marks.length > 0) {
        // What the next apply does first, so a narrow terminal cuts the explanation, not the fix.
        const fix = !desired
          ? 'removed by the next apply'
          : list.length > 1
            ? `the next apply keeps one of the ${list.length} containers of "${name}" and removes the others`
            : `the next apply renames it to ${usual} (or replaces it, unless it runs with the current configuration)`;
        note = `${c.name}: ${fix} (${why.join('; ')})`;
      }
      rows.push(row(name, c, desired, marks, note));
    }
  }
  for (const c of [...(byService.get('') ?? [])].sort((a, b) => cmp(a.name, b.name))) {
    rows.push(
      row(null, c, false, ['no-service'], `${c.name}: removed by the next apply (our project label but no service label)`),
    );
  }
  return rows;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The SERVICE cell: the name and what is odd about the row. */
function serviceCell(r: StatusRow): string {
  if (r.service === null) return '(no service)';
  const marks = r.marks.filter((m) => m !== 'no-service');
  return marks.length ? `${r.service} (${marks.join(', ')})` : r.service;
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
    serviceCell(r),
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
  // What each marked row is and what the next apply does about it, one line each.
  const notes = rows.filter((r) => r.note).map((r) => r.note!);
  if (notes.length > 0) {
    lines.push('', kleur.yellow(truncate(`${notes.length} container${notes.length === 1 ? '' : 's'} out of the ordinary:`, columns)));
    for (const n of notes) lines.push(truncate(`  ${n}`, columns));
  }
  return lines;
}

export function formatStatus(rows: StatusRow[], columns: number): string {
  return statusLines(rows, columns).join('\n') + '\n';
}
