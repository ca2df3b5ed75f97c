// Shared helpers for the browser scenarios: Debian's chromium through
// playwright-core, one browser context per person, a screenshot per step,
// and a failure for any console error, page error or failed request.
import { chromium } from 'playwright-core';
import path from 'node:path';

export const baseUrl = process.env.PARLEY_URL;
const screenshots = process.env.PARLEY_SCREENSHOTS;
const WAIT_MS = 15000;

if (!baseUrl || !screenshots) {
  console.error('PARLEY_URL and PARLEY_SCREENSHOTS must be set (web_client_tests sets them)');
  process.exit(2);
}

const problems = [];
let step = 0;

export async function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

// Lets a scenario cut a page off the network and let it back: with
// window.__offline set, the page's socket is closed and new ones fail at once
// (without a console error, which a refused connection would log).
function cutOffHook() {
  const Native = window.WebSocket;
  window.__offline = false;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      if (window.__offline) {
        const refused = { readyState: 3, send() {}, close() {} };
        setTimeout(() => refused.onclose && refused.onclose({ code: 1006 }), 0);
        return refused;
      }
      super(...args);
      window.__sockets.push(this);
    }
  };
}

export async function goOffline(page) {
  await page.evaluate(() => {
    window.__offline = true;
    for (const socket of window.__sockets) socket.close();
  });
}

export async function goOnline(page) {
  await page.evaluate(() => {
    window.__offline = false;
  });
}

// Watches a page for what must never happen in it.
export function watch(page, who) {
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${who}: console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${who}: page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    problems.push(`${who}: request failed: ${request.url()} ${request.failure()?.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${who}: HTTP ${response.status()} for ${response.url()}`);
  });
  return page;
}

// A person: their own browser context (own localStorage) and page.
export async function person(browser, name, viewport = { width: 1000, height: 680 }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(WAIT_MS);
  await context.addInitScript(cutOffHook);
  const page = watch(await context.newPage(), name);
  const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
  return { name, email: `${name.toLowerCase()}-${unique}@example.com`, password: 'correct horse battery', context, page };
}

export async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: path.join(screenshots, `${String(step).padStart(2, '0')}-${name}.png`) });
}

export async function register(p) {
  await p.page.goto(baseUrl);
  await p.page.locator('#register-name').fill(p.name);
  await p.page.locator('#register-email').fill(p.email);
  await p.page.locator('#register-password').fill(p.password);
  await p.page.getByRole('button', { name: 'Create account' }).click();
  await p.page.locator('#me-name', { hasText: p.name }).waitFor({ timeout: WAIT_MS });
}

export async function startChat(p, other) {
  await p.page.locator('#find-email').fill(other.email);
  await p.page.getByRole('button', { name: 'Start', exact: true }).click();
  await p.page.locator('#chat-title', { hasText: other.name }).waitFor({ timeout: WAIT_MS });
}

export async function send(p, text) {
  await p.page.locator('#composer-input').fill(text);
  await p.page.keyboard.press('Enter');
  // Shown as sent once the server's ok came back (it then has a seq).
  await p.page
    .locator('#messages li.own[data-seq]', { hasText: text })
    .last()
    .waitFor({ timeout: WAIT_MS });
}

export async function openConversation(p, title) {
  await p.page.locator('#conversation-list button', { hasText: title }).first().click();
  await p.page.locator('#chat-title', { hasText: title }).waitFor({ timeout: WAIT_MS });
}

// Waits until a message with `text` is shown in the open conversation.
export async function seeMessage(p, text) {
  await p.page.locator('#messages li', { hasText: text }).first().waitFor({ timeout: WAIT_MS });
}

// Waits until my message `text` shows tick `status` (sent, delivered, read).
export async function seeTick(p, text, status) {
  await p.page
    .locator(`#messages li.own:has-text(${JSON.stringify(text)}) .tick[data-status="${status}"]`)
    .waitFor({ timeout: WAIT_MS });
}

export async function waitFor(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS });
  } catch (error) {
    throw new Error(`timed out waiting for ${what}: ${error.message}`);
  }
}

// The texts of the messages shown in the open conversation, in order.
export async function shownMessages(page) {
  return page.locator('#messages li[data-seq] .text').allTextContents();
}

// Every form control on the page has a label a screen reader can read.
export async function checkLabels(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button')]
      .filter((e) => (e.labels && e.labels.length > 0 ? false : !(e.getAttribute('aria-label') || e.textContent.trim())))
      .map((e) => e.outerHTML.slice(0, 80)),
  );
  check(unlabelled.length === 0, `controls without a label: ${unlabelled.join(', ')}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// Runs a scenario: fails on a thrown error or on anything watch() saw.
export async function scenario(name, body) {
  const browser = await launch();
  let failed = false;
  try {
    await body(browser);
  } catch (error) {
    failed = true;
    console.error(`${name}: ${error.stack || error}`);
  } finally {
    await browser.close();
  }
  if (problems.length > 0) {
    failed = true;
    console.error(`${name}: problems seen in the pages:\n  ${problems.join('\n  ')}`);
  }
  if (!failed) console.log(`${name}: passed`);
  process.exit(failed ? 1 : 0);
}
