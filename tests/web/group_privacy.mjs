// Who may add me to groups (group.privacy, an extension). Dave ticks "Only
// people I have written to can add me to groups"; the setting survives a
// reload (the server keeps it); Alice cannot put him in a group, even after
// writing to him first, and is told why; once he has answered, she can.
import { check, checkLabels, openConversation, person, register, scenario, send, shot, startChat } from './lib.mjs';

async function createGroup(p, name, emails) {
  await p.page.locator('#new-group').evaluate((details) => {
    details.open = true;
  });
  await p.page.locator('#group-name').fill(name);
  await p.page.locator('#group-emails').fill(emails);
  await p.page.getByRole('button', { name: 'Create group' }).click();
}

await scenario('group_privacy', async (browser) => {
  const alice = await person(browser, 'Alice');
  const dave = await person(browser, 'Dave');
  for (const p of [alice, dave]) await register(p);

  await dave.page.locator('#new-group summary').click();
  const box = dave.page.getByLabel('Only people I have written to can add me to groups');
  check(!(await box.isChecked()), 'anyone may add by default');
  await checkLabels(dave.page);
  await box.check();
  await dave.page.locator('#adds-contacts[data-saved="contacts"]').waitFor();
  // Kept by the server: a reload reads it back.
  await dave.page.reload();
  await dave.page.locator('body[data-synced="true"]').waitFor();
  await dave.page.locator('#new-group summary').click();
  await dave.page.waitForFunction(() => document.getElementById('adds-contacts').checked);
  await shot(dave.page, 'dave-only-contacts');

  await startChat(alice, dave);
  await send(alice, 'Hi Dave, a group for the party?');
  await createGroup(alice, 'Surprise', dave.email);
  await alice.page.locator('#alert', { hasText: 'lets only people they have written to add them' }).waitFor();
  await shot(alice.page, 'alice-refused');

  await openConversation(dave, 'Alice');
  await send(dave, 'Sure, add me');
  await createGroup(alice, 'Party', dave.email);
  await alice.page.locator('#chat-title', { hasText: 'Party' }).waitFor();
  await openConversation(dave, 'Party');
  await shot(dave.page, 'dave-in-party');
});
