/* jepsen/check_main.c: the `check` program of the fault-injection suite.
 * jepsen/run calls it after a run; it can be run again on a kept run
 * directory:
 *
 *   check --history DIR/history.jsonl --nodes 3 \
 *         --dump 1=DIR/dump-n1.jsonl ... --log 1=DIR/n1.log ... \
 *         [--allow-missing 2] [--anomalies DIR/anomalies.json]
 *
 * Prints one line per check (PASS/FAIL name: detail) and a summary; exits
 * 0 when every check passed, 1 when one failed, 2 on a usage error or an
 * unreadable history. The checks are in checker.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: check --history FILE --nodes N [--dump I=FILE]... "
		"[--log I=FILE]...\n"
		"             [--allow-missing I]... [--anomalies FILE]\n");
}

/* Parses "I=FILE" with 1 <= I <= @n. */
static int node_arg(const char *v, unsigned n, unsigned *node,
		    const char **path)
{
	char *end;
	unsigned long i = strtoul(v, &end, 10);
	if (end == v || i < 1 || i > n || i > CHK_NODES_MAX)
		return 1;
	if (path != NULL) {
		if (*end != '=')
			return 1;
		*path = end + 1;
	} else if (*end != '\0') {
		return 1;
	}
	*node = (unsigned)i - 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct chk_input in = { .n_nodes = 0 };
	static struct chk_report rep;
	char errmsg[512];

	/* --nodes first: the node arguments are checked against it. */
	for (int i = 1; i + 1 < argc; i++)
		if (strcmp(argv[i], "--nodes") == 0)
			in.n_nodes = (unsigned)strtoul(argv[i + 1], NULL, 10);
	if (in.n_nodes < 1 || in.n_nodes > CHK_NODES_MAX) {
		usage(stderr);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned node;
		const char *path;
		if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (v == NULL) {
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "--history") == 0) {
			in.history_path = v;
		} else if (strcmp(a, "--nodes") == 0) {
			continue;
		} else if (strcmp(a, "--dump") == 0 &&
			   node_arg(v, in.n_nodes, &node, &path) == 0) {
			in.dump_paths[node] = path;
		} else if (strcmp(a, "--log") == 0 &&
			   node_arg(v, in.n_nodes, &node, &path) == 0) {
			in.log_paths[node] = path;
		} else if (strcmp(a, "--allow-missing") == 0 &&
			   node_arg(v, in.n_nodes, &node, NULL) == 0) {
			in.allow_missing[node] = true;
		} else if (strcmp(a, "--anomalies") == 0) {
			in.anomalies_path = v;
		} else {
			fprintf(stderr, "check: bad argument %s %s\n", a, v);
			usage(stderr);
			return 2;
		}
	}
	if (in.history_path == NULL) {
		usage(stderr);
		return 2;
	}
	if (chk_run(&in, &rep, errmsg, sizeof errmsg) != 0) {
		fprintf(stderr, "check: %s\n", errmsg);
		return 2;
	}
	chk_print(&rep, stdout);
	return chk_all_passed(&rep) ? 0 : 1;
}
