#!/usr/bin/env node
// Browser test of the map viewer at `/`: a headless Chromium (through playwright-core from
// web/node_modules) opens the page of a running server, waits for the map, checks that the three
// layers render, traces SHSTA downstream (by the page's highlightNode and by a click on the node),
// searches, and saves screenshots at zoom 6 and 12 into tests/screenshots/.
//
//   BASE_URL=http://127.0.0.1:18080 EXPECT=sample  node tests/browser/viewer.mjs
//   BASE_URL=http://127.0.0.1:18080 EXPECT=calsim3 node tests/browser/viewer.mjs
//
// EXPECT names the data the server serves: `sample` (the embedded sample network) or `calsim3`
// (the real CalSim3 data, where 48 nodes lie downstream of SHSTA, SHSTA included). CHROMIUM
// overrides the browser (default /usr/bin/chromium: Debian's `chromium` package). Any console
// error, page error, failed request, map error (the viewer logs them on the console and in
// window.viewerErrors) or failed check ends the run with a non-zero exit and a message; the one
// error the test provokes (an unknown node, last) is checked on its own. The last line printed
// is a one-line JSON summary either way.

import { createRequire } from 'node:module';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const screenshots = join(root, 'tests', 'screenshots');

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const EXPECT = process.env.EXPECT || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TIMEOUT_MS = Number(process.env.VIEWER_TEST_TIMEOUT_MS || 240000);
const WAIT_MS = 60000;

// What each data set must show.
const EXPECTATIONS = {
  sample: { shastaDownstream: null }, // whatever the server answers
  calsim3: { shastaDownstream: 48 },
};

// A view holding all three layers in both data sets (Sacramento, the Delta and Stockton).
const LAYER_VIEW = { center: [-121.5, 38.5], zoom: 8 };
// The screenshot views: the whole network, and Sacramento at the American River confluence.
const Z6_VIEW = { center: [-121.3, 38.45], zoom: 6 };
const Z12_VIEW = { center: [-121.5, 38.6], zoom: 12 };

const summary = { ok: false, expect: EXPECT, base_url: BASE_URL, checks: [], screenshots: [] };
const consoleErrors = [];
const pageErrors = [];
const failedResponses = [];
const provoked = []; // console errors and failed requests of the deliberate failure
let allowedFailure = null; // a URL fragment whose deliberate failure is expected

function check(name, ok, detail) {
  summary.checks.push(detail === undefined ? { name, ok } : { name, ok, detail });
  if (!ok) {
    throw new Error(`${name}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

function finish(code, error) {
  if (error) summary.error = error;
  summary.console_errors = consoleErrors;
  summary.page_errors = pageErrors;
  if (failedResponses.length) summary.failed_responses = failedResponses;
  if (error) console.error(`viewer test FAILED: ${error}`);
  console.log(JSON.stringify(summary));
  process.exit(code);
}

async function getJson(path) {
  const url = /^https?:/.test(path) ? path : BASE_URL + path;
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json();
}

/** The ids of every feature of a collection, by its `next` links. */
async function collectionIds(collection) {
  const ids = [];
  let url = `/collections/${collection}/items?limit=500`;
  while (url) {
    const page = await getJson(url);
    page.features.forEach((f) => ids.push(f.id));
    const next = (page.links || []).find((l) => l.rel === 'next');
    url = next && page.features.length ? next.href : null;
  }
  return ids;
}

/** The highlight a trace answer should leave: node id -> state, the origin as `origin` (as the
 * viewer does). */
function expectedHighlight(answer) {
  const states = new Map();
  answer.nodes.forEach((n) => states.set(n.id, answer.direction));
  states.set(answer.origin.id, 'origin');
  return states;
}

/** The nodes that carry a feature-state `highlight` in the page, among `ids`: id -> state. */
async function highlightedNodes(page, ids) {
  await idle(page);
  const pairs = await page.evaluate((all) => all
    .map((id) => [id, window.map.getFeatureState({ source: 'calsim', sourceLayer: 'nodes', id }).highlight])
    .filter(([, state]) => state), ids);
  return new Map(pairs);
}

/** Whether the page's highlight is exactly the expected one; the difference as detail. */
function sameHighlight(actual, wanted) {
  const wrong = [];
  wanted.forEach((state, id) => {
    if (actual.get(id) !== state) wrong.push({ id, want: state, got: actual.get(id) || null });
  });
  actual.forEach((state, id) => {
    if (!wanted.has(id)) wrong.push({ id, want: null, got: state });
  });
  return { ok: wrong.length === 0, detail: { lit: actual.size, expected: wanted.size, wrong: wrong.slice(0, 10) } };
}

function assertNoBrowserErrors(step) {
  if (pageErrors.length) throw new Error(`page error during ${step}: ${pageErrors[0]}`);
  if (consoleErrors.length) throw new Error(`console error during ${step}: ${consoleErrors[0]}`);
  if (failedResponses.length) throw new Error(`failed request during ${step}: ${failedResponses[0]}`);
}

async function main() {
  if (!/^https?:\/\/[^/]+/.test(BASE_URL)) {
    throw new Error('BASE_URL must be the server, e.g. BASE_URL=http://127.0.0.1:18080');
  }
  if (!(EXPECT in EXPECTATIONS)) {
    throw new Error(`EXPECT must be one of ${Object.keys(EXPECTATIONS).join(', ')}; got ${JSON.stringify(EXPECT)}`);
  }
  const expected = EXPECTATIONS[EXPECT];

  let chromium;
  try {
    const require = createRequire(join(root, 'web', 'package.json'));
    ({ chromium } = require('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core is not installed: run "npm ci" in web/ (${err.message})`);
  }

  if (!existsSync(CHROMIUM)) {
    throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM`);
  }

  // What the server says, to compare the page with.
  const downstream = await getJson('/network/nodes/SHSTA/downstream');
  const shastaCount = downstream.node_count;
  if (expected.shastaDownstream !== null) {
    check('server: SHSTA downstream node_count', shastaCount === expected.shastaDownstream,
      { server: shastaCount, expected: expected.shastaDownstream });
  }
  const shasta = await getJson(`/collections/nodes/items/${downstream.origin.id}`);
  const shastaLngLat = shasta.geometry.coordinates;
  // The nodes a SHSTA downstream trace lights, the origin included, and every node id to look at.
  const shastaHighlight = expectedHighlight(downstream);
  if (expected.shastaDownstream !== null) {
    check('SHSTA downstream lights the expected nodes', shastaHighlight.size === expected.shastaDownstream,
      { lit: shastaHighlight.size, expected: expected.shastaDownstream });
  }
  const allNodeIds = await collectionIds('nodes');

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--use-gl=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = (msg.location() && msg.location().url) || '';
      const text = `${msg.text()}${where ? ` (${where})` : ''}`;
      if (allowedFailure && where.includes(allowedFailure)) provoked.push(text);
      else consoleErrors.push(text);
    });
    page.on('pageerror', (err) => pageErrors.push(String((err && err.stack) || err)));
    page.on('response', (response) => {
      const url = response.url();
      if (response.status() < 400) return;
      if (allowedFailure && url.includes(allowedFailure)) provoked.push(`${response.status()} ${url}`);
      else failedResponses.push(`${response.status()} ${url}`);
    });

    // The page, under the server's own headers.
    const response = await page.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    check('GET / answers 200', response && response.status() === 200, response && response.status());
    const headers = response.headers();
    summary.csp = headers['content-security-policy'] || null;

    await page.waitForFunction(() => Boolean(window.map && window.map.loaded()), null, { timeout: WAIT_MS });
    const ready = await page.evaluate(() => window.viewerReady);
    check('viewer ready', ready === true, await statusText(page));
    await idle(page);
    assertNoBrowserErrors('load');

    const initial = await page.evaluate(() => ({ zoom: window.map.getZoom(), center: window.map.getCenter().toArray() }));
    check('initial view over California', initial.center[0] > -125 && initial.center[0] < -114
      && initial.center[1] > 32 && initial.center[1] < 42.5 && initial.zoom > 3 && initial.zoom < 10, initial);
    const legend = await page.evaluate(() => ({
      nodes: document.querySelectorAll('#legend-nodes li').length,
      arcs: document.querySelectorAll('#legend-arcs li').length,
    }));
    check('legend lists node and arc types', legend.nodes >= 10 && legend.arcs >= 5, legend);

    // All three layers render in one view, with the numeric ids feature-state needs.
    await jump(page, LAYER_VIEW);
    const rendered = await page.evaluate(() => {
      const features = window.map.queryRenderedFeatures({ layers: ['demand_units-fill', 'arcs', 'nodes'] });
      const counts = { demand_units: 0, arcs: 0, nodes: 0, without_id: 0 };
      features.forEach((f) => {
        counts[f.sourceLayer] = (counts[f.sourceLayer] || 0) + 1;
        if (typeof f.id !== 'number') counts.without_id += 1;
      });
      return counts;
    });
    summary.rendered_at_z8 = rendered;
    check('demand units render', rendered.demand_units > 0, rendered);
    check('arcs render', rendered.arcs > 0, rendered);
    check('nodes render', rendered.nodes > 0, rendered);
    check('features carry numeric ids', rendered.without_id === 0, rendered);
    const labels = await page.evaluate(() => window.map.queryRenderedFeatures({
      layers: ['reservoir-labels-major', 'reservoir-labels', 'river-labels', 'demand_units-labels', 'node-labels'],
    }).length);
    check('labels render', labels > 0, labels);
    summary.labels_at_z8 = labels;

    // The trace by the page's function.
    const traced = await page.evaluate(() => window.highlightNode('SHSTA', 'downstream'));
    check('highlightNode(SHSTA, downstream) succeeds', traced !== null, await statusText(page));
    check('downstream count matches the server', traced.downstream === shastaCount,
      { page: traced.downstream, server: shastaCount });
    const last = await page.evaluate(() => window.lastHighlight);
    check('window.lastHighlight', last && last.origin === 'SHSTA' && last.direction === 'downstream'
      && last.downstream === shastaCount && Array.isArray(last.ids) && last.ids.length === shastaCount,
      last && { origin: last.origin, direction: last.direction, downstream: last.downstream, ids: last.ids.length });
    summary.shasta_downstream = last.downstream;
    check('lastHighlight.ids are the traced nodes', last.ids.length === shastaHighlight.size
      && last.ids.every((id) => shastaHighlight.has(id)), { ids: last.ids.length, expected: shastaHighlight.size });
    const lit = sameHighlight(await highlightedNodes(page, allNodeIds), shastaHighlight);
    summary.shasta_highlighted = lit.detail.lit;
    check('exactly the traced nodes carry feature-state highlight', lit.ok, lit.detail);
    await jump(page, { center: shastaLngLat, zoom: 8 });
    const drawn = await page.evaluate(() => window.map.queryRenderedFeatures({ layers: ['nodes-highlight'] })
      .filter((f) => f.state && f.state.highlight).length);
    check('highlighted nodes render', drawn > 0, drawn);

    // The same trace by a click on the node, with popups of its properties.
    await page.evaluate(() => document.getElementById('clear').click());
    await jump(page, { center: shastaLngLat, zoom: 10 });
    const cleared = await highlightedNodes(page, allNodeIds);
    check('Clear removes the highlight', cleared.size === 0, { lit: cleared.size });
    const point = await page.evaluate((lngLat) => {
      const p = window.map.project(lngLat);
      const r = window.map.getCanvas().getBoundingClientRect();
      return { x: r.left + p.x, y: r.top + p.y };
    }, shastaLngLat);
    await page.evaluate(() => { window.lastHighlight = null; });
    await page.mouse.move(point.x, point.y);
    await page.waitForSelector('.hover-popup', { timeout: 10000 });
    const hover = await page.evaluate(() => {
      const popup = document.querySelector('.hover-popup');
      return { text: popup.textContent, rows: popup.querySelectorAll('.popup-props tr').length };
    });
    check('hover popup shows the node and its properties', hover.text.includes('SHSTA')
      && hover.text.includes('capacity_taf') && hover.text.includes('river') && hover.rows >= 5,
      { rows: hover.rows, text: hover.text.slice(0, 160) });
    await page.mouse.click(point.x, point.y);
    await page.waitForFunction(() => window.lastHighlight && window.lastHighlight.origin === 'SHSTA', null, { timeout: WAIT_MS });
    const clicked = await page.evaluate(() => ({
      last: window.lastHighlight,
      popup: (document.querySelector('.maplibregl-popup:not(.hover-popup)') || {}).textContent || '',
    }));
    check('click on SHSTA traces downstream', clicked.last.direction === 'downstream'
      && clicked.last.downstream === shastaCount, { downstream: clicked.last.downstream });
    check('click popup shows the node', clicked.popup.includes('SHSTA') && clicked.popup.includes('capacity_taf'),
      clicked.popup.slice(0, 120));
    const clickLit = sameHighlight(await highlightedNodes(page, allNodeIds), shastaHighlight);
    summary.click_highlighted = clickLit.detail.lit;
    check('after the click exactly the traced nodes carry the highlight', clickLit.ok, clickLit.detail);
    check('click popup has the trace buttons', await page.evaluate(() => document
      .querySelectorAll('.maplibregl-popup:not(.hover-popup) .popup-actions button').length === 3));

    // Both ways with a depth, against the server.
    const up3 = await getJson('/network/nodes/KSWCK/upstream?max_depth=3');
    const down3 = await getJson('/network/nodes/KSWCK/downstream?max_depth=3');
    const both = await page.evaluate(() => window.highlightNode('KSWCK', 'both', 3));
    check('highlightNode(KSWCK, both, 3)', both && both.upstream === up3.node_count && both.downstream === down3.node_count,
      both && { page: [both.upstream, both.downstream], server: [up3.node_count, down3.node_count] });

    // Search: from a view far from SHSTA, type, pick SHSTA with the keyboard, fly there.
    await page.evaluate(() => document.getElementById('clear').click());
    await page.evaluate(() => document.querySelectorAll('.maplibregl-popup').forEach((p) => p.remove()));
    await jump(page, Z6_VIEW);
    const before = await page.evaluate(() => window.map.getCenter().toArray());
    const far = Math.hypot(before[0] - shastaLngLat[0], before[1] - shastaLngLat[1]);
    check('before the search the map is far from SHSTA', far > 1, { center: before, degrees: far });
    await page.evaluate(() => { window.lastHighlight = null; });
    await page.fill('#search', 'SHS');
    await page.waitForSelector('#search-results li[role="option"]', { timeout: 10000 });
    const options = await page.$$eval('#search-results li[role="option"]',
      (lis) => lis.map((li) => ({ text: li.textContent, code: (li.querySelector('.code') || {}).textContent })));
    const pickAt = options.findIndex((o) => o.code === 'SHSTA');
    check('search lists SHSTA', pickAt >= 0, options.map((o) => o.text));
    await page.focus('#search');
    for (let i = 0; i <= pickAt; i += 1) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => !window.map.isMoving() && window.lastHighlight
      && window.lastHighlight.origin === 'SHSTA', null, { timeout: WAIT_MS });
    await idle(page);
    const afterSearch = await page.evaluate(() => ({
      center: window.map.getCenter().toArray(),
      zoom: window.map.getZoom(),
      status: document.getElementById('status').textContent,
      popup: (document.querySelector('.maplibregl-popup:not(.hover-popup)') || {}).textContent || '',
    }));
    const dist = Math.hypot(afterSearch.center[0] - shastaLngLat[0], afterSearch.center[1] - shastaLngLat[1]);
    summary.search = { options: options.length, picked: pickAt, status: afterSearch.status, zoom: afterSearch.zoom };
    check('search flies to the pick', dist < 0.05 && afterSearch.zoom >= 10.5,
      { center: afterSearch.center, zoom: afterSearch.zoom, degrees: dist, status: afterSearch.status });
    check('search opens the pick\'s popup', afterSearch.popup.includes('SHSTA'), afterSearch.popup.slice(0, 120));
    const searchLit = sameHighlight(await highlightedNodes(page, allNodeIds), shastaHighlight);
    check('search traces the pick', searchLit.ok, searchLit.detail);

    // Layer toggles hide and show.
    const toggled = await page.evaluate(() => {
      const box = document.querySelector('input[data-layer-group="nodes"]');
      box.click();
      const hidden = window.map.getLayoutProperty('nodes', 'visibility');
      box.click();
      return { hidden, shown: window.map.getLayoutProperty('nodes', 'visibility') };
    });
    check('layer toggle', toggled.hidden === 'none' && toggled.shown === 'visible', toggled);

    // Screenshots: the SHSTA downstream trace over the whole network, then Sacramento close up.
    await page.evaluate(() => window.highlightNode('SHSTA', 'downstream', null));
    await page.evaluate(() => document.querySelectorAll('.maplibregl-popup').forEach((p) => p.remove()));
    await page.mouse.move(1, 1);
    mkdirSync(screenshots, { recursive: true });
    for (const [name, view] of [['z6', Z6_VIEW], ['z12', Z12_VIEW]]) {
      await jump(page, view);
      const file = join(screenshots, `${EXPECT}-${name}.png`);
      await page.screenshot({ path: file });
      const counts = await page.evaluate(() => {
        const c = {};
        window.map.queryRenderedFeatures().forEach((f) => { c[f.layer.id] = (c[f.layer.id] || 0) + 1; });
        return c;
      });
      summary.screenshots.push({ file: file.slice(root.length + 1), zoom: view.zoom, rendered: counts });
    }

    // Nothing went wrong in the whole run so far: no console, page, request or map error.
    assertNoBrowserErrors('the run');
    const viewerErrors = await page.evaluate(() => window.viewerErrors);
    check('no errors on the status line', viewerErrors.length === 0, viewerErrors);

    // Last, the one deliberate failure: a node that does not exist is shown on the status line,
    // nothing thrown, and it causes no error but its own 404.
    allowedFailure = '/network/nodes/NO_SUCH_NODE/';
    const missing = await page.evaluate(() => window.highlightNode('NO_SUCH_NODE', 'downstream'));
    const missingStatus = await page.evaluate(() => ({
      text: document.getElementById('status').textContent,
      error: document.getElementById('status').classList.contains('error'),
      errors: window.viewerErrors,
    }));
    allowedFailure = null;
    check('an unknown node is reported, not thrown', missing === null && missingStatus.error
      && /NO_SUCH_NODE/.test(missingStatus.text), missingStatus);
    check('the unknown node is the only error on the status line', missingStatus.errors.length === 1
      && /NO_SUCH_NODE/.test(missingStatus.errors[0]), missingStatus.errors);
    check('the unknown node answers 404', provoked.some((p) => p.startsWith('404 ')), provoked);
    summary.provoked = provoked;
    assertNoBrowserErrors('the unknown node');

    // The API docs page, when the server describes its API.
    const spec = await fetch(`${BASE_URL}/api/openapi.json`);
    if (spec.ok) {
      const docs = await page.goto(`${BASE_URL}/docs`, { waitUntil: 'load' });
      check('GET /docs answers 200', docs && docs.status() === 200, docs && docs.status());
      await page.waitForSelector('.swagger-ui .info .title', { timeout: WAIT_MS });
      assertNoBrowserErrors('/docs');
      summary.docs = 'rendered';
    } else {
      summary.docs = `skipped: /api/openapi.json answered ${spec.status}`;
    }
  } finally {
    await browser.close();
  }
  summary.ok = true;
}

// Waits until the map has nothing left to load or draw.
async function idle(page) {
  await page.evaluate((ms) => new Promise((resolveIdle, reject) => {
    const map = window.map;
    const timer = setTimeout(() => reject(new Error(`the map was not idle within ${ms} ms`)), ms);
    const done = () => { clearTimeout(timer); resolveIdle(); };
    if (map.loaded() && map.areTilesLoaded() && !map.isMoving()) {
      map.once('idle', done);
      map.triggerRepaint();
    } else {
      map.once('idle', done);
    }
  }), WAIT_MS);
}

async function jump(page, view) {
  await page.evaluate((v) => window.map.jumpTo(v), view);
  await idle(page);
}

async function statusText(page) {
  return page.evaluate(() => document.getElementById('status').textContent);
}

const timer = setTimeout(() => finish(2, `the test took longer than ${TIMEOUT_MS} ms`), TIMEOUT_MS);
timer.unref();
main().then(
  () => finish(0),
  (err) => finish(1, (err && err.message) || String(err)),
);
