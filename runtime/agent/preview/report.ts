/**
 * What a pull-request preview tells GitHub: the commit status line and the one comment, as text.
 * Pure: the preview's result in, strings out. The comment starts with a hidden marker so the agent
 * finds its own comment again and edits it on the next push instead of adding another.
 *
 * Everything that comes from the pull request (service names, images, file names, messages) is
 * written inside code spans or escaped: a pull request cannot inject markup, links or a second
 * marker into the comment. Secret values are never part of a plan or a problem (the engine keeps
 * them out); secret causes appear as `(secret)` as in the terminal.
 */
import type { Plan, Problem } from '../../model.ts';
import { infraSummary, planHeadline, planModel, type PlanModel } from '../../plan/diff.ts';
import { problemPosition } from '../../problems.ts';

/** The first line of our comment: how the agent recognises the comment it wrote. */
export const PREVIEW_MARKER = '<!-- waffle-plan -->';

/** GitHub limits a commit status description to 140 characters. */
const STATUS_MAX = 140;
/** GitHub limits a comment to 65536 characters; the list is cut well before. */
const COMMENT_MAX = 60_000;

export interface PreviewSubject {
  /** `owner/name`. */
  repo: string;
  number: number;
  sha: string;
  /** The web address GitHub links are made under (`https://github.com`, or an Enterprise host). */
  webUrl?: string;
}

/**
 * What a preview found. `plan`: the commit loads and validates, and this is what deploying it would do
 * now. `problems`: it does not type-check, evaluate or validate (each problem with file and line);
 * a plan may still be present when only the type-check failed. `error`: the preview itself could not
 * run (git fetch, Docker unreachable) — nothing is said about the commit.
 */
export type PreviewResult =
  | { kind: 'plan'; plan: Plan; notChecked: string[] }
  | { kind: 'problems'; stage: string; problems: Problem[]; plan?: Plan; notChecked?: string[] }
  | { kind: 'error'; message: string };

export type StatusState = 'pending' | 'success' | 'failure' | 'error';

function clip(s: string, max: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : one.slice(0, max - 1) + '…';
}

/** The counts of a plan without the unchanged ones when something changes: `1 to replace, 1 to create`. */
export function planCountsText(m: PlanModel): string {
  const parts = planHeadline(m).split(', ');
  const changing = parts.filter((p) => !p.endsWith(' unchanged'));
  return changing.length ? changing.join(', ') : parts.join(', ');
}

const problemWord = (n: number) => `${n} problem${n === 1 ? '' : 's'}`;

/** `services/api.ts:3:5` (or just the file). */
export function problemLocation(p: Problem): string {
  const at = problemPosition(p);
  return at ? `${p.file}:${at}` : p.file;
}

/** The commit status: state and its one-line description (at most 140 characters). */
export function previewStatus(result: PreviewResult): { state: StatusState; description: string } {
  switch (result.kind) {
    case 'plan':
      return { state: 'success', description: clip(`waffle plan: ${planCountsText(planModel(result.plan))}`, STATUS_MAX) };
    case 'problems': {
      const first = result.problems[0];
      const head = `waffle plan: ${problemWord(result.problems.length)}`;
      return { state: 'failure', description: clip(first ? `${head}: ${problemLocation(first)}: ${first.message}` : head, STATUS_MAX) };
    }
    case 'error':
      return { state: 'error', description: clip(`waffle plan could not run: ${result.message}`, STATUS_MAX) };
  }
}

/** A code span that holds `s` whatever backticks it contains, on one line. */
export function code(s: string): string {
  const text = s.replace(/[\r\n]+/g, ' ');
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') || /^ .* $/.test(text) ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/**
 * Plain text made inert for GitHub markdown, on one line: HTML as entities, and the characters that
 * start emphasis, code, links, tables or strike-through escaped (our text never starts a line, so
 * headings and lists cannot begin inside it).
 */
export function inert(s: string): string {
  return s
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/([\\`*_[\]|~])/g, '\\$1');
}

/** A link to a line of a file at the commit, when the position is known. */
function fileLink(subject: PreviewSubject, p: Problem): string {
  const label = code(problemLocation(p));
  const at = problemPosition(p);
  if (!p.file || /^\.\.|^\//.test(p.file)) return label;
  const line = at ? `#L${at.split(':')[0]}` : '';
  const web = (subject.webUrl ?? 'https://github.com').replace(/\/+$/, '');
  const file = p.file.split('/').map(encodeURIComponent).join('/');
  return `[${label}](${web}/${subject.repo}/blob/${subject.sha}/${file}${line})`;
}

function planSection(plan: Plan, notChecked: string[]): string[] {
  const m = planModel(plan);
  const out: string[] = [];
  if (m.services.length === 0 && m.infra.length === 0) {
    out.push(`No changes: the ${m.unchanged.length} service${m.unchanged.length === 1 ? '' : 's'} would stay as they run.`);
  }
  for (const s of m.services) {
    const note = s.note && s.note !== 'new' ? ` (${inert(s.note)})` : '';
    out.push(`- ${code(s.symbol)} **${s.kind}** ${code(s.service)}${note}`);
    for (const f of s.fields) {
      if (f.fullOnly) continue;
      out.push(`  - ${inert(f.field)}: ${code(f.text)}`);
    }
  }
  if (m.infra.length) out.push(`- ${inert(infraSummary(m.infra))}`);
  for (const p of m.pins) out.push(`- ${code('=')} **pinned** ${code(p.service)}: ${inert(p.detail)}`);
  if (m.unchanged.length) out.push(`- ${code('=')} ${m.unchanged.length} unchanged: ${m.unchanged.map(code).join(', ')}`);
  if (notChecked.length) {
    out.push('', `Secrets from Vault were not read for the preview; a changed value would also replace ${notChecked.map(code).join(', ')}.`);
  }
  return out;
}

function problemsSection(subject: PreviewSubject, problems: Problem[]): string[] {
  return problems.map((p) => {
    const svc = p.service ? ` service ${code(p.service)}:` : '';
    const field = p.where && !/^\d+(:\d+)?$/.test(p.where) ? ` ${code(p.where)}:` : '';
    const fix = p.fix ? `\n  fix: ${inert(p.fix)}` : '';
    return `- ${fileLink(subject, p)}:${svc}${field} ${inert(p.message)}${fix}`;
  });
}

const STAGE_TEXT: Record<string, string> = {
  types: 'does not type-check',
  load: 'does not evaluate',
  validate: 'does not validate',
  secrets: 'uses secrets that cannot be resolved',
  policy: "breaks this host's policy",
};

/**
 * The comment body: the marker, a headline with the counts, the grouped diff with causes (or the
 * problems with file and line), and a footer saying what was compared and that nothing was applied.
 */
export function previewComment(subject: PreviewSubject, result: PreviewResult, opts: { url?: string; project?: string } = {}): string {
  const sha = subject.sha.slice(0, 7);
  const lines: string[] = [PREVIEW_MARKER];
  const status = previewStatus(result);
  switch (result.kind) {
    case 'plan': {
      const m = planModel(result.plan);
      lines.push(`### waffle plan for ${code(sha)}: ${inert(planCountsText(m))}`, '');
      lines.push(`Project ${code(result.plan.project)}, compared with what runs on the host now. Nothing was applied.`, '');
      lines.push(...planSection(result.plan, result.notChecked));
      break;
    }
    case 'problems': {
      lines.push(`### waffle plan for ${code(sha)}: ${problemWord(result.problems.length)}`, '');
      lines.push(`This commit ${STAGE_TEXT[result.stage] ?? 'cannot be planned'}; a deploy of it would be refused. Nothing was applied.`, '');
      lines.push(...problemsSection(subject, result.problems));
      if (result.plan) {
        lines.push('', `The configuration still evaluates; deployed as it is, it would do this:`, '');
        lines.push(...planSection(result.plan, result.notChecked ?? []));
      }
      break;
    }
    case 'error':
      lines.push(`### waffle plan for ${code(sha)} could not run`, '');
      lines.push(inert(result.message), '', 'This says nothing about the commit; the next push or a reopen tries again.');
      break;
  }
  lines.push('', `<sub>${inert(status.description)} · ${code(subject.sha)}${opts.url ? ` · [agent](${encodeURI(opts.url)})` : ''}</sub>`);
  let body = lines.join('\n') + '\n';
  if (body.length > COMMENT_MAX) {
    body = body.slice(0, COMMENT_MAX).replace(/\n[^\n]*$/, '') + '\n\n… (cut: the full plan is on the agent)\n';
  }
  return body;
}
