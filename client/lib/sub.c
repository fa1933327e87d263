/* libcairn's subscriptions (cairn.h, "subscriptions"; the frames are in
 * docs/protocol.md). A subscription is a long-lived request (REQ_SUBSCRIBE)
 * that stays on its connection and in the client's id map; every push for
 * its request id comes here through req_reply. What the request machinery
 * already does for every request it does for this one too: the first
 * attempt goes to the client's current node, a lost connection or a node's
 * refusal (UNAVAILABLE, BUSY) leads to a backoff and another node, and the
 * client's deadline bounds how long the subscription may take to be
 * accepted the first time. Past that first frame it has no deadline: it
 * resumes, again and again, wherever a node answers.
 *
 * Exactly once, in order: the subscription remembers `next`, the position
 * (or stream version) after the last event it delivered, from each push's
 * `next`; every attempt after the first is a SUBSCRIBE from `next`, on
 * whichever node, and an event below `next` (which no correct node sends)
 * is dropped. Positions and versions are the same on every node, so a
 * resume on a node that is behind simply waits there.
 *
 * Credit: the node may push `window` events ahead. In callback mode the
 * callback consumes them as they arrive; in iterator mode they wait in a
 * queue until cairn_subscription_next takes them, so the queue never holds
 * more than `window` events. Consumed events are granted back (CREDIT) once
 * half a window has been consumed; a resume starts with the window less
 * what is still queued.
 *
 * Threads: the loop thread runs the request; the application's threads
 * call next and close. What they share (the queue, the consumed count, the
 * close request, `r`) is under the client's mutex. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* Events granted ahead by default, and the largest window accepted: a
 * window bounds what an iterator may queue (up to WIRE_READ_BYTES_MAX per
 * push of up to NODE_SUB_PAGE_EVENTS events, so a window of 1,024 is a
 * couple of pushes in flight). */
#define SUB_WINDOW_DEFAULT 1024
#define SUB_WINDOW_MAX     65536

/* One push waiting for cairn_subscription_next: a copy of its body and the
 * events decoded from it, or a LIVE marker. */
struct sub_chunk {
	int what;                     /* CAIRN_SUB_EVENTS or CAIRN_SUB_LIVE */
	uint64_t next;                /* the push's next */
	uint64_t last_position;       /* LIVE: the node's applied position */
	uint8_t *body;                /* owned: the events' bytes */
	struct cairn_event *events;   /* owned, n of them, borrow body */
	size_t n;                     /* events */
	size_t i;                     /* events already taken */
	struct sub_chunk *next_chunk; /* in the queue */
};

struct cairn_subscription {
	struct cairn_client *c; /* borrowed */
	/* Set at subscribe, read-only afterwards. */
	uint8_t kind;             /* enum wire_sub_kind */
	char *target;             /* owned, NUL-terminated; "" for ALL */
	char *type;               /* owned, NUL-terminated; "" for none */
	uint32_t window;          /* credit granted ahead */
	cairn_subscription_cb cb; /* NULL: iterator mode */
	void *cb_arg;             /* borrowed: passed to cb */

	/* Shared, under c->mu. */
	struct req *r;           /* borrowed: the request, NULL once done */
	bool close_requested;    /* cairn_subscription_close is waiting */
	bool wake_queued;        /* on c->wake_subs */
	uint64_t consumed;       /* events consumed, not yet granted back */
	size_t queued;           /* events in the queue not yet taken */
	struct sub_chunk *head;  /* owned: the queue (iterator mode) */
	struct sub_chunk *tail;  /* borrowed: its last chunk */
	struct sub_chunk *taken; /* owned: the chunk the last item came
				  * from (its events stay valid) */
	int status;              /* the final status once r is NULL */
	struct cairn_error err;  /* its error */
	uv_cond_t cond;          /* signalled on a push, the end, a close */
	struct cairn_subscription *list_prev; /* in c->subs */
	struct cairn_subscription *list_next;
	struct cairn_subscription *wake_next; /* in c->wake_subs */

	/* ---- loop thread only ---- */
	bool from_now;      /* the first attempt starts from now */
	uint64_t next;      /* where the next attempt resumes; 0: unknown */
	bool accepted;      /* a node has pushed something */
	bool live_reported; /* LIVE was delivered once */
	bool in_cb;         /* inside cb: a close there is deferred */
	bool closed_in_cb;  /* cb closed it: freed when the request is
			     * done (sub_finished) */
};

static void sub_unlink_destroy(struct cairn_subscription *s);

static void chunk_free(struct sub_chunk *k)
{
	if (k == NULL)
		return;
	free(k->body);
	free(k->events);
	free(k);
}

/* ------------------------------------------------------------------------
 * Loop side
 * ------------------------------------------------------------------------ */

int sub_reframe(struct req *r)
{
	struct cairn_subscription *s = r->sub;
	struct cairn_client *c = r->c;
	struct wire_subscribe w;
	size_t queued;
	int rv;

	uv_mutex_lock(&c->mu);
	queued = s->queued;
	s->consumed = 0; /* the new subscription starts from this credit */
	uv_mutex_unlock(&c->mu);
	memset(&w, 0, sizeof w);
	w.kind = s->kind;
	if (s->next == 0 && s->from_now) {
		w.from_kind = WIRE_SUB_FROM_NOW;
	} else {
		w.from_kind = WIRE_SUB_FROM_POSITION;
		w.from = s->next;
	}
	w.target.len = (uint32_t)strlen(s->target);
	w.target.p = w.target.len > 0 ? (const uint8_t *)s->target : NULL;
	w.type.len = (uint32_t)strlen(s->type);
	w.type.p = w.type.len > 0 ? (const uint8_t *)s->type : NULL;
	w.credit = queued < s->window ? (uint32_t)(s->window - queued) : 0;
	wire_buf_reset(&r->frame);
	rv = wire_encode_subscribe(&r->frame, r->id, &w);
	switch (rv) {
	case 0:
		return 0;
	case WIRE_ENCODE_TOO_LARGE:
		return CAIRN_ETOO_LARGE;
	case WIRE_ENCODE_INVALID:
		return CAIRN_EINVALID;
	default:
		return CAIRN_ENOMEM;
	}
}

/* Grants @n events back to the node @r is subscribed on. */
static void grant(struct req *r, uint64_t n)
{
	struct wire_buf b;

	if (r->state != REQ_SENT || r->conn == NULL)
		return; /* the next attempt's SUBSCRIBE carries it */
	wire_buf_init(&b);
	while (n > 0) {
		uint32_t k = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;

		if (wire_encode_credit(&b, r->id, k) != 0)
			break;
		n -= k;
	}
	if (b.len > 0)
		(void)conn_send(r->conn, &b); /* a failure closes it */
	wire_buf_close(&b);
}

/* Grants what was consumed once it reaches half a window. */
static void maybe_grant(struct cairn_subscription *s)
{
	struct cairn_client *c = s->c;
	uint64_t n = 0;

	uv_mutex_lock(&c->mu);
	if (s->consumed > 0 && s->consumed >= (s->window + 1) / 2) {
		n = s->consumed;
		s->consumed = 0;
	}
	uv_mutex_unlock(&c->mu);
	if (n > 0 && s->r != NULL)
		grant(s->r, n);
}

/* Unsubscribes (when connected) and completes the request quietly: the
 * caller of close waits for it, no callback runs. */
static void close_on_loop(struct cairn_subscription *s)
{
	struct req *r = s->r;
	struct wire_buf b;

	if (r == NULL)
		return;
	if (r->state == REQ_SENT && r->conn != NULL) {
		wire_buf_init(&b);
		if (wire_encode_unsubscribe(&b, r->id) == 0)
			(void)conn_send(r->conn, &b);
		wire_buf_close(&b);
	}
	client_set_error(&r->err, CAIRN_ECLOSED, "subscribe: closed");
	req_finish(r, CAIRN_ECLOSED);
}

/* Calls the callback with @u, then carries out a close asked for meanwhile
 * (by the callback, or by another thread). Returns false when the
 * subscription is done: @s may be gone then. */
static bool deliver(struct cairn_subscription *s,
		    const struct cairn_sub_update *u)
{
	struct cairn_client *c = s->c;
	bool close;

	s->in_cb = true;
	s->cb(s->cb_arg, u);
	s->in_cb = false;
	uv_mutex_lock(&c->mu);
	close = s->close_requested;
	uv_mutex_unlock(&c->mu);
	if (close) {
		/* sub_finished frees @s when the callback closed it;
		 * otherwise the closing thread does, once it sees r NULL. */
		close_on_loop(s);
		return false;
	}
	return true;
}

/* Queues a chunk for the iterator and wakes it. */
static void enqueue(struct cairn_subscription *s, struct sub_chunk *k)
{
	struct cairn_client *c = s->c;

	uv_mutex_lock(&c->mu);
	if (s->tail != NULL)
		s->tail->next_chunk = k;
	else
		s->head = k;
	s->tail = k;
	s->queued += k->n;
	uv_cond_broadcast(&s->cond);
	uv_mutex_unlock(&c->mu);
}

static void on_sub_events(struct req *r, struct conn *conn, const uint8_t *body,
			  size_t len)
{
	struct cairn_subscription *s = r->sub;
	struct cairn_client *c = r->c;
	struct wire_events_reader rd;
	struct wire_event we;
	struct sub_chunk *k;
	size_t dropped = 0;
	char msg[400];

	k = calloc(1, sizeof *k);
	if (k != NULL)
		k->body = malloc(len > 0 ? len : 1);
	if (k == NULL || k->body == NULL) {
		chunk_free(k);
		req_fail(r, CAIRN_ENOMEM, "out of memory for a push");
		return;
	}
	if (len > 0)
		memcpy(k->body, body, len);
	if (wire_events_open(k->body, len, &rd) != 0) {
		chunk_free(k);
		snprintf(msg, sizeof msg, "malformed SUB_EVENTS from %s",
			 conn->address);
		req_fail(r, CAIRN_EPROTOCOL, msg);
		return;
	}
	k->events = calloc(rd.count > 0 ? rd.count : 1, sizeof *k->events);
	if (k->events == NULL) {
		chunk_free(k);
		req_fail(r, CAIRN_ENOMEM, "out of memory for a push");
		return;
	}
	k->what = CAIRN_SUB_EVENTS;
	while (wire_events_next(&rd, &we)) {
		uint64_t at =
			s->kind == WIRE_SUB_STREAM ? we.version : we.position;
		struct cairn_event *ev;

		if (at < s->next) {
			dropped++; /* delivered before: never twice */
			continue;
		}
		s->next = at + 1;
		ev = &k->events[k->n++];
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
	if (rd.next > s->next)
		s->next = rd.next; /* records the filter skipped */
	k->next = s->next;

	if (s->cb != NULL) {
		struct cairn_sub_update u;

		memset(&u, 0, sizeof u);
		u.what = CAIRN_SUB_EVENTS;
		u.events = k->events;
		u.n = k->n;
		u.next = s->next;
		if (k->n > 0 && !deliver(s, &u)) {
			chunk_free(k);
			return;
		}
		chunk_free(k);
		uv_mutex_lock(&c->mu);
		s->consumed += rd.count;
		uv_mutex_unlock(&c->mu);
	} else {
		uv_mutex_lock(&c->mu);
		s->consumed += dropped;
		uv_mutex_unlock(&c->mu);
		if (k->n > 0)
			enqueue(s, k);
		else
			chunk_free(k);
	}
	maybe_grant(s);
}

static void on_sub_live(struct req *r, struct conn *conn, const uint8_t *body,
			size_t len)
{
	struct cairn_subscription *s = r->sub;
	uint64_t next;
	uint64_t last;
	char msg[400];

	if (wire_decode_sub_live(body, len, &next, &last) != 0) {
		snprintf(msg, sizeof msg, "malformed SUB_LIVE from %s",
			 conn->address);
		req_fail(r, CAIRN_EPROTOCOL, msg);
		return;
	}
	if (next > s->next)
		s->next = next;
	if (s->live_reported)
		return; /* once per subscription, not per resume */
	s->live_reported = true;
	if (s->cb != NULL) {
		struct cairn_sub_update u;

		memset(&u, 0, sizeof u);
		u.what = CAIRN_SUB_LIVE;
		u.next = s->next;
		u.last_position = last;
		(void)deliver(s, &u);
	} else {
		struct sub_chunk *k = calloc(1, sizeof *k);

		if (k == NULL) {
			req_fail(r, CAIRN_ENOMEM, "out of memory for a push");
			return;
		}
		k->what = CAIRN_SUB_LIVE;
		k->next = s->next;
		k->last_position = last;
		enqueue(s, k);
	}
}

static void on_sub_end(struct req *r, struct conn *conn, const uint8_t *body,
		       size_t len)
{
	struct cairn_subscription *s = r->sub;
	struct wire_sub_end e;
	char msg[1200];

	if (wire_decode_sub_end(body, len, &e) != 0) {
		snprintf(msg, sizeof msg, "malformed SUB_END from %s",
			 conn->address);
		req_fail(r, CAIRN_EPROTOCOL, msg);
		return;
	}
	if (e.next > s->next)
		s->next = e.next;
	/* The node ended it (shutting down, a slow read, a storage error):
	 * resume, elsewhere if possible, where it stood. */
	snprintf(msg, sizeof msg, "%s: subscription ended: %s: %.*s",
		 conn->address, wire_sub_end_reason_name(e.reason),
		 (int)e.message.len,
		 e.message.len > 0 ? (const char *)e.message.p : "");
	req_retry_later(r,
			e.reason == WIRE_SUB_END_SLOW ? CAIRN_EBUSY
						      : CAIRN_EUNAVAILABLE,
			msg);
}

static void on_sub_error(struct req *r, struct conn *conn, const uint8_t *body,
			 size_t len)
{
	struct wire_err e;
	char msg[1200];

	if (wire_decode_error(body, len, &e) != 0) {
		snprintf(msg, sizeof msg, "malformed ERROR from %s",
			 conn->address);
		req_fail(r, CAIRN_EPROTOCOL, msg);
		return;
	}
	snprintf(msg, sizeof msg, "%s: %.*s", conn->address, (int)e.message.len,
		 e.message.len > 0 ? (const char *)e.message.p
				   : cairn_strerror((int)e.code));
	switch (e.code) {
	case WIRE_EBUSY:
	case WIRE_EUNAVAILABLE:
	case WIRE_ETIMEOUT:
		req_retry_later(r, (int)e.code, msg);
		return;
	default:
		if (r->conn != NULL)
			conn_detach(r);
		req_fail(r, (int)e.code, msg);
		return;
	}
}

void sub_frame(struct req *r, struct conn *conn, const struct wire_header *h,
	       const uint8_t *body)
{
	struct cairn_subscription *s = r->sub;
	char msg[400];

	if (h->type == WIRE_ERROR) {
		on_sub_error(r, conn, body, h->body_len);
		return;
	}
	if (!s->accepted) {
		/* Accepted: from now on it has no deadline. */
		s->accepted = true;
		uv_timer_stop(&r->deadline_timer);
	}
	/* Any frame is progress: the next failure backs off from scratch. */
	r->backoff_ms = 0;
	r->hops = 0;
	switch (h->type) {
	case WIRE_SUB_EVENTS:
		on_sub_events(r, conn, body, h->body_len);
		break;
	case WIRE_SUB_LIVE:
		on_sub_live(r, conn, body, h->body_len);
		break;
	case WIRE_SUB_END:
		on_sub_end(r, conn, body, h->body_len);
		break;
	default:
		snprintf(msg, sizeof msg,
			 "unexpected frame type 0x%02x for a subscription "
			 "from %s",
			 h->type, conn->address);
		req_fail(r, CAIRN_EPROTOCOL, msg);
		break;
	}
}

void sub_finished(struct req *r)
{
	struct cairn_subscription *s = r->sub;
	struct cairn_client *c = r->c;
	struct cairn_sub_update u;
	bool quiet;
	bool free_here;

	uv_mutex_lock(&c->mu);
	quiet = s->close_requested;
	uv_mutex_unlock(&c->mu);
	if (s->cb != NULL && !quiet && !s->in_cb) {
		/* Before r goes NULL: a thread closing meanwhile waits for
		 * the callback to return. A close from the callback itself
		 * is carried out below. */
		memset(&u, 0, sizeof u);
		u.what = CAIRN_SUB_END;
		u.next = s->next;
		u.status = r->status;
		u.err = &r->err;
		s->in_cb = true;
		s->cb(s->cb_arg, &u);
		s->in_cb = false;
	}
	r->sub = NULL;
	uv_mutex_lock(&c->mu);
	s->r = NULL;
	s->status = r->status;
	s->err = r->err;
	free_here = s->closed_in_cb;
	uv_cond_broadcast(&s->cond);
	uv_mutex_unlock(&c->mu);
	/* From here on @s belongs to whoever closes it. */
	if (free_here)
		sub_unlink_destroy(s);
}

void sub_wakeup(struct cairn_client *c)
{
	for (;;) {
		struct cairn_subscription *s;
		bool active = false;
		bool close = false;

		uv_mutex_lock(&c->mu);
		s = c->wake_subs;
		if (s != NULL) {
			c->wake_subs = s->wake_next;
			s->wake_next = NULL;
			s->wake_queued = false;
			/* Once r is NULL a closing thread may free @s at any
			 * moment: only a subscription whose request is still
			 * ours (only this thread ends it) is touched. */
			active = s->r != NULL;
			close = s->close_requested;
		}
		uv_mutex_unlock(&c->mu);
		if (s == NULL)
			return;
		if (!active)
			continue;
		if (close)
			close_on_loop(s);
		else
			maybe_grant(s);
	}
}

/* ------------------------------------------------------------------------
 * Callers' side
 * ------------------------------------------------------------------------ */

/* Asks the loop to look at @s (credit to grant, a close). Under c->mu. */
static void wake_locked(struct cairn_subscription *s)
{
	struct cairn_client *c = s->c;

	if (s->wake_queued)
		return;
	s->wake_queued = true;
	s->wake_next = c->wake_subs;
	c->wake_subs = s;
}

static void sub_destroy(struct cairn_subscription *s)
{
	while (s->head != NULL) {
		struct sub_chunk *k = s->head;

		s->head = k->next_chunk;
		chunk_free(k);
	}
	chunk_free(s->taken);
	uv_cond_destroy(&s->cond);
	free(s->target);
	free(s->type);
	free(s);
}

static bool on_loop_thread(struct cairn_client *c)
{
	uv_thread_t self = uv_thread_self();

	return uv_thread_equal(&self, &c->thread) != 0;
}

static char *dup_text(const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;
	char *p = malloc(len + 1);

	if (p != NULL) {
		if (len > 0)
			memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

int cairn_subscribe(cairn_client *c, const struct cairn_subscribe_options *o,
		    cairn_subscription_cb cb, void *arg,
		    cairn_subscription **out, struct cairn_error *err)
{
	struct cairn_subscription *s;
	struct req *r;
	int rv;

	if (c == NULL || o == NULL || out == NULL) {
		client_set_error(err, CAIRN_EARG, "subscribe: %s is NULL",
				 c == NULL   ? "client"
				 : o == NULL ? "options"
					     : "out");
		return CAIRN_EARG;
	}
	*out = NULL;
	if (o->kind < CAIRN_SUB_ALL || o->kind > CAIRN_SUB_CATEGORY) {
		client_set_error(err, CAIRN_EARG, "subscribe: unknown kind %d",
				 o->kind);
		return CAIRN_EARG;
	}
	if ((o->kind != CAIRN_SUB_ALL) !=
	    (o->target != NULL && o->target[0] != '\0')) {
		client_set_error(err, CAIRN_EARG, "subscribe: %s",
				 o->kind == CAIRN_SUB_ALL
					 ? "a subscription to the global log "
					   "takes no target"
					 : "a stream or category is needed");
		return CAIRN_EARG;
	}
	if ((o->target != NULL && strlen(o->target) > UINT16_MAX) ||
	    (o->type != NULL && strlen(o->type) > UINT16_MAX)) {
		client_set_error(err, CAIRN_ETOO_LARGE,
				 "subscribe: name over the protocol's limit");
		return CAIRN_ETOO_LARGE;
	}
	if (o->window > SUB_WINDOW_MAX) {
		client_set_error(err, CAIRN_EARG,
				 "subscribe: window %u over the limit of %d",
				 o->window, SUB_WINDOW_MAX);
		return CAIRN_EARG;
	}
	s = calloc(1, sizeof *s);
	if (s == NULL)
		goto err_nomem;
	s->target = dup_text(o->target);
	s->type = dup_text(o->type);
	if (s->target == NULL || s->type == NULL ||
	    uv_cond_init(&s->cond) != 0) {
		free(s->target);
		free(s->type);
		free(s);
		goto err_nomem;
	}
	s->c = c;
	s->kind = (uint8_t)o->kind;
	s->window = o->window > 0 ? o->window : SUB_WINDOW_DEFAULT;
	s->cb = cb;
	s->cb_arg = arg;
	s->from_now = o->from_now;
	s->next = o->from_now ? 0 : (o->from > 0 ? o->from : 1);

	r = calloc(1, sizeof *r);
	if (r == NULL) {
		sub_destroy(s);
		goto err_nomem;
	}
	r->c = c;
	r->kind = REQ_SUBSCRIBE;
	r->state = REQ_QUEUED;
	r->op = "subscribe";
	r->refs = 1;
	r->sub = s;
	wire_buf_init(&r->frame);
	r->route = ROUTE_CURRENT;
	if (c->single_node) {
		r->route = ROUTE_FIXED;
		snprintf(r->fixed, sizeof r->fixed, "%s", c->addrs[0]);
	}
	r->retry = true;
	r->deadline_ns = uv_hrtime() + (uint64_t)c->deadline_ms * 1000000u;
	s->r = r;

	uv_mutex_lock(&c->mu);
	if (c->closing) {
		uv_mutex_unlock(&c->mu);
		free(r);
		sub_destroy(s);
		client_set_error(err, CAIRN_ECLOSED,
				 "subscribe: client closed");
		return CAIRN_ECLOSED;
	}
	if (c->n_requests >= CLIENT_REQUESTS_MAX) {
		uv_mutex_unlock(&c->mu);
		free(r);
		sub_destroy(s);
		client_set_error(err, CAIRN_EBUSY,
				 "subscribe: %d requests already in flight "
				 "on this client",
				 CLIENT_REQUESTS_MAX);
		return CAIRN_EBUSY;
	}
	r->id = c->next_id++;
	c->callers++;
	c->n_requests++;
	if (c->queue_tail != NULL)
		c->queue_tail->queue_next = r;
	else
		c->queue_head = r;
	c->queue_tail = r;
	s->list_next = c->subs;
	if (c->subs != NULL)
		c->subs->list_prev = s;
	c->subs = s;
	uv_mutex_unlock(&c->mu);
	uv_async_send(&c->wakeup);

	uv_mutex_lock(&c->mu);
	assert(c->callers > 0);
	if (--c->callers == 0 && c->closing)
		uv_cond_broadcast(&c->callers_cond);
	uv_mutex_unlock(&c->mu);
	*out = s;
	if (err != NULL)
		memset(err, 0, sizeof *err);
	return 0;

err_nomem:
	rv = CAIRN_ENOMEM;
	client_set_error(err, rv, "subscribe: out of memory");
	return rv;
}

int cairn_subscription_next(cairn_subscription *s, unsigned timeout_ms,
			    struct cairn_sub_item *item,
			    struct cairn_error *err)
{
	struct cairn_client *c;
	uint64_t until;
	int rv = 0;

	if (s == NULL || item == NULL || s->cb != NULL) {
		client_set_error(err, CAIRN_EARG, "subscription next: %s",
				 s == NULL      ? "subscription is NULL"
				 : item == NULL ? "item is NULL"
						: "the subscription has a "
						  "callback");
		return CAIRN_EARG;
	}
	c = s->c;
	if (on_loop_thread(c)) {
		client_set_error(err, CAIRN_EARG,
				 "subscription next: called from a callback "
				 "of the same client");
		return CAIRN_EARG;
	}
	memset(item, 0, sizeof *item);
	until = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
	uv_mutex_lock(&c->mu);
	/* The previous item's chunk can go once the caller asks again. */
	if (s->taken != NULL) {
		chunk_free(s->taken);
		s->taken = NULL;
	}
	for (;;) {
		struct sub_chunk *k = s->head;
		uint64_t now;

		if (k != NULL) {
			item->what = k->what;
			item->next = k->next;
			item->last_position = k->last_position;
			if (k->what == CAIRN_SUB_EVENTS) {
				item->event = k->events[k->i++];
				item->next = s->kind == WIRE_SUB_STREAM
						     ? item->event.version + 1
						     : item->event.position + 1;
				s->queued--;
				s->consumed++;
				if (s->consumed >= (s->window + 1) / 2 &&
				    s->r != NULL) {
					wake_locked(s);
					uv_async_send(&c->wakeup);
				}
			}
			if (k->what != CAIRN_SUB_EVENTS || k->i == k->n) {
				s->head = k->next_chunk;
				if (s->head == NULL)
					s->tail = NULL;
				s->taken = k;
			}
			break;
		}
		if (s->r == NULL) {
			rv = s->status != 0 ? s->status : CAIRN_ECLOSED;
			if (err != NULL)
				*err = s->err;
			break;
		}
		now = uv_hrtime();
		if (now >= until) {
			rv = CAIRN_ETIMEOUT;
			client_set_error(err, rv,
					 "subscription next: nothing within "
					 "%u ms",
					 timeout_ms);
			break;
		}
		uv_cond_timedwait(&s->cond, &c->mu, until - now);
	}
	uv_mutex_unlock(&c->mu);
	if (rv == 0 && err != NULL)
		memset(err, 0, sizeof *err);
	return rv;
}

void cairn_subscription_close(cairn_subscription *s)
{
	struct cairn_client *c;

	if (s == NULL)
		return;
	c = s->c;
	if (on_loop_thread(c)) {
		/* From a callback: the loop cannot wait for itself. */
		uv_mutex_lock(&c->mu);
		s->close_requested = true;
		uv_mutex_unlock(&c->mu);
		if (s->in_cb) {
			/* Its own callback: finished when the callback
			 * returns, and freed then. */
			s->closed_in_cb = true;
			return;
		}
		close_on_loop(s);
	} else {
		uv_mutex_lock(&c->mu);
		s->close_requested = true;
		if (s->r != NULL) {
			wake_locked(s);
			uv_async_send(&c->wakeup);
			while (s->r != NULL)
				uv_cond_wait(&s->cond, &c->mu);
		}
		uv_mutex_unlock(&c->mu);
	}
	sub_unlink_destroy(s);
}

/* Takes @s off the client's lists and frees it. */
static void sub_unlink_destroy(struct cairn_subscription *s)
{
	struct cairn_client *c = s->c;

	uv_mutex_lock(&c->mu);
	if (s->wake_queued) {
		struct cairn_subscription **p = &c->wake_subs;

		while (*p != s)
			p = &(*p)->wake_next;
		*p = s->wake_next;
	}
	if (s->list_prev != NULL)
		s->list_prev->list_next = s->list_next;
	else
		c->subs = s->list_next;
	if (s->list_next != NULL)
		s->list_next->list_prev = s->list_prev;
	uv_mutex_unlock(&c->mu);
	sub_destroy(s);
}

void sub_free_all(struct cairn_client *c)
{
	while (c->subs != NULL) {
		struct cairn_subscription *s = c->subs;

		assert(s->r == NULL);
		c->subs = s->list_next;
		sub_destroy(s);
	}
	c->wake_subs = NULL;
}
