/**
 * The Swarm target: each service is a Swarm service, deployed through one manager (the project's
 * Docker host). Observe, plan, bind, execute and destroy as the interface says (see spec.ts for what a
 * service becomes there).
 */
import type { Target } from '../target.ts';
import { destroySwarm } from './destroy.ts';
import { executeSwarm } from './execute.ts';
import { observeSwarm } from './observe.ts';
import { reconcileSwarm } from './reconcile.ts';
import { bindSwarmSecrets, secretFileDigests } from './secrets.ts';

export const swarmTarget: Target = {
  name: 'swarm',
  observe: (docker, graph, opts) =>
    observeSwarm(docker, graph.project, opts.desired?.ingress?.container ? { container: opts.desired.ingress.container, configFile: graph.configFile } : undefined),
  planInputs: async (graph, secrets, commit, opts) => ({
    commit,
    ...(secrets ? secrets.hashInputs() : {}),
    secretFileDigests: await secretFileDigests(graph, secrets, opts.env),
  }),
  plan: (graph, observed, inputs) => reconcileSwarm(graph, observed, inputs),
  bind: (graph, plan, _observed, secrets) => bindSwarmSecrets(graph, plan, secrets),
  execute: (docker, plan, emit, opts) => executeSwarm(docker, plan, emit, opts),
  destroy: (docker, project, opts, emit) => destroySwarm(docker, project, opts, emit),
  status: (docker, graph) => observeSwarm(docker, graph.project),
};
