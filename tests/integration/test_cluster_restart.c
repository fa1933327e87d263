/* The whole cluster killed with SIGKILL and started again from its disks:
 * every acknowledged event is back on every node, once, at its position,
 * the three global logs are identical, and new appends continue at the
 * next position and version. Done twice, so the second restart also
 * replays what was appended after the first. */
#include <inttypes.h>
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
#define PORT_BASE 22000

#define STREAMS 3

/* Appends per round, each of 1..3 events. */
#define BATCHES 40

struct acked {
	uint64_t position;
	uint64_t version;
	unsigned stream;
	char data[48];
};

struct history {
	struct acked ev[2 * BATCHES * 3 + 8];
	size_t n;
	uint64_t heads[STREAMS];
	uint64_t last_position;
};

static void stream_name(char *buf, size_t cap, unsigned s)
{
	snprintf(buf, cap, "ledger-%u", s);
}

/* Appends @batches batches with exact expected versions, recording every
 * acknowledged event. */
static void append_round(cairn_client *cl, struct history *h, unsigned round,
			 unsigned batches)
{
	for (unsigned b = 0; b < batches; b++) {
		unsigned s = b % STREAMS;
		size_t n = 1 + b % 3;
		struct cairn_event_in ev[3];
		char data[3][48];
		char stream[32];
		struct cairn_part_result r;
		struct cairn_error err;
		int rv;

		stream_name(stream, sizeof stream, s);
		memset(ev, 0, sizeof ev);
		for (size_t i = 0; i < n; i++) {
			snprintf(data[i], sizeof data[i],
				 "{\"round\":%u,\"batch\":%u,\"i\":%zu}", round,
				 b, i);
			ev[i].type = "Entered";
			ev[i].data = data[i];
			ev[i].data_len = strlen(data[i]);
		}
		rv = cairn_append_one(cl, stream,
				      h->heads[s] ? CAIRN_EXPECT_EXACT
						  : CAIRN_EXPECT_NO_STREAM,
				      h->heads[s], ev, n, &r, &err);
		if (rv != 0)
			fail_msg("round %u batch %u: %s: %s", round, b,
				 cairn_strerror(rv), err.message);
		assert_int_equal(r.first_version, h->heads[s] + 1);
		assert_int_equal(r.last_version, h->heads[s] + n);
		assert_int_equal(r.first_position, h->last_position + 1);
		assert_int_equal(r.last_position, h->last_position + n);
		for (size_t i = 0; i < n; i++) {
			struct acked *a = &h->ev[h->n++];

			a->position = r.first_position + i;
			a->version = r.first_version + i;
			a->stream = s;
			memcpy(a->data, data[i], sizeof a->data);
		}
		h->heads[s] = r.last_version;
		h->last_position = r.last_position;
	}
}

/* Every node holds exactly the acknowledged history, and the same log. */
static void check_all_nodes(struct cluster *c, const struct history *h)
{
	struct cluster_dump d[3];

	for (unsigned k = 0; k < 3; k++) {
		cluster_dump_node(c, k, h->last_position, &d[k]);
		if (d[k].n != h->n)
			fail_msg(
				"node %u holds %zu events after the restart, "
				"%zu were acknowledged",
				c->nodes[k].id, d[k].n, h->n);
		for (size_t i = 0; i < h->n; i++) {
			const struct acked *a = &h->ev[i];
			const struct cluster_event *e = &d[k].events[i];
			char name[32];

			stream_name(name, sizeof name, a->stream);
			assert_int_equal(e->position, a->position);
			assert_int_equal(e->version, a->version);
			assert_string_equal(e->stream, name);
			assert_string_equal((const char *)e->data, a->data);
		}
	}
	cluster_dump_compare(&d[0], "node 1", &d[1], "node 2");
	cluster_dump_compare(&d[0], "node 1", &d[2], "node 3");
	for (unsigned k = 0; k < 3; k++)
		cluster_dump_free(&d[k]);
}

static void kill_all_and_restart(struct cluster *c)
{
	for (unsigned k = 0; k < c->n; k++)
		cluster_node_kill(c, k);
	for (unsigned k = 0; k < c->n; k++)
		cluster_node_start(c, k);
	cluster_wait_leader(c, 0);
}

static void whole_cluster_sigkill_keeps_acknowledged_events(void **state)
{
	struct cluster *c = *state;
	static struct history h;
	cairn_client *cl;

	memset(&h, 0, sizeof h);
	cluster_start(c, "restart", 3, PORT_BASE);
	cluster_wait_leader(c, 0);

	cl = cluster_client(c, -1, false, 30000);
	append_round(cl, &h, 0, BATCHES);
	cairn_close(cl);

	kill_all_and_restart(c);
	check_all_nodes(c, &h);

	/* New appends continue where the log ended. */
	cl = cluster_client(c, -1, false, 30000);
	append_round(cl, &h, 1, BATCHES);
	cairn_close(cl);

	kill_all_and_restart(c);
	check_all_nodes(c, &h);

	cl = cluster_client(c, -1, false, 30000);
	append_round(cl, &h, 2, 2);
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
			whole_cluster_sigkill_keeps_acknowledged_events, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
