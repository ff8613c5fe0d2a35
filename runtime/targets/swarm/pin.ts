/**
 * Rollback pins on Swarm, as the Swarm planner reads them. PURE. A service rolled back by `waffle
 * rollback` (Swarm's own rollback to its previous spec) is left alone by later plans while its definition
 * in the repository is the one it was pinned under and the service still carries the config-hash label
 * of the spec it went back to; otherwise the pin is dropped and the plan says why.
 */
import type { Cause, ObservedSwarmService, PinLine, ServiceGraph, ServiceSpec } from '../../model.ts';
import type { PinInput } from '../../plan/reconcile.ts';
import { swarmHashes, swarmServiceBody } from './spec.ts';

/**
 * The hash of a service's definition on Swarm as the repository states it: its Swarm spec without secret
 * values, secret versions or commit. A new commit that changes the service changes it; a rotated secret
 * or a commit elsewhere in the repository does not.
 */
export function swarmDefinitionHash(graph: ServiceGraph, svc: ServiceSpec): string {
  return swarmHashes(swarmServiceBody(graph, svc), undefined).hash;
}

/** `waffle-test/app:1, commit 0a1b2c3d4e5f`. */
export const specText = (s: { image: string; commit: string }) => `${s.image}, commit ${s.commit ? s.commit.slice(0, 12) : 'unknown'}`;

/**
 * What the Swarm planner does with a service's pin: hold it (the service is left alone) while the
 * definition is the one it was pinned under and the service still runs the spec it was rolled back to;
 * otherwise drop it, with the cause the service's operation carries. Undefined when there is no pin.
 */
export function swarmPinState(
  graph: ServiceGraph,
  svc: ServiceSpec,
  existing: ObservedSwarmService | undefined,
  pin: PinInput | undefined,
): { held: true; line: PinLine } | { held: false; line: PinLine; cause: Cause } | undefined {
  if (!pin) return undefined;
  const to = pin.swarm ? `the previous spec (${specText(pin.swarm)})` : `generation ${pin.generation}`;
  const why = !pin.swarm
    ? 'it was pinned on the single engine'
    : swarmDefinitionHash(graph, svc) !== pin.definitionHash
      ? 'the definition changed since the rollback'
      : !existing
        ? 'the Swarm service is gone'
        : existing.configHash !== pin.swarm.configHash
          ? 'the service no longer runs the spec it was rolled back to'
          : undefined;
  if (!why) {
    return { held: true, line: { service: svc.name, generation: pin.generation, state: 'held', detail: `pinned by rollback to ${to} (waffle rollback --release ${svc.name})` } };
  }
  const detail = `pin to ${to} dropped: ${why}`;
  return { held: false, line: { service: svc.name, generation: pin.generation, state: 'dropped', detail }, cause: { kind: 'pin', detail } };
}
