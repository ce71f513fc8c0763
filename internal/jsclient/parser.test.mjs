// The client's event-stream parser against the wire vectors shared with
// the Go encoder (internal/sse/testdata: the golden files and events.json,
// the events the Go reference parser dispatches for them), fed whole and
// in every split, plus the WHATWG examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EventStreamParser } from './client.js';

const dir = fileURLToPath(new URL('../sse/testdata/', import.meta.url));
const vectors = JSON.parse(readFileSync(dir + 'events.json', 'utf8'));

// parse feeds byte chunks through a streaming TextDecoder, as the client does.
function parse(chunks) {
  const out = [];
  let retry = -1;
  const p = new EventStreamParser((ev) => out.push({ id: ev.lastEventId, type: ev.type, data: ev.data, retry }), (ms) => { retry = ms; });
  const dec = new TextDecoder();
  for (const c of chunks) p.feed(dec.decode(c, { stream: true }));
  return out;
}

test('every golden file has its vector', () => {
  const golden = readdirSync(dir).filter((f) => f.endsWith('.golden')).map((f) => f.slice(0, -7)).sort();
  assert.deepEqual(Object.keys(vectors).sort(), golden);
  assert.ok(golden.length >= 10);
});

for (const [name, want] of Object.entries(vectors)) {
  test(`golden ${name}: whole, byte by byte and split anywhere`, () => {
    const bytes = new Uint8Array(readFileSync(dir + name + '.golden'));
    assert.deepEqual(parse([bytes]), want);
    assert.deepEqual(parse([...bytes].map((b) => new Uint8Array([b]))), want);
    for (let i = 1; i < bytes.length; i++) {
      assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i)]), want, `split at ${i}`);
    }
  });
}

const enc = (s) => [new TextEncoder().encode(s)];
const ev = (id, type, data, retry = -1) => ({ id, type, data, retry });

// The cases of the Go reference parser's own test (internal/sse/parse_test.go).
const spec = [
  ['spec stock example', 'data: YHOO\ndata: +2\ndata: 10\n\n', [ev('', 'message', 'YHOO\n+2\n10')]],
  ['spec ids and comment', ': test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n',
    [ev('1', 'message', 'first event'), ev('', 'message', 'second event'), ev('', 'message', ' third event')]],
  ['spec empty data and unterminated', 'data\n\ndata\ndata\n\ndata:', [ev('', 'message', ''), ev('', 'message', '\n')]],
  ['spec one space stripped', 'data:test\n\ndata: test\n\n', [ev('', 'message', 'test'), ev('', 'message', 'test')]],
  ['CRLF and lone CR', 'event: a\r\ndata: 1\r\rdata: 2\r\n\r\n', [ev('', 'a', '1'), ev('', 'message', '2')]],
  ['no data: no dispatch, type reset', 'event: a\n\ndata: x\n\n', [ev('', 'message', 'x')]],
  ['id kept across events', 'id: 7\ndata: a\n\ndata: b\n\n', [ev('7', 'message', 'a'), ev('7', 'message', 'b')]],
  ['id set by event without data', 'id: 7\n\ndata: b\n\n', [ev('7', 'message', 'b')]],
  ['id with NUL ignored', 'id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n', [ev('1', 'message', 'a'), ev('1', 'message', 'b')]],
  ['retry digits only', 'retry: 1500\ndata: a\n\nretry: 1.5\nretry: x\nretry:\nretry: -1\ndata: b\n\n',
    [ev('', 'message', 'a', 1500), ev('', 'message', 'b', 1500)]],
  ['unknown field ignored', 'foo: bar\ndata: a\n\n', [ev('', 'message', 'a')]],
  ['value keeps second colon', 'data: a: b\n\n', [ev('', 'message', 'a: b')]],
  ['leading BOM ignored once', '\uFEFFdata: a\n\n', [ev('', 'message', 'a')]],
  ['unterminated event discarded', 'data: a\n', []],
];
for (const [name, input, want] of spec) {
  test(name, () => {
    assert.deepEqual(parse(enc(input)), want);
  });
}

test('invalid UTF-8 replaced', () => {
  const b = new Uint8Array([...new TextEncoder().encode('data: a'), 0xe2, 0x82, 0x62, 0xff, 0x0a, 0x0a]);
  assert.deepEqual(parse([b]), [ev('', 'message', 'a\uFFFDb\uFFFD')]);
});

test('a CR at the end of one chunk and a LF at the start of the next are one line end', () => {
  assert.deepEqual(parse([...enc('data: a\r'), ...enc('\ndata: b\r\n\r\n')]), [ev('', 'message', 'a\nb')]);
});
