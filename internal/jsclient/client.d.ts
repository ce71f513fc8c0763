// Types of the machinedash SSE browser client (/sse/client.js).

/** The state of a stream, or of the whole client (its worst stream). */
export type State = 'connecting' | 'live' | 'reconnecting' | 'paused' | 'stopped';

export interface StreamState {
  state: State;
  /** Why, in words for a person: "connected", "429: ...; retry in 3.2 s", the server's message on 400/403. */
  reason: string;
}

export interface ClientState extends StreamState {
  /** Each stream in use: alerts, and data when any tab asks for devices. */
  streams: { alerts?: StreamState; data?: StreamState };
  /**
   * pending: not elected yet (getting the first ticket, whose user decides which tabs share;
   * also while the page is in the back/forward cache); leader: this tab holds the streams;
   * follower: another tab does and relays; solo: not shared (shared: false, no BroadcastChannel,
   * or a ticket whose user cannot be read).
   */
  role: 'pending' | 'leader' | 'follower' | 'solo';
}

export type Purpose = 'alerts' | 'data';

export interface ConnectOptions {
  /** Origin (and path prefix) of the service, e.g. "https://sse.example.com"; "" for the page's own. */
  baseUrl?: string;
  /** A fresh stream ticket for a purpose (POST /sse/stream-ticket with the app's access token). */
  getTicket(purpose: Purpose): Promise<string | { ticket: string }>;
  /** Devices for the data stream (at most maxDevices); none: no data stream. */
  devices?: string[];
  /** Open the alerts stream (default true). */
  alerts?: boolean;
  /** On a fresh alerts stream, first the newest N alerts of the user's devices (0..100, default 0). */
  history?: number;
  /** machine-status snapshots when the data stream opens (default true). */
  includeStatus?: boolean;
  /** Pause when every tab has been hidden this long, in ms (default 180000). */
  pauseAfter?: number;
  /** The server's HEARTBEAT_INTERVAL in ms (default 25000): no byte for 2 x this + 5 s reopens. */
  heartbeat?: number;
  /** The server's MAX_DEVICES_PER_STREAM (default 10). */
  maxDevices?: number;
  /** Backoff: first ceiling and cap, in ms (defaults 1000 and 30000), reset after healthyAfter live (60000). */
  backoffBase?: number;
  backoffCap?: number;
  healthyAfter?: number;
  /** Send cookies to a cross-origin service (fetch credentials: "include"). */
  withCredentials?: boolean;
  /** Share one stream per purpose between this origin's tabs (default true). */
  shared?: boolean;
  /** Tabs share streams only with tabs of the same user (the first ticket's sub; none readable: the tab runs alone); a scope narrows that further. */
  scope?: string;
  /** Test seams: fetch, setTimeout, clearTimeout, now, random, document, window, locks, BroadcastChannel, sendBeacon. */
  env?: Record<string, unknown>;
}

/** Extra facts of an event. */
export interface EventMeta {
  /** The SSE event name, e.g. "machine-alert". */
  type: string;
  /** Its id (a resume cursor). */
  id: string;
  stream: Purpose;
}

export interface SSEClient {
  /** Listen to an event name (machine-alert, alarm-update, machine-status, realtime-update, spc-update, spc-series-update, system). Returns a function that stops listening. */
  on(type: string, fn: (data: any, meta: EventMeta) => void): () => void;
  /** Called at once and on every change. Returns a function that stops listening. */
  onState(fn: (state: ClientState) => void): () => void;
  readonly state: ClientState;
  /** This tab's devices; the data stream carries the union of every tab's. Throws past maxDevices; does nothing after close(). */
  setDevices(devices: string[]): void;
  /** Ends this tab's part for good: its streams get the close beacon, another tab takes over. To reconnect, connect() again. */
  close(): void;
}

/** Opens the streams, or joins the tab of this origin that holds them. */
export function connect(options: ConnectOptions): SSEClient;

/** The WHATWG text/event-stream parser the client uses. */
export class EventStreamParser {
  constructor(onEvent: (ev: { type: string; data: string; lastEventId: string }) => void, onRetry?: (ms: number) => void);
  lastEventId: string;
  feed(text: string): void;
}
