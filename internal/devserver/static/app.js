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
  const MAX_ALERTS = 100;
  const SPARK_POINTS = 120;
  const ORDER = ['T1', 'T2', 'T3', 'T4', 'OT', 'MT', 'OPM', 'CYCN'];

  const $ = (sel, root = document) => root.querySelector(sel);
  const session = { user: null, token: null, devices: [] };
  const machines = new Map(); // deviceId -> card state
  const streams = {};
  let alertCount = 0;

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
    streams[name] = { name, events: 0, lastEvent: 0, state: 'idle' };
    $(`#stream-${name} .reconnect`).addEventListener('click', () => openStreams());
  }

  // openStreams (re)connects this tab: as leader it opens the streams, as
  // follower it gets them relayed from the tab that holds them.
  function openStreams() {
    closeStreams();
    const devices = (params.get('devices') || '').split(',').filter((d) => session.devices.includes(d));
    client = connectStreams({
      baseUrl: new URL('.', location.href).href,
      getTicket: ticket,
      devices: devices.length ? devices : session.devices,
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
    streams[name].state = state;
    const el = $('.state', root);
    el.textContent = state;
    el.className = `state ${state}${error ? ' error' : ''}`;
    $('.detail', root).textContent = detail || '';
    $('.reconnect', root).hidden = state !== 'stopped' || !session.token;
  }

  function parse(text) {
    try { return JSON.parse(text); } catch { return null; }
  }

  // ---- machines ---------------------------------------------------------

  function card(id) {
    let m = machines.get(id);
    if (m) return m;
    const node = $('#card').content.firstElementChild.cloneNode(true);
    $('.id', node).textContent = id;
    $('#cards').append(node);
    $('#hint').hidden = true;
    m = { id, node, values: new Map(), spark: [], updated: 0 };
    machines.set(id, m);
    return m;
  }

  function setValues(m, data) {
    if (!data || typeof data !== 'object') return;
    const dl = $('.values', m.node);
    const keys = Object.keys(data).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    for (const k of keys) {
      const v = data[k];
      if (typeof v === 'object') continue;
      let dd = m.values.get(k);
      if (!dd) {
        const div = document.createElement('div');
        const dt = document.createElement('dt');
        dt.textContent = k;
        dd = document.createElement('dd');
        div.append(dt, dd);
        dl.append(div);
        m.values.set(k, dd);
      }
      const text = String(v);
      if (dd.textContent !== text) {
        dd.textContent = text;
        dd.classList.add('changed');
        requestAnimationFrame(() => requestAnimationFrame(() => dd.classList.remove('changed')));
      }
    }
  }

  function rank(k) {
    const i = ORDER.indexOf(k);
    return i < 0 ? ORDER.length : i;
  }

  function setState(m, state) {
    const b = $('.badge', m.node);
    b.textContent = state || '';
    b.className = `badge ${state || ''}`;
  }

  function touch(m) {
    m.updated = Date.now();
    refreshAge(m);
  }

  function refreshAge(m) {
    if (!m.updated) return;
    const s = Math.round((Date.now() - m.updated) / 1000);
    $('.age', m.node).textContent = s < 2 ? 'now' : `${s}s ago`;
    m.node.classList.toggle('stale', s > 5);
  }

  function onStatus(d) {
    const m = card(d.deviceId);
    const st = d.data || {};
    setValues(m, st.Data);
    setState(m, st.state);
    if (st.Data && typeof st.Data.T1 === 'number' && m.spark.length === 0) m.spark.push(st.Data.T1);
    drawLine($('.spark', m.node), m.spark);
    touch(m);
  }

  function onRealtime(d) {
    const m = card(d.deviceId);
    const data = (d.data && d.data.Data) || {};
    setValues(m, data);
    if (typeof data.T1 === 'number') {
      m.spark.push(data.T1);
      if (m.spark.length > SPARK_POINTS) m.spark.shift();
      drawLine($('.spark', m.node), m.spark);
    }
    touch(m);
  }

  function onSPC(d) {
    const m = card(d.deviceId);
    const x = (d.data && d.data.Data) || {};
    const parts = [`cycle #${x.CYCN ?? '?'}`];
    if (x.ECYCT !== undefined) parts.push(`${x.ECYCT} s`);
    for (const k of Object.keys(x).sort()) {
      if (k !== 'CYCN' && k !== 'ECYCT' && typeof x[k] !== 'object') parts.push(`${k} ${x[k]}`);
    }
    const spc = $('.spc', m.node);
    spc.textContent = `SPC ${parts.join(' · ')} · ${time(d.timestamp)}`;
    spc.classList.remove('muted');
  }

  // onSeries draws an SPC control chart series: the field's values over the
  // recent cycles, with the mean and control limits dashed.
  function onSeries(d) {
    const m = card(d.deviceId);
    const x = (d.data && d.data.Data) || {};
    if (!Array.isArray(x.points)) return;
    const box = $('.series-box', m.node);
    box.hidden = false;
    const first = x.points[0] || {};
    const last = x.points[x.points.length - 1] || {};
    $('.chart-label', box).textContent = `SPC ${x.field || ''}, cycles ${first.cycle ?? '?'}-${last.cycle ?? '?'}`;
    const limits = ['lcl', 'mean', 'ucl'].map((k) => x[k]).filter((v) => typeof v === 'number');
    drawLine($('.series', m.node), x.points.map((p) => p.value), limits);
  }

  // drawLine draws values as a line scaled to the canvas, sharp on HiDPI,
  // with optional horizontal reference lines (dashed).
  function drawLine(canvas, values, lines = []) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width;
    const h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (values.length < 2) return;
    let lo = Math.min(...values, ...lines);
    let hi = Math.max(...values, ...lines);
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    const pad = 4;
    const x = (i) => pad + (i * (w - 2 * pad)) / (values.length - 1);
    const y = (v) => h - pad - ((v - lo) * (h - 2 * pad)) / (hi - lo);
    ctx.strokeStyle = '#8a99a6';
    ctx.lineWidth = 1;
    ctx.setLineDash([3, 3]);
    for (const v of lines) {
      ctx.beginPath();
      ctx.moveTo(pad, y(v));
      ctx.lineTo(w - pad, y(v));
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.strokeStyle = '#4aa3ff';
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    ctx.fillStyle = '#8a99a6';
    ctx.font = '10px ui-monospace, monospace';
    ctx.fillText(hi.toFixed(1), pad, 11);
    ctx.fillText(lo.toFixed(1), pad, h - pad);
  }

  // ---- alerts -----------------------------------------------------------

  function addAlert(cls, title, body, d) {
    const li = document.createElement('li');
    li.className = `${cls} fresh`;
    const b = document.createElement('b');
    b.textContent = title;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = `${d.deviceId} · ${time(d.timestamp)}`;
    const text = document.createElement('div');
    text.textContent = body;
    li.append(b, text, meta);
    const list = $('#alerts');
    list.prepend(li);
    while (list.children.length > MAX_ALERTS) list.lastElementChild.remove();
    alertCount++;
    $('#alert-count').textContent = `(${alertCount})`;
  }

  function onAlert(d) {
    const a = d.alert || {};
    const type = a.alertType || 'info';
    addAlert(type, `${type}${a.code !== undefined ? ` ${a.code}` : ''}`, a.message || JSON.stringify(a), d);
  }

  function onAlarm(d) {
    const a = d.alarm || {};
    const cleared = a.state === 'cleared';
    addAlert(cleared ? 'cleared' : a.severity || 'critical', `alarm ${a.code ?? ''} ${a.state || ''}`, a.message || JSON.stringify(a), d);
    const m = machines.get(d.deviceId);
    if (m) setState(m, cleared ? 'running' : 'alarm');
  }

  // ---- raw log ----------------------------------------------------------

  function logEvent(stream, name, e) {
    if ($('#pause').checked) return;
    const s = streams[stream];
    if (s) { s.events++; s.lastEvent = Date.now(); }
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

  function time(ts) {
    const d = new Date(ts);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  // ---- wiring -----------------------------------------------------------

  function reset() {
    closeStreams();
    for (const name of Object.keys(streams)) show(name, 'idle', '');
    machines.clear();
    $('#cards').replaceChildren();
    $('#alerts').replaceChildren();
    $('#hint').hidden = false;
    alertCount = 0;
    $('#alert-count').textContent = '';
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
    for (const d of session.devices) card(d);
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
  setInterval(() => machines.forEach(refreshAge), 1000);

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
