/* `cairn checkpoint get|set` and `cairn snapshot get|put`: consumer
 * checkpoints and aggregate snapshots from the command line, over
 * cairn_checkpoint_get/set and cairn_snapshot_get/put (docs/client.md). */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char cli_checkpoint_help[] =
	"Usage: cairn checkpoint get NAME [--consistency "
	"any|leader|at-least:POSITION]\n"
	"       cairn checkpoint set NAME VALUE [--expect absent|N]\n"
	"                            [--client-id UUID --seq N]\n"
	"\n"
	"get prints \"value V\", or \"absent\" when the checkpoint does not\n"
	"exist (--json: {\"name\",\"found\",\"value\"}).\n"
	"set sets it to VALUE and prints \"ok\" (\"ok (duplicate)\" when a\n"
	"keyed write had committed before; --json: {\"name\",\"value\",\n"
	"\"duplicate\"}).\n"
	"\n"
	"  --expect E         absent: the checkpoint must not exist yet; N: "
	"it\n"
	"                     must hold N (>= 1); otherwise exit 3 and say\n"
	"                     what it holds. Default: unconditional\n"
	"  --client-id UUID   idempotency key: writer id...\n"
	"  --seq N            ...and its sequence (both or neither)\n"
	"  --consistency C    any, leader or at-least:POSITION (default\n"
	"                     leader, any with --node)\n"
	"\n"
	"Exit codes: 0 ok; 1 other error; 2 usage error; 3 wrong expected\n"
	"value; 4 unavailable; 5 invalid or over a limit; 6 stale sequence.\n";

const char cli_snapshot_help[] =
	"Usage: cairn snapshot get STREAM [--max-version V]\n"
	"                         [--consistency "
	"any|leader|at-least:POSITION]\n"
	"       cairn snapshot put STREAM VERSION [--data TEXT | --data-file "
	"FILE]\n"
	"                          [--client-id UUID --seq N]\n"
	"\n"
	"get prints \"version V\" and, on the next line, the snapshot's bytes\n"
	"as text when printable, else \"base64:...\"; \"none\" when STREAM "
	"has\n"
	"no snapshot at or below --max-version (default: the newest). --json\n"
	"prints {\"stream\",\"version\",\"data\"} (data_base64 when not "
	"text).\n"
	"put stores the bytes of --data, --data-file or standard input (at\n"
	"most 8 MiB) as STREAM's snapshot at VERSION (1..the stream's\n"
	"version; past its head: exit 3) and prints \"ok\".\n"
	"\n"
	"Exit codes: 0 ok; 1 other error; 2 usage error; 3 version past the\n"
	"head; 4 unavailable; 5 invalid or over a limit; 6 stale sequence.\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cairn: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try --help)\n");
	return CLI_USAGE;
}

/* --client-id and --seq into @key. Returns 0 or the usage exit code. */
static int parse_key(const struct cli_args *a, struct cairn_append_key *key)
{
	const char *id = cli_opt(a, "client-id");
	const char *seq = cli_opt(a, "seq");

	memset(key, 0, sizeof *key);
	if ((id == NULL) != (seq == NULL))
		return usage("--client-id and --seq go together");
	if (id == NULL)
		return 0;
	key->has_key = true;
	if (cairn_uuid_parse(id, key->client_id) != 0)
		return usage("--client-id %s: not a UUID", id);
	if (!cli_parse_u64(seq, &key->seq))
		return usage("--seq %s: not a number", seq);
	return 0;
}

/* Checks that @a holds the subcommand @want_pos - 2 arguments after
 * "COMMAND SUB". */
static int check_pos(const struct cli_args *a, const char *what, int want)
{
	if (a->n_pos != want)
		return usage("%s takes %d argument%s", what, want - 2,
			     want - 2 == 1 ? "" : "s");
	return 0;
}

static void print_json(json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	printf("%s\n", line != NULL ? line : "{}");
	free(line);
	json_decref(o);
}

static int checkpoint_get(const struct cli_global *g, const struct cli_args *a)
{
	const char *name = a->pos[2];
	struct cairn_read_options ro;
	struct cairn_error err;
	cairn_client *c;
	uint64_t value = 0;
	bool found = false;
	int rv;

	if (cli_opt(a, "expect") != NULL || cli_opt(a, "client-id") != NULL ||
	    cli_opt(a, "seq") != NULL)
		return usage(
			"checkpoint get takes no --expect, --client-id "
			"or --seq");
	rv = cli_parse_consistency(g, a, &ro);
	if (rv != 0)
		return rv;
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_checkpoint_get(c, name, &ro, &value, &found, &err) != 0) {
		rv = cli_fail(&err);
		cairn_close(c);
		return rv;
	}
	cairn_close(c);
	if (g->json) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "found", json_boolean(found));
		json_object_set_new(o, "value",
				    json_integer((json_int_t)value));
		print_json(o);
	} else if (found) {
		printf("value %llu\n", (unsigned long long)value);
	} else {
		printf("absent\n");
	}
	return 0;
}

static int checkpoint_set(const struct cli_global *g, const struct cli_args *a)
{
	const char *name = a->pos[2];
	const char *expect = cli_opt(a, "expect");
	struct cairn_append_key key;
	struct cairn_error err;
	cairn_client *c;
	uint64_t value;
	uint64_t expected = 0;
	int kind = CAIRN_CHECKPOINT_ANY;
	bool dup = false;
	int rv;

	if (cli_opt(a, "consistency") != NULL)
		return usage("checkpoint set takes no --consistency");
	if (!cli_parse_u64(a->pos[3], &value))
		return usage("%s: not a number", a->pos[3]);
	if (expect != NULL && strcmp(expect, "absent") == 0) {
		kind = CAIRN_CHECKPOINT_ABSENT;
	} else if (expect != NULL) {
		if (!cli_parse_u64(expect, &expected) || expected == 0)
			return usage(
				"--expect %s: expected absent or a value "
				">= 1",
				expect);
		kind = CAIRN_CHECKPOINT_VALUE;
	}
	rv = parse_key(a, &key);
	if (rv != 0)
		return rv;
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_checkpoint_set(c, name, value, kind, expected, &key, &dup,
				 &err) != 0) {
		rv = cli_fail(&err);
		cairn_close(c);
		return rv;
	}
	cairn_close(c);
	if (g->json) {
		json_t *o = json_object();

		json_object_set_new(o, "name", json_string(name));
		json_object_set_new(o, "value",
				    json_integer((json_int_t)value));
		json_object_set_new(o, "duplicate", json_boolean(dup));
		print_json(o);
	} else {
		printf("ok%s\n", dup ? " (duplicate)" : "");
	}
	return 0;
}

int cli_checkpoint(const struct cli_global *g, const struct cli_args *a)
{
	int rv;

	if (a->n_pos >= 2 && strcmp(a->pos[1], "get") == 0) {
		rv = check_pos(a, "checkpoint get", 3);
		return rv != 0 ? rv : checkpoint_get(g, a);
	}
	if (a->n_pos >= 2 && strcmp(a->pos[1], "set") == 0) {
		rv = check_pos(a, "checkpoint set", 4);
		return rv != 0 ? rv : checkpoint_set(g, a);
	}
	return usage("checkpoint needs get or set");
}

static void print_snapshot(const struct cli_global *g, const char *stream,
			   const struct cairn_snapshot *s)
{
	bool text = cli_printable(s->data, s->len);
	char *b64 = NULL;

	if (!text)
		b64 = cli_base64(s->data, s->len);
	if (g->json) {
		json_t *o = json_object();

		json_object_set_new(o, "stream", json_string(stream));
		json_object_set_new(o, "version",
				    json_integer((json_int_t)s->version));
		if (text)
			json_object_set_new(
				o, "data",
				json_stringn(s->data != NULL ? s->data : "",
					     s->len));
		else
			json_object_set_new(
				o, "data_base64",
				json_string(b64 != NULL ? b64 : ""));
		print_json(o);
	} else if (s->version == 0) {
		printf("none\n");
	} else {
		printf("version %llu\n", (unsigned long long)s->version);
		if (text)
			printf("%.*s\n", (int)s->len,
			       s->data != NULL ? (const char *)s->data : "");
		else
			printf("base64:%s\n", b64 != NULL ? b64 : "");
	}
	free(b64);
}

static int snapshot_get(const struct cli_global *g, const struct cli_args *a)
{
	const char *stream = a->pos[2];
	const char *max = cli_opt(a, "max-version");
	struct cairn_read_options ro;
	struct cairn_snapshot snap;
	struct cairn_error err;
	uint64_t max_version = UINT64_MAX;
	cairn_client *c;
	int rv;

	if (cli_opt(a, "data") != NULL || cli_opt(a, "data-file") != NULL ||
	    cli_opt(a, "client-id") != NULL || cli_opt(a, "seq") != NULL)
		return usage(
			"snapshot get takes no --data, --data-file, "
			"--client-id or --seq");
	if (max != NULL &&
	    (!cli_parse_u64(max, &max_version) || max_version == 0))
		return usage("--max-version %s: expected a version >= 1", max);
	rv = cli_parse_consistency(g, a, &ro);
	if (rv != 0)
		return rv;
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_snapshot_get(c, stream, max_version, &ro, &snap, &err) != 0) {
		rv = cli_fail(&err);
		cairn_close(c);
		return rv;
	}
	cairn_close(c);
	print_snapshot(g, stream, &snap);
	cairn_snapshot_free(&snap);
	return 0;
}

static int snapshot_put(const struct cli_global *g, const struct cli_args *a)
{
	const char *stream = a->pos[2];
	const char *data = cli_opt(a, "data");
	const char *data_file = cli_opt(a, "data-file");
	struct cairn_append_key key;
	struct cairn_error err;
	cairn_client *c;
	uint64_t version;
	char *owned = NULL;
	size_t len = 0;
	int rv;

	if (cli_opt(a, "max-version") != NULL ||
	    cli_opt(a, "consistency") != NULL)
		return usage(
			"snapshot put takes no --max-version or "
			"--consistency");
	if (!cli_parse_u64(a->pos[3], &version) || version == 0)
		return usage("%s: expected a version >= 1", a->pos[3]);
	if (data != NULL && data_file != NULL)
		return usage("give --data or --data-file, not both");
	rv = parse_key(a, &key);
	if (rv != 0)
		return rv;
	if (data != NULL) {
		len = strlen(data);
	} else {
		FILE *f = data_file != NULL ? fopen(data_file, "rb") : stdin;

		if (f == NULL) {
			fprintf(stderr, "cairn: %s: %s\n", data_file,
				strerror(errno));
			return CLI_ERROR;
		}
		rv = cli_read_input(
			f, data_file != NULL ? data_file : "standard input",
			&owned, &len);
		if (f != stdin)
			fclose(f);
		if (rv != 0)
			return rv;
		data = owned;
	}
	rv = cli_open(g, &c);
	if (rv != 0)
		goto out;
	if (cairn_snapshot_put(c, stream, version, data, len, &key, &err) !=
	    0) {
		rv = cli_fail(&err);
	} else if (g->json) {
		json_t *o = json_object();

		json_object_set_new(o, "stream", json_string(stream));
		json_object_set_new(o, "version",
				    json_integer((json_int_t)version));
		print_json(o);
	} else {
		printf("ok\n");
	}
	cairn_close(c);
out:
	free(owned);
	return rv;
}

int cli_snapshot(const struct cli_global *g, const struct cli_args *a)
{
	int rv;

	if (a->n_pos >= 2 && strcmp(a->pos[1], "get") == 0) {
		rv = check_pos(a, "snapshot get", 3);
		return rv != 0 ? rv : snapshot_get(g, a);
	}
	if (a->n_pos >= 2 && strcmp(a->pos[1], "put") == 0) {
		rv = check_pos(a, "snapshot put", 4);
		return rv != 0 ? rv : snapshot_put(g, a);
	}
	return usage("snapshot needs get or put");
}
