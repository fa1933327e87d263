/* fuzz_frame: libFuzzer target for the wire codec of the client protocol
 * (client/wire.c), the first code on a node to see a client's bytes and on
 * libcairn to see a server's. An input is a byte stream as it arrives on a
 * connection:
 *
 *   - wire_frame_peek() cuts it into frames, as the node's connections do;
 *     an invalid header ends the stream (the server closes), and a last
 *     frame whose header claims more bytes than remain is decoded with the
 *     bytes that remain, so that mutations which change a body's size still
 *     reach the decoders;
 *   - each body goes, in a block of exactly its size (ASan sees a read past
 *     it), to the decoder of its frame's type: requests and replies alike.
 *
 * Whatever decodes must round-trip: the encoder accepts the decoded view
 * and gives back exactly the body's bytes in a valid frame, and decoding
 * that frame again gives equal fields. Every pointer of a decoded view lies
 * inside the body, and every decoded value within the protocol's limits.
 * The corpus replay test (replay.c) links this file too. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire.h"

/* Reused between frames and inputs, as a connection reuses its output
 * buffer, so that its growth is exercised too. */
static struct wire_buf out;

/* Room for the largest APPEND_OK. */
static struct wire_part_result results[WIRE_APPEND_PARTS_MAX];
static struct wire_part_result results2[WIRE_APPEND_PARTS_MAX];

/* The body being decoded: every view must point inside it. */
static const uint8_t *in_body;
static size_t in_len;

static void check_inside(struct wire_bytes b, uint32_t max, const char *what)
{
	CHECK(b.len <= max, "%s: %u bytes", what, b.len);
	CHECK(b.len > 0 || b.p == NULL, "%s: empty view not NULL", what);
	CHECK(fuzz_inside(b.p, b.len, in_body, in_len), "%s: outside the body",
	      what);
}

static bool bytes_equal(struct wire_bytes a, struct wire_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Checks that @out holds exactly one frame of @type and @request_id whose
 * body is the input body, byte for byte; returns that body. */
static const uint8_t *check_reencoded(unsigned type, uint64_t request_id)
{
	struct wire_header h;
	size_t frame_len;
	int rv;

	rv = wire_frame_peek(out.p, out.len, &h, &frame_len);
	CHECK(rv == WIRE_OK, "re-encoded frame does not peek: %d", rv);
	CHECK(frame_len == out.len, "re-encoded frame of %zu bytes in %zu",
	      frame_len, out.len);
	CHECK(h.type == type, "re-encoded type %#x, not %#x", h.type, type);
	CHECK(h.request_id == request_id, "re-encoded request id differs");
	CHECK(h.body_len == in_len, "re-encoded body of %u bytes, input %zu",
	      h.body_len, in_len);
	CHECK(in_len == 0 ||
		      memcmp(out.p + WIRE_HEADER_BYTES, in_body, in_len) == 0,
	      "re-encoded %s body differs from the input",
	      wire_type_name(type));
	return out.p + WIRE_HEADER_BYTES;
}

/* ---- APPEND ---- */

static void check_append_view(const struct wire_append *a)
{
	size_t events = 0;
	uint32_t i;
	uint32_t k;

	CHECK(a->n_parts >= 1 && a->n_parts <= WIRE_APPEND_PARTS_MAX,
	      "%u parts", a->n_parts);
	CHECK(a->parts != NULL && a->events_ != NULL, "arrays missing");
	for (i = 0; i < a->n_parts; i++) {
		const struct wire_part *p = &a->parts[i];

		check_inside(p->stream, UINT16_MAX, "stream");
		CHECK(p->expect_kind <= WIRE_EXPECT_EXACT, "expect kind %u",
		      p->expect_kind);
		CHECK(p->n_events >= 1, "part %u without events", i);
		CHECK(p->events == a->events_ + events,
		      "part %u: events not in order in the shared array", i);
		events += p->n_events;
		CHECK(events <= in_len / 36, "%zu events in %zu bytes", events,
		      in_len);
		for (k = 0; k < p->n_events; k++) {
			check_inside(p->events[k].type, UINT16_MAX, "type");
			check_inside(p->events[k].data, UINT32_MAX, "data");
			check_inside(p->events[k].metadata, UINT32_MAX,
				     "metadata");
		}
	}
}

static bool append_equal(const struct wire_append *x,
			 const struct wire_append *y)
{
	uint32_t i;
	uint32_t k;

	if (x->has_client != y->has_client ||
	    memcmp(x->client_id, y->client_id, 16) != 0 ||
	    x->client_seq != y->client_seq || x->n_parts != y->n_parts)
		return false;
	for (i = 0; i < x->n_parts; i++) {
		const struct wire_part *p = &x->parts[i];
		const struct wire_part *q = &y->parts[i];

		if (!bytes_equal(p->stream, q->stream) ||
		    p->expect_kind != q->expect_kind ||
		    p->expect_version != q->expect_version ||
		    p->n_events != q->n_events)
			return false;
		for (k = 0; k < p->n_events; k++) {
			const struct wire_event_in *e = &p->events[k];
			const struct wire_event_in *f = &q->events[k];

			if (memcmp(e->id, f->id, 16) != 0 ||
			    !bytes_equal(e->type, f->type) ||
			    e->schema_version != f->schema_version ||
			    e->event_time_us != f->event_time_us ||
			    !bytes_equal(e->data, f->data) ||
			    !bytes_equal(e->metadata, f->metadata))
				return false;
		}
	}
	return true;
}

static void fuzz_append(uint64_t id)
{
	struct wire_append a;
	struct wire_append again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_append(in_body, in_len, &a);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED || rv == WIRE_DECODE_NOMEM,
		      "append decode returned %d", rv);
		CHECK(a.parts == NULL && a.events_ == NULL,
		      "failed decode left arrays behind");
		return;
	}
	check_append_view(&a);
	wire_buf_reset(&out);
	rv = wire_encode_append(&out, id, &a);
	CHECK(rv == WIRE_OK, "append re-encode returned %d", rv);
	body = check_reencoded(WIRE_APPEND, id);
	rv = wire_decode_append(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded append does not decode: %d", rv);
	CHECK(append_equal(&a, &again),
	      "append fields differ after a round "
	      "trip");
	wire_append_close(&again);
	wire_append_close(&a);
	CHECK(a.parts == NULL && a.events_ == NULL, "close left arrays");
}

/* ---- APPEND_OK ---- */

static void fuzz_append_ok(uint64_t id)
{
	const uint8_t *body;
	uint32_t n = 0;
	uint32_t n2 = 0;
	bool dup = false;
	bool dup2 = false;
	int rv;

	rv = wire_decode_append_ok(in_body, in_len, &dup, &n, results,
				   WIRE_APPEND_PARTS_MAX);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "append_ok decode: %d", rv);
		return;
	}
	CHECK(n >= 1 && n <= WIRE_APPEND_PARTS_MAX, "%u results", n);
	CHECK(in_len == 5 + (size_t)n * 32, "%u results in %zu bytes", n,
	      in_len);
	wire_buf_reset(&out);
	rv = wire_encode_append_ok(&out, id, dup, n, results);
	CHECK(rv == WIRE_OK, "append_ok re-encode returned %d", rv);
	body = check_reencoded(WIRE_APPEND_OK, id);
	/* Too little room is refused; exactly enough is not. */
	rv = wire_decode_append_ok(body, in_len, &dup2, &n2, results2, n - 1);
	CHECK(rv == WIRE_DECODE_MALFORMED, "append_ok over capacity: %d", rv);
	rv = wire_decode_append_ok(body, in_len, &dup2, &n2, results2, n);
	CHECK(rv == WIRE_OK, "re-encoded append_ok does not decode: %d", rv);
	CHECK(dup == dup2 && n == n2 &&
		      memcmp(results, results2, n * sizeof results[0]) == 0,
	      "append_ok fields differ after a round trip");
}

/* ---- READ_STREAM, READ_ALL, HEAD, HEAD_OK, STATUS ---- */

static void check_consistency(const struct wire_consistency_req *c)
{
	CHECK(c->kind <= WIRE_CONSISTENCY_LEADER, "consistency %u", c->kind);
}

static bool consistency_equal(const struct wire_consistency_req *x,
			      const struct wire_consistency_req *y)
{
	return x->kind == y->kind && x->min_position == y->min_position;
}

static void fuzz_read_stream(uint64_t id)
{
	struct wire_read_stream r;
	struct wire_read_stream again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_read_stream(in_body, in_len, &r);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "read_stream decode: %d",
		      rv);
		return;
	}
	check_inside(r.stream, UINT16_MAX, "stream");
	check_consistency(&r.consistency);
	wire_buf_reset(&out);
	rv = wire_encode_read_stream(&out, id, &r);
	CHECK(rv == WIRE_OK, "read_stream re-encode returned %d", rv);
	body = check_reencoded(WIRE_READ_STREAM, id);
	rv = wire_decode_read_stream(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded read_stream does not decode");
	CHECK(bytes_equal(r.stream, again.stream) &&
		      r.from_version == again.from_version &&
		      r.backward == again.backward && r.limit == again.limit &&
		      consistency_equal(&r.consistency, &again.consistency),
	      "read_stream fields differ after a round trip");
}

static void fuzz_read_all(uint64_t id)
{
	struct wire_read_all r;
	struct wire_read_all again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_read_all(in_body, in_len, &r);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "read_all decode: %d", rv);
		return;
	}
	check_inside(r.stream_prefix, UINT16_MAX, "stream prefix");
	check_inside(r.category, UINT16_MAX, "category");
	check_inside(r.type, UINT16_MAX, "type");
	check_consistency(&r.consistency);
	wire_buf_reset(&out);
	rv = wire_encode_read_all(&out, id, &r);
	CHECK(rv == WIRE_OK, "read_all re-encode returned %d", rv);
	body = check_reencoded(WIRE_READ_ALL, id);
	rv = wire_decode_read_all(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded read_all does not decode");
	CHECK(r.from_position == again.from_position &&
		      r.limit == again.limit &&
		      consistency_equal(&r.consistency, &again.consistency) &&
		      bytes_equal(r.stream_prefix, again.stream_prefix) &&
		      bytes_equal(r.category, again.category) &&
		      bytes_equal(r.type, again.type),
	      "read_all fields differ after a round trip");
}

static void fuzz_head(uint64_t id)
{
	struct wire_head h;
	struct wire_head again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_head(in_body, in_len, &h);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "head decode: %d", rv);
		return;
	}
	check_inside(h.stream, UINT16_MAX, "stream");
	check_consistency(&h.consistency);
	wire_buf_reset(&out);
	rv = wire_encode_head(&out, id, &h);
	CHECK(rv == WIRE_OK, "head re-encode returned %d", rv);
	body = check_reencoded(WIRE_HEAD, id);
	rv = wire_decode_head(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded head does not decode");
	CHECK(bytes_equal(h.stream, again.stream) &&
		      consistency_equal(&h.consistency, &again.consistency),
	      "head fields differ after a round trip");
}

static void fuzz_head_ok(uint64_t id)
{
	const uint8_t *body;
	uint64_t version;
	uint64_t position;
	uint64_t version2;
	uint64_t position2;
	int rv;

	rv = wire_decode_head_ok(in_body, in_len, &version, &position);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "head_ok decode: %d", rv);
		CHECK(in_len != 16, "a 16-byte head_ok is refused");
		return;
	}
	wire_buf_reset(&out);
	rv = wire_encode_head_ok(&out, id, version, position);
	CHECK(rv == WIRE_OK, "head_ok re-encode returned %d", rv);
	body = check_reencoded(WIRE_HEAD_OK, id);
	rv = wire_decode_head_ok(body, in_len, &version2, &position2);
	CHECK(rv == WIRE_OK && version == version2 && position == position2,
	      "head_ok fields differ after a round trip");
}

static void fuzz_status(uint64_t id)
{
	int rv = wire_decode_status(in_body, in_len);

	CHECK((rv == WIRE_OK) == (in_len == 0), "status with %zu bytes: %d",
	      in_len, rv);
	if (rv != WIRE_OK)
		return;
	wire_buf_reset(&out);
	rv = wire_encode_status(&out, id);
	CHECK(rv == WIRE_OK, "status re-encode returned %d", rv);
	check_reencoded(WIRE_STATUS, id);
}

/* ---- STATUS_OK ---- */

static bool status_equal(const struct wire_status *x,
			 const struct wire_status *y)
{
	uint32_t i;

	if (x->node_id != y->node_id || x->role != y->role ||
	    x->term != y->term || x->commit_index != y->commit_index ||
	    x->applied_index != y->applied_index ||
	    x->last_position != y->last_position ||
	    x->leader_id != y->leader_id ||
	    !bytes_equal(x->leader_client_address, y->leader_client_address) ||
	    x->n_members != y->n_members)
		return false;
	for (i = 0; i < x->n_members; i++) {
		const struct wire_member *m = &x->members[i];
		const struct wire_member *n = &y->members[i];

		if (m->id != n->id || m->role != n->role ||
		    !bytes_equal(m->raft_address, n->raft_address) ||
		    !bytes_equal(m->client_address, n->client_address) ||
		    !bytes_equal(m->http_address, n->http_address))
			return false;
	}
	return true;
}

static void fuzz_status_ok(uint64_t id)
{
	struct wire_status s;
	struct wire_status again;
	const uint8_t *body;
	uint32_t i;
	int rv;

	rv = wire_decode_status_ok(in_body, in_len, &s);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "status_ok decode: %d", rv);
		return;
	}
	CHECK(s.role <= WIRE_ROLE_UNAVAILABLE, "role %u", s.role);
	CHECK(s.n_members <= WIRE_MEMBERS_MAX, "%u members", s.n_members);
	check_inside(s.leader_client_address, WIRE_STRING_MAX, "leader");
	for (i = 0; i < s.n_members; i++) {
		CHECK(s.members[i].role <= WIRE_MEMBER_SPARE, "member role %u",
		      s.members[i].role);
		check_inside(s.members[i].raft_address, WIRE_STRING_MAX,
			     "raft address");
		check_inside(s.members[i].client_address, WIRE_STRING_MAX,
			     "client address");
		check_inside(s.members[i].http_address, WIRE_STRING_MAX,
			     "http address");
	}
	wire_buf_reset(&out);
	rv = wire_encode_status_ok(&out, id, &s);
	CHECK(rv == WIRE_OK, "status_ok re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATUS_OK, id);
	rv = wire_decode_status_ok(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded status_ok does not decode");
	CHECK(status_equal(&s, &again),
	      "status_ok fields differ after a round trip");
}

/* ---- ERROR ---- */

static void fuzz_error(uint64_t id)
{
	struct wire_err e;
	struct wire_err again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_error(in_body, in_len, &e);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "error decode: %d", rv);
		return;
	}
	CHECK(strcmp(wire_strerror((int)e.code), "unknown error") != 0,
	      "error code %u decoded", e.code);
	check_inside(e.leader, WIRE_STRING_MAX, "leader");
	check_inside(e.message, WIRE_STRING_MAX, "message");
	wire_buf_reset(&out);
	rv = wire_encode_error(&out, id, &e);
	CHECK(rv == WIRE_OK, "error re-encode returned %d", rv);
	body = check_reencoded(WIRE_ERROR, id);
	rv = wire_decode_error(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded error does not decode");
	CHECK(e.code == again.code && e.part == again.part &&
		      e.actual_version == again.actual_version &&
		      bytes_equal(e.leader, again.leader) &&
		      bytes_equal(e.message, again.message),
	      "error fields differ after a round trip");
}

/* ---- EVENTS ---- */

static void check_event(const struct wire_event *e)
{
	check_inside(e->stream, UINT16_MAX, "stream");
	check_inside(e->type, UINT16_MAX, "type");
	check_inside(e->data, UINT32_MAX, "data");
	check_inside(e->metadata, UINT32_MAX, "metadata");
}

static bool event_equal(const struct wire_event *x, const struct wire_event *y)
{
	return x->position == y->position && x->version == y->version &&
	       bytes_equal(x->stream, y->stream) &&
	       memcmp(x->id, y->id, 16) == 0 && bytes_equal(x->type, y->type) &&
	       x->schema_version == y->schema_version &&
	       x->event_time_us == y->event_time_us &&
	       x->commit_time_us == y->commit_time_us &&
	       x->has_client == y->has_client &&
	       memcmp(x->client_id, y->client_id, 16) == 0 &&
	       x->client_seq == y->client_seq &&
	       bytes_equal(x->data, y->data) &&
	       bytes_equal(x->metadata, y->metadata);
}

/* EVENTS, or with @type WIRE_SUB_EVENTS a subscription's push (the same
 * body). */
static void fuzz_events(unsigned type, uint64_t id)
{
	struct wire_events_writer w;
	struct wire_events_reader r;
	struct wire_events_reader again;
	struct wire_event e;
	struct wire_event f;
	const uint8_t *body;
	uint32_t seen = 0;
	size_t bytes = 0;
	int rv;

	rv = wire_events_open(in_body, in_len, &r);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "events open: %d", rv);
		return;
	}
	wire_buf_reset(&out);
	rv = type == WIRE_EVENTS ? wire_events_begin(&out, id, &w)
				 : wire_sub_events_begin(&out, id, &w);
	CHECK(rv == WIRE_OK, "events begin returned %d", rv);
	while (wire_events_next(&r, &e)) {
		seen++;
		CHECK(seen <= r.count, "reader yields more than %u", r.count);
		check_event(&e);
		bytes += 87 + (size_t)e.stream.len + e.type.len + e.data.len +
			 e.metadata.len;
		rv = wire_events_add(&out, &w, &e);
		CHECK(rv == WIRE_OK, "events add returned %d", rv);
	}
	CHECK(seen == r.count, "reader yields %u of %u", seen, r.count);
	CHECK(!wire_events_next(&r, &e), "reader restarts after its end");
	CHECK(w.count == seen && w.event_bytes == bytes,
	      "writer counted %u events, %zu bytes", w.count, w.event_bytes);
	CHECK(in_len == 13 + bytes, "events of %zu bytes in a body of %zu",
	      bytes, in_len);
	wire_events_end(&out, &w, r.next, r.end);
	body = check_reencoded(type, id);

	/* Both readers from the start, side by side. */
	rv = wire_events_open(in_body, in_len, &r);
	CHECK(rv == WIRE_OK, "events open twice differs");
	rv = wire_events_open(body, in_len, &again);
	CHECK(rv == WIRE_OK, "re-encoded events do not open");
	CHECK(r.next == again.next && r.end == again.end &&
		      r.count == again.count,
	      "events page fields differ after a round trip");
	while (wire_events_next(&r, &e)) {
		CHECK(wire_events_next(&again, &f), "re-encoded page shorter");
		CHECK(event_equal(&e, &f),
		      "event fields differ after a round trip");
	}
	CHECK(!wire_events_next(&again, &f), "re-encoded page longer");
}

/* ---- subscriptions ---- */

static void fuzz_subscribe(uint64_t id)
{
	struct wire_subscribe s;
	struct wire_subscribe again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_subscribe(in_body, in_len, &s);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "subscribe decode: %d", rv);
		return;
	}
	CHECK(s.kind <= WIRE_SUB_CATEGORY, "kind %u", s.kind);
	CHECK(s.from_kind <= WIRE_SUB_FROM_NOW, "from kind %u", s.from_kind);
	check_inside(s.target, UINT16_MAX, "target");
	check_inside(s.type, UINT16_MAX, "type");
	wire_buf_reset(&out);
	rv = wire_encode_subscribe(&out, id, &s);
	CHECK(rv == WIRE_OK, "subscribe re-encode returned %d", rv);
	body = check_reencoded(WIRE_SUBSCRIBE, id);
	rv = wire_decode_subscribe(body, in_len, &again);
	CHECK(rv == WIRE_OK && s.kind == again.kind &&
		      s.from_kind == again.from_kind && s.from == again.from &&
		      bytes_equal(s.target, again.target) &&
		      bytes_equal(s.type, again.type) &&
		      s.credit == again.credit,
	      "subscribe fields differ after a round trip");
}

static void fuzz_credit(uint64_t id)
{
	uint32_t n;
	uint32_t n2;
	int rv;

	rv = wire_decode_credit(in_body, in_len, &n);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "credit decode: %d", rv);
		return;
	}
	CHECK(n >= 1 && in_len == 4, "credit %u in %zu bytes", n, in_len);
	wire_buf_reset(&out);
	rv = wire_encode_credit(&out, id, n);
	CHECK(rv == WIRE_OK, "credit re-encode returned %d", rv);
	rv = wire_decode_credit(check_reencoded(WIRE_CREDIT, id), in_len, &n2);
	CHECK(rv == WIRE_OK && n == n2, "credit differs after a round trip");
}

static void fuzz_unsubscribe(uint64_t id)
{
	int rv = wire_decode_unsubscribe(in_body, in_len);

	CHECK((rv == WIRE_OK) == (in_len == 0), "unsubscribe with %zu bytes",
	      in_len);
	if (rv != WIRE_OK)
		return;
	wire_buf_reset(&out);
	rv = wire_encode_unsubscribe(&out, id);
	CHECK(rv == WIRE_OK, "unsubscribe re-encode returned %d", rv);
	check_reencoded(WIRE_UNSUBSCRIBE, id);
}

static void fuzz_sub_live(uint64_t id)
{
	uint64_t next;
	uint64_t last;
	uint64_t next2;
	uint64_t last2;
	int rv;

	rv = wire_decode_sub_live(in_body, in_len, &next, &last);
	if (rv != WIRE_OK) {
		CHECK(in_len != 16, "a 16-byte sub_live is refused");
		return;
	}
	wire_buf_reset(&out);
	rv = wire_encode_sub_live(&out, id, next, last);
	CHECK(rv == WIRE_OK, "sub_live re-encode returned %d", rv);
	rv = wire_decode_sub_live(check_reencoded(WIRE_SUB_LIVE, id), in_len,
				  &next2, &last2);
	CHECK(rv == WIRE_OK && next == next2 && last == last2,
	      "sub_live fields differ after a round trip");
}

static void fuzz_sub_end(uint64_t id)
{
	struct wire_sub_end e;
	struct wire_sub_end again;
	int rv;

	rv = wire_decode_sub_end(in_body, in_len, &e);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "sub_end decode: %d", rv);
		return;
	}
	CHECK(e.reason >= WIRE_SUB_END_UNSUBSCRIBED &&
		      e.reason <= WIRE_SUB_END_INTERNAL,
	      "reason %u decoded", e.reason);
	check_inside(e.message, WIRE_STRING_MAX, "message");
	wire_buf_reset(&out);
	rv = wire_encode_sub_end(&out, id, &e);
	CHECK(rv == WIRE_OK, "sub_end re-encode returned %d", rv);
	rv = wire_decode_sub_end(check_reencoded(WIRE_SUB_END, id), in_len,
				 &again);
	CHECK(rv == WIRE_OK && e.reason == again.reason &&
		      e.next == again.next &&
		      bytes_equal(e.message, again.message),
	      "sub_end fields differ after a round trip");
}

/* Decodes @len bytes as the body of a frame of @type. */
/* ---- checkpoints and snapshots ---- */

static void fuzz_checkpoint_get(uint64_t id)
{
	struct wire_checkpoint_get g;
	struct wire_checkpoint_get again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_checkpoint_get(in_body, in_len, &g);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "checkpoint_get decode: %d",
		      rv);
		return;
	}
	check_inside(g.name, UINT16_MAX, "checkpoint name");
	check_consistency(&g.consistency);
	wire_buf_reset(&out);
	rv = wire_encode_checkpoint_get(&out, id, &g);
	CHECK(rv == WIRE_OK, "checkpoint_get re-encode returned %d", rv);
	body = check_reencoded(WIRE_CHECKPOINT_GET, id);
	rv = wire_decode_checkpoint_get(body, in_len, &again);
	CHECK(rv == WIRE_OK && bytes_equal(g.name, again.name) &&
		      consistency_equal(&g.consistency, &again.consistency),
	      "checkpoint_get fields differ after a round trip");
}

static void fuzz_checkpoint_set(uint64_t id)
{
	struct wire_checkpoint_set s;
	struct wire_checkpoint_set again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_checkpoint_set(in_body, in_len, &s);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "checkpoint_set decode: %d",
		      rv);
		return;
	}
	check_inside(s.name, UINT16_MAX, "checkpoint name");
	CHECK(s.expect_kind <= WIRE_CP_EXPECT_VALUE, "expect kind %u",
	      s.expect_kind);
	CHECK((s.expect_kind == WIRE_CP_EXPECT_VALUE) == (s.expected != 0),
	      "expected value %llu with kind %u",
	      (unsigned long long)s.expected, s.expect_kind);
	wire_buf_reset(&out);
	rv = wire_encode_checkpoint_set(&out, id, &s);
	CHECK(rv == WIRE_OK, "checkpoint_set re-encode returned %d", rv);
	body = check_reencoded(WIRE_CHECKPOINT_SET, id);
	rv = wire_decode_checkpoint_set(body, in_len, &again);
	CHECK(rv == WIRE_OK && s.has_client == again.has_client &&
		      memcmp(s.client_id, again.client_id, 16) == 0 &&
		      s.client_seq == again.client_seq &&
		      bytes_equal(s.name, again.name) &&
		      s.value == again.value &&
		      s.expect_kind == again.expect_kind &&
		      s.expected == again.expected,
	      "checkpoint_set fields differ after a round trip");
}

static void fuzz_snapshot_put(uint64_t id)
{
	struct wire_snapshot_put s;
	struct wire_snapshot_put again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_snapshot_put(in_body, in_len, &s);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "snapshot_put decode: %d",
		      rv);
		return;
	}
	check_inside(s.stream, UINT16_MAX, "snapshot stream");
	check_inside(s.data, WIRE_SNAPSHOT_BYTES_MAX, "snapshot data");
	CHECK(s.version >= 1, "snapshot version 0 accepted");
	wire_buf_reset(&out);
	rv = wire_encode_snapshot_put(&out, id, &s);
	CHECK(rv == WIRE_OK, "snapshot_put re-encode returned %d", rv);
	body = check_reencoded(WIRE_SNAPSHOT_PUT, id);
	rv = wire_decode_snapshot_put(body, in_len, &again);
	CHECK(rv == WIRE_OK && s.has_client == again.has_client &&
		      memcmp(s.client_id, again.client_id, 16) == 0 &&
		      s.client_seq == again.client_seq &&
		      bytes_equal(s.stream, again.stream) &&
		      s.version == again.version &&
		      bytes_equal(s.data, again.data),
	      "snapshot_put fields differ after a round trip");
}

static void fuzz_snapshot_get(uint64_t id)
{
	struct wire_snapshot_get g;
	struct wire_snapshot_get again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_snapshot_get(in_body, in_len, &g);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "snapshot_get decode: %d",
		      rv);
		return;
	}
	check_inside(g.stream, UINT16_MAX, "snapshot stream");
	check_consistency(&g.consistency);
	wire_buf_reset(&out);
	rv = wire_encode_snapshot_get(&out, id, &g);
	CHECK(rv == WIRE_OK, "snapshot_get re-encode returned %d", rv);
	body = check_reencoded(WIRE_SNAPSHOT_GET, id);
	rv = wire_decode_snapshot_get(body, in_len, &again);
	CHECK(rv == WIRE_OK && bytes_equal(g.stream, again.stream) &&
		      g.max_version == again.max_version &&
		      consistency_equal(&g.consistency, &again.consistency),
	      "snapshot_get fields differ after a round trip");
}

static void fuzz_checkpoint(uint64_t id)
{
	const uint8_t *body;
	uint64_t value;
	uint64_t value2;
	bool found;
	bool found2;
	int rv;

	rv = wire_decode_checkpoint(in_body, in_len, &found, &value);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "checkpoint decode: %d", rv);
		return;
	}
	CHECK(found || value == 0, "missing checkpoint with a value");
	wire_buf_reset(&out);
	rv = wire_encode_checkpoint(&out, id, found, value);
	CHECK(rv == WIRE_OK, "checkpoint re-encode returned %d", rv);
	body = check_reencoded(WIRE_CHECKPOINT, id);
	rv = wire_decode_checkpoint(body, in_len, &found2, &value2);
	CHECK(rv == WIRE_OK && found == found2 && value == value2,
	      "checkpoint fields differ after a round trip");
}

static void fuzz_state_ok(uint64_t id)
{
	const uint8_t *body;
	bool dup;
	bool dup2;
	int rv;

	rv = wire_decode_state_ok(in_body, in_len, &dup);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "state_ok decode: %d", rv);
		return;
	}
	wire_buf_reset(&out);
	rv = wire_encode_state_ok(&out, id, dup);
	CHECK(rv == WIRE_OK, "state_ok re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATE_OK, id);
	rv = wire_decode_state_ok(body, in_len, &dup2);
	CHECK(rv == WIRE_OK && dup == dup2,
	      "state_ok fields differ after a round trip");
}

static void fuzz_snapshot(uint64_t id)
{
	struct wire_bytes data;
	struct wire_bytes data2;
	const uint8_t *body;
	uint64_t version;
	uint64_t version2;
	int rv;

	rv = wire_decode_snapshot(in_body, in_len, &version, &data);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "snapshot decode: %d", rv);
		return;
	}
	check_inside(data, WIRE_SNAPSHOT_BYTES_MAX, "snapshot data");
	wire_buf_reset(&out);
	rv = wire_encode_snapshot(&out, id, version, data);
	CHECK(rv == WIRE_OK, "snapshot re-encode returned %d", rv);
	body = check_reencoded(WIRE_SNAPSHOT, id);
	rv = wire_decode_snapshot(body, in_len, &version2, &data2);
	CHECK(rv == WIRE_OK && version == version2 && bytes_equal(data, data2),
	      "snapshot fields differ after a round trip");
}

/* ---- membership: MEMBER_CHANGE, MEMBERS, LEADER_TRANSFER, LEADER ---- */

static void fuzz_member_change(uint64_t id)
{
	struct wire_member_change m;
	struct wire_member_change again;
	const uint8_t *body;
	int rv;

	rv = wire_decode_member_change(in_body, in_len, &m);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "member_change decode: %d",
		      rv);
		return;
	}
	CHECK(m.op >= WIRE_MEMBER_ADD && m.op <= WIRE_MEMBER_DEMOTE, "op %u",
	      m.op);
	CHECK(m.id != 0 && (m.flags & ~WIRE_MEMBER_FORCE) == 0,
	      "id or flags accepted");
	check_inside(m.raft_address, WIRE_STRING_MAX, "raft address");
	check_inside(m.client_address, WIRE_STRING_MAX, "client address");
	check_inside(m.http_address, WIRE_STRING_MAX, "http address");
	wire_buf_reset(&out);
	rv = wire_encode_member_change(&out, id, &m);
	CHECK(rv == WIRE_OK, "member_change re-encode returned %d", rv);
	body = check_reencoded(WIRE_MEMBER_CHANGE, id);
	rv = wire_decode_member_change(body, in_len, &again);
	CHECK(rv == WIRE_OK && again.op == m.op && again.id == m.id &&
		      again.flags == m.flags &&
		      bytes_equal(again.raft_address, m.raft_address) &&
		      bytes_equal(again.client_address, m.client_address) &&
		      bytes_equal(again.http_address, m.http_address),
	      "member_change fields differ after a round trip");
}

static void fuzz_members(uint64_t id)
{
	struct wire_member ms[WIRE_MEMBERS_MAX];
	struct wire_member again[WIRE_MEMBERS_MAX];
	const uint8_t *body;
	uint32_t n;
	uint32_t n2;
	int rv;

	rv = wire_decode_members(in_body, in_len, &n, ms);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "members decode: %d", rv);
		return;
	}
	CHECK(n <= WIRE_MEMBERS_MAX, "%u members", n);
	for (uint32_t i = 0; i < n; i++) {
		CHECK(ms[i].role <= WIRE_MEMBER_SPARE, "member role %u",
		      ms[i].role);
		check_inside(ms[i].raft_address, WIRE_STRING_MAX, "raft");
		check_inside(ms[i].client_address, WIRE_STRING_MAX, "client");
		check_inside(ms[i].http_address, WIRE_STRING_MAX, "http");
	}
	wire_buf_reset(&out);
	rv = wire_encode_members(&out, id, n, ms);
	CHECK(rv == WIRE_OK, "members re-encode returned %d", rv);
	body = check_reencoded(WIRE_MEMBERS, id);
	rv = wire_decode_members(body, in_len, &n2, again);
	CHECK(rv == WIRE_OK && n2 == n, "re-encoded members do not decode");
	for (uint32_t i = 0; i < n; i++)
		CHECK(again[i].id == ms[i].id && again[i].role == ms[i].role &&
			      bytes_equal(again[i].raft_address,
					  ms[i].raft_address) &&
			      bytes_equal(again[i].client_address,
					  ms[i].client_address) &&
			      bytes_equal(again[i].http_address,
					  ms[i].http_address),
		      "members differ after a round trip");
}

static void fuzz_u64_body(unsigned type, uint64_t id)
{
	const uint8_t *body;
	uint64_t v;
	uint64_t v2;
	int rv;

	rv = type == WIRE_LEADER
		     ? wire_decode_leader(in_body, in_len, &v)
		     : wire_decode_leader_transfer(in_body, in_len, &v);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "%s decode: %d",
		      wire_type_name(type), rv);
		return;
	}
	wire_buf_reset(&out);
	rv = type == WIRE_LEADER ? wire_encode_leader(&out, id, v)
				 : wire_encode_leader_transfer(&out, id, v);
	CHECK(rv == WIRE_OK, "%s re-encode returned %d", wire_type_name(type),
	      rv);
	body = check_reencoded(type, id);
	rv = type == WIRE_LEADER
		     ? wire_decode_leader(body, in_len, &v2)
		     : wire_decode_leader_transfer(body, in_len, &v2);
	CHECK(rv == WIRE_OK && v == v2, "%s differs after a round trip",
	      wire_type_name(type));
}

/* ---- copying a node's store ---- */

static void fuzz_state_begin(uint64_t id)
{
	struct wire_state_begin sb;
	struct wire_state_begin sb2;
	const uint8_t *body;
	int rv;

	rv = wire_decode_state_begin(in_body, in_len, &sb);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "state_begin decode: %d",
		      rv);
		return;
	}
	wire_buf_reset(&out);
	rv = wire_encode_state_begin(&out, id, &sb);
	CHECK(rv == WIRE_OK, "state_begin re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATE_BEGIN, id);
	rv = wire_decode_state_begin(body, in_len, &sb2);
	CHECK(rv == WIRE_OK && sb.min_applied_index == sb2.min_applied_index &&
		      sb.flags == sb2.flags,
	      "state_begin fields differ after a round trip");
}

static void fuzz_state_listing(uint64_t id)
{
	struct wire_state_listing l;
	struct wire_state_listing l2;
	const uint8_t *body;
	uint32_t k;
	int rv;

	rv = wire_decode_state_listing(in_body, in_len, &l);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED || rv == WIRE_DECODE_NOMEM,
		      "state_listing decode: %d", rv);
		return;
	}
	CHECK(l.session != 0, "state_listing: session 0 accepted");
	CHECK(l.n_files <= WIRE_STATE_FILES_MAX, "state_listing: %u files",
	      l.n_files);
	check_inside(l.identity, WIRE_STATE_IDENTITY_MAX, "identity");
	for (k = 0; k < l.n_files; k++) {
		check_inside(l.files[k].name, WIRE_STATE_NAME_MAX, "file name");
		CHECK(wire_state_name_valid(l.files[k].name),
		      "state_listing: file %u has an invalid name", k);
	}
	wire_buf_reset(&out);
	rv = wire_encode_state_listing(&out, id, &l);
	CHECK(rv == WIRE_OK, "state_listing re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATE_LISTING, id);
	rv = wire_decode_state_listing(body, in_len, &l2);
	CHECK(rv == WIRE_OK && l2.session == l.session &&
		      l2.node_id == l.node_id &&
		      l2.applied_index == l.applied_index &&
		      l2.last_position == l.last_position &&
		      l2.n_files == l.n_files &&
		      bytes_equal(l2.identity, l.identity),
	      "state_listing fields differ after a round trip");
	for (k = 0; k < l.n_files; k++)
		CHECK(bytes_equal(l.files[k].name, l2.files[k].name) &&
			      l.files[k].size == l2.files[k].size,
		      "state_listing file %u differs after a round trip", k);
	wire_state_listing_close(&l2);
	wire_state_listing_close(&l);
}

static void fuzz_state_chunk(uint64_t id)
{
	struct wire_state_chunk ch;
	struct wire_state_chunk ch2;
	const uint8_t *body;
	int rv;

	rv = wire_decode_state_chunk(in_body, in_len, &ch);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "state_chunk decode: %d",
		      rv);
		return;
	}
	CHECK(ch.length >= 1 && ch.length <= WIRE_STATE_CHUNK_BYTES_MAX,
	      "state_chunk: length %u accepted", ch.length);
	wire_buf_reset(&out);
	rv = wire_encode_state_chunk(&out, id, &ch);
	CHECK(rv == WIRE_OK, "state_chunk re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATE_CHUNK, id);
	rv = wire_decode_state_chunk(body, in_len, &ch2);
	CHECK(rv == WIRE_OK && ch.session == ch2.session &&
		      ch.file == ch2.file && ch.offset == ch2.offset &&
		      ch.length == ch2.length,
	      "state_chunk fields differ after a round trip");
}

static void fuzz_state_data(uint64_t id)
{
	struct wire_bytes data;
	struct wire_bytes data2;
	const uint8_t *body;
	uint32_t crc;
	uint32_t crc2;
	int rv;

	rv = wire_decode_state_data(in_body, in_len, &crc, &data);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "state_data decode: %d", rv);
		return;
	}
	check_inside(data, WIRE_STATE_CHUNK_BYTES_MAX, "state_data bytes");
	wire_buf_reset(&out);
	rv = wire_encode_state_data(&out, id, crc, data);
	CHECK(rv == WIRE_OK, "state_data re-encode returned %d", rv);
	body = check_reencoded(WIRE_STATE_DATA, id);
	rv = wire_decode_state_data(body, in_len, &crc2, &data2);
	CHECK(rv == WIRE_OK && crc == crc2 && bytes_equal(data, data2),
	      "state_data fields differ after a round trip");
}

static void fuzz_state_end(unsigned type, uint64_t id)
{
	const uint8_t *body;
	uint64_t session = 0;
	uint64_t session2 = 0;
	int rv;

	rv = type == WIRE_STATE_END
		     ? wire_decode_state_end(in_body, in_len, &session)
		     : wire_decode_state_ended(in_body, in_len);
	if (rv != WIRE_OK) {
		CHECK(rv == WIRE_DECODE_MALFORMED, "%s decode: %d",
		      wire_type_name(type), rv);
		return;
	}
	wire_buf_reset(&out);
	rv = type == WIRE_STATE_END ? wire_encode_state_end(&out, id, session)
				    : wire_encode_state_ended(&out, id);
	CHECK(rv == WIRE_OK, "%s re-encode returned %d", wire_type_name(type),
	      rv);
	body = check_reencoded(type, id);
	rv = type == WIRE_STATE_END
		     ? wire_decode_state_end(body, in_len, &session2)
		     : wire_decode_state_ended(body, in_len);
	CHECK(rv == WIRE_OK && session == session2,
	      "%s differs after a round trip", wire_type_name(type));
}

static void fuzz_body(unsigned type, uint64_t id, const uint8_t *body,
		      size_t len)
{
	uint8_t *copy = NULL;

	CHECK(wire_type_is_request(type) ==
		      (wire_type_name(type) != NULL && (type & 0x80) == 0),
	      "type %#x: request or not", type);
	if (wire_type_name(type) == NULL)
		return; /* the server answers EUNKNOWN_TYPE and reads on */
	if (len > 0) {
		copy = malloc(len);
		CHECK(copy != NULL, "out of memory");
		memcpy(copy, body, len);
	}
	in_body = copy;
	in_len = len;
	switch (type) {
	case WIRE_APPEND:
		fuzz_append(id);
		break;
	case WIRE_READ_STREAM:
		fuzz_read_stream(id);
		break;
	case WIRE_READ_ALL:
		fuzz_read_all(id);
		break;
	case WIRE_HEAD:
		fuzz_head(id);
		break;
	case WIRE_STATUS:
		fuzz_status(id);
		break;
	case WIRE_APPEND_OK:
		fuzz_append_ok(id);
		break;
	case WIRE_EVENTS:
	case WIRE_SUB_EVENTS:
		fuzz_events(type, id);
		break;
	case WIRE_SUBSCRIBE:
		fuzz_subscribe(id);
		break;
	case WIRE_CREDIT:
		fuzz_credit(id);
		break;
	case WIRE_UNSUBSCRIBE:
		fuzz_unsubscribe(id);
		break;
	case WIRE_SUB_LIVE:
		fuzz_sub_live(id);
		break;
	case WIRE_SUB_END:
		fuzz_sub_end(id);
		break;
	case WIRE_HEAD_OK:
		fuzz_head_ok(id);
		break;
	case WIRE_STATUS_OK:
		fuzz_status_ok(id);
		break;
	case WIRE_ERROR:
		fuzz_error(id);
		break;
	case WIRE_CHECKPOINT_GET:
		fuzz_checkpoint_get(id);
		break;
	case WIRE_CHECKPOINT_SET:
		fuzz_checkpoint_set(id);
		break;
	case WIRE_SNAPSHOT_PUT:
		fuzz_snapshot_put(id);
		break;
	case WIRE_SNAPSHOT_GET:
		fuzz_snapshot_get(id);
		break;
	case WIRE_CHECKPOINT:
		fuzz_checkpoint(id);
		break;
	case WIRE_STATE_OK:
		fuzz_state_ok(id);
		break;
	case WIRE_SNAPSHOT:
		fuzz_snapshot(id);
		break;
	case WIRE_MEMBER_CHANGE:
		fuzz_member_change(id);
		break;
	case WIRE_MEMBERS:
		fuzz_members(id);
		break;
	case WIRE_LEADER_TRANSFER:
	case WIRE_LEADER:
		fuzz_u64_body(type, id);
		break;
	case WIRE_STATE_BEGIN:
		fuzz_state_begin(id);
		break;
	case WIRE_STATE_LISTING:
		fuzz_state_listing(id);
		break;
	case WIRE_STATE_CHUNK:
		fuzz_state_chunk(id);
		break;
	case WIRE_STATE_DATA:
		fuzz_state_data(id);
		break;
	case WIRE_STATE_END:
	case WIRE_STATE_ENDED:
		fuzz_state_end(type, id);
		break;
	default:
		CHECK(false, "type %#x has a name but no decoder here", type);
	}
	in_body = NULL;
	in_len = 0;
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_header h;
	size_t off = 0;
	size_t frame_len;
	int rv;

	while (off < size) {
		size_t left = size - off;

		rv = wire_frame_peek(data + off, left, &h, &frame_len);
		if (rv == WIRE_DECODE_MALFORMED) {
			CHECK(left >= WIRE_HEADER_BYTES,
			      "malformed before a whole header");
			CHECK(h.body_len > WIRE_BODY_BYTES_MAX || h.flags != 0,
			      "valid header refused");
			CHECK(wire_header_decode(data + off, &h) == rv,
			      "peek and header_decode disagree");
			break; /* the server replies and closes */
		}
		if (rv == WIRE_NEED_MORE) {
			if (left < WIRE_HEADER_BYTES) {
				CHECK(frame_len == 0,
				      "frame_len %zu without "
				      "a header",
				      frame_len);
				break;
			}
			CHECK(frame_len == WIRE_HEADER_BYTES + h.body_len &&
				      frame_len > left,
			      "need more with %zu of %zu bytes", left,
			      frame_len);
			/* Not a frame yet; the remaining bytes as its body. */
			fuzz_body(h.type, h.request_id,
				  data + off + WIRE_HEADER_BYTES,
				  left - WIRE_HEADER_BYTES);
			break;
		}
		CHECK(rv == WIRE_OK, "peek returned %d", rv);
		CHECK(frame_len == WIRE_HEADER_BYTES + h.body_len &&
			      frame_len <= left,
		      "frame of %zu bytes with %zu left", frame_len, left);
		CHECK(h.flags == 0 && h.body_len <= WIRE_BODY_BYTES_MAX,
		      "invalid header accepted");
		fuzz_body(h.type, h.request_id, data + off + WIRE_HEADER_BYTES,
			  h.body_len);
		off += frame_len;
	}
	return 0;
}
