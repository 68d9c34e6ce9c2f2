// End-to-end acknowledgement. An Envelope carries an event with what the
// runtime knows about it (origin input, its position in the source, the
// delivery it belongs to); a Delivery counts the outputs still holding events
// of one tracked emit and tells the input once all have written or dropped them.

import type { Event } from './events.ts';
import type { Checkpoint, TrackedEmit } from './plugin.ts';

export interface Envelope {
  event: Event;
  /** Id of the input instance that emitted it ("internal" for self-metrics). */
  input: string;
  delivery?: Delivery;
  position?: Checkpoint;
}

export class Delivery {
  // Both held by the pipeline until fan-out is complete.
  private pending = 1;
  private unaccepted = 1;
  private onDelivered?: () => void;
  private onAccepted?: () => void;

  constructor(track: TrackedEmit) {
    this.onDelivered = track.onDelivered;
    this.onAccepted = track.onAccepted;
  }

  /** An output took one event of this delivery. */
  acquire(): void {
    this.pending++;
    this.unaccepted++;
  }

  /** An output staged one event (it will make it durable later); at most once per acquire. */
  accept(): void {
    if (--this.unaccepted === 0) {
      const cb = this.onAccepted;
      this.onAccepted = undefined;
      cb?.();
    }
  }

  /** One event was written or dropped on purpose (or fan-out finished); `accepted` when accept() was called for it already. */
  release(accepted = false): void {
    if (!accepted) this.accept();
    if (--this.pending === 0) {
      const cb = this.onDelivered;
      this.onDelivered = undefined;
      cb?.();
    }
  }
}

/** Highest position per (input, key) in a batch, in the order the keys first appear. */
export function checkpointsFor(batch: Envelope[]): Checkpoint[] {
  const latest: Checkpoint[] = [];
  // Nested maps of the strings as they are: an input's keys recur line after
  // line, each hashed once, where a joined key was a fresh string to hash per line.
  const at = new Map<string, Map<string, number>>();
  for (const env of batch) {
    const p = env.position;
    if (!p) continue;
    let byKey = at.get(p.input);
    if (!byKey) at.set(p.input, (byKey = new Map()));
    const i = byKey.get(p.key);
    if (i === undefined) {
      byKey.set(p.key, latest.length);
      latest.push(p);
    } else if (latest[i]!.order <= p.order) latest[i] = p;
  }
  return latest;
}
