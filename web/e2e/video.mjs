// A browser plays and seeks a video streamed from Herald: a <video> whose
// src is a signed download link (no token, no headers), as the web client
// and any page embedding a file use it. The Go test (server/video_test.go)
// uploads the clip and passes the link in VIDEO_URL.
//
//   VIDEO_URL=http://127.0.0.1:8080/v1/files/ID?u=..&exp=..&sig=.. node video.mjs

import { chromium } from 'playwright-core';

const url = process.env.VIDEO_URL;
if (!url) {
  console.error('set VIDEO_URL to a signed link to a video');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--autoplay-policy=no-user-gesture-required'],
});
try {
  const page = await browser.newPage();
  const ranges = [];
  page.on('request', (req) => {
    if (req.url().startsWith(url.split('?')[0])) ranges.push(req.headers()['range'] || '(none)');
  });
  await page.setContent('<video id="v" muted preload="auto"></video>');
  const result = await page.evaluate(async (src) => {
    const v = document.getElementById('v');
    const once = (ev) => new Promise((resolve, reject) => {
      v.addEventListener(ev, resolve, { once: true });
      v.addEventListener('error', () => reject(new Error('video error ' + (v.error && v.error.code))), { once: true });
    });
    v.src = src;
    await once('loadedmetadata');
    const duration = v.duration;
    await v.play();
    const middle = duration / 2;
    v.currentTime = middle;
    await once('seeked');
    const seekedTo = v.currentTime;
    // Playing on from the middle: currentTime must move past where it landed.
    const start = performance.now();
    while (v.currentTime < seekedTo + 0.5) {
      if (performance.now() - start > 20000) throw new Error('playback did not advance after the seek: ' + v.currentTime);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { duration, seekedTo, after: v.currentTime };
  }, url);
  console.log(JSON.stringify({ ...result, ranges }));
} finally {
  await browser.close();
}
