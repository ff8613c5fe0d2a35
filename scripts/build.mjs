// Builds dist/: the CLI (split at its lazy imports) and the loader's child as ESM files (node_modules external), the
// authoring API as JS plus .d.ts so a source-of-truth repository gets completion from published types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
// dist/ is overwritten in place (not removed first): a CLI started while a build runs keeps working.

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  jsx: 'automatic',
  logLevel: 'warning',
  metafile: true,
};
const results = await Promise.all([
  // The CLI is split at its dynamic imports, so `waffle --version` loads only commander and kleur,
  // and each command loads what it uses. Chunks sit beside main.js (the loader finds its child from there).
  build({
    ...common,
    // The type-check's and the locator's children (runtime/check/typecheck-child.ts, runtime/locate-child.ts)
    // sit beside main.js too, so they find the authoring API's types from the same place as the CLI does.
    entryPoints: ['cli/main.ts', 'runtime/check/typecheck-child.ts', 'runtime/locate-child.ts'],
    outdir: 'dist/cli',
    splitting: true,
    entryNames: '[name]',
    chunkNames: '[name]-[hash]',
  }),
  build({ ...common, entryPoints: ['runtime/load/child.ts'], outfile: 'dist/runtime/load/child.js' }),
  build({ ...common, entryPoints: ['define/index.ts'], outfile: 'dist/define/index.js' }),
]);
// Remove chunks of earlier builds that this one no longer produced.
const produced = new Set(results.flatMap((r) => Object.keys(r.metafile.outputs)).map((f) => path.resolve(f)));
for (const f of fs.readdirSync('dist/cli')) {
  const abs = path.resolve('dist/cli', f);
  if (f !== 'main.js' && f !== 'main.js.map' && !produced.has(abs)) fs.rmSync(abs, { force: true });
}

if (!process.argv.includes('--no-types')) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(
    process.execPath,
    [tsc, 'define/index.ts', '--declaration', '--emitDeclarationOnly', '--outDir', 'dist/define', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--strict'],
    { stdio: 'inherit' },
  );
}
