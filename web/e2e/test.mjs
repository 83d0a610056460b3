// End-to-end tests of Herald's web client: Debian's Chromium, driven by
// playwright-core, against a real heraldd that the Go test
// (web/e2e_test.go) starts on a free port and names in HERALD_URL. People
// are found the way assistive technology finds them: by role and
// accessible name. No step waits for a fixed time; every wait is for
// something to appear or disappear, with a generous ceiling.
//
//   HERALD_URL=http://127.0.0.1:8080 node test.mjs
//
// Screenshots go to HERALD_ARTIFACTS (default ./artifacts).

import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

const base = process.env.HERALD_URL;
if (!base) {
  console.error('set HERALD_URL to a running heraldd');
  process.exit(2);
}
const artifacts = process.env.HERALD_ARTIFACTS || 'artifacts';
mkdirSync(artifacts, { recursive: true });
const PASSWORD = 'correct horse battery';
// The ceiling for anything that should happen "now": generous, because CI
// runs this beside the other packages' tests on two cores, and it is a
// ceiling, not a measurement.
const WAIT = 60_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

const problems = []; // console errors and CSP violations, from every page

async function person(name, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  await watch(name, page);
  await page.goto(base + '/');
  return { name, context, page };
}

// watch records what a page does that the scenarios check: console
// errors, CSP violations, request URLs, WebSocket frames, and warnings
// of secret envelopes that did not decrypt.
async function watch(name, page) {
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => {
    // Failed reconnects while the context is offline, and the upload
    // request the resume scenario cuts, are the browser reporting what
    // the test did; anything else is a problem.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed|ERR_INTERNET_DISCONNECTED/.test(msg.text())) problems.push(`${name}: console: ${msg.text()}`);
    if (msg.type() === 'warning' && /^secret chat:/.test(msg.text())) secretWarnings.push(`${name}: ${msg.text()}`);
  });
  page.on('request', (req) => {
    urls.push(req.url());
  });
  // What the page sends on the WebSocket, to check secret text never
  // leaves the browser in the clear.
  page.on('websocket', (ws) => ws.on('framesent', (f) => sent.push(Buffer.from(f.payload))));
  // The policy must never have to block anything the client does itself.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
}
const urls = [];
const sent = [];
const secretWarnings = [];

// inData lists the files under the server's data directory (HERALD_DATA,
// set by the Go test) that contain marker: the server must store
// ciphertext only. Without HERALD_DATA there is nothing to search.
function inData(marker, dir = process.env.HERALD_DATA) {
  if (!dir) return [];
  const hits = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) hits.push(...inData(marker, p));
    else if (e.isFile()) {
      try { if (readFileSync(p).includes(marker)) hits.push(p); } catch { /* removed meanwhile */ }
    }
  }
  return hits;
}

// attach picks files through the Attach file button's file chooser, the
// way a person does.
async function attach(p, files) {
  const [chooser] = await Promise.all([p.page.waitForEvent('filechooser', { timeout: WAIT }), button(p, 'Attach file').click()]);
  await chooser.setFiles(files);
}
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
// fetchHash fetches a link in the page (as the browser would follow it)
// and returns the SHA-256 of what came back.
const fetchHash = (p, href) => p.page.evaluate(async (u) => {
  const buf = await (await fetch(u)).arrayBuffer();
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', buf))].map((x) => x.toString(16).padStart(2, '0')).join('');
}, href);

const textbox = (p, name) => p.page.getByRole('textbox', { name, exact: true });
const button = (p, name) => p.page.getByRole('button', { name, exact: true });
const chats = (p) => p.page.getByRole('list', { name: 'Chats', exact: true });
const messages = (p) => p.page.getByRole('list', { name: 'Messages', exact: true });
const message = (p, text) => messages(p).getByRole('listitem').filter({ hasText: text });
const visible = (loc) => loc.first().waitFor({ state: 'visible', timeout: WAIT });
const gone = (loc, timeout = WAIT) => loc.waitFor({ state: 'detached', timeout });

async function signup(p) {
  await textbox(p, 'Username').fill(p.name);
  await p.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await button(p, 'Sign up').click();
  await visible(chats(p));
  await visible(button(p, 'New chat'));
}

async function newChat(p, username) {
  await button(p, 'New chat').click();
  await textbox(p, 'Username').fill(username);
  await textbox(p, 'Username').press('Enter');
  await visible(textbox(p, 'Message'));
}

async function send(p, text) {
  await textbox(p, 'Message').fill(text);
  await button(p, 'Send').click();
  await visible(message(p, text));
}

async function openChat(p, title) {
  // The item's name starts with the chat's title (after a kind icon).
  const esc = title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await chats(p).getByRole('button', { name: new RegExp(`^(\\S+ )?${esc}\\b`) }).first().click();
  await visible(messages(p));
}

// ---- a tiny runner: scenarios run in order and share the people ----

const results = [];
async function scenario(name, fn) {
  // The scenarios build on each other (same people, same chats): after a
  // failure the rest would only wait out their ceilings.
  if (results.some((r) => !r.ok)) {
    results.push({ name, ok: false, skipped: true });
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
    console.log(`not ok - ${name}\n  ${String(err.stack || err).split('\n').join('\n  ')}`);
    for (const p of [alice, bobby, carol].filter(Boolean)) {
      await p.page.screenshot({ path: join(artifacts, `failed-${name.replace(/\W+/g, '-')}-${p.name}.png`) }).catch(() => {});
    }
  }
}

let alice; let bobby; let carol;

// Each page compiles the 10 MB engine: the scenarios use as few pages as
// they can, so that CI's two cores stay free for the other packages' tests.
await scenario('first load: sign-in form ready, downloads measured', async () => {
  alice = await person('alice');
  const p = alice;
  await visible(textbox(p, 'Username'));
  // Ready means the WebAssembly engine answered: the form works from here.
  await p.page.waitForFunction(() => globalThis.herald && typeof globalThis.herald.call === 'function', null, { timeout: WAIT });
  const m = await p.page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const sum = (f) => res.reduce((a, r) => a + f(r), nav.transferSize || 0);
    return {
      ready_ms: Math.round(performance.now()),
      dom_content_loaded_ms: Math.round(nav.domContentLoadedEventEnd),
      transferred_bytes: sum((r) => r.transferSize || 0),
      decoded_bytes: res.reduce((a, r) => a + (r.decodedBodySize || 0), nav.decodedBodySize || 0),
      files: res.map((r) => `${r.name.replace(/^.*\//, '')}:${r.transferSize}/${r.decodedBodySize}`),
    };
  });
  console.log(`metrics ${JSON.stringify(m)}`);
  await p.page.screenshot({ path: join(artifacts, 'signin-desktop.png') });
});

await scenario('alice and bobby sign up through the form', async () => {
  bobby = await person('bobby');
  await signup(alice);
  await signup(bobby);
});

await scenario('New chat by username; a message reaches bobby in real time', async () => {
  await newChat(alice, 'bobby');
  await send(alice, 'Hello bobby');
  // bobby's chat list shows the new chat with its unread badge.
  const item = chats(bobby).getByRole('button').filter({ hasText: 'alice' });
  await visible(item.filter({ hasText: 'Hello bobby' }));
  await visible(item.filter({ hasText: '1 unread' }));
  await openChat(bobby, 'alice');
  await visible(message(bobby, 'Hello bobby'));
  // Now open: the next one appears in the Messages list as it is sent.
  await send(alice, 'Are you there?');
  await visible(message(bobby, 'Are you there?'));
  // bobby has read both: alice sees the read ticks.
  await visible(message(alice, 'Are you there?').getByLabel('read', { exact: true }));
});

await scenario('bobby replies; typing shows; alice sees the reply quoted', async () => {
  await textbox(bobby, 'Message').pressSequentially('Yes');
  await visible(alice.page.getByText('bobby is typing…'));
  await textbox(bobby, 'Message').fill('');
  await message(bobby, 'Are you there?').getByRole('button', { name: /Actions for message/ }).click();
  await button(bobby, 'Reply').click();
  await send(bobby, 'Yes, here!');
  const reply = message(alice, 'Yes, here!');
  await visible(reply);
  await visible(reply.filter({ hasText: 'Are you there?' })); // the quote
});

await scenario('edit, delete for everyone, delete for me', async () => {
  await send(alice, 'Typo herre');
  await visible(message(bobby, 'Typo herre'));
  await message(alice, 'Typo herre').getByRole('button', { name: /Actions for message/ }).click();
  await button(alice, 'Edit').click();
  await textbox(alice, 'Message').fill('Typo fixed');
  await textbox(alice, 'Message').press('Enter');
  await visible(message(bobby, 'Typo fixed').filter({ hasText: 'edited' }));

  await send(alice, 'Unsend me');
  await visible(message(bobby, 'Unsend me'));
  await message(alice, 'Unsend me').getByRole('button', { name: /Actions for message/ }).click();
  await button(alice, 'Delete for everyone').click();
  await gone(message(bobby, 'Unsend me'));
  await gone(message(alice, 'Unsend me'));

  await message(bobby, 'Typo fixed').getByRole('button', { name: /Actions for message/ }).click();
  await button(bobby, 'Delete for me').click();
  await gone(message(bobby, 'Typo fixed'));
  await visible(message(alice, 'Typo fixed')); // still there for alice
});

await scenario('formatting from the composer; React and Pin by accessible name, live on both sides', async () => {
  // Ctrl+B wraps the selection in ** markers, which become a bold entity.
  const box = textbox(alice, 'Message');
  await box.fill('noon');
  await box.press('Control+A');
  await box.press('Control+B');
  if ((await box.inputValue()) !== '**noon**') throw new Error(`Ctrl+B gave ${await box.inputValue()}`);
  await box.press('End');
  await box.pressSequentially(' at the _lake_');
  await box.press('Enter');
  const meet = (p) => message(p, 'noon at the lake');
  await visible(meet(bobby).locator('strong', { hasText: 'noon' }));
  await visible(meet(bobby).locator('em', { hasText: 'lake' }));
  await visible(button(alice, 'Bold')); // the toolbar

  await meet(alice).getByRole('button', { name: /Actions for message/ }).click();
  await button(alice, 'React').click();
  await alice.page.getByRole('group', { name: 'Reactions to choose from' }).getByRole('button', { name: '👍', exact: true }).click();
  await visible(meet(alice).getByRole('button', { name: '👍 1', pressed: true }));
  await visible(meet(bobby).getByRole('button', { name: '👍 1', pressed: false })); // pushed
  await meet(bobby).getByRole('button', { name: '👍 1' }).click();
  await visible(meet(bobby).getByRole('button', { name: '👍 2', pressed: true }));
  await visible(meet(alice).getByRole('button', { name: '👍 2', pressed: true }));

  await meet(alice).getByRole('button', { name: /Actions for message/ }).click();
  await button(alice, 'Pin').click();
  const bar = (p) => p.page.getByRole('region', { name: 'Pinned message' });
  await visible(bar(bobby).filter({ hasText: 'noon at the lake' }));
  await visible(message(bobby, '@alice pinned “noon at the lake”'));
  await visible(meet(bobby).getByRole('img', { name: 'pinned' }));
  await meet(bobby).getByRole('button', { name: /Actions for message/ }).click();
  await button(bobby, 'Unpin').click(); // both people pin in a direct chat
  await bar(alice).waitFor({ state: 'hidden', timeout: WAIT });
});

await scenario('a self-destructing message counts down and vanishes for both', async () => {
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: '5 s' });
  await send(alice, 'This will vanish');
  // bobby has the chat open, so he reads it and its countdown starts.
  await visible(message(bobby, 'This will vanish'));
  await visible(message(alice, 'This will vanish').getByLabel(/disappears in/));
  await gone(message(bobby, 'This will vanish'));
  await gone(message(alice, 'This will vanish'));
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: 'Off' });
});

await scenario('a chat-wide auto-delete timer and mute', async () => {
  await alice.page.getByRole('combobox', { name: 'Auto-delete' }).selectOption({ label: '1 day' });
  // The change is announced in the chat, to both sides.
  await visible(message(bobby, 'set messages to auto-delete'));
  await send(alice, 'Gone tomorrow');
  // Counted from sending: the countdown shows at once, on both sides.
  await visible(message(alice, 'Gone tomorrow').getByLabel(/disappears in/));
  await visible(message(bobby, 'Gone tomorrow').getByLabel(/disappears in/));
  await alice.page.getByRole('combobox', { name: 'Auto-delete' }).selectOption({ label: 'Off' });
  await visible(message(bobby, 'turned off auto-delete'));

  await button(bobby, 'Mute').click();
  await visible(chats(bobby).getByLabel('muted', { exact: true }));
  await button(bobby, 'Unmute').click();
  await gone(chats(bobby).getByLabel('muted', { exact: true }));
});

await scenario('bobby goes offline; what alice sends meanwhile appears when he is back, without reload', async () => {
  const before = await bobby.page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  await bobby.context.setOffline(true);
  // The engine notices the socket is gone.
  await visible(bobby.page.getByText('Connecting…'));
  await send(alice, 'Missed 1');
  await send(alice, 'Missed 2');
  await send(alice, 'Missed 3');
  // Nothing reached bobby while he was cut off...
  if (await message(bobby, 'Missed').count()) throw new Error('bobby got messages while offline');
  await bobby.context.setOffline(false);
  for (const t of ['Missed 1', 'Missed 2', 'Missed 3']) await visible(message(bobby, t));
  const after = await bobby.page.evaluate(() => performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin);
  if (before !== after) throw new Error('the page was reloaded');
  // In order, after what came before.
  const texts = await messages(bobby).getByRole('listitem').allTextContents();
  const idx = ['Missed 1', 'Missed 2', 'Missed 3'].map((t) => texts.findIndex((x) => x.includes(t)));
  if (!(idx[0] < idx[1] && idx[1] < idx[2])) throw new Error(`out of order: ${idx}`);
  await alice.page.screenshot({ path: join(artifacts, 'chat-desktop.png') });
});

await scenario('infinite scroll back through history', async () => {
  // Seed through alice's own engine (the UI is not the point here).
  await alice.page.evaluate(async () => {
    const chats = JSON.parse(await globalThis.herald.call('chats.list', '{}')).dialogs;
    const chat = chats.find((d) => d.chat.kind === 'direct').chat.id;
    for (let i = 1; i <= 120; i++) {
      await globalThis.herald.call('messages.send', JSON.stringify({ peer: { chat_id: chat }, text: `Seed ${i}.` }));
    }
  });
  await visible(message(bobby, 'Seed 120.'));
  // Reopen from the list so only the newest page is loaded.
  await button(bobby, 'New group').focus();
  await openChat(bobby, 'alice');
  await visible(message(bobby, 'Seed 120.'));
  const scroller = bobby.page.locator('#scroller');
  for (let i = 0; i < 20 && !(await message(bobby, 'Hello bobby').count()); i++) {
    await scroller.evaluate((e) => { e.scrollTop = 0; });
    await bobby.page.waitForFunction(() => !document.querySelector('#history-status').textContent.startsWith('Loading'), null, { timeout: WAIT });
  }
  await visible(message(bobby, 'Hello bobby'));
  await visible(message(bobby, 'Seed 1.'));
});

await scenario('a group: created by alice, bobby gets the messages', async () => {
  await button(alice, 'New group').click();
  await textbox(alice, 'Group name').fill('Weekend plans');
  await textbox(alice, 'Members').fill('bobby');
  await button(alice, 'Create group').click();
  await visible(alice.page.getByRole('heading', { name: 'Weekend plans' }));
  await send(alice, 'Hike on Saturday?');
  await openChat(bobby, 'Weekend plans');
  await visible(message(bobby, 'Hike on Saturday?'));
  await send(bobby, 'I am in');
  await visible(message(alice, 'I am in'));
  // A mention of alice while she looks elsewhere: the chat list's "@".
  await openChat(alice, 'bobby');
  await send(bobby, '@alice bring the map');
  const group = chats(alice).getByRole('button').filter({ hasText: 'Weekend plans' });
  await visible(group.getByRole('img', { name: '1 unread mention' }));
  await openChat(alice, 'Weekend plans');
  await visible(message(alice, '@alice bring the map'));
  await gone(group.getByRole('img', { name: '1 unread mention' }));
});

await scenario('a channel: found by name, previewed, joined; a post reaches the subscriber', async () => {
  await button(alice, 'New channel').click();
  await textbox(alice, 'Channel name').fill('dailynews');
  await textbox(alice, 'Title').fill('Daily News');
  await button(alice, 'Create channel').click();
  await visible(alice.page.getByRole('heading', { name: 'Daily News' }));
  await send(alice, 'Edition 1');

  await button(bobby, 'Find channel').click();
  await textbox(bobby, 'Channel name').fill('@dailynews');
  await button(bobby, 'Preview').click();
  await visible(message(bobby, 'Edition 1'));
  await button(bobby, 'Join').click();
  await visible(bobby.page.getByText('Only the channel’s admins can post here.'));
  await send(alice, 'Edition 2');
  await visible(message(bobby, 'Edition 2'));
  // A post is signed with the channel's title, as people know it, not its @name.
  const signedBy = await message(bobby, 'Edition 2').locator('.from').first().textContent();
  if (signedBy !== 'Daily News') throw new Error(`a post is signed ${JSON.stringify(signedBy)}, want "Daily News"`);
  await visible(chats(bobby).getByRole('button').filter({ hasText: 'Daily News' }));
});

await scenario('files: alice sends a photo, a video and a document; bobby sees, plays and downloads them', async () => {
  await openChat(alice, 'bobby');
  await openChat(bobby, 'alice');
  // A real PNG, drawn by the browser: a sunset over the sea.
  const png = Buffer.from(await alice.page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 480; c.height = 320;
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 0, 200);
    sky.addColorStop(0, '#2b3a8c'); sky.addColorStop(0.6, '#e9735b'); sky.addColorStop(1, '#f7c66b');
    g.fillStyle = sky; g.fillRect(0, 0, 480, 200);
    g.fillStyle = '#ffd98a'; g.beginPath(); g.arc(240, 200, 46, Math.PI, 0); g.fill();
    const sea = g.createLinearGradient(0, 200, 0, 320);
    sea.addColorStop(0, '#1d5e8c'); sea.addColorStop(1, '#0b2a45');
    g.fillStyle = sea; g.fillRect(0, 200, 480, 120);
    return c.toDataURL('image/png').split(',')[1];
  }), 'base64');
  await attach(alice, { name: 'sunset.png', mimeType: 'image/png', buffer: png });
  const thumb = messages(bobby).getByRole('img', { name: 'sunset.png', exact: true });
  await visible(thumb);
  await bobby.page.waitForFunction(() => {
    const i = document.querySelector('#messages img[alt="sunset.png"]');
    return i && i.complete && i.naturalWidth > 0;
  }, null, { timeout: WAIT });
  // The thumbnail came through a signed link, not the token.
  const src = await thumb.getAttribute('src');
  if (!/sig=.*thumb=1/.test(src)) throw new Error(`thumbnail src ${src}`);

  // A video with a caption from the Message field.
  await textbox(alice, 'Message').fill('Our clip from Saturday');
  await attach(alice, { name: 'clip.webm', mimeType: 'video/webm', buffer: readFileSync(new URL('../../server/testdata/clip.webm', import.meta.url)) });
  await visible(message(bobby, 'Our clip from Saturday'));
  const video = message(bobby, 'Our clip from Saturday').locator('video');
  await visible(video);
  await video.evaluate(async (v) => {
    v.muted = true; // autoplay rules allow a muted play without a gesture
    await v.play();
  });
  await bobby.page.waitForFunction(() => document.querySelector('#messages video').currentTime > 0, null, { timeout: WAIT });
  const mid = await video.evaluate(async (v) => {
    const target = v.duration / 2;
    const seeked = new Promise((r) => v.addEventListener('seeked', r, { once: true }));
    v.currentTime = target;
    await seeked;
    return target;
  });
  // Playing on from the middle: the server's ranges serve the seek.
  await bobby.page.waitForFunction((t) => document.querySelector('#messages video').currentTime > t + 0.2, mid, { timeout: WAIT });
  await video.evaluate((v) => v.pause());

  // A document opens or downloads through its link: the bytes are alice's.
  const pdf = Buffer.from('%PDF-1.4\n% Herald test document\n' + 'stream '.repeat(800) + '\n%%EOF\n');
  await attach(alice, { name: 'minutes.pdf', mimeType: 'application/pdf', buffer: pdf });
  const doc = messages(bobby).getByRole('link', { name: /^Download minutes\.pdf, / });
  await visible(doc);
  await bobby.page.waitForFunction(() => (document.querySelector('#messages a.doc[download="minutes.pdf"]') || {}).href, null, { timeout: WAIT });
  if (await fetchHash(bobby, await doc.getAttribute('href')) !== sha256(pdf)) throw new Error('the document link served other bytes');
  await alice.page.screenshot({ path: join(artifacts, 'files-desktop.png') });
});

await scenario('an upload cut off mid-way resumes after a reload from where the server stopped', async () => {
  // Two chunks of the SDK's 8 MiB; the second one's request is cut.
  const big = randomBytes(8 * 1024 * 1024 + 123457);
  // From a file on disk: the browser reads it by path, where a buffer
  // would cross the DevTools protocol in base64, twice.
  const bigPath = join(mkdtempSync(join(tmpdir(), 'herald-e2e-')), 'backup.bin');
  writeFileSync(bigPath, big);
  const posts = []; const offsets = [];
  const watch = (r) => {
    if (!r.url().includes('/v1/uploads/')) return;
    if (r.method() === 'POST') posts.push(r.url());
    if (r.method() === 'PATCH') offsets.push(Number(r.headers()['upload-offset']));
  };
  alice.page.on('request', watch);
  let cut = false;
  await alice.page.route('**/v1/uploads/**', (route) => {
    const r = route.request();
    if (!cut && r.method() === 'PATCH' && Number(r.headers()['upload-offset']) > 0) {
      cut = true;
      return route.abort('internetdisconnected');
    }
    return route.continue();
  });
  try {
    const T0 = Date.now();
    alice.page.on('request', (r) => { if (r.url().includes('/v1/')) console.log('TIMING req', r.method(), Date.now() - T0); });
    await attach(alice, bigPath);
    console.log('TIMING attached', Date.now() - T0);
    await visible(button(alice, 'Resume upload'));
    console.log('TIMING cut', Date.now() - T0);
    await visible(alice.page.getByRole('progressbar', { name: 'Uploading backup.bin', exact: true }));
    // Resume upload would continue in place; a reload is the harder case:
    // a fresh engine finds the upload through localStorage when the same
    // file is attached again.
    await alice.page.reload();
    await openChat(alice, 'bobby');
    await attach(alice, bigPath);
    const doc = messages(bobby).getByRole('link', { name: /^Download backup\.bin, / });
    await visible(doc);
    await bobby.page.waitForFunction(() => (document.querySelector('#messages a.doc[download="backup.bin"]') || {}).href, null, { timeout: WAIT });
    if (await fetchHash(bobby, await doc.getAttribute('href')) !== sha256(big)) throw new Error('the resumed file differs');
  } finally {
    alice.page.off('request', watch);
    await alice.page.unroute('**/v1/uploads/**');
  }
  // One upload, and its first chunk sent once: the retry continued it.
  if (posts.length !== 1) throw new Error(`${posts.length} uploads created`);
  if (offsets.filter((o) => o === 0).length !== 1) throw new Error(`chunks sent at ${offsets}`);
});

await scenario('a secret chat: decrypted in the browser, lock shown, timers, equal safety numbers', async () => {
  await button(alice, 'New secret chat').click();
  await textbox(alice, 'Username').fill('bobby');
  await button(alice, 'Start secret chat').click();
  await visible(alice.page.getByRole('img', { name: 'Secret chat', exact: true }));
  await send(alice, 'Top secret hello');
  const item = chats(bobby).getByRole('button', { name: /^Secret chat with alice/ });
  await visible(item);
  await item.click();
  await visible(message(bobby, 'Top secret hello'));
  await visible(bobby.page.getByRole('img', { name: 'Secret chat', exact: true }));
  await send(bobby, 'Secret reply');
  await visible(message(alice, 'Secret reply'));
  // The server carried ciphertext only.
  for (const t of ['Top secret hello', 'Secret reply']) {
    if (sent.some((b) => b.includes(t))) throw new Error(`"${t}" went to the server in the clear`);
  }

  // A per-message timer: starts when bobby reads it, then gone on both.
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: '5 s' });
  await send(alice, 'Burn after reading');
  await visible(message(bobby, 'Burn after reading'));
  await visible(message(alice, 'Burn after reading').getByLabel(/disappears in/));
  await gone(message(bobby, 'Burn after reading'));
  await gone(message(alice, 'Burn after reading'));
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: 'Off' });

  const safety = async (p) => {
    await button(p, 'Safety number').click();
    await p.page.waitForFunction(() => /\d{5} \d{5}/.test(document.querySelector('#safety-number').textContent), null, { timeout: WAIT });
    return p.page.locator('#safety-number').textContent();
  };
  const a = await safety(alice);
  const b = await safety(bobby);
  if (a !== b) throw new Error(`safety numbers differ: ${a} / ${b}`);
  if (await alice.page.getByText('✓ Verified').count()) throw new Error('verified before Verify');
  await button(alice, 'Verify').click();
  await visible(alice.page.getByText('✓ Verified'));
  await alice.page.screenshot({ path: join(artifacts, 'secret-safety-desktop.png') });
  await button(alice, 'Close').click();
  await button(bobby, 'Close').click();
  await alice.page.screenshot({ path: join(artifacts, 'secret-desktop.png') });
  await bobby.page.setViewportSize({ width: 390, height: 760 });
  await bobby.page.screenshot({ path: join(artifacts, 'secret-phone.png') });
  await bobby.page.setViewportSize({ width: 1280, height: 800 });
  // The keys and messages are in bobby's IndexedDB: after a reload the
  // chat is still listed and decrypted, and the expired one stays gone.
  await bobby.page.reload();
  await visible(item);
  await item.click();
  await visible(message(bobby, 'Secret reply'));
  await visible(message(bobby, 'Top secret hello'));
  if (await message(bobby, 'Burn after reading').count()) throw new Error('an expired secret message came back');
});

await scenario('a file in a secret chat: encrypted in the browser, downloaded and decrypted by bobby, never in the clear on the server', async () => {
  // Both are in the secret chat from the scenario before.
  await visible(alice.page.getByRole('img', { name: 'Secret chat', exact: true }));
  await visible(bobby.page.getByRole('img', { name: 'Secret chat', exact: true }));
  const marker = 'OKAPI-3c9e-SECRET-FILE-MARKER';
  const plain = Buffer.from(`${marker} page of the secret plan\n`.repeat(3000));
  // Everything alice's page uploads, to check it is ciphertext.
  const bodies = [];
  const onReq = (r) => { if (r.url().includes('/v1/uploads')) { const b = r.postDataBuffer(); if (b) bodies.push(b); } };
  alice.page.on('request', onReq);
  // The upload bar is the one normal files use: its status line is
  // recorded as it changes, to see the progress it showed.
  await alice.page.evaluate(() => {
    const s = document.querySelector('#upload-status');
    globalThis.uploadStatus = [];
    new MutationObserver(() => globalThis.uploadStatus.push(s.textContent)).observe(s, { childList: true, characterData: true, subtree: true });
  });
  try {
    await textbox(alice, 'Message').fill('the plan, attached');
    await attach(alice, { name: 'plan.txt', mimeType: 'text/plain', buffer: plain });
    const mine = messages(alice).getByRole('button', { name: /^Download plan\.txt, / });
    await visible(mine);
  } finally {
    alice.page.off('request', onReq);
  }
  const shown = await alice.page.evaluate(() => globalThis.uploadStatus);
  if (!shown.includes('Encrypting…') || !shown.includes('100%')) throw new Error(`the upload bar showed ${JSON.stringify(shown)}`);
  if (await alice.page.locator('#upload').isVisible()) throw new Error('the upload bar stayed after the file was sent');
  const card = messages(bobby).getByRole('button', { name: /^Download plan\.txt, / });
  await visible(card);
  await visible(message(bobby, 'the plan, attached'));
  const [dl] = await Promise.all([bobby.page.waitForEvent('download', { timeout: WAIT }), card.click()]);
  if (dl.suggestedFilename() !== 'plan.txt') throw new Error(`downloaded as ${dl.suggestedFilename()}`);
  const got = readFileSync(await dl.path());
  if (sha256(got) !== sha256(plain)) throw new Error(`bobby's plan.txt differs: ${got.length} bytes, not ${plain.length}`);
  // The server had ciphertext only: in the upload, on the socket, on disk.
  if (!bodies.length || bodies.reduce((n, b) => n + b.length, 0) < plain.length) throw new Error(`uploads carried ${bodies.length} bodies`);
  if (bodies.some((b) => b.includes(marker))) throw new Error('the file was uploaded in the clear');
  if (sent.some((b) => b.includes(marker) || b.includes('the plan, attached'))) throw new Error('the file or its caption crossed the socket in the clear');
  const hits = inData(marker).concat(inData('the plan, attached'));
  if (hits.length) throw new Error(`the server stored the plaintext: ${hits}`);

  // A photo with a 5 s timer: shown inline, decrypted in the page, and
  // gone on both sides once bobby has seen it, as a text would be.
  const png = Buffer.from(await alice.page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 240; c.height = 160;
    const g = c.getContext('2d');
    g.fillStyle = '#1d5e8c'; g.fillRect(0, 0, 240, 160);
    g.fillStyle = '#ffd98a'; g.beginPath(); g.arc(120, 100, 40, 0, 2 * Math.PI); g.fill();
    return c.toDataURL('image/png').split(',')[1];
  }), 'base64');
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: '5 s' });
  await attach(alice, { name: 'moon.png', mimeType: 'image/png', buffer: png });
  const photo = messages(bobby).getByRole('img', { name: 'moon.png', exact: true });
  await visible(photo);
  await bobby.page.waitForFunction(() => {
    const i = document.querySelector('#messages img[alt="moon.png"]');
    return i && i.complete && i.naturalWidth === 240;
  }, null, { timeout: WAIT });
  await bobby.page.screenshot({ path: join(artifacts, 'secret-file-desktop.png') });
  await visible(messages(alice).getByRole('button', { name: /^Download moon\.png, / }));
  await gone(messages(bobby).getByRole('button', { name: /^Download moon\.png, / }));
  await gone(messages(alice).getByRole('button', { name: /^Download moon\.png, / }));
  await alice.page.getByLabel('Self-destruct timer').selectOption({ label: 'Off' });
  if (secretWarnings.length) throw new Error(secretWarnings.join('\n'));
});

await scenario('two tabs of one account: the Web Lock keeps the secret sessions in step', async () => {
  // A second tab in bobby's browser: the same token, the same device,
  // the same IndexedDB keys and sessions.
  const page = await bobby.context.newPage();
  await watch('bobby-tab2', page);
  await page.goto(base + '/');
  const tab2 = { name: 'bobby-tab2', context: bobby.context, page };
  try {
    const item2 = chats(tab2).getByRole('button', { name: /^Secret chat with alice/ });
    await visible(item2);
    await item2.click();
    await visible(message(tab2, 'the plan, attached'));
    // Pushed to both tabs at once: one decrypts and stores each, the
    // other sees a replay and redraws from the shared store.
    for (let i = 1; i <= 4; i++) await send(alice, `To both tabs ${i}`);
    for (let i = 1; i <= 4; i++) {
      await visible(message(bobby, `To both tabs ${i}`));
      await visible(message(tab2, `To both tabs ${i}`));
    }
    // Both tabs send at the same moment, three times: without the lock
    // both would encrypt with the same chain step, and alice would drop
    // one as a replay.
    for (let i = 1; i <= 3; i++) {
      await Promise.all([send(bobby, `Tab one says ${i}`), send(tab2, `Tab two says ${i}`)]);
    }
    for (let i = 1; i <= 3; i++) {
      await visible(message(alice, `Tab one says ${i}`));
      await visible(message(alice, `Tab two says ${i}`));
    }
    // And alice's replies still decrypt in both tabs.
    await send(alice, 'Both of you, still in step');
    await visible(message(bobby, 'Both of you, still in step'));
    await visible(message(tab2, 'Both of you, still in step'));
  } finally {
    await page.close();
  }
  // After a reload the one tab left goes on: nothing was written back stale.
  await bobby.page.reload();
  const item = chats(bobby).getByRole('button', { name: /^Secret chat with alice/ });
  await visible(item);
  await item.click();
  await visible(message(bobby, 'Tab two says 3'));
  await send(alice, 'After the second tab closed');
  await visible(message(bobby, 'After the second tab closed'));
  await send(bobby, 'Still decrypting');
  await visible(message(alice, 'Still decrypting'));
  if (secretWarnings.length) throw new Error(`envelopes did not decrypt:\n${secretWarnings.join('\n')}`);
});

await scenario('a key change in a secret chat: nothing sent until alice accepts, from a banner with Verify and Accept', async () => {
  // Plant in alice's store what the engine records when a bundle or a
  // message of one of bobby's devices brings an identity key other than
  // the pinned one: a pending change (here of the same key, so that the
  // session works again once she accepts).
  const planted = await alice.page.evaluate(async () => {
    const req = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
    const info = (await indexedDB.databases()).find((d) => d.name.startsWith('herald-secret-'));
    const db = await req(indexedDB.open(info.name));
    const st = db.transaction('kv', 'readwrite').objectStore('kv');
    let n = 0;
    for (const k of await req(st.getAllKeys())) {
      if (!k.startsWith('trust/')) continue;
      await req(st.put(await req(st.get(k)), 'pending/' + k.slice('trust/'.length)));
      n++;
    }
    db.close();
    return n;
  });
  if (!planted) throw new Error('alice has no pinned key to change');
  await send(alice, 'Held back by the key change');
  const banner = alice.page.getByRole('alert').filter({ hasText: /safety number changed: verify again or accept/ });
  await visible(banner);
  await visible(alice.page.locator('#messages li.failed').filter({ hasText: 'Held back by the key change' }));
  await alice.page.screenshot({ path: join(artifacts, 'secret-key-changed-desktop.png') });
  await banner.getByRole('button', { name: 'Verify', exact: true }).click();
  await alice.page.waitForFunction(() => /safety number changed/.test(document.querySelector('#safety-state').textContent), null, { timeout: WAIT });
  if (await alice.page.locator('#verify-btn').isVisible()) throw new Error('Verify is offered for the number before the change');
  await button(alice, 'Close').click();
  await banner.getByRole('button', { name: 'Accept', exact: true }).click();
  await gone(banner);
  await send(alice, 'Sent after accepting');
  await visible(message(bobby, 'Sent after accepting'));
  if (await message(bobby, 'Held back by the key change').count()) throw new Error('the message sent during the key change reached bobby');
});

await scenario("a bot's inline keyboard: shown under its message, pressed, the bot's answer shown", async () => {
  const token = process.env.HERALD_BOT_TOKEN;
  const name = process.env.HERALD_BOT;
  if (!token || !name) throw new Error('HERALD_BOT_TOKEN and HERALD_BOT are not set');
  // The bot: long polling on the Bot API, as any Telegram bot library
  // does; it answers a message with a keyboard, and a press with a notice.
  const api = async (method, params) => {
    const res = await fetch(`${base}/bot${token}/${method}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(params),
    });
    const j = await res.json();
    if (!j.ok) throw new Error(`${method}: ${j.description}`);
    return j.result;
  };
  let stop = false;
  let answered = false;
  const bot = (async () => {
    let offset = 0;
    while (!stop) {
      const ups = await api('getUpdates', { offset, timeout: 2 });
      for (const u of ups) {
        offset = u.update_id + 1;
        if (u.message) {
          await api('sendMessage', {
            chat_id: u.message.chat.id, parse_mode: 'HTML',
            text: 'Formatted: <b>Bold</b>, <i>italic</i>, <code>x = 1</code>, <a href="https://example.org/">a link</a>, &lt;img src=x onerror=alert(1)&gt;',
          });
          await api('sendMessage', {
            chat_id: u.message.chat.id, text: 'Pick one',
            reply_markup: { inline_keyboard: [[{ text: 'Yes', callback_data: 'yes' }, { text: 'No', callback_data: 'no' }]] },
          });
        }
        if (u.callback_query) {
          await api('answerCallbackQuery', { callback_query_id: u.callback_query.id, text: `You pressed ${u.callback_query.data}` });
          answered = true;
        }
      }
    }
  })();
  try {
    await newChat(alice, name);
    await send(alice, '/start');
    // The bot's parse_mode=HTML formatting shows as formatting; markup in
    // the text stays text.
    const fmt = message(alice, 'Formatted:');
    await visible(fmt);
    const shown = await fmt.locator('.text').first().evaluate((t) => ({
      bold: [...t.querySelectorAll('strong')].map((e) => e.textContent),
      italic: [...t.querySelectorAll('em')].map((e) => e.textContent),
      code: [...t.querySelectorAll('code')].map((e) => e.textContent),
      links: [...t.querySelectorAll('a')].map((e) => `${e.textContent}=${e.getAttribute('href')}`),
      imgs: t.querySelectorAll('img').length,
      text: t.textContent,
    }));
    if (shown.bold.join() !== 'Bold' || shown.italic.join() !== 'italic' || shown.code.join() !== 'x = 1' ||
        shown.links.join() !== 'a link=https://example.org/' || shown.imgs !== 0 || !shown.text.includes('<img src=x onerror=alert(1)>')) {
      throw new Error(`formatting shown as ${JSON.stringify(shown)}`);
    }
    const keyboard = message(alice, 'Pick one').getByRole('group', { name: /^Buttons from/ });
    await visible(keyboard);
    await keyboard.getByRole('button', { name: 'Yes', exact: true }).click();
    await visible(alice.page.getByRole('status').filter({ hasText: 'You pressed yes' }));
    await alice.page.screenshot({ path: join(artifacts, 'bot-desktop.png') });
    if (!answered) throw new Error('the bot never saw the press');
  } finally {
    stop = true;
    await bot.catch(() => {});
  }
});

await scenario('keyboard only: sign up and send a message', async () => {
  carol = await person('carol');
  const kb = carol.page.keyboard;
  await visible(textbox(carol, 'Username'));
  await carol.page.waitForFunction(() => document.activeElement && document.activeElement.id === 'auth-username', null, { timeout: WAIT });
  await kb.type('carol');
  await kb.press('Tab');
  await kb.type(PASSWORD);
  await kb.press('Tab'); // Log in
  await kb.press('Tab'); // Sign up
  await kb.press('Enter');
  await visible(chats(carol));
  // Focus lands on New chat.
  await carol.page.waitForFunction(() => document.activeElement && document.activeElement.id === 'new-chat-btn', null, { timeout: WAIT });
  await kb.press('Enter');
  await kb.type('alice');
  await kb.press('Enter');
  await carol.page.waitForFunction(() => document.activeElement && document.activeElement.id === 'message-input', null, { timeout: WAIT });
  await kb.type('Hi alice, typed with keys only');
  await kb.press('Enter');
  await visible(message(carol, 'Hi alice, typed with keys only'));
  await visible(chats(alice).getByRole('button').filter({ hasText: 'Hi alice, typed with keys only' }));
});

await scenario('screenshots at desktop and phone width', async () => {
  await openChat(alice, 'Daily News');
  await alice.page.screenshot({ path: join(artifacts, 'channel-desktop.png') });
  await alice.page.emulateMedia({ colorScheme: 'dark' });
  await openChat(alice, 'Weekend plans');
  await alice.page.screenshot({ path: join(artifacts, 'group-desktop-dark.png') });
  await alice.page.emulateMedia({ colorScheme: 'light' });
  await bobby.page.setViewportSize({ width: 390, height: 760 });
  await button(bobby, 'Back to chats').click();
  await bobby.page.screenshot({ path: join(artifacts, 'chats-phone.png') });
  await openChat(bobby, 'alice');
  await bobby.page.screenshot({ path: join(artifacts, 'chat-phone.png') });
  // Scrolled back to the attachments.
  await messages(bobby).getByRole('img', { name: 'sunset.png', exact: true }).scrollIntoViewIfNeeded();
  await bobby.page.screenshot({ path: join(artifacts, 'files-phone.png') });
  await button(bobby, 'Back to chats').click();
  await openChat(bobby, 'Weekend plans');
  await bobby.page.screenshot({ path: join(artifacts, 'group-phone.png') });
});

await scenario('a long chat list loads in pages as it is scrolled', async () => {
  const danny = await person('danny');
  await signup(danny);
  // Seed through danny's own engine: 130 groups, more than a page of 100.
  await danny.page.evaluate(async () => {
    for (let i = 1; i <= 130; i++) {
      await globalThis.herald.call('groups.create', JSON.stringify({ title: `Pile ${i}` }));
    }
  });
  await danny.page.reload();
  const pile = (n) => chats(danny).getByRole('button', { name: new RegExp(`^(\\S+ )?Pile ${n}(?!\\d)`) });
  await visible(pile(130));
  const shown = await chats(danny).getByRole('button').count();
  if (shown !== 100 || (await pile(1).count()) !== 0) throw new Error(`first page shows ${shown} chats, Pile 1 among them: ${await pile(1).count()}`);
  // Scrolled to the bottom, the next page (the other 30) comes in.
  await chats(danny).evaluate((ul) => { ul.scrollTop = ul.scrollHeight; });
  await visible(pile(1));
  const all = await chats(danny).getByRole('button').count();
  if (all !== 130) throw new Error(`after scrolling ${all} chats are listed, not 130`);
  await danny.context.close();
});

await scenario('phone width 320 and 430: nothing wider than the screen, labelled menus, one New menu, SVG icons', async () => {
  const long = 'This last message is long enough to run well past the edge of any phone screen, '.repeat(4) + 'Pneumonoultramicroscopicsilicovolcanoconiosis'.repeat(3);
  await openChat(alice, 'bobby');
  await send(alice, long);
  const p = bobby;
  // Nothing may make the page scroll sideways, and the visible parts stay on screen.
  const fits = async (where) => {
    const r = await p.page.evaluate(() => {
      const w = window.innerWidth;
      const over = [...document.querySelectorAll('#app *')].filter((e) => {
        if (!e.getClientRects().length) return false;
        const b = e.getBoundingClientRect();
        return b.width > 0 && b.right > w + 0.5 && !e.closest('.scroller .msg');
      }).map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className.baseVal ?? e.className}`);
      return { scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, w, over: over.slice(0, 5) };
    });
    if (r.scroll > r.w || r.body > r.w || r.over.length) throw new Error(`${where}: page ${r.scroll}px / body ${r.body}px wide on a ${r.w}px screen; past the edge: ${r.over.join(', ')}`);
  };
  // Icons are drawn, not emoji: nothing outside the messages needs an emoji font.
  const noEmoji = async (where) => {
    const t = await p.page.evaluate(() => [...document.querySelectorAll('.sidebar, .chat-head, .composer')].map((e) => e.innerText).join(' '));
    const m = t.match(/\p{Extended_Pictographic}/gu);
    if (m) throw new Error(`${where}: emoji ${m.join(' ')} in the page's own text`);
  };
  for (const width of [320, 430]) {
    await p.page.setViewportSize({ width, height: 760 });
    if (await button(p, 'Back to chats').isVisible()) await button(p, 'Back to chats').click();
    await visible(chats(p).getByRole('button').filter({ hasText: 'Pneumono' }));
    await fits(`chat list at ${width}px`);
    await noEmoji(`chat list at ${width}px`);
    // One New button holds the creation actions.
    if (await button(p, 'New chat').isVisible()) throw new Error(`at ${width}px New chat shows without opening New`);
    await button(p, 'New').click();
    await visible(button(p, 'New secret chat'));
    await fits(`New menu at ${width}px`);
    await p.page.screenshot({ path: join(artifacts, `chats-phone-${width}.png`) });
    await p.page.keyboard.press('Escape');
    await button(p, 'New chat').waitFor({ state: 'hidden', timeout: WAIT });
    await openChat(p, 'alice');
    await fits(`chat at ${width}px`);
    await noEmoji(`chat at ${width}px`);
    // The two menus say what they are, in words on the screen.
    await visible(p.page.locator('#autodel-wrap').getByText('Auto-delete', { exact: true }));
    await visible(p.page.locator('.compose-row').getByText('Timer', { exact: true }));
    await visible(p.page.getByRole('combobox', { name: 'Auto-delete' }));
    await visible(p.page.getByRole('combobox', { name: 'Self-destruct timer' }));
    await p.page.screenshot({ path: join(artifacts, `chat-phone-${width}.png`) });
  }
  const icons = await p.page.evaluate(() => document.querySelectorAll('svg.icon').length);
  if (icons < 5) throw new Error(`only ${icons} SVG icons on the page`);
  await p.page.setViewportSize({ width: 390, height: 760 });
});

await scenario('the token never appears in a URL, and nothing was blocked', async () => {
  const tokens = [];
  for (const p of [alice, bobby, carol]) {
    tokens.push(await p.page.evaluate(() => JSON.parse(localStorage.getItem('herald.session')).token));
  }
  for (const u of urls) {
    for (const t of tokens) {
      if (t && u.includes(t)) throw new Error(`a token is in ${u}`);
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
});

await scenario('logout wipes local state', async () => {
  await button(carol, 'Log out').click();
  await visible(button(carol, 'Log in'));
  const left = await carol.page.evaluate(async () => ({
    local: localStorage.length,
    dbs: indexedDB.databases ? (await indexedDB.databases()).length : 0,
  }));
  if (left.local !== 0 || left.dbs !== 0) throw new Error(`left behind: ${JSON.stringify(left)}`);
  await carol.page.setViewportSize({ width: 390, height: 760 });
  await carol.page.screenshot({ path: join(artifacts, 'signin-phone.png') });
});

await browser.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
