/* The wire codec of the binary client protocol (docs/protocol.md): frame
 * headers, the encoders that append whole frames to a growable buffer, and
 * the decoders that turn a frame body into borrowed views. The node (cairnd)
 * decodes requests and encodes replies with it; libcairn does the opposite.
 *
 * Decoders trust nothing: every length is checked against the bytes that
 * remain before it is used, every count against the smallest size its items
 * can have before anything is allocated from it, and a body must be
 * consumed exactly. Encoders refuse what their decoder would reject, so any
 * frame they produce decodes. Nothing here touches a socket or logs. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Smallest encodings, used to bound counts before anything is walked or
 * allocated: a str16 or blob32 can be empty, nothing else shrinks. */
#define STR16_MAX             UINT16_MAX
#define CONSISTENCY_BYTES     (1 + 8)
#define APPEND_FIXED_BYTES    (1 + 16 + 8 + 4)
#define PART_MIN_BYTES        (2 + 1 + 8 + 4)
#define EVENT_IN_MIN_BYTES    (16 + 2 + 2 + 8 + 4 + 4)
#define PART_RESULT_BYTES     (4 * 8)
#define EVENTS_FIXED_BYTES    (8 + 1 + 4)
#define EVENT_MIN_BYTES       (8 + 8 + 2 + 16 + 2 + 2 + 8 + 8 + 1 + 16 + 8 + 4 + 4)
#define STATUS_FIXED_BYTES    (8 + 1 + 8 + 8 + 8 + 8 + 8 + 2 + 4)
#define MEMBER_MIN_BYTES      (8 + 1 + 2 + 2 + 2)
#define ERROR_FIXED_BYTES     (4 + 4 + 8 + 2 + 2)
#define SUBSCRIBE_FIXED_BYTES (1 + 1 + 8 + 2 + 2 + 4)
#define SUB_END_FIXED_BYTES   (4 + 8 + 2)
#define CLIENT_BYTES          (1 + 16 + 8)
#define BUF_FIRST_CAP         256

const char *wire_strerror(int code)
{
	switch (code) {
#define WIRE_ERROR_CASE(name, value, msg) \
	case value:                       \
		return msg;
		WIRE_ERRORS(WIRE_ERROR_CASE)
#undef WIRE_ERROR_CASE
	default:
		return "unknown error";
	}
}

static bool error_code_known(uint32_t code)
{
	switch (code) {
#define WIRE_ERROR_KNOWN(name, value, msg) case value:
		WIRE_ERRORS(WIRE_ERROR_KNOWN)
#undef WIRE_ERROR_KNOWN
		return true;
	default:
		return false;
	}
}

const char *wire_type_name(unsigned type)
{
	switch (type) {
	case WIRE_APPEND:
		return "APPEND";
	case WIRE_READ_STREAM:
		return "READ_STREAM";
	case WIRE_READ_ALL:
		return "READ_ALL";
	case WIRE_HEAD:
		return "HEAD";
	case WIRE_STATUS:
		return "STATUS";
	case WIRE_CHECKPOINT_GET:
		return "CHECKPOINT_GET";
	case WIRE_CHECKPOINT_SET:
		return "CHECKPOINT_SET";
	case WIRE_SNAPSHOT_PUT:
		return "SNAPSHOT_PUT";
	case WIRE_SNAPSHOT_GET:
		return "SNAPSHOT_GET";
	case WIRE_CHECKPOINT:
		return "CHECKPOINT";
	case WIRE_STATE_OK:
		return "STATE_OK";
	case WIRE_SNAPSHOT:
		return "SNAPSHOT";
	case WIRE_MEMBER_CHANGE:
		return "MEMBER_CHANGE";
	case WIRE_LEADER_TRANSFER:
		return "LEADER_TRANSFER";
	case WIRE_MEMBERS:
		return "MEMBERS";
	case WIRE_LEADER:
		return "LEADER";
	case WIRE_SUBSCRIBE:
		return "SUBSCRIBE";
	case WIRE_CREDIT:
		return "CREDIT";
	case WIRE_UNSUBSCRIBE:
		return "UNSUBSCRIBE";
	case WIRE_APPEND_OK:
		return "APPEND_OK";
	case WIRE_EVENTS:
		return "EVENTS";
	case WIRE_HEAD_OK:
		return "HEAD_OK";
	case WIRE_STATUS_OK:
		return "STATUS_OK";
	case WIRE_SUB_EVENTS:
		return "SUB_EVENTS";
	case WIRE_SUB_LIVE:
		return "SUB_LIVE";
	case WIRE_SUB_END:
		return "SUB_END";
	case WIRE_ERROR:
		return "ERROR";
	case WIRE_STATE_BEGIN:
		return "STATE_BEGIN";
	case WIRE_STATE_CHUNK:
		return "STATE_CHUNK";
	case WIRE_STATE_END:
		return "STATE_END";
	case WIRE_STATE_LISTING:
		return "STATE_LISTING";
	case WIRE_STATE_DATA:
		return "STATE_DATA";
	case WIRE_STATE_ENDED:
		return "STATE_ENDED";
	default:
		return NULL;
	}
}

bool wire_type_is_request(unsigned type)
{
	switch (type) {
	case WIRE_APPEND:
	case WIRE_READ_STREAM:
	case WIRE_READ_ALL:
	case WIRE_HEAD:
	case WIRE_STATUS:
	case WIRE_CHECKPOINT_GET:
	case WIRE_CHECKPOINT_SET:
	case WIRE_SNAPSHOT_PUT:
	case WIRE_SNAPSHOT_GET:
	case WIRE_SUBSCRIBE:
	case WIRE_CREDIT:
	case WIRE_UNSUBSCRIBE:
	case WIRE_STATE_BEGIN:
	case WIRE_MEMBER_CHANGE:
	case WIRE_LEADER_TRANSFER:
	case WIRE_STATE_CHUNK:
	case WIRE_STATE_END:
		return true;
	default:
		return false;
	}
}

/* ------------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------------ */

void wire_buf_init(struct wire_buf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void wire_buf_close(struct wire_buf *b)
{
	free(b->p);
	wire_buf_init(b);
}

void wire_buf_reset(struct wire_buf *b)
{
	b->len = 0;
}

void wire_buf_consume(struct wire_buf *b, size_t n)
{
	assert(n <= b->len);
	if (n == 0)
		return;
	if (n < b->len)
		memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* Makes room for @n more bytes. Returns 0 or WIRE_DECODE_NOMEM, leaving
 * the buffer as it was. */
static int buf_reserve(struct wire_buf *b, size_t n)
{
	size_t cap = b->cap > 0 ? b->cap : BUF_FIRST_CAP;
	uint8_t *p;

	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX - b->len)
		return WIRE_DECODE_NOMEM;
	while (cap < b->len + n) {
		if (cap > SIZE_MAX / 2) {
			cap = b->len + n;
			break;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL)
		return WIRE_DECODE_NOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* ------------------------------------------------------------------------
 * Little-endian fields
 * ------------------------------------------------------------------------ */

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/* ------------------------------------------------------------------------
 * Frame writer: the size of the body is computed first, the frame reserved
 * whole, then written field by field; the writer asserts that exactly the
 * computed size was written.
 * ------------------------------------------------------------------------ */

struct enc {
	uint8_t *p;   /* next byte to write, inside the buffer (borrowed) */
	uint8_t *end; /* end of the reserved frame (borrowed) */
};

static void enc_bytes(struct enc *e, const void *src, size_t n)
{
	assert(n <= (size_t)(e->end - e->p));
	if (n == 0)
		return;
	assert(src != NULL);
	memcpy(e->p, src, n);
	e->p += n;
}

static void enc_u8(struct enc *e, uint8_t v)
{
	assert(e->p < e->end);
	*e->p++ = v;
}

static void enc_u16(struct enc *e, uint16_t v)
{
	assert(e->end - e->p >= 2);
	put_u16(e->p, v);
	e->p += 2;
}

static void enc_u32(struct enc *e, uint32_t v)
{
	assert(e->end - e->p >= 4);
	put_u32(e->p, v);
	e->p += 4;
}

static void enc_u64(struct enc *e, uint64_t v)
{
	assert(e->end - e->p >= 8);
	put_u64(e->p, v);
	e->p += 8;
}

/* The caller checked the length against STR16_MAX. */
static void enc_str16(struct enc *e, struct wire_bytes s)
{
	assert(s.len <= STR16_MAX);
	enc_u16(e, (uint16_t)s.len);
	enc_bytes(e, s.p, s.len);
}

static void enc_blob32(struct enc *e, struct wire_bytes s)
{
	enc_u32(e, s.len);
	enc_bytes(e, s.p, s.len);
}

static void enc_consistency(struct enc *e, const struct wire_consistency_req *c)
{
	enc_u8(e, c->kind);
	enc_u64(e, c->min_position);
}

static void enc_header(uint8_t *p, uint32_t body_len, uint16_t type,
		       uint64_t request_id)
{
	put_u32(p, body_len);
	put_u16(p + 4, type);
	put_u16(p + 6, 0);
	put_u64(p + 8, request_id);
}

/* Reserves a frame of @body_len bytes of body at the end of @b and writes
 * its header. Returns 0, WIRE_ENCODE_TOO_LARGE or WIRE_DECODE_NOMEM. */
static int frame_begin(struct wire_buf *b, uint16_t type, uint64_t request_id,
		       uint64_t body_len, struct enc *e)
{
	int rv;

	if (body_len > WIRE_BODY_BYTES_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = buf_reserve(b, WIRE_HEADER_BYTES + (size_t)body_len);
	if (rv != 0)
		return rv;
	e->p = b->p + b->len;
	e->end = e->p + WIRE_HEADER_BYTES + (size_t)body_len;
	enc_header(e->p, (uint32_t)body_len, type, request_id);
	e->p += WIRE_HEADER_BYTES;
	return 0;
}

/* Commits the frame begun by frame_begin(), all of whose bytes were
 * written. */
static void frame_finish(struct wire_buf *b, const struct enc *e)
{
	assert(e->p == e->end);
	b->len = (size_t)(e->end - b->p);
}

/* ------------------------------------------------------------------------
 * Bounds-checked reader
 * ------------------------------------------------------------------------ */

struct dec {
	const uint8_t *p;   /* next byte to read (borrowed) */
	const uint8_t *end; /* end of the body (borrowed) */
};

/* @body may be NULL when @len is 0; no arithmetic is done on NULL. */
static void dec_init(struct dec *d, const void *body, size_t len)
{
	assert(body != NULL || len == 0);
	d->p = body;
	d->end = len > 0 ? d->p + len : d->p;
}

static size_t dec_left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

static bool dec_skip(struct dec *d, size_t n, const uint8_t **at)
{
	if (dec_left(d) < n)
		return false;
	*at = d->p;
	if (n > 0)
		d->p += n;
	return true;
}

static bool dec_u8(struct dec *d, uint8_t *v)
{
	if (dec_left(d) < 1)
		return false;
	*v = *d->p++;
	return true;
}

/* A u8 that must be 0 or 1. */
static bool dec_bool(struct dec *d, bool *v)
{
	uint8_t b;

	if (!dec_u8(d, &b) || b > 1)
		return false;
	*v = b == 1;
	return true;
}

static bool dec_u16(struct dec *d, uint16_t *v)
{
	if (dec_left(d) < 2)
		return false;
	*v = get_u16(d->p);
	d->p += 2;
	return true;
}

static bool dec_u32(struct dec *d, uint32_t *v)
{
	if (dec_left(d) < 4)
		return false;
	*v = get_u32(d->p);
	d->p += 4;
	return true;
}

static bool dec_u64(struct dec *d, uint64_t *v)
{
	if (dec_left(d) < 8)
		return false;
	*v = get_u64(d->p);
	d->p += 8;
	return true;
}

static bool dec_i64(struct dec *d, int64_t *v)
{
	uint64_t u;

	if (!dec_u64(d, &u))
		return false;
	/* Two's complement, as every supported platform stores it. */
	memcpy(v, &u, sizeof *v);
	return true;
}

static bool dec_id(struct dec *d, uint8_t id[16])
{
	const uint8_t *at;

	if (!dec_skip(d, 16, &at))
		return false;
	memcpy(id, at, 16);
	return true;
}

/* A view of @n bytes; p is NULL when @n is 0. */
static bool dec_view(struct dec *d, uint32_t n, struct wire_bytes *s)
{
	const uint8_t *at;

	if (!dec_skip(d, n, &at))
		return false;
	s->p = n > 0 ? at : NULL;
	s->len = n;
	return true;
}

/* A str16 of at most @max bytes. */
static bool dec_str16(struct dec *d, struct wire_bytes *s, uint32_t max)
{
	uint16_t n;

	if (!dec_u16(d, &n) || n > max)
		return false;
	return dec_view(d, n, s);
}

static bool dec_blob32(struct dec *d, struct wire_bytes *s)
{
	uint32_t n;

	if (!dec_u32(d, &n))
		return false;
	return dec_view(d, n, s);
}

static bool dec_consistency(struct dec *d, struct wire_consistency_req *c)
{
	if (!dec_u8(d, &c->kind) || c->kind > WIRE_CONSISTENCY_LEADER)
		return false;
	return dec_u64(d, &c->min_position);
}

/* A decoder's verdict: the body must have been consumed exactly. */
static int dec_done(const struct dec *d, bool ok)
{
	return ok && dec_left(d) == 0 ? WIRE_OK : WIRE_DECODE_MALFORMED;
}

/* ------------------------------------------------------------------------
 * Header and framing
 * ------------------------------------------------------------------------ */

int wire_header_decode(const void *buf, struct wire_header *h)
{
	const uint8_t *p = buf;

	h->body_len = get_u32(p);
	h->type = get_u16(p + 4);
	h->flags = get_u16(p + 6);
	h->request_id = get_u64(p + 8);
	if (h->body_len > WIRE_BODY_BYTES_MAX || h->flags != 0)
		return WIRE_DECODE_MALFORMED;
	return WIRE_OK;
}

int wire_frame_peek(const void *buf, size_t len, struct wire_header *h,
		    size_t *frame_len)
{
	int rv;

	*frame_len = 0;
	if (len < WIRE_HEADER_BYTES)
		return WIRE_NEED_MORE;
	rv = wire_header_decode(buf, h);
	if (rv != WIRE_OK)
		return rv;
	*frame_len = WIRE_HEADER_BYTES + (size_t)h->body_len;
	if (len < *frame_len)
		return WIRE_NEED_MORE;
	return WIRE_OK;
}

/* ------------------------------------------------------------------------
 * APPEND
 * ------------------------------------------------------------------------ */

/* The body size of @a, or an encoder error. */
static int append_body_size(const struct wire_append *a, uint64_t *size)
{
	uint64_t n = APPEND_FIXED_BYTES;
	uint32_t i;
	uint32_t k;

	if (a->n_parts == 0)
		return WIRE_ENCODE_INVALID;
	if (a->n_parts > WIRE_APPEND_PARTS_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	assert(a->parts != NULL);
	for (i = 0; i < a->n_parts; i++) {
		const struct wire_part *part = &a->parts[i];

		if (part->expect_kind > WIRE_EXPECT_EXACT ||
		    part->n_events == 0)
			return WIRE_ENCODE_INVALID;
		if (part->stream.len > STR16_MAX)
			return WIRE_ENCODE_TOO_LARGE;
		assert(part->events != NULL);
		n += PART_MIN_BYTES + (uint64_t)part->stream.len;
		for (k = 0; k < part->n_events; k++) {
			const struct wire_event_in *e = &part->events[k];

			if (e->type.len > STR16_MAX)
				return WIRE_ENCODE_TOO_LARGE;
			n += EVENT_IN_MIN_BYTES + (uint64_t)e->type.len +
			     e->data.len + e->metadata.len;
			/* Checked as it grows, so it cannot wrap. */
			if (n > WIRE_BODY_BYTES_MAX)
				return WIRE_ENCODE_TOO_LARGE;
		}
	}
	*size = n;
	return 0;
}

int wire_encode_append(struct wire_buf *b, uint64_t request_id,
		       const struct wire_append *a)
{
	struct enc e;
	uint64_t size = 0;
	uint32_t i;
	uint32_t k;
	int rv;

	rv = append_body_size(a, &size);
	if (rv != 0)
		return rv;
	rv = frame_begin(b, WIRE_APPEND, request_id, size, &e);
	if (rv != 0)
		return rv;
	enc_u8(&e, a->has_client ? 1 : 0);
	enc_bytes(&e, a->client_id, 16);
	enc_u64(&e, a->client_seq);
	enc_u32(&e, a->n_parts);
	for (i = 0; i < a->n_parts; i++) {
		const struct wire_part *part = &a->parts[i];

		enc_str16(&e, part->stream);
		enc_u8(&e, part->expect_kind);
		enc_u64(&e, part->expect_version);
		enc_u32(&e, part->n_events);
		for (k = 0; k < part->n_events; k++) {
			const struct wire_event_in *ev = &part->events[k];

			enc_bytes(&e, ev->id, 16);
			enc_str16(&e, ev->type);
			enc_u16(&e, ev->schema_version);
			enc_u64(&e, (uint64_t)ev->event_time_us);
			enc_blob32(&e, ev->data);
			enc_blob32(&e, ev->metadata);
		}
	}
	frame_finish(b, &e);
	return 0;
}

/* Walks the parts of an APPEND body after its fixed fields. With @events
 * NULL it only checks them and counts the events into @total; otherwise it
 * fills @parts and @events, which have room for what the checking pass
 * counted over the same bytes. */
static bool append_parts(struct dec *d, uint32_t n_parts,
			 struct wire_part *parts, struct wire_event_in *events,
			 size_t *total)
{
	struct wire_part part;
	struct wire_event_in ev;
	size_t used = 0;
	uint32_t i;
	uint32_t k;

	for (i = 0; i < n_parts; i++) {
		if (!dec_str16(d, &part.stream, STR16_MAX) ||
		    !dec_u8(d, &part.expect_kind) ||
		    part.expect_kind > WIRE_EXPECT_EXACT ||
		    !dec_u64(d, &part.expect_version) ||
		    !dec_u32(d, &part.n_events) || part.n_events == 0 ||
		    part.n_events > dec_left(d) / EVENT_IN_MIN_BYTES)
			return false;
		part.events = events != NULL ? events + used : NULL;
		for (k = 0; k < part.n_events; k++) {
			if (!dec_id(d, ev.id) ||
			    !dec_str16(d, &ev.type, STR16_MAX) ||
			    !dec_u16(d, &ev.schema_version) ||
			    !dec_i64(d, &ev.event_time_us) ||
			    !dec_blob32(d, &ev.data) ||
			    !dec_blob32(d, &ev.metadata))
				return false;
			if (events != NULL)
				events[used + k] = ev;
		}
		/* Each event took at least EVENT_IN_MIN_BYTES of the body,
		 * so the sum is bounded by the body's length. */
		used += part.n_events;
		if (parts != NULL)
			parts[i] = part;
	}
	*total = used;
	return true;
}

int wire_decode_append(const void *body, size_t len, struct wire_append *a)
{
	struct wire_append out;
	struct dec d;
	const uint8_t *start;
	size_t total = 0;
	size_t filled = 0;
	uint8_t has_client;
	bool ok;

	memset(a, 0, sizeof *a);
	memset(&out, 0, sizeof out);
	dec_init(&d, body, len);
	if (!dec_u8(&d, &has_client) || has_client > 1 ||
	    !dec_id(&d, out.client_id) || !dec_u64(&d, &out.client_seq) ||
	    !dec_u32(&d, &out.n_parts) || out.n_parts == 0 ||
	    out.n_parts > WIRE_APPEND_PARTS_MAX ||
	    out.n_parts > dec_left(&d) / PART_MIN_BYTES)
		return WIRE_DECODE_MALFORMED;
	out.has_client = has_client == 1;

	/* First pass: check everything and count the events. */
	start = d.p;
	ok = append_parts(&d, out.n_parts, NULL, NULL, &total);
	if (dec_done(&d, ok) != WIRE_OK)
		return WIRE_DECODE_MALFORMED;
	assert(total >= out.n_parts);
	assert(total <= len / EVENT_IN_MIN_BYTES);

	/* Then allocate once from counts the bytes vouched for, and fill. */
	out.parts = malloc(sizeof *out.parts * out.n_parts);
	if (out.parts == NULL)
		goto err;
	out.events_ = malloc(sizeof *out.events_ * total);
	if (out.events_ == NULL)
		goto err_after_parts_alloc;
	d.p = start;
	ok = append_parts(&d, out.n_parts, out.parts, out.events_, &filled);
	assert(ok);
	assert(filled == total);
	assert(dec_left(&d) == 0);
	*a = out;
	return WIRE_OK;

err_after_parts_alloc:
	free(out.parts);
err:
	return WIRE_DECODE_NOMEM;
}

void wire_append_close(struct wire_append *a)
{
	free(a->parts);
	free(a->events_);
	memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------------------
 * APPEND_OK
 * ------------------------------------------------------------------------ */

int wire_encode_append_ok(struct wire_buf *b, uint64_t request_id,
			  bool duplicate, uint32_t n_parts,
			  const struct wire_part_result *parts)
{
	struct enc e;
	uint32_t i;
	int rv;

	if (n_parts == 0)
		return WIRE_ENCODE_INVALID;
	if (n_parts > WIRE_APPEND_PARTS_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	assert(parts != NULL);
	rv = frame_begin(b, WIRE_APPEND_OK, request_id,
			 1 + 4 + (uint64_t)n_parts * PART_RESULT_BYTES, &e);
	if (rv != 0)
		return rv;
	enc_u8(&e, duplicate ? 1 : 0);
	enc_u32(&e, n_parts);
	for (i = 0; i < n_parts; i++) {
		enc_u64(&e, parts[i].first_version);
		enc_u64(&e, parts[i].last_version);
		enc_u64(&e, parts[i].first_position);
		enc_u64(&e, parts[i].last_position);
	}
	frame_finish(b, &e);
	return 0;
}

int wire_decode_append_ok(const void *body, size_t len, bool *duplicate,
			  uint32_t *n_parts, struct wire_part_result *parts,
			  uint32_t cap)
{
	struct dec d;
	uint32_t n;
	uint32_t i;

	dec_init(&d, body, len);
	if (!dec_bool(&d, duplicate) || !dec_u32(&d, &n) || n == 0 ||
	    n > WIRE_APPEND_PARTS_MAX || n > cap ||
	    dec_left(&d) != (size_t)n * PART_RESULT_BYTES)
		return WIRE_DECODE_MALFORMED;
	assert(parts != NULL);
	for (i = 0; i < n; i++) {
		dec_u64(&d, &parts[i].first_version);
		dec_u64(&d, &parts[i].last_version);
		dec_u64(&d, &parts[i].first_position);
		dec_u64(&d, &parts[i].last_position);
	}
	*n_parts = n;
	return dec_done(&d, true);
}

/* ------------------------------------------------------------------------
 * READ_STREAM, READ_ALL
 * ------------------------------------------------------------------------ */

int wire_encode_read_stream(struct wire_buf *b, uint64_t request_id,
			    const struct wire_read_stream *r)
{
	struct enc e;
	int rv;

	if (r->consistency.kind > WIRE_CONSISTENCY_LEADER)
		return WIRE_ENCODE_INVALID;
	if (r->stream.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(
		b, WIRE_READ_STREAM, request_id,
		2 + (uint64_t)r->stream.len + 8 + 1 + 4 + CONSISTENCY_BYTES,
		&e);
	if (rv != 0)
		return rv;
	enc_str16(&e, r->stream);
	enc_u64(&e, r->from_version);
	enc_u8(&e, r->backward ? 1 : 0);
	enc_u32(&e, r->limit);
	enc_consistency(&e, &r->consistency);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_read_stream(const void *body, size_t len,
			    struct wire_read_stream *r)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_str16(&d, &r->stream, STR16_MAX) &&
	     dec_u64(&d, &r->from_version) && dec_bool(&d, &r->backward) &&
	     dec_u32(&d, &r->limit) && dec_consistency(&d, &r->consistency);
	return dec_done(&d, ok);
}

int wire_encode_read_all(struct wire_buf *b, uint64_t request_id,
			 const struct wire_read_all *r)
{
	struct enc e;
	int rv;

	if (r->consistency.kind > WIRE_CONSISTENCY_LEADER)
		return WIRE_ENCODE_INVALID;
	if (r->stream_prefix.len > STR16_MAX || r->category.len > STR16_MAX ||
	    r->type.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_READ_ALL, request_id,
			 8 + 4 + CONSISTENCY_BYTES + 3 * 2 +
				 (uint64_t)r->stream_prefix.len +
				 r->category.len + r->type.len,
			 &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, r->from_position);
	enc_u32(&e, r->limit);
	enc_consistency(&e, &r->consistency);
	enc_str16(&e, r->stream_prefix);
	enc_str16(&e, r->category);
	enc_str16(&e, r->type);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_read_all(const void *body, size_t len, struct wire_read_all *r)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, &r->from_position) && dec_u32(&d, &r->limit) &&
	     dec_consistency(&d, &r->consistency) &&
	     dec_str16(&d, &r->stream_prefix, STR16_MAX) &&
	     dec_str16(&d, &r->category, STR16_MAX) &&
	     dec_str16(&d, &r->type, STR16_MAX);
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * EVENTS
 * ------------------------------------------------------------------------ */

/* Begins an EVENTS or SUB_EVENTS frame (the same body). */
static int events_begin(struct wire_buf *b, uint16_t type, uint64_t request_id,
			struct wire_events_writer *w)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, type, request_id, EVENTS_FIXED_BYTES, &e);
	if (rv != 0)
		return rv;
	/* next, end and count are patched by wire_events_end(). */
	enc_u64(&e, 0);
	enc_u8(&e, 0);
	enc_u32(&e, 0);
	w->frame_off = b->len;
	w->count = 0;
	w->event_bytes = 0;
	frame_finish(b, &e);
	return 0;
}

int wire_events_begin(struct wire_buf *b, uint64_t request_id,
		      struct wire_events_writer *w)
{
	return events_begin(b, WIRE_EVENTS, request_id, w);
}

int wire_sub_events_begin(struct wire_buf *b, uint64_t request_id,
			  struct wire_events_writer *w)
{
	return events_begin(b, WIRE_SUB_EVENTS, request_id, w);
}

int wire_events_add(struct wire_buf *b, struct wire_events_writer *w,
		    const struct wire_event *ev)
{
	struct enc e;
	uint64_t body;
	uint64_t size;
	int rv;

	assert(b->len >= w->frame_off + WIRE_HEADER_BYTES + EVENTS_FIXED_BYTES);
	if (ev->stream.len > STR16_MAX || ev->type.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	body = b->len - w->frame_off - WIRE_HEADER_BYTES;
	assert(body <= WIRE_BODY_BYTES_MAX);
	size = EVENT_MIN_BYTES + (uint64_t)ev->stream.len + ev->type.len +
	       ev->data.len + ev->metadata.len;
	if (size > WIRE_BODY_BYTES_MAX - body || w->count == UINT32_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = buf_reserve(b, (size_t)size);
	if (rv != 0)
		return rv;
	e.p = b->p + b->len;
	e.end = e.p + size;
	enc_u64(&e, ev->position);
	enc_u64(&e, ev->version);
	enc_str16(&e, ev->stream);
	enc_bytes(&e, ev->id, 16);
	enc_str16(&e, ev->type);
	enc_u16(&e, ev->schema_version);
	enc_u64(&e, (uint64_t)ev->event_time_us);
	enc_u64(&e, ev->commit_time_us);
	enc_u8(&e, ev->has_client ? 1 : 0);
	enc_bytes(&e, ev->client_id, 16);
	enc_u64(&e, ev->client_seq);
	enc_blob32(&e, ev->data);
	enc_blob32(&e, ev->metadata);
	frame_finish(b, &e);
	w->count++;
	w->event_bytes += (size_t)size;
	return 0;
}

void wire_events_end(struct wire_buf *b, struct wire_events_writer *w,
		     uint64_t next, bool end)
{
	uint8_t *frame;
	size_t body;

	assert(b->len >= w->frame_off + WIRE_HEADER_BYTES + EVENTS_FIXED_BYTES);
	frame = b->p + w->frame_off;
	body = b->len - w->frame_off - WIRE_HEADER_BYTES;
	assert(body <= WIRE_BODY_BYTES_MAX);
	assert(get_u16(frame + 4) == WIRE_EVENTS ||
	       get_u16(frame + 4) == WIRE_SUB_EVENTS);
	put_u32(frame, (uint32_t)body);
	put_u64(frame + WIRE_HEADER_BYTES, next);
	frame[WIRE_HEADER_BYTES + 8] = end ? 1 : 0;
	put_u32(frame + WIRE_HEADER_BYTES + 9, w->count);
}

static bool dec_event(struct dec *d, struct wire_event *e)
{
	return dec_u64(d, &e->position) && dec_u64(d, &e->version) &&
	       dec_str16(d, &e->stream, STR16_MAX) && dec_id(d, e->id) &&
	       dec_str16(d, &e->type, STR16_MAX) &&
	       dec_u16(d, &e->schema_version) &&
	       dec_i64(d, &e->event_time_us) &&
	       dec_u64(d, &e->commit_time_us) && dec_bool(d, &e->has_client) &&
	       dec_id(d, e->client_id) && dec_u64(d, &e->client_seq) &&
	       dec_blob32(d, &e->data) && dec_blob32(d, &e->metadata);
}

int wire_events_open(const void *body, size_t len, struct wire_events_reader *r)
{
	struct wire_event scratch;
	struct dec d;
	const uint8_t *first;
	uint32_t i;

	dec_init(&d, body, len);
	if (!dec_u64(&d, &r->next) || !dec_bool(&d, &r->end) ||
	    !dec_u32(&d, &r->count) ||
	    r->count > dec_left(&d) / EVENT_MIN_BYTES)
		return WIRE_DECODE_MALFORMED;
	first = d.p;
	for (i = 0; i < r->count; i++) {
		if (!dec_event(&d, &scratch))
			return WIRE_DECODE_MALFORMED;
	}
	if (dec_left(&d) != 0)
		return WIRE_DECODE_MALFORMED;
	r->p = first;
	r->lim = d.end;
	r->remaining = r->count;
	return WIRE_OK;
}

bool wire_events_next(struct wire_events_reader *r, struct wire_event *e)
{
	struct dec d;
	bool ok;

	if (r->remaining == 0)
		return false;
	d.p = r->p;
	d.end = r->lim;
	ok = dec_event(&d, e);
	assert(ok); /* wire_events_open() checked every event */
	r->p = d.p;
	r->remaining--;
	return true;
}

/* ------------------------------------------------------------------------
 * HEAD
 * ------------------------------------------------------------------------ */

int wire_encode_head(struct wire_buf *b, uint64_t request_id,
		     const struct wire_head *h)
{
	struct enc e;
	int rv;

	if (h->consistency.kind > WIRE_CONSISTENCY_LEADER)
		return WIRE_ENCODE_INVALID;
	if (h->stream.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_HEAD, request_id,
			 2 + (uint64_t)h->stream.len + CONSISTENCY_BYTES, &e);
	if (rv != 0)
		return rv;
	enc_str16(&e, h->stream);
	enc_consistency(&e, &h->consistency);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_head(const void *body, size_t len, struct wire_head *h)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_str16(&d, &h->stream, STR16_MAX) &&
	     dec_consistency(&d, &h->consistency);
	return dec_done(&d, ok);
}

int wire_encode_head_ok(struct wire_buf *b, uint64_t request_id,
			uint64_t version, uint64_t last_position)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_HEAD_OK, request_id, 16, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, version);
	enc_u64(&e, last_position);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_head_ok(const void *body, size_t len, uint64_t *version,
			uint64_t *last_position)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, version) && dec_u64(&d, last_position);
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * STATUS
 * ------------------------------------------------------------------------ */

int wire_encode_status(struct wire_buf *b, uint64_t request_id)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_STATUS, request_id, 0, &e);
	if (rv != 0)
		return rv;
	frame_finish(b, &e);
	return 0;
}

int wire_decode_status(const void *body, size_t len)
{
	(void)body;
	return len == 0 ? WIRE_OK : WIRE_DECODE_MALFORMED;
}

int wire_encode_status_ok(struct wire_buf *b, uint64_t request_id,
			  const struct wire_status *s)
{
	struct enc e;
	uint64_t size = STATUS_FIXED_BYTES;
	uint32_t i;
	int rv;

	if (s->role > WIRE_ROLE_UNAVAILABLE)
		return WIRE_ENCODE_INVALID;
	if (s->n_members > WIRE_MEMBERS_MAX ||
	    s->leader_client_address.len > WIRE_STRING_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	size += s->leader_client_address.len;
	for (i = 0; i < s->n_members; i++) {
		const struct wire_member *m = &s->members[i];

		if (m->role > WIRE_MEMBER_SPARE)
			return WIRE_ENCODE_INVALID;
		if (m->raft_address.len > WIRE_STRING_MAX ||
		    m->client_address.len > WIRE_STRING_MAX ||
		    m->http_address.len > WIRE_STRING_MAX)
			return WIRE_ENCODE_TOO_LARGE;
		size += MEMBER_MIN_BYTES + (uint64_t)m->raft_address.len +
			m->client_address.len + m->http_address.len;
	}
	rv = frame_begin(b, WIRE_STATUS_OK, request_id, size, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, s->node_id);
	enc_u8(&e, s->role);
	enc_u64(&e, s->term);
	enc_u64(&e, s->commit_index);
	enc_u64(&e, s->applied_index);
	enc_u64(&e, s->last_position);
	enc_u64(&e, s->leader_id);
	enc_str16(&e, s->leader_client_address);
	enc_u32(&e, s->n_members);
	for (i = 0; i < s->n_members; i++) {
		const struct wire_member *m = &s->members[i];

		enc_u64(&e, m->id);
		enc_u8(&e, m->role);
		enc_str16(&e, m->raft_address);
		enc_str16(&e, m->client_address);
		enc_str16(&e, m->http_address);
	}
	frame_finish(b, &e);
	return 0;
}

int wire_decode_status_ok(const void *body, size_t len, struct wire_status *s)
{
	struct dec d;
	uint32_t i;
	bool ok;

	memset(s, 0, sizeof *s);
	dec_init(&d, body, len);
	ok = dec_u64(&d, &s->node_id) && dec_u8(&d, &s->role) &&
	     s->role <= WIRE_ROLE_UNAVAILABLE && dec_u64(&d, &s->term) &&
	     dec_u64(&d, &s->commit_index) && dec_u64(&d, &s->applied_index) &&
	     dec_u64(&d, &s->last_position) && dec_u64(&d, &s->leader_id) &&
	     dec_str16(&d, &s->leader_client_address, WIRE_STRING_MAX) &&
	     dec_u32(&d, &s->n_members) && s->n_members <= WIRE_MEMBERS_MAX;
	for (i = 0; ok && i < s->n_members; i++) {
		struct wire_member *m = &s->members[i];

		ok = dec_u64(&d, &m->id) && dec_u8(&d, &m->role) &&
		     m->role <= WIRE_MEMBER_SPARE &&
		     dec_str16(&d, &m->raft_address, WIRE_STRING_MAX) &&
		     dec_str16(&d, &m->client_address, WIRE_STRING_MAX) &&
		     dec_str16(&d, &m->http_address, WIRE_STRING_MAX);
	}
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * ERROR
 * ------------------------------------------------------------------------ */

/* The longest prefix of @s of at most WIRE_STRING_MAX bytes that does not
 * end inside a UTF-8 sequence (text that is not UTF-8 is cut at most three
 * bytes short of the maximum). */
static struct wire_bytes truncate_text(struct wire_bytes s)
{
	uint32_t n;
	uint32_t back = 0;

	if (s.len <= WIRE_STRING_MAX)
		return s;
	n = WIRE_STRING_MAX;
	/* s.p[n] is the first byte cut off: while it continues a sequence,
	 * the cut is inside one; a sequence is at most 4 bytes long. */
	while (back < 3 && (s.p[n - back] & 0xc0) == 0x80)
		back++;
	if ((s.p[n - back] & 0xc0) != 0x80)
		n -= back;
	s.len = n;
	return s;
}

int wire_encode_error(struct wire_buf *b, uint64_t request_id,
		      const struct wire_err *err)
{
	struct wire_bytes message = truncate_text(err->message);
	struct enc e;
	int rv;

	if (!error_code_known(err->code))
		return WIRE_ENCODE_INVALID;
	if (err->leader.len > WIRE_STRING_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(
		b, WIRE_ERROR, request_id,
		ERROR_FIXED_BYTES + (uint64_t)err->leader.len + message.len,
		&e);
	if (rv != 0)
		return rv;
	enc_u32(&e, err->code);
	enc_u32(&e, err->part);
	enc_u64(&e, err->actual_version);
	enc_str16(&e, err->leader);
	enc_str16(&e, message);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_error(const void *body, size_t len, struct wire_err *err)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u32(&d, &err->code) && error_code_known(err->code) &&
	     dec_u32(&d, &err->part) && dec_u64(&d, &err->actual_version) &&
	     dec_str16(&d, &err->leader, WIRE_STRING_MAX) &&
	     dec_str16(&d, &err->message, WIRE_STRING_MAX);
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * Subscriptions: SUBSCRIBE, CREDIT, UNSUBSCRIBE, SUB_LIVE, SUB_END
 * (SUB_EVENTS shares the EVENTS codec above).
 * ------------------------------------------------------------------------ */

int wire_encode_subscribe(struct wire_buf *b, uint64_t request_id,
			  const struct wire_subscribe *s)
{
	struct enc e;
	int rv;

	if (s->kind > WIRE_SUB_CATEGORY || s->from_kind > WIRE_SUB_FROM_NOW)
		return WIRE_ENCODE_INVALID;
	if (s->target.len > STR16_MAX || s->type.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(
		b, WIRE_SUBSCRIBE, request_id,
		SUBSCRIBE_FIXED_BYTES + (uint64_t)s->target.len + s->type.len,
		&e);
	if (rv != 0)
		return rv;
	enc_u8(&e, s->kind);
	enc_u8(&e, s->from_kind);
	enc_u64(&e, s->from);
	enc_str16(&e, s->target);
	enc_str16(&e, s->type);
	enc_u32(&e, s->credit);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_subscribe(const void *body, size_t len,
			  struct wire_subscribe *s)
{
	struct dec d;
	bool ok;

	memset(s, 0, sizeof *s);
	dec_init(&d, body, len);
	ok = dec_u8(&d, &s->kind) && s->kind <= WIRE_SUB_CATEGORY &&
	     dec_u8(&d, &s->from_kind) && s->from_kind <= WIRE_SUB_FROM_NOW &&
	     dec_u64(&d, &s->from) && dec_str16(&d, &s->target, STR16_MAX) &&
	     dec_str16(&d, &s->type, STR16_MAX) && dec_u32(&d, &s->credit);
	return dec_done(&d, ok);
}

int wire_encode_credit(struct wire_buf *b, uint64_t request_id, uint32_t events)
{
	struct enc e;
	int rv;

	if (events == 0)
		return WIRE_ENCODE_INVALID;
	rv = frame_begin(b, WIRE_CREDIT, request_id, 4, &e);
	if (rv != 0)
		return rv;
	enc_u32(&e, events);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_credit(const void *body, size_t len, uint32_t *events)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u32(&d, events) && *events >= 1;
	return dec_done(&d, ok);
}

int wire_encode_unsubscribe(struct wire_buf *b, uint64_t request_id)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_UNSUBSCRIBE, request_id, 0, &e);
	if (rv != 0)
		return rv;
	frame_finish(b, &e);
	return 0;
}

int wire_decode_unsubscribe(const void *body, size_t len)
{
	(void)body;
	return len == 0 ? WIRE_OK : WIRE_DECODE_MALFORMED;
}

int wire_encode_sub_live(struct wire_buf *b, uint64_t request_id, uint64_t next,
			 uint64_t last_position)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_SUB_LIVE, request_id, 16, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, next);
	enc_u64(&e, last_position);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_sub_live(const void *body, size_t len, uint64_t *next,
			 uint64_t *last_position)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, next) && dec_u64(&d, last_position);
	return dec_done(&d, ok);
}

static bool sub_end_reason_known(uint32_t reason)
{
	return reason >= WIRE_SUB_END_UNSUBSCRIBED &&
	       reason <= WIRE_SUB_END_INTERNAL;
}

const char *wire_sub_end_reason_name(uint32_t reason)
{
	switch (reason) {
	case WIRE_SUB_END_UNSUBSCRIBED:
		return "unsubscribed";
	case WIRE_SUB_END_SLOW:
		return "slow consumer";
	case WIRE_SUB_END_SHUTDOWN:
		return "node shutting down";
	case WIRE_SUB_END_INTERNAL:
		return "internal error";
	default:
		return "unknown reason";
	}
}

int wire_encode_sub_end(struct wire_buf *b, uint64_t request_id,
			const struct wire_sub_end *s)
{
	struct wire_bytes message = truncate_text(s->message);
	struct enc e;
	int rv;

	if (!sub_end_reason_known(s->reason))
		return WIRE_ENCODE_INVALID;
	rv = frame_begin(b, WIRE_SUB_END, request_id,
			 SUB_END_FIXED_BYTES + (uint64_t)message.len, &e);
	if (rv != 0)
		return rv;
	enc_u32(&e, s->reason);
	enc_u64(&e, s->next);
	enc_str16(&e, message);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_sub_end(const void *body, size_t len, struct wire_sub_end *s)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u32(&d, &s->reason) && sub_end_reason_known(s->reason) &&
	     dec_u64(&d, &s->next) &&
	     dec_str16(&d, &s->message, WIRE_STRING_MAX);
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * Checkpoints and snapshots
 * ------------------------------------------------------------------------ */

static void enc_client(struct enc *e, bool has_client, const uint8_t id[16],
		       uint64_t seq)
{
	enc_u8(e, has_client ? 1 : 0);
	enc_bytes(e, id, 16);
	enc_u64(e, seq);
}

static bool dec_client(struct dec *d, bool *has_client, uint8_t id[16],
		       uint64_t *seq)
{
	return dec_bool(d, has_client) && dec_id(d, id) && dec_u64(d, seq);
}

int wire_encode_checkpoint_get(struct wire_buf *b, uint64_t request_id,
			       const struct wire_checkpoint_get *g)
{
	struct enc e;
	int rv;

	if (g->consistency.kind > WIRE_CONSISTENCY_LEADER)
		return WIRE_ENCODE_INVALID;
	if (g->name.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_CHECKPOINT_GET, request_id,
			 2 + (uint64_t)g->name.len + CONSISTENCY_BYTES, &e);
	if (rv != 0)
		return rv;
	enc_str16(&e, g->name);
	enc_consistency(&e, &g->consistency);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_checkpoint_get(const void *body, size_t len,
			       struct wire_checkpoint_get *g)
{
	struct dec d;
	bool ok;

	memset(g, 0, sizeof *g);
	dec_init(&d, body, len);
	ok = dec_str16(&d, &g->name, STR16_MAX) &&
	     dec_consistency(&d, &g->consistency);
	return dec_done(&d, ok);
}

int wire_encode_checkpoint(struct wire_buf *b, uint64_t request_id, bool found,
			   uint64_t value)
{
	struct enc e;
	int rv;

	if (!found && value != 0)
		return WIRE_ENCODE_INVALID;
	rv = frame_begin(b, WIRE_CHECKPOINT, request_id, 1 + 8, &e);
	if (rv != 0)
		return rv;
	enc_u8(&e, found ? 1 : 0);
	enc_u64(&e, value);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_checkpoint(const void *body, size_t len, bool *found,
			   uint64_t *value)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_bool(&d, found) && dec_u64(&d, value) &&
	     (*found || *value == 0);
	return dec_done(&d, ok);
}

static bool cp_expect_valid(uint8_t kind, uint64_t expected)
{
	switch (kind) {
	case WIRE_CP_EXPECT_ANY:
	case WIRE_CP_EXPECT_ABSENT:
		return expected == 0;
	case WIRE_CP_EXPECT_VALUE:
		return expected >= 1;
	default:
		return false;
	}
}

int wire_encode_checkpoint_set(struct wire_buf *b, uint64_t request_id,
			       const struct wire_checkpoint_set *s)
{
	struct enc e;
	int rv;

	if (!cp_expect_valid(s->expect_kind, s->expected))
		return WIRE_ENCODE_INVALID;
	if (s->name.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_CHECKPOINT_SET, request_id,
			 CLIENT_BYTES + 2 + (uint64_t)s->name.len + 8 + 1 + 8,
			 &e);
	if (rv != 0)
		return rv;
	enc_client(&e, s->has_client, s->client_id, s->client_seq);
	enc_str16(&e, s->name);
	enc_u64(&e, s->value);
	enc_u8(&e, s->expect_kind);
	enc_u64(&e, s->expected);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_checkpoint_set(const void *body, size_t len,
			       struct wire_checkpoint_set *s)
{
	struct dec d;
	bool ok;

	memset(s, 0, sizeof *s);
	dec_init(&d, body, len);
	ok = dec_client(&d, &s->has_client, s->client_id, &s->client_seq) &&
	     dec_str16(&d, &s->name, STR16_MAX) && dec_u64(&d, &s->value) &&
	     dec_u8(&d, &s->expect_kind) && dec_u64(&d, &s->expected) &&
	     cp_expect_valid(s->expect_kind, s->expected);
	return dec_done(&d, ok);
}

int wire_encode_snapshot_put(struct wire_buf *b, uint64_t request_id,
			     const struct wire_snapshot_put *s)
{
	struct enc e;
	int rv;

	if (s->version == 0)
		return WIRE_ENCODE_INVALID;
	if (s->stream.len > STR16_MAX || s->data.len > WIRE_SNAPSHOT_BYTES_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_SNAPSHOT_PUT, request_id,
			 CLIENT_BYTES + 2 + (uint64_t)s->stream.len + 8 + 4 +
				 s->data.len,
			 &e);
	if (rv != 0)
		return rv;
	enc_client(&e, s->has_client, s->client_id, s->client_seq);
	enc_str16(&e, s->stream);
	enc_u64(&e, s->version);
	enc_blob32(&e, s->data);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_snapshot_put(const void *body, size_t len,
			     struct wire_snapshot_put *s)
{
	struct dec d;
	bool ok;

	memset(s, 0, sizeof *s);
	dec_init(&d, body, len);
	ok = dec_client(&d, &s->has_client, s->client_id, &s->client_seq) &&
	     dec_str16(&d, &s->stream, STR16_MAX) && dec_u64(&d, &s->version) &&
	     s->version >= 1 && dec_blob32(&d, &s->data) &&
	     s->data.len <= WIRE_SNAPSHOT_BYTES_MAX;
	return dec_done(&d, ok);
}

int wire_encode_state_ok(struct wire_buf *b, uint64_t request_id,
			 bool duplicate)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_STATE_OK, request_id, 1, &e);
	if (rv != 0)
		return rv;
	enc_u8(&e, duplicate ? 1 : 0);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_ok(const void *body, size_t len, bool *duplicate)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_bool(&d, duplicate);
	return dec_done(&d, ok);
}

int wire_encode_snapshot_get(struct wire_buf *b, uint64_t request_id,
			     const struct wire_snapshot_get *g)
{
	struct enc e;
	int rv;

	if (g->consistency.kind > WIRE_CONSISTENCY_LEADER)
		return WIRE_ENCODE_INVALID;
	if (g->stream.len > STR16_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_SNAPSHOT_GET, request_id,
			 2 + (uint64_t)g->stream.len + 8 + CONSISTENCY_BYTES,
			 &e);
	if (rv != 0)
		return rv;
	enc_str16(&e, g->stream);
	enc_u64(&e, g->max_version);
	enc_consistency(&e, &g->consistency);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_snapshot_get(const void *body, size_t len,
			     struct wire_snapshot_get *g)
{
	struct dec d;
	bool ok;

	memset(g, 0, sizeof *g);
	dec_init(&d, body, len);
	ok = dec_str16(&d, &g->stream, STR16_MAX) &&
	     dec_u64(&d, &g->max_version) &&
	     dec_consistency(&d, &g->consistency);
	return dec_done(&d, ok);
}

int wire_encode_snapshot(struct wire_buf *b, uint64_t request_id,
			 uint64_t version, struct wire_bytes data)
{
	struct enc e;
	int rv;

	if (version == 0 && data.len != 0)
		return WIRE_ENCODE_INVALID;
	if (data.len > WIRE_SNAPSHOT_BYTES_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_SNAPSHOT, request_id,
			 8 + 4 + (uint64_t)data.len, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, version);
	enc_blob32(&e, data);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_snapshot(const void *body, size_t len, uint64_t *version,
			 struct wire_bytes *data)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, version) && dec_blob32(&d, data) &&
	     data->len <= WIRE_SNAPSHOT_BYTES_MAX &&
	     (*version != 0 || data->len == 0);
	return dec_done(&d, ok);
}

/* ------------------------------------------------------------------------
 * Copying a node's store: STATE_BEGIN, STATE_LISTING, STATE_CHUNK,
 * STATE_DATA, STATE_END, STATE_ENDED
 * ------------------------------------------------------------------------ */

/* session, node id, identity length, applied index, last position,
 * file count. */
#define LISTING_FIXED_BYTES (8 + 8 + 2 + 8 + 8 + 4)
/* name length, size: the smallest a file can take (names are not empty,
 * so this is a safe lower bound for the count check). */
#define LISTING_FILE_MIN_BYTES (2 + 1 + 8)
#define STATE_CHUNK_BYTES      (8 + 4 + 8 + 4)

int wire_encode_state_begin(struct wire_buf *b, uint64_t request_id,
			    const struct wire_state_begin *s)
{
	struct enc e;
	int rv;

	if ((s->flags & ~WIRE_STATE_LEADER) != 0)
		return WIRE_ENCODE_INVALID;
	rv = frame_begin(b, WIRE_STATE_BEGIN, request_id, 8 + 1, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, s->min_applied_index);
	enc_u8(&e, s->flags);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_begin(const void *body, size_t len,
			    struct wire_state_begin *s)
{
	struct dec d;
	bool ok;

	memset(s, 0, sizeof *s);
	dec_init(&d, body, len);
	ok = dec_u64(&d, &s->min_applied_index) && dec_u8(&d, &s->flags) &&
	     (s->flags & ~WIRE_STATE_LEADER) == 0;
	return dec_done(&d, ok);
}

bool wire_state_name_valid(struct wire_bytes name)
{
	uint32_t k;

	if (name.len == 0 || name.len > WIRE_STATE_NAME_MAX)
		return false;
	if ((name.len == 1 && name.p[0] == '.') ||
	    (name.len == 2 && name.p[0] == '.' && name.p[1] == '.'))
		return false;
	for (k = 0; k < name.len; k++)
		if (name.p[k] == '/' || name.p[k] == '\0')
			return false;
	return true;
}

int wire_encode_state_listing(struct wire_buf *b, uint64_t request_id,
			      const struct wire_state_listing *l)
{
	uint64_t size = LISTING_FIXED_BYTES;
	struct enc e;
	uint32_t k;
	int rv;

	if (l->session == 0)
		return WIRE_ENCODE_INVALID;
	if (l->identity.len > WIRE_STATE_IDENTITY_MAX ||
	    l->n_files > WIRE_STATE_FILES_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	size += l->identity.len;
	for (k = 0; k < l->n_files; k++) {
		if (!wire_state_name_valid(l->files[k].name))
			return WIRE_ENCODE_INVALID;
		size += 2 + (uint64_t)l->files[k].name.len + 8;
	}
	rv = frame_begin(b, WIRE_STATE_LISTING, request_id, size, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, l->session);
	enc_u64(&e, l->node_id);
	enc_str16(&e, l->identity);
	enc_u64(&e, l->applied_index);
	enc_u64(&e, l->last_position);
	enc_u32(&e, l->n_files);
	for (k = 0; k < l->n_files; k++) {
		enc_str16(&e, l->files[k].name);
		enc_u64(&e, l->files[k].size);
	}
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_listing(const void *body, size_t len,
			      struct wire_state_listing *l)
{
	struct dec d;
	uint32_t k;
	bool ok;

	memset(l, 0, sizeof *l);
	dec_init(&d, body, len);
	ok = dec_u64(&d, &l->session) && l->session != 0 &&
	     dec_u64(&d, &l->node_id) &&
	     dec_str16(&d, &l->identity, WIRE_STATE_IDENTITY_MAX) &&
	     dec_u64(&d, &l->applied_index) && dec_u64(&d, &l->last_position) &&
	     dec_u32(&d, &l->n_files) && l->n_files <= WIRE_STATE_FILES_MAX &&
	     (uint64_t)l->n_files * LISTING_FILE_MIN_BYTES <= dec_left(&d);
	if (!ok)
		return WIRE_DECODE_MALFORMED;
	if (l->n_files > 0) {
		l->files = malloc((size_t)l->n_files * sizeof *l->files);
		if (l->files == NULL) {
			l->n_files = 0;
			return WIRE_DECODE_NOMEM;
		}
	}
	/* Every entry is written before the listing is used; a failure
	 * frees the array unread. */
	for (k = 0; ok && k < l->n_files; k++)
		ok = dec_str16(&d, &l->files[k].name, WIRE_STATE_NAME_MAX) &&
		     wire_state_name_valid(l->files[k].name) &&
		     dec_u64(&d, &l->files[k].size);
	if (dec_done(&d, ok) != WIRE_OK) {
		wire_state_listing_close(l);
		return WIRE_DECODE_MALFORMED;
	}
	return WIRE_OK;
}

void wire_state_listing_close(struct wire_state_listing *l)
{
	free(l->files);
	l->files = NULL;
	l->n_files = 0;
}

int wire_encode_state_chunk(struct wire_buf *b, uint64_t request_id,
			    const struct wire_state_chunk *c)
{
	struct enc e;
	int rv;

	if (c->length == 0 || c->length > WIRE_STATE_CHUNK_BYTES_MAX)
		return WIRE_ENCODE_INVALID;
	rv = frame_begin(b, WIRE_STATE_CHUNK, request_id, STATE_CHUNK_BYTES,
			 &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, c->session);
	enc_u32(&e, c->file);
	enc_u64(&e, c->offset);
	enc_u32(&e, c->length);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_chunk(const void *body, size_t len,
			    struct wire_state_chunk *c)
{
	struct dec d;
	bool ok;

	memset(c, 0, sizeof *c);
	dec_init(&d, body, len);
	ok = dec_u64(&d, &c->session) && dec_u32(&d, &c->file) &&
	     dec_u64(&d, &c->offset) && dec_u32(&d, &c->length) &&
	     c->length >= 1 && c->length <= WIRE_STATE_CHUNK_BYTES_MAX;
	return dec_done(&d, ok);
}

int wire_encode_state_data(struct wire_buf *b, uint64_t request_id,
			   uint32_t crc, struct wire_bytes data)
{
	struct enc e;
	int rv;

	if (data.len > WIRE_STATE_CHUNK_BYTES_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_STATE_DATA, request_id,
			 4 + 4 + (uint64_t)data.len, &e);
	if (rv != 0)
		return rv;
	enc_u32(&e, crc);
	enc_blob32(&e, data);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_data(const void *body, size_t len, uint32_t *crc,
			   struct wire_bytes *data)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u32(&d, crc) && dec_blob32(&d, data) &&
	     data->len <= WIRE_STATE_CHUNK_BYTES_MAX;
	return dec_done(&d, ok);
}

int wire_encode_state_end(struct wire_buf *b, uint64_t request_id,
			  uint64_t session)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_STATE_END, request_id, 8, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, session);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_end(const void *body, size_t len, uint64_t *session)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, session);
	return dec_done(&d, ok);
}

int wire_encode_state_ended(struct wire_buf *b, uint64_t request_id)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, WIRE_STATE_ENDED, request_id, 0, &e);
	if (rv != 0)
		return rv;
	frame_finish(b, &e);
	return 0;
}

int wire_decode_state_ended(const void *body, size_t len)
{
	(void)body;
	return len == 0 ? WIRE_OK : WIRE_DECODE_MALFORMED;
}

/* ------------------------------------------------------------------------
 * Membership: MEMBER_CHANGE, MEMBERS, LEADER_TRANSFER, LEADER
 * ------------------------------------------------------------------------ */

#define MEMBER_CHANGE_FIXED_BYTES (1 + 8 + 2 + 2 + 2 + 1)

static bool member_change_ok(const struct wire_member_change *m)
{
	bool has_address = m->raft_address.len > 0 ||
			   m->client_address.len > 0 || m->http_address.len > 0;

	if (m->op < WIRE_MEMBER_ADD || m->op > WIRE_MEMBER_DEMOTE)
		return false;
	if (m->id == 0 || (m->flags & ~WIRE_MEMBER_FORCE) != 0)
		return false;
	if (m->op == WIRE_MEMBER_ADD)
		return m->raft_address.len > 0;
	return !has_address;
}

int wire_encode_member_change(struct wire_buf *b, uint64_t request_id,
			      const struct wire_member_change *m)
{
	struct enc e;
	int rv;

	if (!member_change_ok(m))
		return WIRE_ENCODE_INVALID;
	if (m->raft_address.len > WIRE_STRING_MAX ||
	    m->client_address.len > WIRE_STRING_MAX ||
	    m->http_address.len > WIRE_STRING_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	rv = frame_begin(b, WIRE_MEMBER_CHANGE, request_id,
			 MEMBER_CHANGE_FIXED_BYTES +
				 (uint64_t)m->raft_address.len +
				 m->client_address.len + m->http_address.len,
			 &e);
	if (rv != 0)
		return rv;
	enc_u8(&e, m->op);
	enc_u64(&e, m->id);
	enc_str16(&e, m->raft_address);
	enc_str16(&e, m->client_address);
	enc_str16(&e, m->http_address);
	enc_u8(&e, m->flags);
	frame_finish(b, &e);
	return 0;
}

int wire_decode_member_change(const void *body, size_t len,
			      struct wire_member_change *m)
{
	struct dec d;
	bool ok;

	memset(m, 0, sizeof *m);
	dec_init(&d, body, len);
	ok = dec_u8(&d, &m->op) && dec_u64(&d, &m->id) &&
	     dec_str16(&d, &m->raft_address, WIRE_STRING_MAX) &&
	     dec_str16(&d, &m->client_address, WIRE_STRING_MAX) &&
	     dec_str16(&d, &m->http_address, WIRE_STRING_MAX) &&
	     dec_u8(&d, &m->flags) && member_change_ok(m);
	return dec_done(&d, ok);
}

int wire_encode_members(struct wire_buf *b, uint64_t request_id, uint32_t n,
			const struct wire_member *members)
{
	struct enc e;
	uint64_t size = 4;
	uint32_t i;
	int rv;

	if (n > WIRE_MEMBERS_MAX)
		return WIRE_ENCODE_TOO_LARGE;
	for (i = 0; i < n; i++) {
		const struct wire_member *m = &members[i];

		if (m->role > WIRE_MEMBER_SPARE)
			return WIRE_ENCODE_INVALID;
		if (m->raft_address.len > WIRE_STRING_MAX ||
		    m->client_address.len > WIRE_STRING_MAX ||
		    m->http_address.len > WIRE_STRING_MAX)
			return WIRE_ENCODE_TOO_LARGE;
		size += MEMBER_MIN_BYTES + (uint64_t)m->raft_address.len +
			m->client_address.len + m->http_address.len;
	}
	rv = frame_begin(b, WIRE_MEMBERS, request_id, size, &e);
	if (rv != 0)
		return rv;
	enc_u32(&e, n);
	for (i = 0; i < n; i++) {
		const struct wire_member *m = &members[i];

		enc_u64(&e, m->id);
		enc_u8(&e, m->role);
		enc_str16(&e, m->raft_address);
		enc_str16(&e, m->client_address);
		enc_str16(&e, m->http_address);
	}
	frame_finish(b, &e);
	return 0;
}

int wire_decode_members(const void *body, size_t len, uint32_t *n,
			struct wire_member *members)
{
	struct dec d;
	uint32_t i;
	bool ok;

	*n = 0;
	dec_init(&d, body, len);
	ok = dec_u32(&d, n) && *n <= WIRE_MEMBERS_MAX;
	for (i = 0; ok && i < *n; i++) {
		struct wire_member *m = &members[i];

		memset(m, 0, sizeof *m);
		ok = dec_u64(&d, &m->id) && dec_u8(&d, &m->role) &&
		     m->role <= WIRE_MEMBER_SPARE &&
		     dec_str16(&d, &m->raft_address, WIRE_STRING_MAX) &&
		     dec_str16(&d, &m->client_address, WIRE_STRING_MAX) &&
		     dec_str16(&d, &m->http_address, WIRE_STRING_MAX);
	}
	if (!ok)
		*n = 0;
	return dec_done(&d, ok);
}

static int encode_u64_frame(struct wire_buf *b, uint16_t type,
			    uint64_t request_id, uint64_t v)
{
	struct enc e;
	int rv;

	rv = frame_begin(b, type, request_id, 8, &e);
	if (rv != 0)
		return rv;
	enc_u64(&e, v);
	frame_finish(b, &e);
	return 0;
}

static int decode_u64_body(const void *body, size_t len, uint64_t *v)
{
	struct dec d;
	bool ok;

	dec_init(&d, body, len);
	ok = dec_u64(&d, v);
	return dec_done(&d, ok);
}

int wire_encode_leader_transfer(struct wire_buf *b, uint64_t request_id,
				uint64_t id)
{
	return encode_u64_frame(b, WIRE_LEADER_TRANSFER, request_id, id);
}

int wire_decode_leader_transfer(const void *body, size_t len, uint64_t *id)
{
	return decode_u64_body(body, len, id);
}

int wire_encode_leader(struct wire_buf *b, uint64_t request_id,
		       uint64_t leader_id)
{
	return encode_u64_frame(b, WIRE_LEADER, request_id, leader_id);
}

int wire_decode_leader(const void *body, size_t len, uint64_t *leader_id)
{
	return decode_u64_body(body, len, leader_id);
}
