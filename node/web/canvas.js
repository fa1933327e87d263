// The local-first canvas demo (canvas.html). A 32x32 grid whose state is
// the stream canvas-main (or canvas-NAME with ?name=NAME): every paint is
// an event {type: "CellPainted", data: {x, y, color}} and a cell shows the
// colour of the last such event in stream order (last write wins by
// position).
//
// Writes are local first. A paint goes into a buffer in localStorage (this
// browser's client id, the next sequence number, and batches of events
// under fixed sequence numbers) and shows at once; the buffer is flushed
// through POST /sync, which appends each batch as one transaction keyed by
// (client id, seq), so sending a batch again after a lost reply is
// answered from the node's dedup state instead of appending twice. A batch
// leaves the buffer only when a sync reply covers it. Offline (the browser
// says so, requests fail, or the "Offline" switch simulates it: no network
// calls at all) painting goes on into the buffer; on reconnect the page
// catches up, resumes its subscription and flushes.
//
// The grid is built by reading the stream (GET /streams/{stream}, paged)
// and kept current by a subscription (GET /subscribe?stream=...), which
// the browser resumes after the last position seen (Last-Event-ID).
//
// window.cairnCanvas.state() returns the page's state, for tests.
import { api, ApiError, describeError, NetworkError, uuid } from '/common.js';

// The grid is SIZE x SIZE cells; x goes right, y down, both from 0.
const SIZE = 32;
const PALETTE = [
	'#000000', '#ffffff', '#9e9e9e', '#5d4037',
	'#e53935', '#fb8c00', '#fdd835', '#7cb342',
	'#2e7d32', '#00acc1', '#1e88e5', '#3949ab',
	'#8e24aa', '#d81b60', '#f8bbd0', '#ffe0b2',
];
const COLOR_RE = /^#[0-9a-f]{6}$/;
const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;

// The buffer of every canvas of this origin (one client id, one sequence).
const BUFFER_KEY = 'cairn.canvas.buffer.v1';
// Events in one batch: well under the gateway's HTTP_EVENTS_MAX (1000),
// and small enough that a batch is a quick transaction.
const BATCH_EVENTS_MAX = 200;
// Batches in one POST /sync (the gateway takes up to 1000).
const SYNC_BATCHES_MAX = 50;
// Events the buffer may hold: a bound on localStorage use (about 100
// bytes each; browsers give an origin about 5 MB).
const BUFFER_EVENTS_MAX = 20000;
// Events asked for per page when reading the stream.
const READ_PAGE = 1000;
// Paints within this long of each other go into one batch.
const FLUSH_DELAY_MS = 100;
// Waits between retries of a failed sync or connection, doubling.
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;
// Every this often, a page with a non-empty buffer tries to flush anyway
// (another tab may have added to it, a retry may be due).
const FLUSH_TICK_MS = 3000;

const $ = (id) => document.getElementById(id);

function canvasName() {
	const name = new URLSearchParams(location.search).get('name');
	return name !== null && NAME_RE.test(name) ? name : 'main';
}

const st = {
	stream: `canvas-${canvasName()}`,
	// The fold of the stream: colour per cell (index y*SIZE+x) or null.
	confirmed: new Array(SIZE * SIZE).fill(null),
	// The stream's version and the position of its last event folded.
	version: 0,
	position: 0,
	// Events this page synced that the fold has not reached yet, per
	// cell: { id, color, position } (position 0 when unknown). They show
	// until the fold gets that far, so a paint never flickers back.
	awaiting: new Map(),
	// Colour per cell of the events still in the buffer (for this stream).
	pending: new Map(),
	pendingEvents: 0,
	pendingBatches: 0,
	color: PALETTE[4],
	simulatedOffline: false,
	// Aborts every request in flight when the page goes offline.
	abort: new AbortController(),
	source: null,
	live: false,
	catchingUp: false,
	catchUpAgain: false,
	connected: false,
	connectTimer: null,
	connectRetryMs: RETRY_MIN_MS,
	flushing: false,
	flushTimer: null,
	flushRetryMs: RETRY_MIN_MS,
	// After a whole /sync was refused as invalid: send one batch at a
	// time to find the one at fault.
	sendOne: false,
	syncState: 'idle',
	syncError: '',
	renderTimer: null,
	cells: [],
};

function offline() {
	return st.simulatedOffline || !navigator.onLine;
}

// ---------------------------------------------------------------------
// The buffer in localStorage:
//   { client_id, next_seq, batches: [{ seq, sent, streams: [{ stream,
//     events: [{ type, id, data }] }] }] }
// A batch that was ever sent ("sent") never changes again, so every
// resend carries the same events under the same seq.

function validBuffer(b) {
	return b !== null && typeof b === 'object' &&
		typeof b.client_id === 'string' &&
		/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(b.client_id) &&
		Number.isSafeInteger(b.next_seq) && b.next_seq >= 1 &&
		Array.isArray(b.batches) &&
		b.batches.every((x) => x && Number.isSafeInteger(x.seq) &&
			Array.isArray(x.streams) &&
			x.streams.every((s) => s && typeof s.stream === 'string' &&
				Array.isArray(s.events)));
}

function loadBuffer() {
	let b = null;
	try {
		b = JSON.parse(localStorage.getItem(BUFFER_KEY));
	} catch {
		b = null;
	}
	if (!validBuffer(b)) {
		b = { client_id: uuid(), next_seq: 1, batches: [] };
		saveBuffer(b);
	}
	return b;
}

// Throws when the browser refuses (storage full or disabled).
function saveBuffer(b) {
	localStorage.setItem(BUFFER_KEY, JSON.stringify(b));
}

function batchEvents(batch) {
	return batch.streams.reduce((n, s) => n + s.events.length, 0);
}

// Recomputes st.pending and the counts from the buffer.
function readPending() {
	const b = loadBuffer();
	st.pending.clear();
	st.pendingEvents = 0;
	for (const batch of b.batches) {
		st.pendingEvents += batchEvents(batch);
		for (const s of batch.streams) {
			if (s.stream !== st.stream)
				continue;
			for (const ev of s.events) {
				const idx = cellIndex(ev.data);
				if (idx !== null)
					st.pending.set(idx, ev.data.color);
			}
		}
	}
	st.pendingBatches = b.batches.length;
	return b;
}

// ---------------------------------------------------------------------
// The fold of the stream.

// The cell of event data {x, y, color}, or null when it is not a paint
// of this grid.
function cellIndex(d) {
	if (d === null || typeof d !== 'object')
		return null;
	if (!Number.isInteger(d.x) || !Number.isInteger(d.y))
		return null;
	if (d.x < 0 || d.x >= SIZE || d.y < 0 || d.y >= SIZE)
		return null;
	if (typeof d.color !== 'string' || !COLOR_RE.test(d.color))
		return null;
	return d.y * SIZE + d.x;
}

function displayColor(idx) {
	if (st.pending.has(idx))
		return st.pending.get(idx);
	const a = st.awaiting.get(idx);
	if (a !== undefined)
		return a.color;
	return st.confirmed[idx];
}

// Folds one event of the stream, in version order. A gap (a version
// skipped) means events were missed: they are read again.
function applyEvent(ev) {
	if (!ev || ev.stream !== st.stream || !Number.isSafeInteger(ev.version))
		return;
	if (ev.version <= st.version)
		return;
	if (ev.version !== st.version + 1) {
		catchUp().catch(() => {});
		return;
	}
	st.version = ev.version;
	if (Number.isSafeInteger(ev.position))
		st.position = ev.position;
	if (ev.type === 'CellPainted') {
		const idx = cellIndex(ev.data);
		if (idx !== null)
			st.confirmed[idx] = ev.data.color;
	}
	for (const [idx, a] of st.awaiting) {
		if (a.id === ev.id || (a.position > 0 && st.position >= a.position))
			st.awaiting.delete(idx);
	}
	scheduleRender();
}

// Reads the stream from the version after the last one folded to its
// end. Concurrent calls coalesce into one more round.
async function catchUp() {
	if (st.catchingUp) {
		st.catchUpAgain = true;
		return;
	}
	st.catchingUp = true;
	try {
		do {
			st.catchUpAgain = false;
			for (;;) {
				const from = st.version + 1;
				const json = await api(`/streams/${encodeURIComponent(st.stream)}` +
					`?from=${from}&limit=${READ_PAGE}`, { signal: st.abort.signal });
				const events = Array.isArray(json.events) ? json.events : [];
				for (const ev of events)
					applyEvent(ev);
				if (typeof json.next !== 'number' || events.length === 0)
					break;
			}
		} while (st.catchUpAgain);
	} finally {
		st.catchingUp = false;
	}
}

// ---------------------------------------------------------------------
// Connection: read, subscribe, flush; again after any failure.

function setConn(state, text) {
	$('conn').dataset.state = state;
	$('conn').textContent = text;
}

function scheduleConnect() {
	if (st.connectTimer !== null || offline())
		return;
	const wait = st.connectRetryMs;
	st.connectRetryMs = Math.min(RETRY_MAX_MS, st.connectRetryMs * 2);
	setConn('down', `unreachable; retrying in ${Math.ceil(wait / 1000)} s`);
	st.connectTimer = setTimeout(() => {
		st.connectTimer = null;
		connect();
	}, wait);
}

async function connect() {
	if (offline() || st.connected)
		return;
	st.connected = true;
	setConn('warn', 'connecting');
	try {
		await catchUp();
	} catch (e) {
		st.connected = false;
		if (!offline())
			scheduleConnect();
		return;
	}
	if (offline()) {
		st.connected = false;
		return;
	}
	st.connectRetryMs = RETRY_MIN_MS;
	openSource();
	flushSoon(0);
}

function openSource() {
	// The first connection starts after what was read; the browser's own
	// reconnections send Last-Event-ID, which the node prefers.
	const es = new EventSource(`/subscribe?stream=${encodeURIComponent(st.stream)}` +
		`&from=${st.version + 1}`);
	st.source = es;
	st.live = false;
	setConn('warn', 'catching up');
	es.addEventListener('event', (m) => {
		let ev;
		try {
			ev = JSON.parse(m.data);
		} catch {
			return;
		}
		applyEvent(ev);
	});
	es.addEventListener('live', () => {
		st.live = true;
		setConn('ok', 'live');
		scheduleRender();
	});
	es.addEventListener('error', () => {
		if (st.source !== es)
			return;
		st.live = false;
		if (es.readyState === EventSource.CLOSED) {
			// The browser gave up (the node refused the request):
			// read what was missed and subscribe again, later.
			es.close();
			st.source = null;
			st.connected = false;
			scheduleConnect();
		} else {
			setConn('warn', 'reconnecting');
		}
		scheduleRender();
	});
}

function disconnect() {
	st.abort.abort();
	st.abort = new AbortController();
	if (st.source !== null) {
		st.source.close();
		st.source = null;
	}
	st.live = false;
	st.connected = false;
	for (const t of ['connectTimer', 'flushTimer']) {
		if (st[t] !== null) {
			clearTimeout(st[t]);
			st[t] = null;
		}
	}
}

function updateOnline() {
	if (offline()) {
		disconnect();
		setConn('down', st.simulatedOffline ? 'offline (switch)' : 'offline (browser)');
		setSyncState('offline');
	} else {
		st.connectRetryMs = RETRY_MIN_MS;
		st.flushRetryMs = RETRY_MIN_MS;
		connect();
	}
	scheduleRender();
}

// ---------------------------------------------------------------------
// Flushing the buffer through POST /sync.

function setSyncState(state, error = '') {
	st.syncState = state;
	st.syncError = error;
	scheduleRender();
}

function flushSoon(delay) {
	if (offline() || st.flushTimer !== null)
		return;
	st.flushTimer = setTimeout(() => {
		st.flushTimer = null;
		flush();
	}, delay);
}

function retryFlush(why) {
	const wait = st.flushRetryMs;
	st.flushRetryMs = Math.min(RETRY_MAX_MS, st.flushRetryMs * 2);
	setSyncState('retrying', `${why}; retrying in ${Math.ceil(wait / 1000)} s`);
	flushSoon(wait);
}

// Removes the batches with the given seqs; re-keys the ones in @resequence
// (their seq fell below the node's high-water mark without committing,
// so they never committed and a new seq is safe). Returns the buffer.
function settleBatches(done, dropped, resequence) {
	const b = loadBuffer();
	b.batches = b.batches.filter((x) => !done.has(x.seq) && !dropped.has(x.seq));
	for (const x of b.batches) {
		if (resequence.has(x.seq)) {
			x.seq = b.next_seq++;
			x.sent = false;
		}
	}
	b.batches.sort((p, q) => p.seq - q.seq);
	saveBuffer(b);
	return b;
}

// Keeps what a sync reply says about our events until the fold gets there.
function awaitSynced(batch, result) {
	const flat = [];
	for (const s of batch.streams) {
		for (const ev of s.events)
			flat.push({ stream: s.stream, ev });
	}
	const positions = Array.isArray(result.positions) &&
		result.positions.length === flat.length ? result.positions : null;
	flat.forEach(({ stream, ev }, i) => {
		if (stream !== st.stream)
			return;
		const idx = cellIndex(ev.data);
		if (idx === null)
			return;
		const position = positions !== null && Number.isSafeInteger(positions[i]) ? positions[i] : 0;
		if (position > 0 && st.position >= position)
			return;
		st.awaiting.set(idx, { id: ev.id, color: ev.data.color, position });
	});
}

async function flushOnce() {
	let b = loadBuffer();
	const batches = b.batches.slice(0, st.sendOne ? 1 : SYNC_BATCHES_MAX);
	if (batches.length === 0)
		return false;
	// From here on these batches never change: a resend is identical.
	for (const x of batches)
		x.sent = true;
	saveBuffer(b);
	setSyncState('syncing');

	const body = {
		client_id: b.client_id,
		batches: batches.map((x) => ({ seq: x.seq, streams: x.streams })),
	};
	let reply;
	try {
		reply = await api('/sync', { method: 'POST', body, signal: st.abort.signal });
	} catch (e) {
		if (e instanceof ApiError && e.status >= 400 && e.status < 500 &&
		    e.status !== 408 && e.status !== 429) {
			// The request as a whole was refused: find the batch at
			// fault by sending one at a time, and drop it.
			if (!st.sendOne && batches.length > 1) {
				st.sendOne = true;
				return true;
			}
			settleBatches(new Set(), new Set([batches[0].seq]), new Set());
			setSyncState('error', `batch ${batches[0].seq} rejected: ${describeError(e)}`);
			return true;
		}
		throw e;
	}

	const bySeq = new Map(batches.map((x) => [x.seq, x]));
	const done = new Set();
	const dropped = new Set();
	const resequence = new Set();
	let failure = null;
	for (const r of (reply && Array.isArray(reply.results)) ? reply.results : []) {
		const batch = bySeq.get(r.seq);
		if (batch === undefined)
			continue;
		if (r.error) {
			failure = r;
			const code = r.error.code || '';
			if (code === 'stale_sequence')
				resequence.add(r.seq);
			else if (code !== 'unavailable' && code !== 'timeout')
				dropped.add(r.seq);
			break;
		}
		done.add(r.seq);
		awaitSynced(batch, r);
	}
	settleBatches(done, dropped, resequence);
	st.sendOne = st.sendOne && failure === null && done.size === 0;
	if (failure !== null) {
		const msg = `batch ${failure.seq}: ${failure.error.code || 'error'}: ${failure.error.message || ''}`;
		if (dropped.has(failure.seq)) {
			setSyncState('error', `${msg} (dropped)`);
			return true;
		}
		if (resequence.has(failure.seq))
			return true;
		throw new Error(msg);
	}
	if (done.size === 0)
		throw new Error('the sync reply covered no batch');
	return true;
}

async function flushLocked() {
	if (st.flushing || offline())
		return;
	st.flushing = true;
	try {
		while (!offline() && await flushOnce())
			;
		st.flushRetryMs = RETRY_MIN_MS;
		if (st.syncState !== 'error')
			setSyncState('synced');
	} catch (e) {
		if (offline())
			return;
		retryFlush(e instanceof NetworkError ? 'node unreachable' : describeError(e));
	} finally {
		st.flushing = false;
		scheduleRender();
	}
}

// One tab of this origin flushes the shared buffer at a time.
function flush() {
	if (offline())
		return Promise.resolve();
	if (navigator.locks && navigator.locks.request) {
		return navigator.locks.request('cairn-canvas-sync', { ifAvailable: true },
			(lock) => (lock ? flushLocked() : undefined));
	}
	return flushLocked();
}

// ---------------------------------------------------------------------
// Painting.

function paint(idx) {
	const color = st.color;
	readPending();
	if (displayColor(idx) === color)
		return;
	const b = loadBuffer();
	if (b.batches.reduce((n, x) => n + batchEvents(x), 0) >= BUFFER_EVENTS_MAX) {
		setSyncState('error', 'the local buffer is full: go online to sync it');
		return;
	}
	let batch = b.batches[b.batches.length - 1];
	if (batch === undefined || batch.sent || batchEvents(batch) >= BATCH_EVENTS_MAX) {
		batch = { seq: b.next_seq++, sent: false, streams: [] };
		b.batches.push(batch);
	}
	let s = batch.streams.find((x) => x.stream === st.stream);
	if (s === undefined) {
		s = { stream: st.stream, events: [] };
		batch.streams.push(s);
	}
	s.events.push({
		type: 'CellPainted',
		id: uuid(),
		data: { x: idx % SIZE, y: Math.floor(idx / SIZE), color },
	});
	try {
		saveBuffer(b);
	} catch (e) {
		setSyncState('error', `cannot store the paint: ${e.message}`);
		return;
	}
	if (st.syncState !== 'syncing' && st.syncState !== 'retrying')
		setSyncState(offline() ? 'offline' : 'pending');
	scheduleRender();
	flushSoon(FLUSH_DELAY_MS);
}

// ---------------------------------------------------------------------
// Rendering.

function scheduleRender() {
	if (st.renderTimer === null)
		st.renderTimer = setTimeout(render, 0);
}

function render() {
	st.renderTimer = null;
	const b = readPending();
	for (let idx = 0; idx < SIZE * SIZE; idx++) {
		const color = displayColor(idx) || '';
		const cell = st.cells[idx];
		if (cell.dataset.color !== color) {
			cell.dataset.color = color;
			cell.style.backgroundColor = color;
		}
	}
	$('pending-count').textContent = String(st.pendingEvents);
	$('stream-version').textContent = String(st.version);
	$('stream-position').textContent = String(st.position);
	$('client-id').textContent = b.client_id;
	$('next-seq').textContent = String(b.next_seq);
	let state = st.syncState;
	if (offline())
		state = 'offline';
	else if (state === 'synced' && st.pendingEvents > 0)
		state = 'pending';
	$('sync-state').dataset.state = state;
	$('sync-state').textContent = state;
	$('sync-error').textContent = st.syncError;
	$('sync-error').hidden = st.syncError === '';
	$('live-state').dataset.state = st.live ? 'ok' : (offline() ? 'down' : 'warn');
	$('live-state').textContent = st.live ? 'live' : (offline() ? 'paused' : 'catching up');
	document.title = st.pendingEvents > 0 ?
		`(${st.pendingEvents}) Cairn canvas` : 'Cairn canvas';
}

function setup() {
	$('stream-name').textContent = st.stream;
	const grid = $('grid');
	grid.style.setProperty('--size', String(SIZE));
	for (let idx = 0; idx < SIZE * SIZE; idx++) {
		const cell = document.createElement('div');
		cell.className = 'cell';
		cell.dataset.x = String(idx % SIZE);
		cell.dataset.y = String(Math.floor(idx / SIZE));
		cell.dataset.color = '';
		st.cells.push(cell);
	}
	grid.append(...st.cells);

	let painting = false;
	const cellOf = (e) => {
		const c = e.target.closest('.cell');
		return c ? Number(c.dataset.y) * SIZE + Number(c.dataset.x) : null;
	};
	grid.addEventListener('pointerdown', (e) => {
		const idx = cellOf(e);
		if (idx === null)
			return;
		e.preventDefault();
		painting = true;
		paint(idx);
	});
	grid.addEventListener('pointerover', (e) => {
		const idx = cellOf(e);
		if (painting && idx !== null && (e.buttons & 1))
			paint(idx);
	});
	window.addEventListener('pointerup', () => (painting = false));

	const palette = $('palette');
	for (const color of PALETTE) {
		const sw = document.createElement('button');
		sw.type = 'button';
		sw.className = 'swatch';
		sw.dataset.color = color;
		sw.title = color;
		sw.setAttribute('role', 'radio');
		sw.setAttribute('aria-checked', String(color === st.color));
		sw.style.backgroundColor = color;
		sw.addEventListener('click', () => {
			st.color = color;
			for (const o of palette.children)
				o.setAttribute('aria-checked', String(o.dataset.color === color));
		});
		palette.append(sw);
	}

	$('offline').addEventListener('change', (e) => {
		st.simulatedOffline = e.target.checked;
		updateOnline();
	});
	$('sync-now').addEventListener('click', () => {
		st.flushRetryMs = RETRY_MIN_MS;
		if (st.syncState === 'error')
			setSyncState('pending');
		if (st.flushTimer !== null) {
			clearTimeout(st.flushTimer);
			st.flushTimer = null;
		}
		flush();
	});
	$('open-form').addEventListener('submit', (e) => {
		e.preventDefault();
		const name = $('open-name').value;
		if (NAME_RE.test(name))
			location.search = `?name=${encodeURIComponent(name)}`;
	});
	window.addEventListener('online', updateOnline);
	window.addEventListener('offline', updateOnline);
	// Another tab of this origin changed the buffer.
	window.addEventListener('storage', (e) => {
		if (e.key === BUFFER_KEY) {
			scheduleRender();
			flushSoon(FLUSH_DELAY_MS);
		}
	});
	setInterval(() => {
		if (!offline() && st.connected && st.flushTimer === null && !st.flushing) {
			readPending();
			if (st.pendingBatches > 0)
				flush();
		}
	}, FLUSH_TICK_MS);

	window.cairnCanvas = {
		// A copy of the page's state: the grid shown (colour or null
		// per cell, index y*32+x), the fold of the stream alone, and
		// the sync and subscription state.
		state() {
			const b = readPending();
			return {
				stream: st.stream,
				size: SIZE,
				clientId: b.client_id,
				nextSeq: b.next_seq,
				shown: st.cells.map((c) => c.dataset.color || null),
				display: st.cells.map((_, idx) => displayColor(idx) || null),
				confirmed: st.confirmed.slice(),
				awaiting: st.awaiting.size,
				pendingEvents: st.pendingEvents,
				pendingBatches: st.pendingBatches,
				version: st.version,
				position: st.position,
				live: st.live,
				syncState: st.syncState,
				syncError: st.syncError,
				offline: offline(),
			};
		},
		palette: PALETTE.slice(),
	};

	render();
	updateOnline();
}

setup();
