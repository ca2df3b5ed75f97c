// Presence dots: Alice and Bob have chatted, so each sees the other's dot;
// when Bob closes his page his dot turns offline for Alice, and online again
// when he comes back.
import { baseUrl, openConversation, person, register, scenario, seeMessage, send, shot, startChat, watch } from './lib.mjs';

async function dot(p, title, online) {
  await p.page
    .locator('#conversation-list button', { hasText: title })
    .locator(`.dot[data-online="${online}"]`)
    .waitFor();
}

await scenario('presence', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'Are you there?');
  await openConversation(bob, 'Alice');
  await seeMessage(bob, 'Are you there?');
  await send(bob, 'Yes!');

  await dot(alice, 'Bob', true);
  await dot(bob, 'Alice', true);
  await alice.page.locator('#chat-presence[data-online="true"]').waitFor();
  await shot(alice.page, 'bob-online');

  await bob.page.close();
  await dot(alice, 'Bob', false);
  await alice.page.locator('#chat-presence[data-online="false"]').waitFor();
  await shot(alice.page, 'bob-offline');

  bob.page = watch(await bob.context.newPage(), 'Bob');
  await bob.page.goto(baseUrl);
  await bob.page.locator('#me-name', { hasText: 'Bob' }).waitFor();
  await dot(alice, 'Bob', true);
  await shot(alice.page, 'bob-back-online');
});
