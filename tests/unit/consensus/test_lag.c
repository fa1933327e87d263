/* The lag limit of consensus/: a follower that falls further behind than
 * the log the cluster keeps after a snapshot (snapshot trailing) gets a
 * snapshot it cannot use (state transfer is not implemented), and must stop
 * with a clear error rather than run with missing events. The cluster runs
 * in a child process, since the node exits; the parent checks its exit
 * status and log.
 *
 * Ports: 20300..20309 of the consensus range. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster.h"

#define PORT 20300

/* The child: never returns. Exit status 1 with the log line is the
 * expected end; 3 means the node kept running. */
static void child(void)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	unsigned leader;
	unsigned f;
	unsigned k;

	cl_init(cl, "cons-lag", PORT);
	cl->snapshot_threshold = 4;
	cl->snapshot_trailing = 4;
	cl->inflight_entries_max = 1;
	cl_start_all(cl);
	leader = cl_leader(cl);
	f = (leader + 1) % CL_NODES;
	cl_stop(cl, f);
	for (k = 0; k < 40; k++) {
		struct cl_append *a = cl_append_new("lag", tu_any(), 1, k);

		cl_append_client(a, 4, k + 1);
		cl_append_sync(cl, a);
		cl_append_free(a);
	}
	leader = cl_leader(cl);
	/* The leader's log no longer reaches back to where f stopped. */
	if (cl->nodes[leader].cons.i->snapshots_taken < 3)
		_exit(4);
	/* f must not take a snapshot of its own while the leader's arrives:
	 * libraft 0.22.1 then dereferences NULL in takeSnapshotCb
	 * (src/legacy.c), a crash in a node that stops anyway. */
	cl->snapshot_threshold = 100000;
	cl_start(cl, f);
	/* f gets the snapshot and must exit from inside this run. */
	cl_run_for(cl, 30000);
	_exit(3);
}

static void follower_beyond_trailing_stops_with_an_error(void **state)
{
	char path[4096];
	char *base = tu_tempdir("cons-lag");
	char log[65536];
	ssize_t n;
	int status = 0;
	pid_t pid;
	int fd;

	(void)state;
	/* The child's cluster goes inside @base, which is removed after. */
	snprintf(path, sizeof path, "%s/child.log", base);
	assert_int_equal(setenv("CAIRN_TEST_TMP", base, 1), 0);
	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(5);
		child();
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, log, sizeof log - 1);
	close(fd);
	assert_true(n >= 0);
	log[n] = '\0';
	/* The node exits at once with 1; a leak-checking sanitizer build
	 * then reports what the exit left allocated and ends the process
	 * with its own status (23) or, with abort_on_error, SIGABRT. */
	bool leak_report = strstr(log, "LeakSanitizer") != NULL;
	bool stopped = (WIFEXITED(status) && WEXITSTATUS(status) == 1) ||
		       (leak_report && WIFEXITED(status) &&
			WEXITSTATUS(status) == 23) ||
		       (leak_report && WIFSIGNALED(status) &&
			WTERMSIG(status) == SIGABRT);
	if (!stopped || strstr(log, "event=snapshot_restore_failed") == NULL) {
		fprintf(stdout, "child status 0x%x, log:\n%s\n", status,
			n > 4000 ? log + n - 4000 : log);
		fail_msg("the lagging follower did not stop as expected");
	}
	assert_non_null(strstr(log, "state transfer is not implemented"));
	tu_rmdir(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(follower_beyond_trailing_stops_with_an_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
