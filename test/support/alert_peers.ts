// The real peers of outputs.alerting's tests, all on 127.0.0.1: a real
// Alertmanager (Debian's prometheus-alertmanager, clustering off, storage in a
// temp dir), a webhook receiver that keeps every request (raw body and
// headers) and can be told to fail, and an SMTP server (the smtp-server
// package) that keeps every message. stop() ends each and removes its files.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { waitFor } from '../helpers.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Alertmanager {
  url: string;
  /** GET /api/v2/alerts (every alert Alertmanager holds, resolved ones included while it keeps them). */
  alerts(): Promise<Array<{ labels: Record<string, string>; annotations: Record<string, string>; startsAt: string; endsAt: string; generatorURL: string; status: { state: string } }>>;
  stop(): Promise<void>;
}

export async function startAlertmanager(): Promise<Alertmanager> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-am-'));
  const config = path.join(dir, 'alertmanager.yml');
  writeFileSync(config, 'route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n');
  let proc: ChildProcess | undefined;
  let output = '';
  let url = '';
  // The port is free when chosen but could be taken before Alertmanager binds it: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    proc = spawn(
      'prometheus-alertmanager',
      [`--config.file=${config}`, `--storage.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    let exited = false;
    proc.once('exit', () => (exited = true));
    try {
      await waitFor(async () => {
        if (exited) return true;
        try {
          return (await fetch(`${url}/-/ready`)).ok;
        } catch {
          return false;
        }
      }, 20_000, 'Alertmanager to be ready');
    } catch (err) {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${(err as Error).message}\n${output}`);
    }
    if (!exited) break;
    proc = undefined;
  }
  if (!proc) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`Alertmanager did not start:\n${output}`);
  }
  const running = proc;
  return {
    url,
    async alerts() {
      const res = await fetch(`${url}/api/v2/alerts`);
      if (!res.ok) throw new Error(`GET /api/v2/alerts: HTTP ${res.status}`);
      return (await res.json()) as never;
    },
    async stop() {
      if (running.exitCode === null) {
        const done = new Promise((r) => running.once('exit', r));
        running.kill('SIGTERM');
        const timer = setTimeout(() => running.kill('SIGKILL'), 5000);
        await done;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
}

export interface WebhookReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Status to answer (200 by default); set 503 to play a receiver that is down. */
  status: number;
  stop(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = { url: '', requests: [], status: 200, stop: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (receiver.status < 300) {
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch {
          body = undefined;
        }
        receiver.requests.push({ path: req.url ?? '/', headers: req.headers, raw, body });
      }
      res.writeHead(receiver.status, { 'content-type': 'text/plain' });
      res.end(receiver.status < 300 ? 'ok' : 'down');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  receiver.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return receiver;
}

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
}

export interface SmtpSink {
  port: number;
  messages: ReceivedMail[];
  logins: string[];
  stop(): Promise<void>;
}

/** A plain SMTP server (no TLS) that accepts user "opshub" / password "secret" and keeps every message. */
export async function startSmtpServer(): Promise<SmtpSink> {
  const sink: SmtpSink = { port: 0, messages: [], logins: [], stop: async () => undefined };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === 'opshub' && auth.password === 'secret') {
        sink.logins.push(auth.username);
        cb(null, { user: auth.username });
      } else cb(new Error('invalid login'));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const folded = /^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1]?.replace(/\r?\n[ \t]/g, ' ') ?? '';
        const subject = decodeWords(folded);
        sink.messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          subject,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  sink.port = ((server as unknown as { server: net.Server }).server.address() as net.AddressInfo).port;
  sink.stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return sink;
}

/** Decodes RFC 2047 encoded words (=?UTF-8?Q?...?= and =?UTF-8?B?...?=) of a header. */
export function decodeWords(text: string): string {
  return text
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, data: string) => {
      if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8');
      const bytes = data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
      return Buffer.from(bytes, 'latin1').toString('utf8');
    });
}
