/**
 * The embedded secret store: age-encrypted files committed in the source-of-truth repository, so git
 * stays the single source of truth for secrets too.
 *
 * Layout, under `<repo>/secrets/`:
 * - `recipients.txt`: the age public keys (`age1…`) files are encrypted to, one a line (`#` comments);
 * - `<name>.age`: one file per declared secret, ASCII-armored age, whose plaintext is a JSON object
 *   `{ "<key>": "<value>" }`. Standard age: `age -d -i key.txt secrets/db.age` reads it too.
 *
 * The identity (private key) never lives in the repository: `WAFFLE_AGE_IDENTITY` (the key itself),
 * else the file `WAFFLE_AGE_IDENTITY_FILE`, else `~/.config/wafflemaker/age.key` (age-keygen format).
 * Uses `age-encryption` (typage, by the age authors); only X25519 keys, which every age tool reads.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** age-encryption, imported when a secret is first read or written (a run without secrets never loads it). */
const age = () => import('age-encryption');
import { assertOutsideRepo, writeFileAtomic } from './state.ts';

type Env = Record<string, string | undefined>;

export const STORE_DIR = 'secrets';
export const RECIPIENTS_FILE = 'recipients.txt';
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const RECIPIENT_RE = /^age1[0-9a-z]{20,}$/;

/** Where the identity comes from, for messages: `$WAFFLE_AGE_IDENTITY` or a file path. */
export interface IdentitySource {
  kind: 'env' | 'file';
  /** `WAFFLE_AGE_IDENTITY` or the file's path. */
  where: string;
}

/** The identity file used when neither environment variable is set. */
export function defaultIdentityFile(env: Env = process.env): string {
  const base = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(base, 'wafflemaker', 'age.key');
}

export function identitySource(env: Env = process.env): IdentitySource {
  if (env.WAFFLE_AGE_IDENTITY) return { kind: 'env', where: 'WAFFLE_AGE_IDENTITY' };
  return { kind: 'file', where: env.WAFFLE_AGE_IDENTITY_FILE ? path.resolve(env.WAFFLE_AGE_IDENTITY_FILE) : defaultIdentityFile(env) };
}

function parseIdentities(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('AGE-SECRET-KEY-'));
}

/** The identities (private keys) of this deployer; throws a message saying how to get one when none is found. */
export function loadIdentities(env: Env = process.env): string[] {
  const src = identitySource(env);
  let text: string;
  if (src.kind === 'env') text = env.WAFFLE_AGE_IDENTITY ?? '';
  else {
    try {
      text = fs.readFileSync(src.where, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(
          `no age identity at ${src.where}: run \`waffle secrets init\` to create one (or set WAFFLE_AGE_IDENTITY_FILE to your key file, ` +
            'or WAFFLE_AGE_IDENTITY to the key itself)',
        );
      }
      throw new Error(`cannot read the age identity at ${src.where}: ${(e as Error).message}`);
    }
  }
  const ids = parseIdentities(text);
  if (ids.length === 0) {
    throw new Error(`${src.kind === 'env' ? 'WAFFLE_AGE_IDENTITY' : src.where} holds no age identity (a line starting with AGE-SECRET-KEY-1)`);
  }
  return ids;
}

/** Throws when the identity file (not `WAFFLE_AGE_IDENTITY`) lies inside the repository `root`. */
export function checkIdentityOutside(root: string, env: Env = process.env): void {
  const src = identitySource(env);
  if (src.kind !== 'file') return;
  assertOutsideRepo(src.where, root, 'the age identity (private key)', 'move it out (for example to ~/.config/wafflemaker/age.key) and point WAFFLE_AGE_IDENTITY_FILE at it');
}

/** Creates an identity file (mode 0600, age-keygen format) unless one exists. Returns its public key and whether it was created. */
export async function ensureIdentityFile(file: string): Promise<{ recipient: string; created: boolean }> {
  if (fs.existsSync(file)) {
    const ids = parseIdentities(fs.readFileSync(file, 'utf8'));
    if (ids.length === 0) throw new Error(`${file} exists but holds no age identity; move it away or fix it`);
    return { recipient: await (await age()).identityToRecipient(ids[0]!), created: false };
  }
  const { generateX25519Identity, identityToRecipient } = await age();
  const id = await generateX25519Identity();
  const recipient = await identityToRecipient(id);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${id}\n`;
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, text);
  } finally {
    fs.closeSync(fd);
  }
  return { recipient, created: true };
}

/** Public keys of identities. */
export async function recipientsOf(identities: string[]): Promise<string[]> {
  const { identityToRecipient } = await age();
  return Promise.all(identities.map((i) => identityToRecipient(i)));
}

export function checkSecretName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`secret name ${JSON.stringify(name)} is not valid: use letters, digits, _ and -, starting with a letter`);
}

export function checkRecipient(r: string): void {
  if (!RECIPIENT_RE.test(r)) throw new Error(`${JSON.stringify(r)} is not an age public key (age1…)`);
}

export class SecretStore {
  readonly dir: string;
  readonly recipientsFile: string;
  private identities: string[] | undefined;

  constructor(
    readonly root: string,
    private readonly env: Env = process.env,
  ) {
    this.dir = path.join(root, STORE_DIR);
    this.recipientsFile = path.join(this.dir, RECIPIENTS_FILE);
  }

  /** `secrets/<name>.age` relative to the repository root (for messages). */
  relFile(name: string): string {
    return `${STORE_DIR}/${name}.age`;
  }

  fileOf(name: string): string {
    checkSecretName(name);
    return path.join(this.dir, `${name}.age`);
  }

  hasRecipients(): boolean {
    return fs.existsSync(this.recipientsFile);
  }

  /** The recipients (public keys) files are encrypted to. */
  recipients(): string[] {
    let text: string;
    try {
      text = fs.readFileSync(this.recipientsFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`no ${STORE_DIR}/${RECIPIENTS_FILE} in ${this.root}: run \`waffle secrets init\` first`);
      }
      throw e;
    }
    const out = text
      .split(/\r?\n/)
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    for (const r of out) checkRecipient(r);
    if (out.length === 0) throw new Error(`${STORE_DIR}/${RECIPIENTS_FILE} lists no recipient: add one with \`waffle secrets recipients add age1…\``);
    return out;
  }

  /** Adds a recipient to the recipients file (does not re-encrypt: run {@link rekey}). False when already listed. */
  addRecipient(recipient: string, comment?: string): boolean {
    checkRecipient(recipient);
    fs.mkdirSync(this.dir, { recursive: true });
    const existing = fs.existsSync(this.recipientsFile) ? fs.readFileSync(this.recipientsFile, 'utf8') : '';
    const listed = existing.split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim());
    if (listed.includes(recipient)) return false;
    const head = existing === '' ? '# age public keys that can decrypt secrets/*.age (one a line). After a change: waffle secrets rekey\n' : '';
    const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
    fs.writeFileSync(this.recipientsFile, `${existing}${sep}${head}${comment ? `# ${comment}\n` : ''}${recipient}\n`);
    return true;
  }

  /** Names of the secrets that have a file. */
  names(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.age'))
      .map((f) => f.slice(0, -4))
      .filter((n) => NAME_RE.test(n))
      .sort();
  }

  has(name: string): boolean {
    return fs.existsSync(this.fileOf(name));
  }

  private ids(): string[] {
    if (!this.identities) checkIdentityOutside(this.root, this.env);
    this.identities ??= loadIdentities(this.env);
    return this.identities;
  }

  /** Checks that an identity is available (before any change). */
  checkIdentity(): void {
    this.ids();
  }

  /** The values of one secret; undefined when it has no file yet. Throws when it cannot be decrypted. */
  async read(name: string): Promise<Record<string, string> | undefined> {
    const file = this.fileOf(name);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const { armor, Decrypter } = await age();
    const d = new Decrypter();
    for (const id of this.ids()) d.addIdentity(id);
    let plain: string;
    try {
      const bytes = text.startsWith('-----BEGIN AGE ENCRYPTED FILE-----') ? armor.decode(text) : new Uint8Array(fs.readFileSync(file));
      plain = await d.decrypt(bytes, 'text');
    } catch (e) {
      const src = identitySource(this.env);
      const mine = await recipientsOf(this.ids()).catch(() => []);
      throw new Error(
        `cannot decrypt ${this.relFile(name)} with the identity from ${src.where} (${(e as Error).message}). ` +
          `If the file was not encrypted to your key (${mine.join(', ')}), someone who can decrypt it must run ` +
          `\`waffle secrets recipients add ${mine[0] ?? 'age1…'}\` and \`waffle secrets rekey\`.`,
      );
    }
    let data: unknown;
    try {
      data = JSON.parse(plain);
    } catch {
      throw new Error(`${this.relFile(name)} decrypts, but not to a JSON object of key → value; re-create it with \`waffle secrets set ${name}.<key>\``);
    }
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error(`${this.relFile(name)} does not hold a JSON object of key → value`);
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
    return out;
  }

  /** Encrypts `values` to the current recipients into `secrets/<name>.age` (atomically). */
  async write(name: string, values: Record<string, string>): Promise<void> {
    const file = this.fileOf(name);
    const { armor, Encrypter } = await age();
    const e = new Encrypter();
    for (const r of this.recipients()) e.addRecipient(r);
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(values).sort()) sorted[k] = values[k]!;
    const bytes = await e.encrypt(JSON.stringify(sorted, null, 2) + '\n');
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(file, armor.encode(bytes), 0o644);
  }

  /**
   * Sets some keys of a secret (others kept). When every key already holds the given value the file is
   * left untouched (age encryption is randomised: writing it again would be a change in git with no
   * change in value). Returns whether the file was written.
   */
  async update(name: string, patch: Record<string, string>): Promise<boolean> {
    const stored = await this.read(name);
    const current = stored ?? {};
    if (stored !== undefined && Object.entries(patch).every(([k, v]) => current[k] === v)) return false;
    await this.write(name, { ...current, ...patch });
    return true;
  }

  /** Removes a whole secret (`key` undefined) or one key. False when there was nothing to remove. */
  async remove(name: string, key?: string): Promise<boolean> {
    const file = this.fileOf(name);
    if (!fs.existsSync(file)) return false;
    if (key === undefined) {
      fs.rmSync(file);
      return true;
    }
    const current = (await this.read(name)) ?? {};
    if (!(key in current)) return false;
    delete current[key];
    await this.write(name, current);
    return true;
  }

  /** Re-encrypts every secret file to the current recipients. Returns the names re-encrypted. */
  async rekey(): Promise<string[]> {
    this.recipients(); // fail before touching anything
    const names = this.names();
    const all = new Map<string, Record<string, string>>();
    for (const n of names) all.set(n, (await this.read(n)) ?? {});
    for (const [n, values] of all) await this.write(n, values);
    return names;
  }
}
