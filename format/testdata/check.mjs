// Checks web/static/format.js against cases.json: node check.mjs
import { readFileSync } from 'node:fs';
import { formatSize, formatCount, formatPreview, formatCall } from '../../web/static/format.js';

const cases = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url)));
let failed = 0;
const check = (what, got, want) => {
  if (got !== want) {
    console.log(`${what} = ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    failed++;
  }
};
for (const [n, want] of cases.size) check(`formatSize(${n})`, formatSize(n), want);
for (const [n, one, many, want] of cases.count) check(`formatCount(${n}, ${one}, ${many})`, formatCount(n, one, many), want);
for (const [from, text, service, want] of cases.preview) check(`formatPreview(${from}, ${text}, ${service})`, formatPreview(from, text, service), want);
for (const [out, video, outcome, ms, want] of cases.call) check(`formatCall(${out}, ${video}, ${outcome}, ${ms})`, formatCall(out, video, outcome, ms), want);
if (failed) process.exit(1);
console.log(`ok: ${cases.size.length + cases.count.length + cases.preview.length + cases.call.length} cases`);
