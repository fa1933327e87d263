/* The simulator's reference model and its checks. The first server to
 * apply a Raft index runs the entry through the model too (dedup, expected
 * versions, positions, the member table, written here from the rules in
 * docs/storage-format.md and docs/consensus.md, not from storage's code),
 * and what the real FSM returned must equal what the model expects; every
 * later apply of that index on any server must then give the same entry
 * bytes, the same outcomes, the same last position and the same member
 * table. After every step each store's applied index and last position
 * must agree with the model, and at the end every store's log must be the
 * model's log, event by event. Used by cluster.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* ------------------------------------------------------------------------
 * Hashing and the PRNG
 * ------------------------------------------------------------------------ */

uint64_t sim_hash(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t k;

	for (k = 0; k < len; k++) {
		h ^= b[k];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t sim_mix(uint64_t h, uint64_t v)
{
	uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	unsigned k;

	for (k = 0; k < 4; k++)
		r->s[k] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t sim_rng_below(struct sim_rng *r, uint64_t n)
{
	if (n == 0)
		return 0;
	return sim_rng_next(r) % n;
}

uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + sim_rng_below(r, hi - lo + 1);
}

bool sim_rng_chance(struct sim_rng *r, unsigned per_million)
{
	return sim_rng_below(r, 1000000) < per_million;
}

/* ------------------------------------------------------------------------
 * The model's state
 * ------------------------------------------------------------------------ */

void sim_model_init(struct sim_model *m)
{
	memset(m, 0, sizeof *m);
	store_txn_view_init(&m->view);
}

void sim_model_close(struct sim_model *m)
{
	unsigned k;

	for (k = 0; k < m->n_clients; k++)
		free(m->clients[k].commits);
	free(m->ref);
	free(m->log);
	store_txn_view_close(&m->view);
}

static struct sim_ref *ref_get(struct sim_model *m, uint64_t index)
{
	if (index >= m->ref_cap) {
		uint64_t cap = m->ref_cap == 0 ? 1024 : m->ref_cap;
		struct sim_ref *p;

		while (cap <= index)
			cap *= 2;
		p = realloc(m->ref, sizeof *p * cap);
		if (p == NULL)
			abort();
		memset(p + m->ref_cap, 0, sizeof *p * (cap - m->ref_cap));
		m->ref = p;
		m->ref_cap = cap;
	}
	return &m->ref[index];
}

const struct sim_ref *sim_model_ref_at(const struct sim_model *m,
				       uint64_t index)
{
	if (index >= m->ref_cap)
		index = m->ref_cap == 0 ? 0 : m->ref_cap - 1;
	for (; index > 0; index--)
		if (m->ref[index].set)
			return &m->ref[index];
	return NULL;
}

struct sim_mclient *sim_model_client(struct sim_model *m, const uint8_t id[16])
{
	unsigned k;

	for (k = 0; k < m->n_clients; k++)
		if (memcmp(m->clients[k].id, id, 16) == 0)
			return &m->clients[k];
	return NULL;
}

static struct sim_mclient *client_add(struct sim *s, const uint8_t id[16])
{
	struct sim_model *m = &s->model;
	struct sim_mclient *c = sim_model_client(m, id);

	if (c != NULL)
		return c;
	if (m->n_clients == SIM_MODEL_CLIENTS_MAX) {
		sim_fail(s, "model: more than %d writers",
			 SIM_MODEL_CLIENTS_MAX);
		return NULL;
	}
	c = &m->clients[m->n_clients++];
	memset(c, 0, sizeof *c);
	memcpy(c->id, id, 16);
	return c;
}

const struct sim_mcommit *sim_model_commit(const struct sim_mclient *c,
					   uint64_t seq)
{
	uint64_t lo = 0;
	uint64_t hi = c->n_commits;

	/* Sequences commit in increasing order (a lower one is stale). */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (c->commits[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->n_commits && c->commits[lo].seq == seq ? &c->commits[lo]
							      : NULL;
}

static struct sim_mcommit *commit_add(struct sim_mclient *c, uint64_t seq)
{
	struct sim_mcommit *mc;

	if (c->n_commits == c->cap) {
		uint64_t cap = c->cap == 0 ? 64 : c->cap * 2;
		struct sim_mcommit *p = realloc(c->commits, sizeof *p * cap);

		if (p == NULL)
			abort();
		c->commits = p;
		c->cap = cap;
	}
	mc = &c->commits[c->n_commits++];
	memset(mc, 0, sizeof *mc);
	mc->seq = seq;
	return mc;
}

static int stream_index(struct sim *s, const char *name, uint32_t len)
{
	struct sim_model *m = &s->model;
	unsigned k;

	for (k = 0; k < m->n_streams; k++)
		if (m->stream_len[k] == len &&
		    memcmp(m->streams[k], name, len) == 0)
			return (int)k;
	if (m->n_streams == SIM_MODEL_STREAMS_MAX) {
		sim_fail(s, "model: more than %d streams",
			 SIM_MODEL_STREAMS_MAX);
		return -1;
	}
	memcpy(m->streams[m->n_streams], name, len);
	m->stream_len[m->n_streams] = len;
	m->versions[m->n_streams] = 0;
	return (int)m->n_streams++;
}

static void log_append(struct sim_model *m, const struct sim_mrecord *r)
{
	if (m->n_log == m->log_cap) {
		uint64_t cap = m->log_cap == 0 ? 1024 : m->log_cap * 2;
		struct sim_mrecord *p = realloc(m->log, sizeof *p * cap);

		if (p == NULL)
			abort();
		m->log = p;
		m->log_cap = cap;
	}
	m->log[m->n_log++] = *r;
}

static uint64_t event_hash(const uint8_t id[16], const char *type,
			   uint32_t type_len, uint16_t schema_version,
			   int64_t event_time_us, uint64_t commit_time_us,
			   const void *data, uint32_t data_len,
			   const void *metadata, uint32_t metadata_len)
{
	uint64_t h = SIM_HASH_INIT;

	h = sim_hash(h, id, 16);
	h = sim_mix(h, type_len);
	h = sim_hash(h, type, type_len);
	h = sim_mix(h, schema_version);
	h = sim_mix(h, (uint64_t)event_time_us);
	h = sim_mix(h, commit_time_us);
	h = sim_mix(h, data_len);
	if (data_len > 0)
		h = sim_hash(h, data, data_len);
	h = sim_mix(h, metadata_len);
	if (metadata_len > 0)
		h = sim_hash(h, metadata, metadata_len);
	return h;
}

uint64_t sim_members_hash(const struct consensus_member *members, unsigned n)
{
	uint64_t h = sim_mix(SIM_HASH_INIT, n);
	unsigned k;

	for (k = 0; k < n; k++) {
		const struct consensus_member *mm = &members[k];

		h = sim_mix(h, mm->id);
		h = sim_hash(h, mm->raft_address, strlen(mm->raft_address) + 1);
		h = sim_hash(h, mm->client_address,
			     strlen(mm->client_address) + 1);
		h = sim_hash(h, mm->http_address, strlen(mm->http_address) + 1);
	}
	return h;
}

/* The outcome of a storage entry as every replica must report it. */
static uint64_t results_hash(const struct store_results *r)
{
	uint64_t h = sim_mix(SIM_HASH_INIT, (uint64_t)r->entry_error);
	uint32_t k;
	uint32_t p;

	h = sim_mix(h, r->n);
	for (k = 0; k < r->n; k++) {
		const struct store_txn_result *t = &r->txns[k];

		h = sim_mix(h, t->outcome);
		h = sim_mix(h, t->n_parts);
		h = sim_mix(h, t->conflict_part);
		h = sim_mix(h, t->actual_version);
		h = sim_mix(h, (uint64_t)t->reject_code);
		for (p = 0; p < t->n_parts; p++) {
			h = sim_mix(h, t->parts[p].first_version);
			h = sim_mix(h, t->parts[p].last_version);
			h = sim_mix(h, t->parts[p].first_position);
			h = sim_mix(h, t->parts[p].last_position);
		}
	}
	return h;
}

static const char *outcome_name(unsigned o)
{
	static const char *names[] = { "COMMITTED", "DUPLICATE",
				       "STALE_SEQUENCE",
				       "WRONG_EXPECTED_VERSION", "REJECTED" };

	return o < 5 ? names[o] : "?";
}

/* ------------------------------------------------------------------------
 * The model applies an entry and compares
 * ------------------------------------------------------------------------ */

static bool parts_equal(const struct store_part_result *a, uint32_t na,
			const struct store_part_result *b, uint32_t nb)
{
	uint32_t k;

	if (na != nb)
		return false;
	for (k = 0; k < na; k++)
		if (a[k].first_version != b[k].first_version ||
		    a[k].last_version != b[k].last_version ||
		    a[k].first_position != b[k].first_position ||
		    a[k].last_position != b[k].last_position)
			return false;
	return true;
}

/* Runs transaction number @k of the entry at @index through the model and
 * compares the FSM's result @got. */
static void model_txn(struct sim *s, struct sim_server *sv, uint64_t index,
		      uint32_t k, const void *txn, size_t len,
		      const struct store_txn_result *got)
{
	struct sim_model *m = &s->model;
	const struct store_txn *t = &m->view.txn;
	char errmsg[STORE_ERRMSG_SIZE];
	struct sim_mclient *c = NULL;
	struct store_part_result parts[SIM_PARTS_MAX];
	int streams[64];
	uint32_t p;
	int rv;

	rv = store_txn_decode(txn, len, &m->view, errmsg);
	if (rv == STORE_ENOMEM) {
		sim_fail(s, "model: out of memory");
		return;
	}
	if (rv != 0) {
		if (got->outcome != STORE_REJECTED || got->reject_code != rv)
			sim_fail(s,
				 "server %u index %" PRIu64
				 " txn %u: %s "
				 "(code %d), model says REJECTED (code %d)",
				 sv->idx, index, k, outcome_name(got->outcome),
				 got->reject_code, rv);
		s->st.rejected++;
		return;
	}
	if (t->n_parts > 64) {
		sim_fail(s, "model: %u parts", t->n_parts);
		return;
	}
	if (t->has_client) {
		c = client_add(s, t->client_id);
		if (c == NULL)
			return;
		if (sim_model_commit(c, t->client_seq) != NULL) {
			const struct sim_mcommit *mc =
				sim_model_commit(c, t->client_seq);

			if (got->outcome != STORE_DUPLICATE ||
			    !parts_equal(got->parts, got->n_parts, mc->parts,
					 mc->n_parts))
				sim_fail(s,
					 "server %u index %" PRIu64
					 " txn %u: %s, model says DUPLICATE "
					 "of seq %" PRIu64
					 " first position %" PRIu64,
					 sv->idx, index, k,
					 outcome_name(got->outcome),
					 t->client_seq,
					 mc->parts[0].first_position);
			return;
		}
		if (c->known && t->client_seq <= c->hwm) {
			if (got->outcome != STORE_STALE_SEQUENCE ||
			    got->actual_version != c->hwm)
				sim_fail(s,
					 "server %u index %" PRIu64
					 " txn %u: %s, model says "
					 "STALE_SEQUENCE (seq %" PRIu64
					 " <= high-water mark %" PRIu64 ")",
					 sv->idx, index, k,
					 outcome_name(got->outcome),
					 t->client_seq, c->hwm);
			s->st.stale++;
			return;
		}
	}
	for (p = 0; p < t->n_parts; p++) {
		const struct store_part *pt = &t->parts[p];
		uint64_t v;
		bool pass;

		streams[p] = stream_index(s, pt->stream, pt->stream_len);
		if (streams[p] < 0)
			return;
		v = m->versions[streams[p]];
		switch (pt->expect.kind) {
		case STORE_EXPECT_ANY:
			pass = true;
			break;
		case STORE_EXPECT_NO_STREAM:
			pass = v == 0;
			break;
		case STORE_EXPECT_EXISTS:
			pass = v > 0;
			break;
		default:
			pass = v == pt->expect.version;
			break;
		}
		if (!pass) {
			if (got->outcome != STORE_WRONG_EXPECTED_VERSION ||
			    got->conflict_part != p || got->actual_version != v)
				sim_fail(s,
					 "server %u index %" PRIu64
					 " txn %u: %s, model says "
					 "WRONG_EXPECTED_VERSION at part %u "
					 "(version %" PRIu64 ")",
					 sv->idx, index, k,
					 outcome_name(got->outcome), p, v);
			s->st.conflicts++;
			return;
		}
	}
	/* Committed. */
	for (p = 0; p < t->n_parts; p++) {
		const struct store_part *pt = &t->parts[p];
		uint64_t v = m->versions[streams[p]];
		uint32_t e;

		if (p < SIM_PARTS_MAX) {
			parts[p].first_version = v + 1;
			parts[p].last_version = v + pt->n_events;
			parts[p].first_position = m->n_log + 1;
			parts[p].last_position = m->n_log + pt->n_events;
		}
		for (e = 0; e < pt->n_events; e++) {
			const struct store_event *ev = &pt->events[e];
			struct sim_mrecord r;

			r.stream = (uint32_t)streams[p];
			r.version = v + 1 + e;
			r.client = c != NULL ? (int32_t)(c - m->clients) : -1;
			r.seq = t->has_client ? t->client_seq : 0;
			r.event_hash = event_hash(
				ev->id, ev->type, ev->type_len,
				ev->schema_version, ev->event_time_us,
				t->commit_time_us, ev->data, ev->data_len,
				ev->metadata, ev->metadata_len);
			log_append(m, &r);
		}
		m->versions[streams[p]] = v + pt->n_events;
	}
	if (t->n_parts > SIM_PARTS_MAX) {
		sim_fail(s, "model: a committed transaction of %u parts",
			 t->n_parts);
		return;
	}
	if (got->outcome != STORE_COMMITTED ||
	    !parts_equal(got->parts, got->n_parts, parts, t->n_parts)) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 " txn %u: %s, model says "
			 "COMMITTED at positions %" PRIu64 "..%" PRIu64,
			 sv->idx, index, k, outcome_name(got->outcome),
			 parts[0].first_position,
			 parts[t->n_parts - 1].last_position);
		return;
	}
	if (c != NULL) {
		struct sim_mcommit *mc;

		if (c->known && t->client_seq <= c->hwm) {
			sim_fail(s, "model: seq %" PRIu64 " after %" PRIu64,
				 t->client_seq, c->hwm);
			return;
		}
		mc = commit_add(c, t->client_seq);
		mc->n_parts = t->n_parts;
		memcpy(mc->parts, parts, sizeof parts[0] * t->n_parts);
		c->known = true;
		c->hwm = t->client_seq;
	}
}

static void model_store_entry(struct sim *s, struct sim_server *sv,
			      uint64_t index, const void *buf, size_t len,
			      const struct store_results *r)
{
	struct store_entry_iter it;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *txn;
	size_t txn_len;
	uint32_t k = 0;
	int rv;

	rv = store_entry_open(buf, len, &it, errmsg);
	if (rv != 0) {
		if (r->entry_error != rv || r->n != 0)
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": entry_error %d with %u results, model "
				 "says malformed (%d)",
				 sv->idx, index, r->entry_error, r->n, rv);
		return;
	}
	if (r->entry_error != 0 || r->n != store_entry_count(buf)) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": entry_error %d with %u results, model says %u "
			 "transactions",
			 sv->idx, index, r->entry_error, r->n,
			 store_entry_count(buf));
		return;
	}
	while (store_entry_next(&it, &txn, &txn_len) && !s->failed) {
		model_txn(s, sv, index, k, txn, txn_len, &r->txns[k]);
		k++;
	}
}

/* The member table, by the rules of docs/consensus.md: a malformed entry
 * applies as nothing; records apply in order, and a set of a new id is
 * dropped when the table, as the entry's earlier records left it, is
 * full. */
static void model_members_entry(struct sim_model *m, const void *buf,
				size_t len)
{
	struct member_record recs[CONSENSUS_MEMBERS_MAX];
	unsigned n = 0;
	unsigned k;
	unsigned j;

	if (member_entry_decode(buf, len, recs, &n) != 0)
		return;
	for (k = 0; k < n; k++) {
		const struct member_record *r = &recs[k];
		unsigned at = m->n_members;

		for (j = 0; j < m->n_members; j++) {
			if (m->members[j].id >= r->id) {
				at = j;
				break;
			}
		}
		if (r->op == CONSENSUS_MEMBER_DELETE) {
			if (at < m->n_members && m->members[at].id == r->id) {
				memmove(&m->members[at], &m->members[at + 1],
					sizeof m->members[0] *
						(m->n_members - at - 1));
				m->n_members--;
			}
			continue;
		}
		if (at == m->n_members || m->members[at].id != r->id) {
			if (m->n_members == CONSENSUS_MEMBERS_MAX)
				continue;
			memmove(&m->members[at + 1], &m->members[at],
				sizeof m->members[0] * (m->n_members - at));
			m->n_members++;
		}
		memset(&m->members[at], 0, sizeof m->members[at]);
		m->members[at].id = r->id;
		m->members[at].role = RAFT_VOTER;
		memcpy(m->members[at].raft_address, r->raft_address,
		       sizeof r->raft_address);
		memcpy(m->members[at].client_address, r->client_address,
		       sizeof r->client_address);
		memcpy(m->members[at].http_address, r->http_address,
		       sizeof r->http_address);
	}
}

static uint8_t kind_of(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t magic;

	if (len < 4)
		return SIM_KIND_OTHER;
	magic = (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
		((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
	if (magic == CONSENSUS_ENTRY_MAGIC_STORE)
		return SIM_KIND_STORE;
	if (magic == CONSENSUS_ENTRY_MAGIC_MEMBERS)
		return SIM_KIND_MEMBERS;
	return SIM_KIND_OTHER;
}

void sim_model_applied(struct sim *s, struct sim_server *sv, uint64_t index,
		       const void *buf, size_t len,
		       const struct store_results *r)
{
	struct sim_model *m = &s->model;
	uint8_t kind = kind_of(buf, len);
	uint64_t eh = sim_mix(sim_hash(SIM_HASH_INIT, buf, len), len);
	struct sim_ref *ref = ref_get(m, index);
	uint64_t oh = 0;
	uint64_t mh;
	uint64_t lp;

	s->trace = sim_mix(sim_mix(sim_mix(s->trace, sv->idx), index), eh);
	if (index <= sv->skip_through) {
		/* The store already holds it (a state transfer). */
		if (kind == SIM_KIND_STORE && !r->skipped)
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": applied at or below its store's applied "
				 "index %" PRIu64,
				 sv->idx, index, sv->skip_through);
		else if (!ref->set)
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": skipped an index no server applied",
				 sv->idx, index);
		else if (ref->entry_hash != eh)
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": entry bytes differ from server %u's",
				 sv->idx, index, ref->first_server);
		return;
	}
	if (kind == SIM_KIND_STORE && r->skipped) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": the store skipped it (applied index %" PRIu64 ")",
			 sv->idx, index, store_applied_index(&sv->store));
		return;
	}
	if (store_applied_index(&sv->store) != index) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": the store's applied index is %" PRIu64,
			 sv->idx, index, store_applied_index(&sv->store));
		return;
	}
	sv->last_fsm_index = index;
	lp = store_last_position(&sv->store);
	mh = sim_members_hash(sv->ci->members, sv->ci->n_members);
	if (kind == SIM_KIND_STORE)
		oh = results_hash(r);
	else if (kind == SIM_KIND_MEMBERS)
		oh = mh;
	oh = sim_mix(oh, lp);
	if (!ref->set) {
		if (index <= m->last_index) {
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": first applied after index %" PRIu64,
				 sv->idx, index, m->last_index);
			return;
		}
		if (kind == SIM_KIND_STORE)
			model_store_entry(s, sv, index, buf, len, r);
		else if (kind == SIM_KIND_MEMBERS)
			model_members_entry(m, buf, len);
		if (s->failed)
			return;
		if (lp != m->n_log)
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": last position %" PRIu64
				 ", model says %" PRIu64,
				 sv->idx, index, lp, m->n_log);
		else if (mh != sim_members_hash(m->members, m->n_members))
			sim_fail(s,
				 "server %u index %" PRIu64
				 ": member table of %u differs from the "
				 "model's (%u)",
				 sv->idx, index, sv->ci->n_members,
				 m->n_members);
		ref->set = true;
		ref->kind = kind;
		ref->first_server = sv->idx;
		ref->entry_hash = eh;
		ref->outcome_hash = oh;
		ref->last_position = lp;
		ref->members_hash = mh;
		m->last_index = index;
		s->st.entries++;
	} else if (ref->entry_hash != eh) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": entry bytes differ from server %u's",
			 sv->idx, index, ref->first_server);
	} else if (ref->outcome_hash != oh) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": outcomes differ from server %u's (last position "
			 "%" PRIu64 " vs %" PRIu64 ")",
			 sv->idx, index, ref->first_server, lp,
			 ref->last_position);
	} else if (ref->members_hash != mh) {
		sim_fail(s,
			 "server %u index %" PRIu64
			 ": member table differs from server %u's",
			 sv->idx, index, ref->first_server);
	}
	sv->chain = sim_mix(sim_mix(sim_mix(sv->chain, index), eh), oh);
	s->trace = sim_mix(s->trace, oh);
}

/* ------------------------------------------------------------------------
 * After every step
 * ------------------------------------------------------------------------ */

void sim_model_check_servers(struct sim *s)
{
	unsigned k;

	for (k = 0; k < s->n && !s->failed; k++) {
		struct sim_server *sv = &s->servers[k];
		uint64_t a = store_applied_index(&sv->store);
		uint64_t lp = store_last_position(&sv->store);
		uint64_t la = raft_last_applied(sv->raft);
		const struct sim_ref *ref = sim_model_ref_at(&s->model, a);
		uint64_t want_lp = ref != NULL ? ref->last_position : 0;
		uint64_t want_mh = ref != NULL ? ref->members_hash
					       : sim_members_hash(NULL, 0);

		if (a != sv->last_fsm_index)
			sim_fail(s,
				 "server %u: store applied index %" PRIu64
				 ", the FSM last applied %" PRIu64,
				 k, a, sv->last_fsm_index);
		else if (a > 0 && (ref == NULL || !s->model.ref[a].set))
			sim_fail(s,
				 "server %u: store applied index %" PRIu64
				 " was never applied",
				 k, a);
		else if (a > la && a > sv->skip_through)
			sim_fail(s,
				 "server %u: store applied index %" PRIu64
				 " is past raft's last applied %" PRIu64,
				 k, a, la);
		else if (lp != want_lp)
			sim_fail(s,
				 "server %u: last position %" PRIu64
				 " at applied index %" PRIu64
				 ", model says %" PRIu64,
				 k, lp, a, want_lp);
		else if (sim_members_hash(sv->ci->members, sv->ci->n_members) !=
			 want_mh)
			sim_fail(s,
				 "server %u: member table at applied index "
				 "%" PRIu64 " differs from the model's",
				 k, a);
	}
}

/* ------------------------------------------------------------------------
 * The end
 * ------------------------------------------------------------------------ */

struct read_ctx {
	struct sim *s;
	unsigned server;
	uint64_t expect; /* next position */
	/* Events found, by client and commit (parallel to commits). */
	uint32_t *counts[SIM_MODEL_CLIENTS_MAX];
};

static bool read_cb(void *arg, const struct store_record *rec)
{
	struct read_ctx *x = arg;
	struct sim *s = x->s;
	struct sim_model *m = &s->model;
	const struct sim_mrecord *mr;
	uint64_t h;
	int client = -1;

	if (rec->position != x->expect) {
		sim_fail(s,
			 "end: server %u: position %" PRIu64 " follows %" PRIu64
			 " (positions not dense)",
			 x->server, rec->position, x->expect - 1);
		return false;
	}
	x->expect++;
	if (rec->position > m->n_log) {
		sim_fail(s,
			 "end: server %u: position %" PRIu64
			 " beyond the model's %" PRIu64,
			 x->server, rec->position, m->n_log);
		return false;
	}
	mr = &m->log[rec->position - 1];
	if (rec->has_client) {
		struct sim_mclient *c = sim_model_client(m, rec->client_id);

		client = c != NULL ? (int)(c - m->clients) : -2;
	}
	h = event_hash(rec->id, rec->type, rec->type_len, rec->schema_version,
		       rec->event_time_us, rec->commit_time_us, rec->data,
		       rec->data_len, rec->metadata, rec->metadata_len);
	if (rec->stream_len != m->stream_len[mr->stream] ||
	    memcmp(rec->stream, m->streams[mr->stream], rec->stream_len) != 0 ||
	    rec->version != mr->version || client != mr->client ||
	    (rec->has_client && rec->client_seq != mr->seq) ||
	    h != mr->event_hash) {
		sim_fail(s,
			 "end: server %u: the event at position %" PRIu64
			 " (%.*s version %" PRIu64 ") differs from the model's",
			 x->server, rec->position, (int)rec->stream_len,
			 rec->stream, rec->version);
		return false;
	}
	if (client >= 0) {
		const struct sim_mclient *mc = &m->clients[client];
		const struct sim_mcommit *cm =
			sim_model_commit(mc, rec->client_seq);

		if (cm == NULL) {
			sim_fail(s,
				 "end: server %u: position %" PRIu64
				 " belongs to a transaction that never "
				 "committed",
				 x->server, rec->position);
			return false;
		}
		x->counts[client][cm - mc->commits]++;
	}
	return true;
}

/* Reads server @k's whole log and checks it against the model and the
 * acknowledgements. */
static void final_log(struct sim *s, unsigned k)
{
	struct sim_server *sv = &s->servers[k];
	struct read_ctx x;
	struct store_read_info info;
	uint64_t from = 1;
	uint64_t a;
	unsigned c;
	int rv;

	memset(&x, 0, sizeof x);
	x.s = s;
	x.server = k;
	x.expect = 1;
	for (c = 0; c < s->model.n_clients; c++) {
		x.counts[c] = calloc(s->model.clients[c].n_commits + 1,
				     sizeof *x.counts[c]);
		if (x.counts[c] == NULL)
			abort();
	}
	do {
		rv = store_read_all(&sv->store, from, 256, 0, NULL, read_cb, &x,
				    &info);
		if (rv != 0) {
			sim_fail(s, "end: server %u: read: %s", k,
				 sv->store.errmsg);
			break;
		}
		from = info.next;
	} while (!info.end && !s->failed);
	if (!s->failed && x.expect - 1 != s->model.n_log)
		sim_fail(s,
			 "end: server %u: %" PRIu64
			 " events, the model has %" PRIu64,
			 k, x.expect - 1, s->model.n_log);
	for (a = 0; a < s->n_acks && !s->failed; a++) {
		const struct sim_ack *ack = &s->acks[a];
		struct sim_mclient *mc =
			sim_model_client(&s->model, s->clients[ack->client].id);
		const struct sim_mcommit *cm;
		uint64_t events = 0;
		uint32_t p;
		uint32_t have = 0;

		for (p = 0; p < ack->n_parts; p++)
			events += ack->parts[p].last_position -
				  ack->parts[p].first_position + 1;
		cm = mc != NULL ? sim_model_commit(mc, ack->seq) : NULL;
		if (cm != NULL)
			have = x.counts[mc - s->model.clients]
				       [cm - mc->commits];
		if (have != events)
			sim_fail(s,
				 "end: server %u: acknowledged client %d seq "
				 "%" PRIu64
				 " has %u events in the log, not "
				 "%" PRIu64 " (exactly once)",
				 k, ack->client, ack->seq, have, events);
		else if (cm == NULL || !parts_equal(ack->parts, ack->n_parts,
						    cm->parts, cm->n_parts))
			sim_fail(s,
				 "end: acknowledged client %d seq %" PRIu64
				 " is not where the acknowledgement said",
				 ack->client, ack->seq);
	}
	for (c = 0; c < SIM_MODEL_CLIENTS_MAX; c++)
		free(x.counts[c]);
}

void sim_model_final(struct sim *s)
{
	unsigned cfs = STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP |
		       STORE_CF_META;
	uint64_t digest0 = 0;
	unsigned k;

	for (k = 0; k < s->n && !s->failed; k++) {
		struct sim_server *sv = &s->servers[k];
		struct consensus_int *tmp;
		struct consensus tmp_c;
		uint64_t d;
		int rv;

		final_log(s, k);
		if (s->failed)
			break;
		rv = store_digest(&sv->store, cfs, &d);
		if (rv != 0) {
			sim_fail(s, "end: server %u: digest: %s", k,
				 sv->store.errmsg);
			break;
		}
		s->trace = sim_mix(s->trace, d);
		if (k == 0)
			digest0 = d;
		else if (d != digest0)
			sim_fail(s,
				 "end: server %u: store digest %016" PRIx64
				 " differs from server 0's %016" PRIx64,
				 k, d, digest0);
		if (sim_members_hash(sv->ci->members, sv->ci->n_members) !=
		    sim_members_hash(s->model.members, s->model.n_members)) {
			sim_fail(s,
				 "end: server %u: member table differs from "
				 "the model's",
				 k);
			break;
		}
		/* What a restart would load. */
		tmp = calloc(1, sizeof *tmp);
		if (tmp == NULL)
			abort();
		memset(&tmp_c, 0, sizeof tmp_c);
		tmp->c = &tmp_c;
		tmp->store = &sv->store;
		rv = members_load(tmp);
		if (rv != 0)
			sim_fail(s, "end: server %u: stored member table: %s",
				 k, tmp_c.errmsg);
		else if (sim_members_hash(tmp->members, tmp->n_members) !=
			 sim_members_hash(sv->ci->members, sv->ci->n_members))
			sim_fail(s,
				 "end: server %u: stored member table (%u) "
				 "differs from the one in memory (%u)",
				 k, tmp->n_members, sv->ci->n_members);
		free(tmp);
	}
	/* Replicas that applied every index from the start applied the same
	 * sequence: their hash chains agree. */
	for (k = 1; k < s->n && !s->failed; k++) {
		const struct sim_server *a = &s->servers[0];
		const struct sim_server *b = &s->servers[k];

		if (!a->chain_broken && !b->chain_broken &&
		    a->last_fsm_index == b->last_fsm_index &&
		    a->chain != b->chain)
			sim_fail(s,
				 "end: server %u's hash chain of applied "
				 "entries differs from server 0's",
				 k);
	}
}
