// Screenshots of the book's pages at 1280x800 in headless Chromium (through
// the DevTools protocol, so a page can be scrolled to a heading first), and
// for each page the tables wider than their column (none should be: see
// docs/theme-tables.css) and how many were marked `table-tight`.
//
//   mdbook build docs && mkdir -p target/book-screenshots
//   node --experimental-websocket scripts/book-screenshots.mjs target/book-screenshots \
//     "security=file://$PWD/target/book/security.html|#rfc-6749-oauth-20" \
//     "reliability=file://$PWD/target/book/reliability.html|#failure-modes"
//
// Each argument is NAME=URL, optionally |CSS-SELECTOR to scroll to; the
// picture is OUT_DIR/NAME.png. Needs Node 20+ and /usr/bin/chromium. Exits
// with status 1 if any page has a table wider than its column (`.ci/run`
// runs it on every page of the book).
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [outDir, ...shots] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'book-shots-'));
const chrome = spawn('/usr/bin/chromium', [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--no-first-run', '--disable-sync',
  `--user-data-dir=${profile}`, '--remote-debugging-port=0', '--window-size=1280,800', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe'] });
const wsUrl = await new Promise((resolve, reject) => {
  let err = '';
  chrome.stderr.on('data', d => {
    err += d;
    const m = err.match(/DevTools listening on (ws:\S+)/);
    if (m) resolve(m[1]);
  });
  setTimeout(() => reject(new Error('chromium did not start: ' + err)), 20000);
});
const browser = new WebSocket(wsUrl);
await new Promise(r => browser.addEventListener('open', r));
let id = 0;
const pending = new Map();
browser.addEventListener('message', ev => {
  const msg = JSON.parse(ev.data);
  if (msg.id && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
});
const send = (method, params = {}, sessionId) => new Promise(resolve => {
  const msgId = ++id;
  pending.set(msgId, resolve);
  browser.send(JSON.stringify({ id: msgId, method, params, sessionId }));
});
const { result: { targetId } } = await send('Target.createTarget', { url: 'about:blank' });
const { result: { sessionId } } = await send('Target.attachToTarget', { targetId, flatten: true });
await send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false }, sessionId);
await send('Page.enable', {}, sessionId);
const sleep = ms => new Promise(r => setTimeout(r, ms));
let overflowing = 0;
for (const shot of shots) {
  const [name, spec] = shot.split(/=(.*)/s);
  const [url, selector] = spec.split('|');
  await send('Page.navigate', { url }, sessionId);
  await sleep(1500);
  if (selector) {
    await send('Runtime.evaluate', {
      expression: `document.querySelector(${JSON.stringify(selector)}).scrollIntoView({block: 'start'}); window.scrollBy(0, -70);`,
    }, sessionId);
    await sleep(300);
  }
  const metrics = await send('Runtime.evaluate', {
    expression: `JSON.stringify([...document.querySelectorAll('.table-wrapper')].map(w => [w.scrollWidth, w.clientWidth]).filter(([s, c]) => s > c + 1).concat([document.querySelectorAll('.table-tight').length + ' tight']))`,
    returnByValue: true,
  }, sessionId);
  const { result: { data } } = await send('Page.captureScreenshot', { format: 'png' }, sessionId);
  writeFileSync(join(outDir, `${name}.png`), Buffer.from(data, 'base64'));
  const found = JSON.parse(metrics.result.result.value);
  if (found.length > 1) overflowing += found.length - 1; // the last entry is the tight count
  console.log(`${name}.png: tables wider than their column: ${metrics.result.result.value}`);
}
browser.close();
chrome.kill();
await new Promise(r => chrome.on('exit', r));
await new Promise(r => setTimeout(r, 500));
try { rmSync(profile, { recursive: true, force: true }); } catch {}
if (overflowing > 0) {
  console.error(`${overflowing} table(s) wider than their column at 1280 px`);
  process.exitCode = 1;
}
