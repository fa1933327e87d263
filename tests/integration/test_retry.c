/* Idempotent retries across a leader's death: an append with an explicit
 * key (client id, sequence) commits; the leader is killed with SIGKILL;
 * the same append (same key, same event ids) sent again through the new
 * leader returns the original positions flagged duplicate, from the
 * client that sent it first and from a fresh client alike, and the stream
 * holds its events once on every node. A later sequence appends normally,
 * and a sequence below the writer's high-water mark that never committed
 * is rejected as stale, never reported as success. A second test kills
 * the leader right after an asynchronous append was sent, several times:
 * the append succeeds (libcairn retries it), a retry is a duplicate with
 * the same result, and every event is in the stream once. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 21800

#define STREAM "payment-42"

/* Leader kills with an append in flight. */
#define ROUNDS 4

struct batch {
	uint8_t ids[2][16];
	char data[2][32];
	struct cairn_event_in ev[2];
	struct cairn_append_part part;
	struct cairn_append_key key;
};

static void batch_make(struct batch *b, const uint8_t client_id[16],
		       uint64_t seq, int expect_kind, uint64_t expect_version)
{
	memset(b, 0, sizeof *b);
	for (unsigned i = 0; i < 2; i++) {
		cairn_uuid(b->ids[i]);
		snprintf(b->data[i], sizeof b->data[i],
			 "{\"seq\":%" PRIu64 ",\"i\":%u}", seq, i);
		b->ev[i].id = b->ids[i];
		b->ev[i].type = "PaymentCaptured";
		b->ev[i].data = b->data[i];
		b->ev[i].data_len = strlen(b->data[i]);
	}
	b->part = (struct cairn_append_part){ .stream = STREAM,
					      .expect_kind = expect_kind,
					      .expect_version = expect_version,
					      .events = b->ev,
					      .n_events = 2 };
	b->key.has_key = true;
	memcpy(b->key.client_id, client_id, 16);
	b->key.seq = seq;
}

static void append_batch(cairn_client *cl, struct batch *b,
			 struct cairn_part_result *r, bool *dup,
			 const char *what)
{
	struct cairn_error err;
	int rv;

	memset(&err, 0, sizeof err);
	*dup = false;
	rv = cairn_append(cl, &b->part, 1, &b->key, r, dup, &err);
	if (rv != 0)
		fail_msg("%s: %s: %s", what, cairn_strerror(rv), err.message);
}

/* Checks that node @k holds exactly the events of @b then @b2 in STREAM,
 * each once, at the positions of @r, @r2. */
static void check_stream_on(struct cluster *c, unsigned k,
			    const struct batch *b,
			    const struct cairn_part_result *r,
			    const struct batch *b2,
			    const struct cairn_part_result *r2)
{
	struct cairn_read_options ro = { .consistency =
						 CAIRN_CONSISTENCY_AT_LEAST,
					 .min_position = r2->last_position };
	struct cairn_page page;
	struct cairn_error err;
	cairn_client *cl = cluster_client(c, (int)k, true, 0);
	int rv;

	memset(&page, 0, sizeof page);
	rv = cairn_read_stream(cl, STREAM, 1, false, &ro, &page, &err);
	if (rv != 0)
		fail_msg("read on node %u: %s: %s", c->nodes[k].id,
			 cairn_strerror(rv), err.message);
	if (page.n != 4)
		fail_msg(
			"node %u holds %zu events in %s, expected 4 (two "
			"batches of two, each once)",
			c->nodes[k].id, page.n, STREAM);
	for (unsigned i = 0; i < 4; i++) {
		const struct cairn_event *e = &page.events[i];
		const struct batch *x = i < 2 ? b : b2;
		const struct cairn_part_result *xr = i < 2 ? r : r2;

		assert_int_equal(e->version, i + 1);
		assert_int_equal(e->position, xr->first_position + i % 2);
		assert_memory_equal(e->id, x->ids[i % 2], 16);
		assert_true(e->has_client);
		assert_memory_equal(e->client_id, x->key.client_id, 16);
		assert_int_equal(e->client_seq, x->key.seq);
	}
	cairn_page_free(&page);
	cairn_close(cl);
}

static void retry_after_leader_kill_returns_original_result(void **state)
{
	struct cluster *c = *state;
	uint8_t writer[16];
	struct batch b, b2, stale;
	struct cairn_part_result r, again, r2;
	struct cairn_error err;
	bool dup;
	unsigned leader, next;
	cairn_client *cl, *fresh;
	int rv;

	cluster_start(c, "retry", 3, PORT_BASE);
	leader = cluster_wait_leader(c, 0);
	cairn_uuid(writer);

	cl = cluster_client(c, -1, false, 30000);
	batch_make(&b, writer, 5, CAIRN_EXPECT_NO_STREAM, 0);
	append_batch(cl, &b, &r, &dup, "first append");
	assert_false(dup);
	assert_int_equal(r.first_version, 1);
	assert_int_equal(r.last_version, 2);
	assert_int_equal(r.last_position, r.first_position + 1);

	printf("killing the leader, node %u\n", c->nodes[leader].id);
	cluster_node_kill(c, leader);
	next = cluster_wait_leader(c, 0);
	assert_int_not_equal(next, leader);

	/* The same client, whose connection went to the dead leader. The
	 * expected version NO_STREAM would now conflict: dedup comes first. */
	append_batch(cl, &b, &again, &dup, "retry on the same client");
	assert_true(dup);
	assert_memory_equal(&again, &r, sizeof r);

	/* A fresh client, as a restarted writer process would be. */
	fresh = cluster_client(c, -1, false, 30000);
	append_batch(fresh, &b, &again, &dup, "retry on a fresh client");
	assert_true(dup);
	assert_memory_equal(&again, &r, sizeof r);

	/* A later sequence appends anew, after the first batch. */
	batch_make(&b2, writer, 10, CAIRN_EXPECT_EXACT, 2);
	append_batch(fresh, &b2, &r2, &dup, "next sequence");
	assert_false(dup);
	assert_int_equal(r2.first_version, 3);
	assert_int_equal(r2.last_version, 4);
	assert_int_equal(r2.first_position, r.last_position + 1);

	/* The first batch is still a duplicate, now below the high-water
	 * mark. */
	append_batch(fresh, &b, &again, &dup,
		     "retry below the high-water mark");
	assert_true(dup);
	assert_memory_equal(&again, &r, sizeof r);

	/* Sequence 7 never committed and is below 10: stale, not success. */
	batch_make(&stale, writer, 7, CAIRN_EXPECT_ANY, 0);
	memset(&err, 0, sizeof err);
	rv = cairn_append(fresh, &stale.part, 1, &stale.key, &again, &dup,
			  &err);
	assert_int_equal(rv, CAIRN_ESTALE_SEQUENCE);
	assert_int_equal(err.code, CAIRN_ESTALE_SEQUENCE);
	assert_int_equal(err.actual_version, 10);
	cairn_close(fresh);
	cairn_close(cl);

	/* The killed node comes back and catches up: every node holds each
	 * batch once. */
	cluster_node_start(c, leader);
	cluster_wait_leader(c, 0);
	for (unsigned k = 0; k < c->n; k++)
		check_stream_on(c, k, &b, &r, &b2, &r2);

	cluster_stop_clean(c);
	cluster_passed(c);
}

/* ---- an append in flight when the leader dies ---- */

struct inflight {
	pthread_mutex_t mu;
	bool done;
	int status;
	bool duplicate;
	struct cairn_part_result result;
	char message[512];
};

static void inflight_done(void *arg, int status,
			  const struct cairn_part_result *results,
			  size_t n_parts, bool duplicate,
			  const struct cairn_error *err)
{
	struct inflight *f = arg;

	pthread_mutex_lock(&f->mu);
	f->status = status;
	f->duplicate = duplicate;
	if (status == 0 && n_parts == 1)
		f->result = results[0];
	if (err != NULL)
		snprintf(f->message, sizeof f->message, "%s", err->message);
	f->done = true;
	pthread_mutex_unlock(&f->mu);
}

/* Rounds of: an asynchronous append with a key, the leader killed with
 * SIGKILL right after it was sent (before, while or after it commits),
 * the append's outcome (libcairn retries it with the same key: it must
 * succeed), the same append again through a fresh client (a duplicate
 * with the same result), and the node started again. The stream ends
 * with each round's two events exactly once, in order. */
static void append_in_flight_at_leader_kill_commits_once(void **state)
{
	struct cluster *c = *state;
	static struct inflight f;
	static struct batch b[ROUNDS];
	struct cairn_part_result results[ROUNDS];
	uint8_t writer[16];
	cairn_client *cl;
	unsigned leader;

	cluster_start(c, "retry-inflight", 3, PORT_BASE + CLUSTER_PORTS);
	leader = cluster_wait_leader(c, 0);
	cairn_uuid(writer);
	pthread_mutex_init(&f.mu, NULL);
	cl = cluster_client(c, -1, false, 60000);

	for (unsigned round = 0; round < ROUNDS; round++) {
		uint64_t deadline = cluster_now_ms() + 90000;
		struct cairn_part_result again;
		cairn_client *fresh;
		bool dup, done;
		int rv;

		batch_make(&b[round], writer, round + 1,
			   round == 0 ? CAIRN_EXPECT_NO_STREAM
				      : CAIRN_EXPECT_EXACT,
			   2 * round);
		memset(&f.result, 0, sizeof f.result);
		f.done = false;
		rv = cairn_append_async(cl, &b[round].part, 1, &b[round].key,
					inflight_done, &f);
		if (rv != 0)
			fail_msg("append_async: %s", cairn_strerror(rv));
		/* Vary the moment: from before the request reaches the
		 * leader to about when it commits. Not a correctness
		 * assumption: every moment must give the same outcome. */
		if (round > 0) {
			struct timespec ts = { 0, 500000L << (round - 1) };

			nanosleep(&ts, NULL);
		}
		cluster_node_kill(c, leader);
		do {
			cluster_sleep_ms(10);
			pthread_mutex_lock(&f.mu);
			done = f.done;
			pthread_mutex_unlock(&f.mu);
		} while (!done && cluster_now_ms() < deadline);
		if (!done)
			fail_msg(
				"round %u: the append in flight never "
				"completed",
				round);
		if (f.status != 0)
			fail_msg(
				"round %u: the append in flight when the "
				"leader died failed: %s: %s (libcairn retries "
				"it with its key)",
				round, cairn_strerror(f.status), f.message);
		printf("round %u: positions %" PRIu64 "..%" PRIu64 "%s\n",
		       round, f.result.first_position, f.result.last_position,
		       f.duplicate ? " (answered as a duplicate)" : "");
		assert_int_equal(f.result.first_version, 2 * round + 1);
		assert_int_equal(f.result.last_version, 2 * round + 2);
		results[round] = f.result;

		fresh = cluster_client(c, -1, false, 60000);
		append_batch(fresh, &b[round], &again, &dup,
			     "explicit retry after the kill");
		assert_true(dup);
		assert_memory_equal(&again, &f.result, sizeof again);
		cairn_close(fresh);

		cluster_node_start(c, leader);
		leader = cluster_wait_leader(c, 0);
	}
	cairn_close(cl);

	for (unsigned k = 0; k < c->n; k++) {
		struct cairn_read_options ro = {
			.consistency = CAIRN_CONSISTENCY_AT_LEAST,
			.min_position = results[ROUNDS - 1].last_position,
		};
		struct cairn_page page;
		struct cairn_error err;
		cairn_client *one = cluster_client(c, (int)k, true, 0);
		int rv;

		memset(&page, 0, sizeof page);
		rv = cairn_read_stream(one, STREAM, 1, false, &ro, &page, &err);
		if (rv != 0)
			fail_msg("read on node %u: %s: %s", c->nodes[k].id,
				 cairn_strerror(rv), err.message);
		assert_int_equal(page.n, 2 * ROUNDS);
		for (size_t i = 0; i < page.n; i++) {
			const struct cairn_event *e = &page.events[i];

			assert_int_equal(e->version, i + 1);
			assert_int_equal(e->position,
					 results[i / 2].first_position + i % 2);
			assert_memory_equal(e->id, b[i / 2].ids[i % 2], 16);
		}
		cairn_page_free(&page);
		cairn_close(one);
	}
	cluster_stop_clean(c);
	cluster_passed(c);
}

static int setup(void **state)
{
	static struct cluster c;

	memset(&c, 0, sizeof c);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	cluster_teardown(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			retry_after_leader_kill_returns_original_result, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			append_in_flight_at_leader_kill_commits_once, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
