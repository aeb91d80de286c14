import assert from "node:assert/strict";
import { test } from "node:test";

import { BeaconClient, REFRESH_CLOSE_CODE } from "../../src/beacon/static/beacon/beacon.js";
import { FakeClock, FakeServer, FakeWindow, flush } from "./fakes.mjs";

function setup(extra = {}) {
  const clock = new FakeClock();
  const server = new FakeServer();
  const client = new BeaconClient({
    url: "wss://beacon.example/ws/",
    WebSocket: server.WebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.read,
    random: () => 0.5,
    window: new FakeWindow(),
    ...extra,
  });
  const retries = [];
  const states = [];
  client.on("retry", (r) => retries.push(r));
  client.on("state", (s) => states.push(s));
  return { clock, server, client, retries, states };
}

test("getTicket() is asked before every connection and its ticket goes in the URL", async () => {
  const tickets = ["t-1", "t/2+"];
  const { client, server, clock, retries } = setup({ getTicket: async () => tickets.shift() });
  client.connect();
  assert.equal(server.sockets.length, 0, "no socket before the ticket");
  await flush();
  assert.equal(server.socket.url, "wss://beacon.example/ws/?ticket=t-1");
  assert.equal(client.state, "connected");
  server.drop(1006);
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(server.socket.url, "wss://beacon.example/ws/?ticket=t%2F2%2B");
  assert.equal(client.state, "connected");
});

test("a URL with a query gets the ticket appended; an object answer works too", async () => {
  const { client, server } = setup({
    url: "wss://beacon.example/ws/notifications/?epoch=e1&since=3",
    getTicket: async () => ({ ticket: "abc", expires_in: 30 }),
  });
  client.connect();
  await flush();
  assert.equal(server.socket.url, "wss://beacon.example/ws/notifications/?epoch=e1&since=3&ticket=abc");
});

test("a failing getTicket() backs off and tries again", async () => {
  let calls = 0;
  const { client, server, clock, retries } = setup({
    getTicket: async () => {
      calls += 1;
      if (calls === 1) throw new Error("offline");
      return "t";
    },
  });
  client.connect();
  await flush();
  assert.equal(server.sockets.length, 0);
  assert.equal(client.state, "connecting");
  assert.match(retries.at(-1).reason, /could not get a ticket: offline/);
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(calls, 2);
  assert.equal(client.state, "connected");
});

test("disconnect() while a ticket is on its way opens no socket", async () => {
  let answer;
  const { client, server } = setup({ getTicket: () => new Promise((r) => (answer = r)) });
  client.connect();
  await flush(); // getTicket() was called and has not answered
  client.disconnect();
  answer("late");
  await flush();
  assert.equal(server.sockets.length, 0);
  assert.equal(client.state, "disconnected");
});

test("the refresh code reconnects soon with a new credential; it is not final", async () => {
  const asked = [];
  const { client, server, clock, retries, states } = setup({
    random: () => 0.999999,
    getTicket: async () => {
      asked.push(asked.length);
      return `t${asked.length}`;
    },
  });
  client.connect();
  await flush();
  for (let i = 0; i < 3; i++) {
    server.drop(1006); // failures first: the backoff grows
    clock.advance(retries.at(-1).delay);
    await flush();
  }
  server.drop(REFRESH_CLOSE_CODE);
  assert.equal(REFRESH_CLOSE_CODE, 4401);
  assert.equal(states.at(-1).final, false);
  assert.equal(states.at(-1).reason, "credential expired");
  assert.ok(retries.at(-1).delay < 500, `delay ${retries.at(-1).delay}`);
  clock.advance(retries.at(-1).delay);
  await flush();
  assert.equal(client.state, "connected");
  assert.equal(server.socket.url, "wss://beacon.example/ws/?ticket=t5");
});

test("too many connections (4429) backs off long", async () => {
  const { client, server, retries } = setup({ random: () => 0.999999 });
  client.connect();
  await flush();
  server.drop(4429);
  assert.equal(client.state, "connecting");
  assert.equal(retries.at(-1).delay, 15999);
  assert.equal(retries.at(-1).reason, "too many connections");
});

test("a subscription the server revokes fails and is not resubscribed", async () => {
  const { client, server, clock, retries } = setup();
  client.connect();
  await flush();
  const sub = client.subscribe("room:1");
  await flush();
  const errors = [];
  sub.on("error", (e) => errors.push(e));
  server.toClient(server.socket, { type: "unsubscribed", stream: "room:1", reason: "forbidden" });
  assert.equal(sub.status, "failed");
  assert.equal(errors[0].code, "forbidden");
  assert.equal(client.subscriptions.has("room:1"), false);
  server.drop(1006);
  clock.advance(retries.at(-1).delay);
  await flush();
  const subscribes = server.socket.sent.filter((f) => f.op === "subscribe");
  assert.deepEqual(subscribes, []);
});
