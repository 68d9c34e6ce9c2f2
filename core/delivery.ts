// End-to-end acknowledgement. An Envelope carries an event with what the
// runtime knows about it; a Delivery counts the outputs still holding events
// of one tracked emit and tells the input once all have written or dropped
// them. The Delivery also remembers, per output, the last of its events, so
// the batch that carries it can commit the checkpoint with the events.

import type { Event } from './events.ts';
import type { Checkpoint, TrackedEmit } from './plugin.ts';

export interface Envelope {
  event: Event;
  /** Id of the input instance that emitted it ("internal" for self-metrics). */
  input: string;
  delivery?: Delivery;
}

export class Delivery {
  private pending = 1; // held by the pipeline until fan-out is complete
  /** The last envelope of this delivery each holder (output) took: the batch with it carries the checkpoint. */
  private lastByHolder = new Map<object, Envelope>();
  readonly checkpoint?: Checkpoint;
  private onDelivered?: () => void;

  constructor(track: TrackedEmit) {
    this.checkpoint = track.checkpoint;
    this.onDelivered = track.onDelivered;
  }

  /** An output took one event of this delivery (events are taken in order). */
  acquire(holder: object, env: Envelope): void {
    this.pending++;
    this.lastByHolder.set(holder, env);
  }

  isLastFor(holder: object, env: Envelope): boolean {
    return this.lastByHolder.get(holder) === env;
  }

  /** One event was written or dropped on purpose (or fan-out finished). */
  release(): void {
    if (--this.pending === 0) {
      this.lastByHolder.clear();
      const cb = this.onDelivered;
      this.onDelivered = undefined;
      cb?.();
    }
  }
}

/** Latest checkpoint per (input, key) among envelopes that end their delivery for `holder`. */
export function checkpointsFor(batch: Envelope[], holder: object): Checkpoint[] {
  const latest = new Map<string, Checkpoint>();
  for (const env of batch) {
    const d = env.delivery;
    if (d?.checkpoint && d.isLastFor(holder, env)) latest.set(`${d.checkpoint.input}\u0000${d.checkpoint.key}`, d.checkpoint);
  }
  return [...latest.values()];
}
