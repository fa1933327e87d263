/* jepsen/tests/test_checker.c: the history checker (jepsen/checker.c) on
 * histories and final dumps written here: good ones must pass every check,
 * and each known-bad one must be caught by the check that pins it, with
 * the anomaly class named (G0, G1a, G1c, G-single, G2, their realtime
 * forms, lost and duplicated appends, diverging logs, ...).
 *
 * Each test writes a history (JSON lines, as jepsen/workload writes it),
 * three dumps (as `cairn read-all --json` prints them) and optionally node
 * logs into a directory of its own under $CAIRN_TEST_TMP, then runs
 * chk_run on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "checker.h"

#define NODES 3

/* One scenario: its files and what is written to them. */
struct scen {
	char dir[512];
	char history[600];
	char dumps[NODES][600];
	char logs[NODES][600];
	FILE *h;
	FILE *d[NODES];
	unsigned index;
	uint64_t time;
	struct chk_input in;
	struct chk_report rep;
};

static struct scen *scen_new(const char *name)
{
	struct scen *s = calloc(1, sizeof *s);
	const char *tmp = getenv("CAIRN_TEST_TMP");

	assert_non_null(s);
	snprintf(s->dir, sizeof s->dir, "%s/jepsen-checker-%s-%d",
		 tmp != NULL ? tmp : "/tmp", name, (int)getpid());
	mkdir(s->dir, 0755);
	snprintf(s->history, sizeof s->history, "%s/history.jsonl", s->dir);
	s->h = fopen(s->history, "w");
	assert_non_null(s->h);
	for (int i = 0; i < NODES; i++) {
		snprintf(s->dumps[i], sizeof s->dumps[i], "%s/dump-n%d.jsonl",
			 s->dir, i + 1);
		snprintf(s->logs[i], sizeof s->logs[i], "%s/n%d.log", s->dir,
			 i + 1);
		s->d[i] = fopen(s->dumps[i], "w");
		assert_non_null(s->d[i]);
		s->in.dump_paths[i] = s->dumps[i];
	}
	s->in.history_path = s->history;
	s->in.n_nodes = NODES;
	return s;
}

/* A history line; @value and @extra are JSON text (extra: fields to add,
 * without braces, or NULL). */
static void op(struct scen *s, const char *type, int process, const char *f,
	       const char *value, const char *extra)
{
	s->time += 1000;
	fprintf(s->h,
		"{\"index\":%u,\"time\":%llu,\"type\":\"%s\",\"process\":%d,"
		"\"f\":\"%s\",\"value\":%s%s%s}\n",
		s->index++, (unsigned long long)s->time, type, process, f,
		value, extra != NULL ? "," : "", extra != NULL ? extra : "");
}

/* An event in the dumps of the nodes in @mask (bit i: node i+1). */
static void ev(struct scen *s, unsigned mask, unsigned pos, const char *stream,
	       unsigned version, const char *id, int k, int v, const char *w,
	       int seq)
{
	for (int i = 0; i < NODES; i++) {
		if (!(mask & (1u << i)))
			continue;
		fprintf(s->d[i],
			"{\"position\":%u,\"stream\":\"%s\",\"version\":%u,"
			"\"id\":\"%s\",\"type\":\"T\",\"time\":\"x\","
			"\"data\":{\"k\":%d,\"v\":%d,\"w\":\"%s\",\"s\":%d}}\n",
			pos, stream, version, id, k, v, w, seq);
	}
}

#define ALL 7u

static void run(struct scen *s)
{
	char errmsg[256];
	fclose(s->h);
	for (int i = 0; i < NODES; i++)
		fclose(s->d[i]);
	assert_int_equal(chk_run(&s->in, &s->rep, errmsg, sizeof errmsg), 0);
	chk_print(&s->rep, stdout);
}

static bool passed(struct scen *s, const char *name)
{
	const struct chk_result *r = chk_find(&s->rep, name);
	assert_non_null(r);
	return r->pass;
}

static bool has_anomaly(struct scen *s, const char *cls)
{
	char buf[600];
	snprintf(buf, sizeof buf, " %s ", s->rep.anomalies);
	char want[64];
	snprintf(want, sizeof want, " %s ", cls);
	return strstr(buf, want) != NULL;
}

static void scen_free(struct scen *s)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", s->dir);
	free(s);
}

/* A list-append transaction that runs alone: read @k (@read, JSON), then
 * append @v; acknowledged at @pos as the stream's version @version. */
static void txn_ok(struct scen *s, int p, int k, const char *read, int v,
		   int seq, unsigned pos, unsigned version)
{
	char inv[128], done[256], extra[256];
	snprintf(inv, sizeof inv, "[[\"r\",%d,null],[\"append\",%d,%d]]", k, k,
		 v);
	snprintf(done, sizeof done, "[[\"r\",%d,%s],[\"append\",%d,%d]]", k,
		 read, k, v);
	snprintf(extra, sizeof extra,
		 "\"position\":%u,\"version\":%u,\"writer\":\"w%d\","
		 "\"seq\":%d,\"duplicate\":false",
		 pos, version, p, seq);
	op(s, "invoke", p, "txn", inv, NULL);
	op(s, "ok", p, "txn", done, extra);
}

static void read_ok(struct scen *s, int p, int k, const char *read)
{
	char inv[64], done[128];
	snprintf(inv, sizeof inv, "[[\"r\",%d,null]]", k);
	snprintf(done, sizeof done, "[[\"r\",%d,%s]]", k, read);
	op(s, "invoke", p, "txn", inv, NULL);
	op(s, "ok", p, "txn", done, NULL);
}

/* The good base: key 1 gets 1, 2; key 2 gets 3; reads see them. */
static void good_base(struct scen *s)
{
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	txn_ok(s, 1, 2, "[]", 3, 1, 2, 1);
	read_ok(s, 2, 1, "[1]");
	txn_ok(s, 0, 1, "[1]", 2, 2, 3, 2);
	read_ok(s, 2, 1, "[1,2]");
	read_ok(s, 1, 2, "[3]");
	ev(s, ALL, 1, "la-1", 1, "id-1", 1, 1, "w0", 1);
	ev(s, ALL, 2, "la-2", 1, "id-2", 2, 3, "w1", 1);
	ev(s, ALL, 3, "la-1", 2, "id-3", 1, 2, "w0", 2);
}

static void good_history_passes_every_check(void **state)
{
	(void)state;
	struct scen *s = scen_new("good");
	good_base(s);
	/* A conflicting append that failed and is nowhere. */
	op(s, "invoke", 3, "txn", "[[\"r\",1,null],[\"append\",1,9]]", NULL);
	op(s, "fail", 3, "txn", "[[\"r\",1,[1]],[\"append\",1,9]]",
	   "\"error\":\"conflict\",\"writer\":\"w3\",\"seq\":1");
	/* A follower read that matches the final log. */
	op(s, "invoke", 4, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":null}", NULL);
	op(s, "ok", 4, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":[[1,\"id-1\"],[2,\"id-2\"]],"
	   "\"end\":true}",
	   NULL);
	run(s);
	assert_true(chk_all_passed(&s->rep));
	assert_string_equal(s->rep.anomalies, "");
	scen_free(s);
}

static void concurrent_good_history_passes(void **state)
{
	(void)state;
	struct scen *s = scen_new("concurrent");
	/* Two overlapping transactions on different keys, an overlapping
	 * read that sees one of them: serializable in realtime order. */
	op(s, "invoke", 0, "txn", "[[\"r\",1,null],[\"append\",1,1]]", NULL);
	op(s, "invoke", 1, "txn", "[[\"r\",2,null],[\"append\",2,2]]", NULL);
	op(s, "invoke", 2, "txn", "[[\"r\",1,null]]", NULL);
	op(s, "ok", 1, "txn", "[[\"r\",2,[]],[\"append\",2,2]]",
	   "\"position\":1,\"writer\":\"a\",\"seq\":1");
	op(s, "ok", 2, "txn", "[[\"r\",1,[1]]]", NULL);
	op(s, "ok", 0, "txn", "[[\"r\",1,[]],[\"append\",1,1]]",
	   "\"position\":2,\"writer\":\"b\",\"seq\":1");
	/* An append whose outcome is unknown and which did commit. */
	op(s, "invoke", 3, "txn", "[[\"r\",1,null],[\"append\",1,5]]", NULL);
	op(s, "info", 3, "txn", "[[\"r\",1,[1]],[\"append\",1,5]]",
	   "\"error\":\"timeout\",\"writer\":\"c\",\"seq\":1");
	read_ok(s, 4, 1, "[1,5]");
	ev(s, ALL, 1, "la-2", 1, "i1", 2, 2, "a", 1);
	ev(s, ALL, 2, "la-1", 1, "i2", 1, 1, "b", 1);
	ev(s, ALL, 3, "la-1", 2, "i3", 1, 5, "c", 1);
	run(s);
	assert_true(chk_all_passed(&s->rep));
	scen_free(s);
}

static void acknowledged_append_missing_on_a_node_is_lost(void **state)
{
	(void)state;
	struct scen *s = scen_new("lost");
	good_base(s);
	txn_ok(s, 1, 2, "[3]", 4, 2, 4, 2);
	ev(s, 1u | 4u, 4, "la-2", 2, "id-4", 2, 4, "w1", 2);
	run(s);
	assert_false(passed(s, "acked-not-lost"));
	assert_false(passed(s, "log-identical"));
	assert_true(passed(s, "log-dense"));
	assert_false(chk_all_passed(&s->rep));
	scen_free(s);
}

static void acknowledged_append_at_another_position_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("moved");
	good_base(s);
	op(s, "invoke", 5, "append", "{\"k\":0,\"v\":50}", NULL);
	op(s, "ok", 5, "append", "{\"k\":0,\"v\":50}",
	   "\"position\":5,\"positions\":[5],\"writer\":\"r5\",\"seq\":1");
	ev(s, ALL, 4, "rt-0", 1, "id-50", 0, 50, "r5", 1);
	run(s);
	assert_false(passed(s, "acked-not-lost"));
	scen_free(s);
}

static void duplicate_writer_sequence_in_the_log_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("dup");
	good_base(s);
	ev(s, ALL, 4, "la-1", 3, "id-dup", 1, 2, "w0", 2);
	run(s);
	assert_false(passed(s, "unique-events"));
	assert_true(has_anomaly(s, "incompatible-order") ||
		    !passed(s, "list-append"));
	scen_free(s);
}

static void duplicate_event_id_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("dupid");
	good_base(s);
	ev(s, ALL, 4, "other", 1, "id-2", -1, -1, "zz", 1);
	run(s);
	assert_false(passed(s, "unique-events"));
	scen_free(s);
}

static void retry_acknowledged_at_two_positions_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("retry");
	op(s, "invoke", 0, "append", "{\"k\":0,\"v\":1}", NULL);
	op(s, "ok", 0, "append", "{\"k\":0,\"v\":1}",
	   "\"position\":1,\"positions\":[1,2],\"duplicate\":true,"
	   "\"writer\":\"a\",\"seq\":7");
	ev(s, ALL, 1, "rt-0", 1, "i1", 0, 1, "a", 7);
	run(s);
	assert_false(passed(s, "retry-same-position"));
	assert_true(passed(s, "acked-not-lost"));
	scen_free(s);
}

static void retry_that_returns_the_original_position_passes(void **state)
{
	(void)state;
	struct scen *s = scen_new("retryok");
	op(s, "invoke", 0, "append", "{\"k\":0,\"v\":1}", NULL);
	op(s, "ok", 0, "append", "{\"k\":0,\"v\":1}",
	   "\"position\":1,\"positions\":[1,1],\"duplicate\":true,"
	   "\"writer\":\"a\",\"seq\":7");
	/* A stale-sequence answer for a key that never committed. */
	op(s, "invoke", 1, "append", "{\"k\":0,\"v\":2}", NULL);
	op(s, "fail", 1, "append", "{\"k\":0,\"v\":2}",
	   "\"error\":\"stale-sequence\",\"writer\":\"b\",\"seq\":3");
	ev(s, ALL, 1, "rt-0", 1, "i1", 0, 1, "a", 7);
	run(s);
	assert_true(chk_all_passed(&s->rep));
	scen_free(s);
}

static void stale_sequence_for_a_committed_append_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("stale");
	op(s, "invoke", 1, "append", "{\"k\":0,\"v\":2}", NULL);
	op(s, "fail", 1, "append", "{\"k\":0,\"v\":2}",
	   "\"error\":\"stale-sequence\",\"writer\":\"b\",\"seq\":3");
	ev(s, ALL, 1, "rt-0", 1, "i1", 0, 2, "b", 3);
	run(s);
	assert_false(passed(s, "failed-not-committed"));
	scen_free(s);
}

static void version_gap_in_a_stream_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("vgap");
	good_base(s);
	ev(s, ALL, 4, "la-2", 3, "id-9", 2, 9, "x", 1);
	run(s);
	assert_false(passed(s, "stream-versions"));
	scen_free(s);
}

static void two_successes_for_one_expected_version_are_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("twice");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	txn_ok(s, 1, 1, "[]", 2, 1, 2, 2);
	ev(s, ALL, 1, "la-1", 1, "i1", 1, 1, "w0", 1);
	ev(s, ALL, 2, "la-1", 2, "i2", 1, 2, "w1", 1);
	run(s);
	assert_false(passed(s, "one-success-per-version"));
	/* The second read [] is stale: the graph sees it too. */
	assert_false(passed(s, "list-append"));
	scen_free(s);
}

static void diverging_logs_are_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("diverge");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	ev(s, ALL, 1, "la-1", 1, "i1", 1, 1, "w0", 1);
	ev(s, 1u, 2, "x-1", 1, "a", -1, -1, "q", 1);
	ev(s, 2u | 4u, 2, "x-2", 1, "b", -1, -1, "q", 2);
	run(s);
	assert_false(passed(s, "log-identical"));
	assert_true(passed(s, "acked-not-lost"));
	scen_free(s);
}

static void position_gap_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("pgap");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	ev(s, ALL, 1, "la-1", 1, "i1", 1, 1, "w0", 1);
	ev(s, ALL, 3, "x-1", 1, "a", -1, -1, "q", 1);
	run(s);
	assert_false(passed(s, "log-dense"));
	scen_free(s);
}

static void missing_dump_fails_unless_the_node_was_corrupted(void **state)
{
	(void)state;
	struct scen *s = scen_new("missing");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	ev(s, 1u | 2u, 1, "la-1", 1, "i1", 1, 1, "w0", 1);
	s->in.dump_paths[2] = NULL;
	run(s);
	assert_false(passed(s, "final-dumps"));
	scen_free(s);

	s = scen_new("missing-allowed");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	ev(s, 1u | 2u, 1, "la-1", 1, "i1", 1, 1, "w0", 1);
	s->in.dump_paths[2] = NULL;
	s->in.allow_missing[2] = true;
	run(s);
	assert_true(chk_all_passed(&s->rep));
	scen_free(s);
}

/* G0: two transactions each append to x and y, in opposite orders. */
static void write_cycle_is_g0(void **state)
{
	(void)state;
	struct scen *s = scen_new("g0");
	op(s, "invoke", 0, "txn", "[[\"append\",1,1],[\"append\",2,1]]", NULL);
	op(s, "invoke", 1, "txn", "[[\"append\",1,2],[\"append\",2,2]]", NULL);
	op(s, "ok", 0, "txn", "[[\"append\",1,1],[\"append\",2,1]]", NULL);
	op(s, "ok", 1, "txn", "[[\"append\",1,2],[\"append\",2,2]]", NULL);
	ev(s, ALL, 1, "la-1", 1, "a", 1, 1, "p0", 1);
	ev(s, ALL, 2, "la-1", 2, "b", 1, 2, "p1", 1);
	ev(s, ALL, 3, "la-2", 1, "c", 2, 2, "p1", 2);
	ev(s, ALL, 4, "la-2", 2, "d", 2, 1, "p0", 2);
	run(s);
	assert_false(passed(s, "list-append"));
	assert_true(has_anomaly(s, "G0"));
	scen_free(s);
}

/* G1a: a read sees the append of a transaction that failed. */
static void read_of_a_failed_append_is_g1a(void **state)
{
	(void)state;
	struct scen *s = scen_new("g1a");
	op(s, "invoke", 0, "txn", "[[\"r\",1,null],[\"append\",1,1]]", NULL);
	op(s, "fail", 0, "txn", "[[\"r\",1,[]],[\"append\",1,1]]",
	   "\"error\":\"conflict\"");
	read_ok(s, 1, 1, "[1]");
	run(s);
	assert_false(passed(s, "list-append"));
	assert_true(has_anomaly(s, "G1a"));
	scen_free(s);
}

/* G1c: each of two transactions reads the other's append. */
static void circular_information_flow_is_g1c(void **state)
{
	(void)state;
	struct scen *s = scen_new("g1c");
	op(s, "invoke", 0, "txn", "[[\"append\",1,1],[\"r\",2,null]]", NULL);
	op(s, "invoke", 1, "txn", "[[\"append\",2,1],[\"r\",1,null]]", NULL);
	op(s, "ok", 0, "txn", "[[\"append\",1,1],[\"r\",2,[1]]]", NULL);
	op(s, "ok", 1, "txn", "[[\"append\",2,1],[\"r\",1,[1]]]", NULL);
	ev(s, ALL, 1, "la-1", 1, "a", 1, 1, "p0", 1);
	ev(s, ALL, 2, "la-2", 1, "b", 2, 1, "p1", 1);
	run(s);
	assert_true(has_anomaly(s, "G1c"));
	assert_false(has_anomaly(s, "G0"));
	scen_free(s);
}

/* G-single (read skew): T1 reads x before T2's append but y after it. */
static void read_skew_is_g_single(void **state)
{
	(void)state;
	struct scen *s = scen_new("gsingle");
	op(s, "invoke", 0, "txn", "[[\"r\",1,null],[\"r\",2,null]]", NULL);
	op(s, "invoke", 1, "txn", "[[\"append\",1,1],[\"append\",2,1]]", NULL);
	op(s, "ok", 1, "txn", "[[\"append\",1,1],[\"append\",2,1]]", NULL);
	op(s, "ok", 0, "txn", "[[\"r\",1,[]],[\"r\",2,[1]]]", NULL);
	ev(s, ALL, 1, "la-1", 1, "a", 1, 1, "p1", 1);
	ev(s, ALL, 2, "la-2", 1, "b", 2, 1, "p1", 2);
	run(s);
	assert_true(has_anomaly(s, "G-single"));
	assert_false(has_anomaly(s, "G1c"));
	scen_free(s);
}

/* G2 (write skew): each reads the key the other appends to, empty. */
static void write_skew_is_g2(void **state)
{
	(void)state;
	struct scen *s = scen_new("g2");
	op(s, "invoke", 0, "txn", "[[\"r\",1,null],[\"append\",2,1]]", NULL);
	op(s, "invoke", 1, "txn", "[[\"r\",2,null],[\"append\",1,1]]", NULL);
	op(s, "ok", 0, "txn", "[[\"r\",1,[]],[\"append\",2,1]]", NULL);
	op(s, "ok", 1, "txn", "[[\"r\",2,[]],[\"append\",1,1]]", NULL);
	ev(s, ALL, 1, "la-2", 1, "a", 2, 1, "p0", 1);
	ev(s, ALL, 2, "la-1", 1, "b", 1, 1, "p1", 1);
	run(s);
	assert_true(has_anomaly(s, "G2"));
	assert_false(has_anomaly(s, "G-single"));
	scen_free(s);
}

/* A stale read: the append completed before the read began, yet the read
 * misses it. Serializable, not strictly: G-single-realtime. */
static void stale_read_is_g_single_realtime(void **state)
{
	(void)state;
	struct scen *s = scen_new("stale-read");
	txn_ok(s, 0, 1, "[]", 1, 1, 1, 1);
	read_ok(s, 1, 1, "[]");
	ev(s, ALL, 1, "la-1", 1, "a", 1, 1, "w0", 1);
	run(s);
	assert_false(passed(s, "list-append"));
	assert_true(has_anomaly(s, "G-single-realtime"));
	assert_false(has_anomaly(s, "G-single"));
	scen_free(s);
}

static void read_out_of_the_final_order_is_incompatible(void **state)
{
	(void)state;
	struct scen *s = scen_new("order");
	good_base(s);
	read_ok(s, 3, 1, "[2,1]");
	run(s);
	assert_true(has_anomaly(s, "incompatible-order"));
	scen_free(s);
}

static void duplicate_and_garbage_reads_are_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("garbage");
	good_base(s);
	read_ok(s, 3, 1, "[1,1]");
	read_ok(s, 4, 2, "[3,99]");
	run(s);
	assert_true(has_anomaly(s, "duplicate-elements"));
	assert_true(has_anomaly(s, "garbage-read"));
	scen_free(s);
}

static void reads_going_back_within_a_process_are_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("monotonic");
	good_base(s);
	read_ok(s, 2, 1, "[1]");
	/* A follower reader whose node went back. */
	op(s, "invoke", 7, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":null}", NULL);
	op(s, "ok", 7, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":[[1,\"id-1\"],[2,\"id-2\"]],"
	   "\"end\":true}",
	   NULL);
	op(s, "invoke", 7, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":null}", NULL);
	op(s, "ok", 7, "read-all",
	   "{\"node\":2,\"from\":1,\"events\":[[1,\"id-1\"]],\"end\":true}",
	   NULL);
	run(s);
	assert_false(passed(s, "monotonic-reads"));
	scen_free(s);
}

static void follower_read_of_a_phantom_event_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("phantom");
	good_base(s);
	op(s, "invoke", 7, "read-all",
	   "{\"node\":3,\"from\":2,\"events\":null}", NULL);
	op(s, "ok", 7, "read-all",
	   "{\"node\":3,\"from\":2,\"events\":[[2,\"not-there\"]],"
	   "\"end\":true}",
	   NULL);
	run(s);
	assert_false(passed(s, "follower-reads"));
	scen_free(s);
}

static void assertion_in_a_node_log_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("logs");
	FILE *f;
	good_base(s);
	for (int i = 0; i < NODES; i++) {
		f = fopen(s->logs[i], "w");
		assert_non_null(f);
		fprintf(f, "ts=x level=info node=%d event=started\n", i + 1);
		if (i == 1)
			fprintf(f,
				"cairnd: consensus/fsm.c:12: apply: "
				"Assertion `n > 0' failed.\n");
		fclose(f);
		s->in.log_paths[i] = s->logs[i];
	}
	run(s);
	assert_false(passed(s, "node-logs"));
	scen_free(s);
}

/* ---- subscriptions ---- */

/* Five events in every dump: category "lg" at positions 1, 3 and 5,
 * category "lo" at 2 and 4. */
static void sub_log(struct scen *s)
{
	ev(s, ALL, 1, "lg-r-0", 1, "e1", 0, 1, "w1", 1);
	ev(s, ALL, 2, "lo-r-1", 1, "e2", 1, 2, "w1", 2);
	ev(s, ALL, 3, "lg-r-0", 2, "e3", 0, 3, "w1", 3);
	ev(s, ALL, 4, "lo-r-1", 2, "e4", 1, 4, "w1", 4);
	ev(s, ALL, 5, "lg-r-2", 1, "e5", 2, 5, "w1", 5);
}

/* Subscriber @name (process @p) opens a subscription: to the global log,
 * or to category @cat when not NULL. */
static void sub_open(struct scen *s, int p, const char *name, const char *cat)
{
	char v[256];
	snprintf(v, sizeof v,
		 "{\"sub\":\"%s\",\"node\":1,\"kind\":\"%s\",\"target\":"
		 "\"%s\",\"from\":1}",
		 name, cat != NULL ? "category" : "all",
		 cat != NULL ? cat : "");
	op(s, "invoke", p, "subscribe", v, NULL);
	op(s, "ok", p, "subscribe", v, NULL);
}

/* One batch received: @events is the JSON array of [position, stream,
 * version, id]; @live adds the live marker. */
static void sub_next(struct scen *s, int p, const char *name,
		     const char *events, bool live)
{
	char inv[64];
	char done[1024];
	snprintf(inv, sizeof inv, "{\"sub\":\"%s\"}", name);
	snprintf(done, sizeof done,
		 "{\"sub\":\"%s\",\"events\":%s,\"next\":0%s}", name, events,
		 live ? ",\"live\":{\"last-position\":5}" : "");
	op(s, "invoke", p, "sub-next", inv, NULL);
	op(s, "ok", p, "sub-next", done, NULL);
}

#define SUB_E1 "[1,\"lg-r-0\",1,\"e1\"]"
#define SUB_E2 "[2,\"lo-r-1\",1,\"e2\"]"
#define SUB_E3 "[3,\"lg-r-0\",2,\"e3\"]"
#define SUB_E4 "[4,\"lo-r-1\",2,\"e4\"]"
#define SUB_E5 "[5,\"lg-r-2\",1,\"e5\"]"

static const char *const sub_checks[] = {
	"subscriptions-gapless",   "subscriptions-no-duplicates",
	"subscriptions-match-log", "subscriptions-complete",
	"subscriptions-live",
};

/* Passes every subscription check but @failing (NULL: none), which fails. */
static void sub_expect(struct scen *s, const char *failing)
{
	for (size_t i = 0; i < sizeof sub_checks / sizeof sub_checks[0]; i++) {
		bool want =
			failing == NULL || strcmp(failing, sub_checks[i]) != 0;
		if (passed(s, sub_checks[i]) != want)
			fail_msg("%s: %s, expected %s", sub_checks[i],
				 want ? "FAIL" : "PASS",
				 want ? "PASS" : "FAIL");
	}
}

static void good_subscribers_pass(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-good");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_open(s, 101, "s1", "lg");
	sub_next(s, 100, "s0", "[" SUB_E1 "," SUB_E2 "," SUB_E3 "]", true);
	sub_next(s, 101, "s1", "[" SUB_E1 "]", false);
	/* Resumed elsewhere: a new subscription from where it stood. */
	sub_open(s, 101, "s1", "lg");
	sub_next(s, 101, "s1", "[" SUB_E3 "]", true);
	sub_next(s, 100, "s0", "[" SUB_E4 "," SUB_E5 "]", false);
	sub_next(s, 101, "s1", "[" SUB_E5 "]", false);
	run(s);
	sub_expect(s, NULL);
	assert_non_null(
		strstr(chk_find(&s->rep, "subscriptions-gapless")->detail,
		       "2 subscribers, 8 events"));
	scen_free(s);
}

static void subscriber_gap_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-gap");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_next(s, 100, "s0", "[" SUB_E1 "," SUB_E2 "]", true);
	sub_next(s, 100, "s0", "[" SUB_E4 "," SUB_E5 "]", false);
	run(s);
	sub_expect(s, "subscriptions-gapless");
	scen_free(s);
}

static void category_subscriber_gap_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-catgap");
	sub_log(s);
	sub_open(s, 101, "s1", "lg");
	sub_next(s, 101, "s1", "[" SUB_E1 "," SUB_E5 "]", true);
	run(s);
	sub_expect(s, "subscriptions-gapless");
	scen_free(s);
}

static void subscriber_duplicate_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-dup");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_next(s, 100, "s0", "[" SUB_E1 "," SUB_E2 "," SUB_E3 "]", true);
	/* A resume that starts one event too early. */
	sub_next(s, 100, "s0", "[" SUB_E3 "," SUB_E4 "," SUB_E5 "]", false);
	run(s);
	sub_expect(s, "subscriptions-no-duplicates");
	scen_free(s);
}

static void subscriber_wrong_event_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-wrong");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_next(s, 100, "s0",
		 "[" SUB_E1 "," SUB_E2 ",[3,\"lg-r-0\",2,\"other\"]," SUB_E4
		 "," SUB_E5 "]",
		 true);
	run(s);
	sub_expect(s, "subscriptions-match-log");
	scen_free(s);
}

static void category_subscriber_given_another_category_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-filter");
	sub_log(s);
	sub_open(s, 101, "s1", "lo");
	sub_next(s, 101, "s1", "[" SUB_E2 "," SUB_E3 "," SUB_E4 "]", true);
	run(s);
	assert_false(passed(s, "subscriptions-match-log"));
	scen_free(s);
}

static void subscriber_unseen_tail_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-tail");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_next(s, 100, "s0", "[" SUB_E1 "," SUB_E2 "," SUB_E3 "]", true);
	run(s);
	sub_expect(s, "subscriptions-complete");
	scen_free(s);
}

static void category_subscriber_unseen_tail_is_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-cattail");
	sub_log(s);
	sub_open(s, 101, "s1", "lg");
	sub_next(s, 101, "s1", "[" SUB_E1 "," SUB_E3 "]", true);
	run(s);
	sub_expect(s, "subscriptions-complete");
	scen_free(s);
}

static void two_live_markers_in_one_subscription_are_caught(void **state)
{
	(void)state;
	struct scen *s = scen_new("sub-live");
	sub_log(s);
	sub_open(s, 100, "s0", NULL);
	sub_next(s, 100, "s0", "[" SUB_E1 "," SUB_E2 "," SUB_E3 "]", true);
	sub_next(s, 100, "s0", "[" SUB_E4 "," SUB_E5 "]", true);
	run(s);
	sub_expect(s, "subscriptions-live");
	scen_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_history_passes_every_check),
		cmocka_unit_test(concurrent_good_history_passes),
		cmocka_unit_test(acknowledged_append_missing_on_a_node_is_lost),
		cmocka_unit_test(
			acknowledged_append_at_another_position_is_caught),
		cmocka_unit_test(
			duplicate_writer_sequence_in_the_log_is_caught),
		cmocka_unit_test(duplicate_event_id_is_caught),
		cmocka_unit_test(retry_acknowledged_at_two_positions_is_caught),
		cmocka_unit_test(
			retry_that_returns_the_original_position_passes),
		cmocka_unit_test(
			stale_sequence_for_a_committed_append_is_caught),
		cmocka_unit_test(version_gap_in_a_stream_is_caught),
		cmocka_unit_test(
			two_successes_for_one_expected_version_are_caught),
		cmocka_unit_test(diverging_logs_are_caught),
		cmocka_unit_test(position_gap_is_caught),
		cmocka_unit_test(
			missing_dump_fails_unless_the_node_was_corrupted),
		cmocka_unit_test(write_cycle_is_g0),
		cmocka_unit_test(read_of_a_failed_append_is_g1a),
		cmocka_unit_test(circular_information_flow_is_g1c),
		cmocka_unit_test(read_skew_is_g_single),
		cmocka_unit_test(write_skew_is_g2),
		cmocka_unit_test(stale_read_is_g_single_realtime),
		cmocka_unit_test(read_out_of_the_final_order_is_incompatible),
		cmocka_unit_test(duplicate_and_garbage_reads_are_caught),
		cmocka_unit_test(reads_going_back_within_a_process_are_caught),
		cmocka_unit_test(follower_read_of_a_phantom_event_is_caught),
		cmocka_unit_test(assertion_in_a_node_log_is_caught),
		cmocka_unit_test(good_subscribers_pass),
		cmocka_unit_test(subscriber_gap_is_caught),
		cmocka_unit_test(category_subscriber_gap_is_caught),
		cmocka_unit_test(subscriber_duplicate_is_caught),
		cmocka_unit_test(subscriber_wrong_event_is_caught),
		cmocka_unit_test(
			category_subscriber_given_another_category_is_caught),
		cmocka_unit_test(subscriber_unseen_tail_is_caught),
		cmocka_unit_test(category_subscriber_unseen_tail_is_caught),
		cmocka_unit_test(
			two_live_markers_in_one_subscription_are_caught),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
