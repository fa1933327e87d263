/* node/handlers.c: what cairnd does with each request of the binary
 * protocol (docs/protocol.md): APPEND, CHECKPOINT_SET and SNAPSHOT_PUT go
 * to consensus (the last two as a transaction of one state operation and
 * no events); READ_STREAM, READ_ALL, HEAD, CHECKPOINT_GET and SNAPSHOT_GET
 * read the local store at the consistency the request asks for; STATUS reports
 * consensus_status; SUBSCRIBE, CREDIT and UNSUBSCRIBE go to subs.c, which also
 * hears of every applied position after the parked reads. server.c calls
 * handlers_dispatch() for every whole frame; main.c wires consensus's
 * on_applied to handlers_applied().
 *
 * A request that cannot be answered at once becomes a struct node_req that
 * owns a copy of its frame body (decoded views and the store transaction
 * point into it) and holds a reference on its connection until its reply
 * is encoded (or dropped, when the connection has closed meanwhile). Its
 * states and their transitions:
 *
 *   APPEND, CHECKPOINT_SET, SNAPSHOT_PUT:
 *            SUBMITTED --consensus cb--> done
 *   reads:   PARKED   --applied--> done (read served)
 *            PARKED   --deadline (--read-wait-ms)--> done (WIRE_ETIMEOUT)
 *            PARKED   --shutdown--> done (WIRE_EUNAVAILABLE)
 *            BARRIER  --consensus cb--> done (read served, or an error)
 *
 * Parked at-least reads sit in a min-heap keyed by the position they wait
 * for, so each applied entry wakes exactly the reads it satisfies, and in a
 * list in arrival order, which is deadline order since every read waits the
 * same time; one timer serves the oldest deadline. */
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "metrics.h"
#include "node.h"

enum req_state {
	REQ_SUBMITTED = 1, /* append handed to consensus */
	REQ_PARKED = 2,    /* at-least read waiting for its position */
	REQ_BARRIER = 3,   /* leader read waiting for a barrier */
};

/* The decoded arguments of a read request (views into a frame body). */
struct read_args {
	uint16_t type; /* WIRE_READ_STREAM, WIRE_READ_ALL, WIRE_HEAD,
			* WIRE_CHECKPOINT_GET or WIRE_SNAPSHOT_GET */
	union {
		struct wire_read_stream rs;
		struct wire_read_all ra;
		struct wire_head hd;
		struct wire_checkpoint_get cg;
		struct wire_snapshot_get sg;
	} u;
	struct wire_consistency_req consistency; /* copied from u */
};

struct node_req {
	struct node_conn *conn; /* referenced (conn_request_begin) */
	uint64_t request_id;
	enum req_state state;
	size_t bytes;  /* counted against the connection */
	uint8_t *body; /* owned: a copy of the frame body */
	size_t body_len;

	/* Reads: args point into body. */
	struct read_args args;
	unsigned heap_index;        /* in node->parked while PARKED */
	uint64_t deadline_ms;       /* uv_now() after which it times out */
	struct node_req *wait_prev; /* deadline list while PARKED */
	struct node_req *wait_next;
	struct consensus_barrier barrier; /* while BARRIER */

	/* Appends: everything points into body. */
	struct consensus_append append;        /* while SUBMITTED */
	struct wire_append wa;                 /* owned arrays */
	struct store_part *parts;              /* owned, wa.n_parts */
	struct store_event *events;            /* owned, all parts' events */
	struct store_part_result *results;     /* owned, wa.n_parts */
	struct wire_part_result *wire_results; /* owned, wa.n_parts */
	/* State writes (CHECKPOINT_SET, SNAPSHOT_PUT): the one operation of
	 * append.txn, pointing into body; op.kind is 0 for an APPEND. */
	struct store_op op;
	uint64_t start_ns; /* uv_hrtime() when submitted, for the metrics */
};

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

/* Allocates a request owning a copy of @body. Returns NULL when out of
 * memory. */
static struct node_req *req_new(struct node_conn *c, uint64_t request_id,
				const uint8_t *body, size_t body_len)
{
	struct node_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	if (body_len > 0) {
		r->body = malloc(body_len);
		if (r->body == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->body, body, body_len);
	}
	r->body_len = body_len;
	r->conn = c;
	r->request_id = request_id;
	r->bytes = sizeof *r + body_len;
	conn_request_begin(c, r->bytes);
	return r;
}

/* Releases a request after its reply was encoded or dropped. */
static void req_free(struct node_req *r)
{
	struct node_conn *c = r->conn;
	size_t bytes = r->bytes;

	wire_append_close(&r->wa);
	free(r->parts);
	free(r->events);
	free(r->results);
	free(r->wire_results);
	free(r->body);
	free(r);
	conn_request_end(c, bytes);
}

/* Encodes a WIRE_ERROR with every field. */
static void reply_err(struct node_conn *c, uint64_t request_id,
		      const struct wire_err *e)
{
	struct wire_buf *b = conn_out(c);
	int rv;

	if (b == NULL)
		return;
	rv = wire_encode_error(b, request_id, e);
	if (rv != 0)
		log_error("reply_failed", "type=ERROR code=%u error=%d",
			  (unsigned)e->code, rv);
	conn_flush(c);
}

static void reply_error(struct node_conn *c, uint64_t request_id, uint32_t code,
			const char *message)
{
	conn_reply_error(c, request_id, code, message);
}

static struct wire_bytes bytes_of(const char *s)
{
	struct wire_bytes b;

	b.len = (uint32_t)strlen(s);
	b.p = b.len > 0 ? (const uint8_t *)s : NULL;
	return b;
}

/* Answers NOT_LEADER with the leader's client address, or UNAVAILABLE
 * when no leader is known. */
static void reply_not_leader(struct node_conn *c, uint64_t request_id)
{
	struct node *n = c->node;
	char address[CONSENSUS_ADDRESS_MAX];
	struct wire_err e;
	uint64_t id;

	if (!n->cons_open || !consensus_leader(&n->cons, &id, address)) {
		reply_error(c, request_id, WIRE_EUNAVAILABLE,
			    "no leader known");
		return;
	}
	memset(&e, 0, sizeof e);
	e.code = WIRE_ENOT_LEADER;
	e.leader = bytes_of(address);
	e.message = bytes_of("not the leader");
	reply_err(c, request_id, &e);
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

/* A page of EVENTS being encoded from a store read. */
struct page {
	struct wire_buf *b;          /* borrowed: the connection's output */
	struct wire_events_writer w; /* the frame being built */
	int err;                     /* first encoder error */
};

void node_wire_event(struct wire_event *e, const struct store_record *r)
{
	e->position = r->position;
	e->version = r->version;
	e->stream.p = (const uint8_t *)r->stream;
	e->stream.len = r->stream_len;
	memcpy(e->id, r->id, sizeof e->id);
	e->type.p = (const uint8_t *)r->type;
	e->type.len = r->type_len;
	e->schema_version = r->schema_version;
	e->event_time_us = r->event_time_us;
	e->commit_time_us = r->commit_time_us;
	e->has_client = r->has_client;
	memcpy(e->client_id, r->client_id, sizeof e->client_id);
	e->client_seq = r->client_seq;
	e->data.p = r->data;
	e->data.len = r->data_len;
	e->metadata.p = r->metadata;
	e->metadata.len = r->metadata_len;
}

static bool page_visit(void *arg, const struct store_record *r)
{
	struct page *pg = arg;
	struct wire_event e;
	int rv;

	node_wire_event(&e, r);
	rv = wire_events_add(pg->b, &pg->w, &e);
	if (rv != 0) {
		pg->err = rv;
		return false;
	}
	/* The store counts this record as returned and continues after it:
	 * a page stops only after an event it holds, never before. */
	return pg->w.event_bytes < WIRE_READ_BYTES_MAX;
}

static uint32_t page_limit(uint32_t limit)
{
	if (limit == 0)
		return NODE_READ_LIMIT_DEFAULT;
	if (limit > WIRE_READ_COUNT_MAX)
		return WIRE_READ_COUNT_MAX;
	return limit;
}

/* Reports a failed read: an invalid stream is the client's, anything else
 * the node's (logged). */
static void reply_store_error(struct node_conn *c, uint64_t request_id,
			      const char *what, int rv)
{
	struct node *n = c->node;

	if (rv == STORE_EINVALID_STREAM) {
		reply_error(c, request_id, WIRE_EINVALID,
			    "invalid stream name");
		return;
	}
	log_error("read_failed", "request=%s error=\"%s\"", what,
		  n->store.errmsg);
	reply_error(c, request_id, WIRE_EINTERNAL, store_strerror(rv));
}

/* Reads a checkpoint or a snapshot and encodes the reply to @a now. */
static void serve_state_read(struct node_conn *c, uint64_t request_id,
			     const struct read_args *a)
{
	struct node *n = c->node;
	struct wire_bytes bytes;
	uint64_t value;
	size_t data_len;
	void *data;
	bool found;
	int rv;

	if (a->type == WIRE_CHECKPOINT_GET) {
		rv = store_checkpoint_get(&n->store,
					  (const char *)a->u.cg.name.p,
					  a->u.cg.name.len, &value, &found);
		if (rv != 0) {
			reply_store_error(c, request_id, "checkpoint_get", rv);
			return;
		}
		rv = wire_encode_checkpoint(conn_out(c), request_id, found,
					    found ? value : 0);
		if (rv != 0)
			log_error("reply_failed", "type=CHECKPOINT error=%d",
				  rv);
		conn_flush(c);
		return;
	}
	assert(a->type == WIRE_SNAPSHOT_GET);
	rv = store_snapshot_get(&n->store, (const char *)a->u.sg.stream.p,
				a->u.sg.stream.len, a->u.sg.max_version, &value,
				&data, &data_len);
	if (rv != 0) {
		reply_store_error(c, request_id, "snapshot_get", rv);
		return;
	}
	if (value == 0 || data_len > WIRE_SNAPSHOT_BYTES_MAX) {
		/* Storage never holds more than the maximum; be safe. */
		free(data);
		data = NULL;
		data_len = 0;
		if (value != 0) {
			reply_error(c, request_id, WIRE_EINTERNAL,
				    "stored snapshot over the maximum");
			return;
		}
	}
	bytes.p = data;
	bytes.len = (uint32_t)data_len;
	rv = wire_encode_snapshot(conn_out(c), request_id, value, bytes);
	free(data);
	if (rv != 0) {
		log_error("reply_failed", "type=SNAPSHOT error=%d", rv);
		reply_error(c, request_id, WIRE_EINTERNAL,
			    "cannot encode the snapshot");
		return;
	}
	conn_flush(c);
}

/* Reads the store and encodes the reply to @a now. */
static void serve_read(struct node_conn *c, uint64_t request_id,
		       const struct read_args *a)
{
	struct node *n = c->node;
	struct store_read_info info;
	struct store_head head;
	struct page pg;
	int rv;

	if (conn_out(c) == NULL)
		return; /* the connection is gone: nobody to answer */

	if (a->type == WIRE_HEAD) {
		rv = store_head(&n->store, (const char *)a->u.hd.stream.p,
				a->u.hd.stream.len, &head);
		if (rv != 0) {
			reply_store_error(c, request_id, "head", rv);
			return;
		}
		rv = wire_encode_head_ok(conn_out(c), request_id, head.version,
					 head.last_position);
		if (rv != 0)
			log_error("reply_failed", "type=HEAD_OK error=%d", rv);
		conn_flush(c);
		return;
	}

	if (a->type == WIRE_CHECKPOINT_GET || a->type == WIRE_SNAPSHOT_GET) {
		serve_state_read(c, request_id, a);
		return;
	}

	memset(&pg, 0, sizeof pg);
	pg.b = conn_out(c);
	rv = wire_events_begin(pg.b, request_id, &pg.w);
	if (rv != 0) {
		reply_error(c, request_id, WIRE_EINTERNAL, "out of memory");
		return;
	}
	if (a->type == WIRE_READ_STREAM) {
		const struct wire_read_stream *rs = &a->u.rs;

		rv = store_read_stream(&n->store, (const char *)rs->stream.p,
				       rs->stream.len, rs->from_version,
				       rs->backward, page_limit(rs->limit),
				       page_visit, &pg, &info);
	} else {
		const struct wire_read_all *ra = &a->u.ra;
		struct store_filter f;

		assert(a->type == WIRE_READ_ALL);
		f.stream_prefix = (const char *)ra->stream_prefix.p;
		f.stream_prefix_len = ra->stream_prefix.len;
		f.category = (const char *)ra->category.p;
		f.category_len = ra->category.len;
		f.type = (const char *)ra->type.p;
		f.type_len = ra->type.len;
		rv = store_read_all(
			&n->store, ra->from_position, page_limit(ra->limit),
			NODE_READ_ALL_SCAN_MAX, &f, page_visit, &pg, &info);
	}
	if (rv != 0 || pg.err != 0) {
		/* Drop the partial frame; answer with an error instead. */
		pg.b->len = pg.w.frame_off;
		if (rv != 0) {
			reply_store_error(c, request_id,
					  a->type == WIRE_READ_STREAM
						  ? "read_stream"
						  : "read_all",
					  rv);
		} else {
			log_error("reply_failed", "type=EVENTS error=%d",
				  pg.err);
			reply_error(c, request_id, WIRE_EINTERNAL,
				    "cannot encode the page");
		}
		return;
	}
	wire_events_end(pg.b, &pg.w, info.next, info.end);
	conn_flush(c);
}

/* Decodes a read's body into @a. Returns WIRE_OK or
 * WIRE_DECODE_MALFORMED. */
static int decode_read(uint16_t type, const uint8_t *body, size_t len,
		       struct read_args *a)
{
	int rv;

	memset(a, 0, sizeof *a);
	a->type = type;
	switch (type) {
	case WIRE_READ_STREAM:
		rv = wire_decode_read_stream(body, len, &a->u.rs);
		a->consistency = a->u.rs.consistency;
		break;
	case WIRE_READ_ALL:
		rv = wire_decode_read_all(body, len, &a->u.ra);
		a->consistency = a->u.ra.consistency;
		break;
	case WIRE_CHECKPOINT_GET:
		rv = wire_decode_checkpoint_get(body, len, &a->u.cg);
		a->consistency = a->u.cg.consistency;
		break;
	case WIRE_SNAPSHOT_GET:
		rv = wire_decode_snapshot_get(body, len, &a->u.sg);
		a->consistency = a->u.sg.consistency;
		break;
	default:
		assert(type == WIRE_HEAD);
		rv = wire_decode_head(body, len, &a->u.hd);
		a->consistency = a->u.hd.consistency;
		break;
	}
	return rv;
}

/* ---- parked at-least reads: heap by min_position ---- */

static uint64_t heap_key(const struct node *n, unsigned k)
{
	return n->parked[k]->args.consistency.min_position;
}

static void heap_set(struct node *n, unsigned k, struct node_req *r)
{
	n->parked[k] = r;
	r->heap_index = k;
}

static void heap_up(struct node *n, unsigned k)
{
	struct node_req *r = n->parked[k];
	uint64_t key = r->args.consistency.min_position;

	while (k > 0) {
		unsigned parent = (k - 1) / 2;

		if (heap_key(n, parent) <= key)
			break;
		heap_set(n, k, n->parked[parent]);
		k = parent;
	}
	heap_set(n, k, r);
}

static void heap_down(struct node *n, unsigned k)
{
	struct node_req *r = n->parked[k];
	uint64_t key = r->args.consistency.min_position;

	for (;;) {
		unsigned child = 2 * k + 1;

		if (child >= n->n_parked)
			break;
		if (child + 1 < n->n_parked &&
		    heap_key(n, child + 1) < heap_key(n, child))
			child++;
		if (key <= heap_key(n, child))
			break;
		heap_set(n, k, n->parked[child]);
		k = child;
	}
	heap_set(n, k, r);
}

static void heap_remove(struct node *n, struct node_req *r)
{
	unsigned k = r->heap_index;
	struct node_req *last;

	assert(k < n->n_parked);
	assert(n->parked[k] == r);
	last = n->parked[--n->n_parked];
	if (k == n->n_parked)
		return;
	heap_set(n, k, last);
	heap_down(n, k);
	heap_up(n, last->heap_index);
}

/* Takes @r off the heap and the deadline list. */
static void unpark(struct node *n, struct node_req *r)
{
	assert(r->state == REQ_PARKED);
	heap_remove(n, r);
	if (r->wait_prev != NULL)
		r->wait_prev->wait_next = r->wait_next;
	else
		n->wait_head = r->wait_next;
	if (r->wait_next != NULL)
		r->wait_next->wait_prev = r->wait_prev;
	else
		n->wait_tail = r->wait_prev;
	r->wait_prev = NULL;
	r->wait_next = NULL;
}

static void on_wait_timer(uv_timer_t *t)
{
	struct node *n = t->data;
	uint64_t now = uv_now(n->loop);

	while (n->wait_head != NULL && n->wait_head->deadline_ms <= now) {
		struct node_req *r = n->wait_head;
		char msg[128];

		unpark(n, r);
		snprintf(msg, sizeof msg,
			 "position %" PRIu64
			 " not applied within %u ms (applied: %" PRIu64 ")",
			 r->args.consistency.min_position, n->cfg->read_wait_ms,
			 store_last_position(&n->store));
		reply_error(r->conn, r->request_id, WIRE_ETIMEOUT, msg);
		req_free(r);
	}
	if (n->wait_head != NULL)
		uv_timer_start(t, on_wait_timer,
			       n->wait_head->deadline_ms - now, 0);
}

/* Parks @r until its position is applied. Returns false when the bound of
 * parked reads is reached or memory is short. */
static bool park(struct node *n, struct node_req *r)
{
	if (n->n_parked == NODE_PARKED_READS_MAX)
		return false;
	if (n->n_parked == n->cap_parked) {
		unsigned cap = n->cap_parked > 0 ? 2 * n->cap_parked : 64;
		struct node_req **p;

		if (cap > NODE_PARKED_READS_MAX)
			cap = NODE_PARKED_READS_MAX;
		p = realloc(n->parked, sizeof *p * cap);
		if (p == NULL)
			return false;
		n->parked = p;
		n->cap_parked = cap;
	}
	r->state = REQ_PARKED;
	heap_set(n, n->n_parked++, r);
	heap_up(n, r->heap_index);
	r->deadline_ms = uv_now(n->loop) + n->cfg->read_wait_ms;
	r->wait_next = NULL;
	r->wait_prev = n->wait_tail;
	if (n->wait_tail != NULL)
		n->wait_tail->wait_next = r;
	else
		n->wait_head = r;
	n->wait_tail = r;
	if (n->wait_head == r)
		uv_timer_start(&n->wait_timer, on_wait_timer,
			       n->cfg->read_wait_ms, 0);
	return true;
}

void handlers_applied(struct node *n, uint64_t last_position)
{
	while (n->n_parked > 0 && heap_key(n, 0) <= last_position) {
		struct node_req *r = n->parked[0];

		unpark(n, r);
		serve_read(r->conn, r->request_id, &r->args);
		req_free(r);
	}
	subs_applied(n, last_position);
}

/* ---- linearizable reads ---- */

static void on_barrier(struct consensus_barrier *b, int status)
{
	struct node_req *r = CONTAINER_OF(b, struct node_req, barrier);
	struct node_conn *c = r->conn;

	assert(r->state == REQ_BARRIER);
	switch (status) {
	case 0:
		serve_read(c, r->request_id, &r->args);
		break;
	case CONSENSUS_ESHUTDOWN:
		reply_error(c, r->request_id, WIRE_EUNAVAILABLE,
			    "node shutting down");
		break;
	default:
		/* Leadership was lost: a read is safe to send elsewhere. */
		reply_not_leader(c, r->request_id);
		break;
	}
	req_free(r);
}

/* Handles READ_STREAM, READ_ALL and HEAD. */
static int handle_read(struct node_conn *c, const struct wire_header *h,
		       const uint8_t *body)
{
	struct node *n = c->node;
	struct read_args a;
	struct node_req *r;
	int rv;

	if (decode_read(h->type, body, h->body_len, &a) != WIRE_OK)
		return WIRE_EMALFORMED;
	if ((h->type == WIRE_READ_STREAM &&
	     !store_stream_name_valid((const char *)a.u.rs.stream.p,
				      a.u.rs.stream.len)) ||
	    (h->type == WIRE_HEAD &&
	     !store_stream_name_valid((const char *)a.u.hd.stream.p,
				      a.u.hd.stream.len))) {
		reply_error(c, h->request_id, WIRE_EINVALID,
			    "invalid stream name");
		return 0;
	}
	if ((h->type == WIRE_CHECKPOINT_GET &&
	     !store_stream_name_valid((const char *)a.u.cg.name.p,
				      a.u.cg.name.len)) ||
	    (h->type == WIRE_SNAPSHOT_GET &&
	     !store_stream_name_valid((const char *)a.u.sg.stream.p,
				      a.u.sg.stream.len))) {
		reply_error(c, h->request_id, WIRE_EINVALID,
			    h->type == WIRE_CHECKPOINT_GET
				    ? "invalid checkpoint name"
				    : "invalid stream name");
		return 0;
	}

	switch (a.consistency.kind) {
	case WIRE_CONSISTENCY_ANY:
		serve_read(c, h->request_id, &a);
		return 0;
	case WIRE_CONSISTENCY_AT_LEAST:
		if (store_last_position(&n->store) >=
		    a.consistency.min_position) {
			serve_read(c, h->request_id, &a);
			return 0;
		}
		if (n->cfg->read_wait_ms == 0) {
			reply_error(c, h->request_id, WIRE_ETIMEOUT,
				    "position not applied (no wait "
				    "configured)");
			return 0;
		}
		if (n->n_parked == NODE_PARKED_READS_MAX) {
			reply_error(c, h->request_id, WIRE_EBUSY,
				    "too many reads waiting for a position");
			return 0;
		}
		break;
	case WIRE_CONSISTENCY_LEADER:
		break;
	default:
		reply_error(c, h->request_id, WIRE_EINVALID,
			    "unknown consistency");
		return 0;
	}

	/* The read waits: it keeps its own copy of the body. */
	r = req_new(c, h->request_id, body, h->body_len);
	if (r == NULL) {
		reply_error(c, h->request_id, WIRE_EINTERNAL, "out of memory");
		return 0;
	}
	rv = decode_read(h->type, r->body, r->body_len, &r->args);
	assert(rv == WIRE_OK);

	if (a.consistency.kind == WIRE_CONSISTENCY_AT_LEAST) {
		if (!park(n, r)) {
			reply_error(c, h->request_id, WIRE_EBUSY,
				    "too many reads waiting for a position");
			req_free(r);
		}
		return 0;
	}

	r->state = REQ_BARRIER;
	r->barrier.data = r;
	rv = consensus_barrier(&n->cons, &r->barrier, on_barrier);
	switch (rv) {
	case 0:
		return 0;
	case CONSENSUS_ENOT_LEADER:
		reply_not_leader(c, h->request_id);
		break;
	case CONSENSUS_ESHUTDOWN:
		reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
			    "node shutting down");
		break;
	case CONSENSUS_EUNAVAILABLE:
		reply_error(c, h->request_id, WIRE_EUNAVAILABLE, "no leader");
		break;
	default:
		log_error("barrier_failed", "error=\"%s\"", n->cons.errmsg);
		reply_error(c, h->request_id, WIRE_EINTERNAL,
			    consensus_strerror(rv));
		break;
	}
	req_free(r);
	return 0;
}

/* ------------------------------------------------------------------------
 * Appends
 * ------------------------------------------------------------------------ */

/* The wire code for a store validation error: limits are ETOO_LARGE. */
static uint32_t validation_code(int store_rv)
{
	switch (store_rv) {
	case STORE_EDATA_TOO_LARGE:
	case STORE_EMETADATA_TOO_LARGE:
	case STORE_ETOO_MANY_EVENTS:
	case STORE_ETXN_TOO_LARGE:
	case STORE_EENTRY_TOO_LARGE:
		return WIRE_ETOO_LARGE;
	default:
		return WIRE_EINVALID;
	}
}

/* Counts an append's outcome in the node's metrics. */
static void count_append(const struct node_req *r, int status)
{
	static const enum metrics_outcome by_outcome[] = {
		[STORE_COMMITTED] = METRICS_COMMITTED,
		[STORE_DUPLICATE] = METRICS_DUPLICATE,
		[STORE_WRONG_EXPECTED_VERSION] = METRICS_CONFLICT,
		[STORE_STALE_SEQUENCE] = METRICS_STALE,
		[STORE_REJECTED] = METRICS_ERROR,
	};
	enum metrics_outcome o = METRICS_ERROR;

	if (status == 0 &&
	    r->append.outcome < sizeof by_outcome / sizeof by_outcome[0])
		o = by_outcome[r->append.outcome];
	metrics_append(METRICS_BINARY, o, (uv_hrtime() - r->start_ns) / 1000);
}

/* Encodes the reply to an append whose outcome fields are set. */
static void reply_append_outcome(struct node_req *r)
{
	struct consensus_append *ca = &r->append;
	struct node_conn *c = r->conn;
	struct wire_buf *b;
	struct wire_err e;
	char msg[STORE_STREAM_NAME_MAX + 128];
	int rv;

	memset(&e, 0, sizeof e);
	switch (ca->outcome) {
	case STORE_COMMITTED:
	case STORE_DUPLICATE:
		b = conn_out(c);
		if (b == NULL)
			return;
		if (r->op.kind != 0) {
			rv = wire_encode_state_ok(
				b, r->request_id,
				ca->outcome == STORE_DUPLICATE);
			if (rv != 0)
				log_error("reply_failed",
					  "type=STATE_OK error=%d", rv);
			conn_flush(c);
			return;
		}
		for (uint32_t k = 0; k < r->wa.n_parts; k++) {
			r->wire_results[k].first_version =
				r->results[k].first_version;
			r->wire_results[k].last_version =
				r->results[k].last_version;
			r->wire_results[k].first_position =
				r->results[k].first_position;
			r->wire_results[k].last_position =
				r->results[k].last_position;
		}
		rv = wire_encode_append_ok(b, r->request_id,
					   ca->outcome == STORE_DUPLICATE,
					   r->wa.n_parts, r->wire_results);
		if (rv != 0)
			log_error("reply_failed", "type=APPEND_OK error=%d",
				  rv);
		conn_flush(c);
		return;
	case STORE_WRONG_EXPECTED_VERSION:
		e.code = WIRE_EWRONG_EXPECTED_VERSION;
		e.part = ca->conflict_part;
		e.actual_version = ca->actual_version;
		if (r->op.kind == STORE_OP_SNAPSHOT_PUT) {
			snprintf(msg, sizeof msg,
				 "snapshot version past stream '%.*s', which "
				 "is at version %" PRIu64,
				 (int)r->op.name_len, r->op.name,
				 ca->actual_version);
		} else if (r->op.kind != 0) {
			snprintf(msg, sizeof msg,
				 "checkpoint '%.*s' is %" PRIu64
				 " (0: it does not exist)",
				 (int)r->op.name_len, r->op.name,
				 ca->actual_version);
		} else if (ca->conflict_part < r->wa.n_parts) {
			const struct store_part *p =
				&r->parts[ca->conflict_part];

			snprintf(msg, sizeof msg,
				 "stream '%.*s' is at version %" PRIu64,
				 (int)p->stream_len, p->stream,
				 ca->actual_version);
		} else {
			snprintf(msg, sizeof msg,
				 "stream is at version %" PRIu64,
				 ca->actual_version);
		}
		e.message = bytes_of(msg);
		break;
	case STORE_STALE_SEQUENCE:
		e.code = WIRE_ESTALE_SEQUENCE;
		e.actual_version = ca->actual_version;
		snprintf(msg, sizeof msg,
			 "client sequence %" PRIu64
			 " is below the writer's high-water mark %" PRIu64,
			 r->append.txn.client_seq, ca->actual_version);
		e.message = bytes_of(msg);
		break;
	case STORE_REJECTED:
		e.code = WIRE_EINVALID;
		e.message = bytes_of(store_strerror(ca->reject_code));
		break;
	default:
		log_error("append_failed", "error=\"unknown outcome %u\"",
			  (unsigned)ca->outcome);
		e.code = WIRE_EINTERNAL;
		e.message = bytes_of("unknown outcome");
		break;
	}
	reply_err(c, r->request_id, &e);
}

/* Replies to a failed consensus_append (or its callback's failure). */
static void reply_append_failure(struct node_req *r, int status)
{
	struct node_conn *c = r->conn;
	struct node *n = c->node;

	switch (status) {
	case CONSENSUS_ENOT_LEADER:
		reply_not_leader(c, r->request_id);
		break;
	case CONSENSUS_EUNAVAILABLE:
		reply_error(c, r->request_id, WIRE_EUNAVAILABLE, "no leader");
		break;
	case CONSENSUS_EINVALID:
		reply_error(c, r->request_id, WIRE_EINVALID, n->cons.errmsg);
		break;
	case CONSENSUS_EBUSY:
		reply_error(c, r->request_id, WIRE_EBUSY, "pipeline full");
		break;
	case CONSENSUS_EUNKNOWN_OUTCOME:
	case CONSENSUS_ESHUTDOWN:
		reply_error(c, r->request_id, WIRE_EUNKNOWN_OUTCOME,
			    consensus_strerror(status));
		break;
	default:
		log_error("append_failed", "error=\"%s\"",
			  consensus_strerror(status));
		reply_error(c, r->request_id, WIRE_EINTERNAL,
			    consensus_strerror(status));
		break;
	}
}

static void on_append(struct consensus_append *ca, int status)
{
	struct node_req *r = CONTAINER_OF(ca, struct node_req, append);

	assert(r->state == REQ_SUBMITTED);
	count_append(r, status);
	if (status == 0)
		reply_append_outcome(r);
	else
		reply_append_failure(r, status);
	req_free(r);
}

/* Builds r->append.txn from the decoded r->wa. Returns 0, or a WIRE_E*
 * code with @msg set. */
static uint32_t build_txn(struct node_req *r, char *msg, size_t msg_len)
{
	const struct wire_append *wa = &r->wa;
	struct store_txn *t = &r->append.txn;
	size_t n_events = 0;
	size_t k = 0;

	for (uint32_t i = 0; i < wa->n_parts; i++) {
		n_events += wa->parts[i].n_events;
		if (n_events > STORE_TXN_EVENTS_MAX) {
			snprintf(msg, msg_len,
				 "more than %d events in one append",
				 STORE_TXN_EVENTS_MAX);
			return WIRE_ETOO_LARGE;
		}
	}
	r->parts = calloc(wa->n_parts, sizeof *r->parts);
	r->results = calloc(wa->n_parts, sizeof *r->results);
	r->wire_results = calloc(wa->n_parts, sizeof *r->wire_results);
	r->events = calloc(n_events > 0 ? n_events : 1, sizeof *r->events);
	if (r->parts == NULL || r->results == NULL || r->wire_results == NULL ||
	    r->events == NULL) {
		snprintf(msg, msg_len, "out of memory");
		return WIRE_EINTERNAL;
	}
	for (uint32_t i = 0; i < wa->n_parts; i++) {
		const struct wire_part *wp = &wa->parts[i];
		struct store_part *sp = &r->parts[i];

		if (!store_stream_name_valid((const char *)wp->stream.p,
					     wp->stream.len)) {
			snprintf(msg, msg_len, "part %u: invalid stream name",
				 i);
			return WIRE_EINVALID;
		}
		sp->stream = (const char *)wp->stream.p;
		sp->stream_len = wp->stream.len;
		sp->expect.kind = wp->expect_kind;
		sp->expect.version = wp->expect_version;
		sp->n_events = wp->n_events;
		sp->events = &r->events[k];
		for (uint32_t j = 0; j < wp->n_events; j++, k++) {
			const struct wire_event_in *we = &wp->events[j];
			struct store_event *se = &r->events[k];

			memcpy(se->id, we->id, sizeof se->id);
			se->type = (const char *)we->type.p;
			se->type_len = we->type.len;
			se->schema_version = we->schema_version;
			se->event_time_us = we->event_time_us;
			se->data = we->data.p;
			se->data_len = we->data.len;
			se->metadata = we->metadata.p;
			se->metadata_len = we->metadata.len;
		}
	}
	t->commit_time_us = 0; /* consensus sets it */
	t->has_client = wa->has_client;
	memcpy(t->client_id, wa->client_id, sizeof t->client_id);
	t->client_seq = wa->client_seq;
	t->n_parts = wa->n_parts;
	t->parts = r->parts;
	r->append.parts = r->results;
	r->append.data = r;
	return 0;
}

static int submit_append(struct node_conn *c, const struct wire_header *h,
			 struct node_req *r);

static int handle_append(struct node_conn *c, const struct wire_header *h,
			 const uint8_t *body)
{
	char msg[STORE_ERRMSG_SIZE];
	struct node_req *r;
	uint32_t code;
	int rv;

	r = req_new(c, h->request_id, body, h->body_len);
	if (r == NULL) {
		reply_error(c, h->request_id, WIRE_EINTERNAL, "out of memory");
		return 0;
	}
	rv = wire_decode_append(r->body, r->body_len, &r->wa);
	if (rv == WIRE_DECODE_MALFORMED) {
		req_free(r);
		return WIRE_EMALFORMED;
	}
	if (rv != 0) {
		reply_error(c, h->request_id, WIRE_EINTERNAL, "out of memory");
		req_free(r);
		return 0;
	}
	code = build_txn(r, msg, sizeof msg);
	if (code == 0) {
		/* The decoded arrays count against the connection too. */
		size_t n_events = 0;

		for (uint32_t k = 0; k < r->wa.n_parts; k++)
			n_events += r->wa.parts[k].n_events;
		r->bytes += conn_request_grow(
			c,
			r->wa.n_parts * (sizeof *r->wa.parts +
					 sizeof *r->parts + sizeof *r->results +
					 sizeof *r->wire_results) +
				n_events * (sizeof *r->wa.events_ +
					    sizeof *r->events));
		rv = store_txn_validate(&r->append.txn, msg);
		if (rv != 0)
			code = validation_code(rv);
	}
	if (code != 0) {
		reply_error(c, h->request_id, code, msg);
		req_free(r);
		return 0;
	}

	return submit_append(c, h, r);
}

/* Hands the transaction of @r (built and validated) to consensus and
 * answers at once when consensus does. */
static int submit_append(struct node_conn *c, const struct wire_header *h,
			 struct node_req *r)
{
	struct node *n = c->node;
	int rv;

	r->state = REQ_SUBMITTED;
	r->start_ns = uv_hrtime();
	if (disk_low(n) && consensus_is_leader(&n->cons)) {
		/* Free space below the reserve: the guard is handing
		 * leadership over; a follower redirects as usual. */
		count_append(r, CONSENSUS_EUNAVAILABLE);
		reply_error(c, h->request_id, WIRE_ENO_SPACE,
			    "disk full on this node: free space below the "
			    "reserve; retry on the new leader");
		req_free(r);
		return 0;
	}
	rv = consensus_append(&n->cons, &r->append, on_append);
	switch (rv) {
	case 0:
		server_check_pipeline(n);
		return 0;
	case CONSENSUS_EDONE:
		count_append(r, 0);
		reply_append_outcome(r);
		break;
	case CONSENSUS_ESHUTDOWN:
		/* Nothing was proposed: unlike a callback's ESHUTDOWN, the
		 * outcome is known. */
		reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
			    "node shutting down");
		break;
	default:
		count_append(r, rv);
		reply_append_failure(r, rv);
		break;
	}
	req_free(r);
	return 0;
}

/* Handles CHECKPOINT_SET and SNAPSHOT_PUT: one transaction of one state
 * operation, submitted like an append. */
static int handle_state_write(struct node_conn *c, const struct wire_header *h,
			      const uint8_t *body)
{
	char msg[STORE_ERRMSG_SIZE];
	struct wire_checkpoint_set cs;
	struct wire_snapshot_put sp;
	struct store_txn *t;
	struct node_req *r;
	int rv;

	r = req_new(c, h->request_id, body, h->body_len);
	if (r == NULL) {
		reply_error(c, h->request_id, WIRE_EINTERNAL, "out of memory");
		return 0;
	}
	t = &r->append.txn;
	if (h->type == WIRE_CHECKPOINT_SET) {
		if (wire_decode_checkpoint_set(r->body, r->body_len, &cs) !=
		    WIRE_OK) {
			req_free(r);
			return WIRE_EMALFORMED;
		}
		r->op.kind = cs.expect_kind == WIRE_CP_EXPECT_ANY
				     ? STORE_OP_CHECKPOINT_SET
				     : STORE_OP_CHECKPOINT_CAS;
		r->op.name = (const char *)cs.name.p;
		r->op.name_len = cs.name.len;
		r->op.value = cs.value;
		r->op.expected = cs.expected; /* 0 when absent or any */
		t->has_client = cs.has_client;
		memcpy(t->client_id, cs.client_id, sizeof t->client_id);
		t->client_seq = cs.client_seq;
	} else {
		assert(h->type == WIRE_SNAPSHOT_PUT);
		if (wire_decode_snapshot_put(r->body, r->body_len, &sp) !=
		    WIRE_OK) {
			req_free(r);
			return WIRE_EMALFORMED;
		}
		r->op.kind = STORE_OP_SNAPSHOT_PUT;
		r->op.name = (const char *)sp.stream.p;
		r->op.name_len = sp.stream.len;
		r->op.value = sp.version;
		r->op.data = sp.data.p;
		r->op.data_len = sp.data.len;
		t->has_client = sp.has_client;
		memcpy(t->client_id, sp.client_id, sizeof t->client_id);
		t->client_seq = sp.client_seq;
	}
	if (!store_stream_name_valid(r->op.name, r->op.name_len)) {
		reply_error(c, h->request_id, WIRE_EINVALID,
			    r->op.kind == STORE_OP_SNAPSHOT_PUT
				    ? "invalid stream name"
				    : "invalid checkpoint name");
		req_free(r);
		return 0;
	}
	t->commit_time_us = 0; /* consensus sets it */
	t->n_parts = 0;
	t->parts = NULL;
	t->n_ops = 1;
	t->ops = &r->op;
	r->append.parts = NULL;
	r->append.data = r;
	rv = store_txn_validate(t, msg);
	if (rv != 0) {
		reply_error(c, h->request_id,
			    rv == STORE_ESNAPSHOT_TOO_LARGE
				    ? WIRE_ETOO_LARGE
				    : validation_code(rv),
			    msg);
		req_free(r);
		return 0;
	}
	return submit_append(c, h, r);
}

/* ------------------------------------------------------------------------
 * Status
 * ------------------------------------------------------------------------ */

static void handle_status(struct node_conn *c, uint64_t request_id)
{
	struct node *n = c->node;
	struct consensus_status st;
	struct wire_status ws;
	struct wire_buf *b = conn_out(c);
	int rv;

	if (b == NULL)
		return;
	consensus_status(&n->cons, &st);
	memset(&ws, 0, sizeof ws);
	/* Known also once consensus has closed (a stop, a restart into a
	 * state transfer), when st is all zero. */
	ws.node_id = n->cfg->id;
	ws.role = st.role;
	ws.term = st.term;
	ws.commit_index = st.commit_index;
	ws.applied_index = st.applied_index;
	ws.last_position = st.last_position;
	ws.leader_id = st.leader_id;
	ws.leader_client_address = bytes_of(st.leader_client_address);
	ws.n_members = st.n_members < WIRE_MEMBERS_MAX ? st.n_members
						       : WIRE_MEMBERS_MAX;
	for (unsigned k = 0; k < ws.n_members; k++) {
		const struct consensus_member *m = &st.members[k];

		ws.members[k].id = m->id;
		ws.members[k].role = m->role;
		ws.members[k].raft_address = bytes_of(m->raft_address);
		ws.members[k].client_address = bytes_of(m->client_address);
		ws.members[k].http_address = bytes_of(m->http_address);
	}
	rv = wire_encode_status_ok(b, request_id, &ws);
	if (rv != 0) {
		log_error("reply_failed", "type=STATUS_OK error=%d", rv);
		reply_error(c, request_id, WIRE_EINTERNAL,
			    "cannot encode the status");
		return;
	}
	conn_flush(c);
}

/* ------------------------------------------------------------------------
 * Dispatch and lifetime
 * ------------------------------------------------------------------------ */

int handlers_dispatch(struct node_conn *c, const struct wire_header *h,
		      const uint8_t *body)
{
	char msg[64];

	switch (h->type) {
	case WIRE_APPEND:
		return handle_append(c, h, body);
	case WIRE_CHECKPOINT_SET:
	case WIRE_SNAPSHOT_PUT:
		return handle_state_write(c, h, body);
	case WIRE_READ_STREAM:
	case WIRE_READ_ALL:
	case WIRE_HEAD:
	case WIRE_CHECKPOINT_GET:
	case WIRE_SNAPSHOT_GET:
		return handle_read(c, h, body);
	case WIRE_STATUS:
		if (wire_decode_status(body, h->body_len) != WIRE_OK)
			return WIRE_EMALFORMED;
		handle_status(c, h->request_id);
		return 0;
	case WIRE_SUBSCRIBE:
	case WIRE_CREDIT:
	case WIRE_UNSUBSCRIBE:
		return subs_handle(c, h, body);
	case WIRE_STATE_BEGIN:
	case WIRE_STATE_CHUNK:
	case WIRE_STATE_END:
		return state_send_handle(c, h, body);
	case WIRE_MEMBER_CHANGE:
	case WIRE_LEADER_TRANSFER:
		return admin_handle(c, h, body);
	default:
		snprintf(msg, sizeof msg, "unknown message type 0x%04x",
			 (unsigned)h->type);
		log_debug("unknown_type", "peer=%s type=0x%04x", c->peer,
			  (unsigned)h->type);
		reply_error(c, h->request_id, WIRE_EUNKNOWN_TYPE, msg);
		return 0;
	}
}

int handlers_init(struct node *n)
{
	int rv = uv_timer_init(n->loop, &n->wait_timer);

	if (rv != 0)
		return rv;
	n->wait_timer.data = n;
	return 0;
}

void handlers_close(struct node *n)
{
	while (n->wait_head != NULL) {
		struct node_req *r = n->wait_head;

		unpark(n, r);
		reply_error(r->conn, r->request_id, WIRE_EUNAVAILABLE,
			    "node shutting down");
		req_free(r);
	}
	assert(n->n_parked == 0);
	free(n->parked);
	n->parked = NULL;
	n->cap_parked = 0;
	uv_close((uv_handle_t *)&n->wait_timer, NULL);
}
