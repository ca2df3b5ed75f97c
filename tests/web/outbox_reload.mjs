// Unsent messages survive a reload. The test drops the server's ok to one
// send, so the page still holds it as unsent although the server stored it,
// and a second one waits behind it without reaching the server. After a
// reload the page sends both again, the first with its same client_msg_id:
// each is shown once, in the order written, on both sides. A deliberate logout takes unsent messages
// along: nothing is left in the browser's storage for the next person.
import { check, openConversation, person, register, scenario, send, shownMessages, startChat, waitFor } from './lib.mjs';

await scenario('outbox_reload', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  let dropOkOf = null; // the request id whose ok the page never gets (once)
  let swallow = false; // after the reload: sends go nowhere
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'send' && frame.message === 'kept' && dropOkOf === null) dropOkOf = frame.id;
      if (frame.type === 'send' && swallow) return;
      server.send(message);
    });
    server.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (dropOkOf !== null && frame.re === dropOkOf) {
        dropOkOf = 'dropped';
        return;
      }
      ws.send(message);
    });
  });
  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'first');

  // 'kept' reaches the server, its ok does not reach the page; 'queued'
  // waits behind it (one send at a time) and never leaves the page.
  for (const text of ['kept', 'queued']) {
    await alice.page.locator('#composer-input').fill(text);
    await alice.page.keyboard.press('Enter');
  }
  await openConversation(bob, 'Alice');
  await bob.page.locator('#messages li[data-seq]', { hasText: 'kept' }).waitFor();
  await waitFor(alice.page, () => document.querySelectorAll('#messages li.pending').length === 2, null, "Alice's page holds both unsent");

  await alice.page.reload();
  await waitFor(alice.page, () => document.body.dataset.synced === 'true', null, 'the reloaded page logged in');
  await openConversation(alice, 'Bob');
  await alice.page.locator('#messages li.own[data-seq]', { hasText: 'queued' }).waitFor();
  await waitFor(alice.page, () => !document.querySelector('#messages li.pending'), null, 'nothing left unsent');
  const aliceSees = await shownMessages(alice.page);
  check(JSON.stringify(aliceSees) === JSON.stringify(['first', 'kept', 'queued']), `Alice after the reload: ${JSON.stringify(aliceSees)}`);
  await waitFor(bob.page, () => document.querySelectorAll('#messages li[data-seq]').length === 3, null, 'Bob has all three');
  const bobSees = await shownMessages(bob.page);
  check(JSON.stringify(bobSees) === JSON.stringify(['first', 'kept', 'queued']), `Bob, stored once: ${JSON.stringify(bobSees)}`);

  swallow = true;
  await alice.page.locator('#composer-input').fill('never sent');
  await alice.page.keyboard.press('Enter');
  await waitFor(alice.page, () => Object.keys(localStorage).some((k) => k.startsWith('parley.outbox.')), null, 'the unsent message stored');
  await alice.page.getByRole('button', { name: 'Log out' }).click();
  await alice.page.locator('#login-email').waitFor();
  const left = await alice.page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('parley.outbox.')));
  check(left.length === 0, `unsent messages left in storage after logout: ${JSON.stringify(left)}`);
});
