/* gen_corpus_frame: writes the seed corpus of fuzz_frame, the files that
 * tests/fuzz/corpus/frame/ commits and the replay test runs in every
 * build.
 *
 *   gen_corpus_frame CORPUS_DIR      (normally tests/fuzz/corpus)
 *
 * Each input is a byte stream as a connection carries it: one frame, or
 * several back to back. Valid frames come from the real encoders
 * (client/wire.c); invalid ones are those bytes with one field broken at a
 * time (a header's flags or length, truncations with the length made to
 * match, huge and zero counts, unknown enum values, lengths off by one, a
 * trailing byte, strings over their maximum), at offsets computed from the
 * layout of docs/protocol.md. The generator checks that layout against the
 * encoder's output and stops if the two have drifted apart.
 *
 * It replaces the files named gen-* in CORPUS_DIR/frame and leaves every
 * other file (inputs the fuzzer found) alone. The output is deterministic:
 * same code, same bytes. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire.h"

static char out_dir[4096];
static unsigned files_written;
static size_t bytes_written;

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gen_corpus_frame: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("mkdir %s: %s", path, strerror(errno));
}

/* Removes the gen-* files of the output directory, so inputs dropped from
 * the generator disappear from the corpus. */
static void remove_generated(void)
{
	char path[4096 + 512];
	struct dirent *d;
	DIR *dp = opendir(out_dir);

	if (dp == NULL)
		die("opendir %s: %s", out_dir, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, "gen-", 4) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", out_dir, d->d_name);
		if (unlink(path) != 0)
			die("unlink %s: %s", path, strerror(errno));
	}
	closedir(dp);
}

/* Writes CORPUS_DIR/frame/gen-@name. */
static void write_input(const char *name, const void *buf, size_t len)
{
	char path[4096 + 512];
	FILE *f;

	if (len > 4096)
		die("%s: %zu bytes; keep corpus files under 4 KiB", name, len);
	snprintf(path, sizeof path, "%s/gen-%s", out_dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die("create %s: %s", path, strerror(errno));
	if ((len > 0 && fwrite(buf, 1, len, f) != len) || fclose(f) != 0)
		die("write %s: %s", path, strerror(errno));
	files_written++;
	bytes_written += len;
}

/* ------------------------------------------------------------------------
 * Frames
 * ------------------------------------------------------------------------ */

/* One encoded frame, malloc'd (room for a few more bytes). */
struct frame {
	uint8_t *buf;
	size_t len;
};

static void check(int rv, const char *what)
{
	if (rv != WIRE_OK)
		die("%s: encoder returned %d", what, rv);
}

/* Takes the frame @b holds and empties @b. */
static struct frame take(struct wire_buf *b)
{
	struct frame f;

	f.len = b->len;
	f.buf = calloc(1, b->len + 16);
	if (f.buf == NULL)
		die("out of memory");
	memcpy(f.buf, b->p, b->len);
	wire_buf_reset(b);
	return f;
}

static void put_le(uint8_t *p, unsigned width, uint64_t v)
{
	unsigned i;

	for (i = 0; i < width; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned width)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < width; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Dies unless the body field at @off holds @want: the offsets computed
 * here from docs/protocol.md must match what the encoder wrote. */
static void expect_field(const struct frame *f, size_t off, unsigned width,
			 uint64_t want, const char *what)
{
	if (WIRE_HEADER_BYTES + off + width > f->len ||
	    get_le(f->buf + WIRE_HEADER_BYTES + off, width) != want)
		die("%s: the layout of docs/protocol.md does not match the "
		    "encoder: update gen_corpus_frame",
		    what);
}

/* Writes @f with @width bytes of its body at @off set to @v. */
static void write_patched(const char *name, const struct frame *f, size_t off,
			  unsigned width, uint64_t v)
{
	uint8_t *p = malloc(f->len);

	if (p == NULL)
		die("out of memory");
	if (WIRE_HEADER_BYTES + off + width > f->len)
		die("%s: patch past the frame", name);
	memcpy(p, f->buf, f->len);
	put_le(p + WIRE_HEADER_BYTES + off, width, v);
	write_input(name, p, f->len);
	free(p);
}

/* Writes @f with its body cut (or extended with zeros) to @body_len bytes
 * and the header's length made to match, so the frame is whole and only
 * its body is short (or long). */
static void write_resized(const char *name, const struct frame *f,
			  size_t body_len)
{
	uint8_t *p = calloc(1, WIRE_HEADER_BYTES + body_len);
	size_t have = f->len - WIRE_HEADER_BYTES;

	if (p == NULL)
		die("out of memory");
	memcpy(p, f->buf,
	       WIRE_HEADER_BYTES + (body_len < have ? body_len : have));
	put_le(p, 4, body_len);
	write_input(name, p, WIRE_HEADER_BYTES + body_len);
	free(p);
}

/* Writes the frames given, back to back. */
static void write_stream(const char *name, const struct frame *frames, size_t n)
{
	uint8_t buf[4096];
	size_t len = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (len + frames[i].len > sizeof buf)
			die("%s: stream too long", name);
		memcpy(buf + len, frames[i].buf, frames[i].len);
		len += frames[i].len;
	}
	write_input(name, buf, len);
}

static struct wire_bytes str(const char *s)
{
	struct wire_bytes b = { (const uint8_t *)s, (uint32_t)strlen(s) };

	if (b.len == 0)
		b.p = NULL;
	return b;
}

static void set_id(uint8_t id[16], uint64_t seed)
{
	int i;

	for (i = 0; i < 16; i++)
		id[i] = (uint8_t)(seed * 0x9e3779b97f4a7c15ull >> (i * 4));
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* UUID version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* Sample payloads. */
static const char json_data[] = "{\"order\":\"o-123\",\"amount\":4250}";
static const char json_meta[] = "{\"correlation\":\"c-9\"}";

/* ------------------------------------------------------------------------
 * The corpus
 * ------------------------------------------------------------------------ */

/* The frames every input is made from. */
struct frames {
	struct frame append;        /* two parts, three events, a client */
	struct frame append_min;    /* the smallest append */
	struct frame append_ok;     /* two results */
	struct frame read_stream;   /* forward from 1 */
	struct frame read_stream_b; /* backward from the head, at least */
	struct frame read_all;      /* with all three filters */
	struct frame head;          /* linearizable */
	struct frame head_ok;
	struct frame status;
	struct frame status_ok;    /* three members */
	struct frame error;        /* NOT_LEADER with the leader */
	struct frame events;       /* three events */
	struct frame events_empty; /* the end of the stream */
};

static void make_frames(struct frames *f)
{
	struct wire_buf b;
	struct wire_event_in ev[3];
	struct wire_part parts[2];
	struct wire_append a;
	struct wire_part_result res[2] = { { 1, 2, 101, 102 },
					   { 1, 1, 103, 103 } };
	struct wire_read_stream rs = { str("order-17"),
				       1,
				       false,
				       100,
				       { WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_read_stream rsb = { str("order-17"),
					UINT64_MAX,
					true,
					10,
					{ WIRE_CONSISTENCY_AT_LEAST, 103 } };
	struct wire_read_all ra = { 1,
				    500,
				    { WIRE_CONSISTENCY_ANY, 0 },
				    str("order-"),
				    str("order"),
				    str("OrderPlaced") };
	struct wire_head hd = { str("order-17"),
				{ WIRE_CONSISTENCY_LEADER, 0 } };
	struct wire_status st;
	struct wire_err err = { WIRE_ENOT_LEADER, 0, 0, str("10.0.0.1:7001"),
				str("not the leader") };
	struct wire_events_writer w;
	struct wire_event re[3];
	int i;

	wire_buf_init(&b);
	memset(ev, 0, sizeof ev);
	for (i = 0; i < 3; i++) {
		set_id(ev[i].id, (uint64_t)i + 1);
		ev[i].type = str(i == 2 ? "UserRenamed" : "OrderPlaced");
		ev[i].schema_version = (uint16_t)i;
		ev[i].event_time_us = i == 1 ? 0 : 1700000000000000 + i;
		ev[i].data = str(json_data);
		ev[i].metadata = i == 0 ? str(json_meta) : str("");
	}
	parts[0].stream = str("order-17");
	parts[0].expect_kind = WIRE_EXPECT_EXACT;
	parts[0].expect_version = 41;
	parts[0].n_events = 2;
	parts[0].events = &ev[0];
	parts[1].stream = str("user-\xc3\xa9");
	parts[1].expect_kind = WIRE_EXPECT_NO_STREAM;
	parts[1].expect_version = 0;
	parts[1].n_events = 1;
	parts[1].events = &ev[2];
	memset(&a, 0, sizeof a);
	a.has_client = true;
	memset(a.client_id, 0x5a, sizeof a.client_id);
	a.client_seq = 7;
	a.n_parts = 2;
	a.parts = parts;
	check(wire_encode_append(&b, 1, &a), "append");
	f->append = take(&b);

	ev[0].data = str("");
	ev[0].metadata = str("");
	ev[0].type = str("T");
	parts[0].stream = str("s");
	parts[0].expect_kind = WIRE_EXPECT_ANY;
	parts[0].expect_version = 0;
	parts[0].n_events = 1;
	a.has_client = false;
	memset(a.client_id, 0, sizeof a.client_id);
	a.client_seq = 0;
	a.n_parts = 1;
	check(wire_encode_append(&b, 2, &a), "append_min");
	f->append_min = take(&b);

	check(wire_encode_append_ok(&b, 1, false, 2, res), "append_ok");
	f->append_ok = take(&b);
	check(wire_encode_read_stream(&b, 3, &rs), "read_stream");
	f->read_stream = take(&b);
	check(wire_encode_read_stream(&b, 4, &rsb), "read_stream backward");
	f->read_stream_b = take(&b);
	check(wire_encode_read_all(&b, 5, &ra), "read_all");
	f->read_all = take(&b);
	check(wire_encode_head(&b, 6, &hd), "head");
	f->head = take(&b);
	check(wire_encode_head_ok(&b, 6, 2, 102), "head_ok");
	f->head_ok = take(&b);
	check(wire_encode_status(&b, 7), "status");
	f->status = take(&b);

	memset(&st, 0, sizeof st);
	st.node_id = 2;
	st.role = WIRE_ROLE_FOLLOWER;
	st.term = 3;
	st.commit_index = 40;
	st.applied_index = 39;
	st.last_position = 103;
	st.leader_id = 1;
	st.leader_client_address = str("10.0.0.1:7001");
	st.n_members = 3;
	for (i = 0; i < 3; i++) {
		static const char *const raft[3] = { "10.0.0.1:9001",
						     "10.0.0.2:9001",
						     "10.0.0.3:9001" };
		static const char *const client[3] = { "10.0.0.1:7001",
						       "10.0.0.2:7001", "" };
		static const char *const http[3] = { "10.0.0.1:8001",
						     "10.0.0.2:8001", "" };

		st.members[i].id = (uint64_t)i + 1;
		st.members[i].role =
			i == 2 ? WIRE_MEMBER_STANDBY : WIRE_MEMBER_VOTER;
		st.members[i].raft_address = str(raft[i]);
		st.members[i].client_address = str(client[i]);
		st.members[i].http_address = str(http[i]);
	}
	check(wire_encode_status_ok(&b, 7, &st), "status_ok");
	f->status_ok = take(&b);
	check(wire_encode_error(&b, 1, &err), "error");
	f->error = take(&b);

	memset(re, 0, sizeof re);
	for (i = 0; i < 3; i++) {
		re[i].position = 101 + (uint64_t)i;
		re[i].version = 1 + (uint64_t)i;
		re[i].stream = str("order-17");
		set_id(re[i].id, (uint64_t)i + 10);
		re[i].type = str("OrderPlaced");
		re[i].schema_version = 1;
		re[i].event_time_us = 1700000000000000;
		re[i].commit_time_us = 1700000000000100 + (uint64_t)i;
		re[i].has_client = i != 1;
		if (re[i].has_client) {
			memset(re[i].client_id, 0x5a, 16);
			re[i].client_seq = 7;
		}
		re[i].data = str(json_data);
		re[i].metadata = i == 0 ? str(json_meta) : str("");
	}
	check(wire_events_begin(&b, 3, &w), "events");
	for (i = 0; i < 3; i++)
		check(wire_events_add(&b, &w, &re[i]), "events add");
	wire_events_end(&b, &w, 4, false);
	f->events = take(&b);
	check(wire_events_begin(&b, 8, &w), "events empty");
	wire_events_end(&b, &w, 104, true);
	f->events_empty = take(&b);
	wire_buf_close(&b);
}

/* Frames cut short, packed back to back into files named @prefix-<k> of
 * at most 4 KiB, so one input exercises many truncations. */
struct packer {
	const char *prefix;
	uint8_t buf[4096];
	size_t len;
	unsigned files;
};

static void pack_flush(struct packer *p)
{
	char name[64];

	if (p->len == 0)
		return;
	snprintf(name, sizeof name, "%s-%u", p->prefix, ++p->files);
	write_input(name, p->buf, p->len);
	p->len = 0;
}

/* Adds @f cut after @cut bytes of its body, the header's length made to
 * match. */
static void pack_cut(struct packer *p, const struct frame *f, size_t cut)
{
	if (WIRE_HEADER_BYTES + cut > f->len)
		die("%s: cut past the frame", p->prefix);
	if (p->len + WIRE_HEADER_BYTES + cut > sizeof p->buf)
		pack_flush(p);
	memcpy(p->buf + p->len, f->buf, WIRE_HEADER_BYTES + cut);
	put_le(p->buf + p->len, 4, cut);
	p->len += WIRE_HEADER_BYTES + cut;
}

/* The smallest message of every type whose strings and blobs are all one
 * byte long (so that a cut can land inside each of them), for
 * write_cuts(). Returns how many it made. */
static size_t make_small_frames(struct frame *out)
{
	struct wire_buf b;
	struct wire_event_in ev;
	struct wire_part part;
	struct wire_append a;
	struct wire_part_result res = { 1, 1, 1, 1 };
	struct wire_read_stream rs = { str("s"),
				       1,
				       false,
				       1,
				       { WIRE_CONSISTENCY_AT_LEAST, 1 } };
	struct wire_read_all ra = {
		1, 1, { WIRE_CONSISTENCY_ANY, 0 }, str("p"), str("c"), str("t")
	};
	struct wire_head hd = { str("s"), { WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_status st;
	struct wire_err err = { WIRE_ENOT_LEADER, 0, 0, str("l"), str("m") };
	struct wire_events_writer w;
	struct wire_event re;
	size_t n = 0;

	wire_buf_init(&b);
	memset(&ev, 0, sizeof ev);
	set_id(ev.id, 99);
	ev.type = str("T");
	ev.data = str("d");
	ev.metadata = str("m");
	part.stream = str("s");
	part.expect_kind = WIRE_EXPECT_EXACT;
	part.expect_version = 1;
	part.n_events = 1;
	part.events = &ev;
	memset(&a, 0, sizeof a);
	a.has_client = true;
	a.client_seq = 1;
	a.n_parts = 1;
	a.parts = &part;
	check(wire_encode_append(&b, 1, &a), "small append");
	out[n++] = take(&b);
	check(wire_encode_append_ok(&b, 1, true, 1, &res), "small append_ok");
	out[n++] = take(&b);
	check(wire_encode_read_stream(&b, 1, &rs), "small read_stream");
	out[n++] = take(&b);
	check(wire_encode_read_all(&b, 1, &ra), "small read_all");
	out[n++] = take(&b);
	check(wire_encode_head(&b, 1, &hd), "small head");
	out[n++] = take(&b);
	check(wire_encode_head_ok(&b, 1, 1, 1), "small head_ok");
	out[n++] = take(&b);
	memset(&st, 0, sizeof st);
	st.role = WIRE_ROLE_LEADER;
	st.leader_client_address = str("c");
	st.n_members = 1;
	st.members[0].id = 1;
	st.members[0].role = WIRE_MEMBER_VOTER;
	st.members[0].raft_address = str("r");
	st.members[0].client_address = str("c");
	st.members[0].http_address = str("h");
	check(wire_encode_status_ok(&b, 1, &st), "small status_ok");
	out[n++] = take(&b);
	check(wire_encode_error(&b, 1, &err), "small error");
	out[n++] = take(&b);
	memset(&re, 0, sizeof re);
	re.position = 1;
	re.version = 1;
	re.stream = str("s");
	re.type = str("T");
	re.has_client = true;
	re.data = str("d");
	re.metadata = str("m");
	check(wire_events_begin(&b, 1, &w), "small events");
	check(wire_events_add(&b, &w, &re), "small events add");
	wire_events_end(&b, &w, 2, true);
	out[n++] = take(&b);
	wire_buf_close(&b);
	return n;
}

/* Body offsets of docs/protocol.md, for the frames make_frames() built. */
#define APPEND_HAS_CLIENT 0
#define APPEND_N_PARTS    25
#define APPEND_PART0      29 /* str16 stream */
#define APPEND_OK_DUP     0
#define APPEND_OK_N       1
#define EVENTS_END        8
#define EVENTS_COUNT      9
#define EVENTS_FIRST      13
#define STATUS_OK_ROLE    8

/* A second event cut at the start of each of its fields, after a first
 * event large enough that the count check (events × their smallest size
 * against the bytes left) passes: the cut is found by the walk over the
 * fields, not by the count. Offsets from docs/protocol.md, checked
 * against the encoder. */
static void gen_walk_cuts(void)
{
	static struct packer p = { .prefix = "cuts-walk" };
	static uint8_t big[100];
	struct wire_buf b;
	struct wire_event_in ev[2];
	struct wire_part part;
	struct wire_append a;
	struct wire_events_writer w;
	struct wire_event re[2];
	struct frame f;
	size_t second;
	size_t i;
	/* An append's event: id, type length, type, schema version, event
	 * time, data length, data, metadata length, metadata ("T", "d",
	 * "m"). */
	static const size_t in_fields[] = { 0, 16, 18, 19, 21, 29, 33, 34, 38 };
	/* A read event: position, version, stream length, stream, id, type
	 * length, type, schema version, event time, commit time, has_client,
	 * client id, client sequence, data length, data, metadata length,
	 * metadata ("s", "T", "d", "m"). */
	static const size_t out_fields[] = { 0,  8,  16, 18, 19, 35, 37, 38, 40,
					     48, 56, 57, 73, 81, 85, 86, 90 };

	memset(big, 'x', sizeof big);
	wire_buf_init(&b);
	memset(ev, 0, sizeof ev);
	for (i = 0; i < 2; i++) {
		set_id(ev[i].id, 50 + i);
		ev[i].type = str("T");
		ev[i].metadata = str("m");
	}
	ev[0].data.p = big;
	ev[0].data.len = 40;
	ev[1].data = str("d");
	part.stream = str("s");
	part.expect_kind = WIRE_EXPECT_ANY;
	part.expect_version = 0;
	part.n_events = 2;
	part.events = ev;
	memset(&a, 0, sizeof a);
	a.n_parts = 1;
	a.parts = &part;
	check(wire_encode_append(&b, 1, &a), "walk append");
	f = take(&b);
	second = 29 + 2 + 1 + 1 + 8 + 4 + 16 + 2 + 1 + 2 + 8 + 4 + 40 + 4 + 1;
	if (f.len != WIRE_HEADER_BYTES + second + 39)
		die("walk append: %zu bytes: the layout of docs/protocol.md "
		    "does not match the encoder",
		    f.len);
	for (i = 0; i < sizeof in_fields / sizeof in_fields[0]; i++)
		pack_cut(&p, &f, second + in_fields[i]);
	free(f.buf);

	memset(re, 0, sizeof re);
	for (i = 0; i < 2; i++) {
		re[i].position = 1 + i;
		re[i].version = 1 + i;
		re[i].stream = str("s");
		re[i].type = str("T");
		re[i].has_client = true;
		re[i].metadata = str("m");
	}
	re[0].data.p = big;
	re[0].data.len = sizeof big;
	re[1].data = str("d");
	check(wire_events_begin(&b, 1, &w), "walk events");
	for (i = 0; i < 2; i++)
		check(wire_events_add(&b, &w, &re[i]), "walk events add");
	wire_events_end(&b, &w, 3, true);
	f = take(&b);
	second = 13 + 87 + 1 + 1 + sizeof big + 1;
	if (f.len != WIRE_HEADER_BYTES + second + 91)
		die("walk events: %zu bytes: the layout of docs/protocol.md "
		    "does not match the encoder",
		    f.len);
	for (i = 0; i < sizeof out_fields / sizeof out_fields[0]; i++)
		pack_cut(&p, &f, second + out_fields[i]);
	free(f.buf);
	pack_flush(&p);
	wire_buf_close(&b);
}

/* Subscriptions: SUBSCRIBE, CREDIT, UNSUBSCRIBE and the pushes, valid, as
 * connections carry them, cut after every byte, and with each enum and
 * count broken. */
static void gen_subscriptions(void)
{
	static struct packer p = { .prefix = "sub-cuts" };
	struct wire_subscribe s = {
		WIRE_SUB_STREAM, WIRE_SUB_FROM_POSITION, 7,
		str("order-17"), str("OrderPaid"),       1024
	};
	struct wire_subscribe all = { WIRE_SUB_ALL, WIRE_SUB_FROM_NOW, 0,
				      str(""),      str(""),           0 };
	struct wire_sub_end end = { WIRE_SUB_END_SLOW, 104,
				    str("slow consumer") };
	struct wire_events_writer w;
	struct wire_event ev;
	struct wire_buf b;
	struct frame sub;
	struct frame sub_all;
	struct frame credit;
	struct frame unsub;
	struct frame live;
	struct frame pushed;
	struct frame ended;
	size_t cut;

	wire_buf_init(&b);
	check(wire_encode_subscribe(&b, 7, &s), "subscribe");
	sub = take(&b);
	check(wire_encode_subscribe(&b, 8, &all), "subscribe all");
	sub_all = take(&b);
	check(wire_encode_credit(&b, 7, 512), "credit");
	credit = take(&b);
	check(wire_encode_unsubscribe(&b, 7), "unsubscribe");
	unsub = take(&b);
	check(wire_encode_sub_live(&b, 7, 104, 103), "sub_live");
	live = take(&b);
	check(wire_encode_sub_end(&b, 7, &end), "sub_end");
	ended = take(&b);
	memset(&ev, 0, sizeof ev);
	ev.position = 103;
	ev.version = 2;
	ev.stream = str("order-17");
	set_id(ev.id, 70);
	ev.type = str("OrderPaid");
	ev.data = str(json_data);
	check(wire_sub_events_begin(&b, 7, &w), "sub_events");
	check(wire_events_add(&b, &w, &ev), "sub_events add");
	wire_events_end(&b, &w, 104, true);
	pushed = take(&b);

	/* SUBSCRIBE: kind, from_kind, from, target, type, credit. */
	expect_field(&sub, 0, 1, WIRE_SUB_STREAM, "subscribe kind");
	expect_field(&sub, 1, 1, WIRE_SUB_FROM_POSITION, "subscribe from");
	expect_field(&sub, 2, 8, 7, "subscribe from position");
	expect_field(&sub, 10, 2, strlen("order-17"), "subscribe target");
	expect_field(&sub, 12 + strlen("order-17") + 2 + strlen("OrderPaid"), 4,
		     1024, "subscribe credit");
	expect_field(&credit, 0, 4, 512, "credit events");
	expect_field(&ended, 0, 4, WIRE_SUB_END_SLOW, "sub_end reason");
	expect_field(&pushed, 9, 4, 1, "sub_events count");

	write_input("subscribe", sub.buf, sub.len);
	write_input("subscribe-all-now", sub_all.buf, sub_all.len);
	write_input("credit", credit.buf, credit.len);
	write_input("unsubscribe", unsub.buf, unsub.len);
	write_input("sub-events", pushed.buf, pushed.len);
	write_input("sub-live", live.buf, live.len);
	write_input("sub-end", ended.buf, ended.len);
	{
		struct frame requests[] = { sub, sub_all, credit, unsub };
		struct frame replies[] = { pushed, live, pushed, ended };

		write_stream("sub-requests", requests,
			     sizeof requests / sizeof requests[0]);
		write_stream("sub-replies", replies,
			     sizeof replies / sizeof replies[0]);
	}
	write_patched("subscribe-kind-3", &sub, 0, 1, 3);
	write_patched("subscribe-from-kind-2", &sub, 1, 1, 2);
	write_patched("subscribe-target-long", &sub, 10, 2, 0xffff);
	write_patched("credit-0", &credit, 0, 4, 0);
	write_resized("unsubscribe-with-body", &unsub, 1);
	write_resized("sub-live-short", &live, 15);
	write_resized("sub-live-trailing-byte", &live, 17);
	write_patched("sub-end-reason-0", &ended, 0, 4, 0);
	write_patched("sub-end-reason-5", &ended, 0, 4, 5);
	write_patched("sub-events-count-huge", &pushed, 9, 4, UINT32_MAX);
	write_patched("sub-events-count-0", &pushed, 9, 4, 0);
	{
		struct frame all_frames[] = { sub,  sub_all, credit, unsub,
					      live, pushed,  ended };

		for (size_t i = 0; i < sizeof all_frames / sizeof all_frames[0];
		     i++)
			for (cut = 0;
			     cut + WIRE_HEADER_BYTES < all_frames[i].len; cut++)
				pack_cut(&p, &all_frames[i], cut);
		pack_flush(&p);
		for (size_t i = 0; i < sizeof all_frames / sizeof all_frames[0];
		     i++)
			free(all_frames[i].buf);
	}
	wire_buf_close(&b);
}

/* Checkpoint and snapshot requests and replies, with their cuts and the
 * fields a decoder must refuse patched in. */
static void gen_state(void)
{
	static struct packer p = { .prefix = "state-cuts" };
	struct wire_checkpoint_get cg = { str("billing"),
					  { WIRE_CONSISTENCY_AT_LEAST, 12 } };
	struct wire_checkpoint_set cs;
	struct wire_snapshot_put sp;
	struct wire_snapshot_get sg = { str("order-17"),
					UINT64_MAX,
					{ WIRE_CONSISTENCY_ANY, 0 } };
	struct wire_buf b;
	struct frame f[7];
	size_t cut;

	memset(&cs, 0, sizeof cs);
	cs.has_client = true;
	set_id(cs.client_id, 80);
	cs.client_seq = 3;
	cs.name = str("billing");
	cs.value = 42;
	cs.expect_kind = WIRE_CP_EXPECT_VALUE;
	cs.expected = 41;
	memset(&sp, 0, sizeof sp);
	sp.stream = str("order-17");
	sp.version = 2;
	sp.data = str(json_data);

	wire_buf_init(&b);
	check(wire_encode_checkpoint_get(&b, 30, &cg), "checkpoint_get");
	f[0] = take(&b);
	check(wire_encode_checkpoint_set(&b, 31, &cs), "checkpoint_set");
	f[1] = take(&b);
	check(wire_encode_snapshot_put(&b, 32, &sp), "snapshot_put");
	f[2] = take(&b);
	check(wire_encode_snapshot_get(&b, 33, &sg), "snapshot_get");
	f[3] = take(&b);
	check(wire_encode_checkpoint(&b, 30, true, 42), "checkpoint");
	f[4] = take(&b);
	check(wire_encode_state_ok(&b, 31, false), "state_ok");
	f[5] = take(&b);
	check(wire_encode_snapshot(&b, 33, 2, str(json_data)), "snapshot");
	f[6] = take(&b);

	/* CHECKPOINT_SET: has_client, id, seq, name, value, kind, expected. */
	expect_field(&f[1], 0, 1, 1, "checkpoint_set has_client");
	expect_field(&f[1], 25, 2, strlen("billing"), "checkpoint_set name");
	expect_field(&f[1], 27 + strlen("billing") + 8, 1, WIRE_CP_EXPECT_VALUE,
		     "checkpoint_set expect kind");
	expect_field(&f[2], 25 + 2 + strlen("order-17"), 8, 2,
		     "snapshot_put version");

	write_input("checkpoint-get", f[0].buf, f[0].len);
	write_input("checkpoint-set", f[1].buf, f[1].len);
	write_input("snapshot-put", f[2].buf, f[2].len);
	write_input("snapshot-get", f[3].buf, f[3].len);
	write_input("checkpoint", f[4].buf, f[4].len);
	write_input("state-ok", f[5].buf, f[5].len);
	write_input("snapshot", f[6].buf, f[6].len);
	write_stream("state-requests", f, 4);
	write_patched("checkpoint-set-kind-3", &f[1],
		      27 + strlen("billing") + 8, 1, 3);
	write_patched("checkpoint-set-has-client-2", &f[1], 0, 1, 2);
	write_patched("snapshot-put-version-0", &f[2],
		      25 + 2 + strlen("order-17"), 8, 0);
	write_patched("snapshot-put-data-huge", &f[2],
		      25 + 2 + strlen("order-17") + 8, 4, UINT32_MAX);
	write_patched("snapshot-version-0", &f[6], 0, 8, 0);
	write_patched("checkpoint-missing-with-value", &f[4], 0, 1, 0);
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		for (cut = 0; cut + WIRE_HEADER_BYTES < f[i].len; cut++)
			pack_cut(&p, &f[i], cut);
	pack_flush(&p);
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		free(f[i].buf);
	wire_buf_close(&b);
}

static void gen_corpus(void)
{
	struct frames f;
	size_t kind;       /* append: part 0's expect kind */
	size_t n_events;   /* append: part 0's event count */
	size_t type_len;   /* append: event 0's type length */
	size_t data_len;   /* append: event 0's data length */
	size_t has_client; /* events: event 0's has_client */
	size_t members;    /* status_ok: the member count */
	size_t len;

	make_frames(&f);

	/* Where the fields are, checked against what the encoder wrote. */
	kind = APPEND_PART0 + 2 + strlen("order-17");
	n_events = kind + 1 + 8;
	type_len = n_events + 4 + 16;
	data_len = type_len + 2 + strlen("OrderPlaced") + 2 + 8;
	expect_field(&f.append, APPEND_HAS_CLIENT, 1, 1, "append has_client");
	expect_field(&f.append, APPEND_N_PARTS, 4, 2, "append n_parts");
	expect_field(&f.append, APPEND_PART0, 2, strlen("order-17"),
		     "append stream length");
	expect_field(&f.append, kind, 1, WIRE_EXPECT_EXACT, "append kind");
	expect_field(&f.append, kind + 1, 8, 41, "append expected version");
	expect_field(&f.append, n_events, 4, 2, "append n_events");
	expect_field(&f.append, type_len, 2, strlen("OrderPlaced"),
		     "append type length");
	expect_field(&f.append, data_len, 4, strlen(json_data),
		     "append data length");
	if (f.append_min.len != WIRE_HEADER_BYTES + 29 + 2 + 1 + 1 + 8 + 4 +
					16 + 2 + 1 + 2 + 8 + 4 + 4)
		die("the smallest append has %zu bytes: the layout of "
		    "docs/protocol.md does not match the encoder",
		    f.append_min.len);
	expect_field(&f.append_ok, APPEND_OK_N, 4, 2, "append_ok count");
	expect_field(&f.events, EVENTS_COUNT, 4, 3, "events count");
	has_client = EVENTS_FIRST + 8 + 8 + 2 + strlen("order-17") + 16 + 2 +
		     strlen("OrderPlaced") + 2 + 8 + 8;
	expect_field(&f.events, has_client, 1, 1, "events has_client");
	members = STATUS_OK_ROLE + 1 + 5 * 8 + 2 + strlen("10.0.0.1:7001");
	expect_field(&f.status_ok, members, 4, 3, "status_ok members");
	expect_field(&f.status_ok, members + 4 + 8, 1, WIRE_MEMBER_VOTER,
		     "status_ok member role");
	expect_field(&f.error, 0, 4, WIRE_ENOT_LEADER, "error code");

	/* Valid: one frame each, and a connection's worth each way. */
	write_input("append", f.append.buf, f.append.len);
	write_input("append-min", f.append_min.buf, f.append_min.len);
	write_input("append-ok", f.append_ok.buf, f.append_ok.len);
	write_input("read-stream", f.read_stream.buf, f.read_stream.len);
	write_input("read-all", f.read_all.buf, f.read_all.len);
	write_input("head", f.head.buf, f.head.len);
	write_input("head-ok", f.head_ok.buf, f.head_ok.len);
	write_input("status", f.status.buf, f.status.len);
	write_input("status-ok", f.status_ok.buf, f.status_ok.len);
	write_input("error", f.error.buf, f.error.len);
	write_input("events", f.events.buf, f.events.len);
	write_input("events-empty", f.events_empty.buf, f.events_empty.len);
	{
		struct frame requests[] = { f.append,   f.read_stream_b,
					    f.read_all, f.head,
					    f.status,   f.append_min };
		struct frame replies[] = {
			f.append_ok, f.events, f.head_ok,
			f.status_ok, f.error,  f.events_empty
		};

		write_stream("requests", requests,
			     sizeof requests / sizeof requests[0]);
		write_stream("replies", replies,
			     sizeof replies / sizeof replies[0]);
	}

	/* Headers: flags set, a length over the maximum, a body that never
	 * comes, a type nobody knows followed by a good frame. */
	{
		struct frame unknown = f.status;
		struct frame pair[2];
		uint8_t body[3] = { 'x', 'y', 'z' };
		uint8_t *p = calloc(1, WIRE_HEADER_BYTES + sizeof body);

		if (p == NULL)
			die("out of memory");
		memcpy(p, f.status.buf, WIRE_HEADER_BYTES);
		put_le(p, 4, sizeof body);
		put_le(p + 4, 2, 0x06);
		memcpy(p + WIRE_HEADER_BYTES, body, sizeof body);
		unknown.buf = p;
		unknown.len = WIRE_HEADER_BYTES + sizeof body;
		pair[0] = unknown;
		pair[1] = f.status;
		write_stream("unknown-type-then-status", pair, 2);
		free(p);

		p = malloc(f.status.len);
		if (p == NULL)
			die("out of memory");
		memcpy(p, f.status.buf, f.status.len);
		put_le(p + 6, 2, 1);
		write_input("header-flags", p, f.status.len);
		memcpy(p, f.status.buf, f.status.len);
		put_le(p, 4, WIRE_BODY_BYTES_MAX + 1);
		write_input("header-length-over-max", p, f.status.len);
		free(p);
		/* An append's header alone: the body is still coming. */
		write_input("header-only", f.append.buf, WIRE_HEADER_BYTES);
		/* A frame, then part of the next header. */
		pair[0] = f.status;
		pair[1] = f.head;
		pair[1].len = 5;
		write_stream("status-then-partial-header", pair, 2);
	}

	/* APPEND, one field broken at a time. */
	write_patched("append-parts-huge", &f.append, APPEND_N_PARTS, 4,
		      UINT32_MAX);
	write_patched("append-parts-over-max", &f.append, APPEND_N_PARTS, 4,
		      WIRE_APPEND_PARTS_MAX + 1);
	write_patched("append-parts-0", &f.append, APPEND_N_PARTS, 4, 0);
	write_patched("append-events-huge", &f.append, n_events, 4, UINT32_MAX);
	write_patched("append-events-0", &f.append, n_events, 4, 0);
	write_patched("append-has-client-2", &f.append, APPEND_HAS_CLIENT, 1,
		      2);
	write_patched("append-kind-4", &f.append, kind, 1, 4);
	write_patched("append-type-len-plus-1", &f.append, type_len, 2,
		      strlen("OrderPlaced") + 1);
	write_patched("append-data-len-huge", &f.append, data_len, 4,
		      UINT32_MAX);
	len = f.append.len - WIRE_HEADER_BYTES;
	write_resized("append-trailing-byte", &f.append, len + 1);

	/* Replies and the other requests. */
	write_patched("append-ok-dup-2", &f.append_ok, APPEND_OK_DUP, 1, 2);
	write_patched("append-ok-count-0", &f.append_ok, APPEND_OK_N, 4, 0);
	write_patched("read-stream-backward-2", &f.read_stream,
		      2 + strlen("order-17") + 8, 1, 2);
	write_patched("read-all-consistency-3", &f.read_all, 12, 1, 3);
	write_patched("head-consistency-3", &f.head, 2 + strlen("order-17"), 1,
		      3);
	write_resized("status-with-body", &f.status, 1);
	write_patched("events-count-plus-1", &f.events, EVENTS_COUNT, 4, 4);
	write_patched("events-count-huge", &f.events, EVENTS_COUNT, 4,
		      UINT32_MAX);
	write_patched("events-end-2", &f.events, EVENTS_END, 1, 2);
	write_patched("events-has-client-2", &f.events, has_client, 1, 2);
	write_resized("events-trailing-byte", &f.events,
		      f.events.len - WIRE_HEADER_BYTES + 1);
	write_patched("status-ok-role-4", &f.status_ok, STATUS_OK_ROLE, 1, 4);
	write_patched("status-ok-member-role-3", &f.status_ok, members + 4 + 8,
		      1, 3);
	write_patched("status-ok-members-17", &f.status_ok, members, 4,
		      WIRE_MEMBERS_MAX + 1);
	write_patched("error-code-0", &f.error, 0, 4, 0);
	write_patched("error-code-13", &f.error, 0, 4, 13);
	{
		/* An error whose message is one byte over the maximum, the
		 * frame otherwise well formed. */
		uint8_t *p = calloc(1, 2048);
		size_t off = WIRE_HEADER_BYTES;

		if (p == NULL)
			die("out of memory");
		memcpy(p, f.error.buf, WIRE_HEADER_BYTES);
		put_le(p + off, 4, WIRE_EINTERNAL);
		off += 4 + 4 + 8;
		put_le(p + off, 2, 0);
		off += 2;
		put_le(p + off, 2, WIRE_STRING_MAX + 1);
		off += 2;
		memset(p + off, 'm', WIRE_STRING_MAX + 1);
		off += WIRE_STRING_MAX + 1;
		put_le(p, 4, off - WIRE_HEADER_BYTES);
		write_input("error-message-over-max", p, off);
		free(p);
	}

	{
		/* Every message cut after every byte of its body. */
		static struct packer p = { .prefix = "cuts" };
		struct frame small[16];
		size_t n = make_small_frames(small);
		size_t i;
		size_t cut;

		for (i = 0; i < n; i++) {
			for (cut = 0; cut + WIRE_HEADER_BYTES < small[i].len;
			     cut++)
				pack_cut(&p, &small[i], cut);
			free(small[i].buf);
		}
		pack_flush(&p);
	}
	gen_walk_cuts();
	gen_subscriptions();
	gen_state();

	free(f.append.buf);
	free(f.append_min.buf);
	free(f.append_ok.buf);
	free(f.read_stream.buf);
	free(f.read_stream_b.buf);
	free(f.read_all.buf);
	free(f.head.buf);
	free(f.head_ok.buf);
	free(f.status.buf);
	free(f.status_ok.buf);
	free(f.error.buf);
	free(f.events.buf);
	free(f.events_empty.buf);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	make_dir(argv[1]);
	snprintf(out_dir, sizeof out_dir, "%s/frame", argv[1]);
	make_dir(out_dir);
	remove_generated();
	gen_corpus();
	printf("gen_corpus_frame: wrote %u files, %zu bytes, to %s\n",
	       files_written, bytes_written, out_dir);
	return 0;
}
