// Server processes and stores for the crash suite.
//
// DESIGN: unlike tests/e2e/lib/server.js (one dev server per scenario, stopped
// with SIGTERM), a crash scenario restarts the server many times on the SAME
// port and the SAME store, kills it with SIGKILL, and also starts it in the
// `--config FILE` form (PostgreSQL). So this file owns the process wrapper;
// it reuses the e2e helpers for ports and error text.
//
// A store is { kind, args(port, httpPort) -> argv, describe } :
//   sqliteStore(file)         `server start-dev --db-filename FILE`
//   postgresStore(conninfo, dir, { visibilityDb })
//                             `--config GENERATED.yaml` (pluginName postgres);
//                             with visibilityDb, a second datastore on the same
//                             server (that databaseName) is the visibilityStore
// startPostgres() runs tools/pg-test-server.sh and returns { conninfo, psql, stop }.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { freePort, tcpAccepts } = require('../../e2e/lib/server');
const { describeError, grpcCode, codeName } = require('../../e2e/lib/errors');

const ROOT = path.resolve(__dirname, '../../..');
const KEEP_BYTES = 256 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class GtProcess {
  // argv: arguments after the binary; port: the gRPC port it serves.
  constructor(binary, argv, port, logFile) {
    this.binary = binary;
    this.args = argv;
    this.port = port;
    this.address = `127.0.0.1:${port}`;
    this.output = '';
    this.exit = null;
    this.log = logFile ? fs.createWriteStream(logFile, { flags: 'a' }) : null;
    this.proc = spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        if (this.log) this.log.end();
        resolve(this.exit);
      });
      this.proc.on('error', (err) => {
        this.exit = { code: null, signal: null, error: err };
        resolve(this.exit);
      });
    });
    this.proc.stdout.on('data', (d) => this.append(d));
    this.proc.stderr.on('data', (d) => this.append(d));
  }

  append(data) {
    this.output += String(data);
    if (this.output.length > KEEP_BYTES) {
      this.output = this.output.slice(-KEEP_BYTES);
    }
    if (this.log) this.log.write(data);
  }

  tail(lines = 30) {
    return this.output.replace(/\n$/, '').split('\n').slice(-lines).join('\n');
  }

  describeExit() {
    const e = this.exit;
    if (!e) return 'still running';
    if (e.error) return `failed to spawn: ${e.error.message}`;
    return e.signal ? `killed by ${e.signal}` : `exited with code ${e.code}`;
  }

  // Ready = GetSystemInfo answers on a fresh connection. Fails fast when the
  // process exits first.
  async waitReady(timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    let last = 'the port never accepted a TCP connection';
    for (;;) {
      if (this.exit) {
        throw new Error(`server ${this.describeExit()} before serving on ` +
          `${this.address}:\n${this.tail()}`);
      }
      if (await tcpAccepts(this.port)) {
        // A private subchannel: the shared one of another client in this
        // process may sit in reconnect backoff after a kill.
        const conn = Connection.lazy({ address: this.address,
          channelArgs: { 'grpc.use_local_subchannel_pool': 1 } });
        try {
          await conn.withDeadline(Date.now() + 2000,
            () => conn.workflowService.getSystemInfo({}));
          await conn.close();
          return;
        } catch (err) {
          await conn.close().catch(() => {});
          const code = grpcCode(err);
          if (code !== 14 && code !== 4) {
            throw new Error(`GetSystemInfo failed with ${codeName(code)}:\n` +
              describeError(err));
          }
          last = describeError(err);
        }
      }
      if (Date.now() >= deadline) {
        throw new Error(`server not ready on ${this.address} within ` +
          `${timeoutMs} ms; last problem: ${last}\n${this.tail()}`);
      }
      await sleep(50);
    }
  }

  async kill9() {
    if (!this.exit) this.proc.kill('SIGKILL');
    await this.exited;
  }

  // SIGTERM with a grace period; returns null on a clean exit 0.
  async stop(graceMs = 10_000) {
    if (this.exit) return `server had already stopped (${this.describeExit()})`;
    this.proc.kill('SIGTERM');
    const how = await Promise.race([this.exited, sleep(graceMs).then(() => 'timeout')]);
    if (how === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
      return `server did not exit within ${graceMs} ms of SIGTERM`;
    }
    return this.exit.code === 0 ? null
      : `server ${this.describeExit()} after SIGTERM`;
  }

  killNow() {
    if (!this.exit) {
      try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    }
  }
}

// Every process started here is SIGKILLed if the scenario's node exits.
const live = new Set();
process.on('exit', () => { for (const p of live) p.killNow(); });

function binary() {
  const b = process.env.GT_BINARY || process.argv[2];
  if (!b) throw new Error('no server binary: set GT_BINARY');
  return path.resolve(b);
}

function logFile(name) {
  const dir = process.env.GT_E2E_LOGDIR;
  return dir ? path.join(dir, `${name}.server.log`) : null;
}

// Starts `store` on `port` (a free one when omitted); does not wait.
async function spawnServer(store, { port, name = 'server', httpPort } = {}) {
  const p = port || await freePort();
  const h = httpPort || await freePort();
  const proc = new GtProcess(binary(), store.args(p, h), p, logFile(name));
  live.add(proc);
  proc.exited.then(() => live.delete(proc));
  return proc;
}

async function startServer(store, opts = {}) {
  const proc = await spawnServer(store, opts);
  await proc.waitReady();
  return proc;
}

function sqliteStore(file) {
  return {
    kind: 'sqlite',
    describe: `SQLite file ${file}`,
    file,
    args: (port, http) => ['server', 'start-dev', '--port', String(port),
      '--http-port', String(http), '--ip', '127.0.0.1',
      '--namespace', 'default', '--headless',
      '--log-level', process.env.GT_CRASH_LOG_LEVEL || 'warn',
      '--log-format', 'text', '--db-filename', file],
  };
}

function parseConninfo(conninfo) {
  const kv = {};
  for (const m of conninfo.matchAll(/(\w+)=(\S*)/g)) kv[m[1]] = m[2];
  return kv;
}

// One `datastores:` entry (keys of config/production.yaml).
function pgDatastore(name, c, dbname) {
  return `    ${name}:
      sql:
        pluginName: "postgres"
        databaseName: "${dbname}"
        connectAddr: "${c.host || '127.0.0.1'}:${c.port || 5432}"
        connectProtocol: "tcp"
        user: "${c.user || 'postgres'}"
        password: "${c.password || ''}"
        maxConns: 8
        maxIdleConns: 8
        maxConnLifetime: "1h"
`;
}

// A YAML config for the postgres store (keys of config/production.yaml).
// visibilityDb: the visibility store is datastore pgvis, that database on the
// same server; without it, visibility is in the default store (pg).
function postgresYaml(conninfo, port, http, memb, visibilityDb) {
  const c = parseConninfo(conninfo);
  return `log:
  stdout: true
  level: ${process.env.GT_CRASH_LOG_LEVEL || 'warn'}
  format: text
persistence:
  defaultStore: pg
  visibilityStore: ${visibilityDb ? 'pgvis' : 'pg'}
  numHistoryShards: 4
  datastores:
${pgDatastore('pg', c, c.dbname || 'postgres')}${
  visibilityDb ? pgDatastore('pgvis', c, visibilityDb) : ''}services:
  frontend:
    rpc:
      grpcPort: ${port}
      httpPort: ${http}
      membershipPort: ${memb}
      bindOnLocalHost: true
genesis:
  defaultNamespace: "default"
  headless: true
`;
}

// dir: where the generated config files go. opts.visibilityDb: the name of
// another database on the same server for the visibility store (it must exist;
// the server creates the schema in it).
function postgresStore(conninfo, dir, opts = {}) {
  const { visibilityDb } = opts;
  let n = 0;
  return {
    kind: 'postgres',
    describe: `PostgreSQL ${conninfo}` +
      (visibilityDb ? `, visibility in database ${visibilityDb}` : ''),
    conninfo,
    visibilityDb,
    args: (port, http) => {
      const file = path.join(dir, `pg-${port}-${n++}.yaml`);
      fs.writeFileSync(file, postgresYaml(conninfo, port, http, http + 1, visibilityDb));
      return ['--config', file];
    },
  };
}

function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `gt-crash-${prefix}-`));
}

// A throwaway PostgreSQL (tools/pg-test-server.sh). Returns { conninfo, dir,
// psql(sql, db) -> stdout, stop() }; psql runs in database db when given
// (the conninfo's dbname replaced), else in the conninfo's.
function startPostgres() {
  const dir = tempDir('pg');
  const script = path.join(ROOT, 'tools/pg-test-server.sh');
  let conninfo;
  try {
    conninfo = execFileSync('bash', [script, 'start', dir],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg-test-server.sh start failed: ${err.stderr || err.message}`);
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync('bash', [script, 'stop', dir], { stdio: 'ignore' });
    } catch (_) { /* best effort */ }
  };
  process.on('exit', stop);
  const psql = (sql, db) => execFileSync('psql', ['-X', '-q', '-t', '-A',
    '-v', 'ON_ERROR_STOP=1', db ? conninfo.replace(/dbname=\S+/, `dbname=${db}`) : conninfo,
    '-c', sql], { encoding: 'utf8' }).trim();
  return { conninfo, dir, psql, stop };
}

// A client connection to srv for the rest of the scenario (closed at its cleanup):
// { conn, client } on namespace default.
async function connectClient(ctx, srv) {
  const conn = await Connection.connect({ address: srv.address });
  ctx.onCleanup(() => conn.close());
  return { conn, client: new Client({ connection: conn, namespace: 'default' }) };
}

module.exports = {
  connectClient,
  GtProcess, spawnServer, startServer, sqliteStore, postgresStore,
  startPostgres, tempDir, binary, freePort, sleep, ROOT,
};
