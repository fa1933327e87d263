/* Crash consistency of the store: a child process applies entries to a store
 * and is killed with SIGKILL at random moments, many times over; after every
 * kill the parent reopens the store and checks that each transaction is
 * wholly present or wholly absent, that positions are dense, that stream
 * heads agree with the log, and that the applied index matches the data, by
 * comparing with a reference store that applied the same entries without
 * ever crashing and by walking the crashed store on its own.
 *
 * Entries are a pure function of (seed, index), so the child, the reference
 * and the checks all see the same transactions without passing them around.
 * The seed comes from CAIRN_TEST_SEED or the clock and is printed at the
 * start and in every failure; the kill timing is not reproducible, so a
 * replay with the same seed reruns the same entries with new kill points.
 * CAIRN_CRASH_KILLS sets the number of kills of the main test.
 *
 * The child is fork()ed and then exec()s this same binary (which sees
 * CAIRN_CRASH_CHILD_MODE in its environment and runs child_main() instead
 * of cmocka): RocksDB keeps background threads in the parent even after
 * its stores are closed, and a forked copy of a multithreaded process may
 * only call async-signal-safe functions, so the child starts afresh rather
 * than opening RocksDB in a copy of the parent. It reports to the parent
 * over a pipe ('S' before store_open, 'R' after, 'E' and a message on an
 * error) and records the last index its store_apply() returned for in a
 * shared file. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

extern char **environ;

/* ------------------------------------------------------------------------
 * Limits of the test
 * ------------------------------------------------------------------------ */

/* Kills of a live child in the main test unless CAIRN_CRASH_KILLS says
 * otherwise: the issue asks for at least 200 over the suite. */
#define CRASH_KILLS_DEFAULT 200

/* Kills on one pair of directories before starting afresh: every check
 * walks the whole store, so this bounds the work per check, and each fresh
 * start gives kills during the store's creation. */
#define CRASH_KILLS_PER_DIR 30

/* Longest wait for the child to report that it started or opened the
 * store; generous for sanitizer builds on a loaded machine. */
#define CRASH_CHILD_TIMEOUT_MS 60000

/* The longest sleep between the child's open and its kill. */
#define CRASH_SLEEP_MAX_US 15000

/* Records per page of the checks' reads. */
#define CRASH_PAGE 1024

/* A progress line every this many kills. */
#define CRASH_PROGRESS_EVERY 20

/* ------------------------------------------------------------------------
 * Entries, a pure function of (seed, index)
 * ------------------------------------------------------------------------ */

#define GEN_TXNS_MAX     4   /* transactions per entry */
#define GEN_PARTS_MAX    3   /* parts per transaction */
#define GEN_EVENTS_MAX   5   /* events per part */
#define GEN_DATA_MAX     300 /* data bytes per event */
#define GEN_METADATA_MAX 40  /* metadata bytes per event */
#define GEN_POOL         16  /* streams written at one time */
#define GEN_POOL_ENTRIES 32  /* entries before the pool moves on */
#define GEN_WRITERS      4   /* client ids */
#define GEN_SLOTS        8   /* slot = index * GEN_SLOTS + transaction */
#define GEN_REPEAT_BACK  16  /* how far back a repeated client key reaches */
#define GEN_COMMIT_BASE  1700000000000000ull

/* The stream pool moves on every GEN_POOL_ENTRIES entries (acct-0..15, then
 * acct-16..31, ...) so streams stay short enough for exact expected
 * versions to hit now and then, while 16 streams at a time keep the
 * transactions of neighbouring entries contending. */

struct gen_txn {
	struct store_txn txn;
	struct store_part parts[GEN_PARTS_MAX];
	struct store_event events[GEN_PARTS_MAX * GEN_EVENTS_MAX];
	uint32_t stream_no[GEN_PARTS_MAX];   /* acct-<stream_no> */
	uint32_t first_event[GEN_PARTS_MAX]; /* ordinal of a part's first */
	uint32_t n_events;                   /* in all parts */
	char names[GEN_PARTS_MAX][24];
};

/* One entry; its pointers point into itself, so it is never copied. */
struct gen_entry {
	uint64_t index; /* 0: nothing generated yet */
	uint32_t n;
	struct gen_txn txns[GEN_TXNS_MAX];
	uint8_t bytes[GEN_TXNS_MAX * GEN_PARTS_MAX * GEN_EVENTS_MAX *
		      (GEN_DATA_MAX + GEN_METADATA_MAX)];
};

static const char *const gen_types[] = { "Opened", "Deposited", "Withdrawn",
					 "Frozen" };

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A generator state for one purpose (@tag) at one place (@a). */
static uint64_t rng_init(uint64_t seed, uint64_t a, uint64_t tag)
{
	uint64_t s = seed;
	uint64_t x;

	x = splitmix64(&s) ^ a;
	s = x;
	x = splitmix64(&s) ^ tag;
	s = x;
	splitmix64(&s);
	return s;
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	assert(n > 0);
	return (uint32_t)(splitmix64(s) % n);
}

/* A writer's client id: every byte says which writer it is. */
static void gen_client_id(uint32_t writer, uint8_t id[16])
{
	memset(id, 0xa0 + (int)writer, 16);
}

/* The client key a slot has when it is not a repeat: its writer, and a
 * sequence that grows with the slot, so each writer's sequences increase. */
static void gen_slot_key(uint64_t seed, uint64_t slot, bool *has_client,
			 uint32_t *writer, uint64_t *seq)
{
	uint64_t s = rng_init(seed, slot, 0xc11e);

	*has_client = rng_below(&s, 8) != 0;
	*writer = rng_below(&s, GEN_WRITERS);
	*seq = slot + 1;
}

static void gen_txn(uint64_t seed, uint64_t index, uint32_t k,
		    struct gen_txn *t, uint8_t *bytes, size_t *off)
{
	uint64_t slot = index * GEN_SLOTS + k;
	uint64_t s = rng_init(seed, slot, 0x7a2);
	uint32_t pool[GEN_POOL];
	uint32_t writer;
	uint32_t n_parts;
	uint32_t n_ev = 0;
	uint32_t p;
	uint32_t i;

	memset(t, 0, sizeof *t);
	gen_slot_key(seed, slot, &t->txn.has_client, &writer,
		     &t->txn.client_seq);
	/* Now and then a writer repeats the key of a recent slot: a retry of
	 * a batch that committed (a duplicate), or of one that did not, or a
	 * key its writer never used, below the high-water mark (stale). */
	if (t->txn.has_client && index > 1 && rng_below(&s, 10) == 0) {
		uint64_t span = index - 1 < GEN_REPEAT_BACK ? index - 1
							    : GEN_REPEAT_BACK;
		uint64_t j = index - 1 - rng_below(&s, (uint32_t)span);
		uint32_t kk = rng_below(&s, GEN_TXNS_MAX);
		bool unused;

		gen_slot_key(seed, j * GEN_SLOTS + kk, &unused, &writer,
			     &t->txn.client_seq);
	}
	gen_client_id(writer, t->txn.client_id);
	t->txn.commit_time_us = GEN_COMMIT_BASE + slot;

	for (i = 0; i < GEN_POOL; i++)
		pool[i] = i;
	n_parts = 1 + rng_below(&s, GEN_PARTS_MAX);
	for (p = 0; p < n_parts; p++) {
		struct store_part *part = &t->parts[p];
		uint32_t pick = p + rng_below(&s, GEN_POOL - p);
		uint32_t tmp = pool[p];
		uint32_t kind = rng_below(&s, 8);
		uint32_t n;
		uint32_t e;

		pool[p] = pool[pick];
		pool[pick] = tmp;
		t->stream_no[p] =
			(uint32_t)(index / GEN_POOL_ENTRIES) * GEN_POOL +
			pool[p];
		snprintf(t->names[p], sizeof t->names[p], "acct-%" PRIu32,
			 t->stream_no[p]);
		part->stream = t->names[p];
		part->stream_len = (uint32_t)strlen(t->names[p]);
		if (kind < 4) {
			part->expect.kind = STORE_EXPECT_ANY;
		} else if (kind == 4) {
			part->expect.kind = STORE_EXPECT_NO_STREAM;
		} else if (kind == 5) {
			part->expect.kind = STORE_EXPECT_EXISTS;
		} else {
			/* Roughly the range a pool stream's version is in at
			 * this point of its pool's life. */
			uint32_t range =
				2 + (uint32_t)(index % GEN_POOL_ENTRIES);

			part->expect.kind = STORE_EXPECT_EXACT;
			part->expect.version = rng_below(&s, 4) == 0
						       ? 0
						       : rng_below(&s, range);
		}
		n = 1 + rng_below(&s, GEN_EVENTS_MAX);
		part->n_events = n;
		part->events = &t->events[n_ev];
		t->first_event[p] = n_ev;
		for (e = 0; e < n; e++) {
			struct store_event *ev = &t->events[n_ev + e];
			uint64_t le = index;
			uint8_t *data = bytes + *off;
			uint32_t b;

			/* The id says where the event comes from, so a check
			 * can find its transaction from a record alone. */
			for (b = 0; b < 8; b++, le >>= 8)
				ev->id[b] = (uint8_t)le;
			ev->id[8] = (uint8_t)k;
			ev->id[9] = (uint8_t)p;
			ev->id[10] = (uint8_t)e;
			ev->id[11] = (uint8_t)n;
			ev->id[13] = (uint8_t)seed;
			ev->id[14] = (uint8_t)(seed >> 8);
			ev->id[15] = (uint8_t)(seed >> 16);
			ev->type = gen_types[rng_below(&s, 4)];
			ev->type_len = (uint32_t)strlen(ev->type);
			if (rng_below(&s, 3) == 0)
				ev->schema_version =
					(uint16_t)(1 + rng_below(&s, 5));
			if (rng_below(&s, 2) == 0)
				ev->event_time_us =
					(int64_t)GEN_COMMIT_BASE - 1000000 +
					(int64_t)rng_below(&s, 2000000);
			ev->data_len = rng_below(&s, GEN_DATA_MAX + 1);
			ev->metadata_len =
				rng_below(&s, 4) == 0
					? rng_below(&s, GEN_METADATA_MAX + 1)
					: 0;
			for (b = 0; b < ev->data_len + ev->metadata_len; b++)
				data[b] = (uint8_t)splitmix64(&s);
			ev->data = ev->data_len > 0 ? data : NULL;
			ev->metadata = ev->metadata_len > 0
					       ? data + ev->data_len
					       : NULL;
			*off += ev->data_len + ev->metadata_len;
		}
		n_ev += n;
	}
	for (i = 0; i < n_ev; i++)
		t->events[i].id[12] = (uint8_t)n_ev;
	t->n_events = n_ev;
	t->txn.n_parts = n_parts;
	t->txn.parts = t->parts;
}

/* Fills @e with the entry at @index (a no-op when it already holds it). */
static void gen_entry(uint64_t seed, uint64_t index, struct gen_entry *e)
{
	uint64_t s;
	size_t off = 0;
	uint32_t k;

	assert(index > 0);
	if (e->index == index)
		return;
	s = rng_init(seed, index, 0xe17);
	e->n = 1 + rng_below(&s, GEN_TXNS_MAX);
	for (k = 0; k < e->n; k++)
		gen_txn(seed, index, k, &e->txns[k], e->bytes, &off);
	assert(off <= sizeof e->bytes);
	e->index = index;
}

/* Encodes @e into @b. Returns 0 or the builder's error with @errmsg. */
static int gen_encode(const struct gen_entry *e, struct store_entry_builder *b,
		      const void **buf, size_t *len, char *errmsg)
{
	uint32_t k;
	int rv;

	store_entry_builder_reset(b);
	for (k = 0; k < e->n; k++) {
		rv = store_entry_add(b, &e->txns[k].txn, errmsg);
		if (rv != 0)
			return rv;
	}
	rv = store_entry_finish(b, buf, len);
	if (rv != 0)
		snprintf(errmsg, STORE_ERRMSG_SIZE, "store_entry_finish: %s",
			 store_strerror(rv));
	return rv;
}

/* ------------------------------------------------------------------------
 * The child: applies entries until it is killed
 * ------------------------------------------------------------------------ */

enum crash_mode {
	/* Open once, then apply entries in a tight loop. */
	CRASH_APPLY = 1,
	/* Open, apply a few entries, close, again and again. */
	CRASH_OPEN_CLOSE = 2,
};

struct child {
	int fd;             /* the pipe to the parent */
	uint64_t *progress; /* shared: last index store_apply returned */
	struct store store;
	struct gen_entry *gen; /* owned */
	struct store_entry_builder b;
	struct store_results res;
};

static void child_say(const struct child *c, char what)
{
	ssize_t n;

	do {
		n = write(c->fd, &what, 1);
	} while (n < 0 && errno == EINTR);
}

__attribute__((format(printf, 2, 3), noreturn)) static void child_fail(
	const struct child *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	size_t len;
	size_t done = 0;

	msg[0] = 'E';
	va_start(ap, fmt);
	vsnprintf(msg + 1, sizeof msg - 1, fmt, ap);
	va_end(ap);
	len = strlen(msg);
	while (done < len) {
		ssize_t n = write(c->fd, msg + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	_exit(2);
}

static uint64_t env_u64(const char *name)
{
	const char *v = getenv(name);

	return v != NULL ? strtoull(v, NULL, 10) : 0;
}

/* Applies the entry at @index, which must be above the applied index. */
static void child_apply(struct child *c, uint64_t seed, uint64_t index)
{
	char errmsg[STORE_ERRMSG_SIZE];
	const void *buf;
	size_t len;
	int rv;

	gen_entry(seed, index, c->gen);
	rv = gen_encode(c->gen, &c->b, &buf, &len, errmsg);
	if (rv != 0)
		child_fail(c, "encode entry %" PRIu64 ": %s", index, errmsg);
	rv = store_apply(&c->store, index, buf, len, &c->res);
	if (rv != 0)
		child_fail(c, "store_apply(%" PRIu64 ") returned %d: %s", index,
			   rv, c->store.errmsg);
	if (c->res.skipped)
		child_fail(c,
			   "store_apply(%" PRIu64
			   ") skipped an entry above the applied index",
			   index);
	if (c->res.entry_error != 0)
		child_fail(c,
			   "store_apply(%" PRIu64
			   ") entry_error %d on a well-formed entry",
			   index, c->res.entry_error);
	if (c->res.n != c->gen->n)
		child_fail(c,
			   "store_apply(%" PRIu64 ") gave %" PRIu32
			   " results for %" PRIu32 " transactions",
			   index, c->res.n, c->gen->n);
	if (store_applied_index(&c->store) != index)
		child_fail(c,
			   "after store_apply(%" PRIu64
			   ") the applied index is %" PRIu64,
			   index, store_applied_index(&c->store));
	*(volatile uint64_t *)c->progress = index;
}

/* Re-applies an index at or below the applied one: must change nothing. */
static void child_reapply(struct child *c, uint64_t seed, uint64_t index)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint64_t applied = store_applied_index(&c->store);
	uint64_t last = store_last_position(&c->store);
	const void *buf;
	size_t len;
	int rv;

	gen_entry(seed, index, c->gen);
	rv = gen_encode(c->gen, &c->b, &buf, &len, errmsg);
	if (rv != 0)
		child_fail(c, "encode entry %" PRIu64 ": %s", index, errmsg);
	rv = store_apply(&c->store, index, buf, len, &c->res);
	if (rv != 0)
		child_fail(c, "re-applying %" PRIu64 " returned %d: %s", index,
			   rv, c->store.errmsg);
	if (!c->res.skipped)
		child_fail(c,
			   "re-applying %" PRIu64 " at applied index %" PRIu64
			   " did not set skipped",
			   index, applied);
	if (store_applied_index(&c->store) != applied ||
	    store_last_position(&c->store) != last)
		child_fail(c,
			   "re-applying %" PRIu64
			   " moved the applied index %" PRIu64 "->%" PRIu64
			   " or last position %" PRIu64 "->%" PRIu64,
			   index, applied, store_applied_index(&c->store), last,
			   store_last_position(&c->store));
}

static void child_open(struct child *c, const char *dir)
{
	int rv = store_open(&c->store, dir, NULL);

	if (rv != 0)
		child_fail(c, "store_open(%s) returned %d: %s", dir, rv,
			   c->store.errmsg);
}

/* The child's whole life: never returns. */
__attribute__((noreturn)) static void child_main(void)
{
	struct child c;
	uint64_t mode = env_u64("CAIRN_CRASH_CHILD_MODE");
	uint64_t seed = env_u64("CAIRN_CRASH_CHILD_SEED");
	uint64_t cycle = env_u64("CAIRN_CRASH_CHILD_CYCLE");
	const char *dir = getenv("CAIRN_CRASH_CHILD_DIR");
	const char *progress = getenv("CAIRN_CRASH_CHILD_PROGRESS");
	uint64_t r = rng_init(seed, cycle, 0xc41d);
	uint64_t next;
	void *map;
	int pfd;

	memset(&c, 0, sizeof c);
	c.fd = (int)env_u64("CAIRN_CRASH_CHILD_FD");
	if (dir == NULL || progress == NULL)
		child_fail(&c, "child started without its directory");
	pfd = open(progress, O_RDWR);
	if (pfd < 0)
		child_fail(&c, "open %s: %s", progress, strerror(errno));
	map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED,
		   pfd, 0);
	if (map == MAP_FAILED)
		child_fail(&c, "mmap %s: %s", progress, strerror(errno));
	close(pfd);
	c.progress = map;
	c.gen = calloc(1, sizeof *c.gen);
	if (c.gen == NULL)
		child_fail(&c, "out of memory");
	store_entry_builder_init(&c.b);
	store_results_init(&c.res);

	child_say(&c, 'S');
	child_open(&c, dir);
	child_say(&c, 'R');
	next = store_applied_index(&c.store) + 1;
	for (;;) {
		uint64_t applied = next - 1;
		uint32_t n;
		uint32_t i;

		if (applied > 0 && rng_below(&r, 32) == 0) {
			uint32_t back = rng_below(
				&r, applied < 4 ? (uint32_t)applied : 4);

			child_reapply(&c, seed, applied - back);
		}
		if (mode == CRASH_APPLY) {
			child_apply(&c, seed, next++);
			continue;
		}
		n = 1 + rng_below(&r, 3);
		for (i = 0; i < n; i++)
			child_apply(&c, seed, next++);
		store_close(&c.store);
		child_open(&c, dir);
		if (store_applied_index(&c.store) != next - 1)
			child_fail(&c,
				   "after a clean close the applied index is "
				   "%" PRIu64 ", expected %" PRIu64,
				   store_applied_index(&c.store), next - 1);
	}
}

/* ------------------------------------------------------------------------
 * The parent: kills, reopens, checks
 * ------------------------------------------------------------------------ */

/* The seed of this run, chosen once in main(). */
static uint64_t crash_seed;

/* What the checks learn about one position of the crashed store. */
struct pos_info {
	uint64_t slot;      /* the transaction: index * GEN_SLOTS + k */
	uint64_t version;   /* in its stream */
	uint32_t stream_no; /* acct-<stream_no> */
	uint8_t part;       /* the event's part in its transaction */
	uint8_t event;      /* the event's place in its part */
};

struct stream_info {
	uint64_t count;         /* events seen in the log */
	uint64_t last_position; /* of the last of them */
};

struct crash_run {
	const char *name; /* the test, for messages */
	enum crash_mode mode;
	uint64_t seed;
	unsigned kills_target;
	unsigned kills;      /* kills of a live child */
	unsigned kills_open; /* of them, before the child's open returned */
	unsigned cycle;      /* for messages */
	unsigned dir_no;     /* fresh directories so far */
	unsigned dir_kills;  /* kills on the current directories */
	char *base;          /* owned: tu_tempdir() */
	char crashed[4200];  /* the directory the child crashes in */
	char ref[4200];      /* the reference, never crashed */
	char progress_path[4200];
	uint64_t *progress;     /* mmap'd: the child's last returned apply */
	uint64_t applied;       /* the crashed store's, at the last check */
	uint64_t last_position; /* likewise */
	uint64_t max_applied;   /* over all directories */
	uint64_t lost;          /* applies that returned but did not survive */
	uint64_t prng;          /* kill timing */
	double open_us;         /* moving average of the child's open */
	struct gen_entry *gen;  /* owned */
	struct store_entry_builder b;
	struct store_results res;
	struct pos_info *pos; /* owned, indexed by position */
	size_t pos_cap;
	struct stream_info *streams; /* owned, indexed by stream number */
	size_t streams_cap;
	uint64_t outcomes[5]; /* over the reference's applies */
	uint64_t exact_hits;  /* committed with an exact version above 0 */
	uint64_t child_us;    /* time spent in children's lives */
	uint64_t check_us;    /* time spent checking */
	/* The current child. */
	pid_t pid;
	int rfd;
	char said[1200]; /* what it wrote to the pipe */
	size_t said_len;
	bool eof;
};

__attribute__((format(printf, 2, 3), noreturn)) static void crash_fail(
	const struct crash_run *run, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fail_msg("%s: %s [seed=%" PRIu64
		 " cycle=%u kills=%u store %s; replay the same entries with "
		 "CAIRN_TEST_SEED=%" PRIu64 "]",
		 run->name, msg, crash_seed, run->cycle, run->kills,
		 run->crashed, crash_seed);
	abort(); /* not reached */
}

#define CHECK(run, cond, ...)                         \
	do {                                          \
		if (!(cond))                          \
			crash_fail(run, __VA_ARGS__); \
	} while (0)

static void sleep_us(uint64_t us)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Starts a fresh pair of directories. */
static void run_new_dirs(struct crash_run *run)
{
	run->dir_no++;
	run->dir_kills = 0;
	run->applied = 0;
	run->last_position = 0;
	snprintf(run->crashed, sizeof run->crashed, "%s/crashed-%u", run->base,
		 run->dir_no);
	snprintf(run->ref, sizeof run->ref, "%s/ref-%u", run->base,
		 run->dir_no);
	CHECK(run, mkdir(run->crashed, 0755) == 0, "mkdir %s: %s", run->crashed,
	      strerror(errno));
	CHECK(run, mkdir(run->ref, 0755) == 0, "mkdir %s: %s", run->ref,
	      strerror(errno));
}

/* Removes the current pair of directories. */
static void run_drop_dirs(struct crash_run *run)
{
	char cmd[9000];

	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", run->crashed, run->ref);
	CHECK(run, system(cmd) == 0, "%s failed", cmd);
}

static void run_init(struct crash_run *run, const char *name,
		     enum crash_mode mode, unsigned kills)
{
	int fd;
	void *map;

	memset(run, 0, sizeof *run);
	run->name = name;
	run->mode = mode;
	run->seed = crash_seed + (uint64_t)mode * 0x1000193ull;
	run->kills_target = kills;
	run->prng = rng_init(run->seed, 0, 0x717e);
	run->open_us = 10000;
	run->pid = -1;
	run->rfd = -1;
	run->base = tu_tempdir("crash");
	snprintf(run->progress_path, sizeof run->progress_path, "%s/progress",
		 run->base);
	fd = open(run->progress_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(run, fd >= 0, "create %s: %s", run->progress_path,
	      strerror(errno));
	CHECK(run, ftruncate(fd, 4096) == 0, "ftruncate %s: %s",
	      run->progress_path, strerror(errno));
	map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED,
		   fd, 0);
	CHECK(run, map != MAP_FAILED, "mmap %s: %s", run->progress_path,
	      strerror(errno));
	close(fd);
	run->progress = map;
	run->gen = calloc(1, sizeof *run->gen);
	assert_non_null(run->gen);
	store_entry_builder_init(&run->b);
	store_results_init(&run->res);
}

static void run_close(struct crash_run *run)
{
	store_results_close(&run->res);
	store_entry_builder_close(&run->b);
	munmap(run->progress, sizeof(uint64_t));
	free(run->gen);
	free(run->pos);
	free(run->streams);
	tu_rmdir(run->base);
}

/* fork()s and exec()s the child; its pipe becomes run->rfd. */
static void child_spawn(struct crash_run *run)
{
	char e_mode[64], e_seed[64], e_cycle[64], e_fd[64];
	char e_dir[4300], e_progress[4300];
	char *argv[] = { "storage_crash-child", NULL };
	char **envp;
	size_t n = 0;
	size_t i;
	int fds[2];
	pid_t pid;

	CHECK(run, pipe(fds) == 0, "pipe: %s", strerror(errno));
	CHECK(run, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, "fcntl: %s",
	      strerror(errno));
	snprintf(e_mode, sizeof e_mode, "CAIRN_CRASH_CHILD_MODE=%d",
		 (int)run->mode);
	snprintf(e_seed, sizeof e_seed, "CAIRN_CRASH_CHILD_SEED=%" PRIu64,
		 run->seed);
	snprintf(e_cycle, sizeof e_cycle, "CAIRN_CRASH_CHILD_CYCLE=%u",
		 run->cycle);
	snprintf(e_fd, sizeof e_fd, "CAIRN_CRASH_CHILD_FD=%d", fds[1]);
	snprintf(e_dir, sizeof e_dir, "CAIRN_CRASH_CHILD_DIR=%s", run->crashed);
	snprintf(e_progress, sizeof e_progress, "CAIRN_CRASH_CHILD_PROGRESS=%s",
		 run->progress_path);
	while (environ[n] != NULL)
		n++;
	envp = calloc(n + 7, sizeof *envp);
	assert_non_null(envp);
	for (i = 0; i < n; i++)
		envp[i] = environ[i];
	envp[n++] = e_mode;
	envp[n++] = e_seed;
	envp[n++] = e_cycle;
	envp[n++] = e_fd;
	envp[n++] = e_dir;
	envp[n++] = e_progress;
	envp[n] = NULL;
	*run->progress = 0;
	fflush(stdout);
	fflush(stderr);

	pid = fork();
	if (pid == 0) {
		static const char msg[] = "Eexec /proc/self/exe failed";

		execve("/proc/self/exe", argv, envp);
		if (write(fds[1], msg, sizeof msg - 1) < 0)
			_exit(127);
		_exit(127);
	}
	free(envp);
	close(fds[1]);
	if (pid < 0) {
		close(fds[0]);
		crash_fail(run, "fork: %s", strerror(errno));
	}
	run->pid = pid;
	run->rfd = fds[0];
	run->said_len = 0;
	run->said[0] = '\0';
	run->eof = false;
}

/* Kills the child (if it still lives), reaps it and reads the rest of what
 * it said. Returns true when it was alive and SIGKILL ended it. */
static bool child_kill(struct crash_run *run, int *status)
{
	pid_t w;

	kill(run->pid, SIGKILL);
	do {
		w = waitpid(run->pid, status, 0);
	} while (w < 0 && errno == EINTR);
	run->pid = -1;
	for (;;) {
		ssize_t n;

		if (run->said_len + 1 >= sizeof run->said)
			break;
		n = read(run->rfd, run->said + run->said_len,
			 sizeof run->said - 1 - run->said_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		run->said_len += (size_t)n;
	}
	run->said[run->said_len] = '\0';
	close(run->rfd);
	run->rfd = -1;
	return w > 0 && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
}

/* Waits until the child has written @what (returns true), has died or
 * reported an error (returns false), or a timeout passed (kills it and
 * fails: a child stuck in store_open() must not pass for a kill). */
static bool child_wait_for(struct crash_run *run, char what)
{
	uint64_t deadline = now_us() + (uint64_t)CRASH_CHILD_TIMEOUT_MS * 1000;

	while (memchr(run->said, what, run->said_len) == NULL) {
		struct pollfd pfd = { .fd = run->rfd, .events = POLLIN };
		uint64_t now = now_us();
		ssize_t n;
		int rv;

		if (run->eof || memchr(run->said, 'E', run->said_len) != NULL)
			return false;
		if (now >= deadline) {
			int status;

			child_kill(run, &status);
			crash_fail(run,
				   "the child did not say '%c' within %d ms "
				   "(it said \"%s\")",
				   what, CRASH_CHILD_TIMEOUT_MS, run->said);
		}
		rv = poll(&pfd, 1, (int)((deadline - now) / 1000) + 1);
		if (rv < 0 && errno == EINTR)
			continue;
		if (rv <= 0)
			continue;
		if (run->said_len + 1 >= sizeof run->said) {
			run->eof = true;
			continue;
		}
		n = read(run->rfd, run->said + run->said_len,
			 sizeof run->said - 1 - run->said_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			run->eof = true;
			continue;
		}
		run->said_len += (size_t)n;
		run->said[run->said_len] = '\0';
	}
	return true;
}

/* Fails with what the child said when it reported an error. */
static void child_check_said(struct crash_run *run, int status, bool killed)
{
	const char *err = memchr(run->said, 'E', run->said_len);

	if (err != NULL)
		crash_fail(run, "the child failed: %s", err + 1);
	if (!killed)
		crash_fail(run,
			   "the child ended by itself (%s %d) before the kill, "
			   "having said \"%s\"",
			   WIFEXITED(status) ? "exit status" : "signal",
			   WIFEXITED(status) ? WEXITSTATUS(status)
					     : WTERMSIG(status),
			   run->said);
}

/* One child's life: start it, let it work for a while, kill it. */
static void crash_one(struct crash_run *run)
{
	uint32_t plan = rng_below(&run->prng, 8);
	bool opened = false;
	bool killed;
	int status = 0;

	/* The first kill on fresh directories lands while the store is
	 * being created. */
	if (run->dir_kills == 0)
		plan = 0;
	child_spawn(run);
	if (!child_wait_for(run, 'S'))
		goto kill;
	if (plan == 0) {
		/* Kill while the store is being opened (or created). */
		sleep_us(rng_below(&run->prng, (uint32_t)run->open_us + 1));
	} else {
		uint64_t t0 = now_us();

		if (!child_wait_for(run, 'R'))
			goto kill;
		opened = true;
		run->open_us =
			run->open_us * 0.9 + (double)(now_us() - t0) * 0.1;
		if (plan == 1)
			sleep_us(rng_below(&run->prng, 300));
		else
			sleep_us(rng_below(&run->prng, CRASH_SLEEP_MAX_US + 1));
	}
kill:
	killed = child_kill(run, &status);
	child_check_said(run, status, killed);
	if (!opened && memchr(run->said, 'R', run->said_len) == NULL)
		run->kills_open++;
	run->kills++;
	run->dir_kills++;
}

/* Checks of one walk over the global log. */
struct walk {
	struct crash_run *run;
	bool reference;       /* compare with run->pos instead of filling it */
	uint64_t applied;     /* entries above it must be absent */
	uint64_t crashed_end; /* the crashed store's last position */
	uint64_t next;        /* the position expected next */
	uint64_t cur_slot;    /* the transaction being read; 0: none yet */
	uint32_t cur_seen;    /* its events so far */
	uint32_t cur_total;   /* its events in all */
	uint64_t last_seq[GEN_WRITERS]; /* each writer's last committed */
	char err[1024];                 /* the first difference, if any */
};

__attribute__((format(printf, 2, 3))) static bool walk_fail(struct walk *w,
							    const char *fmt,
							    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof w->err, fmt, ap);
	va_end(ap);
	return false;
}

static void run_grow(struct crash_run *run, uint64_t position,
		     uint32_t stream_no)
{
	if (position >= run->pos_cap) {
		size_t cap = run->pos_cap ? run->pos_cap : 4096;

		while (cap <= position)
			cap *= 2;
		run->pos = realloc(run->pos, cap * sizeof *run->pos);
		assert_non_null(run->pos);
		run->pos_cap = cap;
	}
	if (stream_no >= run->streams_cap) {
		size_t cap = run->streams_cap ? run->streams_cap : 256;

		while (cap <= stream_no)
			cap *= 2;
		run->streams =
			realloc(run->streams, cap * sizeof *run->streams);
		assert_non_null(run->streams);
		memset(run->streams + run->streams_cap, 0,
		       (cap - run->streams_cap) * sizeof *run->streams);
		run->streams_cap = cap;
	}
}

static bool bytes_equal(const void *a, uint32_t a_len, const void *b,
			uint32_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Checks a record of the crashed store against the entry it comes from. */
static bool walk_crashed(struct walk *w, const struct store_record *r)
{
	struct crash_run *run = w->run;
	uint64_t slot;
	uint64_t index;
	uint32_t k;
	uint32_t p;
	uint32_t e;
	const struct gen_txn *t;
	const struct store_event *ev;
	struct stream_info *si;
	struct pos_info *pi;
	uint32_t ordinal;

	if (r->commit_time_us < GEN_COMMIT_BASE + GEN_SLOTS)
		return walk_fail(w,
				 "position %" PRIu64 " has commit time %" PRIu64
				 ", not one of this test's",
				 r->position, r->commit_time_us);
	slot = r->commit_time_us - GEN_COMMIT_BASE;
	index = slot / GEN_SLOTS;
	k = (uint32_t)(slot % GEN_SLOTS);
	if (index > w->applied)
		return walk_fail(w,
				 "position %" PRIu64
				 " holds an event of entry %" PRIu64
				 " but the applied index is %" PRIu64
				 " (data ahead of the applied index)",
				 r->position, index, w->applied);
	gen_entry(run->seed, index, run->gen);
	if (k >= run->gen->n)
		return walk_fail(w,
				 "position %" PRIu64
				 " claims transaction #%" PRIu32
				 " of entry %" PRIu64 ", which has %" PRIu32,
				 r->position, k, index, run->gen->n);
	t = &run->gen->txns[k];
	p = r->id[9];
	e = r->id[10];
	if (p >= t->txn.n_parts || e >= t->parts[p].n_events)
		return walk_fail(
			w,
			"position %" PRIu64 ": event id names part %" PRIu32
			" event %" PRIu32 ", not in transaction #%" PRIu32
			" of entry %" PRIu64,
			r->position, p, e, k, index);
	ev = &t->parts[p].events[e];
	if (memcmp(r->id, ev->id, 16) != 0 ||
	    !bytes_equal(r->stream, r->stream_len, t->parts[p].stream,
			 t->parts[p].stream_len) ||
	    !bytes_equal(r->type, r->type_len, ev->type, ev->type_len) ||
	    r->schema_version != ev->schema_version ||
	    r->event_time_us != ev->event_time_us ||
	    !bytes_equal(r->data, r->data_len, ev->data, ev->data_len) ||
	    !bytes_equal(r->metadata, r->metadata_len, ev->metadata,
			 ev->metadata_len))
		return walk_fail(w,
				 "position %" PRIu64
				 " (stream %.*s version %" PRIu64
				 ") differs from event %" PRIu32
				 " of part %" PRIu32 " of transaction #%" PRIu32
				 " of entry %" PRIu64 " (stream %s)",
				 r->position, (int)r->stream_len, r->stream,
				 r->version, e, p, k, index, t->names[p]);
	if (r->has_client != t->txn.has_client ||
	    (r->has_client &&
	     (memcmp(r->client_id, t->txn.client_id, 16) != 0 ||
	      r->client_seq != t->txn.client_seq)))
		return walk_fail(w,
				 "position %" PRIu64
				 ": client id or sequence %" PRIu64
				 " differ from transaction #%" PRIu32
				 " of entry %" PRIu64 " (sequence %" PRIu64 ")",
				 r->position, r->client_seq, k, index,
				 t->txn.client_seq);

	/* Whole transactions, in commit order, their events contiguous. */
	ordinal = t->first_event[p] + e;
	if (slot != w->cur_slot) {
		if (w->cur_slot != 0 && w->cur_seen != w->cur_total)
			return walk_fail(w,
					 "transaction #%" PRIu64
					 " of entry %" PRIu64
					 " is partly present: %" PRIu32
					 " of its %" PRIu32
					 " events, up to position %" PRIu64,
					 w->cur_slot % GEN_SLOTS,
					 w->cur_slot / GEN_SLOTS, w->cur_seen,
					 w->cur_total, r->position - 1);
		if (slot < w->cur_slot)
			return walk_fail(
				w,
				"position %" PRIu64
				" holds transaction #%" PRIu32
				" of entry %" PRIu64
				" after one of entry %" PRIu64 " #%" PRIu64
				" (out of order or twice)",
				r->position, k, index, w->cur_slot / GEN_SLOTS,
				w->cur_slot % GEN_SLOTS);
		w->cur_slot = slot;
		w->cur_seen = 0;
		w->cur_total = t->n_events;
		if (t->txn.has_client) {
			uint32_t writer = t->txn.client_id[0] - 0xa0u;

			if (t->txn.client_seq <= w->last_seq[writer])
				return walk_fail(w,
						 "transaction #%" PRIu32
						 " of entry %" PRIu64
						 " committed writer %" PRIu32
						 " sequence %" PRIu64
						 " after its sequence %" PRIu64
						 " had committed",
						 k, index, writer,
						 t->txn.client_seq,
						 w->last_seq[writer]);
			w->last_seq[writer] = t->txn.client_seq;
		}
	}
	if (ordinal != w->cur_seen)
		return walk_fail(w,
				 "position %" PRIu64 " holds event %" PRIu32
				 " of transaction #%" PRIu32
				 " of entry %" PRIu64
				 " where its event %" PRIu32 " belongs",
				 r->position, ordinal, k, index, w->cur_seen);
	w->cur_seen++;

	/* Versions dense per stream, in position order. */
	run_grow(run, r->position, t->stream_no[p]);
	si = &run->streams[t->stream_no[p]];
	if (r->version != si->count + 1)
		return walk_fail(w,
				 "position %" PRIu64 " is version %" PRIu64
				 " of %s, whose previous event in the log is "
				 "version %" PRIu64,
				 r->position, r->version, t->names[p],
				 si->count);
	si->count++;
	si->last_position = r->position;
	pi = &run->pos[r->position];
	pi->slot = slot;
	pi->version = r->version;
	pi->stream_no = t->stream_no[p];
	pi->part = (uint8_t)p;
	pi->event = (uint8_t)e;
	return true;
}

/* Checks a record of the reference against the crashed store's. */
static bool walk_reference(struct walk *w, const struct store_record *r)
{
	const struct crash_run *run = w->run;
	const struct pos_info *pi;
	uint64_t slot = r->commit_time_us - GEN_COMMIT_BASE;
	char name[24];

	if (r->position > w->crashed_end)
		return walk_fail(
			w,
			"the reference has position %" PRIu64 " (entry %" PRIu64
			" #%" PRIu64 ", %.*s version %" PRIu64
			") but the crashed store's log ends at %" PRIu64,
			r->position, slot / GEN_SLOTS, slot % GEN_SLOTS,
			(int)r->stream_len, r->stream, r->version,
			w->crashed_end);
	pi = &run->pos[r->position];
	snprintf(name, sizeof name, "acct-%" PRIu32, pi->stream_no);
	if (pi->slot != slot || pi->version != r->version ||
	    pi->part != r->id[9] || pi->event != r->id[10] ||
	    !bytes_equal(r->stream, r->stream_len, name,
			 (uint32_t)strlen(name)))
		return walk_fail(
			w,
			"position %" PRIu64 ": the reference has entry %" PRIu64
			" #%" PRIu64 " part %u event %u, %.*s version %" PRIu64
			"; the crashed store has entry %" PRIu64 " #%" PRIu64
			" part %u event %u, %s version %" PRIu64,
			r->position, slot / GEN_SLOTS, slot % GEN_SLOTS,
			r->id[9], r->id[10], (int)r->stream_len, r->stream,
			r->version, pi->slot / GEN_SLOTS, pi->slot % GEN_SLOTS,
			pi->part, pi->event, name, pi->version);
	return true;
}

static bool walk_visit(void *arg, const struct store_record *r)
{
	struct walk *w = arg;

	if (r->position != w->next)
		return walk_fail(w,
				 "read position %" PRIu64 " where %" PRIu64
				 " was next (positions not dense)",
				 r->position, w->next);
	w->next++;
	return w->reference ? walk_reference(w, r) : walk_crashed(w, r);
}

/* Reads the whole global log of @s through @w. */
static void walk_log(struct crash_run *run, struct store *s, struct walk *w,
		     const char *which)
{
	uint64_t from = 1;

	w->next = 1;
	for (;;) {
		struct store_read_info info;
		int rv;

		memset(&info, 0, sizeof info);
		rv = store_read_all(s, from, CRASH_PAGE, 0, NULL, walk_visit, w,
				    &info);
		CHECK(run, w->err[0] == '\0', "%s store: %s", which, w->err);
		CHECK(run, rv == 0,
		      "%s store: store_read_all from %" PRIu64
		      " returned %d: %s",
		      which, from, rv, s->errmsg);
		CHECK(run, info.count <= CRASH_PAGE,
		      "%s store: store_read_all returned %" PRIu32
		      " records, asked for %d",
		      which, info.count, CRASH_PAGE);
		if (info.end)
			break;
		CHECK(run, info.count > 0,
		      "%s store: store_read_all from %" PRIu64
		      " returned nothing without saying end",
		      which, from);
		CHECK(run, info.next == w->next,
		      "%s store: store_read_all says to continue from %" PRIu64
		      " after returning up to position %" PRIu64,
		      which, info.next, w->next - 1);
		from = info.next;
	}
}

/* Checks of one stream read. */
struct sread {
	const struct crash_run *run;
	const char *name;
	uint32_t stream_no;
	bool backward;
	uint64_t expect;      /* version expected next */
	uint64_t crashed_end; /* the log's last position */
	char err[512];
};

static bool sread_visit(void *arg, const struct store_record *r)
{
	struct sread *sr = arg;
	const struct pos_info *pi;

	if (r->version != sr->expect) {
		snprintf(sr->err, sizeof sr->err,
			 "store_read_stream(%s, %s) returned version %" PRIu64
			 " where %" PRIu64 " was next",
			 sr->name, sr->backward ? "backward" : "forward",
			 r->version, sr->expect);
		return false;
	}
	pi = r->position >= 1 && r->position <= sr->crashed_end
		     ? &sr->run->pos[r->position]
		     : NULL;
	if (pi == NULL || pi->stream_no != sr->stream_no ||
	    pi->version != r->version ||
	    !bytes_equal(r->stream, r->stream_len, sr->name,
			 (uint32_t)strlen(sr->name))) {
		snprintf(sr->err, sizeof sr->err,
			 "store_read_stream(%s) has version %" PRIu64
			 " at position %" PRIu64
			 ", which the global log does not hold for it",
			 sr->name, r->version, r->position);
		return false;
	}
	sr->expect = sr->backward ? sr->expect - 1 : sr->expect + 1;
	return true;
}

/* Heads of @s agree with what the global log held, and so do full reads
 * of the streams written since the last check (@prev_applied) and of a
 * random sample of the older ones, which no later entry writes. */
static void check_streams(struct crash_run *run, struct store *s,
			  uint64_t prev_applied, uint64_t applied,
			  uint64_t crashed_end)
{
	uint32_t n_streams =
		(uint32_t)(applied / GEN_POOL_ENTRIES + 1) * GEN_POOL;
	uint32_t recent =
		(uint32_t)(prev_applied / GEN_POOL_ENTRIES) * GEN_POOL;
	uint32_t no;

	run_grow(run, 0, n_streams);
	for (no = 0; no < n_streams; no++) {
		const struct stream_info *si = &run->streams[no];
		struct store_read_info info;
		struct store_head h;
		struct sread sr;
		char name[24];
		int rv;

		snprintf(name, sizeof name, "acct-%" PRIu32, no);
		rv = store_head(s, name, strlen(name), &h);
		CHECK(run, rv == 0, "store_head(%s) returned %d: %s", name, rv,
		      s->errmsg);
		CHECK(run,
		      h.version == si->count &&
			      h.last_position == si->last_position,
		      "the head of %s says version %" PRIu64
		      " at position %" PRIu64 ", the log holds %" PRIu64
		      " events of it, the last at position %" PRIu64,
		      name, h.version, h.last_position, si->count,
		      si->last_position);
		if (no < recent && rng_below(&run->prng, 16) != 0)
			continue;

		memset(&sr, 0, sizeof sr);
		sr.run = run;
		sr.name = name;
		sr.stream_no = no;
		sr.expect = 1;
		sr.crashed_end = crashed_end;
		do {
			memset(&info, 0, sizeof info);
			rv = store_read_stream(s, name, strlen(name), sr.expect,
					       false, CRASH_PAGE, sread_visit,
					       &sr, &info);
			CHECK(run, sr.err[0] == '\0', "%s", sr.err);
			CHECK(run, rv == 0,
			      "store_read_stream(%s) returned %d: %s", name, rv,
			      s->errmsg);
			CHECK(run, info.end || info.count > 0,
			      "store_read_stream(%s) from %" PRIu64
			      " returned nothing without saying end",
			      name, sr.expect);
		} while (!info.end);
		CHECK(run, sr.expect == si->count + 1,
		      "store_read_stream(%s) forward ended after version "
		      "%" PRIu64 ", the log holds %" PRIu64 " events of it",
		      name, sr.expect - 1, si->count);
		if (si->count == 0)
			continue;

		sr.backward = true;
		sr.expect = si->count;
		memset(&info, 0, sizeof info);
		rv = store_read_stream(s, name, strlen(name),
				       STORE_VERSION_HEAD, true, 1, sread_visit,
				       &sr, &info);
		CHECK(run, sr.err[0] == '\0', "%s", sr.err);
		CHECK(run, rv == 0 && info.count == 1,
		      "store_read_stream(%s, backward from the head) returned "
		      "%d with %" PRIu32 " records: %s",
		      name, rv, info.count, s->errmsg);
	}
}

/* The dedup state of @s knows each writer's last committed batch. */
static void check_dedup(struct crash_run *run, struct store *s,
			const struct walk *w)
{
	uint32_t writer;

	for (writer = 0; writer < GEN_WRITERS; writer++) {
		uint8_t id[16];
		bool found = false;
		uint64_t hwm = 0;
		int rv;

		if (w->last_seq[writer] == 0)
			continue;
		gen_client_id(writer, id);
		rv = store_dedup_lookup(s, id, w->last_seq[writer], &found,
					&hwm, &run->res);
		CHECK(run, rv == 0, "store_dedup_lookup returned %d: %s", rv,
		      s->errmsg);
		CHECK(run, found && hwm >= w->last_seq[writer],
		      "writer %" PRIu32 "'s last committed sequence %" PRIu64
		      " is in the log but store_dedup_lookup says found=%d, "
		      "high-water mark %" PRIu64,
		      writer, w->last_seq[writer], (int)found, hwm);
	}
}

/* Names the column families whose digests differ. */
static void digest_diff(struct store *c, struct store *ref, char *out,
			size_t size)
{
	static const struct {
		unsigned cf;
		const char *name;
	} cfs[] = { { STORE_CF_LOG, "log" },
		    { STORE_CF_VERSIONS, "versions" },
		    { STORE_CF_DEDUP, "dedup" } };
	size_t used = 0;
	size_t i;

	out[0] = '\0';
	for (i = 0; i < sizeof cfs / sizeof cfs[0]; i++) {
		uint64_t a = 0;
		uint64_t b = 0;

		if (store_digest(c, cfs[i].cf, &a) != 0 ||
		    store_digest(ref, cfs[i].cf, &b) != 0 || a != b)
			used += (size_t)snprintf(out + used, size - used, " %s",
						 cfs[i].name);
		if (used >= size)
			break;
	}
}

/* After a kill: reopen, bring the reference up to the same applied index,
 * and compare. */
static void crash_check(struct crash_run *run)
{
	struct store c;
	struct store ref;
	struct walk w;
	char errmsg[STORE_ERRMSG_SIZE];
	uint64_t applied;
	uint64_t last;
	uint64_t idx;
	uint64_t d_c = 0;
	uint64_t d_r = 0;
	uint64_t progress = *(volatile uint64_t *)run->progress;
	int rv;

	rv = store_open(&c, run->crashed, NULL);
	CHECK(run, rv == 0,
	      "reopening the store after the kill failed (%d): %s", rv,
	      c.errmsg);
	applied = store_applied_index(&c);
	last = store_last_position(&c);
	CHECK(run, applied >= run->applied,
	      "the applied index went back from %" PRIu64 " to %" PRIu64,
	      run->applied, applied);
	CHECK(run, last >= run->last_position,
	      "the last position went back from %" PRIu64 " to %" PRIu64,
	      run->last_position, last);
	if (progress > applied)
		run->lost += progress - applied;

	rv = store_open(&ref, run->ref, NULL);
	CHECK(run, rv == 0, "opening the reference failed (%d): %s", rv,
	      ref.errmsg);
	CHECK(run, store_applied_index(&ref) == run->applied,
	      "the reference's applied index is %" PRIu64 ", expected %" PRIu64,
	      store_applied_index(&ref), run->applied);
	for (idx = run->applied + 1; idx <= applied; idx++) {
		const void *buf;
		size_t len;
		uint32_t k;

		gen_entry(run->seed, idx, run->gen);
		rv = gen_encode(run->gen, &run->b, &buf, &len, errmsg);
		CHECK(run, rv == 0, "encoding entry %" PRIu64 ": %s", idx,
		      errmsg);
		rv = store_apply(&ref, idx, buf, len, &run->res);
		CHECK(run, rv == 0,
		      "applying entry %" PRIu64 " to the reference: %s", idx,
		      ref.errmsg);
		CHECK(run, !run->res.skipped && run->res.n == run->gen->n,
		      "the reference skipped entry %" PRIu64 " or gave %" PRIu32
		      " results for %" PRIu32,
		      idx, run->res.n, run->gen->n);
		for (k = 0; k < run->res.n; k++) {
			const struct gen_txn *t = &run->gen->txns[k];
			uint8_t outcome = run->res.txns[k].outcome;
			uint32_t p;

			if (outcome < 5)
				run->outcomes[outcome]++;
			if (outcome != STORE_COMMITTED)
				continue;
			for (p = 0; p < t->txn.n_parts; p++)
				if (t->parts[p].expect.kind ==
					    STORE_EXPECT_EXACT &&
				    t->parts[p].expect.version > 0)
					break;
			if (p < t->txn.n_parts)
				run->exact_hits++;
		}
	}
	CHECK(run, store_applied_index(&ref) == applied,
	      "the reference's applied index is %" PRIu64
	      " after applying up to %" PRIu64,
	      store_applied_index(&ref), applied);

	/* The crashed store on its own. */
	if (run->streams_cap > 0)
		memset(run->streams, 0,
		       run->streams_cap * sizeof *run->streams);
	memset(&w, 0, sizeof w);
	w.run = run;
	w.applied = applied;
	walk_log(run, &c, &w, "crashed");
	CHECK(run, w.cur_seen == w.cur_total,
	      "transaction #%" PRIu64 " of entry %" PRIu64
	      " is partly present at the end of the log: %" PRIu32
	      " of its %" PRIu32 " events",
	      w.cur_slot % GEN_SLOTS, w.cur_slot / GEN_SLOTS, w.cur_seen,
	      w.cur_total);
	CHECK(run, w.next - 1 == last,
	      "the log ends at position %" PRIu64
	      " but store_last_position says %" PRIu64,
	      w.next - 1, last);
	check_streams(run, &c, run->applied, applied, last);
	check_dedup(run, &c, &w);

	/* Against the reference. */
	CHECK(run, store_last_position(&ref) == last,
	      "the last position is %" PRIu64 ", the reference's %" PRIu64
	      " at applied index %" PRIu64,
	      last, store_last_position(&ref), applied);
	memset(&w, 0, sizeof w);
	w.run = run;
	w.reference = true;
	w.applied = applied;
	w.crashed_end = last;
	walk_log(run, &ref, &w, "reference");
	CHECK(run, w.next - 1 == last,
	      "the reference's log ends at %" PRIu64
	      ", the crashed store's at %" PRIu64,
	      w.next - 1, last);
	rv = store_digest(&c, STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP,
			  &d_c);
	CHECK(run, rv == 0, "store_digest: %s", c.errmsg);
	rv = store_digest(
		&ref, STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP, &d_r);
	CHECK(run, rv == 0, "store_digest of the reference: %s", ref.errmsg);
	if (d_c != d_r) {
		char which[64];

		digest_diff(&c, &ref, which, sizeof which);
		crash_fail(
			run,
			"at applied index %" PRIu64
			" the digest of log, versions and dedup is %016" PRIx64
			", the reference's %016" PRIx64 " (differing:%s)",
			applied, d_c, d_r, which);
	}

	store_close(&ref);
	store_close(&c);
	run->applied = applied;
	run->last_position = last;
	if (applied > run->max_applied)
		run->max_applied = applied;
}

static void crash_progress(const struct crash_run *run, const char *what)
{
	printf("%s %s: cycle %u, kills %u/%u (%u before the store was open), "
	       "directory %u, applied index %" PRIu64 ", last position %" PRIu64
	       "\n",
	       run->name, what, run->cycle, run->kills, run->kills_target,
	       run->kills_open, run->dir_no, run->applied, run->last_position);
	fflush(stdout);
}

static void crash_run_all(struct crash_run *run)
{
	uint64_t t0 = now_us();

	run_new_dirs(run);
	while (run->kills < run->kills_target) {
		if (run->dir_kills >= CRASH_KILLS_PER_DIR) {
			run_drop_dirs(run);
			run_new_dirs(run);
		}
		uint64_t t1 = now_us();
		uint64_t t2;

		run->cycle++;
		crash_one(run);
		t2 = now_us();
		crash_check(run);
		run->child_us += t2 - t1;
		run->check_us += now_us() - t2;
		if (run->kills % CRASH_PROGRESS_EVERY == 0)
			crash_progress(run, "progress");
	}
	run_drop_dirs(run);
	crash_progress(run, "done");
	printf("%s: %.1f s (children %.1f s, checks %.1f s), %u kills (%u "
	       "before the store was open), highest applied index %" PRIu64
	       "; reference outcomes: %" PRIu64 " committed (%" PRIu64
	       " with an exact version above 0), %" PRIu64
	       " duplicate, %" PRIu64 " stale, %" PRIu64 " conflict, %" PRIu64
	       " rejected; %" PRIu64 " returned applies lost by kills\n",
	       run->name, (double)(now_us() - t0) / 1e6,
	       (double)run->child_us / 1e6, (double)run->check_us / 1e6,
	       run->kills, run->kills_open, run->max_applied,
	       run->outcomes[STORE_COMMITTED], run->exact_hits,
	       run->outcomes[STORE_DUPLICATE],
	       run->outcomes[STORE_STALE_SEQUENCE],
	       run->outcomes[STORE_WRONG_EXPECTED_VERSION],
	       run->outcomes[STORE_REJECTED], run->lost);
	fflush(stdout);
}

static unsigned crash_kills(void)
{
	const char *v = getenv("CAIRN_CRASH_KILLS");
	unsigned long n;

	if (v == NULL || v[0] == '\0')
		return CRASH_KILLS_DEFAULT;
	n = strtoul(v, NULL, 10);
	return n > 0 ? (unsigned)n : 1;
}

/* ------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------ */

/* A child applying entries in a tight loop is killed at random moments
 * (while it opens or creates the store, just after, or in the middle of
 * applying); after every kill the store holds whole transactions only, at
 * dense positions, with heads, dedup and the applied index agreeing with a
 * store that never crashed. */
static void sigkill_during_apply_leaves_whole_transactions(void **state)
{
	struct crash_run *run = calloc(1, sizeof *run);

	(void)state;
	assert_non_null(run);
	run_init(run, "sigkill_during_apply_leaves_whole_transactions",
		 CRASH_APPLY, crash_kills());
	crash_run_all(run);
	run_close(run);
	free(run);
}

/* The same checks, with a child that keeps closing and reopening the store
 * between a few applies, so kills land in store_open() and store_close()
 * of a store that already holds data. */
static void sigkill_during_open_and_close_leaves_whole_transactions(
	void **state)
{
	struct crash_run *run = calloc(1, sizeof *run);
	unsigned kills = crash_kills() / 5;

	(void)state;
	assert_non_null(run);
	run_init(run, "sigkill_during_open_and_close_leaves_whole_transactions",
		 CRASH_OPEN_CLOSE, kills < 10 ? 10 : kills);
	crash_run_all(run);
	run_close(run);
	free(run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			sigkill_during_apply_leaves_whole_transactions),
		cmocka_unit_test(
			sigkill_during_open_and_close_leaves_whole_transactions),
	};
	const char *seed = getenv("CAIRN_TEST_SEED");

	if (getenv("CAIRN_CRASH_CHILD_MODE") != NULL)
		child_main();
	if (seed != NULL && seed[0] != '\0') {
		crash_seed = strtoull(seed, NULL, 10);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		crash_seed = ((uint64_t)ts.tv_sec * 1000 +
			      (uint64_t)ts.tv_nsec / 1000000) ^
			     ((uint64_t)getpid() << 40);
	}
	printf("storage_crash: seed=%" PRIu64
	       " (replay the same entries with CAIRN_TEST_SEED=%" PRIu64
	       "; kill timing differs between runs)\n",
	       crash_seed, crash_seed);
	fflush(stdout);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
