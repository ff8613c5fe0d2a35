/**
 * The plan as a grouped diff, as data: one entry per service change (symbol, kind, note, the fields
 * that changed with their causes), infrastructure changes, unchanged services folded into a count.
 * Pure: plan data in, plain data and text out, no colour. The terminal renderers (cli/render/plan.ts,
 * the Ink plan view), the pull-request comment and the agent's page all show this same model.
 * `+` create, `~` update in place, `-/+` replace with its cause and strategy (the full diff lists its
 * steps), `<-` rollback to a kept container, `=>` rename (a replace finished under the canonical
 * name), `-` remove, `>` start; services pinned by a rollback are listed apart.
 * Values are never shown: env is listed by key, secrets as `(secret)`.
 */
import type { ContainerCreateBody, Operation, Plan, SwarmServiceSpec } from '../model.ts';

export type ServiceChangeKind = 'create' | 'replace' | 'rollback' | 'update' | 'rename' | 'start' | 'remove';

export interface FieldChange {
  /** `image`, `env`, `ports`, `restart`, `secrets`, ... */
  field: string;
  text: string;
  /** A secret is involved: shown as `(secret)`, never a value. */
  secret?: boolean;
  /** Only shown in the full diff. */
  fullOnly?: boolean;
}

export interface ServiceChange {
  op: string;
  kind: ServiceChangeKind;
  symbol: '+' | '-/+' | '~' | '>' | '-' | '=>' | '<-';
  service: string;
  /** One-line reason or strategy, e.g. `start-first`, `stop-first: fixed host port 8080/tcp`, `removed`. */
  note: string;
  fields: FieldChange[];
}

export interface InfraChange {
  op: string;
  symbol: '↓' | '+' | '-';
  what: 'image' | 'network' | 'volume' | 'secret';
  name: string;
}

/** The reverse proxy's configuration to put back: why, one line per cause. */
export interface ProxyChange {
  op: string;
  provider: string;
  causes: string[];
}

export interface PlanModel {
  project: string;
  services: ServiceChange[];
  infra: InfraChange[];
  proxy: ProxyChange[];
  unchanged: string[];
  /** Services pinned by a rollback (held: left alone; dropped: released by this plan). */
  pins: Array<{ service: string; state: 'held' | 'dropped'; detail: string }>;
  counts: { create: number; replace: number; rollback: number; update: number; rename: number; start: number; remove: number; unchanged: number };
}

const ORDER: ServiceChangeKind[] = ['create', 'replace', 'rollback', 'update', 'rename', 'start', 'remove'];

/** Cause kinds that concern secrets: their detail is replaced by `(secret)` plus a neutral text. */
const isSecretCause = (kind: string) => /^secrets?$/.test(kind) || kind.startsWith('secret');

function envKeys(body: ContainerCreateBody): string[] {
  return body.Env.map((e) => e.slice(0, e.indexOf('=') === -1 ? e.length : e.indexOf('='))).sort();
}

function portsOf(body: ContainerCreateBody): string {
  const out: string[] = [];
  for (const [key, binds] of Object.entries(body.HostConfig.PortBindings ?? {})) {
    for (const b of binds) {
      const ip = b.HostIp && b.HostIp !== '0.0.0.0' ? `${b.HostIp}:` : '';
      out.push(`${ip}${b.HostPort || '(random)'} → ${key}`);
    }
  }
  return out.join(', ');
}

function mountsOf(body: ContainerCreateBody): string {
  return body.HostConfig.Mounts.map((m) => `${m.Source}:${m.Target}${m.ReadOnly ? ':ro' : ''}`).join(', ');
}

/** Network names without the `<project>_` prefix. */
function networksOf(body: ContainerCreateBody, project: string): string {
  const prefix = `${project}_`;
  return Object.keys(body.NetworkingConfig?.EndpointsConfig ?? {})
    .map((n) => (n.startsWith(prefix) ? n.slice(prefix.length) : n))
    .sort()
    .join(', ');
}

/** A short description of the healthcheck command the planner generated (`http …`, `tcp :port`). */
export function describeHealth(test: string[]): string {
  const cmd = test[0] === 'CMD-SHELL' ? test.slice(1).join(' ') : test.slice(test[0] === 'CMD' ? 1 : 0).join(' ');
  const url = /'(https?:\/\/[^']+)'/.exec(cmd);
  if (url) return `http ${url[1]}`;
  const tcp = /nc -z \S+ (\d+)/.exec(cmd);
  if (tcp) return `tcp :${tcp[1]}`;
  return cmd;
}

/** What the new container will be (full diff of creates and replaces). */
function bodyFields(body: ContainerCreateBody, project: string, skip: Set<string>): FieldChange[] {
  const f: FieldChange[] = [];
  const add = (field: string, text: string, fullOnly: boolean) => {
    if (text && !skip.has(field)) f.push({ field, text, ...(fullOnly ? { fullOnly: true } : {}) });
  };
  add('image', body.Image, false);
  add('ports', portsOf(body), false);
  const keys = envKeys(body);
  add('env keys', keys.join(', '), true);
  add('mounts', mountsOf(body), true);
  add('networks', networksOf(body, project), true);
  if (body.Healthcheck?.Test?.length) add('health', describeHealth(body.Healthcheck.Test), true);
  return f;
}

/** What a new Swarm service will be: image, published ports, then (full diff) rollout, placement, secrets, networks. */
function swarmFields(spec: SwarmServiceSpec, project: string): FieldChange[] {
  const f: FieldChange[] = [];
  const add = (field: string, text: string, fullOnly: boolean) => {
    if (text) f.push({ field, text, ...(fullOnly ? { fullOnly: true } : {}) });
  };
  const c = spec.TaskTemplate.ContainerSpec;
  add('image', c.Image, false);
  add('ports', spec.EndpointSpec.Ports.map((p) => `${p.PublishedPort} → ${p.TargetPort}/${p.Protocol} (each node running a task)`).join(', '), false);
  add('env keys', c.Env.map((e) => e.slice(0, e.indexOf('=') === -1 ? e.length : e.indexOf('='))).sort().join(', '), true);
  const u = spec.UpdateConfig;
  add('rollout', `${u.Order}, ${u.Parallelism} at a time, on failure ${u.FailureAction}`, true);
  add('placement', [...spec.TaskTemplate.Placement.Constraints, ...spec.TaskTemplate.Placement.Preferences.map((p) => `spread ${p.Spread.SpreadDescriptor}`)].join(', '), true);
  add('volumes', c.Mounts.map((m) => `${m.Source} → ${m.Target}${m.Type === 'volume' ? ' (created by the node that runs the task)' : ''}`).join(', '), true);
  add('secrets', c.Secrets.map((s) => `${s.File.Name} (${s.SecretName})`).join(', '), true);
  add('networks', spec.TaskTemplate.Networks.map((n) => (n.Target.startsWith(`${project}_`) ? n.Target.slice(project.length + 1) : n.Target)).join(', '), true);
  if (c.Healthcheck?.Test?.length) add('health', describeHealth(c.Healthcheck.Test), true);
  return f;
}

function causeFields(op: Operation): FieldChange[] {
  return op.causes.map((c) =>
    isSecretCause(c.kind)
      ? { field: c.kind, text: `(secret) ${c.detail.replace(/=.*/, '')}`, secret: true }
      : { field: c.kind, text: c.detail },
  );
}

const deps = (op: Operation): FieldChange[] => {
  const services = op.after.filter((a) => /^(create|replace|start|update):/.test(a)).map((a) => a.slice(a.indexOf(':') + 1));
  return services.length ? [{ field: 'after', text: services.join(', '), fullOnly: true }] : [];
};

/** A replace's (or rename's) planned steps, in order, as one line of the full diff. */
function stepsField(op: Operation): FieldChange[] {
  const steps = (op as { steps?: Array<{ step: string; network?: string; seconds?: number }> }).steps;
  if (!Array.isArray(steps) || steps.length === 0) return [];
  const text = steps.map((st) => (st.step === 'draining' && st.seconds !== undefined ? `draining ${st.seconds}s` : st.step)).join(' → ');
  return [{ field: 'steps', text, fullOnly: true }];
}

export function planModel(plan: Plan): PlanModel {
  const services: ServiceChange[] = [];
  const infra: InfraChange[] = [];
  const proxy: ProxyChange[] = [];
  for (const op of plan.operations) {
    switch (op.kind) {
      case 'create-service':
        services.push({
          op: op.id,
          kind: 'create',
          symbol: '+',
          service: op.service,
          note: op.causes.map((c) => c.detail).join('; '),
          fields: [...bodyFields(op.body, plan.project, new Set()), ...deps(op)],
        });
        break;
      case 'replace-service': {
        const causes = causeFields(op);
        const named = new Set(causes.map((c) => c.field));
        services.push({
          op: op.id,
          kind: 'replace',
          symbol: '-/+',
          service: op.service,
          note: op.strategy === 'stop-first' ? `stop-first: ${op.strategyReason}` : op.strategy,
          // The causes, then (full diff) what the new container will be.
          fields: [...causes, ...bodyFields(op.body, plan.project, named).map((f) => ({ ...f, fullOnly: true })), ...stepsField(op), ...deps(op)],
        });
        break;
      }
      case 'rollback-service':
        services.push({
          op: op.id,
          kind: 'rollback',
          symbol: '<-',
          service: op.service,
          note: `to generation ${op.generation}, ${op.strategy === 'stop-first' ? `stop-first: ${op.strategyReason}` : op.strategy}`,
          fields: [...causeFields(op), { field: 'container', text: `${op.targetName} → ${op.containerName}`, fullOnly: true }, ...stepsField(op)],
        });
        break;
      case 'update-service':
        services.push({ op: op.id, kind: 'update', symbol: '~', service: op.service, note: 'in place', fields: causeFields(op) });
        break;
      case 'start-service':
        services.push({ op: op.id, kind: 'start', symbol: '>', service: op.service, note: op.causes.map((c) => c.detail).join('; '), fields: [] });
        break;
      case 'remove-service':
        services.push({
          op: op.id,
          kind: 'remove',
          symbol: '-',
          service: op.service || op.containerName,
          note: op.causes.map((c) => c.detail).join('; '),
          fields: [{ field: 'container', text: op.containerName, fullOnly: true }],
        });
        break;
      case 'pull-image':
        infra.push({ op: op.id, symbol: '↓', what: 'image', name: op.image });
        break;
      case 'create-network':
        infra.push({ op: op.id, symbol: '+', what: 'network', name: op.network });
        break;
      case 'remove-network':
        infra.push({ op: op.id, symbol: '-', what: 'network', name: op.network });
        break;
      case 'create-volume':
        infra.push({ op: op.id, symbol: '+', what: 'volume', name: op.volume });
        break;
      case 'create-swarm-service':
        services.push({
          op: op.id,
          kind: 'create',
          symbol: '+',
          service: op.service,
          note: `${op.replicas} replica${op.replicas === 1 ? '' : 's'}`,
          fields: [...swarmFields(op.spec, plan.project), ...deps(op)],
        });
        break;
      case 'update-swarm-service':
        services.push({
          op: op.id,
          kind: op.rolls ? 'replace' : 'update',
          symbol: op.rolls ? '-/+' : '~',
          service: op.service,
          note: op.rolls ? `rolling update, ${op.spec.UpdateConfig.Order}` : 'tasks kept',
          fields: causeFields(op),
        });
        break;
      case 'rollback-swarm-service':
        services.push({
          op: op.id,
          kind: 'rollback',
          symbol: '<-',
          service: op.service,
          note: "Swarm's rollback to the previous spec",
          fields: [...causeFields(op), { field: 'image', text: `${op.from.image} → ${op.to.image}` }],
        });
        break;
      case 'remove-swarm-service':
        services.push({ op: op.id, kind: 'remove', symbol: '-', service: op.service, note: op.causes.map((c) => c.detail).join('; '), fields: [] });
        break;
      case 'create-swarm-secret':
        infra.push({ op: op.id, symbol: '+', what: 'secret', name: op.secret });
        break;
      case 'remove-swarm-secret':
        infra.push({ op: op.id, symbol: '-', what: 'secret', name: op.secret });
        break;
      case 'configure-proxy':
        proxy.push({ op: op.id, provider: op.provider, causes: op.causes.map((c) => c.detail) });
        break;
      default: {
        // A service kept under its canonical name (a replace interrupted after its create finishes).
        const r = op as Operation & { kind: string; service?: string; currentName?: string; containerName?: string };
        if (r.kind === 'rename-service' && r.service) {
          services.push({
            op: r.id,
            kind: 'rename',
            symbol: '=>',
            service: r.service,
            note: r.currentName && r.containerName ? `${r.currentName} → ${r.containerName}` : r.causes.map((c) => c.detail).join('; '),
            fields: [...causeFields(r), ...stepsField(r)],
          });
        }
      }
    }
  }
  services.sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind));
  const count = (k: ServiceChangeKind) => services.filter((s) => s.kind === k).length;
  return {
    project: plan.project,
    services,
    infra,
    proxy,
    unchanged: [...plan.unchanged].sort(),
    pins: (plan.pins ?? []).map((p) => ({ service: p.service, state: p.state, detail: p.detail })),
    counts: {
      create: count('create'),
      replace: count('replace'),
      rollback: count('rollback'),
      update: count('update'),
      rename: count('rename'),
      start: count('start'),
      remove: count('remove'),
      unchanged: plan.unchanged.length,
    },
  };
}

/** `2 to create, 1 to replace, 3 unchanged`. */
export function planHeadline(m: PlanModel): string {
  const c = m.counts;
  const parts = [
    c.create && `${c.create} to create`,
    c.replace && `${c.replace} to replace`,
    c.rollback && `${c.rollback} to roll back`,
    c.update && `${c.update} to update`,
    c.rename && `${c.rename} to rename`,
    c.start && `${c.start} to start`,
    c.remove && `${c.remove} to remove`,
  ].filter(Boolean) as string[];
  if (m.proxy.length) parts.push('proxy routes to configure');
  if (parts.length === 0 && m.infra.length === 0) parts.push('no changes');
  else if (parts.length === 0 || (parts.length === 1 && m.proxy.length)) {
    if (m.infra.length) parts.push(`${m.infra.length} infrastructure change${m.infra.length === 1 ? '' : 's'}`);
  }
  parts.push(`${c.unchanged} unchanged`);
  return parts.join(', ');
}

/** `↓ 1 image, + 3 networks, + 1 volume` */
export function infraSummary(infra: InfraChange[]): string {
  const groups = new Map<string, number>();
  for (const i of infra) {
    const key = `${i.symbol === '↓' ? '↓ pull' : i.symbol === '-' ? '- remove' : '+ create'} ${i.what}`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${k.replace(/(\S+)$/, n === 1 ? `1 $1` : `${n} $1s`)}`).join(', ');
}

export function infraLine(i: InfraChange): string {
  const verb = i.symbol === '↓' ? 'pull' : i.symbol === '-' ? 'remove' : 'create';
  return `${i.symbol} ${verb} ${i.what} ${i.name}`;
}
