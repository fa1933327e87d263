/* node/admin.c: the membership requests of the binary protocol,
 * MEMBER_CHANGE (add, remove, promote, demote) and LEADER_TRANSFER. Both go
 * to the leader; a follower answers NOT_LEADER with the leader's address,
 * as for appends. The work is consensus_change and consensus_transfer
 * (consensus/change.c); this file decodes, checks the addresses, maps the
 * outcome to wire error codes, and answers MEMBERS (the member list after
 * the change) or LEADER. Called by handlers_dispatch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* A request waiting for consensus. */
struct admin_req {
	struct node_conn *conn;             /* borrowed; holds a reference */
	uint64_t request_id;                /* echoed in the reply */
	struct consensus_change change;     /* MEMBER_CHANGE */
	struct consensus_transfer transfer; /* LEADER_TRANSFER */
};

static struct wire_bytes text_bytes(const char *s)
{
	struct wire_bytes b;

	b.len = (uint32_t)strlen(s);
	b.p = b.len > 0 ? (const uint8_t *)s : NULL;
	return b;
}

/* Answers NOT_LEADER with the leader's client address, or UNAVAILABLE when
 * no leader is known. */
static void reply_not_leader(struct node_conn *c, uint64_t request_id)
{
	struct node *n = c->node;
	char address[CONSENSUS_ADDRESS_MAX];
	struct wire_buf *b;
	struct wire_err e;
	uint64_t id;

	if (!n->cons_open || !consensus_leader(&n->cons, &id, address)) {
		conn_reply_error(c, request_id, WIRE_EUNAVAILABLE,
				 "no leader known");
		return;
	}
	b = conn_out(c);
	if (b == NULL)
		return;
	memset(&e, 0, sizeof e);
	e.code = WIRE_ENOT_LEADER;
	e.leader = text_bytes(address);
	e.message = text_bytes("not the leader");
	if (wire_encode_error(b, request_id, &e) != 0)
		log_error("reply_failed", "type=ERROR code=%u",
			  (unsigned)e.code);
	conn_flush(c);
}

/* The wire code of a CONSENSUS_E* code. */
static uint32_t wire_code(int status)
{
	switch (status) {
	case CONSENSUS_EINVALID:
		return WIRE_EINVALID;
	case CONSENSUS_EUNAVAILABLE:
	case CONSENSUS_ESHUTDOWN:
		return WIRE_EUNAVAILABLE;
	case CONSENSUS_EUNKNOWN_OUTCOME:
		return WIRE_EUNKNOWN_OUTCOME;
	case CONSENSUS_EBUSY:
		return WIRE_EBUSY;
	case CONSENSUS_ECHANGE_IN_PROGRESS:
		return WIRE_ECHANGE_IN_PROGRESS;
	case CONSENSUS_EBELOW_MIN_VOTERS:
		return WIRE_EBELOW_MIN_VOTERS;
	case CONSENSUS_ENO_SUCH_MEMBER:
		return WIRE_ENO_SUCH_MEMBER;
	case CONSENSUS_EALREADY_MEMBER:
		return WIRE_EALREADY_MEMBER;
	default:
		return WIRE_EINTERNAL;
	}
}

/* Answers a refusal or failure: NOT_LEADER with the leader, else the code
 * and @message (or the code's text). */
static void reply_status(struct node_conn *c, uint64_t request_id, int status,
			 const char *message)
{
	if (status == CONSENSUS_ENOT_LEADER) {
		reply_not_leader(c, request_id);
		return;
	}
	conn_reply_error(c, request_id, wire_code(status),
			 message != NULL && message[0] != '\0'
				 ? message
				 : consensus_strerror(status));
}

/* Answers MEMBERS with the member list as this node has it now. */
static void reply_members(struct node_conn *c, uint64_t request_id)
{
	struct node *n = c->node;
	struct wire_member wm[WIRE_MEMBERS_MAX];
	struct consensus_status *st;
	struct wire_buf *b;
	uint32_t count;
	int rv;

	b = conn_out(c);
	if (b == NULL)
		return;
	st = malloc(sizeof *st);
	if (st == NULL) {
		conn_reply_error(c, request_id, WIRE_EINTERNAL,
				 "out of memory");
		return;
	}
	consensus_status(&n->cons, st);
	count = st->n_members < WIRE_MEMBERS_MAX ? st->n_members
						 : WIRE_MEMBERS_MAX;
	memset(wm, 0, sizeof wm);
	for (uint32_t k = 0; k < count; k++) {
		wm[k].id = st->members[k].id;
		wm[k].role = st->members[k].role;
		wm[k].raft_address = text_bytes(st->members[k].raft_address);
		wm[k].client_address =
			text_bytes(st->members[k].client_address);
		wm[k].http_address = text_bytes(st->members[k].http_address);
	}
	rv = wire_encode_members(b, request_id, count, wm);
	free(st);
	if (rv != 0) {
		log_error("reply_failed", "type=MEMBERS error=%d", rv);
		conn_reply_error(c, request_id, WIRE_EINTERNAL,
				 "cannot encode the member list");
		return;
	}
	conn_flush(c);
}

static void reply_leader(struct node_conn *c, uint64_t request_id,
			 uint64_t leader)
{
	struct wire_buf *b = conn_out(c);

	if (b == NULL)
		return;
	if (wire_encode_leader(b, request_id, leader) != 0) {
		conn_reply_error(c, request_id, WIRE_EINTERNAL,
				 "cannot encode the reply");
		return;
	}
	conn_flush(c);
}

static struct admin_req *req_new(struct node_conn *c, uint64_t request_id)
{
	struct admin_req *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->conn = c;
	r->request_id = request_id;
	conn_request_begin(c, sizeof *r);
	return r;
}

static void req_free(struct admin_req *r)
{
	struct node_conn *c = r->conn;

	free(r);
	conn_request_end(c, sizeof *r);
}

/* Copies a wire address into a member field; false when it does not fit
 * or holds a NUL byte. */
static bool copy_address(char *dst, struct wire_bytes s)
{
	if (s.len >= CONSENSUS_ADDRESS_MAX ||
	    (s.len > 0 && memchr(s.p, '\0', s.len) != NULL))
		return false;
	if (s.len > 0)
		memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
	return true;
}

static void on_change(struct consensus_change *cc, int status)
{
	struct admin_req *r = cc->data;

	if (status == 0)
		reply_members(r->conn, r->request_id);
	else
		reply_status(r->conn, r->request_id, status,
			     r->conn->node->cons.errmsg);
	req_free(r);
}

static int handle_member_change(struct node_conn *c,
				const struct wire_header *h,
				const uint8_t *body)
{
	struct node *n = c->node;
	struct wire_member_change m;
	struct admin_req *r;
	int rv;

	if (wire_decode_member_change(body, h->body_len, &m) != WIRE_OK)
		return WIRE_EMALFORMED;
	if (!n->cons_open) {
		conn_reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
				 "shutting down");
		return 0;
	}
	r = req_new(c, h->request_id);
	if (r == NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINTERNAL,
				 "out of memory");
		return 0;
	}
	r->change.op = m.op; /* the same values as consensus's */
	r->change.id = m.id;
	r->change.force = (m.flags & WIRE_MEMBER_FORCE) != 0;
	r->change.min_voters = n->cfg->min_voters;
	r->change.data = r;
	if (!copy_address(r->change.raft_address, m.raft_address) ||
	    !copy_address(r->change.client_address, m.client_address) ||
	    !copy_address(r->change.http_address, m.http_address)) {
		conn_reply_error(c, h->request_id, WIRE_EINVALID,
				 "an address is longer than 255 bytes or "
				 "holds a NUL byte");
		req_free(r);
		return 0;
	}
	rv = consensus_change(&n->cons, &r->change, on_change);
	if (rv == CONSENSUS_EDONE) {
		reply_members(c, h->request_id);
		req_free(r);
	} else if (rv != 0) {
		log_info("member_change_refused",
			 "peer=%s op=%u id=%llu "
			 "reason=\"%s\"",
			 c->peer, (unsigned)m.op, (unsigned long long)m.id,
			 n->cons.errmsg);
		reply_status(c, h->request_id, rv, n->cons.errmsg);
		req_free(r);
	}
	return 0;
}

static void on_transfer(struct consensus_transfer *t, int status)
{
	struct admin_req *r = t->data;

	if (status == 0)
		reply_leader(r->conn, r->request_id, t->new_leader);
	else
		reply_status(r->conn, r->request_id, status,
			     "leader transfer: the target did not take "
			     "over in time");
	req_free(r);
}

static int handle_leader_transfer(struct node_conn *c,
				  const struct wire_header *h,
				  const uint8_t *body)
{
	struct node *n = c->node;
	struct admin_req *r;
	uint64_t id;
	int rv;

	if (wire_decode_leader_transfer(body, h->body_len, &id) != WIRE_OK)
		return WIRE_EMALFORMED;
	if (!n->cons_open) {
		conn_reply_error(c, h->request_id, WIRE_EUNAVAILABLE,
				 "shutting down");
		return 0;
	}
	r = req_new(c, h->request_id);
	if (r == NULL) {
		conn_reply_error(c, h->request_id, WIRE_EINTERNAL,
				 "out of memory");
		return 0;
	}
	r->transfer.id = id;
	r->transfer.data = r;
	rv = consensus_transfer(&n->cons, &r->transfer, on_transfer);
	if (rv == CONSENSUS_EDONE) {
		reply_leader(c, h->request_id, r->transfer.new_leader);
		req_free(r);
	} else if (rv != 0) {
		reply_status(c, h->request_id, rv, n->cons.errmsg);
		req_free(r);
	}
	return 0;
}

int admin_handle(struct node_conn *c, const struct wire_header *h,
		 const uint8_t *body)
{
	if (h->type == WIRE_MEMBER_CHANGE)
		return handle_member_change(c, h, body);
	return handle_leader_transfer(c, h, body);
}
