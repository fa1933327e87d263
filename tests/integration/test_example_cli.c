/* The example program and a session of the cairn CLI against a real
 * cluster: docs/example.c (target example_append_read, seeds in argv[1])
 * exits 0; the CLI appends with --json (stream, version, position,
 * duplicate), retries with an explicit --client-id/--seq (duplicate),
 * reads back with --json, shows a head and the status, and exits with the
 * documented codes: 3 for a wrong --expect, 6 for a stale sequence, 2 for
 * an unknown command, 4 when no node answers. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). The last one is
 * never listened on: the CLI's "unavailable" case. */
#define PORT_BASE   22400
#define PORT_NOBODY (PORT_BASE + 199)

#define RUN_TIMEOUT_MS 60000
#define OUT_MAX        65536

static char out[OUT_MAX], err[OUT_MAX];

/* Runs the CLI with --seeds @seeds and @args (NULL terminated). */
static int cli(const char *seeds, const char *const *args)
{
	char *argv[40];
	size_t n = 0;
	int rc;

	argv[n++] = CAIRN_CLI_PATH;
	argv[n++] = "--seeds";
	argv[n++] = (char *)seeds;
	while (*args != NULL && n < 39)
		argv[n++] = (char *)*args++;
	argv[n] = NULL;
	rc = cluster_run(argv, NULL, out, sizeof out, err, sizeof err,
			 RUN_TIMEOUT_MS);
	printf("$ cairn");
	for (size_t i = 1; i < n; i++)
		printf(" %s", argv[i]);
	printf("  -> exit %d\n%s%s", rc, out, err);
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
		fail_msg("%s: no integer \"%s\" in %s", what, key, out);
	return (uint64_t)json_integer_value(v);
}

/* Checks an `append --json` output. Returns the position. */
static uint64_t check_append(const char *stream, uint64_t version,
			     bool duplicate)
{
	json_t *j = parse_json(out, "append --json");
	uint64_t position;

	if (!json_is_string(json_object_get(j, "stream")))
		fail_msg("append --json: no \"stream\": %s", out);
	assert_string_equal(json_string_value(json_object_get(j, "stream")),
			    stream);
	assert_int_equal(json_u64(j, "version", "append --json"), version);
	if (!json_is_boolean(json_object_get(j, "duplicate")))
		fail_msg("append --json: no boolean \"duplicate\": %s", out);
	assert_int_equal(json_is_true(json_object_get(j, "duplicate")),
			 duplicate);
	position = json_u64(j, "position", "append --json");
	json_decref(j);
	return position;
}

static void example_program_runs_against_the_cluster(void **state)
{
	struct cluster *c = *state;
	char *argv[] = { CAIRN_EXAMPLE_PATH, c->seeds, NULL };
	int rc;

	cluster_start(c, "example", 3, PORT_BASE);
	cluster_wait_leader(c, 0);
	rc = cluster_run(argv, NULL, out, sizeof out, err, sizeof err,
			 RUN_TIMEOUT_MS);
	printf("example_append_read %s -> exit %d\n%s%s", c->seeds, rc, out,
	       err);
	assert_int_equal(rc, 0);
	cluster_stop_clean(c);
	cluster_passed(c);
}

static void cli_session_appends_reads_and_exits_with_its_codes(void **state)
{
	struct cluster *c = *state;
	char nobody[32];
	char client_id[37];
	uint8_t id[16];
	uint64_t p1, p2;
	json_t *j, *events;

	cluster_start(c, "cli", 3, PORT_BASE + CLUSTER_PORTS);
	cluster_wait_leader(c, 0);
	cairn_uuid(id);
	cairn_uuid_format(id, client_id);

	{
		const char *a[] = { "--json",
				    "append",
				    "cli-1",
				    "--type",
				    "Opened",
				    "--data",
				    "{\"owner\":\"ann\"}",
				    "--expect",
				    "no-stream",
				    NULL };

		assert_int_equal(cli(c->seeds, a), 0);
		p1 = check_append("cli-1", 1, false);
	}
	{
		/* An explicit key, sent twice: the second is a duplicate with
		 * the first's result. */
		const char *a[] = {
			"--json",  "append",      "cli-1",           "--type",
			"Renamed", "--data",      "{\"to\":\"bo\"}", "--expect",
			"1",       "--client-id", client_id,         "--seq",
			"7",       NULL
		};

		assert_int_equal(cli(c->seeds, a), 0);
		p2 = check_append("cli-1", 2, false);
		assert_int_equal(p2, p1 + 1);
		assert_int_equal(cli(c->seeds, a), 0);
		assert_int_equal(check_append("cli-1", 2, true), p2);
	}
	{
		/* Below the key's high-water mark, never committed: stale. */
		const char *a[] = { "append", "cli-1", "--type",      "Renamed",
				    "--data", "{}",    "--client-id", client_id,
				    "--seq",  "3",     NULL };

		assert_int_equal(cli(c->seeds, a), 6);
	}
	{
		const char *a[] = { "--json",        "read",   "cli-1",
				    "--consistency", "leader", NULL };
		json_t *e;

		assert_int_equal(cli(c->seeds, a), 0);
		j = parse_json_lines(out, "read --json");
		events = j;
		assert_int_equal(json_array_size(events), 2);
		e = json_array_get(events, 0);
		assert_int_equal(json_u64(e, "position", "read"), p1);
		assert_string_equal(
			json_string_value(json_object_get(e, "stream")),
			"cli-1");
		/* JSON data is shown as JSON. */
		assert_string_equal(
			json_string_value(json_object_get(
				json_object_get(e, "data"), "owner")),
			"ann");
		e = json_array_get(events, 1);
		assert_int_equal(json_u64(e, "version", "read"), 2);
		assert_int_equal(json_u64(e, "position", "read"), p2);
		assert_string_equal(
			json_string_value(json_object_get(e, "type")),
			"Renamed");
		json_decref(j);
	}
	{
		const char *a[] = { "--json", "head", "cli-1", NULL };

		assert_int_equal(cli(c->seeds, a), 0);
		j = parse_json(out, "head --json");
		assert_int_equal(json_u64(j, "version", "head"), 2);
		assert_int_equal(json_u64(j, "position", "head"), p2);
		json_decref(j);
	}
	{
		const char *a[] = { "--json", "status", NULL };

		unsigned leaders = 0;
		uint64_t leader_id = 0;

		/* One row per member: all reachable, one leader, whom every
		 * member names. */
		assert_int_equal(cli(c->seeds, a), 0);
		j = parse_json(out, "status --json");
		if (!json_is_array(j) || json_array_size(j) != 3)
			fail_msg("status --json: not an array of 3 members: %s",
				 out);
		for (size_t i = 0; i < 3; i++) {
			json_t *m = json_array_get(j, i);
			const char *role =
				json_string_value(json_object_get(m, "role"));

			assert_true(
				json_is_true(json_object_get(m, "reachable")));
			assert_non_null(role);
			if (strcmp(role, "leader") == 0) {
				leaders++;
				leader_id = json_u64(m, "id", "status");
			}
		}
		assert_int_equal(leaders, 1);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(json_u64(json_array_get(j, i),
						  "leader_id", "status"),
					 leader_id);
		json_decref(j);
	}
	{
		const char *a[] = { "status", NULL };

		assert_int_equal(cli(c->seeds, a), 0);
		assert_true(strlen(out) > 0);
	}
	{
		/* The stream is at version 2: expecting 1 conflicts. */
		const char *a[] = { "append",   "cli-1",  "--type",
				    "Late",     "--data", "{}",
				    "--expect", "1",      NULL };

		assert_int_equal(cli(c->seeds, a), 3);
	}
	{
		const char *a[] = { "frobnicate", "cli-1", NULL };

		assert_int_equal(cli(c->seeds, a), 2);
	}
	{
		const char *a[] = { "append", "cli-1", "--data", "{}", NULL };

		/* --type is required. */
		assert_int_equal(cli(c->seeds, a), 2);
	}
	{
		const char *a[] = { "--deadline-ms", "2000", "status", NULL };

		snprintf(nobody, sizeof nobody, "127.0.0.1:%u", PORT_NOBODY);
		assert_int_equal(cli(nobody, a), 4);
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
			example_program_runs_against_the_cluster, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			cli_session_appends_reads_and_exits_with_its_codes,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
