// Measures the web client's first load against a running heraldd, for
// docs/BENCHMARKS.md (not a test: nothing here passes or fails).
//
//   HERALD_URL=http://127.0.0.1:8080 [PROFILE=phone] node measure.mjs [runs]
//
// For each run, a fresh browser context (empty cache) opens the page and
// the time is taken when the WebAssembly engine is ready to sign in; then
// a new account signs up, timed from the click to the chat list on
// screen; then the same context reloads, signed in (the small files
// revalidate with 304s; the engine's content-addressed path comes from the
// cache without a request), timed from navigation to the chat list.
// Where the first load went: the engine's response (first and last byte),
// compiled (instantiateStreaming resolved) and ready (the Go program set
// globalThis.herald), from the page's performance marks.
// PROFILE=phone throttles through the DevTools protocol: 4× CPU slowdown,
// 150 ms latency, 16 Mbit/s down and 8 up.

import { chromium } from 'playwright-core';

const base = process.env.HERALD_URL;
const runs = Number(process.argv[2] || 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

const chatList = () => {
  const app = document.getElementById('app');
  return app && !app.hidden && (document.querySelector('#chats li') || !document.getElementById('chats-empty').hidden);
};

async function timings(page) {
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const wasm = res.find((r) => /\.wasm$/.test(r.name));
    const mark = (n) => { const m = performance.getEntriesByName(n)[0]; return m ? Math.round(m.startTime) : null; };
    return {
      now: Math.round(performance.now()),
      dcl: Math.round(nav.domContentLoadedEventEnd),
      wasmStart: wasm ? Math.round(wasm.responseStart) : null,
      wasmEnd: wasm ? Math.round(wasm.responseEnd) : null,
      compiled: mark('herald-compiled'),
      ready: mark('herald-ready'),
      bytes: res.reduce((a, r) => a + (r.transferSize || 0), nav.transferSize || 0),
      files: res.map((r) => `${r.name.replace(/^.*\//, '')} ${r.transferSize}/${r.decodedBodySize}`),
    };
  });
}

const first = []; const signup = []; const again = [];
for (let i = 0; i < runs; i++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  if (process.env.PROFILE === 'phone') {
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 150, downloadThroughput: 16e6 / 8, uploadThroughput: 8e6 / 8 });
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  }
  await page.goto(base + '/');
  await page.waitForFunction(() => globalThis.herald && typeof globalThis.herald.call === 'function', null, { timeout: 60_000 });
  first.push(await timings(page));
  await page.fill('#auth-username', `m${Date.now().toString(36)}${i}`);
  await page.fill('#auth-password', 'measure-password-1');
  const t0 = await page.evaluate(() => performance.now());
  await page.click('#signup-btn');
  await page.waitForFunction(chatList, null, { timeout: 60_000, polling: 'raf' });
  signup.push(Math.round(await page.evaluate(() => performance.now()) - t0));
  await page.reload();
  await page.waitForFunction(chatList, null, { timeout: 60_000, polling: 'raf' });
  again.push(await timings(page));
  await ctx.close();
}
await browser.close();
console.log(`first load files: ${first[0].files.join(', ')}`);
console.log(`reload files: ${again[0].files.join(', ')}`);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (xs, k) => `median ${median(xs.map((x) => x[k]))} ms (${xs.map((x) => x[k]).join(', ')})`;
console.log(`first load: transferred ${median(first.map((x) => x.bytes))} bytes; DOMContentLoaded ${row(first, 'dcl')}`);
console.log(`  engine first byte ${row(first, 'wasmStart')}; last byte ${row(first, 'wasmEnd')}`);
console.log(`  compiled ${row(first, 'compiled')}; engine ready ${row(first, 'ready')}`);
console.log(`sign-up click to chat list: median ${median(signup)} ms (${signup.join(', ')})`);
console.log(`reload, signed in: transferred ${median(again.map((x) => x.bytes))} bytes; engine ready ${row(again, 'ready')}; chat list ${row(again, 'now')}`);
