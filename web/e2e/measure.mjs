// Measures the web client's first load against a running heraldd, for
// docs/BENCHMARKS.md (not a test: nothing here passes or fails).
//
//   HERALD_URL=http://127.0.0.1:8080 [PROFILE=phone] node measure.mjs [runs]
//
// For each run, a fresh browser context (empty cache) opens the page and
// the time is taken when the WebAssembly engine is ready to sign in, then
// the same context reloads (the small files revalidate with 304s; the
// engine's content-addressed path comes from the cache without a request).
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

async function load(page) {
  await page.waitForFunction(() => globalThis.herald && typeof globalThis.herald.call === 'function', null, { timeout: 60_000 });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    return {
      ready: Math.round(performance.now()),
      dcl: Math.round(nav.domContentLoadedEventEnd),
      bytes: res.reduce((a, r) => a + (r.transferSize || 0), nav.transferSize || 0),
      files: res.map((r) => `${r.name.replace(/^.*\//, '')} ${r.transferSize}/${r.decodedBodySize}`),
    };
  });
}

const first = []; const again = [];
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
  first.push(await load(page));
  await page.reload();
  again.push(await load(page));
  await ctx.close();
}
await browser.close();
console.log(`first load files: ${first[0].files.join(', ')}`);
console.log(`reload files: ${again[0].files.join(', ')}`);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, xs] of [['first load', first], ['reload', again]]) {
  console.log(`${name}: engine ready median ${median(xs.map((x) => x.ready))} ms (runs: ${xs.map((x) => x.ready).join(', ')}), ` +
    `DOMContentLoaded median ${median(xs.map((x) => x.dcl))} ms, transferred ${median(xs.map((x) => x.bytes))} bytes`);
}
