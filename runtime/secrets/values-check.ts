/**
 * Whether the secret values the services use are set, for `waffle check`: read-only, and never a value
 * in what it returns. Each backend is checked only when it can be: the embedded store when an identity
 * can decrypt it, Vault when it answers and accepts our credentials; otherwise the report says why it
 * was not checked. Nothing is written or issued: keys that apply would generate count as set, Vault KV
 * is only read, and dynamic credentials (database, aws) are left to apply, which issues them.
 */
import type { Problem, ServiceGraph } from '../model.ts';
import { isDynamic, missingMessage, secretsUsedBy } from './session.ts';
import { ProviderRegistry } from './registry.ts';

type Env = Record<string, string | undefined>;

export interface SecretValuesReport {
  /** Secrets whose used keys all have a value (or will be generated at apply), by name. */
  set: string[];
  /** Keys that apply generates because they have no value yet. */
  generated: Array<{ secret: string; key: string }>;
  /** Secrets not checked, with the reason (no identity, Vault unreachable…). */
  notChecked: Array<{ secrets: string[]; provider: string; reason: string }>;
  /** Dynamic credentials: issued per service at apply, nothing to check before. */
  issuedAtApply: string[];
  /** Used keys without a value, per secret: the same problems plan reports. */
  problems: Problem[];
}

/** The first sentence of an error message: the reason, without the advice the caller words itself. */
const reasonOf = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

export async function checkSecretValues(graph: ServiceGraph, opts: { env: Env; registry?: ProviderRegistry }): Promise<SecretValuesReport> {
  const report: SecretValuesReport = { set: [], generated: [], notChecked: [], issuedAtApply: [], problems: [] };
  const decls = graph.secrets ?? {};
  const needed = new Map<string, Set<string>>();
  for (const svc of Object.values(graph.services)) {
    for (const [secret, keys] of secretsUsedBy(svc)) {
      const s = needed.get(secret) ?? new Set<string>();
      for (const k of keys) s.add(k);
      needed.set(secret, s);
    }
  }
  const names = [...needed.keys()].filter((n) => decls[n]).sort();
  if (names.length === 0) return report;
  const registry = opts.registry ?? new ProviderRegistry(graph, opts.env);

  // One backend at a time: one that cannot be reached marks its secrets not checked, the others go on.
  const byKind = new Map<string, string[]>();
  for (const n of names) {
    if (isDynamic(decls[n]!)) {
      report.issuedAtApply.push(n);
      continue;
    }
    byKind.set(decls[n]!.provider, [...(byKind.get(decls[n]!.provider) ?? []), n]);
  }
  for (const [kind, secrets] of [...byKind].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let provider;
    try {
      provider = await registry.kind(kind as 'embedded' | 'vault');
      await provider.check();
    } catch (e) {
      report.notChecked.push({ secrets, provider: kind, reason: reasonOf(e) });
      continue;
    }
    for (const name of secrets) {
      const decl = decls[name]!;
      const used = needed.get(name)!;
      try {
        if (provider.readStored) {
          const stored = await provider.readStored(decl);
          const generate = stored.missing.filter((k) => decl.generate?.[k] && used.has(k));
          const absent = stored.missing.filter((k) => !decl.generate?.[k] && used.has(k));
          for (const k of generate) report.generated.push({ secret: name, key: k });
          if (absent.length) {
            report.problems.push({ file: stored.location, message: missingMessage(graph, name, absent), fix: stored.howToSet(absent) });
            continue;
          }
        } else {
          // A store that generates on read (Vault KV, with check-and-set) is asked only for the keys it
          // does not generate, so checking never writes; a missing key fails with the command that sets it.
          const keys = [...used].filter((k) => !decl.generate?.[k]).sort();
          const { generate: _generated, ...readOnly } = decl;
          try {
            if (keys.length) await provider.resolve({ ...readOnly, keys }, { project: graph.project, service: '*', root: graph.root });
          } catch (e) {
            const m = /^([\s\S]*?has no (?:keys? [\s\S]*?|secret) at [\s\S]*?)\.?\s*Fix:\s*([\s\S]*)$/.exec(reasonOf(e));
            if (!m) throw e;
            report.problems.push({ file: graph.configFile, where: `secrets.${name}`, message: m[1]!, fix: m[2]! });
            continue;
          }
        }
        report.set.push(name);
      } catch (e) {
        // Could not be read with what we have (not a recipient of this file, no permission in Vault).
        report.notChecked.push({ secrets: [name], provider: kind, reason: reasonOf(e) });
      }
    }
  }
  return report;
}
