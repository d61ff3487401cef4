// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser download) opens the Fashion-MNIST page, waits for the model,
// clicks each of the 10 test images and checks the class the page shows
// against the argmax of `ctrain predict`'s row for that image. Then it
// draws on the canvas, classifies the drawing and takes a screenshot.
//   node browser.js URL CTRAIN_PREDICTIONS.csv SCREENSHOT.png
'use strict';
const fs = require('fs');
const {chromium} = require('playwright-core');

(async () => {
  const [url, csv, shot] = process.argv.slice(2);
  const want = fs.readFileSync(csv, 'utf8').trim().split('\n').map(l => {
    const v = l.split(',').map(Number);
    return v.reduce((b, x, i) => (x > v[b] ? i : b), 0);
  });
  const browser = await chromium.launch({executablePath: '/usr/bin/chromium', headless: true,
                                         args: ['--no-sandbox', '--disable-gpu']});
  let ok = true;
  try {
    const page = await browser.newPage({viewport: {width: 900, height: 640}});
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    await page.goto(url);
    await page.waitForFunction(() => window.modelLoaded || window.modelError, null, {timeout: 60000});
    const err = await page.evaluate(() => window.modelError || null);
    if (err) throw new Error(`the page could not load the model: ${err}`);
    const got = [];
    for (let i = 0; i < want.length; i++) {
      await page.click(`#sample-${i}`);
      await page.waitForFunction(k => document.getElementById('result').dataset.index === String(k), i);
      got.push(Number(await page.getAttribute('#result', 'data-class')));
    }
    const same = got.filter((c, i) => c === want[i]).length;
    ok = same === want.length && errors.length === 0;
    console.log(`${ok ? 'ok' : 'FAIL'} browser: ${same}/${want.length} test images get ctrain predict's class ` +
                `(page ${got.join(' ')}, ctrain ${want.join(' ')})${errors.length ? `; page errors: ${errors}` : ''}`);
    // A drawing: a rough trouser shape, classified, for the screenshot.
    const box = await page.locator('#pad').boundingBox();
    for (const x of [105, 175])
      for (let y = 40; y <= 250; y += 6) await page.mouse.move(box.x + x, box.y + y, {steps: 1}), await page.mouse.down(), await page.mouse.up();
    for (let x = 105; x <= 175; x += 6) await page.mouse.move(box.x + x, box.y + 42), await page.mouse.down(), await page.mouse.up();
    await page.click('#sample-0');
    await page.click('#classify');
    await page.waitForFunction(() => document.getElementById('result').dataset.index === 'drawing');
    console.log(`drawing classified as ${await page.textContent('#result')}`);
    await page.screenshot({path: shot});
  } finally {
    await browser.close();
  }
  process.exit(ok ? 0 : 1);
})().catch(e => { console.error(`FAIL: ${e.stack || e}`); process.exit(1); });
