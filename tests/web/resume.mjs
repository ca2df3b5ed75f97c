// Resuming with a hole bigger than a page. Alice's laptop sleeps (the test
// holds its socket's frames) while her phone takes 100 messages from Bob, so
// the laptop's catch-up is empty; on waking, the laptop pages history back
// until it meets what it held, and its `conversations` and `group.list`
// failing (played by the test) does not hold back what she wrote meanwhile.
// Then a history page cut short with `"more": true` (played by the test)
// is not taken for the start of the conversation.
import {
  baseUrl, check, person, register, scenario, seeMessage, seeTick, send, shot, shownMessages, startChat, waitFor,
} from './lib.mjs';

await scenario('resume', async (browser) => {
  const alice = await person(browser, 'Alice');
  const phone = await person(browser, 'AlicePhone');
  const bob = await person(browser, 'Bob');

  let asleep = false;
  let failNext = new Set(); // request types to answer `unavailable` once
  let laptop = null; // the route of the laptop's latest socket
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    laptop = { ws, server };
    ws.onMessage((message) => {
      if (asleep) return;
      const frame = JSON.parse(String(message));
      if (failNext.delete(frame.type)) {
        ws.send(JSON.stringify({ type: 'error', re: frame.id, code: 'unavailable', message: 'try later' }));
        return;
      }
      server.send(message);
    });
    server.onMessage((message) => {
      if (!asleep) ws.send(message);
    });
  });

  const cutIds = new Set(); // Bob's history requests whose reply the test cuts short
  let cutNextHistory = false;
  await bob.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'history' && cutNextHistory) {
        cutNextHistory = false;
        cutIds.add(frame.id);
      }
      server.send(message);
    });
    server.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (cutIds.delete(frame.re)) {
        frame.messages = frame.messages.slice(-5);
        frame.more = true;
        ws.send(JSON.stringify(frame));
        return;
      }
      ws.send(message);
    });
  });

  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'hello');
  await startChat(bob, alice);
  const before = Array.from({ length: 10 }, (_, i) => `Before ${i + 1}`);
  for (const text of before) await send(bob, text);
  await seeMessage(alice, before[9]);

  await phone.page.goto(baseUrl);
  await phone.page.locator('#login-email').fill(alice.email);
  await phone.page.locator('#login-password').fill(alice.password);
  await phone.page.getByRole('button', { name: 'Log in' }).click();
  await phone.page.locator('#me-name', { hasText: 'Alice' }).waitFor();

  asleep = true;
  const missed = Array.from({ length: 100 }, (_, i) => `Missed ${i + 1}`);
  for (const text of missed) {
    await bob.page.locator('#composer-input').fill(text);
    await bob.page.keyboard.press('Enter');
  }
  // The phone marks them delivered: nothing stays pending for the laptop.
  await seeTick(bob, missed[99], 'delivered');
  await alice.page.locator('#composer-input').fill('Written while asleep');
  await alice.page.keyboard.press('Enter');
  await alice.page.locator('#messages li.pending', { hasText: 'Written while asleep' }).waitFor();

  failNext = new Set(['conversations', 'group.list']);
  asleep = false;
  laptop.server.close();
  laptop.ws.close();
  await seeMessage(bob, 'Written while asleep');
  const expected = ['hello', ...before, ...missed, 'Written while asleep'];
  await waitFor(
    alice.page,
    (n) => document.querySelectorAll('#messages li[data-seq]').length === n,
    expected.length,
    `the laptop shows all ${expected.length} messages`,
  );
  const shown = await shownMessages(alice.page);
  // With each row's seq: a failure here once showed "Written while asleep"
  // just before "Missed 100", and the seqs tell whether the server or the
  // client ordered them so.
  const rows = await alice.page.$$eval('#messages li[data-seq]', (lis) =>
    lis.map((li) => `${li.dataset.seq}:${li.dataset.messageId}:${li.querySelector('.text').textContent}`),
  );
  check(JSON.stringify(shown) === JSON.stringify(expected), `the laptop after waking: ${JSON.stringify(rows)}`);
  check(failNext.size === 0, `conversations and group.list failed once: ${[...failNext]}`);
  await shot(alice.page, 'laptop-no-hole');

  // A page cut by the byte budget is not the start.
  cutNextHistory = true;
  await bob.page.reload();
  await bob.page.locator('#conversation-list button', { hasText: 'Alice' }).click();
  await waitFor(bob.page, () => document.querySelectorAll('#messages li[data-seq]').length === 5, null, 'the cut page of 5');
  await bob.page.getByRole('button', { name: 'Load earlier messages' }).click();
  await waitFor(bob.page, () => document.querySelectorAll('#messages li[data-seq]').length === 55, null, 'a further page of 50');
  const bobShown = await shownMessages(bob.page);
  check(JSON.stringify(bobShown) === JSON.stringify(expected.slice(-55)), `Bob after paging: ${JSON.stringify(bobShown)}`);
  await shot(bob.page, 'bob-paged-past-a-cut-page');
});
