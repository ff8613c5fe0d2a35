/**
 * The plan as plain text for terminals, pipes, CI and `waffle plan` (the golden files in
 * test/golden/plan pin exactly this text), from the grouped-diff model of runtime/plan/diff.ts.
 * Pure: plan data in, lines out (colour only through kleur, off in tests and without a terminal).
 */
import kleur from 'kleur';
import type { Plan } from '../../runtime/model.ts';
import { infraLine, infraSummary, planHeadline, planModel } from '../../runtime/plan/diff.ts';
import { truncate } from './text.ts';

export { describeHealth, infraLine, infraSummary, planHeadline, planModel } from '../../runtime/plan/diff.ts';
export type { FieldChange, InfraChange, PlanModel, ProxyChange, ServiceChange, ServiceChangeKind } from '../../runtime/plan/diff.ts';

export const colourSymbol = (symbol: string, text: string = symbol): string =>
  symbol === '+' ? kleur.green(text) : symbol === '-' ? kleur.red(text) : symbol === '-/+' ? kleur.magenta(text) : symbol === '~' || symbol === '=>' ? kleur.yellow(text) : kleur.cyan(text);

export interface PlanTextOptions {
  /** Show every field and every infrastructure operation. */
  full?: boolean;
  /** Truncate each line to this many columns (a terminal); undefined: no limit (logs). */
  columns?: number;
}

/** The grouped diff as lines of plain text (coloured through kleur when it is enabled). */
export function planLines(plan: Plan, opts: PlanTextOptions = {}): string[] {
  const m = planModel(plan);
  const cut = (s: string) => (opts.columns ? truncate(s, opts.columns) : s);
  const lines: string[] = [];
  lines.push(kleur.bold(cut(`Plan for ${m.project}: ${planHeadline(m)}`)));
  const nameWidth = Math.min(24, Math.max(8, ...m.services.map((s) => s.service.length)));
  for (const s of m.services) {
    const head = `${s.symbol.padEnd(3)} ${s.kind.padEnd(7)} ${truncate(s.service, nameWidth).padEnd(nameWidth)}`;
    const note = s.note && s.note !== 'new' ? `  (${s.note})` : '';
    const text = cut((head + note).trimEnd());
    lines.push(colourSymbol(s.symbol, text.slice(0, 3)) + text.slice(3));
    for (const f of s.fields) {
      if (f.fullOnly && !opts.full) continue;
      const line = cut(`      ${f.field.padEnd(10)} ${f.text}`);
      lines.push(f.secret ? line.replace('(secret)', kleur.yellow('(secret)')) : kleur.dim(line));
    }
  }
  for (const p of m.proxy) {
    const text = cut(`~   proxy   ${p.provider}`);
    lines.push(colourSymbol('~', text.slice(0, 1)) + text.slice(1));
    for (const c of p.causes) lines.push(kleur.dim(cut(`      ${c}`)));
  }
  if (opts.full) for (const i of m.infra) lines.push(cut(infraLine(i)));
  else if (m.infra.length) lines.push(kleur.dim(cut(`    ${infraSummary(m.infra)}`)));
  // A dropped pin is said by the cause of its service's operation when there is one, else on its own line.
  const pinCaused = new Set(plan.operations.filter((o) => 'service' in o && o.causes.some((c) => c.kind === 'pin')).map((o) => (o as { service: string }).service));
  for (const p of m.pins) {
    if (p.state === 'dropped' && pinCaused.has(p.service)) continue;
    const text = cut(`${p.state === 'held' ? '=' : '~'}   ${(p.state === 'held' ? 'pinned' : 'unpin').padEnd(7)} ${truncate(p.service, nameWidth).padEnd(nameWidth)}  ${p.detail}`);
    lines.push(p.state === 'held' ? kleur.cyan(text) : kleur.yellow(text));
  }
  if (m.unchanged.length) lines.push(kleur.dim(cut(`=   ${m.unchanged.length} unchanged: ${m.unchanged.join(', ')}`)));
  return lines;
}

export function planText(plan: Plan, opts: PlanTextOptions = {}): string {
  return planLines(plan, opts).join('\n') + '\n';
}
