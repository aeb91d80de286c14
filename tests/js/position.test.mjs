import assert from "node:assert/strict";
import { test } from "node:test";

import { StreamPosition } from "../../src/beacon/static/beacon/beacon.js";

const event = (seq, epoch = "e1") => ({ type: "notification", stream: "user:7", seq, epoch });

test("a fresh position subscribes live, without a resume point", () => {
  assert.deepEqual(new StreamPosition().resumeFields(), {});
});

test("a position from the HTTP list resumes with its epoch and seq", () => {
  const position = new StreamPosition({ epoch: "e1", since: 41 });
  assert.deepEqual(position.resumeFields(), { epoch: "e1", since: 41 });
  assert.deepEqual(new StreamPosition({ since: 0 }).resumeFields(), { since: 0 });
});

test("a fresh subscription continues from the stream's newest seq", () => {
  const position = new StreamPosition();
  const outcome = position.subscribed({ epoch: "e1", seq: 44, recovered: true });
  assert.deepEqual(outcome, { recovered: true, reason: null, resumed: false });
  assert.equal(position.last, 44);
  assert.equal(position.accept(event(44)), "duplicate");
  assert.equal(position.accept(event(45)), "deliver");
});

test("a recovered resume keeps its seq so the replay is delivered", () => {
  const position = new StreamPosition({ epoch: "e1", since: 41 });
  const outcome = position.subscribed({ epoch: "e1", seq: 44, recovered: true });
  assert.deepEqual(outcome, { recovered: true, reason: null, resumed: true });
  assert.deepEqual(
    [42, 43, 44].map((seq) => position.accept(event(seq))),
    ["deliver", "deliver", "deliver"],
  );
  assert.deepEqual(position.resumeFields(), { epoch: "e1", since: 44 });
});

test("a failed recovery says why and continues from the stream's seq", () => {
  const position = new StreamPosition({ epoch: "old", since: 41 });
  const outcome = position.subscribed({ epoch: "e2", seq: 3, recovered: false, reason: "epoch_changed" });
  assert.deepEqual(outcome, { recovered: false, reason: "epoch_changed", resumed: true });
  assert.equal(position.epoch, "e2");
  assert.equal(position.last, 3);
  assert.equal(position.accept(event(4, "e2")), "deliver");
});

test("events already seen are duplicates, whatever order they come back in", () => {
  const position = new StreamPosition({ epoch: "e1", since: 5 });
  position.subscribed({ epoch: "e1", seq: 5, recovered: true });
  const verdicts = [3, 5, 6, 6, 4, 7].map((seq) => position.accept(event(seq)));
  assert.deepEqual(verdicts, ["duplicate", "duplicate", "deliver", "duplicate", "duplicate", "deliver"]);
});

test("an event of another epoch is stale", () => {
  const position = new StreamPosition();
  position.subscribed({ epoch: "e1", seq: 0, recovered: true });
  assert.equal(position.accept(event(1, "e0")), "stale");
  assert.equal(position.last, 0);
});

test("ephemeral events (no seq) are always delivered and move nothing", () => {
  const position = new StreamPosition();
  position.subscribed({ epoch: "e1", seq: 9, recovered: true });
  assert.equal(position.accept({ type: "typing", stream: "room:1", user: 3 }), "deliver");
  assert.equal(position.accept({ type: "typing", stream: "room:1", user: 3 }), "deliver");
  assert.equal(position.last, 9);
});
