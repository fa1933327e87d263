/* Optimistic concurrency under a race: writers that all expect the same
 * exact version N of a stream append at the same moment, from threads with
 * a client each and as asynchronous appends on one client. Exactly one
 * wins (its event gets version N+1); every other gets
 * CAIRN_EWRONG_EXPECTED_VERSION with actual_version N+1, and the stream
 * ends with exactly one new event per round. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 21400

/* Writers in one race, and races per test. */
#define RACERS 8
#define ROUNDS 5

/* Events the stream holds before the first race. */
#define PRELOAD 3

struct racer {
	cairn_client *cl;
	pthread_barrier_t *start;
	const char *stream;
	uint64_t expect;
	unsigned no;
	unsigned round;
	/* The outcome. */
	int rv;
	struct cairn_part_result result;
	struct cairn_error err;
	char data[64];
};

static void racer_event(struct cairn_event_in *ev, char *data, size_t cap,
			unsigned round, unsigned no)
{
	memset(ev, 0, sizeof *ev);
	snprintf(data, cap, "{\"round\":%u,\"racer\":%u}", round, no);
	ev->type = "Claimed";
	ev->data = data;
	ev->data_len = strlen(data);
}

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct cairn_event_in ev;

	racer_event(&ev, r->data, sizeof r->data, r->round, r->no);
	pthread_barrier_wait(r->start);
	memset(&r->err, 0, sizeof r->err);
	r->rv = cairn_append_one(r->cl, r->stream, CAIRN_EXPECT_EXACT,
				 r->expect, &ev, 1, &r->result, &r->err);
	return NULL;
}

/* Checks one race's outcomes; returns the winner's index. */
static unsigned check_race(const struct racer *r, size_t n, uint64_t expect)
{
	unsigned winners = 0, winner = 0;

	for (size_t i = 0; i < n; i++) {
		if (r[i].rv == 0) {
			winners++;
			winner = (unsigned)i;
			assert_int_equal(r[i].result.first_version, expect + 1);
			assert_int_equal(r[i].result.last_version, expect + 1);
			continue;
		}
		if (r[i].rv != CAIRN_EWRONG_EXPECTED_VERSION)
			fail_msg("racer %zu (expecting %" PRIu64 "): %s: %s", i,
				 expect, cairn_strerror(r[i].rv),
				 r[i].err.message);
		assert_int_equal(r[i].err.code, CAIRN_EWRONG_EXPECTED_VERSION);
		assert_int_equal(r[i].err.part, 0);
		if (r[i].err.actual_version != expect + 1)
			fail_msg("racer %zu lost with actual_version %" PRIu64
				 ", expected %" PRIu64 " (%s)",
				 i, r[i].err.actual_version, expect + 1,
				 r[i].err.message);
	}
	if (winners != 1)
		fail_msg("%u racers won the race on version %" PRIu64
			 ", exactly one should",
			 winners, expect);
	return winner;
}

/* Reads @stream from the leader and checks it holds @n events, event
 * PRELOAD + k + 1 being the winner of round k (its data in @winners). */
static void check_stream(cairn_client *cl, const char *stream, uint64_t n,
			 char winners[][64])
{
	struct cairn_read_options ro = { .consistency =
						 CAIRN_CONSISTENCY_LEADER };
	struct cairn_page page;
	struct cairn_error err;
	int rv;

	memset(&page, 0, sizeof page);
	rv = cairn_read_stream(cl, stream, 1, false, &ro, &page, &err);
	if (rv != 0)
		fail_msg("read %s: %s: %s", stream, cairn_strerror(rv),
			 err.message);
	assert_int_equal(page.n, n);
	for (size_t i = 0; i < page.n; i++) {
		const struct cairn_event *e = &page.events[i];

		assert_int_equal(e->version, i + 1);
		if (i >= PRELOAD) {
			const char *w = winners[i - PRELOAD];

			assert_int_equal(e->data_len, strlen(w));
			assert_memory_equal(e->data, w, e->data_len);
		}
	}
	cairn_page_free(&page);
}

static void preload(cairn_client *cl, const char *stream)
{
	struct cairn_event_in ev[PRELOAD];
	struct cairn_part_result r;
	struct cairn_error err;
	int rv;

	memset(ev, 0, sizeof ev);
	for (size_t i = 0; i < PRELOAD; i++) {
		ev[i].type = "Opened";
		ev[i].data = "{}";
		ev[i].data_len = 2;
	}
	rv = cairn_append_one(cl, stream, CAIRN_EXPECT_NO_STREAM, 0, ev,
			      PRELOAD, &r, &err);
	if (rv != 0)
		fail_msg("preload %s: %s: %s", stream, cairn_strerror(rv),
			 err.message);
	assert_int_equal(r.last_version, PRELOAD);
}

static void racing_threads_one_wins_others_see_next_version(void **state)
{
	struct cluster *c = *state;
	const char *stream = "race-threads";
	struct racer r[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t start;
	char winners[ROUNDS][64];
	cairn_client *cl;

	cluster_start(c, "race-threads", 3, PORT_BASE);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, -1, false, 0);
	preload(cl, stream);

	/* One client per thread, each on every seed, so the requests race
	 * over separate connections. */
	memset(r, 0, sizeof r);
	for (unsigned i = 0; i < RACERS; i++)
		r[i].cl = cluster_client(c, -1, false, 0);
	for (unsigned round = 0; round < ROUNDS; round++) {
		uint64_t expect = PRELOAD + round;
		unsigned w;

		assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
		for (unsigned i = 0; i < RACERS; i++) {
			r[i].start = &start;
			r[i].stream = stream;
			r[i].expect = expect;
			r[i].no = i;
			r[i].round = round;
			assert_int_equal(
				pthread_create(&th[i], NULL, racer_main, &r[i]),
				0);
		}
		for (unsigned i = 0; i < RACERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
		w = check_race(r, RACERS, expect);
		snprintf(winners[round], sizeof winners[round], "%s",
			 r[w].data);
	}
	for (unsigned i = 0; i < RACERS; i++)
		cairn_close(r[i].cl);

	check_stream(cl, stream, PRELOAD + ROUNDS, winners);
	cairn_close(cl);
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* ---- asynchronous appends on one client ---- */

struct async_race {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned done;
	struct racer r[RACERS];
};

struct async_slot {
	struct async_race *race;
	unsigned no;
};

static void async_done(void *arg, int status,
		       const struct cairn_part_result *results, size_t n_parts,
		       bool duplicate, const struct cairn_error *err)
{
	struct async_slot *slot = arg;
	struct async_race *race = slot->race;
	struct racer *r = &race->r[slot->no];

	pthread_mutex_lock(&race->mu);
	r->rv = status;
	if (status == 0 && n_parts == 1 && !duplicate)
		r->result = results[0];
	else if (status == 0)
		r->rv = -1; /* wrong shape: reported by the main thread */
	if (err != NULL)
		r->err = *err;
	race->done++;
	pthread_cond_signal(&race->cv);
	pthread_mutex_unlock(&race->mu);
}

static void async_appends_one_wins_others_see_next_version(void **state)
{
	struct cluster *c = *state;
	const char *stream = "race-async";
	/* Static: a failed test leaves callbacks pending that still write
	 * here. */
	static struct async_race race;
	static struct async_slot slots[RACERS];
	char winners[ROUNDS][64];
	cairn_client *cl;

	cluster_start(c, "race-async", 3, PORT_BASE + CLUSTER_PORTS);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, -1, false, 0);
	preload(cl, stream);

	pthread_mutex_init(&race.mu, NULL);
	pthread_cond_init(&race.cv, NULL);
	for (unsigned round = 0; round < ROUNDS; round++) {
		uint64_t expect = PRELOAD + round;
		struct cairn_event_in ev[RACERS];
		struct cairn_append_part parts[RACERS];
		uint64_t deadline = cluster_now_ms() + 60000;
		unsigned w;

		memset(race.r, 0, sizeof race.r);
		race.done = 0;
		/* All eight are queued before any can complete: the
		 * requests are in flight together on one connection. */
		for (unsigned i = 0; i < RACERS; i++) {
			int rv;

			racer_event(&ev[i], race.r[i].data,
				    sizeof race.r[i].data, round, i);
			parts[i] = (struct cairn_append_part){
				.stream = stream,
				.expect_kind = CAIRN_EXPECT_EXACT,
				.expect_version = expect,
				.events = &ev[i],
				.n_events = 1,
			};
			slots[i] =
				(struct async_slot){ .race = &race, .no = i };
			rv = cairn_append_async(cl, &parts[i], 1, NULL,
						async_done, &slots[i]);
			if (rv != 0)
				fail_msg("append_async: %s",
					 cairn_strerror(rv));
		}
		pthread_mutex_lock(&race.mu);
		while (race.done < RACERS && cluster_now_ms() < deadline) {
			pthread_mutex_unlock(&race.mu);
			cluster_sleep_ms(10);
			pthread_mutex_lock(&race.mu);
		}
		pthread_mutex_unlock(&race.mu);
		if (race.done < RACERS)
			fail_msg("only %u of %u async appends completed",
				 race.done, RACERS);
		for (unsigned i = 0; i < RACERS; i++) {
			if (race.r[i].rv == -1)
				fail_msg(
					"async append %u: status 0 with a "
					"duplicate flag or not one result",
					i);
		}
		w = check_race(race.r, RACERS, expect);
		snprintf(winners[round], sizeof winners[round], "%s",
			 race.r[w].data);
	}

	check_stream(cl, stream, PRELOAD + ROUNDS, winners);
	cairn_close(cl);
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
			racing_threads_one_wins_others_see_next_version, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			async_appends_one_wins_others_see_next_version, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
