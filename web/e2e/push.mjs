// Browser tests of the installable app and its notifications: Debian's
// Chromium, driven by playwright-core, against a real heraldd behind a
// proxy that web/push_browser_test.go starts and can switch off
// (HERALD_CONTROL/off, /on). Pushes are delivered to the service worker
// through the DevTools protocol (ServiceWorker.deliverPushMessage), as a
// push service would deliver them, and the test reads the notifications
// the worker shows.
//
//   HERALD_URL=… HERALD_CONTROL=… HERALD_USER=… HERALD_CHAT=… HERALD_SEQ=… node push.mjs

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.HERALD_URL;
const control = process.env.HERALD_CONTROL;
if (!base || !control) {
  console.error('set HERALD_URL and HERALD_CONTROL (web/push_browser_test.go does)');
  process.exit(2);
}
const user = process.env.HERALD_USER;
const chatId = Number(process.env.HERALD_CHAT);
const seq = Number(process.env.HERALD_SEQ);
const artifacts = process.env.HERALD_ARTIFACTS || 'artifacts';
mkdirSync(artifacts, { recursive: true });
const WAIT = 60_000;

// A persistent profile: installability and push need a profile that is
// not incognito, as a person's browser is.
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'herald-push-')), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
  viewport: { width: 1280, height: 800 },
});
context.setDefaultTimeout(WAIT);
await context.grantPermissions(['notifications'], { origin: base });
const page = context.pages()[0] || await context.newPage();
const problems = [];
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
page.on('console', (msg) => {
  if (msg.type() === 'error' && !/WebSocket connection to .* failed|ERR_|Failed to load resource/.test(msg.text())) problems.push(`console: ${msg.text()}`);
});
// Count permission prompts: the page must ask only when the person turns
// notifications on, never on load.
await page.addInitScript(() => {
  globalThis.__prompts = 0;
  if (globalThis.Notification) {
    const orig = Notification.requestPermission.bind(Notification);
    Notification.requestPermission = (...a) => { globalThis.__prompts++; return orig(...a); };
  }
  document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
});

const results = [];
async function scenario(name, fn) {
  if (results.some((r) => !r.ok)) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name} # SKIP after an earlier failure`);
    return;
  }
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`not ok - ${name}\n  ${String(err && err.stack || err).split('\n').join('\n  ')}`);
    await page.screenshot({ path: join(artifacts, `push-failed-${results.length}.png`) }).catch(() => {});
  }
}

const cdp = await context.newCDPSession(page);
const registrations = new Map(); // scope → registration id
cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
  for (const r of e.registrations) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
});

async function deliver(payload) {
  const id = registrations.get(base + '/');
  if (!id) throw new Error(`no service worker registration for ${base}/: ${JSON.stringify([...registrations])}`);
  await cdp.send('ServiceWorker.deliverPushMessage', { origin: base, registrationId: id, data: JSON.stringify(payload) });
}

async function worker() {
  return context.serviceWorkers()[0] || context.waitForEvent('serviceworker');
}

// notifications polls what the worker shows until want holds.
async function notifications(want, what) {
  const deadline = Date.now() + WAIT;
  let list = [];
  while (Date.now() < deadline) {
    const sw = await worker();
    list = await sw.evaluate(async () => (await self.registration.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })));
    if (want(list)) return list;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: notifications are ${JSON.stringify(list)}`);
}

await scenario('the page links a valid manifest and the app is installable', async () => {
  await page.goto(base + '/');
  const href = await page.locator('link[rel="manifest"]').getAttribute('href');
  const res = await page.request.get(new URL(href, base + '/').href);
  if (!res.ok() || !/application\/manifest\+json/.test(res.headers()['content-type'])) throw new Error(`manifest: ${res.status()} ${res.headers()['content-type']}`);
  const m = await res.json();
  if (m.name !== 'Herald' || m.start_url !== '/' || m.display !== 'standalone') throw new Error(`manifest: ${JSON.stringify(m)}`);
  for (const size of ['192x192', '512x512']) {
    const icon = m.icons.find((i) => i.sizes === size && i.type === 'image/png');
    const r = icon && await page.request.get(new URL(icon.src, base).href);
    if (!r || !r.ok() || r.headers()['content-type'] !== 'image/png') throw new Error(`icon ${size}: ${icon && icon.src} ${r && r.status()}`);
  }
  const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  if (scope !== base + '/') throw new Error(`service worker scope ${scope}`);
  await cdp.send('ServiceWorker.enable');
  // Chromium's own verdict, as its Install button uses it.
  const deadline = Date.now() + WAIT;
  let errors;
  do {
    ({ installabilityErrors: errors } = await cdp.send('Page.getInstallabilityErrors'));
    if (!errors.length) break;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  if (errors.length) throw new Error(`not installable: ${JSON.stringify(errors)}`);
  if (await page.evaluate(() => globalThis.__prompts) !== 0) throw new Error('the page asked for notification permission on load');
});

await scenario('log in; the Notifications control in settings asks for permission only when turned on', async () => {
  await page.getByRole('textbox', { name: 'Username', exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill('correct horse battery');
  await page.getByRole('button', { name: 'Log in', exact: true }).click();
  await page.getByRole('list', { name: 'Chats', exact: true }).getByRole('button').first().waitFor();
  await page.getByRole('button', { name: 'Settings', exact: true }).click();
  const sw = page.getByRole('switch', { name: 'Notifications', exact: true });
  await sw.waitFor();
  if (await page.evaluate(() => globalThis.__prompts) !== 0) throw new Error('asked before the control was used');
  await sw.click();
  // Headless Chromium has no push service to subscribe with: the control
  // either turns on or says why not; either way it asked exactly once.
  const status = page.locator('#notif-status, #dlg-settings .error');
  await page.waitForFunction(() => [...document.querySelectorAll('#notif-status, #dlg-settings .error')].some((e) => e.textContent.trim()));
  console.log(`  # the control says: ${(await status.allTextContents()).filter(Boolean).join(' ')}`);
  if (await page.evaluate(() => globalThis.__prompts) !== 1) throw new Error('turning notifications on did not ask for permission once');
  await page.screenshot({ path: join(artifacts, 'push-settings.png') });
  await page.getByRole('button', { name: 'Close', exact: true }).click();
});

await scenario('a push shows the chat and sender; a withdrawal takes it down; a secret push shows no content', async () => {
  // No window of the app is open, as when the app is closed: wait until
  // the worker sees none (a focused window would get no notification).
  await page.goto('about:blank');
  const deadline = Date.now() + WAIT;
  let wins;
  while ((wins = await (await worker()).evaluate(async () => (await self.clients.matchAll({ type: 'window', includeUncontrolled: true })).map((w) => `${w.url} focused=${w.focused}`))).length) {
    if (Date.now() > deadline) throw new Error(`the worker still sees windows: ${wins.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await deliver({ v: 1, kind: 'message', chat_id: chatId, seq, chat_kind: 'group', title: 'Crag', sender: 'alice', body: 'first pitch is wet' });
  const [n] = await notifications((l) => l.length === 1, 'after a message push');
  if (n.title !== 'Crag' || n.body !== 'alice: first pitch is wet' || n.data.url !== `/#chat=${chatId}`) throw new Error(`notification ${JSON.stringify(n)}`);
  await deliver({ v: 1, kind: 'withdraw', chat_id: chatId, seqs: [seq] });
  await notifications((l) => l.length === 0, 'after the withdrawal');
  await deliver({ v: 1, kind: 'wake', secret: true });
  const [w] = await notifications((l) => l.length === 1, 'after a secret wake-up');
  if (w.title !== 'Herald' || w.body !== 'New secret message') throw new Error(`secret notification ${JSON.stringify(w)}`);
  await (await worker()).evaluate(async () => { for (const n of await self.registration.getNotifications()) n.close(); });
});

await scenario('the notification\u2019s link opens its chat', async () => {
  await page.goto(base + `/#chat=${chatId}`);
  await page.getByRole('heading', { name: 'Crag' }).waitFor();
  await page.getByRole('list', { name: 'Messages', exact: true }).getByText('first pitch is wet').waitFor();
});

await scenario('the app shell loads from the service worker with the server gone', async () => {
  await fetch(control + '/off');
  try {
    const res = await page.goto(base + '/');
    if (!res || !res.fromServiceWorker()) throw new Error('the page did not come from the service worker');
    // The engine came from the cache too: it runs, and reports the
    // server unreachable.
    await page.getByText('Cannot reach the server').waitFor();
    await page.screenshot({ path: join(artifacts, 'push-offline.png') });
  } finally {
    await fetch(control + '/on');
  }
});

await scenario('no console errors or policy violations', async () => {
  if (problems.length) throw new Error(problems.join('\n'));
});

await context.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
