/* The replicated member table (node id -> Raft, client and HTTP
 * addresses): the encoding of member entries ("CRNM") and of snapshot
 * manifests ("CRNS"), applying member entries on every replica through
 * store_apply_meta(), and the leader's proposals of records that are
 * missing or stale. The byte layouts are in docs/consensus.md. Used by
 * fsm.c (apply, manifests) and consensus.c (the tick proposes). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus_int.h"
#include "log.h"

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	put_u16(p, (uint16_t)v);
	put_u16(p + 2, (uint16_t)(v >> 16));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)v);
	put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)get_u16(p) | ((uint32_t)get_u16(p + 2) << 16);
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

static size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* ------------------------------------------------------------------------
 * Records: the body of member entries and manifests
 * ------------------------------------------------------------------------ */

static size_t record_size(const char *raft, const char *client,
			  const char *http)
{
	return CONSENSUS_MEMBER_RECORD_FIXED + strlen(raft) + strlen(client) +
	       strlen(http);
}

static size_t record_encode(uint8_t *p, uint64_t id, uint8_t op,
			    const char *raft, const char *client,
			    const char *http)
{
	size_t r = strlen(raft);
	size_t c = strlen(client);
	size_t h = strlen(http);

	put_u64(p, id);
	p[8] = op;
	p[9] = 0;
	put_u16(p + 10, (uint16_t)r);
	put_u16(p + 12, (uint16_t)c);
	put_u16(p + 14, (uint16_t)h);
	p += CONSENSUS_MEMBER_RECORD_FIXED;
	memcpy(p, raft, r);
	memcpy(p + r, client, c);
	memcpy(p + r + c, http, h);
	return CONSENSUS_MEMBER_RECORD_FIXED + r + c + h;
}

/* Copies @len bytes at @p into @out as a C string: at most
 * CONSENSUS_ADDRESS_MAX - 1 bytes without NUL. */
static int string_decode(const uint8_t *p, size_t len, char *out)
{
	if (len >= CONSENSUS_ADDRESS_MAX || memchr(p, '\0', len) != NULL)
		return -1;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* Decodes one record at @p with @avail bytes left; returns its size or 0
 * when malformed. */
static size_t record_decode(const uint8_t *p, size_t avail, uint64_t *id,
			    uint8_t *op, char *raft, char *client, char *http)
{
	size_t r;
	size_t c;
	size_t h;

	if (avail < CONSENSUS_MEMBER_RECORD_FIXED)
		return 0;
	*id = get_u64(p);
	*op = p[8];
	r = get_u16(p + 10);
	c = get_u16(p + 12);
	h = get_u16(p + 14);
	if (p[9] != 0 || *id == 0)
		return 0;
	if (r + c + h > avail - CONSENSUS_MEMBER_RECORD_FIXED)
		return 0;
	p += CONSENSUS_MEMBER_RECORD_FIXED;
	if (string_decode(p, r, raft) != 0 ||
	    string_decode(p + r, c, client) != 0 ||
	    string_decode(p + r + c, h, http) != 0)
		return 0;
	return CONSENSUS_MEMBER_RECORD_FIXED + r + c + h;
}

/* Checks that [p, end) is zero (padding). */
static bool zeros(const uint8_t *p, const uint8_t *end)
{
	for (; p < end; p++)
		if (*p != 0)
			return false;
	return true;
}

/* ------------------------------------------------------------------------
 * Member entries
 * ------------------------------------------------------------------------ */

size_t member_entry_size(const struct member_record *recs, unsigned n)
{
	size_t len = CONSENSUS_MEMBERS_HEADER;
	unsigned k;

	for (k = 0; k < n; k++)
		len += record_size(recs[k].raft_address, recs[k].client_address,
				   recs[k].http_address);
	return pad8(len);
}

size_t member_entry_encode(const struct member_record *recs, unsigned n,
			   void *buf)
{
	size_t total = member_entry_size(recs, n);
	uint8_t *p = buf;
	size_t off = CONSENSUS_MEMBERS_HEADER;
	unsigned k;

	memset(buf, 0, total);
	for (k = 0; k < n; k++)
		off += record_encode(
			p + off, recs[k].id, recs[k].op, recs[k].raft_address,
			recs[k].client_address, recs[k].http_address);
	put_u32(p, CONSENSUS_ENTRY_MAGIC_MEMBERS);
	p[4] = CONSENSUS_MEMBERS_FORMAT;
	p[5] = 0;
	put_u16(p + 6, (uint16_t)n);
	put_u32(p + 8, (uint32_t)(off - CONSENSUS_MEMBERS_HEADER));
	put_u32(p + 12, 0);
	return total;
}

int member_entry_decode(const void *buf, size_t len, struct member_record *recs,
			unsigned *n)
{
	const uint8_t *p = buf;
	const uint8_t *end;
	size_t body;
	unsigned count;
	unsigned k;

	*n = 0;
	if (len < CONSENSUS_MEMBERS_HEADER || len % 8 != 0)
		return -1;
	if (get_u32(p) != CONSENSUS_ENTRY_MAGIC_MEMBERS ||
	    p[4] != CONSENSUS_MEMBERS_FORMAT || p[5] != 0 ||
	    get_u32(p + 12) != 0)
		return -1;
	count = get_u16(p + 6);
	body = get_u32(p + 8);
	if (count == 0 || count > CONSENSUS_MEMBERS_MAX)
		return -1;
	if (body > len - CONSENSUS_MEMBERS_HEADER ||
	    pad8(CONSENSUS_MEMBERS_HEADER + body) != len)
		return -1;
	end = p + CONSENSUS_MEMBERS_HEADER + body;
	p += CONSENSUS_MEMBERS_HEADER;
	for (k = 0; k < count; k++) {
		struct member_record *r = &recs[k];
		size_t used = record_decode(p, (size_t)(end - p), &r->id,
					    &r->op, r->raft_address,
					    r->client_address, r->http_address);

		if (used == 0)
			return -1;
		if (r->op == CONSENSUS_MEMBER_SET) {
			if (r->raft_address[0] == '\0')
				return -1;
		} else if (r->op == CONSENSUS_MEMBER_DELETE) {
			if (used != CONSENSUS_MEMBER_RECORD_FIXED)
				return -1;
		} else {
			return -1;
		}
		p += used;
	}
	if (p != end || !zeros(end, (const uint8_t *)buf + len))
		return -1;
	*n = count;
	return 0;
}

/* ------------------------------------------------------------------------
 * Stored member values
 * ------------------------------------------------------------------------ */

void member_key(char key[CONSENSUS_MEMBER_KEY_SIZE], uint64_t id)
{
	snprintf(key, CONSENSUS_MEMBER_KEY_SIZE,
		 CONSENSUS_MEMBER_KEY_PREFIX "%020" PRIu64, id);
}

size_t member_value_encode(const struct consensus_member *m, uint8_t *buf,
			   size_t cap)
{
	size_t r = strlen(m->raft_address);
	size_t c = strlen(m->client_address);
	size_t h = strlen(m->http_address);
	size_t len = CONSENSUS_MEMBER_VALUE_FIXED + r + c + h;

	if (len > cap)
		return 0;
	buf[0] = 1;
	buf[1] = 0;
	put_u16(buf + 2, (uint16_t)r);
	put_u16(buf + 4, (uint16_t)c);
	put_u16(buf + 6, (uint16_t)h);
	memcpy(buf + 8, m->raft_address, r);
	memcpy(buf + 8 + r, m->client_address, c);
	memcpy(buf + 8 + r + c, m->http_address, h);
	return len;
}

int member_value_decode(uint64_t id, const void *buf, size_t len,
			struct consensus_member *m)
{
	const uint8_t *p = buf;
	size_t r;
	size_t c;
	size_t h;

	memset(m, 0, sizeof *m);
	if (len < CONSENSUS_MEMBER_VALUE_FIXED || p[0] != 1 || p[1] != 0)
		return -1;
	r = get_u16(p + 2);
	c = get_u16(p + 4);
	h = get_u16(p + 6);
	if (r + c + h != len - CONSENSUS_MEMBER_VALUE_FIXED)
		return -1;
	p += CONSENSUS_MEMBER_VALUE_FIXED;
	if (string_decode(p, r, m->raft_address) != 0 ||
	    string_decode(p + r, c, m->client_address) != 0 ||
	    string_decode(p + r + c, h, m->http_address) != 0)
		return -1;
	m->id = id;
	m->role = RAFT_VOTER;
	return 0;
}

/* ------------------------------------------------------------------------
 * Manifests
 * ------------------------------------------------------------------------ */

size_t manifest_size(const struct manifest *m)
{
	size_t len = CONSENSUS_MANIFEST_HEADER;
	unsigned k;

	for (k = 0; k < m->n_members; k++)
		len += record_size(m->members[k].raft_address,
				   m->members[k].client_address,
				   m->members[k].http_address);
	return pad8(len);
}

size_t manifest_encode(const struct manifest *m, void *buf)
{
	size_t total = manifest_size(m);
	uint8_t *p = buf;
	size_t off = CONSENSUS_MANIFEST_HEADER;
	unsigned k;

	memset(buf, 0, total);
	for (k = 0; k < m->n_members; k++)
		off += record_encode(p + off, m->members[k].id,
				     CONSENSUS_MEMBER_SET,
				     m->members[k].raft_address,
				     m->members[k].client_address,
				     m->members[k].http_address);
	put_u32(p, CONSENSUS_MANIFEST_MAGIC);
	p[4] = CONSENSUS_MANIFEST_FORMAT;
	put_u64(p + 8, m->applied_index);
	put_u64(p + 16, m->last_position);
	put_u32(p + 24, m->n_members);
	put_u32(p + 28, (uint32_t)(off - CONSENSUS_MANIFEST_HEADER));
	return total;
}

int manifest_decode(const void *buf, size_t len, struct manifest *m,
		    char *errmsg)
{
	const uint8_t *p = buf;
	const uint8_t *end;
	size_t body;
	unsigned count;
	unsigned k;

	memset(m, 0, sizeof *m);
	if (len < CONSENSUS_MANIFEST_HEADER) {
		snprintf(errmsg, 256, "manifest of %zu bytes is too short",
			 len);
		return -1;
	}
	if (get_u32(p) != CONSENSUS_MANIFEST_MAGIC) {
		snprintf(errmsg, 256, "not a cairn snapshot manifest");
		return -1;
	}
	if (p[4] != CONSENSUS_MANIFEST_FORMAT) {
		snprintf(errmsg, 256, "manifest format %u, this build reads %d",
			 p[4], CONSENSUS_MANIFEST_FORMAT);
		return -1;
	}
	count = get_u32(p + 24);
	body = get_u32(p + 28);
	if (count > CONSENSUS_MEMBERS_MAX ||
	    body > len - CONSENSUS_MANIFEST_HEADER ||
	    pad8(CONSENSUS_MANIFEST_HEADER + body) != len ||
	    !zeros(p + 5, p + 8)) {
		snprintf(errmsg, 256,
			 "manifest header is malformed (%u members, body of "
			 "%zu bytes in %zu)",
			 count, body, len);
		return -1;
	}
	m->applied_index = get_u64(p + 8);
	m->last_position = get_u64(p + 16);
	end = p + CONSENSUS_MANIFEST_HEADER + body;
	p += CONSENSUS_MANIFEST_HEADER;
	for (k = 0; k < count; k++) {
		struct consensus_member *mm = &m->members[k];
		uint8_t op;
		size_t used = record_decode(
			p, (size_t)(end - p), &mm->id, &op, mm->raft_address,
			mm->client_address, mm->http_address);

		if (used == 0 || op != CONSENSUS_MEMBER_SET) {
			snprintf(errmsg, 256, "manifest member %u is malformed",
				 k);
			return -1;
		}
		mm->role = RAFT_VOTER;
		p += used;
	}
	if (p != end || !zeros(end, (const uint8_t *)buf + len)) {
		snprintf(errmsg, 256, "manifest has trailing bytes");
		return -1;
	}
	m->n_members = count;
	return 0;
}

/* ------------------------------------------------------------------------
 * The table in memory (sorted by id)
 * ------------------------------------------------------------------------ */

const struct consensus_member *members_find(const struct consensus_int *i,
					    uint64_t id)
{
	unsigned k;

	for (k = 0; k < i->n_members; k++)
		if (i->members[k].id == id)
			return &i->members[k];
	return NULL;
}

/* Sets or deletes @r in the table; a set beyond CONSENSUS_MEMBERS_MAX is
 * dropped on every replica alike (returns false). */
static bool table_update(struct consensus_int *i, const struct member_record *r)
{
	unsigned k;
	unsigned at = i->n_members;

	for (k = 0; k < i->n_members; k++) {
		if (i->members[k].id >= r->id) {
			at = k;
			break;
		}
	}
	if (r->op == CONSENSUS_MEMBER_DELETE) {
		if (at < i->n_members && i->members[at].id == r->id) {
			memmove(&i->members[at], &i->members[at + 1],
				sizeof i->members[0] * (i->n_members - at - 1));
			i->n_members--;
		}
		return true;
	}
	if (at == i->n_members || i->members[at].id != r->id) {
		if (i->n_members == CONSENSUS_MEMBERS_MAX)
			return false;
		memmove(&i->members[at + 1], &i->members[at],
			sizeof i->members[0] * (i->n_members - at));
		i->n_members++;
	}
	memset(&i->members[at], 0, sizeof i->members[at]);
	i->members[at].id = r->id;
	i->members[at].role = RAFT_VOTER;
	memcpy(i->members[at].raft_address, r->raft_address,
	       sizeof r->raft_address);
	memcpy(i->members[at].client_address, r->client_address,
	       sizeof r->client_address);
	memcpy(i->members[at].http_address, r->http_address,
	       sizeof r->http_address);
	return true;
}

/* Whether a SET of @id to @r would change nothing or fit: a table that is
 * full takes no new ids. */
/* True when record @k (a set) fits the table as records 0..k-1 of the
 * same entry (those still applied: op != 0) have changed it. */
static bool entry_accepts(const struct consensus_int *i,
			  const struct member_record *recs, unsigned k)
{
	unsigned n = i->n_members;
	bool present = members_find(i, recs[k].id) != NULL;

	for (unsigned j = 0; j < k; j++) {
		bool was = members_find(i, recs[j].id) != NULL;

		if (recs[j].op == 0)
			continue;
		/* Present just before record j: as the last earlier record
		 * of the same id left it, else as the table has it. */
		for (unsigned q = 0; q < j; q++) {
			if (recs[q].op != 0 && recs[q].id == recs[j].id)
				was = recs[q].op == CONSENSUS_MEMBER_SET;
		}
		if (recs[j].op == CONSENSUS_MEMBER_SET && !was)
			n++;
		else if (recs[j].op != CONSENSUS_MEMBER_SET && was)
			n--;
		if (recs[j].id == recs[k].id)
			present = recs[j].op == CONSENSUS_MEMBER_SET;
	}
	return present || n < CONSENSUS_MEMBERS_MAX;
}

struct load_ctx {
	struct consensus_int *i;
	int rv;
};

static bool load_cb(void *arg, const char *key, size_t key_len,
		    const void *value, size_t value_len)
{
	struct load_ctx *ctx = arg;
	struct consensus_int *i = ctx->i;
	size_t plen = sizeof CONSENSUS_MEMBER_KEY_PREFIX - 1;
	struct consensus_member m;
	uint64_t id = 0;
	size_t k;

	if (key_len != plen + 20) {
		ctx->rv = -1;
		return false;
	}
	for (k = plen; k < key_len; k++) {
		if (key[k] < '0' || key[k] > '9') {
			ctx->rv = -1;
			return false;
		}
		id = id * 10 + (uint64_t)(key[k] - '0');
	}
	if (id == 0 || member_value_decode(id, value, value_len, &m) != 0 ||
	    i->n_members == CONSENSUS_MEMBERS_MAX) {
		ctx->rv = -1;
		return false;
	}
	/* Keys come in id order. */
	i->members[i->n_members++] = m;
	return true;
}

int members_load(struct consensus_int *i)
{
	struct load_ctx ctx = { i, 0 };
	int rv;

	i->n_members = 0;
	rv = store_meta_list(i->store, CONSENSUS_MEMBER_KEY_PREFIX, load_cb,
			     &ctx);
	if (rv != 0) {
		consensus_int_errorf(i->c, "load member table: %s",
				     i->store->errmsg);
		return CONSENSUS_EIO;
	}
	if (ctx.rv != 0) {
		consensus_int_errorf(
			i->c, "load member table: record %u is malformed",
			i->n_members);
		return CONSENSUS_EIO;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Apply (every replica)
 * ------------------------------------------------------------------------ */

void members_apply(struct consensus_int *i, raft_index index, const void *buf,
		   size_t len)
{
	struct member_record recs[CONSENSUS_MEMBERS_MAX];
	struct store_meta_op ops[CONSENSUS_MEMBERS_MAX];
	char keys[CONSENSUS_MEMBERS_MAX][CONSENSUS_MEMBER_KEY_SIZE];
	uint8_t vals[CONSENSUS_MEMBERS_MAX]
		    [CONSENSUS_MEMBER_VALUE_FIXED + 3 * CONSENSUS_ADDRESS_MAX];
	unsigned n = 0;
	unsigned n_ops = 0;
	bool skipped;
	unsigned k;
	int rv;

	if (member_entry_decode(buf, len, recs, &n) != 0) {
		/* Every replica reaches the same verdict from the same
		 * bytes: the entry applies as nothing. */
		log_warn("member_entry_malformed", "index=%llu bytes=%zu",
			 (unsigned long long)index, len);
		n = 0;
	}
	/* Decide on the table as this entry leaves it, record by record,
	 * the same way everywhere: a set of a new id into a full table is
	 * dropped. Ids the entry added or removed so far count, so one
	 * entry cannot push the table past its bound. */
	for (k = 0; k < n; k++) {
		struct store_meta_op *op = &ops[n_ops];

		if (recs[k].op == CONSENSUS_MEMBER_SET &&
		    !entry_accepts(i, recs, k)) {
			log_warn("member_table_full", "index=%llu id=%llu",
				 (unsigned long long)index,
				 (unsigned long long)recs[k].id);
			recs[k].op = 0;
			continue;
		}
		member_key(keys[n_ops], recs[k].id);
		op->key = keys[n_ops];
		op->value = NULL;
		op->value_len = 0;
		if (recs[k].op == CONSENSUS_MEMBER_SET) {
			struct consensus_member m;

			memset(&m, 0, sizeof m);
			memcpy(m.raft_address, recs[k].raft_address,
			       sizeof m.raft_address);
			memcpy(m.client_address, recs[k].client_address,
			       sizeof m.client_address);
			memcpy(m.http_address, recs[k].http_address,
			       sizeof m.http_address);
			op->value = vals[n_ops];
			op->value_len = member_value_encode(&m, vals[n_ops],
							    sizeof vals[n_ops]);
		}
		n_ops++;
	}
	rv = store_apply_meta(i->store, index, ops, n_ops, &skipped);
	if (rv != 0) {
		log_error("store_apply_failed", "index=%llu reason=\"%s\"",
			  (unsigned long long)index, i->store->errmsg);
		exit(EXIT_FAILURE);
	}
	if (skipped)
		return;
	for (k = 0; k < n; k++) {
		if (recs[k].op == 0)
			continue;
		table_update(i, &recs[k]);
		if (recs[k].op == CONSENSUS_MEMBER_SET)
			log_info("member_updated",
				 "id=%llu raft=%s client=%s http=%s",
				 (unsigned long long)recs[k].id,
				 recs[k].raft_address, recs[k].client_address,
				 recs[k].http_address);
		else
			log_info("member_removed", "id=%llu",
				 (unsigned long long)recs[k].id);
	}
}

/* ------------------------------------------------------------------------
 * Proposals (leader)
 * ------------------------------------------------------------------------ */

static void member_apply_cb(struct raft_apply *req, int status, void *result)
{
	struct consensus_int *i = req->data;

	(void)result;
	i->member_inflight = false;
	if (status != 0 && i->close_step == CLOSE_NONE)
		log_debug("member_proposal_failed", "reason=\"%s\"",
			  raft_strerror(status));
}

static const struct consensus_member *peer_find(const struct consensus_int *i,
						uint64_t id)
{
	unsigned k;

	for (k = 0; k < i->n_peers; k++)
		if (i->peers[k].id == id)
			return &i->peers[k];
	return NULL;
}

static bool record_differs(const struct consensus_member *have,
			   const struct member_record *want)
{
	return have == NULL ||
	       strcmp(have->raft_address, want->raft_address) != 0 ||
	       strcmp(have->client_address, want->client_address) != 0 ||
	       strcmp(have->http_address, want->http_address) != 0;
}

void members_propose(struct consensus_int *i)
{
	struct member_record recs[CONSENSUS_MEMBERS_MAX];
	const struct raft_configuration *conf = &i->raft.configuration;
	struct raft_buffer buf;
	unsigned n = 0;
	unsigned k;
	int rv;

	if (i->member_inflight || !consensus_int_is_leader(i))
		return;
	for (k = 0; k < conf->n && n < CONSENSUS_MEMBERS_MAX; k++) {
		const struct raft_server *s = &conf->servers[k];
		const struct consensus_member *have = members_find(i, s->id);
		struct member_record *r = &recs[n];

		memset(r, 0, sizeof *r);
		r->id = s->id;
		r->op = CONSENSUS_MEMBER_SET;
		if (s->id == i->id) {
			/* Our own record follows our configuration. */
			snprintf(r->raft_address, sizeof r->raft_address, "%s",
				 i->raft_address);
			snprintf(r->client_address, sizeof r->client_address,
				 "%s", i->client_address);
			snprintf(r->http_address, sizeof r->http_address, "%s",
				 i->http_address);
			if (!record_differs(have, r))
				continue;
		} else {
			const struct consensus_member *p = peer_find(i, s->id);

			/* Another node's record: fill it in from the
			 * bootstrap list only when missing; that node fixes
			 * it when it leads. */
			if (have != NULL || p == NULL)
				continue;
			snprintf(r->raft_address, sizeof r->raft_address, "%s",
				 s->address);
			snprintf(r->client_address, sizeof r->client_address,
				 "%s", p->client_address);
			snprintf(r->http_address, sizeof r->http_address, "%s",
				 p->http_address);
		}
		if (r->raft_address[0] == '\0')
			continue;
		n++;
	}
	/* Records of nodes that left the configuration (a removed member,
	 * the old leader among them) are deleted. */
	for (k = 0; k < i->n_members && n < CONSENSUS_MEMBERS_MAX; k++) {
		struct member_record *r = &recs[n];
		unsigned j;
		bool in_conf = false;

		for (j = 0; j < conf->n; j++)
			in_conf = in_conf ||
				  conf->servers[j].id == i->members[k].id;
		if (in_conf)
			continue;
		memset(r, 0, sizeof *r);
		r->id = i->members[k].id;
		r->op = CONSENSUS_MEMBER_DELETE;
		n++;
	}
	if (n == 0)
		return;
	buf.len = member_entry_size(recs, n);
	buf.base = raft_malloc(buf.len);
	if (buf.base == NULL)
		return; /* the next tick tries again */
	member_entry_encode(recs, n, buf.base);
	i->member_req.data = i;
	rv = raft_apply(&i->raft, &i->member_req, &buf, 1, member_apply_cb);
	if (rv != 0) {
		consensus_int_refused(i, "propose member entry", rv);
		raft_free(buf.base);
		return;
	}
	i->member_inflight = true;
	log_debug("member_proposal", "records=%u index=%llu", n,
		  (unsigned long long)i->member_req.index);
}
