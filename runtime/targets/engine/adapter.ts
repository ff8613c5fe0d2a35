/**
 * The single-engine target: each service is one container on one Docker engine. A thin adapter over
 * docker/observe.ts, plan/reconcile.ts, apply/bind.ts, apply/executor.ts and docker/destroy.ts.
 */
import { bindSecrets } from '../../apply/bind.ts';
import { execute } from '../../apply/executor.ts';
import { destroyProject } from '../../docker/destroy.ts';
import { observe } from '../../docker/observe.ts';
import { reconcile } from '../../plan/reconcile.ts';
import type { Target } from '../target.ts';

export const engineTarget: Target = {
  name: 'engine',
  observe: (docker, graph, opts) =>
    observe(docker, graph.project, {
      ...(opts.desired ? { desired: opts.desired } : {}),
      ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
      ...(opts.pull ? { pull: opts.pull } : {}),
    }),
  planInputs: async (_graph, secrets, commit) => ({ commit, ...(secrets ? secrets.hashInputs() : {}) }),
  plan: (graph, observed, inputs) => reconcile(graph, observed, inputs),
  bind: (graph, plan, observed, secrets, opts) => bindSecrets(graph, plan, observed, secrets, opts),
  execute: (docker, plan, emit, opts) => execute(docker, plan, emit, opts),
  destroy: (docker, project, opts, emit) => destroyProject(docker, project, opts, emit),
  status: (docker, graph) => observe(docker, graph.project),
};
