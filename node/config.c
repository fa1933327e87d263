/* node/config.c: cairnd's command line. Every setting is a flag and an
 * environment variable (flags win), as the table in --help lists; main.c
 * calls node_config_parse() once at startup. A usage error is printed on
 * stderr and makes cairnd exit with status 2. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"
#include "node.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#ifndef CAIRN_VERSION
#define CAIRN_VERSION "unknown"
#endif

/* Option codes of the long-only flags. */
enum {
	OPT_ID = 256,
	OPT_DATA_DIR,
	OPT_RAFT_ADDRESS,
	OPT_CLIENT_ADDRESS,
	OPT_HTTP_ADDRESS,
	OPT_PEERS,
	OPT_JOIN,
	OPT_ELECTION_TIMEOUT_MS,
	OPT_HEARTBEAT_TIMEOUT_MS,
	OPT_SNAPSHOT_THRESHOLD,
	OPT_SNAPSHOT_TRAILING,
	OPT_MAX_CONNECTIONS,
	OPT_READ_WAIT_MS,
	OPT_MIN_VOTERS,
	OPT_RAFT_LOG_BUDGET,
	OPT_DISK_RESERVE,
	OPT_LOG_LEVEL,
	OPT_RESTORE,
	OPT_HELP,
	OPT_VERSION,
	OPT_COUNT_ /* not an option */
};

/* One setting: its flag, its environment variable, and the help text. */
struct setting {
	int code;
	const char *flag;  /* without the leading "--" */
	const char *arg;   /* argument name in help; NULL for a switch */
	const char *env;   /* NULL when there is none */
	const char *help;  /* one line */
	const char *deflt; /* default shown in help; NULL when none */
};

static const struct setting settings[] = {
	{ OPT_ID, "id", "N", "CAIRN_ID", "this node's id, >= 1 (required)",
	  NULL },
	{ OPT_DATA_DIR, "data-dir", "DIR", "CAIRN_DATA_DIR",
	  "data directory: DIR/raft holds the Raft log, DIR/store the "
	  "RocksDB store; created if missing (required)",
	  NULL },
	{ OPT_RAFT_ADDRESS, "raft-address", "HOST:PORT", "CAIRN_RAFT_ADDRESS",
	  "address for Raft traffic between nodes (required)", NULL },
	{ OPT_CLIENT_ADDRESS, "client-address", "HOST:PORT",
	  "CAIRN_CLIENT_ADDRESS",
	  "address of the binary client protocol; published to the cluster so "
	  "followers can redirect clients (required)",
	  NULL },
	{ OPT_HTTP_ADDRESS, "http-address", "HOST:PORT", "CAIRN_HTTP_ADDRESS",
	  "HTTP gateway address, published in the member table", "none" },
	{ OPT_PEERS, "peers", "LIST", "CAIRN_PEERS",
	  "bootstrap members of a new cluster, this node included, the same "
	  "list on every node: ID=RAFT/CLIENT/HTTP,...; required unless "
	  "--join, and given again on restarts (it bootstraps only an empty "
	  "Raft log; a leader also takes peers' client and HTTP addresses "
	  "from it)",
	  "none" },
	{ OPT_JOIN, "join", "SEEDS", "CAIRN_JOIN",
	  "join a running cluster instead of bootstrapping one: SEEDS is a "
	  "comma-separated list of its nodes' client addresses; an empty "
	  "Raft log asks them to add this node as a non-voter, waits until it "
	  "has caught up, then asks to be promoted to voter (a restart "
	  "resumes where it stopped); not with --peers",
	  "off" },
	{ OPT_ELECTION_TIMEOUT_MS, "election-timeout-ms", "N",
	  "CAIRN_ELECTION_TIMEOUT_MS", "Raft election timeout in milliseconds",
	  STR(CONSENSUS_ELECTION_TIMEOUT_MS_DEFAULT) },
	{ OPT_HEARTBEAT_TIMEOUT_MS, "heartbeat-timeout-ms", "N",
	  "CAIRN_HEARTBEAT_TIMEOUT_MS",
	  "Raft heartbeat interval in milliseconds",
	  STR(CONSENSUS_HEARTBEAT_TIMEOUT_MS_DEFAULT) },
	{ OPT_SNAPSHOT_THRESHOLD, "snapshot-threshold", "N",
	  "CAIRN_SNAPSHOT_THRESHOLD",
	  "Raft entries applied between two snapshots",
	  STR(CONSENSUS_SNAPSHOT_THRESHOLD_DEFAULT) },
	{ OPT_SNAPSHOT_TRAILING, "snapshot-trailing", "N",
	  "CAIRN_SNAPSHOT_TRAILING",
	  "Raft entries kept in the log behind a snapshot",
	  STR(CONSENSUS_SNAPSHOT_TRAILING_DEFAULT) },
	{ OPT_MAX_CONNECTIONS, "max-connections", "N", "CAIRN_MAX_CONNECTIONS",
	  "client connections served at once; more are answered 'server "
	  "busy' and closed",
	  STR(NODE_MAX_CONNECTIONS_DEFAULT) },
	{ OPT_READ_WAIT_MS, "read-wait-ms", "N", "CAIRN_READ_WAIT_MS",
	  "longest wait of an at-least-position read, in milliseconds, before "
	  "it fails with 'timed out'",
	  STR(NODE_READ_WAIT_MS_DEFAULT) },
	{ OPT_MIN_VOTERS, "min-voters", "N", "CAIRN_MIN_VOTERS",
	  "fewest voters a member removal or demotion may leave, unless the "
	  "request says force (never 0)",
	  STR(NODE_MIN_VOTERS_DEFAULT) },
	{ OPT_RAFT_LOG_BUDGET, "raft-log-budget", "BYTES",
	  "CAIRN_RAFT_LOG_BUDGET",
	  "bytes the retained Raft log may take: snapshot threshold and "
	  "trailing are lowered when entries are large (at least 1048576; "
	  "see docs/disk.md)",
	  "536870912" },
	{ OPT_DISK_RESERVE, "disk-reserve", "BYTES", "CAIRN_DISK_RESERVE",
	  "free bytes kept on the data directory's file system: below it "
	  "the node refuses appends, a leader hands leadership over, and a "
	  "starting node waits; 0 turns the guard off (see docs/disk.md)",
	  "268435456" },
	{ OPT_LOG_LEVEL, "log-level", "LEVEL", "CAIRN_LOG_LEVEL",
	  "lowest level logged: debug, info, warn or error", "info" },
	{ OPT_RESTORE, "restore", "DIR", "CAIRN_RESTORE",
	  "start a node of a new cluster from a backup made by `cairn "
	  "backup`: copies DIR into the empty data directory and resets the "
	  "Raft applied index and member table (every node of the new "
	  "cluster starts with the same DIR and --peers; later starts with "
	  "the same DIR run the restored state; see docs/backup.md); not "
	  "with --join",
	  "none" },
	{ OPT_HELP, "help", NULL, NULL, "print this help and exit", NULL },
	{ OPT_VERSION, "version", NULL, NULL, "print the version and exit",
	  NULL },
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

/* Prints @text indented by 6 columns, wrapped at word boundaries to stay
 * within 79 columns. */
static void print_wrapped(FILE *f, const char *text)
{
	const size_t width = 79 - 6;
	const char *p = text;

	while (*p != '\0') {
		size_t len = strlen(p);
		size_t cut = len;

		if (len > width) {
			cut = width;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = width;
		}
		fprintf(f, "      %.*s\n", (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void print_help(FILE *f)
{
	fprintf(f,
		"Usage: cairnd --id N --data-dir DIR --raft-address HOST:PORT\n"
		"              --client-address HOST:PORT [options]\n"
		"\n"
		"cairnd is a node of a Cairn cluster: a replicated event store."
		"\n"
		"Every option can also be set by the environment variable "
		"named;\n"
		"a flag wins over its variable.\n"
		"\n");
	for (size_t k = 0; k < N_SETTINGS; k++) {
		const struct setting *s = &settings[k];
		char head[80];

		snprintf(head, sizeof head, "--%s%s%s", s->flag,
			 s->arg != NULL ? " " : "",
			 s->arg != NULL ? s->arg : "");
		fprintf(f, "  %s\n", head);
		print_wrapped(f, s->help);
		if (s->env != NULL || s->deflt != NULL) {
			fprintf(f, "      ");
			if (s->env != NULL)
				fprintf(f, "env %s", s->env);
			if (s->env != NULL && s->deflt != NULL)
				fprintf(f, "; ");
			if (s->deflt != NULL)
				fprintf(f, "default: %s", s->deflt);
			fprintf(f, "\n");
		}
	}
	fprintf(f,
		"\n"
		"Exit status: 0 after a clean shutdown (SIGTERM or SIGINT), 1 "
		"on a fatal\n"
		"runtime error (storage, Raft, cannot bind), 2 on a usage "
		"error.\n"
		"\n"
		"Example, node 1 of a local 3-node cluster:\n"
		"  cairnd --id 1 --data-dir data/node1 --raft-address "
		"127.0.0.1:9001 \\\n"
		"    --client-address 127.0.0.1:7001 --http-address "
		"127.0.0.1:8001 \\\n"
		"    --peers 1=127.0.0.1:9001/127.0.0.1:7001/127.0.0.1:8001,"
		"2=127.0.0.1:9002/127.0.0.1:7002/127.0.0.1:8002,"
		"3=127.0.0.1:9003/127.0.0.1:7003/127.0.0.1:8003\n");
}

static const struct setting *setting_of(int code)
{
	for (size_t k = 0; k < N_SETTINGS; k++)
		if (settings[k].code == code)
			return &settings[k];
	return NULL;
}

/* Prints a usage error naming the setting's flag (and variable when the
 * value came from it). */
static void usage_error(const struct setting *s, bool from_env,
			const char *what)
{
	if (s == NULL)
		fprintf(stderr, "cairnd: %s\n", what);
	else if (from_env)
		fprintf(stderr, "cairnd: %s (from --%s): %s\n", s->env, s->flag,
			what);
	else
		fprintf(stderr, "cairnd: --%s: %s\n", s->flag, what);
	fprintf(stderr, "Try 'cairnd --help'.\n");
}

/* Parses a decimal unsigned integer in [min, max]. */
static bool parse_u64(const char *text, uint64_t min, uint64_t max,
		      uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* Checks HOST:PORT (HOST may be [v6]); the host is resolved later. */
static bool address_valid(const char *text)
{
	const char *colon = strrchr(text, ':');
	uint64_t port;
	size_t len = strlen(text);

	if (len == 0 || len >= NODE_ADDRESS_MAX || colon == NULL ||
	    colon == text)
		return false;
	if (!parse_u64(colon + 1, 1, 65535, &port))
		return false;
	for (const char *p = text; p < colon; p++)
		if (*p <= ' ' || *p == '/' || *p == ',' || *p == '=')
			return false;
	return true;
}

/* True for "HOST:PORT,HOST:PORT,...": --join's seeds. */
static bool seeds_valid(const char *text)
{
	char one[NODE_ADDRESS_MAX];
	const char *p = text;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len == 0 || len >= sizeof one)
			return false;
		memcpy(one, p, len);
		one[len] = '\0';
		if (!address_valid(one))
			return false;
		if (end == NULL)
			return true;
		p = end + 1;
	}
}

/* Copies [p, end) into a member address field after checking it. An empty
 * field is allowed when @optional. */
static bool member_address(char *dst, const char *p, const char *end,
			   bool optional)
{
	size_t len = (size_t)(end - p);

	if (len == 0)
		return optional ? (dst[0] = '\0', true) : false;
	if (len >= CONSENSUS_ADDRESS_MAX)
		return false;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return address_valid(dst);
}

/* Parses ID=RAFT[/CLIENT[/HTTP]],... into cfg->peers. Writes why into
 * @why on failure. */
static bool parse_peers(struct node_config *cfg, const char *text, char *why,
			size_t why_len)
{
	const char *p = text;

	cfg->n_peers = 0;
	if (*p == '\0')
		return true;
	for (;;) {
		const char *end = strchr(p, ',');
		const char *eq;
		const char *fields[3] = { NULL, NULL, NULL };
		const char *fields_end[3] = { NULL, NULL, NULL };
		struct consensus_member *m;
		char idtext[24];
		uint64_t id;
		unsigned nf = 0;

		if (end == NULL)
			end = p + strlen(p);
		if (cfg->n_peers == CONSENSUS_MEMBERS_MAX) {
			snprintf(why, why_len, "more than %d members",
				 CONSENSUS_MEMBERS_MAX);
			return false;
		}
		m = &cfg->peers[cfg->n_peers];
		memset(m, 0, sizeof *m);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL || eq == p ||
		    (size_t)(eq - p) >= sizeof idtext) {
			snprintf(why, why_len,
				 "member %u: expected ID=RAFT/CLIENT/HTTP",
				 cfg->n_peers + 1);
			return false;
		}
		memcpy(idtext, p, (size_t)(eq - p));
		idtext[eq - p] = '\0';
		if (!parse_u64(idtext, 1, UINT64_MAX, &id)) {
			snprintf(why, why_len, "member %u: bad id '%s'",
				 cfg->n_peers + 1, idtext);
			return false;
		}
		for (unsigned k = 0; k < cfg->n_peers; k++) {
			if (cfg->peers[k].id == id) {
				snprintf(why, why_len,
					 "member id %" PRIu64 " appears twice",
					 id);
				return false;
			}
		}
		m->id = id;
		m->role = 1; /* voter */
		/* Up to three '/'-separated addresses after the '='. */
		fields[0] = eq + 1;
		for (const char *q = eq + 1; q < end; q++) {
			if (*q != '/')
				continue;
			if (nf == 2) {
				snprintf(why, why_len,
					 "member %" PRIu64
					 ": more than three addresses",
					 id);
				return false;
			}
			fields_end[nf++] = q;
			fields[nf] = q + 1;
		}
		fields_end[nf++] = end;
		if (!member_address(m->raft_address, fields[0], fields_end[0],
				    false) ||
		    (nf > 1 && !member_address(m->client_address, fields[1],
					       fields_end[1], true)) ||
		    (nf > 2 && !member_address(m->http_address, fields[2],
					       fields_end[2], true))) {
			snprintf(why, why_len,
				 "member %" PRIu64
				 ": expected RAFT/CLIENT/HTTP addresses, each "
				 "HOST:PORT",
				 id);
			return false;
		}
		cfg->n_peers++;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	return true;
}

/* Applies one setting's text value. */
static bool apply(struct node_config *cfg, int code, const char *value,
		  bool from_env)
{
	const struct setting *s = setting_of(code);
	char why[160];
	uint64_t v;
	int level;

	switch (code) {
	case OPT_ID:
		if (!parse_u64(value, 1, UINT64_MAX, &v)) {
			usage_error(s, from_env, "expected an integer >= 1");
			return false;
		}
		cfg->id = v;
		return true;
	case OPT_DATA_DIR:
		if (value[0] == '\0') {
			usage_error(s, from_env, "empty directory name");
			return false;
		}
		cfg->data_dir = value;
		return true;
	case OPT_RAFT_ADDRESS:
	case OPT_CLIENT_ADDRESS:
	case OPT_HTTP_ADDRESS:
		if (!address_valid(value)) {
			usage_error(s, from_env, "expected HOST:PORT");
			return false;
		}
		if (code == OPT_RAFT_ADDRESS)
			cfg->raft_address = value;
		else if (code == OPT_CLIENT_ADDRESS)
			cfg->client_address = value;
		else
			cfg->http_address = value;
		return true;
	case OPT_PEERS:
		if (!parse_peers(cfg, value, why, sizeof why)) {
			usage_error(s, from_env, why);
			return false;
		}
		cfg->peers_text = value;
		return true;
	case OPT_JOIN:
		if (from_env && value[0] == '\0') {
			cfg->join = false;
			return true;
		}
		if (!seeds_valid(value)) {
			usage_error(s, from_env,
				    "expected client addresses "
				    "HOST:PORT,HOST:PORT,...");
			return false;
		}
		cfg->join = true;
		cfg->join_seeds = value;
		return true;
	case OPT_RESTORE:
		if (value[0] == '\0') {
			usage_error(s, from_env, "empty directory name");
			return false;
		}
		cfg->restore_dir = value;
		return true;
	case OPT_MIN_VOTERS:
		if (!parse_u64(value, 1, CONSENSUS_MEMBERS_MAX, &v)) {
			snprintf(why, sizeof why,
				 "expected an integer between 1 and %d",
				 CONSENSUS_MEMBERS_MAX);
			usage_error(s, from_env, why);
			return false;
		}
		cfg->min_voters = (unsigned)v;
		return true;
	case OPT_ELECTION_TIMEOUT_MS:
	case OPT_HEARTBEAT_TIMEOUT_MS:
	case OPT_SNAPSHOT_THRESHOLD:
	case OPT_SNAPSHOT_TRAILING:
		if (!parse_u64(value, 1, UINT32_MAX, &v)) {
			usage_error(s, from_env,
				    "expected an integer between 1 and "
				    "4294967295");
			return false;
		}
		if (code == OPT_ELECTION_TIMEOUT_MS)
			cfg->election_timeout_ms = (unsigned)v;
		else if (code == OPT_HEARTBEAT_TIMEOUT_MS)
			cfg->heartbeat_timeout_ms = (unsigned)v;
		else if (code == OPT_SNAPSHOT_THRESHOLD)
			cfg->snapshot_threshold = (unsigned)v;
		else
			cfg->snapshot_trailing = (unsigned)v;
		return true;
	case OPT_MAX_CONNECTIONS:
		if (!parse_u64(value, 1, NODE_MAX_CONNECTIONS_MAX, &v)) {
			snprintf(why, sizeof why,
				 "expected an integer between 1 and %d",
				 NODE_MAX_CONNECTIONS_MAX);
			usage_error(s, from_env, why);
			return false;
		}
		cfg->max_connections = (unsigned)v;
		return true;
	case OPT_READ_WAIT_MS:
		if (!parse_u64(value, 0, NODE_READ_WAIT_MS_MAX, &v)) {
			snprintf(why, sizeof why,
				 "expected an integer between 0 and %d",
				 NODE_READ_WAIT_MS_MAX);
			usage_error(s, from_env, why);
			return false;
		}
		cfg->read_wait_ms = (unsigned)v;
		return true;
	case OPT_RAFT_LOG_BUDGET:
	case OPT_DISK_RESERVE:
		if (!parse_u64(value,
			       code == OPT_RAFT_LOG_BUDGET ? 1u << 20 : 0,
			       UINT64_MAX / 2, &v)) {
			usage_error(s, from_env,
				    code == OPT_RAFT_LOG_BUDGET
					    ? "expected a byte count >= 1048576"
					    : "expected a byte count");
			return false;
		}
		if (code == OPT_RAFT_LOG_BUDGET)
			cfg->raft_log_budget = v;
		else
			cfg->disk_reserve = v;
		return true;
	case OPT_LOG_LEVEL:
		level = log_level_parse(value);
		if (level < 0) {
			usage_error(s, from_env,
				    "expected debug, info, warn or error");
			return false;
		}
		cfg->log_level = (enum log_level)level;
		return true;
	default:
		abort(); /* every code in settings[] is handled above */
	}
}

enum node_config_result node_config_parse(struct node_config *cfg, int argc,
					  char **argv)
{
	struct option longopts[N_SETTINGS + 1];
	bool given[OPT_COUNT_] = { false };
	int opt;

	memset(cfg, 0, sizeof *cfg);
	cfg->http_address = "";
	cfg->peers_text = "";
	cfg->max_connections = NODE_MAX_CONNECTIONS_DEFAULT;
	cfg->read_wait_ms = NODE_READ_WAIT_MS_DEFAULT;
	cfg->min_voters = NODE_MIN_VOTERS_DEFAULT;
	cfg->disk_reserve = DISK_RESERVE_DEFAULT;
	cfg->join_seeds = "";
	cfg->log_level = LOG_INFO;

	for (size_t k = 0; k < N_SETTINGS; k++) {
		longopts[k].name = settings[k].flag;
		longopts[k].has_arg = settings[k].arg != NULL
					      ? required_argument
					      : no_argument;
		longopts[k].flag = NULL;
		longopts[k].val = settings[k].code;
	}
	memset(&longopts[N_SETTINGS], 0, sizeof longopts[N_SETTINGS]);

	/* Flags first: they win over the environment. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		if (opt == OPT_HELP) {
			print_help(stdout);
			return NODE_CONFIG_EXIT;
		}
		if (opt == OPT_VERSION) {
			printf("cairnd %s\n", CAIRN_VERSION);
			return NODE_CONFIG_EXIT;
		}
		if (opt == ':' || opt == '?') {
			char why[128];

			snprintf(why, sizeof why, "%s '%s'",
				 opt == ':' ? "missing argument for"
					    : "unknown option",
				 argv[optind - 1]);
			usage_error(NULL, false, why);
			return NODE_CONFIG_USAGE;
		}
		if (!apply(cfg, opt, optarg, false))
			return NODE_CONFIG_USAGE;
		given[opt - OPT_ID] = true;
	}
	if (optind < argc) {
		char why[128];

		snprintf(why, sizeof why, "unexpected argument '%s'",
			 argv[optind]);
		usage_error(NULL, false, why);
		return NODE_CONFIG_USAGE;
	}
	for (size_t k = 0; k < N_SETTINGS; k++) {
		const struct setting *s = &settings[k];
		const char *value;

		if (s->env == NULL || given[s->code - OPT_ID])
			continue;
		value = getenv(s->env);
		if (value == NULL)
			continue;
		if (!apply(cfg, s->code, value, true))
			return NODE_CONFIG_USAGE;
	}

	if (cfg->id == 0) {
		usage_error(setting_of(OPT_ID), false, "required");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->data_dir == NULL) {
		usage_error(setting_of(OPT_DATA_DIR), false, "required");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->raft_address == NULL) {
		usage_error(setting_of(OPT_RAFT_ADDRESS), false, "required");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->client_address == NULL) {
		usage_error(setting_of(OPT_CLIENT_ADDRESS), false, "required");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->n_peers > 0 && cfg->join) {
		usage_error(setting_of(OPT_JOIN), !given[OPT_JOIN - OPT_ID],
			    "not with --peers: a joining node learns its "
			    "cluster from the seeds");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->restore_dir != NULL && cfg->join) {
		usage_error(setting_of(OPT_RESTORE),
			    !given[OPT_RESTORE - OPT_ID],
			    "not with --join: a restored cluster starts from "
			    "the backup on every node, a joining node from "
			    "its cluster");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->n_peers == 0 && !cfg->join) {
		usage_error(setting_of(OPT_PEERS), false,
			    "required unless --join (the same list on every "
			    "node, this node included)");
		return NODE_CONFIG_USAGE;
	}
	if (cfg->n_peers > 0) {
		const struct consensus_member *self = NULL;

		for (unsigned k = 0; k < cfg->n_peers; k++)
			if (cfg->peers[k].id == cfg->id)
				self = &cfg->peers[k];
		if (self == NULL && !cfg->join) {
			usage_error(setting_of(OPT_PEERS),
				    !given[OPT_PEERS - OPT_ID],
				    "the list must include this node's id");
			return NODE_CONFIG_USAGE;
		}
		if (self != NULL &&
		    strcmp(self->raft_address, cfg->raft_address) != 0) {
			usage_error(setting_of(OPT_PEERS),
				    !given[OPT_PEERS - OPT_ID],
				    "this node's Raft address differs from "
				    "--raft-address");
			return NODE_CONFIG_USAGE;
		}
	}
	if ((cfg->heartbeat_timeout_ms != 0
		     ? cfg->heartbeat_timeout_ms
		     : CONSENSUS_HEARTBEAT_TIMEOUT_MS_DEFAULT) >=
	    (cfg->election_timeout_ms != 0
		     ? cfg->election_timeout_ms
		     : CONSENSUS_ELECTION_TIMEOUT_MS_DEFAULT)) {
		usage_error(setting_of(OPT_HEARTBEAT_TIMEOUT_MS),
			    !given[OPT_HEARTBEAT_TIMEOUT_MS - OPT_ID],
			    "must be below the election timeout");
		return NODE_CONFIG_USAGE;
	}
	return NODE_CONFIG_RUN;
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
		return "info";
	case LOG_WARN:
		return "warn";
	case LOG_ERROR:
		return "error";
	}
	return "info";
}

void node_config_log(const struct node_config *cfg)
{
	log_info("node_starting",
		 "version=%s id=%" PRIu64
		 " data_dir=\"%s\" raft_address=%s client_address=%s "
		 "http_address=%s peers=%s join=%s min_voters=%u "
		 "election_timeout_ms=%u "
		 "heartbeat_timeout_ms=%u snapshot_threshold=%u "
		 "snapshot_trailing=%u max_connections=%u read_wait_ms=%u "
		 "log_level=%s",
		 CAIRN_VERSION, cfg->id, cfg->data_dir, cfg->raft_address,
		 cfg->client_address,
		 cfg->http_address[0] != '\0' ? cfg->http_address : "none",
		 cfg->peers_text[0] != '\0' ? cfg->peers_text : "none",
		 cfg->join ? cfg->join_seeds : "none", cfg->min_voters,
		 cfg->election_timeout_ms != 0
			 ? cfg->election_timeout_ms
			 : CONSENSUS_ELECTION_TIMEOUT_MS_DEFAULT,
		 cfg->heartbeat_timeout_ms != 0
			 ? cfg->heartbeat_timeout_ms
			 : CONSENSUS_HEARTBEAT_TIMEOUT_MS_DEFAULT,
		 cfg->snapshot_threshold != 0
			 ? cfg->snapshot_threshold
			 : CONSENSUS_SNAPSHOT_THRESHOLD_DEFAULT,
		 cfg->snapshot_trailing != 0
			 ? cfg->snapshot_trailing
			 : CONSENSUS_SNAPSHOT_TRAILING_DEFAULT,
		 cfg->max_connections, cfg->read_wait_ms,
		 level_name(cfg->log_level));
}
