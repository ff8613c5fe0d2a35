/**
 * Where in the user's source a problem is: the line and column of a field (`ports[1]`, `env.FOO`,
 * `healthcheck.interval`) inside the object literal passed to `defineService` / `defineConfig`.
 *
 * Validation works on evaluated data, which has no positions. The locator parses the file with the
 * TypeScript parser (no type-check, no evaluation) and follows the field path through object and
 * array literals, through shorthand properties, spreads and `const` declarations of the same file,
 * and into a call whose first argument is an object (`defineSecrets({...})`). When the path leaves
 * what is written literally (a value computed elsewhere), it stops at the deepest part it found; when
 * nothing of it is written (a missing field), it points at the call.
 *
 * The TypeScript module is loaded only when a problem is located (never on a run without problems).
 * `locateProblems` never throws: a file that cannot be read or parsed leaves the problem as it was.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type TS from 'typescript';
import type { Problem } from './model.ts';

const require = createRequire(import.meta.url);
/** The TypeScript module, loaded synchronously (the graph is) on first use: it is CommonJS, and `require` caches it. */
const typescript = (): typeof TS => require('typescript') as typeof TS;

/** 1-based line and column. */
export interface Position {
  line: number;
  col: number;
}

export const LINE_COL = /^\d+(:\d+)?$/;

/** `services/api.ts:3:16` → file and position. */
export function splitDefinedAt(definedAt: string | undefined): { file: string; pos: Position } | undefined {
  const m = definedAt ? /^(.*):(\d+):(\d+)$/.exec(definedAt) : null;
  return m ? { file: m[1]!, pos: { line: Number(m[2]), col: Number(m[3]) } } : undefined;
}

function scriptKind(ts: typeof TS, fileName: string): TS.ScriptKind {
  if (/\.tsx$/.test(fileName)) return ts.ScriptKind.TSX;
  if (/\.jsx$/.test(fileName)) return ts.ScriptKind.JSX;
  if (/\.[cm]?js$/.test(fileName)) return ts.ScriptKind.JS;
  return ts.ScriptKind.TS;
}

/** Parses `source` (positions only, no type information). */
export function parseSource(source: string, fileName: string): TS.SourceFile {
  const ts = typescript();
  return ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, scriptKind(ts, fileName));
}

function positionOf(sf: TS.SourceFile, node: TS.Node): Position {
  const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return { line: line + 1, col: character + 1 };
}

/** Every node of the file, depth first. */
function walk(node: TS.Node, visit: (n: TS.Node) => void): void {
  visit(node);
  node.forEachChild((c) => walk(c, visit));
}

/** The expression without parentheses, `as`, `satisfies` and `!`. */
function unwrap(ts: typeof TS, e: TS.Expression): TS.Expression {
  for (;;) {
    if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e) || ts.isTypeAssertionExpression(e)) e = e.expression;
    else return e;
  }
}

/** The initializer of a variable declared with this name anywhere in the file (the first one). */
function declaration(ts: typeof TS, sf: TS.SourceFile, name: string): TS.Expression | undefined {
  let found: TS.Expression | undefined;
  walk(sf, (n) => {
    if (!found && ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer) found = n.initializer;
  });
  return found;
}

/**
 * What a value is written as: identifiers are followed to their declaration in the file, and a call
 * whose first argument is an object or array literal (`defineSecrets({...})`) stands for that argument.
 */
function resolveValue(ts: typeof TS, sf: TS.SourceFile, e: TS.Expression | undefined): TS.Expression | undefined {
  for (let hops = 0; e && hops < 16; hops++) {
    e = unwrap(ts, e);
    if (ts.isIdentifier(e)) {
      e = declaration(ts, sf, e.text);
      continue;
    }
    if (ts.isCallExpression(e) && e.arguments.length > 0) {
      const arg = unwrap(ts, e.arguments[0]!);
      if (ts.isObjectLiteralExpression(arg) || ts.isArrayLiteralExpression(arg) || ts.isIdentifier(arg)) {
        e = arg;
        continue;
      }
    }
    return e;
  }
  return undefined;
}

function propertyName(ts: typeof TS, name: TS.PropertyName | undefined): string | undefined {
  if (!name) return undefined;
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name)) return name.text;
  if (ts.isComputedPropertyName(name)) {
    const e = unwrap(ts, name.expression);
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) || ts.isNumericLiteral(e)) return e.text;
  }
  return undefined;
}

interface Step {
  /** Where the step points: the property (its key) or the array element. */
  node: TS.Node;
  /** The value written there, to follow the rest of the path into. */
  value: TS.Expression | undefined;
  rest: string;
}

/** The rest of a path after one key of `len` characters (without the `.` that separates keys). */
const after = (rest: string, len: number): string => rest.slice(len).replace(/^\./, '');

function objectStep(ts: typeof TS, sf: TS.SourceFile, obj: TS.ObjectLiteralExpression, rest: string, depth: number): Step | undefined {
  const quoted = /^\[("(?:[^"\\]|\\.)*")\]/.exec(rest);
  let exact: string | undefined;
  if (quoted) {
    try {
      exact = JSON.parse(quoted[1]!) as string;
    } catch {
      return undefined;
    }
  }
  // Keys may contain dots (`labels.dev.example.team`): the longest key that starts the path wins;
  // among equal keys, the last written (as in JavaScript).
  let best: { step: Step; len: number } | undefined;
  for (const p of obj.properties) {
    if (ts.isSpreadAssignment(p)) continue;
    const name = propertyName(ts, p.name);
    if (name === undefined) continue;
    let len: number;
    if (exact !== undefined) {
      if (name !== exact) continue;
      len = quoted![0].length;
    } else {
      if (!(rest === name || rest.startsWith(`${name}.`) || rest.startsWith(`${name}[`))) continue;
      len = name.length;
    }
    if (best && best.len > len) continue;
    const value = ts.isPropertyAssignment(p) ? p.initializer : ts.isShorthandPropertyAssignment(p) ? p.name : undefined;
    best = { step: { node: p, value, rest: after(rest, len) }, len };
  }
  if (best) return best.step;
  // Not written here: perhaps in an object spread into this one (the last spread wins).
  if (depth > 8) return undefined;
  for (const p of [...obj.properties].reverse()) {
    if (!ts.isSpreadAssignment(p)) continue;
    const inner = resolveValue(ts, sf, p.expression);
    if (inner && ts.isObjectLiteralExpression(inner)) {
      const s = objectStep(ts, sf, inner, rest, depth + 1);
      if (s) return s;
    }
  }
  return undefined;
}

function arrayStep(ts: typeof TS, arr: TS.ArrayLiteralExpression, rest: string): Step | undefined {
  const m = /^\[(\d+)\]/.exec(rest);
  if (!m) return undefined;
  const index = Number(m[1]);
  for (let i = 0; i < arr.elements.length && i <= index; i++) {
    const el = arr.elements[i]!;
    // After a spread the written index no longer matches the evaluated one.
    if (ts.isSpreadElement(el)) return undefined;
    if (i === index) return { node: el, value: ts.isOmittedExpression(el) ? undefined : el, rest: after(rest, m[0].length) };
  }
  return undefined;
}

/** The call of `callee` the file's problems belong to (see locateField). */
function findCall(ts: typeof TS, sf: TS.SourceFile, callee: string, callAt: Position | undefined): TS.CallExpression | undefined {
  // The names it may be imported as: `import { defineService as service } from 'wafflemaker'`.
  const names = new Set([callee]);
  walk(sf, (n) => {
    if (ts.isImportSpecifier(n) && (n.propertyName ?? n.name).text === callee) names.add(n.name.text);
  });
  const calls: TS.CallExpression[] = [];
  walk(sf, (n) => {
    if (!ts.isCallExpression(n)) return;
    const e = n.expression;
    if ((ts.isIdentifier(e) && names.has(e.text)) || (ts.isPropertyAccessExpression(e) && e.name.text === callee)) calls.push(n);
  });
  const calleeAt = (c: TS.CallExpression): Position => positionOf(sf, ts.isPropertyAccessExpression(c.expression) ? c.expression.name : c.expression);
  if (callAt) {
    const onLine = calls.filter((c) => calleeAt(c).line === callAt.line);
    const hit = onLine.find((c) => calleeAt(c).col === callAt.col) ?? onLine[0];
    if (hit) return hit;
  }
  if (calls.length <= 1) return calls[0];
  // Several: the one the default export is (directly or through a variable).
  for (const st of sf.statements) {
    if (!ts.isExportAssignment(st)) continue;
    let e: TS.Expression | undefined = unwrap(ts, st.expression);
    if (ts.isIdentifier(e)) e = declaration(ts, sf, e.text);
    e = e && unwrap(ts, e);
    if (e && ts.isCallExpression(e) && calls.includes(e)) return e;
  }
  return calls[0];
}

/**
 * The position of `field` (a path such as `ports[1]`, `env.FOO`, `files["/run/x"]`) in the object
 * passed to `callee` (`defineService`, `defineConfig`) in `source`. The call is the one at `callAt`
 * (a service's `definedAt`) when given, else the only one, else the default export. Without such a
 * call, the default export's object literal. Returns the deepest part of the path that is written,
 * else the call (its callee, the column `definedAt` names), else undefined.
 */
export function locateField(source: string, fileName: string, field: string | undefined, o: { callee: string; callAt?: Position }): Position | undefined {
  const sf = parseSource(source, fileName);
  const found = follow(sf, field, o);
  return found ? positionOf(sf, found.node) : o.callAt;
}

/** The node `field` leads to (see locateField), the value written there, and whether the whole path was found. */
function follow(sf: TS.SourceFile, field: string | undefined, o: { callee: string; callAt?: Position }): { node: TS.Node; value: TS.Expression | undefined; whole: boolean } | undefined {
  const ts = typescript();
  const call = findCall(ts, sf, o.callee, o.callAt);
  let anchor: TS.Node | undefined;
  let root: TS.Expression | undefined;
  if (call) {
    anchor = ts.isPropertyAccessExpression(call.expression) ? call.expression.name : call.expression;
    root = call.arguments[0];
  } else {
    const exported = sf.statements.find(ts.isExportAssignment);
    if (exported) {
      anchor = exported;
      root = exported.expression;
    }
  }
  if (!anchor) return undefined;
  let found: TS.Node = anchor;
  let value = resolveValue(ts, sf, root);
  let rest = field ?? '';
  while (rest !== '' && value) {
    const step = ts.isObjectLiteralExpression(value)
      ? objectStep(ts, sf, value, rest, 0)
      : ts.isArrayLiteralExpression(value)
        ? arrayStep(ts, value, rest)
        : undefined;
    if (!step) break;
    found = step.node;
    rest = step.rest;
    value = resolveValue(ts, sf, step.value);
  }
  return { node: found, value, whole: rest === '' };
}

/**
 * The value of `field` in the object passed to `callee` when it is written as a literal: a string,
 * number, boolean, or an array of those. Undefined when the field is absent or computed. For reading
 * a setting (`naming`, `services`) without evaluating the file.
 */
export function literalField(source: string, fileName: string, field: string, o: { callee: string }): unknown {
  const ts = typescript();
  const sf = parseSource(source, fileName);
  const found = follow(sf, field, o);
  if (!found?.whole || !found.value) return undefined;
  const literal = (e: TS.Expression): unknown => {
    e = unwrap(ts, e);
    if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
    if (ts.isNumericLiteral(e)) return Number(e.text);
    if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
    if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
    if (ts.isArrayLiteralExpression(e)) {
      const items = e.elements.map((x) => (ts.isSpreadElement(x) || ts.isOmittedExpression(x) ? undefined : literal(x)));
      return items.every((x) => x !== undefined) ? items : undefined;
    }
    return undefined;
  };
  return literal(found.value);
}

/** Places problems in their files: `locateProblems`, or a caller's stand-in with the same answer (locate-process.ts). */
export type Locator = (problems: Problem[], scope: LocateScope) => Problem[];

export interface LocateScope {
  /** Absolute repository root; problem files are relative to it. */
  root: string;
  /** The config file (relative), whose problems are located in the `defineConfig` call. */
  configFile: string;
  /** `definedAt` (`file:line:col`) of each service file's `defineService` call, by file. */
  definedAt?: ReadonlyMap<string, string | undefined>;
}

/**
 * Gives every problem that names a field but no line the `line:col` of that field in its file
 * (`loc`), or of the `defineService` call when the field is not written out. A problem without a
 * field gets the call's position when its file is a service in `definedAt` (a problem of the whole
 * definition). Problems that already have a position keep it. Mutates and returns `problems`; never
 * throws.
 */
export function locateProblems(problems: Problem[], scope: LocateScope): Problem[] {
  const sources = new Map<string, string | undefined>();
  const read = (file: string): string | undefined => {
    if (!sources.has(file)) {
      let text: string | undefined;
      try {
        text = readFileSync(path.resolve(scope.root, file), 'utf8');
      } catch {
        text = undefined;
      }
      sources.set(file, text);
    }
    return sources.get(file);
  };
  for (const p of problems) {
    if (p.loc !== undefined || (p.where !== undefined && LINE_COL.test(p.where))) continue;
    const isConfig = p.file === scope.configFile;
    // Without a field, only a validated service's problem is about its definition (the call).
    if (p.where === undefined && (isConfig || !scope.definedAt?.has(p.file))) continue;
    const defined = isConfig ? undefined : splitDefinedAt(scope.definedAt?.get(p.file));
    // A service defined in another file (re-exported) has no position in this one.
    const callAt = defined && defined.file === p.file ? defined.pos : undefined;
    if (defined && !callAt) continue;
    let pos: Position | undefined;
    try {
      const source = read(p.file);
      pos = source === undefined ? callAt : locateField(source, p.file, p.where, { callee: isConfig ? 'defineConfig' : 'defineService', ...(callAt ? { callAt } : {}) });
    } catch {
      pos = callAt;
    }
    if (pos) p.loc = `${pos.line}:${pos.col}`;
  }
  return problems;
}
