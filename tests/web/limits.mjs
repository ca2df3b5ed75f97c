// Texts past the server's limits. The composer refuses a text over 4000 code
// points and keeps it; a request frame over 64 KiB is refused in the page, so
// the connection stays up; a send the server refuses for good stays shown
// with its text, and Edit puts the text back into the composer.
import { check, person, register, scenario, send, shot, startChat } from './lib.mjs';

await scenario('limits', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  const sent = []; // the texts of Alice's send frames, as the server would get them
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const frame = JSON.parse(String(message));
      if (frame.type !== 'send') {
        server.send(message);
        return;
      }
      sent.push(frame.message);
      // The test plays the server's permanent refusals.
      const refusal = /^refuse (\w+)/.exec(frame.message);
      if (refusal) ws.send(JSON.stringify({ type: 'error', re: frame.id, code: refusal[1], message: 'refused' }));
      else server.send(message);
    });
  });
  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'Hello');
  const sockets = await alice.page.evaluate(() => window.__sockets.length);

  // 4001 code points (8002 UTF-16 units): refused locally, kept in the box.
  const tooLong = '😀'.repeat(4001);
  const input = alice.page.locator('#composer-input');
  await input.fill(tooLong);
  await alice.page.keyboard.press('Enter');
  await alice.page.locator('#alert', { hasText: 'the limit is 4000' }).waitFor();
  check((await input.inputValue()) === tooLong, 'the over-long text stays in the composer');
  check(!sent.includes(tooLong), 'the over-long text was not sent');
  await shot(alice.page, 'too-long-kept');

  // Exactly 4000 code points go through.
  const longest = '😀'.repeat(4000);
  await input.fill(longest);
  await alice.page.keyboard.press('Enter');
  await alice.page.locator('#messages li.own[data-seq] .text').filter({ hasText: longest }).waitFor();

  // A frame over 64 KiB would make the server close the connection.
  await alice.page.locator('#find-email').fill(`${'a'.repeat(70000)}@example.com`);
  await alice.page.getByRole('button', { name: 'Start', exact: true }).click();
  await alice.page.locator('#alert', { hasText: 'That email is too long.' }).waitFor();
  await alice.page.locator('#find-email').fill('');

  // Permanent refusals keep the text; Edit brings it back.
  for (const code of ['too_large', 'bad_request', 'forbidden']) {
    const text = `refuse ${code}: keep this text`;
    await input.fill(text);
    await alice.page.keyboard.press('Enter');
    const failed = alice.page.locator('#messages li.failed', { hasText: text });
    await failed.locator('.tick[data-status="failed"]').waitFor();
    check((await input.inputValue()) === '', `${code}: the composer was cleared on sending`);
    await shot(alice.page, `refused-${code}`);
    await failed.getByRole('button', { name: 'Edit' }).click();
    await failed.waitFor({ state: 'detached' });
    check((await input.inputValue()) === text, `${code}: Edit puts the text back`);
    await input.fill('');
  }
  await send(alice, 'Still connected');
  const after = await alice.page.evaluate(() => window.__sockets.length);
  check(after === sockets, `no reconnect happened (${sockets} then ${after} sockets)`);
});
