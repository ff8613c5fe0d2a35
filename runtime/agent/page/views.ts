/**
 * The agent's page as server-rendered HTML: the overview (services, deploys, previews, webhook
 * deliveries), one deploy (its plan and events, a failure's health output and log), and the sign-in
 * form. Readable without script; a small inline script (allowed by a per-response nonce, nothing
 * else may run) listens to the agent's server-sent events and swaps in the freshly rendered part.
 * One column on a phone. Every value is escaped (html.ts).
 */
import type { FailureDetail, Plan, Problem } from '../../model.ts';
import { planHeadline, planModel } from '../../plan/diff.ts';
import { problemPosition } from '../../problems.ts';
import { html, raw, type Html } from './html.ts';
import type { DeliveryView, DeploymentPageData, DeploymentView, OverviewData, ServiceView } from './model.ts';

const STYLE = `
:root{--fg:#1b1b1b;--muted:#4f4f4f;--line:#d4d4d4;--bg:#fff;--panel:#f6f6f6;--link:#0b57b0}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;padding-top:1rem;border-bottom:1px solid var(--line)}
header h1{font-size:1.25rem;margin:0 0 .5rem}
header p{margin:0 0 .5rem;color:var(--muted)}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
a{color:var(--link)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:.75rem;padding:0;margin:0;list-style:none}
.card{border:1px solid var(--line);border-radius:.5rem;padding:.75rem;background:var(--bg)}
.card h3{margin:0 0 .5rem;font-size:1rem;display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .75rem;margin:0}
dt{color:var(--muted)}
dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
caption{text-align:left}
.home{color:inherit;text-decoration:none}
th{font-weight:600;color:var(--muted);white-space:nowrap}
.badge{display:inline-block;padding:0 .45rem;border-radius:.75rem;font-size:.85em;font-weight:600;white-space:nowrap;background:#e6e6e6;color:#222}
.ok{background:#d9f2e0;color:#0b4a1f}.bad{background:#fbe0de;color:#7d1a12}.busy{background:#fff0bf;color:#5c4300}.info{background:#dde9fb;color:#0d3a78}
.outcomes{margin:.25rem 0 0;padding:0;list-style:none;color:var(--muted);font-size:.9em}
.events{list-style:none;padding:0;margin:0}
.events li{padding:.3rem 0;border-bottom:1px solid var(--line);overflow-wrap:anywhere}
.events time{color:var(--muted);margin-right:.5rem}
pre{background:var(--panel);border:1px solid var(--line);border-radius:.35rem;padding:.5rem;overflow-x:auto;white-space:pre-wrap;margin:.35rem 0}
.plan{list-style:none;padding:0;margin:0}
.plan li{margin:.35rem 0}
.plan ul{margin:.15rem 0 0 1.25rem;padding:0;color:var(--muted)}
.problems li{margin:.25rem 0}
.muted{color:var(--muted)}
#live{font-size:.85em;color:var(--muted);margin:0 0 .5rem}
form{display:grid;gap:.5rem;max-width:24rem}
input{font:inherit;padding:.4rem;border:1px solid #767676;border-radius:.25rem}
button{font:inherit;padding:.4rem .8rem;border:1px solid #0b57b0;background:#0b57b0;color:#fff;border-radius:.25rem;cursor:pointer}
.error{color:#7d1a12}
footer{color:var(--muted);font-size:.85em;padding-top:1rem;padding-bottom:1rem}
@media (max-width:40rem){
.stack caption{display:block}
.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.stack,.stack tbody,.stack tr,.stack td{display:block;width:100%}
.stack tr{border-bottom:1px solid var(--line);padding:.35rem 0}
.stack td{border:0;padding:.1rem 0}
.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted)}
}
`;

/** The live-update script: hears the agent's events and swaps in the re-rendered `#content`. */
const SCRIPT = `(function(){
var live=document.getElementById('live');var content=document.getElementById('content');
if(!window.EventSource||!content)return;
var src=content.getAttribute('data-events');var timer=null;var busy=false;var again=false;
function refresh(){if(busy){again=true;return}busy=true;
var url=location.pathname+(location.search?location.search+'&':'?')+'partial=1';
fetch(url,{credentials:'same-origin',headers:{'accept':'text/html'}}).then(function(r){return r.ok?r.text():null}).then(function(t){if(t!==null)content.innerHTML=t}).catch(function(){}).then(function(){busy=false;if(again){again=false;refresh()}})}
var es=new EventSource(src);
es.onopen=function(){live.textContent='Live: updates as they happen.'};
es.onerror=function(){live.textContent='Live updates paused; reconnecting…'};
es.onmessage=function(){clearTimeout(timer);timer=setTimeout(refresh,200)};
})();`;

export interface LayoutOptions {
  title: string;
  /** Nonce allowing this response's inline style and script (Content-Security-Policy). */
  nonce: string;
  /** Where the live script listens (an SSE URL); omitted: no script. */
  events?: string;
  heading: Html;
  content: Html;
}

export function layout(o: LayoutOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title}</title>
<style nonce="${o.nonce}">${raw(STYLE)}</style>
</head>
<body>
<header>${o.heading}</header>
<main>
${o.events ? html`<p id="live" role="status">Live updates need script; reload the page to see changes.</p>` : ''}
<div id="content"${o.events ? html` data-events="${o.events}"` : ''}>${o.content}</div>
</main>
<footer>wafflemaker agent · times in UTC</footer>
${o.events ? html`<script nonce="${o.nonce}">${raw(SCRIPT)}</script>` : ''}
</body>
</html>
`.text;
}

// ───────────────────────────── small parts ─────────────────────────────

function web(repo: string | undefined, webUrl: string | undefined): string | undefined {
  return repo ? `${(webUrl ?? 'https://github.com').replace(/\/+$/, '')}/${repo}` : undefined;
}

/** A commit, short, linked to GitHub when the repository is known (`abc1234-dirty` is not linked). */
export function commitLink(commit: string | undefined, repo: string | undefined, webUrl: string | undefined): Html {
  if (!commit || commit === 'none') return html`<span class="muted">none</span>`;
  const base = web(repo, webUrl);
  const short = commit.slice(0, 12);
  return base && /^[0-9a-f]{7,40}$/.test(commit) ? html`<a class="mono" href="${base}/commit/${commit}">${short}</a>` : html`<span class="mono">${short}</span>`;
}

export function time(ms: number | undefined): Html {
  if (!ms) return html`<span class="muted">—</span>`;
  const iso = new Date(ms).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 19).replace('T', ' ')}</time>`;
}

/** `850 ms`, `3.2 s`, `4 min 5 s`, `2 h 10 min`, `3 d 4 h`. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

const TONE: Record<string, string> = {
  applied: 'ok',
  'no-op': 'ok',
  done: 'ok',
  running: 'busy',
  healthy: 'ok',
  success: 'ok',
  queued: 'info',
  pending: 'busy',
  starting: 'busy',
  restarting: 'busy',
  failed: 'bad',
  failure: 'bad',
  error: 'bad',
  unhealthy: 'bad',
  exited: 'bad',
  dead: 'bad',
  missing: 'bad',
  interrupted: 'bad',
  deployed: 'ok',
  coalesced: 'info',
  refused: 'bad',
};

export function badge(word: string, tone = TONE[word] ?? ''): Html {
  return html`<span class="badge ${tone}">${word}</span>`;
}

/** A container's state: running is good news here (for a deploy it means busy). */
const stateBadge = (state: string) => badge(state, state === 'running' ? 'ok' : undefined);

// ───────────────────────────── overview ─────────────────────────────

function serviceCard(s: ServiceView, d: OverviewData): Html {
  const uptime = s.startedAt && s.state === 'running' ? duration(d.now - s.startedAt) : '—';
  return html`<li class="card" id="service-${s.service}">
<h3><span>${s.service}</span> ${stateBadge(s.state)}${s.health !== 'none' ? html` ${badge(s.health)}` : ''}</h3>
<dl>
<dt>image</dt><dd class="mono">${s.image ?? '—'}</dd>
<dt>digest</dt><dd class="mono" title="${s.digest ?? ''}">${s.digest ? shortDigest(s.digest) : '—'}</dd>
<dt>commit</dt><dd>${commitLink(s.commit, d.repo, d.webUrl)}</dd>
${s.domains.length ? html`<dt>domains</dt><dd>${s.domains.map((x, i) => html`${i ? ', ' : ''}<span class="mono">${x}</span>`)}</dd>` : ''}
<dt>uptime</dt><dd>${uptime}</dd>
${s.replicas ? html`<dt>tasks</dt><dd>${s.replicas.running} of ${s.replicas.desired} running</dd>` : ''}
<dt>last deploy</dt><dd>${s.lastDeploy ? html`<a href="/deployments/${s.lastDeploy.id}">${s.lastDeploy.action}</a> ${badge(s.lastDeploy.outcome)}` : '—'}</dd>
</dl>
</li>`;
}

function shortDigest(d: string): string {
  const at = d.lastIndexOf('@');
  const digest = at === -1 ? d : d.slice(at + 1);
  return digest.startsWith('sha256:') ? `sha256:${digest.slice(7, 19)}` : digest.slice(0, 19);
}

/** Per-service outcomes in one deploy's row (their messages are on the deploy's page). */
function outcomes(d: DeploymentView): Html {
  if (!d.services.length) return html``;
  return html`<ul class="outcomes">${d.services.map((s) => html`<li>${s.service}: ${s.action} ${s.outcome}</li>`)}</ul>`;
}

function deploymentRows(list: DeploymentView[], d: { repo?: string; webUrl?: string; now: number }): Html {
  if (!list.length) return html`<p class="muted">No deploys yet.</p>`;
  return html`<div class="scroll"><table class="stack">
<caption class="muted">Newest first</caption>
<thead><tr><th scope="col">deploy</th><th scope="col">result</th><th scope="col">commit</th><th scope="col">trigger</th><th scope="col">started</th><th scope="col">duration</th></tr></thead>
<tbody>
${list.map(
  (x) => html`<tr id="deployment-${x.id}">
<td data-label="deploy"><a class="mono" href="/deployments/${x.id}">${x.id.slice(-8)}</a></td>
<td data-label="result">${badge(x.state)}${x.planSummary ? html` <span class="muted">${x.planSummary}</span>` : ''}${x.error ? html`<div class="error">${clip(x.error, 300)}</div>` : ''}${outcomes(x)}</td>
<td data-label="commit">${commitLink(x.commit, d.repo, d.webUrl)}</td>
<td data-label="trigger">${x.trigger}</td>
<td data-label="started">${time(x.startedAt ?? x.queuedAt)}</td>
<td data-label="duration">${x.state === 'running' && x.startedAt ? `${duration(d.now - x.startedAt)} so far` : duration(x.durationMs)}</td>
</tr>`,
)}
</tbody></table></div>`;
}

/** Deliveries with what was done, and where it led: the state of the deploy it queued (pending ones show `queued`). */
function deliveryRows(list: DeliveryView[], states: Map<string, string>): Html {
  if (!list.length) return html`<p class="muted">No webhook deliveries yet.</p>`;
  return html`<div class="scroll"><table class="stack">
<thead><tr><th scope="col">received</th><th scope="col">event</th><th scope="col">outcome</th><th scope="col">delivery</th></tr></thead>
<tbody>
${list.map((x) => {
  const word = x.outcome.split(':')[0]!;
  const rest = x.outcome.slice(word.length).replace(/^:\s*/, '');
  return html`<tr>
<td data-label="received">${time(x.receivedAt)}</td>
<td data-label="event">${x.source} ${x.event}</td>
<td data-label="outcome">${badge(word)}${rest ? html` ${rest}` : ''}${x.deployment ? html` → <a class="mono" href="/deployments/${x.deployment}">${x.deployment.slice(-8)}</a>${states.has(x.deployment) ? html` ${badge(states.get(x.deployment)!)}` : ''}` : ''}</td>
<td data-label="delivery" class="mono">${clip(x.id, 40)}</td>
</tr>`;
})}
</tbody></table></div>`;
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

/** The overview's changing part (also what the live script fetches). */
export function overviewContent(d: OverviewData): Html {
  const base = web(d.repo, d.webUrl);
  const queue = [
    d.queue.running ? html`deploy <a class="mono" href="/deployments/${d.queue.running}">${d.queue.running.slice(-8)}</a> running` : null,
    d.queue.pending ? html`one more waiting` : null,
    d.queue.previews ? html`${d.queue.previews} preview${d.queue.previews === 1 ? '' : 's'} waiting` : null,
  ].filter(Boolean) as Html[];
  return html`<section aria-labelledby="h-now">
<h2 id="h-now">Now</h2>
<p>${queue.length ? queue.map((q, i) => html`${i ? '; ' : ''}${q}`) : html`Idle.`} Deployed commit: ${commitLink(d.deployedCommit, d.repo, d.webUrl)}.</p>
</section>
<section aria-labelledby="h-services">
<h2 id="h-services">Services${d.project ? html` of <span class="mono">${d.project}</span>` : ''}</h2>
${d.servicesError ? html`<p class="error">${d.servicesError}</p>` : d.services.length ? html`<ul class="cards">${d.services.map((s) => serviceCard(s, d))}</ul>` : html`<p class="muted">Nothing deployed yet.</p>`}
</section>
<section aria-labelledby="h-deploys">
<h2 id="h-deploys">Recent deploys</h2>
${deploymentRows(d.deployments, d)}
</section>
${
  d.previews.length
    ? html`<section aria-labelledby="h-previews">
<h2 id="h-previews">Pull request previews</h2>
<div class="scroll"><table class="stack">
<thead><tr><th scope="col">pull request</th><th scope="col">result</th><th scope="col">commit</th><th scope="col">finished</th></tr></thead>
<tbody>${d.previews.map(
        (p) => html`<tr><td data-label="pull request">${base ? html`<a href="${base}/pull/${p.number}">#${p.number}</a>` : `#${p.number}`} <span class="muted">${p.head}</span></td><td data-label="result">${badge(p.state)} ${p.description}</td><td data-label="commit">${commitLink(p.sha, d.repo, d.webUrl)}</td><td data-label="finished">${time(p.finishedAt)}</td></tr>`,
      )}</tbody></table></div>
</section>`
    : ''
}
<section aria-labelledby="h-deliveries">
<h2 id="h-deliveries">Webhook deliveries</h2>
${deliveryRows(d.deliveries, new Map(d.deployments.map((x) => [x.id, x.state])))}
</section>`;
}

export function heading(d: { project?: string; repo?: string; webUrl?: string; branch: string }, sub?: Html): Html {
  const base = web(d.repo, d.webUrl);
  return html`<h1><a class="home" href="/">waffle agent${d.project ? html` · ${d.project}` : ''}</a></h1>
<p>${d.repo ? html`${base ? html`<a href="${base}">${d.repo}</a>` : d.repo} · ` : ''}branch <span class="mono">${d.branch}</span>${sub ? html` · ${sub}` : ''}</p>`;
}

export function overviewPage(d: OverviewData, nonce: string): string {
  return layout({ title: `waffle agent${d.project ? ` · ${d.project}` : ''}`, nonce, events: '/events', heading: heading(d), content: overviewContent(d) });
}

// ───────────────────────────── one deploy ─────────────────────────────

type Ev = Record<string, unknown> & { type: string; at?: number };

function problemItems(problems: Problem[]): Html {
  return html`<ul class="problems">${problems.map((p) => {
    const at = problemPosition(p);
    return html`<li><span class="mono">${p.file}${at ? `:${at}` : ''}</span>${p.service ? html` service <span class="mono">${p.service}</span>` : ''}: ${p.message}${p.fix ? html`<br><span class="muted">fix: ${p.fix}</span>` : ''}</li>`;
  })}</ul>`;
}

function failureDetail(f: FailureDetail): Html {
  return html`${f.definedAt ? html`<div class="muted">defined at <span class="mono">${f.definedAt}</span></div>` : ''}
${f.healthOutput?.length ? html`<div>health check output:</div><pre aria-label="health check output">${f.healthOutput.join('\n')}</pre>` : ''}
${f.logTail?.length ? html`<div>last log lines:</div><pre aria-label="last log lines">${f.logTail.join('\n')}</pre>` : ''}`;
}

const opName = (e: Ev) => `${String(e.kind ?? '').replace(/-service$/, '')} ${String(e.service ?? e.op ?? '')}`.trim();

/** One event as a line (and, for a failure, its detail). */
export function describeEvent(e: Ev): { text: string; detail?: Html; tone?: string } {
  switch (e.type) {
    case 'run-start':
      return { text: `run started (${String(e.kind)}${e.offline ? ', offline' : ''})` };
    case 'load-start':
      return { text: 'loading the configuration' };
    case 'load-done':
      if (e.files === 0) return { text: `configuration of ${e.services} service${e.services === 1 ? '' : 's'} ready` };
      return { text: `loaded ${e.services} service${e.services === 1 ? '' : 's'} from ${e.files} file${e.files === 1 ? '' : 's'} in ${duration(Number(e.ms))}` };
    case 'queued':
      return { text: `waiting for ${e.ahead} earlier change${e.ahead === 1 ? '' : 's'} of the project` };
    case 'dequeued':
      return { text: `its turn came after ${duration(Number(e.waitedMs))}` };
    case 'notice':
      return { text: String(e.message) };
    case 'secrets-checked':
      return { text: `secrets checked (${(e.providers as string[]).join(', ')})` };
    case 'observe-start':
      return { text: 'reading what runs in Docker' };
    case 'observe-done':
      return { text: `${e.containers} container${e.containers === 1 ? '' : 's'}, ${e.networks} network${e.networks === 1 ? '' : 's'} running for the project` };
    case 'plan-ready':
      return { text: `plan: ${planHeadline(planModel(e.plan as Plan))}` };
    case 'apply-start':
      return { text: `applying ${e.operations} operation${e.operations === 1 ? '' : 's'}` };
    case 'op-start':
      return { text: `${opName(e)}: started` };
    case 'step':
      return { text: `${String(e.service ?? e.op)}: ${String(e.step)}${e.detail ? ` (${String(e.detail)})` : ''}` };
    case 'op-done':
      return { text: `${opName(e)}: done in ${duration(Number(e.ms))}`, tone: 'ok' };
    case 'op-failed': {
      const f = e.failure as FailureDetail;
      return { text: `${opName(e)}: failed: ${f.message}`, detail: failureDetail(f), tone: 'bad' };
    }
    case 'op-skipped':
      return { text: `${opName(e)}: skipped: ${String(e.reason)}` };
    case 'apply-done': {
      const s = e.summary as Record<string, number>;
      const parts = Object.entries(s).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
      return { text: `apply ${e.ok ? 'finished' : 'failed'}${parts.length ? `: ${parts.join(', ')}` : ''} in ${duration(Number(e.ms))}`, tone: e.ok ? 'ok' : 'bad' };
    }
    case 'run-failed': {
      const problems = (e.problems as Problem[]) ?? [];
      const text = `failed (${String(e.stage)}): ${problems.length ? `${problems.length} problem${problems.length === 1 ? '' : 's'}` : String(e.message)}`;
      return problems.length ? { text, detail: problemItems(problems), tone: 'bad' } : { text, tone: 'bad' };
    }
    case 'run-cancelled':
      return { text: `cancelled: ${String(e.reason)}` };
    default:
      return { text: e.type };
  }
}

function planView(plan: Plan): Html {
  const m = planModel(plan);
  return html`<p>${planHeadline(m)}</p>
${m.services.length ? html`<ul class="plan">${m.services.map(
    (s) => html`<li><span class="mono">${s.symbol}</span> <strong>${s.kind}</strong> <span class="mono">${s.service}</span>${s.note && s.note !== 'new' ? html` <span class="muted">(${s.note})</span>` : ''}${
      s.fields.filter((f) => !f.fullOnly || f.field === 'steps').length
        ? html`<ul>${s.fields.filter((f) => !f.fullOnly || f.field === 'steps').map((f) => html`<li>${f.field}: <span class="mono">${f.text}</span></li>`)}</ul>`
        : ''
    }</li>`,
  )}</ul>` : ''}
${m.pins.length ? html`<ul class="plan">${m.pins.map((p) => html`<li><span class="mono">=</span> <strong>pinned</strong> <span class="mono">${p.service}</span> <span class="muted">${p.detail}</span></li>`)}</ul>` : ''}`;
}

export function deploymentContent(d: DeploymentPageData): Html {
  const x = d.deployment;
  const events = d.events as Ev[];
  const ready = [...events].reverse().find((e) => e.type === 'plan-ready');
  const first = events[0]?.at;
  return html`<section aria-labelledby="h-deploy">
<h2 id="h-deploy">Deploy <span class="mono">${x.id}</span> ${badge(x.state)}</h2>
<dl>
<dt>commit</dt><dd>${commitLink(x.commit, d.repo, d.webUrl)}</dd>
<dt>trigger</dt><dd>${x.trigger}${x.delivery ? html` <span class="muted mono">(delivery ${x.delivery})</span>` : ''}</dd>
<dt>queued</dt><dd>${time(x.queuedAt)}</dd>
<dt>started</dt><dd>${time(x.startedAt)}</dd>
<dt>finished</dt><dd>${time(x.finishedAt)}</dd>
<dt>duration</dt><dd>${x.state === 'running' && x.startedAt ? `${duration(d.now - x.startedAt)} so far` : duration(x.durationMs)}</dd>
${x.planSummary ? html`<dt>plan</dt><dd>${x.planSummary}</dd>` : ''}
${x.error ? html`<dt>error</dt><dd class="error">${x.error}</dd>` : ''}
</dl>
${x.services.length ? html`<h3>Services</h3><ul>${x.services.map((s) => html`<li><span class="mono">${s.service}</span>: ${s.action} ${badge(s.outcome)}${s.message ? html` <span class="muted">${s.message}</span>` : ''}</li>`)}</ul>` : ''}
</section>
<section aria-labelledby="h-plan">
<h2 id="h-plan">Plan</h2>
${ready ? planView(ready.plan as Plan) : html`<p class="muted">${x.state === 'queued' || x.state === 'running' ? 'Not planned yet.' : 'No plan was made (see the events).'}</p>`}
</section>
<section aria-labelledby="h-events">
<h2 id="h-events">Events</h2>
${events.length ? html`<ol class="events">${events.map((e) => {
    const { text, detail, tone } = describeEvent(e);
    const t = typeof e.at === 'number' ? e.at : undefined;
    return html`<li${tone ? html` class="ev-${tone}"` : ''}><time${t ? html` datetime="${new Date(t).toISOString()}"` : ''}>${t && first ? `+${duration(t - first)}` : ''}</time>${tone === 'bad' ? html`${badge('failed')} ` : ''}${text}${detail ?? ''}</li>`;
  })}</ol>` : html`<p class="muted">No events yet.</p>`}
</section>`;
}

export function deploymentPage(d: DeploymentPageData & { project?: string; branch: string }, nonce: string): string {
  return layout({
    title: `deploy ${d.deployment.id.slice(-8)} · waffle agent`,
    nonce,
    events: `/events?deployment=${encodeURIComponent(d.deployment.id)}`,
    heading: heading(d, html`<a href="/">overview</a>`),
    content: deploymentContent(d),
  });
}

export function loginPage(nonce: string, opts: { error?: string; next?: string } = {}): string {
  return layout({
    title: 'sign in · waffle agent',
    nonce,
    heading: html`<h1>waffle agent</h1>`,
    content: html`<h2>Sign in</h2>
<p>The page needs the agent's read-only token or its management token. It is kept in a cookie for this browser only.</p>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<form method="post" action="/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<input type="hidden" name="next" value="${opts.next ?? '/'}">
<button type="submit">Sign in</button>
</form>`,
  });
}

export function notFoundPage(nonce: string, message: string): string {
  return layout({ title: 'not found · waffle agent', nonce, heading: html`<h1><a class="home" href="/">waffle agent</a></h1>`, content: html`<h2>Not found</h2><p>${message}</p><p><a href="/">Back to the overview</a></p>` });
}
