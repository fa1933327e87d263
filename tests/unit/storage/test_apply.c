/* Unit tests of store_apply() on a real RocksDB store in a scratch
 * directory: expected-version checks, positions and versions, idempotent
 * retries, skipped and malformed entries, determinism across replicas,
 * checksums of stored records, sync and checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "store_debug.h"
#include "testutil.h"

#define ALL_CFS \
	(STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP | STORE_CF_META)
#define DATA_CFS (STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP)

/* ------------------------------------------------------------------------
 * Fixture and helpers
 * ------------------------------------------------------------------------ */

struct fx {
	char *dir;
	struct store s;
	struct store_results r;
	uint64_t index; /* last index applied through fx_apply */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = tu_tempdir("apply");
	tu_open(&f->s, f->dir);
	store_results_init(&f->r);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	store_results_close(&f->r);
	store_close(&f->s);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static void fx_reopen(struct fx *f)
{
	store_close(&f->s);
	tu_open(&f->s, f->dir);
}

/* Applies one entry of the given transactions at the next index. */
static void fx_apply(struct fx *f, struct tu_txn *const *txns, size_t n)
{
	f->index++;
	tu_apply(&f->s, f->index, &f->r, txns, n);
	assert_false(f->r.skipped);
	assert_int_equal(f->r.entry_error, 0);
	assert_int_equal(f->r.n, n);
	assert_int_equal(store_applied_index(&f->s), f->index);
}

/* Applies one transaction in its own entry and returns its result. */
static const struct store_txn_result *fx_apply1(struct fx *f, struct tu_txn *t)
{
	fx_apply(f, &t, 1);
	return &f->r.txns[0];
}

static uint64_t digest(struct store *s, unsigned cfs)
{
	uint64_t d = 0;
	int rv = store_digest(s, cfs, &d);

	if (rv != 0)
		fail_msg("store_digest: %s", s->errmsg);
	return d;
}

static struct store_head head(struct store *s, const char *stream)
{
	struct store_head h;
	int rv;

	memset(&h, 0xee, sizeof h);
	rv = store_head(s, stream, strlen(stream), &h);
	if (rv != 0)
		fail_msg("store_head(%s): %s", stream, s->errmsg);
	return h;
}

/* A transaction on a single stream. */
static struct tu_txn *txn1(const char *stream, struct store_expect e,
			   uint32_t n, uint64_t seed)
{
	const char *const streams[] = { stream, NULL };

	return tu_txn_make(streams, e, n, 5, seed);
}

/* Appends @n events to @stream with ANY, asserting it commits. */
static void fx_append(struct fx *f, const char *stream, uint32_t n)
{
	struct tu_txn *t = txn1(stream, tu_any(), n, f->index + 100);

	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	tu_txn_free(t);
}

static void assert_part(const struct store_part_result *p, uint64_t fv,
			uint64_t lv, uint64_t fp, uint64_t lp)
{
	assert_int_equal(p->first_version, fv);
	assert_int_equal(p->last_version, lv);
	assert_int_equal(p->first_position, fp);
	assert_int_equal(p->last_position, lp);
}

/* State that a transaction that writes nothing must leave alone. */
struct snap {
	uint64_t log_versions;
	uint64_t data;
	uint64_t last_position;
};

static struct snap snap_take(struct store *s)
{
	struct snap n;

	n.log_versions = digest(s, STORE_CF_LOG | STORE_CF_VERSIONS);
	n.data = digest(s, DATA_CFS);
	n.last_position = store_last_position(s);
	return n;
}

/* Applies @t (one part or more), expecting a version conflict on
 * @want_part with @want_actual, and that nothing is written. */
static void expect_conflict(struct fx *f, struct tu_txn *t, uint32_t want_part,
			    uint64_t want_actual)
{
	struct snap before = snap_take(&f->s);
	const struct store_txn_result *res;
	struct snap after;

	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(res->conflict_part, want_part);
	assert_int_equal(res->actual_version, want_actual);
	after = snap_take(&f->s);
	assert_int_equal(after.last_position, before.last_position);
	assert_int_equal(after.log_versions, before.log_versions);
	/* Not even a dedup record: the transaction did not commit. */
	assert_int_equal(after.data, before.data);
}

static void expect_commit1(struct fx *f, struct tu_txn *t, uint64_t fv,
			   uint64_t lv, uint64_t fp, uint64_t lp)
{
	const struct store_txn_result *res = fx_apply1(f, t);

	assert_int_equal(res->outcome, STORE_COMMITTED);
	assert_int_equal(res->n_parts, 1);
	assert_part(&res->parts[0], fv, lv, fp, lp);
}

static void apply_raw(struct fx *f, const void *entry, size_t len);
static void expect_duplicate_of(const struct store_txn_result *res,
				const struct store_part_result *orig,
				uint32_t n_parts);

/* ------------------------------------------------------------------------
 * A new store
 * ------------------------------------------------------------------------ */

static void new_store_is_empty(void **state)
{
	struct fx *f = *state;
	struct store_head h = head(&f->s, "nothing");

	assert_int_equal(store_applied_index(&f->s), 0);
	assert_int_equal(store_last_position(&f->s), 0);
	assert_int_equal(h.version, 0);
	assert_int_equal(h.last_position, 0);
}

static void open_on_a_regular_file_fails_with_a_message(void **state)
{
	struct fx *f = *state;
	struct store s2;
	char path[4200];
	FILE *fp;

	snprintf(path, sizeof path, "%s/not-a-dir", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
	memset(&s2, 0, sizeof s2);
	assert_int_not_equal(store_open(&s2, path, NULL), 0);
	assert_true(s2.errmsg[0] != '\0');
}

/* ------------------------------------------------------------------------
 * Expected versions
 * ------------------------------------------------------------------------ */

static void any_appends_to_new_and_existing_streams(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;
	struct store_head h;

	t = txn1("acc-1", tu_any(), 2, 1);
	expect_commit1(f, t, 1, 2, 1, 2);
	tu_txn_free(t);
	t = txn1("acc-1", tu_any(), 3, 2);
	expect_commit1(f, t, 3, 5, 3, 5);
	tu_txn_free(t);
	h = head(&f->s, "acc-1");
	assert_int_equal(h.version, 5);
	assert_int_equal(h.last_position, 5);
	assert_int_equal(store_last_position(&f->s), 5);
}

static void no_stream_commits_on_a_new_stream(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	fx_append(f, "other", 2);
	t = txn1("fresh", tu_no_stream(), 1, 1);
	expect_commit1(f, t, 1, 1, 3, 3);
	tu_txn_free(t);
	assert_int_equal(head(&f->s, "fresh").version, 1);
}

static void no_stream_conflicts_on_an_existing_stream(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;
	struct store_head h;

	fx_append(f, "s-1", 2);
	t = txn1("s-1", tu_no_stream(), 1, 1);
	expect_conflict(f, t, 0, 2);
	tu_txn_free(t);
	h = head(&f->s, "s-1");
	assert_int_equal(h.version, 2);
	assert_int_equal(h.last_position, 2);
}

static void exists_conflicts_on_a_new_stream(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	fx_append(f, "other", 1);
	t = txn1("s-1", tu_exists(), 1, 1);
	expect_conflict(f, t, 0, 0);
	tu_txn_free(t);
	assert_int_equal(head(&f->s, "s-1").version, 0);
}

static void exists_commits_on_an_existing_stream(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	fx_append(f, "s-1", 1);
	t = txn1("s-1", tu_exists(), 2, 1);
	expect_commit1(f, t, 2, 3, 2, 3);
	tu_txn_free(t);
}

static void exact_version_commits_when_it_matches(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	/* Exact 0 is "no events yet". */
	t = txn1("s-1", tu_exact(0), 2, 1);
	expect_commit1(f, t, 1, 2, 1, 2);
	tu_txn_free(t);
	t = txn1("s-1", tu_exact(2), 1, 2);
	expect_commit1(f, t, 3, 3, 3, 3);
	tu_txn_free(t);
}

static void append_with_stale_exact_version_conflicts(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	fx_append(f, "s-1", 3);
	t = txn1("s-1", tu_exact(2), 1, 1);
	expect_conflict(f, t, 0, 3);
	tu_txn_free(t);
	t = txn1("s-1", tu_exact(0), 1, 1);
	expect_conflict(f, t, 0, 3);
	tu_txn_free(t);
	assert_int_equal(head(&f->s, "s-1").version, 3);
}

static void append_with_exact_version_above_head_conflicts(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;

	fx_append(f, "s-1", 3);
	t = txn1("s-1", tu_exact(4), 1, 1);
	expect_conflict(f, t, 0, 3);
	tu_txn_free(t);
	t = txn1("s-1", tu_exact(STORE_VERSION_MAX), 1, 1);
	expect_conflict(f, t, 0, 3);
	tu_txn_free(t);
	/* And on a stream that does not exist. */
	t = txn1("s-2", tu_exact(1), 1, 1);
	expect_conflict(f, t, 0, 0);
	tu_txn_free(t);
}

/* ------------------------------------------------------------------------
 * Multi-stream transactions
 * ------------------------------------------------------------------------ */

static void multi_stream_txn_with_one_conflict_writes_nothing(void **state)
{
	struct fx *f = *state;
	const char *const streams[] = { "m-a", "m-b", "m-c", NULL };
	struct tu_txn *t;

	fx_append(f, "m-b", 1);
	t = tu_txn_make(streams, tu_no_stream(), 2, 4, 7);
	expect_conflict(f, t, 1, 1);
	tu_txn_free(t);
	assert_int_equal(head(&f->s, "m-a").version, 0);
	assert_int_equal(head(&f->s, "m-b").version, 1);
	assert_int_equal(head(&f->s, "m-c").version, 0);

	/* The last part conflicting also writes nothing of the first ones. */
	t = tu_txn_make(streams, tu_any(), 1, 4, 8);
	t->parts[2].expect = tu_exists();
	expect_conflict(f, t, 2, 0);
	tu_txn_free(t);
	assert_int_equal(head(&f->s, "m-a").version, 0);
	assert_int_equal(store_last_position(&f->s), 1);
}

static void multi_stream_txn_assigns_versions_and_gapless_positions(
	void **state)
{
	struct fx *f = *state;
	const char *const streams[] = { "p-a", "p-b", "p-c", NULL };
	const char *const streams2[] = { "p-b", "p-d", NULL };
	const struct store_txn_result *res;
	struct tu_txn *t;
	struct store_head h;

	t = tu_txn_make(streams, tu_any(), 3, 4, 1);
	t->parts[0].expect = tu_no_stream();
	t->parts[1].expect = tu_exact(0);
	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_COMMITTED);
	assert_int_equal(res->n_parts, 3);
	assert_part(&res->parts[0], 1, 3, 1, 3);
	assert_part(&res->parts[1], 1, 3, 4, 6);
	assert_part(&res->parts[2], 1, 3, 7, 9);
	tu_txn_free(t);

	/* Part order, not name order, decides positions. */
	t = tu_txn_make(streams2, tu_any(), 2, 4, 2);
	t->parts[0].expect = tu_exact(3);
	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_COMMITTED);
	assert_int_equal(res->n_parts, 2);
	assert_part(&res->parts[0], 4, 5, 10, 11);
	assert_part(&res->parts[1], 1, 2, 12, 13);
	tu_txn_free(t);

	h = head(&f->s, "p-b");
	assert_int_equal(h.version, 5);
	assert_int_equal(h.last_position, 11);
	h = head(&f->s, "p-c");
	assert_int_equal(h.version, 3);
	assert_int_equal(h.last_position, 9);
	assert_int_equal(store_last_position(&f->s), 13);
}

/* ------------------------------------------------------------------------
 * Several transactions in one entry
 * ------------------------------------------------------------------------ */

static void txns_in_one_entry_see_each_others_effects(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t[5];
	const struct store_txn_result *r;

	t[0] = txn1("e-1", tu_no_stream(), 2, 1);
	tu_txn_client(t[0], 0xc1, 1);
	/* Sees t[0]'s two events. */
	t[1] = txn1("e-1", tu_exact(2), 1, 2);
	/* A retry of t[0] in the same entry. */
	t[2] = txn1("e-1", tu_no_stream(), 2, 1);
	tu_txn_client(t[2], 0xc1, 1);
	/* Stale: t[1] made the stream's version 3. */
	t[3] = txn1("e-1", tu_exact(2), 1, 3);
	/* NO_STREAM now conflicts. */
	t[4] = txn1("e-1", tu_no_stream(), 1, 4);
	fx_apply(f, t, 5);
	r = f->r.txns;
	assert_int_equal(r[0].outcome, STORE_COMMITTED);
	assert_int_equal(r[0].n_parts, 1);
	assert_part(&r[0].parts[0], 1, 2, 1, 2);
	assert_int_equal(r[1].outcome, STORE_COMMITTED);
	assert_part(&r[1].parts[0], 3, 3, 3, 3);
	assert_int_equal(r[2].outcome, STORE_DUPLICATE);
	assert_int_equal(r[2].n_parts, 1);
	assert_part(&r[2].parts[0], 1, 2, 1, 2);
	assert_int_equal(r[3].outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(r[3].conflict_part, 0);
	assert_int_equal(r[3].actual_version, 3);
	assert_int_equal(r[4].outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(r[4].actual_version, 3);
	assert_int_equal(head(&f->s, "e-1").version, 3);
	assert_int_equal(store_last_position(&f->s), 3);
	/* r[0]'s parts were not overwritten by later results. */
	assert_part(&r[0].parts[0], 1, 2, 1, 2);
	for (int i = 0; i < 5; i++)
		tu_txn_free(t[i]);
}

static void lower_seq_in_the_same_entry_is_stale(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t[2];

	t[0] = txn1("e-1", tu_any(), 1, 1);
	tu_txn_client(t[0], 0xc2, 5);
	t[1] = txn1("e-2", tu_any(), 1, 2);
	tu_txn_client(t[1], 0xc2, 4);
	fx_apply(f, t, 2);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(f->r.txns[1].outcome, STORE_STALE_SEQUENCE);
	assert_int_equal(f->r.txns[1].actual_version, 5);
	assert_int_equal(head(&f->s, "e-2").version, 0);
	assert_int_equal(store_last_position(&f->s), 1);
	tu_txn_free(t[0]);
	tu_txn_free(t[1]);
}

/* A transaction of @n_parts parts (more than tu_txn_make's 8), one event
 * each, on streams "<prefix>-<k>". */
struct wide {
	struct store_txn txn;
	struct store_part parts[64];
	struct store_event events[64];
	char names[64][32];
};

static void wide_make(struct wide *w, const char *prefix, uint32_t n_parts)
{
	uint32_t k;

	assert_true(n_parts <= 64);
	memset(w, 0, sizeof *w);
	for (k = 0; k < n_parts; k++) {
		snprintf(w->names[k], sizeof w->names[k], "%s-%u", prefix, k);
		memset(w->events[k].id, (int)k + 1, 16);
		w->events[k].type = "W";
		w->events[k].type_len = 1;
		w->parts[k].stream = w->names[k];
		w->parts[k].stream_len = (uint32_t)strlen(w->names[k]);
		w->parts[k].expect = tu_no_stream();
		w->parts[k].n_events = 1;
		w->parts[k].events = &w->events[k];
	}
	w->txn.commit_time_us = 1;
	w->txn.n_parts = n_parts;
	w->txn.parts = w->parts;
}

static void apply_wide(struct fx *f, const struct store_txn *t)
{
	struct store_entry_builder b;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *buf;
	size_t len;
	int rv;

	store_entry_builder_init(&b);
	rv = store_entry_add(&b, t, errmsg);
	if (rv != 0)
		fail_msg("store_entry_add: %s", errmsg);
	assert_int_equal(store_entry_finish(&b, &buf, &len), 0);
	apply_raw(f, buf, len);
	store_entry_builder_close(&b);
}

static void txn_with_many_parts_commits_or_conflicts_as_a_whole(void **state)
{
	struct fx *f = *state;
	struct wide *w = malloc(sizeof *w);
	struct snap before;
	uint32_t k;

	assert_non_null(w);
	fx_append(f, "mp-15", 1);
	wide_make(w, "mp", 40);
	before = snap_take(&f->s);
	apply_wide(f, &w->txn);
	assert_int_equal(f->r.n, 1);
	assert_int_equal(f->r.txns[0].outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(f->r.txns[0].conflict_part, 15);
	assert_int_equal(f->r.txns[0].actual_version, 1);
	assert_int_equal(snap_take(&f->s).data, before.data);

	w->parts[15].expect = tu_exact(1);
	apply_wide(f, &w->txn);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(f->r.txns[0].n_parts, 40);
	for (k = 0; k < 40; k++) {
		uint64_t v = k == 15 ? 2 : 1;

		assert_part(&f->r.txns[0].parts[k], v, v, 2 + k, 2 + k);
		assert_int_equal(head(&f->s, w->names[k]).version, v);
	}
	free(w);
}

#define LARGE_N                                                              \
	3000 /* enough keys to grow the entry overlay past the size it keeps \
	      */

/* Checks the results of the large entry below: every tenth transaction is
 * a retry of the one before it; the others commit 1..3 events to each of
 * two streams, positions from 1 (or, when @all_duplicates, report that
 * original result again). Returns the last position. */
static uint64_t check_large_results(const struct store_results *res,
				    bool all_duplicates)
{
	uint64_t pos = 1;
	uint32_t k;

	for (k = 0; k < LARGE_N; k++) {
		const struct store_txn_result *r = &res->txns[k];
		uint64_t n = 1 + k % 3;

		assert_int_equal(r->n_parts, 2);
		if (k % 10 == 9) {
			expect_duplicate_of(r, res->txns[k - 1].parts, 2);
			continue;
		}
		assert_int_equal(r->outcome, all_duplicates ? STORE_DUPLICATE
							    : STORE_COMMITTED);
		assert_part(&r->parts[0], 1, n, pos, pos + n - 1);
		assert_int_equal(r->parts[1].first_position, pos + n);
		assert_int_equal(r->parts[1].last_position, pos + 2 * n - 1);
		pos += 2 * n;
	}
	return pos - 1;
}

/* An entry of hundreds of transactions, some of them retries answered from
 * dedup: every result points at its own parts after the result arrays
 * grew, and stays right when the arrays are reused by a smaller entry and
 * then a larger one. */
static void large_entry_results_point_at_their_own_parts(void **state)
{
	struct fx *f = *state;
	struct tu_txn **t = calloc(LARGE_N, sizeof *t);
	struct tu_txn *one = txn1("le-small", tu_any(), 1, 1);
	uint32_t k;

	assert_non_null(t);
	for (k = 0; k < LARGE_N; k++) {
		char a[32];
		char b[32];
		const char *const streams[] = { a, b, NULL };

		snprintf(a, sizeof a, "le-a-%u", k);
		snprintf(b, sizeof b, "le-b-%u", k % 17);
		t[k] = tu_txn_make(streams, tu_any(), 1 + k % 3, 2, k);
		/* Every tenth is the retry of the one before. */
		tu_txn_client(t[k], 0x40, k % 10 == 9 ? k : k + 1);
	}
	fx_apply(f, t, LARGE_N);
	assert_int_equal(check_large_results(&f->r, false),
			 store_last_position(&f->s));
	fx_apply1(f, one);
	/* Everything again in a later entry: all duplicates. */
	fx_apply(f, t, LARGE_N);
	check_large_results(&f->r, true);
	tu_txn_free(one);
	for (k = 0; k < LARGE_N; k++)
		tu_txn_free(t[k]);
	free(t);
}

/* ------------------------------------------------------------------------
 * Idempotency
 * ------------------------------------------------------------------------ */

static void expect_duplicate_of(const struct store_txn_result *res,
				const struct store_part_result *orig,
				uint32_t n_parts)
{
	uint32_t i;

	assert_int_equal(res->outcome, STORE_DUPLICATE);
	assert_int_equal(res->n_parts, n_parts);
	for (i = 0; i < n_parts; i++)
		assert_part(&res->parts[i], orig[i].first_version,
			    orig[i].last_version, orig[i].first_position,
			    orig[i].last_position);
}

static void retry_in_a_later_entry_returns_the_original_result(void **state)
{
	struct fx *f = *state;
	const char *const streams[] = { "r-a", "r-b", NULL };
	struct store_part_result orig[2];
	struct store_results lr;
	struct tu_txn *t;
	struct snap before;
	bool found = false;
	uint64_t hwm = 0;
	int round;

	fx_append(f, "x", 1);
	t = tu_txn_make(streams, tu_no_stream(), 2, 3, 1);
	tu_txn_client(t, 0xd1, 1);
	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	memcpy(orig, f->r.txns[0].parts, sizeof orig);
	assert_part(&orig[0], 1, 2, 2, 3);
	assert_part(&orig[1], 1, 2, 4, 5);
	fx_append(f, "r-a", 1);

	store_results_init(&lr);
	for (round = 0; round < 2; round++) {
		before = snap_take(&f->s);
		/* The retry's NO_STREAM would conflict now: dedup comes first.
		 */
		expect_duplicate_of(fx_apply1(f, t), orig, 2);
		assert_int_equal(snap_take(&f->s).data, before.data);
		assert_int_equal(store_last_position(&f->s),
				 before.last_position);
		assert_int_equal(head(&f->s, "r-a").version, 3);

		assert_int_equal(store_dedup_lookup(&f->s, t->txn.client_id, 1,
						    &found, &hwm, &lr),
				 0);
		assert_true(found);
		assert_int_equal(hwm, 1);
		assert_int_equal(lr.n, 1);
		expect_duplicate_of(&lr.txns[0], orig, 2);
		/* Unknown sequences above the mark are not found. */
		assert_int_equal(store_dedup_lookup(&f->s, t->txn.client_id, 2,
						    &found, &hwm, &lr),
				 0);
		assert_false(found);
		assert_int_equal(hwm, 1);
		assert_int_equal(lr.n, 0);

		/* Both still hold after close and reopen. */
		fx_reopen(f);
	}
	store_results_close(&lr);
	tu_txn_free(t);
}

static void retry_with_different_content_is_still_a_duplicate(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;
	struct tu_txn *u;
	struct store_part_result orig;

	t = txn1("d-1", tu_any(), 2, 1);
	tu_txn_client(t, 0xd2, 9);
	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	orig = f->r.txns[0].parts[0];
	u = txn1("d-other", tu_any(), 5, 2);
	tu_txn_client(u, 0xd2, 9);
	expect_duplicate_of(fx_apply1(f, u), &orig, 1);
	assert_int_equal(head(&f->s, "d-other").version, 0);
	assert_int_equal(store_last_position(&f->s), 2);
	tu_txn_free(t);
	tu_txn_free(u);
}

static void lower_seq_that_never_committed_is_stale(void **state)
{
	struct fx *f = *state;
	struct store_results lr;
	struct tu_txn *t;
	struct snap before;
	bool found = true;
	uint64_t hwm = 0;
	int round;

	t = txn1("st-1", tu_any(), 1, 1);
	tu_txn_client(t, 0xd3, 1);
	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	tu_txn_free(t);
	t = txn1("st-1", tu_any(), 1, 3);
	tu_txn_client(t, 0xd3, 3);
	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	tu_txn_free(t);

	store_results_init(&lr);
	for (round = 0; round < 2; round++) {
		const struct store_txn_result *res;

		/* Seq 2 never committed and is below the high-water mark 3. An
		 * expectation that would conflict does not matter either. */
		t = txn1("st-2", tu_exists(), 1, 2);
		tu_txn_client(t, 0xd3, 2);
		before = snap_take(&f->s);
		res = fx_apply1(f, t);
		assert_int_equal(res->outcome, STORE_STALE_SEQUENCE);
		assert_int_equal(res->actual_version, 3);
		assert_int_equal(snap_take(&f->s).data, before.data);
		assert_int_equal(store_last_position(&f->s), 2);
		assert_int_equal(head(&f->s, "st-2").version, 0);

		assert_int_equal(store_dedup_lookup(&f->s, t->txn.client_id, 2,
						    &found, &hwm, &lr),
				 0);
		assert_false(found);
		assert_int_equal(hwm, 3);
		assert_int_equal(lr.n, 0);
		/* A committed seq is found; an unknown writer has mark 0. */
		assert_int_equal(store_dedup_lookup(&f->s, t->txn.client_id, 3,
						    &found, &hwm, &lr),
				 0);
		assert_true(found);
		assert_int_equal(lr.n, 1);
		assert_int_equal(lr.txns[0].outcome, STORE_DUPLICATE);
		assert_part(&lr.txns[0].parts[0], 2, 2, 2, 2);
		{
			uint8_t unknown[16];

			memset(unknown, 0x77, sizeof unknown);
			assert_int_equal(store_dedup_lookup(&f->s, unknown, 1,
							    &found, &hwm, &lr),
					 0);
			assert_false(found);
			assert_int_equal(hwm, 0);
		}
		tu_txn_free(t);
		fx_reopen(f);
	}
	store_results_close(&lr);
}

/* A transaction that lost its version check was rejected: its sequence
 * number does not count as committed, and it does not raise the writer's
 * high-water mark, so a lower sequence number that never committed still
 * commits after it, and the same sequence number commits once its
 * expectation holds. */
static void seq_that_lost_a_version_conflict_does_not_count_as_committed(
	void **state)
{
	struct fx *f = *state;
	struct store_results lr;
	const struct store_txn_result *res;
	struct tu_txn *t;
	uint8_t client[16];
	bool found = true;
	uint64_t hwm = 99;

	store_results_init(&lr);
	t = txn1("vc-1", tu_any(), 1, 1);
	tu_txn_client(t, 0xd4, 1);
	assert_int_equal(fx_apply1(f, t)->outcome, STORE_COMMITTED);
	tu_txn_free(t);

	/* Seq 5 conflicts. */
	t = txn1("vc-1", tu_no_stream(), 1, 5);
	tu_txn_client(t, 0xd4, 5);
	expect_conflict(f, t, 0, 1);
	/* Its retry, still conflicting, conflicts again: not a duplicate. */
	expect_conflict(f, t, 0, 1);
	tu_txn_free(t);
	fx_reopen(f);
	memset(client, 0xd4, sizeof client);
	assert_int_equal(
		store_dedup_lookup(&f->s, client, 5, &found, &hwm, &lr), 0);
	assert_false(found);
	assert_int_equal(hwm, 1);

	/* Seq 3 (below the conflicted 5, above the mark 1) commits. */
	t = txn1("vc-1", tu_any(), 1, 3);
	tu_txn_client(t, 0xd4, 3);
	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_COMMITTED);
	assert_part(&res->parts[0], 2, 2, 2, 2);
	tu_txn_free(t);

	/* Seq 5 with an expectation that holds commits. */
	t = txn1("vc-1", tu_exact(2), 1, 5);
	tu_txn_client(t, 0xd4, 5);
	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_COMMITTED);
	assert_part(&res->parts[0], 3, 3, 3, 3);
	tu_txn_free(t);

	/* And now seq 4 is stale. */
	t = txn1("vc-1", tu_any(), 1, 4);
	tu_txn_client(t, 0xd4, 4);
	res = fx_apply1(f, t);
	assert_int_equal(res->outcome, STORE_STALE_SEQUENCE);
	assert_int_equal(res->actual_version, 5);
	tu_txn_free(t);
	store_results_close(&lr);
}

static void txn_without_client_is_never_a_duplicate(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t = txn1("nc-1", tu_any(), 1, 1);

	expect_commit1(f, t, 1, 1, 1, 1);
	expect_commit1(f, t, 2, 2, 2, 2);
	tu_txn_free(t);
}

static void writers_have_separate_sequences(void **state)
{
	struct fx *f = *state;
	struct tu_txn *a = txn1("w-1", tu_any(), 1, 1);
	struct tu_txn *b = txn1("w-1", tu_any(), 1, 2);

	/* b's seq 2 is below a's mark but not b's; b's seq 10 is not a's. */
	tu_txn_client(a, 0xa1, 10);
	tu_txn_client(b, 0xb2, 2);
	expect_commit1(f, a, 1, 1, 1, 1);
	expect_commit1(f, b, 2, 2, 2, 2);
	tu_txn_client(b, 0xb2, 10);
	expect_commit1(f, b, 3, 3, 3, 3);
	tu_txn_free(a);
	tu_txn_free(b);
}

/* ------------------------------------------------------------------------
 * Applied index
 * ------------------------------------------------------------------------ */

static void apply_at_or_below_the_applied_index_is_skipped(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t = txn1("sk-1", tu_any(), 2, 1);
	struct tu_txn *u = txn1("sk-2", tu_any(), 1, 2);
	uint64_t d;

	/* Index 0 is at the applied index of a new store. */
	tu_apply(&f->s, 0, &f->r, &t, 1);
	assert_true(f->r.skipped);
	assert_int_equal(f->r.n, 0);
	assert_int_equal(store_last_position(&f->s), 0);

	/* Indexes need not be consecutive (Raft has other entries). */
	tu_apply(&f->s, 5, &f->r, &t, 1);
	assert_false(f->r.skipped);
	assert_int_equal(f->r.n, 1);
	assert_int_equal(store_applied_index(&f->s), 5);
	d = digest(&f->s, ALL_CFS);

	tu_apply(&f->s, 5, &f->r, &u, 1);
	assert_true(f->r.skipped);
	assert_int_equal(f->r.n, 0);
	tu_apply(&f->s, 3, &f->r, &u, 1);
	assert_true(f->r.skipped);
	assert_int_equal(digest(&f->s, ALL_CFS), d);
	assert_int_equal(store_applied_index(&f->s), 5);
	assert_int_equal(head(&f->s, "sk-2").version, 0);

	fx_reopen(f);
	assert_int_equal(store_applied_index(&f->s), 5);
	assert_int_equal(store_last_position(&f->s), 2);
	tu_apply(&f->s, 5, &f->r, &u, 1);
	assert_true(f->r.skipped);
	assert_int_equal(digest(&f->s, ALL_CFS), d);

	tu_apply(&f->s, 6, &f->r, &u, 1);
	assert_false(f->r.skipped);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(store_applied_index(&f->s), 6);
	assert_int_equal(head(&f->s, "sk-2").version, 1);
	tu_txn_free(t);
	tu_txn_free(u);
}

/* Builds the entry of @txns into a malloc'd copy the caller may patch. */
static uint8_t *entry_copy(struct tu_txn *const *txns, size_t n, size_t *len)
{
	struct store_entry_builder b;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *buf;
	uint8_t *copy;
	size_t i;

	store_entry_builder_init(&b);
	for (i = 0; i < n; i++)
		assert_int_equal(store_entry_add(&b, &txns[i]->txn, errmsg), 0);
	assert_int_equal(store_entry_finish(&b, &buf, len), 0);
	copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, buf, *len);
	store_entry_builder_close(&b);
	return copy;
}

static void apply_raw(struct fx *f, const void *entry, size_t len)
{
	int rv;

	f->index++;
	rv = store_apply(&f->s, f->index, entry, len, &f->r);
	if (rv != 0)
		fail_msg("store_apply: %s", f->s.errmsg);
	assert_false(f->r.skipped);
	assert_int_equal(store_applied_index(&f->s), f->index);
}

static void malformed_entry_applies_nothing_but_advances_the_index(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t = txn1("mf-1", tu_any(), 2, 1);
	uint8_t zeros[16] = { 0 };
	uint8_t *entry;
	size_t len;
	uint64_t d;

	fx_append(f, "before", 1);
	d = digest(&f->s, DATA_CFS);

	apply_raw(f, zeros, sizeof zeros);
	assert_int_equal(f->r.entry_error, STORE_EMALFORMED);
	assert_int_equal(f->r.n, 0);

	apply_raw(f, zeros, 0);
	assert_int_equal(f->r.entry_error, STORE_EMALFORMED);
	assert_int_equal(f->r.n, 0);

	/* A valid entry cut short by 8 bytes. */
	entry = entry_copy(&t, 1, &len);
	apply_raw(f, entry, len - 8);
	assert_int_equal(f->r.entry_error, STORE_EMALFORMED);
	assert_int_equal(f->r.n, 0);
	/* Bad magic. */
	entry[0] ^= 0xff;
	apply_raw(f, entry, len);
	assert_int_equal(f->r.entry_error, STORE_EMALFORMED);
	assert_int_equal(f->r.n, 0);
	free(entry);

	assert_int_equal(digest(&f->s, DATA_CFS), d);
	assert_int_equal(head(&f->s, "mf-1").version, 0);
	assert_int_equal(store_last_position(&f->s), 1);
	fx_reopen(f);
	assert_int_equal(store_applied_index(&f->s), f->index);
	/* The indexes of malformed entries are not applied again. */
	tu_apply(&f->s, f->index, &f->r, &t, 1);
	assert_true(f->r.skipped);
	tu_txn_free(t);
}

/* Finds @needle in the @k-th transaction of @entry and overwrites it with
 * @repl of the same length. */
static void patch_txn(uint8_t *entry, size_t len, uint32_t k,
		      const char *needle, const char *repl, size_t n)
{
	struct store_entry_iter it;
	char errmsg[STORE_ERRMSG_SIZE];
	const void *t;
	size_t tl;
	uint32_t i = 0;
	size_t j;

	assert_int_equal(store_entry_open(entry, len, &it, errmsg), 0);
	while (store_entry_next(&it, &t, &tl)) {
		if (i++ != k)
			continue;
		for (j = 0; j + n <= tl; j++) {
			uint8_t *p = (uint8_t *)t + j;

			if (memcmp(p, needle, n) == 0) {
				memcpy(p, repl, n);
				return;
			}
		}
	}
	fail_msg("'%s' not found in txn %u", needle, k);
}

static void invalid_txn_in_an_entry_is_rejected_and_its_neighbours_commit(
	void **state)
{
	struct fx *f = *state;
	const char *const two[] = { "dupa-1", "dupb-1", NULL };
	struct tu_txn *t[4];
	const struct store_txn_result *r;
	uint8_t *entry;
	size_t len;

	t[0] = txn1("ok-1", tu_any(), 2, 1);
	t[1] = txn1("bad-stream-1", tu_any(), 1, 2);
	tu_txn_client(t[1], 0xe1, 1);
	t[2] = tu_txn_make(two, tu_any(), 1, 2, 3);
	t[3] = txn1("ok-2", tu_any(), 2, 4);
	entry = entry_copy(t, 4, &len);
	/* The framing stays valid; the bytes of txn 1 name an invalid stream
	 * and those of txn 2 name the same stream twice. */
	patch_txn(entry, len, 1, "bad-stream-1", "bad\nstream-1", 12);
	patch_txn(entry, len, 2, "dupb-1", "dupa-1", 6);
	apply_raw(f, entry, len);
	free(entry);

	assert_int_equal(f->r.entry_error, 0);
	assert_int_equal(f->r.n, 4);
	r = f->r.txns;
	assert_int_equal(r[0].outcome, STORE_COMMITTED);
	assert_part(&r[0].parts[0], 1, 2, 1, 2);
	assert_int_equal(r[1].outcome, STORE_REJECTED);
	assert_int_equal(r[1].reject_code, STORE_EINVALID_STREAM);
	assert_int_equal(r[2].outcome, STORE_REJECTED);
	assert_int_equal(r[2].reject_code, STORE_EDUPLICATE_STREAM);
	assert_int_equal(r[3].outcome, STORE_COMMITTED);
	assert_part(&r[3].parts[0], 1, 2, 3, 4);

	assert_int_equal(head(&f->s, "bad-stream-1").version, 0);
	assert_int_equal(head(&f->s, "dupa-1").version, 0);
	assert_int_equal(head(&f->s, "dupb-1").version, 0);
	assert_int_equal(store_last_position(&f->s), 4);

	/* The rejected transaction's client seq did not commit. */
	{
		bool found = true;
		uint64_t hwm = 99;

		assert_int_equal(store_dedup_lookup(&f->s, t[1]->txn.client_id,
						    1, &found, &hwm, &f->r),
				 0);
		assert_false(found);
		assert_int_equal(hwm, 0);
	}
	for (int i = 0; i < 4; i++)
		tu_txn_free(t[i]);
}

/* ------------------------------------------------------------------------
 * Determinism
 * ------------------------------------------------------------------------ */

/* A history with every outcome, applied identically to a store. */
static void apply_history(struct store *s)
{
	const char *const multi[] = { "h-a", "h-b", "h-c", NULL };
	struct store_results r;
	struct tu_txn *t[4];
	uint8_t *entry;
	size_t len;
	int rv;

	store_results_init(&r);
	t[0] = tu_txn_make(multi, tu_no_stream(), 3, 40, 1);
	tu_txn_client(t[0], 0x01, 5);
	t[1] = txn1("h-a", tu_exact(3), 2, 2);
	tu_txn_client(t[1], 0x02, 7);
	t[2] = txn1("h-b", tu_exact(1), 1, 3); /* conflict */
	t[3] = txn1("h-d", tu_any(), 4, 4);
	tu_apply(s, 1, &r, t, 4);
	tu_apply(s, 2, &r, t, 1); /* duplicate */
	assert_int_equal(r.txns[0].outcome, STORE_DUPLICATE);
	tu_txn_client(t[3], 0x01, 3); /* stale: 3 < 5 */
	tu_apply(s, 4, &r, &t[3], 1);
	assert_int_equal(r.txns[0].outcome, STORE_STALE_SEQUENCE);
	tu_txn_client(t[3], 0x01, 6);
	tu_apply(s, 5, &r, &t[3], 1);
	assert_int_equal(r.txns[0].outcome, STORE_COMMITTED);
	entry = entry_copy(t, 2, &len);
	patch_txn(entry, len, 1, "h-a",
		  "h\x01"
		  "a",
		  3);
	rv = store_apply(s, 6, entry, len, &r);
	assert_int_equal(rv, 0);
	assert_int_equal(r.txns[1].outcome, STORE_REJECTED);
	free(entry);
	for (int i = 0; i < 4; i++)
		tu_txn_free(t[i]);
	store_results_close(&r);
}

static void same_entries_give_the_same_digest_on_two_stores(void **state)
{
	struct fx *f = *state;
	struct store s2;
	struct store empty;
	char *dir2 = tu_tempdir("apply2");
	char *dir3 = tu_tempdir("apply3");
	static const unsigned sets[] = {
		STORE_CF_LOG,   STORE_CF_VERSIONS,
		STORE_CF_DEDUP, STORE_CF_LOG | STORE_CF_VERSIONS,
		DATA_CFS,
	};
	size_t i;

	tu_open(&s2, dir2);
	tu_open(&empty, dir3);
	apply_history(&f->s);
	apply_history(&s2);
	for (i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		assert_int_equal(digest(&f->s, sets[i]), digest(&s2, sets[i]));
		/* The digest covers the data: it is not that of an empty store.
		 */
		assert_int_not_equal(digest(&f->s, sets[i]),
				     digest(&empty, sets[i]));
	}
	assert_int_equal(store_last_position(&f->s), store_last_position(&s2));
	assert_int_equal(store_applied_index(&f->s), store_applied_index(&s2));

	/* One more event on one replica changes its digests. */
	{
		struct tu_txn *t = txn1("h-a", tu_any(), 1, 99);

		tu_apply(&s2, 7, &f->r, &t, 1);
		tu_txn_free(t);
	}
	assert_int_not_equal(digest(&f->s, STORE_CF_LOG),
			     digest(&s2, STORE_CF_LOG));
	assert_int_not_equal(digest(&f->s, STORE_CF_VERSIONS),
			     digest(&s2, STORE_CF_VERSIONS));

	store_close(&s2);
	store_close(&empty);
	tu_rmdir(dir2);
	tu_rmdir(dir3);
}

static void digest_survives_reopen(void **state)
{
	struct fx *f = *state;
	uint64_t d;

	apply_history(&f->s);
	d = digest(&f->s, ALL_CFS);
	fx_reopen(f);
	assert_int_equal(digest(&f->s, ALL_CFS), d);
	assert_int_equal(store_applied_index(&f->s), 6);
}

/* ------------------------------------------------------------------------
 * Checksums of stored records
 * ------------------------------------------------------------------------ */

static void pos_key(uint64_t pos, uint8_t key[8])
{
	int i;

	for (i = 7; i >= 0; i--) {
		key[i] = (uint8_t)pos;
		pos >>= 8;
	}
}

static void *log_get(struct store *s, uint64_t pos, size_t *len)
{
	uint8_t key[8];
	void *val = NULL;

	pos_key(pos, key);
	assert_int_equal(store_debug_get(s, STORE_CF_LOG, key, 8, &val, len),
			 0);
	assert_non_null(val);
	return val;
}

static void log_put(struct store *s, uint64_t pos, const void *val, size_t len)
{
	uint8_t key[8];

	pos_key(pos, key);
	assert_int_equal(store_debug_put(s, STORE_CF_LOG, key, 8, val, len), 0);
}

struct seen {
	uint64_t positions[64];
	uint64_t versions[64];
	uint32_t n;
};

static bool record_seen(void *arg, const struct store_record *r)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	s->positions[s->n] = r->position;
	s->versions[s->n] = r->version;
	s->n++;
	return true;
}

static int decode_exact(uint64_t pos, const void *buf, size_t len,
			struct store_record *r)
{
	char errmsg[STORE_ERRMSG_SIZE] = "";
	uint8_t *copy = malloc(len > 0 ? len : 1);
	int rv;

	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, buf, len);
	rv = store_record_decode(pos, len > 0 ? copy : copy + 1, len, r,
				 errmsg);
	if (rv != 0)
		assert_true(errmsg[0] != '\0');
	free(copy);
	return rv;
}

/* Reads everything both ways and asserts each read fails with
 * STORE_ECORRUPT without passing the record at @bad_pos. */
static void expect_reads_corrupt(struct fx *f, const char *stream,
				 uint64_t bad_pos)
{
	struct store_read_info info;
	struct seen seen;
	uint32_t i;
	int rv;

	memset(&seen, 0, sizeof seen);
	f->s.errmsg[0] = '\0';
	rv = store_read_all(&f->s, 1, 100, 0, NULL, record_seen, &seen, &info);
	assert_int_equal(rv, STORE_ECORRUPT);
	assert_true(f->s.errmsg[0] != '\0');
	for (i = 0; i < seen.n; i++)
		assert_true(seen.positions[i] < bad_pos);

	memset(&seen, 0, sizeof seen);
	f->s.errmsg[0] = '\0';
	rv = store_read_stream(&f->s, stream, strlen(stream), 1, false, 100,
			       record_seen, &seen, &info);
	assert_int_equal(rv, STORE_ECORRUPT);
	assert_true(f->s.errmsg[0] != '\0');
	for (i = 0; i < seen.n; i++)
		assert_int_not_equal(seen.positions[i], bad_pos);

	memset(&seen, 0, sizeof seen);
	rv = store_read_stream(&f->s, stream, strlen(stream),
			       STORE_VERSION_HEAD, true, 100, record_seen,
			       &seen, &info);
	assert_int_equal(rv, STORE_ECORRUPT);
	for (i = 0; i < seen.n; i++)
		assert_int_not_equal(seen.positions[i], bad_pos);
}

static void flipped_byte_in_a_stored_record_is_reported_corrupt(void **state)
{
	struct fx *f = *state;
	struct store_record rec;
	struct tu_txn *t = txn1("c-1", tu_any(), 3, 1);
	uint8_t *val;
	uint8_t *flipped;
	size_t len;
	size_t i;
	size_t at;

	/* Data of 40 recognisable bytes so the flip lands in the data. */
	{
		static const char data[] =
			"0123456789abcdefghijklmnopqrstuvwxyzABCD";

		for (i = 0; i < 3; i++) {
			t->events[i].data = data;
			t->events[i].data_len = 40;
		}
	}
	fx_apply1(f, t);
	val = log_get(&f->s, 2, &len);
	assert_int_equal(decode_exact(2, val, len, &rec), 0);
	flipped = malloc(len);
	assert_non_null(flipped);

	/* Every single flipped bit of the record is caught by decode. */
	for (i = 0; i < len; i++) {
		int rv;

		memcpy(flipped, val, len);
		flipped[i] ^= 0x04;
		rv = decode_exact(2, flipped, len, &rec);
		if (rv != STORE_ECORRUPT && rv != STORE_EMALFORMED)
			fail_msg("flip at byte %zu/%zu: got %d", i, len, rv);
	}

	/* A flip in the data is a checksum mismatch. */
	at = 0;
	for (i = 0; i + 10 <= len; i++)
		if (memcmp(val + i, "0123456789", 10) == 0)
			at = i + 5;
	assert_true(at != 0);
	memcpy(flipped, val, len);
	flipped[at] ^= 0x01;
	assert_int_equal(decode_exact(2, flipped, len, &rec), STORE_ECORRUPT);

	/* Stored, the reads report it. */
	log_put(&f->s, 2, flipped, len);
	expect_reads_corrupt(f, "c-1", 2);

	/* Restoring the bytes restores the reads. */
	log_put(&f->s, 2, val, len);
	{
		struct store_read_info info;
		struct seen seen;

		memset(&seen, 0, sizeof seen);
		assert_int_equal(store_read_all(&f->s, 1, 100, 0, NULL,
						record_seen, &seen, &info),
				 0);
		assert_int_equal(seen.n, 3);
	}
	free(flipped);
	free(val);
	tu_txn_free(t);
}

static void truncated_record_is_refused(void **state)
{
	struct fx *f = *state;
	struct store_record rec;
	struct tu_txn *t = txn1("c-1", tu_any(), 1, 1);
	uint8_t *val;
	size_t len;
	size_t n;

	fx_apply1(f, t);
	val = log_get(&f->s, 1, &len);
	for (n = 0; n < len; n++) {
		int rv = decode_exact(1, val, n, &rec);

		if (rv != STORE_ECORRUPT && rv != STORE_EMALFORMED)
			fail_msg("prefix %zu/%zu: got %d", n, len, rv);
	}
	free(val);
	tu_txn_free(t);
}

static void record_copied_to_another_position_is_reported_corrupt(void **state)
{
	struct fx *f = *state;
	struct store_record rec;
	struct tu_txn *t = txn1("c-1", tu_any(), 3, 1);
	uint8_t *v1;
	size_t l1;

	fx_apply1(f, t);
	v1 = log_get(&f->s, 1, &l1);
	assert_int_equal(decode_exact(1, v1, l1, &rec), 0);
	assert_int_equal(decode_exact(3, v1, l1, &rec), STORE_ECORRUPT);
	log_put(&f->s, 3, v1, l1);
	expect_reads_corrupt(f, "c-1", 3);
	free(v1);
	tu_txn_free(t);
}

/* Rewrites the CRC of a `log` value for @pos after the test changed it,
 * as docs/storage-format.md defines it: CRC-32 over the big-endian
 * position and every byte before the CRC, stored little-endian. */
static void reseal(uint64_t pos, uint8_t *val, size_t len)
{
	uint8_t key[8];
	uLong crc;
	int i;

	assert_true(len > 84);
	pos_key(pos, key);
	crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, key, 8);
	crc = crc32(crc, val, (uInt)(len - 4));
	for (i = 0; i < 4; i++)
		val[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

static void stream_read_refuses_a_record_that_disagrees_with_the_index(
	void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	struct store_record rec;
	struct seen seen;
	struct tu_txn *t = txn1("ix-1", tu_any(), 3, 1);
	uint8_t *val;
	size_t len;

	fx_apply1(f, t);
	val = log_get(&f->s, 2, &len);
	/* A well-sealed record at position 2 that claims version 3. */
	assert_int_equal(val[8], 2);
	val[8] = 3;
	reseal(2, val, len);
	assert_int_equal(decode_exact(2, val, len, &rec), 0);
	assert_int_equal(rec.version, 3);
	log_put(&f->s, 2, val, len);

	/* The global read has no index to compare with and returns it... */
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_read_all(&f->s, 1, 100, 0, NULL, record_seen,
					&seen, &info),
			 0);
	assert_int_equal(seen.n, 3);
	/* ...the stream read, which came through the index, refuses it. */
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_read_stream(&f->s, "ix-1", 4, 1, false, 100,
					   record_seen, &seen, &info),
			 STORE_ECORRUPT);
	for (uint32_t i = 0; i < seen.n; i++)
		assert_int_not_equal(seen.positions[i], 2);
	free(val);
	tu_txn_free(t);
}

/* Reserved bytes and the client fields of a record without a client must
 * be zero: a well-sealed record that breaks either is refused. */
static void record_with_nonzero_reserved_bytes_is_refused(void **state)
{
	struct fx *f = *state;
	struct store_record rec;
	struct tu_txn *t = txn1("rsv-1", tu_any(), 1, 1);
	uint8_t *val;
	size_t len;

	fx_apply1(f, t);
	val = log_get(&f->s, 1, &len);
	assert_int_equal(decode_exact(1, val, len, &rec), 0);
	assert_false(rec.has_client);

	val[6] = 1; /* reserved u16 */
	reseal(1, val, len);
	assert_int_equal(decode_exact(1, val, len, &rec), STORE_EMALFORMED);
	val[6] = 0;
	val[50] = 1; /* client id of a record without one */
	reseal(1, val, len);
	assert_int_equal(decode_exact(1, val, len, &rec), STORE_EMALFORMED);
	val[50] = 0;
	reseal(1, val, len);
	assert_int_equal(decode_exact(1, val, len, &rec), 0);
	free(val);
	tu_txn_free(t);
}

static void stream_read_refuses_an_index_entry_pointing_at_another_stream(
	void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	struct seen seen;
	struct tu_txn *a = txn1("ix-a", tu_any(), 2, 1);
	struct tu_txn *b = txn1("ix-b", tu_any(), 2, 2);
	uint8_t key[1 + 1 + 4 + 8];
	uint8_t val[8];
	void *old = NULL;
	size_t old_len = 0;

	fx_apply1(f, a); /* positions 1, 2 */
	fx_apply1(f, b); /* positions 3, 4 */
	key[0] = 'V';
	key[1] = 4;
	memcpy(key + 2, "ix-a", 4);
	pos_key(2, key + 6);
	assert_int_equal(store_debug_get(&f->s, STORE_CF_VERSIONS, key,
					 sizeof key, &old, &old_len),
			 0);
	/* The test's reading of the layout agrees with the store. */
	assert_non_null(old);
	assert_int_equal(old_len, 8);
	assert_int_equal(((uint8_t *)old)[0], 2);
	free(old);
	memset(val, 0, sizeof val);
	val[0] = 3; /* ix-b's first event */
	assert_int_equal(store_debug_put(&f->s, STORE_CF_VERSIONS, key,
					 sizeof key, val, sizeof val),
			 0);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(store_read_stream(&f->s, "ix-a", 4, 1, false, 100,
					   record_seen, &seen, &info),
			 STORE_ECORRUPT);
	for (uint32_t i = 0; i < seen.n; i++)
		assert_int_not_equal(seen.positions[i], 3);
	memset(&seen, 0, sizeof seen);
	assert_int_equal(
		store_read_stream(&f->s, "ix-a", 4, STORE_VERSION_HEAD, true,
				  100, record_seen, &seen, &info),
		STORE_ECORRUPT);
	for (uint32_t i = 0; i < seen.n; i++)
		assert_int_not_equal(seen.positions[i], 3);
	tu_txn_free(a);
	tu_txn_free(b);
}

static void open_refuses_a_log_that_disagrees_with_last_position(void **state)
{
	struct fx *f = *state;
	struct store s2;
	uint8_t key[8];
	uint8_t *val;
	size_t len;

	fx_append(f, "lp-1", 3);
	val = log_get(&f->s, 3, &len);

	/* A record past the last position. */
	reseal(4, val, len);
	log_put(&f->s, 4, val, len);
	store_close(&f->s);
	memset(&s2, 0, sizeof s2);
	assert_int_equal(store_open(&s2, f->dir, NULL), STORE_ECORRUPT);
	assert_true(s2.errmsg[0] != '\0');

	/* The other way round, in a fresh store: the last record missing. */
	free(val);
	tu_rmdir(f->dir);
	f->dir = tu_tempdir("apply");
	tu_open(&f->s, f->dir);
	f->index = 0;
	fx_append(f, "lp-1", 3);
	pos_key(3, key);
	assert_int_equal(store_debug_delete(&f->s, STORE_CF_LOG, key, 8), 0);
	store_close(&f->s);
	memset(&s2, 0, sizeof s2);
	assert_int_equal(store_open(&s2, f->dir, NULL), STORE_ECORRUPT);
	assert_true(s2.errmsg[0] != '\0');
	/* The teardown closes f->s: give it a store that opens. */
	tu_rmdir(f->dir);
	f->dir = tu_tempdir("apply");
	tu_open(&f->s, f->dir);
}

static void open_refuses_an_unknown_layout_format(void **state)
{
	struct fx *f = *state;
	struct store s2;
	uint8_t val[8] = { 2, 0, 0, 0, 0, 0, 0, 0 };
	void *old = NULL;
	size_t old_len = 0;

	assert_int_equal(store_debug_get(&f->s, STORE_CF_META, "format", 6,
					 &old, &old_len),
			 0);
	assert_non_null(old);
	assert_int_equal(old_len, 8);
	assert_int_equal(((uint8_t *)old)[0], 1);
	free(old);
	assert_int_equal(
		store_debug_put(&f->s, STORE_CF_META, "format", 6, val, 8), 0);
	store_close(&f->s);
	memset(&s2, 0, sizeof s2);
	assert_int_not_equal(store_open(&s2, f->dir, NULL), 0);
	assert_true(s2.errmsg[0] != '\0');
	tu_rmdir(f->dir);
	f->dir = tu_tempdir("apply");
	tu_open(&f->s, f->dir);
}

/* ------------------------------------------------------------------------
 * Sync, checkpoints, reopen
 * ------------------------------------------------------------------------ */

static void checkpoint_opens_as_a_store_with_the_same_state(void **state)
{
	struct fx *f = *state;
	struct store cp;
	char path[4200];
	uint64_t d;

	apply_history(&f->s);
	f->index = store_applied_index(&f->s);
	assert_int_equal(store_sync(&f->s), 0);
	snprintf(path, sizeof path, "%s/checkpoint", f->dir);
	assert_int_equal(store_checkpoint(&f->s, path), 0);
	/* The directory must not exist. */
	assert_int_not_equal(store_checkpoint(&f->s, path), 0);
	assert_true(f->s.errmsg[0] != '\0');

	d = digest(&f->s, ALL_CFS);
	fx_append(f, "after-cp", 3);
	assert_int_not_equal(digest(&f->s, ALL_CFS), d);

	tu_open(&cp, path);
	assert_int_equal(digest(&cp, ALL_CFS), d);
	assert_int_equal(store_applied_index(&cp), 6);
	assert_int_equal(store_last_position(&cp),
			 store_last_position(&f->s) - 3);
	assert_int_equal(head(&cp, "after-cp").version, 0);
	assert_int_equal(head(&cp, "h-a").version, head(&f->s, "h-a").version);
	store_close(&cp);
}

static void state_survives_close_and_reopen(void **state)
{
	struct fx *f = *state;
	struct tu_txn *t;
	uint64_t d;

	fx_append(f, "ro-1", 3);
	fx_append(f, "ro-2", 2);
	d = digest(&f->s, ALL_CFS);
	assert_int_equal(store_sync(&f->s), 0);
	fx_reopen(f);
	assert_int_equal(digest(&f->s, ALL_CFS), d);
	assert_int_equal(store_applied_index(&f->s), 2);
	assert_int_equal(store_last_position(&f->s), 5);
	assert_int_equal(head(&f->s, "ro-1").version, 3);
	assert_int_equal(head(&f->s, "ro-1").last_position, 3);
	/* Positions continue after the reopen. */
	t = txn1("ro-1", tu_exact(3), 1, 9);
	expect_commit1(f, t, 4, 4, 6, 6);
	tu_txn_free(t);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(new_store_is_empty),
		T(open_on_a_regular_file_fails_with_a_message),
		T(any_appends_to_new_and_existing_streams),
		T(no_stream_commits_on_a_new_stream),
		T(no_stream_conflicts_on_an_existing_stream),
		T(exists_conflicts_on_a_new_stream),
		T(exists_commits_on_an_existing_stream),
		T(exact_version_commits_when_it_matches),
		T(append_with_stale_exact_version_conflicts),
		T(append_with_exact_version_above_head_conflicts),
		T(multi_stream_txn_with_one_conflict_writes_nothing),
		T(multi_stream_txn_assigns_versions_and_gapless_positions),
		T(txns_in_one_entry_see_each_others_effects),
		T(lower_seq_in_the_same_entry_is_stale),
		T(txn_with_many_parts_commits_or_conflicts_as_a_whole),
		T(large_entry_results_point_at_their_own_parts),
		T(retry_in_a_later_entry_returns_the_original_result),
		T(retry_with_different_content_is_still_a_duplicate),
		T(lower_seq_that_never_committed_is_stale),
		T(seq_that_lost_a_version_conflict_does_not_count_as_committed),
		T(txn_without_client_is_never_a_duplicate),
		T(writers_have_separate_sequences),
		T(apply_at_or_below_the_applied_index_is_skipped),
		T(malformed_entry_applies_nothing_but_advances_the_index),
		T(invalid_txn_in_an_entry_is_rejected_and_its_neighbours_commit),
		T(same_entries_give_the_same_digest_on_two_stores),
		T(digest_survives_reopen),
		T(flipped_byte_in_a_stored_record_is_reported_corrupt),
		T(truncated_record_is_refused),
		T(record_copied_to_another_position_is_reported_corrupt),
		T(stream_read_refuses_a_record_that_disagrees_with_the_index),
		T(stream_read_refuses_an_index_entry_pointing_at_another_stream),
		T(record_with_nonzero_reserved_bytes_is_refused),
		T(open_refuses_a_log_that_disagrees_with_last_position),
		T(open_refuses_an_unknown_layout_format),
		T(checkpoint_opens_as_a_store_with_the_same_state),
		T(state_survives_close_and_reopen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
