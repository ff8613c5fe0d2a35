/**
 * The agent's status page in a real browser (Debian's chromium driven by playwright-core) against the
 * real `waffle agent` and engine: sign in with the read-only token, watch a deploy happen live (server-
 * sent events, no reload) and finish, see a failed deploy's health output on its page, fit a phone
 * screen, pass axe-core's accessibility rules (WCAG 2 A/AA: labels, contrast…), never show a
 * token, and let the agent stop while browsers listen. The main views are saved as screenshots: into
 * docs/screenshots/ with UPDATE_SCREENSHOTS=1, else into a temporary directory (a test run leaves the
 * repository as it was).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import os from 'node:os';
import type Dockerode from 'dockerode';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { cleanupProject, dockerClient, execIn, PKG_ROOT, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { config, deliver, makeRemote, pushPayload, SECRET, startAgent, tempRoot, TOKEN, waitFor, webService, type Remote, type RunningAgent } from './agent-support.ts';

const require = createRequire(import.meta.url);
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(PKG_ROOT, 'docs', 'screenshots') : path.join(os.tmpdir(), 'waffle-page-screenshots');
const PAGE_TOKEN = `page-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
const project = uniqueProject('agpage');

let docker: Dockerode;
let root: string;
let remote: Remote;
let agent: RunningAgent;
let browser: Browser;
let context: BrowserContext;
let page: Page;

/** app:2 that turns healthy only once the test creates /tmp/ready in it: the deploy waits, visibly. */
const gatedWeb = `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV2}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { command: 'test -f /tmp/ready', interval: '300ms', timeout: '2s', retries: 3, startPeriod: '180s' },
  stopGracePeriod: '1s',
});
`;

/** A version whose health check fails with a message: the deploy fails and the old one keeps serving. */
const failingWeb = `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  env: { BUILD: 'broken' },
  healthcheck: { command: "echo 'database at db:5432 refused the connection'; exit 1", interval: '300ms', timeout: '2s', retries: 2 },
  stopGracePeriod: '1s',
});
`;

async function axeViolations(p: Page): Promise<Array<{ id: string; help: string; nodes: string[] }>> {
  // Evaluated by the browser's debugging protocol, outside the page's Content-Security-Policy (which
  // rightly refuses any script but its own).
  await p.evaluate(fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  return p.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(ctx: Document, o: object): Promise<{ violations: Array<{ id: string; help: string; nodes: Array<{ target: string[] }> }> }> } }).axe;
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
    return r.violations.map((v) => ({ id: v.id, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
}

async function shot(p: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, name), fullPage: true });
}

/** The page never shows a token or the webhook secret. */
async function noSecrets(p: Page): Promise<void> {
  const html = await p.content();
  for (const s of [TOKEN, SECRET, PAGE_TOKEN]) assert.ok(!html.includes(s), 'a secret is on the page');
}

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (npx tsx test/engine.ts --test-tools installs it)`);
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-page-');
  const pageTokenFile = path.join(root, 'page-token');
  fs.writeFileSync(pageTokenFile, PAGE_TOKEN + '\n', { mode: 0o600 });
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1) });
  agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), args: ['--page-token-file', pageTokenFile] });
  await waitFor('the start-up deploy', async () => (await agent.api<{ deployments: Array<{ state: string }> }>('GET', '/deployments')).json.deployments[0]?.state === 'applied', 120_000);
  // As root, chromium's own sandbox cannot start; the page is ours and local.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close().catch(() => undefined);
  await agent?.stop().catch(() => undefined);
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('without a token the page asks for one; the read-only token signs the browser in', async () => {
  const res = await page.goto(agent.url + '/');
  assert.equal(res?.status(), 401);
  assert.equal(await page.locator('label[for="token"]').textContent(), 'Token');
  assert.deepEqual(await axeViolations(page), []);
  await shot(page, 'sign-in.png');
  await page.fill('#token', 'not-the-token');
  await page.click('button[type="submit"]');
  assert.match((await page.locator('[role="alert"]').textContent()) ?? '', /does not open this page/);
  await page.fill('#token', PAGE_TOKEN);
  await page.click('button[type="submit"]');
  await page.waitForSelector('#h-services');
  assert.equal(new URL(page.url()).pathname, '/');
  // The read-only token opens the page, not the management API.
  assert.equal((await agent.api('GET', '/deployments', undefined, PAGE_TOKEN)).status, 401);
  const card = page.locator(`#service-web`);
  assert.match((await card.textContent()) ?? '', /running/);
  assert.match((await card.textContent()) ?? '', new RegExp(TEST_IMAGES.appV1));
  await noSecrets(page);
});

let deployId: string;

test('a deploy shows up live, step by step, and its result — without reloading the page', async () => {
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
  await page.waitForSelector('#live:has-text("Live")');
  const sha = remote.commit({ 'services/web.ts': gatedWeb }, 'web: app 2, gated');
  const r = await deliver(agent.url, { event: 'push', body: pushPayload(sha) });
  assert.equal(r.status, 202);
  deployId = r.json.deployment;
  // The deploy waits for the new container's health: the page shows it running.
  await page.waitForSelector(`#deployment-${deployId} .badge.busy`, { timeout: 90_000 });
  await shot(page, 'overview-deploying.png');

  // The deploy's own page follows its events as they come.
  const detail = await context.newPage();
  await detail.goto(`${agent.url}/deployments/${deployId}`);
  await detail.waitForSelector('.events li:has-text("waiting-health")', { timeout: 60_000 });
  const next = await waitFor('the new container', async () => (await snapshot(docker, project)).containers.find((c) => c.name.includes('-next-'))?.name);
  const ready = await execIn(docker, next, ['touch', '/tmp/ready']);
  assert.equal(ready.code, 0, ready.output);

  await detail.waitForSelector('#h-deploy .badge.ok', { timeout: 90_000 });
  assert.match((await detail.locator('#h-deploy').textContent()) ?? '', /applied/);
  assert.match((await detail.locator('#h-plan ~ *').first().textContent()) ?? '', /1 to replace/);
  assert.ok(await detail.locator('.events li:has-text("apply finished")').count());
  await shot(detail, 'deploy-applied.png');
  assert.deepEqual(await axeViolations(detail), []);
  await detail.close();

  // The overview caught up by itself: the row is applied and the service runs the new image.
  await page.waitForSelector(`#deployment-${deployId} .badge.ok`, { timeout: 60_000 });
  await page.waitForFunction((image) => document.querySelector('#service-web')?.textContent?.includes(image), TEST_IMAGES.appV2, { timeout: 30_000 });
  assert.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'the page was updated in place');
  await shot(page, 'overview.png');
  assert.deepEqual(await axeViolations(page), []);
  await noSecrets(page);
});

test("a failed deploy's page shows the health check output", async () => {
  const sha = remote.commit({ 'services/web.ts': failingWeb }, 'web: broken health');
  const r = await deliver(agent.url, { event: 'push', body: pushPayload(sha) });
  assert.equal(r.status, 202);
  const failed = r.json.deployment as string;
  await page.waitForSelector(`#deployment-${failed} .badge.bad`, { timeout: 120_000 });
  assert.match((await page.locator(`#deployment-${failed}`).textContent()) ?? '', /failed/);
  await page.click(`#deployment-${failed} a[href="/deployments/${failed}"]`);
  await page.waitForSelector('#h-events');
  const health = page.locator('pre[aria-label="health check output"]').first();
  assert.match((await health.textContent()) ?? '', /database at db:5432 refused the connection/);
  assert.match((await page.locator('.events').textContent()) ?? '', /web: failed/);
  await shot(page, 'deploy-failed.png');
  assert.deepEqual(await axeViolations(page), []);
  await noSecrets(page);
  // The old version kept serving: the service is still the one the earlier deploy made.
  await page.goto(agent.url + '/');
  assert.match((await page.locator('#service-web').textContent()) ?? '', new RegExp(TEST_IMAGES.appV2));
});

test('the overview fits a phone screen', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, storageState: await context.storageState() });
  const p = await phone.newPage();
  await p.goto(agent.url + '/');
  await p.waitForSelector('#h-services');
  const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await shot(p, 'overview-phone.png');
  assert.deepEqual(await axeViolations(p), []);
  await phone.close();
});

test('over HTTP: programs get 401 without a token, the API keeps its JSON and its token, the page allows only its own script', async () => {
  const get = (route: string, headers: Record<string, string> = {}) => fetch(agent.url + route, { headers, redirect: 'manual', signal: AbortSignal.timeout(20_000) });
  const anon = await get('/', { accept: 'application/json' });
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), 'Bearer');
  assert.equal((await get('/events')).status, 401);

  const html = await get('/', { authorization: `Bearer ${PAGE_TOKEN}`, accept: 'text/html' });
  assert.equal(html.status, 200);
  assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
  const csp = html.headers.get('content-security-policy') ?? '';
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce, csp);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const text = await html.text();
  assert.equal(text.match(/<script/g)?.length, 1);
  assert.ok(text.includes(`<script nonce="${nonce}">`));

  // The same address serves people and programs: HTML for a browser, the API's JSON (and token) for the rest.
  const { json } = await agent.api<{ deployments: Array<{ id: string }> }>('GET', '/deployments');
  const id = json.deployments[0]!.id;
  const api = await agent.api<{ id: string; events: unknown[] }>('GET', `/deployments/${id}`);
  assert.equal(api.status, 200);
  assert.equal(api.json.id, id);
  assert.ok(api.json.events.length > 0);
  assert.equal((await get(`/deployments/${id}`, { authorization: `Bearer ${PAGE_TOKEN}` })).status, 401, 'the read-only token is not the API token');
  const page = await get(`/deployments/${id}`, { authorization: `Bearer ${PAGE_TOKEN}`, accept: 'text/html,application/xhtml+xml' });
  assert.equal(page.status, 200);
  assert.match(await page.text(), new RegExp(`Deploy <span class="mono">${id}</span>`));

  // Signing in never sends the browser to another site.
  const login = await fetch(agent.url + '/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: PAGE_TOKEN, next: '//evil.example/' }).toString(),
    redirect: 'manual',
  });
  assert.equal(login.status, 303);
  assert.equal(login.headers.get('location'), '/');
  assert.match(login.headers.get('set-cookie') ?? '', /^waffle_page=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
  assert.ok(!(login.headers.get('set-cookie') ?? '').includes(PAGE_TOKEN));
});

test('SIGTERM while browsers listen to the live updates: the agent still stops cleanly', async () => {
  await page.goto(agent.url + '/');
  await page.waitForSelector('#live:has-text("Live")');
  const code = await agent.stop(30_000);
  assert.equal(code, 0, agent.log().slice(-2000));
  // The browser is told the stream ended and keeps what it shows.
  await page.waitForSelector('#live:has-text("paused")');
  assert.ok(await page.locator('#service-web').count());
});
