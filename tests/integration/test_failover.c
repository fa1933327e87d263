/* Failover under load: writer threads append continuously with unique
 * payloads, each recording every acknowledged append (stream, version,
 * position, payload).
 *
 * - acknowledged_appends_survive_leader_kill: three rounds in which the
 *   leader (then a follower, then the leader again) is killed with
 *   SIGKILL, the writers carry on through the others, and the killed node
 *   is started again;
 * - acknowledged_appends_survive_whole_cluster_kill: all three nodes are
 *   killed with SIGKILL at once, appends in flight, and started again.
 *
 * Then the writers stop, and every acknowledged append is on every node
 * exactly once at its acknowledged position and version, no payload
 * appears twice (acknowledged or not), every stream's versions are 1, 2,
 * 3, ... in position order, and the three global logs are identical in
 * every field. libcairn retries appends across the leader change with the
 * same key, so every append is expected to succeed within its deadline;
 * any error fails the test (after the logs are checked). */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 21600

#define WRITERS 4
#define STREAMS 4

/* Acknowledged appends to wait for in each phase: before the kill, after
 * it (through the new leader), and after the restart. */
#define ACKS_BEFORE_KILL   60
#define ACKS_AFTER_KILL    60
#define ACKS_AFTER_RESTART 30

/* Longest wait for a phase's appends; an upper bound only. */
#define PHASE_WAIT_MS 120000

/* Deadline of every append, retries included: far above the time an
 * election takes, so an append only fails when the cluster stays without
 * a leader. */
#define APPEND_DEADLINE_MS 30000

struct ack {
	uint32_t n; /* the payload's number */
	uint32_t stream;
	uint64_t version;
	uint64_t position;
};

struct writer {
	pthread_t th;
	unsigned no;
	cairn_client *cl;
	atomic_bool *stop;
	atomic_uint *acked_total;
	/* Written by the thread only, read after it is joined. */
	struct ack *acks;
	size_t n_acks;
	size_t cap;
	uint32_t attempted; /* payloads 0 .. attempted - 1 were sent */
	unsigned errors;
	int first_error;
	char first_error_msg[600];
	char bad_result[200]; /* a result of the wrong shape */
};

static void stream_name(char *buf, size_t cap, unsigned s)
{
	snprintf(buf, cap, "failover-%u", s);
}

static void payload(char *buf, size_t cap, unsigned w, unsigned n)
{
	snprintf(buf, cap, "{\"writer\":%u,\"n\":%u}", w, n);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(w->stop)) {
		uint32_t n = w->attempted++;
		uint32_t s = (w->no + n) % STREAMS;
		char stream[32], data[64];
		struct cairn_event_in ev;
		struct cairn_part_result r;
		struct cairn_error err;
		int rv;

		stream_name(stream, sizeof stream, s);
		payload(data, sizeof data, w->no, n);
		memset(&ev, 0, sizeof ev);
		ev.type = "Ticked";
		ev.data = data;
		ev.data_len = strlen(data);
		memset(&err, 0, sizeof err);
		rv = cairn_append_one(w->cl, stream, CAIRN_EXPECT_ANY, 0, &ev,
				      1, &r, &err);
		if (rv != 0) {
			if (w->errors++ == 0) {
				w->first_error = rv;
				snprintf(w->first_error_msg,
					 sizeof w->first_error_msg,
					 "payload %s: %s (%s)", data,
					 cairn_strerror(rv), err.message);
			}
			cluster_sleep_ms(10);
			continue;
		}
		if (r.first_version != r.last_version ||
		    r.first_position != r.last_position ||
		    r.first_version == 0 || r.first_position == 0) {
			if (w->bad_result[0] == '\0')
				snprintf(w->bad_result, sizeof w->bad_result,
					 "payload %s: versions %" PRIu64
					 "..%" PRIu64 " positions %" PRIu64
					 "..%" PRIu64,
					 data, r.first_version, r.last_version,
					 r.first_position, r.last_position);
			continue;
		}
		if (w->n_acks == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 256;
			w->acks = realloc(w->acks, w->cap * sizeof *w->acks);
			if (w->acks == NULL)
				abort();
		}
		w->acks[w->n_acks++] =
			(struct ack){ .n = n,
				      .stream = s,
				      .version = r.first_version,
				      .position = r.first_position };
		atomic_fetch_add(w->acked_total, 1);
	}
	return NULL;
}

static void wait_acks(struct cluster *c, atomic_uint *counter, unsigned target,
		      const char *phase)
{
	uint64_t start = cluster_now_ms();

	while (atomic_load(counter) < target) {
		cluster_check_alive(c);
		if (cluster_now_ms() - start > PHASE_WAIT_MS)
			fail_msg(
				"%s: %u of %u appends acknowledged after %d "
				"ms",
				phase, atomic_load(counter), target,
				PHASE_WAIT_MS);
		cluster_sleep_ms(20);
	}
	printf("%s: %u appends acknowledged (%u ms)\n", phase,
	       atomic_load(counter), (unsigned)(cluster_now_ms() - start));
}

/* Checks one node's dump against every writer's acknowledgements. */
static void check_dump(const struct cluster_dump *d, unsigned node,
		       struct writer *w)
{
	uint64_t heads[STREAMS] = { 0 };
	uint8_t *seen[WRITERS];
	size_t acked = 0;

	for (unsigned i = 0; i < WRITERS; i++) {
		seen[i] = calloc(w[i].attempted + 1, 1);
		assert_non_null(seen[i]);
	}
	for (size_t i = 0; i < d->n; i++) {
		const struct cluster_event *e = &d->events[i];
		unsigned wn, n, s;
		char expect[64];

		if (sscanf((const char *)e->data, "{\"writer\":%u,\"n\":%u}",
			   &wn, &n) != 2 ||
		    wn >= WRITERS || n >= w[wn].attempted)
			fail_msg("node %u: position %" PRIu64
				 " holds a payload no writer sent: %.*s",
				 node, e->position, (int)e->data_len, e->data);
		payload(expect, sizeof expect, wn, n);
		assert_string_equal((const char *)e->data, expect);
		if (seen[wn][n]++ != 0)
			fail_msg(
				"node %u: payload %s is in the log twice "
				"(again at position %" PRIu64 ")",
				node, expect, e->position);
		s = (wn + n) % STREAMS;
		{
			char name[32];

			stream_name(name, sizeof name, s);
			assert_string_equal(e->stream, name);
		}
		if (e->version != heads[s] + 1)
			fail_msg("node %u: %s at position %" PRIu64
				 " has version %" PRIu64 ", expected %" PRIu64,
				 node, e->stream, e->position, e->version,
				 heads[s] + 1);
		heads[s] = e->version;
	}
	for (unsigned i = 0; i < WRITERS; i++) {
		for (size_t a = 0; a < w[i].n_acks; a++) {
			const struct ack *k = &w[i].acks[a];
			const struct cluster_event *e;
			char expect[64];

			payload(expect, sizeof expect, i, k->n);
			if (k->position > d->n)
				fail_msg(
					"node %u: acknowledged %s at position "
					"%" PRIu64 " but the log ends at %zu",
					node, expect, k->position, d->n);
			e = &d->events[k->position - 1];
			if (strcmp((const char *)e->data, expect) != 0 ||
			    e->version != k->version)
				fail_msg("node %u: acknowledged %s v%" PRIu64
					 " at position %" PRIu64
					 "; the log holds %s v%" PRIu64
					 " there",
					 node, expect, k->version, k->position,
					 (const char *)e->data, e->version);
		}
		acked += w[i].n_acks;
		free(seen[i]);
	}
	printf("node %u: %zu events in the log, %zu of them acknowledged\n",
	       node, d->n, acked);
}

/* The writers of the running test; static because a failed test leaves
 * them running until the program exits. */
static atomic_bool stop;
static atomic_uint acked;
static struct writer w[WRITERS];

static void writers_start(struct cluster *c)
{
	atomic_store(&stop, false);
	atomic_store(&acked, 0);
	memset(w, 0, sizeof w);
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i].no = i;
		w[i].stop = &stop;
		w[i].acked_total = &acked;
		w[i].cl = cluster_client(c, -1, false, APPEND_DEADLINE_MS);
		assert_int_equal(
			pthread_create(&w[i].th, NULL, writer_main, &w[i]), 0);
	}
}

/* Waits for @more acknowledgements from now on. */
static void writers_progress(struct cluster *c, unsigned more,
			     const char *phase)
{
	wait_acks(c, &acked, atomic_load(&acked) + more, phase);
}

/* Stops the writers, then checks every node's log against what they were
 * told, and that the logs are identical; fails last on any failed
 * append. */
static void writers_stop_and_check(struct cluster *c)
{
	struct cluster_dump dumps[3];
	unsigned total_acks = 0, total_errors = 0;
	uint64_t last;

	atomic_store(&stop, true);
	for (unsigned i = 0; i < WRITERS; i++) {
		pthread_join(w[i].th, NULL);
		cairn_close(w[i].cl);
		total_acks += (unsigned)w[i].n_acks;
		total_errors += w[i].errors;
		if (w[i].errors)
			printf("writer %u: %u failed appends, first: %s\n", i,
			       w[i].errors, w[i].first_error_msg);
		if (w[i].bad_result[0] != '\0')
			fail_msg(
				"writer %u got a result of the wrong shape "
				"for one event: %s",
				i, w[i].bad_result);
	}
	printf("%u appends acknowledged, %u failed\n", total_acks,
	       total_errors);

	last = cluster_wait_converged(c, 0);
	assert_true(last >= total_acks);
	for (unsigned k = 0; k < 3; k++) {
		cluster_dump_node(c, k, last, &dumps[k]);
		assert_int_equal(dumps[k].n, last);
		check_dump(&dumps[k], c->nodes[k].id, w);
	}
	cluster_dump_compare(&dumps[0], "node 1", &dumps[1], "node 2");
	cluster_dump_compare(&dumps[0], "node 1", &dumps[2], "node 3");
	for (unsigned k = 0; k < 3; k++)
		cluster_dump_free(&dumps[k]);

	/* Checked last, so that a lost or doubled event is reported first:
	 * libcairn promises to carry an append across a leader change. */
	for (unsigned i = 0; i < WRITERS; i++) {
		if (w[i].errors)
			fail_msg(
				"writer %u: %u appends failed across the "
				"failover; first: %s",
				i, w[i].errors, w[i].first_error_msg);
	}
	for (unsigned i = 0; i < WRITERS; i++)
		free(w[i].acks);
}

/* Three rounds: the leader, then a follower, then the leader again is
 * killed with SIGKILL and later started again, the writers going on all
 * the while. */
static void acknowledged_appends_survive_leader_kill(void **state)
{
	struct cluster *c = *state;
	unsigned leader;

	cluster_start(c, "failover", 3, PORT_BASE);
	leader = cluster_wait_leader(c, 0);
	writers_start(c);
	writers_progress(c, ACKS_BEFORE_KILL, "before the first kill");

	for (unsigned round = 0; round < 3; round++) {
		unsigned victim = round == 1 ? (leader + 1) % 3 : leader;
		unsigned next;

		printf("round %u: killing %s, node %u\n", round,
		       victim == leader ? "the leader" : "a follower",
		       c->nodes[victim].id);
		cluster_node_kill(c, victim);
		next = cluster_wait_leader(c, 0);
		printf("leader: node %u\n", c->nodes[next].id);
		assert_int_not_equal(next, victim);
		writers_progress(c, ACKS_AFTER_KILL, "after the kill");

		cluster_node_start(c, victim);
		leader = cluster_wait_leader(c, 0);
		writers_progress(c, ACKS_AFTER_RESTART, "after the restart");
	}
	writers_stop_and_check(c);
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* Every node killed with SIGKILL at once while appends are in flight,
 * then all started again: the writers' appends go on after the restart
 * (libcairn retries them with their keys) and nothing acknowledged is
 * lost or doubled. */
static void acknowledged_appends_survive_whole_cluster_kill(void **state)
{
	struct cluster *c = *state;

	cluster_start(c, "failover-all", 3, PORT_BASE + CLUSTER_PORTS);
	cluster_wait_leader(c, 0);
	writers_start(c);
	writers_progress(c, ACKS_BEFORE_KILL, "before the kill");
	for (unsigned k = 0; k < 3; k++)
		kill(c->nodes[k].pid, SIGKILL);
	for (unsigned k = 0; k < 3; k++)
		cluster_node_kill(c, k); /* reaps */
	for (unsigned k = 0; k < 3; k++)
		cluster_node_start(c, k);
	cluster_wait_leader(c, 0);
	writers_progress(c, ACKS_AFTER_KILL, "after the restart");
	writers_stop_and_check(c);
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
			acknowledged_appends_survive_leader_kill, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			acknowledged_appends_survive_whole_cluster_kill, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
