// Starts and stops one genesis-temporal dev server for a scenario.
//
// DESIGN: the server is launched exactly like the Temporal CLI dev server
// (`server start-dev ...`), readiness means GetSystemInfo answers over gRPC,
// and stop is SIGTERM with a 5 s grace period, after which we SIGKILL and
// report the unclean exit. stderr/stdout are kept in a bounded buffer so a
// failing scenario can show the server's last words.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { Connection } = require('@temporalio/client');
const { describeError, grpcCode, codeName } = require('./errors');

const READY_POLL_MS = 50;
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const KEEP_BYTES = 256 * 1024;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Asks the kernel for a free loopback port, then releases it.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// True when something accepts a TCP connection on 127.0.0.1:port.
function tcpAccepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

class ServerProcess {
  constructor(binary, port, logFile, extraArgs = []) {
    this.binary = binary;
    this.port = port;
    this.address = `127.0.0.1:${port}`;
    this.args = ['server', 'start-dev', '--port', String(port),
      '--ip', '127.0.0.1', '--namespace', 'default', '--headless',
      '--log-level', 'warn', '--log-format', 'pretty', ...extraArgs];
    this.output = '';
    this.exit = null; // { code, signal } once the process is gone
    this.logStream = logFile ? fs.createWriteStream(logFile) : null;
    this.proc = spawn(binary, this.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      // spawn failures (ENOENT, EACCES) emit 'error' and never 'exit'.
      this.proc.on('error', (err) => {
        this.append('stderr', `spawn error: ${err.message}\n`);
        this.exit = { code: null, signal: null, error: err };
        resolve(this.exit);
      });
    });
    this.proc.stdout.on('data', (d) => this.append('stdout', d));
    this.proc.stderr.on('data', (d) => this.append('stderr', d));
  }

  append(stream, data) {
    const text = String(data);
    // Mark stdout lines; stderr is the interesting stream and stays bare.
    const shown = stream === 'stdout'
      ? text.replace(/^(?=.)/gm, '[stdout] ') : text;
    this.output += shown;
    if (this.output.length > KEEP_BYTES) {
      this.output = this.output.slice(-KEEP_BYTES);
    }
    if (this.logStream) this.logStream.write(shown);
  }

  tail(lines = 40) {
    const all = this.output.replace(/\n$/, '').split('\n');
    if (all.length === 1 && all[0] === '') return '(server printed nothing)';
    return all.slice(-lines).join('\n');
  }

  describeExit() {
    const e = this.exit;
    if (!e) return 'still running';
    if (e.error) return `failed to spawn: ${e.error.message}`;
    if (e.signal) return `killed by signal ${e.signal}`;
    return `exited with code ${e.code}`;
  }

  // Polls every 50 ms: first a bare TCP connect (cheap, and immune to
  // grpc-js reconnect backoff), then GetSystemInfo on a fresh client
  // Connection once the port accepts. Fails fast if the process exits.
  async waitReady(timeoutMs = READY_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let last = 'the port never accepted a TCP connection';
    for (;;) {
      if (this.exit) {
        throw new Error(`server ${this.describeExit()} before answering ` +
          `GetSystemInfo on ${this.address}`);
      }
      if (await tcpAccepts(this.port)) {
        const conn = Connection.lazy({ address: this.address });
        try {
          const remain = Math.max(200, Math.min(2000, deadline - Date.now()));
          const info = await conn.withDeadline(Date.now() + remain,
            () => conn.workflowService.getSystemInfo({}));
          await conn.close();
          return info;
        } catch (err) {
          await conn.close().catch(() => {});
          const code = grpcCode(err);
          // UNAVAILABLE / DEADLINE_EXCEEDED: not serving yet, try again.
          // Any other status is a real answer, and a wrong one.
          if (code !== 14 && code !== 4) {
            throw new Error('GetSystemInfo answered with an error instead ' +
              `of a result (${codeName(code)}):\n${describeError(err)}`);
          }
          last = describeError(err);
        }
      }
      if (Date.now() >= deadline) {
        throw new Error(`server did not answer GetSystemInfo on ` +
          `${this.address} within ${timeoutMs} ms; last problem:\n${last}`);
      }
      await sleep(READY_POLL_MS);
    }
  }

  // SIGTERM, wait up to 5 s, then SIGKILL. Resolves to null when the
  // server stopped cleanly (exit 0), else to a description of the problem.
  async stop() {
    if (this.exit) {
      this.diedEarly = true;
      return `server had already stopped (${this.describeExit()}) ` +
        'before the scenario ended';
    }
    this.proc.kill('SIGTERM');
    const timer = sleep(STOP_GRACE_MS).then(() => 'timeout');
    const how = await Promise.race([this.exited, timer]);
    let problem = null;
    if (how === 'timeout') {
      this.proc.kill('SIGKILL');
      await this.exited;
      problem = `server did not exit within ${STOP_GRACE_MS} ms of ` +
        'SIGTERM (sent SIGKILL)';
    } else if (this.exit.code !== 0) {
      problem = `server ${this.describeExit()} after SIGTERM ` +
        '(expected exit code 0)';
    }
    if (this.logStream) this.logStream.end();
    return problem;
  }

  // Last-resort cleanup on abnormal exits of this node process.
  killNow() {
    if (!this.exit) {
      try { this.proc.kill('SIGKILL'); } catch (_) { /* already gone */ }
    }
  }
}

// The harness's server also gets its own free HTTP port (/health, /metrics):
// srv.httpPort. (start-dev opens none unless --http-port is given, so servers
// started without it never collide on 7243.)
async function startServer(binary, { logDir, name, extraArgs = [] } = {}) {
  if (!binary) throw new Error('no server binary: set GT_BINARY');
  if (!fs.existsSync(binary)) {
    throw new Error(`server binary not found: ${binary}`);
  }
  const port = await freePort();
  let httpPort = await freePort();
  while (httpPort === port) httpPort = await freePort();
  const logFile = logDir
    ? path.join(logDir, `${name || 'server'}.server.log`) : null;
  const srv = new ServerProcess(path.resolve(binary), port, logFile,
    ['--http-port', String(httpPort), ...extraArgs]);
  srv.httpPort = httpPort;
  return srv;
}

module.exports = { startServer, freePort, tcpAccepts, ServerProcess };
