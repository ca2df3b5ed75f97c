// A catch-up message the page already holds is still marked delivered. Bob
// writes; the test swallows Alice's live `mark delivered` (as a dropped
// connection would); after Alice's reconnect the catch-up repeats the
// message, and her mark after synced makes Bob's tick delivered.
import { goOffline, goOnline, person, register, scenario, seeTick, send, shot, startChat } from './lib.mjs';

await scenario('catch_up_mark', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  let swallowed = false;
  let onSwallowed;
  const liveMarkSwallowed = new Promise((resolve) => {
    onSwallowed = resolve;
  });
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'mark' && frame.status === 'delivered' && !swallowed) {
        swallowed = true;
        ws.send(JSON.stringify({ type: 'ok', re: frame.id }));
        onSwallowed();
        return;
      }
      server.send(message);
    });
  });
  await register(alice);
  await register(bob);
  await startChat(bob, alice);
  await send(bob, 'Did this arrive?');
  // Alice holds it (not open: only delivered would be marked).
  await alice.page.locator('#conversation-list button', { hasText: 'Bob' }).locator('.unread', { hasText: '1' }).waitFor();
  await liveMarkSwallowed;
  await seeTick(bob, 'Did this arrive?', 'sent');

  await goOffline(alice.page);
  await alice.page.locator('#connection', { hasText: 'Reconnecting' }).waitFor();
  await goOnline(alice.page);
  await alice.page.locator('#connection').waitFor({ state: 'hidden' });
  await seeTick(bob, 'Did this arrive?', 'delivered');
  await shot(bob.page, 'bob-sees-delivered');
});
