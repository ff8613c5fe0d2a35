/**
 * `waffle import compose [file...]`: writes a Wafflemaker repository from Docker Compose files — one
 * `services/<name>.ts` per service, `waffle.config.ts`, and (when missing) tsconfig.json, package.json
 * and .gitignore as `init` writes them. Values that look like secrets go into the embedded, encrypted
 * store (secrets/*.age), never into a .ts file. Every Compose key it could not map is listed with its
 * service and what to do. Existing files are never overwritten without --force; on any error nothing
 * is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App } from '../context.ts';

/** The files Compose looks for, in its order, when none is named. */
const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export function register(program: Command, app: App): void {
  const imp = program.command('import').description('write a Wafflemaker repository from another tool\'s configuration');
  imp
    .command('compose')
    .description('one services/<name>.ts per Docker Compose service, plus waffle.config.ts')
    .argument('[files...]', `Compose files, merged in order (default: the first of ${DEFAULT_FILES.join(', ')})`)
    .option('-o, --out <dir>', 'where to write the repository (default: --dir, or the current directory)')
    .option('--project <name>', "project name (default: the Compose file's name, else its directory's)")
    .option('--profile <name>', 'activate a Compose profile (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--force', 'overwrite files that exist')
    .action(async (names: string[], o: { out?: string; project?: string; profile?: string[]; force?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const cwd = cli.root;
      let files = names.map((f) => path.resolve(app.cwd, f));
      if (files.length === 0) {
        const found = DEFAULT_FILES.map((f) => path.join(cwd, f)).find((f) => fs.existsSync(f));
        if (!found) throw new Exit(1, `waffle: no Compose file in ${cwd} (looked for ${DEFAULT_FILES.join(', ')}); name one: waffle import compose path/to/compose.yml`);
        files = [found];
      }
      for (const f of files) if (!fs.existsSync(f)) throw new Exit(1, `waffle: ${f} does not exist`);
      const out = path.resolve(app.cwd, o.out ?? cli.root);

      const { importCompose, ComposeImportError } = await import('../import/compose.ts');
      let result: import('../import/compose.ts').ComposeImportResult;
      try {
        result = importCompose({
          files: files.map((f) => ({ path: f, text: fs.readFileSync(f, 'utf8') })),
          read: (f) => {
            try {
              return fs.readFileSync(f, 'utf8');
            } catch {
              return undefined;
            }
          },
          env: app.env,
          outDir: out,
          ...(o.project ? { project: o.project } : {}),
          ...(o.profile ? { profiles: o.profile } : {}),
        });
      } catch (e) {
        if (e instanceof ComposeImportError) throw new Exit(1, `waffle: ${e.message} (nothing was written)`);
        throw e;
      }

      const targets = Object.keys(result.files);
      const existing = targets.filter((f) => fs.existsSync(path.join(out, f)));
      if (existing.length && !o.force) {
        throw new Exit(1, `waffle: ${existing.join(', ')} exist${existing.length === 1 ? 's' : ''} in ${out}; nothing was written. Fix: pass --force to overwrite, or --out another directory`);
      }

      // Secrets first: when the store cannot be written (no identity), no file is written either.
      const stored: string[] = [];
      if (Object.keys(result.secrets).length) {
        const store = await import('../../runtime/secrets/store.ts');
        const src = store.identitySource(app.env);
        let recipient: string;
        if (src.kind === 'env') recipient = (await store.recipientsOf(store.loadIdentities(app.env)))[0]!;
        else {
          store.checkIdentityOutside(out, app.env);
          const r = await store.ensureIdentityFile(src.where);
          if (r.created) cli.err(`created identity ${src.where} (mode 0600; keep it safe and out of the repository)`);
          recipient = r.recipient;
        }
        const s = new store.SecretStore(out, app.env);
        if (!s.hasRecipients()) s.addRecipient(recipient, `added by waffle import on ${new Date().toISOString().slice(0, 10)}`);
        for (const [name, values] of Object.entries(result.secrets)) {
          await s.update(name, values);
          stored.push(...Object.keys(values).map((k) => `${name}.${k}`));
        }
      }
      for (const [rel, text] of Object.entries(result.files)) {
        const p = path.join(out, rel);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.writeFileSync(p, text);
      }
      const { initRepo } = await import('../init.ts');
      const scaffold = initRepo(out, { project: result.project, only: ['tsconfig.json', 'package.json', '.gitignore'] });

      if (cli.mode === 'json') {
        cli.out(
          JSON.stringify({ project: result.project, written: [...targets, ...scaffold.written], updated: scaffold.updated, services: result.services, secrets: stored, notes: result.notes }) + '\n',
        );
      }
      for (const f of [...targets, ...scaffold.written]) cli.err(`${kleur.green('+')} ${f}`);
      for (const f of scaffold.updated) cli.err(`${kleur.yellow('~')} ${f} (added wafflemaker to devDependencies)`);
      if (stored.length) cli.err(`secrets (values in secrets/*.age, encrypted; never in the .ts files): ${stored.join(', ')}`);
      for (const line of noteLines(result.notes)) cli.err(line);
      const unsupported = result.notes.filter((n) => n.level === 'unsupported').length;
      cli.err(
        `imported ${Object.keys(result.services).length} service${Object.keys(result.services).length === 1 ? '' : 's'} into project ${result.project}` +
          (unsupported ? kleur.yellow(`; ${unsupported} key${unsupported === 1 ? '' : 's'} not mapped (listed above)`) : ''),
      );
      cli.err('next: npm install, then `npx waffle check` and `npx waffle plan`');
    });
}

/** The notes, grouped by service, one line each with what to do. */
export function noteLines(notes: import('../import/compose.ts').ImportNote[]): string[] {
  const lines: string[] = [];
  const groups = new Map<string, typeof notes>();
  for (const n of notes) {
    const g = n.service === undefined ? '(top level)' : `service ${n.service}`;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(n);
  }
  for (const [g, list] of groups) {
    lines.push(`${g}:`);
    for (const n of list) {
      const tag = n.level === 'unsupported' ? kleur.yellow('not mapped') : n.level === 'changed' ? kleur.cyan('changed') : kleur.dim('note');
      lines.push(`  ${tag} ${n.key}: ${n.message}${n.fix ? ` — ${n.fix}` : ''}`);
    }
  }
  return lines;
}
