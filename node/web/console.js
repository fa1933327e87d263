// The web console (console.html): polls GET /cluster every second and
// shows the node's view of the cluster; browses categories, streams and
// a stream's events page by page (GET /streams, GET /streams/{stream});
// tails the global log live over Server-Sent Events
// (GET /subscribe?all&from=now). Everything goes to the node that served
// the page, except the per-member "Applied" column, which asks each member
// at its own HTTP address.
import { api, describeError, el, fill, formatPayload, formatTime } from '/common.js';

const CLUSTER_POLL_MS = 1000;
// A member whose /cluster could not be fetched is asked again after this.
const MEMBER_RETRY_MS = 10000;
// Rows the live tail keeps; older ones drop off the bottom.
const TAIL_ROWS_MAX = 200;
// Entries asked for per page of the category and stream lists.
const LIST_PAGE = 100;
// How long the tail waits before opening a new EventSource after the
// browser gave up on one.
const TAIL_REOPEN_MS = 3000;

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------
// Cluster status.

// Per member id: { applied, next_try } from asking that member itself.
const memberViews = new Map();

function setText(id, v) {
	$(id).textContent = v === undefined || v === null || v === '' ? '–' : String(v);
}

function setConn(state, text) {
	const b = $('conn');
	b.dataset.state = state;
	b.textContent = text;
}

function memberRole(c, m) {
	if (m.id === c.node && c.role)
		return c.role;
	if (m.leader === true || (c.leader && m.id === c.leader))
		return 'leader';
	return c.leader ? 'follower' : 'unknown';
}

async function askMember(m) {
	const view = memberViews.get(m.id) || { applied: null, next_try: 0 };
	memberViews.set(m.id, view);
	if (!m.http_address || Date.now() < view.next_try)
		return;
	view.next_try = Date.now() + MEMBER_RETRY_MS;
	try {
		const c = await api(`http://${m.http_address}/cluster`, { timeoutMs: 2000 });
		view.applied = c.applied_index;
		view.next_try = 0;
	} catch {
		view.applied = null;
	}
}

function renderCluster(c) {
	setText('node-id', c.node);
	setText('node-role', c.role);
	setText('leader', c.leader ? `node ${c.leader}` : 'none known');
	setText('term', c.term);
	setText('commit-index', c.commit_index);
	setText('applied-index', c.applied_index);
	setText('last-position', c.last_position);
	setText('updated', new Date().toLocaleTimeString());
	$('node-role').dataset.role = c.role || '';

	const members = Array.isArray(c.members) ? [...c.members] : [];
	members.sort((a, b) => a.id - b.id);
	const rows = members.map((m) => {
		const role = memberRole(c, m);
		const self = m.id === c.node;
		const view = memberViews.get(m.id);
		const applied = self ? c.applied_index : view && view.applied;
		const http = m.http_address ?
			el('a', { href: `http://${m.http_address}/console` }, m.http_address) : '';
		return el('tr', { dataset: { id: m.id, role }, class: self ? 'self' : null },
			el('td', null, m.id, self ? ' (this node)' : ''),
			el('td', null, el('span', { class: 'role', dataset: { role } }, role)),
			el('td', null, m.role || ''),
			el('td', null, m.raft_address || ''),
			el('td', null, m.client_address || ''),
			el('td', null, http),
			el('td', null, applied === null || applied === undefined ? '–' : applied));
	});
	fill($('members').tBodies[0], rows);
	for (const m of members) {
		if (m.id !== c.node)
			askMember(m);
	}
}

async function pollCluster() {
	try {
		const c = await api('/cluster', { timeoutMs: 3000 });
		renderCluster(c);
		$('cluster-error').hidden = true;
		setConn(c.leader ? 'ok' : 'warn', c.leader ? 'connected' : 'no leader');
	} catch (e) {
		$('cluster-error').textContent = `Cannot get the cluster status: ${describeError(e)}`;
		$('cluster-error').hidden = false;
		setConn('down', 'unreachable');
	} finally {
		setTimeout(pollCluster, CLUSTER_POLL_MS);
	}
}

// ---------------------------------------------------------------------
// Stream browser.

// The entries of a GET /streams answer as [{ name, detail }]: the list is
// under "categories" or "streams" (or is the body itself); an entry is a
// name or an object that names it.
function listEntries(json, key) {
	let list = [];
	if (Array.isArray(json))
		list = json;
	else if (json && Array.isArray(json[key]))
		list = json[key];
	else if (json && Array.isArray(json.items))
		list = json.items;
	return list.map((x) => {
		if (typeof x === 'string')
			return { name: x, detail: '' };
		const name = x.name ?? x.category ?? x.stream ?? '';
		let detail = '';
		if (typeof x.streams === 'number')
			detail = `${x.streams} stream${x.streams === 1 ? '' : 's'}`;
		else if (typeof x.head === 'number')
			detail = `v${x.head}`;
		else if (typeof x.version === 'number')
			detail = `v${x.version}`;
		return { name: String(name), detail };
	}).filter((x) => x.name !== '');
}

// Where the next page of a list starts (its "after"), or null at its end:
// the node says "more" and the next page starts after the last name.
function listNext(json, entries) {
	if (!json || Array.isArray(json))
		return null;
	if (typeof json.next === 'string' && json.next !== '')
		return json.next;
	if ((json.more === true || json.next === true) && entries.length > 0)
		return entries[entries.length - 1].name;
	return null;
}

const lists = {
	categories: { after: null, category: null },
	streams: { after: null, category: null },
};

async function loadList(which, append) {
	const st = lists[which];
	const q = new URLSearchParams({ limit: String(LIST_PAGE) });
	if (which === 'streams')
		q.set('category', st.category);
	if (append && st.after)
		q.set('after', st.after);
	const ul = $(which);
	try {
		const json = await api(`/streams?${q}`);
		const entries = listEntries(json, which);
		st.after = listNext(json, entries);
		const items = entries.map((x) => el('li', null,
			el('button', {
				type: 'button', class: 'link', dataset: { name: x.name },
				onclick: () => (which === 'categories' ? openCategory(x.name) : openStream(x.name)),
			}, x.name), x.detail ? el('span', { class: 'muted' }, ` ${x.detail}`) : null));
		if (!append)
			ul.replaceChildren();
		ul.append(...items);
		if (!append && items.length === 0)
			ul.append(el('li', { class: 'muted' }, which === 'categories' ? 'no streams yet' : 'none'));
		$(`${which}-more`).hidden = st.after === null;
	} catch (e) {
		fill(ul, el('li', { class: 'error' }, describeError(e)));
		$(`${which}-more`).hidden = true;
	}
}

function markPicked(listId, name) {
	for (const b of $(listId).querySelectorAll('button[data-name]'))
		b.classList.toggle('picked', b.dataset.name === name);
}

function openCategory(name) {
	lists.streams.category = name;
	lists.streams.after = null;
	$('streams-category').textContent = `in ${name}`;
	markPicked('categories', name);
	loadList('streams', false);
}

function openStream(name) {
	markPicked('streams', name);
	$('read-stream').value = name;
	$('read-direction').value = 'forward';
	$('read-from').value = '';
	page.history = [];
	readPage({ stream: name, direction: 'forward', from: 1 });
}

// The page shown: its request, where the next one starts, and the
// requests of the pages before it (for "Previous").
const page = { req: null, next: null, history: [] };

async function readPage(req) {
	const limit = Math.min(1000, Math.max(1, Number($('read-limit').value) || 20));
	const q = new URLSearchParams({ direction: req.direction, limit: String(limit) });
	if (req.from !== null && req.from !== undefined && req.from !== '')
		q.set('from', String(req.from));
	$('read-status').textContent = 'reading…';
	$('read-error').hidden = true;
	try {
		const json = await api(`/streams/${encodeURIComponent(req.stream)}?${q}`);
		const events = Array.isArray(json.events) ? json.events : [];
		page.req = req;
		page.next = typeof json.next === 'number' ? json.next : null;
		fill($('read-events').tBodies[0], events.map((ev) => el('tr', null,
			el('td', null, ev.version),
			el('td', null, ev.position),
			el('td', null, ev.type),
			el('td', null, formatTime(ev.commit_time_us)),
			el('td', { class: 'data' }, formatPayload(ev)))));
		let status = `${req.stream}: head ${json.head ?? '?'}`;
		if (events.length > 0) {
			status += `, versions ${events[0].version}–${events[events.length - 1].version}`;
		} else {
			status += ', no events here';
		}
		$('read-status').textContent = status;
	} catch (e) {
		$('read-status').textContent = '';
		$('read-error').textContent = describeError(e);
		$('read-error').hidden = false;
	}
	$('page-next').disabled = page.next === null;
	$('page-prev').disabled = page.history.length === 0;
}

function setupBrowser() {
	$('categories-refresh').addEventListener('click', () => loadList('categories', false));
	$('categories-more').addEventListener('click', () => loadList('categories', true));
	$('streams-more').addEventListener('click', () => loadList('streams', true));
	$('read-form').addEventListener('submit', (e) => {
		e.preventDefault();
		const stream = $('read-stream').value;
		if (stream === '')
			return;
		page.history = [];
		readPage({ stream, direction: $('read-direction').value, from: $('read-from').value });
	});
	$('page-first').addEventListener('click', () => {
		const stream = $('read-stream').value;
		if (stream === '')
			return;
		page.history = [];
		$('read-direction').value = 'forward';
		readPage({ stream, direction: 'forward', from: 1 });
	});
	$('page-last').addEventListener('click', () => {
		const stream = $('read-stream').value;
		if (stream === '')
			return;
		page.history = [];
		$('read-direction').value = 'backward';
		readPage({ stream, direction: 'backward', from: null });
	});
	$('page-next').addEventListener('click', () => {
		if (page.req === null || page.next === null)
			return;
		page.history.push(page.req);
		readPage({ ...page.req, from: page.next });
	});
	$('page-prev').addEventListener('click', () => {
		const prev = page.history.pop();
		if (prev !== undefined)
			readPage(prev);
	});
	loadList('categories', false);
}

// ---------------------------------------------------------------------
// Live tail of the global log.

const tail = { source: null, paused: false, held: [], count: 0 };

function setTailState(state, text) {
	$('tail-state').dataset.state = state;
	$('tail-state').textContent = text;
}

function tailRow(ev) {
	return el('tr', null,
		el('td', null, ev.position),
		el('td', null, el('button', {
			type: 'button', class: 'link',
			onclick: () => openStream(String(ev.stream)),
		}, ev.stream)),
		el('td', null, ev.version),
		el('td', null, ev.type),
		el('td', null, formatTime(ev.commit_time_us)),
		el('td', { class: 'data' }, formatPayload(ev)));
}

function tailShow(events) {
	const body = $('tail').tBodies[0];
	for (const ev of events)
		body.prepend(tailRow(ev));
	while (body.rows.length > TAIL_ROWS_MAX)
		body.deleteRow(body.rows.length - 1);
}

function tailCount() {
	let text = `${tail.count} event${tail.count === 1 ? '' : 's'}`;
	if (tail.paused && tail.held.length > 0)
		text += `, ${tail.held.length} held while paused`;
	$('tail-count').textContent = text;
}

function openTail() {
	// After a reconnect the browser sends Last-Event-ID (the last position
	// seen), which the node prefers to from=now: the tail has no gap.
	const es = new EventSource('/subscribe?all&from=now');
	tail.source = es;
	setTailState('connecting', 'connecting');
	es.addEventListener('open', () => setTailState('connecting', 'catching up'));
	es.addEventListener('live', () => setTailState('ok', 'live'));
	es.addEventListener('event', (m) => {
		let ev;
		try {
			ev = JSON.parse(m.data);
		} catch {
			return;
		}
		tail.count++;
		if (tail.paused) {
			tail.held.push(ev);
			if (tail.held.length > TAIL_ROWS_MAX)
				tail.held.shift();
		} else {
			tailShow([ev]);
		}
		tailCount();
	});
	es.addEventListener('error', () => {
		if (es.readyState === EventSource.CLOSED) {
			setTailState('down', 'closed; reopening');
			setTimeout(openTail, TAIL_REOPEN_MS);
		} else {
			setTailState('warn', 'reconnecting');
		}
	});
}

function setupTail() {
	$('tail-pause').addEventListener('click', () => {
		tail.paused = !tail.paused;
		$('tail-pause').textContent = tail.paused ? 'Resume' : 'Pause';
		if (!tail.paused) {
			tailShow(tail.held);
			tail.held = [];
		}
		tailCount();
	});
	$('tail-clear').addEventListener('click', () => {
		$('tail').tBodies[0].replaceChildren();
		tail.held = [];
		tail.count = 0;
		tailCount();
	});
	openTail();
}

pollCluster();
setupBrowser();
setupTail();
