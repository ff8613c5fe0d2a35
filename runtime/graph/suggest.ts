/** "Did you mean …?" for typo'd keys: a small edit distance (with adjacent transpositions). */

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const n = a.length;
  const m = b.length;
  if (n === 0) return m;
  if (m === 0) return n;
  const d: number[][] = Array.from({ length: n + 1 }, (_, i) => {
    const row = new Array<number>(m + 1).fill(0);
    row[0] = i;
    return row;
  });
  for (let j = 0; j <= m; j++) d[0][j] = j;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

const normalise = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/**
 * The candidate closest to `word`, or undefined when nothing is close enough.
 * Case, `-` and `_` are ignored first (`depends_on` → `dependsOn`); then a unique prefix of at least
 * three letters (`mem` → `memory`); otherwise the edit distance
 * must be at most a third of the word's length (at least 1, at most 3).
 */
export function suggest(word: string, candidates: string[]): string | undefined {
  const w = normalise(word);
  const exact = candidates.find((c) => normalise(c) === w);
  if (exact !== undefined) return exact;
  if (w.length >= 3) {
    const prefixed = candidates.filter((c) => normalise(c).startsWith(w));
    if (prefixed.length === 1) return prefixed[0];
  }
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const dist = editDistance(w, normalise(c));
    if (dist <= limit && dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}
