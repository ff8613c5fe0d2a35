/**
 * `waffle secrets …`: the embedded, age-encrypted store in the repository (`secrets/*.age`).
 *
 *   init                     create your identity (if missing) and add its public key to secrets/recipients.txt
 *   set NAME[.KEY]           value from stdin or a hidden prompt — never from the command line
 *   get NAME.KEY             print one value on stdout (only when asked)
 *   list [--json]            names and keys, never values
 *   rm NAME[.KEY]            remove a secret or one key
 *   generate [NAME[.KEY]]    create declared `generate` values that are missing (--force: new values)
 *   rekey                    re-encrypt every file for the recipients in secrets/recipients.txt
 *   recipients add|list      manage who can decrypt
 *
 * Messages go to stderr; only `get` (and `list --json`) write to stdout. Heavy modules load lazily.
 */
import type { Command } from 'commander';
import path from 'node:path';

const err = (line: string) => process.stderr.write(line + '\n');

function rootOf(cmd: Command): string {
  const g = cmd.optsWithGlobals() as { dir?: string };
  return path.resolve(g.dir ?? process.cwd());
}

function parseRef(ref: string, needKey: boolean): { name: string; key?: string } {
  const m = /^([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_-]*))?$/.exec(ref);
  if (!m) throw new Error(`${JSON.stringify(ref)} is not NAME or NAME.KEY (for example db.password)`);
  if (needKey && m[2] === undefined) throw new Error(`name a key: ${m[1]}.<key>`);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, key: m[2] };
}

type Decls = Record<string, import('../runtime/secrets/provider.ts').SecretDecl>;

/** The declarations of the repository, or undefined (with a warning) when the configuration does not load. */
async function declarations(root: string): Promise<Decls | undefined> {
  try {
    const { loadRepo } = await import('../runtime/load/load.ts');
    const { checkSecretDecls } = await import('../runtime/secrets/validate.ts');
    const repo = await loadRepo(root, {});
    return checkSecretDecls(repo.config.secrets, () => undefined);
  } catch (e) {
    err(`warning: could not load the configuration to check secret names (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a line from the terminal without echoing it. */
function hiddenPrompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (fn: () => void) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      fn();
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(value));
        if (ch === '\u0003') return done(() => reject(new Error('cancelled: nothing was changed')));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readValue(label: string): Promise<string> {
  if (process.stdin.isTTY) {
    const v = await hiddenPrompt(`value for ${label} (hidden): `);
    if (v === '') throw new Error('empty value: nothing was changed');
    return v;
  }
  let v = await readStdin();
  if (v.endsWith('\r\n')) v = v.slice(0, -2);
  else if (v.endsWith('\n')) v = v.slice(0, -1);
  if (v === '') throw new Error(`no value on stdin for ${label}: pipe it in (printf %s "$VALUE" | waffle secrets set ${label}) or run in a terminal to be prompted`);
  return v;
}

export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('the age-encrypted secret store in the repository (secrets/*.age)');

  secrets
    .command('init')
    .description('create your age identity (if missing) and add its public key to secrets/recipients.txt')
    .action(async (_o: unknown, cmd: Command) => {
      const root = rootOf(cmd);
      const store = await import('../runtime/secrets/store.ts');
      const src = store.identitySource();
      let recipient: string;
      if (src.kind === 'env') {
        recipient = (await store.recipientsOf(store.loadIdentities()))[0]!;
        err(`identity: from WAFFLE_AGE_IDENTITY`);
      } else {
        store.checkIdentityOutside(root);
        const r = await store.ensureIdentityFile(src.where);
        recipient = r.recipient;
        err(r.created ? `created identity ${src.where} (mode 0600; keep it safe and out of the repository)` : `identity: ${src.where}`);
      }
      const s = new store.SecretStore(root);
      const added = s.addRecipient(recipient, `added by waffle secrets init on ${new Date().toISOString().slice(0, 10)}`);
      err(`${added ? 'added' : 'already listed'}: ${recipient} in ${path.relative(root, s.recipientsFile)}`);
      err('next: waffle secrets set NAME.KEY (reads the value from stdin or a hidden prompt)');
    });

  secrets
    .command('set')
    .description('set a value (from stdin or a hidden prompt; never from the command line)')
    .argument('<ref>', 'NAME.KEY, or NAME for a secret with one key')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const root = rootOf(cmd);
      let { name, key } = parseRef(ref, false);
      const decls = await declarations(root);
      const decl = decls?.[name];
      if (decls && !decl) throw new Error(`secret "${name}" is not declared in defineSecrets (declared: ${Object.keys(decls).join(', ') || 'none'})`);
      if (decl && decl.provider !== 'embedded') throw new Error(`secret "${name}" comes from ${decl.provider}, not from the embedded store`);
      if (key === undefined) {
        if (!decl || decl.keys.length !== 1) throw new Error(`name the key: ${name}.<key>${decl ? ` (keys: ${decl.keys.join(', ')})` : ''}`);
        key = decl.keys[0]!;
      }
      if (decl && !decl.keys.includes(key)) throw new Error(`secret "${name}" has no key "${key}" (keys: ${decl.keys.join(', ')})`);
      const value = await readValue(`${name}.${key}`);
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(root);
      await s.update(name, { [key]: value });
      err(`set ${name}.${key} in ${s.relFile(name)} (commit it; apply redeploys the services that use it)`);
    });

  secrets
    .command('get')
    .description('print one value on stdout')
    .argument('<ref>', 'NAME.KEY')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const { name, key } = parseRef(ref, true);
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(rootOf(cmd));
      const values = await s.read(name);
      if (!values) throw new Error(`no secret "${name}" in the store (${s.relFile(name)} does not exist)`);
      const v = values[key!];
      if (v === undefined) throw new Error(`secret "${name}" has no value for "${key}" (stored keys: ${Object.keys(values).join(', ') || 'none'})`);
      process.stdout.write(process.stdout.isTTY ? `${v}\n` : v);
    });

  secrets
    .command('list')
    .description('secrets and their keys (never values); declared keys without a value are marked')
    .option('--json', 'print as JSON on stdout')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const root = rootOf(cmd);
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(root);
      const decls = (await declarations(root)) ?? {};
      const rows: Array<{ name: string; provider: string; keys: Array<{ key: string; stored: boolean; declared: boolean; generated: boolean }> }> = [];
      const names = [...new Set([...s.names(), ...Object.keys(decls)])].sort();
      for (const name of names) {
        const decl = decls[name];
        if (decl && decl.provider !== 'embedded') {
          rows.push({ name, provider: decl.provider, keys: decl.keys.map((k) => ({ key: k, stored: false, declared: true, generated: !!decl.generate?.[k] })) });
          continue;
        }
        const stored = s.has(name) ? Object.keys((await s.read(name)) ?? {}) : [];
        const keys = [...new Set([...(decl?.keys ?? []), ...stored])].sort();
        rows.push({
          name,
          provider: 'embedded',
          keys: keys.map((k) => ({ key: k, stored: stored.includes(k), declared: decl?.keys.includes(k) ?? false, generated: !!decl?.generate?.[k] })),
        });
      }
      if (o.json) {
        process.stdout.write(JSON.stringify({ secrets: rows }, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        err('no secrets: declare them with defineSecrets in waffle.config.ts, then waffle secrets set NAME.KEY');
        return;
      }
      for (const r of rows) {
        const keys = r.keys
          .map((k) => `${k.key}${r.provider !== 'embedded' ? '' : !k.stored ? (k.generated ? ' (generated on apply)' : ' (NOT SET)') : !k.declared ? ' (not declared)' : ''}`)
          .join(', ');
        process.stderr.write(`${r.name} [${r.provider}]: ${keys}\n`);
      }
    });

  secrets
    .command('rm')
    .description('remove a secret, or one of its keys')
    .argument('<ref>', 'NAME or NAME.KEY')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const { name, key } = parseRef(ref, false);
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(rootOf(cmd));
      if (!(await s.remove(name, key))) throw new Error(`nothing to remove: no ${key ? `key "${key}" in ` : ''}secret "${name}"`);
      err(`removed ${ref}${key ? ` from ${s.relFile(name)}` : ` (${s.relFile(name)})`}`);
    });

  secrets
    .command('generate')
    .description('create the declared `generate` values that are missing (--force: replace them too)')
    .argument('[ref]', 'NAME or NAME.KEY (default: every generated key)')
    .option('--force', 'generate new values even where one exists (the services using them are redeployed)')
    .action(async (ref: string | undefined, o: { force?: boolean }, cmd: Command) => {
      const root = rootOf(cmd);
      const only = ref ? parseRef(ref, false) : undefined;
      const decls = await declarations(root);
      if (!decls) throw new Error('the configuration must load to know what to generate');
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const { generateValue } = await import('../runtime/secrets/generate.ts');
      const s = new SecretStore(root);
      let n = 0;
      for (const decl of Object.values(decls)) {
        if (decl.provider !== 'embedded' || !decl.generate) continue;
        if (only && only.name !== decl.name) continue;
        const current = (await s.read(decl.name)) ?? {};
        const patch: Record<string, string> = {};
        for (const [k, g] of Object.entries(decl.generate)) {
          if (only?.key && only.key !== k) continue;
          if (current[k] !== undefined && !o.force) continue;
          patch[k] = generateValue(g.format, g.length);
        }
        if (Object.keys(patch).length === 0) continue;
        await s.write(decl.name, { ...current, ...patch });
        for (const k of Object.keys(patch)) err(`generated ${decl.name}.${k}`);
        n += Object.keys(patch).length;
      }
      if (only && n === 0 && !decls[only.name]?.generate) throw new Error(`secret "${only.name}" declares no generated keys`);
      err(n ? `${n} value${n === 1 ? '' : 's'} generated: commit secrets/` : 'nothing to generate (every generated key has a value; --force makes new ones)');
    });

  // [vault, part B] Dynamic credentials (Vault database/aws): renew the leases that are due now.
  secrets
    .command('renew')
    .description('renew the Vault leases of dynamic credentials that are due (the agent does this on a timer)')
    .action(async (_o: unknown, cmd: Command) => {
      const { loadGraph } = await import('../runtime/pipeline.ts');
      const { renewProjectLeases } = await import('../runtime/secrets/renewer.ts');
      const graph = await loadGraph({ root: rootOf(cmd) });
      const r = await renewProjectLeases(graph);
      if (!r) {
        err(graph.vault ? 'no Vault leases recorded for this project' : 'this project configures no vault');
        return;
      }
      for (const x of r.renewed) err(`renewed ${x.service}: secrets.${x.secret} for ${x.ttlSeconds}s`);
      for (const x of r.expiring) err(`expiring ${x.service}: secrets.${x.secret} (${x.reason}): the next apply gives it fresh credentials`);
      for (const x of r.failed) err(`failed ${x.service}: secrets.${x.secret}: ${x.error}`);
      if (!r.renewed.length && !r.expiring.length && !r.failed.length) err('nothing due');
      if (r.failed.length) process.exitCode = 1;
    });

  secrets
    .command('rekey')
    .description('re-encrypt every secret file for the recipients in secrets/recipients.txt')
    .action(async (_o: unknown, cmd: Command) => {
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(rootOf(cmd));
      const names = await s.rekey();
      err(`re-encrypted ${names.length} file${names.length === 1 ? '' : 's'} for ${s.recipients().length} recipient${s.recipients().length === 1 ? '' : 's'}`);
    });

  const recipients = secrets.command('recipients').description('who can decrypt: the age public keys in secrets/recipients.txt');
  recipients
    .command('add')
    .description('add a public key (then run `waffle secrets rekey`)')
    .argument('<recipient>', 'an age public key, age1…')
    .action(async (recipient: string, _o: unknown, cmd: Command) => {
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      const s = new SecretStore(rootOf(cmd));
      const added = s.addRecipient(recipient.trim());
      err(added ? `added ${recipient.trim()}; run \`waffle secrets rekey\` to re-encrypt for it` : 'already listed');
    });
  recipients
    .command('list')
    .description('print the public keys')
    .action(async (_o: unknown, cmd: Command) => {
      const { SecretStore } = await import('../runtime/secrets/store.ts');
      for (const r of new SecretStore(rootOf(cmd)).recipients()) process.stdout.write(`${r}\n`);
    });
}
