/** @jsxImportSource . */
/**
 * The plan as a grouped diff: `+` create, `-/+` replace (with its cause and strategy), `~` update in
 * place, `-` remove, unchanged folded into a count. `full` adds every field and infrastructure line.
 */
import type { Plan } from '../../runtime/model.ts';
import { planLines } from '../render/plan.ts';
import { Lines } from './Lines.tsx';

export function PlanView({ plan, full = false, width }: { plan: Plan; full?: boolean; width: number }) {
  return <Lines lines={planLines(plan, { full, columns: width })} />;
}

