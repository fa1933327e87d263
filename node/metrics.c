/* metrics: see metrics.h. */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upper bounds of the latency histogram's buckets, in microseconds (the
 * page shows them in seconds, as Prometheus expects). */
static const uint64_t bucket_us[] = {
	250,   500,    1000,   2500,   5000,    10000,   25000,
	50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
};
#define BUCKETS (sizeof bucket_us / sizeof bucket_us[0])

static const char *const outcome_names[METRICS_OUTCOMES] = {
	"committed", "duplicate", "conflict", "stale_sequence", "error",
};
static const char *const transport_names[METRICS_TRANSPORTS] = {
	"binary",
	"http",
};

static uint64_t appends[METRICS_TRANSPORTS][METRICS_OUTCOMES];
static uint64_t latency_buckets[METRICS_TRANSPORTS][BUCKETS + 1];
static uint64_t latency_sum_us[METRICS_TRANSPORTS];
static uint64_t latency_count[METRICS_TRANSPORTS];
static uint64_t http_responses[6]; /* by status / 100, 0 for others */
static uint64_t leader_changes;

void metrics_append(enum metrics_transport t, enum metrics_outcome o,
		    uint64_t latency_us)
{
	unsigned b = 0;

	appends[t][o]++;
	if (o != METRICS_COMMITTED && o != METRICS_DUPLICATE)
		return;
	while (b < BUCKETS && latency_us > bucket_us[b])
		b++;
	latency_buckets[t][b]++;
	latency_sum_us[t] += latency_us;
	latency_count[t]++;
}

void metrics_append_outcome(enum metrics_outcome o, uint64_t latency_us)
{
	metrics_append(METRICS_HTTP, o, latency_us);
}

void metrics_http_response(unsigned status)
{
	unsigned c = status / 100;

	http_responses[c >= 1 && c <= 5 ? c : 0]++;
}

void metrics_leader_change(void)
{
	leader_changes++;
}

struct text {
	char *buf;
	size_t len;
	size_t cap;
	bool nomem;
};

static void put(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->nomem)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->nomem = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t want = t->cap ? t->cap * 2 : 16384;
		while (want - t->len <= (size_t)n)
			want *= 2;
		char *p = realloc(t->buf, want);
		if (p == NULL) {
			t->nomem = true;
			return;
		}
		t->buf = p;
		t->cap = want;
	}
}

static void gauge(struct text *t, const char *name, const char *help,
		  uint64_t v)
{
	put(t, "# HELP %s %s\n# TYPE %s gauge\n%s %" PRIu64 "\n", name, help,
	    name, name, v);
}

static void counter(struct text *t, const char *name, const char *help,
		    uint64_t v)
{
	put(t, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help,
	    name, name, v);
}

int metrics_render(const struct metrics_node *mn, char **text, size_t *len)
{
	const struct consensus_status *s = mn->status;
	struct store_cf_size sizes[STORE_CF_COUNT];
	struct store_head_cache_stats hc;
	struct text t = { NULL, 0, 0, false };
	unsigned tr;
	unsigned o;
	unsigned b;

	put(&t,
	    "# HELP cairn_appends_total Append requests by interface and "
	    "outcome.\n# TYPE cairn_appends_total counter\n");
	for (tr = 0; tr < METRICS_TRANSPORTS; tr++) {
		for (o = 0; o < METRICS_OUTCOMES; o++)
			put(&t,
			    "cairn_appends_total{interface=\"%s\",outcome=\"%"
			    "s\"}"
			    " %" PRIu64 "\n",
			    transport_names[tr], outcome_names[o],
			    appends[tr][o]);
	}
	put(&t,
	    "# HELP cairn_append_latency_seconds Time from taking an "
	    "append to answering it (committed or duplicate).\n"
	    "# TYPE cairn_append_latency_seconds histogram\n");
	for (tr = 0; tr < METRICS_TRANSPORTS; tr++) {
		uint64_t cum = 0;

		for (b = 0; b <= BUCKETS; b++) {
			cum += latency_buckets[tr][b];
			if (b < BUCKETS)
				put(&t,
				    "cairn_append_latency_seconds_bucket{"
				    "interface=\"%s\",le=\"%g\"} %" PRIu64 "\n",
				    transport_names[tr],
				    (double)bucket_us[b] / 1e6, cum);
			else
				put(&t,
				    "cairn_append_latency_seconds_bucket{"
				    "interface=\"%s\",le=\"+Inf\"} %" PRIu64
				    "\n",
				    transport_names[tr], cum);
		}
		put(&t,
		    "cairn_append_latency_seconds_sum{interface=\"%s\"} %.6f\n"
		    "cairn_append_latency_seconds_count{interface=\"%s\"} "
		    "%" PRIu64 "\n",
		    transport_names[tr], (double)latency_sum_us[tr] / 1e6,
		    transport_names[tr], latency_count[tr]);
	}
	put(&t,
	    "# HELP cairn_http_responses_total HTTP responses by status "
	    "class.\n# TYPE cairn_http_responses_total counter\n");
	for (b = 1; b <= 5; b++)
		put(&t,
		    "cairn_http_responses_total{class=\"%uxx\"} %" PRIu64 "\n",
		    b, http_responses[b]);

	gauge(&t, "cairn_raft_term", "Current Raft term.", s->term);
	gauge(&t, "cairn_raft_commit_index",
	      "Highest committed log index known.", s->commit_index);
	gauge(&t, "cairn_raft_applied_index", "Highest log index applied.",
	      s->applied_index);
	gauge(&t, "cairn_raft_leader",
	      "1 when this node is the leader, else 0.",
	      s->role == CONSENSUS_LEADER);
	gauge(&t, "cairn_raft_leader_id", "Id of the known leader (0: none).",
	      s->leader_id);
	gauge(&t, "cairn_raft_members", "Members in the configuration.",
	      s->n_members);
	counter(&t, "cairn_leader_changes_total",
		"Times this node saw a new leader.", leader_changes);
	gauge(&t, "cairn_last_position",
	      "Global position of the last applied event.", s->last_position);

	gauge(&t, "cairn_http_requests_in_progress",
	      "HTTP requests being served (SSE included).",
	      mn->http_connections);
	gauge(&t, "cairn_sse_subscribers",
	      "Live Server-Sent Events connections.", mn->sse_subscribers);
	gauge(&t, "cairn_sse_max_lag_events",
	      "Most events an SSE subscriber of the global log or a category "
	      "is behind.",
	      mn->sse_max_lag);
	gauge(&t, "cairn_subscribers",
	      "Live subscriptions over the binary protocol.", mn->subscribers);
	gauge(&t, "cairn_subscribers_max_lag_events",
	      "Most events a binary-protocol subscriber is behind.",
	      mn->subscribers_max_lag);

	store_cf_sizes(mn->store, sizes);
	put(&t,
	    "# HELP cairn_rocksdb_sst_bytes Live SST file bytes per column "
	    "family.\n# TYPE cairn_rocksdb_sst_bytes gauge\n");
	for (b = 0; b < STORE_CF_COUNT; b++)
		put(&t, "cairn_rocksdb_sst_bytes{cf=\"%s\"} %" PRIu64 "\n",
		    sizes[b].name, sizes[b].sst_bytes);
	put(&t,
	    "# HELP cairn_rocksdb_memtable_bytes Memtable bytes per column "
	    "family.\n# TYPE cairn_rocksdb_memtable_bytes gauge\n");
	for (b = 0; b < STORE_CF_COUNT; b++)
		put(&t, "cairn_rocksdb_memtable_bytes{cf=\"%s\"} %" PRIu64 "\n",
		    sizes[b].name, sizes[b].memtable_bytes);
	put(&t,
	    "# HELP cairn_rocksdb_keys_estimate Estimated live keys per "
	    "column family.\n# TYPE cairn_rocksdb_keys_estimate gauge\n");
	for (b = 0; b < STORE_CF_COUNT; b++)
		put(&t, "cairn_rocksdb_keys_estimate{cf=\"%s\"} %" PRIu64 "\n",
		    sizes[b].name, sizes[b].keys_estimate);
	store_head_cache_stats(mn->store, &hc);
	counter(&t, "cairn_head_cache_hits_total",
		"Stream heads and writer marks the head cache answered.",
		hc.hits);
	counter(&t, "cairn_head_cache_misses_total",
		"Lookups the head cache sent to RocksDB.", hc.misses);
	gauge(&t, "cairn_head_cache_bytes", "Memory the head cache holds.",
	      hc.bytes);
	gauge(&t, "cairn_disk_free_bytes",
	      "Free bytes on the data directory's file system.",
	      mn->disk_free_bytes);
	gauge(&t, "cairn_disk_low",
	      "1 while free space is below --disk-reserve (appends refused).",
	      mn->disk_low);

	if (t.nomem) {
		free(t.buf);
		return -1;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}
