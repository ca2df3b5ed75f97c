// 1:1 in two browser contexts: register, find each other by email, chat,
// delivered and read ticks change, typing shows; one goes offline and comes
// back (on a phone-sized screen) to what was sent meanwhile, each message
// once; a reload stays logged in; logging out forgets the session; an
// unknown email gets a sentence; scrolling back pages through history.
import {
  check, checkLabels, goOffline, goOnline, openConversation, person, register, scenario, seeMessage, seeTick, send, shot,
  shownMessages, startChat, waitFor, baseUrl, watch,
} from './lib.mjs';

await scenario('one_to_one', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  await bob.page.goto(baseUrl);
  await checkLabels(bob.page);
  await register(alice);
  await register(bob);
  await shot(alice.page, 'alice-registered');

  // Errors are sentences.
  await alice.page.locator('#find-email').fill('nobody-here@example.com');
  await alice.page.getByRole('button', { name: 'Start', exact: true }).click();
  await alice.page.locator('#alert', { hasText: 'No user has the email nobody-here@example.com.' }).waitFor();
  await shot(alice.page, 'alice-unknown-email');

  await startChat(alice, bob);
  await send(alice, 'Hello Bob!');
  // Bob is online but not looking: his client marks it delivered.
  await seeTick(alice, 'Hello Bob!', 'delivered');
  await bob.page.locator('#conversation-list button', { hasText: 'Alice' }).locator('.unread', { hasText: '1' }).waitFor();
  await shot(alice.page, 'alice-delivered');
  await shot(bob.page, 'bob-unread');

  // Bob opens it: read.
  await openConversation(bob, 'Alice');
  await seeMessage(bob, 'Hello Bob!');
  await checkLabels(bob.page);
  await seeTick(alice, 'Hello Bob!', 'read');
  await shot(alice.page, 'alice-read');

  // Typing, then a reply Alice reads at once (her conversation is open).
  await bob.page.locator('#composer-input').pressSequentially('Hi Al');
  await alice.page.locator('#typing', { hasText: 'Bob is typing' }).waitFor();
  await shot(alice.page, 'alice-sees-typing');
  await bob.page.locator('#composer-input').fill('');
  await send(bob, 'Hi Alice, how are you?');
  await seeMessage(alice, 'Hi Alice, how are you?');
  await seeTick(bob, 'Hi Alice, how are you?', 'read');
  await shot(bob.page, 'bob-read-by-alice');

  // Bob goes offline; Alice writes meanwhile (nothing can be delivered yet).
  await bob.page.close();
  const away = ['While you were away (1)', 'While you were away (2)', 'While you were away (3)'];
  for (const text of away) await send(alice, text);
  for (const text of away) await seeTick(alice, text, 'sent');
  await shot(alice.page, 'alice-sent-while-bob-away');

  // Bob comes back in the same browser, on a phone-sized screen: still
  // logged in, everything once.
  bob.page = watch(await bob.context.newPage(), 'Bob');
  await bob.page.setViewportSize({ width: 390, height: 760 });
  await bob.page.goto(baseUrl);
  await bob.page.locator('#me-name', { hasText: 'Bob' }).waitFor();
  await bob.page.locator('#conversation-list button', { hasText: 'Alice' }).locator('.unread', { hasText: '3' }).waitFor();
  await openConversation(bob, 'Alice');
  await seeMessage(bob, away[2]);
  const expected = ['Hello Bob!', 'Hi Alice, how are you?', ...away];
  await waitFor(bob.page, (n) => document.querySelectorAll('#messages li[data-seq]').length === n, expected.length, 'five messages');
  const shown = await shownMessages(bob.page);
  check(JSON.stringify(shown) === JSON.stringify(expected), `Bob sees each message once, in order: ${JSON.stringify(shown)}`);
  for (const text of away) await seeTick(alice, text, 'read');
  await shot(bob.page, 'bob-back-sees-everything-once');
  // On a phone the list and the chat take turns; Back returns to the list.
  check(!(await alice.page.locator('#back').isVisible()), 'no Back button on a wide screen');
  check(!(await bob.page.locator('#conversation-list').isVisible()), 'the list gives way to the chat on a phone');
  await bob.page.getByRole('button', { name: 'Back to conversations' }).click();
  await bob.page.locator('#conversation-list').waitFor();
  check(!(await bob.page.locator('#composer').isVisible()), 'the chat gives way to the list on a phone');
  await shot(bob.page, 'bob-phone-list');
  await shot(alice.page, 'alice-all-read'); // README's docs/web-client.png

  // Alice's network drops: what Bob sends meanwhile and what she writes
  // offline both arrive once after her client reconnects by itself.
  await goOffline(alice.page);
  await alice.page.locator('#connection', { hasText: 'Reconnecting' }).waitFor();
  await openConversation(bob, 'Alice');
  await send(bob, 'Did you get my last one?');
  await alice.page.locator('#composer-input').fill('Written while offline');
  await alice.page.keyboard.press('Enter');
  await alice.page.locator('#messages li.own:has-text("Written while offline") .tick[data-status="sending"]').waitFor();
  await shot(alice.page, 'alice-offline-message-waiting');
  await goOnline(alice.page);
  await alice.page.locator('#connection').waitFor({ state: 'hidden' });
  await seeMessage(alice, 'Did you get my last one?');
  await seeMessage(bob, 'Written while offline');
  await seeTick(alice, 'Written while offline', 'read');
  await seeTick(bob, 'Did you get my last one?', 'read');
  expected.push('Did you get my last one?', 'Written while offline');
  for (const p of [alice, bob]) {
    await waitFor(p.page, (n) => document.querySelectorAll('#messages li[data-seq]').length === n, expected.length, `${p.name} shows ${expected.length} messages`);
    const texts = await shownMessages(p.page);
    check(JSON.stringify(texts) === JSON.stringify(expected), `${p.name} after the drop: ${JSON.stringify(texts)}`);
  }
  await shot(alice.page, 'alice-reconnected');

  // A reload stays logged in, with the conversation and its history.
  await alice.page.reload();
  await alice.page.locator('#me-name', { hasText: 'Alice' }).waitFor();
  await openConversation(alice, 'Bob');
  await seeMessage(alice, away[2]);
  const afterReload = await shownMessages(alice.page);
  check(JSON.stringify(afterReload) === JSON.stringify(expected), `Alice after reload: ${JSON.stringify(afterReload)}`);
  await seeTick(alice, away[2], 'read');
  await shot(alice.page, 'alice-after-reload');

  // Log out: the session is gone, a reload shows the login form.
  await alice.page.getByRole('button', { name: 'Log out' }).click();
  await alice.page.locator('#login-form').waitFor();
  await alice.page.reload();
  await alice.page.locator('#login-form').waitFor();
  await shot(alice.page, 'alice-logged-out');

  // And logs in again with her password.
  await alice.page.locator('#login-email').fill(alice.email);
  await alice.page.locator('#login-password').fill(alice.password);
  await alice.page.getByRole('button', { name: 'Log in' }).click();
  await alice.page.locator('#me-name', { hasText: 'Alice' }).waitFor();
  await alice.page.locator('#conversation-list button', { hasText: 'Bob' }).waitFor();

  // Scrolling back: a fresh page gets the latest page of history and fetches
  // the earlier one on request, each message once and in order.
  await openConversation(alice, 'Bob');
  const lines = Array.from({ length: 50 }, (_, i) => `Line ${i + 1}`);
  for (const line of lines) await send(alice, line);
  expected.push(...lines);
  await bob.page.reload();
  await openConversation(bob, 'Alice');
  await seeMessage(bob, 'Line 50');
  await waitFor(bob.page, () => document.querySelectorAll('#messages li[data-seq]').length === 50, null, 'the latest page of 50');
  await bob.page.getByRole('button', { name: 'Load earlier messages' }).click();
  await waitFor(bob.page, (n) => document.querySelectorAll('#messages li[data-seq]').length === n, expected.length, 'all messages');
  const all = await shownMessages(bob.page);
  check(JSON.stringify(all) === JSON.stringify(expected), `Bob after paging back: ${JSON.stringify(all)}`);
  await bob.page.getByRole('button', { name: 'Load earlier messages' }).waitFor({ state: 'hidden' });
  await shot(bob.page, 'bob-paged-back');
});
