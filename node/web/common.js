// Helpers shared by the console (console.js) and the canvas demo
// (canvas.js): calls to the node's HTTP API (docs/http-api.md) with a
// deadline and the gateway's JSON errors turned into exceptions, random
// UUIDs, and a small DOM builder that only ever sets text (never HTML), so
// nothing a client stored in an event can inject markup into the page.

// Longest wait for one API call before it counts as failed.
export const REQUEST_TIMEOUT_MS = 10000;

// The gateway answered with an error status; code is its stable error code
// (docs/http-api.md), body the parsed JSON body when there was one.
export class ApiError extends Error {
	constructor(status, code, message, body) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
		this.body = body;
	}
}

// The request never got an answer: no network, the node is down, the
// deadline passed or the caller aborted it.
export class NetworkError extends Error {
	constructor(message, cause) {
		super(message);
		this.name = 'NetworkError';
		this.cause = cause;
	}
}

// Calls the API at @path (same origin) and returns the parsed JSON body.
// @opts: method, body (sent as JSON), headers, signal (an AbortSignal of
// the caller's), timeoutMs. Throws ApiError or NetworkError.
export async function api(path, opts = {}) {
	const init = {
		method: opts.method || 'GET',
		headers: { Accept: 'application/json', ...(opts.headers || {}) },
		cache: 'no-store',
	};
	if (opts.body !== undefined) {
		init.headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(opts.body);
	}
	const signals = [AbortSignal.timeout(opts.timeoutMs || REQUEST_TIMEOUT_MS)];
	if (opts.signal)
		signals.push(opts.signal);
	init.signal = AbortSignal.any ? AbortSignal.any(signals) : signals[0];

	let res, text;
	try {
		res = await fetch(path, init);
		text = await res.text();
	} catch (e) {
		throw new NetworkError(`${init.method} ${path}: ${e.message}`, e);
	}
	let json = null;
	if (text !== '') {
		try {
			json = JSON.parse(text);
		} catch {
			json = null;
		}
	}
	if (!res.ok) {
		const err = (json && json.error) || {};
		throw new ApiError(res.status, err.code || `http_${res.status}`,
			err.message || `${init.method} ${path}: HTTP ${res.status}`, json);
	}
	return json;
}

// A random (version 4) UUID in text form. crypto.randomUUID exists only in
// secure contexts (https, or http on localhost); a console opened over
// plain http on another host still gets one.
export function uuid() {
	if (typeof crypto.randomUUID === 'function' && window.isSecureContext)
		return crypto.randomUUID();
	const b = crypto.getRandomValues(new Uint8Array(16));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Makes element @tag with attributes @attrs (class, dataset entries as
// data-*, event handlers as on*, anything else as an attribute) and the
// given children (strings become text nodes; null and false are skipped).
export function el(tag, attrs, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === undefined || v === null || v === false)
			continue;
		if (k === 'class')
			node.className = v;
		else if (k === 'dataset')
			Object.assign(node.dataset, v);
		else if (k.startsWith('on'))
			node.addEventListener(k.slice(2), v);
		else
			node.setAttribute(k, v === true ? '' : String(v));
	}
	for (const c of children.flat()) {
		if (c === null || c === undefined || c === false)
			continue;
		node.append(c instanceof Node ? c : String(c));
	}
	return node;
}

// Replaces every child of @node by @children.
export function fill(node, ...children) {
	node.replaceChildren();
	for (const c of children.flat()) {
		if (c !== null && c !== undefined && c !== false)
			node.append(c instanceof Node ? c : String(c));
	}
}

// A commit or event time (microseconds since the epoch) as local time.
export function formatTime(us) {
	if (typeof us !== 'number' || !Number.isFinite(us))
		return '';
	const d = new Date(us / 1000);
	const pad = (n, w = 2) => String(n).padStart(w, '0');
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
		`${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.` +
		`${pad(d.getMilliseconds(), 3)}`;
}

// An event's data (or metadata) as short text: compact JSON, or a note
// that the bytes are not JSON (the gateway then sends base64).
export function formatPayload(ev, field = 'data') {
	if (ev[field] !== undefined)
		return JSON.stringify(ev[field]);
	if (ev[`${field}_base64`] !== undefined)
		return `(${Math.floor((ev[`${field}_base64`].length * 3) / 4)} bytes, not JSON)`;
	return '';
}

// An error as one line for a status bar.
export function describeError(e) {
	if (e instanceof ApiError)
		return `${e.code}: ${e.message}`;
	return e && e.message ? e.message : String(e);
}
