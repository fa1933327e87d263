/* Online membership changes and leadership transfers on the leader: member
 * add, remove, promote and demote mapped to libraft's raft_add, raft_assign
 * and raft_remove, the member table kept in step through member entries
 * ("CRNM", members.c), and raft_transfer. node/admin.c calls it through
 * consensus.h.
 *
 * One change at a time. A change is a small state machine (step_):
 *
 *   ADD:     RAFT_ADD (raft_add as spare) -> ASSIGN (raft_assign standby)
 *            -> ENTRY (member entry with its addresses) -> done
 *   REMOVE:  RAFT_REMOVE (raft_remove) -> ENTRY (delete its record) -> done
 *   PROMOTE: ASSIGN (raft_assign voter: libraft catches it up first)
 *   DEMOTE:  ASSIGN (raft_assign standby)
 *
 * Each step starts from the previous one's callback; any failure ends the
 * change with its status. A removed leader steps down once the removal is
 * committed; the next leader deletes its record (members_propose). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus_int.h"
#include "log.h"

/* Steps of a change. */
enum change_step {
	STEP_NONE = 0,
	STEP_RAFT_ADD = 1,
	STEP_ASSIGN = 2,
	STEP_RAFT_REMOVE = 3,
	STEP_ENTRY = 4,
};

struct change_state {
	struct consensus_int *i;         /* borrowed: the owner */
	struct raft_change change;       /* the libraft change in flight */
	struct raft_apply apply;         /* the member entry in flight */
	struct raft_transfer transfer;   /* the transfer in flight */
	struct consensus_change *req;    /* borrowed: in flight, or NULL */
	struct consensus_transfer *treq; /* borrowed: in flight, or NULL */
	bool raft_busy;                  /* a libraft callback is due */
};

static int fail_with(struct consensus_int *i, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_with(struct consensus_int *i, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(i->c->errmsg, sizeof i->c->errmsg, fmt, ap);
	va_end(ap);
	return code;
}

static const char *op_name(uint8_t op)
{
	switch (op) {
	case CONSENSUS_CHANGE_ADD:
		return "add";
	case CONSENSUS_CHANGE_REMOVE:
		return "remove";
	case CONSENSUS_CHANGE_PROMOTE:
		return "promote";
	case CONSENSUS_CHANGE_DEMOTE:
		return "demote";
	default:
		return "?";
	}
}

void change_free(struct consensus_int *i)
{
	free(i->change);
	i->change = NULL;
}

static struct change_state *state_get(struct consensus_int *i)
{
	if (i->change == NULL) {
		i->change = calloc(1, sizeof *i->change);
		if (i->change != NULL)
			i->change->i = i;
	}
	return i->change;
}

static const struct raft_server *server_find(const struct consensus_int *i,
					     uint64_t id)
{
	const struct raft_configuration *conf = &i->raft.configuration;
	unsigned k;

	for (k = 0; k < conf->n; k++)
		if (conf->servers[k].id == id)
			return &conf->servers[k];
	return NULL;
}

static unsigned voters(const struct consensus_int *i)
{
	const struct raft_configuration *conf = &i->raft.configuration;
	unsigned k;
	unsigned n = 0;

	for (k = 0; k < conf->n; k++)
		n += conf->servers[k].role == RAFT_VOTER;
	return n;
}

/* Maps a libraft error of a change or transfer call to ours. */
static int refused(struct consensus_int *i, const char *what, int rv)
{
	switch (rv) {
	case RAFT_NOTLEADER:
		return fail_with(i, consensus_int_not_leader(i),
				 "%s: not the leader", what);
	case RAFT_CANTCHANGE:
		return fail_with(i, CONSENSUS_ECHANGE_IN_PROGRESS,
				 "%s: a configuration change is in progress "
				 "(retry once it has committed)",
				 what);
	case RAFT_NOMEM:
		return fail_with(i, CONSENSUS_ENOMEM, "%s: out of memory",
				 what);
	case RAFT_NOTFOUND:
	case RAFT_BADID:
		return fail_with(i, CONSENSUS_ENO_SUCH_MEMBER, "%s: %s", what,
				 raft_errmsg(&i->raft));
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return fail_with(i, CONSENSUS_EALREADY_MEMBER, "%s: %s", what,
				 raft_errmsg(&i->raft));
	default:
		return fail_with(i, CONSENSUS_EINVALID, "%s: %s: %s", what,
				 raft_strerror(rv), raft_errmsg(&i->raft));
	}
}

/* Maps the status of a libraft callback to ours. */
static int cb_status(const struct consensus_int *i, int status)
{
	if (status == 0)
		return 0;
	if (i->close_step != CLOSE_NONE)
		return CONSENSUS_ESHUTDOWN;
	switch (status) {
	case RAFT_NOCONNECTION:
		/* libraft gave up catching the new voter up. */
		return CONSENSUS_EINVALID;
	default:
		return CONSENSUS_EUNKNOWN_OUTCOME;
	}
}

/* ------------------------------------------------------------------------
 * Membership changes
 * ------------------------------------------------------------------------ */

static void change_done(struct change_state *s, int status)
{
	struct consensus_change *req = s->req;

	assert(req != NULL);
	s->req = NULL;
	if (status == 0) {
		log_info("member_change_done", "op=%s id=%llu",
			 op_name(req->op), (unsigned long long)req->id);
	} else {
		if (status == CONSENSUS_EINVALID)
			fail_with(s->i, status,
				  "%s %llu: the member did not catch up with "
				  "the log (is it running, and reachable at "
				  "its raft address?)",
				  op_name(req->op),
				  (unsigned long long)req->id);
		else
			fail_with(s->i, status, "%s %llu: %s", op_name(req->op),
				  (unsigned long long)req->id,
				  consensus_strerror(status));
		log_warn("member_change_failed",
			 "op=%s id=%llu step=%u reason=\"%s\"",
			 op_name(req->op), (unsigned long long)req->id,
			 (unsigned)req->step_, s->i->c->errmsg);
	}
	req->cb_(req, status);
}

static void entry_cb(struct raft_apply *a, int status, void *result)
{
	struct change_state *s = a->data;

	(void)result;
	s->raft_busy = false;
	change_done(s, cb_status(s->i, status));
}

/* Proposes the member entry of the change: the new member's record, or
 * the deletion of the removed one's. */
static int propose_entry(struct change_state *s)
{
	struct consensus_int *i = s->i;
	struct consensus_change *req = s->req;
	struct member_record rec;
	struct raft_buffer buf;
	int rv;

	memset(&rec, 0, sizeof rec);
	rec.id = req->id;
	if (req->op == CONSENSUS_CHANGE_ADD) {
		rec.op = CONSENSUS_MEMBER_SET;
		memcpy(rec.raft_address, req->raft_address,
		       sizeof rec.raft_address);
		memcpy(rec.client_address, req->client_address,
		       sizeof rec.client_address);
		memcpy(rec.http_address, req->http_address,
		       sizeof rec.http_address);
	} else {
		rec.op = CONSENSUS_MEMBER_DELETE;
	}
	buf.len = member_entry_size(&rec, 1);
	buf.base = raft_malloc(buf.len);
	if (buf.base == NULL)
		return CONSENSUS_ENOMEM;
	member_entry_encode(&rec, 1, buf.base);
	s->apply.data = s;
	rv = raft_apply(&i->raft, &s->apply, &buf, 1, entry_cb);
	if (rv != 0) {
		raft_free(buf.base);
		if (rv == RAFT_NOTLEADER)
			return CONSENSUS_EUNKNOWN_OUTCOME;
		return consensus_int_refused(i, "propose member entry", rv);
	}
	req->step_ = STEP_ENTRY;
	s->raft_busy = true;
	return 0;
}

static void on_change(struct raft_change *rc, int status);

/* Starts the step after @step; returns 0 or a status that ends the
 * change. */
static int next_step(struct change_state *s)
{
	struct consensus_int *i = s->i;
	struct consensus_change *req = s->req;
	int rv;

	switch (req->step_) {
	case STEP_RAFT_ADD:
		/* A spare does not replicate: make it a standby. */
		s->change.data = s;
		rv = raft_assign(&i->raft, &s->change, req->id, RAFT_STANDBY,
				 on_change);
		if (rv != 0) {
			log_warn("member_assign_failed",
				 "id=%llu reason=\"%s\"",
				 (unsigned long long)req->id,
				 raft_errmsg(&i->raft));
			return rv == RAFT_NOTLEADER ? CONSENSUS_EUNKNOWN_OUTCOME
						    : CONSENSUS_EUNAVAILABLE;
		}
		req->step_ = STEP_ASSIGN;
		s->raft_busy = true;
		return 0;
	case STEP_ASSIGN:
		if (req->op == CONSENSUS_CHANGE_ADD)
			return propose_entry(s);
		change_done(s, 0);
		return 0;
	case STEP_RAFT_REMOVE:
		return propose_entry(s);
	default:
		assert(false);
		return CONSENSUS_EINVALID;
	}
}

/* Whether the change has a step left after the one whose callback ran. */
static bool more_steps(const struct consensus_change *req)
{
	return req->step_ == STEP_RAFT_ADD || req->step_ == STEP_RAFT_REMOVE ||
	       (req->step_ == STEP_ASSIGN && req->op == CONSENSUS_CHANGE_ADD);
}

static void on_change(struct raft_change *rc, int status)
{
	struct change_state *s = rc->data;
	int rv;

	s->raft_busy = false;
	if (s->req == NULL)
		return;
	rv = cb_status(s->i, status);
	if (rv == 0 && s->i->close_step != CLOSE_NONE)
		rv = CONSENSUS_ESHUTDOWN;
	if (rv == 0 && more_steps(s->req) && !consensus_int_is_leader(s->i)) {
		/* The configuration committed but the member entry cannot
		 * follow from here. A removal is complete (the next leader
		 * deletes the record); an addition is not. */
		change_done(s, s->req->op == CONSENSUS_CHANGE_REMOVE
				       ? 0
				       : CONSENSUS_EUNKNOWN_OUTCOME);
		return;
	}
	if (rv == 0)
		rv = next_step(s);
	if (rv != 0 && s->req != NULL)
		change_done(s, rv);
}

/* Checks @req against the configuration; returns 0, CONSENSUS_EDONE or an
 * error with c->errmsg. */
static int check_change(struct consensus_int *i,
			const struct consensus_change *req)
{
	const struct raft_configuration *conf = &i->raft.configuration;
	const struct raft_server *srv;
	unsigned k;
	unsigned n_voters = voters(i);
	const char *what = op_name(req->op);

	if (req->id == 0)
		return fail_with(i, CONSENSUS_EINVALID, "%s: member id 0",
				 what);
	srv = server_find(i, req->id);
	switch (req->op) {
	case CONSENSUS_CHANGE_ADD:
		if (memchr(req->raft_address, '\0', CONSENSUS_ADDRESS_MAX) ==
			    NULL ||
		    memchr(req->client_address, '\0', CONSENSUS_ADDRESS_MAX) ==
			    NULL ||
		    memchr(req->http_address, '\0', CONSENSUS_ADDRESS_MAX) ==
			    NULL ||
		    req->raft_address[0] == '\0')
			return fail_with(i, CONSENSUS_EINVALID,
					 "add %llu: the raft address is "
					 "missing or too long",
					 (unsigned long long)req->id);
		if (srv != NULL)
			return fail_with(i, CONSENSUS_EALREADY_MEMBER,
					 "add %llu: id %llu is already a "
					 "member (raft address %s)",
					 (unsigned long long)req->id,
					 (unsigned long long)req->id,
					 srv->address);
		for (k = 0; k < conf->n; k++)
			if (strcmp(conf->servers[k].address,
				   req->raft_address) == 0)
				return fail_with(
					i, CONSENSUS_EALREADY_MEMBER,
					"add %llu: raft address %s belongs to "
					"member %llu",
					(unsigned long long)req->id,
					req->raft_address,
					(unsigned long long)conf->servers[k]
						.id);
		if (conf->n >= CONSENSUS_MEMBERS_MAX)
			return fail_with(i, CONSENSUS_EINVALID,
					 "add %llu: the cluster has %u "
					 "members, at most %d",
					 (unsigned long long)req->id, conf->n,
					 CONSENSUS_MEMBERS_MAX);
		return 0;
	case CONSENSUS_CHANGE_REMOVE:
	case CONSENSUS_CHANGE_PROMOTE:
	case CONSENSUS_CHANGE_DEMOTE:
		break;
	default:
		return fail_with(i, CONSENSUS_EINVALID,
				 "membership change: unknown operation %u",
				 (unsigned)req->op);
	}
	if (srv == NULL)
		return fail_with(i, CONSENSUS_ENO_SUCH_MEMBER,
				 "%s %llu: no member has id %llu", what,
				 (unsigned long long)req->id,
				 (unsigned long long)req->id);
	if (req->op == CONSENSUS_CHANGE_PROMOTE)
		return srv->role == RAFT_VOTER ? CONSENSUS_EDONE : 0;
	if (req->op == CONSENSUS_CHANGE_DEMOTE) {
		if (srv->role == RAFT_STANDBY)
			return CONSENSUS_EDONE;
		if (srv->id == i->id)
			return fail_with(i, CONSENSUS_EINVALID,
					 "demote %llu: it is the leader; "
					 "transfer leadership first",
					 (unsigned long long)req->id);
	}
	if (srv->role != RAFT_VOTER)
		return 0;
	if (n_voters <= 1)
		return fail_with(i, CONSENSUS_EBELOW_MIN_VOTERS,
				 "%s %llu: it is the last voter; a cluster "
				 "needs at least one, even with force",
				 what, (unsigned long long)req->id);
	if (n_voters - 1 < req->min_voters && !req->force)
		return fail_with(i, CONSENSUS_EBELOW_MIN_VOTERS,
				 "%s %llu: would leave %u voters, below the "
				 "minimum of %u (use force)",
				 what, (unsigned long long)req->id,
				 n_voters - 1, req->min_voters);
	return 0;
}

int consensus_change(struct consensus *c, struct consensus_change *req,
		     consensus_change_cb cb)
{
	struct consensus_int *i = c->i;
	struct change_state *s;
	int rv;

	assert(cb != NULL);
	if (i == NULL)
		return CONSENSUS_ESHUTDOWN;
	if (i->close_step != CLOSE_NONE)
		return fail_with(i, CONSENSUS_ESHUTDOWN, "shutting down");
	if (raft_state(&i->raft) != RAFT_LEADER)
		return fail_with(i, consensus_int_not_leader(i),
				 "%s: not the leader", op_name(req->op));
	s = state_get(i);
	if (s == NULL)
		return fail_with(i, CONSENSUS_ENOMEM, "%s: out of memory",
				 op_name(req->op));
	if (s->req != NULL || s->treq != NULL || s->raft_busy ||
	    raft_transferee(&i->raft) != 0)
		return fail_with(i, CONSENSUS_ECHANGE_IN_PROGRESS,
				 "%s %llu: another membership change or "
				 "leadership transfer is in progress",
				 op_name(req->op), (unsigned long long)req->id);
	rv = check_change(i, req);
	if (rv != 0)
		return rv;
	s->change.data = s;
	switch (req->op) {
	case CONSENSUS_CHANGE_ADD:
		rv = raft_add(&i->raft, &s->change, req->id, req->raft_address,
			      on_change);
		req->step_ = STEP_RAFT_ADD;
		break;
	case CONSENSUS_CHANGE_REMOVE:
		rv = raft_remove(&i->raft, &s->change, req->id, on_change);
		req->step_ = STEP_RAFT_REMOVE;
		break;
	case CONSENSUS_CHANGE_PROMOTE:
		rv = raft_assign(&i->raft, &s->change, req->id, RAFT_VOTER,
				 on_change);
		req->step_ = STEP_ASSIGN;
		break;
	default:
		rv = raft_assign(&i->raft, &s->change, req->id, RAFT_STANDBY,
				 on_change);
		req->step_ = STEP_ASSIGN;
		break;
	}
	if (rv != 0) {
		req->step_ = STEP_NONE;
		return refused(i, op_name(req->op), rv);
	}
	req->cb_ = cb;
	s->req = req;
	s->raft_busy = true;
	log_info("member_change",
		 "op=%s id=%llu raft=%s client=%s http=%s "
		 "force=%d",
		 op_name(req->op), (unsigned long long)req->id,
		 req->op == CONSENSUS_CHANGE_ADD ? req->raft_address : "-",
		 req->op == CONSENSUS_CHANGE_ADD ? req->client_address : "-",
		 req->op == CONSENSUS_CHANGE_ADD ? req->http_address : "-",
		 (int)req->force);
	return 0;
}

/* ------------------------------------------------------------------------
 * Leadership transfer
 * ------------------------------------------------------------------------ */

static void transfer_cb(struct raft_transfer *t)
{
	struct change_state *s = t->data;
	struct consensus_transfer *req = s->treq;
	struct consensus_int *i = s->i;
	const char *address = NULL;
	raft_id leader = 0;
	int status;

	if (req == NULL)
		return;
	s->treq = NULL;
	if (i->close_step != CLOSE_NONE) {
		req->cb_(req, CONSENSUS_ESHUTDOWN);
		return;
	}
	raft_leader(&i->raft, &leader, &address);
	req->new_leader = leader;
	status = leader != 0 && leader != i->id ? 0 : CONSENSUS_EUNAVAILABLE;
	log_info("leadership_transferred", "to=%llu leader=%llu status=%d",
		 (unsigned long long)t->id, (unsigned long long)leader, status);
	req->cb_(req, status);
}

/* The voter (not this node) whose log matches ours furthest. */
static uint64_t most_caught_up(struct consensus_int *i)
{
	const struct raft_configuration *conf = &i->raft.configuration;
	uint64_t best = 0;
	raft_index best_index = 0;
	unsigned k;

	for (k = 0; k < conf->n; k++) {
		const struct raft_server *srv = &conf->servers[k];
		raft_index match = 0;

		if (srv->id == i->id || srv->role != RAFT_VOTER)
			continue;
		if (raft_match_index(&i->raft, srv->id, &match) != 0)
			continue;
		if (best == 0 || match > best_index) {
			best = srv->id;
			best_index = match;
		}
	}
	return best;
}

int consensus_transfer(struct consensus *c, struct consensus_transfer *req,
		       consensus_transfer_cb cb)
{
	struct consensus_int *i = c->i;
	const struct raft_server *srv;
	struct change_state *s;
	uint64_t to = req->id;
	int rv;

	assert(cb != NULL);
	req->new_leader = 0;
	if (i == NULL)
		return CONSENSUS_ESHUTDOWN;
	if (i->close_step != CLOSE_NONE)
		return fail_with(i, CONSENSUS_ESHUTDOWN, "shutting down");
	if (raft_state(&i->raft) != RAFT_LEADER)
		return fail_with(i, consensus_int_not_leader(i),
				 "leader transfer: not the leader");
	s = state_get(i);
	if (s == NULL)
		return fail_with(i, CONSENSUS_ENOMEM,
				 "leader transfer: out of memory");
	if (s->req != NULL || s->treq != NULL || raft_transferee(&i->raft) != 0)
		return fail_with(i, CONSENSUS_ECHANGE_IN_PROGRESS,
				 "leader transfer: another membership change "
				 "or leadership transfer is in progress");
	if (to == i->id) {
		req->new_leader = i->id;
		return CONSENSUS_EDONE;
	}
	if (to != 0) {
		srv = server_find(i, to);
		if (srv == NULL)
			return fail_with(i, CONSENSUS_ENO_SUCH_MEMBER,
					 "leader transfer: no member has id "
					 "%llu",
					 (unsigned long long)to);
		if (srv->role != RAFT_VOTER)
			return fail_with(i, CONSENSUS_EINVALID,
					 "leader transfer: member %llu is not "
					 "a voter",
					 (unsigned long long)to);
	} else {
		to = most_caught_up(i);
		if (to == 0)
			return fail_with(i, CONSENSUS_EINVALID,
					 "leader transfer: no other voter");
	}
	s->transfer.data = s;
	rv = raft_transfer(&i->raft, &s->transfer, to, transfer_cb);
	if (rv != 0)
		return refused(i, "leader transfer", rv);
	req->cb_ = cb;
	s->treq = req;
	log_info("leadership_transfer", "to=%llu", (unsigned long long)to);
	return 0;
}
