/* node/server.c: the binary client protocol server of cairnd (see
 * docs/protocol.md). It accepts connections on the client address, cuts
 * the bytes each one sends into frames (wire_frame_peek), hands every whole
 * frame to handlers.c, and writes the replies back through a per-connection
 * write queue.
 *
 * Bounds, all in node.h: at most --max-connections clients (others are
 * answered WIRE_EBUSY and closed); per connection NODE_CONN_REQUESTS_MAX
 * requests in flight, NODE_CONN_REQUEST_BYTES_MAX bytes held by them and
 * NODE_CONN_UNSENT_BYTES_MAX bytes of replies not yet written: past any of
 * them the node stops reading from that connection until it drains. While
 * consensus says its pipeline is full, it stops reading from every
 * connection. A frame header is validated before any byte of its body is
 * buffered beyond the resting read buffer, so a length prefix alone cannot
 * make the node allocate.
 *
 * A connection's life: open (reading) -> close_after_flush (a malformed
 * frame or shutdown: no more reading, replies already encoded are written)
 * -> closing (uv_close issued: replies of requests still in flight are
 * dropped) -> freed once the handle is closed and no request holds a
 * reference. Requests hold references (conn_request_begin) so a connection
 * is never freed while consensus may still call back for one of them.
 * Subscriptions (subs.c) hold none: they end, silently, when the
 * connection starts closing (subs_conn_closed). */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"

/* The little-endian u32/u64 at @p (header fields, for logs and for the
 * request id of a header that failed to decode). */
static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* ------------------------------------------------------------------------
 * Connection state
 * ------------------------------------------------------------------------ */

static void conn_close(struct node_conn *c);
static void conn_process(struct node_conn *c);
static void conn_update_reading(struct node_conn *c);

static size_t conn_unsent(const struct node_conn *c)
{
	return c->out.len + c->wbuf.len;
}

/* True when the connection must not take more requests for now. */
static bool conn_blocked(const struct node_conn *c)
{
	const struct node *n = c->node;

	return c->n_requests >= NODE_CONN_REQUESTS_MAX ||
	       c->request_bytes >= NODE_CONN_REQUEST_BYTES_MAX ||
	       n->request_bytes >= NODE_REQUEST_BYTES_MAX ||
	       conn_unsent(c) >= NODE_CONN_UNSENT_BYTES_MAX ||
	       n->pipeline_paused || n->state >= NODE_DRAINING;
}

/* True when the connection takes no input at all any more. */
static bool conn_done(const struct node_conn *c)
{
	return c->closing || c->close_after_flush;
}

static void conn_unref(struct node_conn *c)
{
	struct node *n = c->node;

	assert(c->refs > 0);
	if (--c->refs > 0)
		return;
	assert(c->handle_closed);
	assert(c->n_requests == 0);
	free(c);
	n->n_conn_structs--;
	if (n->state == NODE_DRAINING && n->n_conn_structs == 0 &&
	    n->n_rejecting == 0)
		node_stopped(n);
}

static void on_kick(uv_idle_t *idle)
{
	struct node *n = idle->data;

	while (n->kick_head != NULL) {
		struct node_conn *c = n->kick_head;

		n->kick_head = c->kick_next;
		c->kick_next = NULL;
		c->kick_queued = false;
		if (!conn_done(c)) {
			conn_process(c);
			conn_update_reading(c);
		}
		conn_unref(c); /* taken by conn_kick */
	}
	/* The last unref may have stopped the node and closed this handle. */
	if (!uv_is_closing((uv_handle_t *)idle))
		uv_idle_stop(idle);
}

/* Schedules conn_process() and reading for the next loop iteration: used
 * when a connection may be unblocked from a context (a consensus callback,
 * a write callback) where taking new requests at once would re-enter. */
static void conn_kick(struct node_conn *c)
{
	struct node *n = c->node;

	if (c->kick_queued || conn_done(c))
		return;
	c->kick_queued = true;
	c->refs++;
	c->kick_next = n->kick_head;
	n->kick_head = c;
	uv_idle_start(&n->kick, on_kick);
}

/* Resumes a connection that is not reading and no longer blocked. */
static void conn_maybe_resume(struct node_conn *c)
{
	if (!c->reading && !conn_done(c) && !conn_blocked(c))
		conn_kick(c);
}

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
	struct node_conn *c = req->data;

	c->writing = false;
	if (c->closing)
		return; /* cancelled by uv_close, or after a failure */
	if (status < 0) {
		log_debug("connection_write_failed", "peer=%s error=\"%s\"",
			  c->peer, uv_strerror(status));
		conn_close(c);
		return;
	}
	if (c->wbuf.cap > NODE_WRITE_BUFFER_KEEP_BYTES) {
		wire_buf_close(&c->wbuf);
		wire_buf_init(&c->wbuf);
	} else {
		wire_buf_reset(&c->wbuf);
	}
	if (c->out.len > 0) {
		conn_flush(c);
		if (c->closing)
			return;
	} else if (c->close_after_flush) {
		conn_close(c);
		return;
	}
	conn_maybe_resume(c);
}

void conn_flush(struct node_conn *c)
{
	struct wire_buf tmp;
	uv_buf_t buf;
	int rv;

	if (c->writing || c->closing || c->out.len == 0)
		return;
	/* Hand out's bytes to the socket; new replies go to the other
	 * buffer meanwhile. */
	assert(c->wbuf.len == 0);
	tmp = c->wbuf;
	c->wbuf = c->out;
	c->out = tmp;
	assert(c->wbuf.len <= UINT32_MAX);
	buf = uv_buf_init((char *)c->wbuf.p, (unsigned)c->wbuf.len);
	c->write_req.data = c;
	rv = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
	if (rv != 0) {
		log_debug("connection_write_failed", "peer=%s error=\"%s\"",
			  c->peer, uv_strerror(rv));
		conn_close(c);
		return;
	}
	c->writing = true;
}

struct wire_buf *conn_out(struct node_conn *c)
{
	return conn_done(c) ? NULL : &c->out;
}

/* Encodes an error reply into @b; the caller flushes. */
static void encode_error(struct wire_buf *b, uint64_t request_id, uint32_t code,
			 const char *message)
{
	struct wire_err e;
	size_t len = message != NULL ? strlen(message) : 0;

	memset(&e, 0, sizeof e);
	e.code = code;
	if (len > WIRE_STRING_MAX)
		len = WIRE_STRING_MAX;
	e.message.p = (const uint8_t *)message;
	e.message.len = (uint32_t)len;
	if (len == 0)
		e.message.p = NULL;
	if (wire_encode_error(b, request_id, &e) != 0)
		log_error("reply_failed", "error=\"out of memory\"");
}

void conn_reply_error(struct node_conn *c, uint64_t request_id, uint32_t code,
		      const char *message)
{
	struct wire_buf *b = conn_out(c);

	if (b == NULL)
		return;
	encode_error(b, request_id, code, message);
	conn_flush(c);
}

/* Replies WIRE_EMALFORMED and closes the connection once the reply is
 * written: after a bad frame the byte stream cannot be trusted. */
static void conn_fail(struct node_conn *c, uint64_t request_id,
		      const char *message)
{
	conn_reply_error(c, request_id, WIRE_EMALFORMED, message);
	c->close_after_flush = true;
	conn_update_reading(c);
	if (!c->writing && c->out.len == 0)
		conn_close(c);
}

/* ------------------------------------------------------------------------
 * Requests' references
 * ------------------------------------------------------------------------ */

void conn_request_begin(struct node_conn *c, size_t bytes)
{
	c->refs++;
	c->n_requests++;
	c->request_bytes += bytes;
	c->node->request_bytes += bytes;
}

size_t conn_request_grow(struct node_conn *c, size_t bytes)
{
	assert(c->n_requests > 0);
	c->request_bytes += bytes;
	c->node->request_bytes += bytes;
	return bytes;
}

void conn_request_end(struct node_conn *c, size_t bytes)
{
	struct node *n = c->node;
	bool was_full = n->request_bytes >= NODE_REQUEST_BYTES_MAX;

	assert(c->n_requests > 0);
	assert(c->request_bytes >= bytes);
	assert(n->request_bytes >= bytes);
	c->n_requests--;
	c->request_bytes -= bytes;
	n->request_bytes -= bytes;
	if (was_full && n->request_bytes < NODE_REQUEST_BYTES_MAX) {
		/* Every connection may have stopped on the node-wide bound. */
		for (struct node_conn *o = n->conns; o != NULL; o = o->next)
			if (o != c && !o->closing)
				conn_maybe_resume(o);
	}
	if (!c->closing)
		conn_maybe_resume(c);
	conn_unref(c);
}

/* ------------------------------------------------------------------------
 * Reading and framing
 * ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct node_conn *c = h->data;

	(void)suggested;
	/* conn_update_reading starts reading only with room left. */
	assert(c->rlen < c->rcap);
	*buf = uv_buf_init((char *)c->rbuf + c->rlen,
			   (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct node_conn *c = s->data;

	(void)buf;
	if (nread == 0)
		return; /* EAGAIN */
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("connection_read_failed",
				  "peer=%s error=\"%s\"", c->peer,
				  uv_strerror((int)nread));
		conn_close(c);
		return;
	}
	assert((size_t)nread <= c->rcap - c->rlen);
	c->rlen += (size_t)nread;
	conn_process(c);
	conn_update_reading(c);
}

/* Starts or stops reading as the connection's state says. */
static void conn_update_reading(struct node_conn *c)
{
	bool want = !conn_done(c) && !conn_blocked(c);

	if (want && c->rlen == c->rcap) {
		/* Whole frames wait in the buffer: take them first. */
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->reading = false;
		}
		conn_kick(c);
		return;
	}
	if (want && !c->reading) {
		int rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc,
				       on_read);

		if (rv != 0) {
			log_debug("connection_read_failed",
				  "peer=%s error=\"%s\"", c->peer,
				  uv_strerror(rv));
			conn_close(c);
			return;
		}
		c->reading = true;
	} else if (!want && c->reading && !c->closing) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
		if (!conn_done(c))
			log_debug("connection_paused",
				  "peer=%s requests=%u request_bytes=%zu "
				  "unsent_bytes=%zu pipeline_full=%s",
				  c->peer, c->n_requests, c->request_bytes,
				  conn_unsent(c),
				  c->node->pipeline_paused ? "true" : "false");
	}
}

/* Sizes the read buffer for what it holds after a compaction: the resting
 * size, or the whole frame that a validated header announces. */
static int conn_size_rbuf(struct node_conn *c)
{
	size_t want = NODE_READ_BUFFER_BYTES;
	uint8_t *p;

	if (c->rlen >= WIRE_HEADER_BYTES) {
		struct wire_header h;

		if (wire_header_decode(c->rbuf, &h) == WIRE_OK &&
		    WIRE_HEADER_BYTES + (size_t)h.body_len > want)
			want = WIRE_HEADER_BYTES + (size_t)h.body_len;
	}
	if (want < c->rlen)
		want = c->rlen; /* complete frames wait (blocked) */
	if (want == c->rcap)
		return 0;
	if (want < c->rcap && want != NODE_READ_BUFFER_BYTES)
		return 0; /* shrink only back to the resting size */
	p = realloc(c->rbuf, want);
	if (p == NULL)
		return want > c->rcap ? -1 : 0;
	c->rbuf = p;
	c->rcap = want;
	return 0;
}

/* Takes the whole frames in the read buffer, as long as the connection is
 * not blocked. */
static void conn_process(struct node_conn *c)
{
	size_t off = 0;

	if (c->processing || conn_done(c))
		return;
	c->processing = true;
	while (!conn_done(c) && !conn_blocked(c)) {
		const uint8_t *p = c->rbuf + off;
		size_t avail = c->rlen - off;
		struct wire_header h;
		size_t frame_len;
		int rv;

		rv = wire_frame_peek(p, avail, &h, &frame_len);
		if (rv == WIRE_NEED_MORE)
			break;
		if (rv != WIRE_OK) {
			uint32_t body_len = get_le32(p);
			char why[96];

			if (body_len > WIRE_BODY_BYTES_MAX)
				snprintf(why, sizeof why,
					 "body length %" PRIu32
					 " over the limit of %u bytes",
					 body_len, WIRE_BODY_BYTES_MAX);
			else
				snprintf(why, sizeof why,
					 "bad frame header (flags %u)",
					 (unsigned)(p[6] | p[7] << 8));
			log_warn("malformed_frame", "peer=%s reason=\"%s\"",
				 c->peer, why);
			conn_fail(c,
				  avail >= WIRE_HEADER_BYTES ? get_le64(p + 8)
							     : 0,
				  why);
			break;
		}
		assert(frame_len == WIRE_HEADER_BYTES + (size_t)h.body_len);
		assert(frame_len <= avail);
		rv = handlers_dispatch(c, &h, p + WIRE_HEADER_BYTES);
		off += frame_len;
		if (rv != 0) {
			log_warn("malformed_frame",
				 "peer=%s reason=\"body of type 0x%02x does "
				 "not decode\" request_id=%" PRIu64,
				 c->peer, (unsigned)h.type, h.request_id);
			conn_fail(c, h.request_id, "malformed message body");
			break;
		}
	}
	if (!conn_done(c)) {
		if (off > 0) {
			memmove(c->rbuf, c->rbuf + off, c->rlen - off);
			c->rlen -= off;
		}
		if (conn_size_rbuf(c) != 0) {
			log_error("connection_failed",
				  "peer=%s reason=\"out of memory for a "
				  "frame\"",
				  c->peer);
			conn_close(c);
		}
	}
	c->processing = false;
}

/* ------------------------------------------------------------------------
 * Opening and closing connections
 * ------------------------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
	struct node_conn *c = h->data;

	c->handle_closed = true;
	free(c->rbuf);
	c->rbuf = NULL;
	c->rlen = 0;
	c->rcap = 0;
	wire_buf_close(&c->out);
	wire_buf_close(&c->wbuf);
	conn_unref(c); /* the handle's reference */
}

static void conn_close(struct node_conn *c)
{
	struct node *n = c->node;

	if (c->closing)
		return;
	c->closing = true;
	c->reading = false;
	subs_conn_closed(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		n->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = NULL;
	assert(n->n_conns > 0);
	n->n_conns--;
	log_debug("connection_closed", "peer=%s requests_in_flight=%u", c->peer,
		  c->n_requests);
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Writes "host:port" of @addr into @out. */
static void format_address(const struct sockaddr_storage *addr, char *out,
			   size_t len)
{
	char host[64];

	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)addr;

		uv_ip4_name(a, host, sizeof host);
		snprintf(out, len, "%s:%u", host, ntohs(a->sin_port));
	} else if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a =
			(const struct sockaddr_in6 *)addr;

		uv_ip6_name(a, host, sizeof host);
		snprintf(out, len, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(out, len, "unknown");
	}
}

static void peer_name(uv_tcp_t *tcp, char *out, size_t len)
{
	struct sockaddr_storage addr;
	int addr_len = sizeof addr;

	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&addr, &addr_len) != 0)
		snprintf(out, len, "unknown");
	else
		format_address(&addr, out, len);
}

/* An over-limit connection: answered WIRE_EBUSY, then closed. */
struct reject {
	struct node *node;    /* borrowed */
	uv_tcp_t tcp;         /* the accepted socket */
	uv_write_t write_req; /* the EBUSY reply */
	struct wire_buf buf;  /* owned: its bytes */
};

static void on_reject_closed(uv_handle_t *h)
{
	struct reject *r = h->data;
	struct node *n = r->node;

	wire_buf_close(&r->buf);
	free(r);
	n->n_rejecting--;
	if (n->state == NODE_DRAINING && n->n_conn_structs == 0 &&
	    n->n_rejecting == 0)
		node_stopped(n);
}

static void on_reject_written(uv_write_t *req, int status)
{
	struct reject *r = req->data;

	(void)status;
	uv_close((uv_handle_t *)&r->tcp, on_reject_closed);
}

static void reject(struct node *n, uv_stream_t *server)
{
	struct reject *r = calloc(1, sizeof *r);
	char peer[64];
	char msg[96];
	uv_buf_t buf;

	if (r == NULL) {
		log_error("accept_failed", "error=\"out of memory\"");
		return;
	}
	r->node = n;
	wire_buf_init(&r->buf);
	uv_tcp_init(n->loop, &r->tcp);
	r->tcp.data = r;
	n->n_rejecting++;
	if (uv_accept(server, (uv_stream_t *)&r->tcp) != 0) {
		uv_close((uv_handle_t *)&r->tcp, on_reject_closed);
		return;
	}
	peer_name(&r->tcp, peer, sizeof peer);
	log_warn("connection_rejected",
		 "peer=%s reason=\"connection limit\" max_connections=%u", peer,
		 n->cfg->max_connections);
	snprintf(msg, sizeof msg, "too many connections (limit %u)",
		 n->cfg->max_connections);
	encode_error(&r->buf, 0, WIRE_EBUSY, msg);
	buf = uv_buf_init((char *)r->buf.p, (unsigned)r->buf.len);
	r->write_req.data = r;
	if (r->buf.len == 0 || uv_write(&r->write_req, (uv_stream_t *)&r->tcp,
					&buf, 1, on_reject_written) != 0)
		uv_close((uv_handle_t *)&r->tcp, on_reject_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct node *n = server->data;
	struct node_conn *c;
	int rv;

	if (status < 0) {
		log_warn("accept_failed", "error=\"%s\"", uv_strerror(status));
		return;
	}
	if (n->n_conns >= n->cfg->max_connections) {
		reject(n, server);
		return;
	}
	c = calloc(1, sizeof *c);
	if (c != NULL)
		c->rbuf = malloc(NODE_READ_BUFFER_BYTES);
	if (c == NULL || c->rbuf == NULL) {
		free(c);
		log_error("accept_failed", "error=\"out of memory\"");
		reject(n, server);
		return;
	}
	c->node = n;
	c->rcap = NODE_READ_BUFFER_BYTES;
	wire_buf_init(&c->out);
	wire_buf_init(&c->wbuf);
	uv_tcp_init(n->loop, &c->tcp);
	c->tcp.data = c;
	c->refs = 1; /* the handle */
	n->n_conn_structs++;
	/* Listed and counted before anything can close it. */
	c->next = n->conns;
	if (n->conns != NULL)
		n->conns->prev = c;
	n->conns = c;
	n->n_conns++;
	rv = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (rv != 0) {
		log_warn("accept_failed", "error=\"%s\"", uv_strerror(rv));
		snprintf(c->peer, sizeof c->peer, "unknown");
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	peer_name(&c->tcp, c->peer, sizeof c->peer);
	log_debug("connection_opened", "peer=%s connections=%u", c->peer,
		  n->n_conns);
	conn_update_reading(c);
}

/* ------------------------------------------------------------------------
 * Listener and node-wide control
 * ------------------------------------------------------------------------ */

static void on_flush_timeout(uv_timer_t *t)
{
	struct node *n = t->data;

	log_warn("shutdown_flush_timeout",
		 "connections=%u reason=\"replies not written in %d ms\"",
		 n->n_conns, NODE_SHUTDOWN_FLUSH_MS);
	while (n->conns != NULL)
		conn_close(n->conns);
}

int server_init(struct node *n)
{
	int rv;

	rv = uv_idle_init(n->loop, &n->kick);
	if (rv != 0)
		return rv;
	n->kick.data = n;
	rv = uv_timer_init(n->loop, &n->flush_timer);
	if (rv != 0) {
		uv_close((uv_handle_t *)&n->kick, NULL);
		return rv;
	}
	n->flush_timer.data = n;
	return 0;
}

/* Splits HOST:PORT (HOST may be [v6]) into @host and @port. */
static bool split_address(const char *address, char *host, size_t host_len,
			  char *port, size_t port_len)
{
	const char *colon = strrchr(address, ':');
	const char *h = address;
	size_t len;

	if (colon == NULL)
		return false;
	len = (size_t)(colon - address);
	if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
		h++;
		len -= 2;
	}
	if (len == 0 || len >= host_len || strlen(colon + 1) >= port_len)
		return false;
	memcpy(host, h, len);
	host[len] = '\0';
	strcpy(port, colon + 1);
	return true;
}

int server_listen(struct node *n)
{
	const char *address = n->cfg->client_address;
	struct addrinfo hints;
	uv_getaddrinfo_t req;
	char host[NODE_ADDRESS_MAX];
	char port[16];
	char bound[80];
	struct sockaddr_storage addr;
	int addr_len = sizeof addr;
	int rv;

	if (!split_address(address, host, sizeof host, port, sizeof port)) {
		log_error("listen_failed", "address=%s error=\"bad address\"",
			  address);
		return UV_EINVAL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	/* Synchronous (no callback): this runs once, before serving. */
	rv = uv_getaddrinfo(n->loop, &req, NULL, host, port, &hints);
	if (rv != 0) {
		log_error("listen_failed", "address=%s error=\"resolve: %s\"",
			  address, uv_strerror(rv));
		return rv;
	}
	rv = uv_tcp_init(n->loop, &n->listener);
	if (rv != 0) {
		uv_freeaddrinfo(req.addrinfo);
		log_error("listen_failed", "address=%s error=\"%s\"", address,
			  uv_strerror(rv));
		return rv;
	}
	n->listener.data = n;
	n->listener_open = true;
	rv = uv_tcp_bind(&n->listener, req.addrinfo->ai_addr, 0);
	uv_freeaddrinfo(req.addrinfo);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&n->listener, NODE_LISTEN_BACKLOG,
			       on_connection);
	if (rv != 0) {
		log_error("listen_failed", "address=%s error=\"bind: %s\"",
			  address, uv_strerror(rv));
		server_stop_accepting(n);
		return rv;
	}
	if (uv_tcp_getsockname(&n->listener, (struct sockaddr *)&addr,
			       &addr_len) == 0)
		format_address(&addr, bound, sizeof bound);
	else
		snprintf(bound, sizeof bound, "%s", address);
	log_info("listening", "client_address=%s bound=%s", address, bound);
	return 0;
}

void server_stop_accepting(struct node *n)
{
	if (!n->listener_open)
		return;
	n->listener_open = false;
	uv_close((uv_handle_t *)&n->listener, NULL);
}

void server_drain(struct node *n)
{
	struct node_conn *c = n->conns;

	assert(n->state == NODE_DRAINING);
	server_stop_accepting(n);
	while (c != NULL) {
		struct node_conn *next = c->next;

		c->close_after_flush = true;
		conn_update_reading(c);
		if (!c->writing && c->out.len == 0)
			conn_close(c);
		c = next;
	}
	if (n->n_conn_structs == 0 && n->n_rejecting == 0) {
		node_stopped(n);
		return;
	}
	uv_timer_start(&n->flush_timer, on_flush_timeout,
		       NODE_SHUTDOWN_FLUSH_MS, 0);
}

void server_close(struct node *n)
{
	server_stop_accepting(n);
	uv_close((uv_handle_t *)&n->kick, NULL);
	uv_close((uv_handle_t *)&n->flush_timer, NULL);
}

void server_check_pipeline(struct node *n)
{
	if (n->pipeline_paused || !consensus_pipeline_full(&n->cons))
		return;
	n->pipeline_paused = true;
	log_debug("pipeline_full", "connections=%u", n->n_conns);
	for (struct node_conn *c = n->conns; c != NULL; c = c->next)
		conn_update_reading(c);
}

void server_pipeline_ready(struct node *n)
{
	if (!n->pipeline_paused)
		return;
	n->pipeline_paused = false;
	log_debug("pipeline_ready", "connections=%u", n->n_conns);
	for (struct node_conn *c = n->conns; c != NULL; c = c->next)
		conn_maybe_resume(c);
}
