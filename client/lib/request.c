/* libcairn's requests on the I/O thread: where each one is sent, what a
 * reply does to it (success, redirect, retry after a backoff, failure), its
 * deadline, and its completion (an asynchronous callback or the wake-up of
 * a synchronous caller). The state machine is described in client_int.h.
 *
 * Why a retry never appends twice: an append's frame, with its client id,
 * sequence and event ids, is encoded once at submission and resent byte for
 * byte; the leader answers a sequence it has committed with the original
 * result (flagged duplicate) and refuses one below the writer's high-water
 * mark that never committed (STALE_SEQUENCE). Only for a key the client
 * chose itself does STALE_SEQUENCE lead to a new sequence: that sequence
 * can never commit any more, so resending under a fresh one cannot
 * duplicate it. Everything here runs on the client's loop thread. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* New sequences a request may take after STALE_SEQUENCE before it fails:
 * each new one is above anything the client used, so it can only go stale
 * again while other appends of the same client keep committing ahead. */
#define REQ_RESEQUENCE_MAX 8

/* ------------------------------------------------------------------------
 * The id map
 * ------------------------------------------------------------------------ */

static size_t bucket(const struct cairn_client *c, uint64_t id)
{
	/* Ids are handed out sequentially: the low bits spread them. */
	return (size_t)(id & (c->map_cap - 1));
}

static void map_grow(struct cairn_client *c)
{
	size_t cap = c->map_cap * 2;
	struct req **map = calloc(cap, sizeof *map);
	size_t i;

	if (map == NULL)
		return; /* longer chains, nothing worse */
	for (i = 0; i < c->map_cap; i++) {
		struct req *r = c->map[i];

		while (r != NULL) {
			struct req *next = r->map_next;
			size_t k = (size_t)(r->id & (cap - 1));

			r->map_next = map[k];
			map[k] = r;
			r = next;
		}
	}
	free(c->map);
	c->map = map;
	c->map_cap = cap;
}

void req_map_insert(struct cairn_client *c, struct req *r)
{
	size_t k;

	if (c->map_n >= c->map_cap)
		map_grow(c);
	k = bucket(c, r->id);
	r->map_next = c->map[k];
	c->map[k] = r;
	c->map_n++;
}

struct req *req_map_find(struct cairn_client *c, uint64_t id)
{
	struct req *r;

	for (r = c->map[bucket(c, id)]; r != NULL; r = r->map_next) {
		if (r->id == id)
			return r;
	}
	return NULL;
}

void req_map_remove(struct cairn_client *c, struct req *r)
{
	struct req **p = &c->map[bucket(c, r->id)];

	while (*p != NULL) {
		if (*p == r) {
			*p = r->map_next;
			r->map_next = NULL;
			c->map_n--;
			return;
		}
		p = &(*p)->map_next;
	}
}

/* ------------------------------------------------------------------------
 * Completion
 * ------------------------------------------------------------------------ */

void req_free(struct req *r)
{
	wire_buf_close(&r->frame);
	free(r->results);
	cairn_page_free(&r->page);
	free(r->status_reply);
	free(r->snap_data);
	if (r->sync)
		uv_cond_destroy(&r->cond);
	free(r);
}

void req_release(struct req *r)
{
	struct cairn_client *c = r->c;
	bool last;

	uv_mutex_lock(&c->mu);
	assert(r->refs > 0);
	last = --r->refs == 0;
	uv_mutex_unlock(&c->mu);
	if (last)
		req_free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct req *r = h->data;

	assert(r->handles_open > 0);
	if (--r->handles_open == 0)
		req_release(r);
}

void req_finish(struct req *r, int status)
{
	struct cairn_client *c = r->c;

	assert(r->state != REQ_DONE);
	if (r->conn != NULL)
		conn_detach(r);
	if (r->timers_init) {
		req_map_remove(c, r);
		uv_timer_stop(&r->deadline_timer);
		uv_timer_stop(&r->backoff_timer);
	}
	r->state = REQ_DONE;
	r->status = status;
	if (status == 0)
		memset(&r->err, 0, sizeof r->err);
	else
		r->err.code = status;

	if (r->kind == REQ_SUBSCRIBE)
		sub_finished(r);
	uv_mutex_lock(&c->mu);
	assert(c->n_requests > 0);
	c->n_requests--;
	if (r->sync) {
		r->done = true;
		uv_cond_signal(&r->cond);
	}
	uv_mutex_unlock(&c->mu);

	if (r->cb != NULL) {
		r->cb(r->cb_arg, status, r->results, r->n_parts, r->duplicate,
		      &r->err);
	}

	if (r->timers_init) {
		r->handles_open = 2;
		uv_close((uv_handle_t *)&r->deadline_timer, on_timer_closed);
		uv_close((uv_handle_t *)&r->backoff_timer, on_timer_closed);
	} else {
		req_release(r);
	}
}

/* Fails @r with @code and "op: text". */
static void fail(struct req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct req *r, int code, const char *fmt, ...)
{
	char text[sizeof r->err.message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	client_set_error(&r->err, code, "%s: %s", r->op, text);
	req_finish(r, code);
}

/* ------------------------------------------------------------------------
 * Routing and retries
 * ------------------------------------------------------------------------ */

static void remember(struct req *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the error of a failed attempt: the message a deadline reports. */
static void remember(struct req *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->last_code = code;
	va_start(ap, fmt);
	vsnprintf(r->last_msg, sizeof r->last_msg, fmt, ap);
	va_end(ap);
}

/* Moves the leader guess off @address when it is the current one, so the
 * next attempt (of every request) tries the next known node. */
static void rotate_from(struct cairn_client *c, const char *address)
{
	if (strcmp(c->addrs[c->current], address) == 0)
		c->current = (c->current + 1) % c->n_addrs;
}

/* The index of @address in the client's table, added when new. */
static size_t learn(struct cairn_client *c, const char *address)
{
	size_t i;

	for (i = 0; i < c->n_addrs; i++) {
		if (strcmp(c->addrs[i], address) == 0)
			return i;
	}
	if (c->n_addrs < CLIENT_ADDRESSES_MAX)
		c->n_addrs++;
	/* A full table recycles its last learned slot: seeds stay. */
	i = c->n_addrs - 1;
	assert(i >= c->n_seeds);
	snprintf(c->addrs[i], sizeof c->addrs[i], "%s", address);
	return i;
}

static void on_backoff(uv_timer_t *t)
{
	struct req *r = t->data;

	if (r->state != REQ_BACKOFF)
		return;
	req_dispatch(r);
}

/* Waits before the next attempt, doubling the wait each time. */
static void backoff(struct req *r)
{
	r->hops = 0;
	if (r->backoff_ms == 0)
		r->backoff_ms = CLIENT_BACKOFF_MIN_MS;
	else if (r->backoff_ms * 2 <= CLIENT_BACKOFF_MAX_MS)
		r->backoff_ms *= 2;
	else
		r->backoff_ms = CLIENT_BACKOFF_MAX_MS;
	r->state = REQ_BACKOFF;
	uv_timer_start(&r->backoff_timer, on_backoff, r->backoff_ms, 0);
}

void req_dispatch(struct req *r)
{
	struct cairn_client *c = r->c;
	const char *address;
	struct conn *conn;
	char why[256];
	int rv;

	assert(r->state != REQ_DONE);
	assert(r->conn == NULL);
	if (r->kind == REQ_SUBSCRIBE) {
		rv = sub_reframe(r);
		if (rv != 0) {
			fail(r, rv, "cannot encode the subscription");
			return;
		}
	}
	address = r->route == ROUTE_FIXED ? r->fixed : c->addrs[c->current];
	r->attempts++;
	conn = conn_get(c, address, why);
	if (conn == NULL) {
		remember(r, CAIRN_ECONNECT, "%s", why);
		if (!r->retry) {
			fail(r, CAIRN_ECONNECT, "%s", why);
			return;
		}
		if (r->route == ROUTE_CURRENT)
			rotate_from(c, address);
		backoff(r);
		return;
	}
	conn_attach(conn, r);
}

void req_retry_later(struct req *r, int code, const char *msg)
{
	remember(r, code, "%s", msg);
	if (r->route == ROUTE_CURRENT && r->conn != NULL)
		rotate_from(r->c, r->conn->address);
	if (r->conn != NULL)
		conn_detach(r);
	backoff(r);
}

void req_fail(struct req *r, int code, const char *msg)
{
	fail(r, code, "%s", msg);
}

void req_conn_failed(struct req *r, int code, const char *msg)
{
	struct cairn_client *c = r->c;

	assert(r->conn == NULL);
	remember(r, code, "%s", msg);
	if (!r->retry) {
		fail(r, code, "%s", msg);
		return;
	}
	/* A node that refuses connections: try the next known node at once
	 * (conn_close moved the leader guess on), a few times, then back
	 * off. */
	if (code == CAIRN_ECONNECT && r->route == ROUTE_CURRENT &&
	    c->n_addrs > 1 && r->hops < CLIENT_HOPS_MAX) {
		r->hops++;
		req_dispatch(r);
		return;
	}
	backoff(r);
}

static void on_deadline(uv_timer_t *t)
{
	struct req *r = t->data;
	uint64_t ms = (uint64_t)r->c->deadline_ms;

	if (r->state == REQ_DONE)
		return;
	if (!r->connected_once &&
	    (r->last_code == CAIRN_ECONNECT || r->last_code == 0)) {
		if (r->last_msg[0] != '\0')
			fail(r, CAIRN_ECONNECT,
			     "cannot connect to any node: %s", r->last_msg);
		else
			fail(r, CAIRN_ECONNECT,
			     "cannot connect to any node within %llu ms",
			     (unsigned long long)ms);
		return;
	}
	if (r->state == REQ_SENT) {
		fail(r, CAIRN_ETIMEOUT,
		     "deadline of %llu ms exceeded waiting for %s%s",
		     (unsigned long long)ms, r->conn->address,
		     REQ_KIND_WRITES(r->kind)
			     ? " (the write may or may not have committed)"
			     : "");
		return;
	}
	fail(r, CAIRN_ETIMEOUT,
	     "deadline of %llu ms exceeded after %u attempts: last error: %s%s",
	     (unsigned long long)ms, r->attempts,
	     r->last_msg[0] != '\0' ? r->last_msg : "none",
	     REQ_KIND_WRITES(r->kind) && r->connected_once
		     ? " (the write may or may not have committed)"
		     : "");
}

void req_start(struct req *r)
{
	struct cairn_client *c = r->c;
	uint64_t now = uv_hrtime();

	assert(r->state == REQ_QUEUED);
	uv_timer_init(&c->loop, &r->deadline_timer);
	uv_timer_init(&c->loop, &r->backoff_timer);
	r->deadline_timer.data = r;
	r->backoff_timer.data = r;
	r->timers_init = true;
	req_map_insert(c, r);
	if (now >= r->deadline_ns) {
		on_deadline(&r->deadline_timer);
		return;
	}
	/* Rounded up, so the timer never fires before the deadline. */
	uv_timer_start(&r->deadline_timer, on_deadline,
		       (r->deadline_ns - now + 999999) / 1000000, 0);
	req_dispatch(r);
}

/* ------------------------------------------------------------------------
 * Replies
 * ------------------------------------------------------------------------ */

/* Gives a write whose key the client chose a new sequence. The frame is
 * decoded back into a view, its sequence replaced, and encoded again, so the
 * event ids and everything else stay exactly as submitted. */
static int resequence(struct req *r)
{
	struct cairn_client *c = r->c;
	const uint8_t *body = r->frame.p + WIRE_HEADER_BYTES;
	size_t len = r->frame.len - WIRE_HEADER_BYTES;
	struct wire_checkpoint_set cs;
	struct wire_snapshot_put sp;
	struct wire_append a;
	struct wire_buf frame;
	uint64_t seq;
	int rv;

	uv_mutex_lock(&c->mu);
	seq = c->next_seq++;
	uv_mutex_unlock(&c->mu);
	wire_buf_init(&frame);
	/* Our own frame always decodes; the views borrow from r->frame,
	 * which lives until the new frame replaces it. */
	switch (r->kind) {
	case REQ_CHECKPOINT_SET:
		if (wire_decode_checkpoint_set(body, len, &cs) != 0)
			return CAIRN_EPROTOCOL;
		cs.client_seq = seq;
		rv = wire_encode_checkpoint_set(&frame, r->id, &cs);
		break;
	case REQ_SNAPSHOT_PUT:
		if (wire_decode_snapshot_put(body, len, &sp) != 0)
			return CAIRN_EPROTOCOL;
		sp.client_seq = seq;
		rv = wire_encode_snapshot_put(&frame, r->id, &sp);
		break;
	default:
		assert(r->kind == REQ_APPEND);
		if (wire_decode_append(body, len, &a) != 0)
			return CAIRN_ENOMEM;
		a.client_seq = seq;
		rv = wire_encode_append(&frame, r->id, &a);
		wire_append_close(&a);
		break;
	}
	if (rv != 0) {
		wire_buf_close(&frame);
		return CAIRN_ENOMEM;
	}
	wire_buf_close(&r->frame);
	r->frame = frame;
	return 0;
}

static void copy_text(char *dst, size_t size, struct wire_bytes s)
{
	size_t n = s.len < size - 1 ? s.len : size - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
}

static void on_error_reply(struct req *r, struct conn *conn,
			   const uint8_t *body, size_t len)
{
	struct cairn_client *c = r->c;
	struct wire_err e;
	char text[WIRE_STRING_MAX + 1];
	char leader[CLIENT_ADDRESS_LEN_MAX + 1];
	char host[CLIENT_ADDRESS_LEN_MAX + 1];
	int port;
	int code;

	if (wire_decode_error(body, len, &e) != 0) {
		fail(r, CAIRN_EPROTOCOL, "malformed ERROR reply from %s",
		     conn->address);
		return;
	}
	code = (int)e.code; /* the CAIRN_E* code of the same number */
	if (e.message.len > 0)
		copy_text(text, sizeof text, e.message);
	else
		snprintf(text, sizeof text, "%s", cairn_strerror(code));
	leader[0] = '\0';
	if (e.leader.len > 0 && e.leader.len <= CLIENT_ADDRESS_LEN_MAX) {
		copy_text(leader, sizeof leader, e.leader);
		if (memchr(e.leader.p, '\0', e.leader.len) != NULL ||
		    client_address_split(leader, host, &port) != 0)
			leader[0] = '\0'; /* not an address we can use */
	}

	switch (code) {
	case CAIRN_ENOT_LEADER:
		if (!r->follow_redirects)
			break;
		if (leader[0] == '\0' || strcmp(leader, conn->address) == 0) {
			/* No leader known yet (an election): wait, try
			 * another node. */
			remember(r, code, "%s: %s", conn->address, text);
			rotate_from(c, conn->address);
			backoff(r);
			return;
		}
		/* Go where the node says, at once unless this request
		 * already hopped a lot (the named leader may be dead and the
		 * followers not know it yet). */
		c->current = learn(c, leader);
		remember(r, code, "%s: %s (leader: %s)", conn->address, text,
			 leader);
		if (r->hops >= CLIENT_HOPS_MAX) {
			backoff(r);
			return;
		}
		r->hops++;
		req_dispatch(r);
		return;
	case CAIRN_ENO_SPACE:
		/* A leader out of disk proposed nothing and is handing
		 * leadership over: another node will take the append. A
		 * client held to this one node gets the error at once. */
		if (!r->retry || r->route == ROUTE_FIXED)
			break;
		remember(r, code, "%s: %s", conn->address, text);
		if (r->route == ROUTE_CURRENT)
			rotate_from(c, conn->address);
		backoff(r);
		return;
	case CAIRN_EUNAVAILABLE:
	case CAIRN_EUNKNOWN_OUTCOME:
		if (!r->retry)
			break;
		/* This node has no leader or lost its leadership: resend
		 * (same key) after a backoff, to the next node unless we
		 * were sent here on purpose. */
		remember(r, code, "%s: %s", conn->address, text);
		if (r->route == ROUTE_CURRENT)
			rotate_from(c, conn->address);
		backoff(r);
		return;
	case CAIRN_EBUSY:
		if (!r->retry)
			break;
		remember(r, code, "%s: %s", conn->address, text);
		backoff(r);
		return;
	case CAIRN_ESTALE_SEQUENCE:
		if (!REQ_KIND_WRITES(r->kind) || !r->key_assigned ||
		    r->resequences >= REQ_RESEQUENCE_MAX)
			break;
		/* The sequence never committed and never can: another append
		 * of this client committed a later one first. */
		if (resequence(r) != 0)
			break;
		r->resequences++;
		remember(r, code, "%s: %s", conn->address, text);
		req_dispatch(r);
		return;
	default:
		break;
	}

	client_set_error(&r->err, code, "%s: %s", r->op, text);
	r->err.part = e.part;
	r->err.actual_version = e.actual_version;
	snprintf(r->err.leader, sizeof r->err.leader, "%s", leader);
	req_finish(r, code);
}

static void on_append_ok(struct req *r, struct conn *conn, const uint8_t *body,
			 size_t len)
{
	struct wire_part_result *parts;
	uint32_t n = 0;
	bool dup = false;
	size_t i;
	int rv;

	parts = calloc(r->n_parts, sizeof *parts);
	if (parts == NULL) {
		fail(r, CAIRN_ENOMEM, "reply of %zu parts", r->n_parts);
		return;
	}
	rv = wire_decode_append_ok(body, len, &dup, &n, parts,
				   (uint32_t)r->n_parts);
	if (rv != 0 || n != r->n_parts) {
		free(parts);
		fail(r, CAIRN_EPROTOCOL, "malformed APPEND_OK reply from %s",
		     conn->address);
		return;
	}
	for (i = 0; i < n; i++) {
		r->results[i].first_version = parts[i].first_version;
		r->results[i].last_version = parts[i].last_version;
		r->results[i].first_position = parts[i].first_position;
		r->results[i].last_position = parts[i].last_position;
	}
	free(parts);
	r->duplicate = dup;
	req_finish(r, 0);
}

static void on_events(struct req *r, struct conn *conn, const uint8_t *body,
		      size_t len)
{
	struct wire_events_reader rd;
	struct wire_event we;
	struct cairn_event *events;
	uint8_t *copy;
	size_t i = 0;

	/* The page's events borrow from a copy of the body the page owns. */
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		fail(r, CAIRN_ENOMEM, "page of %zu bytes", len);
		return;
	}
	if (len > 0)
		memcpy(copy, body, len);
	if (wire_events_open(copy, len, &rd) != 0) {
		free(copy);
		fail(r, CAIRN_EPROTOCOL, "malformed EVENTS reply from %s",
		     conn->address);
		return;
	}
	/* rd.count was checked against the body's size. */
	events = calloc(rd.count > 0 ? rd.count : 1, sizeof *events);
	if (events == NULL) {
		free(copy);
		fail(r, CAIRN_ENOMEM, "page of %u events", rd.count);
		return;
	}
	while (wire_events_next(&rd, &we)) {
		struct cairn_event *ev = &events[i++];

		ev->position = we.position;
		ev->version = we.version;
		ev->stream = (const char *)we.stream.p;
		ev->stream_len = we.stream.len;
		memcpy(ev->id, we.id, 16);
		ev->type = (const char *)we.type.p;
		ev->type_len = we.type.len;
		ev->schema_version = we.schema_version;
		ev->event_time_us = we.event_time_us;
		ev->commit_time_us = we.commit_time_us;
		ev->has_client = we.has_client;
		memcpy(ev->client_id, we.client_id, 16);
		ev->client_seq = we.client_seq;
		ev->data = we.data.p;
		ev->data_len = we.data.len;
		ev->metadata = we.metadata.p;
		ev->metadata_len = we.metadata.len;
	}
	r->page.n = i;
	r->page.events = events;
	r->page.next = rd.next;
	r->page.end = rd.end;
	r->page.buf_ = copy;
	req_finish(r, 0);
}

static void on_status_ok(struct req *r, struct conn *conn, const uint8_t *body,
			 size_t len)
{
	struct wire_status *ws;
	struct cairn_status *s;
	uint32_t i;

	ws = malloc(sizeof *ws);
	s = calloc(1, sizeof *s);
	if (ws == NULL || s == NULL) {
		free(ws);
		free(s);
		fail(r, CAIRN_ENOMEM, "status reply");
		return;
	}
	if (wire_decode_status_ok(body, len, ws) != 0) {
		free(ws);
		free(s);
		fail(r, CAIRN_EPROTOCOL, "malformed STATUS_OK reply from %s",
		     conn->address);
		return;
	}
	s->node_id = ws->node_id;
	s->role = ws->role;
	s->term = ws->term;
	s->commit_index = ws->commit_index;
	s->applied_index = ws->applied_index;
	s->last_position = ws->last_position;
	s->leader_id = ws->leader_id;
	copy_text(s->leader_client_address, sizeof s->leader_client_address,
		  ws->leader_client_address);
	s->n_members = ws->n_members;
	for (i = 0; i < ws->n_members; i++) {
		const struct wire_member *wm = &ws->members[i];
		struct cairn_member *m = &s->members[i];

		m->id = wm->id;
		m->voter_role = wm->role;
		copy_text(m->raft_address, sizeof m->raft_address,
			  wm->raft_address);
		copy_text(m->client_address, sizeof m->client_address,
			  wm->client_address);
		copy_text(m->http_address, sizeof m->http_address,
			  wm->http_address);
	}
	free(ws);
	r->status_reply = s;
	req_finish(r, 0);
}

static void on_snapshot(struct req *r, struct conn *conn, const uint8_t *body,
			size_t len)
{
	struct wire_bytes data;

	if (wire_decode_snapshot(body, len, &r->head_version, &data) != 0) {
		fail(r, CAIRN_EPROTOCOL, "malformed SNAPSHOT reply from %s",
		     conn->address);
		return;
	}
	if (data.len > 0) {
		r->snap_data = malloc(data.len);
		if (r->snap_data == NULL) {
			fail(r, CAIRN_ENOMEM, "snapshot of %u bytes", data.len);
			return;
		}
		memcpy(r->snap_data, data.p, data.len);
	}
	r->snap_len = data.len;
	req_finish(r, 0);
}

static uint16_t expected_reply(enum req_kind kind)
{
	switch (kind) {
	case REQ_APPEND:
		return WIRE_APPEND_OK;
	case REQ_READ_STREAM:
	case REQ_READ_ALL:
		return WIRE_EVENTS;
	case REQ_HEAD:
		return WIRE_HEAD_OK;
	case REQ_STATUS:
		return WIRE_STATUS_OK;
	case REQ_SUBSCRIBE:
		return WIRE_SUB_EVENTS;
	case REQ_CHECKPOINT_GET:
		return WIRE_CHECKPOINT;
	case REQ_CHECKPOINT_SET:
	case REQ_SNAPSHOT_PUT:
		return WIRE_STATE_OK;
	case REQ_SNAPSHOT_GET:
		return WIRE_SNAPSHOT;
	}
	assert(false);
	return 0;
}

void req_reply(struct conn *conn, const struct wire_header *h,
	       const uint8_t *body)
{
	struct cairn_client *c = conn->c;
	struct req *r = req_map_find(c, h->request_id);
	size_t len = h->body_len;

	/* A reply to a request that gave up (its deadline passed) or moved
	 * on is dropped. */
	if (r == NULL || r->state != REQ_SENT || r->conn != conn)
		return;
	if (r->kind == REQ_SUBSCRIBE) {
		/* Many frames, the request stays on the connection. */
		sub_frame(r, conn, h, body);
		return;
	}
	conn_detach(r);
	r->connected_once = true;
	if (h->type == WIRE_ERROR) {
		on_error_reply(r, conn, body, len);
		return;
	}
	if (h->type != expected_reply(r->kind)) {
		fail(r, CAIRN_EPROTOCOL, "unexpected reply type 0x%02x from %s",
		     h->type, conn->address);
		return;
	}
	switch (r->kind) {
	case REQ_APPEND:
		on_append_ok(r, conn, body, len);
		break;
	case REQ_READ_STREAM:
	case REQ_READ_ALL:
		on_events(r, conn, body, len);
		break;
	case REQ_HEAD:
		if (wire_decode_head_ok(body, len, &r->head_version,
					&r->head_position) != 0) {
			fail(r, CAIRN_EPROTOCOL,
			     "malformed HEAD_OK reply from %s", conn->address);
			break;
		}
		req_finish(r, 0);
		break;
	case REQ_STATUS:
		on_status_ok(r, conn, body, len);
		break;
	case REQ_CHECKPOINT_GET:
		if (wire_decode_checkpoint(body, len, &r->found,
					   &r->head_version) != 0) {
			fail(r, CAIRN_EPROTOCOL,
			     "malformed CHECKPOINT reply from %s",
			     conn->address);
			break;
		}
		req_finish(r, 0);
		break;
	case REQ_CHECKPOINT_SET:
	case REQ_SNAPSHOT_PUT:
		if (wire_decode_state_ok(body, len, &r->duplicate) != 0) {
			fail(r, CAIRN_EPROTOCOL,
			     "malformed STATE_OK reply from %s", conn->address);
			break;
		}
		req_finish(r, 0);
		break;
	case REQ_SNAPSHOT_GET:
		on_snapshot(r, conn, body, len);
		break;
	case REQ_SUBSCRIBE:
		assert(false); /* handled above */
		break;
	}
}
