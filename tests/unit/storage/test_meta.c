/* Unit tests of the replicated meta keys (store_apply_meta, store_meta_get,
 * store_meta_list): they share the applied index with append entries, skip
 * at or below it, survive a reopen, stay apart from the store's own meta
 * keys, and reject keys and values past their limits. consensus/ keeps its
 * member table in them. */
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

struct fx {
	char *dir;
	struct store s;
	struct store_results r;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = tu_tempdir("meta");
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

/* Applies one set (value != NULL) or delete at @index; returns skipped. */
static bool apply_one(struct fx *f, uint64_t index, const char *key,
		      const char *value)
{
	struct store_meta_op op = { key, value,
				    value != NULL ? strlen(value) : 0 };
	bool skipped = true;
	int rv;

	rv = store_apply_meta(&f->s, index, &op, 1, &skipped);
	if (rv != 0)
		fail_msg("store_apply_meta: %s", f->s.errmsg);
	return skipped;
}

/* The value of @key as a string, or NULL when absent (static buffer). */
static const char *get(struct fx *f, const char *key)
{
	static char buf[256];
	size_t len;
	bool found;
	int rv;

	rv = store_meta_get(&f->s, key, buf, sizeof buf - 1, &len, &found);
	if (rv != 0)
		fail_msg("store_meta_get: %s", f->s.errmsg);
	if (!found)
		return NULL;
	buf[len] = '\0';
	return buf;
}

struct listing {
	char keys[16][64];
	char values[16][64];
	unsigned n;
	unsigned stop_after; /* 0: never stop */
};

static bool list_cb(void *arg, const char *key, size_t key_len,
		    const void *value, size_t value_len)
{
	struct listing *l = arg;

	assert_true(l->n < 16);
	assert_true(key_len < 64);
	assert_true(value_len < 64);
	memcpy(l->keys[l->n], key, key_len);
	l->keys[l->n][key_len] = '\0';
	memcpy(l->values[l->n], value, value_len);
	l->values[l->n][value_len] = '\0';
	l->n++;
	return l->stop_after == 0 || l->n < l->stop_after;
}

static void list(struct fx *f, const char *prefix, struct listing *l)
{
	int rv = store_meta_list(&f->s, prefix, list_cb, l);

	if (rv != 0)
		fail_msg("store_meta_list: %s", f->s.errmsg);
}

static void meta_set_is_read_back_and_advances_applied_index(void **state)
{
	struct fx *f = *state;

	assert_null(get(f, "member/1"));
	assert_false(apply_one(f, 3, "member/1", "one"));
	assert_string_equal(get(f, "member/1"), "one");
	assert_int_equal(store_applied_index(&f->s), 3);
	assert_int_equal(store_last_position(&f->s), 0);
}

static void meta_at_or_below_applied_index_is_skipped(void **state)
{
	struct fx *f = *state;

	assert_false(apply_one(f, 5, "k", "first"));
	assert_true(apply_one(f, 5, "k", "again"));
	assert_true(apply_one(f, 4, "k", "older"));
	assert_string_equal(get(f, "k"), "first");
	assert_int_equal(store_applied_index(&f->s), 5);
}

static void meta_delete_removes_key(void **state)
{
	struct fx *f = *state;

	apply_one(f, 1, "k", "v");
	assert_false(apply_one(f, 2, "k", NULL));
	assert_null(get(f, "k"));
	assert_int_equal(store_applied_index(&f->s), 2);
}

static void meta_batch_of_several_keys_is_one_index(void **state)
{
	struct fx *f = *state;
	struct store_meta_op ops[3] = {
		{ "a", "1", 1 },
		{ "b", "2", 1 },
		{ "a", "3", 1 }, /* later ops of one batch win */
	};
	bool skipped;

	assert_int_equal(store_apply_meta(&f->s, 7, ops, 3, &skipped), 0);
	assert_false(skipped);
	assert_string_equal(get(f, "a"), "3");
	assert_string_equal(get(f, "b"), "2");
	assert_int_equal(store_applied_index(&f->s), 7);
}

static void meta_without_ops_only_records_applied_index(void **state)
{
	struct fx *f = *state;
	bool skipped;

	assert_int_equal(store_apply_meta(&f->s, 9, NULL, 0, &skipped), 0);
	assert_false(skipped);
	assert_int_equal(store_applied_index(&f->s), 9);
	fx_reopen(f);
	assert_int_equal(store_applied_index(&f->s), 9);
}

static void meta_survives_reopen(void **state)
{
	struct fx *f = *state;

	apply_one(f, 1, "member/1", "a");
	apply_one(f, 2, "member/2", "b");
	fx_reopen(f);
	assert_string_equal(get(f, "member/1"), "a");
	assert_string_equal(get(f, "member/2"), "b");
	assert_int_equal(store_applied_index(&f->s), 2);
	/* Skipping still works after the reopen. */
	assert_true(apply_one(f, 2, "member/2", "c"));
	assert_string_equal(get(f, "member/2"), "b");
}

static void meta_shares_applied_index_with_entries(void **state)
{
	struct fx *f = *state;
	const char *streams[] = { "order-1", NULL };
	struct tu_txn *t = tu_txn_make(streams, tu_any(), 2, 8, 1);

	tu_apply(&f->s, 1, &f->r, &t, 1);
	assert_int_equal(store_last_position(&f->s), 2);
	apply_one(f, 2, "k", "v");
	/* The meta batch keeps the last position. */
	assert_int_equal(store_last_position(&f->s), 2);
	/* An entry at the meta's index is skipped. */
	tu_apply(&f->s, 2, &f->r, &t, 1);
	assert_true(f->r.skipped);
	fx_reopen(f);
	assert_int_equal(store_applied_index(&f->s), 2);
	assert_int_equal(store_last_position(&f->s), 2);
	tu_txn_free(t);
}

static void meta_keys_do_not_collide_with_store_keys(void **state)
{
	struct fx *f = *state;
	struct listing l = { 0 };

	/* Keys named like the store's own meta keys are kept apart. */
	apply_one(f, 4, "applied", "x");
	apply_one(f, 5, "format", "y");
	assert_int_equal(store_applied_index(&f->s), 5);
	fx_reopen(f);
	assert_int_equal(store_applied_index(&f->s), 5);
	assert_string_equal(get(f, "applied"), "x");
	assert_string_equal(get(f, "format"), "y");
	list(f, "", &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.keys[0], "applied");
	assert_string_equal(l.keys[1], "format");
}

static void meta_list_visits_prefix_in_key_order(void **state)
{
	struct fx *f = *state;
	struct listing l = { 0 };

	apply_one(f, 1, "member/00000000000000000002", "two");
	apply_one(f, 2, "member/00000000000000000001", "one");
	apply_one(f, 3, "other", "x");
	apply_one(f, 4, "memberx", "not a member");
	list(f, "member/", &l);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.keys[0], "member/00000000000000000001");
	assert_string_equal(l.values[0], "one");
	assert_string_equal(l.keys[1], "member/00000000000000000002");
	assert_string_equal(l.values[1], "two");

	memset(&l, 0, sizeof l);
	l.stop_after = 1;
	list(f, "member/", &l);
	assert_int_equal(l.n, 1);
}

static void meta_rejects_keys_and_values_past_limits(void **state)
{
	struct fx *f = *state;
	char long_key[STORE_META_KEY_MAX + 2];
	static char big[STORE_META_VALUE_MAX + 1];
	struct store_meta_op op;
	bool skipped;
	size_t len;
	bool found;

	memset(long_key, 'k', sizeof long_key - 1);
	long_key[sizeof long_key - 1] = '\0';
	op = (struct store_meta_op){ long_key, "v", 1 };
	assert_int_equal(store_apply_meta(&f->s, 1, &op, 1, &skipped),
			 STORE_EINVAL);
	op = (struct store_meta_op){ "", "v", 1 };
	assert_int_equal(store_apply_meta(&f->s, 1, &op, 1, &skipped),
			 STORE_EINVAL);
	op = (struct store_meta_op){ "k", big, sizeof big };
	assert_int_equal(store_apply_meta(&f->s, 1, &op, 1, &skipped),
			 STORE_EINVAL);
	/* Nothing was written, not even the applied index. */
	assert_int_equal(store_applied_index(&f->s), 0);

	/* The longest key and value are accepted. */
	long_key[STORE_META_KEY_MAX] = '\0';
	op = (struct store_meta_op){ long_key, big, STORE_META_VALUE_MAX };
	assert_int_equal(store_apply_meta(&f->s, 1, &op, 1, &skipped), 0);
	/* A read into a buffer too small reports the length. */
	assert_int_equal(store_meta_get(&f->s, long_key, big, 10, &len, &found),
			 STORE_EINVAL);
	assert_true(found);
	assert_int_equal(len, STORE_META_VALUE_MAX);
}

static void meta_digest_changes_with_meta_only(void **state)
{
	struct fx *f = *state;
	uint64_t data_before;
	uint64_t meta_before;
	uint64_t data_after;
	uint64_t meta_after;
	const unsigned data = STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP;

	assert_int_equal(store_digest(&f->s, data, &data_before), 0);
	assert_int_equal(store_digest(&f->s, STORE_CF_META, &meta_before), 0);
	apply_one(f, 1, "k", "v");
	assert_int_equal(store_digest(&f->s, data, &data_after), 0);
	assert_int_equal(store_digest(&f->s, STORE_CF_META, &meta_after), 0);
	assert_true(data_before == data_after);
	assert_true(meta_before != meta_after);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(meta_set_is_read_back_and_advances_applied_index),
		T(meta_at_or_below_applied_index_is_skipped),
		T(meta_delete_removes_key),
		T(meta_batch_of_several_keys_is_one_index),
		T(meta_without_ops_only_records_applied_index),
		T(meta_survives_reopen),
		T(meta_shares_applied_index_with_entries),
		T(meta_keys_do_not_collide_with_store_keys),
		T(meta_list_visits_prefix_in_key_order),
		T(meta_rejects_keys_and_values_past_limits),
		T(meta_digest_changes_with_meta_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
