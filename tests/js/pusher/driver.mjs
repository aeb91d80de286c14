// Drives real pusher-js clients (Node, ws transport) for the Python tests: one JSON
// command per stdin line, one JSON line per reply or event on stdout.
// Commands carry an "id"; replies echo it. Events: {"event": …, "name": client, …}.
import readline from 'node:readline';
import Pusher from 'pusher-js';

const clients = {};
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function authHandler(cmd, path, extra) {
  return async (params, callback) => {
    try {
      const body = new URLSearchParams({ socket_id: params.socketId, ...extra(params) });
      const response = await fetch(`http://127.0.0.1:${cmd.port}${path}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Cookie: `sessionid=${cmd.cookie}; csrftoken=${cmd.csrf}`,
          'X-CSRFToken': cmd.csrf,
        },
        body,
      });
      if (!response.ok) {
        const error = new Error(`auth ${response.status}: ${await response.text()}`);
        error.status = response.status;
        callback(error, null);
        return;
      }
      callback(null, await response.json());
    } catch (e) {
      callback(e, null);
    }
  };
}

function connect(cmd) {
  const options = {
    wsHost: '127.0.0.1',
    wsPort: cmd.port,
    forceTLS: false,
    enabledTransports: ['ws'],
    cluster: 'mt1',
    disableStats: true,
    channelAuthorization: {
      customHandler: authHandler(cmd, '/pusher/auth', (p) => ({ channel_name: p.channelName })),
    },
    userAuthentication: { customHandler: authHandler(cmd, '/pusher/user-auth', () => ({})) },
  };
  if (cmd.activityTimeout) options.activityTimeout = cmd.activityTimeout;
  const pusher = new Pusher(cmd.key, options);
  clients[cmd.name] = pusher;
  pusher.connection.bind('state_change', (s) =>
    out({ event: 'state', name: cmd.name, state: s.current }),
  );
  pusher.connection.bind('error', (e) =>
    out({ event: 'error', name: cmd.name, error: e && e.data ? e.data : String(e && e.type) }),
  );
  pusher.connection.bind('message', (m) => {
    if (m.event === 'pusher:ping' || m.event === 'pusher:pong') {
      out({ event: m.event, name: cmd.name });
    }
  });
  pusher.user.bind_global((event, data) => out({ event: 'user', name: cmd.name, ev: event, data }));
  return new Promise((resolve, reject) => {
    pusher.connection.bind('connected', () =>
      resolve({ socket_id: pusher.connection.socket_id }),
    );
    pusher.connection.bind('failed', () => reject(new Error('failed')));
    pusher.connection.bind('unavailable', () => reject(new Error('unavailable')));
  });
}

function subscribe(cmd) {
  const pusher = clients[cmd.name];
  const channel = pusher.subscribe(cmd.channel);
  channel.bind_global((event, data, metadata) => {
    if (event === 'pusher:subscription_succeeded' || event === 'pusher:subscription_error') return;
    const line = { event: 'channel', name: cmd.name, channel: cmd.channel, ev: event, data };
    if (metadata && metadata.user_id) line.user_id = metadata.user_id;
    out(line);
  });
  // bind_global gets no metadata: events named in "bind" are bound one by one for user_id.
  for (const event of cmd.bind || []) {
    channel.bind(event, (data, metadata) =>
      out({ event: 'bound', name: cmd.name, channel: cmd.channel, ev: event, data, metadata }),
    );
  }
  return new Promise((resolve) => {
    channel.bind('pusher:subscription_succeeded', (members) => {
      const reply = { subscribed: true };
      if (members && members.members !== undefined) {
        reply.members = members.members;
        reply.count = members.count;
        reply.me = members.me;
      }
      resolve(reply);
    });
    channel.bind('pusher:subscription_error', (error) => resolve({ subscribed: false, error }));
  });
}

async function handle(cmd) {
  const pusher = clients[cmd.name];
  switch (cmd.op) {
    case 'connect':
      return connect(cmd);
    case 'subscribe':
      return subscribe(cmd);
    case 'unsubscribe':
      pusher.unsubscribe(cmd.channel);
      return {};
    case 'trigger':
      return { sent: pusher.channel(cmd.channel).trigger(cmd.event, cmd.data) };
    case 'signin': {
      pusher.signin();
      await pusher.user.signinDonePromise;
      // pusher-js subscribes the user's channel only after signin_success (user.ts):
      // answer once it is subscribed, or an event sent meanwhile goes to nobody.
      const channel = pusher.user.serverToUserChannel;
      if (channel && !channel.subscribed) {
        await new Promise((resolve) => channel.bind('pusher:subscription_succeeded', resolve));
      }
      return { user: pusher.user.user_data };
    }
    case 'disconnect':
      pusher.disconnect();
      delete clients[cmd.name];
      return {};
    case 'state':
      return { state: pusher.connection.state };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    out({ id: cmd.id, ok: true, ...(await handle(cmd)) });
  } catch (e) {
    out({ id: cmd && cmd.id, ok: false, error: String(e && e.message ? e.message : e) });
  }
});
rl.on('close', () => {
  for (const pusher of Object.values(clients)) pusher.disconnect();
  process.exit(0);
});
out({ event: 'ready', version: Pusher.VERSION });
