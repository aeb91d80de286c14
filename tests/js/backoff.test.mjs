import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffDelay } from "../../src/beacon/static/beacon/beacon.js";

test("the ceiling doubles from half a second and stops at twenty", () => {
  const top = () => 0.999999;
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 12, 60].map((n) => backoffDelay(n, {}, top));
  assert.deepEqual(ceilings, [499, 999, 1999, 3999, 7999, 15999, 19999, 19999, 19999, 19999]);
});

test("full jitter: the delay is random() times the ceiling, down to zero", () => {
  assert.equal(backoffDelay(3, {}, () => 0), 0);
  assert.equal(backoffDelay(3, {}, () => 0.25), 1000);
  assert.equal(backoffDelay(3, {}, () => 0.5), 2000);
  assert.equal(backoffDelay(9, {}, () => 0.5), 10000);
});

test("delays of one attempt spread over the whole window, never one fixed value", () => {
  const delays = new Set();
  for (let i = 0; i < 200; i++) delays.add(backoffDelay(4));
  assert.ok(delays.size > 100, `only ${delays.size} distinct delays out of 200`);
  for (const delay of delays) assert.ok(delay >= 0 && delay < 8000, `delay ${delay} out of range`);
  const sorted = [...delays].sort((a, b) => a - b);
  assert.ok(sorted[0] < 2000 && sorted.at(-1) > 6000, "the window's ends are reached");
});

test("the bounds are configurable", () => {
  const top = () => 0.999999;
  assert.equal(backoffDelay(0, { minDelay: 100, maxDelay: 300 }, top), 99);
  assert.equal(backoffDelay(5, { minDelay: 100, maxDelay: 300 }, top), 299);
});

test("a negative or huge attempt stays within bounds", () => {
  const top = () => 0.999999;
  assert.equal(backoffDelay(-3, {}, top), 499);
  assert.equal(backoffDelay(1e6, {}, top), 19999);
});
