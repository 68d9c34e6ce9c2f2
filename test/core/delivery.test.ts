import assert from 'node:assert/strict';
import test from 'node:test';
import { checkpointsFor, type Envelope } from '../../core/delivery.ts';
import { makeLog } from '../../core/events.ts';

const env = (input: string, key: string, order: string): Envelope => ({ event: makeLog({ message: order }), input, position: { input, key, value: order, order } });

test('checkpointsFor: the highest position of each (input, key), in the order keys first appear', () => {
  const batch: Envelope[] = [
    env('logs', 'b', '002'),
    env('logs', 'a', '005'),
    { event: makeLog({ message: 'no position' }), input: 'webhook' },
    env('logs', 'b', '001'), // lower than what came before it: not taken
    env('other', 'a', '001'), // the same key under another input is another position
    env('logs', 'a', '007'),
    env('logs', 'b', '003'),
  ];
  assert.deepEqual(
    checkpointsFor(batch).map((p) => `${p.input}/${p.key}@${p.order}`),
    ['logs/b@003', 'logs/a@007', 'other/a@001'],
  );
  assert.deepEqual(checkpointsFor([]), []);
});
