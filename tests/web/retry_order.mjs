// Retries keep the order written. The test answers the first attempt of each
// of three sends with rate_limited, unavailable and internal in turn (the
// real server stores the retries); Alice writes all three at once, and both
// sides show them in the order written, each once.
import { check, openConversation, person, register, scenario, seeTick, send, shot, shownMessages, startChat, waitFor } from './lib.mjs';

await scenario('retry_order', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  const refusals = new Map([['one', 'rate_limited'], ['two', 'unavailable'], ['three', 'internal']]);
  const attempts = []; // the texts of Alice's send frames, in the order sent
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'send') attempts.push(frame.message);
      const code = frame.type === 'send' && refusals.get(frame.message);
      if (code) {
        refusals.delete(frame.message);
        ws.send(JSON.stringify({ type: 'error', re: frame.id, code, message: 'try again' }));
        return;
      }
      server.send(message);
    });
  });
  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'first');

  const written = ['one', 'two', 'three'];
  for (const text of written) {
    await alice.page.locator('#composer-input').fill(text);
    await alice.page.keyboard.press('Enter');
  }
  for (const text of written) await seeTick(alice, text, 'delivered');
  const expected = ['first', ...written];
  await waitFor(alice.page, (n) => document.querySelectorAll('#messages li[data-seq]').length === n && !document.querySelector('#messages li.pending'), expected.length, 'all four stored');
  const aliceSees = await shownMessages(alice.page);
  check(JSON.stringify(aliceSees) === JSON.stringify(expected), `Alice's order: ${JSON.stringify(aliceSees)}`);
  check(
    JSON.stringify(attempts) === JSON.stringify(['first', 'one', 'one', 'two', 'two', 'three', 'three']),
    `each send waits for the one before: ${JSON.stringify(attempts)}`,
  );
  await openConversation(bob, 'Alice');
  await waitFor(bob.page, (n) => document.querySelectorAll('#messages li[data-seq]').length === n, expected.length, 'Bob has all four');
  const bobSees = await shownMessages(bob.page);
  check(JSON.stringify(bobSees) === JSON.stringify(expected), `Bob's order: ${JSON.stringify(bobSees)}`);
  await shot(bob.page, 'bob-in-order');
});
