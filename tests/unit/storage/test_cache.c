/* Unit tests of the head cache (storage/overlay.c, docs/design.md "Head and
 * writer cache"): stores with the cache on, tiny or off must give the same
 * results and the same bytes for the same entries; the cache stays within
 * its bound when filled past it; known-absent heads and writers turn
 * present when an append commits, also when the append races another in
 * the same entry; a reopened store starts with an empty cache; raw writes
 * through store_debug.h are never hidden by a cached value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store_debug.h"
#include "testutil.h"

#define ALL_CFS \
	(STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP | STORE_CF_META)

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static void open_with(struct store *s, const char *dir, uint32_t entries,
		      bool off)
{
	struct store_options o;
	int rv;

	memset(&o, 0, sizeof o);
	o.head_cache_entries = entries;
	o.head_cache_off = off;
	rv = store_open(s, dir, &o);
	if (rv != 0)
		fail_msg("store_open(%s): %s", dir, s->errmsg);
}

static struct store_head_cache_stats stats(const struct store *s)
{
	struct store_head_cache_stats st;

	store_head_cache_stats(s, &st);
	return st;
}

static struct store_head head(struct store *s, const char *stream)
{
	struct store_head h;
	int rv = store_head(s, stream, strlen(stream), &h);

	if (rv != 0)
		fail_msg("store_head(%s): %s", stream, s->errmsg);
	return h;
}

/* store_dedup_lookup for the writer whose id is 16 times @client. */
static uint64_t hwm_of(struct store *s, uint8_t client, uint64_t seq,
		       bool *found)
{
	struct store_results r;
	uint8_t id[16];
	uint64_t hwm = 0;
	int rv;

	memset(id, client, sizeof id);
	store_results_init(&r);
	rv = store_dedup_lookup(s, id, seq, found, &hwm, &r);
	if (rv != 0)
		fail_msg("store_dedup_lookup: %s", s->errmsg);
	store_results_close(&r);
	return hwm;
}

/* One single-part transaction of one event, in its own entry. */
static const struct store_txn_result *append1(struct store *s, uint64_t index,
					      struct store_results *r,
					      const char *stream,
					      struct store_expect expect,
					      int client, uint64_t seq)
{
	const char *streams[] = { stream, NULL };
	struct tu_txn *t = tu_txn_make(streams, expect, 1, 8, index);

	if (client >= 0)
		tu_txn_client(t, (uint8_t)client, seq);
	tu_apply(s, index, r, &t, 1);
	tu_txn_free(t);
	assert_false(r->skipped);
	assert_int_equal(r->n, 1);
	return &r->txns[0];
}

static void assert_txn_results_equal(const struct store_txn_result *a,
				     const struct store_txn_result *b)
{
	uint32_t k;

	assert_int_equal(a->outcome, b->outcome);
	assert_int_equal(a->n_parts, b->n_parts);
	assert_int_equal(a->conflict_part, b->conflict_part);
	assert_int_equal(a->actual_version, b->actual_version);
	assert_int_equal(a->reject_code, b->reject_code);
	for (k = 0; k < a->n_parts; k++) {
		assert_int_equal(a->parts[k].first_version,
				 b->parts[k].first_version);
		assert_int_equal(a->parts[k].last_version,
				 b->parts[k].last_version);
		assert_int_equal(a->parts[k].first_position,
				 b->parts[k].first_position);
		assert_int_equal(a->parts[k].last_position,
				 b->parts[k].last_position);
	}
}

static void assert_results_equal(const struct store_results *a,
				 const struct store_results *b)
{
	uint32_t k;

	assert_int_equal(a->skipped, b->skipped);
	assert_int_equal(a->entry_error, b->entry_error);
	assert_int_equal(a->n, b->n);
	for (k = 0; k < a->n; k++)
		assert_txn_results_equal(&a->txns[k], &b->txns[k]);
}

static uint64_t digest(struct store *s)
{
	uint64_t d = 0;
	int rv = store_digest(s, ALL_CFS, &d);

	if (rv != 0)
		fail_msg("store_digest: %s", s->errmsg);
	return d;
}

/* ------------------------------------------------------------------------
 * The same results with and without the cache: a random workload
 * ------------------------------------------------------------------------ */

/* Store 0 has the cache off and is the reference; the others hold 1, 2 and
 * 5 keys (so nearly every lookup is evicted before it is reused) and the
 * default. */
static const struct {
	uint32_t entries;
	bool off;
} configs[] = { { 0, true },
		{ 1, false },
		{ 2, false },
		{ 5, false },
		{ 0, false } };
#define N_STORES   (sizeof configs / sizeof configs[0])
#define N_STREAMS  24
#define N_WRITERS  6
#define N_ENTRIES  600
#define PARTS_MAX  3
#define EVENTS_MAX 2

struct world {
	char *dirs[N_STORES];
	struct store s[N_STORES];
	struct store_results r[N_STORES];
	uint64_t x;                       /* xorshift state */
	uint64_t index;                   /* last index applied */
	uint32_t fresh;                   /* names and ids made so far */
	uint64_t last_seq[N_WRITERS + 1]; /* [N_WRITERS]: the fresh one */
	uint8_t fresh_id[16];             /* the latest fresh writer */
};

static uint64_t rnd(struct world *w)
{
	w->x ^= w->x << 13;
	w->x ^= w->x >> 7;
	w->x ^= w->x << 17;
	return w->x;
}

static void writer_id(struct world *w, uint32_t k, uint8_t id[16])
{
	if (k < N_WRITERS)
		memset(id, (int)(0x40 + k), 16);
	else
		memcpy(id, w->fresh_id, 16);
}

/* A stream of the pool, or one that no entry has touched yet. */
static void pick_stream(struct world *w, char *name, size_t cap)
{
	uint32_t k = (uint32_t)(rnd(w) % (N_STREAMS + 3));

	if (k < N_STREAMS)
		snprintf(name, cap, "pool-%u", k);
	else
		snprintf(name, cap, "fresh-%u", w->fresh++);
}

static void apply_all(struct world *w, uint64_t index, const void *buf,
		      size_t len)
{
	size_t k;
	int rv;

	for (k = 0; k < N_STORES; k++) {
		rv = store_apply(&w->s[k], index, buf, len, &w->r[k]);
		if (rv != 0)
			fail_msg("store_apply(%llu) on store %zu: %s",
				 (unsigned long long)index, k, w->s[k].errmsg);
		if (k > 0)
			assert_results_equal(&w->r[0], &w->r[k]);
		assert_int_equal(store_applied_index(&w->s[k]),
				 store_applied_index(&w->s[0]));
		assert_int_equal(store_last_position(&w->s[k]),
				 store_last_position(&w->s[0]));
	}
}

/* Adds one random transaction to @b. */
static void add_random_txn(struct world *w, struct store_entry_builder *b)
{
	static const uint8_t garbage[24] = { 0xff, 1, 2, 3 };
	char names[PARTS_MAX][32];
	struct store_event events[PARTS_MAX][EVENTS_MAX];
	struct store_part parts[PARTS_MAX];
	uint8_t data[PARTS_MAX][EVENTS_MAX][8];
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_txn t;
	uint32_t n = 1 + (uint32_t)(rnd(w) % PARTS_MAX);
	uint32_t k;
	uint32_t e;
	int rv;

	if (rnd(w) % 16 == 0) {
		/* Invalid bytes: rejected at apply, neighbours apply. */
		rv = store_entry_add_encoded(b, garbage, sizeof garbage,
					     errmsg);
		assert_int_equal(rv, 0);
		return;
	}
	memset(&t, 0, sizeof t);
	memset(parts, 0, sizeof parts);
	memset(events, 0, sizeof events);
	for (k = 0; k < n; k++) {
		struct store_part *p = &parts[k];
		struct store_head h;
		uint32_t j;
		bool dup;

		do {
			pick_stream(w, names[k], sizeof names[k]);
			dup = false;
			for (j = 0; j < k; j++)
				dup = dup || strcmp(names[j], names[k]) == 0;
		} while (dup);
		p->stream = names[k];
		p->stream_len = (uint32_t)strlen(names[k]);
		p->expect.kind = (uint8_t)(rnd(w) % 4);
		if (p->expect.kind == STORE_EXPECT_EXACT) {
			/* Committed version, sometimes one off: entries
			 * that change the stream first make it wrong too. */
			h = head(&w->s[0], names[k]);
			p->expect.version = h.version + (rnd(w) % 4 == 0);
		}
		p->n_events = 1 + (uint32_t)(rnd(w) % EVENTS_MAX);
		p->events = events[k];
		for (e = 0; e < p->n_events; e++) {
			struct store_event *ev = &events[k][e];
			uint64_t id = rnd(w);

			memcpy(ev->id, &id, sizeof id);
			ev->type = "T";
			ev->type_len = 1;
			memcpy(data[k][e], &id, 8);
			ev->data = data[k][e];
			ev->data_len = (uint32_t)(id % 9);
		}
	}
	t.commit_time_us = 1700000000000000ull + w->index;
	t.n_parts = n;
	t.parts = parts;
	if (rnd(w) % 4 != 0) {
		uint32_t wk = (uint32_t)(rnd(w) % (N_WRITERS + 1));
		uint64_t *last = &w->last_seq[wk];

		if (wk == N_WRITERS && rnd(w) % 2 == 0) {
			/* A writer never seen before. */
			uint32_t f = w->fresh++;

			memset(w->fresh_id, 0xee, 16);
			memcpy(w->fresh_id, &f, sizeof f);
			*last = 0;
		}
		t.has_client = true;
		writer_id(w, wk, t.client_id);
		switch (rnd(w) % 8) {
		case 5: /* a retry of an earlier sequence */
			t.client_seq = 1 + (*last > 0 ? rnd(w) % *last : 0);
			break;
		case 6: /* the latest again */
			t.client_seq = *last > 0 ? *last : 1;
			break;
		case 7: /* a gap: the skipped sequence never commits */
			t.client_seq = *last + 2;
			break;
		default:
			t.client_seq = *last + 1;
			break;
		}
		if (t.client_seq > *last)
			*last = t.client_seq;
	}
	rv = store_entry_add(b, &t, errmsg);
	if (rv != 0)
		fail_msg("store_entry_add: %s", errmsg);
}

/* Reads a few heads and writers on every store and compares them, as the
 * leader's pre-checks do between entries. */
static void compare_lookups(struct world *w)
{
	struct store_results lr[N_STORES];
	char name[32];
	uint8_t id[16];
	uint32_t q;
	size_t k;

	for (q = 0; q < 4; q++) {
		struct store_head h0;
		uint32_t wk = (uint32_t)(rnd(w) % (N_WRITERS + 1));
		uint64_t seq;
		bool found0 = false;
		uint64_t hwm0 = 0;

		pick_stream(w, name, sizeof name);
		h0 = head(&w->s[0], name);
		for (k = 1; k < N_STORES; k++) {
			struct store_head h = head(&w->s[k], name);

			assert_int_equal(h.version, h0.version);
			assert_int_equal(h.last_position, h0.last_position);
		}

		writer_id(w, wk, id);
		if (rnd(w) % 8 == 0)
			memset(id, 0x99, 16); /* never a writer */
		seq = 1 + rnd(w) % (w->last_seq[wk] + 2);
		for (k = 0; k < N_STORES; k++) {
			bool found = false;
			uint64_t hwm = 0;
			int rv;

			store_results_init(&lr[k]);
			rv = store_dedup_lookup(&w->s[k], id, seq, &found, &hwm,
						&lr[k]);
			if (rv != 0)
				fail_msg("store_dedup_lookup: %s",
					 w->s[k].errmsg);
			if (k == 0) {
				found0 = found;
				hwm0 = hwm;
				continue;
			}
			assert_int_equal(found, found0);
			assert_int_equal(hwm, hwm0);
			assert_int_equal(lr[k].n, lr[0].n);
			if (found)
				assert_txn_results_equal(&lr[0].txns[0],
							 &lr[k].txns[0]);
		}
		for (k = 0; k < N_STORES; k++)
			store_results_close(&lr[k]);
	}
}

static void check_stats_and_digests(struct world *w)
{
	uint64_t d0 = digest(&w->s[0]);
	size_t k;

	for (k = 0; k < N_STORES; k++) {
		struct store_head_cache_stats st = stats(&w->s[k]);

		assert_int_equal(digest(&w->s[k]), d0);
		assert_true(st.entries <= st.max_entries);
		assert_true(st.bytes <= st.max_bytes);
		if (configs[k].off) {
			assert_int_equal(st.hits, 0);
			assert_int_equal(st.entries, 0);
		}
	}
}

static void reopen_all(struct world *w)
{
	size_t k;

	for (k = 0; k < N_STORES; k++) {
		store_close(&w->s[k]);
		open_with(&w->s[k], w->dirs[k], configs[k].entries,
			  configs[k].off);
		assert_int_equal(stats(&w->s[k]).entries, 0);
	}
}

static void cached_stores_match_an_uncached_one_over_a_random_workload(
	void **state)
{
	struct world *w = calloc(1, sizeof *w);
	struct store_entry_builder b;
	struct store_head_cache_stats st;
	uint32_t n;
	size_t k;

	(void)state;
	assert_non_null(w);
	w->x = 0x9e3779b97f4a7c15ull;
	for (k = 0; k < N_STORES; k++) {
		w->dirs[k] = tu_tempdir("cache");
		open_with(&w->s[k], w->dirs[k], configs[k].entries,
			  configs[k].off);
		store_results_init(&w->r[k]);
	}
	store_entry_builder_init(&b);
	for (n = 0; n < N_ENTRIES; n++) {
		uint32_t count = 1 + (uint32_t)(rnd(w) % 6);
		const void *buf;
		size_t len;
		uint32_t t;

		store_entry_builder_reset(&b);
		for (t = 0; t < count; t++)
			add_random_txn(w, &b);
		assert_int_equal(store_entry_finish(&b, &buf, &len), 0);
		apply_all(w, ++w->index, buf, len);
		assert_false(w->r[0].skipped);
		if (n % 37 == 5) {
			/* The same entry again at an index already applied,
			 * as after a restart: skipped everywhere. */
			apply_all(w, w->index - rnd(w) % 3, buf, len);
			assert_true(w->r[0].skipped);
		}
		if (n % 41 == 7) {
			/* Framing that no replica accepts: applies as
			 * nothing, the index still moves. */
			static const uint8_t bad[16] = { 'X' };

			apply_all(w, ++w->index, bad, sizeof bad);
			assert_int_not_equal(w->r[0].entry_error, 0);
		}
		if (n % 29 == 3) {
			struct store_meta_op op = { "k", "v", 1 };
			bool skipped;

			w->index++;
			for (k = 0; k < N_STORES; k++) {
				assert_int_equal(
					store_apply_meta(&w->s[k], w->index,
							 &op, 1, &skipped),
					0);
				assert_false(skipped);
			}
		}
		compare_lookups(w);
		if (n % 97 == 50) {
			check_stats_and_digests(w);
			reopen_all(w);
		}
	}
	check_stats_and_digests(w);

	/* The cache served: the default store answered most lookups from
	 * memory, and the tiny ones stayed tiny. */
	st = stats(&w->s[N_STORES - 1]);
	assert_true(st.hits > st.misses);
	st = stats(&w->s[1]);
	assert_true(st.max_entries == 2);
	assert_true(st.dropped > 0);

	store_entry_builder_close(&b);
	for (k = 0; k < N_STORES; k++) {
		store_results_close(&w->r[k]);
		store_close(&w->s[k]);
		tu_rmdir(w->dirs[k]);
	}
	free(w);
}

/* ------------------------------------------------------------------------
 * The bound
 * ------------------------------------------------------------------------ */

static void bound_holds_when_appends_fill_the_cache_past_it(void **state)
{
	char *dir = tu_tempdir("cache");
	char *ref_dir = tu_tempdir("cache");
	struct store s;
	struct store ref;
	struct store_results r;
	struct store_head_cache_stats st;
	char name[32];
	uint32_t k;

	(void)state;
	open_with(&s, dir, 64, false);
	open_with(&ref, ref_dir, 0, true);
	store_results_init(&r);
	/* 1,000 new streams from 250 new writers: 1,250 keys for 64. */
	for (k = 0; k < 1000; k++) {
		const struct store_txn_result *tr;

		snprintf(name, sizeof name, "bound-%u", k);
		tr = append1(&s, k + 1, &r, name, tu_no_stream(),
			     (int)(k % 250), 1 + k / 250);
		assert_int_equal(tr->outcome, STORE_COMMITTED);
		tr = append1(&ref, k + 1, &r, name, tu_no_stream(),
			     (int)(k % 250), 1 + k / 250);
		assert_int_equal(tr->outcome, STORE_COMMITTED);
		st = stats(&s);
		assert_true(st.entries <= 64);
		assert_true(st.bytes <= st.max_bytes);
	}
	st = stats(&s);
	assert_int_equal(st.max_entries, 64);
	assert_true(st.dropped > 0);
	/* Still right for every key, evicted or not. */
	for (k = 0; k < 1000; k++) {
		struct store_head h;
		bool found;

		snprintf(name, sizeof name, "bound-%u", k);
		h = head(&s, name);
		assert_int_equal(h.version, 1);
		assert_int_equal(h.last_position, k + 1);
		if (k < 250) {
			assert_int_equal(hwm_of(&s, (uint8_t)k, 5, &found), 4);
			assert_false(found);
		}
	}
	assert_int_equal(digest(&s), digest(&ref));
	store_results_close(&r);
	store_close(&s);
	store_close(&ref);
	tu_rmdir(dir);
	tu_rmdir(ref_dir);
}

static void default_bound_holds_past_half_a_million_absent_streams(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_results r;
	struct store_head_cache_stats st;
	char name[32];
	uint32_t k;
	uint32_t n = STORE_HEAD_CACHE_ENTRIES_DEFAULT + 50000;

	(void)state;
	open_with(&s, dir, 0, false);
	store_results_init(&r);
	append1(&s, 1, &r, "kept", tu_no_stream(), -1, 0);
	st = stats(&s);
	assert_int_equal(st.max_entries, STORE_HEAD_CACHE_ENTRIES_DEFAULT);
	assert_int_equal(st.max_bytes, 64u << 20);
	/* Every lookup of a stream without events leaves a known-absent
	 * key. */
	for (k = 0; k < n; k++) {
		struct store_head h;

		snprintf(name, sizeof name, "absent-%u", k);
		h = head(&s, name);
		assert_int_equal(h.version, 0);
	}
	st = stats(&s);
	assert_true(st.entries <= st.max_entries);
	assert_true(st.bytes <= st.max_bytes);
	assert_true(st.dropped > 0);
	assert_int_equal(head(&s, "kept").version, 1);
	assert_int_equal(head(&s, "absent-0").version, 0);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

static void long_stream_names_are_bounded_by_bytes(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_head_cache_stats st;
	char name[STORE_STREAM_NAME_MAX + 1];
	uint32_t k;

	(void)state;
	open_with(&s, dir, 4096, false);
	memset(name, 'n', STORE_STREAM_NAME_MAX);
	name[STORE_STREAM_NAME_MAX] = '\0';
	/* 255-byte names, 4 times the key bytes the bound allows per key
	 * on average: the generations fill by bytes, not by count. */
	for (k = 0; k < 20000; k++) {
		snprintf(name, 12, "%010u", k);
		name[10] = '-';
		assert_int_equal(head(&s, name).version, 0);
		st = stats(&s);
		assert_true(st.bytes <= st.max_bytes);
	}
	st = stats(&s);
	assert_true(st.entries < st.max_entries / 2);
	assert_true(st.dropped > 0);
	store_close(&s);
	tu_rmdir(dir);
}

static void key_in_use_survives_eviction(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_head_cache_stats st;
	char name[32];
	uint32_t k;

	(void)state;
	open_with(&s, dir, 4, false);
	assert_int_equal(head(&s, "hot").version, 0);
	/* Each cold stream is looked up once, the hot one between them:
	 * 4 keys hold it, as it is copied forward before its generation
	 * is dropped. */
	for (k = 0; k < 100; k++) {
		snprintf(name, sizeof name, "cold-%u", k);
		assert_int_equal(head(&s, name).version, 0);
		assert_int_equal(head(&s, "hot").version, 0);
	}
	st = stats(&s);
	assert_int_equal(st.misses, 1 + 100);
	assert_int_equal(st.hits, 100);
	assert_true(st.dropped > 0);
	store_close(&s);
	tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Known-absent keys, races inside an entry, raw writes, reopen
 * ------------------------------------------------------------------------ */

static void absent_head_and_writer_turn_present_after_an_append(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_results r;
	struct store_head_cache_stats before;
	struct store_head_cache_stats after;
	struct store_head h;
	bool found = true;

	(void)state;
	open_with(&s, dir, 0, false);
	store_results_init(&r);
	/* The leader's pre-checks of a NO_STREAM append by a new writer. */
	assert_int_equal(head(&s, "new").version, 0);
	assert_int_equal(hwm_of(&s, 7, 1, &found), 0);
	assert_false(found);
	before = stats(&s);
	assert_int_equal(head(&s, "new").version, 0);
	assert_int_equal(hwm_of(&s, 7, 1, &found), 0);
	after = stats(&s);
	assert_int_equal(after.misses, before.misses);
	assert_int_equal(after.hits, before.hits + 2);

	assert_int_equal(
		append1(&s, 1, &r, "new", tu_no_stream(), 7, 1)->outcome,
		STORE_COMMITTED);
	before = stats(&s);
	h = head(&s, "new");
	assert_int_equal(h.version, 1);
	assert_int_equal(h.last_position, 1);
	assert_int_equal(hwm_of(&s, 7, 2, &found), 1);
	assert_false(found);
	after = stats(&s);
	assert_int_equal(after.misses, before.misses);
	/* A retry of the committed sequence finds its original result. */
	assert_int_equal(hwm_of(&s, 7, 1, &found), 1);
	assert_true(found);
	/* And apply sees the present values too. */
	assert_int_equal(
		append1(&s, 2, &r, "new", tu_no_stream(), 7, 2)->outcome,
		STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(r.txns[0].actual_version, 1);
	assert_int_equal(append1(&s, 3, &r, "new", tu_exact(1), 7, 1)->outcome,
			 STORE_DUPLICATE);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

static void no_stream_race_inside_one_entry_leaves_the_committed_head(
	void **state)
{
	const char *x[] = { "race", NULL };
	char *dir = tu_tempdir("cache");
	char *ref_dir = tu_tempdir("cache");
	struct store s;
	struct store ref;
	struct store_results r;
	struct store_results rr;
	struct tu_txn *t[4];
	struct store_head h;
	bool found;
	int k;

	(void)state;
	open_with(&s, dir, 0, false);
	open_with(&ref, ref_dir, 0, true);
	store_results_init(&r);
	store_results_init(&rr);
	/* Pre-checks passed for both NO_STREAM appends: the stream is
	 * cached as absent. */
	assert_int_equal(head(&s, "race").version, 0);
	assert_int_equal(hwm_of(&s, 3, 1, &found), 0);
	t[0] = tu_txn_make(x, tu_no_stream(), 1, 4, 1);
	tu_txn_client(t[0], 3, 1);
	t[1] = tu_txn_make(x, tu_no_stream(), 1, 4, 2);
	tu_txn_client(t[1], 4, 1);
	t[2] = tu_txn_make(x, tu_exact(1), 2, 4, 3);
	tu_txn_client(t[2], 3, 2);
	t[3] = tu_txn_make(x, tu_exact(1), 2, 4, 4);
	tu_txn_client(t[3], 3, 1); /* a retry of t[0] in the same entry */
	tu_apply(&s, 1, &r, t, 4);
	tu_apply(&ref, 1, &rr, t, 4);
	assert_results_equal(&r, &rr);
	assert_int_equal(r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(r.txns[1].outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(r.txns[1].actual_version, 1);
	assert_int_equal(r.txns[2].outcome, STORE_COMMITTED);
	assert_int_equal(r.txns[3].outcome, STORE_DUPLICATE);

	h = head(&s, "race");
	assert_int_equal(h.version, 3);
	assert_int_equal(h.last_position, 3);
	assert_int_equal(hwm_of(&s, 3, 3, &found), 2);
	assert_int_equal(hwm_of(&s, 4, 1, &found), 0); /* lost: not seen */
	assert_false(found);
	assert_int_equal(digest(&s), digest(&ref));
	for (k = 0; k < 4; k++)
		tu_txn_free(t[k]);
	store_results_close(&r);
	store_results_close(&rr);
	store_close(&s);
	store_close(&ref);
	tu_rmdir(dir);
	tu_rmdir(ref_dir);
}

static void skipped_and_malformed_entries_change_no_cached_head(void **state)
{
	const char *other[] = { "sk-other", NULL };
	char *dir = tu_tempdir("cache");
	static const uint8_t bad[16] = { 'X' };
	struct tu_txn *t;
	struct store s;
	struct store_results r;
	struct store_head h;
	bool found;

	(void)state;
	open_with(&s, dir, 0, false);
	store_results_init(&r);
	append1(&s, 1, &r, "sk", tu_no_stream(), 1, 1);
	/* Index 1 again with another stream and sequence: skipped. */
	t = tu_txn_make(other, tu_no_stream(), 1, 4, 2);
	tu_txn_client(t, 1, 2);
	tu_apply(&s, 1, &r, &t, 1);
	tu_txn_free(t);
	assert_true(r.skipped);
	assert_int_equal(store_apply(&s, 2, bad, sizeof bad, &r), 0);
	assert_int_not_equal(r.entry_error, 0);
	h = head(&s, "sk");
	assert_int_equal(h.version, 1);
	assert_int_equal(head(&s, "sk-other").version, 0);
	assert_int_equal(hwm_of(&s, 1, 2, &found), 1);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

static void reopened_store_starts_with_an_empty_cache(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_results r;
	struct store_head_cache_stats st;
	struct store_head h;
	bool found;

	(void)state;
	open_with(&s, dir, 0, false);
	store_results_init(&r);
	append1(&s, 1, &r, "ro", tu_no_stream(), 2, 1);
	append1(&s, 2, &r, "ro", tu_exact(1), 2, 2);
	assert_true(stats(&s).entries > 0);
	store_close(&s);
	open_with(&s, dir, 0, false);
	st = stats(&s);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 0);
	h = head(&s, "ro");
	assert_int_equal(h.version, 2);
	assert_int_equal(h.last_position, 2);
	assert_int_equal(hwm_of(&s, 2, 3, &found), 2);
	assert_int_equal(stats(&s).misses, 2);
	assert_int_equal(append1(&s, 3, &r, "ro", tu_exact(2), 2, 3)->outcome,
			 STORE_COMMITTED);
	assert_int_equal(head(&s, "ro").version, 3);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

static void raw_writes_are_never_hidden_by_the_cache(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_results r;
	struct store_head h;
	uint8_t key[1 + 3] = { 'H', 'r', 'a', 'w' };
	uint8_t val[16];
	uint8_t id[16];
	bool found;

	(void)state;
	open_with(&s, dir, 0, false);
	store_results_init(&r);
	append1(&s, 1, &r, "raw", tu_no_stream(), 5, 1);
	assert_int_equal(head(&s, "raw").version, 1);
	assert_int_equal(hwm_of(&s, 5, 2, &found), 1);
	assert_true(stats(&s).entries > 0);

	/* A head rewritten beneath the store. */
	memset(val, 0, sizeof val);
	val[0] = 9;
	val[8] = 12;
	assert_int_equal(store_debug_put(&s, STORE_CF_VERSIONS, key, sizeof key,
					 val, sizeof val),
			 0);
	assert_int_equal(stats(&s).entries, 0);
	h = head(&s, "raw");
	assert_int_equal(h.version, 9);
	assert_int_equal(h.last_position, 12);

	/* A head of the wrong size is corruption, every time: never a
	 * cached value. */
	assert_int_equal(
		store_debug_put(&s, STORE_CF_VERSIONS, key, sizeof key, val, 8),
		0);
	assert_int_equal(store_head(&s, "raw", 3, &h), STORE_ECORRUPT);
	assert_int_equal(store_head(&s, "raw", 3, &h), STORE_ECORRUPT);

	/* Deleted heads and writers read as absent. */
	assert_int_equal(
		store_debug_delete(&s, STORE_CF_VERSIONS, key, sizeof key), 0);
	assert_int_equal(head(&s, "raw").version, 0);
	assert_int_equal(hwm_of(&s, 5, 2, &found), 1);
	memset(id, 5, sizeof id);
	assert_int_equal(store_debug_delete(&s, STORE_CF_DEDUP, id, sizeof id),
			 0);
	assert_int_equal(hwm_of(&s, 5, 2, &found), 0);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

static void disabled_cache_holds_nothing(void **state)
{
	char *dir = tu_tempdir("cache");
	struct store s;
	struct store_results r;
	struct store_head_cache_stats st;
	bool found;

	(void)state;
	open_with(&s, dir, 0, true);
	store_results_init(&r);
	append1(&s, 1, &r, "off", tu_no_stream(), 1, 1);
	assert_int_equal(head(&s, "off").version, 1);
	assert_int_equal(head(&s, "off").version, 1);
	assert_int_equal(hwm_of(&s, 1, 2, &found), 1);
	st = stats(&s);
	assert_int_equal(st.hits, 0);
	assert_true(st.misses >= 3);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.max_entries, 0);
	store_results_close(&r);
	store_close(&s);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			cached_stores_match_an_uncached_one_over_a_random_workload),
		cmocka_unit_test(
			bound_holds_when_appends_fill_the_cache_past_it),
		cmocka_unit_test(
			default_bound_holds_past_half_a_million_absent_streams),
		cmocka_unit_test(long_stream_names_are_bounded_by_bytes),
		cmocka_unit_test(key_in_use_survives_eviction),
		cmocka_unit_test(
			absent_head_and_writer_turn_present_after_an_append),
		cmocka_unit_test(
			no_stream_race_inside_one_entry_leaves_the_committed_head),
		cmocka_unit_test(
			skipped_and_malformed_entries_change_no_cached_head),
		cmocka_unit_test(reopened_store_starts_with_an_empty_cache),
		cmocka_unit_test(raw_writes_are_never_hidden_by_the_cache),
		cmocka_unit_test(disabled_cache_holds_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
