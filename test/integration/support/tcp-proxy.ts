// A tiny TCP proxy in front of one Redis server, for tests that need a connection the server and the client
// both believe is fine while nothing arrives: `pauseSubscribers()` stops forwarding what the server sends on the
// connections that subscribed (they are recognised by the SUBSCRIBE they sent), without closing anything; what
// the server sends meanwhile is kept and delivered, in order, on `resume()` — a stalled subscriber, as a
// congested link or a stopped-the-world client would make one.
import net from 'node:net';
import { HOST } from './redis-process.js';

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Connections open through the proxy now, and how many of them subscribed. */
  readonly connections: number;
  readonly subscribers: number;
  /** Bytes from the server held back since the last pause. */
  readonly heldBytes: number;
  /** Holds back, silently, what the server sends on subscribed connections (and on those that subscribe later). */
  pauseSubscribers(): void;
  /** Delivers what was held back and forwards again. */
  resume(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

interface Link {
  readonly client: net.Socket;
  readonly server: net.Socket;
  subscribed: boolean;
  held: Buffer[];
}

/** ioredis writes commands in RESP with the name as given: `…\r\nsubscribe\r\n…`. */
const SUBSCRIBE = /\r\n(?:p|s)?subscribe\r\n/i;

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const links = new Set<Link>();
  let paused = false;
  let heldBytes = 0;

  const flush = (link: Link) => {
    for (const chunk of link.held.splice(0)) link.client.write(chunk);
  };

  const listener = net.createServer(client => {
    const server = net.connect(target.port, target.host);
    const link: Link = { client, server, subscribed: false, held: [] };
    links.add(link);
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', chunk => {
      if (!link.subscribed && SUBSCRIBE.test(chunk.toString('latin1'))) link.subscribed = true;
      server.write(chunk);
    });
    server.on('data', chunk => {
      if (paused && link.subscribed) {
        link.held.push(chunk);
        heldBytes += chunk.length;
      } else client.write(chunk);
    });
    const end = () => {
      links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('close', end);
    server.on('close', end);
    client.on('error', end);
    server.on('error', end);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, HOST, () => resolve());
  });
  const port = (listener.address() as net.AddressInfo).port;

  return {
    host: HOST,
    port,
    get connections() {
      return links.size;
    },
    get subscribers() {
      return [...links].filter(link => link.subscribed).length;
    },
    get heldBytes() {
      return heldBytes;
    },
    pauseSubscribers() {
      paused = true;
      heldBytes = 0;
    },
    resume() {
      paused = false;
      for (const link of links) flush(link);
    },
    close: () =>
      new Promise<void>(resolve => {
        for (const link of links) {
          link.client.destroy();
          link.server.destroy();
        }
        links.clear();
        listener.close(() => resolve());
      }),
  };
}
