// /docs in a real headless browser (Debian's chromium driven by
// puppeteer-core; no browser is downloaded): the page lists the agent's
// routes, loads nothing from outside the agent, and "Try it out" with the
// token calls a route. OPSHUB_UPDATE_SCREENSHOTS=1 saves the page to
// docs/api-docs.png.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { startAgent, tempDir } from '../../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';

test('/docs in headless chromium lists every route, loads only from the agent, and runs a request with the token', async () => {
  const t = await startAgent(`agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: docs-token
inputs:
  - type: session_webhook
processors:
  - type: regex_classifier
outputs:
  - type: duckdb
    retention: { enabled: false }
  - type: opshub_api
  - type: prometheus
  - type: websocket
`);
  const profile = tempDir('opshub-chromium-');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile.dir}`],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const requested: string[] = [];
    page.on('request', (req) => void requested.push(req.url()));
    await page.goto(`${t.url}/docs`, { waitUntil: 'networkidle0', timeout: 30_000 });
    await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 });

    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent?.trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
    );
    for (const route of [
      'GET /health', 'GET /health/detailed', 'GET /containers/status', 'GET /containers/{name}/status', 'GET /logs/{container}', 'GET /search/logs',
      'GET /users/sessions', 'POST /users/session', 'GET /metrics/performance', 'GET /metrics/performance/history', 'GET /analytics/users',
      'GET /analytics/models', 'GET /errors/summary', 'GET /metrics', 'POST /api/query/duckdb', 'GET /ws/logs', 'GET /ws/metrics',
    ]) {
      assert.ok(listed.includes(route), `${route} is listed (listed: ${listed.join(', ')})`);
    }
    const title = await page.$eval('.info .title', (e) => e.textContent ?? '');
    assert.match(title, /OpsHub agent API/);
    const outside = requested.filter((u) => !u.startsWith(t.url) && !u.startsWith('data:'));
    assert.deepEqual(outside, [], 'every asset comes from the agent (works offline)');

    // Authorize with the token, then "Try it out" on /health/detailed.
    await page.click('.auth-wrapper .authorize');
    await page.waitForSelector('.modal-ux input[type=text]');
    await page.type('.modal-ux input[type=text]', 'docs-token');
    await page.click('.modal-ux .auth-btn-wrapper .authorize');
    await page.click('.modal-ux .btn-done');
    const op = '#operations-agent-get_health_detailed';
    await page.click(`${op} .opblock-summary`);
    await page.waitForSelector(`${op} .try-out__btn`);
    await page.click(`${op} .try-out__btn`);
    await page.click(`${op} .execute`);
    await page.waitForSelector(`${op} .live-responses-table tbody .response-col_status`, { timeout: 20_000 });
    const status = await page.$eval(`${op} .live-responses-table tbody .response-col_status`, (e) => e.textContent?.trim());
    assert.equal(status, '200');
    const shown = await page.$eval(`${op} .live-responses-table .microlight`, (e) => e.textContent ?? '');
    assert.match(shown, /"status": "healthy"/);

    const shot = path.join(profile.dir, 'api-docs.png');
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.OPSHUB_UPDATE_SCREENSHOTS === '1') copyFileSync(shot, 'docs/api-docs.png');
  } finally {
    await browser.close();
    await t.stop();
    profile.cleanup();
  }
});
