/* metrics: the node's counters and histograms, rendered as Prometheus text
 * (format 0.0.4) for GET /metrics. Counters are plain process-wide
 * variables: every caller runs on the node's loop thread. The names are
 * listed in docs/operations.md (Monitoring). */
#ifndef CAIRN_NODE_METRICS_H
#define CAIRN_NODE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "consensus.h"
#include "store.h"

/* How an append ended, as counted. */
enum metrics_outcome {
	METRICS_COMMITTED = 0,
	METRICS_DUPLICATE,
	METRICS_CONFLICT,
	METRICS_STALE,
	METRICS_ERROR,
	METRICS_OUTCOMES
};

/* Which interface a request came through. */
enum metrics_transport { METRICS_BINARY = 0, METRICS_HTTP, METRICS_TRANSPORTS };

/* Counts an append's outcome; @latency_us (request taken to answer) goes
 * into the latency histogram for committed and duplicate appends. */
void metrics_append(enum metrics_transport t, enum metrics_outcome o,
		    uint64_t latency_us);

/* An HTTP append's outcome (metrics_append with METRICS_HTTP). */
void metrics_append_outcome(enum metrics_outcome o, uint64_t latency_us);

/* Counts an HTTP response by status code class. */
void metrics_http_response(unsigned status);

/* Counts a change of the known leader. */
void metrics_leader_change(void);

/* What the page reports besides the counters: a moment's view. */
struct metrics_node {
	const struct consensus_status *status; /* borrowed */
	struct store *store;                   /* borrowed */
	uint64_t http_connections;             /* requests in progress */
	uint64_t sse_subscribers;              /* live SSE connections */
	uint64_t sse_max_lag;                  /* events behind, at most */
	uint64_t subscribers;                  /* binary subscriptions */
	uint64_t subscribers_max_lag;          /* events behind, at most */
	uint64_t disk_free_bytes;              /* data directory (disk.c) */
	uint64_t disk_low;                     /* 1 below the reserve */
};

/* Renders the page into a malloc'ed buffer (*text, *len; the caller frees
 * it). Returns 0 or -1 when out of memory. */
int metrics_render(const struct metrics_node *mn, char **text, size_t *len);

#endif /* CAIRN_NODE_METRICS_H */
