// A small durable key → position store for inputs (e.g. one position per
// container), kept as JSON under the instance's data_dir. Saves are atomic
// (write a temp file, fsync, rename), so a kill -9 leaves the old or the new
// file, never a torn one. Saves are coalesced: at most one write in flight.

import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

export class CheckpointFile<V = unknown> {
  private values = new Map<string, V>();
  private writing?: Promise<void>;
  private dirty = false;
  readonly file: string;

  constructor(dir: string, name = 'checkpoints.json') {
    this.file = path.join(dir, name);
    try {
      const data = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, V>;
      for (const [k, v] of Object.entries(data)) this.values.set(k, v);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read checkpoints ${this.file}: ${(err as Error).message}`);
    }
  }

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  entries(): Array<[string, V]> {
    return [...this.values];
  }

  /** Records a position; call flush() (or rely on the coalesced write) to persist it. */
  set(key: string, value: V): void {
    this.values.set(key, value);
    this.schedule();
  }

  delete(key: string): void {
    if (this.values.delete(key)) this.schedule();
  }

  private schedule(): void {
    this.dirty = true;
    this.writing ??= this.writeLoop();
  }

  private async writeLoop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        await this.writeNow();
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async writeNow(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(Object.fromEntries(this.values)));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
  }

  /** Resolves once everything set so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }
}
