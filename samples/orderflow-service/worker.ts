// One process of the service: connects to PostgreSQL and Redis, builds the caching service, the queries and the
// commands, and listens on its port. Started by main.ts (one per process), with the port as its only argument.
// It exits when the launcher goes away (the IPC channel closes), so no worker outlives its launcher.
import { bindCachingService } from 'aspect-cache';
import { createCaching } from './caching.js';
import { ShopCommands } from './commands.js';
import { readConfig } from './config.js';
import { Database } from './db.js';
import { createServer } from './http.js';
import { CatalogueQueries, OrderQueries } from './queries.js';
import { seedingId } from './schema.js';

const config = readConfig([]); // settings come from the environment the launcher passed on
const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: worker.ts <port> (started by main.ts)');

const db = new Database(config.databaseUrl, config.schema, config.poolSize);
// Every process of one deployment must share the key prefix; the seeding id changes it when the data is
// re-seeded, so entries cached from the previous data are never read again (they expire with their TTL).
const seeding = await seedingId(text => db.query(text));
db.statements = 0;
const { caching, close } = await createCaching(config.caching, config.redisUrl, `orderflow:${config.schema}:${seeding.slice(0, 8)}:`);

// The instances are bound to this process's service explicitly (rather than CachingService.default).
const catalogue = bindCachingService(new CatalogueQueries(db), caching);
const orders = bindCachingService(new OrderQueries(db, catalogue), caching);
const commands = new ShopCommands(db, caching, config.caching !== 'broken-skip-invalidation');
const server = createServer({ catalogue, orders, commands, db, caching });
server.keepAliveTimeout = 30_000;

let closing: Promise<void> | undefined;
function shutdown(): Promise<void> {
  return (closing ??= (async () => {
    server.closeAllConnections();
    await new Promise<void>(resolve => server.close(() => resolve()));
    await close();
    await db.end();
    process.exit(0);
  })());
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
process.on('disconnect', () => void shutdown()); // the launcher exited (even by SIGKILL)
// A worker that cannot shut down cleanly within 5 s exits anyway.
process.on('disconnect', () => setTimeout(() => process.exit(1), 5_000).unref());

server.listen(port, '127.0.0.1', () => {
  process.send?.({ type: 'listening', port, pid: process.pid });
});
