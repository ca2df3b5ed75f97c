// A connection whose server stops answering without closing it (a half-open
// socket: the laptop slept, the network changed) is given up after 20 s of
// silence while a request waits, instead of after TCP's many minutes. The
// page's own clock is driven by the test. Alice's send reached the server
// but its ok never reached her: after the reconnect her outbox sends it
// again and the server answers the repeat, so both sides show it once.
import { check, openConversation, person, register, scenario, seeMessage, send, startChat, waitFor } from './lib.mjs';

await scenario('half_open', async (browser) => {
  const alice = await person(browser, 'Alice');
  const bob = await person(browser, 'Bob');
  await alice.context.clock.install();
  let deafen = null; // the latest socket's: from then on nothing reaches the page
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    let deaf = false;
    deafen = () => {
      deaf = true;
    };
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => {
      if (!deaf) ws.send(message);
    });
  });
  await register(alice);
  await register(bob);
  await startChat(alice, bob);
  await send(alice, 'before the silence');
  await openConversation(bob, 'Alice');
  await seeMessage(bob, 'before the silence');

  const sockets = () => alice.page.evaluate(() => window.__sockets.length);
  const before = await sockets();
  await alice.page.clock.pauseAt((await alice.page.evaluate(() => Date.now())) + 1000);
  deafen();
  await alice.page.locator('#composer-input').fill('into the silence');
  await alice.page.keyboard.press('Enter');
  // The server stored and delivered it; only Alice does not hear back.
  await seeMessage(bob, 'into the silence');
  await alice.page.locator('#messages li.own.pending', { hasText: 'into the silence' }).waitFor();

  await alice.page.clock.runFor(15000);
  check((await sockets()) === before, 'the page keeps a connection that has been silent for 15 s');
  // Past 20 s the socket is given up; the first reconnect waits at most 1 s.
  await alice.page.clock.runFor(7000);
  await alice.page.clock.resume();
  await waitFor(alice.page, (n) => window.__sockets.length > n && window.__sockets[n - 1].readyState === WebSocket.CLOSED, before, 'the silent socket closed and a new one opened');
  await alice.page.locator('#messages li.own[data-seq]', { hasText: 'into the silence' }).waitFor();

  const count = (page) => page.locator('#messages li[data-seq]', { hasText: 'into the silence' }).count();
  check((await count(alice.page)) === 1, `Alice shows the message once: ${await count(alice.page)}`);
  await bob.page.locator('#messages li[data-seq]', { hasText: 'before the silence' }).waitFor();
  check((await count(bob.page)) === 1, `Bob shows the message once: ${await count(bob.page)}`);
});
