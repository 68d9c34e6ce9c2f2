// A followed container log read straight off the connection to the engine.
//
// Why not dockerode's stream: over HTTP/1.1 the engine sends every log line
// as a chunk of its own, and Node's HTTP client hands each chunk over as an
// event of its own, however much one socket read brought: ~3-3.7 µs of CPU a
// line under load (.scratch measurements of 200,000 lines with 8 µs of work
// a line, pinned). Asked over HTTP/1.0 the engine (Go's net/http) sends the
// body as it is, unframed, until it closes the connection, so the socket
// itself is the log stream: one event per read, ~100 lines a read under the
// same load, ~1-1.2 µs a line. Used for the transports the agent configures
// (unix socket, tcp, tcp with TLS); a response that is framed after all (a
// proxy in between answering HTTP/1.1) is refused with NotPlainResponse, and
// the caller asks dockerode instead.

import net from 'node:net';
import tls from 'node:tls';
import type Docker from 'dockerode';
import { untimedSocket } from './docker.ts';

/** The engine answered in a form this reader does not unwrap (chunked, compressed). */
export class NotPlainResponse extends Error {}

/** Most bytes of a response's status line and headers. */
const MAX_HEAD = 64 * 1024;

/** The query string of a logs request, as dockerode writes one (booleans as true/false). */
function queryString(query: Record<string, unknown>): string {
  return Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
}

function connect(opts: Docker.DockerOptions): net.Socket {
  if (opts.socketPath) return net.connect(opts.socketPath as string);
  const host = opts.host ?? 'localhost';
  const port = Number(opts.port ?? (opts.protocol === 'https' ? 2376 : 2375));
  if (opts.protocol !== 'https') return net.connect({ host, port });
  return tls.connect({ host, port, ca: opts.ca, cert: opts.cert, key: opts.key, servername: net.isIP(host) ? undefined : host });
}

/** The data of a chunked body (as far as it goes). */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < body.length; ) {
    const eol = body.indexOf('\r\n', at);
    const size = eol < 0 ? NaN : parseInt(body.toString('latin1', at, eol), 16);
    if (!(size > 0)) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/** An error as dockerode makes one for a refused request: statusCode, and the engine's message. */
function engineError(status: number, body: string): Error {
  let message = body.trim();
  try {
    const json = JSON.parse(body) as { message?: unknown };
    if (typeof json.message === 'string') message = json.message;
  } catch {
    /* not JSON: the text as it is */
  }
  return Object.assign(new Error(`(HTTP code ${status}) - ${message}`), { statusCode: status, reason: message });
}

/**
 * Asks for a container's log (`query` as for dockerode's container.logs) and
 * resolves to the socket, paused, positioned at the first byte of the log:
 * read it as a stream; it ends when the engine ends the log; destroy() stops
 * it. `timeoutMs` bounds the wait for the response to begin, as dockerode's
 * timeout does; the stream after it may be quiet for as long as it likes.
 */
export function openLogStream(opts: Docker.DockerOptions, id: string, query: Record<string, unknown>, timeoutMs = 0): Promise<net.Socket> {
  const path = `${opts.version ? `/${opts.version}` : ''}/containers/${encodeURIComponent(id)}/logs?${queryString(query)}`;
  return new Promise((resolve, reject) => {
    const socket = connect(opts);
    let head: Buffer = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(err);
    };
    /** Set once a refusal's status is known: however the connection then ends, the refusal is the answer. */
    let refused: (() => void) | undefined;
    const endWith = (err: Error) => (refused ? refused() : fail(err));
    if (timeoutMs > 0) socket.setTimeout(timeoutMs, () => endWith(Object.assign(new Error(`the engine did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    socket.once('error', endWith);
    const closedEarly = () => endWith(Object.assign(new Error('the engine closed the connection before answering'), { code: 'ECONNRESET' }));
    socket.once('close', closedEarly);
    socket.write(`GET ${path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: opshub\r\n\r\n`);
    const onData = (chunk: Buffer) => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) fail(new Error(`the engine's response headers exceed ${MAX_HEAD} bytes`));
        return;
      }
      socket.off('data', onData);
      socket.pause();
      const [statusLine, ...headers] = head.toString('latin1', 0, end).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
      const rest = head.subarray(end + 4);
      if (!(status >= 200 && status < 300)) {
        if (!status) return fail(new Error(`the engine answered with something other than HTTP: ${JSON.stringify(statusLine!.slice(0, 80))}`));
        // The error's text follows: Content-Length bytes, chunks up to the last, or up to the end of the connection (the engine's way).
        const length = Number(/^content-length\s*:\s*(\d+)\s*$/im.exec(headers.join('\n'))?.[1] ?? NaN);
        const chunked = headers.some((l) => /^transfer-encoding\s*:.*chunked/i.test(l));
        let body = rest;
        refused = () => fail(engineError(status, (chunked ? dechunk(body) : body).toString('utf8')));
        const complete = () => (chunked ? /(^|\r\n)0\r\n(\r\n)?$/.test(body.toString('latin1', Math.max(0, body.length - 7))) : body.length >= length);
        if (complete()) return refused();
        socket.on('data', (b: Buffer) => {
          body = Buffer.concat([body, b]);
          if (complete()) refused!();
        });
        socket.once('end', refused);
        socket.resume();
        return;
      }
      const framed = headers.find((l) => /^(transfer-encoding|content-encoding)\s*:/i.test(l) && !/:\s*identity\s*$/i.test(l));
      if (framed) return fail(new NotPlainResponse(`the engine's log response is framed (${framed.trim()})`));
      settled = true;
      socket.off('close', closedEarly);
      socket.off('error', endWith);
      // Until the caller listens: an error now must not be thrown as unhandled (its 'close' follows and says the stream ended).
      socket.on('error', () => undefined);
      untimedSocket(socket);
      if (rest.length) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
