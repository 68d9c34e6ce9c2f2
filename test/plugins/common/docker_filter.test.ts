// containerFilter (plugins/common/docker.ts), shared by docker_logs and
// docker_stats: name regexes, labels, `discover`, and empty patterns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerFilter, DEFAULT_EXCLUDE, type ContainerFilterConfig } from '../../../plugins/common/docker.ts';

const base: ContainerFilterConfig = { discover: true, include: [], exclude: DEFAULT_EXCLUDE, include_labels: [], exclude_labels: [] };
const NAMES = ['open-webui', 'ollama', 'opshub', 'stack-opshub-1', 'stack-loki-1', 'promtail'];

const cases: Array<{ name: string; cfg: Partial<ContainerFilterConfig>; chosen: string[] }> = [
  { name: 'discovers every container but the agent by default', cfg: {}, chosen: ['open-webui', 'ollama', 'stack-loki-1', 'promtail'] },
  { name: 'an include regex limits discovery to the names it matches', cfg: { include: ['^ollama$'] }, chosen: ['ollama'] },
  { name: 'an empty include pattern (unset ${VAR:-}) is no filter', cfg: { include: [''] }, chosen: ['open-webui', 'ollama', 'stack-loki-1', 'promtail'] },
  { name: 'an empty exclude pattern excludes nothing', cfg: { exclude: [''] }, chosen: NAMES },
  { name: 'discover: false reads only containers an include regex names', cfg: { discover: false, include: ['webui'] }, chosen: ['open-webui'] },
  { name: 'discover: false without include regexes reads none', cfg: { discover: false, include: [''] }, chosen: [] },
  {
    name: 'the image default exclude skips the agent, Loki and Promtail',
    cfg: { exclude: ['(^|[-_.])(opshub|loki|promtail)([-_.]\\d+)?$'] },
    chosen: ['open-webui', 'ollama'],
  },
];

for (const c of cases) {
  test(c.name, () => {
    const filter = containerFilter({ ...base, ...c.cfg }, undefined);
    assert.deepEqual(NAMES.filter((n) => filter(n, {})), c.chosen);
  });
}

test('the container the agent runs in is skipped whatever the filters say', () => {
  const filter = containerFilter({ ...base, exclude: [] }, 'abc123');
  assert.equal(filter('anything', {}, 'abc123def'), false);
  assert.equal(filter('anything', {}, 'fff'), true);
});
