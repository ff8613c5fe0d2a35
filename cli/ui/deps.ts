/**
 * Ink and React are loaded here and only here, on demand: `waffle --version` and `waffle plan --json`
 * never import them. esbuild would hoist a static `import 'ink'` from any lazily imported module to the
 * top of dist/cli/main.js, so every UI module reaches Ink, React and the JSX runtime through this module
 * (the .tsx files use `@jsxImportSource .` → ./jsx-runtime.ts), after `loadUiDeps()` resolved.
 */
import type * as InkNs from 'ink';
import type * as ReactNs from 'react';
import type * as JsxRuntimeNs from 'react/jsx-runtime';

export let ink: typeof InkNs;
export let react: typeof ReactNs;
export let jsxRuntime: typeof JsxRuntimeNs;

/** Loads Ink, React and React's JSX runtime. Safe to call more than once. */
export async function loadUiDeps(): Promise<void> {
  if (ink) return;
  const [i, r, j] = await Promise.all([import('ink'), import('react'), import('react/jsx-runtime')]);
  ink = i;
  react = r;
  jsxRuntime = j;
}
