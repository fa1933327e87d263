/* The integration tests' harness: cairnd processes on loopback, their
 * logs, and the client-side helpers of cluster.h. Used by every program in
 * tests/integration/. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

#ifndef CAIRN_CAIRND_PATH
#error "CAIRN_CAIRND_PATH (the cairnd binary) must be defined by CMake"
#endif

extern char **environ;

/* Log lines printed per node when a test fails. */
#define LOG_TAIL_LINES 60

/* Bytes read from the end of a log to find its tail. */
#define LOG_TAIL_BYTES (64 * 1024)

/* Events asked for per page of a dump. */
#define DUMP_PAGE 1000

/* Pause between two polls of the cluster's state. */
#define POLL_MS 50

/* ------------------------------------------------------------------------
 * Every daemon this program started, killed at exit whatever happens
 * ------------------------------------------------------------------------ */

#define LIVE_MAX 64

/* Pids of running children; 0 marks a free slot. Written by the main
 * thread only; read by the exit and signal handlers. */
static volatile pid_t live[LIVE_MAX];

static void live_add(pid_t pid)
{
	for (unsigned i = 0; i < LIVE_MAX; i++) {
		if (live[i] == 0) {
			live[i] = pid;
			return;
		}
	}
	kill(pid, SIGKILL);
	fail_msg("harness: more than %d children at once", LIVE_MAX);
}

static void live_remove(pid_t pid)
{
	for (unsigned i = 0; i < LIVE_MAX; i++) {
		if (live[i] == pid)
			live[i] = 0;
	}
}

static void live_kill_all(void)
{
	for (unsigned i = 0; i < LIVE_MAX; i++) {
		pid_t pid = live[i];

		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			live[i] = 0;
		}
	}
}

static void on_fatal_signal(int sig)
{
	live_kill_all();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void harness_init(void)
{
	static bool done;
	struct sigaction sa;

	if (done)
		return;
	done = true;
	atexit(live_kill_all);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

uint64_t cluster_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void cluster_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000,
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

const char *cluster_tmp_base(void)
{
	const char *base = getenv("CAIRN_TEST_TMP");

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	return base;
}

static unsigned env_unsigned(const char *name, unsigned dflt)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (v == NULL || v[0] == '\0')
		return dflt;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || n == 0 || n > 600000)
		fail_msg("harness: %s=%s is not a number of ms", name, v);
	return (unsigned)n;
}

static void rm_rf(const char *dir)
{
	char *argv[] = { "rm", "-rf", (char *)dir, NULL };
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void mkdir_p(const char *path)
{
	char buf[CLUSTER_PATH_MAX];
	size_t len = strlen(path);

	assert_true(len < sizeof buf);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				fail_msg("mkdir %s: %s", buf, strerror(errno));
			*p = '/';
		}
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", buf, strerror(errno));
}

static const char *describe_status(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(st),
			 strsignal(WTERMSIG(st)),
			 WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(buf, cap, "wait status 0x%x", st);
	return buf;
}

/* ------------------------------------------------------------------------
 * Logs
 * ------------------------------------------------------------------------ */

/* Reads up to the last @cap - 1 bytes of @path into @buf; returns the
 * length, or -1 when the file cannot be read. */
static ssize_t read_tail(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	off_t off = 0;
	ssize_t n = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)(cap - 1))
		off = st.st_size - (off_t)(cap - 1);
	while ((size_t)n < cap - 1) {
		ssize_t r = pread(fd, buf + n, cap - 1 - (size_t)n, off + n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = '\0';
	return n;
}

void cluster_print_logs(const struct cluster *c, unsigned lines)
{
	char *buf = malloc(LOG_TAIL_BYTES);

	if (buf == NULL)
		return;
	for (unsigned k = 0; k < c->n; k++) {
		const struct cluster_node *nd = &c->nodes[k];
		ssize_t len = read_tail(nd->log_path, buf, LOG_TAIL_BYTES);
		const char *start;
		unsigned seen = 0;

		fprintf(stdout,
			"---- %s node %u (%s, pid %d) log: last %u "
			"lines ----\n",
			c->name, nd->id, nd->log_path, (int)nd->pid, lines);
		if (len < 0) {
			fprintf(stdout, "(cannot read: %s)\n", strerror(errno));
			continue;
		}
		start = buf + len;
		while (start > buf) {
			if (start[-1] == '\n' && start != buf + len &&
			    ++seen > lines)
				break;
			start--;
		}
		fputs(start, stdout);
		if (len > 0 && buf[len - 1] != '\n')
			fputc('\n', stdout);
	}
	fprintf(stdout, "---- end of %s logs ----\n", c->name);
	fflush(stdout);
	free(buf);
}

/* Fails the test with a message after printing the logs. */
#define cluster_fail(c, ...)                             \
	do {                                             \
		cluster_print_logs((c), LOG_TAIL_LINES); \
		fail_msg(__VA_ARGS__);                   \
	} while (0)

void cluster_check_logs(const struct cluster *c)
{
	static const char *const bad[] = { "assert", "Assertion", "Sanitizer",
					   "runtime error" };

	for (unsigned k = 0; k < c->n; k++) {
		const struct cluster_node *nd = &c->nodes[k];
		FILE *f = fopen(nd->log_path, "r");
		char line[4096];
		unsigned no = 0;

		if (f == NULL)
			fail_msg("cannot open %s: %s", nd->log_path,
				 strerror(errno));
		while (fgets(line, sizeof line, f) != NULL) {
			no++;
			for (size_t i = 0; i < sizeof bad / sizeof bad[0];
			     i++) {
				if (strstr(line, bad[i]) == NULL)
					continue;
				fclose(f);
				cluster_fail(c,
					     "node %u's log %s line %u "
					     "holds \"%s\": %s",
					     nd->id, nd->log_path, no, bad[i],
					     line);
			}
		}
		fclose(f);
	}
}

unsigned cluster_log_count(const struct cluster *c, unsigned k,
			   const char *needle)
{
	FILE *f = fopen(c->nodes[k].log_path, "r");
	char line[4096];
	unsigned n = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, needle) != NULL)
			n++;
	}
	fclose(f);
	return n;
}

/* ------------------------------------------------------------------------
 * Processes
 * ------------------------------------------------------------------------ */

void cluster_start(struct cluster *c, const char *name, unsigned n,
		   unsigned port_base)
{
	cluster_start_args(c, name, n, port_base, NULL);
}

void cluster_start_args(struct cluster *c, const char *name, unsigned n,
			unsigned port_base, const char *const *extra_args)
{
	size_t off = 0;

	harness_init();
	assert_true(n >= 1 && n <= CLUSTER_NODES_MAX);
	memset(c, 0, sizeof *c);
	for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
		assert_true(i < CLUSTER_EXTRA_ARGS_MAX);
		c->extra_args[i] = extra_args[i];
	}
	snprintf(c->name, sizeof c->name, "%s", name);
	if ((size_t)snprintf(c->root, sizeof c->root, "%s/%s-%d",
			     cluster_tmp_base(), name,
			     (int)getpid()) >= sizeof c->root)
		fail_msg("harness: CAIRN_TEST_TMP is too long");
	c->n = n;
	c->election_timeout_ms = env_unsigned("CAIRN_TEST_ELECTION_TIMEOUT_MS",
					      CLUSTER_ELECTION_TIMEOUT_MS);
	c->heartbeat_timeout_ms =
		env_unsigned("CAIRN_TEST_HEARTBEAT_TIMEOUT_MS",
			     CLUSTER_HEARTBEAT_TIMEOUT_MS);
	rm_rf(c->root);
	mkdir_p(c->root);

	for (unsigned k = 0; k < n; k++) {
		struct cluster_node *nd = &c->nodes[k];

		nd->id = k + 1;
		snprintf(nd->client_address, sizeof nd->client_address,
			 "127.0.0.1:%u", port_base + nd->id);
		snprintf(nd->raft_address, sizeof nd->raft_address,
			 "127.0.0.1:%u", port_base + 10 + nd->id);
		snprintf(nd->http_address, sizeof nd->http_address,
			 "127.0.0.1:%u", port_base + 20 + nd->id);
		snprintf(nd->dir, sizeof nd->dir, "%s/node%u", c->root, nd->id);
		snprintf(nd->log_path, sizeof nd->log_path, "%s/node%u.log",
			 c->root, nd->id);
		off += (size_t)snprintf(c->peers + off, sizeof c->peers - off,
					"%s%u=%s/%s/%s", k ? "," : "", nd->id,
					nd->raft_address, nd->client_address,
					nd->http_address);
		assert_true(off < sizeof c->peers);
	}
	off = 0;
	for (unsigned k = 0; k < n; k++) {
		off += (size_t)snprintf(c->seeds + off, sizeof c->seeds - off,
					"%s%s", k ? "," : "",
					c->nodes[k].client_address);
		assert_true(off < sizeof c->seeds);
	}
	for (unsigned k = 0; k < n; k++)
		cluster_node_start(c, k);
}

void cluster_node_start(struct cluster *c, unsigned k)
{
	struct cluster_node *nd = &c->nodes[k];
	char id[16], et[16], ht[16];
	const char *level = getenv("CAIRN_TEST_LOG_LEVEL");
	char *argv[20 + CLUSTER_EXTRA_ARGS_MAX + 1];
	size_t argc = 0;
	pid_t parent = getpid();
	char mark[256];
	int log_fd;
	int null_fd;
	pid_t pid;

	assert_true(k < c->n);
	assert_int_equal(nd->pid, 0);
	snprintf(id, sizeof id, "%u", nd->id);
	snprintf(et, sizeof et, "%u", c->election_timeout_ms);
	snprintf(ht, sizeof ht, "%u", c->heartbeat_timeout_ms);
	argv[argc++] = CAIRN_CAIRND_PATH;
	argv[argc++] = "--id";
	argv[argc++] = id;
	argv[argc++] = "--data-dir";
	argv[argc++] = nd->dir;
	argv[argc++] = "--raft-address";
	argv[argc++] = nd->raft_address;
	argv[argc++] = "--client-address";
	argv[argc++] = nd->client_address;
	argv[argc++] = "--http-address";
	argv[argc++] = nd->http_address;
	argv[argc++] = "--peers";
	argv[argc++] = c->peers;
	argv[argc++] = "--election-timeout-ms";
	argv[argc++] = et;
	argv[argc++] = "--heartbeat-timeout-ms";
	argv[argc++] = ht;
	argv[argc++] = "--log-level";
	argv[argc++] = (char *)(level != NULL ? level : "info");
	for (size_t i = 0; c->extra_args[i] != NULL; i++)
		argv[argc++] = (char *)c->extra_args[i];
	argv[argc] = NULL;

	log_fd = open(nd->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0644);
	if (log_fd < 0)
		fail_msg("open %s: %s", nd->log_path, strerror(errno));
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null_fd >= 0);
	snprintf(mark, sizeof mark, "==== harness: starting node %u (%s)\n",
		 nd->id, CAIRN_CAIRND_PATH);
	if (write(log_fd, mark, strlen(mark)) < 0) {
		/* The mark is a convenience; the log itself matters. */
	}

	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Async-signal-safe calls only until exec. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(null_fd, 0);
		dup2(log_fd, 1);
		dup2(log_fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(log_fd);
	close(null_fd);
	live_add(pid);
	nd->pid = pid;
}

static void reaped(struct cluster_node *nd, int st)
{
	live_remove(nd->pid);
	nd->pid = 0;
	nd->last_status = st;
	nd->exited = true;
}

void cluster_node_kill(struct cluster *c, unsigned k)
{
	struct cluster_node *nd = &c->nodes[k];
	int st;

	assert_true(k < c->n);
	if (nd->pid == 0)
		cluster_fail(c, "kill node %u: it is not running", nd->id);
	kill(nd->pid, SIGKILL);
	while (waitpid(nd->pid, &st, 0) < 0) {
		if (errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
	}
	reaped(nd, st);
}

/* Waits (bounded) for node @k, already sent SIGTERM, to exit with 0. */
static void wait_stopped(struct cluster *c, unsigned k, uint64_t deadline)
{
	struct cluster_node *nd = &c->nodes[k];
	char how[128];
	int st;

	for (;;) {
		pid_t r = waitpid(nd->pid, &st, WNOHANG);

		if (r == nd->pid)
			break;
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
		if (cluster_now_ms() > deadline) {
			kill(nd->pid, SIGKILL);
			waitpid(nd->pid, &st, 0);
			reaped(nd, st);
			cluster_fail(c,
				     "node %u did not exit within %d ms of "
				     "SIGTERM",
				     nd->id, CLUSTER_STOP_WAIT_MS);
		}
		cluster_sleep_ms(20);
	}
	reaped(nd, st);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		cluster_fail(c,
			     "node %u after SIGTERM: %s (expected a clean "
			     "exit with status 0)",
			     nd->id, describe_status(st, how, sizeof how));
}

void cluster_node_stop(struct cluster *c, unsigned k)
{
	assert_true(k < c->n);
	if (c->nodes[k].pid == 0)
		cluster_fail(c, "stop node %u: it is not running",
			     c->nodes[k].id);
	kill(c->nodes[k].pid, SIGTERM);
	wait_stopped(c, k, cluster_now_ms() + CLUSTER_STOP_WAIT_MS);
}

void cluster_stop_clean(struct cluster *c)
{
	uint64_t deadline = cluster_now_ms() + CLUSTER_STOP_WAIT_MS;

	cluster_check_alive(c);
	/* Every node is signalled first, so that they stop together and
	 * the whole stop takes as long as the slowest node (a leader waits,
	 * bounded, for a leadership transfer). */
	for (unsigned k = 0; k < c->n; k++) {
		if (c->nodes[k].pid != 0)
			kill(c->nodes[k].pid, SIGTERM);
	}
	for (unsigned k = 0; k < c->n; k++) {
		if (c->nodes[k].pid != 0)
			wait_stopped(c, k, deadline);
	}
	cluster_check_logs(c);
}

void cluster_check_alive(struct cluster *c)
{
	for (unsigned k = 0; k < c->n; k++) {
		struct cluster_node *nd = &c->nodes[k];
		char how[128];
		int st;

		if (nd->pid == 0)
			continue;
		if (waitpid(nd->pid, &st, WNOHANG) != nd->pid)
			continue;
		reaped(nd, st);
		cluster_fail(c, "node %u died: %s", nd->id,
			     describe_status(st, how, sizeof how));
	}
}

void cluster_passed(struct cluster *c)
{
	c->passed = true;
}

void cluster_teardown(struct cluster *c)
{
	if (c->n == 0)
		return;
	for (unsigned k = 0; k < c->n; k++) {
		struct cluster_node *nd = &c->nodes[k];

		if (nd->pid != 0) {
			kill(nd->pid, SIGKILL);
			waitpid(nd->pid, NULL, 0);
			live_remove(nd->pid);
			nd->pid = 0;
		}
	}
	if (!c->passed) {
		cluster_print_logs(c, LOG_TAIL_LINES);
		fprintf(stdout, "%s: data and logs kept in %s\n", c->name,
			c->root);
	} else if (getenv("CAIRN_TEST_KEEP") == NULL) {
		rm_rf(c->root);
	}
	c->n = 0;
}

/* ------------------------------------------------------------------------
 * Clients and statuses
 * ------------------------------------------------------------------------ */

cairn_client *cluster_client(const struct cluster *c, int k, bool single_node,
			     unsigned deadline_ms)
{
	struct cairn_options o;
	struct cairn_error err;
	cairn_client *cl = NULL;
	int rv;

	memset(&o, 0, sizeof o);
	o.deadline_ms = deadline_ms;
	o.single_node = single_node;
	rv = cairn_open(k < 0 ? c->seeds : c->nodes[k].client_address, &o, &cl,
			&err);
	if (rv != 0)
		fail_msg("cairn_open: %s (%d: %s)", cairn_strerror(rv),
			 err.code, err.message);
	assert_non_null(cl);
	return cl;
}

int cluster_status(const struct cluster *c, unsigned k, struct cairn_status *s,
		   unsigned deadline_ms)
{
	struct cairn_options o;
	struct cairn_error err;
	cairn_client *cl = NULL;
	int rv;

	memset(&o, 0, sizeof o);
	o.deadline_ms = deadline_ms;
	o.connect_timeout_ms = deadline_ms;
	o.single_node = true;
	rv = cairn_open(c->nodes[k].client_address, &o, &cl, &err);
	if (rv != 0)
		return rv;
	rv = cairn_status(cl, NULL, s, &err);
	cairn_close(cl);
	if (rv == 0 && s->node_id != c->nodes[k].id)
		cluster_fail(c, "node %u's status says node_id %" PRIu64,
			     c->nodes[k].id, s->node_id);
	return rv;
}

static const char *role_name(int role)
{
	switch (role) {
	case CAIRN_ROLE_FOLLOWER:
		return "follower";
	case CAIRN_ROLE_CANDIDATE:
		return "candidate";
	case CAIRN_ROLE_LEADER:
		return "leader";
	case CAIRN_ROLE_UNAVAILABLE:
		return "unavailable";
	default:
		return "?";
	}
}

/* The members of @s whose id and client address are this cluster's. */
static unsigned members_known(const struct cluster *c,
			      const struct cairn_status *s)
{
	unsigned known = 0;

	for (size_t m = 0; m < s->n_members && m < 16; m++) {
		for (unsigned k = 0; k < c->n; k++) {
			if (s->members[m].id == c->nodes[k].id &&
			    strcmp(s->members[m].client_address,
				   c->nodes[k].client_address) == 0)
				known++;
		}
	}
	return known;
}

unsigned cluster_wait_leader(struct cluster *c, unsigned timeout_ms)
{
	uint64_t start = cluster_now_ms();
	uint64_t deadline =
		start + (timeout_ms ? timeout_ms : CLUSTER_LEADER_WAIT_MS);
	struct cairn_status s[CLUSTER_NODES_MAX];
	int rv[CLUSTER_NODES_MAX];
	char seen[1024];

	for (;;) {
		int leader = -1;
		bool agreed = true;
		size_t off = 0;

		cluster_check_alive(c);
		for (unsigned k = 0; k < c->n; k++) {
			if (c->nodes[k].pid == 0)
				continue;
			rv[k] = cluster_status(c, k, &s[k], 1000);
			if (rv[k] == 0 && s[k].role == CAIRN_ROLE_LEADER &&
			    (leader < 0 || s[k].term > s[leader].term))
				leader = (int)k;
		}
		for (unsigned k = 0; k < c->n && leader >= 0; k++) {
			if (c->nodes[k].pid == 0 || (int)k == leader)
				continue;
			if (rv[k] != 0 ||
			    s[k].leader_id != c->nodes[leader].id ||
			    s[k].role != CAIRN_ROLE_FOLLOWER)
				agreed = false;
		}
		/* And everyone knows every member's client address (the
		 * replicated member table), or followers cannot redirect. */
		for (unsigned k = 0; k < c->n && leader >= 0; k++) {
			if (c->nodes[k].pid != 0 && rv[k] == 0 &&
			    members_known(c, &s[k]) != c->n)
				agreed = false;
		}
		if (leader >= 0 && agreed)
			return (unsigned)leader;
		if (cluster_now_ms() > deadline) {
			for (unsigned k = 0; k < c->n; k++) {
				if (c->nodes[k].pid == 0)
					continue;
				if (rv[k] != 0)
					off += (size_t)snprintf(
						seen + off, sizeof seen - off,
						" node %u: %s;", c->nodes[k].id,
						cairn_strerror(rv[k]));
				else
					off += (size_t)snprintf(
						seen + off, sizeof seen - off,
						" node %u: %s term %" PRIu64
						" leader %" PRIu64
						" members known %u/%u;",
						c->nodes[k].id,
						role_name(s[k].role), s[k].term,
						s[k].leader_id,
						members_known(c, &s[k]), c->n);
				if (off >= sizeof seen)
					break;
			}
			cluster_fail(c, "no leader agreed on within %u ms:%s",
				     (unsigned)(cluster_now_ms() - start),
				     seen);
		}
		cluster_sleep_ms(POLL_MS);
	}
}

uint64_t cluster_wait_converged(struct cluster *c, unsigned timeout_ms)
{
	uint64_t deadline = cluster_now_ms() +
			    (timeout_ms ? timeout_ms : CLUSTER_LEADER_WAIT_MS);
	uint64_t previous = UINT64_MAX;

	for (;;) {
		uint64_t pos = UINT64_MAX;
		bool same = true;
		struct cairn_status s;
		char seen[512];
		size_t off = 0;

		cluster_check_alive(c);
		for (unsigned k = 0; k < c->n; k++) {
			int rv;

			if (c->nodes[k].pid == 0)
				continue;
			rv = cluster_status(c, k, &s, 2000);
			if (rv != 0) {
				same = false;
				off += (size_t)snprintf(
					seen + off, sizeof seen - off,
					" node %u: %s;", c->nodes[k].id,
					cairn_strerror(rv));
			} else {
				if (pos != UINT64_MAX && pos != s.last_position)
					same = false;
				pos = s.last_position;
				off += (size_t)snprintf(
					seen + off, sizeof seen - off,
					" node %u: last position %" PRIu64 ";",
					c->nodes[k].id, s.last_position);
			}
			if (off >= sizeof seen)
				off = sizeof seen - 1;
		}
		if (same && pos != UINT64_MAX && pos == previous)
			return pos;
		previous = same ? pos : UINT64_MAX;
		if (cluster_now_ms() > deadline)
			cluster_fail(c, "nodes did not converge:%s", seen);
		cluster_sleep_ms(2 * POLL_MS);
	}
}

/* ------------------------------------------------------------------------
 * Dumps
 * ------------------------------------------------------------------------ */

static void *dup_bytes(const void *p, size_t len)
{
	uint8_t *q = malloc(len + 1);

	assert_non_null(q);
	if (len > 0)
		memcpy(q, p, len);
	q[len] = 0;
	return q;
}

void cluster_dump_node(const struct cluster *c, unsigned k,
		       uint64_t min_position, struct cluster_dump *d)
{
	cairn_client *cl =
		cluster_client(c, (int)k, true, CLUSTER_CALL_DEADLINE_MS);
	struct cairn_read_options ro = { .consistency =
						 CAIRN_CONSISTENCY_AT_LEAST,
					 .min_position = min_position,
					 .limit = DUMP_PAGE };
	size_t cap = 0;
	uint64_t from = 1;

	memset(d, 0, sizeof *d);
	for (;;) {
		struct cairn_page page;
		struct cairn_error err;
		int rv;

		memset(&page, 0, sizeof page);
		rv = cairn_read_all(cl, from, NULL, &ro, &page, &err);
		if (rv != 0) {
			cairn_close(cl);
			cluster_fail(c,
				     "dump node %u: read_all from %" PRIu64
				     " (at least %" PRIu64 "): %s: %s",
				     c->nodes[k].id, from, min_position,
				     cairn_strerror(rv), err.message);
		}
		for (size_t i = 0; i < page.n; i++) {
			const struct cairn_event *e = &page.events[i];
			struct cluster_event *o;

			if (e->position != d->n + 1) {
				uint64_t got = e->position;

				cairn_page_free(&page);
				cairn_close(cl);
				cluster_fail(c,
					     "dump node %u: event %zu has "
					     "position %" PRIu64
					     " (expected %zu: gap or "
					     "repeat)",
					     c->nodes[k].id, d->n, got,
					     d->n + 1);
			}
			if (d->n == cap) {
				cap = cap ? cap * 2 : 256;
				d->events = realloc(d->events,
						    cap * sizeof *d->events);
				assert_non_null(d->events);
			}
			o = &d->events[d->n++];
			o->position = e->position;
			o->version = e->version;
			o->stream = dup_bytes(e->stream, e->stream_len);
			memcpy(o->id, e->id, 16);
			o->type = dup_bytes(e->type, e->type_len);
			o->schema_version = e->schema_version;
			o->event_time_us = e->event_time_us;
			o->commit_time_us = e->commit_time_us;
			o->has_client = e->has_client;
			memcpy(o->client_id, e->client_id, 16);
			o->client_seq = e->client_seq;
			o->data = dup_bytes(e->data, e->data_len);
			o->data_len = e->data_len;
			o->metadata = dup_bytes(e->metadata, e->metadata_len);
			o->metadata_len = e->metadata_len;
		}
		if (page.end) {
			cairn_page_free(&page);
			break;
		}
		if (page.next <= from && page.n == 0) {
			uint64_t next = page.next;

			cairn_page_free(&page);
			cairn_close(cl);
			cluster_fail(c,
				     "dump node %u: read_all from %" PRIu64
				     " returned nothing, not the end, and "
				     "next %" PRIu64,
				     c->nodes[k].id, from, next);
		}
		from = page.next;
		cairn_page_free(&page);
	}
	cairn_close(cl);
	if (d->n < min_position)
		cluster_fail(c,
			     "dump node %u: %zu events, at least %" PRIu64
			     " expected",
			     c->nodes[k].id, d->n, min_position);
}

void cluster_dump_free(struct cluster_dump *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->events[i].stream);
		free(d->events[i].type);
		free(d->events[i].data);
		free(d->events[i].metadata);
	}
	free(d->events);
	memset(d, 0, sizeof *d);
}

void cluster_dump_compare(const struct cluster_dump *a, const char *a_name,
			  const struct cluster_dump *b, const char *b_name)
{
	size_t n = a->n < b->n ? a->n : b->n;

	for (size_t i = 0; i < n; i++) {
		const struct cluster_event *x = &a->events[i];
		const struct cluster_event *y = &b->events[i];
		const char *what = NULL;

		if (x->position != y->position)
			what = "position";
		else if (x->version != y->version)
			what = "version";
		else if (strcmp(x->stream, y->stream) != 0)
			what = "stream";
		else if (memcmp(x->id, y->id, 16) != 0)
			what = "event id";
		else if (strcmp(x->type, y->type) != 0)
			what = "type";
		else if (x->schema_version != y->schema_version)
			what = "schema version";
		else if (x->event_time_us != y->event_time_us)
			what = "event time";
		else if (x->commit_time_us != y->commit_time_us)
			what = "commit time";
		else if (x->has_client != y->has_client ||
			 memcmp(x->client_id, y->client_id, 16) != 0 ||
			 x->client_seq != y->client_seq)
			what = "client id/sequence";
		else if (x->data_len != y->data_len ||
			 memcmp(x->data, y->data, x->data_len) != 0)
			what = "data";
		else if (x->metadata_len != y->metadata_len ||
			 memcmp(x->metadata, y->metadata, x->metadata_len) != 0)
			what = "metadata";
		if (what != NULL)
			fail_msg(
				"%s and %s differ at position %zu in the %s: "
				"%s v%" PRIu64 " vs %s v%" PRIu64,
				a_name, b_name, i + 1, what, x->stream,
				x->version, y->stream, y->version);
	}
	if (a->n != b->n)
		fail_msg("%s holds %zu events, %s %zu", a_name, a->n, b_name,
			 b->n);
}

/* ------------------------------------------------------------------------
 * Programs
 * ------------------------------------------------------------------------ */

/* Reads the whole of @fd from its start into @buf (NUL-terminated). */
static void slurp(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	if (buf == NULL || cap == 0)
		return;
	while (n < cap - 1) {
		ssize_t r = pread(fd, buf + n, cap - 1 - n, (off_t)n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
}

static int temp_fd(void)
{
	char path[CLUSTER_PATH_MAX];
	int fd;

	snprintf(path, sizeof path, "%s/run-XXXXXX", cluster_tmp_base());
	fd = mkstemp(path);
	if (fd < 0)
		fail_msg("mkstemp %s: %s", path, strerror(errno));
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	unlink(path);
	return fd;
}

int cluster_run(char *const argv[], char *const env_extra[], char *out,
		size_t out_cap, char *err, size_t err_cap, unsigned timeout_ms)
{
	size_t n_env = 0, n_extra = 0, k = 0;
	char **envp;
	int out_fd, err_fd, null_fd;
	pid_t parent = getpid();
	uint64_t deadline = cluster_now_ms() + timeout_ms;
	char how[128];
	pid_t pid;
	int st;

	harness_init();
	while (environ[n_env] != NULL)
		n_env++;
	while (env_extra != NULL && env_extra[n_extra] != NULL)
		n_extra++;
	envp = calloc(n_env + n_extra + 1, sizeof *envp);
	assert_non_null(envp);
	for (size_t i = 0; i < n_env; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t key_len = eq ? (size_t)(eq - environ[i]) + 1 : 0;
		bool overridden = false;

		for (size_t j = 0; j < n_extra && key_len > 0; j++) {
			if (strncmp(env_extra[j], environ[i], key_len) == 0)
				overridden = true;
		}
		if (!overridden)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < n_extra; j++)
		envp[k++] = env_extra[j];
	envp[k] = NULL;

	out_fd = temp_fd();
	err_fd = temp_fd();
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null_fd >= 0);

	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		setpgid(0, 0);
		dup2(null_fd, 0);
		dup2(out_fd, 1);
		dup2(err_fd, 2);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	free(envp);
	close(null_fd);
	live_add(pid);
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			fail_msg("waitpid: %s", strerror(errno));
		if (cluster_now_ms() > deadline) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			live_remove(pid);
			slurp(out_fd, out, out_cap);
			slurp(err_fd, err, err_cap);
			close(out_fd);
			close(err_fd);
			fail_msg("%s did not finish within %u ms%s%s", argv[0],
				 timeout_ms, err ? "; stderr: " : "",
				 err ? err : "");
		}
		cluster_sleep_ms(10);
	}
	live_remove(pid);
	slurp(out_fd, out, out_cap);
	slurp(err_fd, err, err_cap);
	close(out_fd);
	close(err_fd);
	if (!WIFEXITED(st))
		fail_msg("%s %s", argv[0],
			 describe_status(st, how, sizeof how));
	return WEXITSTATUS(st);
}

/* ------------------------------------------------------------------------
 * Nodes that join a running cluster
 * ------------------------------------------------------------------------ */

void cluster_node_start_join(struct cluster *c, unsigned k, const char *seeds)
{
	struct cluster_node *nd = &c->nodes[k];
	char id[16], et[16], ht[16];
	const char *level = getenv("CAIRN_TEST_LOG_LEVEL");
	char *argv[20 + CLUSTER_EXTRA_ARGS_MAX + 1];
	size_t argc = 0;
	pid_t parent = getpid();
	unsigned base;
	int log_fd;
	int null_fd;
	pid_t pid;

	assert_true(k < CLUSTER_NODES_MAX);
	assert_true(c->n >= 1);
	if (k >= c->n) {
		/* The block's layout (cluster_start_args): client base+K. */
		base = (unsigned)strtoul(
			       strrchr(c->nodes[0].client_address, ':') + 1,
			       NULL, 10) -
		       1;
		for (unsigned j = c->n; j <= k; j++) {
			struct cluster_node *m = &c->nodes[j];

			memset(m, 0, sizeof *m);
			m->id = j + 1;
			snprintf(m->client_address, sizeof m->client_address,
				 "127.0.0.1:%u", base + m->id);
			snprintf(m->raft_address, sizeof m->raft_address,
				 "127.0.0.1:%u", base + 10 + m->id);
			snprintf(m->http_address, sizeof m->http_address,
				 "127.0.0.1:%u", base + 20 + m->id);
			snprintf(m->dir, sizeof m->dir, "%s/node%u", c->root,
				 m->id);
			snprintf(m->log_path, sizeof m->log_path,
				 "%s/node%u.log", c->root, m->id);
		}
		c->n = k + 1;
	}
	assert_int_equal(nd->pid, 0);
	snprintf(id, sizeof id, "%u", nd->id);
	snprintf(et, sizeof et, "%u", c->election_timeout_ms);
	snprintf(ht, sizeof ht, "%u", c->heartbeat_timeout_ms);
	argv[argc++] = CAIRN_CAIRND_PATH;
	argv[argc++] = "--id";
	argv[argc++] = id;
	argv[argc++] = "--data-dir";
	argv[argc++] = nd->dir;
	argv[argc++] = "--raft-address";
	argv[argc++] = nd->raft_address;
	argv[argc++] = "--client-address";
	argv[argc++] = nd->client_address;
	argv[argc++] = "--http-address";
	argv[argc++] = nd->http_address;
	argv[argc++] = "--join";
	argv[argc++] = (char *)seeds;
	argv[argc++] = "--election-timeout-ms";
	argv[argc++] = et;
	argv[argc++] = "--heartbeat-timeout-ms";
	argv[argc++] = ht;
	argv[argc++] = "--log-level";
	argv[argc++] = (char *)(level != NULL ? level : "info");
	for (size_t i = 0; c->extra_args[i] != NULL; i++)
		argv[argc++] = (char *)c->extra_args[i];
	argv[argc] = NULL;

	log_fd = open(nd->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0644);
	if (log_fd < 0)
		fail_msg("open %s: %s", nd->log_path, strerror(errno));
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(null_fd >= 0);
	pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(null_fd, 0);
		dup2(log_fd, 1);
		dup2(log_fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(log_fd);
	close(null_fd);
	live_add(pid);
	nd->pid = pid;
}

void cluster_node_wipe(struct cluster *c, unsigned k)
{
	assert_true(k < c->n);
	assert_int_equal(c->nodes[k].pid, 0);
	rm_rf(c->nodes[k].dir);
}
