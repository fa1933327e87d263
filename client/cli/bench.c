/* `cairn bench`: load against a running cluster through libcairn, with the
 * figures docs/benchmarks.md records.
 *
 *   W1  --writers concurrent writers, each with one asynchronous append
 *       outstanding at a time, one event of --event-bytes per append, to
 *       streams of its own with the exact expected version (each writer
 *       tracks its streams' versions);
 *   W2  the same with --events-per-append events per append;
 *   W3  --writers concurrent readers (threads) reading a 100-event stream
 *       created first, again and again;
 *   W4  one reader paging through the global log from position 1 to its
 *       end (or the duration);
 *   W5  one subscription to the global log from position 1 (on
 *       --read-node, say a follower) until it is live: catch-up events/s;
 *   W6  one writer appending one event at a time to a stream that a live
 *       subscriber (on --read-node) follows: the time from the append's
 *       acknowledgement to the event's delivery, p50/p99.
 *
 * Every run uses fresh stream names carrying a random run id. Latencies are
 * measured per operation (append acknowledged, page returned) and reported
 * as p50/p99/p99.9; errors are counted by kind. */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* Streams each writer rotates over: several, so that a writer's appends do
 * not all serialise on one stream head. */
#define BENCH_STREAMS_PER_WRITER 4

/* Events in W3's stream and in one W4 page. */
#define BENCH_READ_STREAM_EVENTS 100
#define BENCH_PAGE_EVENTS        1000

/* Bounds of the options. */
#define BENCH_WRITERS_MAX           4096
#define BENCH_EVENTS_PER_APPEND_MAX 10000
#define BENCH_EVENT_BYTES_MAX       (1u << 20)

/* Error kinds counted: CAIRN_E* codes up to this, plus BENCH_ESHORT. */
#define BENCH_CODES  128
#define BENCH_ESHORT 127 /* a W3 page with fewer events than written */

const char cli_bench_help[] =
	"Usage: cairn bench [--workload w1|...|w6|all] [--writers N]\n"
	"                   [--duration-s S] [--events-per-append N]\n"
	"                   [--event-bytes B] [--read-node HOST:PORT]\n"
	"\n"
	"Measures a running cluster through libcairn; prints, per workload,\n"
	"operations/s, events/s, p50/p99/p99.9 latency in ms and errors by\n"
	"kind (--json: an array of objects).\n"
	"\n"
	"  W1  --writers writers, each with one asynchronous append in "
	"flight,\n"
	"      one event of --event-bytes bytes per append, to its own "
	"streams\n"
	"      with the exact expected version\n"
	"  W2  as W1 with --events-per-append events per append\n"
	"  W3  --writers readers reading a 100-event stream again and again\n"
	"  W4  one reader paging through the global log from position 1\n"
	"  W5  a subscription to the global log from position 1 until it\n"
	"      is live (catch-up events/s)\n"
	"  W6  one writer, one event per append, and a live subscriber to\n"
	"      its stream: latency from the append's ack to the delivery\n"
	"\n"
	"An append is acknowledged only once it is durable on a majority and\n"
	"applied by the leader: append latencies include replication and\n"
	"fsync. Streams are fresh on every run (a random run id in their\n"
	"names).\n"
	"\n"
	"  --workload W           w1 ... w6 or all (default all)\n"
	"  --writers N            writers (W1, W2) or readers (W3); default "
	"64\n"
	"  --duration-s S         seconds per workload (default 10)\n"
	"  --events-per-append N  W2's batch (default 100)\n"
	"  --event-bytes B        bytes of data per event (default 256)\n"
	"  --read-node HOST:PORT  send W3 and W4 reads and W5 and W6\n"
	"                         subscriptions to this node\n"
	"\n"
	"Global options (before or after the command): --seeds, --node,\n"
	"--json, --deadline-ms (see cairn --help).\n"
	"\n" CLI_EXIT_HELP;

struct bench_cfg {
	const struct cli_global *g;
	unsigned writers;
	unsigned duration_s;
	unsigned events_per_append;
	unsigned event_bytes;
	const char *read_node;
	char run_id[9];
	char *payload; /* owned: event_bytes of data */
};

/* What one workload measured. */
struct bench_result {
	const char *name; /* "w1" ... */
	const char *what; /* one line describing it */
	uint64_t ops;     /* successful operations */
	uint64_t events;  /* events appended or read by them */
	double seconds;   /* wall time of the run */
	uint32_t *lat_us; /* owned: one latency per successful op */
	size_t n_lat;
	size_t cap_lat;
	uint64_t errors[BENCH_CODES];
	bool failed_setup; /* the workload could not start */
	int setup_code;    /* its CAIRN_E* code */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void record(struct bench_result *r, uint64_t ns)
{
	if (r->n_lat == r->cap_lat) {
		size_t cap = r->cap_lat > 0 ? r->cap_lat * 2 : 4096;
		uint32_t *p = realloc(r->lat_us, cap * sizeof *p);

		if (p == NULL)
			return; /* the figure loses a sample, nothing else */
		r->lat_us = p;
		r->cap_lat = cap;
	}
	r->lat_us[r->n_lat++] =
		ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000);
}

static void count_error(struct bench_result *r, int code)
{
	r->errors[code >= 0 && code < BENCH_CODES ? code : CAIRN_EINTERNAL]++;
}

static void merge(struct bench_result *into, const struct bench_result *from)
{
	size_t i;

	into->ops += from->ops;
	into->events += from->events;
	for (i = 0; i < from->n_lat; i++)
		record(into, (uint64_t)from->lat_us[i] * 1000);
	for (i = 0; i < BENCH_CODES; i++)
		into->errors[i] += from->errors[i];
}

/* ------------------------------------------------------------------------
 * W1, W2: asynchronous writers
 * ------------------------------------------------------------------------ */

struct writer;

/* State shared by the writers of one run. Written by callbacks on the
 * client's I/O thread only; the main thread reads it after all writers
 * stopped (under mu). */
struct write_run {
	struct bench_cfg *cfg;
	cairn_client *c;
	struct cairn_event_in *events; /* owned: the batch every append sends */
	unsigned n_events;
	atomic_bool stop;
	struct bench_result res;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned active; /* writers with an append in flight (under mu) */
};

struct writer {
	struct write_run *run;
	char streams[BENCH_STREAMS_PER_WRITER][96];
	uint64_t versions[BENCH_STREAMS_PER_WRITER];
	unsigned next;    /* the stream of the append in flight */
	uint64_t started; /* mono_ns() when it was submitted */
};

static void writer_done(struct write_run *run)
{
	pthread_mutex_lock(&run->mu);
	run->active--;
	pthread_cond_signal(&run->cond);
	pthread_mutex_unlock(&run->mu);
}

static void on_appended(void *arg, int status,
			const struct cairn_part_result *results, size_t n_parts,
			bool duplicate, const struct cairn_error *err);

static int writer_submit(struct writer *w)
{
	struct write_run *run = w->run;
	struct cairn_append_part part;

	memset(&part, 0, sizeof part);
	part.stream = w->streams[w->next];
	part.expect_kind = CAIRN_EXPECT_EXACT;
	part.expect_version = w->versions[w->next];
	part.events = run->events;
	part.n_events = run->n_events;
	w->started = mono_ns();
	return cairn_append_async(run->c, &part, 1, NULL, on_appended, w);
}

static void on_appended(void *arg, int status,
			const struct cairn_part_result *results, size_t n_parts,
			bool duplicate, const struct cairn_error *err)
{
	struct writer *w = arg;
	struct write_run *run = w->run;
	int rv;

	(void)n_parts;
	(void)duplicate;
	if (status == 0) {
		record(&run->res, mono_ns() - w->started);
		run->res.ops++;
		run->res.events += run->n_events;
		w->versions[w->next] = results[0].last_version;
	} else {
		count_error(&run->res, status);
		/* Resynchronise on a conflict (it should not happen: the
		 * streams are this writer's alone). */
		if (status == CAIRN_EWRONG_EXPECTED_VERSION)
			w->versions[w->next] = err->actual_version;
	}
	if (atomic_load(&run->stop)) {
		writer_done(run);
		return;
	}
	w->next = (w->next + 1) % BENCH_STREAMS_PER_WRITER;
	rv = writer_submit(w);
	if (rv != 0) {
		count_error(&run->res, rv);
		writer_done(run);
	}
}

static void run_writes(struct bench_cfg *cfg, struct bench_result *res,
		       unsigned events_per_append)
{
	struct write_run run;
	struct writer *writers;
	uint64_t start_errors[BENCH_CODES];
	uint64_t t0;
	unsigned i;
	unsigned k;
	int rv;

	memset(&run, 0, sizeof run);
	memset(start_errors, 0, sizeof start_errors);
	run.cfg = cfg;
	run.res = *res;
	run.n_events = events_per_append;
	run.events = calloc(events_per_append, sizeof *run.events);
	writers = calloc(cfg->writers, sizeof *writers);
	if (run.events == NULL || writers == NULL) {
		free(run.events);
		free(writers);
		res->failed_setup = true;
		res->setup_code = CAIRN_ENOMEM;
		return;
	}
	for (i = 0; i < events_per_append; i++) {
		run.events[i].type = "BenchEvent";
		run.events[i].data = cfg->payload;
		run.events[i].data_len = cfg->event_bytes;
	}
	rv = cli_open(cfg->g, &run.c);
	if (rv != 0) {
		free(run.events);
		free(writers);
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		return;
	}
	pthread_mutex_init(&run.mu, NULL);
	pthread_cond_init(&run.cond, NULL);
	for (i = 0; i < cfg->writers; i++) {
		writers[i].run = &run;
		for (k = 0; k < BENCH_STREAMS_PER_WRITER; k++)
			snprintf(writers[i].streams[k],
				 sizeof writers[i].streams[k],
				 "bench-%s%s-w%u-s%u", cfg->run_id, res->name,
				 i, k);
	}

	t0 = mono_ns();
	for (i = 0; i < cfg->writers; i++) {
		pthread_mutex_lock(&run.mu);
		run.active++;
		pthread_mutex_unlock(&run.mu);
		rv = writer_submit(&writers[i]);
		if (rv != 0) {
			/* Callbacks own run.res until the end: count here. */
			start_errors[rv >= 0 && rv < BENCH_CODES
					     ? rv
					     : CAIRN_EINTERNAL]++;
			writer_done(&run);
		}
	}
	sleep_ms(cfg->duration_s * 1000);
	atomic_store(&run.stop, true);
	pthread_mutex_lock(&run.mu);
	while (run.active > 0)
		pthread_cond_wait(&run.cond, &run.mu);
	pthread_mutex_unlock(&run.mu);
	run.res.seconds = (double)(mono_ns() - t0) / 1e9;
	for (i = 0; i < BENCH_CODES; i++)
		run.res.errors[i] += start_errors[i];

	cairn_close(run.c);
	pthread_cond_destroy(&run.cond);
	pthread_mutex_destroy(&run.mu);
	*res = run.res;
	free(run.events);
	free(writers);
}

/* ------------------------------------------------------------------------
 * W3: concurrent readers of one stream
 * ------------------------------------------------------------------------ */

struct reader {
	cairn_client *c;
	const char *stream;
	uint64_t min_position;
	atomic_bool *stop;
	struct bench_result res;
	pthread_t thread;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	struct cairn_read_options ro;

	memset(&ro, 0, sizeof ro);
	/* Whichever node answers has the stream: it applied its append. */
	ro.consistency = CAIRN_CONSISTENCY_AT_LEAST;
	ro.min_position = r->min_position;
	ro.limit = BENCH_READ_STREAM_EVENTS;
	while (!atomic_load(r->stop)) {
		struct cairn_page page;
		struct cairn_error err;
		uint64_t t = mono_ns();
		int rv;

		rv = cairn_read_stream(r->c, r->stream, 1, false, &ro, &page,
				       &err);
		if (rv != 0) {
			count_error(&r->res, rv);
			continue;
		}
		if (page.n != BENCH_READ_STREAM_EVENTS) {
			count_error(&r->res, BENCH_ESHORT);
		} else {
			record(&r->res, mono_ns() - t);
			r->res.ops++;
			r->res.events += page.n;
		}
		cairn_page_free(&page);
	}
	return NULL;
}

/* A client for reads: --read-node when given (that node only). */
static int open_reader(struct bench_cfg *cfg, cairn_client **c)
{
	struct cli_global g = *cfg->g;

	if (cfg->read_node != NULL)
		g.node = cfg->read_node;
	return cli_open(&g, c);
}

static void run_stream_reads(struct bench_cfg *cfg, struct bench_result *res)
{
	struct cairn_event_in *events;
	struct cairn_part_result pr;
	struct cairn_error err;
	struct reader *readers;
	cairn_client *wc;
	cairn_client *rc;
	atomic_bool stop;
	char stream[96];
	uint64_t t0;
	unsigned i;
	int rv;

	snprintf(stream, sizeof stream, "bench-%sw3-read", cfg->run_id);
	events = calloc(BENCH_READ_STREAM_EVENTS, sizeof *events);
	readers = calloc(cfg->writers, sizeof *readers);
	if (events == NULL || readers == NULL) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ENOMEM;
		goto out;
	}
	for (i = 0; i < BENCH_READ_STREAM_EVENTS; i++) {
		events[i].type = "BenchEvent";
		events[i].data = cfg->payload;
		events[i].data_len = cfg->event_bytes;
	}
	if (cli_open(cfg->g, &wc) != 0) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		goto out;
	}
	rv = cairn_append_one(wc, stream, CAIRN_EXPECT_NO_STREAM, 0, events,
			      BENCH_READ_STREAM_EVENTS, &pr, &err);
	cairn_close(wc);
	if (rv != 0) {
		cli_fail(&err);
		res->failed_setup = true;
		res->setup_code = rv;
		goto out;
	}
	if (open_reader(cfg, &rc) != 0) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		goto out;
	}
	atomic_store(&stop, false);
	t0 = mono_ns();
	for (i = 0; i < cfg->writers; i++) {
		readers[i].c = rc;
		readers[i].stream = stream;
		readers[i].min_position = pr.last_position;
		readers[i].stop = &stop;
		readers[i].res.name = res->name;
		pthread_create(&readers[i].thread, NULL, reader_run,
			       &readers[i]);
	}
	sleep_ms(cfg->duration_s * 1000);
	atomic_store(&stop, true);
	for (i = 0; i < cfg->writers; i++) {
		pthread_join(readers[i].thread, NULL);
		merge(res, &readers[i].res);
		free(readers[i].res.lat_us);
	}
	res->seconds = (double)(mono_ns() - t0) / 1e9;
	cairn_close(rc);
out:
	free(events);
	free(readers);
}

/* ------------------------------------------------------------------------
 * W4: the global log, page by page
 * ------------------------------------------------------------------------ */

static void run_log_scan(struct bench_cfg *cfg, struct bench_result *res)
{
	struct cairn_read_options ro;
	cairn_client *c;
	uint64_t from = 1;
	uint64_t t0;
	uint64_t until;

	if (open_reader(cfg, &c) != 0) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		return;
	}
	memset(&ro, 0, sizeof ro);
	ro.consistency = CAIRN_CONSISTENCY_ANY;
	ro.limit = BENCH_PAGE_EVENTS;
	t0 = mono_ns();
	until = t0 + (uint64_t)cfg->duration_s * 1000000000u;
	while (mono_ns() < until) {
		struct cairn_page page;
		struct cairn_error err;
		uint64_t t = mono_ns();
		bool end;
		int rv;

		rv = cairn_read_all(c, from, NULL, &ro, &page, &err);
		if (rv != 0) {
			count_error(res, rv);
			continue;
		}
		record(res, mono_ns() - t);
		res->ops++;
		res->events += page.n;
		end = page.end || page.next == from;
		from = page.next;
		cairn_page_free(&page);
		if (end)
			break;
	}
	res->seconds = (double)(mono_ns() - t0) / 1e9;
	cairn_close(c);
}

/* ------------------------------------------------------------------------
 * W5: a subscription catching up from position 1
 * ------------------------------------------------------------------------ */

/* What a bench subscription's callback shares with the bench's thread. */
struct sub_watch {
	atomic_uint_fast64_t events;     /* events delivered */
	atomic_uint_fast64_t pushes;     /* updates with events */
	atomic_bool live;                /* LIVE arrived */
	atomic_int ended;                /* END status + 1, 0 while running */
	_Atomic(uint64_t) *delivered_ns; /* W6: per version, 0: not yet */
	size_t cap;                      /* W6: entries of delivered_ns */
};

static void on_bench_update(void *arg, const struct cairn_sub_update *u)
{
	struct sub_watch *w = arg;
	uint64_t now = mono_ns();

	switch (u->what) {
	case CAIRN_SUB_EVENTS:
		atomic_fetch_add(&w->events, u->n);
		atomic_fetch_add(&w->pushes, 1);
		for (size_t i = 0; w->delivered_ns != NULL && i < u->n; i++)
			if (u->events[i].version < w->cap)
				atomic_store(
					&w->delivered_ns[u->events[i].version],
					now);
		break;
	case CAIRN_SUB_LIVE:
		atomic_store(&w->live, true);
		break;
	default:
		atomic_store(&w->ended, u->status + 1);
		break;
	}
}

static void run_catch_up(struct bench_cfg *cfg, struct bench_result *res)
{
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_error err;
	struct sub_watch w;
	cairn_client *c;
	uint64_t t0;
	uint64_t until;
	int ended;

	memset(&w, 0, sizeof w);
	if (open_reader(cfg, &c) != 0) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		return;
	}
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_ALL;
	o.from = 1;
	t0 = mono_ns();
	until = t0 + (uint64_t)cfg->duration_s * 1000000000u;
	if (cairn_subscribe(c, &o, on_bench_update, &w, &sub, &err) != 0) {
		cli_fail(&err);
		res->failed_setup = true;
		res->setup_code = err.code;
		cairn_close(c);
		return;
	}
	while (mono_ns() < until && !atomic_load(&w.live) &&
	       atomic_load(&w.ended) == 0)
		sleep_ms(1);
	res->seconds = (double)(mono_ns() - t0) / 1e9;
	cairn_subscription_close(sub);
	ended = atomic_load(&w.ended);
	if (ended > 1)
		count_error(res, ended - 1);
	res->ops = atomic_load(&w.pushes);
	res->events = atomic_load(&w.events);
	cairn_close(c);
}

/* ------------------------------------------------------------------------
 * W6: append acknowledged -> delivered to a live subscriber
 * ------------------------------------------------------------------------ */

/* Appends W6 makes at most per second of its duration (bounds its
 * arrays: one append at a time is far slower than this). */
#define BENCH_W6_APPENDS_PER_S 20000

/* How long W6 waits for the last deliveries after its duration. */
#define BENCH_W6_DRAIN_MS 5000

static void run_live_latency(struct bench_cfg *cfg, struct bench_result *res)
{
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub = NULL;
	struct cairn_event_in ev;
	struct cairn_part_result pr;
	struct cairn_error err;
	struct sub_watch w;
	cairn_client *sc = NULL;
	cairn_client *wc = NULL;
	uint64_t *acked_ns;
	char stream[96];
	uint64_t version = 0;
	uint64_t t0;
	uint64_t until;

	memset(&w, 0, sizeof w);
	w.cap = (size_t)cfg->duration_s * BENCH_W6_APPENDS_PER_S + 1;
	w.delivered_ns = calloc(w.cap, sizeof *w.delivered_ns);
	acked_ns = calloc(w.cap, sizeof *acked_ns);
	if (w.delivered_ns == NULL || acked_ns == NULL) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ENOMEM;
		goto out;
	}
	snprintf(stream, sizeof stream, "bench-%sw6-live", cfg->run_id);
	if (open_reader(cfg, &sc) != 0 || cli_open(cfg->g, &wc) != 0) {
		res->failed_setup = true;
		res->setup_code = CAIRN_ECONNECT;
		goto out;
	}
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_STREAM;
	o.target = stream;
	o.from = 1;
	if (cairn_subscribe(sc, &o, on_bench_update, &w, &sub, &err) != 0) {
		cli_fail(&err);
		res->failed_setup = true;
		res->setup_code = err.code;
		goto out;
	}
	t0 = mono_ns();
	while (!atomic_load(&w.live) && atomic_load(&w.ended) == 0 &&
	       mono_ns() - t0 < 10000000000u)
		sleep_ms(1);
	memset(&ev, 0, sizeof ev);
	ev.type = "BenchEvent";
	ev.data = cfg->payload;
	ev.data_len = cfg->event_bytes;
	t0 = mono_ns();
	until = t0 + (uint64_t)cfg->duration_s * 1000000000u;
	while (mono_ns() < until && version + 1 < w.cap &&
	       atomic_load(&w.ended) == 0) {
		int rv = cairn_append_one(wc, stream, CAIRN_EXPECT_EXACT,
					  version, &ev, 1, &pr, &err);

		if (rv != 0) {
			count_error(res, rv);
			if (rv == CAIRN_EWRONG_EXPECTED_VERSION)
				version = err.actual_version;
			continue;
		}
		version = pr.last_version;
		if (version < w.cap)
			acked_ns[version] = mono_ns();
	}
	res->seconds = (double)(mono_ns() - t0) / 1e9;
	t0 = mono_ns();
	while (atomic_load(&w.events) < version && atomic_load(&w.ended) == 0 &&
	       mono_ns() - t0 < BENCH_W6_DRAIN_MS * 1000000ull)
		sleep_ms(1);
	for (uint64_t v = 1; v <= version && v < w.cap; v++) {
		uint64_t d = atomic_load(&w.delivered_ns[v]);

		if (acked_ns[v] == 0)
			continue;
		if (d == 0) {
			count_error(res, CAIRN_ETIMEOUT);
			continue;
		}
		/* Delivery may come first (a follower applies before the
		 * leader's reply arrives): that is no latency at all. */
		record(res, d > acked_ns[v] ? d - acked_ns[v] : 0);
		res->ops++;
		res->events++;
	}
out:
	if (sub != NULL)
		cairn_subscription_close(sub);
	if (sc != NULL)
		cairn_close(sc);
	if (wc != NULL)
		cairn_close(wc);
	free(w.delivered_ns);
	free(acked_ns);
}

/* ------------------------------------------------------------------------
 * Reporting
 * ------------------------------------------------------------------------ */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a;
	uint32_t y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile of sorted latencies, in ms. */
static double quantile_ms(const struct bench_result *r, double q)
{
	size_t i;

	if (r->n_lat == 0)
		return 0;
	i = (size_t)(q * (double)(r->n_lat - 1) + 0.5);
	return r->lat_us[i] / 1000.0;
}

static const char *error_name(int code)
{
	return code == BENCH_ESHORT ? "short page" : cairn_strerror(code);
}

static void report_human(const struct bench_result *r)
{
	bool any = false;
	int k;

	printf("%s  %s\n", r->name, r->what);
	if (r->failed_setup) {
		printf("    could not run: %s\n",
		       cairn_strerror(r->setup_code));
		return;
	}
	printf("    %.1f s: %.1f ops/s, %.1f events/s; latency ms p50 %.2f "
	       "p99 %.2f p99.9 %.2f\n",
	       r->seconds, r->seconds > 0 ? r->ops / r->seconds : 0,
	       r->seconds > 0 ? r->events / r->seconds : 0,
	       quantile_ms(r, 0.50), quantile_ms(r, 0.99),
	       quantile_ms(r, 0.999));
	printf("    errors:");
	for (k = 0; k < BENCH_CODES; k++) {
		if (r->errors[k] == 0)
			continue;
		printf("%s %s: %llu", any ? "," : "", error_name(k),
		       (unsigned long long)r->errors[k]);
		any = true;
	}
	printf("%s\n", any ? "" : " none");
}

static json_t *report_json(const struct bench_result *r)
{
	json_t *o = json_object();
	json_t *errors = json_object();
	int k;

	json_object_set_new(o, "workload", json_string(r->name));
	json_object_set_new(o, "description", json_string(r->what));
	if (r->failed_setup) {
		json_object_set_new(o, "error",
				    json_string(cairn_strerror(r->setup_code)));
		json_decref(errors);
		return o;
	}
	json_object_set_new(o, "seconds", json_real(r->seconds));
	json_object_set_new(o, "ops", json_integer((json_int_t)r->ops));
	json_object_set_new(o, "events", json_integer((json_int_t)r->events));
	json_object_set_new(
		o, "ops_per_s",
		json_real(r->seconds > 0 ? r->ops / r->seconds : 0));
	json_object_set_new(
		o, "events_per_s",
		json_real(r->seconds > 0 ? r->events / r->seconds : 0));
	json_object_set_new(o, "p50_ms", json_real(quantile_ms(r, 0.50)));
	json_object_set_new(o, "p99_ms", json_real(quantile_ms(r, 0.99)));
	json_object_set_new(o, "p999_ms", json_real(quantile_ms(r, 0.999)));
	for (k = 0; k < BENCH_CODES; k++) {
		if (r->errors[k] > 0)
			json_object_set_new(
				errors, error_name(k),
				json_integer((json_int_t)r->errors[k]));
	}
	json_object_set_new(o, "errors", errors);
	return o;
}

/* ------------------------------------------------------------------------
 * The command
 * ------------------------------------------------------------------------ */

static int parse_bounded(const struct cli_args *a, const char *name,
			 unsigned dflt, unsigned min, unsigned max,
			 unsigned *out)
{
	const char *s = cli_opt(a, name);
	uint64_t v;

	*out = dflt;
	if (s == NULL)
		return 0;
	if (!cli_parse_u64(s, &v) || v < min || v > max) {
		fprintf(stderr,
			"cairn: --%s %s: expected %u..%u (try cairn bench "
			"--help)\n",
			name, s, min, max);
		return CLI_USAGE;
	}
	*out = (unsigned)v;
	return 0;
}

int cli_bench(const struct cli_global *g, const struct cli_args *a)
{
	static const char *const names[6] = {
		"w1", "w2", "w3", "w4", "w5", "w6"
	};
	struct bench_result results[6];
	struct bench_cfg cfg;
	const char *workload = cli_opt(a, "workload");
	char descr[6][160];
	bool run[6] = { false, false, false, false, false, false };
	json_t *arr = NULL;
	uint8_t id[16];
	char text[37];
	int exit_code = CLI_OK;
	int rv;
	int i;

	memset(&cfg, 0, sizeof cfg);
	cfg.g = g;
	if ((rv = parse_bounded(a, "writers", 64, 1, BENCH_WRITERS_MAX,
				&cfg.writers)) != 0 ||
	    (rv = parse_bounded(a, "duration-s", 10, 1, 3600,
				&cfg.duration_s)) != 0 ||
	    (rv = parse_bounded(a, "events-per-append", 100, 1,
				BENCH_EVENTS_PER_APPEND_MAX,
				&cfg.events_per_append)) != 0 ||
	    (rv = parse_bounded(a, "event-bytes", 256, 0, BENCH_EVENT_BYTES_MAX,
				&cfg.event_bytes)) != 0)
		return rv;
	cfg.read_node = cli_opt(a, "read-node");
	if (workload == NULL || strcmp(workload, "all") == 0) {
		for (i = 0; i < 6; i++)
			run[i] = true;
	} else {
		bool any = false;

		for (i = 0; i < 6; i++) {
			if (strcmp(workload, names[i]) == 0)
				run[i] = any = true;
		}
		if (!any) {
			fprintf(stderr,
				"cairn: --workload %s: expected w1 ... w6 "
				"or all (try cairn bench --help)\n",
				workload);
			return CLI_USAGE;
		}
	}
	cfg.payload = malloc(cfg.event_bytes > 0 ? cfg.event_bytes : 1);
	if (cfg.payload == NULL) {
		fprintf(stderr, "cairn: out of memory\n");
		return CLI_ERROR;
	}
	for (i = 0; i < (int)cfg.event_bytes; i++)
		cfg.payload[i] = (char)('a' + i % 26);
	cairn_uuid(id);
	cairn_uuid_format(id, text);
	snprintf(cfg.run_id, sizeof cfg.run_id, "%.8s", text);

	snprintf(descr[0], sizeof descr[0],
		 "appends: %u writers, 1 event of %u B per append", cfg.writers,
		 cfg.event_bytes);
	snprintf(descr[1], sizeof descr[1],
		 "appends: %u writers, %u events of %u B per append",
		 cfg.writers, cfg.events_per_append, cfg.event_bytes);
	snprintf(descr[2], sizeof descr[2],
		 "stream reads: %u readers, %d events of %u B per read%s%s",
		 cfg.writers, BENCH_READ_STREAM_EVENTS, cfg.event_bytes,
		 cfg.read_node != NULL ? " from " : "",
		 cfg.read_node != NULL ? cfg.read_node : "");
	snprintf(descr[3], sizeof descr[3],
		 "global log scan: pages of %d events from position 1%s%s",
		 BENCH_PAGE_EVENTS, cfg.read_node != NULL ? " on " : "",
		 cfg.read_node != NULL ? cfg.read_node : "");
	snprintf(descr[4], sizeof descr[4],
		 "subscription catch-up: the global log from position 1%s%s "
		 "until live",
		 cfg.read_node != NULL ? " on " : "",
		 cfg.read_node != NULL ? cfg.read_node : "");
	snprintf(descr[5], sizeof descr[5],
		 "live delivery: append ack to subscriber delivery, 1 writer, "
		 "1 event of %u B%s%s",
		 cfg.event_bytes,
		 cfg.read_node != NULL ? ", subscriber on " : "",
		 cfg.read_node != NULL ? cfg.read_node : "");
	if (g->json)
		arr = json_array();
	else
		printf("cairn bench: run %s, %u s per workload\n", cfg.run_id,
		       cfg.duration_s);

	for (i = 0; i < 6; i++) {
		struct bench_result *r = &results[i];

		memset(r, 0, sizeof *r);
		r->name = names[i];
		r->what = descr[i];
		if (!run[i])
			continue;
		switch (i) {
		case 0:
			run_writes(&cfg, r, 1);
			break;
		case 1:
			run_writes(&cfg, r, cfg.events_per_append);
			break;
		case 2:
			run_stream_reads(&cfg, r);
			break;
		case 3:
			run_log_scan(&cfg, r);
			break;
		case 4:
			run_catch_up(&cfg, r);
			break;
		case 5:
			run_live_latency(&cfg, r);
			break;
		}
		if (r->n_lat > 0)
			qsort(r->lat_us, r->n_lat, sizeof *r->lat_us, cmp_u32);
		if (r->failed_setup)
			exit_code = cli_exit_code(r->setup_code);
		else if (r->ops == 0 && exit_code == CLI_OK)
			exit_code = CLI_UNAVAILABLE;
		if (g->json) {
			json_array_append_new(arr, report_json(r));
		} else {
			report_human(r);
			fflush(stdout);
		}
		free(r->lat_us);
	}
	if (g->json) {
		char *s = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER |
						  JSON_REAL_PRECISION(6));

		printf("%s\n", s != NULL ? s : "[]");
		free(s);
		json_decref(arr);
	}
	free(cfg.payload);
	return exit_code;
}
