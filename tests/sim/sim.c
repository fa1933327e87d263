/* The simulator's command line: runs one seed, a range of seeds (in
 * parallel worker processes), a long run, or a determinism check, and
 * prints one line per failure:
 *
 *   sim: FAIL seed=N step=S: <what>
 *
 * `sim --seed N` replays seed N exactly (same output, same trace hash).
 * Registered with CTest by tests/sim/CMakeLists.txt; see
 * tests/sim/README.md. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sim.h"

#define JOBS_MAX 64

static const char usage[] =
	"usage: sim [options]\n"
	"  --seed N          run seed N and print its summary line\n"
	"  --seeds N         run N seeds (default 100; env CAIRN_SIM_SEEDS)\n"
	"  --first N         first seed of --seeds/--long (default 1)\n"
	"  --long N          a long run: N seeds with progress lines\n"
	"  --jobs J          worker processes (default 1; 0: one per CPU,\n"
	"                    at most 8)\n"
	"  --steps S         fixture steps before healing (default: drawn)\n"
	"  --trailing N      snapshot trailing of every server (default:\n"
	"                    drawn)\n"
	"  --asymmetric      one-way link faults and depositions even with\n"
	"                    a short trailing log (hits a libraft bug, see\n"
	"                    tests/sim/README.md)\n"
	"  --determinism N   run N seeds twice each and compare traces\n"
	"  --break skip-entry  make one replica skip one entry (the checks\n"
	"                    must catch it)\n"
	"  --expect-fail     succeed only if every seed fails (with --break)\n"
	"  --io-faults       inject raft_fixture_io_fault (crashes libraft\n"
	"                    0.22.1, see tests/sim/README.md)\n"
	"  --member-overflow member entries with more ids than the table\n"
	"                    holds\n"
	"  --verbose         a line for every seed\n";

/* The run in progress, for the crash handler. */
static struct sim *volatile running;

static void put_str(char *buf, size_t *at, const char *str)
{
	while (*str != '\0' && *at < 255)
		buf[(*at)++] = *str++;
}

static void put_u64(char *buf, size_t *at, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && *at < 255)
		buf[(*at)++] = tmp[--n];
}

/* libraft's and the fixture's asserts abort; say which seed did it. */
static void crash_handler(int sig)
{
	char buf[256];
	size_t at = 0;
	struct sim *s = running;

	if (s != NULL) {
		put_str(buf, &at, "sim: FAIL seed=");
		put_u64(buf, &at, s->seed);
		put_str(buf, &at, " step=");
		put_u64(buf, &at, s->step);
		put_str(buf, &at, ": crashed with signal ");
		put_u64(buf, &at, (uint64_t)sig);
		put_str(buf, &at, "\n");
		if (write(STDOUT_FILENO, buf, at) < 0)
			_exit(2);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void print_seed(const struct sim *s, bool verbose)
{
	if (s->failed) {
		printf("sim: FAIL seed=%" PRIu64 " step=%" PRIu64 ": %s\n",
		       s->seed, s->fail_step, s->why);
	} else if (verbose) {
		printf("sim: ok seed=%" PRIu64
		       " servers=%u clients=%u steps=%" PRIu64
		       " virtual_ms=%" PRIu64 " entries=%" PRIu64
		       " acked=%" PRIu64 " conflicts=%" PRIu64
		       " unknown=%" PRIu64 " leaders=%" PRIu64
		       " snapshots=%" PRIu64 " transfers=%" PRIu64
		       " trace=%016" PRIx64 "\n",
		       s->seed, s->n, s->n_clients, s->st.steps,
		       s->st.virtual_ms, s->st.entries,
		       s->st.committed + s->st.duplicates, s->st.conflicts,
		       s->st.unknown, s->st.leaders, s->st.snapshots,
		       s->st.transfers, s->trace);
	}
	fflush(stdout);
}

static void stats_add(struct sim_stats *a, const struct sim_stats *b)
{
	const uint64_t *src = (const uint64_t *)b;
	uint64_t *dst = (uint64_t *)a;
	size_t k;

	for (k = 0; k < sizeof *a / sizeof(uint64_t); k++)
		dst[k] += src[k];
}

/* Runs one seed; returns its result and adds its figures to @total. */
static int run_one(uint64_t seed, const struct sim_options *o,
		   struct sim_stats *total, uint64_t *trace, char *why,
		   size_t why_len)
{
	struct sim *s = calloc(1, sizeof *s);
	int rv;

	if (s == NULL)
		abort();
	running = s;
	rv = sim_run(s, seed, o);
	running = NULL;
	print_seed(s, o->verbose);
	if (total != NULL)
		stats_add(total, &s->st);
	if (trace != NULL)
		*trace = s->trace;
	if (why != NULL)
		snprintf(why, why_len, "%s", s->failed ? s->why : "");
	free(s);
	return rv;
}

static void print_stats(const char *what, const struct sim_stats *t,
			double secs)
{
	printf("sim: %s: %" PRIu64 " seeds, %" PRIu64 " failed; %" PRIu64
	       " steps, %.0f virtual s, %" PRIu64 " entries applied, %" PRIu64
	       " txns (%" PRIu64 " committed acks, %" PRIu64
	       " duplicate acks, %" PRIu64 " conflicts, %" PRIu64
	       " stale, %" PRIu64 " rejected, %" PRIu64
	       " unknown outcomes); %" PRIu64 " leaders, %" PRIu64
	       " snapshots, %" PRIu64 " restores, %" PRIu64
	       " state transfers, %" PRIu64 " kills, %" PRIu64
	       " partitions, %" PRIu64 " depositions, %" PRIu64
	       " leadership transfers, %" PRIu64 " barriers, %" PRIu64
	       " foreign entries, %" PRIu64 " io faults; %.1f s\n",
	       what, t->seeds, t->failed, t->steps,
	       (double)t->virtual_ms / 1000.0, t->entries, t->txns,
	       t->committed, t->duplicates, t->conflicts, t->stale, t->rejected,
	       t->unknown, t->leaders, t->snapshots, t->restores, t->transfers,
	       t->kills, t->partitions, t->deposes, t->xfers, t->barriers,
	       t->foreign, t->io_faults, secs);
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs seeds first .. first+count-1 in @jobs worker processes; worker w
 * takes every jobs-th seed from first+w. Returns the number of failed
 * seeds (a crashed worker counts one, and its remaining seeds do not
 * run). */
static uint64_t run_many(uint64_t first, uint64_t count, unsigned jobs,
			 const struct sim_options *o, bool progress,
			 struct sim_stats *total)
{
	int fds[JOBS_MAX][2];
	pid_t pids[JOBS_MAX];
	uint64_t failed = 0;
	unsigned w;

	if (jobs > count)
		jobs = count == 0 ? 1 : (unsigned)count;
	for (w = 0; w < jobs; w++) {
		if (pipe(fds[w]) != 0) {
			perror("sim: pipe");
			exit(2);
		}
		fflush(stdout);
		pids[w] = fork();
		if (pids[w] < 0) {
			perror("sim: fork");
			exit(2);
		}
		if (pids[w] == 0) {
			struct sim_stats st;
			uint64_t i;
			uint64_t done = 0;

			close(fds[w][0]);
			memset(&st, 0, sizeof st);
			for (i = w; i < count; i += jobs) {
				run_one(first + i, o, &st, NULL, NULL, 0);
				if (progress && ++done % 1000 == 0) {
					printf("sim: progress worker=%u "
					       "seeds=%" PRIu64
					       " failed=%" PRIu64 "\n",
					       w, st.seeds, st.failed);
					fflush(stdout);
				}
			}
			if (write(fds[w][1], &st, sizeof st) != sizeof st)
				_exit(2);
			_exit(st.failed != 0 ? 1 : 0);
		}
		close(fds[w][1]);
	}
	for (w = 0; w < jobs; w++) {
		struct sim_stats st;
		int status = 0;
		ssize_t n = read(fds[w][0], &st, sizeof st);

		close(fds[w][0]);
		waitpid(pids[w], &status, 0);
		if (n == sizeof st) {
			stats_add(total, &st);
			failed += st.failed;
		} else {
			printf("sim: worker %u died (%s %d); the seeds left to "
			       "it did not run\n",
			       w, WIFSIGNALED(status) ? "signal" : "status",
			       WIFSIGNALED(status) ? WTERMSIG(status)
						   : WEXITSTATUS(status));
			failed++;
			total->failed++;
		}
	}
	return failed;
}

static uint64_t parse_u64(const char *flag, const char *v)
{
	char *end;
	unsigned long long x;

	if (v == NULL) {
		fprintf(stderr, "sim: %s needs a value\n%s", flag, usage);
		exit(2);
	}
	x = strtoull(v, &end, 10);
	if (*v == '\0' || *end != '\0') {
		fprintf(stderr, "sim: %s: not a number: %s\n", flag, v);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	struct sim_options o;
	struct sim_stats total;
	bool one = false;
	bool expect_fail = false;
	bool progress = false;
	uint64_t seed = 0;
	uint64_t first = 1;
	uint64_t count = 100;
	uint64_t determinism = 0;
	unsigned jobs = 1;
	const char *env = getenv("CAIRN_SIM_SEEDS");
	double t0 = now_s();
	uint64_t failed;
	int k;

	memset(&o, 0, sizeof o);
	memset(&total, 0, sizeof total);
	if (env != NULL && env[0] != '\0')
		count = parse_u64("CAIRN_SIM_SEEDS", env);
	for (k = 1; k < argc; k++) {
		const char *a = argv[k];
		const char *v = k + 1 < argc ? argv[k + 1] : NULL;

		if (strcmp(a, "--seed") == 0) {
			seed = parse_u64(a, v);
			one = true;
			k++;
		} else if (strcmp(a, "--seeds") == 0) {
			count = parse_u64(a, v);
			k++;
		} else if (strcmp(a, "--first") == 0) {
			first = parse_u64(a, v);
			k++;
		} else if (strcmp(a, "--long") == 0) {
			count = parse_u64(a, v);
			progress = true;
			k++;
		} else if (strcmp(a, "--jobs") == 0) {
			jobs = (unsigned)parse_u64(a, v);
			if (jobs == 0) {
				long n = sysconf(_SC_NPROCESSORS_ONLN);

				jobs = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
			}
			if (jobs > JOBS_MAX) {
				fprintf(stderr, "sim: --jobs 1..%d\n",
					JOBS_MAX);
				return 2;
			}
			k++;
		} else if (strcmp(a, "--steps") == 0) {
			o.steps = (unsigned)parse_u64(a, v);
			k++;
		} else if (strcmp(a, "--trailing") == 0) {
			o.trailing = (unsigned)parse_u64(a, v);
			k++;
		} else if (strcmp(a, "--asymmetric") == 0) {
			o.asymmetric = true;
		} else if (strcmp(a, "--determinism") == 0) {
			determinism = parse_u64(a, v);
			k++;
		} else if (strcmp(a, "--break") == 0) {
			if (v == NULL || strcmp(v, "skip-entry") != 0) {
				fprintf(stderr, "sim: --break skip-entry\n");
				return 2;
			}
			o.breakage = SIM_BREAK_SKIP_ENTRY;
			k++;
		} else if (strcmp(a, "--expect-fail") == 0) {
			expect_fail = true;
		} else if (strcmp(a, "--io-faults") == 0) {
			o.io_faults = true;
		} else if (strcmp(a, "--member-overflow") == 0) {
			o.member_overflow = true;
		} else if (strcmp(a, "--verbose") == 0) {
			o.verbose = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "sim: unknown option %s\n%s", a, usage);
			return 2;
		}
	}
	/* consensus/ logs entries it does not know, snapshots and member
	 * changes; the simulation makes many on purpose. Errors still show
	 * (a storage error ends the process, as in cairnd). */
	log_setup(0, LOG_ERROR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGABRT, crash_handler);
	signal(SIGSEGV, crash_handler);
	signal(SIGBUS, crash_handler);
	signal(SIGFPE, crash_handler);

	if (one) {
		o.verbose = true;
		return run_one(seed, &o, NULL, NULL, NULL, 0) == 0 ? 0 : 1;
	}
	if (determinism > 0) {
		uint64_t i;
		uint64_t bad = 0;

		for (i = 0; i < determinism; i++) {
			uint64_t t1;
			uint64_t t2;
			char w1[512];
			char w2[512];

			run_one(first + i, &o, &total, &t1, w1, sizeof w1);
			run_one(first + i, &o, NULL, &t2, w2, sizeof w2);
			if (t1 != t2 || strcmp(w1, w2) != 0) {
				printf("sim: FAIL seed=%" PRIu64
				       " step=0: two runs differ (trace "
				       "%016" PRIx64 " vs %016" PRIx64 ")\n",
				       first + i, t1, t2);
				bad++;
			}
		}
		print_stats("determinism", &total, now_s() - t0);
		return bad == 0 && total.failed == 0 ? 0 : 1;
	}
	failed = run_many(first, count, jobs, &o, progress, &total);
	print_stats(expect_fail ? "expected failures" : "seeds", &total,
		    now_s() - t0);
	if (expect_fail) {
		if (failed != count) {
			printf("sim: FAIL: %" PRIu64 " of %" PRIu64
			       " seeds passed although --break was on\n",
			       count - failed, count);
			return 1;
		}
		return 0;
	}
	return failed == 0 ? 0 : 1;
}
