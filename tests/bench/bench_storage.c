/* bench_storage: how fast storage/ applies committed entries into RocksDB
 * and reads them back, and how many bytes it writes per event. It prints
 * figures for docs/benchmarks.md; it is not a timed test. The smoke test
 * `bench_storage_smoke` runs it with --quick so the tool cannot rot: any
 * storage error, any outcome other than the expected one, any read that
 * returns other events than those written, fails it (exit 1).
 *
 * The workload is shaped like a service fleet's writes: W writers (client
 * ids), each with its own S streams, each transaction with the writer's
 * client id, its next sequence number and the exact expected version of its
 * stream, so every apply runs the dedup lookup and the version check as in
 * production. Transactions are grouped into entries as the leader's group
 * commit would (--txns-per-entry), and applied at increasing Raft indexes.
 *
 * Phases, each on a fresh store in its own subdirectory of --dir:
 *   a. single-event transactions of 256-byte events, K per entry and 1 per
 *      entry;
 *   b. 100-event transactions, K per entry and 1 per entry;
 *   c. reads on the store of (a, K per entry), reopened: the whole global
 *      log with store_read_all() from position 1, twice (cold then warm
 *      block cache), and store_read_stream() of a 100-event stream,
 *      repeatedly;
 *   d. for each apply phase, the bytes written to disk per event: the
 *      write_bytes delta of /proc/self/io over the apply (and up to the
 *      close), and the size of the directory after store_sync() and
 *      store_close(), which still holds the WAL; for phase a's store also
 *      its size once reopened, when RocksDB has replayed the WAL into
 *      SST files.
 *
 * Times come from clock_gettime(CLOCK_MONOTONIC). "apply" counts only the
 * time inside store_apply(); "end to end" adds building the entries. */
#define _XOPEN_SOURCE 700 /* nftw() */

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

/* Distinct 256-byte payloads the events cycle through. */
#define PAYLOADS 1024
/* Events per transaction in phase b and in the stream-read stream. */
#define BIG_TXN_EVENTS 100

struct options {
	const char *dir;         /* --dir, NULL: a new one under /tmp */
	bool keep;               /* --keep */
	bool quick;              /* --quick */
	uint64_t events;         /* --events, per apply phase */
	uint32_t txns_per_entry; /* --txns-per-entry */
	uint32_t writers;        /* --writers */
	uint32_t streams;        /* --streams, per writer */
	uint32_t data_bytes;     /* --data-bytes */
	uint32_t page;           /* --page, records per store_read_all */
	uint32_t stream_reads;   /* --stream-reads */
};

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_storage: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		die("clock_gettime: %s", strerror(errno));
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * Disk accounting
 * ------------------------------------------------------------------------ */

/* The process's write_bytes from /proc/self/io (RocksDB's background
 * threads included); false when the kernel does not provide it. */
static bool io_write_bytes(uint64_t *out)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/self/io", "r");

	if (f == NULL)
		return false;
	while (fgets(line, sizeof line, f) != NULL) {
		unsigned long long v;

		if (sscanf(line, "write_bytes: %llu", &v) == 1) {
			*out = v;
			found = true;
		}
	}
	fclose(f);
	return found;
}

static uint64_t du_bytes;

static int du_visit(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_bytes += (uint64_t)st->st_size;
	return 0;
}

/* Total size of the files under @dir. */
static uint64_t dir_size(const char *dir)
{
	du_bytes = 0;
	if (nftw(dir, du_visit, 16, FTW_PHYS) != 0)
		die("walk %s: %s", dir, strerror(errno));
	return du_bytes;
}

static int rm_visit(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "bench_storage: remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void rm_rf(const char *dir)
{
	if (nftw(dir, rm_visit, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "bench_storage: remove %s: %s\n", dir,
			strerror(errno));
}

/* ------------------------------------------------------------------------
 * Workload
 * ------------------------------------------------------------------------ */

struct writer {
	uint8_t id[16];
	uint64_t seq;       /* last sequence used */
	uint64_t *versions; /* per stream: its version, as we expect it */
	char (*names)[32];  /* per stream */
};

struct workload {
	const struct options *o;
	struct writer *writers;
	uint8_t *payloads;      /* PAYLOADS × data_bytes */
	uint64_t event_counter; /* for event ids and payload choice */
	uint64_t txn_counter;   /* picks writer and stream */
	uint64_t next_position; /* the position the next event must get */
	uint64_t index;         /* last Raft index applied */
	struct store_event *events;
	uint32_t events_per_txn;
};

static const char *const event_types[] = { "OrderPlaced", "OrderPaid",
					   "OrderShipped", "OrderCancelled" };

/* xorshift64: the same pseudo-random payloads on every run. */
static uint64_t next_random(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* JSON-like text, as services store: field names repeat, values vary, and
 * a free-text note fills the rest. */
static void make_payloads(struct workload *w)
{
	uint32_t n = w->o->data_bytes;
	uint64_t x = 0x2545f4914f6cdd1dull;
	uint32_t k;

	w->payloads = malloc((size_t)PAYLOADS * n + 1);
	if (w->payloads == NULL)
		die("out of memory");
	for (k = 0; k < PAYLOADS; k++) {
		char *p = (char *)w->payloads + (size_t)k * n;
		char head[256];
		uint64_t r = next_random(&x);
		size_t len;
		size_t i;

		len = (size_t)snprintf(head, sizeof head,
				       "{\"order_id\":\"%016" PRIx64
				       "\",\"customer\":\"c-%" PRIu64
				       "\",\"amount_cents\":%" PRIu64
				       ",\"currency\":\"EUR\",\"note\":\"",
				       r, r % 100000, (r >> 20) % 1000000);
		if (len > n)
			len = n;
		memcpy(p, head, len);
		for (i = len; i < n; i++)
			p[i] = (char)('a' + next_random(&x) % 26);
		if (n >= len + 2) {
			p[n - 2] = '"';
			p[n - 1] = '}';
		}
	}
}

static void workload_init(struct workload *w, const struct options *o,
			  uint32_t events_per_txn)
{
	uint32_t i;
	uint32_t k;

	memset(w, 0, sizeof *w);
	w->o = o;
	w->next_position = 1;
	w->events_per_txn = events_per_txn;
	w->writers = calloc(o->writers, sizeof *w->writers);
	w->events = calloc(events_per_txn, sizeof *w->events);
	if (w->writers == NULL || w->events == NULL)
		die("out of memory");
	for (i = 0; i < o->writers; i++) {
		struct writer *wr = &w->writers[i];

		for (k = 0; k < 16; k++)
			wr->id[k] = (uint8_t)(0xc0 + i * 7 + k);
		wr->versions = calloc(o->streams, sizeof *wr->versions);
		wr->names = calloc(o->streams, sizeof *wr->names);
		if (wr->versions == NULL || wr->names == NULL)
			die("out of memory");
		for (k = 0; k < o->streams; k++)
			snprintf(wr->names[k], sizeof wr->names[k],
				 "order-w%u-%u", i, k);
	}
	make_payloads(w);
}

static void workload_close(struct workload *w)
{
	uint32_t i;

	for (i = 0; i < w->o->writers; i++) {
		free(w->writers[i].versions);
		free(w->writers[i].names);
	}
	free(w->writers);
	free(w->events);
	free(w->payloads);
}

/* The next transaction: writer and stream round-robin, the writer's next
 * sequence, the stream's exact version. @t and @p are filled; the events
 * live in the workload until the next call. */
static void next_txn(struct workload *w, struct store_txn *t,
		     struct store_part *p, uint32_t *writer, uint32_t *stream)
{
	const struct options *o = w->o;
	uint32_t wi = (uint32_t)(w->txn_counter % o->writers);
	struct writer *wr = &w->writers[wi];
	uint32_t si = (uint32_t)((w->txn_counter / o->writers) % o->streams);
	uint32_t k;

	w->txn_counter++;
	for (k = 0; k < w->events_per_txn; k++) {
		struct store_event *e = &w->events[k];
		uint64_t n = w->event_counter++;

		memset(e, 0, sizeof *e);
		memcpy(e->id, &n, sizeof n);
		memcpy(e->id + 8, wr->id, 8);
		e->id[6] = (uint8_t)((e->id[6] & 0x0f) | 0x40);
		e->id[8] = (uint8_t)((e->id[8] & 0x3f) | 0x80);
		e->type = event_types[n % 4];
		e->type_len = (uint32_t)strlen(e->type);
		e->schema_version = 1;
		e->event_time_us = 1700000000000000ll + (int64_t)n;
		e->data = w->payloads + (size_t)(n % PAYLOADS) * o->data_bytes;
		e->data_len = o->data_bytes;
	}
	p->stream = wr->names[si];
	p->stream_len = (uint32_t)strlen(wr->names[si]);
	p->expect.kind = STORE_EXPECT_EXACT;
	p->expect.version = wr->versions[si];
	p->n_events = w->events_per_txn;
	p->events = w->events;
	memset(t, 0, sizeof *t);
	t->commit_time_us = 1700000000000000ull + w->txn_counter;
	t->has_client = true;
	memcpy(t->client_id, wr->id, 16);
	t->client_seq = ++wr->seq;
	t->n_parts = 1;
	t->parts = p;
	*writer = wi;
	*stream = si;
}

/* What an entry's transactions must get back. */
struct expected {
	uint32_t writer;
	uint32_t stream;
	uint64_t first_version;
};

/* Checks the results of an entry of @n transactions and advances the
 * workload's picture of the store. */
static void check_results(struct workload *w, const struct store_results *r,
			  const struct expected *want, uint32_t n,
			  uint8_t outcome)
{
	uint32_t k;
	uint32_t e = w->events_per_txn;

	if (r->skipped)
		die("entry %" PRIu64 " skipped", w->index);
	if (r->entry_error != 0)
		die("entry %" PRIu64 ": framing error %s", w->index,
		    store_strerror(r->entry_error));
	if (r->n != n)
		die("entry %" PRIu64 ": %u results for %u transactions",
		    w->index, r->n, n);
	for (k = 0; k < n; k++) {
		const struct store_txn_result *tr = &r->txns[k];
		const struct store_part_result *pr;

		if (tr->outcome != outcome)
			die("entry %" PRIu64
			    " transaction %u: outcome %u "
			    "(reject code %d, actual version %" PRIu64
			    "), expected %u",
			    w->index, k, tr->outcome, tr->reject_code,
			    tr->actual_version, outcome);
		if (tr->n_parts != 1)
			die("entry %" PRIu64 " transaction %u: %u parts",
			    w->index, k, tr->n_parts);
		pr = &tr->parts[0];
		if (pr->first_version != want[k].first_version ||
		    pr->last_version != want[k].first_version + e - 1 ||
		    pr->last_position != pr->first_position + e - 1)
			die("entry %" PRIu64
			    " transaction %u: versions %" PRIu64 "..%" PRIu64
			    ", expected from %" PRIu64,
			    w->index, k, pr->first_version, pr->last_version,
			    want[k].first_version);
		if (outcome == STORE_COMMITTED) {
			if (pr->first_position != w->next_position)
				die("entry %" PRIu64
				    " transaction %u: "
				    "position %" PRIu64 ", expected %" PRIu64,
				    w->index, k, pr->first_position,
				    w->next_position);
			w->next_position += e;
			w->writers[want[k].writer].versions[want[k].stream] +=
				e;
		}
	}
}

struct apply_stats {
	uint64_t events;
	uint64_t txns;
	uint64_t entries;
	double apply_s; /* inside store_apply() */
	double total_s; /* building entries included */
	bool have_io;
	uint64_t write_bytes;       /* over the apply phase */
	uint64_t write_bytes_close; /* apply, sync and close */
	uint64_t disk_bytes;        /* directory size after sync and close */
};

/* Opens a fresh store in @dir and applies @o->events events in
 * transactions of @events_per_txn events, @per_entry transactions per
 * entry. Leaves the store closed. */
static void run_apply(const struct options *o, const char *dir,
		      uint32_t events_per_txn, uint32_t per_entry,
		      struct apply_stats *st)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_entry_builder b;
	struct store_results r;
	struct workload w;
	struct expected *want;
	struct store s;
	uint64_t txns_total = (o->events + events_per_txn - 1) / events_per_txn;
	uint64_t io0 = 0;
	uint64_t io1 = 0;
	uint64_t io2 = 0;
	uint8_t *last_entry = NULL;
	size_t last_len = 0;
	struct expected *last_want;
	uint32_t last_n = 0;
	double t0;
	int rv;

	memset(st, 0, sizeof *st);
	if (mkdir(dir, 0755) != 0)
		die("mkdir %s: %s", dir, strerror(errno));
	rv = store_open(&s, dir, NULL);
	if (rv != 0)
		die("%s", s.errmsg);
	workload_init(&w, o, events_per_txn);
	want = calloc(per_entry, sizeof *want);
	last_want = calloc(per_entry, sizeof *last_want);
	if (want == NULL || last_want == NULL)
		die("out of memory");
	store_entry_builder_init(&b);
	store_results_init(&r);

	st->have_io = io_write_bytes(&io0);
	t0 = now_s();
	while (st->txns < txns_total) {
		struct store_txn t;
		struct store_part p;
		const void *buf;
		size_t len;
		uint32_t n = 0;
		double a0;

		store_entry_builder_reset(&b);
		while (n < per_entry && st->txns + n < txns_total) {
			uint32_t wi;
			uint32_t si;

			next_txn(&w, &t, &p, &wi, &si);
			rv = store_entry_add(&b, &t, errmsg);
			if (rv == STORE_EENTRY_TOO_LARGE && n > 0) {
				/* Full: this transaction opens the next
				 * entry. Undo its sequence and counters. */
				w.writers[wi].seq--;
				w.txn_counter--;
				w.event_counter -= events_per_txn;
				break;
			}
			if (rv != 0)
				die("store_entry_add: %s", errmsg);
			want[n].writer = wi;
			want[n].stream = si;
			want[n].first_version = p.expect.version + 1;
			n++;
		}
		rv = store_entry_finish(&b, &buf, &len);
		if (rv != 0)
			die("store_entry_finish: %s", store_strerror(rv));
		a0 = now_s();
		rv = store_apply(&s, ++w.index, buf, len, &r);
		st->apply_s += now_s() - a0;
		if (rv != 0)
			die("store_apply(%" PRIu64 "): %s", w.index, s.errmsg);
		check_results(&w, &r, want, n, STORE_COMMITTED);
		st->txns += n;
		st->events += (uint64_t)n * events_per_txn;
		st->entries++;
		if (st->txns == txns_total) {
			last_entry = malloc(len);
			if (last_entry == NULL)
				die("out of memory");
			memcpy(last_entry, buf, len);
			last_len = len;
			memcpy(last_want, want, sizeof *want * n);
			last_n = n;
		}
	}
	st->total_s = now_s() - t0;
	if (st->have_io && io_write_bytes(&io1))
		st->write_bytes = io1 - io0;

	/* The last entry again, at the next index: a leader change that
	 * re-proposed it. Every transaction must come back DUPLICATE with
	 * its original versions, and nothing is appended. */
	if (last_entry != NULL) {
		uint64_t pos = store_last_position(&s);

		rv = store_apply(&s, ++w.index, last_entry, last_len, &r);
		if (rv != 0)
			die("store_apply(%" PRIu64 "): %s", w.index, s.errmsg);
		check_results(&w, &r, last_want, last_n, STORE_DUPLICATE);
		if (store_last_position(&s) != pos)
			die("a duplicate entry appended events");
		free(last_entry);
	}
	if (store_last_position(&s) != w.next_position - 1)
		die("last position %" PRIu64 ", expected %" PRIu64,
		    store_last_position(&s), w.next_position - 1);
	if (store_applied_index(&s) != w.index)
		die("applied index %" PRIu64 ", expected %" PRIu64,
		    store_applied_index(&s), w.index);

	rv = store_sync(&s);
	if (rv != 0)
		die("store_sync: %s", s.errmsg);
	store_close(&s);
	if (st->have_io && io_write_bytes(&io2))
		st->write_bytes_close = io2 - io0;
	st->disk_bytes = dir_size(dir);

	store_results_close(&r);
	store_entry_builder_close(&b);
	free(want);
	free(last_want);
	workload_close(&w);
}

static void print_apply(const char *what, const struct apply_stats *st)
{
	double ev = (double)st->events;

	printf("%s\n", what);
	printf("  %" PRIu64 " events, %" PRIu64 " txns, %" PRIu64
	       " entries; apply %.2f s, end to end %.2f s\n",
	       st->events, st->txns, st->entries, st->apply_s, st->total_s);
	printf("  apply:      %10.0f events/s %10.0f txns/s %9.0f "
	       "entries/s\n",
	       ev / st->apply_s, (double)st->txns / st->apply_s,
	       (double)st->entries / st->apply_s);
	printf("  end to end: %10.0f events/s %10.0f txns/s\n",
	       ev / st->total_s, (double)st->txns / st->total_s);
	if (st->have_io)
		printf("  disk: %.0f B/event written during apply (%.0f with "
		       "sync and close), %.0f B/event on disk after close\n",
		       (double)st->write_bytes / ev,
		       (double)st->write_bytes_close / ev,
		       (double)st->disk_bytes / ev);
	else
		printf("  disk: /proc/self/io unavailable; %.0f B/event on "
		       "disk after close\n",
		       (double)st->disk_bytes / ev);
	fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Reads
 * ------------------------------------------------------------------------ */

struct read_state {
	uint64_t next;      /* position or version the next record has */
	uint64_t bytes;     /* record bytes, as stored */
	const char *stream; /* stream reads: the stream */
	uint32_t stream_len;
	bool bad;
};

static uint64_t record_bytes(const struct store_record *r)
{
	/* The stored value: 80-byte header, the variable fields, the CRC
	 * (docs/storage-format.md). */
	return 84u + r->stream_len + r->type_len + r->data_len +
	       r->metadata_len;
}

static bool visit_all(void *arg, const struct store_record *r)
{
	struct read_state *rs = arg;

	if (r->position != rs->next)
		rs->bad = true;
	rs->next = r->position + 1;
	rs->bytes += record_bytes(r);
	return true;
}

static bool visit_stream(void *arg, const struct store_record *r)
{
	struct read_state *rs = arg;

	if (r->version != rs->next || r->stream_len != rs->stream_len ||
	    memcmp(r->stream, rs->stream, rs->stream_len) != 0)
		rs->bad = true;
	rs->next = r->version + 1;
	rs->bytes += record_bytes(r);
	return true;
}

/* Reads the whole log in pages; returns the seconds it took. */
static double read_all_pass(struct store *s, uint64_t expect_events,
			    uint32_t page, uint64_t *bytes)
{
	struct read_state rs = { .next = 1 };
	struct store_read_info info;
	uint64_t from = 1;
	uint64_t count = 0;
	double t0 = now_s();
	int rv;

	for (;;) {
		rv = store_read_all(s, from, page, 0, NULL, visit_all, &rs,
				    &info);
		if (rv != 0)
			die("store_read_all(%" PRIu64 "): %s", from, s->errmsg);
		count += info.count;
		from = info.next;
		if (info.end || info.count == 0)
			break;
	}
	if (rs.bad)
		die("store_read_all returned positions out of order");
	if (count != expect_events)
		die("store_read_all returned %" PRIu64 " events of %" PRIu64,
		    count, expect_events);
	*bytes = rs.bytes;
	return now_s() - t0;
}

/* Reads the first @want events of @stream @reps times; returns seconds. */
static double read_stream_reps(struct store *s, const char *stream,
			       uint32_t want, uint32_t reps, uint64_t *events)
{
	struct read_state rs;
	struct store_read_info info;
	uint32_t k;
	double t0 = now_s();
	int rv;

	*events = 0;
	for (k = 0; k < reps; k++) {
		memset(&rs, 0, sizeof rs);
		rs.next = 1;
		rs.stream = stream;
		rs.stream_len = (uint32_t)strlen(stream);
		rv = store_read_stream(s, stream, strlen(stream), 1, false,
				       want, visit_stream, &rs, &info);
		if (rv != 0)
			die("store_read_stream(%s): %s", stream, s->errmsg);
		if (rs.bad)
			die("store_read_stream(%s) returned other events",
			    stream);
		if (info.count != want)
			die("store_read_stream(%s) returned %u events of %u",
			    stream, info.count, want);
		*events += info.count;
	}
	return now_s() - t0;
}

/* Phase c, on the store phase a left in @dir. */
static void run_reads(const struct options *o, const char *dir, uint64_t events,
		      uint64_t index)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_entry_builder b;
	struct store_results r;
	struct store_event ev[BIG_TXN_EVENTS];
	struct store_part p;
	struct store_txn t;
	struct store_head h;
	const char *stream = "read-100";
	const char *scattered = "order-w0-0";
	const void *buf;
	size_t len;
	uint64_t bytes;
	uint64_t n;
	double secs;
	uint32_t k;
	struct store s;
	int rv;

	rv = store_open(&s, dir, NULL);
	if (rv != 0)
		die("%s", s.errmsg);
	/* Opening replays the WAL into SST files and drops the WAL: what
	 * the store holds once RocksDB has flushed everything. */
	printf("c. reads (store of phase a, %" PRIu64
	       " events, reopened: "
	       "%.0f B/event on disk after the reopen)\n",
	       events, (double)dir_size(dir) / (double)events);

	secs = read_all_pass(&s, events, o->page, &bytes);
	printf("  read_all, cold cache: %10.0f events/s %8.1f MB/s "
	       "(%" PRIu64 " events, %.2f s, pages of %u)\n",
	       (double)events / secs, (double)bytes / secs / 1e6, events, secs,
	       o->page);
	secs = read_all_pass(&s, events, o->page, &bytes);
	printf("  read_all, warm cache: %10.0f events/s %8.1f MB/s "
	       "(%.2f s)\n",
	       (double)events / secs, (double)bytes / secs / 1e6, secs);
	fflush(stdout);

	/* One stream of 100 events written by one transaction. */
	memset(ev, 0, sizeof ev);
	for (k = 0; k < BIG_TXN_EVENTS; k++) {
		ev[k].id[0] = 0xee;
		ev[k].id[1] = (uint8_t)k;
		ev[k].type = "OrderPlaced";
		ev[k].type_len = 11;
		ev[k].data = "{\"read\":true}";
		ev[k].data_len = 13;
	}
	p.stream = stream;
	p.stream_len = (uint32_t)strlen(stream);
	p.expect.kind = STORE_EXPECT_NO_STREAM;
	p.expect.version = 0;
	p.n_events = BIG_TXN_EVENTS;
	p.events = ev;
	memset(&t, 0, sizeof t);
	t.n_parts = 1;
	t.parts = &p;
	store_entry_builder_init(&b);
	store_results_init(&r);
	rv = store_entry_add(&b, &t, errmsg);
	if (rv != 0)
		die("store_entry_add: %s", errmsg);
	rv = store_entry_finish(&b, &buf, &len);
	if (rv != 0)
		die("store_entry_finish: %s", store_strerror(rv));
	rv = store_apply(&s, index + 1, buf, len, &r);
	if (rv != 0)
		die("store_apply: %s", s.errmsg);
	if (r.n != 1 || r.txns[0].outcome != STORE_COMMITTED)
		die("the read stream's transaction did not commit");
	store_results_close(&r);
	store_entry_builder_close(&b);

	secs = read_stream_reps(&s, stream, BIG_TXN_EVENTS, o->stream_reads,
				&n);
	printf("  read_stream, 100 events written together: %8.0f reads/s "
	       "%10.0f events/s\n",
	       o->stream_reads / secs, (double)n / secs);

	/* One of the workload's streams: its events are spread over the
	 * log among every other stream's. */
	rv = store_head(&s, scattered, strlen(scattered), &h);
	if (rv != 0)
		die("store_head: %s", s.errmsg);
	if (h.version >= BIG_TXN_EVENTS) {
		secs = read_stream_reps(&s, scattered, BIG_TXN_EVENTS,
					o->stream_reads, &n);
		printf("  read_stream, 100 events spread over the log: %5.0f "
		       "reads/s %10.0f events/s\n",
		       o->stream_reads / secs, (double)n / secs);
	} else if (h.version > 0) {
		secs = read_stream_reps(&s, scattered, (uint32_t)h.version,
					o->stream_reads, &n);
		printf("  read_stream, %" PRIu64
		       " events spread over the "
		       "log: %5.0f reads/s %10.0f events/s\n",
		       h.version, o->stream_reads / secs, (double)n / secs);
	}
	store_close(&s);
	fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_storage [--dir DIR] [--keep] [--quick] "
		"[--events N]\n"
		"         [--txns-per-entry N] [--writers N] [--streams N]\n"
		"         [--data-bytes N] [--page N] [--stream-reads N]\n"
		"  --dir DIR           where the stores go (must not exist or "
		"be empty;\n"
		"                      default: a new directory under $TMPDIR "
		"or /tmp)\n"
		"  --keep              leave the stores there afterwards\n"
		"  --quick             tiny counts, for the smoke test\n"
		"  --events N          events per apply phase (default "
		"250000)\n"
		"  --txns-per-entry N  transactions per entry (default 64)\n"
		"  --writers N         client ids (default 8)\n"
		"  --streams N         streams per writer (default 64)\n"
		"  --data-bytes N      bytes of data per event (default 256)\n"
		"  --page N            records per store_read_all call "
		"(default 1000)\n"
		"  --stream-reads N    reads of the 100-event stream "
		"(default 5000)\n");
}

static uint64_t parse_u64(const char *flag, const char *s, uint64_t min,
			  uint64_t max)
{
	unsigned long long v;
	char *end;

	if (s == NULL)
		die("%s needs a value", flag);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || s[0] == '-' || v < min ||
	    v > max)
		die("%s: '%s' is not a number in %" PRIu64 "..%" PRIu64, flag,
		    s, min, max);
	return v;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	bool events_set = false;
	int i;

	memset(o, 0, sizeof *o);
	o->events = 250000;
	o->txns_per_entry = 64;
	o->writers = 8;
	o->streams = 64;
	o->data_bytes = 256;
	o->page = 1000;
	o->stream_reads = 5000;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--dir") == 0) {
			if (v == NULL)
				die("--dir needs a value");
			o->dir = v;
			i++;
		} else if (strcmp(a, "--keep") == 0) {
			o->keep = true;
		} else if (strcmp(a, "--quick") == 0) {
			o->quick = true;
		} else if (strcmp(a, "--events") == 0) {
			o->events = parse_u64(a, v, 1, UINT64_C(1) << 40);
			events_set = true;
			i++;
		} else if (strcmp(a, "--txns-per-entry") == 0) {
			o->txns_per_entry = (uint32_t)parse_u64(
				a, v, 1, STORE_ENTRY_TXNS_MAX);
			i++;
		} else if (strcmp(a, "--writers") == 0) {
			o->writers = (uint32_t)parse_u64(a, v, 1, 1u << 16);
			i++;
		} else if (strcmp(a, "--streams") == 0) {
			o->streams = (uint32_t)parse_u64(a, v, 1, 1u << 20);
			i++;
		} else if (strcmp(a, "--data-bytes") == 0) {
			o->data_bytes = (uint32_t)parse_u64(
				a, v, 0, STORE_EVENT_DATA_MAX);
			i++;
		} else if (strcmp(a, "--page") == 0) {
			o->page = (uint32_t)parse_u64(a, v, 1, UINT32_MAX);
			i++;
		} else if (strcmp(a, "--stream-reads") == 0) {
			o->stream_reads =
				(uint32_t)parse_u64(a, v, 1, UINT32_MAX);
			i++;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			die("unknown argument '%s'", a);
		}
	}
	if (o->quick) {
		if (!events_set)
			o->events = 3000;
		o->stream_reads = 20;
	}
}

/* Creates the top directory: @o->dir (new or empty) or a new one. */
static char *make_top_dir(const struct options *o)
{
	char tmpl[4096];
	const char *tmp = getenv("TMPDIR");
	char *dir;

	if (o->dir != NULL) {
		if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
			die("mkdir %s: %s", o->dir, strerror(errno));
		if (rmdir(o->dir) != 0 && errno != ENOENT)
			die("--dir %s: must not exist or be empty (%s)", o->dir,
			    strerror(errno));
		if (mkdir(o->dir, 0755) != 0)
			die("mkdir %s: %s", o->dir, strerror(errno));
		dir = strdup(o->dir);
	} else {
		snprintf(tmpl, sizeof tmpl, "%s/cairn-bench-XXXXXX",
			 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL)
			die("mkdtemp %s: %s", tmpl, strerror(errno));
		dir = strdup(tmpl);
	}
	if (dir == NULL)
		die("out of memory");
	return dir;
}

int main(int argc, char **argv)
{
	struct options o;
	struct apply_stats a_k, a_1, b_k, b_1;
	char path[4200];
	char title[256];
	double t0 = now_s();
	char *top;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &o);
	top = make_top_dir(&o);
	printf("bench_storage: %" PRIu64
	       " events per apply phase, %u-byte "
	       "events, %u writers x %u streams, stores in %s\n",
	       o.events, o.data_bytes, o.writers, o.streams, top);

	snprintf(path, sizeof path, "%s/a-%u", top, o.txns_per_entry);
	run_apply(&o, path, 1, o.txns_per_entry, &a_k);
	snprintf(title, sizeof title,
		 "a. single-event transactions, %u per "
		 "entry",
		 o.txns_per_entry);
	print_apply(title, &a_k);

	snprintf(path, sizeof path, "%s/a-1", top);
	run_apply(&o, path, 1, 1, &a_1);
	print_apply("a. single-event transactions, 1 per entry", &a_1);
	if (!o.keep)
		rm_rf(path);

	snprintf(path, sizeof path, "%s/b-%u", top, o.txns_per_entry);
	run_apply(&o, path, BIG_TXN_EVENTS, o.txns_per_entry, &b_k);
	snprintf(title, sizeof title,
		 "b. %u-event transactions, %u per "
		 "entry",
		 BIG_TXN_EVENTS, o.txns_per_entry);
	print_apply(title, &b_k);
	if (!o.keep)
		rm_rf(path);

	snprintf(path, sizeof path, "%s/b-1", top);
	run_apply(&o, path, BIG_TXN_EVENTS, 1, &b_1);
	print_apply("b. 100-event transactions, 1 per entry", &b_1);
	if (!o.keep)
		rm_rf(path);

	/* Phase a's store: its index is its entries plus the duplicate. */
	snprintf(path, sizeof path, "%s/a-%u", top, o.txns_per_entry);
	run_reads(&o, path, a_k.events, a_k.entries + 1);

	if (o.keep)
		printf("kept %s\n", top);
	else
		rm_rf(top);
	printf("bench_storage: done in %.1f s\n", now_s() - t0);
	free(top);
	return 0;
}
