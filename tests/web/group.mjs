// A group in four browser contexts (the server caps groups at 3 members):
// Alice creates it with Bob and Carol's emails, everyone chats, "read by N"
// counts readers, adding Dave to the full group says so, Alice makes Bob an
// admin, removes Carol (who then sees no new messages, live or after a
// reload), adds Dave in her place, and Bob leaves.
import {
  check, checkLabels, openConversation, person, register, scenario, seeMessage, send, shot, shownMessages,
} from './lib.mjs';

const GROUP = 'Lunch crew';

async function readBy(p, text, n) {
  await p.page
    .locator(`#messages li.own:has-text(${JSON.stringify(text)}) .tick[data-read-by="${n}"]`)
    .waitFor();
}

await scenario('group', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  const carol = await person(browser, 'Carol');
  const dave = await person(browser, 'Dave');
  for (const p of [alice, bob, carol, dave]) await register(p);

  await alice.page.locator('#new-group summary').click();
  await alice.page.locator('#group-name').fill(GROUP);
  await alice.page.locator('#group-emails').fill(`${bob.email}, ${carol.email}`);
  await alice.page.getByRole('button', { name: 'Create group' }).click();
  await alice.page.locator('#chat-title', { hasText: GROUP }).waitFor();
  await shot(alice.page, 'alice-created-group');

  // Bob and Carol were online: the group shows up for them live.
  for (const p of [bob, carol]) await openConversation(p, GROUP);

  await send(alice, 'Noon at the usual place?');
  await seeMessage(bob, 'Noon at the usual place?');
  await seeMessage(carol, 'Noon at the usual place?');
  await readBy(alice, 'Noon at the usual place?', 2);
  await alice.page
    .locator('#messages li.own:has-text("Noon at the usual place?") .tick[data-status="read"]')
    .waitFor();
  await shot(alice.page, 'alice-read-by-2');

  await send(bob, 'Works for me');
  await seeMessage(alice, 'Works for me');
  await seeMessage(carol, 'Works for me');
  await shot(carol.page, 'carol-sees-the-chat');

  // The group is full: adding Dave fails whole, with a sentence.
  await alice.page.getByRole('button', { name: 'Members' }).click();
  await alice.page.getByLabel('Add member (email)').fill(dave.email);
  await alice.page.getByRole('button', { name: 'Add', exact: true }).click();
  await alice.page.locator('#alert', { hasText: 'This group is full' }).waitFor();
  await shot(alice.page, 'alice-group-full');

  // Roles: Alice (owner) makes Bob an admin; Bob sees it.
  await alice.page.getByLabel('Role of Bob').selectOption('admin');
  await bob.page.getByRole('button', { name: 'Members' }).click();
  await bob.page.locator('#member-list li', { hasText: 'Bob (you)' }).locator('.role', { hasText: 'admin' }).waitFor();
  await checkLabels(alice.page);
  await checkLabels(bob.page);
  await shot(bob.page, 'bob-is-admin');

  // Alice removes Carol: Carol's page says so and offers no composer.
  await alice.page.getByRole('button', { name: 'Remove Carol' }).click();
  await alice.page.locator('#member-list li', { hasText: 'Carol' }).waitFor({ state: 'detached' });
  await carol.page.locator('#composer-closed').waitFor();
  await shot(carol.page, 'carol-removed');
  const carolBefore = await shownMessages(carol.page);

  await send(alice, 'Carol cannot read this');
  await seeMessage(bob, 'Carol cannot read this');
  await shot(bob.page, 'bob-sees-message-after-removal');
  check(!(await shownMessages(carol.page)).includes('Carol cannot read this'), 'Carol got a message after her removal');

  // Nor after a reload, from the login sync, the list or history (the
  // protocol leaves open whether a former member's list still shows the group).
  await carol.page.reload();
  await carol.page.locator('#me-name', { hasText: 'Carol' }).waitFor();
  await carol.page.locator('body[data-synced="true"]').waitFor();
  check(
    !(await carol.page.locator('#conversation-list').textContent()).includes('Carol cannot read this'),
    'the list shows Carol a message sent after her removal',
  );
  // A former member may not ask group.info, so the list may not know its name.
  const formerGroup = carol.page.locator('#conversation-list button[data-conversation^="g:"]');
  if (await formerGroup.count()) {
    await formerGroup.click();
    await carol.page.locator('#chat-title', { hasText: GROUP }).waitFor();
    await carol.page.locator('#composer-closed').waitFor();
    await carol.page.locator('#messages li', { hasText: 'Works for me' }).locator('.sender', { hasText: 'Bob' }).waitFor();
    const carolAfter = await shownMessages(carol.page);
    check(!carolAfter.includes('Carol cannot read this'), `Carol after reload: ${JSON.stringify(carolAfter)}`);
    check(carolAfter.length >= carolBefore.length, 'Carol keeps the history up to her removal');
    await shot(carol.page, 'carol-reads-history-up-to-removal');
  }
  await shot(carol.page, 'carol-after-reload');

  // Now there is room: Dave joins, sees the group live and writes in it.
  await alice.page.getByLabel('Add member (email)').fill(dave.email);
  await alice.page.getByRole('button', { name: 'Add', exact: true }).click();
  await alice.page.locator('#member-list li', { hasText: 'Dave' }).waitFor();
  await openConversation(dave, GROUP);
  await send(dave, 'Thanks for having me');
  await seeMessage(alice, 'Thanks for having me');
  await seeMessage(bob, 'Thanks for having me');
  await shot(dave.page, 'dave-joined');

  // Bob leaves; Alice and Dave remain.
  await bob.page.getByRole('button', { name: 'Leave group' }).click();
  await bob.page.locator('#composer-closed').waitFor();
  await alice.page.locator('#member-list li', { hasText: 'Bob' }).waitFor({ state: 'detached' });
  await alice.page.locator('#member-list li', { hasText: 'Dave' }).waitFor();
  await shot(alice.page, 'alice-and-dave');
});
