// The demo's Laravel Echo page: Echo and pusher-js exactly as a Laravel app uses them,
// pointed at Beacon (docs/pusher.md). Nothing Beacon-specific below but the options.
// Echo hands over each member's user_info ({id, name} from Beacon's default hook).
const config = JSON.parse(document.getElementById('pusher-config').textContent);
const csrftoken = document.querySelector('[name=csrfmiddlewaretoken]').value;
const state = document.getElementById('echo-state');
const members = document.getElementById('members');
const typing = document.getElementById('typing');
const notes = document.getElementById('notes');

const echo = new Echo.default({
  broadcaster: 'pusher',
  Pusher: window.Pusher,
  key: config.key,
  cluster: 'mt1',
  wsHost: window.location.hostname,
  wsPort: Number(window.location.port || (config.tls ? 443 : 80)),
  wssPort: Number(window.location.port || 443),
  forceTLS: config.tls,
  enabledTransports: ['ws', 'wss'],
  disableStats: true,
  authEndpoint: '/broadcasting/auth',
  auth: { headers: { 'X-CSRFToken': csrftoken } },
});

const pusher = echo.connector.pusher;
pusher.connection.bind('state_change', ({ current }) => {
  state.dataset.state = current;
  state.textContent = current === 'connected' ? 'Connected' : `${current}…`;
});

function showMembers(list) {
  members.replaceChildren(
    ...list.map((m) => {
      const li = document.createElement('li');
      li.dataset.user = m.id;
      li.textContent = m.name;
      return li;
    }),
  );
}
let here = [];
let typingTimer = null;
echo
  .join('demo.lobby')
  .here((list) => { here = list; showMembers(here); })
  .joining((member) => { here = [...here.filter((m) => m.id !== member.id), member]; showMembers(here); })
  .leaving((member) => { here = here.filter((m) => m.id !== member.id); showMembers(here); })
  .listenForWhisper('typing', (e) => {
    typing.textContent = `${e.name} is typing…`;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { typing.textContent = ''; }, 3000);
  });

document.getElementById('whisper').addEventListener('input', () => {
  echo.join('demo.lobby').whisper('typing', { name: config.name });
});

function showNote(e) {
  const li = document.createElement('li');
  li.textContent = `${e.author}: ${e.text}`;
  notes.append(li);
}
echo.private('demo.notes').listen('.note', showNote);

document.getElementById('note-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  // Sent to the others only (X-Socket-Id, Echo's toOthers): this page shows it itself.
  showNote({ author: config.name, text: form.elements.text.value });
  await fetch(form.action, {
    method: 'POST',
    body: new FormData(form),
    headers: { 'X-Socket-Id': echo.socketId() },
  });
  form.reset();
});
