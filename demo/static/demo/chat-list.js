/**
 * The room list's live unread counts.
 *
 * The list subscribes to the user's own room-list stream `rooms:{id}` instead of every
 * room: `subscribed.state.rooms` is the whole list (so a reconnect starts right), and
 * each new message, read or membership change in any of the user's rooms arrives as
 * one small ephemeral `unread` (or `removed`) event. Counts are absolute, and both
 * `last_seq` and `last_read` only grow, so taking the larger of each makes events that
 * arrive out of order harmless.
 */
import { sharedClient } from "beacon";

const list = document.getElementById("room-list");
const empty = document.getElementById("room-list-empty");
const status = document.getElementById("room-list-status");
const rooms = new Map(); // room id -> {last_seq, last_read}

function roomUrl(id) {
  return list.dataset.roomUrl.replace(/\/0\/$/, `/${id}/`);
}

function row(entry) {
  let li = list.querySelector(`li[data-room="${Number(entry.room)}"]`);
  if (li) return li;
  li = document.createElement("li");
  li.dataset.room = String(entry.room);
  const link = document.createElement("a");
  link.className = "room-link";
  link.href = roomUrl(entry.room);
  const name = document.createElement("span");
  name.className = "room-name";
  name.textContent = entry.name;
  link.append(name);
  if (entry.private) {
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = "private";
    link.append(" ", tag);
  }
  const badge = document.createElement("span");
  badge.className = "unread";
  const number = document.createElement("span");
  number.className = "unread-number";
  const hidden = document.createElement("span");
  hidden.className = "visually-hidden";
  hidden.textContent = " unread";
  badge.append(number, hidden);
  li.append(link, badge);
  list.append(li);
  document.querySelector(`#public-rooms li[data-room="${Number(entry.room)}"]`)?.remove();
  return li;
}

function apply(entry, { announce }) {
  const known = rooms.get(entry.room) ?? { last_seq: 0, last_read: 0 };
  const seq = Math.max(known.last_seq, entry.last_seq ?? 0);
  const lastRead = Math.max(known.last_read, entry.last_read ?? 0);
  rooms.set(entry.room, { last_seq: seq, last_read: lastRead });
  const unread = Math.max(0, seq - lastRead);
  const li = row(entry);
  const badge = li.querySelector(".unread");
  const before = Number(badge.dataset.count || 0);
  badge.dataset.count = String(unread);
  li.querySelector(".unread-number").textContent = String(unread);
  li.classList.toggle("has-unread", unread > 0);
  empty.hidden = list.children.length > 0;
  if (announce && unread > before) status.textContent = `New message in ${entry.name}`;
}

if (list) {
  const sub = sharedClient().subscribe(list.dataset.stream);
  sub.on("subscribed", (info) => {
    for (const entry of info.state?.rooms ?? []) apply(entry, { announce: false });
  });
  sub.on("unread", (frame) => apply(frame, { announce: true }));
  sub.on("removed", (frame) => {
    rooms.delete(frame.room);
    list.querySelector(`li[data-room="${Number(frame.room)}"]`)?.remove();
    empty.hidden = list.children.length > 0;
  });
}
