/** Picks the target of a project by its graph's `target` (absent: the single engine). */
import type { ServiceGraph } from '../model.ts';
import { engineTarget } from './engine/adapter.ts';
import { swarmTarget } from './swarm/adapter.ts';
import type { Target } from './target.ts';

export function targetFor(graph: Pick<ServiceGraph, 'target'>): Target {
  return graph.target === 'swarm' ? swarmTarget : engineTarget;
}
