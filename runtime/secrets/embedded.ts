/**
 * The embedded provider: secrets from the repository's age-encrypted store (store.ts). Static values:
 * no leases. Generated keys that have no value yet are NOT created here (the session generates them in
 * memory at plan time and the bind step stores them at apply time), so `resolve` reports them missing.
 */
import type { ResolveContext, ResolvedSecret, SecretDecl, SecretProvider, StoredValues } from './provider.ts';
import { SecretStore } from './store.ts';

/** A declared key that has no value in the store. */
export class MissingSecretError extends Error {
  constructor(
    readonly secret: string,
    readonly keys: string[],
    readonly file: string,
  ) {
    super(
      `secret "${secret}" has no value for ${keys.map((k) => `"${k}"`).join(', ')} in ${file}: ` +
        keys.map((k) => `\`waffle secrets set ${secret}.${k}\``).join(', ') +
        ' (the value is read from stdin or a hidden prompt)',
    );
    this.name = 'MissingSecretError';
  }
}

export class EmbeddedProvider implements SecretProvider {
  readonly kind = 'embedded' as const;
  readonly store: SecretStore;

  constructor(root: string, env: Record<string, string | undefined> = process.env) {
    this.store = new SecretStore(root, env);
  }

  /** The identity must be available; nothing to reach over the network. */
  async check(): Promise<void> {
    this.store.checkIdentity();
  }

  /** Values of the declared keys that have one; `missing` lists the others. */
  async read(decl: SecretDecl): Promise<{ values: Record<string, string>; missing: string[] }> {
    const stored = (await this.store.read(decl.name)) ?? {};
    const values: Record<string, string> = {};
    const missing: string[] = [];
    for (const k of decl.keys) {
      if (stored[k] !== undefined) values[k] = stored[k]!;
      else missing.push(k);
    }
    return { values, missing };
  }

  async resolve(decl: SecretDecl, _ctx?: ResolveContext): Promise<ResolvedSecret> {
    const { values, missing } = await this.read(decl);
    if (missing.length > 0) throw new MissingSecretError(decl.name, missing, this.store.relFile(decl.name));
    return { values };
  }

  async readStored(decl: SecretDecl): Promise<StoredValues> {
    const { values, missing } = await this.read(decl);
    return {
      values,
      missing,
      location: this.store.relFile(decl.name),
      howToSet: (keys) => keys.map((k) => `printf %s "$VALUE" | waffle secrets set ${decl.name}.${k}`).join('; ') + ' (or run it in a terminal to be prompted)',
    };
  }

  async storeGenerated(decl: SecretDecl, generated: Record<string, string>): Promise<void> {
    const secret = decl.name;
    const current = (await this.store.read(secret)) ?? {};
    const fill: Record<string, string> = {};
    for (const [k, v] of Object.entries(generated)) if (current[k] === undefined) fill[k] = v;
    if (Object.keys(fill).length !== Object.keys(generated).length) {
      throw new Error(`secrets/${secret}.age changed since the plan was made (a generated key now has a value); run the command again`);
    }
    await this.store.write(secret, { ...current, ...fill });
  }
}
