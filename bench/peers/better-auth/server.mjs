// Better Auth as the peer in derp's benchmark: Node's http server, SQLite
// through better-sqlite3 (or PostgreSQL through pg when $DATABASE_URL is
// set), email + password, the organization, bearer and
// twoFactor (TOTP) plugins, rate limiter off. One process, as Better Auth is usually deployed.
//
//   node server.mjs            -- serve on 127.0.0.1:$PORT (default 18090), db at $DB
//                                 (or $DATABASE_URL: a PostgreSQL connection string)
//   node server.mjs --migrate  -- create the tables in $DB and exit
//   node server.mjs --hash-cost N  -- time Better Auth's own hashPassword: N calls
//                                     one at a time, then N per core in parallel
import http from "node:http";
import { availableParallelism } from "node:os";
import Database from "better-sqlite3";
import pg from "pg";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";
import { bearer, organization, twoFactor } from "better-auth/plugins";
import { hashPassword } from "better-auth/crypto";

const PORT = Number(process.env.PORT || 18090);
const HOST = "127.0.0.1";
const DB = process.env.DB || "./peer.db";

if (process.argv[2] === "--hash-cost") {
  // Line 1: N hashes one after another (one core's cost of one hash).
  // Line 2: N hashes per core, `cores` at a time (libuv's pool runs them in parallel).
  const n = Number(process.argv[3] || 20);
  await hashPassword("warm-up password");
  const times = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await hashPassword(`bench password ${i}`);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const mean = times.reduce((a, b) => a + b, 0) / n;
  console.log(`scrypt N=16384 r=16 p=1 dkLen=64 hashes=${n} mean_ms=${mean.toFixed(3)} min_ms=${Math.min(...times).toFixed(3)}`);
  const cores = availableParallelism();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: cores }, async (_, c) => {
    for (let i = 0; i < n; i++) await hashPassword(`bench password ${c}-${i}`);
  }));
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(`parallel threads=${cores} hashes=${cores * n} hashes_per_s=${((cores * n) / secs).toFixed(2)}`);
  process.exit(0);
}

let db;
if (process.env.DATABASE_URL) {
  // pg's default pool: at most 10 connections per process.
  db = new pg.Pool({ connectionString: process.env.DATABASE_URL });
} else {
  db = new Database(DB);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("busy_timeout = 5000");
}

const options = {
  database: db,
  baseURL: `http://${HOST}:${PORT}`,
  secret: process.env.BETTER_AUTH_SECRET || "bench-secret-bench-secret-bench-secret-0123",
  emailAndPassword: { enabled: true },
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  plugins: [organization(), bearer(), twoFactor()],
};

if (process.argv[2] === "--migrate") {
  const { runMigrations, toBeCreated, toBeAdded } = await getMigrations(options);
  await runMigrations();
  console.log(`migrated: ${toBeCreated.length} tables created, ${toBeAdded.length} altered`);
  process.exit(0);
}

const auth = betterAuth(options);
const handler = toNodeHandler(auth);

const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  handler(req, res).catch((err) => {
    console.error(err);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.keepAliveTimeout = 65_000;
server.listen(PORT, HOST, () => console.log(`better-auth peer on http://${HOST}:${PORT}`));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, async () => {
    server.close();
    await (process.env.DATABASE_URL ? db.end() : db.close());
    process.exit(0);
  });
}
