/* libcairn's connections: at most one TCP connection per address, made on
 * first use (a name is looked up, a numeric address is used as is) within
 * the connect timeout. Frames to send are appended to an output buffer and
 * written in batches (one write in flight per connection, the next one
 * holding whatever arrived meanwhile); replies are cut out of a read buffer
 * and handed to request.c. Any failure closes the connection and hands its
 * requests to req_conn_failed, which retries them elsewhere. Loop thread
 * only. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* An output buffer this large is given back after its write, so one big
 * append does not pin megabytes per connection. */
#define CONN_KEEP_BYTES (1u << 20)

/* Bytes queued on one connection behind the write in progress: a bound on
 * what asynchronous callers can pile up in front of a slow node (about 60
 * of the largest appends). Past it a request fails CAIRN_EBUSY. */
#define CONN_OUT_BYTES_MAX (1u << 30)

static void maybe_free(struct conn *conn)
{
	if (conn->handles_open > 0 || conn->gai_pending)
		return;
	wire_buf_close(&conn->out);
	wire_buf_close(&conn->wbuf);
	free(conn->rbuf);
	free(conn);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *conn = h->data;

	assert(conn->handles_open > 0);
	conn->handles_open--;
	maybe_free(conn);
}

void conn_close(struct conn *conn, int code, const char *msg, bool fail_reqs)
{
	struct cairn_client *c = conn->c;
	struct conn **p;
	struct req *r;

	if (conn->state == CONN_CLOSING)
		return;
	conn->state = CONN_CLOSING;
	for (p = &c->conns; *p != NULL; p = &(*p)->next) {
		if (*p == conn) {
			*p = conn->next;
			break;
		}
	}
	conn->next = NULL;
	if (conn->gai_pending)
		uv_cancel((uv_req_t *)&conn->gai);
	uv_close((uv_handle_t *)&conn->tcp, on_handle_closed);
	uv_close((uv_handle_t *)&conn->connect_timer, on_handle_closed);

	if (!fail_reqs) {
		while ((r = conn->head) != NULL)
			conn_detach(r);
		return;
	}
	/* The node may be gone: the next attempts go to the next one. */
	if (strcmp(c->addrs[c->current], conn->address) == 0)
		c->current = (c->current + 1) % c->n_addrs;
	while ((r = conn->head) != NULL) {
		conn_detach(r);
		req_conn_failed(r, code, msg);
	}
}

/* Closes @conn after a failure of libuv call @what. */
static void conn_fail_uv(struct conn *conn, int code, const char *what,
			 int uv_err)
{
	char msg[512];

	snprintf(msg, sizeof msg, "%s: %s: %s", conn->address, what,
		 uv_strerror(uv_err));
	conn_close(conn, code, msg, true);
}

/* ------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------ */

static void flush(struct conn *conn);

static void on_written(uv_write_t *w, int status)
{
	struct conn *conn = w->data;

	conn->writing = false;
	if (conn->wbuf.cap > CONN_KEEP_BYTES)
		wire_buf_close(&conn->wbuf);
	else
		wire_buf_reset(&conn->wbuf);
	if (conn->state == CONN_CLOSING)
		return;
	if (status < 0) {
		conn_fail_uv(conn, CAIRN_EUNAVAILABLE, "write", status);
		return;
	}
	flush(conn);
}

static void flush(struct conn *conn)
{
	struct wire_buf tmp;
	uv_buf_t b;
	int rv;

	if (conn->writing || conn->out.len == 0 || conn->state != CONN_READY)
		return;
	assert(conn->wbuf.len == 0);
	tmp = conn->wbuf;
	conn->wbuf = conn->out;
	conn->out = tmp;
	b = uv_buf_init((char *)conn->wbuf.p, (unsigned)conn->wbuf.len);
	conn->write_req.data = conn;
	rv = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &b, 1,
		      on_written);
	if (rv != 0) {
		wire_buf_reset(&conn->wbuf);
		conn_fail_uv(conn, CAIRN_EUNAVAILABLE, "write", rv);
		return;
	}
	conn->writing = true;
}

/* Appends @frame to the output buffer. */
static int queue_bytes(struct conn *conn, const struct wire_buf *frame)
{
	struct wire_buf *b = &conn->out;
	size_t need = b->len + frame->len;

	if (need > CONN_OUT_BYTES_MAX)
		return CAIRN_EBUSY;
	if (need > b->cap) {
		size_t cap = b->cap > 0 ? b->cap : 4096;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return CAIRN_ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, frame->p, frame->len);
	b->len = need;
	return 0;
}

static int queue_frame(struct conn *conn, const struct req *r)
{
	return queue_bytes(conn, &r->frame);
}

int conn_send(struct conn *conn, const struct wire_buf *frame)
{
	int rv;

	if (conn->state != CONN_READY)
		return CAIRN_EUNAVAILABLE;
	rv = queue_bytes(conn, frame);
	if (rv == 0)
		flush(conn);
	return rv;
}

static void send_req(struct conn *conn, struct req *r)
{
	int rv = queue_frame(conn, r);

	if (rv != 0) {
		conn_detach(r);
		client_set_error(&r->err, rv,
				 rv == CAIRN_EBUSY
					 ? "%s: %zu-byte frame: over 1 GiB "
					   "queued for %s"
					 : "%s: %zu-byte frame: out of memory "
					   "(%s)",
				 r->op, r->frame.len, conn->address);
		req_finish(r, rv);
		return;
	}
	r->state = REQ_SENT;
	r->connected_once = true;
}

void conn_attach(struct conn *conn, struct req *r)
{
	assert(r->conn == NULL);
	assert(conn->state != CONN_CLOSING);
	r->conn = conn;
	r->conn_next = NULL;
	r->conn_prev = conn->tail;
	if (conn->tail != NULL)
		conn->tail->conn_next = r;
	else
		conn->head = r;
	conn->tail = r;
	if (conn->state == CONN_READY) {
		send_req(conn, r);
		flush(conn);
	} else {
		r->state = REQ_WAITING;
	}
}

void conn_detach(struct req *r)
{
	struct conn *conn = r->conn;

	assert(conn != NULL);
	if (r->conn_prev != NULL)
		r->conn_prev->conn_next = r->conn_next;
	else
		conn->head = r->conn_next;
	if (r->conn_next != NULL)
		r->conn_next->conn_prev = r->conn_prev;
	else
		conn->tail = r->conn_prev;
	r->conn = NULL;
	r->conn_prev = NULL;
	r->conn_next = NULL;
}

/* ------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *conn = h->data;
	struct wire_header hdr;
	size_t frame_len = 0;
	size_t want = CLIENT_READ_CHUNK;

	(void)suggested;
	/* Room for the rest of a frame whose header is in, so a large reply
	 * arrives in few reads; its size was bounded by the header check. */
	if (wire_frame_peek(conn->rbuf, conn->rlen, &hdr, &frame_len) ==
		    WIRE_NEED_MORE &&
	    frame_len > conn->rlen + want)
		want = frame_len - conn->rlen;
	if (conn->rcap - conn->rlen < want) {
		size_t cap = conn->rlen + want;
		uint8_t *p = realloc(conn->rbuf, cap);

		if (p == NULL) {
			*buf = uv_buf_init(NULL, 0); /* read_cb: UV_ENOBUFS */
			return;
		}
		conn->rbuf = p;
		conn->rcap = cap;
	}
	*buf = uv_buf_init((char *)conn->rbuf + conn->rlen,
			   (unsigned)(conn->rcap - conn->rlen));
}

/* An ERROR with request id 0 concerns the whole connection (a node at its
 * connection limit says EBUSY so, then closes): every request on it is
 * retried or failed as after a lost connection, with the node's reason. */
static void conn_error_zero(struct conn *conn, const uint8_t *body, size_t len)
{
	struct wire_err e;
	char msg[512];
	int code = CAIRN_EPROTOCOL;

	if (wire_decode_error(body, len, &e) == 0) {
		code = (int)e.code;
		snprintf(msg, sizeof msg, "%s: %.*s", conn->address,
			 e.message.len > 0 ? (int)e.message.len
					   : (int)strlen(cairn_strerror(code)),
			 e.message.len > 0 ? (const char *)e.message.p
					   : cairn_strerror(code));
	} else {
		snprintf(msg, sizeof msg, "%s: malformed ERROR from the node",
			 conn->address);
	}
	conn_close(conn, code, msg, true);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *conn = s->data;
	size_t off = 0;

	(void)buf;
	if (conn->state == CONN_CLOSING)
		return;
	if (nread == UV_EOF) {
		char msg[512];

		snprintf(msg, sizeof msg, "%s: connection closed by the node",
			 conn->address);
		conn_close(conn, CAIRN_EUNAVAILABLE, msg, true);
		return;
	}
	if (nread < 0) {
		conn_fail_uv(conn, CAIRN_EUNAVAILABLE, "read", (int)nread);
		return;
	}
	conn->rlen += (size_t)nread;
	for (;;) {
		struct wire_header h;
		size_t frame_len;
		int rv;

		rv = wire_frame_peek(conn->rbuf + off, conn->rlen - off, &h,
				     &frame_len);
		if (rv == WIRE_NEED_MORE)
			break;
		if (rv != 0) {
			char msg[512];

			snprintf(msg, sizeof msg,
				 "%s: malformed frame header from the node",
				 conn->address);
			conn_close(conn, CAIRN_EPROTOCOL, msg, true);
			return;
		}
		if (h.type == WIRE_ERROR && h.request_id == 0) {
			conn_error_zero(conn,
					conn->rbuf + off + WIRE_HEADER_BYTES,
					h.body_len);
			return;
		}
		req_reply(conn, &h, conn->rbuf + off + WIRE_HEADER_BYTES);
		off += frame_len;
		/* A reply may have made a request resend on this connection,
		 * and a failed write closes it: nothing more to parse then
		 * (the buffer lives until the close completes). */
		if (conn->state == CONN_CLOSING)
			return;
	}
	if (off > 0) {
		memmove(conn->rbuf, conn->rbuf + off, conn->rlen - off);
		conn->rlen -= off;
	}
	if (conn->rlen == 0 && conn->rcap > 4 * CLIENT_READ_CHUNK) {
		free(conn->rbuf);
		conn->rbuf = NULL;
		conn->rcap = 0;
	}
}

/* ------------------------------------------------------------------------
 * Connecting
 * ------------------------------------------------------------------------ */

static void on_connected(uv_connect_t *creq, int status)
{
	struct conn *conn = creq->data;
	struct req *r;
	int rv;

	if (conn->state == CONN_CLOSING)
		return;
	if (status < 0) {
		conn_fail_uv(conn, CAIRN_ECONNECT, "connect", status);
		return;
	}
	uv_timer_stop(&conn->connect_timer);
	uv_tcp_nodelay(&conn->tcp, 1);
	rv = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
	if (rv != 0) {
		conn_fail_uv(conn, CAIRN_ECONNECT, "read start", rv);
		return;
	}
	conn->state = CONN_READY;
	for (r = conn->head; r != NULL;) {
		struct req *next = r->conn_next;

		send_req(conn, r);
		r = next;
	}
	flush(conn);
}

static int start_connect(struct conn *conn, const struct sockaddr *sa)
{
	conn->state = CONN_CONNECTING;
	conn->connect_req.data = conn;
	return uv_tcp_connect(&conn->connect_req, &conn->tcp, sa, on_connected);
}

static void on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
	struct conn *conn = gai->data;
	int rv;

	conn->gai_pending = false;
	if (conn->state == CONN_CLOSING) {
		uv_freeaddrinfo(res);
		maybe_free(conn);
		return;
	}
	if (status < 0) {
		conn_fail_uv(conn, CAIRN_ECONNECT, "resolve", status);
		return;
	}
	rv = start_connect(conn, res->ai_addr);
	uv_freeaddrinfo(res);
	if (rv != 0)
		conn_fail_uv(conn, CAIRN_ECONNECT, "connect", rv);
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct conn *conn = t->data;
	char msg[512];

	snprintf(msg, sizeof msg, "%s: connect timed out after %u ms",
		 conn->address, conn->c->connect_timeout_ms);
	conn_close(conn, CAIRN_ECONNECT, msg, true);
}

struct conn *conn_get(struct cairn_client *c, const char *address, char *why)
{
	struct conn *conn;
	char host[CLIENT_ADDRESS_LEN_MAX + 1];
	char port_text[8];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct addrinfo hints;
	int port;
	int rv;

	for (conn = c->conns; conn != NULL; conn = conn->next) {
		if (strcmp(conn->address, address) == 0)
			return conn;
	}
	if (client_address_split(address, host, &port) != 0) {
		snprintf(why, 256, "%s: not a host:port address", address);
		return NULL;
	}
	conn = calloc(1, sizeof *conn);
	if (conn == NULL) {
		snprintf(why, 256, "%s: out of memory", address);
		return NULL;
	}
	conn->c = c;
	snprintf(conn->address, sizeof conn->address, "%s", address);
	wire_buf_init(&conn->out);
	wire_buf_init(&conn->wbuf);
	rv = uv_tcp_init(&c->loop, &conn->tcp);
	if (rv != 0) {
		free(conn);
		snprintf(why, 256, "%s: %s", address, uv_strerror(rv));
		return NULL;
	}
	conn->tcp.data = conn;
	uv_timer_init(&c->loop, &conn->connect_timer);
	conn->connect_timer.data = conn;
	conn->handles_open = 2;
	conn->next = c->conns;
	c->conns = conn;
	uv_timer_start(&conn->connect_timer, on_connect_timeout,
		       c->connect_timeout_ms, 0);

	if (uv_ip4_addr(host, port, &sin) == 0) {
		rv = start_connect(conn, (const struct sockaddr *)&sin);
	} else if (uv_ip6_addr(host, port, &sin6) == 0) {
		rv = start_connect(conn, (const struct sockaddr *)&sin6);
	} else {
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		snprintf(port_text, sizeof port_text, "%d", port);
		conn->state = CONN_RESOLVING;
		conn->gai.data = conn;
		rv = uv_getaddrinfo(&c->loop, &conn->gai, on_resolved, host,
				    port_text, &hints);
		if (rv == 0)
			conn->gai_pending = true;
	}
	if (rv != 0) {
		snprintf(why, 256, "%s: %s", address, uv_strerror(rv));
		conn_close(conn, CAIRN_ECONNECT, why, false);
		return NULL;
	}
	return conn;
}
