/**
 * The demo's live parts: the bell with its unread badge and list, toasts, and the
 * connection indicator. Built on Beacon's client (`beacon` in the page's import map).
 *
 * How the list stays right:
 * 1. `GET /beacon/notifications/` gives the newest notifications and where the stream
 *    stands (`epoch`, `seq`).
 * 2. The page subscribes to `user:{id}` resuming from there, so whatever happened
 *    between the two arrives as a replay; after any reconnect the client resumes again.
 * 3. Items are kept by seq, so an overlap never shows twice; the unread count comes
 *    from the newest frame (by seq) that carries one.
 * 4. If the server cannot replay (`recovered: false`), the list is loaded again.
 *
 * Every piece of user text goes into the page with `textContent`, never as HTML.
 */
import { sharedClient } from "beacon";
import { el, sleep } from "./dom.js";

const MAX_ITEMS = 50;
const TOAST_MS = 5000;
const ICON = new URL("beacon.svg", import.meta.url).href;

/**
 * Only links to this site: a notification's `url` is data, not trusted. The browser's
 * own URL parser decides (`/\evil.example/` and `/<TAB>/evil.example/` are
 * `//evil.example/` to it), and the link is the parsed, same-origin URL.
 */
function safePath(url) {
  if (typeof url !== "string" || url === "") return null;
  let parsed;
  try {
    parsed = new URL(url, location.origin);
  } catch {
    return null;
  }
  return parsed.origin === location.origin ? parsed.pathname + parsed.search + parsed.hash : null;
}

function timeAgo(ts) {
  if (typeof ts !== "number") return "";
  const seconds = Math.max(0, Date.now() / 1000 - ts);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(ts * 1000).toLocaleDateString(undefined, { day: "numeric", month: "short" });
}

function csrfToken() {
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

class Bell {
  constructor(root, client) {
    this.client = client;
    this.root = root;
    this.listUrl = root.dataset.listUrl;
    this.readUrl = root.dataset.readUrl;
    this.button = root.querySelector("#bell");
    this.badge = root.querySelector("#unread-count");
    this.panel = root.querySelector("#notification-panel");
    this.list = root.querySelector("#notification-list");
    this.empty = root.querySelector("#notification-empty");
    this.problemNote = root.querySelector("#notification-problem");
    this.markAll = root.querySelector("#mark-all-read");
    this.toasts = document.getElementById("toasts");
    this.baseTitle = document.title;
    this.items = new Map(); // seq -> notification frame (+ `read`)
    this.recentReads = []; // read events, re-applied after a reload
    this.unread = 0;
    this.unreadSeq = -1; // seq of the frame the unread count came from
    this.stream = null;
    this.sub = null;
    this.loaded = false;
    this.fresh = new Set();
  }

  start() {
    this.button.addEventListener("click", (event) => {
      event.stopPropagation();
      this.toggle();
    });
    this.panel.addEventListener("click", (event) => event.stopPropagation());
    document.addEventListener("click", () => this.toggle(false));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggle(false);
    });
    this.markAll.addEventListener("click", () => this.markAllRead());
    setInterval(() => this.render(), 30000); // keep "n min ago" current
    this.init();
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
  }

  async init() {
    const data = await this.fetchList();
    if (data === null) return;
    this.stream = data.stream;
    this.applyList(data);
    // Resume from where the list stands: the server lists nothing newer than `seq`, so
    // whatever comes after it arrives on the stream, replayed or live.
    this.sub = this.client.subscribe(this.stream, { epoch: data.epoch, since: data.seq });
    this.sub.on("subscribed", (info) => {
      this.root.dataset.live = "true"; // the stream is followed: events arrive from here on
      if (typeof info.state?.unread === "number") this.setUnread(info.state.unread, info.seq);
      if (!info.recovered) this.reload(info.reason);
    });
    this.client.on("state", ({ state }) => {
      if (state !== "connected") this.root.dataset.live = "false";
    });
    this.sub.on("notification", (frame) => this.add(frame));
    this.sub.on("read", (frame) => this.applyRead(frame));
    this.sub.on("error", (error) => this.problem(`Live updates refused: ${error.message}`));
    this.loaded = true;
  }

  async fetchList() {
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(`${this.listUrl}?limit=${MAX_ITEMS}`, {
          headers: { Accept: "application/json" },
        });
        if (response.status === 401) {
          this.problem("You are signed out. Sign in again to see your notifications.");
          return null;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        this.problem(null);
        return await response.json();
      } catch {
        this.problem("Could not load notifications; trying again…");
        await sleep(500 + Math.random() * Math.min(20000, 1000 * 2 ** attempt));
      }
    }
  }

  /** The server could not replay what we missed: load the list again. */
  async reload(reason) {
    const data = await this.fetchList();
    if (data !== null) this.applyList(data);
    console.info(`beacon demo: notification list reloaded (${reason})`);
  }

  applyList(data) {
    const items = new Map();
    for (const item of data.items) items.set(item.seq, item);
    // Anything that arrived live after the list was read stays.
    for (const [seq, item] of this.items) if (seq > data.seq) items.set(seq, item);
    this.items = items;
    for (const read of this.recentReads) if (read.seq > data.seq) this.markRead(read);
    this.trim();
    this.setUnread(data.unread, data.seq);
    this.render();
  }

  add(frame) {
    if (this.items.has(frame.seq)) return;
    this.items.set(frame.seq, { ...frame, read: false });
    this.trim();
    this.fresh.add(frame.seq);
    this.setUnread(frame.unread, frame.seq);
    this.render();
    this.toast(frame);
  }

  applyRead(frame) {
    this.recentReads = [...this.recentReads.slice(-19), frame];
    this.markRead(frame);
    this.setUnread(frame.unread, frame.seq);
    this.render();
  }

  markRead(frame) {
    if (typeof frame.up_to === "number") {
      for (const [seq, item] of this.items) if (seq <= frame.up_to) item.read = true;
    } else if (typeof frame.read_seq === "number" && this.items.has(frame.read_seq)) {
      this.items.get(frame.read_seq).read = true;
    }
  }

  trim() {
    const seqs = [...this.items.keys()].sort((a, b) => b - a);
    for (const seq of seqs.slice(MAX_ITEMS)) this.items.delete(seq);
  }

  setUnread(count, seq) {
    if (typeof count !== "number" || typeof seq !== "number" || seq < this.unreadSeq) return;
    const grew = count > this.unread;
    this.unread = count;
    this.unreadSeq = seq;
    this.badge.textContent = String(count);
    this.badge.dataset.count = String(count);
    this.markAll.disabled = count === 0;
    document.title = count ? `(${count}) ${this.baseTitle}` : this.baseTitle;
    if (grew) {
      this.badge.classList.remove("bump");
      void this.badge.offsetWidth; // restart the animation
      this.badge.classList.add("bump");
    }
  }

  render() {
    const rows = [...this.items.values()].sort((a, b) => b.seq - a.seq).map((item) => this.row(item));
    this.list.replaceChildren(...rows);
    this.empty.hidden = rows.length > 0;
    this.fresh.clear();
  }

  row(item) {
    const li = el("li");
    li.dataset.seq = String(item.seq);
    const path = safePath(item.url);
    const body = el(path ? "a" : "div", `notification${item.read ? "" : " unread"}`);
    if (path) body.href = path;
    if (!item.read) {
      body.title = "Mark as read";
      body.addEventListener("click", () => this.readOne(item.seq));
    }
    if (this.fresh.has(item.seq)) body.classList.add("fresh");
    body.append(el("p", "notification-message", item.message ?? ""));
    const meta = [item.sender ? `from ${item.sender}` : null, timeAgo(item.ts)].filter(Boolean);
    body.append(el("p", "notification-meta", meta.join(" · ")));
    li.append(body);
    return li;
  }

  toast(frame) {
    if (!this.loaded || !this.toasts) return;
    const toast = el("div", "toast");
    const icon = el("img");
    icon.src = ICON;
    icon.alt = "";
    icon.width = icon.height = 22;
    const text = el("div");
    text.append(el("p", "", frame.message ?? ""));
    if (frame.sender) text.append(el("p", "toast-meta", `from ${frame.sender}`));
    toast.append(icon, text);
    this.toasts.append(toast);
    while (this.toasts.children.length > 3) this.toasts.firstElementChild.remove();
    setTimeout(() => {
      toast.classList.add("leaving");
      setTimeout(() => toast.remove(), 400);
    }, TOAST_MS);
  }

  problem(text) {
    this.problemNote.hidden = !text;
    this.problemNote.textContent = text ?? "";
  }

  async markAllRead() {
    const upTo = Math.max(this.sub?.last ?? 0, ...this.items.keys());
    this.markAll.disabled = true;
    try {
      if (this.client.state !== "connected") throw new Error("offline");
      await this.client.send("read", { stream: this.stream, up_to: upTo });
      // The `read` event that follows on the stream updates every tab, this one too.
    } catch {
      try {
        await this.postRead(upTo);
      } catch {
        this.problem("Could not mark as read; try again in a moment.");
        this.markAll.disabled = this.unread === 0;
      }
    }
  }

  /** Mark one notification read; `keepalive` lets it finish while a link navigates away. */
  async readOne(seq) {
    try {
      const response = await fetch(this.readUrl, {
        method: "POST",
        keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ seq }),
      });
      if (!response.ok) return;
      const body = await response.json();
      if (typeof body.seq === "number") this.applyRead({ read_seq: seq, unread: body.unread, seq: body.seq });
    } catch {
      // navigating away, or offline: the item stays unread, nothing is lost
    }
  }

  async postRead(upTo) {
    const response = await fetch(this.readUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ up_to: upTo }),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    if (typeof body.seq === "number") this.applyRead({ up_to: upTo, unread: body.unread, seq: body.seq });
  }
}

/** connected / reconnecting in N s / offline, from the client's state and retry events. */
class Indicator {
  constructor(node, client) {
    this.node = node;
    this.text = node.querySelector(".connection-text");
    this.client = client;
    this.retryAt = 0;
    this.ticker = null;
    client.on("state", () => this.render());
    client.on("retry", (retry) => {
      this.retryAt = retry.at;
      this.render();
    });
    window.addEventListener("offline", () => this.render());
    window.addEventListener("online", () => this.render());
    // While waiting to reconnect, a click tries at once.
    node.addEventListener("click", () => client.reconnectNow());
    this.render();
  }

  render() {
    const { state, lastClose } = this.client;
    const wait = Math.ceil((this.retryAt - Date.now()) / 1000);
    let shown;
    let text;
    let title = "";
    if (state === "connected") {
      [shown, text] = ["connected", "Connected"];
      title = "Live: new notifications appear as they happen";
    } else if (state === "disconnected") {
      [shown, text] = ["offline", lastClose?.reason ? `Offline: ${lastClose.reason}` : "Offline"];
    } else if (!navigator.onLine) {
      [shown, text] = ["offline", "Offline"];
      title = "No network: reconnecting when it is back";
    } else if (wait > 0) {
      [shown, text] = ["reconnecting", `Reconnecting in ${wait} s`];
      title = "Click to retry now";
    } else {
      [shown, text] = ["connecting", "Connecting…"];
    }
    this.node.dataset.state = shown;
    this.text.textContent = text;
    this.node.title = title;
    const ticking = state === "connecting" && wait > 0;
    if (ticking && this.ticker === null) this.ticker = setInterval(() => this.render(), 1000);
    if (!ticking && this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }
}

const root = document.getElementById("bell-root");
if (root) {
  const client = sharedClient();
  const indicator = document.getElementById("connection");
  if (indicator) new Indicator(indicator, client);
  new Bell(root, client).start();
}
