/* A node whose disk fills up (the free-space guard, node/disk.c): its data
 * directory is moved to a small tmpfs and a ballast file eats the room
 * until the free bytes are below --disk-reserve.
 *
 * - lone_leader_below_reserve_refuses_appends_then_recovers: a one-node
 *   cluster (no voter to hand over to) answers appends with NO_SPACE (25)
 *   and HTTP appends with 507 no_space, exports cairn_disk_low 1 and logs
 *   disk_low; once the ballast is gone it logs disk_ok, takes appends
 *   again, and every acknowledged event is in its log.
 * - low_node_loses_leadership_cluster_keeps_committing: in three nodes,
 *   node 3 (made the leader first when restarts get it there) goes below
 *   the reserve: it stops leading, never takes an append while low, the
 *   cluster keeps committing through the others, and once the ballast is
 *   removed node 3's log ends equal to the leader's with every
 *   acknowledged event.
 * - start_below_reserve_waits_then_joins: node 3, stopped, is started with
 *   its disk below the reserve: it does not exit, logs disk_wait and
 *   answers /health with 503; after the ballast goes it starts and catches
 *   up.
 *
 * Mounting needs root (CI runs the tests as root); otherwise every case
 * is skipped (exit 77). Ports 25230-25319. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's ports: one cluster block per case. */
#define PORT_BASE_LONE    25230
#define PORT_BASE_THREE   25260
#define PORT_BASE_STARTUP 25290

/* The tmpfs and the reserve given to every node. A running node
 * preallocates about 95 MiB there: three Raft segments of 8 MiB and
 * RocksDB's write-ahead log (1.1 x its 64 MiB write buffer). */
#define TMPFS_SIZE    "192m"
#define RESERVE_BYTES (16ull << 20)
#define RESERVE_TEXT  "16777216"
/* Free bytes the ballast leaves: below the reserve, with room for what a
 * follower keeps replicating meanwhile. */
#define BALLAST_LEAVES (8ull << 20)

/* Longest wait for the guard to notice (it checks every second). */
#define GUARD_WAIT_MS 15000

/* The wire error code for "disk full on this node". */
#define NO_SPACE 25

static const char *const node_args[] = { "--disk-reserve", RESERVE_TEXT, NULL };

/* The case's state. */
struct fixture {
	struct cluster c;
	char mnt[CLUSTER_PATH_MAX]; /* the tmpfs, "" when none */
};

/* ---- the small disk ---- */

/* Stops node @k, mounts a tmpfs, copies the node's data directory there
 * and starts the node again on it. */
static void move_to_tmpfs(struct fixture *f, unsigned k)
{
	struct cluster_node *nd = &f->c.nodes[k];
	char src[CLUSTER_PATH_MAX + 4];
	char *cp[] = { "/bin/cp", "-a", src, f->mnt, NULL };

	cluster_node_stop(&f->c, k);
	snprintf(f->mnt, sizeof f->mnt, "%s/node%u-small", f->c.root, k + 1);
	if (mkdir(f->mnt, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", f->mnt, strerror(errno));
	if (mount("tmpfs", f->mnt, "tmpfs", 0, "size=" TMPFS_SIZE) != 0) {
		int e = errno;

		f->mnt[0] = '\0';
		fail_msg("mount tmpfs: %s", strerror(e));
	}
	snprintf(src, sizeof src, "%s/.", nd->dir);
	assert_int_equal(cluster_run(cp, NULL, NULL, 0, NULL, 0, 30000), 0);
	snprintf(nd->dir, sizeof nd->dir, "%s", f->mnt);
	cluster_node_start(&f->c, k);
}

static uint64_t free_bytes(const char *dir)
{
	struct statvfs st;

	if (statvfs(dir, &st) != 0)
		fail_msg("statvfs %s: %s", dir, strerror(errno));
	return (uint64_t)st.f_bavail * st.f_frsize;
}

/* Writes a ballast file on the tmpfs until BALLAST_LEAVES bytes are
 * free. */
static void ballast_fill(const struct fixture *f)
{
	char path[CLUSTER_PATH_MAX + 16];
	static char chunk[1 << 20];
	uint64_t have = free_bytes(f->mnt);
	int fd;

	assert_true(have > BALLAST_LEAVES + RESERVE_BYTES);
	snprintf(path, sizeof path, "%s/ballast", f->mnt);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	memset(chunk, 0xa5, sizeof chunk);
	for (uint64_t left = have - BALLAST_LEAVES; left > 0;) {
		size_t n = left < sizeof chunk ? (size_t)left : sizeof chunk;
		ssize_t w = write(fd, chunk, n);

		if (w <= 0)
			fail_msg("write ballast: %s", strerror(errno));
		left -= (uint64_t)w;
	}
	close(fd);
	assert_true(free_bytes(f->mnt) < RESERVE_BYTES);
}

static void ballast_remove(const struct fixture *f)
{
	char path[CLUSTER_PATH_MAX + 16];

	snprintf(path, sizeof path, "%s/ballast", f->mnt);
	assert_int_equal(unlink(path), 0);
	assert_true(free_bytes(f->mnt) >= RESERVE_BYTES);
}

/* ---- HTTP ---- */

/* Sends @method @path with @body to HOST:PORT @address; returns the
 * status, the response (headers and body) in @out. -1 when the node does
 * not answer. */
static int http(const char *address, const char *method, const char *path,
		const char *body, char *out, size_t cap)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(address, ':');
	char req[1024];
	size_t len = 0;
	int status = -1;
	int fd;
	int n;

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		return -1;
	}
	n = snprintf(req, sizeof req,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, path, address, strlen(body), body);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, out + len, cap - 1 - len);

		if (r <= 0)
			break;
		len += (size_t)r;
		if (len == cap - 1)
			break;
	}
	out[len] = '\0';
	close(fd);
	sscanf(out, "HTTP/1.%*d %d", &status);
	return status;
}

/* The value of gauge @name on node @k's /metrics; -1 when it does not
 * answer. */
static long long metric(const struct cluster *c, unsigned k, const char *name)
{
	static char out[1 << 17];
	char needle[128];
	const char *p;

	if (http(c->nodes[k].http_address, "GET", "/metrics", "", out,
		 sizeof out) != 200)
		return -1;
	snprintf(needle, sizeof needle, "\n%s ", name);
	p = strstr(out, needle);
	if (p == NULL)
		fail_msg("/metrics has no %s", name);
	return atoll(p + strlen(needle));
}

static void wait_metric(const struct cluster *c, unsigned k, const char *name,
			long long want)
{
	uint64_t deadline = cluster_now_ms() + GUARD_WAIT_MS;

	while (metric(c, k, name) != want) {
		if (cluster_now_ms() > deadline)
			fail_msg("node %u: %s never became %lld", k + 1, name,
				 want);
		cluster_sleep_ms(100);
	}
}

/* ---- appends ---- */

/* One event through @cl; returns the library's code. */
static int append(cairn_client *cl, const char *stream, unsigned i,
		  uint64_t *position)
{
	char data[64];
	struct cairn_event_in ev = { .type = "Filled" };
	struct cairn_part_result r;
	struct cairn_error err;
	int rv;

	snprintf(data, sizeof data, "{\"i\":%u}", i);
	ev.data = data;
	ev.data_len = strlen(data);
	rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev, 1, &r,
			      &err);
	if (rv == 0)
		*position = r.last_position;
	return rv;
}

/* Appends @n events through the cluster; NO_SPACE (a node low on disk
 * that still led when the request reached it; nothing was proposed) is
 * retried. Returns the last position. */
static uint64_t append_n(cairn_client *cl, const char *stream, unsigned n)
{
	uint64_t last = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t deadline = cluster_now_ms() + 30000;
		uint64_t pos = 0;
		int rv;

		while ((rv = append(cl, stream, i, &pos)) == NO_SPACE &&
		       cluster_now_ms() < deadline)
			cluster_sleep_ms(100);
		if (rv != 0)
			fail_msg("append %u to %s: %s (%d)", i + 1, stream,
				 cairn_strerror(rv), rv);
		assert_true(pos > last);
		last = pos;
	}
	return last;
}

/* Node @k's log is the leader's, with @last events. */
static void check_same_log(struct cluster *c, unsigned k, unsigned leader,
			   uint64_t last)
{
	struct cluster_dump a, b;

	cluster_dump_node(c, leader, last, &a);
	cluster_dump_node(c, k, last, &b);
	assert_int_equal(a.n, last);
	assert_int_equal(b.n, last);
	cluster_dump_compare(&a, "leader", &b, "low node");
	cluster_dump_free(&a);
	cluster_dump_free(&b);
}

/* ---- cases ---- */

static void lone_leader_below_reserve_refuses_appends_then_recovers(
	void **state)
{
	struct fixture *f = *state;
	struct cluster *c = &f->c;
	static char out[8192];
	cairn_client *cl;
	uint64_t pos = 0;
	uint64_t last;
	int status;

	cluster_start_args(c, "disk_lone", 1, PORT_BASE_LONE, node_args);
	cluster_wait_leader(c, 0);
	move_to_tmpfs(f, 0);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, 0, true, 10000);
	last = append_n(cl, "lone", 5);
	assert_int_equal(metric(c, 0, "cairn_disk_low"), 0);

	ballast_fill(f);
	wait_metric(c, 0, "cairn_disk_low", 1);
	assert_true(metric(c, 0, "cairn_disk_free_bytes") <
		    (long long)RESERVE_BYTES);
	assert_int_equal(append(cl, "lone", 100, &pos), NO_SPACE);
	status = http(c->nodes[0].http_address, "POST", "/streams/lone",
		      "{\"type\":\"Filled\",\"data\":{}}", out, sizeof out);
	assert_int_equal(status, 507);
	assert_non_null(strstr(out, "no_space"));
	assert_true(cluster_log_count(c, 0, "disk_low") > 0);
	/* Reads still work. */
	assert_int_equal(cluster_wait_converged(c, 0), last);

	ballast_remove(f);
	wait_metric(c, 0, "cairn_disk_low", 0);
	assert_true(cluster_log_count(c, 0, "disk_ok") > 0);
	last = append_n(cl, "lone", 5);
	assert_int_equal(last, 10);
	cairn_close(cl);
	{
		struct cluster_dump d;

		cluster_dump_node(c, 0, last, &d);
		assert_int_equal(d.n, last);
		cluster_dump_free(&d);
	}
	cluster_stop_clean(c);
	cluster_passed(c);
}

static void low_node_loses_leadership_cluster_keeps_committing(void **state)
{
	struct fixture *f = *state;
	struct cluster *c = &f->c;
	cairn_client *cl;
	cairn_client *direct;
	unsigned leader;
	uint64_t last;
	uint64_t pos = 0;
	uint64_t deadline;
	int rv;

	cluster_start_args(c, "disk_three", 3, PORT_BASE_THREE, node_args);
	cluster_wait_leader(c, 0);
	move_to_tmpfs(f, 2);
	/* Make node 3 the leader when elections get it there (a killed
	 * leader is replaced by either of the others); the case holds
	 * either way. */
	leader = cluster_wait_leader(c, 0);
	for (unsigned tries = 0; leader != 2 && tries < 10; tries++) {
		cluster_node_kill(c, leader);
		cluster_wait_leader(c, 0);
		cluster_node_start(c, leader);
		leader = cluster_wait_leader(c, 0);
	}
	printf("node 3 %s the leader when its disk fills\n",
	       leader == 2 ? "is" : "is not");
	cl = cluster_client(c, -1, false, 10000);
	last = append_n(cl, "three", 20);

	ballast_fill(f);
	wait_metric(c, 2, "cairn_disk_low", 1);
	/* Node 3 stops leading... */
	deadline = cluster_now_ms() + GUARD_WAIT_MS;
	while ((leader = cluster_wait_leader(c, 0)) == 2) {
		if (cluster_now_ms() > deadline)
			fail_msg("node 3 still leads with its disk low");
		cluster_sleep_ms(100);
	}
	if (cluster_log_count(c, 2, "disk_low_transfer") > 0)
		assert_true(cluster_log_count(c, 2, "leadership_transfer") > 0);
	/* ...takes no append itself... */
	direct = cluster_client(c, 2, true, 5000);
	rv = append(direct, "three", 1000, &pos);
	assert_true(rv == CAIRN_ENOT_LEADER || rv == NO_SPACE);
	cairn_close(direct);
	/* ...and the cluster keeps committing. */
	last = append_n(cl, "three", 50);
	assert_int_equal(last, 70);
	cluster_check_alive(c);
	assert_int_equal(metric(c, 2, "cairn_disk_low"), 1);

	ballast_remove(f);
	wait_metric(c, 2, "cairn_disk_low", 0);
	last = append_n(cl, "three", 10);
	assert_int_equal(last, 80);
	cairn_close(cl);
	assert_int_equal(cluster_wait_converged(c, 0), last);
	leader = cluster_wait_leader(c, 0);
	check_same_log(c, 2, leader, last);
	cluster_stop_clean(c);
	cluster_passed(c);
}

static void start_below_reserve_waits_then_joins(void **state)
{
	struct fixture *f = *state;
	struct cluster *c = &f->c;
	static char out[8192];
	cairn_client *cl;
	unsigned leader;
	uint64_t last;
	uint64_t deadline;
	int status;

	cluster_start_args(c, "disk_startup", 3, PORT_BASE_STARTUP, node_args);
	cluster_wait_leader(c, 0);
	move_to_tmpfs(f, 2);
	cl = cluster_client(c, -1, false, 10000);
	last = append_n(cl, "startup", 10);
	assert_int_equal(cluster_wait_converged(c, 0), last);
	cluster_node_stop(c, 2);
	ballast_fill(f);
	cluster_node_start(c, 2);

	/* It waits: /health answers 503 disk_low, the process lives. */
	deadline = cluster_now_ms() + GUARD_WAIT_MS;
	while ((status = http(c->nodes[2].http_address, "GET", "/health", "",
			      out, sizeof out)) != 503) {
		if (cluster_now_ms() > deadline)
			fail_msg("node 3 never answered 503 (last %d)", status);
		cluster_sleep_ms(100);
	}
	assert_non_null(strstr(out, "disk_low"));
	assert_true(cluster_log_count(c, 2, "disk_wait") > 0);
	last = append_n(cl, "startup", 10);
	cluster_check_alive(c);

	ballast_remove(f);
	/* It starts and catches up. */
	leader = cluster_wait_leader(c, 0);
	assert_int_equal(cluster_wait_converged(c, 0), last);
	assert_true(cluster_log_count(c, 2, "action=\"starting\"") > 0);
	check_same_log(c, 2, leader, last);
	cairn_close(cl);
	cluster_stop_clean(c);
	cluster_passed(c);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	if (f == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* Lazily: a node still running keeps its files until it dies. */
	if (f->mnt[0] != '\0')
		umount2(f->mnt, MNT_DETACH);
	cluster_teardown(&f->c);
	free(f);
	return 0;
}

/* True when this process may mount a tmpfs. */
static bool can_mount(void)
{
	char dir[CLUSTER_PATH_MAX];
	bool ok;

	if (geteuid() != 0)
		return false;
	mkdir(cluster_tmp_base(), 0755);
	snprintf(dir, sizeof dir, "%s/disk-probe-%d", cluster_tmp_base(),
		 (int)getpid());
	if (mkdir(dir, 0755) != 0)
		return false;
	ok = mount("tmpfs", dir, "tmpfs", 0, "size=1m") == 0;
	if (ok)
		umount(dir);
	rmdir(dir);
	return ok;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			lone_leader_below_reserve_refuses_appends_then_recovers,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			low_node_loses_leadership_cluster_keeps_committing,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			start_below_reserve_waits_then_joins, setup, teardown),
	};

	if (!can_mount()) {
		printf("skipped: mounting a tmpfs needs root\n");
		return 77;
	}
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
