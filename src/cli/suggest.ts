// "Did you mean": the candidate nearest to what was typed by edit distance, if it is near enough to be a
// typo (at most 2 edits, and fewer than half the word) rather than another word.
export function closest(input: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.min(3, Math.ceil(input.length / 2));
  for (const n of names) {
    const d = distance(input.toLowerCase(), n.toLowerCase());
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counted as one edit ("delpoy" is 1 from "deploy"). */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
