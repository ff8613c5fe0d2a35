/** Dependency order of services and dependency cycles, from the `dependsOn` edges the graph collected. */
import type { LoadedService, Problem } from '../model.ts';

/** One `dependsOn` entry: the service depended on, and where it is written (`dependsOn[2]`). */
export interface Edge {
  to: string;
  where: string;
}

/** Byte-order comparison (stable across locales), for every sorted list in the graph. */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Dependencies first; among services that are ready at the same time, by name. Kahn's algorithm with the
 * ready services in a heap (by name): O(E + n log n). A service that depends on one not in `deps`, or on
 * itself, never becomes ready and is left out (cycles and unknown services are reported before this runs).
 */
export function topoOrder(deps: Map<string, Edge[]>): string[] {
  /** How many distinct services each one still waits for, and who waits for each. */
  const waiting = new Map<string, number>();
  const dependants = new Map<string, string[]>();
  const ready = new NameHeap();
  for (const [n, es] of deps) {
    const on = new Set(es.map((e) => e.to));
    waiting.set(n, on.size);
    for (const to of on) {
      const list = dependants.get(to);
      if (list) list.push(n);
      else dependants.set(to, [n]);
    }
    if (on.size === 0) ready.push(n);
  }
  const order: string[] = [];
  for (let next = ready.pop(); next !== undefined; next = ready.pop()) {
    order.push(next);
    for (const d of dependants.get(next) ?? []) {
      const left = waiting.get(d)! - 1;
      waiting.set(d, left);
      if (left === 0) ready.push(d);
    }
  }
  return order;
}

/** A binary min-heap of names in `cmp` order. */
class NameHeap {
  readonly #a: string[] = [];

  push(x: string): void {
    const a = this.#a;
    let i = a.push(x) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (cmp(a[p]!, x) <= 0) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }

  pop(): string | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= a.length) break;
        const c = l + 1 < a.length && cmp(a[l + 1]!, a[l]!) < 0 ? l + 1 : l;
        if (cmp(a[c]!, last) >= 0) break;
        a[i] = a[c]!;
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
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
