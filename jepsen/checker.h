/* jepsen/checker.h: the history checker of the fault-injection suite, as a
 * library. jepsen/check (check_main.c) wraps it in a command line, and the
 * tests in jepsen/tests/ feed it known-bad histories.
 *
 * Inputs: the JSON-lines history the workload wrote (jepsen/workload.c),
 * each node's final dump of the global log (`cairn read-all --json`, one
 * event a line, taken after the final heal), and each node's log file.
 * Every check appends one result (name, pass or fail, a one-line detail);
 * chk_run never stops at the first failure. */
#ifndef CAIRN_JEPSEN_CHECKER_H
#define CAIRN_JEPSEN_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Nodes of one run at most. */
#define CHK_NODES_MAX 5

/* Results of one run at most (one per check). */
#define CHK_RESULTS_MAX 32

/* Examples kept per check for the detail line. */
#define CHK_EXAMPLES_MAX 4

/* Bytes of a detail line. */
#define CHK_DETAIL_MAX 1024

/* What one run of the checker reads. Every pointer is borrowed. */
struct chk_input {
	const char *history_path; /* JSON lines */
	unsigned n_nodes;         /* nodes of the cluster */
	/* dump_paths[i]: node i+1's final dump; NULL or a missing or empty
	 * file: that node gave none. */
	const char *dump_paths[CHK_NODES_MAX];
	/* log_paths[i]: node i+1's log; NULL: not scanned. */
	const char *log_paths[CHK_NODES_MAX];
	/* allow_missing[i]: node i+1 may give no dump and may have died on
	 * its own (the corruption nemesis damaged its files). */
	bool allow_missing[CHK_NODES_MAX];
	/* Where the anomalies found are written in full (JSON); NULL: not
	 * written. */
	const char *anomalies_path;
};

struct chk_result {
	char name[48];               /* the check's name */
	bool pass;                   /* it held */
	char detail[CHK_DETAIL_MAX]; /* what was seen, one line */
};

struct chk_report {
	size_t n;                                   /* results */
	struct chk_result results[CHK_RESULTS_MAX]; /* in check order */
	/* Elle anomaly classes found ("G0", "G1c", "G-single-realtime",
	 * ...), space separated, for tests and the summary. */
	char anomalies[512];
};

/* Runs every check. Returns 0 when the inputs could be read (whatever the
 * verdicts), 1 when the history could not be read (@errmsg says why). */
int chk_run(const struct chk_input *in, struct chk_report *out, char *errmsg,
	    size_t errmsg_len);

/* The result named @name, or NULL. */
const struct chk_result *chk_find(const struct chk_report *r, const char *name);

/* True when every result passed. */
bool chk_all_passed(const struct chk_report *r);

/* Prints "PASS name: detail" / "FAIL name: detail" lines and the summary
 * "N passed, M failed". */
void chk_print(const struct chk_report *r, FILE *f);

#endif /* CAIRN_JEPSEN_CHECKER_H */
