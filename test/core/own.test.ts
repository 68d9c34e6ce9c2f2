// Keys that come from data or config and are named like Object.prototype's
// members ("constructor", "toString", "__proto__") are plain keys everywhere
// such a key is looked up or stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLog } from '../../core/events.ts';
import { compileMatch } from '../../core/match.ts';
import { own, setOwn } from '../../core/own.ts';
import { containerFilter, type ContainerFilterConfig } from '../../plugins/common/docker.ts';
import { compileTags, logKeyValue, renderTemplate } from '../../plugins/outputs/alerting/rules.ts';
import { EntryMapper } from '../../plugins/outputs/loki/entries.ts';
import { createRegexClassifier } from '../../plugins/processors/regex_classifier/index.ts';
import { createUserExtraction } from '../../plugins/processors/user_extraction/index.ts';

test('own() reads own properties only; setOwn() stores "__proto__" as data', () => {
  const obj: Record<string, unknown> = { a: 1 };
  assert.equal(own(obj, 'a'), 1);
  assert.equal(own(obj, 'constructor'), undefined);
  assert.equal(own(obj, 'toString'), undefined);
  setOwn(obj, '__proto__', 'x');
  setOwn(obj, 'constructor', 'y');
  assert.equal(Object.getPrototypeOf(obj), Object.prototype);
  assert.deepEqual(Object.keys(obj), ['a', '__proto__', 'constructor']);
  assert.equal(own(obj, '__proto__'), 'x');
  assert.equal(JSON.stringify(obj), '{"a":1,"__proto__":"x","constructor":"y"}');
});

test('alert templates, group_by values and tag matchers see no inherited members', () => {
  assert.equal(renderTemplate('{{constructor}} {{toString}} {{x}}', { x: 'ok' }), '? ? ok');
  const e = makeLog({ message: 'm', attributes: { user: 'bob' } });
  assert.equal(logKeyValue(e, 'constructor'), '');
  assert.equal(logKeyValue(e, 'user'), 'bob');
  assert.equal(compileTags({ toString: { regex: 'native' } })({ a: 'b' }), false);
  assert.equal(compileTags({ constructor: { not: 'x' } })({}), true);
});

test('match.labels and container label filters need the label itself', () => {
  const filter = compileMatch({ labels: { toString: 'native' } });
  assert.equal(filter({ event: makeLog({ message: 'm', labels: {} }), input: 'i' }), false);
  assert.equal(filter({ event: makeLog({ message: 'm', labels: { toString: 'native code' } }), input: 'i' }), true);
  const base: ContainerFilterConfig = { discover: true, include: [], exclude: [], include_labels: [], exclude_labels: ['constructor'] };
  assert.equal(containerFilter(base, undefined)('web', { 'com.example': 'x' }), true);
  assert.equal(containerFilter(base, undefined)('web', { constructor: 'x' }), false);
  assert.equal(containerFilter({ ...base, exclude_labels: [], include_labels: ['toString'] }, undefined)('web', {}), false);
});

test('Loki lines keep attributes named like prototype members; such label names take no inherited value', () => {
  const opts = { labels: ['constructor', 'container'], staticLabels: {}, structuredMetadata: false, maxLabelValues: 100, hostname: 'h' };
  const attributes: Record<string, unknown> = { toString: 't1', user: 'bob' };
  setOwn(attributes, '__proto__', 'p');
  const event = makeLog({ message: 'hi', labels: { container: 'web' }, attributes });
  const json = new EntryMapper({ ...opts, lineFormat: 'json' }).map(event);
  assert.deepEqual(json.labels, [['container', 'web']]);
  assert.deepEqual(Object.keys(JSON.parse(json.entry.line)).sort(), ['__proto__', 'level', 'message', 'toString', 'user']);
  const logfmt = new EntryMapper({ ...opts, lineFormat: 'logfmt' }).map(event);
  assert.match(logfmt.entry.line, /toString=t1/);
});

test('custom pattern groups named like prototype members become attributes', () => {
  const classifier = createRegexClassifier({ levels: true, categories: true, patterns: { odd: '(?<constructor>\\w+) says (?<toString>\\w+)' }, mode: 'first', ignore_case: false, overwrite_category: false, scan_bytes: '4KiB' });
  const extraction = createUserExtraction({ patterns: ['by (?<valueOf>\\w+)'], default_patterns: false, ignore_case: false, scan_bytes: '4KiB' });
  const e = makeLog({ message: 'alice says hello by bob' });
  classifier.process(e);
  extraction.process(e);
  assert.deepEqual({ ...e.attributes }, { constructor: 'alice', toString: 'hello', category: 'odd', valueOf: 'bob' });
});
