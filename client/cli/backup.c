/* `cairn backup DIR`: copies a consistent checkpoint of the leader's store
 * into DIR with cairn_fetch_state (docs/backup.md). The leader takes the
 * checkpoint after a barrier, so every append acknowledged before the
 * command started is in the backup. Progress is one updating line on
 * stderr when stderr is a terminal; a summary line (or a JSON object with
 * --json) is printed at the end. A DIR that exists and is not empty is
 * refused unless --resume, which keeps the SST files an earlier attempt
 * fetched from the same store. main.c dispatches here. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char cli_backup_help[] =
	"Usage: cairn backup DIR [--resume]\n"
	"\n"
	"Copies a consistent checkpoint of the leader's store into DIR (made\n"
	"if missing): every append acknowledged before the backup began is in\n"
	"it. DIR must be empty or missing; --resume continues an interrupted\n"
	"backup into DIR, keeping the files already fetched from the same\n"
	"store. The backup is complete when DIR/CAIRN-COPY exists. Restore it\n"
	"with cairnd --restore DIR (docs/backup.md). Progress goes to stderr\n"
	"when it is a terminal; a summary line is printed at the end (--json:\n"
	"{\"dir\",\"node_id\",\"applied_index\",\"last_position\",\"bytes\",\n"
	"\"bytes_fetched\",\"seconds\"}).\n"
	"\n" CLI_EXIT_HELP;

/* What the progress line needs. */
struct progress {
	bool tty;          /* stderr is a terminal */
	double start;      /* monotonic seconds at the start */
	double last_print; /* when the line was last drawn */
	bool drawn;        /* a line is on the screen */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mb(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

static void on_progress(void *arg, const struct cairn_fetch_progress *p)
{
	struct progress *pr = arg;
	double now = now_s();
	double elapsed = now - pr->start;

	if (!pr->tty)
		return;
	/* At most five redraws a second, and always the last one. */
	if (now - pr->last_print < 0.2 && p->bytes_done < p->bytes_total)
		return;
	pr->last_print = now;
	pr->drawn = true;
	fprintf(stderr,
		"\rbackup: %.1f / %.1f MB, %" PRIu32 "/%" PRIu32
		" files, %.1f MB/s   ",
		mb(p->bytes_done), mb(p->bytes_total), p->files_done,
		p->files_total,
		elapsed > 0 ? mb(p->bytes_done) / elapsed : 0.0);
	fflush(stderr);
}

/* 1 when @dir exists and holds something, 0 when it is missing or empty,
 * -1 when it cannot be read (errno set). */
static int dir_not_empty(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

int cli_backup(const struct cli_global *g, const struct cli_args *a)
{
	struct cairn_fetch_options o;
	struct cairn_fetch_result r;
	struct cairn_error err;
	struct progress pr;
	const char *dir;
	cairn_client *c;
	double seconds;
	int full;
	int rv;

	if (a->n_pos != 2) {
		fprintf(stderr,
			"cairn: backup takes one directory (try cairn "
			"backup --help)\n");
		return CLI_USAGE;
	}
	dir = a->pos[1];
	full = dir_not_empty(dir);
	if (full < 0) {
		fprintf(stderr, "cairn: backup: %s: %s\n", dir,
			strerror(errno));
		return CLI_ERROR;
	}
	if (full == 1 && !cli_flag(a, "resume")) {
		fprintf(stderr,
			"cairn: backup: %s is not empty (--resume continues "
			"a backup into it)\n",
			dir);
		return CLI_ERROR;
	}
	rv = cli_open(g, &c);
	if (rv != 0)
		return rv;

	memset(&pr, 0, sizeof pr);
	pr.tty = isatty(STDERR_FILENO) == 1;
	pr.start = now_s();
	memset(&o, 0, sizeof o);
	o.leader = 1;
	o.resume = cli_flag(a, "resume");
	o.timeout_ms = g->deadline_ms > 0 ? (int64_t)g->deadline_ms : 0;
	o.progress = on_progress;
	o.progress_arg = &pr;
	rv = cairn_fetch_state(c, g->node, dir, &o, &r, &err);
	if (pr.drawn)
		fputc('\n', stderr);
	cairn_close(c);
	if (rv != 0)
		return cli_fail(&err);
	seconds = now_s() - pr.start;
	if (g->json) {
		printf("{\"dir\":\"");
		for (const char *p = dir; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p < 0x20)
				printf("\\u%04x", (unsigned)(unsigned char)*p);
			else
				putchar(*p);
		}
		printf("\",\"node_id\":%" PRIu64 ",\"applied_index\":%" PRIu64
		       ",\"last_position\":%" PRIu64 ",\"bytes\":%" PRIu64
		       ",\"bytes_fetched\":%" PRIu64 ",\"seconds\":%.3f}\n",
		       r.node_id, r.applied_index, r.last_position, r.bytes,
		       r.bytes_fetched, seconds);
	} else {
		printf("backup: %s complete: %.1f MB (%.1f MB fetched) from "
		       "node %" PRIu64 " at applied index %" PRIu64
		       ", last position %" PRIu64 ", in %.1f s (%.1f MB/s)\n",
		       dir, mb(r.bytes), mb(r.bytes_fetched), r.node_id,
		       r.applied_index, r.last_position, seconds,
		       seconds > 0 ? mb(r.bytes_fetched) / seconds : 0.0);
	}
	return CLI_OK;
}
