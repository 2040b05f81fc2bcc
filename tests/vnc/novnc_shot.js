// novnc_shot.js CHROMIUM URL OUT.png WIDTH HEIGHT TIMEOUT_MS
// Opens noVNC's vnc_lite.html in headless Chromium (playwright-core from
// ~/.cache/vireo/npm, NODE_PATH), waits until noVNC says "Connected" and its
// canvas has the remote size, lets the first update land, screenshots the page.
// Prints noVNC's status line; exit 1 with the status when it never connects.
const { chromium } = require('playwright-core');

(async () => {
  const [exe, url, out, w, h, timeout] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--force-color-profile=srgb', '--disable-gpu',
           '--disable-lcd-text', '--force-device-scale-factor=1'],
  });
  let status = '';
  try {
    const page = await browser.newPage({ viewport: { width: +w, height: +h } });
    page.on('console', (m) => console.error('console:', m.text()));
    await page.goto(url);
    await page.waitForFunction(() => {
      const s = document.getElementById('status');
      const c = document.querySelector('#screen canvas');
      return s && s.textContent.startsWith('Connected') && c && c.width > 1;
    }, null, { timeout: +timeout, polling: 200 });
    // The first full update follows the connection: give it time to be drawn.
    await page.waitForTimeout(3000);
    status = await page.evaluate(() => {
      const c = document.querySelector('#screen canvas');
      return document.getElementById('status').textContent + ` canvas ${c.width}x${c.height}`;
    });
    await page.screenshot({ path: out });
    console.log(status);
  } catch (e) {
    status = await (async () => {
      try { return await browser.contexts()[0].pages()[0].evaluate(
        () => document.getElementById('status').textContent); } catch (_) { return '?'; }
    })();
    console.log('FAILED status=' + status + ' ' + e);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
