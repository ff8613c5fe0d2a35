/**
 * `waffle check`'s type-check: the TypeScript compiler over the repository's configuration, so a
 * misspelt field or reference is reported with file, line and column before anything runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importersOf, missingModuleFix, untypedPackageFix, type ImportSite } from '../fixes.ts';
import { literalField } from '../locate.ts';
import type { Problem } from '../model.ts';
import { defaultServiceName } from '../naming.ts';

/** Where our authoring API's types live: the source in development, the .d.ts when built. */
export function defineTypesPath(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    '../../define/index.ts',
    '../../dist/define/index.d.ts',
    '../define/index.d.ts',
    '../../define/index.d.ts',
    './define/index.d.ts',
  ];
  for (const rel of candidates) {
    const p = path.resolve(here, rel);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/**
 * The service a file holds, named as the loader will name it, for labelling its type errors: the
 * config's `services` globs and `naming`, read from the config file as written (the config is not
 * evaluated here; a computed value counts as the default).
 */
function serviceNamer(root: string, program: import('typescript').Program, configFile: string): (file: string) => string | undefined {
  const config = program.getSourceFile(path.join(root, configFile));
  const read = (field: string): unknown => (config ? literalField(config.text, config.fileName, field, { callee: 'defineConfig' }) : undefined);
  const written = read('services');
  const globs = Array.isArray(written) && written.every((g) => typeof g === 'string') ? (written as string[]) : ['services/*.ts'];
  const naming = read('naming');
  const dirs = globs.map((g) => g.replace(/^\.\//, '').split('/')[0]);
  return (file) => (file !== configFile && dirs.some((d) => file.startsWith(`${d}/`)) ? defaultServiceName(file, naming, globs) : undefined);
}

/** Type-checks the repository at `root` whose configuration is `configFile` (relative to the root). */
export async function typecheck(root: string, configFile = 'waffle.config.ts'): Promise<Problem[]> {
  const ts = (await import('typescript')).default;
  const configPath = path.join(root, 'tsconfig.json');
  let options: import('typescript').CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
  };
  let fileNames: string[] = [];
  if (fs.existsSync(configPath)) {
    const read = ts.readConfigFile(configPath, ts.sys.readFile);
    if (read.error) {
      return [{ file: 'tsconfig.json', message: ts.flattenDiagnosticMessageText(read.error.messageText, '\n'), fix: 'fix the JSON in tsconfig.json' }];
    }
    const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root, undefined, configPath);
    options = parsed.options;
    fileNames = parsed.fileNames;
  }
  if (fileNames.length === 0) {
    const { glob } = await import('tinyglobby');
    fileNames = (await glob([configFile, 'services/**/*.ts'], { cwd: root, absolute: true })).sort();
  }
  // The configuration in use is checked even when tsconfig.json's `include` does not name it
  // (a `waffle.prod.ts` next to an include list written for waffle.config.ts).
  const configAbs = path.join(root, configFile);
  if (fs.existsSync(configAbs) && !fileNames.some((f) => path.resolve(f) === configAbs)) fileNames = [...fileNames, configAbs];
  const definePath = defineTypesPath();
  const hasOwnInstall = fs.existsSync(path.join(root, 'node_modules', 'wafflemaker', 'package.json'));
  options = {
    ...options,
    // waffle bundles the configuration with esbuild: resolve imports the way a bundler does
    // (`import api from './api'` without an extension).
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    noEmit: true,
    skipLibCheck: true,
    allowImportingTsExtensions: true,
    types: [],
  };
  if (definePath && !hasOwnInstall) {
    options.paths = { ...(options.paths ?? {}), wafflemaker: [definePath] };
  }
  const program = ts.createProgram(fileNames, options);
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || !d.file.fileName.includes('/node_modules/'));
  const rel = (f: string) => path.relative(root, f).split(path.sep).join('/');
  const serviceOf = serviceNamer(root, program, configFile);
  // An import that does not resolve (TS2307) or resolves to an untyped package (TS7016): its
  // specifier, and every file that imports the same thing, so the fix can name them all.
  const specifierOf = (d: import('typescript').Diagnostic): string | undefined => {
    if ((d.code !== 2307 && d.code !== 7016) || !d.file || d.start === undefined || d.length === undefined) return undefined;
    const text = d.file.text.slice(d.start, d.start + d.length);
    return /^(['"`])(.*)\1$/.exec(text)?.[2];
  };
  const sites: ImportSite[] = [];
  for (const d of diagnostics) {
    const specifier = specifierOf(d);
    if (specifier !== undefined) sites.push({ specifier, file: rel(d.file!.fileName) });
  }
  return diagnostics.map((d): Problem => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file || d.start === undefined) return { file: 'tsconfig.json', message };
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const file = rel(d.file.fileName);
    const spec = specifierOf(d);
    const others = spec === undefined ? [] : importersOf({ specifier: spec, file }, sites, root);
    return {
      file,
      where: `${line + 1}:${character + 1}`,
      service: serviceOf(file),
      message: `type error TS${d.code}: ${message}`,
      fix:
        spec !== undefined && d.code === 2307
          ? missingModuleFix(spec, others, root)
          : spec !== undefined && d.code === 7016
            ? untypedPackageFix(spec, others)
            : 'correct the definition so it matches the types of wafflemaker (your editor shows the same error)',
    };
  });
}
