/* The `cairn` command line tool over libcairn: what its files share.
 * main.c parses the command line and runs append, read, read-all, head and
 * status; state.c runs checkpoint and snapshot; output.c prints events (human
 * lines or JSON, one object a line); tail.c runs `cairn tail`; bench.c runs
 * `cairn bench`. */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cairn.h"

/* Exit codes, the same for every command (docs/client.md). */
enum cli_exit {
	CLI_OK = 0,
	CLI_ERROR = 1,       /* any other error */
	CLI_USAGE = 2,       /* bad command line */
	CLI_CONFLICT = 3,    /* wrong expected version */
	CLI_UNAVAILABLE = 4, /* cannot connect, no leader, deadline
			      * exceeded, outcome unknown */
	CLI_INVALID = 5,     /* request invalid or over a limit */
	CLI_STALE = 6,       /* stale sequence */
};

/* The exit-code paragraph every --help ends with. */
#define CLI_EXIT_HELP                                                        \
	"Exit codes: 0 ok; 1 other error; 2 usage error; 3 wrong expected\n" \
	"version; 4 unavailable (cannot connect, no leader, deadline\n"      \
	"exceeded, outcome unknown); 5 invalid or over a limit; 6 stale\n"   \
	"sequence.\n"

/* The global options, shared by every command. */
struct cli_global {
	const char *seeds;    /* --seeds, CAIRN_SEEDS, or the default */
	const char *node;     /* --node: one node, no redirects; NULL */
	bool json;            /* --json */
	unsigned deadline_ms; /* --deadline-ms; 0: the library's default */
};

/* A parsed command line: positional arguments (the command first) and
 * options, each "--name value", "--name=value" or a bare "--flag". */
struct cli_args {
	const char *pos[8]; /* borrowed from argv */
	int n_pos;          /* entries in pos */
	struct {
		const char *name;  /* without the dashes */
		const char *value; /* NULL for a flag */
	} opts[64];
	int n_opts; /* entries in opts */
};

/* The value of the last --@name, or NULL when absent. */
const char *cli_opt(const struct cli_args *a, const char *name);

/* True when --@name was given. */
bool cli_flag(const struct cli_args *a, const char *name);

/* The exit code of a CAIRN_E* code. */
int cli_exit_code(int cairn_code);

/* Opens a client per the global options (--node: single node). Prints the
 * error and returns its exit code on failure. */
int cli_open(const struct cli_global *g, cairn_client **out);

/* Prints "cairn: <message>" for @err on stderr and returns its exit
 * code. */
int cli_fail(const struct cairn_error *err);

/* Parses an unsigned decimal number; false when @s is not one. */
bool cli_parse_u64(const char *s, uint64_t *out);

/* Parses --consistency (default: leader, or any with --node). Returns 0
 * or the usage exit code after printing why. */
int cli_parse_consistency(const struct cli_global *g, const struct cli_args *a,
			  struct cairn_read_options *ro);

/* Reads all of @f (at most 17 MiB) into a malloc'ed buffer. Returns 0 or
 * an exit code after printing why (@what names the input). */
int cli_read_input(FILE *f, const char *what, char **out, size_t *len);

/* ---- output.c ---- */

/* Prints one event: a human line, or a JSON object on one line. */
void cli_print_event(FILE *f, const struct cairn_event *e, bool json);

/* Formats microseconds since the epoch as RFC 3339 UTC with microseconds
 * ("2026-01-02T03:04:05.000006Z") into @out (at least 32 bytes). */
void cli_format_time(uint64_t us, char *out, size_t size);

/* Base64 (RFC 4648, padded) of @len bytes; the result is malloc'ed (NULL
 * when out of memory). */
char *cli_base64(const void *data, size_t len);

/* True when @len bytes are valid UTF-8 without control characters. */
bool cli_printable(const void *data, size_t len);

/* ---- tail.c ---- */

/* Runs `cairn tail` with its parsed options. Returns the exit code. */
int cli_tail(const struct cli_global *g, const struct cli_args *a);

/* The help text of `cairn tail`. */
extern const char cli_tail_help[];

/* ---- state.c ---- */

/* `cairn checkpoint get|set` and `cairn snapshot get|put`. Return the exit
 * code. */
int cli_checkpoint(const struct cli_global *g, const struct cli_args *a);
int cli_snapshot(const struct cli_global *g, const struct cli_args *a);

extern const char cli_checkpoint_help[];
extern const char cli_snapshot_help[];

/* ---- bench.c ---- */

/* Runs `cairn bench` with its parsed options. Returns the exit code. */
int cli_bench(const struct cli_global *g, const struct cli_args *a);

/* The help text of `cairn bench`. */
extern const char cli_bench_help[];

#endif /* CAIRN_CLI_H */
