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
import { cliOf, Exit, type App, type Cli } from '../context.ts';
import { hidden } from '../prompt.ts';
import path from 'node:path';

function parseRef(ref: string, needKey: boolean): { name: string; key?: string } {
  const m = /^([A-Za-z][A-Za-z0-9_-]*)(?:\.([A-Za-z_][A-Za-z0-9_-]*))?$/.exec(ref);
  if (!m) throw new Error(`${JSON.stringify(ref)} is not NAME or NAME.KEY (for example db.password)`);
  if (needKey && m[2] === undefined) throw new Error(`name a key: ${m[1]}.<key>`);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, key: m[2] };
}

type Decls = Record<string, import('../../runtime/secrets/provider.ts').SecretDecl>;

/** The declarations of the repository, or undefined (with a warning) when the configuration does not load. */
async function declarations(cli: Cli): Promise<Decls | undefined> {
  // A missing `-c` file is an error of the command line, not a configuration that does not load.
  const source = cli.source() as { dir: string; configFile?: string };
  try {
    const { loadRepo } = await import('../../runtime/load/load.ts');
    const { checkSecretDecls } = await import('../../runtime/graph/validate/secrets.ts');
    const opts: import('../../runtime/load/load.ts').LoadOptions & { env?: Record<string, string | undefined> } = {
      env: cli.env,
      ...(source.configFile ? { configFile: source.configFile } : {}),
    };
    const repo = await loadRepo(cli.root, opts);
    return checkSecretDecls(repo.config.secrets, () => undefined);
  } catch (e) {
    cli.err(`warning: could not load the configuration to check secret names (${(e as Error).message.split('\n')[0]})`);
    return undefined;
  }
}

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

async function readValue(cli: Cli, label: string): Promise<string> {
  if (cli.stdin.isTTY) {
    const v = await hidden(cli, `value for ${label} (hidden): `);
    if (v === '') throw new Error('empty value: nothing was changed');
    return v;
  }
  let v = await readStdin(cli.stdin);
  if (v.endsWith('\r\n')) v = v.slice(0, -2);
  else if (v.endsWith('\n')) v = v.slice(0, -1);
  if (v === '') throw new Error(`no value on stdin for ${label}: pipe it in (printf %s "$VALUE" | waffle secrets set ${label}) or run in a terminal to be prompted`);
  return v;
}

export function register(program: Command, app: App): void {
  const secrets = program.command('secrets').description('the age-encrypted secret store in the repository (secrets/*.age)');

  secrets
    .command('init')
    .description('create your age identity (if missing) and add its public key to secrets/recipients.txt')
    .action(async (_o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const root = cli.root;
      const store = await import('../../runtime/secrets/store.ts');
      const src = store.identitySource(app.env);
      let recipient: string;
      if (src.kind === 'env') {
        recipient = (await store.recipientsOf(store.loadIdentities(app.env)))[0]!;
        cli.err(`identity: from WAFFLE_AGE_IDENTITY`);
      } else {
        store.checkIdentityOutside(root, app.env);
        const r = await store.ensureIdentityFile(src.where);
        recipient = r.recipient;
        cli.err(r.created ? `created identity ${src.where} (mode 0600; keep it safe and out of the repository)` : `identity: ${src.where}`);
      }
      const s = new store.SecretStore(root, app.env);
      const added = s.addRecipient(recipient, `added by waffle secrets init on ${new Date().toISOString().slice(0, 10)}`);
      cli.err(`${added ? 'added' : 'already listed'}: ${recipient} in ${path.relative(root, s.recipientsFile)}`);
      cli.err('next: waffle secrets set NAME.KEY (reads the value from stdin or a hidden prompt)');
    });

  secrets
    .command('set')
    .description('set a value (from stdin or a hidden prompt; never from the command line)')
    .argument('<ref>', 'NAME.KEY, or NAME for a secret with one key')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const root = cli.root;
      let { name, key } = parseRef(ref, false);
      const decls = await declarations(cli);
      const decl = decls?.[name];
      if (decls && !decl) throw new Error(`secret "${name}" is not declared in defineSecrets (declared: ${Object.keys(decls).join(', ') || 'none'})`);
      if (decl && decl.provider !== 'embedded') throw new Error(`secret "${name}" comes from ${decl.provider}, not from the embedded store`);
      if (key === undefined) {
        if (!decl || decl.keys.length !== 1) throw new Error(`name the key: ${name}.<key>${decl ? ` (keys: ${decl.keys.join(', ')})` : ''}`);
        key = decl.keys[0]!;
      }
      if (decl && !decl.keys.includes(key)) throw new Error(`secret "${name}" has no key "${key}" (keys: ${decl.keys.join(', ')})`);
      const value = await readValue(cli, `${name}.${key}`);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(root, app.env);
      if (await s.update(name, { [key]: value })) cli.err(`set ${name}.${key} in ${s.relFile(name)} (commit it; apply redeploys the services that use it)`);
      else cli.err(`${name}.${key} already has this value: ${s.relFile(name)} left untouched (nothing to commit, nothing to redeploy)`);
    });

  secrets
    .command('get')
    .description('print one value on stdout')
    .argument('<ref>', 'NAME.KEY')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { name, key } = parseRef(ref, true);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(cli.root, app.env);
      const values = await s.read(name);
      if (!values) throw new Error(`no secret "${name}" in the store (${s.relFile(name)} does not exist)`);
      const v = values[key!];
      if (v === undefined) throw new Error(`secret "${name}" has no value for "${key}" (stored keys: ${Object.keys(values).join(', ') || 'none'})`);
      app.stdout.write(app.stdout.isTTY ? `${v}\n` : v);
    });

  secrets
    .command('list')
    .description('secrets and their keys (never values); declared keys without a value are marked')
    .action(async (_o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const root = cli.root;
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(root, app.env);
      const decls = (await declarations(cli)) ?? {};
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
      if (cli.mode === 'json') {
        app.stdout.write(JSON.stringify({ secrets: rows }, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        cli.err('no secrets: declare them with defineSecrets in waffle.config.ts, then waffle secrets set NAME.KEY');
        return;
      }
      for (const r of rows) {
        const keys = r.keys
          .map((k) => `${k.key}${r.provider !== 'embedded' ? '' : !k.stored ? (k.generated ? ' (generated on apply)' : ' (NOT SET)') : !k.declared ? ' (not declared)' : ''}`)
          .join(', ');
        app.stderr.write(`${r.name} [${r.provider}]: ${keys}\n`);
      }
    });

  secrets
    .command('rm')
    .description('remove a secret, or one of its keys')
    .argument('<ref>', 'NAME or NAME.KEY')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { name, key } = parseRef(ref, false);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(cli.root, app.env);
      if (!(await s.remove(name, key))) throw new Error(`nothing to remove: no ${key ? `key "${key}" in ` : ''}secret "${name}"`);
      cli.err(`removed ${ref}${key ? ` from ${s.relFile(name)}` : ` (${s.relFile(name)})`}`);
    });

  secrets
    .command('generate')
    .description('create the declared `generate` values that are missing (--force: replace them too)')
    .argument('[ref]', 'NAME or NAME.KEY (default: every generated key)')
    .option('--force', 'generate new values even where one exists (the services using them are redeployed)')
    .action(async (ref: string | undefined, o: { force?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const root = cli.root;
      const only = ref ? parseRef(ref, false) : undefined;
      const decls = await declarations(cli);
      if (!decls) throw new Error('the configuration must load to know what to generate');
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const { generateValue } = await import('../../runtime/secrets/generate.ts');
      const s = new SecretStore(root, app.env);
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
        for (const k of Object.keys(patch)) cli.err(`generated ${decl.name}.${k}`);
        n += Object.keys(patch).length;
      }
      if (only && n === 0 && !decls[only.name]?.generate) throw new Error(`secret "${only.name}" declares no generated keys`);
      cli.err(n ? `${n} value${n === 1 ? '' : 's'} generated: commit secrets/` : 'nothing to generate (every generated key has a value; --force makes new ones)');
    });

  // Dynamic credentials (Vault database/aws): renew the leases that are due now.
  secrets
    .command('renew')
    .description('renew the Vault leases of dynamic credentials that are due (the agent does this on a timer)')
    .action(async (_o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { graph, report: r } = await (await cli.engine()).renewLeases(cli.source(), { signal: cli.interrupt.signal });
      if (!r) {
        cli.err(graph.vault ? 'no Vault leases recorded for this project' : 'this project configures no vault');
        return;
      }
      for (const x of r.renewed) cli.err(`renewed ${x.service}: secrets.${x.secret} for ${x.ttlSeconds}s`);
      for (const x of r.expiring) cli.err(`expiring ${x.service}: secrets.${x.secret} (${x.reason}): the next apply gives it fresh credentials`);
      for (const x of r.failed) cli.err(`failed ${x.service}: secrets.${x.secret}: ${x.error}`);
      if (!r.renewed.length && !r.expiring.length && !r.failed.length) cli.err("nothing due");
      if (r.failed.length) throw new Exit(1);
    });

  secrets
    .command('rekey')
    .description('re-encrypt every secret file for the recipients in secrets/recipients.txt')
    .action(async (_o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(cli.root, app.env);
      const names = await s.rekey();
      cli.err(`re-encrypted ${names.length} file${names.length === 1 ? '' : 's'} for ${s.recipients().length} recipient${s.recipients().length === 1 ? '' : 's'}`);
    });

  const recipients = secrets.command('recipients').description('who can decrypt: the age public keys in secrets/recipients.txt');
  recipients
    .command('add')
    .description('add a public key (then run `waffle secrets rekey`)')
    .argument('<recipient>', 'an age public key, age1…')
    .action(async (recipient: string, _o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      const s = new SecretStore(cli.root, app.env);
      const added = s.addRecipient(recipient.trim());
      cli.err(added ? `added ${recipient.trim()}; run \`waffle secrets rekey\` to re-encrypt for it` : 'already listed');
    });
  recipients
    .command('list')
    .description('print the public keys')
    .action(async (_o: unknown, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { SecretStore } = await import('../../runtime/secrets/store.ts');
      for (const r of new SecretStore(cli.root, app.env).recipients()) app.stdout.write(`${r}\n`);
    });
}
