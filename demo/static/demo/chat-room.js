/**
 * A chat room page: history, live messages, composer, presence, typing, read receipts.
 * Built on Beacon's client (`beacon` in the page's import map); protocol in docs/chat.md.
 *
 * How the message list stays right:
 * 1. `GET beacon/streams/room:N/events/` gives the newest messages and the stream's
 *    epoch; the page subscribes resuming from the newest message it was given, so
 *    whatever was posted in between arrives as a replay. After any reconnect the
 *    client resumes again; messages are kept by seq, so an overlap never shows twice.
 * 2. Sending: each message gets a `client_id` and shows as "sending…" until the `ack`
 *    (with its seq) or its own event arrives. A send cut off by a reconnect is sent
 *    again with the same `client_id`: the server stores it once and acks the same seq.
 * 3. Older messages page in over HTTP (`?before=<oldest seq>`) when the list is
 *    scrolled to the top, or with the "Load older messages" button.
 * 4. If the server cannot replay (`recovered: false`), the list is loaded again.
 *
 * Every piece of user text goes into the page with `textContent`, never as HTML.
 */
import { sharedClient } from "beacon";
import { el, sleep } from "./dom.js";

const PAGE = 50;
const TYPING_EVERY_MS = 3000; // client throttle: at most one `typing` per 3 s
const RETRY_MS = 800;
const FINAL_SEND_ERRORS = new Set(["invalid_message", "forbidden", "unsupported", "bad_frame", "closed"]);

function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

function clock(ts) {
  const date = typeof ts === "number" ? new Date(ts * 1000) : new Date();
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
}

function listNames(names) {
  if (names.length === 1) return names[0];
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

class Room {
  constructor(root, client) {
    this.client = client;
    this.stream = root.dataset.stream;
    this.me = Number(root.dataset.me);
    this.meName = root.dataset.meName || "you";
    this.historyUrl = root.dataset.historyUrl;
    this.maxLength = Number(root.dataset.maxLength) || 4000;
    this.scroller = document.getElementById("scroller");
    this.list = document.getElementById("messages");
    this.olderButton = document.getElementById("load-older");
    this.historyStart = document.getElementById("history-start");
    this.seenNote = document.getElementById("seen");
    this.typingNote = document.getElementById("typing");
    this.status = document.getElementById("chat-status");
    this.form = document.getElementById("composer");
    this.input = document.getElementById("message-input");
    this.error = document.getElementById("composer-error");
    this.presenceList = document.getElementById("presence");
    this.presentCount = document.getElementById("present-count");

    this.messages = new Map(); // seq -> <li>
    this.pending = new Map(); // client_id -> {node, text}
    this.oldest = null; // smallest seq shown
    this.newest = 0; // largest seq shown
    this.firstSeq = 1; // oldest seq the server still keeps
    this.loadingOlder = false;
    this.lastRead = null; // our read position when the page opened (for the divider)
    this.readSent = 0;
    this.readTimer = null;
    this.divider = null;
    this.subscribedSeq = null; // the stream's newest seq when we first subscribed
    this.dividerArmed = false; // the page was hidden: the next arrival gets the divider
    this.typingTimeout = 6;
    this.wasConnected = false;
    this.present = new Map(); // user id -> name
    this.typists = new Map(); // user id -> {name, timer}
    this.receipts = new Map(); // user id -> {name, up_to}
    this.lastTypingSent = 0;
    this.sub = null;
  }

  async start() {
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.sendFromComposer();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.sendFromComposer();
      }
    });
    this.input.addEventListener("input", () => this.typed());
    this.olderButton.addEventListener("click", () => this.loadOlder());
    this.scroller.addEventListener("scroll", () => {
      if (this.scroller.scrollTop < 60) this.loadOlder();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.dividerArmed = true;
      this.scheduleRead();
    });
    window.addEventListener("focus", () => this.scheduleRead());
    this.client.on("state", ({ state }) => this.showConnection(state));
    this.showConnection(this.client.state);

    const data = await this.fetchHistory(null);
    this.applyHistory(data, { initial: true });
    // Resume from the newest message we were given: anything posted since is replayed.
    const since = data.items.length ? data.items[0].seq : 0;
    this.sub = this.client.subscribe(this.stream, { epoch: data.epoch, since });
    this.sub.on("subscribed", (info) => this.subscribed(info));
    this.sub.on("message", (frame) => this.received(frame));
    this.sub.on("presence", (frame) => this.setPresence(frame.members));
    this.sub.on("join", (frame) => this.joined(frame));
    this.sub.on("leave", (frame) => this.left(frame));
    this.sub.on("typing", (frame) => this.someoneTyping(frame));
    this.sub.on("receipt", (frame) => this.receipt(frame));
    this.sub.on("error", (error) => this.say(`This room refused the connection: ${error.message}`));
  }

  // -- history -------------------------------------------------------------------------

  async fetchHistory(before) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (before !== null) query.set("before", String(before));
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(`${this.historyUrl}?${query}`, {
          headers: { Accept: "application/json" },
        });
        if (response.status === 401 || response.status === 403) {
          this.say("You can no longer read this room.");
          throw new Error(`HTTP ${response.status}`);
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return await response.json();
      } catch (error) {
        if (String(error.message).startsWith("HTTP 40")) throw error;
        this.say("Could not load messages; trying again…");
        await sleep(500 + Math.random() * Math.min(20000, 1000 * 2 ** attempt));
      }
    }
  }

  /** Show a page of history (newest first from the server). */
  applyHistory(data, { initial = false } = {}) {
    this.firstSeq = data.first_seq ?? 1;
    const keepBottom = initial || this.nearBottom();
    // Not read out one by one: the log announces live messages, not a page of history.
    this.list.setAttribute("aria-busy", "true");
    for (const frame of [...data.items].reverse()) this.insert(frame, { announce: false });
    this.list.removeAttribute("aria-busy");
    if (initial && data.items.length === 0) this.oldest = null;
    this.updateHistoryEdge(data.items.length);
    this.say(null);
    if (keepBottom) this.scrollToBottom();
  }

  updateHistoryEdge(count) {
    const atStart = this.oldest === null || this.oldest <= this.firstSeq || count < PAGE;
    this.olderButton.hidden = atStart;
    this.historyStart.hidden = !atStart;
  }

  async loadOlder() {
    if (this.loadingOlder || this.olderButton.hidden || this.oldest === null) return;
    this.loadingOlder = true;
    this.list.setAttribute("aria-busy", "true");
    try {
      const before = this.oldest;
      const data = await this.fetchHistory(before);
      const height = this.scroller.scrollHeight;
      const top = this.scroller.scrollTop;
      for (const frame of data.items) this.insert(frame, { announce: false });
      this.updateHistoryEdge(data.items.length);
      // Keep what the reader was looking at in place.
      this.scroller.scrollTop = top + (this.scroller.scrollHeight - height);
    } finally {
      this.list.removeAttribute("aria-busy");
      this.loadingOlder = false;
    }
  }

  /** The server could not replay what we missed: start over from the newest page. */
  async reload(reason) {
    const data = await this.fetchHistory(null);
    for (const node of this.messages.values()) node.remove();
    this.divider?.remove();
    this.divider = null;
    this.messages.clear();
    this.oldest = null;
    this.newest = 0;
    this.applyHistory(data, { initial: true });
    console.info(`beacon demo: room reloaded (${reason})`);
  }

  // -- live messages -------------------------------------------------------------------

  subscribed(info) {
    const state = info.state ?? {};
    if (this.lastRead === null && typeof state.last_read === "number") {
      this.lastRead = state.last_read;
      this.subscribedSeq = info.seq;
      this.placeDivider(this.lastRead);
    }
    if (Array.isArray(state.receipts)) {
      for (const r of state.receipts) this.receipts.set(r.user, { name: r.name, up_to: r.up_to });
      this.renderSeen();
    }
    if (typeof state.typing_timeout === "number") this.typingTimeout = state.typing_timeout;
    if (!info.recovered) this.reload(info.reason);
    this.scheduleRead();
    // Sends cut off by the reconnect go again, with the same client ids.
    for (const [clientId, item] of this.pending) if (!item.inFlight) this.deliver(clientId);
  }

  received(frame) {
    const pendingItem = frame.client_id ? this.pending.get(frame.client_id) : null;
    if (pendingItem && frame.author === this.me) {
      this.pending.delete(frame.client_id);
      pendingItem.node.remove();
    }
    const fresh = !this.messages.has(frame.seq);
    this.insert(frame, { announce: true });
    if (!fresh) return;
    this.clearTyping(frame.author);
    if (frame.author !== this.me) {
      // Unread when we opened the page (a replay), or arrived while the page was hidden.
      const missed = this.lastRead !== null && frame.seq > this.lastRead && frame.seq <= this.subscribedSeq;
      if (missed && this.divider === null) this.placeDivider(this.lastRead);
      else if (document.hidden && this.dividerArmed) {
        this.dividerArmed = false;
        this.placeDivider(frame.seq - 1);
      }
    }
    this.scheduleRead();
    this.renderSeen();
  }

  /** Put a message frame in the list, in seq order, once. */
  insert(frame, { announce }) {
    if (typeof frame.seq !== "number" || this.messages.has(frame.seq)) return;
    const stick = announce && (this.nearBottom() || frame.author === this.me);
    this.place(this.render(frame), frame.seq);
    if (stick) this.scrollToBottom();
  }

  /** Put a message node in seq order (before messages still being sent). */
  place(node, seq) {
    let before = null;
    if (seq < this.newest) {
      for (const [other, otherNode] of this.messages) {
        if (other > seq && (before === null || other < Number(before.dataset.seq))) before = otherNode;
      }
    }
    this.messages.set(seq, node);
    node.dataset.seq = String(seq);
    if (before === null) {
      this.list.insertBefore(node, this.list.querySelector("li.pending"));
    } else {
      this.list.insertBefore(node, this.divider?.nextSibling === before ? this.divider : before);
    }
    this.newest = Math.max(this.newest, seq);
    this.oldest = this.oldest === null ? seq : Math.min(this.oldest, seq);
  }

  render(frame, { pending = false } = {}) {
    const mine = frame.author === this.me;
    const node = el("li", `message${mine ? " mine" : ""}${pending ? " pending" : ""}`);
    if (typeof frame.seq === "number") node.dataset.seq = String(frame.seq);
    if (frame.client_id) node.dataset.clientId = frame.client_id;
    node.dataset.author = String(frame.author);
    const head = el("p", "message-head");
    head.append(el("span", "author", mine ? `${frame.author_name} (you)` : frame.author_name));
    const time = el("time", "meta", clock(frame.ts));
    if (typeof frame.ts === "number") time.dateTime = new Date(frame.ts * 1000).toISOString();
    head.append(" ", time);
    node.append(head, el("p", "message-text", frame.text));
    if (pending) node.append(el("p", "message-state meta", "Sending…"));
    return node;
  }

  placeDivider(afterSeq) {
    this.divider?.remove();
    this.divider = null;
    let first = null;
    for (const [seq, node] of this.messages) {
      if (seq > afterSeq && Number(node.dataset.author) !== this.me) {
        if (first === null || seq < Number(first.dataset.seq)) first = node;
      }
    }
    if (first === null) return;
    const divider = el("li", "divider");
    divider.setAttribute("role", "separator");
    divider.append(el("span", null, "New messages"));
    this.list.insertBefore(divider, first);
    this.divider = divider;
  }

  // -- sending -------------------------------------------------------------------------

  sendFromComposer() {
    const text = this.input.value;
    if (!text.trim()) {
      this.showError("Write something first.");
      return;
    }
    if (text.length > this.maxLength) {
      this.showError(`A message may be at most ${this.maxLength} characters long.`);
      return;
    }
    this.showError(null);
    const clientId = newClientId();
    const frame = { client_id: clientId, author: this.me, author_name: this.meName, text };
    const node = this.render(frame, { pending: true });
    this.list.append(node);
    this.pending.set(clientId, { node, text, inFlight: false });
    this.input.value = "";
    this.lastTypingSent = 0; // our next keystroke is news again
    this.scrollToBottom();
    this.deliver(clientId);
  }

  /** Publish a pending message until it is acked, reusing its client id on every try. */
  async deliver(clientId) {
    const item = this.pending.get(clientId);
    if (!item || item.inFlight) return;
    item.inFlight = true;
    try {
      for (;;) {
        if (!this.pending.has(clientId)) return; // its event arrived (a replay)
        try {
          const ack = await this.client.send("publish", {
            stream: this.stream,
            type: "message",
            data: { text: item.text },
            client_id: clientId,
          });
          this.confirm(clientId, ack.seq);
          return;
        } catch (error) {
          if (FINAL_SEND_ERRORS.has(error.code)) {
            this.fail(clientId, error.message);
            return;
          }
          // "disconnected" or "timeout": the server may or may not have it; the same
          // client id makes the next try safe either way.
          item.node.querySelector(".message-state").textContent = "Waiting for the connection…";
          await sleep(RETRY_MS);
        }
      }
    } finally {
      item.inFlight = false;
    }
  }

  confirm(clientId, seq) {
    const item = this.pending.get(clientId);
    if (!item) return;
    this.pending.delete(clientId);
    if (this.messages.has(seq)) {
      item.node.remove(); // the event got here first
      return;
    }
    item.node.classList.remove("pending");
    item.node.querySelector(".message-state")?.remove();
    item.node.remove();
    this.place(item.node, seq);
    this.scheduleRead();
    this.renderSeen();
  }

  fail(clientId, message) {
    const item = this.pending.get(clientId);
    if (!item) return;
    this.pending.delete(clientId);
    item.node.remove();
    if (!this.input.value) this.input.value = item.text;
    this.showError(`Not sent: ${message}`);
  }

  showError(message) {
    this.error.textContent = message ?? "";
  }

  // -- typing --------------------------------------------------------------------------

  typed() {
    if (this.error.textContent) this.showError(null);
    const now = Date.now();
    if (!this.input.value.trim() || now - this.lastTypingSent < TYPING_EVERY_MS) return;
    if (this.client.state !== "connected") return; // stale by the time it would arrive
    this.lastTypingSent = now;
    this.client.send("typing", { stream: this.stream }).catch(() => {});
  }

  someoneTyping(frame) {
    if (frame.user === this.me) return;
    const previous = this.typists.get(frame.user);
    if (previous) clearTimeout(previous.timer);
    const seconds = typeof frame.expires === "number" ? frame.expires : this.typingTimeout ?? 6;
    const timer = setTimeout(() => this.clearTyping(frame.user), seconds * 1000);
    this.typists.set(frame.user, { name: frame.name, timer });
    this.renderTyping();
  }

  clearTyping(user) {
    const typist = this.typists.get(user);
    if (!typist) return;
    clearTimeout(typist.timer);
    this.typists.delete(user);
    this.renderTyping();
  }

  renderTyping() {
    const names = [...this.typists.values()].map((t) => t.name);
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length > 1 && names.length <= 3) text = `${listNames(names)} are typing…`;
    else if (names.length > 3) text = "Several people are typing…";
    if (this.typingNote.textContent !== text) this.typingNote.textContent = text;
  }

  // -- presence ------------------------------------------------------------------------

  setPresence(members) {
    this.present = new Map(members.map((m) => [m.user, m.name]));
    this.renderPresence();
  }

  joined(frame) {
    this.present.set(frame.user, frame.name);
    this.renderPresence();
  }

  left(frame) {
    this.present.delete(frame.user);
    this.clearTyping(frame.user);
    this.renderPresence();
  }

  renderPresence() {
    const people = [...this.present].sort((a, b) => a[1].localeCompare(b[1]));
    const items = people.map(([user, name]) => {
      const li = el("li", "person");
      li.dataset.user = String(user);
      const avatar = el("span", "avatar small", (name || "?").slice(0, 1).toUpperCase());
      avatar.setAttribute("aria-hidden", "true");
      li.append(avatar, el("span", "person-name", user === this.me ? `${name} (you)` : name));
      return li;
    });
    this.presenceList.replaceChildren(...items);
    this.presentCount.textContent = `(${people.length})`;
  }

  // -- read state ----------------------------------------------------------------------

  scheduleRead() {
    if (this.readTimer !== null) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = null;
      this.markRead();
    }, 300);
  }

  markRead() {
    if (document.hidden || this.newest <= this.readSent) return;
    if (this.client.state !== "connected") return; // the next `subscribed` tries again
    const upTo = this.newest;
    this.readSent = upTo;
    this.client.send("read", { stream: this.stream, up_to: upTo }).catch(() => {
      this.readSent = 0;
    });
  }

  receipt(frame) {
    this.receipts.set(frame.user, { name: frame.name, up_to: frame.up_to });
    this.renderSeen();
  }

  /** "Seen by bob": the others whose read position reaches the newest message. */
  renderSeen() {
    const names = [];
    for (const [user, r] of this.receipts) {
      if (user !== this.me && this.newest > 0 && r.up_to >= this.newest) names.push(r.name);
    }
    names.sort((a, b) => a.localeCompare(b));
    this.seenNote.textContent = names.length ? `Seen by ${listNames(names)}` : "";
  }

  // -- page helpers --------------------------------------------------------------------

  showConnection(state) {
    if (state === "connected") {
      this.wasConnected = true;
      this.say(null);
    } else if (this.wasConnected) {
      this.say("Reconnecting… messages you send now go out when the connection is back.");
    }
  }

  say(text) {
    this.status.hidden = !text;
    this.status.textContent = text ?? "";
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }
}

const root = document.getElementById("chat");
if (root) {
  const room = new Room(root, sharedClient());
  window.beaconRoom = room; // for the curious, in the console
  room.start();
}
