// machinedash demo dashboard: the debug panel (local server only).
//
// A collapsed <details> at the bottom of the page, so someone who only
// watches machines never sees it. Opened, it publishes a test event for a
// machine through Redis as the ingest would (POST /dev/publish), lists the
// user's open connections from /sse/status with their uptime and queue
// counters (GET /dev/stats, by lease id), marks the page's own two streams,
// and shows the page's per-stream counters and the service's.
//
// It reads from the connection layer (app.js) only machinedash.app:
// api(path, opts), ticket(purpose), session {user, token, devices} and
// streams {alerts, data}, each with state, events, reconnects, resumes and
// lastId (the newest event id, whose first part is the stream's lease).
'use strict';

(() => {
  const REFRESH_MS = 2000;
  const $ = (sel, root = document) => root.querySelector(sel);
  const app = () => window.machinedash.app;

  // A sample per kind, out of range on purpose, so the card shows it.
  const SAMPLES = {
    realtime: { T1: 252.3, OT: 61.4, MT: 44.9 },
    spc: { ECYCT: 31.52, EIPT: 1.21, EIPM: 1862.5, ECUSH: 1.64, EPLST: 7.35 },
    'spc-series': {
      field: 'ECUSH', mean: 5.02, ucl: 5.92, lcl: 4.12,
      points: [{ cycle: 1, value: 5.1 }, { cycle: 2, value: 4.8 }, { cycle: 3, value: 5.3 }, { cycle: 4, value: 4.9 }],
    },
    alert: {
      alertType: 'critical', code: 1102, parameter: 'OT', value: 66.2, limit: 65,
      message: 'Oil temperature critical: 66.2 °C (limit 65 °C)',
    },
    alarm: { code: 2101, severity: 'critical', message: 'Hydraulic motor overload', state: 'active' },
    malformed: null,
  };

  const panel = $('#debug');
  const form = $('#publish');
  const kind = $('#pub-kind');
  const machine = $('#pub-device');
  const body = $('#pub-data');
  let statusTicket = null;
  let machinesOf; // the user the machine list was made for

  function fillSample() {
    const s = SAMPLES[kind.value];
    body.disabled = s === null;
    body.value = s === null ? '(publishes "not json" on the realtime channel: the hub drops and counts it)' : JSON.stringify(s, null, 1);
  }

  // machines offers the connected user's devices, else every demo machine.
  async function fillMachines() {
    const session = app().session;
    let ids = session.devices;
    if (!ids.length) {
      try {
        ids = [...new Set((await app().api('dev/users')).users.flatMap((u) => u.devices))];
      } catch { ids = []; }
    }
    const keep = machine.value;
    machine.replaceChildren(...ids.map((id) => new Option(id, id)));
    if (ids.includes(keep)) machine.value = keep;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const out = $('#pub-result');
    let data;
    if (!body.disabled) {
      try {
        data = JSON.parse(body.value);
      } catch (err) {
        out.textContent = `data is not JSON: ${err.message}`;
        out.className = 'error';
        return;
      }
    }
    try {
      const r = await app().api('dev/publish', { method: 'POST', body: { kind: kind.value, deviceId: machine.value, data } });
      out.textContent = `published ${r.kind} for ${r.deviceId} to ${r.receivers} subscriber${r.receivers === 1 ? '' : 's'}`;
      out.className = 'muted';
    } catch (err) {
      out.textContent = `publish failed: ${err.message}`;
      out.className = 'error';
    }
    refresh();
  });
  kind.addEventListener('change', fillSample);

  // status reads /sse/status with a ticket of no purpose, kept until it
  // stops working.
  async function status() {
    const a = app();
    if (!a.session.token) return null;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!statusTicket) statusTicket = await a.ticket(undefined);
      try {
        return await a.api(`sse/status?ticket=${encodeURIComponent(statusTicket)}`);
      } catch (err) {
        statusTicket = null;
        if (err.status !== 401) throw err;
      }
    }
    return null;
  }

  function uptime(s) {
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
  }

  function row(cells, attrs = {}) {
    const tr = document.createElement('tr');
    for (const c of cells) {
      const td = document.createElement('td');
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    }
    Object.assign(tr.dataset, attrs);
    return tr;
  }

  function lease(s) {
    return (s.lastId || '').split('.')[0];
  }

  async function refresh() {
    if (!panel.open) return;
    const a = app();
    if (machinesOf !== a.session.user) {
      machinesOf = a.session.user;
      statusTicket = null; // another user's ticket shows another user
      fillMachines();
    }
    const own = new Map(Object.entries(a.streams).map(([name, s]) => [lease(s), name]).filter(([id]) => id));
    $('#dbg-page').replaceChildren(...Object.entries(a.streams).map(([name, s]) =>
      row([name, s.state || 'idle', s.events ?? '–', s.reconnects ?? '–', s.resumes ?? '–', lease(s) || '–'], { stream: name })));

    let stats = null;
    try {
      stats = await a.api('dev/stats');
      const h = stats.hub;
      const sim = stats.simulator;
      $('#dbg-service').textContent = `hub: ${h.received} received · ${h.deliveries} deliveries · ${h.malformed} malformed · ` +
        `${h.resets} resets · ${stats.openStreams} open streams · simulator ${sim.on ? `${sim.published} published, ${sim.alerts} alerts` : 'off'}`;
      $('#dbg-malformed').textContent = String(h.malformed);
    } catch (err) {
      $('#dbg-service').textContent = `stats: ${err.message}`;
    }

    const list = $('#dbg-conns');
    let st;
    try {
      st = await status();
    } catch (err) {
      list.replaceChildren(row([`status: ${err.message}`]));
      return;
    }
    if (!st) {
      list.replaceChildren(row(['connect as a demo user to list connections']));
      return;
    }
    const counters = (stats && stats.streams) || {};
    list.replaceChildren(...st.activeConnections.map((c) => {
      const q = counters[c.id];
      const id = document.createElement('span');
      id.textContent = c.id.slice(0, 10);
      id.title = c.id;
      const mine = own.get(c.id);
      if (mine) {
        const tag = document.createElement('b');
        tag.className = 'own';
        tag.textContent = ` this page (${mine})`;
        id.append(tag);
      }
      return row([id, c.purpose, c.devices.join(', '), uptime(c.uptime), q ? q.coalesced : '–', q ? q.dropped : '–'],
        { id: c.id, purpose: c.purpose, own: mine || '' });
    }));
    $('#dbg-user').textContent = `user ${st.userId}: ${st.connections.total} open (limits: alerts ${st.limits.alerts}, data ${st.limits.data})`;
  }

  panel.addEventListener('toggle', refresh);
  setInterval(refresh, REFRESH_MS);
  fillSample();

  window.machinedash = Object.assign(window.machinedash || {}, { debug: { refresh, fillMachines } });
})();
