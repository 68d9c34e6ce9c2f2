// Which stretches of time the store's log lines changed in, by version, so
// that a reader keeping answers about past stretches (the API's search
// counts) can tell which ones still hold without reading the table again.
// The store is the only writer of its file: every commit of log rows records
// the range of their timestamps, and any other change (retention, recovery,
// a reopen) records everything.

import type { LogChanges } from '../../common/providers.ts';

const EVERYTHING: [bigint, bigint] = [-(2n ** 63n), 2n ** 63n - 1n];

export class ChangeLog implements LogChanges {
  private entries: Array<{ version: number; from: bigint; to: bigint }> = [];
  private current = 0;

  /** `keep`: changes remembered; a reader last up to date before them reads the table instead. */
  constructor(private keep = 4096) {}

  get version(): number {
    return this.current;
  }

  /** Log lines with timestamps in [from, to] (ns) were added or removed. */
  record(from: bigint, to: bigint): void {
    this.current++;
    this.entries.push({ version: this.current, from, to });
    // Dropped in halves, so the array is not shifted on every commit.
    if (this.entries.length > 2 * this.keep) this.entries = this.entries.slice(this.entries.length - this.keep);
  }

  /** Any line may have changed. */
  everything(): void {
    this.record(...EVERYTHING);
  }

  since(version: number): Array<[bigint, bigint]> | undefined {
    if (version > this.current) return undefined;
    const first = this.entries.length ? this.entries[0]!.version : this.current + 1;
    if (version < first - 1) return undefined;
    const touched: Array<[bigint, bigint]> = [];
    for (let i = this.entries.length - 1; i >= 0 && this.entries[i]!.version > version; i--) touched.push([this.entries[i]!.from, this.entries[i]!.to]);
    return touched;
  }
}
