// machinedash SSE browser client, served by the service at /sse/client.js.
//
// An ES module without dependencies. It keeps a dashboard's two streams
// (alerts, and data for a set of devices) live for days:
//
// - fetch with a streamed body and a parser that follows the WHATWG rules
//   for text/event-stream, so it sees status codes that a native
//   EventSource hides and sends its own resume cursor (?lastEventId=, which
//   needs no CORS preflight, unlike a Last-Event-ID header);
// - 401: a fresh ticket from getTicket, then resume from the last id; 429,
//   5xx and network errors: capped exponential backoff with full jitter,
//   reset after a healthy minute; the server's reconnect and unavailable:
//   reopen after its retry; 204 or superseded: stop (another browser took
//   over); 400 and 403: stop with the server's message; no byte for
//   2 x heartbeat + 5 s: reopen;
// - one stream per purpose for all tabs of an origin: the tabs elect a
//   leader (Web Locks, else a BroadcastChannel heartbeat) that holds the
//   streams for the union of their devices and relays every event to the
//   others; when it goes, the next tab takes over from the last id;
// - when every tab has been hidden for pauseAfter, the streams are closed
//   with POST /sse/close (navigator.sendBeacon) and the state is "paused";
//   a visible tab reopens them and the missed alerts are replayed. A page
//   put in the back/forward cache does the same and rejoins on pageshow.
//
// States: connecting, live, reconnecting, paused, stopped (each with a
// reason). Types: /sse/client.d.ts.

/** Purposes, in the order the streams are reported. */
const PURPOSES = /** @type {const} */ (['alerts', 'data']);

/** How bad each state is, for the one state of the whole client. */
const RANK = { live: 0, connecting: 1, reconnecting: 2, paused: 3, stopped: 4 };

const DEFAULTS = {
  baseUrl: '',
  alerts: true,
  devices: /** @type {string[]} */ ([]),
  history: 0,
  includeStatus: true,
  pauseAfter: 3 * 60_000,
  heartbeat: 25_000,
  maxDevices: 10,
  backoffBase: 1_000,
  backoffCap: 30_000,
  healthyAfter: 60_000,
  withCredentials: false,
  shared: true,
  scope: '',
};

// Tab coordination timings (ms).
// A tab tells the leader it is there (and says bye when it goes). A tab
// hidden for minutes has its timer chains throttled to one a minute by the
// browser, so a tab counts as gone only after TAB_TIMEOUT without a word.
const HELLO_EVERY = 5_000;
const TAB_TIMEOUT = 150_000;
const LEADER_EVERY = 1_000; // the leader says so (the fallback election)
const LEADER_TIMEOUT = 2_500; // no leader heard: a tab claims (fallback)
const SETTLE = 150; // a new leader waits this long for the tabs' devices
const CLOSE_GRACE = 3_000; // a closed stream is cut if the server has not ended it
const EARLY_TICKET_AGE = 30_000; // elect()'s ticket is used if the tab leads soon

// ---- the event stream parser ------------------------------------------

/**
 * Parses text/event-stream as the WHATWG HTML standard's "event stream
 * interpretation" says (the dispatch steps of a browser included). Feed it
 * decoded text in chunks of any size; a CRLF split across chunks is one
 * line ending. Decode with a TextDecoder (stream: true): it replaces
 * invalid UTF-8 and drops one leading BOM, as the standard wants.
 */
export class EventStreamParser {
  /**
   * @param {(ev: {type: string, data: string, lastEventId: string}) => void} onEvent
   * @param {(ms: number) => void} [onRetry] the reconnection time was set
   */
  constructor(onEvent, onRetry) {
    this.onEvent = onEvent;
    this.onRetry = onRetry || (() => {});
    this.rest = ''; // an unterminated line
    this.cr = false; // the last chunk ended with CR: a LF next is its pair
    this.data = '';
    this.type = '';
    this.idBuffer = '';
    /** The last event ID string, as at the last dispatch. */
    this.lastEventId = '';
  }

  /** @param {string} text */
  feed(text) {
    let s = this.rest + text;
    let pos = 0;
    if (this.cr && s[0] === '\n') pos = 1;
    this.cr = false;
    for (;;) {
      let i = pos;
      while (i < s.length && s[i] !== '\n' && s[i] !== '\r') i++;
      if (i === s.length) {
        this.rest = s.slice(pos);
        return;
      }
      const line = s.slice(pos, i);
      if (s[i] === '\r') {
        if (i + 1 === s.length) this.cr = true;
        else if (s[i + 1] === '\n') i++;
      }
      pos = i + 1;
      this.line(line);
    }
  }

  /** @param {string} line */
  line(line) {
    if (line === '') return this.dispatch();
    if (line[0] === ':') return; // a comment
    const c = line.indexOf(':');
    let field = line;
    let value = '';
    if (c >= 0) {
      field = line.slice(0, c);
      value = line.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
    }
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data += value + '\n';
        break;
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
        break;
      default: // ignored
    }
  }

  dispatch() {
    this.lastEventId = this.idBuffer;
    if (this.data === '') {
      this.type = '';
      return;
    }
    const ev = { type: this.type || 'message', data: this.data.slice(0, -1), lastEventId: this.lastEventId };
    this.data = '';
    this.type = '';
    this.onEvent(ev);
  }
}

// ---- one stream ---------------------------------------------------------

/** @typedef {{state: string, reason: string}} StreamState */

/**
 * One fetch of a stream. ticket and lastId are its own: a close beacon
 * must name this connection's lease, not the previous one's cursor that
 * the stream resumes from.
 * @typedef {{ctrl: AbortController, kind: string, retry: number | null, closing: boolean, cut: any, ticket: string, lastId: string, beaconDue: boolean}} Conn
 */

/**
 * One stream of the leader tab: a fetch at a time, and its state machine.
 */
class Stream {
  /**
   * @param {Client} client
   * @param {'alerts' | 'data'} purpose
   */
  constructor(client, purpose) {
    this.c = client;
    this.purpose = purpose;
    this.path = purpose === 'alerts' ? '/sse/alerts' : '/sse/stream';
    /** @type {string | null} */
    this.ticket = null;
    this.freshTicket = false; // the ticket was just issued
    this.lastId = '';
    this.devices = /** @type {string[]} */ ([]);
    this.state = 'stopped';
    this.reason = '';
    this.attempt = 0; // backoff exponent
    /** @type {any} */
    this.timer = null; // reopen
    /** @type {any} */
    this.healthy = null; // resets the backoff after a healthy minute
    /** @type {any} */
    this.watchdog = null;
    /** @type {Conn | null} */
    this.conn = null;
    this.opens = 0;
  }

  get env() { return this.c.env; }

  /** @param {string} state @param {string} reason */
  set(state, reason) {
    if (state !== 'live') this.clearHealthy();
    if (this.state === state && this.reason === reason) return;
    this.state = state;
    this.reason = reason;
    this.c.changed();
  }

  running() { return this.state !== 'stopped' && this.state !== 'paused'; }

  url() {
    const q = new URLSearchParams();
    q.set('ticket', /** @type {string} */ (this.ticket));
    if (this.purpose === 'data') {
      q.set('deviceIds', this.devices.join(','));
      if (!this.c.opts.includeStatus) q.set('includeStatus', 'false');
    } else if (this.c.opts.history > 0) {
      q.set('history', String(this.c.opts.history));
    }
    if (this.lastId) q.set('lastEventId', this.lastId);
    return `${this.c.base}${this.path}?${q}`;
  }

  /** Opens (or reopens at once) the stream. @param {string} reason */
  open(reason) {
    this.clearTimer();
    this.drop();
    this.set(this.opens > 0 ? 'reconnecting' : 'connecting', reason);
    this.connect();
  }

  async connect() {
    /** @type {Conn} */
    const conn = { ctrl: new AbortController(), kind: '', retry: null, closing: false, cut: null, ticket: '', lastId: '', beaconDue: false };
    this.conn = conn;
    if (!this.ticket) {
      try {
        this.ticket = this.c.takeEarly(this.purpose) || await this.c.ticket(this.purpose);
        this.freshTicket = true;
      } catch (e) {
        if (this.conn !== conn) return;
        this.conn = null;
        return this.backoff(`ticket: ${message(e)}`);
      }
      if (this.conn !== conn) return;
    }
    conn.ticket = /** @type {string} */ (this.ticket);
    /** @type {Response} */
    let res;
    this.arm(conn); // a response that never starts is as dead as a silent one
    try {
      res = await this.env.fetch(this.url(), {
        headers: { Accept: 'text/event-stream' },
        credentials: this.c.opts.withCredentials ? 'include' : 'same-origin',
        cache: 'no-store',
        signal: conn.ctrl.signal,
      });
    } catch (e) {
      if (this.conn !== conn) return;
      this.conn = null;
      return this.backoff('network error');
    }
    const ok = res.status === 200 && (res.headers.get('Content-Type') || '').startsWith('text/event-stream') && res.body;
    if (this.conn !== conn) {
      // Shut before its answer came: read it up to its first id, to close it by that.
      if (ok && conn.closing && conn.beaconDue) return this.read(conn, res);
      conn.ctrl.abort();
      return;
    }
    const fresh = this.freshTicket;
    this.freshTicket = false;
    if (ok) return this.read(conn, res);
    this.conn = null;
    const body = await res.text().catch(() => '');
    conn.ctrl.abort();
    if (!this.running()) return;
    const status = res.status;
    if (status === 204) return this.superseded();
    if (status === 401) {
      // The ticket expired (or was revoked) and the cursor could not stand
      // in for it: a fresh ticket, and the cursor still gives the replay
      // position. A fresh ticket refused at once is trouble: back off.
      this.ticket = null;
      if (fresh) return this.backoff(`refused: ${seedMessage(body, status)}`);
      return this.open('ticket expired: resuming with a fresh one');
    }
    if (status === 429 || status >= 500 || status === 200) {
      const after = Number(res.headers.get('Retry-After'));
      return this.backoff(`${status === 200 ? 'not an event stream' : status}: ${seedMessage(body, status)}`, after > 0 ? after * 1000 : 0);
    }
    this.stop(seedMessage(body, status)); // 400, 403, 404, ...
  }

  /**
   * @param {Conn} conn
   * @param {Response} res
   */
  async read(conn, res) {
    const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader();
    const dec = new TextDecoder();
    const parser = new EventStreamParser((ev) => this.event(conn, ev), (ms) => { conn.retry = ms; });
    if (!conn.closing) this.arm(conn);
    let failed = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (this.conn !== conn && !conn.closing) return;
        if (done) break;
        if (!conn.closing) this.arm(conn);
        parser.feed(dec.decode(value, { stream: true }));
      }
    } catch {
      failed = true;
    }
    if (conn.closing) {
      this.env.clearTimeout(conn.cut);
      return;
    }
    if (this.conn !== conn) return;
    this.conn = null;
    this.clearWatchdog();
    this.ended(conn, failed);
  }

  /**
   * @param {Conn} conn
   * @param {{type: string, data: string, lastEventId: string}} ev
   */
  event(conn, ev) {
    if (ev.lastEventId) conn.lastId = ev.lastEventId;
    // A stream being closed says nothing more: what it still carries is
    // replayed from the cursor the stream resumes from, so nothing comes
    // twice when it is reopened before it has ended. One shut before its
    // first event is closed by that event's id (see beacon).
    if (conn.closing) {
      if (conn.beaconDue && conn.lastId) {
        conn.beaconDue = false;
        this.c.beacon(conn.ticket, conn.lastId);
      }
      return;
    }
    if (ev.lastEventId) this.lastId = ev.lastEventId;
    if (ev.type === 'system') {
      const d = parseJSON(ev.data);
      conn.kind = (d && typeof d.kind === 'string') ? d.kind : '';
      if (conn.kind === 'connected' || conn.kind === 'heartbeat') this.live();
    }
    if (this.state !== 'stopped') this.c.emit(this.purpose, ev.type, ev.data, ev.lastEventId);
  }

  live() {
    if (this.state === 'live') return;
    this.opens++;
    this.set('live', this.opens > 1 ? `resumed (${this.opens - 1} reconnects)` : 'connected');
    this.clearHealthy();
    this.healthy = this.env.setTimeout(() => { this.attempt = 0; }, this.c.opts.healthyAfter);
  }

  /**
   * The response ended (failed: with a network error).
   * @param {Conn} conn
   * @param {boolean} failed
   */
  ended(conn, failed) {
    if (!this.running()) return;
    switch (conn.kind) {
      case 'superseded':
        return this.superseded();
      case 'closed': // POST /sse/close named it, though not from here
        return this.stop('closed by a close request');
      case 'revoked':
        this.ticket = null;
        break;
      default:
    }
    const why = { reconnect: 'the server rotated the stream', unavailable: 'the service is unavailable', revoked: 'the ticket was revoked', forbidden: 'device access changed' }[conn.kind];
    if (why) {
      // The server ended the stream on purpose and said when to come back.
      if (conn.retry !== null) return this.schedule(conn.retry, why);
      return this.backoff(why);
    }
    // Dropped (a network error, or an end without a word): after the
    // server's retry at least, backing off if it keeps happening.
    this.backoff(failed ? 'network error' : 'the stream ended', conn.retry ?? 0);
  }

  /** @param {string} reason @param {number} [atLeast] */
  backoff(reason, atLeast = 0) {
    const o = this.c.opts;
    const ceiling = Math.min(o.backoffCap, o.backoffBase * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    this.schedule(Math.max(atLeast, Math.floor(this.env.random() * ceiling)), reason);
  }

  /** @param {number} ms @param {string} reason */
  schedule(ms, reason) {
    this.clearTimer();
    this.clearWatchdog();
    this.set('reconnecting', `${reason}; retry in ${Math.round(ms / 100) / 10} s`);
    this.timer = this.env.setTimeout(() => { this.timer = null; this.connect(); }, ms);
  }

  superseded() {
    // A superseded lease's cursor is only ever answered 204: a retry (see
    // Client.retry) starts afresh.
    if (this.c.lastIds[this.purpose] === this.lastId) this.c.lastIds[this.purpose] = '';
    this.lastId = '';
    if (this.c.supersededByOwnTab()) {
      // Two leaders for a moment (the fallback election): the other stays.
      this.stop('another tab of this page holds the stream');
      this.c.follow();
      return;
    }
    this.stop('superseded: a newer connection of this user (another browser or device) took over');
  }

  /** Silence for 2 x heartbeat + 5 s: the connection is dead. @param {Conn} conn */
  arm(conn) {
    this.clearWatchdog();
    const ms = 2 * this.c.opts.heartbeat + 5_000;
    this.watchdog = this.env.setTimeout(() => {
      if (this.conn !== conn) return;
      this.conn = null;
      conn.ctrl.abort();
      this.open(`no data for ${ms / 1000} s`);
    }, ms);
  }

  /**
   * Ends the stream and tells the server (the close beacon): Lambda never
   * learns that a browser left. The response is read on until the server
   * ends it (or CLOSE_GRACE passes), so it ends by the close, not by a
   * dropped connection.
   * @param {'paused' | 'stopped'} state
   * @param {string} reason
   */
  shut(state, reason) {
    this.clearTimer();
    this.beacon();
    this.drop(true);
    this.set(state, reason);
  }

  /** @param {string} reason */
  stop(reason) {
    this.clearTimer();
    this.drop();
    this.set('stopped', reason);
  }

  /**
   * Sends the close beacon for the open connection, named by its own
   * ticket and last id (the stream's cursor may still be the previous
   * lease's, which the server would answer 404 while this one stays open
   * and billed). A connection without an event yet (its fetch unanswered,
   * or no byte yet) is closed by its first event's id, if that comes
   * within CLOSE_GRACE; after that drop() aborts it, and a stream the
   * server admitted meanwhile runs until its rotation (on pagehide nothing
   * better is possible: the page is gone before the first event).
   */
  beacon() {
    const conn = this.conn;
    if (!conn || conn.closing || !conn.ticket) return;
    if (conn.lastId) this.c.beacon(conn.ticket, conn.lastId);
    else conn.beaconDue = true;
  }

  /** Lets go of the current connection. @param {boolean} [gently] */
  drop(gently = false) {
    this.clearWatchdog();
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    if (gently) {
      conn.closing = true;
      conn.cut = this.env.setTimeout(() => conn.ctrl.abort(), CLOSE_GRACE);
    } else {
      conn.ctrl.abort();
    }
  }

  clearTimer() { if (this.timer !== null) { this.env.clearTimeout(this.timer); this.timer = null; } }
  clearWatchdog() { if (this.watchdog !== null) { this.env.clearTimeout(this.watchdog); this.watchdog = null; } }
  clearHealthy() { if (this.healthy !== null) { this.env.clearTimeout(this.healthy); this.healthy = null; } }
}

// ---- the client ---------------------------------------------------------

/**
 * One tab's client. The leader tab runs the streams; the others follow.
 */
class Client {
  /** @param {any} options */
  constructor(options) {
    if (!options || typeof options.getTicket !== 'function') throw new TypeError('connect: getTicket(purpose) is required');
    const g = /** @type {any} */ (globalThis);
    const env = {
      fetch: (/** @type {any[]} */ ...a) => g.fetch(...a),
      setTimeout: (/** @type {any} */ f, /** @type {number} */ ms) => g.setTimeout(f, ms),
      clearTimeout: (/** @type {any} */ t) => g.clearTimeout(t),
      now: () => Date.now(),
      random: Math.random,
      document: g.document,
      window: g.window,
      locks: g.navigator && g.navigator.locks,
      BroadcastChannel: g.BroadcastChannel,
      sendBeacon: g.navigator && g.navigator.sendBeacon ? (/** @type {string} */ u, /** @type {string} */ b) => g.navigator.sendBeacon(u, b) : null,
      ...(options.env || {}),
    };
    this.env = env;
    this.opts = { ...DEFAULTS, ...options };
    this.opts.history = Math.max(0, Math.min(100, Math.floor(Number(this.opts.history) || 0)));
    this.base = String(this.opts.baseUrl).replace(/\/+$/, '');
    // The tab's id (not env.random: a test's fixed jitter must not give two tabs one id).
    this.id = g.crypto && g.crypto.randomUUID ? g.crypto.randomUUID() : Math.random().toString(36).slice(2) + Date.now().toString(36);
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map();
    /** @type {Set<Function>} */
    this.stateFns = new Set();
    this.devices = checkDevices(this.opts.devices, this.opts.maxDevices);
    this.streams = { alerts: new Stream(this, 'alerts'), data: new Stream(this, 'data') };
    /** Follower: the leader's stream states. @type {Record<string, StreamState>} */
    this.remote = {};
    /** The last id seen per purpose (relayed or own): where a new leader resumes. */
    this.lastIds = { alerts: '', data: '' };
    this.role = 'pending';
    /** A ticket got before the election. @type {{purpose: string, ticket: string, at: number} | null} */
    this.early = null;
    this.pendingReason = ''; // why the election waits
    this.leaderId = '';
    this.leaderAt = -Infinity;
    /** Leader: the other tabs. @type {Map<string, {devices: string[], visible: boolean, at: number}>} */
    this.tabs = new Map();
    /** Leader: the newest alerts, for tabs that open later. @type {any[]} */
    this.backlog = [];
    this.paused = false;
    this.closed = false;
    this.suspended = false; // the page is in the back/forward cache
    this.gen = 0; // counts leave(): an election of an earlier generation ends
    this.useLocks = false; // elected by Web Locks (else the fallback heartbeat)
    this.greeted = false; // the first hello (a new client: a retry) was said
    /** A new leader: the tab that led before, until its bye (its last relayed events come first). */
    this.handover = '';
    this.handoverTimer = null;
    /** @type {any[]} */
    this.timers = [];
    this.pauseTimer = null;
    this.settleTimer = null;
    this.lastState = '';
    this.channel = null;
    this.releaseLock = null;

    const doc = env.document;
    if (doc && doc.addEventListener) {
      this.onVisibility = () => this.visibility();
      doc.addEventListener('visibilitychange', this.onVisibility);
    }
    const win = env.window;
    if (win && win.addEventListener) {
      this.onPagehide = (/** @type {any} */ e) => this.pagehide(e);
      this.onPageshow = (/** @type {any} */ e) => this.pageshow(e);
      win.addEventListener('pagehide', this.onPagehide);
      win.addEventListener('pageshow', this.onPageshow);
    }
    this.elect();
  }

  visible() {
    const d = this.env.document;
    return !d || d.visibilityState !== 'hidden';
  }

  // ---- tickets and beacons

  /** @param {string} purpose */
  async ticket(purpose) {
    const t = await this.opts.getTicket(purpose);
    const s = typeof t === 'string' ? t : t && t.ticket;
    if (typeof s !== 'string' || s === '') throw new Error('getTicket returned no ticket');
    return s;
  }

  /** @param {string} ticket @param {string} lastId */
  beacon(ticket, lastId) {
    const url = `${this.base}/sse/close?ticket=${encodeURIComponent(ticket)}`;
    try {
      if (this.env.sendBeacon) return this.env.sendBeacon(url, lastId);
      this.env.fetch(url, { method: 'POST', body: lastId, keepalive: true, credentials: this.opts.withCredentials ? 'include' : 'same-origin', headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
      return true;
    } catch {
      return false;
    }
  }

  // ---- leadership

  /**
   * Tabs share streams only with tabs of the same user: the first ticket's
   * subject (a ticket is a JWT; nothing is verified here, the server does)
   * joins the scope, so a tab of another user on the same origin never
   * gets this user's events. Until a ticket comes, the tab waits (backing
   * off): leading alone would supersede its own tabs' streams. A ticket
   * whose user cannot be read (not a JWT, or no sub) shares with nobody:
   * the tab runs alone, as tabs of two such users must never meet.
   */
  async elect() {
    const { BroadcastChannel: BC, locks } = this.env;
    if (!this.opts.shared || !BC) {
      this.lead();
      return;
    }
    const gen = this.gen;
    const gone = () => this.closed || this.gen !== gen;
    const purpose = this.opts.alerts ? 'alerts' : 'data';
    let user = '';
    for (let attempt = 0; ; attempt++) {
      try {
        const t = await this.ticket(purpose);
        this.early = { purpose, ticket: t, at: this.env.now() };
        user = subject(t);
        break;
      } catch (e) {
        if (gone()) return;
        const o = this.opts;
        const ms = Math.floor(this.env.random() * Math.min(o.backoffCap, o.backoffBase * 2 ** attempt));
        this.pendingReason = `ticket: ${message(e)}; retry in ${Math.round(ms / 100) / 10} s`;
        this.changed();
        await new Promise((r) => { this.timers.push(this.env.setTimeout(r, ms)); });
      }
      if (gone()) return;
    }
    if (gone()) return;
    this.pendingReason = '';
    if (user === '') {
      this.lead();
      return;
    }
    const name = `machinedash-sse:${this.base}:${this.opts.scope}:${user}`;
    this.channel = new BC(name);
    this.channel.onmessage = (/** @type {MessageEvent} */ e) => this.message(e.data);
    this.role = 'follower';
    this.hello();
    this.every(HELLO_EVERY, () => { if (this.role === 'follower') this.hello(); else this.prune(); });
    if (locks && locks.request) {
      this.useLocks = true;
      locks.request(name, () => new Promise((release) => {
        if (gone()) return release(undefined);
        this.releaseLock = release;
        this.lead();
      })).catch(() => {});
      return;
    }
    // Without Web Locks: the leader says so every second; a tab that hears
    // none for LEADER_TIMEOUT claims, and of two leaders the smaller id stays.
    this.leaderAt = this.env.now();
    this.every(LEADER_EVERY, () => {
      if (this.role === 'leader') this.post({ t: 'leader' });
      else if (this.env.now() - this.leaderAt > LEADER_TIMEOUT) this.lead();
    });
  }

  /** The ticket elect() got, while it is fresh. @param {string} purpose */
  takeEarly(purpose) {
    const e = this.early;
    this.early = null;
    return e && e.purpose === purpose && this.env.now() - e.at < EARLY_TICKET_AGE ? e.ticket : null;
  }

  lead() {
    if (this.closed || this.role === 'leader' || this.role === 'solo') return;
    // With Web Locks the lock can come before the last events the previous
    // leader relayed (and its bye): the alerts stream opens after them (or
    // SETTLE), so it resumes after the last alert the tabs were given.
    this.handover = this.useLocks && this.leaderId !== '' && this.leaderId !== this.id && this.leaderAt !== -Infinity ? this.leaderId : '';
    this.role = this.channel ? 'leader' : 'solo';
    this.leaderId = this.id;
    this.paused = false;
    // The data stream starts afresh (a relayed cursor names the previous
    // leader's device list), for whichever devices reconcile finds.
    this.streams.data.devices = [];
    if (this.channel) {
      this.post({ t: 'leader' });
      this.post({ t: 'who' });
    }
    if (!this.handover) this.openAlerts();
    else {
      if (this.opts.alerts) this.streams.alerts.set('connecting', 'taking over from the tab that held the streams');
      this.handoverTimer = this.env.setTimeout(() => this.openAlerts(), SETTLE);
    }
    // The data stream waits a moment for the other tabs' devices.
    if (this.channel) this.settleTimer = this.env.setTimeout(() => { this.settleTimer = null; this.reconcile(); }, SETTLE);
    else this.reconcile();
    this.visibility();
    this.changed();
  }

  /** Leader: opens the alerts stream from the last id the tab knows. */
  openAlerts() {
    if (this.handoverTimer !== null) { this.env.clearTimeout(this.handoverTimer); this.handoverTimer = null; }
    this.handover = '';
    if (this.closed || (this.role !== 'leader' && this.role !== 'solo')) return;
    const s = this.streams.alerts;
    s.lastId = s.lastId || this.lastIds.alerts;
    if (!this.opts.alerts) return;
    if (this.paused) s.set('paused', 'every tab hidden');
    else s.open('opening');
  }

  /**
   * Leader: a new client in another tab (the app's Reconnect, or a new
   * page) reopens the streams that stopped for good, as a page of its own
   * would: a tab saying hello again does not.
   */
  retry() {
    const a = this.streams.alerts;
    if (this.opts.alerts && a.state === 'stopped' && !this.handover) {
      a.opens = 0;
      a.attempt = 0;
      if (this.paused) a.set('paused', 'every tab hidden');
      else a.open('opening');
    }
    const d = this.streams.data;
    if (d.state === 'stopped') d.devices = []; // reconcile reopens it for the tabs' devices
  }

  /** Steps down (fallback election only). */
  follow() {
    if (this.role !== 'leader') return;
    this.role = 'follower';
    for (const s of Object.values(this.streams)) s.stop('another tab leads');
    this.clearPause();
    this.hello();
  }

  /**
   * Follower: whether a message comes from the leader. A claim (or, with
   * no leader known, any word of a leader) adopts its sender: with Web
   * Locks the latest claim (the lock has one holder); without, two tabs
   * may lead for a moment and the smaller id stays, so a claim replaces a
   * leader only with a smaller id or after LEADER_TIMEOUT of silence.
   * @param {string} from @param {boolean} claim
   */
  fromLeader(from, claim) {
    const now = this.env.now();
    const none = this.leaderId === '' || this.leaderId === this.id || this.leaderAt === -Infinity;
    if (from !== this.leaderId && !none) {
      if (!claim || !(this.useLocks || from < this.leaderId || now - this.leaderAt > LEADER_TIMEOUT)) return false;
    }
    this.leaderId = from;
    this.leaderAt = now;
    return true;
  }

  supersededByOwnTab() {
    return this.leaderId !== '' && this.leaderId !== this.id && this.env.now() - this.leaderAt < 10_000;
  }

  /** @param {any} m */
  post(m) {
    if (this.channel) this.channel.postMessage({ ...m, from: this.id });
  }

  hello() {
    const retry = !this.greeted;
    this.greeted = true;
    this.post({ t: 'hello', devices: this.devices, visible: this.visible(), retry });
  }

  /** @param {any} m */
  message(m) {
    if (!m || typeof m !== 'object' || m.from === this.id) return;
    switch (m.t) {
      case 'leader':
        if (this.role !== 'leader') {
          this.fromLeader(m.from, true);
          break;
        }
        this.leaderId = m.from;
        this.leaderAt = this.env.now();
        if (!this.useLocks && m.from < this.id) this.follow();
        break;
      case 'who':
        if (this.role === 'follower') this.hello();
        break;
      case 'hello':
        if (this.role !== 'leader') break;
        // With the backlog its cursor: a tab that takes over before the next
        // relayed event resumes after it instead of asking for history again.
        if (!this.tabs.has(m.from) && this.backlog.length) this.post({ t: 'backlog', to: m.from, events: this.backlog, lastId: this.lastIds.alerts });
        this.tabs.set(m.from, { devices: Array.isArray(m.devices) ? m.devices : [], visible: !!m.visible, at: this.env.now() });
        if (m.retry === true) this.retry();
        this.reconcile();
        this.visibility();
        this.post({ t: 'state', streams: this.ownStates() });
        break;
      case 'bye':
        // The leader went: without Web Locks the next tick claims (not
        // LEADER_TIMEOUT later); a new leader opens alerts now.
        if (this.role === 'follower' && m.from === this.leaderId) this.leaderAt = -Infinity;
        if (this.role === 'leader' && m.from === this.handover) this.openAlerts();
        if (this.role === 'leader' && this.tabs.delete(m.from)) {
          this.reconcile();
          this.visibility();
        }
        break;
      case 'event':
        if (m.stream !== 'alerts' && m.stream !== 'data') break;
        if (this.role === 'leader') {
          // The previous leader's last events, before this tab's stream opens.
          if (m.from !== this.handover) break;
        } else if (!this.useLocks && !this.fromLeader(m.from, false)) {
          break; // a leader about to step down (the fallback election)
        }
        if (m.id) this.lastIds[/** @type {'alerts'|'data'} */ (m.stream)] = m.id;
        this.deliver(m.stream, m.type, m.data, m.id);
        break;
      case 'backlog':
        if (m.to === this.id && Array.isArray(m.events)) {
          if (typeof m.lastId === 'string' && m.lastId) this.lastIds.alerts = m.lastId;
          for (const e of m.events) this.deliver('alerts', e.type, e.data, e.id);
        }
        break;
      case 'state':
        if (this.role === 'leader' || !this.fromLeader(m.from, false)) break;
        this.remote = m.streams || {};
        this.changed();
        break;
      default:
    }
  }

  /** Leader: forgets tabs not heard from. */
  prune() {
    const now = this.env.now();
    let gone = false;
    for (const [id, t] of this.tabs) {
      if (now - t.at > TAB_TIMEOUT) { this.tabs.delete(id); gone = true; }
    }
    if (gone) { this.reconcile(); this.visibility(); }
  }

  /** Leader: the devices of every tab. */
  union() {
    const all = new Set(this.devices);
    for (const t of this.tabs.values()) for (const d of t.devices) all.add(d);
    return [...all].sort();
  }

  /** Leader: the data stream carries the union of the tabs' devices. */
  reconcile() {
    if (this.closed || (this.role !== 'leader' && this.role !== 'solo')) return;
    if (this.settleTimer !== null) return;
    const s = this.streams.data;
    const want = this.union();
    if (want.length > this.opts.maxDevices) {
      if (s.running()) s.shut('stopped', '');
      s.devices = [];
      s.set('stopped', `the tabs ask for ${want.length} devices, more than MAX_DEVICES_PER_STREAM (${this.opts.maxDevices})`);
      return;
    }
    // Only a change of the device set reopens: a stream stopped for good
    // (403, say) is not retried because a tab said hello again (a new
    // client's first hello is a retry: see retry).
    if (want.join(',') === s.devices.join(',')) return;
    if (s.running()) s.shut('stopped', 'the device set changed');
    s.lastId = ''; // a cursor is bound to its device list
    s.devices = want;
    if (want.length === 0) {
      s.set('stopped', 'no devices');
      return;
    }
    s.opens = 0;
    s.attempt = 0;
    if (this.paused) s.set('paused', 'every tab hidden');
    else s.open('opening');
  }

  // ---- visibility, pause, pagehide

  visibility() {
    if (this.role === 'follower') {
      this.hello();
      return;
    }
    if (this.role !== 'leader' && this.role !== 'solo') return;
    let anyVisible = this.visible();
    for (const t of this.tabs.values()) anyVisible = anyVisible || t.visible;
    if (anyVisible) {
      this.clearPause();
      if (this.paused) this.unpause();
      return;
    }
    if (this.paused || this.pauseTimer !== null) return;
    this.pauseTimer = this.env.setTimeout(() => { this.pauseTimer = null; this.pause(); }, this.opts.pauseAfter);
  }

  pause() {
    this.paused = true;
    const why = `every tab hidden for ${Math.round(this.opts.pauseAfter / 1000)} s`;
    for (const s of Object.values(this.streams)) if (s.running()) s.shut('paused', why);
  }

  unpause() {
    this.paused = false;
    for (const s of Object.values(this.streams)) {
      if (s.state !== 'paused') continue;
      s.open('visible again');
    }
  }

  clearPause() {
    if (this.pauseTimer !== null) { this.env.clearTimeout(this.pauseTimer); this.pauseTimer = null; }
  }

  /**
   * The tab goes away: close() sends the close beacons of its streams. A
   * page kept in the back/forward cache (persisted) may come back: it lets
   * go of its streams and its part (beacons, bye, the lock), so the other
   * tabs go on without it, and joins again on pageshow.
   * @param {{persisted?: boolean} | undefined} e
   */
  pagehide(e) {
    if (e && e.persisted) this.suspend();
    else this.close('the page was closed');
  }

  /** @param {{persisted?: boolean} | undefined} e */
  pageshow(e) {
    if (!e || !e.persisted || !this.suspended || this.closed) return;
    this.suspended = false;
    this.elect();
    this.changed();
  }

  suspend() {
    if (this.closed || this.suspended) return;
    for (const s of Object.values(this.streams)) if (s.running()) s.shut('paused', 'the page is in the back/forward cache');
    this.leave();
    this.suspended = true;
    this.role = 'pending';
    this.tabs.clear();
    this.remote = {};
    this.leaderId = '';
    this.leaderAt = -Infinity;
    this.paused = false;
    this.greeted = false;
    this.changed();
  }

  /** Ends this tab's part in the election: bye, timers, the lock, the channel. */
  leave() {
    this.clearPause();
    this.post({ t: 'bye' });
    this.gen++;
    for (const t of this.timers) this.env.clearTimeout(t);
    this.timers = [];
    if (this.settleTimer !== null) { this.env.clearTimeout(this.settleTimer); this.settleTimer = null; }
    if (this.handoverTimer !== null) { this.env.clearTimeout(this.handoverTimer); this.handoverTimer = null; }
    this.handover = '';
    if (this.releaseLock) { this.releaseLock(undefined); this.releaseLock = null; }
    if (this.channel) { this.channel.close(); this.channel = null; }
  }

  // ---- events and states

  /**
   * An event from one of the leader's streams: to this tab and the others.
   * @param {string} stream @param {string} type @param {string} data @param {string} id
   */
  emit(stream, type, data, id) {
    if (id) this.lastIds[/** @type {'alerts'|'data'} */ (stream)] = id;
    if (stream === 'alerts' && (type === 'machine-alert' || type === 'alarm-update') && this.opts.history > 0) {
      this.backlog.push({ type, data, id });
      if (this.backlog.length > this.opts.history) this.backlog.shift();
    }
    this.post({ t: 'event', stream, type, data, id });
    this.deliver(stream, type, data, id);
  }

  /**
   * @param {string} stream @param {string} type @param {string} data @param {string} id
   */
  deliver(stream, type, data, id) {
    if (this.closed) return;
    const fns = this.handlers.get(type);
    if (!fns || fns.size === 0) return;
    const value = parseJSON(data);
    // A data event for a device another tab asked for is not this tab's.
    if (stream === 'data' && value && typeof value.deviceId === 'string' && !this.devices.includes(value.deviceId)) return;
    const meta = { type, id, stream };
    for (const fn of [...fns]) {
      try { fn(value === undefined ? data : value, meta); } catch (e) { this.env.setTimeout(() => { throw e; }, 0); }
    }
  }

  ownStates() {
    /** @type {Record<string, StreamState>} */
    const out = {};
    for (const p of PURPOSES) {
      if (p === 'alerts' && !this.opts.alerts) continue;
      const s = this.streams[p];
      if (p === 'data' && s.devices.length === 0 && s.state === 'stopped' && this.union().length === 0) continue;
      out[p] = { state: s.state, reason: s.reason };
    }
    return out;
  }

  /** The streams as this tab sees them (a follower: the leader's). */
  streamStates() {
    if (this.closed) return {};
    if (this.suspended) {
      /** @type {Record<string, StreamState>} */
      const out = {};
      if (this.opts.alerts) out.alerts = { state: 'paused', reason: 'the page is in the back/forward cache' };
      if (this.devices.length) out.data = { state: 'paused', reason: 'the page is in the back/forward cache' };
      return out;
    }
    if (this.role === 'leader' || this.role === 'solo') return this.ownStates();
    /** @type {Record<string, StreamState>} */
    const out = {};
    for (const p of PURPOSES) {
      if (p === 'alerts' && !this.opts.alerts) continue;
      if (p === 'data' && this.devices.length === 0) continue;
      out[p] = this.remote[p] || { state: 'connecting', reason: this.pendingReason || 'waiting for the tab that holds the streams' };
    }
    return out;
  }

  /** @returns {{state: string, reason: string, streams: Record<string, StreamState>, role: string}} */
  get state() {
    if (this.closed) return { state: 'stopped', reason: this.closeReason || 'closed', streams: {}, role: this.role };
    const streams = this.streamStates();
    let worst = { state: 'live', reason: '' };
    for (const s of Object.values(streams)) {
      if (RANK[/** @type {keyof RANK} */ (s.state)] > RANK[/** @type {keyof RANK} */ (worst.state)]) worst = s;
    }
    if (Object.keys(streams).length === 0) worst = { state: 'stopped', reason: 'nothing to stream' };
    return { state: worst.state, reason: worst.reason, streams, role: this.role };
  }

  changed() {
    if (this.role === 'leader') this.post({ t: 'state', streams: this.ownStates() });
    const st = this.state;
    const key = JSON.stringify(st);
    if (key === this.lastState) return;
    this.lastState = key;
    for (const fn of [...this.stateFns]) {
      try { fn(st); } catch (e) { this.env.setTimeout(() => { throw e; }, 0); }
    }
  }

  /** @param {() => void} fn @param {number} ms */
  every(ms, fn) {
    const gen = this.gen;
    const tick = () => {
      if (this.closed || this.gen !== gen) return;
      fn();
      this.timers.push(this.env.setTimeout(tick, ms));
      if (this.timers.length > 8) this.timers.splice(0, this.timers.length - 8);
    };
    this.timers.push(this.env.setTimeout(tick, ms));
  }

  // ---- the public API

  /** @param {string} type @param {Function} fn */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    /** @type {Set<Function>} */ (this.handlers.get(type)).add(fn);
    return () => { const s = this.handlers.get(type); if (s) s.delete(fn); };
  }

  /** @param {Function} fn */
  onState(fn) {
    this.stateFns.add(fn);
    fn(this.state);
    return () => { this.stateFns.delete(fn); };
  }

  /** @param {string[]} devices */
  setDevices(devices) {
    if (this.closed) return; // a closed client opens nothing again
    this.devices = checkDevices(devices, this.opts.maxDevices);
    if (this.role === 'follower') this.hello();
    else this.reconcile();
    this.changed();
  }

  /** @param {string} [reason] */
  close(reason = 'closed') {
    if (this.closed) return;
    for (const s of Object.values(this.streams)) if (s.running()) s.shut('stopped', reason);
    this.leave();
    this.closed = true;
    this.closeReason = reason;
    const doc = this.env.document;
    if (doc && doc.removeEventListener) doc.removeEventListener('visibilitychange', this.onVisibility);
    const win = this.env.window;
    if (win && win.removeEventListener) {
      win.removeEventListener('pagehide', this.onPagehide);
      win.removeEventListener('pageshow', this.onPageshow);
    }
    const st = this.state;
    for (const fn of [...this.stateFns]) {
      try { fn(st); } catch { /* closing */ }
    }
  }
}

/**
 * @param {unknown} list
 * @param {number} max
 * @returns {string[]}
 */
function checkDevices(list, max) {
  if (!Array.isArray(list)) throw new TypeError('devices must be an array of device ids');
  const out = [...new Set(list.map((d) => String(d).trim()).filter((d) => d !== ''))];
  for (const d of out) {
    if (!/^[A-Za-z0-9 _.:-]{1,64}$/.test(d)) throw new RangeError(`invalid device id ${JSON.stringify(d)}`);
  }
  if (out.length > max) throw new RangeError(`${out.length} devices: at most ${max} per stream (MAX_DEVICES_PER_STREAM)`);
  return out;
}

/**
 * The subject (user id) of a ticket, read without verification; "" for a
 * ticket that is not a JWT or has no sub (such a tab shares with nobody).
 * @param {string} ticket
 */
function subject(ticket) {
  const part = ticket.split('.')[1];
  if (!part) return '';
  try {
    const json = (/** @type {any} */ (globalThis)).atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const sub = JSON.parse(json).sub;
    return typeof sub === 'string' || typeof sub === 'number' ? String(sub) : '';
  } catch {
    return '';
  }
}

/** @param {string} text */
function parseJSON(text) {
  try { return JSON.parse(text); } catch { return undefined; }
}

/** The seed's error message of a body, or the status. @param {string} body @param {number} status */
function seedMessage(body, status) {
  const d = parseJSON(body);
  return d && typeof d.message === 'string' ? d.message : `HTTP ${status}`;
}

/** @param {unknown} e */
function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Opens the streams (or joins the tab that holds them) and returns the
 * client of this tab. See client.d.ts for the options.
 * @param {import('./client').ConnectOptions} options
 * @returns {import('./client').SSEClient}
 */
export function connect(options) {
  const c = new Client(options);
  return {
    on: (type, fn) => c.on(type, fn),
    onState: (fn) => c.onState(fn),
    get state() { return c.state; },
    setDevices: (d) => c.setDevices(d),
    close: () => c.close(),
  };
}
