/* One simulated run: 3 to 5 servers on libraft's fixture (in-memory log,
 * simulated network and virtual time), each running Cairn's real FSM
 * (consensus/fsm.c: store_apply, members_apply, the snapshot manifest and
 * its restore check) over its own RocksDB store; clients that append with
 * idempotency keys and retry after lost leaders; faults (kills, partitions
 * in one or both directions, depositions, leadership transfers, latencies,
 * election timeouts, I/O faults); foreign entries (member tables, unknown
 * kinds, malformed entries and transactions); barriers. Every choice comes
 * from the seed's PRNG, so a seed replays exactly. Used by sim.c; the checks
 * are in model.c.
 *
 * Two things stand in for what libraft 0.22.1 or Cairn do not do:
 * - A follower further behind than the trailing log is sent the leader's
 *   snapshot; Cairn's restore then exits (no state transfer yet, see
 *   docs/consensus.md). Here the follower's store is replaced by a RocksDB
 *   checkpoint of a healthy replica first, as an operator (or a future state
 *   transfer) would, and the real restore then runs.
 * - libraft dereferences NULL when a snapshot install arrives while the
 *   follower writes a snapshot of its own (takeSnapshotCb, see
 *   docs/consensus.md): while a server writes one, messages to it are
 *   dropped (a saturated link), as a congested network may. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

/* The run the fixture's hook reports to (the hook has no argument). */
static struct sim *current;

void sim_fail(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return;
	s->failed = true;
	s->fail_step = s->step;
	va_start(ap, fmt);
	vsnprintf(s->why, sizeof s->why, fmt, ap);
	va_end(ap);
}

static uint64_t now_ms(struct sim *s)
{
	return raft_fixture_time(&s->f);
}

static void quiet_emit(struct raft_tracer *t, int type, const void *info)
{
	(void)t;
	(void)type;
	(void)info;
}

static struct raft_tracer quiet_tracer = {
	.impl = NULL,
	.version = 2,
	.emit = quiet_emit,
};

/* ------------------------------------------------------------------------
 * A fix for the fixture's truncate
 *
 * libraft 0.22.1's fixture keeps a server's persisted entries in an array
 * whose first element is the entry at start_index + 1; installing a
 * snapshot empties it and sets start_index to the snapshot's index. Its
 * truncate (ioMethodTruncate in src/fixture.c) ignores start_index and
 * keeps index - 1 elements, so the first truncation after an install reads
 * past the array and later frees garbage (the process crashes in
 * raft_fixture_close). The wrapper below translates the index. It reads
 * the head of the fixture's private struct io, whose layout is checked
 * against known values when each server is set up.
 * ------------------------------------------------------------------------ */

struct fixture_io_head {
	struct raft_io *io;
	unsigned index;
	raft_time *time;
	raft_time next_tick;
	raft_term term;
	raft_id voted_for;
	struct raft_snapshot *snapshot;
	struct raft_entry *entries;
	size_t n;
	raft_index start_index;
};

static int (*fixture_truncate)(struct raft_io *io, raft_index index);

static int fixed_truncate(struct raft_io *io, raft_index index)
{
	struct fixture_io_head *h = io->impl;

	if (h->start_index == 0)
		return fixture_truncate(io, index);
	if (index > h->start_index + h->n)
		return 0; /* nothing to truncate */
	if (index <= h->start_index)
		return fixture_truncate(io, 1);
	return fixture_truncate(io, index - h->start_index);
}

/* Installs fixed_truncate on server @k. Returns -1 when the fixture's
 * layout is not the one this was written for. */
static int fix_truncate(struct sim *s, unsigned k)
{
	struct raft *r = s->servers[k].raft;
	struct fixture_io_head *h = r->io->impl;

	if (h->io != r->io || h->index != k || h->time != &s->f.time ||
	    h->start_index != 0) {
		sim_fail(s, "libraft's fixture is not laid out as in 0.22.1");
		return -1;
	}
	if (fixture_truncate == NULL)
		fixture_truncate = r->io->truncate;
	if (r->io->truncate != fixture_truncate &&
	    r->io->truncate != fixed_truncate) {
		sim_fail(s, "libraft's fixture has two truncate methods");
		return -1;
	}
	r->io->truncate = fixed_truncate;
	return 0;
}

/* ------------------------------------------------------------------------
 * Directories
 * ------------------------------------------------------------------------ */

static int rm_cb(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_base(void)
{
	const char *base = getenv("CAIRN_TEST_TMP");
	struct stat st;

	if (base != NULL && base[0] != '\0')
		return base;
	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode))
		return "/dev/shm";
	return "/tmp";
}

/* ------------------------------------------------------------------------
 * Links
 * ------------------------------------------------------------------------ */

static void set_link(struct sim *s, unsigned i, unsigned j, uint8_t to)
{
	uint8_t from = s->have[i][j];

	if (from == to)
		return;
	if (from == SIM_LINK_DROP) {
		raft_fixture_desaturate(&s->f, i, j);
		from = SIM_LINK_OK;
	}
	if (from == SIM_LINK_CUT && to != SIM_LINK_CUT) {
		raft_fixture_reconnect(&s->f, i, j);
		from = SIM_LINK_OK;
	}
	if (to == SIM_LINK_CUT && from == SIM_LINK_OK)
		raft_fixture_disconnect(&s->f, i, j);
	if (to == SIM_LINK_DROP && from == SIM_LINK_OK)
		raft_fixture_saturate(&s->f, i, j);
	s->have[i][j] = to;
}

/* Brings every link between live servers to what the plan and the guards
 * want. Links of killed servers stay as raft_fixture_kill left them. */
static void sync_links(struct sim *s)
{
	unsigned i;
	unsigned j;

	for (i = 0; i < s->n; i++) {
		for (j = 0; j < s->n; j++) {
			uint8_t to = s->want[i][j];

			if (i == j || s->servers[i].killed ||
			    s->servers[j].killed)
				continue;
			if (s->guard[j] && to == SIM_LINK_OK)
				to = SIM_LINK_DROP;
			set_link(s, i, j, to);
		}
	}
}

static void kill_server(struct sim *s, unsigned i)
{
	unsigned j;

	for (j = 0; j < s->n; j++) {
		if (j == i || s->servers[j].killed)
			continue;
		set_link(s, i, j, SIM_LINK_OK);
		set_link(s, j, i, SIM_LINK_OK);
	}
	raft_fixture_kill(&s->f, i);
	s->servers[i].killed = true;
	for (j = 0; j < s->n; j++) {
		if (j == i)
			continue;
		s->have[i][j] = SIM_LINK_DROP;
		s->have[j][i] = SIM_LINK_DROP;
	}
}

static void revive_server(struct sim *s, unsigned i)
{
	unsigned j;

	raft_fixture_revive(&s->f, i);
	s->servers[i].killed = false;
	for (j = 0; j < s->n; j++) {
		if (j == i || s->servers[j].killed)
			continue;
		s->have[i][j] = SIM_LINK_OK;
		s->have[j][i] = SIM_LINK_OK;
	}
	sync_links(s);
}

/* ------------------------------------------------------------------------
 * State transfer (the stand-in, see the top of the file)
 * ------------------------------------------------------------------------ */

static void transfer_state(struct sim *s, struct sim_server *sv, uint64_t need)
{
	struct sim_server *donor = NULL;
	uint64_t best = UINT64_MAX;
	unsigned k;
	int rv;

	for (k = 0; k < s->n; k++) {
		struct sim_server *d = &s->servers[k];
		uint64_t a = store_applied_index(&d->store);

		if (d == sv || a < need || a >= best)
			continue;
		best = a;
		donor = d;
	}
	if (donor == NULL) {
		sim_fail(s,
			 "server %u: snapshot at applied index %" PRIu64
			 " but no store holds it",
			 sv->idx, need);
		return;
	}
	store_close(&sv->store);
	sv->store_opened = false;
	rm_rf(sv->dir);
	rv = store_checkpoint(&donor->store, sv->dir);
	if (rv != 0) {
		sim_fail(s, "server %u: checkpoint of server %u: %s", sv->idx,
			 donor->idx, donor->store.errmsg);
		return;
	}
	rv = store_open(&sv->store, sv->dir, &sv->sopts);
	if (rv != 0) {
		sim_fail(s, "server %u: open checkpoint: %s", sv->idx,
			 sv->store.errmsg);
		return;
	}
	sv->store_opened = true;
	rv = members_load(sv->ci);
	if (rv != 0) {
		sim_fail(s, "server %u: members after transfer: %s", sv->idx,
			 sv->c.errmsg);
		return;
	}
	sv->skip_through = store_applied_index(&sv->store);
	sv->last_fsm_index = sv->skip_through;
	sv->chain_broken = true;
	sv->transfers++;
	s->st.transfers++;
	s->trace = sim_mix(sim_mix(s->trace, 0x7472616e73ull), donor->idx);
}

/* ------------------------------------------------------------------------
 * The FSM the fixture runs: Cairn's, wrapped to check and to deliver
 * ------------------------------------------------------------------------ */

static bool entry_is_store(const struct raft_buffer *buf)
{
	const uint8_t *p = buf->base;

	return buf->len >= 4 &&
	       ((uint32_t)p[0] | ((uint32_t)p[1] << 8) |
		((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)) ==
		       CONSENSUS_ENTRY_MAGIC_STORE;
}

static int w_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
		   void **result)
{
	struct sim_server *sv = fsm->data;
	struct sim *s = sv->sim;
	struct consensus_int *ci = sv->ci;
	raft_index index = raft_last_applied(sv->raft) + 1;
	bool is_store = entry_is_store(buf);
	uint64_t h;
	struct sim_proposal *p;
	int rv;

	if (sv->break_armed && !sv->break_done && is_store &&
	    index > sv->skip_through) {
		/* The deliberate bug of --break skip-entry: this replica
		 * acts as if it applied the entry. */
		sv->break_done = true;
		*result = NULL;
		return 0;
	}
	rv = ci->fsm.apply(&ci->fsm, buf, result);
	if (rv != 0)
		sim_fail(s, "server %u index %llu: apply returned %d", sv->idx,
			 (unsigned long long)index, rv);
	sim_model_applied(s, sv, index, buf->base, buf->len,
			  is_store ? &ci->results : NULL);
	/* Hand results to the proposal at this index, as consensus/'s
	 * pipeline does: by index, checked against the entry's bytes. */
	h = sim_mix(sim_hash(SIM_HASH_INIT, buf->base, buf->len), buf->len);
	for (p = sv->inflight; p != NULL; p = p->next) {
		uint32_t k;

		if (p->index != index)
			continue;
		p->applied = true;
		if (p->hash != h) {
			p->hash_mismatch = true;
			continue;
		}
		if (!is_store || ci->results.skipped ||
		    ci->results.entry_error != 0 || ci->results.n != p->n)
			continue;
		for (k = 0; k < p->n; k++) {
			const struct store_txn_result *t = &ci->results.txns[k];
			uint32_t np = t->n_parts < SIM_PARTS_MAX
					      ? t->n_parts
					      : SIM_PARTS_MAX;

			p->res[k] = *t;
			p->res[k].parts = NULL;
			if (t->outcome == STORE_COMMITTED ||
			    t->outcome == STORE_DUPLICATE)
				memcpy(p->parts[k], t->parts,
				       sizeof t->parts[0] * np);
		}
		p->delivered = true;
	}
	return rv;
}

static int w_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
		      unsigned *n_bufs)
{
	struct sim_server *sv = fsm->data;
	struct sim *s = sv->sim;
	struct consensus_int *ci = sv->ci;
	struct manifest *m;
	char errmsg[256];
	int rv;

	rv = ci->fsm.snapshot(&ci->fsm, bufs, n_bufs);
	if (rv != 0)
		return rv;
	s->st.snapshots++;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		abort();
	if (*n_bufs != 1 ||
	    manifest_decode((*bufs)[0].base, (*bufs)[0].len, m, errmsg) != 0)
		sim_fail(s, "server %u: snapshot manifest: %s", sv->idx,
			 *n_bufs != 1 ? "not one buffer" : errmsg);
	else if (m->applied_index != store_applied_index(&sv->store) ||
		 m->last_position != store_last_position(&sv->store) ||
		 sim_members_hash(m->members, m->n_members) !=
			 sim_members_hash(ci->members, ci->n_members))
		sim_fail(s,
			 "server %u: snapshot manifest (applied %" PRIu64
			 ", position %" PRIu64 ") does not describe the store",
			 sv->idx, m->applied_index, m->last_position);
	free(m);
	return 0;
}

static int w_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct sim_server *sv = fsm->data;
	struct sim *s = sv->sim;
	struct consensus_int *ci = sv->ci;
	struct manifest *m;
	char errmsg[256];
	const struct sim_ref *ref;
	int rv;

	s->st.restores++;
	m = calloc(1, sizeof *m);
	if (m == NULL)
		abort();
	if (manifest_decode(buf->base, buf->len, m, errmsg) != 0) {
		sim_fail(s, "server %u: restore: manifest: %s", sv->idx,
			 errmsg);
		free(m);
		return RAFT_CORRUPT;
	}
	ref = sim_model_ref_at(&s->model, m->applied_index);
	if (m->applied_index > 0 &&
	    (ref == NULL || !s->model.ref[m->applied_index].set ||
	     ref->last_position != m->last_position ||
	     ref->members_hash != sim_members_hash(m->members, m->n_members)))
		sim_fail(s,
			 "server %u: restore: manifest (applied %" PRIu64
			 ", position %" PRIu64 ") disagrees with the model",
			 sv->idx, m->applied_index, m->last_position);
	if (!s->failed && store_applied_index(&sv->store) < m->applied_index)
		transfer_state(s, sv, m->applied_index);
	free(m);
	if (s->failed)
		return RAFT_CORRUPT;
	rv = ci->fsm.restore(&ci->fsm, buf);
	s->trace = sim_mix(s->trace, 0x726573746f7265ull + sv->idx);
	return rv;
}

/* ------------------------------------------------------------------------
 * Acknowledgements and clients
 * ------------------------------------------------------------------------ */

static void record_ack(struct sim *s, int client, uint64_t seq,
		       uint32_t n_parts, const struct store_part_result *parts)
{
	struct sim_ack *a;
	uint32_t k;

	if (s->n_acks == s->acks_cap) {
		uint64_t cap = s->acks_cap == 0 ? 256 : s->acks_cap * 2;
		struct sim_ack *p = realloc(s->acks, sizeof *p * cap);

		if (p == NULL)
			abort();
		s->acks = p;
		s->acks_cap = cap;
	}
	if (n_parts == 0 || n_parts > SIM_PARTS_MAX) {
		sim_fail(s, "client %d seq %" PRIu64 ": acked with %u parts",
			 client, seq, n_parts);
		return;
	}
	a = &s->acks[s->n_acks++];
	a->client = client;
	a->seq = seq;
	a->n_parts = n_parts;
	memcpy(a->parts, parts, sizeof parts[0] * n_parts);
	for (k = 0; k < n_parts; k++)
		if (parts[k].last_position > s->max_acked_position)
			s->max_acked_position = parts[k].last_position;
	s->trace = sim_mix(sim_mix(s->trace, (uint64_t)client), seq);
}

static void client_pick_target(struct sim *s, struct sim_client *c)
{
	unsigned k;

	if (sim_rng_chance(&s->rng, 500000))
		return; /* the same server again */
	for (k = 0; k < s->n; k++) {
		if (raft_state(s->servers[k].raft) == RAFT_LEADER &&
		    !s->servers[k].killed) {
			c->target = k;
			return;
		}
	}
	c->target = (unsigned)sim_rng_below(&s->rng, s->n);
}

/* An answer to an attempt of (@client, @seq). @definitive: the FSM's result
 * reached the proposer (or the leader answered from dedup state). */
static void client_answer(struct sim *s, int client, uint64_t seq,
			  uint32_t attempt, bool definitive,
			  const struct store_txn_result *res,
			  const struct store_part_result *parts)
{
	struct sim_client *c = &s->clients[client];
	uint64_t now = now_ms(s);

	if (!definitive) {
		s->st.unknown++;
		if (c->seq == seq && c->state == SIM_CLIENT_WAIT &&
		    c->attempt == attempt) {
			c->state = SIM_CLIENT_SEND;
			c->retries++;
			c->next_ms = now + sim_rng_range(&s->rng, 10, 300);
			client_pick_target(s, c);
		}
		return;
	}
	switch (res->outcome) {
	case STORE_COMMITTED:
	case STORE_DUPLICATE:
		record_ack(s, client, seq, res->n_parts, parts);
		if (res->outcome == STORE_COMMITTED)
			s->st.committed++;
		else
			s->st.duplicates++;
		break;
	case STORE_WRONG_EXPECTED_VERSION:
	case STORE_STALE_SEQUENCE:
		break;
	default:
		sim_fail(s, "client %d seq %" PRIu64 ": outcome %u", client,
			 seq, res->outcome);
		return;
	}
	if (c->seq != seq ||
	    (c->state != SIM_CLIENT_WAIT && c->state != SIM_CLIENT_SEND))
		return;
	if (res->outcome == STORE_COMMITTED ||
	    res->outcome == STORE_DUPLICATE) {
		c->committed++;
	} else if (res->outcome == STORE_WRONG_EXPECTED_VERSION) {
		c->conflicts++;
	}
	c->state = s->draining ? SIM_CLIENT_DONE : SIM_CLIENT_IDLE;
	c->next_ms = now + sim_rng_range(&s->rng, 0, 200);
}

/* The version a client believes a stream has: the highest version any
 * acknowledgement showed (clients share what they saw, so conflicts come
 * from concurrency and from lost answers). */
static uint64_t believed_version(struct sim *s, unsigned stream)
{
	const struct sim_model *m = &s->model;
	unsigned k;

	/* The model's committed version, seen with a lag: what a client
	 * reading the stream a moment ago would know. */
	for (k = 0; k < m->n_streams; k++)
		if (m->stream_len[k] == strlen(s->streams[stream]) &&
		    memcmp(m->streams[k], s->streams[stream],
			   m->stream_len[k]) == 0)
			return m->versions[k];
	return 0;
}

static void client_new_txn(struct sim *s, struct sim_client *c)
{
	static const char *types[] = { "Created", "Updated", "Deleted",
				       "Moved" };
	unsigned p;
	unsigned e;

	c->seq++;
	c->attempt = 0;
	s->st.txns++;
	c->n_parts = 1;
	if (s->n_streams > 1 && sim_rng_chance(&s->rng, 300000))
		c->n_parts = (unsigned)sim_rng_range(
			&s->rng, 2,
			s->n_streams < SIM_PARTS_MAX ? s->n_streams
						     : SIM_PARTS_MAX);
	for (p = 0; p < c->n_parts; p++) {
		unsigned st;
		unsigned q;
		bool dup;
		uint64_t v;
		uint64_t roll;

		do {
			st = (unsigned)sim_rng_below(&s->rng, s->n_streams);
			dup = false;
			for (q = 0; q < p; q++)
				dup |= c->streams[q] == st;
		} while (dup);
		c->streams[p] = st;
		v = believed_version(s, st);
		roll = sim_rng_below(&s->rng, 100);
		if (roll < 45) {
			c->expect[p].kind = STORE_EXPECT_EXACT;
			c->expect[p].version = v;
		} else if (roll < 55) {
			c->expect[p].kind = STORE_EXPECT_EXACT;
			c->expect[p].version =
				v > 0 && sim_rng_chance(&s->rng, 500000)
					? v - 1
					: v + 1;
		} else if (roll < 65) {
			c->expect[p].kind = STORE_EXPECT_NO_STREAM;
			c->expect[p].version = 0;
		} else if (roll < 75) {
			c->expect[p].kind = STORE_EXPECT_EXISTS;
			c->expect[p].version = 0;
		} else {
			c->expect[p].kind = STORE_EXPECT_ANY;
			c->expect[p].version = 0;
		}
		c->n_events[p] =
			(unsigned)sim_rng_range(&s->rng, 1, SIM_EVENTS_MAX);
		for (e = 0; e < c->n_events[p]; e++) {
			struct sim_event *ev = &c->events[p][e];
			uint32_t k;

			for (k = 0; k < 16; k++)
				ev->id[k] = (uint8_t)sim_rng_next(&s->rng);
			snprintf(ev->type, sizeof ev->type, "%s",
				 types[sim_rng_below(&s->rng, 4)]);
			ev->data_len =
				(uint32_t)sim_rng_below(&s->rng, SIM_DATA_MAX);
			for (k = 0; k < ev->data_len; k++)
				ev->data[k] = (uint8_t)sim_rng_next(&s->rng);
			ev->meta_len = (uint32_t)sim_rng_below(&s->rng, 16);
			for (k = 0; k < ev->meta_len; k++)
				ev->meta[k] = (uint8_t)sim_rng_next(&s->rng);
		}
	}
	c->state = SIM_CLIENT_SEND;
	c->next_ms = now_ms(s);
}

/* Fills @t (with @parts and @events as storage) from @c's transaction. */
static void client_txn(struct sim_client *c, struct store_txn *t,
		       struct store_part *parts, struct store_event *events,
		       const char (*names)[32], uint64_t commit_time_us)
{
	unsigned p;
	unsigned e;
	unsigned n = 0;

	memset(t, 0, sizeof *t);
	t->commit_time_us = commit_time_us;
	t->has_client = true;
	memcpy(t->client_id, c->id, 16);
	t->client_seq = c->seq;
	t->n_parts = c->n_parts;
	t->parts = parts;
	for (p = 0; p < c->n_parts; p++) {
		struct store_part *pt = &parts[p];

		pt->stream = names[c->streams[p]];
		pt->stream_len = (uint32_t)strlen(names[c->streams[p]]);
		pt->expect = c->expect[p];
		pt->n_events = c->n_events[p];
		pt->events = &events[n];
		for (e = 0; e < c->n_events[p]; e++) {
			const struct sim_event *ev = &c->events[p][e];
			struct store_event *se = &events[n++];

			memset(se, 0, sizeof *se);
			memcpy(se->id, ev->id, 16);
			se->type = ev->type;
			se->type_len = (uint32_t)strlen(ev->type);
			se->schema_version = (uint16_t)(ev->id[0] % 3);
			se->event_time_us =
				ev->id[1] % 2 == 0
					? 0
					: (int64_t)(commit_time_us / 2 +
						    ev->id[2]);
			se->data = ev->data_len > 0 ? ev->data : NULL;
			se->data_len = ev->data_len;
			se->metadata = ev->meta_len > 0 ? ev->meta : NULL;
			se->metadata_len = ev->meta_len;
		}
	}
}

static uint64_t commit_time(struct sim *s, struct sim_server *sv)
{
	uint64_t t = now_ms(s) * 1000;

	if (t < sv->last_commit_time_us)
		t = sv->last_commit_time_us;
	sv->last_commit_time_us = t;
	return t;
}

static void client_submit(struct sim *s, unsigned ci)
{
	struct sim_client *c = &s->clients[ci];
	struct sim_server *sv = &s->servers[c->target];
	struct store_txn t;
	struct store_part parts[SIM_PARTS_MAX];
	struct store_event events[SIM_PARTS_MAX * SIM_EVENTS_MAX];
	char errmsg[STORE_ERRMSG_SIZE];
	uint64_t now = now_ms(s);
	bool found = false;
	uint64_t hwm = 0;
	int rv;

	c->attempt++;
	if (sv->killed) {
		/* Nobody answers: the client gives up at its deadline. */
		c->state = SIM_CLIENT_WAIT;
		c->deadline_ms = now + sim_rng_range(&s->rng, 500, 3000);
		return;
	}
	if (raft_state(sv->raft) != RAFT_LEADER) {
		raft_id id = 0;
		const char *address = NULL;

		raft_leader(sv->raft, &id, &address);
		c->target = id != 0 ? (unsigned)id - 1
				    : (unsigned)sim_rng_below(&s->rng, s->n);
		c->next_ms = now + sim_rng_range(&s->rng, 5, 100);
		return;
	}
	/* The leader answers a committed retry from dedup state, as
	 * consensus_append does. */
	rv = store_dedup_lookup(&sv->store, c->id, c->seq, &found, &hwm,
				&s->lookup);
	if (rv != 0) {
		sim_fail(s, "server %u: dedup lookup: %s", sv->idx,
			 sv->store.errmsg);
		return;
	}
	if (found || (hwm != 0 && c->seq <= hwm)) {
		struct sim_mclient *mc = sim_model_client(&s->model, c->id);
		const struct sim_mcommit *mcm =
			mc != NULL ? sim_model_commit(mc, c->seq) : NULL;
		struct store_txn_result res;

		if (found &&
		    (mcm == NULL || s->lookup.n != 1 ||
		     s->lookup.txns[0].outcome != STORE_DUPLICATE ||
		     s->lookup.txns[0].n_parts != mcm->n_parts ||
		     memcmp(s->lookup.txns[0].parts, mcm->parts,
			    sizeof mcm->parts[0] * mcm->n_parts) != 0)) {
			sim_fail(s,
				 "server %u: dedup lookup of client %u seq "
				 "%" PRIu64 " disagrees with the model",
				 sv->idx, ci, c->seq);
			return;
		}
		if (!found && (mc == NULL || mcm != NULL || mc->hwm < c->seq)) {
			sim_fail(s,
				 "server %u: dedup lookup says client %u seq "
				 "%" PRIu64 " is stale (mark %" PRIu64
				 "), the model disagrees",
				 sv->idx, ci, c->seq, hwm);
			return;
		}
		memset(&res, 0, sizeof res);
		res.outcome = found ? STORE_DUPLICATE : STORE_STALE_SEQUENCE;
		res.n_parts = found ? s->lookup.txns[0].n_parts : 0;
		res.actual_version = hwm;
		c->state = SIM_CLIENT_WAIT;
		client_answer(s, (int)ci, c->seq, c->attempt, true, &res,
			      found ? s->lookup.txns[0].parts : NULL);
		return;
	}
	client_txn(c, &t, parts, events, (const char(*)[32])s->streams,
		   commit_time(s, sv));
	rv = store_entry_add(&sv->open, &t, errmsg);
	if (rv != 0) {
		sim_fail(s, "client %u: entry add: %s", ci, errmsg);
		return;
	}
	sv->open_txns[sv->n_open].client = (int)ci;
	sv->open_txns[sv->n_open].seq = c->seq;
	sv->open_txns[sv->n_open].attempt = c->attempt;
	sv->n_open++;
	c->state = SIM_CLIENT_WAIT;
	c->deadline_ms = now + sim_rng_range(&s->rng, 1000, 4000);
}

static void clients_step(struct sim *s)
{
	uint64_t now = now_ms(s);
	unsigned k;

	for (k = 0; k < s->n_clients && !s->failed; k++) {
		struct sim_client *c = &s->clients[k];

		switch (c->state) {
		case SIM_CLIENT_IDLE:
			if (s->draining)
				c->state = SIM_CLIENT_DONE;
			else if (now >= c->next_ms)
				client_new_txn(s, c);
			break;
		case SIM_CLIENT_SEND:
			if (now >= c->next_ms)
				client_submit(s, k);
			break;
		case SIM_CLIENT_WAIT:
			if (now >= c->deadline_ms) {
				/* No answer in time: outcome unknown. */
				s->st.unknown++;
				c->retries++;
				c->state = SIM_CLIENT_SEND;
				c->next_ms = now;
				client_pick_target(s, c);
			}
			break;
		default:
			break;
		}
	}
}

/* ------------------------------------------------------------------------
 * Proposals
 * ------------------------------------------------------------------------ */

static void proposal_unlink(struct sim_server *sv, struct sim_proposal *p)
{
	struct sim_proposal **pp;

	for (pp = &sv->inflight; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
	struct sim_proposal *p = req->data;
	struct sim *s = p->sim;
	struct sim_server *sv = &s->servers[p->server];
	bool definitive = status == 0 && p->delivered;
	unsigned k;

	(void)result;
	proposal_unlink(sv, p);
	if (s->closing) {
		free(p);
		return;
	}
	s->trace = sim_mix(sim_mix(s->trace, p->index), (uint64_t)status);
	if (status == 0) {
		if (!p->applied)
			sim_fail(s,
				 "server %u: callback status 0 for index "
				 "%llu before it was applied",
				 sv->idx, (unsigned long long)p->index);
		else if (p->hash_mismatch)
			sim_fail(s,
				 "server %u: callback status 0 for index "
				 "%llu, which holds another entry",
				 sv->idx, (unsigned long long)p->index);
		else if (p->kind == SIM_KIND_STORE && p->n > 0 &&
			 !p->delivered && p->index > sv->skip_through &&
			 !(sv->break_done && sv->break_armed))
			sim_fail(s,
				 "server %u: callback status 0 for index "
				 "%llu without results",
				 sv->idx, (unsigned long long)p->index);
	}
	for (k = 0; k < p->n && !s->failed; k++) {
		if (p->txns[k].client < 0)
			continue;
		client_answer(s, p->txns[k].client, p->txns[k].seq,
			      p->txns[k].attempt, definitive, &p->res[k],
			      p->parts[k]);
	}
	free(p);
}

/* Proposes @len bytes at @entry on @sv with the transactions @txns. */
static void propose(struct sim *s, struct sim_server *sv, const void *entry,
		    size_t len, uint8_t kind, const struct sim_ptxn *txns,
		    unsigned n)
{
	struct sim_proposal *p = calloc(1, sizeof *p);
	struct raft_buffer buf;
	unsigned k;
	int rv;

	if (p == NULL)
		abort();
	p->sim = s;
	p->server = sv->idx;
	p->kind = kind;
	p->hash = sim_mix(sim_hash(SIM_HASH_INIT, entry, len), len);
	p->n = n;
	if (n > 0)
		memcpy(p->txns, txns, sizeof txns[0] * n);
	p->req.data = p;
	buf.len = len;
	buf.base = raft_malloc(len);
	if (buf.base == NULL)
		abort();
	memcpy(buf.base, entry, len);
	p->index = raft_last_index(sv->raft) + 1;
	p->next = sv->inflight;
	sv->inflight = p;
	rv = raft_apply(sv->raft, &p->req, &buf, 1, apply_cb);
	if (rv != 0) {
		/* Refused before anything was appended (RAFT_NOTLEADER):
		 * nothing was proposed, the clients try again. */
		raft_free(buf.base);
		proposal_unlink(sv, p);
		if (rv != RAFT_NOTLEADER && rv != RAFT_NOSPACE)
			sim_fail(s, "server %u: raft_apply: %s", sv->idx,
				 raft_strerror(rv));
		for (k = 0; k < n && !s->failed; k++) {
			struct sim_client *c;

			if (txns[k].client < 0)
				continue;
			c = &s->clients[txns[k].client];
			if (c->seq == txns[k].seq &&
			    c->state == SIM_CLIENT_WAIT &&
			    c->attempt == txns[k].attempt) {
				c->state = SIM_CLIENT_SEND;
				c->next_ms = now_ms(s) + 10;
				client_pick_target(s, c);
			}
		}
		free(p);
		return;
	}
	p->index = p->req.index;
}

/* Proposes every open batch: the end of a loop iteration. */
static void flush_batches(struct sim *s)
{
	unsigned k;

	for (k = 0; k < s->n && !s->failed; k++) {
		struct sim_server *sv = &s->servers[k];
		const void *entry;
		size_t len;
		int rv;

		if (sv->n_open == 0)
			continue;
		rv = store_entry_finish(&sv->open, &entry, &len);
		if (rv != 0) {
			sim_fail(s, "server %u: entry finish: %d", k, rv);
			return;
		}
		propose(s, sv, entry, len, SIM_KIND_STORE, sv->open_txns,
			sv->n_open);
		store_entry_builder_reset(&sv->open);
		sv->n_open = 0;
	}
}

/* ------------------------------------------------------------------------
 * Foreign entries: what no Cairn leader proposes today, but every replica
 * must apply alike (member tables, unknown kinds, malformed bytes).
 * ------------------------------------------------------------------------ */

static void random_bytes(struct sim *s, uint8_t *p, size_t n)
{
	size_t k;

	for (k = 0; k < n; k++)
		p[k] = (uint8_t)sim_rng_next(&s->rng);
}

/* A transaction of a writer no client is (freed by the caller). */
static struct sim_client *scratch_client(struct sim *s)
{
	struct sim_client *c = calloc(1, sizeof *c);

	if (c == NULL)
		abort();
	random_bytes(s, c->id, 16);
	c->seq = sim_rng_range(&s->rng, 0, 5);
	client_new_txn(s, c);
	s->st.txns--;
	return c;
}

static void propose_foreign(struct sim *s, struct sim_server *sv)
{
	uint64_t roll = sim_rng_below(&s->rng, 100);
	uint8_t buf[4096];
	size_t len;

	s->st.foreign++;
	if (roll < 40) {
		struct member_record recs[3];
		unsigned n = (unsigned)sim_rng_range(&s->rng, 1, 3);
		unsigned max_id = s->opts->member_overflow ? 24 : 16;
		unsigned k;

		memset(recs, 0, sizeof recs);
		for (k = 0; k < n; k++) {
			recs[k].id = sim_rng_range(&s->rng, 1, max_id);
			recs[k].op = sim_rng_chance(&s->rng, 200000)
					     ? CONSENSUS_MEMBER_DELETE
					     : CONSENSUS_MEMBER_SET;
			if (recs[k].op == CONSENSUS_MEMBER_DELETE)
				continue;
			snprintf(recs[k].raft_address,
				 sizeof recs[k].raft_address, "10.0.0.%u:%u",
				 (unsigned)recs[k].id,
				 (unsigned)sim_rng_range(&s->rng, 9000, 9009));
			snprintf(recs[k].client_address,
				 sizeof recs[k].client_address,
				 "10.0.1.%u:7%03u", (unsigned)recs[k].id,
				 (unsigned)sim_rng_below(&s->rng, 1000));
			if (sim_rng_chance(&s->rng, 500000))
				snprintf(recs[k].http_address,
					 sizeof recs[k].http_address,
					 "10.0.2.%u:8000",
					 (unsigned)recs[k].id);
		}
		len = member_entry_size(recs, n);
		member_entry_encode(recs, n, buf);
		if (roll < 8) /* a malformed member entry */
			buf[sim_rng_range(&s->rng, 4, len - 1)] ^=
				(uint8_t)sim_rng_range(&s->rng, 1, 255);
		propose(s, sv, buf, len, SIM_KIND_MEMBERS, NULL, 0);
	} else if (roll < 55) {
		/* Not a kind Cairn knows. */
		len = 8 * (size_t)sim_rng_range(&s->rng, 1, 8);
		random_bytes(s, buf, len);
		buf[0] = 'X';
		propose(s, sv, buf, len, SIM_KIND_OTHER, NULL, 0);
	} else if (roll < 75) {
		/* A malformed storage entry: a client transaction's entry
		 * with one byte past the magic changed. */
		struct sim_client *c = scratch_client(s);
		struct store_entry_builder b;
		struct store_txn t;
		struct store_part parts[SIM_PARTS_MAX];
		struct store_event events[SIM_PARTS_MAX * SIM_EVENTS_MAX];
		char errmsg[STORE_ERRMSG_SIZE];
		const void *entry;

		client_txn(c, &t, parts, events, (const char(*)[32])s->streams,
			   commit_time(s, sv));
		store_entry_builder_init(&b);
		if (store_entry_add(&b, &t, errmsg) != 0 ||
		    store_entry_finish(&b, &entry, &len) != 0 ||
		    len > sizeof buf) {
			sim_fail(s, "foreign entry: %s", errmsg);
			store_entry_builder_close(&b);
			free(c);
			return;
		}
		memcpy(buf, entry, len);
		store_entry_builder_close(&b);
		free(c);
		buf[sim_rng_range(&s->rng, 4, len - 1)] ^=
			(uint8_t)sim_rng_range(&s->rng, 1, 255);
		propose(s, sv, buf, len, SIM_KIND_STORE, NULL, 0);
	} else {
		/* A damaged transaction inside the open batch: rejected at
		 * apply, alike everywhere, next to the clients' ones. */
		struct sim_client *c = scratch_client(s);
		struct store_txn t;
		struct store_part parts[SIM_PARTS_MAX];
		struct store_event events[SIM_PARTS_MAX * SIM_EVENTS_MAX];
		char errmsg[STORE_ERRMSG_SIZE];
		size_t n;

		client_txn(c, &t, parts, events, (const char(*)[32])s->streams,
			   commit_time(s, sv));
		n = store_txn_encoded_size(&t);
		if (n > sizeof buf) {
			sim_fail(s, "foreign txn of %zu bytes", n);
			free(c);
			return;
		}
		store_txn_encode(&t, buf);
		free(c);
		if (sim_rng_chance(&s->rng, 500000))
			buf[sim_rng_below(&s->rng, n)] ^=
				(uint8_t)sim_rng_range(&s->rng, 1, 255);
		else
			n = (size_t)sim_rng_range(&s->rng, 1, n - 1);
		if (store_entry_add_encoded(&sv->open, buf, n, errmsg) != 0) {
			sim_fail(s, "foreign txn: %s", errmsg);
			return;
		}
		sv->open_txns[sv->n_open].client = -1;
		sv->open_txns[sv->n_open].seq = 0;
		sv->open_txns[sv->n_open].attempt = 0;
		sv->n_open++;
	}
}

/* ------------------------------------------------------------------------
 * Barriers and leadership transfers
 * ------------------------------------------------------------------------ */

static void barrier_cb(struct raft_barrier *req, int status)
{
	struct sim_server *sv = req->data;
	struct sim *s = sv->sim;

	sv->barrier_pending = false;
	sv->barrier_status = status;
	if (s->closing)
		return;
	s->trace = sim_mix(sim_mix(s->trace, 0x62617272ull), (uint64_t)status);
	if (status != 0)
		return;
	s->st.barriers++;
	/* Linearizable: everything acknowledged before the barrier was
	 * issued is in this leader's store once it applies. */
	if (store_last_position(&sv->store) < sv->barrier_need_position)
		sim_fail(s,
			 "server %u: after a barrier its store ends at "
			 "position %" PRIu64 ", but %" PRIu64
			 " was acknowledged before the barrier",
			 sv->idx, store_last_position(&sv->store),
			 sv->barrier_need_position);
}

static bool issue_barrier(struct sim *s, struct sim_server *sv)
{
	int rv;

	if (sv->barrier_pending || raft_state(sv->raft) != RAFT_LEADER)
		return false;
	sv->barrier.data = sv;
	sv->barrier_need_position = s->max_acked_position;
	rv = raft_barrier(sv->raft, &sv->barrier, barrier_cb);
	if (rv != 0) {
		if (rv != RAFT_NOTLEADER && rv != RAFT_NOSPACE)
			sim_fail(s, "server %u: raft_barrier: %s", sv->idx,
				 raft_strerror(rv));
		return false;
	}
	sv->barrier_pending = true;
	return true;
}

static void xfer_cb(struct raft_transfer *req)
{
	struct sim_server *sv = req->data;

	sv->xfer_pending = false;
}

/* ------------------------------------------------------------------------
 * Faults
 * ------------------------------------------------------------------------ */

static unsigned count_killed(const struct sim *s)
{
	unsigned k;
	unsigned n = 0;

	for (k = 0; k < s->n; k++)
		n += s->servers[k].killed;
	return n;
}

static int leader_index(struct sim *s)
{
	unsigned k;

	for (k = 0; k < s->n; k++)
		if (!s->servers[k].killed &&
		    raft_state(s->servers[k].raft) == RAFT_LEADER)
			return (int)k;
	return -1;
}

static void partition(struct sim *s)
{
	uint64_t kind = sim_rng_below(&s->rng, 4);
	unsigned i;
	unsigned j;

	s->st.partitions++;
	if (kind == 0) {
		/* Cut one server off both ways. */
		unsigned x = (unsigned)sim_rng_below(&s->rng, s->n);

		for (j = 0; j < s->n; j++) {
			if (j == x)
				continue;
			s->want[x][j] = SIM_LINK_CUT;
			s->want[j][x] = SIM_LINK_CUT;
		}
	} else if (kind == 1) {
		/* Two groups. */
		bool side[SIM_SERVERS_MAX];

		for (i = 0; i < s->n; i++)
			side[i] = sim_rng_chance(&s->rng, 500000);
		for (i = 0; i < s->n; i++)
			for (j = 0; j < s->n; j++)
				if (i != j && side[i] != side[j])
					s->want[i][j] =
						sim_rng_chance(&s->rng, 500000)
							? SIM_LINK_CUT
							: SIM_LINK_DROP;
	} else if (!s->asymmetric) {
		/* Both directions of one link. */
		i = (unsigned)sim_rng_below(&s->rng, s->n);
		j = (unsigned)sim_rng_below(&s->rng, s->n - 1);
		if (j >= i)
			j++;
		s->want[i][j] = kind == 2 ? SIM_LINK_DROP : SIM_LINK_CUT;
		s->want[j][i] = s->want[i][j];
	} else {
		/* One direction of one link. */
		i = (unsigned)sim_rng_below(&s->rng, s->n);
		j = (unsigned)sim_rng_below(&s->rng, s->n - 1);
		if (j >= i)
			j++;
		s->want[i][j] = kind == 2 ? SIM_LINK_DROP : SIM_LINK_CUT;
	}
	s->trace = sim_mix(s->trace, 0x70617274ull + kind);
	sync_links(s);
}

static void heal(struct sim *s)
{
	memset(s->want, SIM_LINK_OK, sizeof s->want);
	sync_links(s);
	s->trace = sim_mix(s->trace, 0x6865616cull);
}

/* The fixture completes disk writes in order of completion time: a lower
 * latency would let a later append complete before an earlier one, which
 * no disk log does (libraft asserts on it in stepPersistedEntries). So a
 * server's latency goes down only while it has no write pending. */
static void set_disk_latency(struct sim *s, unsigned i, unsigned ms)
{
	struct sim_server *sv = &s->servers[i];
	struct raft *r = sv->raft;

	if (ms < sv->disk_latency_ms &&
	    (r->last_stored != raft_last_index(r) ||
	     r->legacy.snapshot_taking || r->legacy.snapshot_install))
		return;
	raft_fixture_set_disk_latency(&s->f, i, ms);
	sv->disk_latency_ms = ms;
}

static void faults_step(struct sim *s)
{
	struct sim_rng *r = &s->rng;
	int l;

	if (sim_rng_chance(r, s->p_kill) && count_killed(s) + 1 < s->n) {
		unsigned i;

		do {
			i = (unsigned)sim_rng_below(r, s->n);
		} while (s->servers[i].killed);
		kill_server(s, i);
		s->st.kills++;
		s->trace = sim_mix(s->trace, 0x6b696c6cull + i);
	}
	if (sim_rng_chance(r, s->p_revive) && count_killed(s) > 0) {
		unsigned i;

		do {
			i = (unsigned)sim_rng_below(r, s->n);
		} while (!s->servers[i].killed);
		revive_server(s, i);
		s->trace = sim_mix(s->trace, 0x72657669ull + i);
	}
	if (sim_rng_chance(r, s->p_partition))
		partition(s);
	if (sim_rng_chance(r, s->p_heal))
		heal(s);
	if (sim_rng_chance(r, s->p_latency)) {
		unsigned i = (unsigned)sim_rng_below(r, s->n);

		if (sim_rng_chance(r, 500000))
			raft_fixture_set_network_latency(
				&s->f, i,
				(unsigned)(sim_rng_chance(r, 100000)
						   ? sim_rng_range(r, 100, 400)
						   : sim_rng_range(r, 1, 40)));
		else
			set_disk_latency(
				s, i,
				(unsigned)(sim_rng_chance(r, 100000)
						   ? sim_rng_range(r, 100, 600)
						   : sim_rng_range(r, 1, 30)));
	}
	if (sim_rng_chance(r, s->p_timeout))
		raft_fixture_set_randomized_election_timeout(
			&s->f, (unsigned)sim_rng_below(r, s->n),
			(unsigned)sim_rng_range(r, 1000, 2000));
	l = leader_index(s);
	if (l >= 0 && sim_rng_chance(r, s->p_barrier))
		issue_barrier(s, &s->servers[l]);
	if (l >= 0 && sim_rng_chance(r, s->p_foreign))
		propose_foreign(s, &s->servers[l]);
	if (l >= 0 && sim_rng_chance(r, s->p_xfer) &&
	    !s->servers[l].xfer_pending) {
		struct sim_server *sv = &s->servers[l];

		sv->xfer.data = sv;
		if (raft_transfer(sv->raft, &sv->xfer, 0, xfer_cb) == 0) {
			sv->xfer_pending = true;
			s->st.xfers++;
		}
	}
	if (sim_rng_chance(r, s->p_io_fault)) {
		unsigned i = (unsigned)sim_rng_below(r, s->n);

		raft_fixture_io_fault(&s->f, i, (int)sim_rng_range(r, 0, 20),
				      1);
		s->st.io_faults++;
		s->trace = sim_mix(s->trace, 0x696full + i);
	}
	if (sim_rng_chance(r, s->p_depose) && s->asymmetric &&
	    s->f.leader_id != 0) {
		unsigned i = (unsigned)s->f.leader_id - 1;

		bool followers = true;
		unsigned j;

		/* raft_fixture_depose needs every other server to be a
		 * follower (it asserts so). */
		for (j = 0; j < s->n; j++)
			if (j != i &&
			    raft_state(s->servers[j].raft) != RAFT_FOLLOWER)
				followers = false;
		if (followers && !s->servers[i].killed &&
		    raft_state(s->servers[i].raft) == RAFT_LEADER) {
			s->st.deposes++;
			s->trace = sim_mix(s->trace, 0x6465706full);
			raft_fixture_depose(&s->f);
		}
	}
}

/* ------------------------------------------------------------------------
 * After every fixture step
 * ------------------------------------------------------------------------ */

static void step_hook(struct raft_fixture *f, struct raft_fixture_event *ev)
{
	struct sim *s = current;
	bool changed = false;
	unsigned k;

	s->step++;
	s->trace = sim_mix(sim_mix(s->trace, (uint64_t)f->time),
			   (uint64_t)raft_fixture_event_type(ev) * 16 +
				   raft_fixture_event_server_index(ev));
	if (f->leader_id != 0) {
		struct raft *r =
			raft_fixture_get(f, (unsigned)f->leader_id - 1);

		if (raft_current_term(r) != s->seen_term ||
		    f->leader_id != s->seen_leader) {
			s->seen_term = raft_current_term(r);
			s->seen_leader = f->leader_id;
			s->st.leaders++;
		}
	}
	for (k = 0; k < s->n; k++) {
		bool g = s->servers[k].raft->legacy.snapshot_taking;

		if (g != s->guard[k]) {
			s->guard[k] = g;
			changed = true;
		}
	}
	if (changed)
		sync_links(s);
	if (!s->failed)
		sim_model_check_servers(s);
}

/* ------------------------------------------------------------------------
 * Setup, the run, the end
 * ------------------------------------------------------------------------ */

static int server_open(struct sim *s, unsigned k)
{
	struct sim_server *sv = &s->servers[k];
	uint64_t cache = sim_rng_below(&s->rng, 3);
	int rv;

	sv->sim = s;
	sv->idx = k;
	snprintf(sv->dir, sizeof sv->dir, "%s/s%u", s->base, k);
	memset(&sv->sopts, 0, sizeof sv->sopts);
	sv->sopts.block_cache_bytes = 1u << 20;
	/* Replicas with different head caches must still agree. */
	if (cache == 0)
		sv->sopts.head_cache_off = true;
	else if (cache == 1)
		sv->sopts.head_cache_entries = 8;
	else
		sv->sopts.head_cache_entries = 4096;
	rv = store_open(&sv->store, sv->dir, &sv->sopts);
	if (rv != 0) {
		sim_fail(s, "server %u: store_open: %s", k, sv->store.errmsg);
		return -1;
	}
	sv->store_opened = true;
	sv->ci = calloc(1, sizeof *sv->ci);
	if (sv->ci == NULL)
		abort();
	sv->c.i = sv->ci;
	sv->ci->c = &sv->c;
	sv->ci->store = &sv->store;
	sv->ci->id = k + 1;
	store_results_init(&sv->ci->results);
	if (members_load(sv->ci) != 0) {
		sim_fail(s, "server %u: %s", k, sv->c.errmsg);
		return -1;
	}
	fsm_setup(sv->ci);
	memset(&sv->fsm, 0, sizeof sv->fsm);
	sv->fsm.version = 1;
	sv->fsm.data = sv;
	sv->fsm.apply = w_apply;
	sv->fsm.snapshot = w_snapshot;
	sv->fsm.restore = w_restore;
	store_entry_builder_init(&sv->open);
	sv->chain = SIM_HASH_INIT;
	return 0;
}

static void server_close(struct sim_server *sv)
{
	struct sim_proposal *p;

	while ((p = sv->inflight) != NULL) {
		sv->inflight = p->next;
		free(p);
	}
	store_entry_builder_close(&sv->open);
	if (sv->ci != NULL) {
		store_results_close(&sv->ci->results);
		free(sv->ci);
		sv->ci = NULL;
	}
	if (sv->store_opened) {
		store_close(&sv->store);
		sv->store_opened = false;
	}
}

static void draw_parameters(struct sim *s)
{
	struct sim_rng *r = &s->rng;
	unsigned intensity = (unsigned)sim_rng_range(r, 1, 4);
	unsigned k;

	s->n = (unsigned)sim_rng_range(r, 3, SIM_SERVERS_MAX);
	s->n_clients = (unsigned)sim_rng_range(r, 2, SIM_CLIENTS_MAX);
	s->n_streams = (unsigned)sim_rng_range(r, 2, SIM_STREAMS_MAX);
	for (k = 0; k < s->n_streams; k++)
		snprintf(s->streams[k], sizeof s->streams[k], "%s-%u",
			 k % 2 == 0 ? "order" : "account", k);
	for (k = 0; k < s->n_clients; k++) {
		random_bytes(s, s->clients[k].id, 16);
		s->clients[k].target = (unsigned)sim_rng_below(r, s->n);
		s->clients[k].next_ms = sim_rng_below(r, 500);
	}
	/* Per million steps. */
	s->p_kill = 300 * intensity;
	s->p_revive = 1500 * intensity;
	s->p_partition = 300 * intensity;
	s->p_heal = 1200 * intensity;
	s->p_depose = 40 * intensity;
	s->p_xfer = 100 * intensity;
	s->p_latency = 1000 * intensity;
	s->p_timeout = 500 * intensity;
	s->p_barrier = 1500;
	s->p_foreign = s->opts->member_overflow ? 30000 : 1500;
	s->p_io_fault = s->opts->io_faults ? 200 * intensity : 0;
	/* libraft 0.22.1 corrupts a follower's log when the leader probes
	 * it below the follower's own snapshot (see README.md): that takes
	 * a follower that kept receiving entries while its replies were
	 * lost for longer than the trailing log. So one-way faults (and
	 * depositions, which drop replies) come only with a trailing log
	 * longer than a run's entries, and short trailing logs (which make
	 * lagging followers take the leader's snapshot) only with faults
	 * that cut both directions. */
	if (s->opts->trailing != 0)
		s->trailing = s->opts->trailing;
	else if (sim_rng_chance(r, 600000))
		s->trailing = (unsigned)sim_rng_range(r, 48, 96);
	else
		s->trailing = 100000;
	s->asymmetric = s->opts->asymmetric || s->trailing >= 100000;
}

/* Heals everything and steps until every client has its answer and every
 * server applied everything. */
/* The fixture's "randomized" election timeout of a server is whatever was
 * set last, every time: two servers with equal values can split every
 * vote forever. Gives every server a different one. */
static void spread_timeouts(struct sim *s)
{
	unsigned slot = 1000 / s->n;
	unsigned k;

	for (k = 0; k < s->n; k++)
		raft_fixture_set_randomized_election_timeout(
			&s->f, k,
			1000 + k * slot +
				(unsigned)sim_rng_below(&s->rng, slot));
	s->trace = sim_mix(s->trace, 0x7370726561ull);
}

static void converge(struct sim *s)
{
	uint64_t deadline = now_ms(s) + 120000;
	uint64_t leader_seen = now_ms(s);
	raft_index target = 0;
	int bsrv = -1;
	unsigned k;

	s->draining = true;
	for (k = 0; k < s->n; k++) {
		if (s->servers[k].killed)
			revive_server(s, k);
		raft_fixture_io_fault(&s->f, k, -1, 0);
		raft_fixture_set_network_latency(&s->f, k, 15);
		set_disk_latency(s, k, 10);
	}
	heal(s);
	while (!s->failed) {
		bool done = true;
		int l;

		clients_step(s);
		flush_batches(s);
		for (k = 0; k < s->n_clients; k++)
			done &= s->clients[k].state == SIM_CLIENT_DONE;
		l = leader_index(s);
		if (l >= 0) {
			leader_seen = now_ms(s);
		} else if (now_ms(s) > leader_seen + 5000) {
			spread_timeouts(s);
			leader_seen = now_ms(s);
		}
		/* A barrier of the final leader: once it applied, every
		 * entry before it is committed; then all must apply it. */
		if (done && bsrv < 0 && l >= 0 &&
		    issue_barrier(s, &s->servers[l])) {
			bsrv = l;
			target = s->servers[l].barrier.index;
		}
		if (bsrv >= 0 && !s->servers[bsrv].barrier_pending) {
			if (s->servers[bsrv].barrier_status != 0) {
				bsrv = -1; /* leadership lost: again */
			} else {
				bool all = true;

				for (k = 0; k < s->n; k++)
					all &= raft_last_applied(
						       s->servers[k].raft) >=
					       target;
				if (all)
					break;
			}
		}
		if (now_ms(s) > deadline) {
			unsigned pending = 0;

			for (k = 0; k < s->n_clients; k++)
				pending +=
					s->clients[k].state != SIM_CLIENT_DONE;
			sim_fail(s,
				 "no convergence within 120 s after healing "
				 "(leader %d, %u clients without an answer)",
				 l, pending);
			break;
		}
		raft_fixture_step(&s->f);
	}
}

int sim_run(struct sim *s, uint64_t seed, const struct sim_options *opts)
{
	struct raft_configuration conf;
	uint64_t steps;
	unsigned k;
	int rv;

	s->seed = seed;
	s->opts = opts;
	s->trace = sim_mix(SIM_HASH_INIT, seed);
	sim_rng_seed(&s->rng, seed);
	sim_model_init(&s->model);
	store_results_init(&s->lookup);
	draw_parameters(s);
	steps = opts->steps != 0 ? opts->steps
				 : sim_rng_range(&s->rng, 2000, 6000);
	snprintf(s->base, sizeof s->base, "%s/cairn-sim-%ld-%" PRIu64,
		 tmp_base(), (long)getpid(), seed);
	rm_rf(s->base);
	if (mkdir(s->base, 0755) != 0) {
		sim_fail(s, "mkdir %s: %s", s->base, strerror(errno));
		goto out;
	}
	for (k = 0; k < s->n; k++)
		if (server_open(s, k) != 0)
			goto out_after_servers;

	rv = raft_fixture_init(&s->f);
	if (rv != 0) {
		sim_fail(s, "raft_fixture_init: %d", rv);
		goto out_after_servers;
	}
	s->fixture_open = true;
	current = s;
	for (k = 0; k < s->n; k++) {
		struct sim_server *sv = &s->servers[k];

		rv = raft_fixture_grow(&s->f, &sv->fsm);
		if (rv != 0) {
			sim_fail(s, "raft_fixture_grow: %d", rv);
			goto out_after_fixture;
		}
		sv->raft = raft_fixture_get(&s->f, k);
		fsm_bind(sv->ci, sv->raft);
		if (fix_truncate(s, k) != 0)
			goto out_after_fixture;
		if (getenv("CAIRN_TEST_RAFT_TRACE") == NULL)
			sv->raft->tracer = &quiet_tracer;
		raft_set_pre_vote(sv->raft, true);
		raft_set_snapshot_threshold(
			sv->raft, (unsigned)sim_rng_range(&s->rng, 4, 64));
		raft_set_snapshot_trailing(sv->raft, s->trailing);
		raft_fixture_set_randomized_election_timeout(
			&s->f, k, (unsigned)sim_rng_range(&s->rng, 1000, 2000));
		raft_fixture_set_network_latency(
			&s->f, k, (unsigned)sim_rng_range(&s->rng, 1, 30));
		s->servers[k].disk_latency_ms =
			(unsigned)sim_rng_range(&s->rng, 1, 20);
		raft_fixture_set_disk_latency(&s->f, k,
					      s->servers[k].disk_latency_ms);
	}
	for (k = 0; k < s->n; k++)
		if (opts->breakage == SIM_BREAK_SKIP_ENTRY && k == 1)
			s->servers[k].break_armed = true;
	rv = raft_fixture_configuration(&s->f, s->n, &conf);
	if (rv == 0) {
		rv = raft_fixture_bootstrap(&s->f, &conf);
		raft_configuration_close(&conf);
	}
	if (rv == 0)
		rv = raft_fixture_start(&s->f);
	if (rv != 0) {
		sim_fail(s, "start the fixture: %d", rv);
		goto out_after_fixture;
	}
	raft_fixture_hook(&s->f, step_hook);

	while (s->step < steps && !s->failed) {
		faults_step(s);
		clients_step(s);
		if (!s->failed)
			flush_batches(s);
		if (!s->failed)
			raft_fixture_step(&s->f);
	}
	if (!s->failed)
		converge(s);
	if (!s->failed)
		sim_model_final(s);
	s->st.steps += s->step;
	s->st.virtual_ms += now_ms(s);
	s->trace = sim_mix(s->trace, now_ms(s));

out_after_fixture:
	s->closing = true;
	raft_fixture_close(&s->f);
	current = NULL;
out_after_servers:
	for (k = 0; k < s->n; k++)
		server_close(&s->servers[k]);
out:
	store_results_close(&s->lookup);
	sim_model_close(&s->model);
	free(s->acks);
	rm_rf(s->base);
	s->st.seeds++;
	if (s->failed)
		s->st.failed++;
	return s->failed ? -1 : 0;
}
