/* http_json: the HTTP gateway's JSON codec, apart from any socket so that
 * it can be fuzzed and unit-tested alone (tests/fuzz/fuzz_http_json.c,
 * tests/unit/http). It turns request bodies (POST /streams/{s}, POST
 * /sync) into store transactions, and event records into the JSON objects
 * reads and subscriptions return. docs/http-api.md is the contract.
 *
 * Memory: jansson allocates through this module (http_json_init), and
 * while a body is parsed its tree may hold at most HTTP_JSON_TREE_BYTES_MAX
 * bytes, so a small body of many tiny values cannot make the node
 * allocate hundreds of times its size. What a parse keeps (names, types,
 * data and metadata texts) is copied into one arena of about the body's
 * size and the tree is freed before the parse returns.
 *
 * Not thread-safe: the tree budget is process-wide. cairnd calls this only
 * from its loop thread. */
#ifndef CAIRN_NODE_HTTP_JSON_H
#define CAIRN_NODE_HTTP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "store.h"

/* Bytes the parse tree of one body may hold. jansson spends about 50 bytes
 * per value, so a 17 MiB body of one-byte numbers would take ~800 MiB;
 * 64 MiB allows any realistic body (events of 1 MiB data each parse into a
 * few times their size) and refuses the pathological ones with 413. */
#define HTTP_JSON_TREE_BYTES_MAX (64u << 20)

/* Bytes a parsed body keeps (names, types, data and metadata texts): the
 * re-encoded JSON can be longer than the body (1e9 becomes 1000000000.0),
 * so it is bounded too; twice the largest transaction. */
#define HTTP_JSON_KEPT_BYTES_MAX (2u * STORE_TXN_BYTES_MAX)

/* Events in one POST /streams/{stream} and in one /sync request (all
 * batches together): the store's per-transaction bound, so the arrays
 * built from a body stay small (about 64 bytes per event). */
#define HTTP_EVENTS_MAX STORE_TXN_EVENTS_MAX

/* Batches in one /sync request: each is one Raft transaction proposed in
 * turn, so a request's time is bounded too. */
#define HTTP_SYNC_BATCHES_MAX 1000

/* Streams one /sync batch may write. */
#define HTTP_SYNC_STREAMS_MAX 1000

#define HTTP_JSON_ERRORS(X)                              \
	X(HTTP_JSON_MALFORMED, 1, "malformed_json")      \
	X(HTTP_JSON_INVALID, 2, "invalid_request")       \
	X(HTTP_JSON_INVALID_STREAM, 3, "invalid_stream") \
	X(HTTP_JSON_TOO_LARGE, 4, "too_large")           \
	X(HTTP_JSON_NOMEM, 5, "out_of_memory")

enum http_json_error {
#define HTTP_JSON_ERROR_ENUM(name, code, text) name = code,
	HTTP_JSON_ERRORS(HTTP_JSON_ERROR_ENUM)
#undef HTTP_JSON_ERROR_ENUM
};

/* The error code's name as the API spells it ("malformed_json", ...). */
const char *http_json_code(int code);

/* Routes jansson's allocations through this module's accounting. Call
 * once at startup, before any other jansson use. */
void http_json_init(void);

/* One append transaction of a body. */
struct http_batch {
	uint64_t seq;         /* /sync: the batch's client sequence; else 0 */
	struct store_txn txn; /* parts and events point into the body */
};

/* A parsed request body: transactions whose pointers all point into
 * memory this struct owns. */
struct http_body {
	bool has_client;            /* /sync: client_id given */
	uint8_t client_id[16];      /* /sync: the device's id */
	uint32_t n_batches;         /* transactions */
	struct http_batch *batches; /* owned: n_batches */
	struct store_part *parts;   /* owned: every batch's parts */
	struct store_event *events; /* owned: every part's events */
	char *arena;                /* owned: names, types, texts */
	size_t n_events;            /* in events */
};

/* Parses the body of POST /streams/{stream}: a JSON array of 1..
 * HTTP_EVENTS_MAX event objects (or one object). Produces one batch with
 * one part for @stream (borrowed only during the call; copied), expected
 * version ANY and no client key: the caller sets those from the headers.
 * Events without an "id" get a random one. Returns 0 or an HTTP_JSON_*
 * code with a message in @err (@err_len bytes). On error @b is empty. */
int http_parse_append(const char *body, size_t len, const char *stream,
		      size_t stream_len, struct http_body *b, char *err,
		      size_t err_len);

/* Parses the body of POST /sync: {"client_id": UUID, "batches": [{"seq":
 * N, "streams": [{"stream": S, "events": [...]}]}]} with strictly
 * increasing seqs >= 1. Each batch becomes one transaction, keyed by
 * (client_id, seq), every part with expected version ANY. Returns as
 * http_parse_append. */
int http_parse_sync(const char *body, size_t len, struct http_body *b,
		    char *err, size_t err_len);

void http_body_free(struct http_body *b);

/* Parses an expected version header: "any", "no-stream", "exists" or a
 * decimal version (0 means no-stream). Returns 0 or -1. */
int http_parse_expected(const char *s, struct store_expect *e);

/* Parses a whole decimal u64 (no sign, no spaces, no overflow). Returns 0
 * or -1. */
int http_parse_u64(const char *s, uint64_t *out);

/* The JSON object of an event record (see docs/http-api.md): data and
 * metadata embedded when they are JSON text, base64 otherwise. Returns a
 * new reference, or NULL when out of memory. */
json_t *http_event_json(const struct store_record *r);

/* Appends the compact JSON text of @v to @buf (growing it), without a NUL.
 * Returns 0 or -1 when out of memory. */
int http_json_dump_append(const json_t *v, char **buf, size_t *len,
			  size_t *cap);

#endif /* CAIRN_NODE_HTTP_JSON_H */
