/* `cairn`: the command line tool of Cairn, over libcairn. Parses the
 * command line (global options before or after the command), runs one of
 * append, read, read-all, head, status, tail, bench, checkpoint or
 * snapshot, and maps the outcome to
 * the exit codes every --help lists. docs/client.md is its reference. */
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLI_DEFAULT_SEEDS "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

/* Largest data or metadata the tool reads from a file or stdin: past the
 * largest request the protocol carries, so the server's own limits (1 MiB
 * per event by default) are the ones users meet, with its message. */
#define CLI_INPUT_BYTES_MAX (17u << 20)

/* Events asked for per page when paging through a read. */
#define CLI_PAGE_EVENTS 1000

/* ------------------------------------------------------------------------
 * Helpers shared with bench.c
 * ------------------------------------------------------------------------ */

int cli_exit_code(int code)
{
	switch (code) {
	case 0:
		return CLI_OK;
	case CAIRN_EWRONG_EXPECTED_VERSION:
		return CLI_CONFLICT;
	case CAIRN_ECONNECT:
	case CAIRN_EUNAVAILABLE:
	case CAIRN_ENOT_LEADER:
	case CAIRN_ETIMEOUT:
	case CAIRN_EUNKNOWN_OUTCOME:
	case CAIRN_EBUSY:
	case CAIRN_ENO_SPACE:
		return CLI_UNAVAILABLE;
	case CAIRN_EINVALID:
	case CAIRN_ETOO_LARGE:
		return CLI_INVALID;
	case CAIRN_ESTALE_SEQUENCE:
		return CLI_STALE;
	case CAIRN_ECHANGE_IN_PROGRESS:
		return CLI_UNAVAILABLE;
	case CAIRN_EBELOW_MIN_VOTERS:
	case CAIRN_ENO_SUCH_MEMBER:
	case CAIRN_EALREADY_MEMBER:
		return CLI_INVALID;
	case CAIRN_EARG:
		return CLI_USAGE;
	default:
		return CLI_ERROR;
	}
}

int cli_fail(const struct cairn_error *err)
{
	fprintf(stderr, "cairn: %s",
		err->message[0] != '\0' ? err->message
					: cairn_strerror(err->code));
	if (err->code == CAIRN_ENOT_LEADER && err->leader[0] != '\0')
		fprintf(stderr, " (the leader is %s)", err->leader);
	fprintf(stderr, "\n");
	return cli_exit_code(err->code);
}

int cli_open(const struct cli_global *g, cairn_client **out)
{
	struct cairn_options o;
	struct cairn_error err;

	memset(&o, 0, sizeof o);
	o.deadline_ms = g->deadline_ms;
	o.single_node = g->node != NULL;
	if (cairn_open(g->node != NULL ? g->node : g->seeds, &o, out, &err) !=
	    0)
		return cli_fail(&err);
	return 0;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

const char *cli_opt(const struct cli_args *a, const char *name)
{
	int i;

	for (i = a->n_opts - 1; i >= 0; i--) {
		if (strcmp(a->opts[i].name, name) == 0)
			return a->opts[i].value;
	}
	return NULL;
}

bool cli_flag(const struct cli_args *a, const char *name)
{
	int i;

	for (i = 0; i < a->n_opts; i++) {
		if (strcmp(a->opts[i].name, name) == 0)
			return true;
	}
	return false;
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Prints "cairn: <what> (try --help)" and returns the usage exit code. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cairn: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try --help)\n");
	return CLI_USAGE;
}

/* ------------------------------------------------------------------------
 * Help
 * ------------------------------------------------------------------------ */

#define GLOBAL_HELP                                                           \
	"Global options (before or after the command):\n"                     \
	"  --seeds LIST       nodes to start from, host:port,... (default:\n" \
	"                     $CAIRN_SEEDS, else " CLI_DEFAULT_SEEDS          \
	")\n"                                                                 \
	"  --node HOST:PORT   talk to this node only: no redirects\n"         \
	"  --json             JSON output\n"                                  \
	"  --deadline-ms N    deadline of each call, retries included\n"      \
	"                     (default 10000)\n"

static const char main_help[] =
	"Usage: cairn [GLOBAL OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"Commands:\n"
	"  append STREAM     append one event\n"
	"  read STREAM       read a stream\n"
	"  read-all          read the global log\n"
	"  head STREAM       a stream's version and last position\n"
	"  status            the cluster's members and their state\n"
	"  tail [STREAM]     print events as they commit (subscription)\n"
	"  checkpoint get|set NAME ...  read or set a consumer checkpoint\n"
	"  snapshot get|put STREAM ...  read or store an aggregate snapshot\n"
	"  bench             measure appends and reads\n"
	"  members list|add|remove|promote|demote ...  the cluster's members\n"
	"  leader transfer [ID]  hand leadership to another voter\n"
	"  backup DIR        copy the leader's store into DIR\n"
	"\n"
	"cairn COMMAND --help describes a command.\n"
	"\n" GLOBAL_HELP "\n" CLI_EXIT_HELP;

static const char append_help[] =
	"Usage: cairn append STREAM --type TYPE [--data JSON | --data-file "
	"FILE]\n"
	"                    [--expect any|no-stream|exists|N]\n"
	"                    [--client-id UUID --seq N] [--metadata JSON]\n"
	"\n"
	"Appends one event to STREAM. The data is --data (which must parse as\n"
	"JSON; it is stored exactly as given), the bytes of --data-file, or\n"
	"standard input when neither is given. Prints \"version V position "
	"P\"\n"
	"(\" (duplicate)\" when the append had committed before).\n"
	"\n"
	"  --type TYPE        the event type (required)\n"
	"  --expect E         expected version: any (default), no-stream,\n"
	"                     exists, or an exact version number\n"
	"  --client-id UUID   idempotency key: writer id...\n"
	"  --seq N            ...and its sequence (both or neither); running\n"
	"                     the same command again reports the original\n"
	"                     result as a duplicate instead of appending "
	"twice\n"
	"  --metadata JSON    event metadata (must parse as JSON)\n"
	"\n"
	"--json prints {\"stream\",\"version\",\"position\",\"duplicate\"}.\n"
	"\n" GLOBAL_HELP "\n" CLI_EXIT_HELP;

#define CONSISTENCY_HELP                                                      \
	"  --consistency C    any (the node's own state), leader\n"           \
	"                     (linearizable), or at-least:POSITION (a node\n" \
	"                     that has applied POSITION); default leader,\n"  \
	"                     any with --node\n"

#define EVENT_OUTPUT_HELP                                                      \
	"Output: one line per event: position, stream@version, type, id and\n" \
	"the data as text when printable, else \"base64:...\". With --json,\n" \
	"one object per line: position, stream, version, id, type, time\n"     \
	"(commit time, RFC 3339 UTC), data (the JSON value when the data is\n" \
	"JSON, else data_base64) and metadata likewise when present.\n"

static const char read_help[] =
	"Usage: cairn read STREAM [--from VERSION] [--backward] [--limit N]\n"
	"                  [--consistency any|leader|at-least:POSITION]\n"
	"\n"
	"Reads STREAM page by page until --limit events or its end.\n"
	"\n"
	"  --from VERSION     first version (default 1, or the head with\n"
	"                     --backward)\n"
	"  --backward         newest first\n"
	"  --limit N          at most N events (default: "
	"all)\n" CONSISTENCY_HELP "\n" EVENT_OUTPUT_HELP "\n" GLOBAL_HELP
	"\n" CLI_EXIT_HELP;

static const char read_all_help[] =
	"Usage: cairn read-all [--from POSITION] [--limit N] [--category C]\n"
	"                      [--type T] [--prefix P]\n"
	"                      [--consistency any|leader|at-least:POSITION]\n"
	"\n"
	"Reads the global log in commit order, page by page until --limit\n"
	"events or its end.\n"
	"\n"
	"  --from POSITION    first position (default 1)\n"
	"  --limit N          at most N events (default: all)\n"
	"  --category C       only streams of category C (\"order\" holds\n"
	"                     order-1, order-2, ...)\n"
	"  --type T           only events of type T\n"
	"  --prefix P         only streams whose name starts with "
	"P\n" CONSISTENCY_HELP "\n" EVENT_OUTPUT_HELP "\n" GLOBAL_HELP
	"\n" CLI_EXIT_HELP;

static const char head_help[] =
	"Usage: cairn head STREAM [--consistency "
	"any|leader|at-least:POSITION]\n"
	"\n"
	"Prints \"version V position P\": STREAM's version (its event count, "
	"0\n"
	"when it has none) and the position of its last event. --json prints\n"
	"{\"stream\",\"version\",\"position\"}.\n"
	"\n" CONSISTENCY_HELP "\n" GLOBAL_HELP "\n" CLI_EXIT_HELP;

static const char status_help[] =
	"Usage: cairn status\n"
	"\n"
	"Asks one node for the member list, then every member for its own\n"
	"status, and prints a table: id, Raft address, client address, HTTP\n"
	"address, role, term, commit index, applied index, last position and\n"
	"the leader it knows; \"unreachable\" for a member that does not\n"
	"answer. --json prints an array with one object per member.\n"
	"\n" GLOBAL_HELP "\n" CLI_EXIT_HELP;

/* ------------------------------------------------------------------------
 * The command line
 * ------------------------------------------------------------------------ */

struct opt_def {
	const char *name;
	bool has_value;
};

/* Every option of every command; which command takes which is checked
 * once the command is known. */
static const struct opt_def opt_defs[] = {
	{ "seeds", true },       { "node", true },
	{ "json", false },       { "deadline-ms", true },
	{ "help", false },       { "type", true },
	{ "data", true },        { "data-file", true },
	{ "expect", true },      { "client-id", true },
	{ "seq", true },         { "metadata", true },
	{ "from", true },        { "backward", false },
	{ "limit", true },       { "consistency", true },
	{ "category", true },    { "prefix", true },
	{ "workload", true },    { "writers", true },
	{ "duration-s", true },  { "events-per-append", true },
	{ "event-bytes", true }, { "read-node", true },
	{ "all", false },        { "max-version", true },
	{ "force", false },      { "resume", false },
};

static const char *const global_opts[] = { "seeds",       "node", "json",
					   "deadline-ms", "help", NULL };

struct command {
	const char *name;
	int n_pos; /* positional arguments after the command */
	const char *help;
	const char *const *opts; /* NULL-terminated */
	int (*run)(const struct cli_global *g, const struct cli_args *a);
};

static int parse(int argc, char **argv, struct cli_args *a)
{
	bool options_done = false;
	int i;

	memset(a, 0, sizeof *a);
	for (i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const struct opt_def *def = NULL;
		const char *eq;
		size_t len;
		size_t k;

		if (options_done || arg[0] != '-' || arg[1] == '\0') {
			if (a->n_pos == (int)(sizeof a->pos / sizeof a->pos[0]))
				return usage_error("too many arguments");
			a->pos[a->n_pos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(arg, "-h") == 0)
			arg = "--help";
		if (arg[1] != '-')
			return usage_error("unknown option %s", arg);
		arg += 2;
		eq = strchr(arg, '=');
		len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		for (k = 0; k < sizeof opt_defs / sizeof opt_defs[0]; k++) {
			if (strlen(opt_defs[k].name) == len &&
			    strncmp(opt_defs[k].name, arg, len) == 0)
				def = &opt_defs[k];
		}
		if (def == NULL)
			return usage_error("unknown option %s", argv[i]);
		if (a->n_opts == (int)(sizeof a->opts / sizeof a->opts[0]))
			return usage_error("too many options");
		a->opts[a->n_opts].name = def->name;
		if (!def->has_value) {
			if (eq != NULL)
				return usage_error("%s takes no value",
						   argv[i]);
			a->opts[a->n_opts++].value = NULL;
			continue;
		}
		if (eq != NULL) {
			a->opts[a->n_opts++].value = eq + 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("%s needs a value", argv[i]);
		a->opts[a->n_opts++].value = argv[++i];
	}
	return 0;
}

static bool allowed(const char *const *list, const char *name)
{
	for (; list != NULL && *list != NULL; list++) {
		if (strcmp(*list, name) == 0)
			return true;
	}
	return false;
}

/* Parses --consistency (default: leader, or any with --node). */
static int parse_consistency(const struct cli_global *g,
			     const struct cli_args *a,
			     struct cairn_read_options *ro)
{
	const char *s = cli_opt(a, "consistency");

	memset(ro, 0, sizeof *ro);
	ro->consistency = g->node != NULL ? CAIRN_CONSISTENCY_ANY
					  : CAIRN_CONSISTENCY_LEADER;
	if (s == NULL)
		return 0;
	if (strcmp(s, "any") == 0) {
		ro->consistency = CAIRN_CONSISTENCY_ANY;
	} else if (strcmp(s, "leader") == 0) {
		ro->consistency = CAIRN_CONSISTENCY_LEADER;
	} else if (strncmp(s, "at-least:", 9) == 0 &&
		   cli_parse_u64(s + 9, &ro->min_position)) {
		ro->consistency = CAIRN_CONSISTENCY_AT_LEAST;
	} else {
		return usage_error(
			"--consistency %s: expected any, leader or "
			"at-least:POSITION",
			s);
	}
	return 0;
}

int cli_parse_consistency(const struct cli_global *g, const struct cli_args *a,
			  struct cairn_read_options *ro)
{
	return parse_consistency(g, a, ro);
}

/* ------------------------------------------------------------------------
 * append
 * ------------------------------------------------------------------------ */

/* Reads all of @f (at most CLI_INPUT_BYTES_MAX bytes) into a malloc'ed
 * buffer. Returns 0 or an exit code after printing why. */
static int read_all_input(FILE *f, const char *what, char **out, size_t *len)
{
	size_t cap = 64 << 10;
	size_t n = 0;
	char *buf = malloc(cap);

	if (buf == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		return CLI_ERROR;
	}
	for (;;) {
		size_t got;

		if (n == cap) {
			char *p;

			if (cap > CLI_INPUT_BYTES_MAX) {
				free(buf);
				fprintf(stderr,
					"cairn: %s: more than %u bytes of "
					"data\n",
					what, CLI_INPUT_BYTES_MAX);
				return CLI_INVALID;
			}
			cap *= 2;
			p = realloc(buf, cap);
			if (p == NULL) {
				free(buf);
				fprintf(stderr, "cairn: out of memory\n");
				return CLI_ERROR;
			}
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fprintf(stderr, "cairn: %s: %s\n", what, strerror(errno));
		return CLI_ERROR;
	}
	*out = buf;
	*len = n;
	return 0;
}

int cli_read_input(FILE *f, const char *what, char **out, size_t *len)
{
	return read_all_input(f, what, out, len);
}

static bool is_json(const char *s)
{
	json_error_t jerr;
	json_t *v = json_loads(s, JSON_DECODE_ANY, &jerr);

	if (v == NULL)
		return false;
	json_decref(v);
	return true;
}

static int cmd_append(const struct cli_global *g, const struct cli_args *a)
{
	const char *stream = a->pos[1];
	const char *data = cli_opt(a, "data");
	const char *data_file = cli_opt(a, "data-file");
	const char *expect = cli_opt(a, "expect");
	const char *client_id = cli_opt(a, "client-id");
	const char *seq = cli_opt(a, "seq");
	const char *metadata = cli_opt(a, "metadata");
	struct cairn_append_part part;
	struct cairn_append_key key;
	struct cairn_part_result res;
	struct cairn_event_in ev;
	struct cairn_error err;
	cairn_client *c;
	char *owned = NULL;
	size_t data_len = 0;
	bool dup = false;
	int rv;

	memset(&ev, 0, sizeof ev);
	memset(&part, 0, sizeof part);
	memset(&key, 0, sizeof key);
	ev.type = cli_opt(a, "type");
	if (ev.type == NULL)
		return usage_error("append needs --type");
	if (data != NULL && data_file != NULL)
		return usage_error("give --data or --data-file, not both");
	part.expect_kind = CAIRN_EXPECT_ANY;
	if (expect == NULL || strcmp(expect, "any") == 0)
		part.expect_kind = CAIRN_EXPECT_ANY;
	else if (strcmp(expect, "no-stream") == 0)
		part.expect_kind = CAIRN_EXPECT_NO_STREAM;
	else if (strcmp(expect, "exists") == 0)
		part.expect_kind = CAIRN_EXPECT_EXISTS;
	else if (cli_parse_u64(expect, &part.expect_version))
		part.expect_kind = CAIRN_EXPECT_EXACT;
	else
		return usage_error(
			"--expect %s: expected any, no-stream, "
			"exists or a version number",
			expect);
	if ((client_id == NULL) != (seq == NULL))
		return usage_error("--client-id and --seq go together");
	if (client_id != NULL) {
		key.has_key = true;
		if (cairn_uuid_parse(client_id, key.client_id) != 0)
			return usage_error("--client-id %s: not a UUID",
					   client_id);
		if (!cli_parse_u64(seq, &key.seq))
			return usage_error("--seq %s: not a number", seq);
	}
	if (metadata != NULL && !is_json(metadata))
		return usage_error("--metadata %s: not JSON", metadata);

	if (data != NULL) {
		if (!is_json(data))
			return usage_error("--data %s: not JSON", data);
		data_len = strlen(data);
	} else if (data_file != NULL) {
		FILE *f = fopen(data_file, "rb");

		if (f == NULL) {
			fprintf(stderr, "cairn: %s: %s\n", data_file,
				strerror(errno));
			return CLI_ERROR;
		}
		rv = read_all_input(f, data_file, &owned, &data_len);
		fclose(f);
		if (rv != 0)
			return rv;
		data = owned;
	} else {
		rv = read_all_input(stdin, "standard input", &owned, &data_len);
		if (rv != 0)
			return rv;
		data = owned;
	}
	ev.data = data;
	ev.data_len = data_len;
	if (metadata != NULL) {
		ev.metadata = metadata;
		ev.metadata_len = strlen(metadata);
	}
	part.stream = stream;
	part.events = &ev;
	part.n_events = 1;

	rv = cli_open(g, &c);
	if (rv != 0)
		goto out;
	if (cairn_append(c, &part, 1, &key, &res, &dup, &err) != 0) {
		rv = cli_fail(&err);
		goto out_after_open;
	}
	if (g->json) {
		json_t *o = json_object();
		char *line;

		json_object_set_new(o, "stream", json_string(stream));
		json_object_set_new(o, "version",
				    json_integer((json_int_t)res.last_version));
		json_object_set_new(
			o, "position",
			json_integer((json_int_t)res.last_position));
		json_object_set_new(o, "duplicate", json_boolean(dup));
		line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", line != NULL ? line : "{}");
		free(line);
		json_decref(o);
	} else {
		printf("version %llu position %llu%s\n",
		       (unsigned long long)res.last_version,
		       (unsigned long long)res.last_position,
		       dup ? " (duplicate)" : "");
	}
	rv = 0;

out_after_open:
	cairn_close(c);
out:
	free(owned);
	return rv;
}

/* ------------------------------------------------------------------------
 * read, read-all
 * ------------------------------------------------------------------------ */

static int parse_limit(const struct cli_args *a, uint64_t *limit)
{
	const char *s = cli_opt(a, "limit");

	*limit = 0;
	if (s != NULL && (!cli_parse_u64(s, limit) || *limit == 0))
		return usage_error("--limit %s: expected a number above 0", s);
	return 0;
}

/* Reads pages until @limit events (0: no limit) or the end. @stream NULL:
 * the global log. */
static int read_pages(const struct cli_global *g, const char *stream,
		      uint64_t from, bool backward, uint64_t limit,
		      const struct cairn_filter *filter,
		      struct cairn_read_options *ro)
{
	struct cairn_error err;
	cairn_client *c;
	uint64_t printed = 0;
	int rv;

	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	for (;;) {
		struct cairn_page page;
		size_t i;
		bool stop;

		ro->limit = CLI_PAGE_EVENTS;
		if (limit > 0 && limit - printed < CLI_PAGE_EVENTS)
			ro->limit = (uint32_t)(limit - printed);
		if (stream != NULL)
			rv = cairn_read_stream(c, stream, from, backward, ro,
					       &page, &err);
		else
			rv = cairn_read_all(c, from, filter, ro, &page, &err);
		if (rv != 0) {
			rv = cli_fail(&err);
			break;
		}
		for (i = 0; i < page.n && (limit == 0 || printed < limit);
		     i++) {
			cli_print_event(stdout, &page.events[i], g->json);
			printed++;
		}
		/* An empty page that is not the end (a filtered scan that
		 * found nothing in its budget) goes on from page.next; no
		 * progress at all ends the read rather than loop. */
		stop = page.end || (limit > 0 && printed >= limit) ||
		       page.next == from;
		from = page.next;
		cairn_page_free(&page);
		if (stop)
			break;
	}
	cairn_close(c);
	if (fflush(stdout) != 0 && rv == 0)
		rv = CLI_ERROR;
	return rv;
}

static int cmd_read(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_read_options ro;
	bool backward = cli_flag(a, "backward");
	uint64_t from = backward ? UINT64_MAX : 1;
	uint64_t limit;
	const char *s = cli_opt(a, "from");
	int rv;

	if (s != NULL && !cli_parse_u64(s, &from))
		return usage_error("--from %s: not a version number", s);
	rv = parse_limit(a, &limit);
	if (rv == 0)
		rv = parse_consistency(g, a, &ro);
	if (rv != 0)
		return rv;
	return read_pages(g, a->pos[1], from, backward, limit, NULL, &ro);
}

static int cmd_read_all(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_read_options ro;
	struct cairn_filter filter;
	uint64_t from = 1;
	uint64_t limit;
	const char *s = cli_opt(a, "from");
	int rv;

	if (s != NULL && !cli_parse_u64(s, &from))
		return usage_error("--from %s: not a position", s);
	rv = parse_limit(a, &limit);
	if (rv == 0)
		rv = parse_consistency(g, a, &ro);
	if (rv != 0)
		return rv;
	memset(&filter, 0, sizeof filter);
	filter.category = cli_opt(a, "category");
	filter.type = cli_opt(a, "type");
	filter.stream_prefix = cli_opt(a, "prefix");
	return read_pages(g, NULL, from, false, limit, &filter, &ro);
}

/* ------------------------------------------------------------------------
 * head
 * ------------------------------------------------------------------------ */

static int cmd_head(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_read_options ro;
	struct cairn_error err;
	cairn_client *c;
	uint64_t version = 0;
	uint64_t position = 0;
	int rv;

	rv = parse_consistency(g, a, &ro);
	if (rv != 0)
		return rv;
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_head(c, a->pos[1], &ro, &version, &position, &err) != 0) {
		rv = cli_fail(&err);
		cairn_close(c);
		return rv;
	}
	cairn_close(c);
	if (g->json) {
		json_t *o = json_object();
		char *line;

		json_object_set_new(o, "stream", json_string(a->pos[1]));
		json_object_set_new(o, "version",
				    json_integer((json_int_t)version));
		json_object_set_new(o, "position",
				    json_integer((json_int_t)position));
		line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		printf("%s\n", line != NULL ? line : "{}");
		free(line);
		json_decref(o);
	} else {
		printf("version %llu position %llu\n",
		       (unsigned long long)version,
		       (unsigned long long)position);
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * status
 * ------------------------------------------------------------------------ */

static const char *role_name(int role)
{
	switch (role) {
	case CAIRN_ROLE_FOLLOWER:
		return "follower";
	case CAIRN_ROLE_CANDIDATE:
		return "candidate";
	case CAIRN_ROLE_LEADER:
		return "leader";
	default:
		return "unavailable";
	}
}

static const char *voter_name(int role)
{
	switch (role) {
	case 0:
		return "standby";
	case 1:
		return "voter";
	default:
		return "spare";
	}
}

#define STATUS_COLUMNS 10
#define CELL_BYTES     260 /* an address and its NUL */

/* One row of the table, and what --json prints of it. */
struct status_row {
	const struct cairn_member *m; /* borrowed */
	bool reachable;
	struct cairn_status s;
	char error[512];
};

static void print_status_table(const struct status_row *rows, size_t n)
{
	static const char *const heads[STATUS_COLUMNS] = {
		"ID",   "RAFT",   "CLIENT",  "HTTP",     "ROLE",
		"TERM", "COMMIT", "APPLIED", "LAST POS", "LEADER",
	};
	char cells[17][STATUS_COLUMNS][CELL_BYTES];
	size_t width[STATUS_COLUMNS];
	size_t i;
	size_t k;

	assert(n <= 16);
	for (k = 0; k < STATUS_COLUMNS; k++)
		snprintf(cells[0][k], sizeof cells[0][k], "%s", heads[k]);
	for (i = 0; i < n; i++) {
		const struct status_row *r = &rows[i];
		char(*row)[CELL_BYTES] = cells[i + 1];

		snprintf(row[0], CELL_BYTES, "%llu",
			 (unsigned long long)r->m->id);
		snprintf(row[1], CELL_BYTES, "%s", r->m->raft_address);
		snprintf(row[2], CELL_BYTES, "%s",
			 r->m->client_address[0] ? r->m->client_address : "-");
		snprintf(row[3], CELL_BYTES, "%s",
			 r->m->http_address[0] ? r->m->http_address : "-");
		if (!r->reachable) {
			snprintf(row[4], CELL_BYTES, "unreachable");
			for (k = 5; k < STATUS_COLUMNS; k++)
				snprintf(row[k], CELL_BYTES, "-");
			continue;
		}
		snprintf(row[4], CELL_BYTES, "%s", role_name(r->s.role));
		snprintf(row[5], CELL_BYTES, "%llu",
			 (unsigned long long)r->s.term);
		snprintf(row[6], CELL_BYTES, "%llu",
			 (unsigned long long)r->s.commit_index);
		snprintf(row[7], CELL_BYTES, "%llu",
			 (unsigned long long)r->s.applied_index);
		snprintf(row[8], CELL_BYTES, "%llu",
			 (unsigned long long)r->s.last_position);
		if (r->s.leader_id != 0)
			snprintf(row[9], CELL_BYTES, "%llu",
				 (unsigned long long)r->s.leader_id);
		else
			snprintf(row[9], CELL_BYTES, "-");
	}
	for (k = 0; k < STATUS_COLUMNS; k++) {
		width[k] = 0;
		for (i = 0; i <= n; i++) {
			size_t len = strlen(cells[i][k]);

			if (len > width[k])
				width[k] = len;
		}
	}
	for (i = 0; i <= n; i++) {
		for (k = 0; k < STATUS_COLUMNS; k++) {
			if (k + 1 < STATUS_COLUMNS)
				printf("%-*s  ", (int)width[k], cells[i][k]);
			else
				printf("%s\n", cells[i][k]);
		}
	}
}

static void print_status_json(const struct status_row *rows, size_t n)
{
	json_t *arr = json_array();
	char *text;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct status_row *r = &rows[i];
		json_t *o = json_object();

		json_object_set_new(o, "id",
				    json_integer((json_int_t)r->m->id));
		json_object_set_new(o, "raft_address",
				    json_string(r->m->raft_address));
		json_object_set_new(o, "client_address",
				    json_string(r->m->client_address));
		json_object_set_new(o, "http_address",
				    json_string(r->m->http_address));
		json_object_set_new(o, "voter_role",
				    json_string(voter_name(r->m->voter_role)));
		json_object_set_new(o, "reachable", json_boolean(r->reachable));
		if (r->reachable) {
			json_object_set_new(o, "role",
					    json_string(role_name(r->s.role)));
			json_object_set_new(
				o, "term", json_integer((json_int_t)r->s.term));
			json_object_set_new(
				o, "commit_index",
				json_integer((json_int_t)r->s.commit_index));
			json_object_set_new(
				o, "applied_index",
				json_integer((json_int_t)r->s.applied_index));
			json_object_set_new(
				o, "last_position",
				json_integer((json_int_t)r->s.last_position));
			json_object_set_new(
				o, "leader_id",
				json_integer((json_int_t)r->s.leader_id));
			json_object_set_new(
				o, "leader_client_address",
				json_string(r->s.leader_client_address));
		} else {
			json_object_set_new(o, "role",
					    json_string("unreachable"));
			json_object_set_new(o, "error", json_string(r->error));
		}
		json_array_append_new(arr, o);
	}
	text = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n", text != NULL ? text : "[]");
	free(text);
	json_decref(arr);
}

static int cmd_status(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_status *first;
	struct status_row *rows;
	struct cairn_member self;
	struct cairn_error err;
	cairn_client *c;
	size_t n;
	size_t i;
	int rv;

	(void)a;
	first = calloc(1, sizeof *first);
	rows = calloc(16, sizeof *rows);
	if (first == NULL || rows == NULL) {
		free(first);
		free(rows);
		fprintf(stderr, "cairn: out of memory\n");
		return CLI_ERROR;
	}
	rv = cli_open(g, &c);
	if (rv != 0)
		goto out;
	if (cairn_status(c, NULL, first, &err) != 0) {
		rv = cli_fail(&err);
		goto out_after_open;
	}
	n = first->n_members;
	if (n == 0) {
		/* A node that knows no members yet: show it alone. */
		memset(&self, 0, sizeof self);
		self.id = first->node_id;
		snprintf(self.client_address, sizeof self.client_address, "%s",
			 g->node != NULL ? g->node : "?");
		rows[0].m = &self;
		rows[0].reachable = true;
		rows[0].s = *first;
		n = 1;
	}
	for (i = 0; i < first->n_members; i++) {
		struct status_row *r = &rows[i];

		r->m = &first->members[i];
		if (r->m->id == first->node_id) {
			r->reachable = true;
			r->s = *first;
			continue;
		}
		if (r->m->client_address[0] == '\0') {
			snprintf(r->error, sizeof r->error,
				 "client address not known");
			continue;
		}
		if (cairn_status(c, r->m->client_address, &r->s, &err) == 0)
			r->reachable = true;
		else
			snprintf(r->error, sizeof r->error, "%s", err.message);
	}
	if (g->json)
		print_status_json(rows, n);
	else
		print_status_table(rows, n);
	rv = 0;

out_after_open:
	cairn_close(c);
out:
	free(rows);
	free(first);
	return rv;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static const char *const append_opts[] = { "type",     "data", "data-file",
					   "expect",   "seq",  "client-id",
					   "metadata", NULL };
static const char *const read_opts[] = { "from", "backward", "limit",
					 "consistency", NULL };
static const char *const read_all_opts[] = { "from", "limit",  "category",
					     "type", "prefix", "consistency",
					     NULL };
static const char *const head_opts[] = { "consistency", NULL };
static const char *const bench_opts[] = { "workload",    "writers",
					  "duration-s",  "events-per-append",
					  "event-bytes", "read-node",
					  NULL };

static const char *const checkpoint_opts[] = { "expect", "client-id", "seq",
					       "consistency", NULL };
static const char *const snapshot_opts[] = { "data",        "data-file",
					     "client-id",   "seq",
					     "max-version", "consistency",
					     NULL };

static const char *const tail_opts[] = { "category", "all",   "type",
					 "from",     "limit", NULL };

/* admin.c: `cairn members ...` and `cairn leader transfer`. */
int cli_members(const struct cli_global *g, const struct cli_args *a);
int cli_leader(const struct cli_global *g, const struct cli_args *a);
extern const char cli_members_help[];
extern const char cli_leader_help[];
static const char *const members_opts[] = { "force", NULL };

/* backup.c: `cairn backup DIR`. */
int cli_backup(const struct cli_global *g, const struct cli_args *a);
extern const char cli_backup_help[];
static const char *const backup_opts[] = { "resume", NULL };

static const struct command commands[] = {
	{ "append", 1, append_help, append_opts, cmd_append },
	{ "read", 1, read_help, read_opts, cmd_read },
	{ "read-all", 0, read_all_help, read_all_opts, cmd_read_all },
	{ "head", 1, head_help, head_opts, cmd_head },
	{ "status", 0, status_help, NULL, cmd_status },
	{ "bench", 0, cli_bench_help, bench_opts, cli_bench },
	/* -1: an optional stream name */
	{ "tail", -1, cli_tail_help, tail_opts, cli_tail },
	/* -2: a subcommand and its arguments, checked by the command */
	{ "checkpoint", -2, cli_checkpoint_help, checkpoint_opts,
	  cli_checkpoint },
	{ "snapshot", -2, cli_snapshot_help, snapshot_opts, cli_snapshot },
	{ "members", -2, cli_members_help, members_opts, cli_members },
	{ "leader", -2, cli_leader_help, NULL, cli_leader },
	{ "backup", -2, cli_backup_help, backup_opts, cli_backup },
};

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct cli_global g;
	struct cli_args a;
	const char *s;
	uint64_t deadline;
	size_t i;
	int k;
	int rv;

	rv = parse(argc, argv, &a);
	if (rv != 0)
		return rv;
	if (a.n_pos == 0) {
		if (cli_flag(&a, "help")) {
			fputs(main_help, stdout);
			return CLI_OK;
		}
		fputs(main_help, stderr);
		return CLI_USAGE;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, a.pos[0]) == 0)
			cmd = &commands[i];
	}
	if (cmd == NULL)
		return usage_error("unknown command %s", a.pos[0]);
	if (cli_flag(&a, "help")) {
		fputs(cmd->help, stdout);
		return CLI_OK;
	}
	for (k = 0; k < a.n_opts; k++) {
		if (!allowed(global_opts, a.opts[k].name) &&
		    !allowed(cmd->opts, a.opts[k].name)) {
			fprintf(stderr,
				"cairn: %s takes no --%s (try cairn %s "
				"--help)\n",
				cmd->name, a.opts[k].name, cmd->name);
			return CLI_USAGE;
		}
	}
	if (cmd->n_pos != -2 &&
	    (cmd->n_pos < 0 ? a.n_pos - 1 > 1 : a.n_pos - 1 != cmd->n_pos)) {
		fprintf(stderr, "cairn: %s takes %s (try cairn %s --help)\n",
			cmd->name,
			cmd->n_pos == 1  ? "one stream name"
			: cmd->n_pos < 0 ? "at most one stream name"
					 : "no arguments",
			cmd->name);
		return CLI_USAGE;
	}

	memset(&g, 0, sizeof g);
	g.seeds = cli_opt(&a, "seeds");
	if (g.seeds == NULL)
		g.seeds = getenv("CAIRN_SEEDS");
	if (g.seeds == NULL || g.seeds[0] == '\0')
		g.seeds = CLI_DEFAULT_SEEDS;
	g.node = cli_opt(&a, "node");
	g.json = cli_flag(&a, "json");
	s = cli_opt(&a, "deadline-ms");
	if (s != NULL) {
		if (!cli_parse_u64(s, &deadline) || deadline == 0 ||
		    deadline > 24u * 3600 * 1000)
			return usage_error(
				"--deadline-ms %s: expected "
				"milliseconds above 0",
				s);
		g.deadline_ms = (unsigned)deadline;
	}
	return cmd->run(&g, &a);
}
