/**
 * The human plan text (compose's `plan.String()`): one line per operation, no colours, stable enough
 * for golden files. Causes name what changed, never a value.
 */
import type { Operation, Plan } from '../model.ts';

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
    if (op.kind === 'create-service') counts.create++;
    else if (op.kind === 'update-service') counts.update++;
    else if (op.kind === 'replace-service') counts.replace++;
    else if (op.kind === 'remove-service') counts.remove++;
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
  }
}

const isService = (op: Operation) =>
  op.kind === 'create-service' ||
  op.kind === 'update-service' ||
  op.kind === 'replace-service' ||
  op.kind === 'start-service' ||
  op.kind === 'remove-service';

/**
 * The plan as text: service operations first (in plan order), then images, networks and volumes,
 * then how many services need nothing.
 */
export function formatPlan(plan: Plan): string {
  const lines = [
    ...plan.operations.filter(isService).map(formatOperation),
    ...plan.operations.filter((op) => !isService(op)).map(formatOperation),
  ];
  if (lines.length === 0) lines.push('no changes');
  lines.push(`${plan.unchanged.length} unchanged`);
  return lines.join('\n') + '\n';
}
