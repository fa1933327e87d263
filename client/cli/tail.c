/* `cairn tail`: follows a stream, a category or the global log through a
 * libcairn subscription (cairn_subscribe in iterator mode) and prints each
 * event as it arrives, in the format of `cairn read` (cli_print_event),
 * with a line on stderr when the subscription is live. It runs until
 * SIGINT or SIGTERM (exit 0), --limit events (exit 0), or an error that
 * ends the subscription (its exit code). The library resumes on another
 * node by itself when a node dies. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* How long one wait for an item lasts before the signal flag is checked
 * again. */
#define TAIL_POLL_MS 200

const char cli_tail_help[] =
	"Usage: cairn tail [STREAM | --category C | --all] [options]\n"
	"\n"
	"Prints events as they are appended: first those already there from\n"
	"--from on, then new ones as they commit, until interrupted. A line\n"
	"on stderr says when the output has caught up (live). Any node\n"
	"serves it; when that node dies, tail resumes on another one from\n"
	"the event after the last one printed.\n"
	"\n"
	"  STREAM           one stream (--from is a stream version)\n"
	"  --category C     the streams of category C (order: order-1, ...)\n"
	"  --all            the global log (the default without STREAM)\n"
	"  --type T         only events of type T\n"
	"  --from P|now     the first position (version for a stream) to\n"
	"                   print, or now: only what commits from now on\n"
	"                   (default: 1, the start)\n"
	"  --limit N        exit after N events\n"
	"\n"
	"Output: as cairn read, one line (or with --json one object) per\n"
	"event.\n"
	"\n" CLI_EXIT_HELP;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

int cli_tail(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_error err;
	struct sigaction sa;
	cairn_client *c;
	const char *from = cli_opt(a, "from");
	const char *limit_text = cli_opt(a, "limit");
	const char *category = cli_opt(a, "category");
	uint64_t limit = 0;
	uint64_t printed = 0;
	int rv;

	memset(&o, 0, sizeof o);
	if ((a->n_pos == 2) + (category != NULL) + cli_flag(a, "all") > 1) {
		fprintf(stderr,
			"cairn: tail follows one of STREAM, "
			"--category or --all\n");
		return CLI_USAGE;
	}
	if (a->n_pos == 2) {
		o.kind = CAIRN_SUB_STREAM;
		o.target = a->pos[1];
	} else if (category != NULL) {
		if (category[0] == '\0') {
			fprintf(stderr, "cairn: --category needs a name\n");
			return CLI_USAGE;
		}
		o.kind = CAIRN_SUB_CATEGORY;
		o.target = category;
	} else {
		o.kind = CAIRN_SUB_ALL;
	}
	o.type = cli_opt(a, "type");
	if (o.type != NULL && o.type[0] == '\0')
		o.type = NULL;
	if (from != NULL && strcmp(from, "now") == 0) {
		o.from_now = true;
	} else if (from != NULL && !cli_parse_u64(from, &o.from)) {
		fprintf(stderr, "cairn: --from %s: expected a number or now\n",
			from);
		return CLI_USAGE;
	}
	if (limit_text != NULL &&
	    (!cli_parse_u64(limit_text, &limit) || limit == 0)) {
		fprintf(stderr,
			"cairn: --limit %s: expected a number above 0\n",
			limit_text);
		return CLI_USAGE;
	}

	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;
	if (cairn_subscribe(c, &o, NULL, NULL, &sub, &err) != 0) {
		rv = cli_fail(&err);
		cairn_close(c);
		return rv;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	rv = CLI_OK;
	while (!stop_requested && (limit == 0 || printed < limit)) {
		struct cairn_sub_item item;
		int st =
			cairn_subscription_next(sub, TAIL_POLL_MS, &item, &err);

		if (st == CAIRN_ETIMEOUT) {
			fflush(stdout);
			continue;
		}
		if (st != 0) {
			fflush(stdout);
			rv = cli_fail(&err);
			break;
		}
		if (item.what == CAIRN_SUB_LIVE) {
			fflush(stdout);
			fprintf(stderr,
				"live: caught up (next %llu, node at "
				"position %llu)\n",
				(unsigned long long)item.next,
				(unsigned long long)item.last_position);
			continue;
		}
		cli_print_event(stdout, &item.event, g->json);
		printed++;
	}
	fflush(stdout);
	cairn_subscription_close(sub);
	cairn_close(c);
	return rv;
}
