/** Dependency order of services and dependency cycles, from the `dependsOn` edges the graph collected. */
import type { LoadedService, Problem } from '../model.ts';

/** One `dependsOn` entry: the service depended on, and where it is written (`dependsOn[2]`). */
export interface Edge {
  to: string;
  where: string;
}

/** Byte-order comparison (stable across locales), for every sorted list in the graph. */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Dependencies first; among services that are ready at the same time, by name. */
export function topoOrder(deps: Map<string, Edge[]>): string[] {
  const remaining = new Map<string, Set<string>>();
  for (const [n, es] of deps) remaining.set(n, new Set(es.map((e) => e.to)));
  const order: string[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, ds]) => ds.size === 0).map(([n]) => n).sort(cmp);
    if (ready.length === 0) break; // cycles are reported before this runs
    const next = ready[0];
    order.push(next);
    remaining.delete(next);
    for (const ds of remaining.values()) ds.delete(next);
  }
  return order;
}

/** Each dependency cycle once (Tarjan's strongly connected components), listed from its smallest name. */
export function findCycles(deps: Map<string, Edge[]>, byName: Map<string, LoadedService>): Problem[] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const sccs: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const e of deps.get(v) ?? []) {
      if (!deps.has(e.to)) continue;
      if (!idx.has(e.to)) {
        strong(e.to);
        low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
      } else if (onStack.has(e.to)) low.set(v, Math.min(low.get(v)!, idx.get(e.to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) sccs.push(comp);
    }
  };
  for (const n of [...deps.keys()].sort(cmp)) if (!idx.has(n)) strong(n);

  const problems: Problem[] = [];
  for (const comp of sccs.sort((a, b) => cmp([...a].sort(cmp)[0], [...b].sort(cmp)[0]))) {
    const inComp = new Set(comp);
    const start = [...comp].sort(cmp)[0];
    // Shortest path start → … → start inside the component (BFS, neighbours by name).
    const parent = new Map<string, string>();
    const queue = [start];
    const seen = new Set([start]);
    let last: string | undefined;
    while (queue.length && last === undefined) {
      const v = queue.shift()!;
      const next = (deps.get(v) ?? []).map((e) => e.to).filter((t) => inComp.has(t)).sort(cmp);
      for (const t of next) {
        if (t === start) {
          last = v;
          break;
        }
        if (!seen.has(t)) {
          seen.add(t);
          parent.set(t, v);
          queue.push(t);
        }
      }
    }
    const cycle: string[] = [];
    for (let v: string | undefined = last; v !== undefined; v = parent.get(v)) cycle.unshift(v);
    cycle.push(start);
    const firstEdge = (deps.get(start) ?? []).find((e) => e.to === cycle[1]);
    const files = cycle.slice(0, -1).map((n) => `${n} in ${byName.get(n)?.file}`).join(', ');
    problems.push({
      file: byName.get(start)!.file,
      service: start,
      ...(firstEdge ? { where: firstEdge.where } : {}),
      message: `dependency cycle: ${cycle.join(' → ')} (${files})`,
      fix: 'remove one of these dependsOn entries; to let services reach each other without a start order, use `connects`',
    });
  }
  return problems;
}
