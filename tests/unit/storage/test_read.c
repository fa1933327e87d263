/* Unit tests of the store's reads: stream reads forward and backward in
 * pages, global reads with filters and a scan bound that a caller resumes
 * from info.next, and the fields a record carries back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"

/* ------------------------------------------------------------------------
 * Collecting records
 * ------------------------------------------------------------------------ */

/* A record copied out of the callback (its pointers die with the call). */
struct rec {
	struct store_record r; /* pointers below replace the borrowed ones */
	char *stream;          /* owned, NUL-terminated */
	char *type;            /* owned, NUL-terminated */
	uint8_t *data;
	uint8_t *metadata;
};

struct coll {
	struct rec *v;
	size_t n;
	size_t cap;
	size_t stop_after; /* return false after this many; 0: never */
};

static bool collect(void *arg, const struct store_record *r)
{
	struct coll *c = arg;
	struct rec *x;

	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->v = realloc(c->v, c->cap * sizeof *c->v);
		assert_non_null(c->v);
	}
	x = &c->v[c->n++];
	memset(x, 0, sizeof *x);
	x->r = *r;
	assert_true(r->stream_len >= 1 && r->stream_len <= 255);
	assert_true(r->type_len >= 1 && r->type_len <= 255);
	x->stream = calloc(r->stream_len + 1, 1);
	x->type = calloc(r->type_len + 1, 1);
	assert_non_null(x->stream);
	assert_non_null(x->type);
	memcpy(x->stream, r->stream, r->stream_len);
	memcpy(x->type, r->type, r->type_len);
	x->r.stream = x->stream;
	x->r.type = x->type;
	x->data = malloc(r->data_len + 1);
	x->metadata = malloc(r->metadata_len + 1);
	assert_non_null(x->data);
	assert_non_null(x->metadata);
	if (r->data_len > 0)
		memcpy(x->data, r->data, r->data_len);
	if (r->metadata_len > 0)
		memcpy(x->metadata, r->metadata, r->metadata_len);
	x->r.data = x->data;
	x->r.metadata = x->metadata;
	return c->stop_after == 0 || c->n < c->stop_after;
}

static void coll_clear(struct coll *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->v[i].stream);
		free(c->v[i].type);
		free(c->v[i].data);
		free(c->v[i].metadata);
	}
	c->n = 0;
	c->stop_after = 0;
}

static void coll_free(struct coll *c)
{
	coll_clear(c);
	free(c->v);
	c->v = NULL;
	c->cap = 0;
}

/* ------------------------------------------------------------------------
 * Fixture: a store with a known history
 * ------------------------------------------------------------------------ */

#define ACC_EVENTS 25

struct fx {
	char *dir;
	struct store s;
	struct store_results r;
	uint64_t index;
	/* acc-1: position of each version, 1-based */
	uint64_t acc_pos[ACC_EVENTS + 1];
	struct coll c;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = tu_tempdir("read");
	tu_open(&f->s, f->dir);
	store_results_init(&f->r);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	coll_free(&f->c);
	store_results_close(&f->r);
	store_close(&f->s);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* Appends @n events of @type to @stream in their own entry; returns the
 * first position. */
static uint64_t fx_append(struct fx *f, const char *stream, const char *type,
			  uint32_t n)
{
	const char *const streams[] = { stream, NULL };
	struct tu_txn *t = tu_txn_make(streams, tu_any(), n, 3, f->index + 1);
	uint64_t first;
	uint32_t i;

	for (i = 0; i < n; i++) {
		t->events[i].type = type;
		t->events[i].type_len = (uint32_t)strlen(type);
	}
	/* tu_txn_make keeps at most 63 bytes of a name: use the caller's. */
	t->parts[0].stream = stream;
	t->parts[0].stream_len = (uint32_t)strlen(stream);
	f->index++;
	tu_apply(&f->s, f->index, &f->r, &t, 1);
	assert_int_equal(f->r.n, 1);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	first = f->r.txns[0].parts[0].first_position;
	tu_txn_free(t);
	return first;
}

/* acc-1 gets 25 events one at a time, interleaved with other streams
 * (including acc-10 and acc, whose names share a prefix with it). */
static int fx_setup_acc(void **state)
{
	struct fx *f;
	int i;

	fx_setup(state);
	f = *state;
	for (i = 1; i <= ACC_EVENTS; i++) {
		if (i % 2 == 0)
			fx_append(f, "acc-10", "T", 1);
		if (i % 3 == 0)
			fx_append(f, "acc", "T", 2);
		f->acc_pos[i] = fx_append(f, "acc-1", "T", 1);
		if (i % 5 == 0)
			fx_append(f, "acc-1x", "T", 1);
	}
	return 0;
}

/* Reads acc-1 and checks the page holds versions @first down/up to @last. */
static void read_page(struct fx *f, uint64_t from, bool backward,
		      uint32_t max_count, uint64_t first, uint64_t last,
		      uint64_t want_next, bool want_end)
{
	struct store_read_info info;
	uint64_t want_count;
	uint64_t v;
	size_t i;
	int rv;

	coll_clear(&f->c);
	memset(&info, 0xee, sizeof info);
	rv = store_read_stream(&f->s, "acc-1", 5, from, backward, max_count,
			       collect, &f->c, &info);
	if (rv != 0)
		fail_msg("store_read_stream: %s", f->s.errmsg);
	if (first == 0)
		want_count = 0;
	else
		want_count = backward ? first - last + 1 : last - first + 1;
	assert_int_equal(f->c.n, want_count);
	assert_int_equal(info.count, want_count);
	for (i = 0; i < f->c.n; i++) {
		const struct store_record *r = &f->c.v[i].r;

		v = backward ? first - i : first + i;
		assert_int_equal(r->version, v);
		assert_int_equal(r->position, f->acc_pos[v]);
		assert_int_equal(r->stream_len, 5);
		assert_memory_equal(r->stream, "acc-1", 5);
	}
	assert_int_equal(info.next, want_next);
	assert_int_equal(info.end, want_end);
}

/* ------------------------------------------------------------------------
 * Stream reads
 * ------------------------------------------------------------------------ */

static void stream_reads_forward_in_pages(void **state)
{
	struct fx *f = *state;

	read_page(f, 1, false, 10, 1, 10, 11, false);
	read_page(f, 11, false, 10, 11, 20, 21, false);
	read_page(f, 21, false, 10, 21, 25, 26, true);
	read_page(f, 26, false, 10, 0, 0, 26, true);
}

static void stream_read_forward_from_zero_starts_at_one(void **state)
{
	struct fx *f = *state;

	read_page(f, 0, false, 10, 1, 10, 11, false);
	read_page(f, 0, false, 100, 1, 25, 26, true);
}

static void stream_read_forward_page_ending_at_the_head(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	/* A full page that ends exactly at the head: next is after it, and
	 * the following read is empty and at the end. */
	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "acc-1", 5, 16, false, 10, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 10);
	assert_int_equal(info.next, 26);
	assert_int_equal(f->c.v[9].r.version, 25);
	read_page(f, 26, false, 10, 0, 0, 26, true);
}

static void stream_read_forward_past_the_end_is_empty(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "acc-1", 5, 1000, false, 10, collect,
			       &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 0);
	assert_int_equal(f->c.n, 0);
	assert_true(info.end);
}

static void stream_reads_backward_in_pages_from_the_head(void **state)
{
	struct fx *f = *state;

	read_page(f, STORE_VERSION_HEAD, true, 10, 25, 16, 15, false);
	read_page(f, 15, true, 10, 15, 6, 5, false);
	read_page(f, 5, true, 10, 5, 1, 0, true);
}

static void stream_read_backward_page_reaching_the_start(void **state)
{
	struct fx *f = *state;

	read_page(f, 10, true, 10, 10, 1, 0, true);
	read_page(f, 1, true, 10, 1, 1, 0, true);
}

static void stream_read_backward_from_past_the_head_starts_at_the_head(
	void **state)
{
	struct fx *f = *state;

	read_page(f, 26, true, 3, 25, 23, 22, false);
	read_page(f, 1000, true, 3, 25, 23, 22, false);
	read_page(f, 25, true, 3, 25, 23, 22, false);
}

static void unknown_stream_reads_as_empty(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "nobody", 6, 1, false, 10, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 0);
	assert_int_equal(info.count, 0);
	assert_true(info.end);
	rv = store_read_stream(&f->s, "nobody", 6, STORE_VERSION_HEAD, true, 10,
			       collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 0);
	assert_int_equal(info.count, 0);
	assert_int_equal(info.next, 0);
	assert_true(info.end);
	/* A prefix of an existing name is another stream. */
	rv = store_read_stream(&f->s, "acc-", 4, 1, false, 10, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 0);
}

static void empty_store_reads_as_empty(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "x", 1, STORE_VERSION_HEAD, true, 10,
			       collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 0);
	assert_true(info.end);
	rv = store_read_all(&f->s, 0, 10, 0, NULL, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 0);
	assert_int_equal(f->c.n, 0);
	assert_true(info.end);
}

static void stream_read_excludes_streams_sharing_a_prefix(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	size_t i;
	int rv;

	/* Reading everything both ways gives exactly acc-1's 25 events. */
	read_page(f, 1, false, 1000, 1, 25, 26, true);
	read_page(f, STORE_VERSION_HEAD, true, 1000, 25, 1, 0, true);

	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "acc", 3, 1, false, 1000, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 2 * (ACC_EVENTS / 3));
	for (i = 0; i < f->c.n; i++) {
		assert_int_equal(f->c.v[i].r.stream_len, 3);
		assert_int_equal(f->c.v[i].r.version, i + 1);
	}
	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "acc-10", 6, STORE_VERSION_HEAD, true,
			       1000, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, ACC_EVENTS / 2);
	for (i = 0; i < f->c.n; i++)
		assert_int_equal(f->c.v[i].r.version, ACC_EVENTS / 2 - i);
}

static void stream_read_stops_when_the_callback_says_so(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	f->c.stop_after = 3;
	rv = store_read_stream(&f->s, "acc-1", 5, 4, false, 10, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 3);
	assert_int_equal(info.count, 3);
	assert_int_equal(info.next, 7);
	assert_false(info.end);

	coll_clear(&f->c);
	f->c.stop_after = 2;
	rv = store_read_stream(&f->s, "acc-1", 5, 9, true, 10, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 2);
	assert_int_equal(f->c.v[1].r.version, 8);
	assert_int_equal(info.next, 7);
	assert_false(info.end);
}

/* ------------------------------------------------------------------------
 * Global reads
 * ------------------------------------------------------------------------ */

static const struct {
	const char *stream;
	const char *type;
} mix[] = {
	{ "order-1", "Created" },  { "order-2", "Created" },
	{ "orders-1", "Created" }, { "ordering", "Created" },
	{ "order", "Shipped" },    { "user-1", "Created" },
	{ "order-1", "Shipped" },  { "user-1", "CreatedX" },
	{ "-lead", "Created" },    { "order-2", "Rare" },
	{ "user-2", "Created" },   { "order-1", "Paid" },
};
#define MIX_N (sizeof mix / sizeof mix[0])

/* 7 rounds over @mix with varying batch sizes: about 150 events. */
static int fx_setup_mix(void **state)
{
	struct fx *f;
	size_t round;
	size_t i;

	fx_setup(state);
	f = *state;
	for (round = 0; round < 7; round++)
		for (i = 0; i < MIX_N; i++) {
			if (strcmp(mix[i].type, "Rare") == 0 && round % 3 != 0)
				continue;
			fx_append(f, mix[i].stream, mix[i].type,
				  (uint32_t)(1 + (round + i) % 3));
		}
	return 0;
}

static bool filter_matches(const struct store_filter *flt,
			   const struct store_record *r)
{
	if (flt == NULL)
		return true;
	if (flt->stream_prefix_len > 0 &&
	    (r->stream_len < flt->stream_prefix_len ||
	     memcmp(r->stream, flt->stream_prefix, flt->stream_prefix_len) !=
		     0))
		return false;
	if (flt->category_len > 0) {
		const char *dash = memchr(r->stream, '-', r->stream_len);

		if (dash == NULL)
			return false;
		if ((size_t)(dash - r->stream) != flt->category_len ||
		    memcmp(r->stream, flt->category, flt->category_len) != 0)
			return false;
	}
	if (flt->type_len > 0 &&
	    (r->type_len != flt->type_len ||
	     memcmp(r->type, flt->type, flt->type_len) != 0))
		return false;
	return true;
}

static struct store_filter mkfilter(const char *prefix, const char *category,
				    const char *type)
{
	struct store_filter flt;

	memset(&flt, 0, sizeof flt);
	flt.stream_prefix = prefix;
	flt.stream_prefix_len = prefix ? strlen(prefix) : 0;
	flt.category = category;
	flt.category_len = category ? strlen(category) : 0;
	flt.type = type;
	flt.type_len = type ? strlen(type) : 0;
	return flt;
}

/* Every record, read unfiltered in one go. */
static void read_everything(struct fx *f, struct coll *all)
{
	struct store_read_info info;
	int rv;

	rv = store_read_all(&f->s, 1, UINT32_MAX, 0, NULL, collect, all, &info);
	if (rv != 0)
		fail_msg("store_read_all: %s", f->s.errmsg);
	assert_true(info.end);
	assert_int_equal(all->n, store_last_position(&f->s));
}

static void global_read_from_0_or_1_returns_everything_in_order(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	uint64_t last = store_last_position(&f->s);
	size_t i;
	int rv;

	assert_true(last > 100);
	for (int from = 0; from <= 1; from++) {
		coll_clear(&f->c);
		rv = store_read_all(&f->s, (uint64_t)from, 10000, 0, NULL,
				    collect, &f->c, &info);
		assert_int_equal(rv, 0);
		assert_int_equal(f->c.n, last);
		assert_int_equal(info.count, last);
		assert_int_equal(info.next, last + 1);
		assert_true(info.end);
		for (i = 0; i < f->c.n; i++)
			assert_int_equal(f->c.v[i].r.position, i + 1);
	}
}

static void global_read_pages_by_max_count(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	uint64_t last = store_last_position(&f->s);
	uint64_t from = 1;
	uint64_t expect = 1;
	int pages = 0;
	int rv;

	for (;;) {
		coll_clear(&f->c);
		rv = store_read_all(&f->s, from, 7, 0, NULL, collect, &f->c,
				    &info);
		assert_int_equal(rv, 0);
		assert_true(info.count <= 7);
		assert_int_equal(info.count, f->c.n);
		for (size_t i = 0; i < f->c.n; i++)
			assert_int_equal(f->c.v[i].r.position, expect++);
		assert_int_equal(info.next, expect);
		if (expect <= last) {
			assert_int_equal(info.count, 7);
			assert_false(info.end);
		}
		pages++;
		assert_true(pages < 1000);
		if (info.end)
			break;
		from = info.next;
	}
	assert_int_equal(expect, last + 1);
}

static void global_read_past_the_end_is_empty(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	uint64_t last = store_last_position(&f->s);
	int rv;

	coll_clear(&f->c);
	rv = store_read_all(&f->s, last + 1, 10, 0, NULL, collect, &f->c,
			    &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 0);
	assert_int_equal(f->c.n, 0);
	assert_true(info.end);
	assert_int_equal(info.next, last + 1);
	rv = store_read_all(&f->s, last + 1000, 10, 5, NULL, collect, &f->c,
			    &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 0);
	assert_true(info.end);
	/* The last record alone. */
	rv = store_read_all(&f->s, last, 10, 0, NULL, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 1);
	assert_int_equal(f->c.v[0].r.position, last);
	assert_true(info.end);
}

/* Reads with @flt in one go and compares to the unfiltered read filtered
 * here; returns the number of matches. */
static size_t check_filter(struct fx *f, const struct store_filter *flt)
{
	struct coll all = { 0 };
	struct store_read_info info;
	size_t want = 0;
	size_t i;
	size_t k = 0;
	int rv;

	read_everything(f, &all);
	coll_clear(&f->c);
	rv = store_read_all(&f->s, 1, UINT32_MAX, 0, flt, collect, &f->c,
			    &info);
	assert_int_equal(rv, 0);
	assert_true(info.end);
	for (i = 0; i < all.n; i++) {
		if (!filter_matches(flt, &all.v[i].r))
			continue;
		want++;
		assert_true(k < f->c.n);
		assert_int_equal(f->c.v[k].r.position, all.v[i].r.position);
		k++;
	}
	assert_int_equal(f->c.n, want);
	assert_int_equal(info.count, want);
	coll_free(&all);
	return want;
}

static void global_read_filters_by_stream_prefix(void **state)
{
	struct fx *f = *state;
	struct store_filter flt;
	size_t i;

	flt = mkfilter("order-", NULL, NULL);
	assert_true(check_filter(f, &flt) > 0);
	for (i = 0; i < f->c.n; i++)
		assert_memory_equal(f->c.v[i].r.stream, "order-", 6);
	/* "order" also matches orders-1, ordering and order. */
	flt = mkfilter("order", NULL, NULL);
	assert_true(check_filter(f, &flt) > 0);
	{
		bool saw_ordering = false;

		for (i = 0; i < f->c.n; i++)
			if (strcmp(f->c.v[i].stream, "ordering") == 0)
				saw_ordering = true;
		assert_true(saw_ordering);
	}
	flt = mkfilter("nope", NULL, NULL);
	assert_int_equal(check_filter(f, &flt), 0);
	/* A prefix equal to a whole name matches that name. */
	flt = mkfilter("user-1", NULL, NULL);
	assert_true(check_filter(f, &flt) > 0);
}

static void global_read_filters_by_category(void **state)
{
	struct fx *f = *state;
	struct store_filter flt;
	size_t i;

	flt = mkfilter(NULL, "order", NULL);
	assert_true(check_filter(f, &flt) > 0);
	/* Not orders-1, ordering (no dash) or order (no dash). */
	for (i = 0; i < f->c.n; i++)
		assert_true(strcmp(f->c.v[i].stream, "order-1") == 0 ||
			    strcmp(f->c.v[i].stream, "order-2") == 0);
	flt = mkfilter(NULL, "user", NULL);
	assert_true(check_filter(f, &flt) > 0);
	flt = mkfilter(NULL, "orde", NULL);
	assert_int_equal(check_filter(f, &flt), 0);
	flt = mkfilter(NULL, "ordering", NULL);
	assert_int_equal(check_filter(f, &flt), 0);
}

static void global_read_filters_by_type(void **state)
{
	struct fx *f = *state;
	struct store_filter flt;
	size_t i;

	flt = mkfilter(NULL, NULL, "Created");
	assert_true(check_filter(f, &flt) > 0);
	for (i = 0; i < f->c.n; i++)
		assert_string_equal(f->c.v[i].type, "Created");
	flt = mkfilter(NULL, NULL, "CreatedX");
	assert_true(check_filter(f, &flt) > 0);
	flt = mkfilter(NULL, NULL, "Create");
	assert_int_equal(check_filter(f, &flt), 0);
}

static void global_read_combines_filters(void **state)
{
	struct fx *f = *state;
	struct store_filter flt;

	flt = mkfilter(NULL, "order", "Shipped");
	assert_true(check_filter(f, &flt) > 0);
	for (size_t i = 0; i < f->c.n; i++)
		assert_string_equal(f->c.v[i].stream, "order-1");
	flt = mkfilter("user", NULL, "CreatedX");
	assert_true(check_filter(f, &flt) > 0);
	flt = mkfilter("order", "order", "Rare");
	assert_true(check_filter(f, &flt) > 0);
	flt = mkfilter("user", "order", NULL);
	assert_int_equal(check_filter(f, &flt), 0);
}

/* Pages through the log with @flt, @max_count and @max_scan, resuming from
 * info.next each time, and checks that the pages hold exactly the matching
 * records, each once, and that no page examined more than @max_scan. */
static void page_through(struct fx *f, const struct coll *all,
			 const struct store_filter *flt, uint32_t max_count,
			 uint64_t max_scan)
{
	struct store_read_info info;
	uint64_t from = 0;
	size_t k = 0;
	size_t i;
	int pages = 0;
	int rv;

	for (;;) {
		uint64_t start = from == 0 ? 1 : from;

		coll_clear(&f->c);
		rv = store_read_all(&f->s, from, max_count, max_scan, flt,
				    collect, &f->c, &info);
		assert_int_equal(rv, 0);
		assert_int_equal(info.count, f->c.n);
		assert_true(info.count <= max_count);
		for (i = 0; i < f->c.n; i++) {
			const struct store_record *r = &f->c.v[i].r;

			assert_true(filter_matches(flt, r));
			assert_true(r->position >= start);
			if (max_scan > 0)
				assert_true(r->position < start + max_scan);
			/* The next match in the full log. */
			while (k < all->n && !filter_matches(flt, &all->v[k].r))
				k++;
			if (k >= all->n)
				fail_msg(
					"record %llu returned twice or "
					"unexpected",
					(unsigned long long)r->position);
			assert_int_equal(r->position, all->v[k].r.position);
			k++;
		}
		if (max_scan > 0)
			assert_true(info.next <= start + max_scan);
		if (info.end)
			break;
		/* Progress: every page moves on. */
		assert_true(info.next > start || f->c.n > 0);
		assert_true(info.next >= start);
		from = info.next;
		pages++;
		if (pages > 10000)
			fail_msg("no end after %d pages", pages);
	}
	/* Nothing matching was skipped. */
	while (k < all->n && !filter_matches(flt, &all->v[k].r))
		k++;
	assert_int_equal(k, all->n);
	/* And at the end, nothing more. */
	coll_clear(&f->c);
	rv = store_read_all(&f->s, info.next, max_count, max_scan, flt, collect,
			    &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 0);
}

static void global_read_max_scan_bounds_work_and_next_resumes(void **state)
{
	struct fx *f = *state;
	struct coll all = { 0 };
	struct store_filter flts[6];
	static const uint32_t counts[] = { 1, 3, 100 };
	static const uint64_t scans[] = { 0, 1, 2, 5, 17 };
	size_t a;
	size_t b;
	size_t c;

	flts[0] = mkfilter(NULL, NULL, NULL);
	flts[1] = mkfilter(NULL, NULL, "Rare");
	flts[2] = mkfilter(NULL, "order", NULL);
	flts[3] = mkfilter("user", NULL, "CreatedX");
	flts[4] = mkfilter(NULL, NULL, "NoSuchType");
	flts[5] = mkfilter("order-1", NULL, NULL);
	read_everything(f, &all);
	for (a = 0; a < 6; a++)
		for (b = 0; b < sizeof counts / sizeof counts[0]; b++)
			for (c = 0; c < sizeof scans / sizeof scans[0]; c++)
				page_through(f, &all, &flts[a], counts[b],
					     scans[c]);
	/* A NULL filter behaves as an empty one. */
	page_through(f, &all, NULL, 10, 7);
	coll_free(&all);
}

static void global_read_with_sparse_filter_stops_at_max_scan(void **state)
{
	struct fx *f = *state;
	struct store_filter flt = mkfilter(NULL, NULL, "NoSuchType");
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	rv = store_read_all(&f->s, 1, 10, 20, &flt, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.count, 0);
	assert_false(info.end);
	assert_int_equal(info.next, 21);
	rv = store_read_all(&f->s, 21, 10, 20, &flt, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(info.next, 41);
}

static void global_read_stops_when_the_callback_says_so(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	int rv;

	coll_clear(&f->c);
	f->c.stop_after = 4;
	rv = store_read_all(&f->s, 10, 100, 0, NULL, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 4);
	assert_int_equal(info.count, 4);
	assert_int_equal(info.next, 14);
	assert_false(info.end);
}

/* The longest stream name, with neighbours that share all but its last
 * byte or are one byte shorter, reads exactly its own events. */
static void stream_with_the_longest_name_reads_back(void **state)
{
	struct fx *f = *state;
	struct store_read_info info;
	struct store_filter flt;
	char name[256];
	char other[256];
	char shorter[255];
	size_t i;
	int rv;

	memset(name, 'z', 255);
	name[255] = '\0';
	memcpy(other, name, 256);
	other[254] = 'y';
	memcpy(shorter, name, 254);
	shorter[254] = '\0';
	fx_append(f, other, "T", 2);
	fx_append(f, name, "T", 3);
	fx_append(f, shorter, "T", 1);
	fx_append(f, name, "T", 2);
	fx_append(f, other, "T", 1);

	coll_clear(&f->c);
	rv = store_read_stream(&f->s, name, 255, 1, false, 100, collect, &f->c,
			       &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 5);
	for (i = 0; i < 5; i++) {
		assert_int_equal(f->c.v[i].r.version, i + 1);
		assert_int_equal(f->c.v[i].r.stream_len, 255);
		assert_memory_equal(f->c.v[i].stream, name, 255);
	}
	assert_int_equal(f->c.v[0].r.position, 3);
	assert_int_equal(f->c.v[4].r.position, 8);
	coll_clear(&f->c);
	rv = store_read_stream(&f->s, name, 255, STORE_VERSION_HEAD, true, 2,
			       collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 2);
	assert_int_equal(f->c.v[0].r.version, 5);
	assert_int_equal(info.next, 3);

	flt = mkfilter(name, NULL, NULL);
	assert_int_equal(check_filter(f, &flt), 5);
	flt = mkfilter(shorter, NULL, NULL);
	/* Every name here starts with 254 bytes of z. */
	assert_int_equal(check_filter(f, &flt), 9);
}

/* ------------------------------------------------------------------------
 * Record fields
 * ------------------------------------------------------------------------ */

static void assert_record_is(const struct store_record *r,
			     const struct store_txn *t, uint32_t part,
			     uint32_t ev, uint64_t version, uint64_t position)
{
	const struct store_part *p = &t->parts[part];
	const struct store_event *e = &p->events[ev];

	assert_int_equal(r->position, position);
	assert_int_equal(r->version, version);
	assert_int_equal(r->stream_len, p->stream_len);
	assert_memory_equal(r->stream, p->stream, p->stream_len);
	assert_memory_equal(r->id, e->id, 16);
	assert_int_equal(r->type_len, e->type_len);
	assert_memory_equal(r->type, e->type, e->type_len);
	assert_int_equal(r->schema_version, e->schema_version);
	assert_int_equal(r->event_time_us, e->event_time_us);
	assert_int_equal(r->commit_time_us, t->commit_time_us);
	assert_int_equal(r->has_client, t->has_client);
	if (t->has_client) {
		assert_memory_equal(r->client_id, t->client_id, 16);
		assert_int_equal(r->client_seq, t->client_seq);
	} else {
		static const uint8_t zero[16];

		assert_memory_equal(r->client_id, zero, 16);
		assert_int_equal(r->client_seq, 0);
	}
	assert_int_equal(r->data_len, e->data_len);
	if (e->data_len > 0)
		assert_memory_equal(r->data, e->data, e->data_len);
	assert_int_equal(r->metadata_len, e->metadata_len);
	if (e->metadata_len > 0)
		assert_memory_equal(r->metadata, e->metadata, e->metadata_len);
}

static void records_carry_every_appended_field(void **state)
{
	struct fx *f = *state;
	const char *const streams[] = { "rec-a", "rec-\xc3\xa9", NULL };
	static const char meta[] = "{\"correlationId\":\"abc\"}";
	static const uint8_t bin[] = { 0, 1, 2, 0xff, 0, 0x80 };
	struct tu_txn *t;
	struct tu_txn *u;
	struct tu_txn *txns[2];
	struct store_read_info info;
	uint32_t i;
	int rv;

	fx_append(f, "before", "T", 2);
	t = tu_txn_make(streams, tu_any(), 3, 10, 42);
	tu_txn_client(t, 0x9c, 12345678901ull);
	t->txn.client_id[15] = 0x01;
	t->txn.commit_time_us = 1712345678901234;
	for (i = 0; i < 6; i++) {
		struct store_event *e = &t->events[i];

		e->type = (i % 2) ? "Deposited" : "Withdrawn\xe2\x82\xac";
		e->type_len = (uint32_t)strlen(e->type);
		e->schema_version = (uint16_t)(i * 1000);
		e->event_time_us =
			i == 5 ? -5 : (int64_t)(1600000000000000 + i);
		if (i % 3 == 0) {
			e->metadata = meta;
			e->metadata_len = (uint32_t)strlen(meta);
		}
		if (i == 2) {
			e->data = bin;
			e->data_len = sizeof bin;
		}
		if (i == 4) {
			e->data = NULL;
			e->data_len = 0;
		}
	}
	/* Without a client and with no optional field. */
	u = tu_txn_make(streams, tu_any(), 1, 0, 43);
	txns[0] = t;
	txns[1] = u;
	f->index++;
	tu_apply(&f->s, f->index, &f->r, txns, 2);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(f->r.txns[1].outcome, STORE_COMMITTED);

	/* Through the global log: positions 3..8 then 9, 10. */
	coll_clear(&f->c);
	rv = store_read_all(&f->s, 3, 100, 0, NULL, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 8);
	for (i = 0; i < 6; i++)
		assert_record_is(&f->c.v[i].r, &t->txn, i / 3, i % 3, i % 3 + 1,
				 3 + i);
	assert_record_is(&f->c.v[6].r, &u->txn, 0, 0, 4, 9);
	assert_record_is(&f->c.v[7].r, &u->txn, 1, 0, 4, 10);

	/* Through the stream, both ways. */
	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "rec-\xc3\xa9", 6, 1, false, 100, collect,
			       &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 4);
	for (i = 0; i < 3; i++)
		assert_record_is(&f->c.v[i].r, &t->txn, 1, i, i + 1, 6 + i);
	assert_record_is(&f->c.v[3].r, &u->txn, 1, 0, 4, 10);
	coll_clear(&f->c);
	rv = store_read_stream(&f->s, "rec-a", 5, STORE_VERSION_HEAD, true, 100,
			       collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 4);
	assert_record_is(&f->c.v[0].r, &u->txn, 0, 0, 4, 9);
	for (i = 1; i < 4; i++)
		assert_record_is(&f->c.v[i].r, &t->txn, 0, 3 - i, 4 - i, 6 - i);

	/* The same after a reopen. */
	store_close(&f->s);
	tu_open(&f->s, f->dir);
	coll_clear(&f->c);
	rv = store_read_all(&f->s, 3, 6, 0, NULL, collect, &f->c, &info);
	assert_int_equal(rv, 0);
	assert_int_equal(f->c.n, 6);
	for (i = 0; i < 6; i++)
		assert_record_is(&f->c.v[i].r, &t->txn, i / 3, i % 3, i % 3 + 1,
				 3 + i);
	tu_txn_free(t);
	tu_txn_free(u);
}

/* ------------------------------------------------------------------------
 * Listing streams and categories
 * ------------------------------------------------------------------------ */

struct names {
	char v[32][STORE_STREAM_NAME_MAX + 1];
	uint64_t version[32];
	unsigned n;
};

static bool name_visit(void *arg, const char *name, size_t len,
		       const struct store_head *h)
{
	struct names *ns = arg;

	assert_true(ns->n < 32);
	memcpy(ns->v[ns->n], name, len);
	ns->v[ns->n][len] = '\0';
	ns->version[ns->n++] = h->version;
	return true;
}

static bool category_visit(void *arg, const char *name, size_t len)
{
	return name_visit(arg, name, len, &(struct store_head){ 0, 0 });
}

/* Streams named so that categories and dash-less names interleave. */
static void fx_append_names(struct fx *f)
{
	static const char *const names[] = {
		"b-2",   "a",   "a-1", "a-2", "ab-1",
		"a.b-1", "b-1", "c",   "-x",  "a-1",
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		fx_append(f, names[i], "T", 1);
}

static void streams_list_in_name_order_by_prefix_and_after(void **state)
{
	struct fx *f = *state;
	struct names ns;
	bool more;

	fx_append_names(f);
	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_streams(&f->s, "", 0, "", 0, 100,
					    name_visit, &ns, &more),
			 0);
	assert_false(more);
	assert_int_equal(ns.n, 9);
	assert_string_equal(ns.v[0], "-x");
	assert_string_equal(ns.v[1], "a");
	assert_string_equal(ns.v[2], "a-1");
	assert_int_equal(ns.version[2], 2);
	assert_string_equal(ns.v[8], "c");

	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_streams(&f->s, "a-", 2, "", 0, 100,
					    name_visit, &ns, &more),
			 0);
	assert_int_equal(ns.n, 2);
	assert_string_equal(ns.v[1], "a-2");

	/* Paging: after the last name of a page, limit 1. */
	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_streams(&f->s, "a", 1, "a-1", 3, 1,
					    name_visit, &ns, &more),
			 0);
	assert_int_equal(ns.n, 1);
	assert_string_equal(ns.v[0], "a-2");
	assert_true(more);

	/* An @after before the prefix starts at the prefix. */
	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_streams(&f->s, "b-", 2, "a", 1, 100,
					    name_visit, &ns, &more),
			 0);
	assert_int_equal(ns.n, 2);
	assert_string_equal(ns.v[0], "b-1");
}

static void categories_list_each_once_in_order(void **state)
{
	struct fx *f = *state;
	struct names ns;
	bool more;

	fx_append_names(f);
	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_categories(&f->s, "", 0, 100,
					       category_visit, &ns, &more),
			 0);
	assert_false(more);
	/* "-x" has an empty category and "a", "c" none. */
	assert_int_equal(ns.n, 4);
	assert_string_equal(ns.v[0], "a");
	assert_string_equal(ns.v[1], "a.b");
	assert_string_equal(ns.v[2], "ab");
	assert_string_equal(ns.v[3], "b");

	memset(&ns, 0, sizeof ns);
	assert_int_equal(store_list_categories(&f->s, "a", 1, 2, category_visit,
					       &ns, &more),
			 0);
	assert_int_equal(ns.n, 2);
	assert_string_equal(ns.v[0], "a.b");
	assert_string_equal(ns.v[1], "ab");
	assert_true(more);
}

#define T_ACC(name) \
	cmocka_unit_test_setup_teardown(name, fx_setup_acc, fx_teardown)
#define T_MIX(name) \
	cmocka_unit_test_setup_teardown(name, fx_setup_mix, fx_teardown)
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T_ACC(stream_reads_forward_in_pages),
		T_ACC(stream_read_forward_from_zero_starts_at_one),
		T_ACC(stream_read_forward_page_ending_at_the_head),
		T_ACC(stream_read_forward_past_the_end_is_empty),
		T_ACC(stream_reads_backward_in_pages_from_the_head),
		T_ACC(stream_read_backward_page_reaching_the_start),
		T_ACC(stream_read_backward_from_past_the_head_starts_at_the_head),
		T_ACC(unknown_stream_reads_as_empty),
		T(empty_store_reads_as_empty),
		T_ACC(stream_read_excludes_streams_sharing_a_prefix),
		T_ACC(stream_read_stops_when_the_callback_says_so),
		T_MIX(global_read_from_0_or_1_returns_everything_in_order),
		T_MIX(global_read_pages_by_max_count),
		T_MIX(global_read_past_the_end_is_empty),
		T_MIX(global_read_filters_by_stream_prefix),
		T_MIX(global_read_filters_by_category),
		T_MIX(global_read_filters_by_type),
		T_MIX(global_read_combines_filters),
		T_MIX(global_read_max_scan_bounds_work_and_next_resumes),
		T_MIX(global_read_with_sparse_filter_stops_at_max_scan),
		T_MIX(global_read_stops_when_the_callback_says_so),
		T(stream_with_the_longest_name_reads_back),
		T(records_carry_every_appended_field),
		T(streams_list_in_name_order_by_prefix_and_after),
		T(categories_list_each_once_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
