// One HTTP(S) POST per remote-write request, over a keep-alive agent owned by
// the output instance. The answer decides what the runtime does with the
// batch: 2xx written; 429 and 5xx retried (honouring Retry-After); any other
// status dropped (PermanentError); a network error or timeout retried.

import http from 'node:http';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { PermanentError, RetryableError } from '../../../core/plugin.ts';

export interface ClientOptions {
  url: URL;
  headers: Record<string, string>;
  timeoutMs: number;
  tls: { ca_file: string; cert_file: string; key_file: string; insecure_skip_verify: boolean };
  signal: AbortSignal;
}

/** A rejected request (a 4xx other than 429): not worth retrying. */
export class RejectedError extends PermanentError {
  constructor(readonly status: number, readonly body: string) {
    super(`the receiver rejected the request with HTTP ${status}`);
  }
}

const MAX_BODY = 4096;

class StaleSocketError extends RetryableError {}

/** Milliseconds from a Retry-After header (seconds or an HTTP date), if it has a usable one. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class RemoteWriteClient {
  private agent?: http.Agent;

  constructor(private opts: ClientOptions) {}

  /** Reads the TLS files and creates the connection pool; throws when a file cannot be read. */
  async open(): Promise<void> {
    const { url, tls } = this.opts;
    if (url.protocol === 'https:') {
      const read = async (file: string, what: string) => {
        if (!file) return undefined;
        try {
          return await readFile(file);
        } catch (err) {
          throw new Error(`tls.${what}: cannot read ${file}: ${(err as Error).message}`);
        }
      };
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets: 1,
        ca: await read(tls.ca_file, 'ca_file'),
        cert: await read(tls.cert_file, 'cert_file'),
        key: await read(tls.key_file, 'key_file'),
        rejectUnauthorized: !tls.insecure_skip_verify,
      });
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    }
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }

  /** Sends one compressed WriteRequest; resolves on 2xx, throws RetryableError or RejectedError otherwise. */
  post(body: Buffer): Promise<void> {
    // A kept-alive connection the receiver closed while idle fails at once with
    // ECONNRESET: send again right away on a fresh one (Node's documented pattern).
    return this.attempt(body).catch((err: unknown) => {
      if (err instanceof StaleSocketError) return this.attempt(body);
      throw err;
    });
  }

  private attempt(body: Buffer): Promise<void> {
    const { url, headers, timeoutMs, signal } = this.opts;
    if (!this.agent) return Promise.reject(new RetryableError('the output is not started'));
    const agent = this.agent;
    return new Promise<void>((resolve, reject) => {
      const request = url.protocol === 'https:' ? https.request : http.request;
      const req = request(url, { method: 'POST', agent, headers: { ...headers, 'Content-Length': String(body.length) }, signal });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (req.reusedSocket && err.code === 'ECONNRESET') return reject(new StaleSocketError(`cannot send to ${url.host}: ${err.message}`));
        reject(new RetryableError(`cannot send to ${url.host}: ${err.message}`));
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_BODY) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('error', () => undefined); // the request's 'error' reports it
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve();
          const text = Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY).trim();
          if (status === 429 || status >= 500) {
            const retryAfter = parseRetryAfter(res.headers['retry-after']);
            reject(new RetryableError(`HTTP ${status} from ${url.host}${text ? `: ${text}` : ''}`, retryAfter));
          } else {
            reject(new RejectedError(status, text));
          }
        });
      });
      req.end(body);
    });
  }
}
