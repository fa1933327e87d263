/* State transfer in a real cluster (docs/state-transfer.md): a follower
 * whose store is behind the snapshot libraft installs fetches a peer's
 * store in bounded memory, swaps it in, restarts and catches up. Every
 * cluster runs with the smallest snapshot threshold and trailing log
 * cairnd keeps, so a few hundred appends drop the log a stopped follower
 * would need.
 *
 * - follower_far_behind_catches_up_by_transfer: a follower stopped while
 *   the leader truncates its log is restarted while a writer keeps
 *   appending; it transfers, catches up, and the three global logs are
 *   identical; every acknowledged append is there exactly once;
 * - wiped_store_rejoins: the same with the follower's whole store
 *   directory deleted (its Raft directory kept);
 * - receiver_killed_mid_transfer_ends_correct: SIGKILL of the receiver
 *   while DATA/transfer and a partial DATA/store.incoming exist, then a
 *   restart: it resumes and ends identical;
 * - sender_killed_mid_transfer_moves_to_another_peer: SIGKILL of the node
 *   being copied from; the receiver tries the next peer and ends
 *   identical;
 * - swap_crash_states_are_finished_at_start: a node started on each state
 *   a crash during the swap leaves (store.old + store.incoming without
 *   store; store.old beside store; the marker alone; a temporary marker)
 *   finishes the swap without fetching and rejoins with the same log; and
 *   while a transfer runs, /health answers 200 with its progress, /ready
 *   and everything else 503, the client port is closed, and SIGTERM ends
 *   the node with status 0.
 *
 * Ports 24500-24699 (one 30-port block per test). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 24500

/* Longest wait for a transfer to end (the node logs
 * state_transfer_done). An upper bound only: the wait polls. */
#define TRANSFER_WAIT_MS 60000

/* Bytes of each big event (incompressible) and events per append, for
 * the stores that must take a moment to copy. */
#define BIG_EVENT_BYTES       (512u << 10)
#define BIG_EVENTS_PER_APPEND 8

/* The smallest values cairnd keeps (consensus clamps lower ones). */
static const char *const snapshot_args[] = { "--snapshot-threshold", "16",
					     "--snapshot-trailing", "64",
					     NULL };

/* For the tests where a node far behind gets the snapshot installed by
 * the leader: a longer retained log. With 16/64 a node that has just
 * restarted on its copy takes a snapshot of its own within a few entries
 * while the leader still replicates entries to it from below, the case
 * where libraft 0.22.1 can crash (docs/libraft.md); seen once under
 * ASan. */
static const char *const behind_args[] = { "--snapshot-threshold", "64",
					   "--snapshot-trailing", "256", NULL };

/* Appends @n small events one by one to @stream; returns the last
 * position. */
static uint64_t append_n(cairn_client *cl, const char *stream, unsigned n,
			 unsigned tag)
{
	uint64_t last = 0;

	for (unsigned i = 0; i < n; i++) {
		char data[64];
		struct cairn_event_in ev = { .type = "Stepped" };
		struct cairn_part_result r;
		struct cairn_error err;
		int rv;

		snprintf(data, sizeof data, "{\"tag\":%u,\"i\":%u}", tag, i);
		ev.data = data;
		ev.data_len = strlen(data);
		rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev, 1,
				      &r, &err);
		if (rv != 0)
			fail_msg("append %u of %u to %s: %s: %s", i + 1, n,
				 stream, cairn_strerror(rv), err.message);
		assert_true(r.last_position > last);
		last = r.last_position;
	}
	return last;
}

/* Appends @n transactions of BIG_EVENTS_PER_APPEND incompressible events
 * of BIG_EVENT_BYTES to @stream; returns the last position. */
static uint64_t append_big(cairn_client *cl, const char *stream, unsigned n)
{
	struct cairn_event_in ev[BIG_EVENTS_PER_APPEND];
	uint8_t *data = malloc(BIG_EVENT_BYTES * BIG_EVENTS_PER_APPEND);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	uint64_t last = 0;

	assert_non_null(data);
	for (unsigned i = 0; i < n; i++) {
		struct cairn_part_result r;
		struct cairn_error err;
		int rv;

		for (size_t b = 0; b < BIG_EVENT_BYTES * BIG_EVENTS_PER_APPEND;
		     b += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			memcpy(data + b, &x, 8);
		}
		for (unsigned e = 0; e < BIG_EVENTS_PER_APPEND; e++) {
			memset(&ev[e], 0, sizeof ev[e]);
			ev[e].type = "Blob";
			ev[e].data = data + (size_t)e * BIG_EVENT_BYTES;
			ev[e].data_len = BIG_EVENT_BYTES;
		}
		rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, ev,
				      BIG_EVENTS_PER_APPEND, &r, &err);
		if (rv != 0)
			fail_msg("big append %u of %u: %s: %s", i + 1, n,
				 cairn_strerror(rv), err.message);
		last = r.last_position;
	}
	free(data);
	return last;
}

/* ------------------------------------------------------------------------
 * A writer thread that keeps appending while a node transfers
 * ------------------------------------------------------------------------ */

#define WRITER_MAX 100000

struct writer {
	const struct cluster *c;
	pthread_t thread;
	atomic_bool stop;
	unsigned pause_us;      /* between two appends */
	unsigned n_tried;       /* appends tried */
	unsigned n_acked;       /* acknowledged */
	uint8_t *acked;         /* owned: WRITER_MAX flags, by tag */
	uint64_t last_position; /* of the last acknowledged one */
	char error[600];        /* the first failure, for the report */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cairn_options o;
	struct cairn_error err;
	cairn_client *cl = NULL;
	char seeds[512];

	snprintf(seeds, sizeof seeds, "%s,%s,%s", w->c->nodes[0].client_address,
		 w->c->nodes[1].client_address, w->c->nodes[2].client_address);
	memset(&o, 0, sizeof o);
	o.deadline_ms = 20000;
	if (cairn_open(seeds, &o, &cl, &err) != 0) {
		snprintf(w->error, sizeof w->error, "open: %s", err.message);
		return NULL;
	}
	while (!atomic_load(&w->stop) && w->n_tried < WRITER_MAX) {
		unsigned tag = w->n_tried++;
		char data[64];
		struct cairn_event_in ev = { .type = "Written" };
		struct cairn_part_result r;
		int rv;

		snprintf(data, sizeof data, "w%u", tag);
		ev.data = data;
		ev.data_len = strlen(data);
		rv = cairn_append_one(cl, "writer", CAIRN_EXPECT_ANY, 0, &ev, 1,
				      &r, &err);
		if (rv == 0) {
			w->acked[tag] = 1;
			w->n_acked++;
			w->last_position = r.last_position;
		} else if (w->error[0] == '\0') {
			snprintf(w->error, sizeof w->error, "append %u: %s",
				 tag, err.message);
		}
		usleep(w->pause_us);
	}
	cairn_close(cl);
	return NULL;
}

/* Starts a writer that pauses @pause_us between two appends. */
static void writer_start_paced(struct writer *w, const struct cluster *c,
			       unsigned pause_us)
{
	memset(w, 0, sizeof *w);
	w->c = c;
	w->pause_us = pause_us;
	w->acked = calloc(WRITER_MAX, 1);
	assert_non_null(w->acked);
	assert_int_equal(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static void writer_start(struct writer *w, const struct cluster *c)
{
	memset(w, 0, sizeof *w);
	w->c = c;
	w->pause_us = 2000;
	w->acked = calloc(WRITER_MAX, 1);
	assert_non_null(w->acked);
	assert_int_equal(pthread_create(&w->thread, NULL, writer_main, w), 0);
}

static void writer_stop(struct writer *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	printf("writer: %u tried, %u acknowledged%s%s\n", w->n_tried,
	       w->n_acked, w->error[0] != '\0' ? "; first error: " : "",
	       w->error);
}

/* Every acknowledged writer append is in @d once; none is there twice. */
static void writer_check(const struct writer *w, const struct cluster_dump *d)
{
	uint8_t *seen = calloc(WRITER_MAX, 1);

	assert_non_null(seen);
	for (size_t k = 0; k < d->n; k++) {
		const struct cluster_event *e = &d->events[k];
		char tag_text[32];
		unsigned tag;

		if (strcmp(e->stream, "writer") != 0)
			continue;
		assert_true(e->data_len > 1 && e->data_len < sizeof tag_text);
		memcpy(tag_text, e->data, e->data_len);
		tag_text[e->data_len] = '\0';
		assert_int_equal(sscanf(tag_text, "w%u", &tag), 1);
		assert_true(tag < WRITER_MAX);
		if (seen[tag])
			fail_msg("writer append %u is in the log twice", tag);
		seen[tag] = 1;
	}
	for (unsigned tag = 0; tag < w->n_tried; tag++)
		if (w->acked[tag] && !seen[tag])
			fail_msg("acknowledged writer append %u is lost", tag);
	free(seen);
	free(w->acked);
}

/* ------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------ */

/* Every node holds the same global log, at least @last long; returns its
 * length. The dump of node 0 is left in @keep when not NULL. */
static uint64_t check_identical(struct cluster *c, uint64_t last,
				struct cluster_dump *keep)
{
	struct cluster_dump d[3];
	uint64_t converged = cluster_wait_converged(c, 0);

	assert_true(converged >= last);
	for (unsigned k = 0; k < 3; k++) {
		cluster_dump_node(c, k, converged, &d[k]);
		assert_int_equal(d[k].n, converged);
	}
	cluster_dump_compare(&d[0], "node 1", &d[1], "node 2");
	cluster_dump_compare(&d[0], "node 1", &d[2], "node 3");
	for (unsigned k = 1; k < 3; k++)
		cluster_dump_free(&d[k]);
	if (keep != NULL)
		*keep = d[0];
	else
		cluster_dump_free(&d[0]);
	return converged;
}

/* Waits until node @k has logged @needle at least @count times. */
static void wait_log(struct cluster *c, unsigned k, const char *needle,
		     unsigned count, unsigned timeout_ms)
{
	uint64_t deadline = cluster_now_ms() + timeout_ms;

	while (cluster_log_count(c, k, needle) < count) {
		if (cluster_now_ms() > deadline) {
			cluster_print_logs(c, 40);
			fail_msg("node %u did not log %s within %u ms",
				 c->nodes[k].id, needle, timeout_ms);
		}
		cluster_sleep_ms(20);
	}
}

static bool path_exists(const struct cluster *c, unsigned k, const char *name)
{
	char path[CLUSTER_PATH_MAX + 64];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", c->nodes[k].dir, name);
	return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

/* Stops @follower, appends far past the retained log, restarts it with a
 * writer running; returns after its transfer ended and the cluster
 * converged, with every check done. @wipe deletes its store first. */
static void behind_then_back(struct cluster *c, unsigned follower, bool wipe)
{
	struct cluster_dump d;
	struct writer w;
	cairn_client *cl;
	uint64_t last;

	cl = cluster_client(c, -1, false, 30000);
	append_n(cl, "before", 20, 1);
	cluster_node_stop(c, follower);
	if (wipe) {
		char cmd[CLUSTER_PATH_MAX + 64];

		snprintf(cmd, sizeof cmd, "rm -rf '%s/store'",
			 c->nodes[follower].dir);
		assert_int_equal(system(cmd), 0);
	}
	/* 1000 entries are far more than threshold + trailing (64 + 256). */
	last = append_n(cl, "during", 1000, 2);
	cairn_close(cl);

	writer_start(&w, c);
	cluster_node_start(c, follower);
	wait_log(c, follower, "event=state_transfer_done", 1, TRANSFER_WAIT_MS);
	/* The writer stops once the first round is over: with a retained log
	 * of 80 entries, a slow build may fall behind again while it restarts
	 * and run another round, which ends once the appends stop. */
	writer_stop(&w);
	assert_true(w.n_acked > 0);
	cluster_wait_leader(c, 0);

	assert_true(cluster_log_count(c, follower,
				      "event=state_transfer_needed") >= 1);
	assert_int_equal(
		cluster_log_count(c, follower, "snapshot_restore_failed"), 0);
	last = check_identical(c, last + w.n_acked, &d);
	writer_check(&w, &d);
	cluster_dump_free(&d);
	/* The restarted node takes appends like the others. */
	cl = cluster_client(c, -1, false, 30000);
	assert_int_equal(append_n(cl, "after", 1, 3), last + 1);
	cairn_close(cl);
	check_identical(c, last + 1, NULL);
	assert_false(path_exists(c, follower, "transfer"));
	assert_false(path_exists(c, follower, "store.incoming"));
	assert_false(path_exists(c, follower, "store.old"));
}

static void follower_far_behind_catches_up_by_transfer(void **state)
{
	struct cluster *c = *state;
	unsigned leader;

	cluster_start_args(c, "transfer-behind", 3, PORT_BASE, behind_args);
	leader = cluster_wait_leader(c, 0);
	behind_then_back(c, (leader + 1) % 3, false);
	cluster_stop_clean(c);
	cluster_passed(c);
}

static void wiped_store_rejoins(void **state)
{
	struct cluster *c = *state;
	unsigned leader;

	cluster_start_args(c, "transfer-wiped", 3, PORT_BASE + CLUSTER_PORTS,
			   behind_args);
	leader = cluster_wait_leader(c, 0);
	behind_then_back(c, (leader + 2) % 3, true);
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* Builds a store of tens of MB while @follower is stopped with its store
 * deleted; returns the last position. The follower stopped after every
 * node took a snapshot, so at its next start libraft restores that
 * snapshot over an empty store and the transfer begins from inside
 * consensus_start, before the node talks to the leader. (A follower that
 * catches up entries from the leader while the leader sends it a snapshot
 * can hit a libraft 0.22.1 crash, docs/consensus.md; this keeps these
 * tests about the transfer.) */
static uint64_t big_and_behind(struct cluster *c, unsigned follower)
{
	cairn_client *cl = cluster_client(c, -1, false, 60000);
	char cmd[CLUSTER_PATH_MAX + 64];
	uint64_t last;

	append_n(cl, "before", 40, 1);
	cluster_wait_converged(c, 0);
	cluster_node_stop(c, follower);
	assert_true(cluster_log_count(c, follower, "snapshot_taken") > 0);
	snprintf(cmd, sizeof cmd, "rm -rf '%s/store'", c->nodes[follower].dir);
	assert_int_equal(system(cmd), 0);
	/* 12 x 8 x 512 KiB = 48 MiB, then small entries past it. */
	append_big(cl, "big", 12);
	last = append_n(cl, "during", 100, 2);
	cairn_close(cl);
	return last;
}

static void receiver_killed_mid_transfer_ends_correct(void **state)
{
	struct cluster *c = *state;
	unsigned leader, follower;
	uint64_t last, deadline;
	bool partial = false;

	cluster_start_args(c, "transfer-rkill", 3,
			   PORT_BASE + 2 * CLUSTER_PORTS, snapshot_args);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	last = big_and_behind(c, follower);

	cluster_node_start(c, follower);
	/* Kill it as soon as the copy has begun arriving. */
	deadline = cluster_now_ms() + TRANSFER_WAIT_MS;
	while (!(path_exists(c, follower, "transfer") &&
		 path_exists(c, follower, "store.incoming"))) {
		if (cluster_now_ms() > deadline)
			fail_msg("no transfer began");
		usleep(1000);
	}
	partial = !path_exists(c, follower, "store.incoming/CAIRN-COPY");
	cluster_node_kill(c, follower);
	printf("receiver killed with a %s copy\n",
	       partial ? "partial" : "complete");
	assert_true(path_exists(c, follower, "transfer"));

	cluster_node_start(c, follower);
	wait_log(c, follower, "event=state_transfer_done", 1, TRANSFER_WAIT_MS);
	cluster_wait_leader(c, 0);
	check_identical(c, last, NULL);
	assert_false(path_exists(c, follower, "transfer"));
	cluster_stop_clean(c);
	cluster_passed(c);
}

static void sender_killed_mid_transfer_moves_to_another_peer(void **state)
{
	struct cluster *c = *state;
	unsigned leader, follower, sender;
	uint64_t last, deadline;

	cluster_start_args(c, "transfer-skill", 3,
			   PORT_BASE + 3 * CLUSTER_PORTS, snapshot_args);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	/* The receiver tries followers first: the other follower. */
	sender = (leader + 2) % 3;
	last = big_and_behind(c, follower);

	cluster_node_start(c, follower);
	deadline = cluster_now_ms() + TRANSFER_WAIT_MS;
	while (cluster_log_count(c, follower, "event=state_transfer_try") ==
	       0) {
		if (cluster_now_ms() > deadline)
			fail_msg("no transfer began");
		usleep(1000);
	}
	cluster_node_kill(c, sender);
	wait_log(c, follower, "event=state_transfer_done", 1, TRANSFER_WAIT_MS);
	assert_true(cluster_log_count(c, follower,
				      "event=state_transfer_try_failed") >= 1);
	printf("receiver tried %u times\n",
	       cluster_log_count(c, follower, "event=state_transfer_try"));
	cluster_node_start(c, sender);
	cluster_wait_leader(c, 0);
	check_identical(c, last, NULL);
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* Writes a marker asking for at least @min into node @k's data
 * directory, naming the other nodes. */
static void write_marker(const struct cluster *c, unsigned k, uint64_t min)
{
	char path[CLUSTER_PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof path, "%s/transfer", c->nodes[k].dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "cairn-transfer 1\nmin_applied_index %" PRIu64 "\n", min);
	for (unsigned j = 0; j < c->n; j++)
		if (j != k)
			fprintf(f, "peer %u %s\n", c->nodes[j].id,
				c->nodes[j].client_address);
	assert_int_equal(fclose(f), 0);
}

/* Copies node @k's store to store.old, and moves it to store.incoming
 * when @move. */
static void copy_store(const struct cluster *c, unsigned k, bool move)
{
	const char *d = c->nodes[k].dir;
	char cmd[4 * CLUSTER_PATH_MAX + 64];

	snprintf(cmd, sizeof cmd, "cp -a '%s/store' '%s/store.old'", d, d);
	assert_int_equal(system(cmd), 0);
	if (move) {
		snprintf(cmd, sizeof cmd, "mv '%s/store' '%s/store.incoming'",
			 d, d);
		assert_int_equal(system(cmd), 0);
	}
}

/* GET @path from @address (host:port) with a raw socket; the whole reply
 * (status line, headers, body) goes to @out. Returns the HTTP status, or
 * -1 when nothing answers. */
static int http_get(const char *address, const char *path, char *out,
		    size_t cap)
{
	char host[64];
	const char *colon = strrchr(address, ':');
	struct sockaddr_in sa;
	char req[256];
	size_t n = 0;
	int fd, status = -1;

	assert_non_null(colon);
	snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof req,
		 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
		 path, address);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (n + 1 < cap) {
		ssize_t r = read(fd, out + n, cap - 1 - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	close(fd);
	if (sscanf(out, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	return status;
}

/* Whether something accepts connections at @address. */
static bool port_open(const char *address)
{
	char buf[16];

	return http_get(address, "/", buf, sizeof buf) != -1 ||
	       errno != ECONNREFUSED;
}

/* Starts node @k on a fabricated crash state of the swap and checks that
 * it finishes the swap without fetching, keeps its store and rejoins. */
static void start_on_state(struct cluster *c, unsigned k, uint64_t last,
			   const char *what)
{
	unsigned tries = cluster_log_count(c, k, "event=state_transfer_try");
	unsigned done = cluster_log_count(c, k, "event=state_transfer_done");

	printf("crash state: %s\n", what);
	cluster_node_start(c, k);
	wait_log(c, k, "event=state_transfer_done", done + 1, TRANSFER_WAIT_MS);
	assert_int_equal(cluster_log_count(c, k, "event=state_transfer_try"),
			 tries);
	cluster_wait_leader(c, 0);
	check_identical(c, last, NULL);
	assert_false(path_exists(c, k, "transfer"));
	assert_false(path_exists(c, k, "store.old"));
	assert_false(path_exists(c, k, "store.incoming"));
	assert_true(path_exists(c, k, "store"));
	cluster_node_stop(c, k);
}

static void swap_crash_states_are_finished_at_start(void **state)
{
	struct cluster *c = *state;
	unsigned leader, k;
	cairn_client *cl;
	uint64_t last;

	cluster_start_args(c, "transfer-states", 3,
			   PORT_BASE + 4 * CLUSTER_PORTS, snapshot_args);
	leader = cluster_wait_leader(c, 0);
	k = (leader + 1) % 3;
	cl = cluster_client(c, -1, false, 30000);
	last = append_n(cl, "states", 30, 1);
	cairn_close(cl);
	cluster_wait_converged(c, 0);
	cluster_node_stop(c, k);

	/* Between the two renames: store.old and store.incoming, no store
	 * (store.incoming was verified before the first rename). */
	write_marker(c, k, 1);
	copy_store(c, k, true);
	start_on_state(c, k, last, "store.old + store.incoming, no store");

	/* After the renames: store.old beside the new store. */
	write_marker(c, k, 1);
	copy_store(c, k, false);
	start_on_state(c, k, last, "store.old + store");

	/* After store.old was removed: only the marker is left. */
	write_marker(c, k, 1);
	start_on_state(c, k, last, "marker + store at the index");

	/* A transfer that cannot finish (its only peer does not exist):
	 * /health says so with 200, /ready and the rest answer 503, the
	 * client port stays closed, and SIGTERM ends it with status 0. */
	{
		char path[CLUSTER_PATH_MAX + 64];
		char reply[4096];
		uint64_t deadline;
		FILE *f;

		snprintf(path, sizeof path, "%s/transfer", c->nodes[k].dir);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("cairn-transfer 1\nmin_applied_index 1000000\n"
		      "peer 9 127.0.0.1:1\n",
		      f);
		assert_int_equal(fclose(f), 0);
		cluster_node_start(c, k);
		deadline = cluster_now_ms() + TRANSFER_WAIT_MS;
		while (http_get(c->nodes[k].http_address, "/health", reply,
				sizeof reply) != 200) {
			if (cluster_now_ms() > deadline)
				fail_msg("no /health during the transfer");
			cluster_sleep_ms(20);
		}
		assert_non_null(strstr(reply, "\"state\":\"transferring\""));
		assert_non_null(strstr(reply, "\"bytes_done\""));
		assert_int_equal(http_get(c->nodes[k].http_address, "/ready",
					  reply, sizeof reply),
				 503);
		assert_int_equal(http_get(c->nodes[k].http_address,
					  "/v1/streams/x", reply, sizeof reply),
				 503);
		assert_non_null(strstr(reply, "state transfer is in progress"));
		errno = 0;
		assert_false(port_open(c->nodes[k].client_address));
		wait_log(c, k, "event=state_transfer_try_failed", 1,
			 TRANSFER_WAIT_MS);
		cluster_node_stop(c, k);
		assert_true(path_exists(c, k, "transfer"));
		assert_int_equal(unlink(path), 0);
	}

	/* A temporary marker alone is dropped: no transfer. */
	{
		char path[CLUSTER_PATH_MAX + 64];
		FILE *f;

		snprintf(path, sizeof path, "%s/transfer.tmp", c->nodes[k].dir);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs("cairn-transfer 1\n", f);
		assert_int_equal(fclose(f), 0);
		cluster_node_start(c, k);
		cluster_wait_leader(c, 0);
		check_identical(c, last, NULL);
		assert_false(path_exists(c, k, "transfer.tmp"));
		assert_false(path_exists(c, k, "transfer"));
	}
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* A node lost with its whole data directory is removed, comes back empty
 * with --join while a writer appends, and gets its state by a transfer:
 * the leader's log no longer reaches back to the start, so libraft
 * installs a snapshot over its empty store. It is then promoted, and
 * every node ends with the same log holding every acknowledged append
 * once. The retained log here (64 + 256 entries) outlasts the node's
 * restart at the writer's pace, so one round of transfer suffices. */
static void wiped_node_rejoins_by_join_and_transfer(void **state)
{
	static const char *const args[] = { "--snapshot-threshold", "64",
					    "--snapshot-trailing", "256",
					    NULL };
	struct cluster *c = *state;
	struct cairn_members members;
	struct cairn_error err;
	struct cluster_dump d;
	struct writer w;
	cairn_client *cl;
	char seeds[256];
	unsigned leader, f, voters;
	uint64_t last;
	int rv;

	cluster_start_args(c, "transfer-join", 3, PORT_BASE + 5 * CLUSTER_PORTS,
			   args);
	leader = cluster_wait_leader(c, 0);
	f = (leader + 1) % 3;
	cl = cluster_client(c, -1, false, 30000);
	/* Far more entries than threshold + trailing: every node has
	 * compacted its log past the start. */
	last = append_n(cl, "before", 800, 1);
	cluster_node_kill(c, f);
	rv = cairn_member_remove(cl, c->nodes[f].id, true, NULL, &err);
	if (rv != 0)
		fail_msg("remove node %u: %s: %s", c->nodes[f].id,
			 cairn_strerror(rv), err.message);
	cluster_node_wipe(c, f);

	writer_start_paced(&w, c, 20000);
	snprintf(seeds, sizeof seeds, "%s,%s", c->nodes[leader].client_address,
		 c->nodes[3 - leader - f].client_address);
	cluster_node_start_join(c, f, seeds);
	wait_log(c, f, "event=state_transfer_done", 1, TRANSFER_WAIT_MS);
	wait_log(c, f, "event=join_promoted", 1, TRANSFER_WAIT_MS);
	writer_stop(&w);
	assert_true(w.n_acked > 0);
	assert_int_equal(cluster_log_count(c, f, "snapshot_restore_failed"), 0);

	/* Three voters again, the rejoined node among them (promoting a
	 * voter answers at once with the member list). */
	rv = cairn_member_promote(cl, c->nodes[f].id, &members, &err);
	if (rv != 0)
		fail_msg("promote node %u: %s: %s", c->nodes[f].id,
			 cairn_strerror(rv), err.message);
	voters = 0;
	for (size_t k = 0; k < members.n; k++)
		if (members.members[k].voter_role == 1)
			voters += members.members[k].id == c->nodes[f].id ? 100
									  : 1;
	assert_int_equal(voters, 102);

	last = check_identical(c, last + w.n_acked, &d);
	writer_check(&w, &d);
	cluster_dump_free(&d);
	assert_int_equal(append_n(cl, "after", 1, 3), last + 1);
	cairn_close(cl);
	check_identical(c, last + 1, NULL);
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			follower_far_behind_catches_up_by_transfer, setup,
			teardown),
		cmocka_unit_test_setup_teardown(wiped_store_rejoins, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			receiver_killed_mid_transfer_ends_correct, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			sender_killed_mid_transfer_moves_to_another_peer, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			swap_crash_states_are_finished_at_start, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			wiped_node_rejoins_by_join_and_transfer, setup,
			teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
