/**
 * Picks the provider of a declared secret by `decl.provider`: `embedded` (embedded.ts) or `vault`
 * (vault.ts, loaded lazily so a project without Vault never loads node-vault). One instance per kind
 * per registry: Vault's provider remembers what it issued in one apply (a key pair comes from one lease).
 */
import type { ServiceGraph } from '../model.ts';
import { EmbeddedProvider } from './embedded.ts';
import type { SecretDecl, SecretProvider } from './provider.ts';

type Env = Record<string, string | undefined>;

export class ProviderRegistry {
  private readonly made = new Map<string, Promise<SecretProvider>>();

  constructor(
    private readonly graph: Pick<ServiceGraph, 'root' | 'vault' | 'configFile'>,
    private readonly env: Env = process.env,
  ) {}

  /** The provider for `decl`. */
  for(decl: Pick<SecretDecl, 'provider' | 'name'>): Promise<SecretProvider> {
    return this.kind(decl.provider, decl.name);
  }

  kind(kind: SecretDecl['provider'], forSecret?: string): Promise<SecretProvider> {
    let p = this.made.get(kind);
    if (!p) {
      p = this.create(kind, forSecret);
      this.made.set(kind, p);
      p.catch(() => this.made.delete(kind));
    }
    return p;
  }

  /** Providers created so far. */
  async created(): Promise<SecretProvider[]> {
    return Promise.all(this.made.values());
  }

  private async create(kind: SecretDecl['provider'], forSecret?: string): Promise<SecretProvider> {
    if (kind === 'embedded') return new EmbeddedProvider(this.graph.root, this.env);
    if (kind === 'vault') {
      const v = this.graph.vault;
      if (!v) {
        throw new Error(
          `secret${forSecret ? ` "${forSecret}"` : ''} comes from Vault, but ${this.graph.configFile} configures no vault: ` +
            "add vault: { address: 'https://…:8200', auth: { token: { env: 'VAULT_TOKEN' } } } to defineConfig",
        );
      }
      let mod: typeof import('./vault.ts');
      try {
        mod = await import('./vault.ts');
      } catch (e) {
        throw new Error(`the Vault provider could not be loaded (${(e as Error).message}); secrets from Vault cannot be resolved`);
      }
      return mod.createVaultProvider({
        address: v.address,
        ...(v.namespace !== undefined ? { namespace: v.namespace } : {}),
        auth: v.auth.method === 'token' ? { method: 'token', tokenEnv: v.auth.tokenEnv } : { method: 'approle', roleId: v.auth.roleId, secretIdEnv: v.auth.secretIdEnv, mount: v.auth.mount },
        renewFraction: v.renewFraction,
        env: this.env,
      });
    }
    throw new Error(`unknown secret provider ${JSON.stringify(kind)}`);
  }
}
