/** Validation of a service's image reference and of the image pull policy (service and project default). */
import { checkImage, show } from '../parse.ts';
import type { Report } from '../report.ts';
import { suggest } from '../suggest.ts';

export type PullPolicy = 'missing' | 'always';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always'];
export const DEFAULT_PULL: PullPolicy = 'missing';

/** `image`: required, a string in Docker's reference grammar. Returns the reference, or '' when invalid. */
export function checkImageField(value: unknown, report: Report): string {
  if (value === undefined) {
    report('image', 'image is required', "add image: 'nginx:1.27' (or your own image reference)");
    return '';
  }
  if (typeof value !== 'string') {
    report('image', `image must be a string, got ${show(value)}`, "for example image: 'nginx:1.27'");
    return '';
  }
  const r = checkImage(value);
  if (r.ok) return r.value;
  report('image', r.message, r.fix);
  return '';
}

/**
 * `pull` of a service or the project's default: `'missing'` or `'always'`. Returns `fallback` when the
 * field is absent or invalid (the problem is reported).
 */
export function checkPull(value: unknown, where: string, report: Report, fallback: PullPolicy): PullPolicy {
  if (value === undefined) return fallback;
  if (value === 'missing' || value === 'always') return value;
  const guess = typeof value === 'string' ? suggest(value, [...PULL_POLICIES]) : undefined;
  report(
    where,
    `pull ${show(value)} must be 'missing' or 'always'` + (guess ? `; did you mean '${guess}'?` : ''),
    "write pull: 'missing' (use the local image when present) or pull: 'always' (check the registry on every plan, so a re-pushed tag redeploys)",
  );
  return fallback;
}
