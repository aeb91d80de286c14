// node --test against a live Beacon server (run by tests/pusher/test_node.py, which
// starts Daphne and passes PORT, KEY, ALICE, BOB (session cookies) and CSRF).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import Pusher from 'pusher-js';

const { PORT, KEY, ALICE, BOB, CSRF } = process.env;
const clients = [];

function client(cookie) {
  const authorize = (path, extra) => async (params, callback) => {
    const response = await fetch(`http://127.0.0.1:${PORT}${path}`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Cookie: `sessionid=${cookie}; csrftoken=${CSRF}`,
        'X-CSRFToken': CSRF,
      },
      body: new URLSearchParams({ socket_id: params.socketId, ...extra(params) }),
    });
    if (!response.ok) callback(new Error(`status ${response.status}`), null);
    else callback(null, await response.json());
  };
  const pusher = new Pusher(KEY, {
    wsHost: '127.0.0.1',
    wsPort: Number(PORT),
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    channelAuthorization: {
      customHandler: authorize('/pusher/auth', (p) => ({ channel_name: p.channelName })),
    },
    userAuthentication: { customHandler: authorize('/pusher/user-auth', () => ({})) },
  });
  clients.push(pusher);
  return pusher;
}

const once = (target, event) => new Promise((resolve) => target.bind(event, resolve));

after(() => clients.forEach((c) => c.disconnect()));

test('connects with a socket id', async () => {
  const pusher = client('');
  await once(pusher.connection, 'connected');
  assert.match(pusher.connection.socket_id, /^\d+\.\d+$/);
});

test('presence members, whispers both ways, never echoed', async () => {
  const alice = client(ALICE);
  const bob = client(BOB);
  const a = alice.subscribe('presence-demo.node');
  const aliceIn = await once(a, 'pusher:subscription_succeeded');
  assert.equal(aliceIn.count, 1);
  const joined = once(a, 'pusher:member_added');
  const b = bob.subscribe('presence-demo.node');
  const bobIn = await once(b, 'pusher:subscription_succeeded');
  assert.equal(bobIn.count, 2);
  assert.equal((await joined).info.name, 'bob');

  let echoed = false;
  b.bind('client-hello', () => { echoed = true; });
  const heard = new Promise((resolve) => a.bind('client-hello', (data, meta) => resolve({ data, meta })));
  b.trigger('client-hello', { n: 1 });
  const { data, meta } = await heard;
  assert.deepEqual(data, { n: 1 });
  assert.equal(meta.user_id, bobIn.me.id);
  assert.equal(echoed, false);

  const left = once(a, 'pusher:member_removed');
  bob.unsubscribe('presence-demo.node');
  assert.equal((await left).id, bobIn.me.id);
});

test('a private channel the policy refuses is a subscription error', async () => {
  const alice = client(ALICE);
  const error = await once(alice.subscribe('private-nobody-may'), 'pusher:subscription_error');
  assert.equal(error.type, 'AuthError');
  assert.match(error.error, /status 403/);
});

test('a cache channel with nothing cached says so', async () => {
  const pusher = client('');
  const channel = pusher.subscribe('cache-node-empty');
  await once(channel, 'pusher:cache_miss');
});

test('sign-in opens the user channel', async () => {
  const alice = client(ALICE);
  alice.signin();
  await alice.user.signinDonePromise;
  assert.ok(alice.user.user_data.id);
  assert.equal(alice.user.user_data.user_info.name, 'alice');
});
