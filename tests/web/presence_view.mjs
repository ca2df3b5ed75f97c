// The client's presence view on its own, whatever the server's plugins: the
// server side of Alice's socket is played in part by the test (it answers
// presence.subscribe and sends presence events; everything else goes to the
// real parleyd). Dots follow the events; an unknown event type is ignored.
import { person, register, scenario, send, shot, startChat } from './lib.mjs';

await scenario('presence_view', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  let page = null; // Alice's side of the latest socket
  let subscribed = null; // the user ids Alice's client subscribed to
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer(); // its frames reach the page as they are
    page = ws;
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type !== 'presence.subscribe') {
        server.send(message);
        return;
      }
      subscribed = frame.users;
      const presence = frame.users.map((user_id) => ({ user_id, online: true, last_active: null }));
      ws.send(JSON.stringify({ type: 'ok', re: frame.id, presence }));
    });
  });

  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'Hello');
  const dot = (online) =>
    alice.page.locator('#conversation-list button', { hasText: 'Bob' }).locator(`.dot[data-online="${online}"]`);
  await dot(true).waitFor();
  await alice.page.locator('#chat-presence[data-online="true"]').waitFor();
  await shot(alice.page, 'bob-shown-online');

  page.send(JSON.stringify({ type: 'surprise', detail: 'a future event type' }));
  page.send(JSON.stringify({ type: 'presence', user_id: subscribed[0], online: false, last_active: '2026-01-01T12:00:00.000Z' }));
  await dot(false).waitFor();
  await alice.page.locator('#chat-presence[data-online="false"]').waitFor();
  await shot(alice.page, 'bob-shown-offline');

  page.send(JSON.stringify({ type: 'presence', user_id: subscribed[0], online: true, last_active: '2026-01-01T12:05:00.000Z' }));
  await dot(true).waitFor();
  await send(alice, 'Still works after an unknown event');
});
