// The browser test of the web console and the local-first canvas demo
// (node/web/), run by run.sh under CTest (tests/browser/CMakeLists.txt).
//
// It starts a real 3-node cluster of cairnd processes on this test's
// ports (23800-23999: node N has client port 23800+N, HTTP 23810+N, Raft
// 23820+N), drives headless Debian Chromium through playwright-core, and
// checks what a person would see:
// - the console lists three members and one leader, the same leader and
//   term the nodes report over HTTP; its live tail shows a new append; its
//   stream browser lists the canvas category and pages through a stream;
// - two canvas pages in two browser contexts (two devices) on two
//   different nodes: A goes offline (no request leaves it), paints; B
//   paints other cells and some of A's; A comes back and syncs; a lost
//   sync reply is resent under the same seq and appended once; both grids
//   end identical, equal to the last-write-wins fold of the stream read
//   over HTTP, with A's later paints winning the shared cells;
// - every node exits 0 on SIGTERM afterwards, with a console subscribed.
//
// Environment: CAIRN_CAIRND (the cairnd binary, required), CAIRN_TEST_TMP
// (scratch space; a fresh folder is made under it), CAIRN_CHROMIUM
// (default /usr/bin/chromium), CAIRN_WEB_DOCS_SCREENSHOT (a path: also
// save the canvas screenshot there, for docs/canvas.png).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CAIRND = process.env.CAIRN_CAIRND;
const CHROMIUM = process.env.CAIRN_CHROMIUM || '/usr/bin/chromium';
const PORT_BASE = 23800;
const NODES = [1, 2, 3];
const HOST = '127.0.0.1';
// Generous: two cores shared with the rest of the suite, maybe a
// sanitizer build.
const CLUSTER_WAIT_MS = 60000;
const UI_WAIT_MS = 30000;
const STOP_WAIT_MS = 20000;
// How many tests this file has: when all pass, the nodes' data goes.
const TESTS = 5;

const clientAddr = (n) => `${HOST}:${PORT_BASE + n}`;
const httpAddr = (n) => `${HOST}:${PORT_BASE + 10 + n}`;
const raftAddr = (n) => `${HOST}:${PORT_BASE + 20 + n}`;
const httpUrl = (n, p) => `http://${httpAddr(n)}${p}`;

const tmpRoot = process.env.CAIRN_TEST_TMP || os.tmpdir();
const workDir = fs.mkdtempSync(path.join(tmpRoot, 'browser-'));
// The pids of this run's nodes, so that the next run can end nodes a
// killed run (a CTest timeout) left behind on this test's ports.
const pidFile = path.join(tmpRoot, 'browser-test.pids');
const procs = new Map();
let browser = null;
let passed = 0;

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

// Polls @probe (async, returns a truthy value when done) until it does or
// @ms pass; fails with @what and the last value or error seen.
async function waitFor(what, probe, ms = UI_WAIT_MS) {
	const deadline = Date.now() + ms;
	let last;
	for (;;) {
		try {
			last = await probe();
			if (last)
				return last;
		} catch (e) {
			last = e;
		}
		if (Date.now() > deadline) {
			const seen = last instanceof Error ? last.message : JSON.stringify(last);
			throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${seen}`);
		}
		await sleep(100);
	}
}

async function getJson(url) {
	const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
	const body = await res.json();
	if (!res.ok)
		throw new Error(`GET ${url}: ${res.status} ${JSON.stringify(body)}`);
	return body;
}

async function postJson(url, body, headers = {}) {
	const res = await fetch(url, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json', ...headers },
		body: JSON.stringify(body),
		signal: AbortSignal.timeout(10000),
	});
	const json = await res.json();
	if (!res.ok)
		throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(json)}`);
	return json;
}

// Every event of @stream, read over HTTP from node @n, forward, paged.
async function readStream(n, stream) {
	const events = [];
	let from = 1;
	for (;;) {
		const page = await getJson(httpUrl(n, `/streams/${encodeURIComponent(stream)}` +
			`?from=${from}&limit=1000&consistency=leader`));
		events.push(...page.events);
		if (typeof page.next !== 'number' || page.events.length === 0)
			return events;
		from = page.next;
	}
}

// The grid a canvas must show for @events: the colour of the last
// CellPainted of each cell, in stream order.
function fold(events, size = 32) {
	const grid = new Array(size * size).fill(null);
	for (const ev of events) {
		if (ev.type !== 'CellPainted')
			continue;
		const { x, y, color } = ev.data;
		grid[y * size + x] = color;
	}
	return grid;
}

// Ends the nodes a previous run left running (their pids are in pidFile
// and their command line names a scratch folder of this test).
function killLeftovers() {
	let pids = [];
	try {
		pids = fs.readFileSync(pidFile, 'utf8').split('\n').filter((x) => /^[0-9]+$/.test(x));
	} catch {
		return;
	}
	for (const pid of pids) {
		let cmdline = '';
		try {
			cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
		} catch {
			continue;
		}
		if (cmdline.includes('cairnd') && cmdline.includes(path.join(tmpRoot, 'browser-'))) {
			console.log(`# ending node pid ${pid} left by an earlier run`);
			try {
				process.kill(Number(pid), 'SIGKILL');
			} catch {
				// Gone already.
			}
		}
	}
}

function startNode(n) {
	const dir = path.join(workDir, `node${n}`);
	fs.mkdirSync(dir, { recursive: true });
	const log = fs.openSync(path.join(workDir, `node${n}.log`), 'a');
	const peers = NODES.map((m) => `${m}=${raftAddr(m)}/${clientAddr(m)}/${httpAddr(m)}`).join(',');
	const child = spawn(CAIRND, [
		'--id', String(n), '--data-dir', dir,
		'--raft-address', raftAddr(n), '--client-address', clientAddr(n),
		'--http-address', httpAddr(n), '--peers', peers,
	], {
		stdio: ['ignore', log, log],
		env: {
			...process.env,
			CAIRN_ELECTION_TIMEOUT_MS: '1000',
			CAIRN_HEARTBEAT_TIMEOUT_MS: '100',
		},
	});
	const p = { child, exit: null };
	p.exited = new Promise((resolve) => child.on('exit', (code, signal) => {
		p.exit = { code, signal };
		resolve(p.exit);
	}));
	procs.set(n, p);
	fs.appendFileSync(pidFile, `${child.pid}\n`);
}

function logTail(n) {
	try {
		return fs.readFileSync(path.join(workDir, `node${n}.log`), 'utf8').split('\n').slice(-30).join('\n');
	} catch {
		return '(no log)';
	}
}

// The cluster as every node reports it, once all three agree on a leader.
async function clusterAgreed() {
	for (const [n, p] of procs) {
		if (p.exit !== null)
			throw new Error(`node ${n} exited (${JSON.stringify(p.exit)}):\n${logTail(n)}`);
	}
	const views = await Promise.all(NODES.map((n) => getJson(httpUrl(n, '/cluster'))));
	const leader = views[0].leader;
	if (!leader || !views.every((v) => v.leader === leader && v.members && v.members.length === 3))
		return null;
	return { leader, term: views.find((v) => v.node === leader).term, views };
}

function killAll(signal) {
	for (const p of procs.values()) {
		if (p.exit === null)
			p.child.kill(signal);
	}
}
process.on('exit', () => killAll('SIGKILL'));
for (const sig of ['SIGINT', 'SIGTERM']) {
	process.on(sig, () => {
		killAll('SIGKILL');
		process.exit(1);
	});
}

before(async () => {
	assert.ok(CAIRND, 'CAIRN_CAIRND names the cairnd binary');
	assert.ok(fs.existsSync(CAIRND), `${CAIRND} exists`);
	assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} exists (deploy/setup.sh installs chromium)`);
	console.log(`# scratch folder: ${workDir}`);
	killLeftovers();
	fs.writeFileSync(pidFile, '');
	for (const n of NODES)
		startNode(n);
	const c = await waitFor('three nodes that agree on a leader', clusterAgreed, CLUSTER_WAIT_MS);
	console.log(`# cluster up: leader ${c.leader}, term ${c.term}`);
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
			'--disable-background-networking', '--disable-component-update',
			'--disable-sync'],
	});
});

after(async () => {
	if (browser !== null)
		await browser.close().catch(() => {});
	killAll('SIGKILL');
	await Promise.all([...procs.values()].map((p) => p.exited));
	fs.rmSync(pidFile, { force: true });
	// All passed: the nodes' data is of no more use (logs and
	// screenshots stay); after a failure everything stays.
	if (passed === TESTS) {
		for (const n of NODES)
			fs.rmSync(path.join(workDir, `node${n}`), { recursive: true, force: true });
	}
});

// A new browser context (a device of its own: own localStorage) and a
// page in it that fails the test on any uncaught exception.
async function newDevice(name) {
	const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
	const page = await context.newPage();
	const errors = [];
	page.on('pageerror', (e) => errors.push(`${name}: ${e.message}`));
	page.on('console', (m) => {
		if (m.type() === 'error')
			console.log(`# ${name} console: ${m.text()}`);
	});
	return { context, page, errors };
}

const shot = (page, name) => page.screenshot({ path: path.join(workDir, `${name}.png`), fullPage: true });

const canvasState = (page) => page.evaluate(() => window.cairnCanvas.state());

const cell = (page, x, y) => page.locator(`#grid .cell[data-x="${x}"][data-y="${y}"]`);

async function paint(page, color, cells) {
	await page.locator(`#palette .swatch[data-color="${color}"]`).click();
	for (const [x, y] of cells)
		await cell(page, x, y).click();
}

// Longest run of one test, so that a hang names the test.
const TEST_TIMEOUT_MS = 180000;

// A test that counts itself in `passed` when it passes.
function check(name, fn) {
	test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
		await fn();
		passed++;
	});
}

const RED = '#e53935';
const BLUE = '#1e88e5';
const GREEN = '#7cb342';
const idx = (x, y) => y * 32 + x;

check('console shows three members and the leader the nodes agree on', async () => {
	const c = await waitFor('a leader', clusterAgreed, CLUSTER_WAIT_MS);
	const follower = NODES.find((n) => n !== c.leader);
	const { context, page, errors } = await newDevice('console');
	try {
		// "/" is the console too; open it on a follower.
		await page.goto(httpUrl(follower, '/'));
		await waitFor('three member rows', async () =>
			(await page.locator('#members tbody tr').count()) === 3);
		await waitFor('one leader row', async () =>
			(await page.locator('#members tbody tr[data-role="leader"]').count()) === 1);
		const leaderRow = page.locator('#members tbody tr[data-role="leader"]');
		assert.equal(await leaderRow.getAttribute('data-id'), String(c.leader));
		const now = await clusterAgreed();
		assert.equal(await page.locator('#leader').textContent(), `node ${now.leader}`);
		assert.equal(await page.locator('#node-id').textContent(), String(follower));
		assert.equal(await page.locator('#node-role').textContent(), 'follower');
		assert.equal(await page.locator('#term').textContent(), String(now.term));
		const rows = await page.locator('#members tbody tr').evaluateAll((trs) =>
			trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
		for (const n of NODES) {
			const row = rows.find((r) => r[0].startsWith(String(n)));
			assert.ok(row, `a row for node ${n}`);
			assert.equal(row[3], raftAddr(n));
			assert.equal(row[4], clientAddr(n));
			assert.equal(row[5], httpAddr(n));
		}
		await shot(page, 'console-status');
		assert.deepEqual(errors, []);
	} finally {
		await context.close();
	}
});

check('console live tail shows an event appended after it went live', async () => {
	const { context, page, errors } = await newDevice('tail');
	try {
		await page.goto(httpUrl(2, '/console'));
		await waitFor('the tail to be live', async () =>
			(await page.locator('#tail-state').getAttribute('data-state')) === 'ok');
		await postJson(httpUrl(1, '/streams/order-7'),
			[{ type: 'OrderPlaced', data: { total: 42 } }]);
		const row = page.locator('#tail tbody tr', { hasText: 'order-7' });
		await waitFor('the tail row of order-7', async () => (await row.count()) === 1);
		const cells = await row.locator('td').allTextContents();
		assert.equal(cells[1], 'order-7');
		assert.equal(cells[2], '1');
		assert.equal(cells[3], 'OrderPlaced');
		assert.equal(cells[5], '{"total":42}');
		assert.deepEqual(errors, []);
	} finally {
		await context.close();
	}
});

check('canvas: offline paints sync on reconnect, a lost reply is resent once, both grids converge last write wins', async () => {
	const c = await waitFor('a leader', clusterAgreed, CLUSTER_WAIT_MS);
	// Device A on a follower (its sync is redirected to the leader),
	// device B on another node.
	const nodeA = NODES.find((n) => n !== c.leader);
	const nodeB = NODES.find((n) => n !== nodeA);
	const A = await newDevice('A');
	const B = await newDevice('B');
	try {
		await A.page.goto(httpUrl(nodeA, '/canvas'));
		await B.page.goto(httpUrl(nodeB, '/canvas'));
		for (const [name, d] of [['A', A], ['B', B]]) {
			await waitFor(`canvas ${name} to be live`, async () => (await canvasState(d.page)).live);
			const s = await canvasState(d.page);
			assert.equal(s.stream, 'canvas-main');
			assert.equal(s.version, 0);
			assert.equal(s.pendingEvents, 0);
		}

		// A goes offline: from now on no request may leave it.
		const offlineRequests = [];
		let aOffline = true;
		A.page.on('request', (r) => {
			if (aOffline)
				offlineRequests.push(r.url());
		});
		await A.page.locator('#offline').check();
		await waitFor('A to say offline', async () =>
			(await A.page.locator('#sync-state').getAttribute('data-state')) === 'offline');

		const aCells = [[0, 0], [1, 0], [2, 0], [3, 3], [4, 4], [5, 5]];
		await paint(A.page, RED, aCells);
		let sa = await canvasState(A.page);
		assert.equal(sa.pendingEvents, aCells.length, 'every offline paint is buffered');
		assert.equal(sa.version, 0, 'nothing came from the cluster');
		for (const [x, y] of aCells) {
			assert.equal(sa.display[idx(x, y)], RED, `A shows its own paint at ${x},${y}`);
			assert.equal(await cell(A.page, x, y).getAttribute('data-color'), RED);
		}
		assert.equal(await A.page.locator('#pending-count').textContent(), String(aCells.length));
		const stored = await A.page.evaluate(() => JSON.parse(localStorage.getItem('cairn.canvas.buffer.v1')));
		assert.equal(stored.batches.flatMap((b) => b.streams.flatMap((s) => s.events)).length,
			aCells.length, 'the paints are in localStorage');

		// B, online, paints three cells of its own and two of A's.
		const bOwn = [[10, 10], [11, 10], [12, 10]];
		const bShared = [[0, 0], [3, 3]];
		await paint(B.page, BLUE, [...bOwn, ...bShared]);
		await waitFor('B to sync its five paints', async () => {
			const s = await canvasState(B.page);
			return s.pendingEvents === 0 && s.version === 5 && s.awaiting === 0;
		});
		const afterB = await readStream(1, 'canvas-main');
		assert.equal(afterB.length, 5);
		assert.deepEqual(fold(afterB).filter((x) => x !== null).length, 5);

		sa = await canvasState(A.page);
		assert.equal(sa.version, 0, 'offline A saw none of B\'s paints');
		assert.equal(sa.display[idx(0, 0)], RED);
		assert.equal(sa.display[idx(10, 10)], null);
		await shot(A.page, 'canvas-a-offline');
		await shot(B.page, 'canvas-b-before-sync');
		assert.deepEqual(offlineRequests, [], 'A made no request while offline');

		// The first sync reply A would get is lost: the node appends,
		// the page sees a dropped connection and must resend the same
		// batches under the same seqs.
		let syncRequests = 0;
		const syncBodies = [];
		await A.context.route('**/sync', async (route) => {
			syncRequests++;
			syncBodies.push(route.request().postDataJSON());
			if (syncRequests === 1) {
				const res = await route.fetch();
				assert.equal(res.status(), 200, 'the first sync was applied');
				await route.abort('connectionreset');
				return;
			}
			await route.continue();
		});
		aOffline = false;
		await A.page.locator('#offline').uncheck();

		await waitFor('A to sync and both pages to converge', async () => {
			const [s1, s2] = [await canvasState(A.page), await canvasState(B.page)];
			return s1.pendingEvents === 0 && s1.awaiting === 0 && s2.awaiting === 0 &&
				s1.version === 11 && s2.version === 11 && s1.live && s2.live;
		});
		assert.ok(syncRequests >= 2, `the lost reply was followed by a resend (${syncRequests} requests)`);
		assert.deepEqual(syncBodies[1].batches.map((b) => b.seq).slice(0, syncBodies[0].batches.length),
			syncBodies[0].batches.map((b) => b.seq), 'the resend kept the seqs');
		assert.equal(syncBodies[1].client_id, syncBodies[0].client_id);
		assert.deepEqual(syncBodies[1].batches[0], syncBodies[0].batches[0], 'the resent batch is identical');

		const events = await readStream(1, 'canvas-main');
		assert.equal(events.length, 11, 'A\'s six paints were appended once');
		const ids = events.map((e) => e.id);
		assert.equal(new Set(ids).size, ids.length, 'no event id twice');
		assert.deepEqual(events.map((e) => e.version), [...Array(11).keys()].map((i) => i + 1));
		for (let i = 1; i < events.length; i++)
			assert.ok(events[i].position > events[i - 1].position, 'positions increase');
		const expected = fold(events);

		const sA = await canvasState(A.page);
		const sB = await canvasState(B.page);
		assert.deepEqual(sA.confirmed, expected, 'A\'s grid is the fold of the stream');
		assert.deepEqual(sB.confirmed, expected, 'B\'s grid is the fold of the stream');
		assert.deepEqual(sA.display, expected);
		assert.deepEqual(sB.display, expected);
		assert.deepEqual(sA.shown, expected, 'A\'s cells in the DOM');
		assert.deepEqual(sB.shown, expected, 'B\'s cells in the DOM');

		// Concrete colours: A painted after B in stream order, so A's
		// red wins the shared cells; B's own cells stay blue.
		for (const [x, y] of aCells)
			assert.equal(expected[idx(x, y)], RED, `cell ${x},${y} is A's red`);
		for (const [x, y] of bOwn)
			assert.equal(expected[idx(x, y)], BLUE, `cell ${x},${y} is B's blue`);
		assert.equal(expected[idx(20, 20)], null, 'an unpainted cell stays empty');
		assert.equal(expected.filter((x) => x !== null).length, 9);
		const computed = await cell(B.page, 0, 0).evaluate((e) => getComputedStyle(e).backgroundColor);
		assert.equal(computed, 'rgb(229, 57, 53)', 'B draws cell 0,0 in A\'s red');

		// Live both ways: B paints over one of A's cells; A sees it.
		await paint(B.page, GREEN, [[1, 0]]);
		await waitFor('A to see B\'s green', async () =>
			(await cell(A.page, 1, 0).getAttribute('data-color')) === GREEN);
		await waitFor('B to sync the green', async () => (await canvasState(B.page)).pendingEvents === 0);
		assert.deepEqual((await canvasState(A.page)).display, fold(await readStream(1, 'canvas-main')));

		await shot(A.page, 'canvas-a');
		await shot(B.page, 'canvas-b');
		if (process.env.CAIRN_WEB_DOCS_SCREENSHOT)
			await A.page.screenshot({ path: process.env.CAIRN_WEB_DOCS_SCREENSHOT });
		assert.deepEqual([...A.errors, ...B.errors], []);
	} finally {
		await A.context.close();
		await B.context.close();
	}
});

check('console stream browser lists the canvas stream and pages through it', async () => {
	const { context, page, errors } = await newDevice('browser');
	try {
		await page.goto(httpUrl(3, '/console'));
		const cat = page.locator('#categories button[data-name="canvas"]');
		await waitFor('the canvas category', async () => (await cat.count()) === 1);
		await cat.click();
		const stream = page.locator('#streams button[data-name="canvas-main"]');
		await waitFor('the canvas-main stream', async () => (await stream.count()) === 1);
		await page.locator('#read-limit').fill('5');
		await stream.click();
		const versions = () => page.locator('#read-events tbody tr td:first-child').allTextContents();
		await waitFor('versions 1-5', async () => (await versions()).join() === '1,2,3,4,5');
		await page.locator('#page-next').click();
		await waitFor('versions 6-10', async () => (await versions()).join() === '6,7,8,9,10');
		await page.locator('#page-prev').click();
		await waitFor('versions 1-5 again', async () => (await versions()).join() === '1,2,3,4,5');
		await page.locator('#page-last').click();
		await waitFor('the newest five, backward', async () =>
			(await versions()).join() === '12,11,10,9,8');
		const types = await page.locator('#read-events tbody tr td:nth-child(3)').allTextContents();
		assert.deepEqual(types, Array(5).fill('CellPainted'));
		await shot(page, 'console');
		assert.deepEqual(errors, []);
	} finally {
		await context.close();
	}
});

check('every node exits 0 on SIGTERM while a console is still subscribed', async () => {
	const { page } = await newDevice('last');
	await page.goto(httpUrl(1, '/console'));
	await waitFor('the tail to be live', async () =>
		(await page.locator('#tail-state').getAttribute('data-state')) === 'ok');
	killAll('SIGTERM');
	const deadline = sleep(STOP_WAIT_MS).then(() => 'timeout');
	for (const [n, p] of procs) {
		const r = await Promise.race([p.exited, deadline]);
		assert.notEqual(r, 'timeout', `node ${n} stopped within ${STOP_WAIT_MS} ms`);
		assert.deepEqual(r, { code: 0, signal: null }, `node ${n} exited 0:\n${logTail(n)}`);
	}
});
