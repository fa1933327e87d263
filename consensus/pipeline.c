/* The leader's write path: consensus_append (validation, dedup answers,
 * joining retries, expected-version pre-checks against projections, group
 * commit into batches), the bounded pipeline of entries in flight, and
 * consensus_barrier (one Raft barrier in flight, shared by every read that
 * arrived before it was issued). Used by node/ through consensus.h; fsm.c
 * hands results back through pipeline_applied().
 *
 * A request's life (states of struct consensus_append):
 *
 *   submitted --(answered at once)--> EDONE, no callback
 *   submitted --> in the open batch --> waiting (sealed) --> in flight
 *             --> delivered (the FSM applied its entry) --> callback
 *   in the open batch / waiting --(leadership lost, shutdown)--> callback
 *   in flight --(raft_apply callback with an error)--> callback
 *   submitted --(same client id and sequence in flight)--> joined to the
 *             original --> callback when the original's fires
 *
 * Projections: for every stream with parts in flight, the events those
 * parts append (stream map). A part's projected version is the stream's
 * committed head plus that count; a batch stops counting when the FSM
 * applies its entry (the head then holds its effect) or when it fails. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consensus_int.h"
#include "log.h"

/* ------------------------------------------------------------------------
 * Leadership
 * ------------------------------------------------------------------------ */

bool consensus_int_is_leader(struct consensus_int *i)
{
	return i->close_step == CLOSE_NONE &&
	       raft_state(&i->raft) == RAFT_LEADER &&
	       raft_transferee(&i->raft) == 0;
}

int consensus_int_not_leader(struct consensus_int *i)
{
	raft_id id = 0;
	const char *address = NULL;

	if (raft_state(&i->raft) == RAFT_CANDIDATE)
		return CONSENSUS_EUNAVAILABLE;
	raft_leader(&i->raft, &id, &address);
	return id != 0 && id != i->id ? CONSENSUS_ENOT_LEADER
				      : CONSENSUS_EUNAVAILABLE;
}

int consensus_int_refused(struct consensus_int *i, const char *what, int rv)
{
	switch (rv) {
	case RAFT_NOTLEADER:
		return consensus_int_not_leader(i);
	case RAFT_NOSPACE:
		/* A majority reports too little preallocated log space. */
		log_warn("raft_nospace", "what=\"%s\" reason=\"%s\"", what,
			 raft_errmsg(&i->raft));
		return CONSENSUS_EUNAVAILABLE;
	default:
		/* Anything else failed after libraft counted the entry:
		 * its state is undefined and the next call may crash. */
		log_error("raft_unavailable", "reason=\"%s: %s: %s\"", what,
			  raft_strerror(rv), raft_errmsg(&i->raft));
		exit(EXIT_FAILURE);
	}
}

/* ------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------ */

void pipeline_init(struct consensus_int *i)
{
	cmap_init(&i->streams);
	cmap_init(&i->clients);
	store_results_init(&i->lookup);
}

static struct batch *batch_new(struct consensus_int *i)
{
	struct batch *b = calloc(1, sizeof *b);

	if (b == NULL)
		return NULL;
	b->owner = i;
	b->req.data = b;
	store_entry_builder_init(&b->b);
	return b;
}

static void batch_free(struct batch *b)
{
	store_entry_builder_close(&b->b);
	free(b);
}

static void queue_push(struct batch **head, struct batch **tail,
		       struct batch *b)
{
	b->next = NULL;
	if (*tail != NULL)
		(*tail)->next = b;
	else
		*head = b;
	*tail = b;
}

static struct batch *queue_pop(struct batch **head, struct batch **tail)
{
	struct batch *b = *head;

	if (b == NULL)
		return NULL;
	*head = b->next;
	if (*head == NULL)
		*tail = NULL;
	b->next = NULL;
	return b;
}

static void queue_remove(struct batch **head, struct batch **tail,
			 struct batch *b)
{
	struct batch *prev = NULL;
	struct batch *p;

	for (p = *head; p != NULL && p != b; p = p->next)
		prev = p;
	if (p == NULL)
		return;
	if (prev != NULL)
		prev->next = b->next;
	else
		*head = b->next;
	if (*tail == b)
		*tail = prev;
	b->next = NULL;
}

/* ------------------------------------------------------------------------
 * Projections
 * ------------------------------------------------------------------------ */

/* Counts @req's parts as in flight. Returns 0 or CONSENSUS_ENOMEM
 * (nothing counted). */
static int project_add(struct consensus_int *i, struct consensus_append *req)
{
	const struct store_txn *t = &req->txn;
	uint32_t k;

	for (k = 0; k < t->n_parts; k++) {
		const struct store_part *p = &t->parts[k];
		struct cmap_node *n =
			cmap_get(&i->streams, p->stream, p->stream_len);

		if (n == NULL) {
			n = cmap_insert(&i->streams, p->stream, p->stream_len);
			if (n == NULL)
				goto undo;
		}
		n->pending += p->n_events;
		n->refs++;
	}
	return 0;

undo:
	while (k-- > 0) {
		const struct store_part *p = &t->parts[k];
		struct cmap_node *n =
			cmap_get(&i->streams, p->stream, p->stream_len);

		n->pending -= p->n_events;
		if (--n->refs == 0)
			cmap_remove(&i->streams, n);
	}
	return CONSENSUS_ENOMEM;
}

static void project_release(struct consensus_int *i,
			    struct consensus_append *req)
{
	const struct store_txn *t = &req->txn;
	uint32_t k;

	for (k = 0; k < t->n_parts; k++) {
		const struct store_part *p = &t->parts[k];
		struct cmap_node *n =
			cmap_get(&i->streams, p->stream, p->stream_len);

		assert(n != NULL);
		assert(n->refs > 0);
		assert(n->pending >= p->n_events);
		n->pending -= p->n_events;
		if (--n->refs == 0)
			cmap_remove(&i->streams, n);
	}
}

static void batch_release_projections(struct consensus_int *i, struct batch *b)
{
	struct consensus_append *r;

	if (!b->projected)
		return;
	for (r = b->head; r != NULL; r = r->next_)
		project_release(i, r);
	b->projected = false;
}

/* Checks every part's expectation against its projected version. Returns
 * 0 (all pass), CONSENSUS_EDONE with the conflict in @req, or
 * CONSENSUS_EIO. */
static int precheck_versions(struct consensus_int *i,
			     struct consensus_append *req)
{
	const struct store_txn *t = &req->txn;
	uint32_t k;

	for (k = 0; k < t->n_parts; k++) {
		const struct store_part *p = &t->parts[k];
		struct cmap_node *n;
		struct store_head head;
		uint64_t v;
		bool pass;
		int rv;

		if (p->expect.kind == STORE_EXPECT_ANY)
			continue;
		rv = store_head(i->store, p->stream, p->stream_len, &head);
		if (rv != 0) {
			consensus_int_errorf(i->c, "append: %s",
					     i->store->errmsg);
			return CONSENSUS_EIO;
		}
		n = cmap_get(&i->streams, p->stream, p->stream_len);
		v = head.version + (n != NULL ? n->pending : 0);
		switch (p->expect.kind) {
		case STORE_EXPECT_NO_STREAM:
			pass = v == 0;
			break;
		case STORE_EXPECT_EXISTS:
			pass = v > 0;
			break;
		default:
			pass = v == p->expect.version;
			break;
		}
		if (!pass) {
			req->outcome = STORE_WRONG_EXPECTED_VERSION;
			req->conflict_part = k;
			req->actual_version = v;
			return CONSENSUS_EDONE;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Completing requests
 * ------------------------------------------------------------------------ */

/* Copies a result's parts into @req's part slots (its own n_parts). */
static void copy_parts(struct consensus_append *req,
		       const struct store_part_result *parts, uint32_t n)
{
	uint32_t cap = req->txn.n_parts;

	if (req->parts == NULL || cap == 0)
		return;
	memset(req->parts, 0, sizeof *req->parts * cap);
	memcpy(req->parts, parts, sizeof *parts * (n < cap ? n : cap));
}

static void set_result(struct consensus_append *req,
		       const struct store_txn_result *res)
{
	req->outcome = res->outcome;
	req->conflict_part = res->conflict_part;
	req->actual_version = res->actual_version;
	req->reject_code = res->reject_code;
	if (res->outcome == STORE_COMMITTED || res->outcome == STORE_DUPLICATE)
		copy_parts(req, res->parts, res->n_parts);
}

/* Fires @req's callback and those of the retries joined to it. A joined
 * retry of a committed original is answered as a duplicate with the same
 * parts; otherwise it gets the original's outcome and status. */
static void complete(struct consensus_int *i, struct consensus_append *req,
		     int status)
{
	struct consensus_append *j = req->joined_;
	consensus_append_cb cb = req->cb_;

	if (req->txn.has_client) {
		uint8_t key[24];
		struct cmap_node *n;

		memcpy(key, req->txn.client_id, 16);
		memcpy(key + 16, &req->txn.client_seq, 8);
		n = cmap_get(&i->clients, key, sizeof key);
		if (n != NULL && n->ptr == req)
			cmap_remove(&i->clients, n);
	}
	/* Answer the joined retries from the original before its callback
	 * runs: the caller may reuse the original's memory in it. */
	for (; j != NULL; j = j->next_) {
		j->outcome = req->outcome;
		j->conflict_part = req->conflict_part;
		j->actual_version = req->actual_version;
		j->reject_code = req->reject_code;
		if (status == 0 && req->outcome == STORE_COMMITTED)
			j->outcome = STORE_DUPLICATE;
		if (status == 0 && (req->outcome == STORE_COMMITTED ||
				    req->outcome == STORE_DUPLICATE))
			copy_parts(j, req->parts, req->txn.n_parts);
	}
	j = req->joined_;
	req->joined_ = NULL;
	req->next_ = NULL;
	req->batch_ = NULL;
	cb(req, status);
	while (j != NULL) {
		struct consensus_append *next = j->next_;

		j->next_ = NULL;
		j->cb_(j, status);
		j = next;
	}
}

/* Fires every request of @b with @status and frees @b, which must already
 * be off every queue. */
static void batch_fail(struct consensus_int *i, struct batch *b, int status)
{
	struct consensus_append *r = b->head;

	batch_release_projections(i, b);
	b->head = b->tail = NULL;
	batch_free(b);
	while (r != NULL) {
		struct consensus_append *next = r->next_;

		complete(i, r, status);
		r = next;
	}
}

/* ------------------------------------------------------------------------
 * Proposing
 * ------------------------------------------------------------------------ */

static bool pipeline_full(const struct consensus_int *i)
{
	return i->n_inflight >= i->inflight_entries_max &&
	       (i->waiting_head != NULL || i->open != NULL);
}

bool consensus_pipeline_full(const struct consensus *c)
{
	struct consensus_int *i = c->i;

	if (i == NULL || !pipeline_full(i))
		return false;
	/* The caller stops reading now: it must hear on_pipeline_ready. */
	i->full_reported = true;
	return true;
}

/* The check handle does the work; the idle handle only keeps the loop from
 * blocking in poll while work waits for it. */
static void idle_cb(uv_idle_t *idle)
{
	(void)idle;
}

void pipeline_kick(struct consensus_int *i)
{
	if (i->close_step < CLOSE_HANDLES &&
	    !uv_is_active((uv_handle_t *)&i->idle))
		uv_idle_start(&i->idle, idle_cb);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct batch *b = req->data;
	struct consensus_int *i = b->owner;
	struct consensus_append *r;

	(void)result;
	queue_remove(&i->inflight_head, &i->inflight_tail, b);
	assert(i->n_inflight > 0);
	i->n_inflight--;
	batch_release_projections(i, b);
	if (status == 0 && !b->delivered) {
		/* Committed, but the store skipped it (its applied index was
		 * already past this entry): the outcome is not known here. */
		log_warn("append_result_missing", "index=%llu",
			 (unsigned long long)b->index);
		status = RAFT_LEADERSHIPLOST;
	}
	r = b->head;
	b->head = b->tail = NULL;
	batch_free(b);
	/* Whatever happened to an entry that was proposed, the client can
	 * learn its fate only by retrying with the same key. */
	while (r != NULL) {
		struct consensus_append *next = r->next_;

		complete(i, r, status == 0 ? 0 : CONSENSUS_EUNKNOWN_OUTCOME);
		r = next;
	}
	pipeline_kick(i);
}

/* What tells this node's own entry from another leader's entry at the same
 * index: a batch whose leader stepped down may still be in flight when a new
 * leader's entry with that index is applied, and must not take its results.
 * The entry's length and its first bytes (which hold the first
 * transaction's commit time in microseconds and its writer) suffice, and
 * cost nothing on large entries. */
#define FINGERPRINT_BYTES 256

static uint64_t batch_fingerprint(const void *entry, size_t len)
{
	return consensus_hash_bytes(entry, len < FINGERPRINT_BYTES
						   ? len
						   : FINGERPRINT_BYTES) ^
	       (uint64_t)len;
}

/* Hands @b to raft_apply. On failure its requests are answered. */
static void propose(struct consensus_int *i, struct batch *b)
{
	struct raft_buffer buf;
	const void *entry;
	size_t len;
	int rv;

	rv = store_entry_finish(&b->b, &entry, &len);
	assert(rv == 0);
	buf.len = len;
	buf.base = raft_malloc(len);
	if (buf.base == NULL) {
		batch_fail(i, b, CONSENSUS_ENOMEM);
		return;
	}
	memcpy(buf.base, entry, len);
	/* Known before the call, in case the entry applied inside it. */
	b->index = raft_last_index(&i->raft) + 1;
	b->fingerprint = batch_fingerprint(entry, len);
	b->state = BATCH_INFLIGHT;
	queue_push(&i->inflight_head, &i->inflight_tail, b);
	i->n_inflight++;
	rv = raft_apply(&i->raft, &b->req, &buf, 1, apply_cb);
	if (rv != 0) {
		/* Refused before anything was appended: the buffer is still
		 * ours and nothing was proposed. */
		rv = consensus_int_refused(i, "propose entry", rv);
		raft_free(buf.base);
		queue_remove(&i->inflight_head, &i->inflight_tail, b);
		i->n_inflight--;
		batch_fail(i, b, rv);
		return;
	}
	b->index = b->req.index;
	i->entries_proposed++;
	/* raft owns a copy now; drop ours. */
	store_entry_builder_close(&b->b);
	store_entry_builder_init(&b->b);
}

/* Seals the open batch: it waits for room in the pipeline. */
static void seal(struct consensus_int *i)
{
	struct batch *b = i->open;

	if (b == NULL)
		return;
	i->open = NULL;
	b->state = BATCH_WAITING;
	queue_push(&i->waiting_head, &i->waiting_tail, b);
}

void pipeline_fail_waiting(struct consensus_int *i, int status,
			   int barrier_status)
{
	struct batch *b;

	seal(i);
	while ((b = queue_pop(&i->waiting_head, &i->waiting_tail)) != NULL)
		batch_fail(i, b, status);
	while (i->bwait_head != NULL) {
		struct consensus_barrier *w = i->bwait_head;

		i->bwait_head = w->next_;
		if (i->bwait_head == NULL)
			i->bwait_tail = NULL;
		w->next_ = NULL;
		w->cb_(w, barrier_status);
	}
}

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct consensus_int *i = req->data;
	struct consensus_barrier *w = i->bflight;
	int rc = 0;

	i->barrier_inflight = false;
	i->bflight = NULL;
	if (status != 0)
		rc = i->close_step != CLOSE_NONE ? CONSENSUS_ESHUTDOWN
						 : CONSENSUS_EUNKNOWN_OUTCOME;
	while (w != NULL) {
		struct consensus_barrier *next = w->next_;

		w->next_ = NULL;
		w->cb_(w, rc);
		w = next;
	}
	pipeline_kick(i);
}

static void issue_barrier(struct consensus_int *i)
{
	int rv;

	if (i->barrier_inflight || i->bwait_head == NULL)
		return;
	i->barrier.data = i;
	rv = raft_barrier(&i->raft, &i->barrier, barrier_cb);
	if (rv != 0) {
		rv = consensus_int_refused(i, "propose barrier", rv);
		pipeline_fail_waiting(i, rv, CONSENSUS_EUNKNOWN_OUTCOME);
		return;
	}
	i->barriers_issued++;
	i->barrier_inflight = true;
	/* Every read that arrived before this barrier is covered by it. */
	i->bflight = i->bwait_head;
	i->bwait_head = i->bwait_tail = NULL;
}

/* With @open, the open batch goes too (the end of a loop iteration);
 * without, only sealed ones (a batch filled up mid-iteration). */
static void pump(struct consensus_int *i, bool open)
{
	/* While a closing leader drains, what it accepted before the close
	 * is still proposed; nothing new is accepted. */
	bool can_propose = i->close_step <= CLOSE_DRAIN &&
			   raft_state(&i->raft) == RAFT_LEADER &&
			   raft_transferee(&i->raft) == 0;

	if (i->in_raft > 0 || i->close_step >= CLOSE_RAFT)
		return;
	if (!can_propose && i->close_step != CLOSE_NONE) {
		pipeline_fail_waiting(i, CONSENSUS_ESHUTDOWN,
				      CONSENSUS_ESHUTDOWN);
	} else if (!can_propose) {
		/* Nothing of this was proposed: the client may go to the
		 * new leader. Barriers report lost leadership. */
		pipeline_fail_waiting(i, consensus_int_not_leader(i),
				      CONSENSUS_EUNKNOWN_OUTCOME);
	} else {
		while (i->n_inflight < i->inflight_entries_max) {
			struct batch *b =
				queue_pop(&i->waiting_head, &i->waiting_tail);

			if (b == NULL && open) {
				b = i->open;
				i->open = NULL;
			}
			if (b == NULL)
				break;
			propose(i, b);
		}
		issue_barrier(i);
	}
	if (i->full_reported && !pipeline_full(i)) {
		i->full_reported = false;
		if (i->on_pipeline_ready != NULL)
			i->on_pipeline_ready(i->arg);
	}
}

void pipeline_pump(struct consensus_int *i)
{
	pump(i, true);
}

void pipeline_applied(struct consensus_int *i, raft_index index,
		      const void *entry, size_t len)
{
	struct batch *b;
	struct consensus_append *r;
	uint32_t k = 0;

	for (b = i->inflight_head; b != NULL; b = b->next)
		if (b->index == index)
			break;
	if (b == NULL || b->delivered)
		return;
	if (b->fingerprint != batch_fingerprint(entry, len)) {
		/* Another leader's entry took this index: ours was lost, and
		 * its callback will say so. */
		log_warn("append_index_taken", "index=%llu",
			 (unsigned long long)index);
		return;
	}
	/* Its effects are in the committed heads now (or it failed). */
	batch_release_projections(i, b);
	if (i->results.skipped || i->results.entry_error != 0 ||
	    i->results.n != b->count)
		return;
	for (r = b->head; r != NULL; r = r->next_)
		set_result(r, &i->results.txns[k++]);
	b->delivered = true;
}

void pipeline_close(struct consensus_int *i)
{
	assert(i->open == NULL);
	assert(i->waiting_head == NULL);
	assert(i->inflight_head == NULL);
	cmap_close(&i->streams);
	cmap_close(&i->clients);
	store_results_close(&i->lookup);
}

/* ------------------------------------------------------------------------
 * consensus_append
 * ------------------------------------------------------------------------ */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Answers a retry from committed dedup state. Returns CONSENSUS_EDONE,
 * 0 (not answered) or CONSENSUS_EIO. */
static int answer_from_dedup(struct consensus_int *i,
			     struct consensus_append *req)
{
	bool found = false;
	uint64_t hwm = 0;
	int rv;

	rv = store_dedup_lookup(i->store, req->txn.client_id,
				req->txn.client_seq, &found, &hwm, &i->lookup);
	if (rv != 0) {
		consensus_int_errorf(i->c, "append: %s", i->store->errmsg);
		return CONSENSUS_EIO;
	}
	if (found) {
		set_result(req, &i->lookup.txns[0]);
		return CONSENSUS_EDONE;
	}
	if (hwm > 0 && req->txn.client_seq <= hwm) {
		req->outcome = STORE_STALE_SEQUENCE;
		req->actual_version = hwm;
		return CONSENSUS_EDONE;
	}
	return 0;
}

/* Adds @req to the open batch (sealing it first when @req would push it
 * past entry_bytes_max). Returns 0 or CONSENSUS_ENOMEM/EINVALID. */
static int batch_add(struct consensus_int *i, struct consensus_append *req)
{
	char errmsg[STORE_ERRMSG_SIZE];
	size_t need = store_txn_encoded_size(&req->txn) + 4;
	int attempt;
	int rv;

	if (i->open != NULL && i->open->count > 0 &&
	    i->open->b.len + need > i->entry_bytes_max)
		seal(i);
	for (attempt = 0; attempt < 2; attempt++) {
		if (i->open == NULL) {
			i->open = batch_new(i);
			if (i->open == NULL)
				return CONSENSUS_ENOMEM;
		}
		rv = store_entry_add(&i->open->b, &req->txn, errmsg);
		if (rv == 0)
			break;
		if (rv == STORE_EENTRY_TOO_LARGE && i->open->count > 0) {
			seal(i);
			continue;
		}
		consensus_int_errorf(i->c, "append: %s", errmsg);
		return rv == STORE_ENOMEM ? CONSENSUS_ENOMEM
					  : CONSENSUS_EINVALID;
	}
	assert(rv == 0);
	req->next_ = NULL;
	req->batch_ = i->open;
	if (i->open->tail != NULL)
		i->open->tail->next_ = req;
	else
		i->open->head = req;
	i->open->tail = req;
	i->open->count++;
	i->open->projected = true;
	/* A batch past the cap (one large transaction) goes on its own. */
	if (i->open->b.len >= i->entry_bytes_max)
		seal(i);
	return 0;
}

int consensus_append(struct consensus *c, struct consensus_append *req,
		     consensus_append_cb cb)
{
	struct consensus_int *i = c->i;
	char errmsg[STORE_ERRMSG_SIZE];
	struct cmap_node *n = NULL;
	uint8_t key[24];
	int rv;

	req->outcome = 0;
	req->conflict_part = 0;
	req->actual_version = 0;
	req->reject_code = 0;
	req->cb_ = cb;
	req->next_ = NULL;
	req->joined_ = NULL;
	req->batch_ = NULL;
	if (i->close_step != CLOSE_NONE)
		return CONSENSUS_ESHUTDOWN;
	/* Waiting for a state transfer: the store is behind the log. */
	if (c->stale)
		return CONSENSUS_EUNAVAILABLE;
	if (!consensus_int_is_leader(i))
		return consensus_int_not_leader(i);
	rv = store_txn_validate(&req->txn, errmsg);
	if (rv != 0) {
		consensus_int_errorf(c, "append: %s", errmsg);
		return CONSENSUS_EINVALID;
	}
	if (req->txn.has_client) {
		rv = answer_from_dedup(i, req);
		if (rv != 0)
			return rv;
		memcpy(key, req->txn.client_id, 16);
		memcpy(key + 16, &req->txn.client_seq, 8);
		n = cmap_get(&i->clients, key, sizeof key);
		if (n != NULL) {
			struct consensus_append *orig = n->ptr;

			/* Answered when the original is. */
			req->next_ = orig->joined_;
			orig->joined_ = req;
			return 0;
		}
	}
	rv = precheck_versions(i, req);
	if (rv != 0)
		return rv;
	if (req->txn.has_client) {
		n = cmap_insert(&i->clients, key, sizeof key);
		if (n == NULL) {
			consensus_int_errorf(c, "append: out of memory");
			return CONSENSUS_ENOMEM;
		}
		n->ptr = req;
	}
	rv = project_add(i, req);
	if (rv != 0)
		goto err_after_client;
	/* Commit times never go backwards on one leader, even if its clock
	 * does. */
	req->txn.commit_time_us = now_us();
	if (req->txn.commit_time_us < i->last_commit_time_us)
		req->txn.commit_time_us = i->last_commit_time_us;
	i->last_commit_time_us = req->txn.commit_time_us;
	rv = batch_add(i, req);
	if (rv != 0)
		goto err_after_project;
	if (i->waiting_head != NULL)
		pump(i, false);
	pipeline_kick(i);
	return 0;

err_after_project:
	project_release(i, req);
err_after_client:
	if (n != NULL)
		cmap_remove(&i->clients, n);
	if (rv == CONSENSUS_ENOMEM)
		consensus_int_errorf(c, "append: out of memory");
	return rv;
}

/* ------------------------------------------------------------------------
 * consensus_barrier
 * ------------------------------------------------------------------------ */

int consensus_barrier(struct consensus *c, struct consensus_barrier *req,
		      consensus_barrier_cb cb)
{
	struct consensus_int *i = c->i;

	if (i->close_step != CLOSE_NONE)
		return CONSENSUS_ESHUTDOWN;
	/* Waiting for a state transfer: the store is behind the log. */
	if (c->stale)
		return CONSENSUS_EUNAVAILABLE;
	if (!consensus_int_is_leader(i))
		return consensus_int_not_leader(i);
	req->cb_ = cb;
	req->next_ = NULL;
	if (i->bwait_tail != NULL)
		i->bwait_tail->next_ = req;
	else
		i->bwait_head = req;
	i->bwait_tail = req;
	/* Issued by the check at the end of this loop iteration, so every
	 * read that arrives in the same iteration shares it. */
	pipeline_kick(i);
	return 0;
}
