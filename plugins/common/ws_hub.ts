// Live WebSocket streams on the agent's HTTP server: one hub per endpoint
// (outputs.websocket's /ws/logs and /ws/metrics, the alerts' /ws/alerts).
// Each client chooses a filter (query string at connect, then subscribe
// messages); a slow client never grows the agent's memory past its send
// buffer limit: messages are dropped (counted, and the client is told how
// many it missed) or the client is disconnected; a ping/pong heartbeat ends
// dead connections.
//
// Protocol, besides the data messages (each one JSON text frame):
//   server → client {"type":"subscribed","filter":{...}}  after connect and each subscribe
//   server → client {"type":"dropped","count":N}          N messages were not sent (slow client)
//   server → client {"type":"error","message":"..."}      a bad client message
//   client → server {"type":"subscribe", ...filter}       replaces the filter

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { UpgradeHandler } from '../../core/http.ts';
import type { Logger } from '../../core/log.ts';
import { errorMessage } from '../../core/log.ts';

export type OnSlow = 'drop' | 'disconnect';

export interface WsHubOptions<F> {
  log: Logger;
  /** Most bytes queued for one client (ws.bufferedAmount) before its messages are dropped or it is disconnected. */
  sendBufferLimit: number;
  onSlow: OnSlow;
  /** Ping every this often; a client that did not answer the previous ping is terminated. 0: no heartbeat. */
  heartbeatMs: number;
  maxClients: number;
  /** Largest message a client may send (subscribe messages are small). */
  maxClientMessageBytes?: number;
  /** A filter from query parameters or a subscribe message; throws an Error whose message the client sees. */
  parseFilter(input: Record<string, unknown>): F;
  /** The filter as JSON, echoed in `subscribed` messages. */
  describeFilter(filter: F): unknown;
}

export interface WsHubStats {
  /** Clients connected now. */
  clients: number;
  connections_total: number;
  /** Upgrades refused: too many clients or a bad filter. */
  rejected_total: number;
  messages_sent_total: number;
  /** Messages not sent to a client because its send buffer was full (on_slow: drop). */
  messages_dropped_total: number;
  /** Clients disconnected because their send buffer was full (on_slow: disconnect). */
  slow_disconnects_total: number;
  /** Clients terminated for not answering a ping. */
  dead_terminated_total: number;
  /** Highest send buffer seen on any client, in bytes (stays near send_buffer_limit). */
  max_buffered_bytes: number;
}

interface Client<F> {
  ws: WebSocket;
  filter: F;
  /** Messages dropped since the client was last told. */
  missed: number;
  alive: boolean;
  closing: boolean;
}

/** Query parameters as a record (`token` left out); repeated keys become arrays. */
export function queryRecord(url: URL): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of new Set(url.searchParams.keys())) {
    if (key === 'token') continue;
    const all = url.searchParams.getAll(key);
    out[key] = all.length === 1 ? all[0] : all;
  }
  return out;
}

function refuse(socket: Duplex, status: number, reason: string, body: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

export class WsHub<F> {
  readonly stats: WsHubStats = {
    clients: 0, connections_total: 0, rejected_total: 0, messages_sent_total: 0, messages_dropped_total: 0,
    slow_disconnects_total: 0, dead_terminated_total: 0, max_buffered_bytes: 0,
  };
  private readonly clients = new Set<Client<F>>();
  private readonly wss: WebSocketServer;
  private heartbeat?: NodeJS.Timeout;
  private noticeTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(private opts: WsHubOptions<F>) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxClientMessageBytes ?? 64 * 1024, perMessageDeflate: false });
    if (opts.heartbeatMs > 0) {
      this.heartbeat = setInterval(() => this.beat(), opts.heartbeatMs);
      this.heartbeat.unref();
    }
  }

  get size(): number {
    return this.clients.size;
  }

  /** The handler to mount with ctx.http.upgrade (the agent's token is checked before it runs). */
  readonly handleUpgrade: UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => {
    if (this.closed) return refuse(socket, 503, 'Service Unavailable', 'shutting down\n');
    if (this.clients.size >= this.opts.maxClients) {
      this.stats.rejected_total++;
      this.opts.log.once('max-clients', 'warn', `refusing WebSocket clients beyond max_clients (${this.opts.maxClients})`);
      return refuse(socket, 503, 'Service Unavailable', `too many clients (max ${this.opts.maxClients})\n`);
    }
    let filter: F;
    try {
      filter = this.opts.parseFilter(queryRecord(url));
    } catch (err) {
      this.stats.rejected_total++;
      return refuse(socket, 400, 'Bad Request', `${errorMessage(err)}\n`);
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, filter));
  };

  private accept(ws: WebSocket, filter: F): void {
    if (this.closed) {
      ws.terminate();
      return;
    }
    const client: Client<F> = { ws, filter, missed: 0, alive: true, closing: false };
    this.clients.add(client);
    this.stats.clients = this.clients.size;
    this.stats.connections_total++;
    ws.on('pong', () => (client.alive = true));
    ws.on('message', (data, isBinary) => this.onMessage(client, data, isBinary));
    ws.on('error', () => undefined); // e.g. a client sending a frame over maxPayload; 'close' follows
    ws.on('close', () => {
      this.clients.delete(client);
      this.stats.clients = this.clients.size;
    });
    this.control(client, { type: 'subscribed', filter: this.opts.describeFilter(filter) });
  }

  private onMessage(client: Client<F>, data: RawData, isBinary: boolean): void {
    let msg: unknown;
    try {
      if (isBinary) throw new Error('binary messages are not understood');
      msg = JSON.parse(data.toString());
    } catch (err) {
      this.control(client, { type: 'error', message: `expected a JSON message: ${errorMessage(err)}` });
      return;
    }
    if (typeof msg !== 'object' || msg === null || Array.isArray(msg) || (msg as { type?: unknown }).type !== 'subscribe') {
      this.control(client, { type: 'error', message: 'unknown message; send {"type":"subscribe", ...filter}' });
      return;
    }
    const { type: _type, ...rest } = msg as Record<string, unknown>;
    try {
      client.filter = this.opts.parseFilter(rest);
      this.control(client, { type: 'subscribed', filter: this.opts.describeFilter(client.filter) });
    } catch (err) {
      this.control(client, { type: 'error', message: errorMessage(err) });
    }
  }

  /** Replies to the client; skipped when its send buffer is full (a client that sends but never reads). */
  private control(client: Client<F>, msg: Record<string, unknown>): void {
    if (client.ws.readyState !== WebSocket.OPEN || client.closing) return;
    if (client.ws.bufferedAmount > this.opts.sendBufferLimit) return;
    client.ws.send(JSON.stringify(msg));
  }

  /**
   * Sends a message to every client whose filter accepts it. `make` runs at
   * most once, and only when some client wants the message. Returns how many
   * clients it was sent to.
   */
  publish(accept: (filter: F) => boolean, make: () => string): number {
    let data: string | undefined;
    let bytes = 0;
    let sent = 0;
    for (const client of this.clients) {
      if (client.closing || client.ws.readyState !== WebSocket.OPEN || !accept(client.filter)) continue;
      if (data === undefined) {
        data = make();
        bytes = Buffer.byteLength(data);
      }
      if (this.send(client, data, bytes)) sent++;
    }
    return sent;
  }

  private send(client: Client<F>, data: string, bytes: number): boolean {
    const ws = client.ws;
    if (client.missed > 0) this.tellMissed(client);
    const queued = ws.bufferedAmount;
    if (queued + bytes > this.opts.sendBufferLimit) {
      if (this.opts.onSlow === 'disconnect') {
        this.disconnectSlow(client);
        return false;
      }
      client.missed++;
      this.stats.messages_dropped_total++;
      this.opts.log.once('slow-drop', 'warn', `a WebSocket client reads slower than events arrive: dropping its messages past ${this.opts.sendBufferLimit} queued bytes (counted; the client is told how many)`);
      this.scheduleNotices();
      return false;
    }
    ws.send(data);
    this.stats.messages_sent_total++;
    const after = queued + bytes;
    if (after > this.stats.max_buffered_bytes) this.stats.max_buffered_bytes = after;
    return true;
  }

  private tellMissed(client: Client<F>): void {
    const notice = JSON.stringify({ type: 'dropped', count: client.missed });
    if (client.ws.bufferedAmount + notice.length > this.opts.sendBufferLimit) return;
    client.ws.send(notice);
    client.missed = 0;
  }

  /** While some client has missed messages, tell it as soon as its buffer has room, even if no new message comes. */
  private scheduleNotices(): void {
    if (this.noticeTimer || this.closed) return;
    this.noticeTimer = setInterval(() => {
      let pending = false;
      for (const c of this.clients) {
        if (c.missed > 0 && !c.closing && c.ws.readyState === WebSocket.OPEN) {
          this.tellMissed(c);
          if (c.missed > 0) pending = true;
        }
      }
      if (!pending) {
        clearInterval(this.noticeTimer);
        this.noticeTimer = undefined;
      }
    }, 250);
    this.noticeTimer.unref();
  }

  private disconnectSlow(client: Client<F>): void {
    client.closing = true;
    this.stats.slow_disconnects_total++;
    this.opts.log.once('slow-disconnect', 'warn', `disconnecting WebSocket clients whose send buffer passes ${this.opts.sendBufferLimit} bytes (on_slow: disconnect)`);
    client.ws.close(1008, 'send buffer full: reading too slowly');
    // The close frame waits behind the unread data; do not wait for it.
    setTimeout(() => client.ws.terminate(), 1000).unref();
  }

  private beat(): void {
    for (const client of this.clients) {
      if (!client.alive) {
        this.stats.dead_terminated_total++;
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      try {
        client.ws.ping();
      } catch {
        /* closing already */
      }
    }
  }

  /** Closes every client (1001 going away) and stops the timers. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.noticeTimer) clearInterval(this.noticeTimer);
    const closing = [...this.clients].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => c.ws.terminate(), 1000);
          c.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close(1001, 'agent stopping');
        }),
    );
    await Promise.all(closing);
    this.clients.clear();
    this.stats.clients = 0;
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
