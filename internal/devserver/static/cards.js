// machinedash demo dashboard: machine cards and the alerts list.
//
// Rendering only: the connection layer (app.js) calls these with each
// event's parsed payload. Values are shown as the field catalogue of the
// demo machines says (GET /dev/fields): label, unit, fixed decimals, and
// highlighted when outside their normal range. A card whose data stopped
// arriving loses its state badge ("stale"); a critical alert marks its
// machine until clicked.
'use strict';

(() => {
  const MAX_ALERTS = 100;
  const SPARK_POINTS = 120;
  const STALE_SECONDS = 5;

  const $ = (sel, root = document) => root.querySelector(sel);
  const machines = new Map(); // deviceId -> card state
  const fields = new Map(); // name -> catalogue entry, in catalogue order
  let alertCount = 0;

  const loaded = fetch('dev/fields')
    .then((r) => (r.ok ? r.json() : { fields: [] }))
    .then((r) => {
      for (const f of r.fields || []) fields.set(f.name, f);
      // Values shown before the catalogue came are shown again with it.
      for (const m of machines.values()) for (const [k, v] of m.raw) show(m, k, v);
    })
    .catch(() => { /* no catalogue: plain values */ });

  // ---- machines ---------------------------------------------------------

  function card(id) {
    let m = machines.get(id);
    if (m) return m;
    const node = $('#card').content.firstElementChild.cloneNode(true);
    $('.id', node).textContent = id;
    node.dataset.device = id;
    $('.mark', node).addEventListener('click', () => unmark(m));
    $('#cards').append(node);
    $('#hint').hidden = true;
    m = { id, node, values: new Map(), raw: new Map(), spark: [], updated: 0, state: '' };
    machines.set(id, m);
    return m;
  }

  // rank orders fields as the catalogue does, unknown ones after, by name.
  function rank(k) {
    const i = [...fields.keys()].indexOf(k);
    return i < 0 ? fields.size : i;
  }

  function setValues(m, data) {
    if (!data || typeof data !== 'object') return;
    for (const [k, v] of Object.entries(data)) {
      if (v === null || typeof v === 'object') continue;
      m.raw.set(k, v);
      show(m, k, v);
    }
  }

  // format returns the text of a value and whether it is out of range.
  function format(k, v) {
    const f = fields.get(k);
    if (!f || typeof v !== 'number') return { text: String(v), out: false };
    const text = v.toFixed(f.decimals) + (f.unit ? ` ${f.unit}` : '');
    const out = f.min !== f.max && (v < f.min || v > f.max);
    return { text, out };
  }

  function show(m, k, v) {
    let dd = m.values.get(k);
    if (!dd) {
      const div = document.createElement('div');
      div.dataset.rank = rank(k);
      const dt = document.createElement('dt');
      dt.textContent = k;
      dd = document.createElement('dd');
      div.append(dt, dd);
      const dl = $('.values', m.node);
      const after = [...dl.children].find((c) => Number(c.dataset.rank) > rank(k) ||
        (Number(c.dataset.rank) === rank(k) && $('dt', c).textContent > k));
      dl.insertBefore(div, after || null);
      m.values.set(k, dd);
    }
    const f = fields.get(k);
    const dt = dd.previousElementSibling;
    if (f) {
      dt.title = [f.label, f.min !== f.max ? `normal ${f.min}–${f.max} ${f.unit}`.trim() : '', f.legend || '']
        .filter(Boolean).join(' · ');
      dd.parentElement.dataset.rank = rank(k);
    }
    const { text, out } = format(k, v);
    dd.classList.toggle('out', out);
    dd.title = out && f ? `outside the normal range ${f.min}–${f.max} ${f.unit}`.trim() : '';
    if (dd.textContent !== text) {
      dd.textContent = text;
      dd.classList.add('changed');
      requestAnimationFrame(() => requestAnimationFrame(() => dd.classList.remove('changed')));
    }
  }

  function setState(m, state) {
    m.state = state || '';
    badge(m);
  }

  // badge shows the machine's state, unless its data went stale: then a
  // "running" from a minute ago would be a claim nobody can back.
  function badge(m) {
    const b = $('.badge', m.node);
    const stale = m.node.classList.contains('stale');
    const text = stale ? 'stale' : m.state;
    b.textContent = text;
    b.className = `badge ${text}`;
    b.title = stale && m.state ? `last known state: ${m.state}` : '';
  }

  function touch(m) {
    m.updated = Date.now();
    refreshAge(m);
  }

  function refreshAge(m) {
    if (!m.updated) return;
    const s = Math.round((Date.now() - m.updated) / 1000);
    $('.age', m.node).textContent = s < 2 ? 'now' : `${s}s ago`;
    const stale = s > STALE_SECONDS;
    if (stale !== m.node.classList.contains('stale')) {
      m.node.classList.toggle('stale', stale);
      badge(m);
    }
  }

  // mark flags the machine of a critical alert until the mark is clicked.
  function mark(m, a, d) {
    const el = $('.mark', m.node);
    el.hidden = false;
    el.textContent = `critical${a.code !== undefined ? ` ${a.code}` : ''}`;
    el.title = `${a.message || ''} (${time(d.timestamp)}); click to dismiss`;
    m.node.classList.add('critical');
  }

  function unmark(m) {
    $('.mark', m.node).hidden = true;
    m.node.classList.remove('critical');
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

  // onSPC updates the cycle's values on the card and names the cycle.
  function onSPC(d) {
    const m = card(d.deviceId);
    const x = (d.data && d.data.Data) || {};
    setValues(m, x);
    const parts = [`cycle #${x.CYCN ?? '?'}`];
    if (x.ECYCT !== undefined) parts.push(format('ECYCT', x.ECYCT).text);
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
    const f = fields.get(x.field);
    const unit = f && f.unit ? ` ${f.unit}` : '';
    $('.chart-label', box).textContent = `SPC ${x.field || ''}${unit}, cycles ${first.cycle ?? '?'}-${last.cycle ?? '?'}`;
    const limits = ['lcl', 'mean', 'ucl'].map((k) => x[k]).filter((v) => typeof v === 'number');
    drawLine($('.series', m.node), x.points.map((p) => p.value), limits, f ? f.decimals : 1);
  }

  // drawLine draws values as a line scaled to the canvas, sharp on HiDPI,
  // with optional horizontal reference lines (dashed).
  function drawLine(canvas, values, lines = [], decimals = 1) {
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
    ctx.fillText(hi.toFixed(decimals), pad, 11);
    ctx.fillText(lo.toFixed(decimals), pad, h - pad);
  }

  // ---- alerts -----------------------------------------------------------

  function addAlert(cls, title, body, d) {
    const li = document.createElement('li');
    li.className = `${cls} fresh`;
    li.dataset.device = d.deviceId;
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
    if (type === 'critical') {
      const m = machines.get(d.deviceId);
      if (m) mark(m, a, d);
    }
  }

  function onAlarm(d) {
    const a = d.alarm || {};
    const cleared = a.state === 'cleared';
    addAlert(cleared ? 'cleared' : a.severity || 'critical', `alarm ${a.code ?? ''} ${a.state || ''}`, a.message || JSON.stringify(a), d);
    const m = machines.get(d.deviceId);
    if (m) setState(m, cleared ? 'running' : 'alarm');
  }

  function time(ts) {
    const d = new Date(ts);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  // reset empties the cards and the alerts list (another user connects).
  function reset() {
    machines.clear();
    $('#cards').replaceChildren();
    $('#alerts').replaceChildren();
    $('#hint').hidden = false;
    alertCount = 0;
    $('#alert-count').textContent = '';
  }

  setInterval(() => machines.forEach(refreshAge), 1000);

  window.machinedash = Object.assign(window.machinedash || {}, {
    cards: { card, reset, onStatus, onRealtime, onSPC, onSeries, onAlert, onAlarm, loaded, fields, time },
  });
})();
