/** What a simulation run counts as it goes: the faults that fired, and the checks that failed. */
export class Tally {
  /** How many times each kind of fault (or drill, or event of note) fired. */
  readonly injected: Record<string, number> = {};
  /** Every violated check, in words. */
  readonly problems: string[] = [];

  fired(name: string): void {
    this.injected[name] = (this.injected[name] ?? 0) + 1;
  }

  problem(text: string): void {
    this.problems.push(text);
  }

  /** `kind=count ...`, by name. */
  summary(): string {
    return Object.entries(this.injected)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
  }
}
