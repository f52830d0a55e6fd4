/** Draws from a seeded generator (local/events.ts seededRandom) for the simulation. */

export function pickOne<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A whole number in [min, max). */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min));
}

/** Exponentially distributed delay with the given mean (a Poisson process), at least a second. */
export function exponential(random: () => number, mean: number): number {
  return Math.max(1000, Math.floor(-Math.log(1 - random()) * mean));
}
