/**
 * The human plan text (compose's `plan.String()`): one line per operation, no colours, stable enough
 * for golden files. Causes name what changed, never a value.
 */
import type { Operation, PinLine, Plan, ServiceStep, StepTarget } from '../model.ts';

export interface PlanCounts {
  create: number;
  update: number;
  replace: number;
  remove: number;
  start: number;
  unchanged: number;
}

export function planCounts(plan: Plan): PlanCounts {
  const counts: PlanCounts = { create: 0, update: 0, replace: 0, remove: 0, start: 0, unchanged: plan.unchanged.length };
  for (const op of plan.operations) {
    if (op.kind === 'create-service' || op.kind === 'create-swarm-service') counts.create++;
    else if (op.kind === 'update-service' || op.kind === 'rename-service' || op.kind === 'update-swarm-service') counts.update++;
    else if (op.kind === 'replace-service' || op.kind === 'rollback-service' || op.kind === 'rollback-swarm-service') counts.replace++;
    else if (op.kind === 'remove-service' || op.kind === 'remove-swarm-service') counts.remove++;
    else if (op.kind === 'start-service') counts.start++;
  }
  return counts;
}

function line(symbol: string, verb: string, name: string, detail = ''): string {
  const head = `${`${symbol} ${verb}`.padEnd(9)} ${name}`;
  return detail ? `${head.padEnd(24)} ${detail}` : head;
}

const causeList = (op: Operation) => op.causes.map((c) => `${c.kind}: ${c.detail}`).join('; ');
const causeDetails = (op: Operation) => `(${op.causes.map((c) => c.detail).join('; ')})`;

/** One line for one operation. */
export function formatOperation(op: Operation): string {
  switch (op.kind) {
    case 'create-service':
      return line('+', 'create', op.service, causeDetails(op));
    case 'update-service':
      return line('~', 'update', op.service, causeList(op));
    case 'replace-service':
      return line(
        '-/+',
        'replace',
        op.service,
        `${causeList(op)} (${op.strategy === 'stop-first' ? `stop-first: ${op.strategyReason}` : op.strategy})`,
      );
    case 'rollback-service':
      return line(
        '<-',
        'rollback',
        op.service,
        `to generation ${op.generation} (${op.targetName})${op.currentName ? `, ${op.currentName} kept` : ''} (${op.strategy === 'stop-first' ? `stop-first: ${op.strategyReason}` : op.strategy})`,
      );
    case 'rename-service':
      return line('~', 'rename', op.service, `${op.currentName} → ${op.containerName} (${op.causes.map((c) => c.detail).join('; ')})`);
    case 'start-service':
      return line('>', 'start', op.service, causeDetails(op));
    case 'remove-service':
      return line('-', 'remove', op.service || op.containerName, causeDetails(op));
    case 'pull-image':
      return line('↓', 'pull', op.image);
    case 'create-network':
      return line('+', 'network', op.network);
    case 'remove-network':
      return line('-', 'network', op.network);
    case 'create-volume':
      return line('+', 'volume', op.volume);
    case 'create-swarm-service':
      return line('+', 'create', op.service, `${causeDetails(op)} ×${op.replicas}`);
    case 'update-swarm-service':
      return line('~', 'update', op.service, `${causeList(op)} (${op.rolls ? `rolling ${op.spec.UpdateConfig.Order}` : 'tasks kept'})`);
    case 'remove-swarm-service':
      return line('-', 'remove', op.service, causeDetails(op));
    case 'rollback-swarm-service':
      return line('<-', 'rollback', op.service, `to the previous spec (${op.to.image}) from ${op.from.image} (Swarm's rollback, one step back)`);
    case 'create-swarm-secret':
      return line('+', 'secret', op.secret);
    case 'remove-swarm-secret':
      return line('-', 'secret', op.secret);
    case 'configure-proxy':
      return line('~', 'proxy', op.provider, causeList(op));
  }
}

const VERB: Record<ServiceStep['step'], string> = {
  creating: 'create',
  starting: 'start',
  'waiting-health': 'health',
  switching: 'switch',
  routing: 'route',
  'unaliasing-old': 'unalias',
  draining: 'drain',
  'stopping-old': 'stop',
  'removing-old': 'remove',
  renaming: 'rename',
  'retaining-old': 'keep',
  restoring: 'restore',
};

const nameOf = (t: StepTarget, newName: string) => (t === 'new' ? newName : t.name);

/** One step of a replace or rename, as the full diff shows it: what it does to which container. */
export function formatStep(s: ServiceStep, newName: string): string {
  const what = (() => {
    switch (s.step) {
      case 'creating':
        return `${s.name} (its networks, without the service alias)`;
      case 'starting':
        return nameOf(s.target, newName);
      case 'waiting-health':
        return `${nameOf(s.target, newName)} until healthy`;
      case 'switching':
        return `${s.aliases.join(', ')} → ${nameOf(s.target, newName)} on ${s.network}`;
      case 'routing':
        return `proxy routes → ${nameOf(s.target, newName)} (its address on ${s.network})`;
      case 'unaliasing-old':
        return `${s.target.name} leaves ${s.aliases.join(', ')} on ${s.network} (stays reachable to finish requests)`;
      case 'draining':
        return `${s.seconds} s`;
      case 'stopping-old':
        return `${s.target.name} (its own stop grace period)`;
      case 'removing-old':
        return s.target.name;
      case 'renaming':
        return `${s.from} → ${s.to}`;
      case 'retaining-old':
        return s.to === s.target.name ? `${s.target.name} stopped for rollback (restart policy no)` : `${s.target.name} → ${s.to}, stopped for rollback (restart policy no)`;
      case 'restoring':
        return `${s.target.name} restart policy ${s.restart.name}`;
    }
  })();
  return `${VERB[s.step].padEnd(8)} ${what}`;
}

/** The numbered steps of a replace or rename (and a replace's rollback), indented under its line. */
export function formatSteps(op: Operation): string[] {
  if (op.kind !== 'replace-service' && op.kind !== 'rename-service' && op.kind !== 'rollback-service') return [];
  const newName = op.kind === 'replace-service' ? op.tempName : op.kind === 'rollback-service' ? op.targetName : op.currentName;
  const out = op.steps.map((s, i) => `    ${String(i + 1).padStart(2)}. ${formatStep(s, newName)}`);
  if (op.kind === 'replace-service' && op.rollback.length > 0) {
    out.push(`    on failure up to the switch: remove ${op.tempName}, then ${op.rollback.map((s) => formatStep(s, newName).replace(/\s+/, ' ')).join(', ')}`);
  }
  if (op.kind === 'rollback-service' && op.rollback.length > 0) {
    out.push(`    on failure up to the switch: ${op.rollback.map((s) => formatStep(s, newName).replace(/\s+/, ' ')).join(', ')}`);
  }
  return out;
}

const isService = (op: Operation) =>
  op.kind === 'create-service' ||
  op.kind === 'update-service' ||
  op.kind === 'replace-service' ||
  op.kind === 'rename-service' ||
  op.kind === 'rollback-service' ||
  op.kind === 'start-service' ||
  op.kind === 'remove-service' ||
  op.kind === 'create-swarm-service' ||
  op.kind === 'update-swarm-service' ||
  op.kind === 'remove-swarm-service' ||
  op.kind === 'rollback-swarm-service';

/** A rollback pin: `= pinned  api  pinned by rollback to generation 4 (waffle rollback --release api)`. */
export function formatPin(p: PinLine): string {
  return p.state === 'held' ? line('=', 'pinned', p.service, p.detail) : line('~', 'unpin', p.service, p.detail);
}

/**
 * The plan as text: service operations first (in plan order), then images, networks and volumes,
 * then how many services need nothing. With `steps` (the full diff, the default), each replace and
 * rename lists its steps under its line.
 */
export function formatPlan(plan: Plan, opts: { steps?: boolean } = {}): string {
  const withSteps = opts.steps ?? true;
  const lines = [
    ...plan.operations.filter(isService).flatMap((op) => [formatOperation(op), ...(withSteps ? formatSteps(op) : [])]),
    ...plan.operations.filter((op) => !isService(op)).map(formatOperation),
    // A dropped pin is said by the cause of its service's operation when there is one.
    ...(plan.pins ?? []).filter((p) => p.state === 'held' || !plan.operations.some((o) => 'service' in o && o.service === p.service && o.causes.some((c) => c.kind === 'pin'))).map(formatPin),
  ];
  if (lines.length === 0) lines.push('no changes');
  lines.push(`${plan.unchanged.length} unchanged`);
  return lines.join('\n') + '\n';
}
