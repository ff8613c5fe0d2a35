// Builds dist/: the CLI and the loader's child as single ESM files (node_modules external), the
// authoring API as JS plus .d.ts so a source-of-truth repository gets completion from published types.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
// dist/ is overwritten in place (not removed first): a CLI started while a build runs keeps working.

const entries = ['cli/main.ts', 'runtime/load/child.ts', 'define/index.ts'].filter((e) => fs.existsSync(e));
await Promise.all(
  entries.map((entry) =>
    build({
      entryPoints: [entry],
      outfile: path.join('dist', entry.replace(/\.ts$/, '.js')),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      sourcemap: 'linked',
      jsx: 'automatic',
      logLevel: 'warning',
    }),
  ),
);

if (!process.argv.includes('--no-types')) {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(
    process.execPath,
    [tsc, 'define/index.ts', '--declaration', '--emitDeclarationOnly', '--outDir', 'dist/define', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--strict'],
    { stdio: 'inherit' },
  );
}
