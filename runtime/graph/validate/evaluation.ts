/**
 * Validation of `defineConfig({ evaluation })`: which environment variables the configuration may read
 * while it is evaluated (the sandboxed evaluation process gets only these) and its heap limit.
 *
 * The loader reads the raw value before a graph exists (it has to start the evaluation process); this
 * is what `waffle check` reports about it.
 */
import { isObject, show } from '../parse.ts';
import { unknownKeys, type Report } from '../report.ts';

export const EVALUATION_KEYS = ['env', 'memoryMb'];
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Below this V8 cannot load esbuild's output of a small project with room to spare. */
export const MIN_EVALUATION_MB = 32;
/** Far above what evaluating a configuration needs; a larger value is almost surely a unit mistake (MB vs bytes). */
export const MAX_EVALUATION_MB = 16384;

export interface EvaluationSpec {
  env: string[];
  memoryMb?: number;
}

/**
 * Credentials the configuration itself names for the deployer (Vault token, AppRole secret id) and the
 * age identity. Exposing them to evaluated code would hand the deployer's credentials to every
 * definition, which is what the sandbox exists to prevent.
 */
export interface CredentialEnv {
  /** Variable name → what it holds, for the message. */
  [name: string]: string;
}

export function checkEvaluation(value: unknown, report: Report, credentials: CredentialEnv = {}): EvaluationSpec | undefined {
  if (value === undefined) return undefined;
  const example = "for example evaluation: { env: ['DEPLOY_ENV'], memoryMb: 256 }";
  if (!isObject(value)) {
    report('evaluation', `evaluation must be an object, got ${show(value)}`, example);
    return undefined;
  }
  unknownKeys(value, EVALUATION_KEYS, 'evaluation.', report, 'evaluation');
  let ok = true;
  const env = new Set<string>();
  if (value.env !== undefined) {
    if (!Array.isArray(value.env)) {
      ok = false;
      report('evaluation.env', `evaluation.env must be a list of environment variable names, got ${show(value.env)}`, "for example env: ['DEPLOY_ENV', 'REGION']");
    } else {
      value.env.forEach((name, i) => {
        const w = `evaluation.env[${i}]`;
        if (typeof name !== 'string' || !ENV_NAME_RE.test(name)) {
          ok = false;
          const fix =
            typeof name === 'string' && name.includes('=')
              ? `list only the name: '${name.slice(0, name.indexOf('='))}' (the value comes from waffle's environment)`
              : 'use letters, digits and _, not starting with a digit, for example DEPLOY_ENV';
          report(w, `${show(name)} is not a valid environment variable name`, fix);
          return;
        }
        const holds = credentials[name];
        if (holds !== undefined) {
          ok = false;
          report(
            w,
            `${name} holds ${holds}; the configuration must not be able to read it while it is evaluated`,
            `remove '${name}' from evaluation.env; pass what the configuration needs in a variable of its own`,
          );
          return;
        }
        env.add(name);
      });
    }
  }
  let memoryMb: number | undefined;
  if (value.memoryMb !== undefined) {
    const m = value.memoryMb;
    if (typeof m !== 'number' || !Number.isInteger(m) || m < MIN_EVALUATION_MB || m > MAX_EVALUATION_MB) {
      ok = false;
      report(
        'evaluation.memoryMb',
        `evaluation.memoryMb ${show(m)} must be a whole number of MiB from ${MIN_EVALUATION_MB} to ${MAX_EVALUATION_MB}`,
        'for example memoryMb: 256 (a number of MiB, not bytes)',
      );
    } else memoryMb = m;
  }
  if (!ok) return undefined;
  return { env: [...env].sort(), ...(memoryMb !== undefined ? { memoryMb } : {}) };
}
