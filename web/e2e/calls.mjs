// End-to-end test of 1:1 calls in the web client: two Chromium contexts
// with Chromium's fake camera and microphone, on a real heraldd that the
// Go test (web.TestBrowserCalls) starts and names in HERALD_URL. The
// media flows between the two pages over WebRTC; the test reads each
// page's RTCPeerConnection statistics to see that frames are decoded and
// sound arrives, and that muting silences it.
//
//   HERALD_URL=http://127.0.0.1:8080 node calls.mjs

import { chromium } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const base = process.env.HERALD_URL;
if (!base) {
  console.error('set HERALD_URL to a running heraldd');
  process.exit(2);
}
const PASSWORD = 'correct horse battery';
const artifacts = process.env.HERALD_ARTIFACTS || 'artifacts';
mkdirSync(artifacts, { recursive: true });
const WAIT = 60_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
});

const problems = [];
const tag = randomBytes(3).toString('hex');

async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, permissions: ['camera', 'microphone'] });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  page.on('pageerror', (err) => problems.push(`${name}: page error: ${err.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`${name}: console: ${msg.text()}`); });
  // The test keeps a hand on the page's peer connections to read their
  // statistics; the page itself exposes nothing.
  await page.addInitScript(() => {
    const Original = RTCPeerConnection;
    window.__pcs = [];
    // A scenario sets __forceRelay to make the page use the server's
    // relay (TURN) only, as two devices behind NAT would.
    window.RTCPeerConnection = function (config = {}, ...rest) {
      const pc = new Original(window.__forceRelay ? { ...config, iceTransportPolicy: 'relay' } : config, ...rest);
      window.__pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  await page.goto(base + '/');
  const p = { name, page };
  await page.getByRole('textbox', { name: 'Username', exact: true }).fill(name);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await button(p, 'Sign up').click();
  await visible(button(p, 'New chat'));
  return p;
}

const button = (p, name) => p.page.getByRole('button', { name, exact: true });
// The call panel's controls; the chat header has a Mute (notifications) too.
const callButton = (p, name) => p.page.getByRole('region', { name: 'Call', exact: true }).getByRole('button', { name, exact: true });
const messages = (p) => p.page.getByRole('list', { name: 'Messages', exact: true });
const message = (p, text) => messages(p).getByRole('listitem').filter({ hasText: text });
const visible = (loc) => loc.first().waitFor({ state: 'visible', timeout: WAIT });
const hidden = (loc) => loc.first().waitFor({ state: 'hidden', timeout: WAIT });

// stats sums what the page's live peer connection has received.
const stats = (p) => p.page.evaluate(async () => {
  const pc = window.__pcs.filter((c) => c.connectionState !== 'closed').pop();
  if (!pc) return null;
  const out = { frames: 0, energy: 0, level: 0, state: pc.connectionState };
  (await pc.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    if (r.kind === 'video') out.frames += r.framesDecoded || 0;
    if (r.kind === 'audio') { out.energy += r.totalAudioEnergy || 0; out.level = Math.max(out.level, r.audioLevel || 0); }
  });
  return out;
});

async function until(what, fn) {
  const end = Date.now() + WAIT;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last && last.ok) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: never (last: ${JSON.stringify(last)})`);
}

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
    console.log(`not ok - ${name}\n  ${String(err.stack || err).split('\n').join('\n  ')}`);
  }
}

let alice; let bobby;
const aliceName = `alice${tag}`; const bobbyName = `bobby${tag}`;

await scenario('two people and a direct chat', async () => {
  [alice, bobby] = await Promise.all([person(aliceName), person(bobbyName)]);
  await button(alice, 'New chat').click();
  await alice.page.getByRole('textbox', { name: 'Username', exact: true }).fill(bobbyName);
  await alice.page.getByRole('textbox', { name: 'Username', exact: true }).press('Enter');
  await alice.page.getByRole('textbox', { name: 'Message', exact: true }).fill('call me');
  await button(alice, 'Send').click();
  await bobby.page.getByRole('list', { name: 'Chats', exact: true }).getByRole('button').filter({ hasText: aliceName }).first().click();
  await visible(message(bobby, 'call me'));
});

await scenario('a video call connects; both decode frames and hear sound', async () => {
  await button(alice, 'Video call').click();
  await visible(callButton(bobby, 'Accept'));
  await visible(alice.page.getByText('Ringing…'));
  await callButton(bobby, 'Accept').click();
  await visible(callButton(alice, 'Hang up'));
  await visible(callButton(bobby, 'Hang up'));
  for (const p of [alice, bobby]) {
    const first = await until(`${p.name} decodes frames`, async () => {
      const s = await stats(p);
      return s && { ...s, ok: s.frames > 0 };
    });
    await until(`${p.name}'s frames keep coming`, async () => {
      const s = await stats(p);
      return s && { ...s, ok: s.frames > first.frames + 10 };
    });
    await until(`${p.name} hears sound`, async () => {
      const s = await stats(p);
      return s && { ...s, ok: s.level > 0.01 && s.energy > 0 };
    });
    // The remote video element plays the other side.
    await until(`${p.name}'s video shows`, async () => {
      const w = await p.page.evaluate(() => document.querySelector('video[aria-label="Their video"]').videoWidth);
      return { w, ok: w > 0 };
    });
  }
  await alice.page.screenshot({ path: join(artifacts, 'call-video-alice.png') });
});

await scenario('mute silences alice for bobby', async () => {
  await callButton(alice, 'Mute').click();
  if (await callButton(alice, 'Mute').getAttribute('aria-pressed') !== 'true') throw new Error('Mute is not shown as pressed');
  // Once the muted track reaches bobby, the energy he receives stops growing.
  let prev = null;
  await until('bobby hears silence', async () => {
    const s = await stats(bobby);
    // Silence, not zero: a muted track still carries the codec's faintest
    // noise (audioLevel 1/32768).
    const quiet = prev && s.energy - prev.energy < 1e-6 && s.level < 0.001;
    prev = s;
    return { ...s, ok: quiet };
  });
  await callButton(alice, 'Mute').click();
  await until('bobby hears alice again', async () => {
    const s = await stats(bobby);
    return { ...s, ok: s.level > 0.01 };
  });
});

await scenario('hang-up ends the call on both sides and leaves a record in the chat', async () => {
  await callButton(bobby, 'Hang up').click();
  await hidden(callButton(alice, 'Hang up'));
  await hidden(callButton(bobby, 'Hang up'));
  await visible(message(alice, 'Outgoing video call, 0:'));
  await visible(message(bobby, 'Incoming video call, 0:'));
  const open = await alice.page.evaluate(() => window.__pcs.filter((c) => c.connectionState !== 'closed').length);
  if (open !== 0) throw new Error(`alice still has ${open} open peer connections`);
});

await scenario('a voice call rings while no chat is open, and is declined', async () => {
  await bobby.page.reload();
  await visible(button(bobby, 'New chat'));
  await button(alice, 'Voice call').click();
  await visible(callButton(bobby, 'Decline'));
  await bobby.page.screenshot({ path: join(artifacts, 'call-incoming-bobby.png') });
  await callButton(bobby, 'Decline').click();
  await hidden(callButton(alice, 'Hang up'));
  await visible(message(alice, 'Declined call'));
  await bobby.page.getByRole('list', { name: 'Chats', exact: true }).getByRole('button').filter({ hasText: aliceName }).first().click();
  await visible(message(bobby, 'You declined a call'));
});

await scenario('a call through the server\'s relay only (TURN), as behind NAT', async () => {
  for (const p of [alice, bobby]) await p.page.evaluate(() => { window.__forceRelay = true; });
  await button(alice, 'Video call').click();
  await callButton(bobby, 'Accept').click();
  await visible(callButton(alice, 'Hang up'));
  for (const p of [alice, bobby]) {
    await until(`${p.name} decodes frames through the relay`, async () => {
      const s = await p.page.evaluate(async () => {
        const pc = window.__pcs.filter((c) => c.connectionState !== 'closed').pop();
        if (!pc) return null;
        const all = await pc.getStats();
        let frames = 0; let local = '';
        all.forEach((r) => {
          if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
          if (r.type === 'transport' && r.selectedCandidatePairId) {
            const pair = all.get(r.selectedCandidatePairId);
            const cand = pair && all.get(pair.localCandidateId);
            local = cand ? cand.candidateType : '';
          }
        });
        return { frames, local };
      });
      return s && { ...s, ok: s.frames > 0 && s.local === 'relay' };
    });
  }
  await callButton(alice, 'Hang up').click();
  await hidden(callButton(bobby, 'Hang up'));
  for (const p of [alice, bobby]) await p.page.evaluate(() => { window.__forceRelay = false; });
});

await scenario('nothing failed in the pages', async () => {
  if (problems.length) throw new Error(problems.join('\n'));
});

await browser.close();
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
