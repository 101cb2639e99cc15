// A minimal JSON HTTP client for the load generator: keep-alive connections, one pool per process it talks to,
// and the start and end time of every request (performance.now(), ms).
import http from 'node:http';
import { performance } from 'node:perf_hooks';

export interface Response {
  readonly status: number;
  /** The parsed JSON body; undefined when the request failed before an answer. */
  readonly body: any;
  /** Set when no HTTP answer came (connection refused, reset, timeout). */
  readonly error?: string;
  readonly startedAt: number;
  readonly endedAt: number;
}

export class JsonClient {
  readonly #agent: http.Agent;

  constructor(maxSockets: number) {
    this.#agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  request(base: string, method: string, path: string, { body, requester }: { body?: unknown; requester?: string } = {}): Promise<Response> {
    const startedAt = performance.now();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const url = new URL(path, base);
    return new Promise(resolve => {
      const headers: http.OutgoingHttpHeaders = {};
      if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
      if (requester !== undefined) headers['x-requester'] = requester;
      const request = http.request(url, { method, agent: this.#agent, headers, timeout: 10_000 }, response => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          resolve({ status: response.statusCode ?? 0, body: parsed, startedAt, endedAt: performance.now() });
        });
        response.on('error', error => resolve({ status: 0, body: undefined, error: error.message, startedAt, endedAt: performance.now() }));
      });
      request.on('timeout', () => request.destroy(new Error('timed out after 10 s')));
      request.on('error', error => resolve({ status: 0, body: undefined, error: error.message, startedAt, endedAt: performance.now() }));
      request.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
