/**
 * Registry credentials for the agent's tag poll, read from the project's secrets as `updates.registries`
 * names them (`{ username: 'bot' | secrets.x.user, password: secrets.x.token }`). Values stay in memory.
 */
import type { SecretKeySpec, ServiceGraph } from '../model.ts';
import { ProviderRegistry } from '../secrets/registry.ts';
import { normalizeRegistry } from './reference.ts';

/** The credentials for `host`, or undefined when the project names none (anonymous access). */
export async function registryCredentials(
  graph: ServiceGraph,
  host: string,
  env: Record<string, string | undefined>,
): Promise<{ username: string; password: string } | undefined> {
  const entry = Object.entries(graph.updates?.registries ?? {}).find(([h]) => normalizeRegistry(h) === normalizeRegistry(host))?.[1];
  if (!entry) return undefined;
  const providers = new ProviderRegistry(graph, env);
  const read = async (k: SecretKeySpec): Promise<string> => {
    const decl = graph.secrets?.[k.secret];
    if (!decl) throw new Error(`secret "${k.secret}" named in updates.registries.${host} is not declared in ${graph.configFile}`);
    const provider = await providers.for(decl);
    const values = provider.readStored ? (await provider.readStored(decl)).values : (await provider.resolve(decl, { project: graph.project, service: '*', root: graph.root })).values;
    const v = values[k.key];
    if (v === undefined) throw new Error(`secret ${k.secret}.${k.key} (updates.registries.${host}) has no value. Fix: waffle secrets set ${k.secret}.${k.key}`);
    return v;
  };
  const username = typeof entry.username === 'string' ? entry.username : await read(entry.username);
  return { username, password: await read(entry.password) };
}
