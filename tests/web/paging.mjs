// The conversation and group lists come in pages: the test asks the server
// for pages of one (it adds `limit: 1` to the page's `conversations` and
// `group.list` requests), and Alice's list still shows every conversation
// and group, the oldest included.
import { check, person, register, scenario, send, startChat, waitFor } from './lib.mjs';

await scenario('paging', async (browser) => {
  const alice = await person(browser, 'Alice');
  const others = [await person(browser, 'Bob'), await person(browser, 'Carol'), await person(browser, 'Dave')];
  await register(alice);
  for (const other of others) {
    await register(other);
    await startChat(other, alice);
    await send(other, `hello from ${other.name}`);
  }
  await alice.page.locator('#new-group summary').click();
  await alice.page.locator('#group-name').fill('Paged group');
  await alice.page.locator('#group-emails').fill(others[0].email);
  await alice.page.getByRole('button', { name: 'Create group' }).click();
  await alice.page.locator('#chat-title', { hasText: 'Paged group' }).waitFor();

  const pagedRequests = [];
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type === 'conversations' || frame.type === 'group.list') {
        pagedRequests.push(frame.type);
        server.send(JSON.stringify({ ...frame, limit: 1 }));
      } else {
        server.send(message);
      }
    });
  });
  await alice.page.reload();
  await alice.page.locator('body[data-synced="true"]').waitFor();
  for (const other of others) {
    await alice.page.locator('#conversation-list button', { hasText: other.name }).waitFor();
  }
  await alice.page.locator('#conversation-list button', { hasText: 'Paged group' }).waitFor();
  const pages = (type) => pagedRequests.filter((t) => t === type).length;
  // Four conversations (three chats and the group's), one a page, and the
  // last page says there is no more.
  check(pages('conversations') === 4, `conversations pages: ${pages('conversations')}`);
  check(pages('group.list') === 1, `group.list pages: ${pages('group.list')}`);
  await waitFor(alice.page, () => document.querySelectorAll('#conversation-list button').length >= 4, null, 'four entries');
});
