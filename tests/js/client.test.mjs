import assert from "node:assert/strict";
import { test } from "node:test";

import { BeaconClient, BeaconError } from "../../src/beacon/static/beacon/beacon.js";
import { FakeClock, FakeServer, FakeWindow, flush, sequence } from "./fakes.mjs";

/** A client wired to a fake server, a manual clock and a fake window. */
function setup({ random = () => 0.5, heartbeat = 25, client: extra = {} } = {}) {
  const clock = new FakeClock();
  const server = new FakeServer({ heartbeat });
  const win = new FakeWindow();
  const client = new BeaconClient({
    url: "ws://127.0.0.1:8000/ws/",
    WebSocket: server.WebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.read,
    random,
    window: win,
    ...extra,
  });
  const states = [];
  const retries = [];
  client.on("state", (s) => states.push(s));
  client.on("retry", (r) => retries.push(r));
  return { clock, server, win, client, states, retries };
}

/** Connect and wait for the welcome. */
async function connected(options) {
  const env = setup(options);
  env.client.connect();
  await flush();
  assert.equal(env.client.state, "connected");
  return env;
}

const seqs = (frames) => frames.map((f) => f.seq);

test("connect goes disconnected → connecting → connected on welcome", async () => {
  const { client, server, states } = setup();
  assert.equal(client.state, "disconnected");
  client.connect();
  assert.equal(client.state, "connecting");
  assert.equal(server.sockets.length, 1);
  assert.equal(server.socket.url, "ws://127.0.0.1:8000/ws/");
  await flush();
  assert.deepEqual(
    states.map((s) => [s.previous, s.state]),
    [
      ["disconnected", "connecting"],
      ["connecting", "connected"],
    ],
  );
  assert.equal(client.user, 7);
  assert.equal(client.heartbeat, 25);
});

test("one socket carries many subscriptions, each sent after the welcome", async () => {
  const { client, server } = setup();
  client.subscribe("user:7");
  client.subscribe("room:1");
  assert.equal(client.subscribe("room:1"), client.subscriptions.get("room:1"), "one per stream");
  client.connect();
  await flush();
  assert.equal(server.sockets.length, 1);
  assert.deepEqual(
    server.socket.sent.map((f) => [f.op, f.stream]),
    [
      ["subscribe", "user:7"],
      ["subscribe", "room:1"],
    ],
  );
  assert.equal(client.subscriptions.get("user:7").status, "subscribed");
});

test("events reach the subscription and the client by type, once each", async () => {
  const { client, server } = await connected();
  const sub = client.subscribe("user:7");
  await flush();
  const onSub = [];
  const onClient = [];
  const all = [];
  sub.on("notification", (f) => onSub.push(f));
  client.on("notification", (f) => onClient.push(f));
  client.on("event", (f) => all.push(f.type));
  server.publish("user:7", "notification", { message: "hi", unread: 1 });
  server.publish("user:7", "read", { up_to: 1, unread: 0 });
  server.resend("user:7", 1);
  assert.deepEqual(seqs(onSub), [1]);
  assert.deepEqual(seqs(onClient), [1]);
  assert.equal(onSub[0].message, "hi");
  assert.deepEqual(all, ["notification", "read"]);
  assert.equal(client.dropped, 1);
});

test("a dropped socket reconnects after a full-jitter delay and resumes without duplicates", async () => {
  const { client, server, clock, retries } = await connected({ random: () => 0.5 });
  const sub = client.subscribe("user:7");
  const seen = [];
  sub.on("notification", (f) => seen.push(f));
  await flush();
  server.publish("user:7", "notification", { message: "one" });

  server.drop(1006);
  assert.equal(client.state, "connecting");
  assert.deepEqual(
    retries.map((r) => [r.delay, r.code]),
    [[250, 1006]],
  );
  // Sent while the page was away: stored, to be replayed.
  server.publish("user:7", "notification", { message: "two" });
  server.publish("user:7", "notification", { message: "three" });
  clock.advance(249);
  assert.equal(server.sockets.length, 1, "not before the delay");
  clock.advance(1);
  assert.equal(server.sockets.length, 2);
  await flush();
  assert.equal(client.state, "connected");
  const resume = server.socket.sent.find((f) => f.op === "subscribe");
  assert.deepEqual([resume.stream, resume.epoch, resume.since], ["user:7", "e1", 1]);
  // An overlapping replay of what the page already has is dropped.
  server.resend("user:7", 2);
  server.resend("user:7", 1);
  assert.deepEqual(
    seen.map((f) => f.message),
    ["one", "two", "three"],
  );
});

test("the delay grows while the server stays down, and resets once connected", async () => {
  const { client, server, clock, retries } = await connected({ random: () => 0.999999 });
  server.accepting = false;
  server.drop(1006);
  for (let i = 0; i < 7; i++) {
    clock.advance(retries.at(-1).delay);
    await flush();
  }
  assert.deepEqual(
    retries.map((r) => r.delay),
    [499, 999, 1999, 3999, 7999, 15999, 19999, 19999],
  );
  server.accepting = true;
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(client.state, "connected");
  assert.equal(client.attempt, 0);
  server.drop(1006);
  assert.equal(retries.at(-1).delay, 499);
});

test("reconnect delays differ from one attempt to the next (jitter, not a fixed delay)", async () => {
  const { server, clock, retries } = await connected({ random: sequence(0.9, 0.1, 0.7, 0.3) });
  server.accepting = false;
  server.drop(1006);
  for (let i = 0; i < 3; i++) {
    clock.advance(retries.at(-1).delay);
    await flush();
  }
  assert.deepEqual(
    retries.map((r) => r.delay),
    [450, 100, 1400, 1200],
  );
});

test("final close codes stop for good and say why", async () => {
  for (const [code, why] of [
    [4001, "not signed in"],
    [4003, "not allowed"],
  ]) {
    const { client, server, clock, states } = await connected();
    server.drop(code);
    assert.equal(client.state, "disconnected");
    assert.deepEqual(
      [states.at(-1).code, states.at(-1).reason, states.at(-1).final],
      [code, why, true],
    );
    clock.advance(10 * 60 * 1000);
    await flush();
    assert.equal(server.sockets.length, 1, "no reconnect after a final code");
    await assert.rejects(client.send("ping"), { code: "closed" });
  }
});

test("a close reason from the server is passed on", async () => {
  const { client, server, states } = await connected();
  server.drop(4001, server.socket, "session expired");
  assert.equal(client.state, "disconnected");
  assert.equal(states.at(-1).reason, "session expired");
});

test("other codes (restart, too slow, internal) reconnect", async () => {
  for (const code of [1000, 1006, 1011, 4009, 4011, 4012, 4013]) {
    const { client, server, clock, retries } = await connected();
    server.drop(code);
    assert.equal(client.state, "connecting", `code ${code}`);
    clock.advance(retries.at(-1).delay);
    await flush();
    assert.equal(client.state, "connected", `code ${code}`);
  }
});

test("after a rate-limit close the backoff starts higher", async () => {
  const { server, retries } = await connected({ random: () => 0.999999 });
  server.drop(4008);
  assert.equal(retries.at(-1).delay, 3999);
});

test("two missed heartbeats count as a dead connection; pings keep it alive", async () => {
  const { client, server, clock, states } = await connected({ heartbeat: 10 });
  for (let i = 0; i < 5; i++) {
    clock.advance(10000);
    server.toClient(server.socket, { type: "ping" });
  }
  assert.equal(client.state, "connected");
  clock.advance(20999);
  assert.equal(client.state, "connected");
  clock.advance(1);
  assert.equal(client.state, "connecting");
  assert.equal(states.at(-1).reason, "no heartbeat from the server");
  assert.equal(server.sockets[0].closedWith, 1000, "the dead socket is closed");
});

test("the browser's online event retries at once instead of waiting", async () => {
  const { client, server, win } = await connected({ random: () => 0.999999 });
  server.accepting = false;
  server.drop(1006);
  assert.equal(server.sockets.length, 1);
  server.accepting = true;
  win.fire("online");
  assert.equal(server.sockets.length, 2);
  await flush();
  assert.equal(client.state, "connected");
});

test("reconnectNow() retries at once while waiting, and is harmless otherwise", async () => {
  const { client, server } = await connected({ random: () => 0.999999 });
  client.reconnectNow();
  assert.equal(server.sockets.length, 1);
  server.drop(1006);
  client.reconnectNow();
  assert.equal(server.sockets.length, 2);
  client.reconnectNow(); // a socket is already opening
  assert.equal(server.sockets.length, 2);
  await flush();
  assert.equal(client.state, "connected");
});

test("online while connected does nothing", async () => {
  const { server, win } = await connected();
  win.fire("online");
  assert.equal(server.sockets.length, 1);
});

test("a handshake that never completes times out and retries", async () => {
  const { client, server, clock } = setup({ client: { connectTimeout: 5000 } });
  server.autoWelcome = false;
  client.connect();
  await flush();
  clock.advance(5000);
  assert.equal(client.state, "connecting");
  assert.equal(server.sockets[0].closedWith, 1000);
  server.autoWelcome = true;
  clock.advance(clock.pending()[0]);
  await flush();
  assert.equal(client.state, "connected");
});

test("history that does not reach back is surfaced with its reason", async () => {
  const { client, server } = setup();
  server.publish("user:7", "notification", { message: "old" });
  server.publish("user:7", "notification", { message: "newer" });
  server.firstKept.set("user:7", 3);
  const sub = client.subscribe("user:7", { epoch: "e1", since: 0 });
  const outcomes = [];
  const delivered = [];
  sub.on("subscribed", (info) => outcomes.push(info));
  sub.on("notification", (f) => delivered.push(f));
  client.connect();
  await flush();
  assert.deepEqual(
    outcomes.map((o) => [o.recovered, o.reason, o.resumed, o.seq]),
    [[false, "retention", true, 2]],
  );
  assert.deepEqual(delivered, [], "nothing is replayed");
  server.publish("user:7", "notification", { message: "live" });
  assert.deepEqual(seqs(delivered), [3]);
});

test("a changed epoch is surfaced, then the new history is followed", async () => {
  const { client, server, clock, retries } = await connected();
  const sub = client.subscribe("user:7");
  const outcomes = [];
  const delivered = [];
  sub.on("subscribed", (info) => outcomes.push([info.recovered, info.reason, info.epoch]));
  sub.on("notification", (f) => delivered.push(f.message));
  await flush();
  server.publish("user:7", "notification", { message: "a" });
  server.drop(1006);
  server.streams.set("user:7", { epoch: "e2", events: [] });
  clock.advance(retries.at(-1).delay);
  await flush();
  server.publish("user:7", "notification", { message: "b" });
  assert.deepEqual(outcomes, [
    [true, null, "e1"],
    [false, "epoch_changed", "e2"],
  ]);
  assert.deepEqual(delivered, ["a", "b"]);
});

test("a refused subscription fails with the server's error and is not retried", async () => {
  const { client, server, clock, retries } = await connected();
  server.refuse.add("user:8");
  const sub = client.subscribe("user:8");
  const errors = [];
  sub.on("error", (e) => errors.push(e));
  await flush();
  assert.equal(sub.status, "failed");
  assert.equal(errors[0].code, "forbidden");
  assert.ok(errors[0] instanceof BeaconError);
  assert.equal(client.subscriptions.has("user:8"), false);
  server.drop(1006);
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(server.socket.sent.filter((f) => f.op === "subscribe").length, 0);
});

test("send resolves with the reply whose ref is its id", async () => {
  const { client, server } = await connected();
  client.subscribe("room:1");
  const ack = await client.send("publish", { stream: "room:1", type: "message", data: { text: "hi" }, client_id: "c1" });
  assert.deepEqual([ack.type, ack.op, ack.seq, ack.client_id], ["ack", "publish", 1, "c1"]);
  const frame = server.socket.sent.at(-1);
  assert.equal(frame.op, "publish");
  assert.equal(ack.ref, frame.id);
  const pong = await client.send("ping");
  assert.equal(pong.type, "pong");
  const read = await client.send("read", { stream: "user:7", up_to: 4 });
  assert.deepEqual([read.op, read.stream], ["read", "user:7"]);
});

test("send rejects with the server's error code", async () => {
  const { client } = await connected();
  await assert.rejects(client.send("frobnicate"), (error) => {
    assert.ok(error instanceof BeaconError);
    assert.equal(error.code, "unknown_op");
    return true;
  });
});

test("a request sent on a socket that drops is rejected as disconnected", async () => {
  const { client, server } = await connected();
  const pending = client.send("read", { stream: "user:7", up_to: 1 });
  server.drop(1006); // before the server could answer
  await assert.rejects(pending, { code: "disconnected" });
});

test("requests made while reconnecting wait and go out after the resubscribe", async () => {
  const { client, server, clock, retries } = await connected();
  client.subscribe("room:1");
  server.drop(1006);
  const ack = client.send("publish", { stream: "room:1", type: "message", data: {}, client_id: "x" });
  const typing = client.send("typing", { stream: "room:1" });
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.deepEqual(
    server.socket.sent.map((f) => f.op),
    ["subscribe", "publish", "typing"],
  );
  assert.equal((await ack).seq, 1);
  assert.equal((await typing).op, "typing");
});

test("a request with no reply times out", async () => {
  const { client, server, clock } = await connected();
  server._handle = () => {};
  const pending = client.send("read", { stream: "user:7", up_to: 1 }, { timeout: 3000 });
  clock.advance(3000);
  await assert.rejects(pending, { code: "timeout" });
});

test("unsubscribe stops delivery and is not resumed", async () => {
  const { client, server, clock, retries } = await connected();
  const sub = client.subscribe("room:1");
  const seen = [];
  sub.on("event", (f) => seen.push(f.seq));
  await flush();
  server.publish("room:1", "message");
  const reply = await sub.unsubscribe();
  assert.equal(reply.type, "unsubscribed");
  assert.equal(sub.status, "unsubscribed");
  server.socket.subscribed.add("room:1"); // a frame already in flight
  server.publish("room:1", "message");
  assert.deepEqual(seen, [1]);
  server.drop(1006);
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(server.socket.sent.filter((f) => f.op === "subscribe").length, 0);
});

test("ephemeral events are delivered every time, without touching the resume point", async () => {
  const { client, server } = await connected();
  const sub = client.subscribe("room:1");
  const typing = [];
  sub.on("typing", (f) => typing.push(f.user));
  await flush();
  server.ephemeral("room:1", "typing", { user: 3 });
  server.ephemeral("room:1", "typing", { user: 3 });
  assert.deepEqual(typing, [3, 3]);
  assert.equal(sub.last, 0);
});

test("a failing handler does not stop the others or the client", async () => {
  const { client, server } = await connected();
  const sub = client.subscribe("user:7");
  await flush();
  const seen = [];
  const original = console.error;
  console.error = () => {};
  try {
    sub.on("notification", () => {
      throw new Error("page bug");
    });
    sub.on("notification", (f) => seen.push(f.seq));
    server.publish("user:7", "notification");
    server.publish("user:7", "notification");
  } finally {
    console.error = original;
  }
  assert.deepEqual(seen, [1, 2]);
  assert.equal(client.state, "connected");
});

test("disconnect() stops without reconnecting, and connect() starts again", async () => {
  const { client, server, clock, states } = await connected();
  client.disconnect();
  assert.equal(client.state, "disconnected");
  assert.equal(states.at(-1).final, false);
  clock.advance(60000);
  assert.equal(server.sockets.length, 1);
  client.connect();
  await flush();
  assert.equal(client.state, "connected");
});

test("frames that are not JSON objects are ignored", async () => {
  const { client, server } = await connected();
  server.socket.onmessage({ data: "not json" });
  server.socket.onmessage({ data: "42" });
  server.socket.onmessage({ data: "null" });
  assert.equal(client.state, "connected");
});

test("an epoch change announced under a live subscription is surfaced and followed", async () => {
  const { client, server } = await connected();
  const sub = client.subscribe("user:7");
  const outcomes = [];
  const delivered = [];
  sub.on("subscribed", (info) => outcomes.push([info.recovered, info.reason, info.epoch, info.seq]));
  sub.on("notification", (f) => delivered.push([f.epoch, f.seq]));
  await flush();
  server.publish("user:7", "notification");
  server.publish("user:7", "notification");
  // The stream is deleted and recreated; the server announces it (no ref), then goes on.
  server.streams.set("user:7", { epoch: "e2", events: [] });
  server.publish("user:7", "notification"); // e2 seq 1: the server drops it and says:
  server.toClient(server.socket, {
    type: "subscribed", stream: "user:7", epoch: "e2", seq: 1, recovered: false, reason: "epoch_changed",
  });
  server.publish("user:7", "notification"); // e2 seq 2
  assert.deepEqual(outcomes, [
    [true, null, "e1", 0],
    [false, "epoch_changed", "e2", 1],
  ]);
  assert.deepEqual(delivered, [["e1", 1], ["e1", 2], ["e2", 2]]);
  assert.equal(sub.epoch, "e2");
});

test("an unannounced event of another epoch makes the client resubscribe, not drop or splice", async () => {
  const { client, server } = await connected();
  const sub = client.subscribe("user:7");
  const outcomes = [];
  const delivered = [];
  sub.on("subscribed", (info) => outcomes.push([info.recovered, info.reason, info.epoch]));
  sub.on("notification", (f) => delivered.push([f.epoch, f.seq]));
  await flush();
  for (let i = 0; i < 3; i++) server.publish("user:7", "notification");
  server.streams.set("user:7", { epoch: "e2", events: [] });
  server.publish("user:7", "notification"); // e2 seq 1, with no announcement
  await flush();
  const ops = server.socket.sent.map((f) => [f.op, f.epoch, f.since]);
  assert.deepEqual(ops.slice(-2), [["unsubscribe", undefined, undefined], ["subscribe", "e1", 3]]);
  assert.deepEqual(outcomes.at(-1), [false, "epoch_changed", "e2"]);
  server.publish("user:7", "notification"); // e2 seq 2
  assert.deepEqual(delivered, [["e1", 1], ["e1", 2], ["e1", 3], ["e2", 2]]);
});
