/** Validation of a service's extra container `labels` (our own `dev.wafflemaker.` prefix is reserved). */
import { RESERVED_LABEL_PREFIX } from '../../labels.ts';
import { isObject, show } from '../parse.ts';
import type { Report } from '../report.ts';

/** `labels` → the valid labels, sorted by key. */
export function checkLabels(value: unknown, report: Report): Record<string, string> {
  const labels: Record<string, string> = {};
  if (value === undefined) return labels;
  if (!isObject(value)) {
    report('labels', `labels must be an object, got ${show(value)}`, "for example labels: { team: 'web' }");
    return labels;
  }
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    const w = `labels.${key}`;
    if (key.length === 0) report(w, 'a label key is empty', 'give the label a name');
    else if (key.toLowerCase().startsWith(RESERVED_LABEL_PREFIX)) {
      report(w, `label ${show(key)} uses the reserved prefix ${RESERVED_LABEL_PREFIX}`, 'use your own prefix, e.g. com.example.team');
    } else if (typeof v !== 'string') report(w, `label value ${show(v)} must be a string`, `quote it: '${String(v)}'`);
    else labels[key] = v;
  }
  return labels;
}
