/* The local launcher, deploy/local/cluster.sh, run as a user would: start
 * (three nodes, a leader), start again (says it runs), status, an append
 * and a read with the cairn CLI, stop, status (stopped), start again (the
 * data is still there), another append at the next position, stop. The
 * script runs on this program's ports and a scratch data directory
 * (CAIRN_LOCAL_*), without set-up or build (CAIRN_SKIP_SETUP,
 * CAIRN_SKIP_BUILD) on the binaries of this build (CAIRN_BUILD_DIR).
 *
 * The script detaches its nodes; this program makes itself a child
 * subreaper so that they end up its children once the script exits, and
 * its teardown kills whatever the pid files still name. */
#include <errno.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt): node N listens on
 * client PORT_BASE+N, HTTP PORT_BASE+10+N, Raft PORT_BASE+20+N. */
#define PORT_BASE 22600

/* Longest run of one script command (start waits up to 30 s for a
 * leader; stop up to 15 s per node). */
#define SCRIPT_TIMEOUT_MS 120000

#define CLI_TIMEOUT_MS 60000

#define OUT_MAX 65536

static char data_dir[CLUSTER_PATH_MAX];
static char seeds[256];
static char env_data[CLUSTER_PATH_MAX + 32];
static char env_build[CLUSTER_PATH_MAX + 32];
static char env_client[64], env_http[64], env_raft[64];
static char *env[] = { env_data, env_build, env_client, env_http, env_raft,
		       "CAIRN_SKIP_SETUP=1", "CAIRN_SKIP_BUILD=1",
		       /* Read by cairnd itself: quick elections. */
		       "CAIRN_ELECTION_TIMEOUT_MS=1000",
		       "CAIRN_HEARTBEAT_TIMEOUT_MS=100", NULL };
static bool passed;
static char out[OUT_MAX], err[OUT_MAX];

static int script(const char *command)
{
	char *argv[] = { CAIRN_LAUNCHER_PATH, (char *)command, NULL };
	int rc = cluster_run(argv, env, out, sizeof out, err, sizeof err,
			     SCRIPT_TIMEOUT_MS);

	printf("$ cluster.sh %s  -> exit %d\n%s%s", command, rc, out, err);
	return rc;
}

/* Runs the CLI with @args (NULL terminated) after --seeds and --json. */
static int cli(const char *const *args)
{
	char *argv[32];
	size_t n = 0;
	int rc;

	argv[n++] = CAIRN_CLI_PATH;
	argv[n++] = "--seeds";
	argv[n++] = seeds;
	argv[n++] = "--json";
	while (*args != NULL && n < 31)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	rc = cluster_run(argv, NULL, out, sizeof out, err, sizeof err,
			 CLI_TIMEOUT_MS);
	if (rc != 0)
		printf("cairn %s: exit %d\nstdout: %s\nstderr: %s\n", argv[4],
		       rc, out, err);
	return rc;
}

static json_t *parse_json(const char *text, const char *what)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);

	if (j == NULL)
		fail_msg("%s: not JSON (%s at line %d): %s", what, je.text,
			 je.line, text);
	return j;
}

/* `read --json` prints one JSON object per line: the lines as an array. */
static json_t *parse_json_lines(const char *text, const char *what)
{
	json_t *arr = json_array();
	const char *p = text;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		json_error_t je;
		json_t *j;

		if (len > 0) {
			j = json_loadb(p, len, 0, &je);
			if (j == NULL)
				fail_msg("%s: a line is not JSON (%s): %.*s",
					 what, je.text, (int)len, p);
			json_array_append_new(arr, j);
		}
		p += len + (nl != NULL);
	}
	return arr;
}

static uint64_t json_u64(json_t *obj, const char *key, const char *what)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		fail_msg("%s: no integer \"%s\" in the output", what, key);
	return (uint64_t)json_integer_value(v);
}

/* Appends one event with the CLI; checks and returns its position. */
static uint64_t cli_append(const char *stream, const char *data,
			   const char *expect, uint64_t want_version)
{
	const char *args[] = { "append",   stream,   "--type",
			       "Noted",    "--data", data,
			       "--expect", expect,   NULL };
	json_t *j;
	uint64_t position;

	assert_int_equal(cli(args), 0);
	j = parse_json(out, "cairn append --json");
	assert_string_equal(json_string_value(json_object_get(j, "stream")),
			    stream);
	assert_int_equal(json_u64(j, "version", "append"), want_version);
	assert_true(json_is_false(json_object_get(j, "duplicate")));
	position = json_u64(j, "position", "append");
	json_decref(j);
	return position;
}

/* Reads @stream with the CLI from the leader; checks it holds @n events,
 * the last with @last_data. */
static void cli_read(const char *stream, size_t n, const char *last_data)
{
	const char *args[] = { "read", stream, "--consistency", "leader",
			       NULL };
	json_t *j, *events, *last, *data;

	assert_int_equal(cli(args), 0);
	j = parse_json_lines(out, "cairn read --json");
	events = j;
	assert_int_equal(json_array_size(events), n);
	last = json_array_get(events, n - 1);
	assert_int_equal(json_u64(last, "version", "read"), n);
	data = json_object_get(last, "data");
	/* JSON data is shown as JSON. */
	if (!json_is_object(data))
		fail_msg(
			"cairn read --json: the event's data is not the JSON "
			"object appended: %s",
			out);
	{
		json_t *want = parse_json(last_data, "appended data");

		assert_true(json_equal(data, want));
		json_decref(want);
	}
	json_decref(j);
}

static pid_t read_pid(unsigned n)
{
	char path[CLUSTER_PATH_MAX + 32];
	FILE *f;
	long pid = 0;

	snprintf(path, sizeof path, "%s/node%u.pid", data_dir, n);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* Reaps the nodes that became this program's children (subreaper). */
static void reap(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
}

static void launcher_starts_stops_and_keeps_data(void **state)
{
	pid_t pids[3];
	uint64_t p1, p2;

	(void)state;
	assert_int_equal(script("start"), 0);
	assert_non_null(strstr(out, "leader elected"));
	for (unsigned n = 1; n <= 3; n++) {
		pids[n - 1] = read_pid(n);
		assert_true(pids[n - 1] > 0);
		assert_int_equal(kill(pids[n - 1], 0), 0);
	}

	/* Start again: it says so and changes nothing. */
	assert_int_equal(script("start"), 0);
	assert_non_null(strstr(out, "already running"));
	for (unsigned n = 1; n <= 3; n++)
		assert_int_equal(read_pid(n), pids[n - 1]);

	assert_int_equal(script("status"), 0);
	assert_non_null(strstr(out, "node 1: running"));
	assert_non_null(strstr(out, "node 2: running"));
	assert_non_null(strstr(out, "node 3: running"));

	p1 = cli_append("local-1", "{\"n\":1}", "no-stream", 1);
	assert_int_equal(p1, 1);
	cli_read("local-1", 1, "{\"n\":1}");

	assert_int_equal(script("stop"), 0);
	reap();
	for (unsigned n = 1; n <= 3; n++) {
		assert_int_equal(read_pid(n), 0);
		assert_int_equal(kill(pids[n - 1], 0), -1);
	}
	assert_int_equal(script("status"), 3);
	assert_non_null(strstr(out, "node 1: stopped"));
	assert_int_equal(script("stop"), 0);
	assert_non_null(strstr(out, "not running"));

	/* Start after stop keeps the data. */
	assert_int_equal(script("start"), 0);
	cli_read("local-1", 1, "{\"n\":1}");
	p2 = cli_append("local-1", "{\"n\":2}", "1", 2);
	assert_int_equal(p2, p1 + 1);
	cli_read("local-1", 2, "{\"n\":2}");

	assert_int_equal(script("stop"), 0);
	reap();
	passed = true;
}

static int setup(void **state)
{
	(void)state;
	/* Nodes the script detaches become children of this program. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(data_dir, sizeof data_dir, "%s/local-cluster-%d",
		 cluster_tmp_base(), (int)getpid());
	snprintf(env_data, sizeof env_data, "CAIRN_LOCAL_DATA=%s", data_dir);
	snprintf(env_build, sizeof env_build, "CAIRN_BUILD_DIR=%s",
		 CAIRN_BUILD_DIR);
	snprintf(env_client, sizeof env_client, "CAIRN_LOCAL_CLIENT_PORT=%u",
		 PORT_BASE + 1);
	snprintf(env_http, sizeof env_http, "CAIRN_LOCAL_HTTP_PORT=%u",
		 PORT_BASE + 11);
	snprintf(env_raft, sizeof env_raft, "CAIRN_LOCAL_RAFT_PORT=%u",
		 PORT_BASE + 21);
	snprintf(seeds, sizeof seeds, "127.0.0.1:%u,127.0.0.1:%u,127.0.0.1:%u",
		 PORT_BASE + 1, PORT_BASE + 2, PORT_BASE + 3);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 3; n++) {
		pid_t pid = read_pid(n);

		if (pid > 0 && kill(pid, 0) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	reap();
	if (!passed) {
		for (unsigned n = 1; n <= 3; n++) {
			char cmd[CLUSTER_PATH_MAX + 64];

			snprintf(cmd, sizeof cmd,
				 "echo '---- node %u log'; tail -n 40 "
				 "'%s/node%u.log'",
				 n, data_dir, n);
			if (system(cmd) != 0)
				printf("(no log for node %u)\n", n);
		}
		printf("data and logs kept in %s\n", data_dir);
	} else {
		char cmd[CLUSTER_PATH_MAX + 16];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_dir);
		if (system(cmd) != 0)
			printf("cannot remove %s\n", data_dir);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			launcher_starts_stops_and_keeps_data, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
