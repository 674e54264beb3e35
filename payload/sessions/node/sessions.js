// The stateful cluster exercise of the cluster-mode lesson, in Node: the
// model answer (issue 17). The same API and modes as deploylab's Go payload
// (payload/sessions), so a teacher can hand it out and both give the same
// answers.
//
//   POST /login  {"name":"ana"}          -> 200 {"token":"..."}
//   GET  /me     Authorization: Bearer t -> 200 {"name":"ana"} or 401
//   POST /logout Authorization: Bearer t -> 204 (401 for a bad token)
//
// Environment: PORT (3002), WORKERS (one per CPU), SESSIONS = memory |
// master | stateless, SESSION_KEY_FILE (stateless: at least 16 bytes),
// SESSION_TTL_S (3600), SESSION_CAP (100000, the oldest evicted past it).
//
// memory:    each worker keeps its own tokens: a follow-up on another worker
//            gets 401.
// master:    a worker tells the primary (process.send) about every token it
//            issues or revokes; the primary keeps the set and tells every
//            other worker (worker.send); a new worker gets the whole set
//            before it listens.
// stateless: the token is the name and an expiry signed with HMAC-SHA256:
//            no memory at all, but a logout cannot revoke it before it expires.
'use strict';
const cluster = require('node:cluster');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const express = require('express');

const MODE = process.env.SESSIONS || 'memory';
const PORT = Number(process.env.PORT || 3002);
const WORKERS = Number(process.env.WORKERS || os.cpus().length);
const TTL = Number(process.env.SESSION_TTL_S || 3600);
const CAP = Number(process.env.SESSION_CAP || 100000);
const MAX_NAME = 64;
const MAX_TOKEN = 512;

if (!['memory', 'master', 'stateless'].includes(MODE)) {
  console.error(`unknown SESSIONS mode ${JSON.stringify(MODE)} (want memory, master or stateless)`);
  process.exit(2);
}

// A bounded token map: a Map keeps insertion order, so the first key is
// the oldest.
function makeStore() {
  const m = new Map();
  return {
    add(tok, name, exp) {
      if (m.has(tok) || exp <= Date.now() / 1000) return;
      m.set(tok, { name, exp });
      while (m.size > CAP) m.delete(m.keys().next().value);
    },
    get(tok) {
      const e = m.get(tok);
      return e && e.exp > Date.now() / 1000 ? e.name : undefined;
    },
    del(tok) { return m.delete(tok); },
    entries() { return [...m].map(([tok, e]) => [tok, e.name, e.exp]); },
    get size() { return m.size; },
  };
}

const validToken = (t) => typeof t === 'string' && /^[A-Za-z0-9._-]{1,512}$/.test(t);
const validName = (n) => typeof n === 'string' && n.length > 0 && Buffer.byteLength(n) <= MAX_NAME &&
  !/[\p{Cc}\p{Cs}]/u.test(n);

if (cluster.isPrimary) {
  const store = makeStore(); // master mode: the cluster's set
  const fork = () => {
    const w = cluster.fork();
    // Sent before the worker listens: it waits for the last chunk.
    const all = MODE === 'master' ? store.entries() : [];
    for (let i = 0; ; i += 300) {
      const last = i + 300 >= all.length;
      w.send({ op: 'snap', entries: all.slice(i, i + 300), last });
      if (last) break;
    }
    w.on('message', (m) => {
      if (MODE !== 'master' || !m || typeof m !== 'object' || !validToken(m.tok)) return;
      if (m.op === 'add' && validName(m.name) && Number.isFinite(m.exp)) store.add(m.tok, m.name, m.exp);
      else if (m.op === 'del') store.del(m.tok);
      else return;
      for (const other of Object.values(cluster.workers)) {
        if (other && other !== w && other.isConnected()) other.send(m);
      }
    });
  };
  for (let i = 0; i < WORKERS; i++) fork();
  cluster.on('exit', (w, code, signal) => {
    console.log(`worker ${w.process.pid} exited (${signal || code}); forking another`);
    fork();
  });
} else {
  const store = makeStore();
  let key;
  if (MODE === 'stateless') {
    key = fs.readFileSync(process.env.SESSION_KEY_FILE || '').toString().trim();
    if (Buffer.byteLength(key) < 16) throw new Error('SESSION_KEY_FILE: want at least 16 bytes');
  }
  const mac = (body) => crypto.createHmac('sha256', key).update(body).digest('base64url');
  const sign = (name, exp) => {
    const body = Buffer.from(JSON.stringify({ n: name, e: exp, r: crypto.randomBytes(9).toString('base64url') })).toString('base64url');
    return `${body}.${mac(body)}`;
  };
  const verify = (tok) => {
    const i = tok.indexOf('.');
    if (i < 0) return undefined;
    const body = tok.slice(0, i);
    const want = Buffer.from(mac(body));
    const got = Buffer.from(tok.slice(i + 1));
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) return undefined;
    try {
      const c = JSON.parse(Buffer.from(body, 'base64url').toString());
      return validName(c.n) && Number.isFinite(c.e) && c.e > Date.now() / 1000 ? c.n : undefined;
    } catch {
      return undefined;
    }
  };
  const bearer = (req) => {
    const m = /^bearer +(.*)$/i.exec(req.get('authorization') || '');
    return m && validToken(m[1]) ? m[1] : undefined;
  };
  const lookup = (tok) => (MODE === 'stateless' ? verify(tok) : store.get(tok));
  const tell = (m) => { if (MODE === 'master') process.send(m); };

  const app = express();
  app.post('/login', express.json({ limit: '4kb' }), (req, res) => {
    const name = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body.name : undefined;
    if (!validName(name)) return res.status(400).json({ error: 'name must be 1 to 64 bytes of printable UTF-8' });
    const exp = Math.floor(Date.now() / 1000) + TTL;
    let token;
    if (MODE === 'stateless') {
      token = sign(name, exp);
    } else {
      token = crypto.randomBytes(32).toString('base64url');
      store.add(token, name, exp);
      tell({ op: 'add', tok: token, name, exp, t: Date.now() * 1e6 });
    }
    res.json({ token });
  });
  app.get('/me', (req, res) => {
    const tok = bearer(req);
    const name = tok && lookup(tok);
    if (!name) return res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'unauthorized' });
    res.json({ name });
  });
  app.post('/logout', (req, res) => {
    const tok = bearer(req);
    if (!tok || !lookup(tok)) return res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'unauthorized' });
    if (MODE !== 'stateless') {
      store.del(tok);
      tell({ op: 'del', tok, t: Date.now() * 1e6 });
    }
    res.status(204).end();
  });
  // With a bearer: whether this worker holds that token (the tests and the
  // bench wait on it for the propagation), and nothing else.
  app.get('/sessions/stats', (req, res) => {
    const tok = bearer(req);
    if (req.get('Authorization')) {
      return res.json({ pid: process.pid, mode: MODE, has: MODE === 'stateless' ? undefined : Boolean(tok && lookup(tok)) });
    }
    res.json({ pid: process.pid, mode: MODE, tokens: store.size });
  });
  // The practice's routes beside the session ones (as Go's sumcluster
  // --sessions serves them): deploylab up --app node-sessions verifies them.
  app.get('/', (req, res) => res.send('Hello World!'));
  app.get('/api/:n', (req, res) => {
    let n = parseInt(req.params.n);
    let count = 0;
    if (n > 5000000000) n = 5000000000;
    for (let i = 0; i <= n; i++) { count += i; }
    res.send(`Final count is ${count}`);
  });
  // A body express.json refuses (not JSON, too large): 400, as Go answers.
  app.use((err, req, res, next) => res.status(400).json({ error: 'bad request' }));

  let listening = false;
  process.on('message', (m) => {
    if (!m || typeof m !== 'object') return;
    if (m.op === 'snap') {
      for (const e of Array.isArray(m.entries) ? m.entries : []) {
        if (Array.isArray(e) && validToken(e[0]) && validName(e[1])) store.add(e[0], e[1], e[2]);
      }
      if (m.last && !listening) {
        listening = true;
        app.listen(PORT, () => console.log(`worker ${process.pid} listening on ${PORT} (${MODE})`));
      }
    } else if (validToken(m.tok)) {
      if (m.op === 'add' && validName(m.name)) store.add(m.tok, m.name, m.exp);
      else if (m.op === 'del') store.del(m.tok);
    }
  });
}
