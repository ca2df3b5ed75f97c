// session_ended, each reason. `unavailable` (the login catch-up failed; the
// test puts it in place of the server's synced): the page reconnects, logs in
// again with its token and catches up. `logged_out` (a logout in another tab
// revoked the shared token, on the real server): the login form with a
// message, the token forgotten, and a password login works again.
// `expired` (sent by the test): the login form, the token forgotten.
import { baseUrl, check, person, register, scenario, shot, waitFor, watch } from './lib.mjs';

await scenario('session_ended', async (browser) => {
  const alice = await person(browser, 'Alice');
  let page = null; // the page's side of its latest socket
  let endNextSync = false;
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    page = ws;
    server.onMessage((message) => {
      if (endNextSync && JSON.parse(String(message)).type === 'synced') {
        endNextSync = false;
        ws.send(JSON.stringify({ type: 'session_ended', reason: 'unavailable' }));
        return;
      }
      ws.send(message);
    });
  });
  await register(alice);
  const token = () => alice.page.evaluate(() => localStorage.getItem('parley.token'));

  // unavailable: no synced on the first connection after the reload.
  endNextSync = true;
  await alice.page.reload();
  await waitFor(
    alice.page,
    () => window.__sockets.length === 2 && document.body.dataset.synced === 'true',
    null,
    'a second connection that caught up',
  );
  check(!endNextSync, 'the first catch-up ended with session_ended');
  check((await token()) !== null, 'the token is kept after unavailable');
  await alice.page.locator('#me-name', { hasText: 'Alice' }).waitFor();
  await shot(alice.page, 'after-unavailable');

  // logged_out: another tab of the same browser logs out.
  const other = watch(await alice.context.newPage(), 'Alice (second tab)');
  await other.goto(baseUrl);
  await other.locator('#me-name', { hasText: 'Alice' }).waitFor();
  await other.getByRole('button', { name: 'Log out' }).click();
  await other.locator('#login-form').waitFor();
  await alice.page.locator('#login-form').waitFor();
  await alice.page.locator('#alert', { hasText: 'You were logged out' }).waitFor();
  check((await token()) === null, 'the token is forgotten after logged_out');
  check(!(await alice.page.locator('#app').isVisible()), 'the app is hidden after logged_out');
  await shot(alice.page, 'after-logged-out');
  await other.close();

  await alice.page.locator('#login-email').fill(alice.email);
  await alice.page.locator('#login-password').fill(alice.password);
  await alice.page.getByRole('button', { name: 'Log in' }).click();
  await alice.page.locator('#me-name', { hasText: 'Alice' }).waitFor();
  await waitFor(alice.page, () => document.body.dataset.synced === 'true', null, 'caught up after logging in again');

  // expired.
  page.send(JSON.stringify({ type: 'session_ended', reason: 'expired' }));
  await alice.page.locator('#login-form').waitFor();
  await alice.page.locator('#alert', { hasText: 'Your session has expired' }).waitFor();
  check((await token()) === null, 'the token is forgotten after expired');
  await shot(alice.page, 'after-expired');
});
