// Reconnect backoff, on the page's own clock (driven by the test) with its
// jitter pinned to the middle. While the server closes every connection
// right after the login caught up, the waits keep growing: a minute brings a
// handful of reconnects, not one a second. A connection that then stays up
// starts the backoff again.
import { person, register, scenario, check } from './lib.mjs';

await scenario('reconnect', async (browser) => {
  const alice = await person(browser, 'Alice');
  await alice.context.addInitScript(() => {
    Math.random = () => 0.5;
  });
  await alice.context.clock.install();
  let closeAfterSync = false;
  let closeLatest = null; // the server's side closing the latest socket
  let cycleEnded = null; // resolves when the server closed the latest socket
  await alice.page.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer();
    let closed = false;
    let end;
    cycleEnded = new Promise((resolve) => {
      end = resolve;
    });
    closeLatest = () => {
      closed = true;
      ws.close();
      server.close();
      end();
    };
    // What the page still sends while its side closes goes nowhere.
    ws.onMessage((message) => {
      if (!closed) server.send(message);
    });
    server.onMessage((message) => {
      if (closed) return;
      ws.send(message);
      if (closeAfterSync && JSON.parse(String(message)).type === 'synced') closeLatest();
    });
  });
  await register(alice);
  await alice.page.locator('body[data-synced="true"]').waitFor();

  const sockets = () => alice.page.evaluate(() => window.__sockets.length);
  // Moves the page's clock on by `ms`; a reconnect it starts runs to its
  // close before the clock moves on.
  const advance = async (ms) => {
    const before = await sockets();
    await alice.page.clock.runFor(ms);
    if ((await sockets()) > before) await cycleEnded;
  };

  await alice.page.clock.pauseAt((await alice.page.evaluate(() => Date.now())) + 1000);
  closeAfterSync = true;
  closeLatest();
  const first = await sockets();
  for (let second = 0; second < 60; second += 1) await advance(1000);
  const reconnects = (await sockets()) - first;
  // Waits of 0.5, 1, 2, 4, 8 and 16 s: six reconnects in a minute.
  check(reconnects >= 3 && reconnects <= 7, `reconnects in a minute while the server closes after login: ${reconnects}`);

  // Let the next connection stay up past the stable time: the backoff restarts.
  closeAfterSync = false;
  await alice.page.clock.runFor(60000);
  await alice.page.locator('body[data-synced="true"]').waitFor();
  await alice.page.clock.runFor(11000);
  const before = await sockets();
  closeLatest();
  await alice.page.locator('#connection', { hasText: 'Connection lost' }).waitFor();
  await alice.page.clock.runFor(600);
  check((await sockets()) === before + 1, 'after a stable connection the first reconnect comes within half a second');
  await alice.page.locator('body[data-synced="true"]').waitFor();
});
