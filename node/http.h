/* http: cairnd's HTTP/JSON gateway (docs/http-api.md) on libmicrohttpd.
 *
 * libmicrohttpd runs without threads of its own, in its epoll mode: its
 * epoll descriptor is watched by a uv_poll on the node's loop, and
 * MHD_run() is called from there and from a timer set to MHD_get_timeout.
 * So every request handler runs on the node's loop like the binary
 * protocol's, and calls consensus/ and storage/ directly. A request that
 * waits (an append in Raft, a read waiting for a position, a live
 * subscription with nothing to send) suspends its MHD connection and is
 * resumed from a consensus callback.
 *
 * Used by main.c; nothing else in node/ calls it. */
#ifndef CAIRN_NODE_HTTP_H
#define CAIRN_NODE_HTTP_H

#include <stdint.h>

struct node;
struct http; /* private to http.c */

/* Connections the gateway serves at once; past it new ones are refused
 * (each may hold a body of up to HTTP_BODY_BYTES_MAX while it is read). */
#define HTTP_CONNECTIONS_MAX 1024

/* The largest request body: the binary protocol's frame bound, so one
 * request is at most one Raft transaction. */
#define HTTP_BODY_BYTES_MAX (17u << 20)

/* Request body bytes buffered over all connections. A new body that would
 * pass it is answered 503 before it is read, so 1,024 connections cannot
 * make the node hold 1,024 maximal bodies. */
#define HTTP_BODY_BYTES_TOTAL_MAX (256u << 20)

/* Events in a read page (the `limit` parameter's largest value) and its
 * default. */
#define HTTP_PAGE_LIMIT_MAX     1000
#define HTTP_PAGE_LIMIT_DEFAULT 100

/* Event bytes (data + metadata) a read page or an SSE batch collects
 * before it stops early; the reply says where to continue. */
#define HTTP_PAGE_BYTES_MAX (16u << 20)

/* Events an SSE connection produces each time the socket takes the
 * previous ones. */
#define HTTP_SSE_PAGE 256

/* An idle SSE connection gets a comment line this often, so proxies and
 * browsers keep it open and a dead peer is noticed. */
#define HTTP_SSE_KEEPALIVE_MS 15000

/* A connection with no traffic for this long is closed (slow or idle
 * clients; SSE connections are kept busy by the keepalive). */
#define HTTP_IDLE_TIMEOUT_S 60

/* /ready answers 503 while this node's applied index is further than this
 * behind the commit index it knows. */
#define HTTP_READY_LAG_MAX 1000

/* Starts the gateway on cfg->http_address (nothing when it is empty).
 * Returns 0, or -1 after logging why. */
int http_start(struct node *n);

/* Stops taking requests: live subscriptions end, waiting reads are
 * answered 503, and the daemon is stopped once every suspended append
 * has been answered (they are answered by consensus_close's failures).
 * Safe to call when the gateway never started. */
void http_stop(struct node *n);

/* Closes the gateway's handles (after http_stop). */
void http_close(struct node *n);

/* Consensus callback: @last_position is applied; wakes subscriptions and
 * waiting reads. */
void http_applied(struct node *n, uint64_t last_position);

#endif /* CAIRN_NODE_HTTP_H */
