/**
 * Beacon's browser client: one WebSocket per tab, many resumable stream subscriptions.
 *
 * Theory of operation (see docs/client.md and docs/protocol.md):
 *
 * - The client is a small state machine, as in centrifuge-js: `disconnected` →
 *   `connecting` → `connected`. Only `_setState` changes the state and every way down
 *   goes through `_disconnect(code, reason, reconnect)`. Close codes are split into
 *   *final* ones (4001 not signed in, 4003 forbidden: stop for good and say why) and
 *   all others (reconnect).
 * - Reconnects wait `backoffDelay(attempt)`: exponential with **full jitter** (a random
 *   delay between 0 and min(20 s, 0.5 s × 2^attempt)), so a restarted server is not hit
 *   by every tab at once. The browser's `online` event retries at once; silence for two
 *   heartbeat intervals (the `welcome` frame says how long one is) counts as a dead
 *   connection.
 * - Each subscription keeps a `StreamPosition`: the stream's epoch and the last seq the
 *   page saw. After a reconnect every subscription resumes from there; a durable event
 *   whose seq is not newer is dropped, so the page sees each event once, in order. When
 *   the server cannot replay (`subscribed` with `recovered: false`) the page is told, so
 *   it can reload what it shows over HTTP. The server says so too when a stream's epoch
 *   changes under a live subscription (a `subscribed` frame without `ref`); an event of
 *   another epoch that comes unannounced makes the client resubscribe, never splice.
 * - Requests (`send(op, fields)`) carry an `id`; the reply's `ref` settles the promise.
 *
 * The pure parts (`backoffDelay`, `StreamPosition`) and the client's I/O seams
 * (`WebSocket`, timers, `random`, `now`, `window`) are exported or injectable, so the
 * logic is tested without a browser (tests/js/). The client renders nothing.
 */

export const DISCONNECTED = "disconnected";
export const CONNECTING = "connecting";
export const CONNECTED = "connected";

/** Close codes after which the client stops for good (docs/protocol.md, "Close codes"). */
export const FINAL_CLOSE_CODES = new Set([4001, 4003]);

/** The credential expired: get a new one (`getTicket()` again) and reconnect at once. */
export const REFRESH_CLOSE_CODE = 4401;

/** What a close code means, for people. */
export const CLOSE_REASONS = {
  1000: "connection closed",
  1001: "server going away",
  1006: "connection lost",
  1009: "frame too large",
  1011: "server error",
  4001: "not signed in",
  4003: "not allowed",
  4008: "rate limited",
  4009: "frame too large",
  4011: "server error",
  4012: "server restarting",
  4013: "connection too slow",
  4401: "credential expired",
  4429: "too many connections",
};

/** Control frames the server sends; every other frame with a `stream` is an event. */
const CONTROL_TYPES = new Set(["welcome", "subscribed", "unsubscribed", "pong", "ping", "ack", "error"]);

/** Client-level event names that an application event type cannot shadow. */
const CLIENT_EVENTS = new Set(["state", "retry", "welcome", "subscribed", "error", "event"]);

/** Backoff attempt to start from after these close codes (rate limited: slow down). */
const MIN_ATTEMPT_AFTER = { 4008: 3, 4429: 5 };

/**
 * Milliseconds to wait before reconnect attempt `attempt` (0-based): full jitter.
 *
 * A uniformly random delay in [0, min(maxDelay, minDelay × 2^attempt)). Full jitter
 * spreads a crowd of clients that lost the same server across the whole window.
 */
export function backoffDelay(attempt, { minDelay = 500, maxDelay = 20000 } = {}, random = Math.random) {
  const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/** An error reply, a failed request or a refused subscription. */
export class BeaconError extends Error {
  constructor(code, message, frame = null) {
    super(message || code);
    this.name = "BeaconError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * Where a page stands in one stream: the epoch and the last seq it has seen.
 *
 * Pure bookkeeping for resume and dedupe: `resumeFields()` is what a subscribe sends,
 * `subscribed(frame)` takes the server's answer, `accept(frame)` judges each event.
 */
export class StreamPosition {
  constructor({ epoch = null, since = null } = {}) {
    this.epoch = epoch ?? null;
    this.last = since ?? null;
  }

  /** The `epoch`/`since` fields of a subscribe frame: empty for "live from now". */
  resumeFields() {
    if (this.last === null) return {};
    return this.epoch === null ? { since: this.last } : { epoch: this.epoch, since: this.last };
  }

  /**
   * Take a `subscribed` frame. Returns `{recovered, reason, resumed}`.
   *
   * Recovered resume: keep `last`, the replay that follows brings the page up to date.
   * Fresh subscription or failed recovery: continue from the stream's newest seq.
   */
  subscribed(frame) {
    const resumed = this.last !== null;
    const recovered = frame.recovered !== false;
    this.epoch = frame.epoch ?? null;
    if (!resumed || !recovered) this.last = typeof frame.seq === "number" ? frame.seq : 0;
    return { recovered, reason: recovered ? null : (frame.reason ?? "unknown"), resumed };
  }

  /**
   * Judge an event: "deliver", "duplicate" (seq not newer) or "stale" (another epoch).
   * Ephemeral events (no seq) are always delivered.
   */
  accept(frame) {
    if (typeof frame.seq !== "number") return "deliver";
    if (this.epoch !== null && frame.epoch != null && frame.epoch !== this.epoch) return "stale";
    if (this.last !== null && frame.seq <= this.last) return "duplicate";
    this.last = frame.seq;
    return "deliver";
  }
}

/** A tiny event emitter; a throwing handler is reported and does not stop the others. */
class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Call `handler(value)` on every `name` event; returns a function that removes it. */
  on(name, handler) {
    if (!this._listeners.has(name)) this._listeners.set(name, new Set());
    this._listeners.get(name).add(handler);
    return () => this.off(name, handler);
  }

  off(name, handler) {
    this._listeners.get(name)?.delete(handler);
  }

  _emit(name, value) {
    const handlers = this._listeners.get(name);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(value);
      } catch (error) {
        console.error(`beacon: a "${name}" handler failed`, error);
      }
    }
  }
}

/**
 * One stream subscription. Emits "subscribed" (`{stream, epoch, seq, recovered, reason,
 * resumed, state}`), "event" and each event's own type (the frame), and "error".
 * `status`: "pending" (waiting for the server), "subscribed", "failed", "unsubscribed".
 */
export class Subscription extends Emitter {
  constructor(client, stream, position) {
    super();
    this.client = client;
    this.stream = stream;
    this.position = position;
    this.status = "pending";
  }

  get epoch() {
    return this.position.epoch;
  }

  /** The last seq seen: use it as `up_to` to mark everything shown as read. */
  get last() {
    return this.position.last;
  }

  unsubscribe() {
    return this.client.unsubscribe(this.stream);
  }
}

function defaultUrl(path = "/ws/") {
  const where = globalThis.location;
  if (!where) throw new Error("beacon: give a url outside a browser");
  return `${where.protocol === "https:" ? "wss:" : "ws:"}//${where.host}${path}`;
}

/**
 * The client. Options (all optional in a browser):
 * `url` (default: ws(s)://this host/ws/), `minDelay`/`maxDelay` (backoff, ms),
 * `connectTimeout`, `requestTimeout` (ms), `getTicket` (an async function answering a
 * one-time ticket from `POST /beacon/tickets/`, asked before every connection: for a
 * page on another origin or a web view without the session cookie), and the seams
 * `WebSocket`, `setTimeout`,
 * `clearTimeout`, `random`, `now`, `window` (whose `online` event retries at once).
 *
 * Events: "state" (`{state, previous, code, reason, final}`), "retry" (`{delay, at,
 * attempt, code, reason}`), "welcome", "subscribed", "error", "event", and each event
 * type ("notification", "read", …) from every stream.
 */
export class BeaconClient extends Emitter {
  constructor(options = {}) {
    super();
    this.url = options.url ?? null;
    this.minDelay = options.minDelay ?? 500;
    this.maxDelay = options.maxDelay ?? 20000;
    this.connectTimeout = options.connectTimeout ?? 10000;
    this.requestTimeout = options.requestTimeout ?? 10000;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._getTicket = options.getTicket ?? null;
    this._opening = 0;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    this._random = options.random ?? Math.random;
    this._now = options.now ?? (() => Date.now());

    this.state = DISCONNECTED;
    this.attempt = 0;
    this.user = null;
    this.heartbeat = null;
    this.lastClose = null;
    this.dropped = 0;
    this.subscriptions = new Map();
    this._ws = null;
    this._welcomed = false;
    this._timers = { reconnect: null, connect: null, heartbeat: null };
    this._nextId = 1;
    this._requests = new Map();
    this._subscribeRefs = new Map();

    const win = options.window ?? (typeof window === "undefined" ? null : window);
    win?.addEventListener?.("online", () => this.reconnectNow());
  }

  // -- public API ------------------------------------------------------------------------

  /** Start connecting (again, after a final close or `disconnect()`). Returns the client. */
  connect() {
    if (this.state !== DISCONNECTED) return this;
    this.attempt = 0;
    this._setState(CONNECTING, { code: null, reason: "connect" });
    this._open();
    return this;
  }

  /** Close for good (until `connect()`); pending requests are rejected. */
  disconnect(reason = "disconnect() called") {
    this._disconnect(null, reason, false);
  }

  /** If waiting to reconnect, try now (the browser's `online` event does this too). */
  reconnectNow() {
    if (this.state === CONNECTING && this._ws === null) {
      this.attempt = 0;
      this._open();
    }
  }

  /**
   * Subscribe to a stream (or return the existing subscription). `epoch`/`since` resume
   * from a point the page already has (e.g. from the HTTP list); without them the
   * subscription starts live from now.
   */
  subscribe(stream, { epoch = null, since = null } = {}) {
    const existing = this.subscriptions.get(stream);
    if (existing) return existing;
    const sub = new Subscription(this, stream, new StreamPosition({ epoch, since }));
    this.subscriptions.set(stream, sub);
    if (this._welcomed) this._sendSubscribe(sub);
    return sub;
  }

  /** Stop a subscription; resolves once the server confirmed (or at once if offline). */
  unsubscribe(stream) {
    const sub = this.subscriptions.get(stream);
    if (!sub) return Promise.resolve(null);
    this.subscriptions.delete(stream);
    sub.status = "unsubscribed";
    if (!this._welcomed) return Promise.resolve(null);
    return this.send("unsubscribe", { stream }).catch(() => null);
  }

  /**
   * Send a request (`read`, `publish`, `typing`, `ping`, …) and resolve with the reply
   * (`ack`, `pong`, `unsubscribed`) or reject with a `BeaconError` (`error` frame,
   * "timeout", "disconnected" if the socket dropped before the reply, "closed").
   * While not connected, the request waits for the next connection (up to the timeout).
   * Ops with no reply (`typing`) resolve when sent.
   */
  send(op, fields = {}, { timeout = this.requestTimeout } = {}) {
    if (this.state === DISCONNECTED && this.lastClose?.final) {
      return Promise.reject(new BeaconError("closed", this.lastClose.reason));
    }
    const id = this._nextId++;
    const frame = { ...fields, op, id };
    return new Promise((resolve, reject) => {
      const request = { frame, resolve, reject, sent: false, timer: null };
      request.timer = this._setTimeout(() => {
        this._requests.delete(id);
        reject(new BeaconError("timeout", `no reply to ${op} within ${timeout} ms`));
      }, timeout);
      this._requests.set(id, request);
      if (this._welcomed) this._transmitRequest(id, request);
    });
  }

  // -- state machine -----------------------------------------------------------------------

  _setState(state, info = {}) {
    if (state === this.state) return false;
    const previous = this.state;
    this.state = state;
    this._emit("state", { state, previous, code: null, reason: null, final: false, ...info });
    return true;
  }

  /** The one way down: tear the socket down, then reconnect later or stop. */
  _disconnect(code, reason, reconnect) {
    if (this.state === DISCONNECTED) return;
    const ws = this._ws;
    this._ws = null;
    this._welcomed = false;
    for (const name of Object.keys(this._timers)) this._clearTimer(name);
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // already closing or closed
      }
    }
    for (const sub of this.subscriptions.values()) {
      if (sub.status === "subscribed") sub.status = "pending";
    }
    this._subscribeRefs.clear();
    const final = !reconnect && code !== null;
    this.lastClose = { code, reason, final };
    this._failRequests(reconnect ? "sent" : "all", reason);
    if (!reconnect) {
      this._setState(DISCONNECTED, { code, reason, final });
      return;
    }
    this.attempt = Math.max(this.attempt, MIN_ATTEMPT_AFTER[code] ?? 0);
    const delay = backoffDelay(
      this.attempt,
      { minDelay: this.minDelay, maxDelay: this.maxDelay },
      this._random,
    );
    this.attempt += 1;
    this._setState(CONNECTING, { code, reason });
    this._timers.reconnect = this._setTimeout(() => {
      this._timers.reconnect = null;
      this._open();
    }, delay);
    this._emit("retry", { delay, at: this._now() + delay, attempt: this.attempt, code, reason });
  }

  _open() {
    this._clearTimer("reconnect");
    if (this._getTicket === null) return this._openSocket(this.url ?? defaultUrl());
    // Ask for a ticket first; a disconnect() or another attempt meanwhile wins.
    const attempt = ++this._opening;
    const current = () => attempt === this._opening && this.state === CONNECTING && !this._ws;
    Promise.resolve()
      .then(() => this._getTicket())
      .then(
        (ticket) => {
          if (!current()) return;
          const text = typeof ticket === "string" ? ticket : ticket?.ticket;
          if (!text) throw new Error("getTicket() gave no ticket");
          const url = this.url ?? defaultUrl();
          this._openSocket(`${url}${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(text)}`);
        },
      )
      .catch((error) => {
        if (current()) this._disconnect(null, `could not get a ticket: ${error?.message ?? error}`, true);
      });
  }

  _openSocket(url) {
    let ws;
    try {
      ws = new this._WebSocket(url);
    } catch (error) {
      this._disconnect(null, `could not open a socket: ${error.message}`, true);
      return;
    }
    this._ws = ws;
    ws.onmessage = (event) => {
      if (this._ws === ws) this._receive(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      const code = event.code;
      const reason = event.reason || CLOSE_REASONS[code] || `closed (${code})`;
      if (code === REFRESH_CLOSE_CODE) this.attempt = 0; // not a failure: come back soon
      this._disconnect(code, reason, !FINAL_CLOSE_CODES.has(code));
    };
    ws.onerror = () => {}; // a close event always follows
    this._timers.connect = this._setTimeout(() => {
      this._timers.connect = null;
      this._disconnect(null, "connect timeout", true);
    }, this.connectTimeout);
  }

  _clearTimer(name) {
    if (this._timers[name] !== null) {
      this._clearTimeout(this._timers[name]);
      this._timers[name] = null;
    }
  }

  _armHeartbeat() {
    this._clearTimer("heartbeat");
    if (!this.heartbeat) return;
    // Two missed server pings (plus a little slack for a busy tab) mean a dead socket.
    const ms = this.heartbeat * 2000 + 1000;
    this._timers.heartbeat = this._setTimeout(() => {
      this._timers.heartbeat = null;
      this._disconnect(null, "no heartbeat from the server", true);
    }, ms);
  }

  // -- frames from the server --------------------------------------------------------------

  _receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object") return;
    this._armHeartbeat();
    switch (frame.type) {
      case "welcome":
        return this._onWelcome(frame);
      case "ping":
        return;
      case "subscribed":
        return this._onSubscribed(frame);
      case "error":
        return this._onError(frame);
      case "ack":
      case "pong":
        return this._settle(frame.ref, frame, null);
      case "unsubscribed":
        if (frame.reason) this._onRevoked(frame);
        return this._settle(frame.ref, frame, null);
      default:
        if (typeof frame.stream === "string" && !CONTROL_TYPES.has(frame.type)) {
          this._onEvent(frame);
        }
    }
  }

  _onWelcome(frame) {
    this._clearTimer("connect");
    this.user = frame.user ?? null;
    this.heartbeat = typeof frame.heartbeat === "number" ? frame.heartbeat : null;
    this.attempt = 0;
    this._welcomed = true;
    // Subscriptions first, then queued requests: a `typing` or `publish` queued while
    // offline must reach the server after the subscribe it may depend on.
    for (const sub of this.subscriptions.values()) this._sendSubscribe(sub);
    for (const [id, request] of this._requests) {
      if (!request.sent) this._transmitRequest(id, request);
    }
    this._armHeartbeat();
    this._setState(CONNECTED, { code: null, reason: null });
    this._emit("welcome", frame);
  }

  _onSubscribed(frame) {
    const sub = this.subscriptions.get(frame.stream);
    if (frame.ref !== undefined) this._subscribeRefs.delete(frame.ref);
    if (!sub || sub.status === "unsubscribed") return;
    const outcome = sub.position.subscribed(frame);
    sub.status = "subscribed";
    const info = {
      stream: sub.stream,
      epoch: sub.position.epoch,
      seq: frame.seq,
      state: frame.state ?? null,
      ...outcome,
    };
    sub._emit("subscribed", info);
    this._emit("subscribed", info);
  }

  _onEvent(frame) {
    const sub = this.subscriptions.get(frame.stream);
    if (!sub || sub.status !== "subscribed") return;
    const verdict = sub.position.accept(frame);
    if (verdict !== "deliver") {
      this.dropped += 1;
      if (verdict === "stale") this._resync(sub);
      return;
    }
    for (const target of [sub, this]) {
      if (!CLIENT_EVENTS.has(frame.type)) target._emit(frame.type, frame);
      target._emit("event", frame);
    }
  }

  /** The server took a subscription away (`reason`: "forbidden"): do not resubscribe. */
  _onRevoked(frame) {
    const sub = this.subscriptions.get(frame.stream);
    if (!sub) return;
    this.subscriptions.delete(frame.stream);
    sub.status = "failed";
    const error = new BeaconError(frame.reason, `no longer allowed to read ${frame.stream}`, frame);
    sub._emit("error", error);
    this._emit("error", error);
  }

  _onError(frame) {
    const error = new BeaconError(frame.code ?? "error", frame.message, frame);
    const sub = this._subscribeRefs.get(frame.ref);
    if (sub) {
      this._subscribeRefs.delete(frame.ref);
      if (this.subscriptions.get(sub.stream) === sub) this.subscriptions.delete(sub.stream);
      sub.status = "failed";
      sub._emit("error", error);
      this._emit("error", error);
      return;
    }
    if (!this._settle(frame.ref, null, error)) this._emit("error", error);
  }

  // -- frames to the server ----------------------------------------------------------------

  _transmit(frame) {
    try {
      this._ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false; // the close event follows and reconnects
    }
  }

  /**
   * An event of another epoch: its seqs cannot be compared with ours, so neither drop it
   * as a duplicate nor splice it on. Ask the server afresh (unsubscribe, then subscribe
   * from our resume point): it answers with the stream's epoch, `recovered: false` and
   * `epoch_changed` if the history really changed, and the page is told as on any resume.
   * Events that arrive meanwhile are ignored; the new subscription accounts for them.
   */
  _resync(sub) {
    if (!this._welcomed) return;
    sub.status = "pending";
    this._transmit({ op: "unsubscribe", stream: sub.stream });
    this._sendSubscribe(sub);
  }

  _sendSubscribe(sub) {
    const id = this._nextId++;
    this._subscribeRefs.set(id, sub);
    sub.status = "pending";
    this._transmit({ op: "subscribe", stream: sub.stream, ...sub.position.resumeFields(), id });
  }

  _transmitRequest(id, request) {
    if (!this._transmit(request.frame)) return;
    request.sent = true;
    if (request.frame.op === "typing") this._settle(id, { type: "sent", op: "typing" }, null);
  }

  /** Settle a request by its id; false if no request has that id. */
  _settle(ref, reply, error) {
    const request = this._requests.get(ref);
    if (!request) return false;
    this._requests.delete(ref);
    this._clearTimeout(request.timer);
    if (error) request.reject(error);
    else request.resolve(reply);
    return true;
  }

  /** Reject requests that can no longer be answered ("sent" on this socket, or "all"). */
  _failRequests(which, reason) {
    for (const [id, request] of [...this._requests]) {
      if (which === "all" || request.sent) {
        const code = which === "all" ? "closed" : "disconnected";
        this._settle(id, null, new BeaconError(code, reason));
      }
    }
  }
}

let shared = null;

/**
 * The page's one client (one socket per tab), created and connected on first call.
 * Every script of a page (the bell, a chat room) should use this.
 */
export function sharedClient(options = {}) {
  if (shared === null) shared = new BeaconClient(options).connect();
  return shared;
}
