/* libcairn's public calls: opening and closing a client, its I/O thread,
 * and the functions of cairn.h that submit requests. A call encodes its
 * request frame on the caller's thread (so an asynchronous call has copied
 * everything it needs when it returns), queues it under the client's mutex
 * and wakes the loop with uv_async_send; a synchronous call then waits on
 * its request's condition variable, which the loop signals on completion
 * (the loop enforces the deadline; the caller gives up on its own only
 * CLIENT_SYNC_SLACK_MS later, should the loop be blocked).
 *
 * Keyless appends get the client's id and its next sequence while the
 * mutex is held, in the same critical section that queues them, so the
 * loop sends them in sequence order. The first sequence is the wall clock
 * in microseconds at open: a writer id reused by a later process (set in
 * cairn_options.client_id) starts above anything an earlier one used, as
 * long as no process averaged more than a million appends per second. */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* Smallest encoding of one event in an APPEND body (id, type and blob
 * lengths, schema version, event time): bounds the events a call may pass
 * before anything is allocated for them. */
#define EVENT_IN_MIN_BYTES (16 + 2 + 2 + 8 + 4 + 4)

/* ------------------------------------------------------------------------
 * The I/O thread
 * ------------------------------------------------------------------------ */

static void stop(struct cairn_client *c, struct req *queued)
{
	struct req *r;
	struct conn *conn;
	size_t i;

	c->stopping = true;
	while ((r = queued) != NULL) {
		queued = r->queue_next;
		client_set_error(&r->err, CAIRN_ECLOSED, "%s: client closed",
				 r->op);
		req_finish(r, CAIRN_ECLOSED);
	}
	/* Every request the loop holds is in the map. */
	for (i = 0; i < c->map_cap; i++) {
		while ((r = c->map[i]) != NULL) {
			client_set_error(&r->err, CAIRN_ECLOSED,
					 "%s: client closed", r->op);
			req_finish(r, CAIRN_ECLOSED); /* leaves the map */
		}
	}
	while ((conn = c->conns) != NULL)
		conn_close(conn, CAIRN_ECLOSED, "client closed", false);
	uv_close((uv_handle_t *)&c->wakeup, NULL);
}

static void on_wakeup(uv_async_t *a)
{
	struct cairn_client *c = a->data;
	struct req *queued;
	bool closing;

	if (c->stopping)
		return;
	uv_mutex_lock(&c->mu);
	queued = c->queue_head;
	c->queue_head = NULL;
	c->queue_tail = NULL;
	closing = c->closing;
	uv_mutex_unlock(&c->mu);

	if (closing) {
		stop(c, queued);
		return;
	}
	uv_update_time(&c->loop);
	while (queued != NULL) {
		struct req *r = queued;

		queued = r->queue_next;
		r->queue_next = NULL;
		req_start(r);
	}
	sub_wakeup(c);
}

static void run(void *arg)
{
	struct cairn_client *c = arg;
	sigset_t pipe;

	/* A write to a connection the server closed raises SIGPIPE in the
	 * thread that wrote, and its default action kills the whole process
	 * the library lives in. Blocked here, the write fails with EPIPE
	 * instead, handled as a lost connection; the application's own
	 * threads and handlers are left alone. */
	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
}

static bool on_loop_thread(struct cairn_client *c)
{
	uv_thread_t self = uv_thread_self();

	return uv_thread_equal(&self, &c->thread) != 0;
}

/* ------------------------------------------------------------------------
 * Open, close
 * ------------------------------------------------------------------------ */

int cairn_open(const char *seeds, const struct cairn_options *opts,
	       cairn_client **out, struct cairn_error *err)
{
	static const uint8_t zero[16];
	struct cairn_client *c;
	char why[256];
	int rv;

	if (out == NULL || seeds == NULL) {
		client_set_error(err, CAIRN_EARG, "open: %s is NULL",
				 out == NULL ? "out" : "seeds");
		return CAIRN_EARG;
	}
	*out = NULL;
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		rv = CAIRN_ENOMEM;
		client_set_error(err, rv, "open: out of memory");
		goto err;
	}
	rv = client_seeds_parse(c, seeds, why);
	if (rv != 0) {
		client_set_error(err, rv, "open: seeds: %s", why);
		goto err_after_alloc;
	}
	c->deadline_ms = CLIENT_DEADLINE_MS_DEFAULT;
	c->connect_timeout_ms = CLIENT_CONNECT_TIMEOUT_MS_DEFAULT;
	if (opts != NULL) {
		if (opts->deadline_ms > 0)
			c->deadline_ms = opts->deadline_ms;
		if (opts->connect_timeout_ms > 0)
			c->connect_timeout_ms = opts->connect_timeout_ms;
		c->single_node = opts->single_node;
		memcpy(c->client_id, opts->client_id, 16);
	}
	if (memcmp(c->client_id, zero, 16) == 0)
		cairn_uuid(c->client_id);
	c->next_seq = client_now_us();
	c->next_id = 1;
	c->map_cap = 64;
	c->map = calloc(c->map_cap, sizeof *c->map);
	if (c->map == NULL) {
		rv = CAIRN_ENOMEM;
		client_set_error(err, rv, "open: out of memory");
		goto err_after_alloc;
	}

	rv = uv_mutex_init(&c->mu);
	if (rv != 0)
		goto err_uv_after_map;
	rv = uv_cond_init(&c->callers_cond);
	if (rv != 0)
		goto err_uv_after_mutex;
	rv = uv_loop_init(&c->loop);
	if (rv != 0)
		goto err_uv_after_cond;
	rv = uv_async_init(&c->loop, &c->wakeup, on_wakeup);
	if (rv != 0)
		goto err_uv_after_loop;
	c->wakeup.data = c;
	rv = uv_thread_create(&c->thread, run, c);
	if (rv != 0)
		goto err_uv_after_async;
	*out = c;
	return 0;

err_uv_after_async:
	uv_close((uv_handle_t *)&c->wakeup, NULL);
	uv_run(&c->loop, UV_RUN_DEFAULT);
err_uv_after_loop:
	uv_loop_close(&c->loop);
err_uv_after_cond:
	uv_cond_destroy(&c->callers_cond);
err_uv_after_mutex:
	uv_mutex_destroy(&c->mu);
err_uv_after_map:
	client_set_error(err, CAIRN_ENOMEM, "open: %s", uv_strerror(rv));
	rv = CAIRN_ENOMEM;
	free(c->map);
err_after_alloc:
	free(c);
err:
	assert(rv != 0);
	return rv;
}

void cairn_close(cairn_client *c)
{
	int rv;

	if (c == NULL)
		return;
	assert(!on_loop_thread(c));
	uv_mutex_lock(&c->mu);
	assert(!c->closing);
	c->closing = true;
	uv_mutex_unlock(&c->mu);
	uv_async_send(&c->wakeup);
	uv_thread_join(&c->thread);

	/* Callers woken with CAIRN_ECLOSED may still be on their way out. */
	uv_mutex_lock(&c->mu);
	while (c->callers > 0)
		uv_cond_wait(&c->callers_cond, &c->mu);
	uv_mutex_unlock(&c->mu);

	sub_free_all(c);
	assert(c->queue_head == NULL);
	assert(c->map_n == 0);
	assert(c->conns == NULL);
	rv = uv_loop_close(&c->loop);
	assert(rv == 0);
	(void)rv;
	uv_cond_destroy(&c->callers_cond);
	uv_mutex_destroy(&c->mu);
	free(c->map);
	free(c);
}

void cairn_client_id(cairn_client *c, uint8_t id[16])
{
	memcpy(id, c->client_id, 16);
}

/* ------------------------------------------------------------------------
 * Submission
 * ------------------------------------------------------------------------ */

static struct req *req_new(struct cairn_client *c, enum req_kind kind,
			   const char *op, bool sync)
{
	struct req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	if (sync && uv_cond_init(&r->cond) != 0) {
		free(r);
		return NULL;
	}
	r->c = c;
	r->kind = kind;
	r->state = REQ_QUEUED;
	r->op = op;
	r->sync = sync;
	r->refs = sync ? 2 : 1;
	wire_buf_init(&r->frame);
	/* Seeds are written at open and never change afterwards: reading
	 * the first one here, off the loop, is safe. */
	if (c->single_node) {
		r->route = ROUTE_FIXED;
		snprintf(r->fixed, sizeof r->fixed, "%s", c->addrs[0]);
	} else {
		r->route = ROUTE_CURRENT;
	}
	r->follow_redirects = !c->single_node;
	r->retry = true;
	r->deadline_ns = uv_hrtime() + (uint64_t)c->deadline_ms * 1000000u;
	return r;
}

/* What a submission encodes, by kind. */
struct encode_args {
	const struct wire_append *append;
	const struct wire_read_stream *read_stream;
	const struct wire_read_all *read_all;
	const struct wire_head *head;
	const struct wire_checkpoint_get *checkpoint_get;
	struct wire_checkpoint_set *checkpoint_set;
	struct wire_snapshot_put *snapshot_put;
	const struct wire_snapshot_get *snapshot_get;
	bool assign_key; /* keyless write: take the client's next seq */
};

static int encode(struct req *r, const struct encode_args *a)
{
	int rv;

	switch (r->kind) {
	case REQ_APPEND:
		rv = wire_encode_append(&r->frame, r->id, a->append);
		break;
	case REQ_READ_STREAM:
		rv = wire_encode_read_stream(&r->frame, r->id, a->read_stream);
		break;
	case REQ_READ_ALL:
		rv = wire_encode_read_all(&r->frame, r->id, a->read_all);
		break;
	case REQ_HEAD:
		rv = wire_encode_head(&r->frame, r->id, a->head);
		break;
	case REQ_STATUS:
		rv = wire_encode_status(&r->frame, r->id);
		break;
	case REQ_CHECKPOINT_GET:
		rv = wire_encode_checkpoint_get(&r->frame, r->id,
						a->checkpoint_get);
		break;
	case REQ_CHECKPOINT_SET:
		rv = wire_encode_checkpoint_set(&r->frame, r->id,
						a->checkpoint_set);
		break;
	case REQ_SNAPSHOT_PUT:
		rv = wire_encode_snapshot_put(&r->frame, r->id,
					      a->snapshot_put);
		break;
	case REQ_SNAPSHOT_GET:
		rv = wire_encode_snapshot_get(&r->frame, r->id,
					      a->snapshot_get);
		break;
	default:
		assert(false);
		return CAIRN_EARG;
	}
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

/* Encodes @r and queues it for the loop. On error @r is untouched by
 * anyone else and the caller frees it. */
static int submit(struct cairn_client *c, struct req *r,
		  struct wire_append *append, const struct encode_args *a,
		  struct cairn_error *err)
{
	int rv;

	uv_mutex_lock(&c->mu);
	if (c->closing) {
		rv = CAIRN_ECLOSED;
		client_set_error(err, rv, "%s: client closed", r->op);
		goto err_after_lock;
	}
	if (c->n_requests >= CLIENT_REQUESTS_MAX) {
		rv = CAIRN_EBUSY;
		client_set_error(err, rv,
				 "%s: %d requests already in flight on this "
				 "client",
				 r->op, CLIENT_REQUESTS_MAX);
		goto err_after_lock;
	}
	r->id = c->next_id++;
	if (a->assign_key) {
		if (a->checkpoint_set != NULL)
			a->checkpoint_set->client_seq = c->next_seq++;
		else if (a->snapshot_put != NULL)
			a->snapshot_put->client_seq = c->next_seq++;
		else {
			assert(append != NULL);
			append->client_seq = c->next_seq++;
		}
	}
	rv = encode(r, a);
	if (rv != 0) {
		client_set_error(
			err, rv, "%s: %s", r->op,
			rv == CAIRN_ETOO_LARGE ? "request over a protocol limit"
			: rv == CAIRN_EINVALID
				? "invalid request (an empty part, an "
				  "unknown expected-version kind or a zero "
				  "version)"
				: "out of memory");
		goto err_after_lock;
	}
	/* Counted until the caller is out of the client: cairn_close waits
	 * for it before freeing what uv_async_send below touches. */
	c->callers++;
	c->n_requests++;
	if (c->queue_tail != NULL)
		c->queue_tail->queue_next = r;
	else
		c->queue_head = r;
	c->queue_tail = r;
	uv_mutex_unlock(&c->mu);
	uv_async_send(&c->wakeup);
	return 0;

err_after_lock:
	uv_mutex_unlock(&c->mu);
	return rv;
}

/* Waits for a synchronous request. Returns its status; the caller copies
 * its outcome out (only when done) and then calls finish_sync. */
static int wait_sync(struct cairn_client *c, struct req *r, bool *done)
{
	uint64_t until = r->deadline_ns + CLIENT_SYNC_SLACK_MS * 1000000ull;

	uv_mutex_lock(&c->mu);
	while (!r->done) {
		uint64_t now = uv_hrtime();

		if (now >= until)
			break;
		uv_cond_timedwait(&r->cond, &c->mu, until - now);
	}
	*done = r->done;
	uv_mutex_unlock(&c->mu);
	return *done ? r->status : CAIRN_ETIMEOUT;
}

/* The caller leaves the client (submit counted it in). */
static void leave(struct cairn_client *c)
{
	uv_mutex_lock(&c->mu);
	assert(c->callers > 0);
	if (--c->callers == 0 && c->closing)
		uv_cond_broadcast(&c->callers_cond);
	uv_mutex_unlock(&c->mu);
}

static void finish_sync(struct cairn_client *c, struct req *r)
{
	req_release(r);
	leave(c);
}

/* Waits for a submitted synchronous request and copies its error out. On
 * success the caller copies the outcome from @r; either way it then calls
 * finish_sync. */
static int await_sync(struct cairn_client *c, struct req *r,
		      struct cairn_error *err)
{
	bool done;
	int rv;

	rv = wait_sync(c, r, &done);
	if (!done) {
		client_set_error(err, CAIRN_ETIMEOUT,
				 "%s: deadline of %u ms exceeded (the client's "
				 "I/O thread did not answer)",
				 r->op, c->deadline_ms);
	} else if (rv != 0 && err != NULL) {
		*err = r->err;
	} else if (rv == 0 && err != NULL) {
		memset(err, 0, sizeof *err);
	}
	return rv;
}

static int check_sync_allowed(struct cairn_client *c, const char *op,
			      struct cairn_error *err)
{
	if (c == NULL) {
		client_set_error(err, CAIRN_EARG, "%s: client is NULL", op);
		return CAIRN_EARG;
	}
	if (on_loop_thread(c)) {
		client_set_error(err, CAIRN_EARG,
				 "%s: synchronous call from a callback of the "
				 "same client",
				 op);
		return CAIRN_EARG;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Appends
 * ------------------------------------------------------------------------ */

/* The wire view of an append: arrays owned, bytes borrowed from the
 * caller. */
struct append_view {
	struct wire_append a;
	struct wire_part *parts;      /* owned */
	struct wire_event_in *events; /* owned */
};

static void append_view_close(struct append_view *v)
{
	free(v->parts);
	free(v->events);
}

/* Builds the wire view of an append, making event ids where the caller
 * gave none (once: every retry resends the same frame). */
static int append_view_init(struct append_view *v, struct cairn_client *c,
			    const struct cairn_append_part *parts,
			    size_t n_parts, const struct cairn_append_key *key,
			    struct cairn_error *err)
{
	size_t total = 0;
	size_t i;
	size_t k;
	size_t n = 0;

	memset(v, 0, sizeof *v);
	if (parts == NULL || n_parts == 0) {
		client_set_error(err, CAIRN_EARG, "append: no parts");
		return CAIRN_EARG;
	}
	if (n_parts > WIRE_APPEND_PARTS_MAX) {
		client_set_error(err, CAIRN_ETOO_LARGE,
				 "append: %zu streams in one append, over the "
				 "limit of %d",
				 n_parts, WIRE_APPEND_PARTS_MAX);
		return CAIRN_ETOO_LARGE;
	}
	for (i = 0; i < n_parts; i++) {
		const struct cairn_append_part *p = &parts[i];

		if (p->stream == NULL ||
		    (p->events == NULL && p->n_events > 0)) {
			client_set_error(
				err, CAIRN_EARG, "append: part %zu: %s is NULL",
				i, p->stream == NULL ? "stream" : "events");
			return CAIRN_EARG;
		}
		if (p->expect_kind < CAIRN_EXPECT_ANY ||
		    p->expect_kind > CAIRN_EXPECT_EXACT) {
			client_set_error(err, CAIRN_EARG,
					 "append: part %zu: unknown expected "
					 "version kind %d",
					 i, p->expect_kind);
			return CAIRN_EARG;
		}
		if (p->n_events > WIRE_BODY_BYTES_MAX / EVENT_IN_MIN_BYTES ||
		    total + p->n_events >
			    WIRE_BODY_BYTES_MAX / EVENT_IN_MIN_BYTES) {
			client_set_error(err, CAIRN_ETOO_LARGE,
					 "append: too many events for one "
					 "request");
			return CAIRN_ETOO_LARGE;
		}
		total += p->n_events;
		for (k = 0; k < p->n_events; k++) {
			const struct cairn_event_in *e = &p->events[k];

			if (e->type == NULL ||
			    (e->data == NULL && e->data_len > 0) ||
			    (e->metadata == NULL && e->metadata_len > 0)) {
				client_set_error(err, CAIRN_EARG,
						 "append: part %zu event %zu: "
						 "%s is NULL",
						 i, k,
						 e->type == NULL ? "type"
						 : e->data == NULL
							 ? "data"
							 : "metadata");
				return CAIRN_EARG;
			}
			if (e->data_len > WIRE_BODY_BYTES_MAX ||
			    e->metadata_len > WIRE_BODY_BYTES_MAX) {
				client_set_error(err, CAIRN_ETOO_LARGE,
						 "append: part %zu event %zu: "
						 "data over the frame limit",
						 i, k);
				return CAIRN_ETOO_LARGE;
			}
		}
	}

	v->parts = calloc(n_parts, sizeof *v->parts);
	v->events = calloc(total > 0 ? total : 1, sizeof *v->events);
	if (v->parts == NULL || v->events == NULL) {
		append_view_close(v);
		client_set_error(err, CAIRN_ENOMEM, "append: out of memory");
		return CAIRN_ENOMEM;
	}
	for (i = 0; i < n_parts; i++) {
		const struct cairn_append_part *p = &parts[i];
		struct wire_part *wp = &v->parts[i];
		size_t stream_len = strlen(p->stream);

		wp->stream.p = (const uint8_t *)p->stream;
		/* Longer names fail the encoder's 16-bit length check. */
		wp->stream.len = stream_len > UINT16_MAX + 1u
					 ? UINT16_MAX + 1u
					 : (uint32_t)stream_len;
		wp->expect_kind = (uint8_t)p->expect_kind;
		wp->expect_version = p->expect_version;
		wp->n_events = (uint32_t)p->n_events;
		wp->events = &v->events[n];
		for (k = 0; k < p->n_events; k++) {
			const struct cairn_event_in *e = &p->events[k];
			struct wire_event_in *we = &v->events[n++];
			size_t type_len = strlen(e->type);

			if (e->id != NULL)
				memcpy(we->id, e->id, 16);
			else
				cairn_uuid(we->id);
			we->type.p = (const uint8_t *)e->type;
			we->type.len = type_len > UINT16_MAX + 1u
					       ? UINT16_MAX + 1u
					       : (uint32_t)type_len;
			we->schema_version = e->schema_version;
			we->event_time_us = e->event_time_us;
			we->data.p = e->data;
			we->data.len = (uint32_t)e->data_len;
			we->metadata.p = e->metadata;
			we->metadata.len = (uint32_t)e->metadata_len;
		}
	}
	v->a.has_client = true;
	v->a.n_parts = (uint32_t)n_parts;
	v->a.parts = v->parts;
	if (key != NULL && key->has_key) {
		memcpy(v->a.client_id, key->client_id, 16);
		v->a.client_seq = key->seq;
	} else {
		memcpy(v->a.client_id, c->client_id, 16);
	}
	return 0;
}

/* Builds and submits an append request (sync when @cb is NULL). On
 * success *out is the request (a sync caller then awaits it); on error
 * nothing was submitted. */
static int append_submit(struct cairn_client *c,
			 const struct cairn_append_part *parts, size_t n_parts,
			 const struct cairn_append_key *key, cairn_append_cb cb,
			 void *arg, struct req **out, struct cairn_error *err)
{
	struct append_view v;
	struct encode_args a;
	struct req *r;
	int rv;

	*out = NULL;
	rv = append_view_init(&v, c, parts, n_parts, key, err);
	if (rv != 0)
		return rv;
	r = req_new(c, REQ_APPEND, "append", cb == NULL);
	if (r == NULL) {
		rv = CAIRN_ENOMEM;
		client_set_error(err, rv, "append: out of memory");
		goto err_after_view;
	}
	r->cb = cb;
	r->cb_arg = arg;
	r->n_parts = n_parts;
	r->results = calloc(n_parts, sizeof *r->results);
	if (r->results == NULL) {
		rv = CAIRN_ENOMEM;
		client_set_error(err, rv, "append: out of memory");
		goto err_after_req;
	}
	r->key_assigned = key == NULL || !key->has_key;
	memset(&a, 0, sizeof a);
	a.append = &v.a;
	a.assign_key = r->key_assigned;
	rv = submit(c, r, &v.a, &a, err);
	if (rv != 0)
		goto err_after_req;
	append_view_close(&v);
	*out = r;
	return 0;

err_after_req:
	req_free(r);
err_after_view:
	append_view_close(&v);
	return rv;
}

int cairn_append(cairn_client *c, const struct cairn_append_part *parts,
		 size_t n_parts, const struct cairn_append_key *key,
		 struct cairn_part_result *results, bool *duplicate,
		 struct cairn_error *err)
{
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "append", err);
	if (rv != 0)
		return rv;
	if (results == NULL) {
		client_set_error(err, CAIRN_EARG, "append: results is NULL");
		return CAIRN_EARG;
	}
	rv = append_submit(c, parts, n_parts, key, NULL, NULL, &r, err);
	if (rv != 0)
		return rv;
	rv = await_sync(c, r, err);
	if (rv == 0) {
		memcpy(results, r->results, n_parts * sizeof *results);
		if (duplicate != NULL)
			*duplicate = r->duplicate;
	}
	finish_sync(c, r);
	return rv;
}

int cairn_append_one(cairn_client *c, const char *stream, int expect_kind,
		     uint64_t expect_version,
		     const struct cairn_event_in *events, size_t n_events,
		     struct cairn_part_result *result, struct cairn_error *err)
{
	struct cairn_append_part part;
	struct cairn_part_result scratch;

	memset(&part, 0, sizeof part);
	part.stream = stream;
	part.expect_kind = expect_kind;
	part.expect_version = expect_version;
	part.events = events;
	part.n_events = n_events;
	return cairn_append(c, &part, 1, NULL,
			    result != NULL ? result : &scratch, NULL, err);
}

int cairn_append_async(cairn_client *c, const struct cairn_append_part *parts,
		       size_t n_parts, const struct cairn_append_key *key,
		       cairn_append_cb cb, void *arg)
{
	struct req *r;
	int rv;

	if (c == NULL || cb == NULL)
		return CAIRN_EARG;
	rv = append_submit(c, parts, n_parts, key, cb, arg, &r, NULL);
	if (rv == 0)
		leave(c);
	return rv;
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

void cairn_page_free(struct cairn_page *p)
{
	if (p == NULL)
		return;
	free(p->events);
	free(p->buf_);
	memset(p, 0, sizeof *p);
}

/* Routes a read by its consistency: LEADER reads follow redirects like
 * appends; ANY and AT_LEAST reads are served by whichever node the
 * client talks to. */
static int read_consistency(const struct cairn_read_options *opts,
			    struct wire_consistency_req *wc, const char *op,
			    struct cairn_error *err)
{
	memset(wc, 0, sizeof *wc);
	if (opts == NULL)
		return 0;
	if (opts->consistency < CAIRN_CONSISTENCY_ANY ||
	    opts->consistency > CAIRN_CONSISTENCY_LEADER) {
		client_set_error(err, CAIRN_EARG, "%s: unknown consistency %d",
				 op, opts->consistency);
		return CAIRN_EARG;
	}
	wc->kind = (uint8_t)opts->consistency;
	if (opts->consistency == CAIRN_CONSISTENCY_AT_LEAST)
		wc->min_position = opts->min_position;
	return 0;
}

/* Fills a wire string from a C string, clamped just past what the
 * encoder accepts so that an over-long one fails there. */
static struct wire_bytes text_bytes(const char *s)
{
	struct wire_bytes b = { NULL, 0 };
	size_t len;

	if (s == NULL)
		return b;
	len = strlen(s);
	b.p = (const uint8_t *)s;
	b.len = len > UINT16_MAX + 1u ? UINT16_MAX + 1u : (uint32_t)len;
	if (b.len == 0)
		b.p = NULL;
	return b;
}

int cairn_read_stream(cairn_client *c, const char *stream,
		      uint64_t from_version, bool backward,
		      const struct cairn_read_options *opts,
		      struct cairn_page *page, struct cairn_error *err)
{
	struct wire_read_stream w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "read", err);
	if (rv != 0)
		return rv;
	if (stream == NULL || page == NULL) {
		client_set_error(err, CAIRN_EARG, "read: %s is NULL",
				 stream == NULL ? "stream" : "page");
		return CAIRN_EARG;
	}
	memset(page, 0, sizeof *page);
	memset(&w, 0, sizeof w);
	rv = read_consistency(opts, &w.consistency, "read", err);
	if (rv != 0)
		return rv;
	w.stream = text_bytes(stream);
	w.from_version = from_version;
	w.backward = backward;
	w.limit = opts != NULL ? opts->limit : 0;
	r = req_new(c, REQ_READ_STREAM, "read", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM, "read: out of memory");
		return CAIRN_ENOMEM;
	}
	if (w.consistency.kind != WIRE_CONSISTENCY_LEADER)
		r->follow_redirects = false;
	memset(&a, 0, sizeof a);
	a.read_stream = &w;
	rv = submit(c, r, NULL, &a, err);
	if (rv != 0) {
		req_free(r);
		return rv;
	}
	rv = await_sync(c, r, err);
	if (rv == 0) {
		*page = r->page;
		memset(&r->page, 0, sizeof r->page);
	}
	finish_sync(c, r);
	return rv;
}

int cairn_read_all(cairn_client *c, uint64_t from_position,
		   const struct cairn_filter *filter,
		   const struct cairn_read_options *opts,
		   struct cairn_page *page, struct cairn_error *err)
{
	struct wire_read_all w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "read all", err);
	if (rv != 0)
		return rv;
	if (page == NULL) {
		client_set_error(err, CAIRN_EARG, "read all: page is NULL");
		return CAIRN_EARG;
	}
	memset(page, 0, sizeof *page);
	memset(&w, 0, sizeof w);
	rv = read_consistency(opts, &w.consistency, "read all", err);
	if (rv != 0)
		return rv;
	w.from_position = from_position;
	w.limit = opts != NULL ? opts->limit : 0;
	if (filter != NULL) {
		w.stream_prefix = text_bytes(filter->stream_prefix);
		w.category = text_bytes(filter->category);
		w.type = text_bytes(filter->type);
	}
	r = req_new(c, REQ_READ_ALL, "read all", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM, "read all: out of memory");
		return CAIRN_ENOMEM;
	}
	if (w.consistency.kind != WIRE_CONSISTENCY_LEADER)
		r->follow_redirects = false;
	memset(&a, 0, sizeof a);
	a.read_all = &w;
	rv = submit(c, r, NULL, &a, err);
	if (rv != 0) {
		req_free(r);
		return rv;
	}
	rv = await_sync(c, r, err);
	if (rv == 0) {
		*page = r->page;
		memset(&r->page, 0, sizeof r->page);
	}
	finish_sync(c, r);
	return rv;
}

int cairn_head(cairn_client *c, const char *stream,
	       const struct cairn_read_options *opts, uint64_t *version,
	       uint64_t *last_position, struct cairn_error *err)
{
	struct wire_head w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "head", err);
	if (rv != 0)
		return rv;
	if (stream == NULL) {
		client_set_error(err, CAIRN_EARG, "head: stream is NULL");
		return CAIRN_EARG;
	}
	memset(&w, 0, sizeof w);
	rv = read_consistency(opts, &w.consistency, "head", err);
	if (rv != 0)
		return rv;
	w.stream = text_bytes(stream);
	r = req_new(c, REQ_HEAD, "head", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM, "head: out of memory");
		return CAIRN_ENOMEM;
	}
	if (w.consistency.kind != WIRE_CONSISTENCY_LEADER)
		r->follow_redirects = false;
	memset(&a, 0, sizeof a);
	a.head = &w;
	rv = submit(c, r, NULL, &a, err);
	if (rv != 0) {
		req_free(r);
		return rv;
	}
	rv = await_sync(c, r, err);
	if (rv == 0) {
		if (version != NULL)
			*version = r->head_version;
		if (last_position != NULL)
			*last_position = r->head_position;
	}
	finish_sync(c, r);
	return rv;
}

/* ------------------------------------------------------------------------
 * Cluster
 * ------------------------------------------------------------------------ */

int cairn_status(cairn_client *c, const char *address, struct cairn_status *s,
		 struct cairn_error *err)
{
	struct encode_args a;
	struct req *r;
	char host[CLIENT_ADDRESS_LEN_MAX + 1];
	int port;
	int rv;

	rv = check_sync_allowed(c, "status", err);
	if (rv != 0)
		return rv;
	if (s == NULL) {
		client_set_error(err, CAIRN_EARG, "status: s is NULL");
		return CAIRN_EARG;
	}
	if (address != NULL &&
	    client_address_split(address, host, &port) != 0) {
		client_set_error(err, CAIRN_EARG,
				 "status: %s: not host:port with a port in "
				 "1..65535",
				 address);
		return CAIRN_EARG;
	}
	r = req_new(c, REQ_STATUS, "status", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM, "status: out of memory");
		return CAIRN_ENOMEM;
	}
	r->follow_redirects = false;
	if (address != NULL) {
		/* A probe of one node: one connection attempt, no retries
		 * elsewhere. */
		r->route = ROUTE_FIXED;
		r->retry = false;
		snprintf(r->fixed, sizeof r->fixed, "%s", address);
	}
	memset(&a, 0, sizeof a);
	rv = submit(c, r, NULL, &a, err);
	if (rv != 0) {
		req_free(r);
		return rv;
	}
	rv = await_sync(c, r, err);
	if (rv == 0)
		*s = *r->status_reply;
	finish_sync(c, r);
	return rv;
}

/* ------------------------------------------------------------------------
 * Consumer checkpoints and aggregate snapshots
 * ------------------------------------------------------------------------ */

/* Submits synchronous request @r built in @a and waits for it. Returns
 * with *r_out set to @r when it was submitted (the caller copies the
 * outcome out when the result is 0, then calls finish_sync), NULL when it
 * was not (@r is freed). */
static int run_sync(struct cairn_client *c, struct req *r,
		    const struct encode_args *a, struct req **r_out,
		    struct cairn_error *err)
{
	int rv;

	*r_out = NULL;
	rv = submit(c, r, NULL, a, err);
	if (rv != 0) {
		req_free(r);
		return rv;
	}
	*r_out = r;
	return await_sync(c, r, err);
}

int cairn_checkpoint_get(cairn_client *c, const char *name,
			 const struct cairn_read_options *opts, uint64_t *value,
			 bool *found, struct cairn_error *err)
{
	struct wire_checkpoint_get w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "checkpoint get", err);
	if (rv != 0)
		return rv;
	if (name == NULL) {
		client_set_error(err, CAIRN_EARG,
				 "checkpoint get: name is NULL");
		return CAIRN_EARG;
	}
	memset(&w, 0, sizeof w);
	rv = read_consistency(opts, &w.consistency, "checkpoint get", err);
	if (rv != 0)
		return rv;
	w.name = text_bytes(name);
	r = req_new(c, REQ_CHECKPOINT_GET, "checkpoint get", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM,
				 "checkpoint get: out of memory");
		return CAIRN_ENOMEM;
	}
	if (w.consistency.kind != WIRE_CONSISTENCY_LEADER)
		r->follow_redirects = false;
	memset(&a, 0, sizeof a);
	a.checkpoint_get = &w;
	rv = run_sync(c, r, &a, &r, err);
	if (r == NULL)
		return rv;
	if (rv == 0) {
		if (value != NULL)
			*value = r->found ? r->head_version : 0;
		if (found != NULL)
			*found = r->found;
	}
	finish_sync(c, r);
	return rv;
}

/* Fills the client key of a write: the caller's, or the client's own id
 * (the sequence is taken at submission). Returns whether the client chose
 * it. */
static bool write_key(struct cairn_client *c,
		      const struct cairn_append_key *key, bool *has_client,
		      uint8_t client_id[16], uint64_t *seq)
{
	*has_client = true;
	if (key != NULL && key->has_key) {
		memcpy(client_id, key->client_id, 16);
		*seq = key->seq;
		return false;
	}
	memcpy(client_id, c->client_id, 16);
	*seq = 0;
	return true;
}

int cairn_checkpoint_set(cairn_client *c, const char *name, uint64_t value,
			 int expect_kind, uint64_t expected,
			 const struct cairn_append_key *key, bool *duplicate,
			 struct cairn_error *err)
{
	struct wire_checkpoint_set w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "checkpoint set", err);
	if (rv != 0)
		return rv;
	if (name == NULL) {
		client_set_error(err, CAIRN_EARG,
				 "checkpoint set: name is NULL");
		return CAIRN_EARG;
	}
	memset(&w, 0, sizeof w);
	switch (expect_kind) {
	case CAIRN_CHECKPOINT_ANY:
	case CAIRN_CHECKPOINT_ABSENT:
		break;
	case CAIRN_CHECKPOINT_VALUE:
		if (expected == 0) {
			client_set_error(err, CAIRN_EARG,
					 "checkpoint set: expected value 0 "
					 "(use CAIRN_CHECKPOINT_ABSENT)");
			return CAIRN_EARG;
		}
		w.expected = expected;
		break;
	default:
		client_set_error(err, CAIRN_EARG,
				 "checkpoint set: unknown expect kind %d",
				 expect_kind);
		return CAIRN_EARG;
	}
	w.expect_kind = (uint8_t)expect_kind;
	w.name = text_bytes(name);
	w.value = value;
	r = req_new(c, REQ_CHECKPOINT_SET, "checkpoint set", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM,
				 "checkpoint set: out of memory");
		return CAIRN_ENOMEM;
	}
	r->key_assigned =
		write_key(c, key, &w.has_client, w.client_id, &w.client_seq);
	memset(&a, 0, sizeof a);
	a.checkpoint_set = &w;
	a.assign_key = r->key_assigned;
	rv = run_sync(c, r, &a, &r, err);
	if (r == NULL)
		return rv;
	if (rv == 0 && duplicate != NULL)
		*duplicate = r->duplicate;
	finish_sync(c, r);
	return rv;
}

int cairn_snapshot_put(cairn_client *c, const char *stream, uint64_t version,
		       const void *data, size_t len,
		       const struct cairn_append_key *key,
		       struct cairn_error *err)
{
	struct wire_snapshot_put w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "snapshot put", err);
	if (rv != 0)
		return rv;
	if (stream == NULL || (data == NULL && len > 0) || version == 0) {
		client_set_error(err, CAIRN_EARG, "snapshot put: %s",
				 stream == NULL ? "stream is NULL"
				 : version == 0 ? "version 0"
						: "data is NULL");
		return CAIRN_EARG;
	}
	if (len > WIRE_SNAPSHOT_BYTES_MAX) {
		client_set_error(err, CAIRN_ETOO_LARGE,
				 "snapshot put: %zu bytes, over the maximum "
				 "of %u",
				 len, WIRE_SNAPSHOT_BYTES_MAX);
		return CAIRN_ETOO_LARGE;
	}
	memset(&w, 0, sizeof w);
	w.stream = text_bytes(stream);
	w.version = version;
	w.data.p = len > 0 ? data : NULL;
	w.data.len = (uint32_t)len;
	r = req_new(c, REQ_SNAPSHOT_PUT, "snapshot put", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM,
				 "snapshot put: out of memory");
		return CAIRN_ENOMEM;
	}
	r->key_assigned =
		write_key(c, key, &w.has_client, w.client_id, &w.client_seq);
	memset(&a, 0, sizeof a);
	a.snapshot_put = &w;
	a.assign_key = r->key_assigned;
	rv = run_sync(c, r, &a, &r, err);
	if (r == NULL)
		return rv;
	finish_sync(c, r);
	return rv;
}

void cairn_snapshot_free(struct cairn_snapshot *s)
{
	if (s == NULL)
		return;
	free(s->data);
	memset(s, 0, sizeof *s);
}

int cairn_snapshot_get(cairn_client *c, const char *stream,
		       uint64_t max_version,
		       const struct cairn_read_options *opts,
		       struct cairn_snapshot *snap, struct cairn_error *err)
{
	struct wire_snapshot_get w;
	struct encode_args a;
	struct req *r;
	int rv;

	rv = check_sync_allowed(c, "snapshot get", err);
	if (rv != 0)
		return rv;
	if (stream == NULL || snap == NULL) {
		client_set_error(err, CAIRN_EARG, "snapshot get: %s is NULL",
				 stream == NULL ? "stream" : "snapshot");
		return CAIRN_EARG;
	}
	memset(snap, 0, sizeof *snap);
	memset(&w, 0, sizeof w);
	rv = read_consistency(opts, &w.consistency, "snapshot get", err);
	if (rv != 0)
		return rv;
	w.stream = text_bytes(stream);
	w.max_version = max_version;
	r = req_new(c, REQ_SNAPSHOT_GET, "snapshot get", true);
	if (r == NULL) {
		client_set_error(err, CAIRN_ENOMEM,
				 "snapshot get: out of memory");
		return CAIRN_ENOMEM;
	}
	if (w.consistency.kind != WIRE_CONSISTENCY_LEADER)
		r->follow_redirects = false;
	memset(&a, 0, sizeof a);
	a.snapshot_get = &w;
	rv = run_sync(c, r, &a, &r, err);
	if (r == NULL)
		return rv;
	if (rv == 0) {
		snap->version = r->head_version;
		snap->data = r->snap_data;
		snap->len = r->snap_len;
		r->snap_data = NULL;
		r->snap_len = 0;
	}
	finish_sync(c, r);
	return rv;
}

int cairn_read_stream_with_snapshot(cairn_client *c, const char *stream,
				    const struct cairn_read_options *opts,
				    struct cairn_snapshot *snap,
				    struct cairn_page *page,
				    struct cairn_error *err)
{
	int rv;

	if (page == NULL) {
		client_set_error(err, CAIRN_EARG,
				 "read with snapshot: page is NULL");
		return CAIRN_EARG;
	}
	memset(page, 0, sizeof *page);
	rv = cairn_snapshot_get(c, stream, UINT64_MAX, opts, snap, err);
	if (rv != 0)
		return rv;
	/* Snapshots never change once stored and never pass their stream's
	 * head, so the tail after this one is there (at this consistency)
	 * whatever was stored meanwhile. */
	rv = cairn_read_stream(c, stream, snap->version + 1, false, opts, page,
			       err);
	if (rv != 0)
		cairn_snapshot_free(snap);
	return rv;
}
