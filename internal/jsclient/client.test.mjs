// The client's state machine, one test per path it must handle, with a
// fake fetch (scripted responses and streamed bodies), fake timers and,
// for tab leadership, fake Web Locks and BroadcastChannel. No test sleeps:
// time moves only through clock.advance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from './client.js';

// ---- fakes ---------------------------------------------------------------

const settle = async () => {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
};

class Clock {
  constructor() { this.t = 1_000_000; this.timers = new Map(); this.seq = 0; }
  now() { return this.t; }
  setTimeout(fn, ms) { const id = ++this.seq; this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  // advance runs every timer due within ms, in order, letting promises settle between.
  async advance(ms) {
    const end = this.t + ms;
    await settle();
    for (;;) {
      let next = null;
      for (const [id, tm] of this.timers) if (tm.at <= end && (!next || tm.at < next[1].at)) next = [id, tm];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

// Server answers the client's fetches; each one waits in calls until the
// test answers it.
class Server {
  constructor() { this.calls = []; this.beacons = []; }
  fetch(url, init = {}) {
    return new Promise((resolve, reject) => {
      const u = new URL(url, 'http://svc.test');
      if (init.method === 'POST') {
        this.beacons.push({ url: u, body: init.body });
        resolve(new Response(null, { status: 204 }));
        return;
      }
      const call = { url: u, init, resolve, reject, aborted: false, ctrl: null };
      call.q = (k) => u.searchParams.get(k);
      call.open = (text = '') => {
        const body = new ReadableStream({ start(c) { call.ctrl = c; } });
        resolve(new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } }));
        if (text) call.send(text);
      };
      call.send = (text) => call.ctrl.enqueue(new TextEncoder().encode(text));
      call.end = () => call.ctrl.close();
      call.fail = () => call.ctrl.error(new TypeError('network error'));
      call.answer = (status, body = '', headers = {}) => resolve(new Response(status === 204 ? null : body, { status, headers }));
      call.refuse = () => reject(new TypeError('Failed to fetch'));
      init.signal?.addEventListener('abort', () => {
        call.aborted = true;
        reject(new DOMException('aborted', 'AbortError'));
        try { call.ctrl?.error(new DOMException('aborted', 'AbortError')); } catch { /* closed */ }
      });
      this.calls.push(call);
    });
  }
  last() { return this.calls[this.calls.length - 1]; }
  // next waits for the client's next fetch (after n calls so far).
  async next(n) {
    await settle();
    assert.equal(this.calls.length, n + 1, `expected fetch #${n + 1}, have ${this.calls.length}`);
    return this.calls[n];
  }
}

// jwt is a ticket-shaped token for a user (the client reads sub, never
// verifies); n tells tickets of one user apart.
const jwt = (sub, n) => `e30.${Buffer.from(JSON.stringify(n === undefined ? { sub } : { sub, n })).toString('base64url')}.sig`;

const seed = (status, message) => JSON.stringify({ statusCode: status, message, error: 'x' });
const sys = (id, kind) => `id: ${id}\nevent: system\ndata: {"kind":"${kind}","ts":"2026-01-01T00:00:00.000Z"}\n\n`;
const alert = (id, n) => `id: ${id}\nevent: machine-alert\ndata: {"deviceId":"C01","alert":{"n":${n}}}\n\n`;

// fakeEnv gives the client the fakes' time, fetch and beacons; random is
// fixed, so backoff delays are exact.
function fakeEnv(clock, server, extra) {
  return {
    fetch: (u, i) => server.fetch(u, i),
    setTimeout: (f, ms) => clock.setTimeout(f, ms),
    clearTimeout: (id) => clock.clearTimeout(id),
    now: () => clock.now(),
    random: () => 0.5,
    document: null,
    window: null,
    sendBeacon: (url, body) => { server.beacons.push({ url: new URL(url, 'http://svc.test'), body }); return true; },
    ...extra,
  };
}

// setup connects one client with fakes; only the alerts stream unless
// options say otherwise.
function setup(options = {}, envExtra = {}) {
  const clock = new Clock();
  const server = new Server();
  const tickets = [];
  let n = 0;
  const env = fakeEnv(clock, server, { locks: null, BroadcastChannel: null, ...envExtra });
  const client = connect({
    baseUrl: 'http://svc.test',
    getTicket: async (purpose) => { const t = `T${++n}-${purpose}`; tickets.push(t); return t; },
    env,
    ...options,
  });
  const states = [];
  client.onState((s) => states.push(s));
  const alerts = [];
  client.on('machine-alert', (d, meta) => alerts.push({ n: d.alert.n, id: meta.id }));
  return { clock, server, client, tickets, states, alerts, env };
}

// ---- paths -------------------------------------------------------------------

test('opens with a ticket, history and no cursor; live on connected; events reach on()', async () => {
  const { server, client, alerts, tickets } = setup({ history: 20 });
  const c = await server.next(0);
  assert.equal(c.url.pathname, '/sse/alerts');
  assert.equal(c.q('ticket'), tickets[0]);
  assert.equal(c.q('history'), '20');
  assert.equal(c.q('lastEventId'), null);
  assert.equal(c.init.headers['Last-Event-ID'], undefined, 'a header would cost a CORS preflight');
  assert.equal(client.state.state, 'connecting');
  c.open(sys('L.1.1', 'connected') + alert('L.1.2', 7));
  await settle();
  assert.equal(client.state.state, 'live');
  assert.deepEqual(alerts, [{ n: 7, id: 'L.1.2' }]);
});

test('401: a fresh ticket, reopened at once, resuming from the last id', async () => {
  const { server, clock, tickets, client } = setup();
  (await server.next(0)).open('retry: 1000\n' + sys('L.1.1', 'connected') + alert('L.1.2', 1) + sys('L.1.3', 'reconnect'));
  server.calls[0].end();
  await clock.advance(999);
  assert.equal(server.calls.length, 1, 'not before the server\'s retry');
  await clock.advance(1);
  const again = await server.next(1);
  assert.equal(again.q('ticket'), tickets[0], 'the same ticket first: its cursor stands in for it');
  assert.equal(again.q('lastEventId'), 'L.1.3');
  again.answer(401, seed(401, 'Invalid or expired stream ticket'));
  const fresh = await server.next(2);
  assert.equal(tickets.length, 2);
  assert.equal(fresh.q('ticket'), tickets[1]);
  assert.equal(fresh.q('lastEventId'), 'L.1.3', 'the cursor still gives the replay position');
  fresh.open(sys('M.1.1', 'connected'));
  await settle();
  assert.equal(client.state.state, 'live');
});

test('401 on a ticket just issued backs off instead of looping', async () => {
  const { server, clock, tickets } = setup();
  (await server.next(0)).answer(401, seed(401, 'Invalid or expired stream ticket'));
  await settle();
  assert.equal(server.calls.length, 1);
  await clock.advance(500); // random 0.5 x the first ceiling of 1 s
  assert.equal(server.calls.length, 2);
  assert.equal(tickets.length, 2);
});

test('429 three times: capped exponential backoff with full jitter, then live', async () => {
  const { server, clock, client } = setup({ backoffCap: 3000 });
  const waits = [];
  for (let i = 0; i < 3; i++) {
    (await server.next(i)).answer(429, seed(429, 'Too many streams from this address'));
    await settle();
    const t0 = clock.now();
    while (server.calls.length === i + 1) await clock.advance(50);
    waits.push(clock.now() - t0);
  }
  // random() is 0.5: half of 1 s, 2 s, then the 3 s cap.
  assert.deepEqual(waits, [500, 1000, 1500]);
  assert.match(client.state.reason, /^429: Too many streams/);
  assert.equal(client.state.state, 'reconnecting');
  server.calls[3].open(sys('L.1.1', 'connected'));
  await settle();
  assert.equal(client.state.state, 'live');
});

test('5xx and network errors back off; a healthy minute resets the backoff', async () => {
  const { server, clock } = setup();
  (await server.next(0)).answer(503, seed(503, 'Service temporarily unavailable'));
  await clock.advance(500);
  (await server.next(1)).refuse(); // network error
  await settle();
  await clock.advance(999);
  assert.equal(server.calls.length, 2, 'the second wait is up to 2 s');
  await clock.advance(1);
  (await server.next(2)).answer(502, 'Bad Gateway');
  await clock.advance(2000);
  const c = await server.next(3);
  c.open(sys('L.1.1', 'connected'));
  for (let i = 2; i <= 4; i++) { // healthy for a minute, heartbeats every 25 s
    await clock.advance(25_000);
    c.send(sys(`L.1.${i}`, 'heartbeat'));
  }
  c.fail();
  await settle();
  await clock.advance(500); // back to the first ceiling
  assert.equal((await server.next(4)).q('lastEventId'), 'L.1.4');
});

test('the server\'s unavailable: reopen after its retry', async () => {
  const { server, clock, client } = setup();
  const c = await server.next(0);
  c.open('retry: 7000\n' + sys('L.1.1', 'unavailable'));
  c.end();
  await settle();
  assert.equal(client.state.state, 'reconnecting');
  assert.match(client.state.reason, /unavailable/);
  await clock.advance(6999);
  assert.equal(server.calls.length, 1);
  await clock.advance(1);
  assert.equal((await server.next(1)).q('lastEventId'), 'L.1.1');
});

test('superseded by another browser: stopped, and no reconnect', async () => {
  const { server, clock, client } = setup();
  const c = await server.next(0);
  c.open(sys('L.1.1', 'connected') + sys('L.1.2', 'superseded'));
  c.end();
  await settle();
  assert.equal(client.state.state, 'stopped');
  assert.match(client.state.reason, /^superseded/);
  await clock.advance(120_000);
  assert.equal(server.calls.length, 1);
});

test('204: stopped as superseded', async () => {
  const { server, clock, client } = setup();
  (await server.next(0)).answer(204);
  await clock.advance(60_000);
  assert.equal(client.state.state, 'stopped');
  assert.match(client.state.reason, /^superseded/);
  assert.equal(server.calls.length, 1);
});

for (const [status, msg] of [[400, 'Too many devices: at most 10 per stream'], [403, 'Access denied to one or more devices']]) {
  test(`${status}: stopped with the server's message`, async () => {
    const { server, clock, client } = setup({ alerts: false, devices: ['C01'] });
    const c = await server.next(0);
    assert.equal(c.url.pathname, '/sse/stream');
    assert.equal(c.q('deviceIds'), 'C01');
    c.answer(status, seed(status, msg));
    await clock.advance(60_000);
    assert.deepEqual([client.state.state, client.state.reason], ['stopped', msg]);
    assert.equal(server.calls.length, 1);
  });
}

test('no byte for 2 x heartbeat + 5 s: the stream is reopened from its last id', async () => {
  const { server, clock } = setup({ heartbeat: 25_000 });
  const c = await server.next(0);
  c.open(sys('L.1.1', 'connected'));
  await clock.advance(54_999);
  assert.equal(server.calls.length, 1);
  c.send(sys('L.1.2', 'heartbeat')); // a byte re-arms the watchdog
  await clock.advance(54_999);
  assert.equal(server.calls.length, 1);
  await clock.advance(1);
  assert.ok(c.aborted, 'the silent connection is given up');
  assert.equal((await server.next(1)).q('lastEventId'), 'L.1.2');
});

// fakeDocument is a page whose visibility the test sets.
function fakeDocument() {
  const fns = new Set();
  return {
    visibilityState: 'visible',
    addEventListener: (n, f) => fns.add(f),
    removeEventListener: (n, f) => fns.delete(f),
    set(v) { this.visibilityState = v; for (const f of fns) f(); },
  };
}

test('hidden for pauseAfter: close beacon and paused; visible again: resumed with replay', async () => {
  const doc = fakeDocument();
  const { server, clock, client, tickets } = setup({ pauseAfter: 10_000 }, { document: doc });
  const c = await server.next(0);
  c.open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  doc.set('hidden');
  await clock.advance(9_999);
  assert.equal(server.beacons.length, 0);
  await clock.advance(1);
  assert.equal(client.state.state, 'paused');
  assert.equal(server.beacons.length, 1);
  const b = server.beacons[0];
  assert.equal(b.url.pathname, '/sse/close');
  assert.equal(b.url.searchParams.get('ticket'), tickets[0]);
  assert.equal(b.body, 'L.1.2');
  // The server ends the stream it was told to close.
  c.send(sys('L.1.3', 'closed'));
  c.end();
  await clock.advance(60_000);
  assert.equal(server.calls.length, 1, 'nothing reopens while hidden');
  assert.equal(client.state.state, 'paused');
  doc.set('visible');
  const r = await server.next(1);
  assert.equal(r.q('lastEventId'), 'L.1.2', 'from the cursor the close named');
  r.open(sys('L.1.4', 'connected'));
  await settle();
  assert.equal(client.state.state, 'live');
});

test('visible again before the closed stream has ended: nothing arrives twice', async () => {
  const doc = fakeDocument();
  const { server, clock, alerts } = setup({ pauseAfter: 1_000 }, { document: doc });
  const c = await server.next(0);
  c.open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  doc.set('hidden');
  await clock.advance(1_000);
  doc.set('visible'); // the server has not ended the old stream yet
  const r = await server.next(1);
  c.send(alert('L.1.3', 2)); // still on the old stream...
  r.open(sys('M.1.1', 'connected') + alert('M.1.2', 2)); // ...and replayed on the new one
  await settle();
  assert.deepEqual(alerts.map((a) => a.n), [1, 2]);
});

test('pagehide sends the close beacon', async () => {
  const handlers = {};
  const win = { addEventListener: (n, f) => { handlers[n] = f; }, removeEventListener: () => {} };
  const { server, client } = setup({}, { window: win });
  (await server.next(0)).open(sys('L.1.1', 'connected'));
  await settle();
  handlers.pagehide();
  assert.equal(server.beacons.length, 1);
  assert.equal(server.beacons[0].body, 'L.1.1');
  assert.equal(client.state.state, 'stopped');
});

test('devices are checked against MAX_DEVICES_PER_STREAM', () => {
  const { client } = setup({ maxDevices: 2 });
  assert.throws(() => client.setDevices(['C01', 'C02', 'C03']), /at most 2 per stream/);
  assert.throws(() => client.setDevices(['bad\nid']), /invalid device id/);
});

// ---- tabs ----------------------------------------------------------------------

// Tabs share fake Web Locks and a fake BroadcastChannel (messages are
// cloned and delivered asynchronously, as in a browser). A test can cut
// the channel between two tabs (tab(tag) gives a tab's env; cut(from, to)
// says whether a message is lost) or hold every message until flush().
function fakeTabs() {
  const channels = new Map();
  const shared = { cut: null, held: null };
  class BC {
    constructor(name) { this.name = name; this.tag = this.constructor.tag; this.onmessage = null; if (!channels.has(name)) channels.set(name, new Set()); channels.get(name).add(this); }
    postMessage(m) {
      if (this.closed) throw new DOMException('BroadcastChannel is closed', 'InvalidStateError'); // as a browser does
      for (const o of channels.get(this.name)) {
        if (o === this || (shared.cut && shared.cut(this.tag, o.tag))) continue;
        const data = structuredClone(m);
        const go = () => { if (!o.closed && o.onmessage) o.onmessage({ data }); };
        if (shared.held) shared.held.push(go);
        else queueMicrotask(go);
      }
    }
    close() { this.closed = true; channels.get(this.name).delete(this); }
  }
  const held = new Set(); // lock names held
  const queues = new Map(); // lock name -> waiting requests
  const pump = async (name) => {
    const queue = queues.get(name);
    if (held.has(name) || queue.length === 0) return;
    held.add(name);
    const { cb, done } = queue.shift();
    try { done(await cb()); } finally { held.delete(name); pump(name); }
  };
  const locks = {
    request: (name, cb) => new Promise((done) => {
      if (!queues.has(name)) queues.set(name, []);
      queues.get(name).push({ cb, done });
      pump(name);
    }),
  };
  shared.BroadcastChannel = BC;
  shared.locks = locks;
  shared.tab = (tag, extra = {}) => ({ BroadcastChannel: class extends BC { static tag = tag; }, locks, ...extra });
  shared.flush = () => { const h = shared.held || []; shared.held = null; for (const go of h) go(); };
  return shared;
}

test('tabs: one leader holds one alerts and one data stream for the union of devices; events are relayed; the next tab takes over from the last id', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  let n = 0;
  const tab = (devices) => {
    const env = fakeEnv(clock, server, shared);
    const client = connect({ baseUrl: 'http://svc.test', devices, getTicket: async () => jwt('1', ++n), env });
    const got = { alerts: [], data: [] };
    client.on('machine-alert', (d) => got.alerts.push(d.alert.n));
    client.on('realtime-update', (d) => got.data.push(d.deviceId));
    return { client, got };
  };
  const a = tab(['C01']);
  const b = tab(['C02']);
  await clock.advance(200); // the leader's settle time for the tabs' devices
  const byPath = (p) => server.calls.filter((c) => c.url.pathname === p && !c.aborted);
  assert.equal(byPath('/sse/alerts').length, 1, 'one alerts stream');
  assert.equal(byPath('/sse/stream').length, 1, 'one data stream');
  assert.equal(a.client.state.role, 'leader');
  assert.equal(b.client.state.role, 'follower');
  const data = byPath('/sse/stream')[0];
  assert.equal(data.q('deviceIds'), 'C01,C02');
  const alerts = byPath('/sse/alerts')[0];
  alerts.open(sys('L.1.1', 'connected') + alert('L.1.2', 1) + alert('L.1.3', 2));
  data.open(sys('D.1.1', 'connected') + 'id: D.1.2\nevent: realtime-update\ndata: {"deviceId":"C02","data":{}}\n\n');
  await settle();
  assert.deepEqual(a.got.alerts, [1, 2]);
  assert.deepEqual(b.got.alerts, [1, 2], 'relayed');
  assert.deepEqual(a.got.data, [], 'C02 is not the first tab\'s');
  assert.deepEqual(b.got.data, ['C02']);
  assert.equal(b.client.state.state, 'live', 'the follower shows the leader\'s state');

  // The leader tab closes: its streams get the beacon, the other takes over.
  a.client.close();
  await settle();
  assert.deepEqual(server.beacons.map((x) => x.body).sort(), ['D.1.2', 'L.1.3']);
  await clock.advance(200);
  assert.equal(b.client.state.role, 'leader');
  const resumed = server.calls.filter((c) => c.url.pathname === '/sse/alerts').pop();
  assert.equal(resumed.q('lastEventId'), 'L.1.3', 'resumes after the last relayed alert');
  assert.equal(server.calls.filter((c) => c.url.pathname === '/sse/stream').pop().q('deviceIds'), 'C02');
  resumed.open(sys('M.1.1', 'connected') + alert('M.1.2', 3));
  await settle();
  assert.deepEqual(b.got.alerts, [1, 2, 3]);
  b.client.close();
});

test('tabs: a union past MAX_DEVICES_PER_STREAM is a clear error', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const env = fakeEnv(clock, server, shared);
  const a = connect({ alerts: false, devices: ['C01', 'C02'], maxDevices: 3, getTicket: async () => jwt('1'), env });
  const b = connect({ alerts: false, devices: ['C03', 'C04'], maxDevices: 3, getTicket: async () => jwt('1'), env });
  await clock.advance(200);
  assert.deepEqual(server.calls.filter((c) => !c.aborted).map((c) => c.url.search), []);
  assert.equal(a.state.state, 'stopped');
  assert.match(a.state.reason, /4 devices, more than MAX_DEVICES_PER_STREAM \(3\)/);
  await settle();
  assert.match(b.state.reason, /MAX_DEVICES_PER_STREAM/);
  b.setDevices(['C02']);
  await clock.advance(5_100); // the next hello
  assert.equal(server.last().q('deviceIds'), 'C01,C02');
  a.close();
  b.close();
});

test('a response that never starts is given up after 2 x heartbeat + 5 s', async () => {
  const { server, clock } = setup({ heartbeat: 25_000 });
  const c = await server.next(0); // never answered
  await clock.advance(55_000);
  assert.ok(c.aborted);
  await server.next(1);
});

test('a stream that keeps dropping backs off, waiting at least the server\'s retry', async () => {
  const { server, clock } = setup({ backoffBase: 1000 });
  let c = await server.next(0);
  c.open('retry: 3000\n' + sys('L.1.1', 'connected'));
  await settle(); // read before the failure (an error discards what is queued)
  c.fail();
  await clock.advance(2_999);
  assert.equal(server.calls.length, 1, 'not before the server\'s retry');
  await clock.advance(1);
  c = await server.next(1);
  c.open('retry: 100\n' + sys('L.1.2', 'connected'));
  await settle();
  c.end(); // an end without a word
  await clock.advance(999); // backoff has grown: 0.5 x 2 s
  assert.equal(server.calls.length, 2);
  await clock.advance(1);
  assert.equal((await server.next(2)).q('lastEventId'), 'L.1.2');
});

test('tabs of different users on one origin never share streams', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const env = fakeEnv(clock, server, shared);
  const one = connect({ baseUrl: 'http://svc.test', getTicket: async () => jwt('1'), env });
  const two = connect({ baseUrl: 'http://svc.test', getTicket: async () => jwt('2'), env });
  const got = [];
  two.on('machine-alert', (d) => got.push(d.alert.n));
  await clock.advance(200);
  assert.equal(one.state.role, 'leader');
  assert.equal(two.state.role, 'leader', 'another user: its own leader');
  const streams = server.calls.filter((c) => c.url.pathname === '/sse/alerts');
  assert.deepEqual(streams.map((c) => c.q('ticket')).sort(), [jwt('1'), jwt('2')].sort());
  streams.find((c) => c.q('ticket') === jwt('1')).open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  assert.deepEqual(got, [], 'user 2 never sees user 1\'s alert');
  one.close();
  two.close();
});

test('tabs: no ticket yet, no election: the tab retries with backoff instead of leading alone', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  let fail = 2;
  const c = connect({
    baseUrl: 'http://svc.test', env: fakeEnv(clock, server, shared),
    getTicket: async () => { if (fail-- > 0) throw new Error('503 from the ticket endpoint'); return jwt('1'); },
  });
  await settle();
  assert.equal(c.state.state, 'connecting');
  assert.match(c.state.reason, /^ticket: 503 from the ticket endpoint; retry in 0.5 s/);
  assert.equal(server.calls.length, 0, 'no stream before the tab knows its user');
  await clock.advance(500 + 1000); // two backoffs (random 0.5)
  await clock.advance(200);
  assert.equal(c.state.role, 'leader');
  assert.equal(server.calls.length, 1);
  c.close();
});

test('tabs without Web Locks: a BroadcastChannel heartbeat elects one leader, and the next claims when it goes', async () => {
  const { BroadcastChannel } = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const env = fakeEnv(clock, server, { BroadcastChannel, locks: null });
  const a = connect({ baseUrl: 'http://svc.test', getTicket: async () => jwt('1'), env });
  await clock.advance(1_000);
  const b = connect({ baseUrl: 'http://svc.test', getTicket: async () => jwt('1'), env });
  await clock.advance(3_000); // no leader heard for 2.5 s: the first tab claims; the second hears it
  assert.deepEqual([a.state.role, b.state.role], ['leader', 'follower']);
  assert.equal(server.calls.filter((c) => c.url.pathname === '/sse/alerts').length, 1);
  a.close();
  await clock.advance(4_000);
  assert.equal(b.state.role, 'leader');
  assert.equal(server.calls.filter((c) => c.url.pathname === '/sse/alerts').length, 2);
  b.close();
});

// ---- the reviewer's cases --------------------------------------------------

// tabOf connects a tab of user 1 with the given env fakes; got has its
// alerts (n) and data events (deviceId).
let ticketNo = 0;
function tabOf(clock, server, envExtra, options = {}) {
  const env = fakeEnv(clock, server, envExtra);
  const client = connect({ baseUrl: 'http://svc.test', getTicket: async () => jwt('1', ++ticketNo), env, ...options });
  const got = { alerts: [], data: [] };
  client.on('machine-alert', (d) => got.alerts.push(d.alert.n));
  client.on('realtime-update', (d) => got.data.push(d.deviceId));
  return { client, got };
}
const live = (server, path) => server.calls.filter((c) => c.url.pathname === path && !c.aborted);

test('Reconnect in a follower tab: a new client\'s first hello reopens the leader\'s stopped streams', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const a = tabOf(clock, server, shared);
  const b = tabOf(clock, server, shared);
  await clock.advance(200);
  assert.deepEqual([a.client.state.role, b.client.state.role], ['leader', 'follower']);
  const first = live(server, '/sse/alerts')[0];
  first.open(sys('L.1.1', 'connected') + sys('L.1.2', 'superseded'));
  first.end();
  await settle();
  assert.match(b.client.state.reason, /^superseded/);
  await clock.advance(10_000); // hellos again: nothing reopens
  assert.equal(server.calls.filter((c) => c.url.pathname === '/sse/alerts').length, 1);
  b.client.close(); // the app's Reconnect button
  const b2 = tabOf(clock, server, shared);
  await clock.advance(200);
  assert.equal(b2.client.state.role, 'follower');
  const again = server.calls.filter((c) => c.url.pathname === '/sse/alerts');
  assert.equal(again.length, 2, 'the leader reopened its stopped alerts stream');
  assert.equal(again[1].q('lastEventId'), null, 'a superseded lease\'s cursor would get 204 again');
  again[1].open(sys('M.1.1', 'connected') + alert('M.1.2', 5));
  await settle();
  assert.equal(b2.client.state.state, 'live');
  assert.deepEqual(b2.got.alerts, [5]);
  a.client.close();
  b2.client.close();
});

test('setDevices after close() opens nothing (solo and leader)', async () => {
  const { server, client, clock } = setup({ alerts: false });
  client.close();
  client.setDevices(['C01']);
  await clock.advance(60_000);
  assert.equal(server.calls.length, 0);
  const shared = fakeTabs();
  const clock2 = new Clock();
  const server2 = new Server();
  const a = tabOf(clock2, server2, shared, { alerts: false, devices: ['C01'] });
  await clock2.advance(200);
  assert.equal(a.client.state.role, 'leader');
  a.client.close();
  a.client.setDevices(['C02']); // threw InvalidStateError on the closed channel
  await clock2.advance(60_000);
  assert.deepEqual(server2.calls.map((c) => c.q('deviceIds')), ['C01']);
});

test('bfcache: pagehide with persisted pauses (beacon) and pageshow resumes from the last id', async () => {
  const handlers = {};
  const win = { addEventListener: (n, f) => { handlers[n] = f; }, removeEventListener: (n) => { delete handlers[n]; } };
  const { server, client, clock } = setup({}, { window: win });
  (await server.next(0)).open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  handlers.pagehide({ persisted: true });
  assert.deepEqual(server.beacons.map((b) => b.body), ['L.1.2']);
  assert.equal(client.state.state, 'paused');
  await clock.advance(60_000);
  assert.equal(server.calls.length, 1, 'nothing opens while in the cache');
  handlers.pageshow({ persisted: true });
  const r = await server.next(1);
  assert.equal(r.q('lastEventId'), 'L.1.2');
  r.open(sys('M.1.1', 'connected'));
  await settle();
  assert.equal(client.state.state, 'live');
  handlers.pagehide({ persisted: false });
  assert.equal(client.state.state, 'stopped');
});

test('bfcache in a leader tab: the other tab takes over; back again, the tab follows', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const handlers = {};
  const win = { addEventListener: (n, f) => { handlers[n] = f; }, removeEventListener: () => {} };
  const a = tabOf(clock, server, { ...shared, window: win });
  const b = tabOf(clock, server, shared);
  await clock.advance(200);
  live(server, '/sse/alerts')[0].open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  handlers.pagehide({ persisted: true });
  await clock.advance(200);
  assert.equal(b.client.state.role, 'leader');
  const next = live(server, '/sse/alerts').pop();
  assert.equal(next.q('lastEventId'), 'L.1.2');
  next.open(sys('M.1.1', 'connected'));
  handlers.pageshow({ persisted: true });
  await clock.advance(200);
  assert.equal(a.client.state.role, 'follower');
  next.send(alert('M.1.2', 2));
  await settle();
  assert.deepEqual(a.got.alerts, [1, 2]);
  assert.equal(a.client.state.state, 'live');
  a.client.close();
  b.client.close();
});

test('a tab that took over right after the backlog resumes after it (no history twice)', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const a = tabOf(clock, server, shared, { history: 2 });
  await clock.advance(200);
  live(server, '/sse/alerts')[0].open(sys('L.1.1', 'connected') + alert('L.1.2', 1) + alert('L.1.3', 2));
  await settle();
  const b = tabOf(clock, server, shared, { history: 2 });
  await clock.advance(200);
  assert.deepEqual(b.got.alerts, [1, 2], 'the backlog');
  a.client.close(); // before any heartbeat was relayed
  await clock.advance(200);
  assert.equal(b.client.state.role, 'leader');
  assert.equal(live(server, '/sse/alerts').pop().q('lastEventId'), 'L.1.3');
  b.client.close();
});

test('the close beacon names the connection being closed, not the previous lease', async () => {
  const doc = fakeDocument();
  const { server, clock, tickets } = setup({ pauseAfter: 1_000 }, { document: doc });
  const c = await server.next(0);
  c.open('retry: 1000\n' + sys('L.1.1', 'connected') + sys('L.1.2', 'reconnect'));
  c.end();
  await clock.advance(1_000);
  const r = await server.next(1); // the rotation's reopen, not answered yet
  assert.equal(r.q('lastEventId'), 'L.1.2');
  doc.set('hidden');
  await clock.advance(1_000);
  assert.deepEqual(server.beacons, [], 'no id of this connection yet');
  r.open(sys('M.1.1', 'connected'));
  await settle();
  assert.deepEqual(server.beacons.map((b) => [b.body, b.url.searchParams.get('ticket')]), [['M.1.1', tickets[0]]]);
  await clock.advance(3_000);
  assert.ok(r.aborted, 'cut after CLOSE_GRACE if the server did not end it');
});

test('fallback election: a tab that stepped down reopens its data stream when it leads again', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  shared.cut = (from, to) => from !== to; // the two tabs do not hear each other at first
  const a = tabOf(clock, server, shared.tab('a', { locks: null }), { alerts: false, devices: ['C01'] });
  const b = tabOf(clock, server, shared.tab('b', { locks: null }), { alerts: false, devices: ['C01'] });
  await clock.advance(3_200);
  assert.deepEqual([a.client.state.role, b.client.state.role], ['leader', 'leader']);
  shared.cut = null;
  await clock.advance(1_000);
  const roles = [a.client.state.role, b.client.state.role].sort();
  assert.deepEqual(roles, ['follower', 'leader'], 'the larger id stepped down');
  const [winner, loser] = a.client.state.role === 'leader' ? [a, b] : [b, a];
  assert.equal(live(server, '/sse/stream').length, 1);
  const before = server.calls.length;
  winner.client.close();
  await clock.advance(1_200);
  assert.equal(loser.client.state.role, 'leader');
  const data = server.calls.slice(before).filter((x) => x.url.pathname === '/sse/stream');
  assert.equal(data.length, 1, 'the data stream is reopened');
  assert.equal(data[0].q('deviceIds'), 'C01');
  loser.client.close();
});

test('tickets without a readable user: each tab runs alone, never sharing', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const env = fakeEnv(clock, server, shared);
  const one = connect({ baseUrl: 'http://svc.test', getTicket: async () => 'opaque-ticket', env });
  const two = connect({ baseUrl: 'http://svc.test', getTicket: async () => 'x.bm90IGpzb24.y', env });
  await clock.advance(200);
  assert.deepEqual([one.state.role, two.state.role], ['solo', 'solo']);
  assert.equal(live(server, '/sse/alerts').length, 2);
  one.close();
  two.close();
});

test('fallback election: the leader\'s bye lets the next tab claim at its next tick', async () => {
  const { BroadcastChannel } = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const env = { BroadcastChannel, locks: null };
  const a = tabOf(clock, server, env);
  await clock.advance(1_000);
  const b = tabOf(clock, server, env);
  await clock.advance(3_000);
  assert.deepEqual([a.client.state.role, b.client.state.role], ['leader', 'follower']);
  a.client.close();
  await clock.advance(1_000);
  assert.equal(b.client.state.role, 'leader', 'not LEADER_TIMEOUT after the last heartbeat');
  b.client.close();
});

test('fallback election: while two tabs lead, a follower takes events from one only', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  shared.cut = (from, to) => (from === 'a' && to === 'b') || (from === 'b' && to === 'a');
  const a = tabOf(clock, server, shared.tab('a', { locks: null }));
  const b = tabOf(clock, server, shared.tab('b', { locks: null }));
  const c = tabOf(clock, server, shared.tab('c', { locks: null }));
  await clock.advance(3_200);
  assert.deepEqual([a, b, c].map((t) => t.client.state.role), ['leader', 'leader', 'follower']);
  const streams = live(server, '/sse/alerts');
  assert.equal(streams.length, 2);
  // Each leader's stream: tell them apart by the ticket their tab got.
  streams[0].open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  streams[1].open(sys('M.1.1', 'connected') + alert('M.1.2', 2));
  await settle();
  assert.equal(c.got.alerts.length, 1, `one leader's alert, not both: ${c.got.alerts}`);
  shared.cut = null;
  await clock.advance(1_000);
  const winner = a.client.state.role === 'leader' ? a : b;
  assert.deepEqual(c.got.alerts, winner.got.alerts, 'the one that stays');
  a.client.close();
  b.client.close();
  c.client.close();
});

test('Web Locks: the new leader takes the last relayed events first, then resumes after them', async () => {
  const shared = fakeTabs();
  const clock = new Clock();
  const server = new Server();
  const a = tabOf(clock, server, shared);
  const b = tabOf(clock, server, shared);
  const c = tabOf(clock, server, shared);
  await clock.advance(200);
  const first = live(server, '/sse/alerts')[0];
  first.open(sys('L.1.1', 'connected') + alert('L.1.2', 1));
  await settle();
  shared.held = []; // the channel is slow: the lock passes before the messages
  first.send(alert('L.1.3', 2));
  await settle();
  a.client.close();
  await settle();
  assert.equal(b.client.state.role, 'leader');
  assert.equal(server.calls.length, 1, 'waits for the last relayed events');
  shared.flush();
  await settle();
  assert.equal(server.calls.length, 2);
  const next = server.calls[1];
  assert.equal(next.q('lastEventId'), 'L.1.3');
  next.open(sys('M.1.1', 'connected') + alert('M.1.2', 3));
  await settle();
  assert.deepEqual(b.got.alerts, [1, 2, 3]);
  assert.deepEqual(c.got.alerts, [1, 2, 3]);
  b.client.close();
  c.client.close();
});
