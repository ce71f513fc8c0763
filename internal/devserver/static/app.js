// machinedash demo dashboard: no framework, no build.
//
// The streams come from the service's own browser client (/sse/client.js):
// it gets tickets, resumes with replay, backs off, shares one alerts and
// one data stream between this user's tabs and pauses them when every tab
// is hidden. The page only shows its states. Only a stream the client
// stopped for good (superseded by another browser, refused with 400/403)
// offers a Reconnect button.
import { connect as connectStreams } from '../sse/client.js';

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

  // openStreams (re)connects this tab: as leader it opens the streams, as
  // follower it gets them relayed from the tab that holds them.
  function openStreams() {
    closeStreams();
    client = connectStreams({
      baseUrl: new URL('.', location.href).href,
      getTicket: ticket,
      devices: pageDevices(),
      history: Number(params.get('history') ?? 20),
      pauseAfter: Number(params.get('pauseAfter')) || undefined,
      scope: `user-${session.user}`,
    });
    for (const [stream, handlers] of Object.entries(HANDLERS)) {
      for (const [name, fn] of Object.entries(handlers)) {
        client.on(name, (d, meta) => {
          logEvent(stream, name, { data: JSON.stringify(d), lastEventId: meta.id });
          fn(d);
        });
      }
    }
    client.on('system', (d, meta) => logEvent(meta.stream, 'system', { data: JSON.stringify(d), lastEventId: meta.id }));
    client.onState(showStates);
  }

  // pageDevices are the machines this tab shows: #devices=, else all the user's.
  function pageDevices() {
    const picked = (params.get('devices') || '').split(',').filter((d) => session.devices.includes(d));
    return picked.length ? picked : session.devices;
  }

  function closeStreams() {
    if (client) client.close();
    client = null;
  }

  // showStates shows the client's state per stream, and which tab holds them.
  function showStates(st) {
    document.body.dataset.sseRole = st.role;
    document.body.dataset.sseState = st.state;
    for (const name of Object.keys(HANDLERS)) {
      const s = st.streams[name];
      if (!s) {
        show(name, st.state === 'stopped' ? 'stopped' : 'idle', st.state === 'stopped' ? st.reason : '');
        continue;
      }
      const via = st.role === 'follower' && s.state === 'live' ? ' · via another tab' : '';
      show(name, s.state, s.reason + via, s.state === 'stopped');
    }
  }

  function show(name, state, detail, error = false) {
    const root = $(`#stream-${name}`);
    const s = streams[name];
    if (state !== s.state && state === 'reconnecting') s.reconnects++;
    if (state !== s.state && state === 'live' && (detail || '').startsWith('resumed')) s.resumes++;
    s.state = state;
    const el = $('.state', root);
    el.textContent = state;
    el.className = `state ${state}${error ? ' error' : ''}`;
    $('.detail', root).textContent = detail || '';
    $('.reconnect', root).hidden = state !== 'stopped' || !session.token;
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

  // Which events each stream carries, and what renders them.
  const HANDLERS = {
    alerts: { 'machine-alert': onAlert, 'alarm-update': onAlarm },
    data: {
      'machine-status': onStatus,
      'realtime-update': onRealtime,
      'spc-update': onSPC,
      'spc-series-update': onSeries,
    },
  };
  // Page options from the URL: #user=1&devices=C01,C02&history=20&pauseAfter=180000
  const params = new URLSearchParams(location.hash.slice(1));
  let client = null; // the connection of this tab (connectStreams)

  for (const name of Object.keys(HANDLERS)) {
    // Read by the debug panel (debug.js) too: reconnects, resumes that
    // followed them, and the newest event id (its lease).
    streams[name] = { name, events: 0, lastEvent: 0, state: 'idle', reconnects: 0, resumes: 0, lastId: '' };
    $(`#stream-${name} .reconnect`).addEventListener('click', () => openStreams());
  }

  // The debug panel (debug.js) shares the session, tickets and streams.
  window.machinedash.app = { api, ticket, session, streams };

  function reset() {
    closeStreams();
    for (const name of Object.keys(streams)) {
      Object.assign(streams[name], { events: 0, lastEvent: 0, reconnects: 0, resumes: 0, lastId: '' });
      show(name, 'idle', '');
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
    params.set('user', userId);
    history.replaceState(null, '', `#${params}`);
    for (const d of pageDevices()) card(d);
    $('#disconnect').disabled = false;
    openStreams();
  }

  $('#login').addEventListener('submit', (e) => {
    e.preventDefault();
    connect(Number($('#user').value));
  });
  $('#disconnect').addEventListener('click', () => {
    closeStreams();
    for (const name of Object.keys(streams)) show(name, 'stopped', 'closed by you');
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
    const u = params.get('user');
    if (u && users.some((x) => String(x.userId) === u)) {
      sel.value = u;
      connect(Number(u));
    }
  })();
})();
