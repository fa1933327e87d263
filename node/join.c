/* node/join.c: `cairnd --join SEEDS`, a node that joins a running cluster
 * instead of bootstrapping one. It runs as a small state machine on the
 * node's loop; each remote call is synchronous libcairn work run with
 * uv_queue_work on libuv's thread pool, one at a time:
 *
 *   CHECK    read the leader's STATUS: this node a voter there -> DONE; a
 *            standby (a restart after it was added) -> CATCH_UP; not a
 *            member -> ADD
 *   ADD      ask the seeds to add this node as a non-voter (standby) with
 *            its three addresses; "already a member" with the same Raft
 *            and client addresses counts as done, so a restart repeats
 *            it safely                                   -> join_added
 *   CATCH_UP read the leader's STATUS; once this node has applied close
 *            to the leader's commit index                -> join_caught_up
 *   PROMOTE  ask for promotion to voter                  -> join_promoted
 *   DONE     nothing more; the client is closed.
 *
 * The leader's view decides where to start, not this node's own Raft
 * configuration, which may be stale after a restart. Errors are logged and
 * retried with a backoff. Started by main.c after the node serves;
 * join_stop at shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "node.h"

/* How far (in Raft entries) this node's applied index may trail the
 * leader's commit index when it asks for promotion: libraft catches it up
 * the rest of the way before the promotion commits. */
#define JOIN_CATCH_UP_SLACK 16

/* Backoff between attempts after an error, and the poll period while
 * catching up. */
#define JOIN_BACKOFF_MIN_MS 250
#define JOIN_BACKOFF_MAX_MS 5000
#define JOIN_POLL_MS        200

/* Deadline of each remote call (a promotion waits for catch-up rounds). */
#define JOIN_CALL_DEADLINE_MS 15000

enum join_step {
	JOIN_CHECK = 0,
	JOIN_ADD = 1,
	JOIN_CATCH_UP = 2,
	JOIN_PROMOTE = 3,
	JOIN_DONE = 4,
};

struct join {
	struct node *n;       /* borrowed */
	cairn_client *client; /* owned: the seeds */
	uv_timer_t timer;     /* the next step */
	uv_work_t work;       /* the remote call in flight */
	bool working;         /* work is queued or running */
	bool stopping;        /* join_stop was called */
	bool timer_open;      /* timer not yet closed */
	enum join_step step;  /* see above */
	unsigned backoff_ms;  /* the next backoff */
	/* The work's outcome (written by the worker, read after it). */
	int rv;                      /* 0 or CAIRN_E* */
	struct cairn_error err;      /* why */
	uint64_t leader_commit;      /* the leader's commit index */
	int self_role;               /* this node in the leader's list: 0
				      * standby, 1 voter, 2 spare, -1 absent */
	struct cairn_status *status; /* owned: scratch for the worker */
};

/* The join of n (one per node). */
static struct join *the_join;

static void join_free_if_idle(struct join *j)
{
	if (j->working || j->timer_open)
		return;
	if (j->client != NULL)
		cairn_close(j->client);
	free(j->status);
	if (the_join == j)
		the_join = NULL;
	free(j);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct join *j = h->data;

	j->timer_open = false;
	join_free_if_idle(j);
}

static void finish(struct join *j)
{
	if (j->timer_open && !uv_is_closing((uv_handle_t *)&j->timer))
		uv_close((uv_handle_t *)&j->timer, on_timer_closed);
	join_free_if_idle(j);
}

/* ---- the worker (thread pool) ---- */

/* True when @s lists this node with our Raft and client addresses. */
static bool listed_as_self(const struct node_config *cfg,
			   const struct cairn_status *s)
{
	for (size_t k = 0; k < s->n_members; k++) {
		const struct cairn_member *m = &s->members[k];

		if (m->id == cfg->id &&
		    strcmp(m->raft_address, cfg->raft_address) == 0 &&
		    (m->client_address[0] == '\0' ||
		     strcmp(m->client_address, cfg->client_address) == 0))
			return true;
	}
	return false;
}

/* Reads the leader's STATUS into @s (CHECK, CATCH_UP). */
static void leader_status(struct join *j, struct cairn_status *s)
{
	const struct node_config *cfg = j->n->cfg;

	j->rv = cairn_status(j->client, NULL, s, &j->err);
	if (j->rv != 0)
		return;
	if (s->leader_id == 0 || s->leader_client_address[0] == '\0') {
		j->rv = CAIRN_EUNAVAILABLE;
		snprintf(j->err.message, sizeof j->err.message,
			 "status: no leader known");
		return;
	}
	if (s->node_id != s->leader_id) {
		char address[256];

		snprintf(address, sizeof address, "%s",
			 s->leader_client_address);
		j->rv = cairn_status(j->client, address, s, &j->err);
		if (j->rv != 0)
			return;
	}
	j->leader_commit = s->commit_index;
	j->self_role = -1;
	for (size_t k = 0; k < s->n_members; k++)
		if (s->members[k].id == cfg->id)
			j->self_role = s->members[k].voter_role;
}

static void work_cb(uv_work_t *w)
{
	struct join *j = w->data;
	const struct node_config *cfg = j->n->cfg;
	struct cairn_status *s = j->status;

	memset(&j->err, 0, sizeof j->err);
	switch (j->step) {
	case JOIN_ADD:
		j->rv = cairn_member_add(j->client, cfg->id, cfg->raft_address,
					 cfg->client_address, cfg->http_address,
					 NULL, &j->err);
		if (j->rv == CAIRN_EALREADY_MEMBER &&
		    cairn_status(j->client, NULL, s, NULL) == 0 &&
		    listed_as_self(cfg, s))
			j->rv = 0;
		return;
	case JOIN_CHECK:
	case JOIN_CATCH_UP:
		leader_status(j, s);
		return;
	case JOIN_PROMOTE:
		j->rv = cairn_member_promote(j->client, cfg->id, NULL, &j->err);
		return;
	case JOIN_DONE:
		j->rv = 0;
		return;
	}
}

/* ---- the loop ---- */

static void on_timer(uv_timer_t *t);

static void schedule(struct join *j, unsigned ms)
{
	if (!j->stopping)
		uv_timer_start(&j->timer, on_timer, ms, 0);
}

static void retry_later(struct join *j, const char *what)
{
	log_warn("join_retry", "step=%s error=\"%s\" backoff_ms=%u", what,
		 j->err.message[0] != '\0' ? j->err.message
					   : cairn_strerror(j->rv),
		 j->backoff_ms);
	schedule(j, j->backoff_ms);
	j->backoff_ms *= 2;
	if (j->backoff_ms > JOIN_BACKOFF_MAX_MS)
		j->backoff_ms = JOIN_BACKOFF_MAX_MS;
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct join *j = w->data;
	struct node *n = j->n;
	struct consensus_status *own;

	j->working = false;
	if (j->stopping || status != 0) {
		finish(j);
		return;
	}
	switch (j->step) {
	case JOIN_CHECK:
		if (j->rv != 0) {
			retry_later(j, "check");
			return;
		}
		j->backoff_ms = JOIN_BACKOFF_MIN_MS;
		if (j->self_role == 1) {
			log_info("join_done",
				 "id=%llu reason=\"a voter already\"",
				 (unsigned long long)n->cfg->id);
			j->step = JOIN_DONE;
			finish(j);
			return;
		}
		if (j->self_role == 0) {
			log_info("join_resumed", "step=catch_up");
			j->step = JOIN_CATCH_UP;
		} else {
			j->step = JOIN_ADD;
		}
		schedule(j, 0);
		return;
	case JOIN_ADD:
		if (j->rv != 0) {
			retry_later(j, "add");
			return;
		}
		log_info("join_added", "id=%llu",
			 (unsigned long long)n->cfg->id);
		j->step = JOIN_CATCH_UP;
		j->backoff_ms = JOIN_BACKOFF_MIN_MS;
		schedule(j, 0);
		return;
	case JOIN_CATCH_UP:
		if (j->rv != 0) {
			retry_later(j, "catch_up");
			return;
		}
		own = malloc(sizeof *own);
		if (own == NULL) {
			schedule(j, JOIN_POLL_MS);
			return;
		}
		consensus_status(&n->cons, own);
		if (own->applied_index + JOIN_CATCH_UP_SLACK >=
			    j->leader_commit &&
		    (own->applied_index > 0 || j->leader_commit == 0)) {
			log_info("join_caught_up",
				 "applied_index=%llu leader_commit_index=%llu",
				 (unsigned long long)own->applied_index,
				 (unsigned long long)j->leader_commit);
			j->step = JOIN_PROMOTE;
			j->backoff_ms = JOIN_BACKOFF_MIN_MS;
			schedule(j, 0);
		} else {
			log_debug("join_catching_up",
				  "applied_index=%llu leader_commit_index=%llu",
				  (unsigned long long)own->applied_index,
				  (unsigned long long)j->leader_commit);
			schedule(j, JOIN_POLL_MS);
		}
		free(own);
		return;
	case JOIN_PROMOTE:
		if (j->rv != 0) {
			retry_later(j, "promote");
			return;
		}
		log_info("join_promoted", "id=%llu",
			 (unsigned long long)n->cfg->id);
		j->step = JOIN_DONE;
		finish(j);
		return;
	case JOIN_DONE:
		finish(j);
		return;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct join *j = t->data;
	struct node *n = j->n;
	int rv;

	if (j->stopping || j->working)
		return;
	if (j->step == JOIN_ADD)
		log_info("join_requested", "seeds=%s raft=%s client=%s http=%s",
			 n->cfg->join_seeds, n->cfg->raft_address,
			 n->cfg->client_address, n->cfg->http_address);
	j->work.data = j;
	rv = uv_queue_work(n->loop, &j->work, work_cb, after_work_cb);
	if (rv != 0) {
		log_warn("join_retry", "step=queue error=\"%s\"",
			 uv_strerror(rv));
		schedule(j, JOIN_BACKOFF_MAX_MS);
		return;
	}
	j->working = true;
}

int join_start(struct node *n)
{
	struct cairn_options o;
	struct cairn_error err;
	struct join *j;
	int rv;

	if (!n->cfg->join || the_join != NULL)
		return 0;
	j = calloc(1, sizeof *j);
	if (j == NULL)
		return UV_ENOMEM;
	j->status = calloc(1, sizeof *j->status);
	if (j->status == NULL) {
		free(j);
		return UV_ENOMEM;
	}
	j->n = n;
	j->backoff_ms = JOIN_BACKOFF_MIN_MS;
	memset(&o, 0, sizeof o);
	o.deadline_ms = JOIN_CALL_DEADLINE_MS;
	rv = cairn_open(n->cfg->join_seeds, &o, &j->client, &err);
	if (rv != 0) {
		log_error("join_failed", "error=\"%s\"", err.message);
		free(j->status);
		free(j);
		return UV_EINVAL;
	}
	rv = uv_timer_init(n->loop, &j->timer);
	if (rv != 0) {
		cairn_close(j->client);
		free(j->status);
		free(j);
		return rv;
	}
	j->timer.data = j;
	j->timer_open = true;
	the_join = j;
	uv_timer_start(&j->timer, on_timer, 0, 0);
	return 0;
}

void join_stop(struct node *n)
{
	struct join *j = the_join;

	(void)n;
	if (j == NULL || j->stopping)
		return;
	j->stopping = true;
	uv_timer_stop(&j->timer);
	finish(j);
}
