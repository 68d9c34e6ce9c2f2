import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { NotPlainResponse, openLogStream } from '../../../plugins/common/docker_log_stream.ts';
import { dockerOptions } from '../../../plugins/common/docker.ts';
import { requireDocker, removeTestContainers, runContainer, waitExited } from '../../docker.ts';
import { tempDir } from '../../helpers.ts';

const FOLLOW = { follow: true, stdout: true, stderr: true, timestamps: true };
const tmp = tempDir('opshub-logstream-');
after(() => tmp.cleanup());

async function readAll(s: net.Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (b: Buffer) => parts.push(b));
  s.resume();
  await new Promise<void>((resolve, reject) => {
    s.on('end', resolve);
    s.on('error', reject);
  });
  return Buffer.concat(parts);
}

/** The text of Docker's multiplexed frames (8-byte header: stream, 0, 0, 0, big-endian length). */
function demux(b: Buffer): string {
  let out = '';
  for (let at = 0; at + 8 <= b.length; ) {
    const n = b.readUInt32BE(at + 4);
    out += b.toString('utf8', at + 8, at + 8 + n);
    at += 8 + n;
  }
  return out;
}

/** A fake engine: answers each connection with `answer(request)`, written in the pieces given, then closes (unless `keepOpen`; undefined: never answers). */
function fakeEngine(listen: net.ListenOptions | { tls: tls.TlsOptions; port: 0; host: string }, answer: (request: string) => string[] | undefined, keepOpen = false) {
  const requests: string[] = [];
  const onConnection = (sock: net.Socket) => {
    let got = '';
    sock.on('data', async (b) => {
      got += b.toString('latin1');
      if (!got.includes('\r\n\r\n')) return;
      requests.push(got);
      const pieces = answer(got);
      if (!pieces) return; // never answers
      for (const p of pieces) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (!keepOpen) sock.end();
    });
    sock.on('error', () => undefined);
  };
  const server = 'tls' in listen ? tls.createServer(listen.tls, onConnection) : net.createServer(onConnection);
  const listening = new Promise<void>((resolve) => server.listen('tls' in listen ? { port: 0, host: listen.host } : listen, resolve));
  return { server, requests, listening, port: () => (server.address() as net.AddressInfo).port };
}

test('a container\'s log is read off the connection: the frames as the engine sends them, to the end', async () => {
  await requireDocker();
  const c = await runContainer('for i in 1 2 3; do echo "line $i"; done; echo oops >&2');
  try {
    await waitExited(c);
    const s = await openLogStream(dockerOptions({ endpoint: '', tls_ca: '', tls_cert: '', tls_key: '', api_timeout: '10s' }), c.id, FOLLOW, 10_000);
    const text = demux(await readAll(s));
    const lines = text.trimEnd().split('\n');
    // stdout's and stderr's lines are in the order of their timestamps, which need not be the order the script wrote them.
    assert.deepEqual(lines.map((l) => l.slice(l.indexOf(' ') + 1)).sort(), ['line 1', 'line 2', 'line 3', 'oops']);
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z /);
  } finally {
    await removeTestContainers();
  }
});

test('a refused request rejects as dockerode would: the status code and the engine\'s message', async () => {
  await requireDocker();
  const err = await openLogStream({ socketPath: '/var/run/docker.sock' }, 'no-such-container-opshub', FOLLOW, 10_000).then(
    () => undefined,
    (e: unknown) => e as Error & { statusCode?: number },
  );
  assert.ok(err, 'rejected');
  assert.equal(err.statusCode, 404);
  assert.match(err.message, /\(HTTP code 404\) - No such container: no-such-container-opshub/);
});

test('over tcp: an HTTP/1.0 request with the query, headers split across reads, the body byte for byte; a version prefix when configured', async () => {
  const body = Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 6]), Buffer.from('hello\n')]).toString('latin1');
  const engine = fakeEngine({ port: 0, host: '127.0.0.1' }, () => ['HTTP/1.0 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r', '\n\r\n' + body.slice(0, 3), body.slice(3)]);
  await engine.listening;
  try {
    const s = await openLogStream({ protocol: 'http', host: '127.0.0.1', port: engine.port(), version: 'v1.41' }, 'abc', { ...FOLLOW, since: '12.5', tail: undefined });
    assert.equal((await readAll(s)).toString('latin1'), body);
    assert.match(engine.requests[0]!, /^GET \/v1\.41\/containers\/abc\/logs\?follow=true&stdout=true&stderr=true&timestamps=true&since=12\.5 HTTP\/1\.0\r\n/);
  } finally {
    engine.server.close();
  }
});

test('a refusal from a peer that keeps the connection open ends with its body: Content-Length, or the last chunk', async () => {
  const sock = (name: string) => path.join(tmp.dir, name);
  const sized = fakeEngine({ path: sock('sized.sock') }, () => ['HTTP/1.1 404 Not Found\r\nContent-Length: 23\r\n\r\n{"message":"gone a', 'way"}'], true);
  const chunked = fakeEngine({ path: sock('chunked-err.sock') }, () => ['HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n{"message":"engine broke"}\r\n', '0\r\n\r\n'], true);
  await Promise.all([sized.listening, chunked.listening]);
  try {
    const t = Date.now();
    await assert.rejects(openLogStream({ socketPath: sock('sized.sock') }, 'abc', FOLLOW, 3000), (err: Error & { statusCode?: number }) => err.statusCode === 404 && /\(HTTP code 404\) - gone away$/.test(err.message));
    await assert.rejects(openLogStream({ socketPath: sock('chunked-err.sock') }, 'abc', FOLLOW, 3000), (err: Error & { statusCode?: number }) => err.statusCode === 500 && /\(HTTP code 500\) - engine broke$/.test(err.message));
    assert.ok(Date.now() - t < 2000, 'not left to the timeout');
  } finally {
    for (const e of [sized, chunked]) e.server.close();
  }
});

test('over tcp with TLS, verified against the configured CA', async () => {
  const key = path.join(tmp.dir, 'engine.key');
  const cert = path.join(tmp.dir, 'engine.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const engine = fakeEngine({ tls: { key: readFileSync(key), cert: readFileSync(cert) }, port: 0, host: '127.0.0.1' }, () => ['HTTP/1.0 200 OK\r\n\r\nsecret log']);
  await engine.listening;
  try {
    const opts = dockerOptions({ endpoint: `tcp://127.0.0.1:${engine.port()}`, tls_ca: cert, tls_cert: '', tls_key: '', api_timeout: '5s' });
    assert.equal((await readAll(await openLogStream(opts, 'abc', FOLLOW, 5000))).toString(), 'secret log');
    // Without the CA the engine's certificate is refused.
    await assert.rejects(openLogStream({ ...opts, ca: undefined }, 'abc', FOLLOW, 5000), /self[- ]signed/i);
  } finally {
    engine.server.close();
  }
});

test('a framed answer (a proxy speaking HTTP/1.1) is refused as NotPlainResponse; a silent engine times out; a non-HTTP answer is said', async () => {
  const sock = (name: string) => path.join(tmp.dir, name);
  const chunked = fakeEngine({ path: sock('chunked.sock') }, () => ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n0\r\n\r\n']);
  const silent = fakeEngine({ path: sock('silent.sock') }, () => undefined);
  const garbage = fakeEngine({ path: sock('garbage.sock') }, () => ['SSH-2.0-OpenSSH\r\n\r\n']);
  await Promise.all([chunked.listening, silent.listening, garbage.listening]);
  try {
    await assert.rejects(openLogStream({ socketPath: sock('chunked.sock') }, 'abc', FOLLOW), (err) => err instanceof NotPlainResponse && /transfer-encoding: chunked/i.test(err.message));
    const t = Date.now();
    await assert.rejects(openLogStream({ socketPath: sock('silent.sock') }, 'abc', FOLLOW, 200), (err: NodeJS.ErrnoException) => err.code === 'ETIMEDOUT');
    assert.ok(Date.now() - t < 5000);
    await assert.rejects(openLogStream({ socketPath: sock('garbage.sock') }, 'abc', FOLLOW), /something other than HTTP: "SSH-2\.0-OpenSSH"/);
  } finally {
    for (const e of [chunked, silent, garbage]) e.server.close();
  }
});
