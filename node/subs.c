/* node/subs.c: the server side of subscriptions (see subs.h and
 * docs/protocol.md, "Subscriptions"). handlers.c hands it SUBSCRIBE,
 * CREDIT and UNSUBSCRIBE frames and every applied position; server.c tells
 * it when a connection closes; main.c starts and stops it.
 *
 * A subscription is a cursor: `next` (a position, or a stream version for a
 * stream subscription) and the credit its client granted. It never holds
 * events: when it runs it reads one page from the store at `next`
 * (store_read_stream or store_read_all, with the filter), bounded by its
 * credit, NODE_SUB_PAGE_EVENTS, WIRE_READ_BYTES_MAX and
 * NODE_READ_ALL_SCAN_MAX, and encodes it straight into its connection's
 * output buffer. Catch-up and live delivery are the same code: live is
 * just a cursor that reached the applied state. So exactly the applied
 * events, in position order, without a gap or a repeat, whatever the
 * timing of applies and credit.
 *
 * Its states, and what moves it between them:
 *
 *   RUNNABLE (on the run queue)
 *     --run: read a page, more to read, credit left--> RUNNABLE (at the
 *       back of the queue: round robin)
 *     --run: nothing more applied (SUB_LIVE sent the first time)-->
 *       WAITING (on the wait list)
 *     --run: more to read but no credit--> STARVED (on no list)
 *     --run: over NODE_SUB_UNSENT_BYTES_MAX unsent--> ended (SUB_END SLOW)
 *   WAITING --subs_applied--> RUNNABLE (the whole wait list is spliced onto
 *     the queue: constant work per apply)
 *   STARVED --CREDIT--> RUNNABLE
 *   any --UNSUBSCRIBE--> ended (SUB_END UNSUBSCRIBED)
 *   any --connection closed--> ended (nothing sent)
 *   any --subs_close--> ended (SUB_END SHUTDOWN)
 *
 * An idle handle runs the queue while it is not empty, at most
 * NODE_SUB_TURN_PAGES pushes and NODE_SUB_TURN_BYTES per loop iteration, so
 * sockets are polled between turns and appends are never held up. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* A circular doubly linked list (the queue and the wait list): a
 * subscription leaves a list without knowing which one it is on, and the
 * wait list moves onto the queue in constant time. */
struct link {
	struct link *prev;
	struct link *next;
};

static void list_init(struct link *h)
{
	h->prev = h;
	h->next = h;
}

static bool list_empty(const struct link *h)
{
	return h->next == h;
}

static void list_push(struct link *h, struct link *l)
{
	l->prev = h->prev;
	l->next = h;
	h->prev->next = l;
	h->prev = l;
}

static void list_remove(struct link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = NULL;
	l->next = NULL;
}

/* Moves every element of @src to the end of @dst; @src is empty after. */
static void list_splice(struct link *dst, struct link *src)
{
	if (list_empty(src))
		return;
	src->next->prev = dst->prev;
	dst->prev->next = src->next;
	src->prev->next = dst;
	dst->prev = src->prev;
	list_init(src);
}

struct subs {
	struct node *node; /* borrowed */
	uv_idle_t idle;    /* runs the queue */
	bool idle_on;      /* idle is started */
	struct link queue; /* RUNNABLE subscriptions, in turn order */
	struct link wait;  /* WAITING ones: caught up */
	unsigned n;        /* subscriptions on the node */
};

struct sub {
	struct subs *subs;      /* borrowed */
	struct node_conn *conn; /* borrowed: ends before the connection */
	uint64_t id;            /* the SUBSCRIBE's request id */
	uint8_t kind;           /* enum wire_sub_kind */
	uint64_t next;          /* position (version for STREAM) to read */
	uint64_t credit;        /* events it may still push */
	uint64_t covered;       /* the position it was served up to (lag) */
	bool live;              /* SUB_LIVE was sent */
	struct link link;       /* on the queue or the wait list; NULLs when
				 * STARVED */
	struct sub *conn_prev;  /* in conn->subs */
	struct sub *conn_next;  /* in conn->subs */
	char *target;           /* points into the struct's tail: stream or
				 * category (not NUL-terminated) */
	uint32_t target_len;    /* bytes in target */
	char *type;             /* points into the tail: the type filter */
	uint32_t type_len;      /* bytes in type; 0: no filter */
};

static struct sub *sub_of(struct link *l)
{
	return CONTAINER_OF(l, struct sub, link);
}

static void sub_schedule(struct sub *s);

/* ------------------------------------------------------------------------
 * Ending a subscription
 * ------------------------------------------------------------------------ */

/* Unlinks and frees @s. */
static void sub_free(struct sub *s)
{
	struct node_conn *c = s->conn;

	if (s->link.next != NULL)
		list_remove(&s->link);
	if (s->conn_prev != NULL)
		s->conn_prev->conn_next = s->conn_next;
	else
		c->subs = s->conn_next;
	if (s->conn_next != NULL)
		s->conn_next->conn_prev = s->conn_prev;
	assert(c->n_subs > 0);
	c->n_subs--;
	assert(s->subs->n > 0);
	s->subs->n--;
	free(s);
}

/* Sends SUB_END with @reason and @message (when the connection still takes
 * frames) and frees @s. The flush comes last: a failed write closes the
 * connection, which frees its subscriptions. */
static void sub_end(struct sub *s, uint32_t reason, const char *message)
{
	struct node_conn *c = s->conn;
	struct wire_buf *b = conn_out(c);
	struct wire_sub_end e;

	log_debug("subscription_ended",
		  "peer=%s id=%" PRIu64 " reason=\"%s\" next=%" PRIu64,
		  s->conn->peer, s->id, wire_sub_end_reason_name(reason),
		  s->next);
	if (b != NULL) {
		memset(&e, 0, sizeof e);
		e.reason = reason;
		e.next = s->next;
		e.message.len = (uint32_t)strlen(message);
		e.message.p =
			e.message.len > 0 ? (const uint8_t *)message : NULL;
		if (wire_encode_sub_end(b, s->id, &e) != 0)
			log_error("reply_failed", "type=SUB_END");
	}
	sub_free(s);
	conn_flush(c);
}

/* ------------------------------------------------------------------------
 * Serving a page
 * ------------------------------------------------------------------------ */

/* A SUB_EVENTS push being encoded from a store read. */
struct push {
	const struct sub *sub;       /* borrowed */
	struct wire_buf *b;          /* borrowed: the connection's output */
	struct wire_events_writer w; /* the frame */
	uint64_t last_position;      /* of the last event added */
	int err;                     /* first encoder error */
};

static bool push_visit(void *arg, const struct store_record *r)
{
	struct push *p = arg;
	const struct sub *s = p->sub;
	struct wire_event e;
	int rv;

	/* A stream read has no filter of its own: the type is checked
	 * here (the record still counts as examined). */
	if (s->kind == WIRE_SUB_STREAM && s->type_len > 0 &&
	    (r->type_len != s->type_len ||
	     memcmp(r->type, s->type, s->type_len) != 0))
		return true;
	node_wire_event(&e, r);
	rv = wire_events_add(p->b, &p->w, &e);
	if (rv != 0) {
		p->err = rv;
		return false;
	}
	p->last_position = r->position;
	/* The store continues after this record: a push stops only after
	 * an event it holds. */
	return p->w.event_bytes < WIRE_READ_BYTES_MAX;
}

static uint64_t conn_unsent_bytes(const struct node_conn *c)
{
	return (uint64_t)c->out.len + c->wbuf.len;
}

/* Whether a stream subscription has a version at @s->next to read. */
static int stream_has_next(struct sub *s, bool *has)
{
	struct store_head head;
	int rv;

	rv = store_head(&s->subs->node->store, s->target, s->target_len, &head);
	if (rv != 0)
		return rv;
	*has = s->next <= head.version;
	return 0;
}

/* Encodes SUB_LIVE once the subscription has caught up (on_idle
 * flushes). */
static void sub_send_live(struct sub *s, uint64_t last_position)
{
	struct wire_buf *b = conn_out(s->conn);

	if (s->live || b == NULL)
		return;
	s->live = true;
	if (wire_encode_sub_live(b, s->id, s->next, last_position) != 0)
		log_error("reply_failed", "type=SUB_LIVE");
}

static void sub_storage_failed(struct sub *s, int rv)
{
	char msg[STORE_ERRMSG_SIZE + 32];

	log_error("subscription_read_failed",
		  "peer=%s id=%" PRIu64 " error=\"%s\"", s->conn->peer, s->id,
		  s->subs->node->store.errmsg);
	snprintf(msg, sizeof msg, "read failed: %s", store_strerror(rv));
	sub_end(s, WIRE_SUB_END_INTERNAL, msg);
}

/* Runs @s once: at most one push, encoded into its connection's output but
 * not flushed (the caller flushes: a failed write would close the
 * connection and free @s under our feet). Returns the event bytes pushed.
 * On return @s is on the queue again, on the wait list, starved, or
 * freed. */
static size_t sub_run(struct sub *s)
{
	struct store *st = &s->subs->node->store;
	uint64_t last = store_last_position(st);
	struct store_read_info info;
	struct push p;
	uint32_t max_count;
	bool has;
	int rv;

	assert(s->link.next == NULL);
	if (conn_out(s->conn) == NULL) {
		sub_free(s); /* the connection is going: nobody to tell */
		return 0;
	}
	if (s->kind == WIRE_SUB_STREAM) {
		rv = stream_has_next(s, &has);
		if (rv != 0) {
			sub_storage_failed(s, rv);
			return 0;
		}
	} else {
		has = s->next <= last;
	}
	if (!has) {
		s->covered = last;
		sub_send_live(s, last);
		list_push(&s->subs->wait, &s->link);
		return 0;
	}
	if (s->credit == 0)
		return 0; /* STARVED until CREDIT */
	if (conn_unsent_bytes(s->conn) >= NODE_SUB_UNSENT_BYTES_MAX) {
		char msg[160];

		log_warn("subscriber_too_slow",
			 "peer=%s id=%" PRIu64 " unsent_bytes=%" PRIu64
			 " limit=%u next=%" PRIu64,
			 s->conn->peer, s->id, conn_unsent_bytes(s->conn),
			 NODE_SUB_UNSENT_BYTES_MAX, s->next);
		snprintf(msg, sizeof msg,
			 "slow consumer: %" PRIu64
			 " bytes not taken by the client (limit %u)",
			 conn_unsent_bytes(s->conn), NODE_SUB_UNSENT_BYTES_MAX);
		sub_end(s, WIRE_SUB_END_SLOW, msg);
		return 0;
	}

	memset(&p, 0, sizeof p);
	p.sub = s;
	p.b = conn_out(s->conn);
	if (wire_sub_events_begin(p.b, s->id, &p.w) != 0) {
		sub_end(s, WIRE_SUB_END_INTERNAL, "out of memory");
		return 0;
	}
	max_count = s->credit < NODE_SUB_PAGE_EVENTS ? (uint32_t)s->credit
						     : NODE_SUB_PAGE_EVENTS;
	if (s->kind == WIRE_SUB_STREAM) {
		rv = store_read_stream(st, s->target, s->target_len, s->next,
				       false, max_count, push_visit, &p, &info);
	} else {
		struct store_filter f;

		memset(&f, 0, sizeof f);
		if (s->kind == WIRE_SUB_CATEGORY) {
			f.category = s->target;
			f.category_len = s->target_len;
		}
		f.type = s->type_len > 0 ? s->type : NULL;
		f.type_len = s->type_len;
		rv = store_read_all(st, s->next, max_count,
				    NODE_READ_ALL_SCAN_MAX, &f, push_visit, &p,
				    &info);
	}
	if (rv != 0 || p.err != 0) {
		p.b->len = p.w.frame_off; /* drop the partial push */
		if (rv != 0) {
			sub_storage_failed(s, rv);
		} else {
			log_error("reply_failed", "type=SUB_EVENTS error=%d",
				  p.err);
			sub_end(s, WIRE_SUB_END_INTERNAL,
				"cannot encode a push");
		}
		return 0;
	}
	assert(info.next >= s->next);
	s->next = info.next;
	if (p.w.count == 0) {
		/* Only records the filter refused: nothing to push. */
		p.b->len = p.w.frame_off;
	} else {
		wire_events_end(p.b, &p.w, info.next, info.end);
		s->credit -= p.w.count;
	}
	if (s->kind != WIRE_SUB_STREAM)
		s->covered = s->next - 1;
	else if (info.end)
		s->covered = last;
	else if (p.last_position > s->covered)
		s->covered = p.last_position;
	if (info.end) {
		sub_send_live(s, last);
		list_push(&s->subs->wait, &s->link);
	} else if (s->credit > 0) {
		list_push(&s->subs->queue, &s->link);
	}
	return p.w.event_bytes;
}

static void on_idle(uv_idle_t *idle)
{
	struct subs *ss = idle->data;
	size_t bytes = 0;

	for (unsigned k = 0;
	     k < NODE_SUB_TURN_PAGES && bytes < NODE_SUB_TURN_BYTES &&
	     !list_empty(&ss->queue);
	     k++) {
		struct sub *s = sub_of(ss->queue.next);
		/* Valid through this callback: a connection is freed only
		 * after its handle's close callback. */
		struct node_conn *c = s->conn;

		list_remove(&s->link);
		bytes += sub_run(s);
		conn_flush(c);
	}
	if (list_empty(&ss->queue)) {
		uv_idle_stop(idle);
		ss->idle_on = false;
	}
}

/* Puts @s on the queue (from the wait list or starved). */
static void sub_schedule(struct sub *s)
{
	struct subs *ss = s->subs;

	if (s->link.next != NULL)
		list_remove(&s->link);
	list_push(&ss->queue, &s->link);
	if (!ss->idle_on) {
		uv_idle_start(&ss->idle, on_idle);
		ss->idle_on = true;
	}
}

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

static struct sub *find(struct node_conn *c, uint64_t id)
{
	for (struct sub *s = c->subs; s != NULL; s = s->conn_next)
		if (s->id == id)
			return s;
	return NULL;
}

/* Checks a SUBSCRIBE against the data model; fills @msg when it fails. */
static bool subscribe_valid(const struct wire_subscribe *w, char *msg,
			    size_t msg_len)
{
	const char *target = (const char *)w->target.p;

	switch (w->kind) {
	case WIRE_SUB_ALL:
		if (w->target.len != 0) {
			snprintf(msg, msg_len,
				 "a subscription to the global log names no "
				 "stream or category");
			return false;
		}
		break;
	case WIRE_SUB_STREAM:
		if (!store_stream_name_valid(target, w->target.len)) {
			snprintf(msg, msg_len, "invalid stream name");
			return false;
		}
		break;
	default:
		assert(w->kind == WIRE_SUB_CATEGORY);
		if (!store_stream_name_valid(target, w->target.len) ||
		    memchr(target, '-', w->target.len) != NULL) {
			snprintf(msg, msg_len,
				 "invalid category (1..255 bytes of UTF-8 "
				 "without control characters or '-')");
			return false;
		}
		break;
	}
	if (w->type.len > 0 &&
	    !store_stream_name_valid((const char *)w->type.p, w->type.len)) {
		snprintf(msg, msg_len,
			 "invalid event type filter (1..255 bytes of UTF-8 "
			 "without control characters)");
		return false;
	}
	if (w->from_kind == WIRE_SUB_FROM_NOW && w->from != 0) {
		snprintf(msg, msg_len, "from must be 0 with from-now");
		return false;
	}
	return true;
}

static void handle_subscribe(struct node_conn *c, const struct wire_header *h,
			     const struct wire_subscribe *w)
{
	struct node *n = c->node;
	struct subs *ss = n->subs;
	struct store_head head;
	char msg[160];
	struct sub *s;
	int rv;

	if (ss == NULL || n->state != NODE_RUNNING) {
		conn_reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
				 "node shutting down");
		return;
	}
	if (h->request_id == 0) {
		conn_reply_error(c, h->request_id, WIRE_EINVALID,
				 "request id 0 is reserved");
		return;
	}
	if (!subscribe_valid(w, msg, sizeof msg)) {
		conn_reply_error(c, h->request_id, WIRE_EINVALID, msg);
		return;
	}
	if (find(c, h->request_id) != NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINVALID,
				 "request id already names a subscription on "
				 "this connection");
		return;
	}
	if (c->n_subs >= NODE_SUBS_PER_CONN_MAX) {
		snprintf(msg, sizeof msg,
			 "too many subscriptions on this connection (limit "
			 "%d)",
			 NODE_SUBS_PER_CONN_MAX);
		conn_reply_error(c, h->request_id, WIRE_ETOO_LARGE, msg);
		return;
	}
	if (ss->n >= NODE_SUBS_MAX) {
		snprintf(msg, sizeof msg,
			 "too many subscriptions on this node (limit %d)",
			 NODE_SUBS_MAX);
		conn_reply_error(c, h->request_id, WIRE_EBUSY, msg);
		return;
	}

	/* The names were checked (at most 255 bytes each) above. */
	s = calloc(1, sizeof *s + w->target.len + w->type.len);
	if (s == NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINTERNAL,
				 "out of memory");
		return;
	}
	s->subs = ss;
	s->conn = c;
	s->id = h->request_id;
	s->kind = w->kind;
	s->credit = w->credit;
	s->target = (char *)(s + 1);
	s->target_len = w->target.len;
	if (w->target.len > 0)
		memcpy(s->target, w->target.p, w->target.len);
	s->type = s->target + w->target.len;
	s->type_len = w->type.len;
	if (w->type.len > 0)
		memcpy(s->type, w->type.p, w->type.len);
	s->covered = store_last_position(&n->store);
	if (w->from_kind == WIRE_SUB_FROM_NOW) {
		if (w->kind == WIRE_SUB_STREAM) {
			rv = store_head(&n->store, s->target, s->target_len,
					&head);
			if (rv != 0) {
				log_error("subscribe_failed", "error=\"%s\"",
					  n->store.errmsg);
				conn_reply_error(c, h->request_id,
						 WIRE_EINTERNAL,
						 store_strerror(rv));
				free(s);
				return;
			}
			s->next = head.version + 1;
		} else {
			s->next = s->covered + 1;
		}
	} else {
		s->next = w->from > 0 ? w->from : 1;
		if (w->kind != WIRE_SUB_STREAM)
			s->covered = s->next - 1;
	}
	s->conn_next = c->subs;
	if (c->subs != NULL)
		c->subs->conn_prev = s;
	c->subs = s;
	c->n_subs++;
	ss->n++;
	log_debug("subscribed",
		  "peer=%s id=%" PRIu64 " kind=%u next=%" PRIu64
		  " credit=%" PRIu64,
		  c->peer, s->id, (unsigned)s->kind, s->next, s->credit);
	sub_schedule(s);
}

int subs_handle(struct node_conn *c, const struct wire_header *h,
		const uint8_t *body)
{
	struct wire_subscribe w;
	struct sub *s;
	uint32_t events;

	switch (h->type) {
	case WIRE_SUBSCRIBE:
		if (wire_decode_subscribe(body, h->body_len, &w) != WIRE_OK)
			return WIRE_EMALFORMED;
		handle_subscribe(c, h, &w);
		return 0;
	case WIRE_CREDIT:
		if (wire_decode_credit(body, h->body_len, &events) != WIRE_OK)
			return WIRE_EMALFORMED;
		/* A subscription that ended meanwhile: nothing to do (its
		 * SUB_END is on its way). */
		s = find(c, h->request_id);
		if (s == NULL)
			return 0;
		s->credit = NODE_SUB_CREDIT_MAX - s->credit < events
				    ? NODE_SUB_CREDIT_MAX
				    : s->credit + events;
		if (s->link.next == NULL)
			sub_schedule(s); /* was starved */
		return 0;
	default:
		assert(h->type == WIRE_UNSUBSCRIBE);
		if (wire_decode_unsubscribe(body, h->body_len) != WIRE_OK)
			return WIRE_EMALFORMED;
		s = find(c, h->request_id);
		if (s != NULL)
			sub_end(s, WIRE_SUB_END_UNSUBSCRIBED, "unsubscribed");
		return 0;
	}
}

/* ------------------------------------------------------------------------
 * Notifications, lifetime, metrics
 * ------------------------------------------------------------------------ */

void subs_applied(struct node *n, uint64_t last_position)
{
	struct subs *ss = n->subs;

	(void)last_position;
	if (ss == NULL || list_empty(&ss->wait))
		return;
	list_splice(&ss->queue, &ss->wait);
	if (!ss->idle_on) {
		uv_idle_start(&ss->idle, on_idle);
		ss->idle_on = true;
	}
}

void subs_conn_closed(struct node_conn *c)
{
	while (c->subs != NULL)
		sub_free(c->subs);
}

int subs_init(struct node *n)
{
	struct subs *ss = calloc(1, sizeof *ss);
	int rv;

	if (ss == NULL)
		return UV_ENOMEM;
	rv = uv_idle_init(n->loop, &ss->idle);
	if (rv != 0) {
		free(ss);
		return rv;
	}
	ss->idle.data = ss;
	ss->node = n;
	list_init(&ss->queue);
	list_init(&ss->wait);
	n->subs = ss;
	return 0;
}

static void on_idle_closed(uv_handle_t *h)
{
	free(h->data);
}

void subs_close(struct node *n)
{
	struct subs *ss = n->subs;

	if (ss == NULL)
		return;
	for (struct node_conn *c = n->conns, *next; c != NULL; c = next) {
		/* A failed flush closes @c, which unlists it. */
		next = c->next;
		while (c->subs != NULL)
			sub_end(c->subs, WIRE_SUB_END_SHUTDOWN,
				"node shutting down");
	}
	assert(ss->n == 0);
	n->subs = NULL;
	uv_close((uv_handle_t *)&ss->idle, on_idle_closed);
}

void subs_stats(struct node *n, uint64_t *subscribers, uint64_t *max_lag_events)
{
	uint64_t last = store_last_position(&n->store);
	uint64_t lag = 0;

	*subscribers = n->subs != NULL ? n->subs->n : 0;
	for (struct node_conn *c = n->conns; c != NULL; c = c->next)
		for (const struct sub *s = c->subs; s != NULL; s = s->conn_next)
			if (last > s->covered && last - s->covered > lag)
				lag = last - s->covered;
	*max_lag_events = lag;
}
