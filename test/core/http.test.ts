// The agent's HTTP server over real HTTP: route schemas validate queries and
// bodies (400 naming the parameter), unknown routes 404, other methods 405,
// routes mounted and removed at run time (the fastify router is rebuilt),
// /openapi.json (a valid OpenAPI 3 document) and /docs, rate limits and CORS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, WebSocket } from 'ws';
import SwaggerParser from '@apidevtools/swagger-parser';
import { AgentHttpServer, HttpError, readBody, sendJson, type HttpPolicies } from '../../core/http.ts';
import { createLogger } from '../../core/log.ts';
import { startAgent } from '../helpers.ts';

async function server(policies: Partial<HttpPolicies> = {}, authToken?: string) {
  const http = new AgentHttpServer({ listen: '127.0.0.1:0', log: createLogger({ level: 'error', sink: () => undefined }), policies, authToken });
  await http.start();
  return { http, url: http.url() };
}

const searchRoute = {
  method: 'GET',
  path: '/things/:name',
  schema: {
    summary: 'Things by name',
    tags: ['test'],
    params: { type: 'object', properties: { name: { type: 'string', description: 'thing' } } },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100, description: 'most results' },
        level: { type: 'string', enum: ['info', 'error'], description: 'level' },
        since: { type: 'string', format: 'date-time', description: 'from' },
        follow: { type: 'boolean', default: false, description: 'stream' },
      },
    },
    response: {
      200: {
        description: 'ok',
        type: 'object',
        properties: { name: { type: 'string' }, limit: { type: 'integer' }, follow: { type: 'boolean' }, level: { type: 'string', nullable: true } },
      },
    },
  },
  reply: (r: { params: Record<string, string>; query: Record<string, any> }) => {
    if (r.params.name === 'missing') throw new HttpError(404, 'not_found', 'no thing named missing');
    return { name: r.params.name, limit: r.query.limit, follow: r.query.follow, level: r.query.level ?? null, secret: 'not in the schema' };
  },
};

test('a reply route: the query is coerced and defaulted; bad values get 400 naming the parameter and why', async () => {
  const { http, url } = await server();
  try {
    http.route(searchRoute);
    const ok = await fetch(`${url}/things/a%20b?limit=5&follow=true`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { name: 'a b', limit: 5, follow: true, level: null }, 'typed, defaulted, serialised by the schema (extra fields left out)');
    assert.deepEqual(await (await fetch(`${url}/things/x/`)).json(), { name: 'x', limit: 100, follow: false, level: null }, 'a trailing slash is the same route');

    const cases: Array<[string, string, RegExp]> = [
      ['limit=0', 'limit', /query parameter limit must be >= 1/],
      ['limit=20000', 'limit', /query parameter limit must be <= 10000/],
      ['limit=many', 'limit', /query parameter limit must be an integer/],
      ['level=loud', 'level', /query parameter level must be one of: info, error/],
      ['since=yesterday', 'since', /query parameter since must be an ISO 8601 time/],
      ['follow=maybe', 'follow', /query parameter follow must be true or false/],
    ];
    for (const [query, parameter, message] of cases) {
      const res = await fetch(`${url}/things/x?${query}`);
      assert.equal(res.status, 400, query);
      const body = (await res.json()) as { error: string; message: string; parameter: string };
      assert.equal(body.error, 'bad_request');
      assert.equal(body.parameter, parameter, query);
      assert.match(body.message, message);
    }
    const missing = await fetch(`${url}/things/missing`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'not_found', message: 'no thing named missing' });
  } finally {
    await http.stop();
  }
});

test('a reply route with a body schema validates the JSON body', async () => {
  const { http, url } = await server();
  try {
    http.route({
      method: 'POST',
      path: '/echo',
      schema: { body: { type: 'object', required: ['n'], properties: { n: { type: 'integer', minimum: 0 } } } },
      reply: (r) => ({ got: (r.body as { n: number }).n }),
    });
    const post = (body: string, type = 'application/json') => fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': type }, body });
    assert.deepEqual(await (await post('{"n": 3}')).json(), { got: 3 });
    const missing = await post('{}');
    assert.equal(missing.status, 400);
    assert.deepEqual(await missing.json(), { error: 'bad_request', message: 'body n is required', parameter: 'n' });
    assert.equal((await post('{"n": -1}')).status, 400);
    const broken = await post('{"n": ');
    assert.equal(broken.status, 400);
    assert.equal(((await broken.json()) as { error: string }).error, 'bad_request');
  } finally {
    await http.stop();
  }
});

test('raw routes read their own bodies, whatever the content type; HEAD answers for GET', async () => {
  const { http, url } = await server();
  try {
    http.route({
      method: 'POST',
      path: '/raw',
      schema: { body: { type: 'object', description: 'anything' }, consumes: ['application/json', 'text/plain'] },
      handler: async (req, res) => sendJson(res, 200, { bytes: (await readBody(req, 1024)).length, type: req.headers['content-type'] ?? null }),
    });
    http.route({ method: 'GET', path: '/plain', handler: (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello') });
    for (const [type, body] of [['application/json', '{"a":1}'], ['text/plain', 'SELECT 1'], ['application/octet-stream', 'xyz']] as const) {
      const res = await fetch(`${url}/raw`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.deepEqual(await res.json(), { bytes: body.length, type });
    }
    const untyped = await fetch(`${url}/raw`, { method: 'POST', body: new Uint8Array([1, 2, 3]) });
    assert.equal(((await untyped.json()) as { bytes: number }).bytes, 3);
    const head = await fetch(`${url}/plain`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  } finally {
    await http.stop();
  }
});

test('unknown routes get 404, a known path with another method 405 with Allow; errors thrown by raw routes become their status', async () => {
  const { http, url } = await server();
  try {
    http.route({ method: 'POST', path: '/only-post', handler: (_q, res) => void res.end('x') });
    http.route({ method: 'GET', path: '/teapot', handler: () => { throw new HttpError(418, 'teapot', 'short and stout'); } });
    const nowhere = await fetch(`${url}/nowhere`);
    assert.equal(nowhere.status, 404);
    assert.deepEqual(await nowhere.json(), { error: 'not_found', message: 'no route for GET /nowhere' });
    const wrong = await fetch(`${url}/only-post`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    const tea = await fetch(`${url}/teapot`);
    assert.equal(tea.status, 418);
    assert.deepEqual(await tea.json(), { error: 'teapot', message: 'short and stout' });
  } finally {
    await http.stop();
  }
});

test('routes mounted and removed while the server runs are served at once; a stream keeps running across a rebuild', async () => {
  const { http, url } = await server();
  try {
    let streamRes: import('node:http').ServerResponse | undefined;
    http.route({
      method: 'GET',
      path: '/stream',
      handler: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first\n');
        streamRes = res;
      },
    });
    const streaming = await fetch(`${url}/stream`);
    const reader = streaming.body!.getReader();
    const decoder = new TextDecoder();
    assert.equal(decoder.decode((await reader.read()).value), 'first\n');

    const remove = http.route({ method: 'GET', path: '/late', reply: () => ({ late: true }) });
    assert.deepEqual(await (await fetch(`${url}/late`)).json(), { late: true });
    remove();
    assert.equal((await fetch(`${url}/late`)).status, 404);
    http.route({ method: 'GET', path: '/late', reply: () => ({ again: true }) });
    assert.deepEqual(await (await fetch(`${url}/late`)).json(), { again: true });

    streamRes!.end('second\n');
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += decoder.decode(r.value);
    assert.equal(rest, 'second\n');
  } finally {
    await http.stop();
  }
});

test('a route whose schema is not valid JSON Schema is refused when mounted', async () => {
  const { http } = await server();
  try {
    assert.throws(
      () => http.route({ method: 'GET', path: '/bad', schema: { querystring: { type: 'object', properties: { n: { type: 'nonsense' } } } }, reply: () => ({}) }),
      /GET \/bad: schema.querystring is not a valid JSON Schema/,
    );
    assert.throws(() => http.route({ method: 'GET', path: '/none' } as never), /needs a handler or a reply function/);
  } finally {
    await http.stop();
  }
});

test('/openapi.json is a valid OpenAPI 3 document of every route (WebSocket endpoints as 101), public like /docs', async () => {
  const { http, url } = await server({}, 's3cret');
  try {
    http.route(searchRoute);
    http.route({ method: 'POST', path: '/raw', auth: 'agent', schema: { summary: 'Raw body', body: { type: 'object', properties: { sql: { type: 'string' } } } }, handler: (_q, res) => void res.end() });
    const wss = new WebSocketServer({ noServer: true });
    http.upgrade('/ws/things', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.send('hi')), 'agent', {
      summary: 'Live things',
      querystring: { type: 'object', properties: { level: { type: 'string', description: 'minimum level' } } },
    });
    const res = await fetch(`${url}/openapi.json`);
    assert.equal(res.status, 200, 'public although a token is set');
    const doc = (await res.json()) as any;
    await SwaggerParser.validate(structuredClone(doc));
    assert.equal(doc.openapi, '3.0.3');
    assert.deepEqual(Object.keys(doc.paths).sort(), ['/health', '/raw', '/things/{name}', '/ws/things']);
    const get = doc.paths['/things/{name}'].get;
    assert.equal(get.summary, 'Things by name');
    assert.deepEqual(get.security, [{ bearerAuth: [] }]);
    assert.deepEqual(get.parameters.map((p: any) => `${p.in}:${p.name}`).sort(), ['path:name', 'query:follow', 'query:level', 'query:limit', 'query:since']);
    assert.ok(get.responses['400'] && get.responses['401'], 'bad input and auth failures are documented');
    assert.deepEqual(doc.paths['/health'].get.security, []);
    assert.ok(doc.paths['/raw'].post.requestBody.content['application/json'].schema.properties.sql, 'a raw route documents its body');
    assert.ok(doc.paths['/ws/things'].get.responses['101']);
    assert.equal(doc.paths['/ws/things'].get.parameters[0].name, 'level');

    const docs = await fetch(`${url}/docs`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger-ui/i);
    assert.equal((await fetch(`${url}/things/x`)).status, 401, 'the routes themselves still need the token');
    const plain = await fetch(`${url}/ws/things`, { headers: { authorization: 'Bearer s3cret' } });
    assert.equal(plain.status, 426, 'a plain GET on a WebSocket path says to upgrade');
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws/things?token=s3cret`);
    assert.equal(await new Promise((resolve, reject) => { ws.once('message', (m) => resolve(String(m))); ws.once('error', reject); }), 'hi');
    ws.close();
    wss.close();
  } finally {
    await http.stop();
  }
});

test('docs: false serves neither /openapi.json nor /docs', async () => {
  const { http, url } = await server({ docs: false });
  try {
    assert.equal((await fetch(`${url}/openapi.json`)).status, 404);
    assert.equal((await fetch(`${url}/docs`)).status, 404);
  } finally {
    await http.stop();
  }
});

test('rate limit from agent.http.rate_limit: a client over its budget gets 429 with Retry-After; /health is exempt; off by default', async () => {
  const off = await startAgent('agent:\n  self_metrics: false\n');
  try {
    const statuses = await Promise.all(Array.from({ length: 30 }, () => fetch(`${off.url}/nowhere`).then((r) => r.status)));
    assert.ok(statuses.every((s) => s === 404), 'no limit unless configured');
  } finally {
    await off.stop();
  }
  const t = await startAgent('agent:\n  self_metrics: false\n  http:\n    rate_limit:\n      requests: 5\n      window: 1m\n');
  try {
    const first = await fetch(`${t.url}/nowhere`);
    assert.equal(first.headers.get('x-ratelimit-limit'), '5');
    assert.equal(first.headers.get('x-ratelimit-remaining'), '4');
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${t.url}/nowhere`)).status, 404);
    const limited = await fetch(`${t.url}/nowhere`);
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 12, `Retry-After ${retryAfter} s: one request comes back every 12 s`);
    const body = (await limited.json()) as { error: string; message: string };
    assert.equal(body.error, 'rate_limited');
    assert.match(body.message, /more than 5 requests per 1 min from 127\.0\.0\.1/);
    assert.equal((await fetch(`${t.url}/health`)).status, 200, '/health is exempt');
  } finally {
    await t.stop();
  }
});

test('CORS from agent.http.cors.origins: allowed origins get the headers and preflights 204; others get none (preflight 403)', async () => {
  const t = await startAgent('agent:\n  self_metrics: false\n  http:\n    auth_token: s3cret\n    cors:\n      origins: ["https://dash.example.com"]\n');
  try {
    const simple = await fetch(`${t.url}/health`, { headers: { origin: 'https://dash.example.com' } });
    assert.equal(simple.headers.get('access-control-allow-origin'), 'https://dash.example.com');
    assert.match(simple.headers.get('access-control-expose-headers') ?? '', /Retry-After/);
    const denied = await fetch(`${t.url}/health`, { headers: { origin: 'https://evil.example.com' } });
    assert.equal(denied.headers.get('access-control-allow-origin'), null);
    const preflight = await fetch(`${t.url}/search/logs`, {
      method: 'OPTIONS',
      headers: { origin: 'https://dash.example.com', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(preflight.status, 204, 'no token needed for a preflight');
    assert.equal(preflight.headers.get('access-control-allow-headers'), 'authorization');
    const badPreflight = await fetch(`${t.url}/search/logs`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' } });
    assert.equal(badPreflight.status, 403);
    const unauthorized = await fetch(`${t.url}/nowhere-protected`, { headers: { origin: 'https://dash.example.com' } });
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), 'https://dash.example.com', 'error answers carry the headers too, so the page can read them');
  } finally {
    await t.stop();
  }
});

test("a reply route's signal aborts when the client goes away before the answer, and not after a complete one", async () => {
  const { http, url } = await server();
  try {
    let slow: AbortSignal | undefined;
    let fast: AbortSignal | undefined;
    const gone = new Promise<void>((resolve) => {
      http.route({
        method: 'GET',
        path: '/slow',
        reply: async (r) => {
          slow = r.signal;
          await new Promise<void>((done) => r.signal.addEventListener('abort', () => done(), { once: true }));
          resolve();
          return { late: true };
        },
      });
    });
    http.route({ method: 'GET', path: '/fast', reply: (r) => ((fast = r.signal), { ok: true }) });
    assert.deepEqual(await (await fetch(`${url}/fast`)).json(), { ok: true });
    const client = new AbortController();
    const request = fetch(`${url}/slow`, { signal: client.signal }).catch(() => undefined);
    while (!slow) await new Promise((r) => setTimeout(r, 5));
    client.abort();
    await gone;
    await request;
    assert.equal(slow.aborted, true);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(fast!.aborted, false, 'a finished answer is not aborted');
  } finally {
    await http.stop();
  }
});
