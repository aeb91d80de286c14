/**
 * Test doubles for beacon.js: a manual clock, a fake WebSocket, and a fake Beacon server
 * that speaks the protocol of docs/protocol.md (welcome, subscribe with resume, events,
 * read/publish acks, errors, close codes) over those fake sockets.
 */

/** Timers that run only when the test advances time. */
export class FakeClock {
  constructor() {
    this.now = 0;
    this.timers = new Map();
    this.nextId = 1;
    this.setTimeout = (fn, ms) => {
      const id = this.nextId++;
      this.timers.set(id, { fn, at: this.now + Math.max(0, ms) });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers.delete(id);
    };
    this.read = () => this.now;
  }

  /** Move time forward, running every timer that falls due, in order. */
  advance(ms) {
    const end = this.now + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }

  /** Delays of the pending timers, soonest first. */
  pending() {
    return [...this.timers.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }
}

/** A random source that replays the given values (then repeats the last one). */
export function sequence(...values) {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}

/** A window stand-in whose `online` event the test fires. */
export class FakeWindow {
  constructor() {
    this.listeners = new Map();
  }

  addEventListener(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(fn);
  }

  fire(name) {
    for (const fn of this.listeners.get(name) ?? []) fn({ type: name });
  }
}

/**
 * A fake Beacon server. `server.WebSocket` is the constructor to give the client; every
 * socket the client opens is handed to `server.onConnection` (by default: accept and
 * send `welcome`). Streams keep their events so that resume can replay them.
 */
export class FakeServer {
  constructor({ heartbeat = 25 } = {}) {
    this.heartbeat = heartbeat;
    this.sockets = [];
    this.streams = new Map();
    this.refuse = new Set(); // streams whose subscribe is forbidden
    this.firstKept = new Map(); // stream -> oldest seq still in the log
    this.accepting = true;
    this.autoWelcome = true;
    this.received = [];
    const server = this;
    this.WebSocket = class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.sent = [];
        this.subscribed = new Set();
        this.closedWith = null;
        this.onopen = this.onmessage = this.onclose = this.onerror = null;
        server.sockets.push(this);
        server._connected(this);
      }

      send(text) {
        if (this.readyState !== 1) throw new Error("socket is not open");
        const frame = JSON.parse(text);
        this.sent.push(frame);
        server.received.push(frame);
        // Replies come in a later turn, as over a network.
        queueMicrotask(() => {
          if (this.readyState === 1) server._handle(this, frame);
        });
      }

      close(code = 1000) {
        if (this.readyState >= 2) return;
        this.readyState = 3;
        this.closedWith = code;
      }
    };
  }

  get socket() {
    return this.sockets.at(-1);
  }

  stream(name) {
    if (!this.streams.has(name)) this.streams.set(name, { epoch: "e1", events: [] });
    return this.streams.get(name);
  }

  _connected(ws) {
    if (!this.accepting) {
      // Connection refused: the browser reports a close with 1006.
      ws.readyState = 3;
      queueMicrotask(() => ws.onclose?.({ code: 1006, reason: "" }));
      return;
    }
    // A browser opens the socket after the constructor returned: so does the fake.
    queueMicrotask(() => {
      if (ws.readyState !== 0) return;
      ws.readyState = 1;
      ws.onopen?.({});
      if (this.autoWelcome) this.welcome(ws);
    });
  }

  welcome(ws = this.socket) {
    this.toClient(ws, { type: "welcome", version: 1, user: 7, heartbeat: this.heartbeat, max_frame: 65536 });
  }

  /** Deliver one frame to one socket, as the server would. */
  toClient(ws, frame) {
    if (ws.readyState === 1) ws.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The server closes the socket (or the connection dies: 1006). */
  drop(code = 1006, ws = this.socket, reason = "") {
    if (ws.readyState === 3 && ws.closedWith !== null) return;
    ws.readyState = 3;
    ws.onclose?.({ code, reason });
  }

  /** Append a durable event to a stream and push it live to subscribed sockets. */
  publish(stream, type, data = {}) {
    const s = this.stream(stream);
    const frame = { type, stream, seq: s.events.length + 1, epoch: s.epoch, ts: 1, ...data };
    s.events.push(frame);
    for (const ws of this.sockets) if (ws.subscribed.has(stream)) this.toClient(ws, frame);
    return frame;
  }

  /** An ephemeral event (typing, presence): no seq, not stored. */
  ephemeral(stream, type, data = {}) {
    const frame = { type, stream, ts: 1, ...data };
    for (const ws of this.sockets) if (ws.subscribed.has(stream)) this.toClient(ws, frame);
  }

  /** Send an already-sent event again (what an overlapping replay looks like). */
  resend(stream, seq, ws = this.socket) {
    this.toClient(ws, this.stream(stream).events[seq - 1]);
  }

  _handle(ws, frame) {
    const ref = frame.id;
    switch (frame.op) {
      case "subscribe":
        return this._subscribe(ws, frame);
      case "unsubscribe":
        ws.subscribed.delete(frame.stream);
        return this.toClient(ws, { type: "unsubscribed", stream: frame.stream, ref });
      case "ping":
        return this.toClient(ws, { type: "pong", ref });
      case "read":
        return this.toClient(ws, { type: "ack", op: "read", stream: frame.stream, ref });
      case "publish": {
        const event = this.publish(frame.stream, frame.type, frame.data);
        return this.toClient(ws, {
          type: "ack",
          op: "publish",
          stream: frame.stream,
          seq: event.seq,
          client_id: frame.client_id,
          ref,
        });
      }
      case "typing":
        return;
      default:
        return this.toClient(ws, { type: "error", code: "unknown_op", message: "?", ref });
    }
  }

  _subscribe(ws, frame) {
    const { stream: name, since, epoch, id: ref } = frame;
    if (this.refuse.has(name)) {
      return this.toClient(ws, {
        type: "error",
        code: "forbidden",
        message: `not allowed to subscribe to ${name}`,
        stream: name,
        ref,
      });
    }
    const s = this.stream(name);
    const last = s.events.length;
    const firstKept = this.firstKept.get(name) ?? 1;
    let recovered = true;
    let reason;
    let after = last;
    if (since !== undefined) {
      if (epoch !== undefined && epoch !== s.epoch) [recovered, reason] = [false, "epoch_changed"];
      else if (since > last) [recovered, reason] = [false, "ahead_of_stream"];
      else if (since + 1 < firstKept) [recovered, reason] = [false, "retention"];
      else after = since;
    }
    ws.subscribed.add(name);
    const reply = { type: "subscribed", stream: name, epoch: s.epoch, seq: last, recovered, ref };
    if (reason) reply.reason = reason;
    this.toClient(ws, reply);
    if (recovered && since !== undefined) {
      for (const event of s.events.slice(after)) this.toClient(ws, event);
    }
  }
}

/** Let queued microtasks (promise callbacks, fake close events) run. */
export function flush() {
  return new Promise((resolve) => setImmediate(resolve));
}
