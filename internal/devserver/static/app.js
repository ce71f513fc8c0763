// machinedash demo dashboard: plain EventSource, no framework, no build.
//
// The page never reconnects a stream on its own: when the server rotates
// a stream (it ends it with a retry: field) or the network drops, the
// browser's EventSource reconnects to the same URL with Last-Event-ID, and
// the server resumes it. Only a stream the browser gave up on (readyState
// CLOSED: superseded, revoked, ...) offers a Reconnect button, which gets a
// fresh ticket.
'use strict';

(() => {
  const MAX_LOG = 200;

  const $ = (sel, root = document) => root.querySelector(sel);
  const session = { user: null, token: null, devices: [] };
  const streams = {};

  // ---- HTTP -------------------------------------------------------------

  // api calls the service and throws the seed's error message on failure.
  async function api(path, { method = 'GET', body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await res.json(); } catch { /* not JSON */ }
    if (!res.ok) {
      const err = new Error((data && data.message) || `${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  async function login(userId) {
    const r = await api('dev/login', { method: 'POST', body: { userId } });
    session.user = r.userId;
    session.token = r.accessToken;
    session.devices = r.devices;
    return r;
  }

  // ticket gets a stream ticket; an expired access token is renewed once.
  async function ticket(purpose) {
    try {
      return (await api('sse/stream-ticket', { method: 'POST', token: session.token, body: { purpose } })).ticket;
    } catch (e) {
      if (e.status !== 401) throw e;
      await login(session.user);
      return (await api('sse/stream-ticket', { method: 'POST', token: session.token, body: { purpose } })).ticket;
    }
  }

  // ---- streams ----------------------------------------------------------

  // Stream is one EventSource and its connection state on the page.
  class Stream {
    constructor(name, purpose, path, query, handlers) {
      Object.assign(this, { name, purpose, path, query, handlers });
      this.root = $(`#stream-${name}`);
      this.es = null;
      this.opens = 0;
      this.events = 0;
      this.lastEvent = 0;
      this.lastKind = '';
      // Read by the debug panel (debug.js): browser reconnects after an
      // error, opens that resumed, and the newest event id (its lease).
      this.reconnects = 0;
      this.resumes = 0;
      this.lastId = '';
      $('.reconnect', this.root).addEventListener('click', () => this.open());
    }

    async open() {
      this.close();
      this.opens = 0;
      this.reconnects = 0;
      this.resumes = 0;
      this.lastKind = '';
      this.show('connecting', 'getting a ticket…');
      let t;
      try {
        t = await ticket(this.purpose);
      } catch (e) {
        this.show('closed', `ticket: ${e.message}`, true);
        return;
      }
      const url = `${this.path}?ticket=${encodeURIComponent(t)}${this.query()}`;
      const es = new EventSource(url);
      this.es = es;
      this.show('connecting', '');
      es.onopen = () => {
        this.opens++;
        if (this.opens > 1) this.resumes++;
        this.show('live', this.opens > 1 ? `resumed (${this.opens - 1} reconnects)` : '');
      };
      es.onerror = () => {
        if (es !== this.es) return;
        if (es.readyState === EventSource.CLOSED) {
          const why = {
            superseded: 'superseded by a newer connection of this user',
            revoked: 'ticket revoked', forbidden: 'device access removed',
          }[this.lastKind] || 'the server refused the connection';
          this.show('closed', why, true);
        } else {
          this.reconnects++;
          const why = {
            reconnect: 'server rotated the stream; the browser reconnects',
            unavailable: 'service unavailable; the browser retries',
          }[this.lastKind] || 'connection lost; the browser retries';
          this.show('reconnecting', why);
        }
      };
      es.addEventListener('system', (e) => {
        const d = parse(e.data);
        this.lastKind = d.kind || '';
        logEvent(this.name, 'system', e);
        if (d.kind === 'connected' || d.kind === 'heartbeat') {
          this.show('live', this.detailLive());
        } else {
          this.show(this.state, `server: ${d.kind}`);
        }
      });
      for (const [name, fn] of Object.entries(this.handlers)) {
        es.addEventListener(name, (e) => {
          logEvent(this.name, name, e);
          const d = parse(e.data);
          if (d) fn(d);
        });
      }
    }

    detailLive() {
      return this.opens > 1 ? `resumed (${this.opens - 1} reconnects)` : '';
    }

    close() {
      if (this.es) this.es.close();
      this.es = null;
    }

    show(state, detail, error = false) {
      this.state = state;
      const s = $('.state', this.root);
      s.textContent = state;
      s.className = `state ${state}${error ? ' error' : ''}`;
      $('.detail', this.root).textContent = detail || '';
      $('.reconnect', this.root).hidden = state !== 'closed' || !session.token;
    }
  }

  function parse(text) {
    try { return JSON.parse(text); } catch { return null; }
  }

  // ---- machines and alerts: cards.js renders them ----------------------

  const { card, onStatus, onRealtime, onSPC, onSeries, onAlert, onAlarm } = window.machinedash.cards;

  // ---- raw log ----------------------------------------------------------

  function logEvent(stream, name, e) {
    const s = streams[stream];
    if (s) { s.events++; s.lastEvent = Date.now(); s.lastId = e.lastEventId || s.lastId; }
    if ($('#pause').checked) return;
    const li = document.createElement('li');
    const t = document.createElement('span');
    t.className = 'muted';
    t.textContent = `${new Date().toLocaleTimeString()} ${stream.padEnd(6)} `;
    const ev = document.createElement('span');
    ev.className = `ev ${name}`;
    ev.textContent = name.padEnd(18);
    const data = document.createElement('span');
    data.textContent = ` ${e.data}`;
    li.title = `id: ${e.lastEventId}`;
    li.append(t, ev, data);
    const log = $('#log');
    log.prepend(li);
    while (log.children.length > MAX_LOG) log.lastElementChild.remove();
  }

  // ---- wiring -----------------------------------------------------------

  streams.alerts = new Stream('alerts', 'alerts', 'sse/alerts', () => '', {
    'machine-alert': onAlert,
    'alarm-update': onAlarm,
  });
  streams.data = new Stream('data', 'data', 'sse/stream',
    () => `&deviceIds=${session.devices.map(encodeURIComponent).join(',')}`, {
      'machine-status': onStatus,
      'realtime-update': onRealtime,
      'spc-update': onSPC,
      'spc-series-update': onSeries,
    });

  // The debug panel (debug.js) shares the session, tickets and streams.
  window.machinedash.app = { api, ticket, session, streams };

  function reset() {
    for (const s of Object.values(streams)) {
      s.close();
      s.show('idle', '');
    }
    window.machinedash.cards.reset();
  }

  async function connect(userId) {
    reset();
    $('#who').textContent = 'logging in…';
    try {
      const r = await login(userId);
      $('#who').textContent = `user ${r.userId}: ${r.devices.join(', ')}`;
    } catch (e) {
      $('#who').textContent = `login failed: ${e.message}`;
      return;
    }
    history.replaceState(null, '', `#user=${userId}`);
    for (const d of session.devices) card(d);
    $('#disconnect').disabled = false;
    await Promise.all([streams.alerts.open(), streams.data.open()]);
  }

  $('#login').addEventListener('submit', (e) => {
    e.preventDefault();
    connect(Number($('#user').value));
  });
  $('#disconnect').addEventListener('click', () => {
    for (const s of Object.values(streams)) {
      s.close();
      s.show('closed', 'closed by you');
    }
    $('#disconnect').disabled = true;
  });

  (async () => {
    let users = [];
    try {
      users = (await api('dev/users')).users;
    } catch (e) {
      $('#who').textContent = `cannot list demo users: ${e.message}`;
      return;
    }
    const sel = $('#user');
    for (const u of users) {
      const o = document.createElement('option');
      o.value = u.userId;
      o.textContent = `user ${u.userId} (${u.devices.join(', ')})`;
      sel.append(o);
    }
    const m = /user=(\d+)/.exec(location.hash);
    if (m && users.some((u) => String(u.userId) === m[1])) {
      sel.value = m[1];
      connect(Number(m[1]));
    }
  })();
})();
