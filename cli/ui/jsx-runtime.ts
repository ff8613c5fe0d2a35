/**
 * The JSX runtime the UI's .tsx files compile against (`@jsxImportSource .`): it forwards to React's,
 * loaded lazily by deps.ts, so no static import of React reaches the CLI bundle.
 */
import type * as JsxRuntimeNs from 'react/jsx-runtime';
import { jsxRuntime } from './deps.ts';

export type { JSX } from 'react/jsx-runtime';

export const jsx: typeof JsxRuntimeNs.jsx = (type, props, key) => jsxRuntime.jsx(type, props, key);
export const jsxs: typeof JsxRuntimeNs.jsxs = (type, props, key) => jsxRuntime.jsxs(type, props, key);
/** React.Fragment is a symbol; `Symbol.for` gives the same one React uses. */
export const Fragment = Symbol.for('react.fragment') as unknown as typeof JsxRuntimeNs.Fragment;
