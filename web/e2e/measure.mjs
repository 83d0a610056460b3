// Measures the web client's first load against a running heraldd, for
// docs/BENCHMARKS.md (not a test: nothing here passes or fails).
//
//   HERALD_URL=http://127.0.0.1:8080 node measure.mjs [runs]
//
// For each run, a fresh browser context (empty cache) opens the page and
// the time is taken when the WebAssembly engine is ready to sign in, then
// the same context reloads (the files revalidate with 304s).

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
    };
  });
}

const first = []; const again = [];
for (let i = 0; i < runs; i++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(base + '/');
  first.push(await load(page));
  await page.reload();
  again.push(await load(page));
  await ctx.close();
}
await browser.close();
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, xs] of [['first load', first], ['reload', again]]) {
  console.log(`${name}: engine ready median ${median(xs.map((x) => x.ready))} ms (runs: ${xs.map((x) => x.ready).join(', ')}), ` +
    `DOMContentLoaded median ${median(xs.map((x) => x.dcl))} ms, transferred ${median(xs.map((x) => x.bytes))} bytes`);
}
