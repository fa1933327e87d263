/* State operations carried by transactions: consumer checkpoints (set,
 * compare-and-set) and aggregate snapshots (put at a version no later than
 * the stream's head, newest at or below a version read back). They commit
 * with the transaction's events or not at all, take no positions, are
 * deduplicated like events, survive a reopen, and their encoding is
 * checked like every other byte of a transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include "store.h"

struct fx {
	char *dir;
	struct store s;
	struct store_results r;
	uint64_t index;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = tu_tempdir("ops");
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

static struct store_op op_set(const char *name, uint64_t value)
{
	struct store_op op = { STORE_OP_CHECKPOINT_SET,
			       name,
			       (uint32_t)strlen(name),
			       0,
			       value,
			       NULL,
			       0 };
	return op;
}

static struct store_op op_cas(const char *name, uint64_t expected,
			      uint64_t value)
{
	struct store_op op = { STORE_OP_CHECKPOINT_CAS,
			       name,
			       (uint32_t)strlen(name),
			       expected,
			       value,
			       NULL,
			       0 };
	return op;
}

static struct store_op op_snap(const char *stream, uint64_t version,
			       const char *data)
{
	struct store_op op = { STORE_OP_SNAPSHOT_PUT,
			       stream,
			       (uint32_t)strlen(stream),
			       0,
			       version,
			       data,
			       (uint32_t)strlen(data) };
	return op;
}

/* A transaction of @n events on @stream (NULL: none) plus @ops. */
static struct tu_txn *txn_with(const char *stream, uint32_t n,
			       const struct store_op *ops, uint32_t n_ops)
{
	const char *const streams[] = { stream ? stream : "unused", NULL };
	struct tu_txn *t = tu_txn_make(streams, tu_any(), n ? n : 1, 2, 7);

	if (stream == NULL)
		t->txn.n_parts = 0;
	t->txn.n_ops = n_ops;
	t->txn.ops = ops;
	return t;
}

/* Applies @t alone in the next entry; returns its outcome. */
static uint8_t apply1(struct fx *f, struct tu_txn *t)
{
	f->index++;
	tu_apply(&f->s, f->index, &f->r, &t, 1);
	assert_int_equal(f->r.n, 1);
	return f->r.txns[0].outcome;
}

static uint64_t checkpoint(struct fx *f, const char *name, bool *found)
{
	uint64_t v = 99;

	assert_int_equal(
		store_checkpoint_get(&f->s, name, strlen(name), &v, found), 0);
	return v;
}

static void checkpoint_set_then_read_back_and_overwrite(void **state)
{
	struct fx *f = *state;
	struct store_op ops[1] = { op_set("billing", 41) };
	struct tu_txn *t = txn_with(NULL, 0, ops, 1);
	bool found;

	assert_int_equal(checkpoint(f, "billing", &found), 0);
	assert_false(found);
	assert_int_equal(apply1(f, t), STORE_COMMITTED);
	assert_int_equal(checkpoint(f, "billing", &found), 41);
	assert_true(found);
	ops[0].value = 7; /* a set may move back: it is the caller's */
	assert_int_equal(apply1(f, t), STORE_COMMITTED);
	assert_int_equal(checkpoint(f, "billing", &found), 7);
	/* No positions were taken. */
	assert_int_equal(store_last_position(&f->s), 0);
	tu_txn_free(t);
}

static void checkpoint_cas_fails_whole_transaction_with_actual(void **state)
{
	struct fx *f = *state;
	struct store_op ops[2] = { op_set("a", 1), op_cas("b", 0, 10) };
	struct tu_txn *t = txn_with(NULL, 0, ops, 2);
	struct tu_txn *u;
	struct store_op bad[2] = { op_set("a", 2), op_cas("b", 5, 20) };
	struct store_head h;
	bool found;

	/* Absent is expected 0. */
	assert_int_equal(apply1(f, t), STORE_COMMITTED);
	assert_int_equal(checkpoint(f, "b", &found), 10);

	/* Events and the other op go nowhere when the CAS fails. */
	u = txn_with("acct-1", 3, bad, 2);
	assert_int_equal(apply1(f, u), STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(f->r.txns[0].conflict_part, 1 + 1);
	assert_int_equal(f->r.txns[0].actual_version, 10);
	assert_int_equal(checkpoint(f, "a", &found), 1);
	assert_int_equal(checkpoint(f, "b", &found), 10);
	assert_int_equal(store_head(&f->s, "acct-1", 6, &h), 0);
	assert_int_equal(h.version, 0);
	assert_int_equal(store_last_position(&f->s), 0);

	/* With the right expected value, everything commits. */
	bad[1].expected = 10;
	assert_int_equal(apply1(f, u), STORE_COMMITTED);
	assert_int_equal(checkpoint(f, "a", &found), 2);
	assert_int_equal(checkpoint(f, "b", &found), 20);
	assert_int_equal(store_last_position(&f->s), 3);
	tu_txn_free(t);
	tu_txn_free(u);
}

static void later_transactions_of_an_entry_see_earlier_checkpoints(void **state)
{
	struct fx *f = *state;
	struct store_op o1[1] = { op_cas("c", 0, 5) };
	struct store_op o2[1] = { op_cas("c", 5, 6) };
	struct store_op o3[1] = { op_cas("c", 5, 7) }; /* stale by then */
	struct tu_txn *t[3] = { txn_with(NULL, 0, o1, 1),
				txn_with(NULL, 0, o2, 1),
				txn_with(NULL, 0, o3, 1) };
	bool found;

	f->index++;
	tu_apply(&f->s, f->index, &f->r, t, 3);
	assert_int_equal(f->r.n, 3);
	assert_int_equal(f->r.txns[0].outcome, STORE_COMMITTED);
	assert_int_equal(f->r.txns[1].outcome, STORE_COMMITTED);
	assert_int_equal(f->r.txns[2].outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(f->r.txns[2].actual_version, 6);
	assert_int_equal(checkpoint(f, "c", &found), 6);
	for (int i = 0; i < 3; i++)
		tu_txn_free(t[i]);
}

static void snapshot_put_at_or_below_head_and_read_newest(void **state)
{
	struct fx *f = *state;
	struct store_op s2[1] = { op_snap("cart-1", 2, "{\"v\":2}") };
	struct store_op s9[1] = { op_snap("cart-1", 9, "{\"v\":9}") };
	struct store_op s5[1] = { op_snap("cart-1", 5, "{\"v\":5}") };
	struct tu_txn *ev = txn_with("cart-1", 3, NULL, 0);
	struct tu_txn *t2 = txn_with(NULL, 0, s2, 1);
	struct tu_txn *t9 = txn_with(NULL, 0, s9, 1);
	struct tu_txn *t5 = txn_with("cart-1", 2, s5, 1);
	uint64_t version;
	size_t len;
	void *data;

	assert_int_equal(apply1(f, ev), STORE_COMMITTED); /* head 3 */
	assert_int_equal(apply1(f, t2), STORE_COMMITTED);
	/* Past the head: refused with the head as the actual version. */
	assert_int_equal(apply1(f, t9), STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(f->r.txns[0].actual_version, 3);
	/* In the same transaction as the events that reach its version. */
	assert_int_equal(apply1(f, t5), STORE_COMMITTED);
	assert_int_equal(store_last_position(&f->s), 5);

	assert_int_equal(
		store_snapshot_get(&f->s, "cart-1", 6, STORE_VERSION_HEAD,
				   &version, &data, &len),
		0);
	assert_int_equal(version, 5);
	assert_int_equal(len, 7);
	assert_memory_equal(data, "{\"v\":5}", 7);
	free(data);
	assert_int_equal(store_snapshot_get(&f->s, "cart-1", 6, 4, &version,
					    &data, &len),
			 0);
	assert_int_equal(version, 2);
	free(data);
	assert_int_equal(store_snapshot_get(&f->s, "cart-1", 6, 1, &version,
					    &data, &len),
			 0);
	assert_int_equal(version, 0);
	assert_null(data);
	/* Another stream sharing the prefix has none. */
	assert_int_equal(
		store_snapshot_get(&f->s, "cart-", 5, STORE_VERSION_HEAD,
				   &version, &data, &len),
		0);
	assert_int_equal(version, 0);
	tu_txn_free(ev);
	tu_txn_free(t2);
	tu_txn_free(t9);
	tu_txn_free(t5);
}

static void ops_only_transaction_is_deduplicated(void **state)
{
	struct fx *f = *state;
	struct store_op ops[1] = { op_cas("d", 0, 1) };
	struct tu_txn *t = txn_with(NULL, 0, ops, 1);
	bool found;

	tu_txn_client(t, 9, 1);
	assert_int_equal(apply1(f, t), STORE_COMMITTED);
	/* The retry would fail its CAS if it were applied again. */
	assert_int_equal(apply1(f, t), STORE_DUPLICATE);
	assert_int_equal(checkpoint(f, "d", &found), 1);
	tu_txn_free(t);
}

static void ops_survive_reopen(void **state)
{
	struct fx *f = *state;
	struct store_op ops[2] = { op_set("e", 77), op_snap("x-1", 1, "s") };
	struct tu_txn *t = txn_with("x-1", 1, ops, 2);
	uint64_t version;
	size_t len;
	void *data;
	bool found;

	assert_int_equal(apply1(f, t), STORE_COMMITTED);
	store_close(&f->s);
	tu_open(&f->s, f->dir);
	assert_int_equal(checkpoint(f, "e", &found), 77);
	assert_int_equal(store_snapshot_get(&f->s, "x-1", 3, STORE_VERSION_HEAD,
					    &version, &data, &len),
			 0);
	assert_int_equal(version, 1);
	free(data);
	tu_txn_free(t);
}

static void codec_round_trips_and_rejects_every_truncation(void **state)
{
	struct store_op ops[3] = { op_set("a", 1), op_cas("b", 2, 3),
				   op_snap("s-1", 4, "snapshot bytes") };
	struct tu_txn *t = txn_with("s-1", 4, ops, 3);
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_txn_view v;
	size_t len = store_txn_encoded_size(&t->txn);
	uint8_t *buf = malloc(len);

	(void)state;
	assert_int_equal(store_txn_validate(&t->txn, errmsg), 0);
	assert_int_equal(store_txn_encode(&t->txn, buf), len);
	store_txn_view_init(&v);
	assert_int_equal(store_txn_decode(buf, len, &v, errmsg), 0);
	assert_int_equal(v.txn.n_ops, 3);
	assert_int_equal(v.txn.ops[1].kind, STORE_OP_CHECKPOINT_CAS);
	assert_int_equal(v.txn.ops[1].expected, 2);
	assert_int_equal(v.txn.ops[1].value, 3);
	assert_int_equal(v.txn.ops[2].data_len, 14);
	assert_memory_equal(v.txn.ops[2].data, "snapshot bytes", 14);
	assert_int_equal(v.txn.n_parts, 1);
	for (size_t n = 0; n < len; n++)
		assert_int_not_equal(store_txn_decode(buf, n, &v, errmsg), 0);

	/* A count of operations the bytes cannot hold: malformed. */
	buf[len - (22 + 1 + 22 + 1 + 22 + 3 + 14) - 4] = 0xff;
	assert_int_equal(store_txn_decode(buf, len, &v, errmsg),
			 STORE_EMALFORMED);
	store_txn_view_close(&v);
	free(buf);
	tu_txn_free(t);
}

static void validation_refuses_bad_operations(void **state)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_op ops[2];
	struct tu_txn *t = txn_with(NULL, 0, ops, 1);
	char *big = malloc(STORE_SNAPSHOT_BYTES_MAX + 2);

	(void)state;
	ops[0] = op_set("", 1);
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_EINVALID_OP);
	ops[0] = op_set("ok", 1);
	ops[0].kind = 9;
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_EINVALID_OP);
	ops[0] = op_snap("s-1", 0, "x"); /* version 0 */
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_EINVALID_OP);
	memset(big, 'x', STORE_SNAPSHOT_BYTES_MAX + 1);
	big[STORE_SNAPSHOT_BYTES_MAX + 1] = '\0';
	ops[0] = op_snap("s-1", 1, big);
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_ESNAPSHOT_TOO_LARGE);
	ops[0] = op_set("same", 1);
	ops[1] = op_cas("same", 1, 2);
	t->txn.n_ops = 2;
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_EINVALID_OP);
	ops[1] = op_snap("same", 1, "x"); /* a stream may share the name */
	assert_int_equal(store_txn_validate(&t->txn, errmsg), 0);
	t->txn.n_ops = STORE_TXN_OPS_MAX + 1;
	assert_int_equal(store_txn_validate(&t->txn, errmsg),
			 STORE_EINVALID_OP);
	t->txn.n_ops = 0; /* no parts and no ops */
	assert_int_equal(store_txn_validate(&t->txn, errmsg), STORE_EEMPTY);
	free(big);
	tu_txn_free(t);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(checkpoint_set_then_read_back_and_overwrite),
		T(checkpoint_cas_fails_whole_transaction_with_actual),
		T(later_transactions_of_an_entry_see_earlier_checkpoints),
		T(snapshot_put_at_or_below_head_and_read_newest),
		T(ops_only_transaction_is_deduplicated),
		T(ops_survive_reopen),
		cmocka_unit_test(
			codec_round_trips_and_rejects_every_truncation),
		cmocka_unit_test(validation_refuses_bad_operations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
