/* node/subs.h: subscriptions over the binary protocol (docs/protocol.md,
 * "Subscriptions"). A client's SUBSCRIBE names a stream, a category or the
 * global log (optionally one event type) and where to start; the node then
 * pushes the matching events it has applied, in position order, as
 * SUB_EVENTS frames, sends SUB_LIVE once the subscriber has caught up, and
 * goes on with every event applied afterwards, until UNSUBSCRIBE, the
 * connection's end, a slow consumer or shutdown (SUB_END).
 *
 * Nothing is buffered per subscriber but the frames on its connection: each
 * subscription keeps only the position (or stream version) it reads next
 * and the credit its client granted, and reads the store from there when
 * it runs. An applied entry only marks waiting subscriptions runnable
 * (subs_applied); an idle handle then serves runnable ones a page at a
 * time, round robin, within a per-iteration budget, so neither a writer nor
 * the loop waits for subscribers.
 *
 * Used by handlers.c (dispatch, applied notifications), server.c (a
 * connection's close), main.c (init and close) and the HTTP metrics page
 * (subs_stats). Everything runs on the node's loop. */
#ifndef CAIRN_NODE_SUBS_H
#define CAIRN_NODE_SUBS_H

#include <stdint.h>

struct node;
struct node_conn;
struct wire_header;

/* Allocates n->subs and its idle handle on n->loop. Returns 0 or a
 * negative uv error code (then n->subs stays NULL). */
int subs_init(struct node *n);

/* Ends every subscription with SUB_END (reason SHUTDOWN), refuses new ones
 * from now on, and releases n->subs once its handle has closed (n->subs is
 * NULL on return). A no-op when n->subs is NULL. */
void subs_close(struct node *n);

/* Handles a SUBSCRIBE, CREDIT or UNSUBSCRIBE frame whose header was
 * validated; @body is borrowed. Returns 0, or WIRE_EMALFORMED when the body
 * did not decode (the caller replies and closes). */
int subs_handle(struct node_conn *c, const struct wire_header *h,
		const uint8_t *body);

/* Consensus applied up to @last_position: wakes the subscriptions that
 * wait for new events. Constant work per waiting subscription, no I/O. */
void subs_applied(struct node *n, uint64_t last_position);

/* The connection is closing: its subscriptions end without a frame. */
void subs_conn_closed(struct node_conn *c);

/* For /metrics: the number of subscriptions on this node, and the largest
 * lag among them, in positions: the node's last applied position minus the
 * last position a subscription has been served up to (pushed, or found
 * nothing matching up to). Both 0 when there are none. */
void subs_stats(struct node *n, uint64_t *subscribers,
		uint64_t *max_lag_events);

#endif /* CAIRN_NODE_SUBS_H */
