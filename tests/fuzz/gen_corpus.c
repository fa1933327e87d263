/* gen_corpus: writes the seed corpus of the fuzz targets, the files that
 * tests/fuzz/corpus/ commits and the replay tests run in every build.
 *
 *   gen_corpus CORPUS_DIR      (normally tests/fuzz/corpus)
 *
 * Valid inputs come from the real encoders: transactions and entries from
 * store_txn_encode() and the entry builder; records are applied to a
 * scratch store with store_apply() and read back raw with store_debug_get()
 * from the `log` column family. Invalid inputs are those bytes with one
 * field broken at a time (truncations, bit flips, huge counts, lengths off
 * by one, bad UTF-8, unknown flags), at offsets computed from the layout of
 * docs/storage-format.md; the generator checks that layout against the
 * encoder's sizes and stops if the two have drifted apart.
 *
 * It replaces the files named gen-* in CORPUS_DIR/txn and CORPUS_DIR/record
 * and leaves every other file (inputs the fuzzers found) alone. The output
 * is deterministic: same code, same bytes. */
/* nftw() is an X/Open function. */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "store.h"
#include "store_debug.h"

/* Layout constants of docs/storage-format.md. */
#define TXN_HEADER     16
#define TXN_CLIENT     24
#define ENTRY_HEADER   16
#define RECORD_HEADER  80
#define RECORD_TRAILER 4

static const char *out_root;
static unsigned files_written;
static size_t bytes_written;

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gen_corpus: ");
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

/* Removes the gen-* files of @dir, so inputs dropped from the generator
 * disappear from the corpus. */
static void remove_generated(const char *dir)
{
	char path[4096];
	struct dirent *d;
	DIR *dp = opendir(dir);

	if (dp == NULL)
		die("opendir %s: %s", dir, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (strncmp(d->d_name, "gen-", 4) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, d->d_name);
		if (unlink(path) != 0)
			die("unlink %s: %s", path, strerror(errno));
	}
	closedir(dp);
}

/* Writes CORPUS_DIR/@kind/gen-@name. */
static void write_input(const char *kind, const char *name, const void *buf,
			size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s/gen-%s", out_root, kind, name);
	f = fopen(path, "wb");
	if (f == NULL)
		die("create %s: %s", path, strerror(errno));
	if ((len > 0 && fwrite(buf, 1, len, f) != len) || fclose(f) != 0)
		die("write %s: %s", path, strerror(errno));
	files_written++;
	bytes_written += len;
}

/* ------------------------------------------------------------------------
 * Byte helpers: the encodings are little-endian except keys.
 * ------------------------------------------------------------------------ */

static void put_u32le(uint8_t *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64le(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* The first occurrence of string @s in @buf, or NULL. */
static uint8_t *find(uint8_t *buf, size_t len, const char *s)
{
	size_t n = strlen(s);
	size_t i;

	for (i = 0; i + n <= len; i++) {
		if (memcmp(buf + i, s, n) == 0)
			return buf + i;
	}
	return NULL;
}

/* A malloc'd copy of @len bytes with @extra more, zeroed. */
static uint8_t *copy_bytes(const void *buf, size_t len, size_t extra)
{
	uint8_t *p = calloc(1, len + extra + 1);

	if (p == NULL)
		die("out of memory");
	memcpy(p, buf, len);
	return p;
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

/* An encoded transaction, malloc'd. */
struct blob {
	uint8_t *buf;
	size_t len;
};

static struct blob encode_txn(const struct store_txn *t)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct blob b;
	int rv;

	rv = store_txn_validate(t, errmsg);
	if (rv != 0)
		die("a seed transaction is invalid: %s", errmsg);
	b.len = store_txn_encoded_size(t);
	b.buf = malloc(b.len);
	if (b.buf == NULL)
		die("out of memory");
	if (store_txn_encode(t, b.buf) != b.len)
		die("store_txn_encode wrote other than store_txn_encoded_size");
	return b;
}

/* Builds an entry of @n encoded transactions. */
static struct blob make_entry(const struct blob *txns, size_t n)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_entry_builder b;
	struct blob e;
	const void *buf;
	size_t len;
	size_t i;
	int rv;

	store_entry_builder_init(&b);
	for (i = 0; i < n; i++) {
		rv = store_entry_add_encoded(&b, txns[i].buf, txns[i].len,
					     errmsg);
		if (rv != 0)
			die("store_entry_add_encoded: %s", errmsg);
	}
	rv = store_entry_finish(&b, &buf, &len);
	if (rv != 0)
		die("store_entry_finish: %s", store_strerror(rv));
	e.buf = copy_bytes(buf, len, 0);
	e.len = len;
	store_entry_builder_close(&b);
	return e;
}

static void set_id(uint8_t id[16], uint64_t seed)
{
	int i;

	for (i = 0; i < 16; i++)
		id[i] = (uint8_t)(seed * 0x9e3779b97f4a7c15ull >> (i * 4));
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* UUID version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

static struct store_event event(uint64_t seed, const char *type,
				const void *data, uint32_t data_len,
				const void *metadata, uint32_t metadata_len)
{
	struct store_event e;

	memset(&e, 0, sizeof e);
	set_id(e.id, seed);
	e.type = type;
	e.type_len = (uint32_t)strlen(type);
	e.data = data;
	e.data_len = data_len;
	e.metadata = metadata;
	e.metadata_len = metadata_len;
	return e;
}

static struct store_part part(const char *stream, uint8_t kind,
			      uint64_t version, const struct store_event *ev,
			      uint32_t n)
{
	struct store_part p;

	p.stream = stream;
	p.stream_len = (uint32_t)strlen(stream);
	p.expect.kind = kind;
	p.expect.version = version;
	p.n_events = n;
	p.events = ev;
	return p;
}

static struct store_txn txn(const struct store_part *parts, uint32_t n,
			    int client, uint64_t seq)
{
	struct store_txn t;

	memset(&t, 0, sizeof t);
	t.commit_time_us = 1700000000000000ull + seq;
	t.n_parts = n;
	t.parts = parts;
	if (client >= 0) {
		t.has_client = true;
		memset(t.client_id, 0x10 + client, sizeof t.client_id);
		t.client_seq = seq;
	}
	return t;
}

/* Sample payloads. */
static const char json_data[] =
	"{\"order\":\"o-123\",\"amount\":4250,\"currency\":\"EUR\"}";
static const char json_meta[] =
	"{\"correlation\":\"c-9\",\"causation\":\"e-8\"}";

/* Offsets of the fields of part 0 and its event 0 in an encoded
 * transaction (docs/storage-format.md). */
struct layout {
	size_t n_parts;  /* u32 */
	size_t name_len; /* u8 */
	size_t name;
	size_t kind;     /* u8 */
	size_t version;  /* u64 */
	size_t n_events; /* u32 */
	size_t type_len; /* u8, of event 0 */
	size_t type;
	size_t data_len;     /* u32 */
	size_t metadata_len; /* u32 */
	size_t end_of_event;
};

static struct layout layout_of(const struct store_txn *t, size_t encoded_len)
{
	const struct store_part *p = &t->parts[0];
	const struct store_event *e = &p->events[0];
	struct layout l;

	l.n_parts = 4;
	l.name_len = TXN_HEADER + (t->has_client ? TXN_CLIENT : 0);
	l.name = l.name_len + 1;
	l.kind = l.name + p->stream_len;
	l.version = l.kind + 1;
	l.n_events = l.version + 8;
	l.type_len = l.n_events + 4 + 16;
	l.type = l.type_len + 1;
	l.data_len = l.type + e->type_len + 2 + 8;
	l.metadata_len = l.data_len + 4 + e->data_len;
	l.end_of_event = l.metadata_len + 4 + e->metadata_len;
	if (t->n_parts == 1 && p->n_events == 1 &&
	    l.end_of_event != encoded_len)
		die("the transaction layout of docs/storage-format.md does "
		    "not match the encoder (%zu bytes, encoder %zu): update "
		    "gen_corpus",
		    l.end_of_event, encoded_len);
	return l;
}

/* Writes a copy of @b with @len bytes at @off replaced by @val (1, 2, 4 or
 * 8 bytes, little-endian). */
static void write_patched(const char *name, const struct blob *b, size_t off,
			  size_t len, uint64_t val)
{
	uint8_t *p = copy_bytes(b->buf, b->len, 0);
	size_t i;

	if (off + len > b->len)
		die("patch %s past the end", name);
	for (i = 0; i < len; i++)
		p[off + i] = (uint8_t)(val >> (8 * i));
	write_input("txn", name, p, b->len);
	free(p);
}

/* Writes a copy of @b with @del bytes at @off removed and @ins_len bytes
 * of @ins put in their place. */
static void write_spliced(const char *name, const struct blob *b, size_t off,
			  size_t del, const void *ins, size_t ins_len)
{
	uint8_t *p = copy_bytes("", 0, b->len + ins_len);
	size_t len = 0;

	if (off + del > b->len)
		die("splice %s past the end", name);
	memcpy(p, b->buf, off);
	len += off;
	if (ins_len > 0)
		memcpy(p + len, ins, ins_len);
	len += ins_len;
	memcpy(p + len, b->buf + off + del, b->len - off - del);
	len += b->len - off - del;
	write_input("txn", name, p, len);
	free(p);
}

static void write_truncations(const char *kind, const char *stem,
			      const struct blob *b, const size_t *cuts,
			      size_t n)
{
	char name[128];
	size_t i;

	for (i = 0; i < n; i++) {
		if (cuts[i] >= b->len)
			continue;
		snprintf(name, sizeof name, "%s-trunc-%zu", stem, cuts[i]);
		write_input(kind, name, b->buf, cuts[i]);
	}
}

static void write_bitflips(const char *kind, const char *stem,
			   const struct blob *b, const size_t *bits, size_t n)
{
	char name[128];
	size_t i;

	for (i = 0; i < n; i++) {
		uint8_t *p = copy_bytes(b->buf, b->len, 0);
		size_t bit = bits[i] % (b->len * 8);

		p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		snprintf(name, sizeof name, "%s-flip-%zu", stem, bit);
		write_input(kind, name, p, b->len);
		free(p);
	}
}

static void gen_txn_corpus(void)
{
	/* A stream name of 255 bytes with two- and three-byte characters. */
	char long_stream[STORE_STREAM_NAME_MAX + 1];
	char long_type[STORE_EVENT_TYPE_MAX + 1];
	static uint8_t big_data[8192];
	static uint8_t big_meta[1024];
	struct store_event ev_min, ev_full, ev_long, ev_big;
	struct store_event ev_many[40];
	char many_types[40][16];
	struct store_event ev_multi[6];
	struct store_part p_min, p_full, p_long, p_big, p_many, p_multi[3];
	struct store_part p_dup[2];
	struct store_part p_utf8[5];
	struct store_part p_small[64];
	struct store_event ev_small[64];
	char small_streams[64][16];
	struct store_txn t_min, t_full, t_long, t_big, t_many, t_multi, t_dup;
	struct store_txn t_utf8;
	struct blob b_min, b_full, b_long, b_big, b_many, b_multi, b_dup;
	struct blob b_utf8;
	struct blob all[5];
	struct blob smalls[64];
	struct blob e;
	struct layout l;
	size_t i;

	/* "é" (U+00E9, 2 bytes) and "€" (U+20AC, 3 bytes), to 255 bytes. */
	for (i = 0; i < 255;) {
		if (i % 5 == 0 && i + 2 <= 255) {
			long_stream[i++] = (char)0xc3;
			long_stream[i++] = (char)0xa9;
		} else if (i + 3 <= 255) {
			long_stream[i++] = (char)0xe2;
			long_stream[i++] = (char)0x82;
			long_stream[i++] = (char)0xac;
		} else {
			long_stream[i++] = 'x';
		}
	}
	long_stream[255] = '\0';
	memset(long_type, 'T', STORE_EVENT_TYPE_MAX);
	long_type[STORE_EVENT_TYPE_MAX] = '\0';
	for (i = 0; i < sizeof big_data; i++)
		big_data[i] = (uint8_t)(i * 7 + 3);
	for (i = 0; i < sizeof big_meta; i++)
		big_meta[i] = (uint8_t)('a' + i % 26);

	/* minimal: no client, ANY, type "T", no data. */
	ev_min = event(1, "T", NULL, 0, NULL, 0);
	p_min = part("s", STORE_EXPECT_ANY, 0, &ev_min, 1);
	t_min = txn(&p_min, 1, -1, 0);
	t_min.commit_time_us = 0;

	/* full: every field of an event set, client, exact version. */
	ev_full = event(2, "OrderPlaced", json_data, sizeof json_data - 1,
			json_meta, sizeof json_meta - 1);
	ev_full.schema_version = 3;
	ev_full.event_time_us = 1699999999123456ll;
	p_full = part("order-123", STORE_EXPECT_EXACT, 7, &ev_full, 1);
	t_full = txn(&p_full, 1, 1, 42);

	/* long: the longest names, extreme numbers. */
	ev_long = event(3, long_type, "x", 1, NULL, 0);
	ev_long.schema_version = UINT16_MAX;
	ev_long.event_time_us = -1;
	p_long = part(long_stream, STORE_EXPECT_EXACT, STORE_VERSION_MAX,
		      &ev_long, 1);
	t_long = txn(&p_long, 1, 2, UINT64_MAX);
	t_long.commit_time_us = UINT64_MAX;

	/* big: kilobytes of data and metadata. */
	ev_big = event(4, "Blob", big_data, sizeof big_data, big_meta,
		       sizeof big_meta);
	p_big = part("blob-1", STORE_EXPECT_NO_STREAM, 0, &ev_big, 1);
	t_big = txn(&p_big, 1, 3, 1);

	/* many: 40 events of one part with assorted sizes. */
	for (i = 0; i < 40; i++) {
		snprintf(many_types[i], sizeof many_types[i], "Type%zu", i % 7);
		ev_many[i] =
			event(100 + i, many_types[i], big_data, (uint32_t)i * 3,
			      big_meta, (uint32_t)(i % 4));
	}
	p_many = part("cart-77", STORE_EXPECT_EXISTS, 0, ev_many, 40);
	t_many = txn(&p_many, 1, 4, 9);

	/* multi: three parts, every expectation kind. */
	for (i = 0; i < 6; i++)
		ev_multi[i] = event(200 + i, "Moved", json_data, 8, NULL, 0);
	p_multi[0] =
		part("account-1", STORE_EXPECT_NO_STREAM, 0, &ev_multi[0], 2);
	p_multi[1] = part("account-2", STORE_EXPECT_EXISTS, 0, &ev_multi[2], 1);
	p_multi[2] = part("ledger", STORE_EXPECT_EXACT, 0, &ev_multi[3], 3);
	t_multi = txn(p_multi, 3, 5, 1000);

	/* utf8: stream names with 2-, 3- and 4-byte characters, up to
	 * U+10FFFF, and U+00A0 (the first code point after the C1
	 * controls). */
	p_utf8[0] = part("caf\xc3\xa9-1", STORE_EXPECT_ANY, 0, &ev_multi[0], 1);
	p_utf8[1] =
		part("\xe2\x82\xac-2", STORE_EXPECT_ANY, 0, &ev_multi[1], 1);
	p_utf8[2] = part("emoji-\xf0\x9f\x98\x80", STORE_EXPECT_ANY, 0,
			 &ev_multi[2], 1);
	p_utf8[3] = part("max-\xf4\x8f\xbf\xbf", STORE_EXPECT_ANY, 0,
			 &ev_multi[3], 1);
	p_utf8[4] = part("\xc2\xa0nbsp", STORE_EXPECT_ANY, 0, &ev_multi[4], 1);
	t_utf8 = txn(p_utf8, 5, -1, 0);

	/* dup: two parts whose names differ in the last byte only, patched
	 * below into the same name. */
	p_dup[0] = part("dup-a", STORE_EXPECT_ANY, 0, &ev_multi[0], 1);
	p_dup[1] = part("dup-b", STORE_EXPECT_ANY, 0, &ev_multi[1], 1);
	t_dup = txn(p_dup, 2, 6, 5);

	b_min = encode_txn(&t_min);
	b_full = encode_txn(&t_full);
	b_long = encode_txn(&t_long);
	b_big = encode_txn(&t_big);
	b_many = encode_txn(&t_many);
	b_multi = encode_txn(&t_multi);
	b_dup = encode_txn(&t_dup);
	b_utf8 = encode_txn(&t_utf8);

	/* Valid bare transactions and entries. */
	write_input("txn", "txn-minimal", b_min.buf, b_min.len);
	write_input("txn", "txn-full", b_full.buf, b_full.len);
	write_input("txn", "txn-long", b_long.buf, b_long.len);
	write_input("txn", "txn-big", b_big.buf, b_big.len);
	write_input("txn", "txn-many", b_many.buf, b_many.len);
	write_input("txn", "txn-multi", b_multi.buf, b_multi.len);
	write_input("txn", "txn-utf8", b_utf8.buf, b_utf8.len);
	e = make_entry(&b_min, 1);
	write_input("txn", "entry-minimal", e.buf, e.len);
	free(e.buf);
	e = make_entry(&b_full, 1);
	write_input("txn", "entry-full", e.buf, e.len);
	free(e.buf);
	all[0] = b_min;
	all[1] = b_full;
	all[2] = b_long;
	all[3] = b_many;
	all[4] = b_multi;
	e = make_entry(all, 5);
	write_input("txn", "entry-mixed", e.buf, e.len);
	free(e.buf);
	/* 64 one-event transactions of one writer: the benchmark's shape. */
	for (i = 0; i < 64; i++) {
		snprintf(small_streams[i], sizeof small_streams[i], "w-%zu", i);
		ev_small[i] = event(300 + i, "E", json_data, 16, NULL, 0);
		p_small[i] = part(small_streams[i], STORE_EXPECT_NO_STREAM, 0,
				  &ev_small[i], 1);
	}
	for (i = 0; i < 64; i++) {
		struct store_txn t = txn(&p_small[i], 1, 7, i + 1);

		smalls[i] = encode_txn(&t);
	}
	e = make_entry(smalls, 64);
	write_input("txn", "entry-64", e.buf, e.len);
	free(e.buf);
	for (i = 0; i < 64; i++)
		free(smalls[i].buf);

	/* 20 parts: past 16, duplicates are found by sorting. The dup
	 * variant renames part 17 to part 3's name. */
	{
		struct store_part p20[20];
		char names20[20][8];
		struct store_txn t20;
		struct blob b20;
		uint8_t *at;

		for (i = 0; i < 20; i++) {
			snprintf(names20[i], sizeof names20[i], "p-%02zu", i);
			p20[i] = part(names20[i], STORE_EXPECT_ANY, 0, &ev_min,
				      1);
		}
		t20 = txn(p20, 20, 8, 20);
		b20 = encode_txn(&t20);
		write_input("txn", "txn-parts-20", b20.buf, b20.len);
		at = find(b20.buf, b20.len, "p-17");
		if (at == NULL)
			die("stream name not found in its encoding");
		memcpy(at, "p-03", 4);
		write_input("txn", "txn-parts-20-dup", b20.buf, b20.len);
		free(b20.buf);
	}

	/* Invalid transactions: one field of "full" broken at a time. */
	l = layout_of(&t_full, b_full.len);
	write_patched("txn-bad-format", &b_full, 0, 1, 2);
	write_patched("txn-unknown-flag", &b_full, 1, 1, 0x81);
	write_patched("txn-reserved-set", &b_full, 2, 2, 1);
	write_patched("txn-no-parts", &b_full, l.n_parts, 4, 0);
	write_patched("txn-parts-huge", &b_full, l.n_parts, 4, UINT32_MAX);
	write_patched("txn-name-len-0", &b_full, l.name_len, 1, 0);
	write_patched("txn-name-control", &b_full, l.name + 3, 1, 0x01);
	write_patched("txn-name-nul", &b_full, l.name + 3, 1, 0x00);
	write_patched("txn-name-bad-utf8", &b_full, l.name + 3, 1, 0xff);
	write_patched("txn-name-overlong", &b_full, l.name + 3, 2, 0x80c0);
	write_patched("txn-name-c1", &b_full, l.name + 3, 2, 0x85c2);
	write_patched("txn-name-cut-utf8", &b_full, l.name + 8, 1, 0xe2);
	write_patched("txn-name-del", &b_full, l.name + 3, 1, 0x7f);
	write_patched("txn-name-overlong-3", &b_full, l.name + 3, 3, 0x8080e0);
	write_patched("txn-name-overlong-4", &b_full, l.name + 3, 4,
		      0x808080f0u);
	write_patched("txn-name-above-max", &b_full, l.name + 3, 4,
		      0x808090f4u);
	write_patched("txn-name-surrogate", &b_full, l.name + 3, 3, 0x80a0ed);
	write_patched("txn-name-lead-f8", &b_full, l.name + 3, 1, 0xf8);
	write_patched("txn-kind-4", &b_full, l.kind, 1, 4);
	write_patched("txn-any-with-version", &b_full, l.kind, 1,
		      STORE_EXPECT_ANY);
	write_patched("txn-version-over-max", &b_full, l.version, 8,
		      (uint64_t)STORE_VERSION_MAX + 1);
	write_patched("txn-no-events", &b_full, l.n_events, 4, 0);
	/* The counts pass their size checks, the bytes run out after the
	 * first part, the first event, the second event's id. */
	write_patched("txn-parts-2", &b_full, l.n_parts, 4, 2);
	write_patched("txn-events-2", &b_full, l.n_events, 4, 2);
	{
		struct blob two;
		static const uint8_t id[16];

		two.buf = copy_bytes(b_full.buf, b_full.len, 0);
		two.len = b_full.len;
		put_u32le(two.buf + l.n_events, 2);
		write_spliced("txn-events-2-id-only", &two, two.len, 0, id,
			      sizeof id);
		free(two.buf);
	}
	/* Well-formed bytes around an empty stream name or type. */
	{
		struct blob b = b_full;
		uint8_t zero = 0;

		b.buf = copy_bytes(b_full.buf, b_full.len, 0);
		b.buf[l.type_len] = 0;
		write_spliced("txn-type-empty", &b, l.type,
			      t_full.parts[0].events[0].type_len, NULL, 0);
		free(b.buf);
		write_spliced("txn-name-empty", &b_full, l.name_len,
			      1 + t_full.parts[0].stream_len, &zero, 1);
	}
	write_patched("txn-events-huge", &b_full, l.n_events, 4, UINT32_MAX);
	write_patched("txn-events-over-max", &b_full, l.n_events, 4,
		      STORE_TXN_EVENTS_MAX + 1);
	write_patched("txn-type-len-0", &b_full, l.type_len, 1, 0);
	write_patched("txn-type-control", &b_full, l.type, 1, 0x1b);
	write_patched("txn-data-len-huge", &b_full, l.data_len, 4, UINT32_MAX);
	write_patched("txn-data-len-plus-1", &b_full, l.data_len, 4,
		      get_u32le(b_full.buf + l.data_len) + 1);
	write_patched("txn-meta-len-huge", &b_full, l.metadata_len, 4,
		      UINT32_MAX);
	write_patched("txn-meta-len-minus-1", &b_full, l.metadata_len, 4,
		      get_u32le(b_full.buf + l.metadata_len) - 1);
	{
		uint8_t *p = copy_bytes(b_full.buf, b_full.len, 1);

		write_input("txn", "txn-trailing-byte", p, b_full.len + 1);
		free(p);
	}
	{
		/* Cut in the header, after the client block, inside every
		 * field of the part and its event, before the last byte;
		 * flip flags bit 1 and the top bit of a stream name byte. */
		size_t cuts[] = { 0, 16, 40, b_full.len - 1 };
		size_t bits[] = { 9, (l.name + 2) * 8 + 7 };
		/* "long" has enough bytes for the count checks to pass,
		 * so a cut inside each field reaches its bounds check. */
		struct layout ll = layout_of(&t_long, b_long.len);
		size_t long_cuts[] = { ll.name + 100,      ll.version + 2,
				       ll.n_events + 2,    ll.type_len - 4,
				       ll.type + 100,      ll.data_len + 2,
				       ll.metadata_len + 2 };

		write_truncations("txn", "txn-full", &b_full, cuts,
				  sizeof cuts / sizeof cuts[0]);
		write_truncations("txn", "txn-long", &b_long, long_cuts,
				  sizeof long_cuts / sizeof long_cuts[0]);
		write_bitflips("txn", "txn-full", &b_full, bits,
			       sizeof bits / sizeof bits[0]);
	}
	{
		/* "dup-b" becomes "dup-a": a stream twice in one txn. */
		uint8_t *p = copy_bytes(b_dup.buf, b_dup.len, 0);
		uint8_t *at = find(p, b_dup.len, "dup-b");

		if (at == NULL)
			die("stream name not found in its encoding");
		at[4] = 'a';
		write_input("txn", "txn-dup-stream", p, b_dup.len);
		free(p);
	}

	/* Invalid entries: one field of a two-transaction entry broken. */
	all[0] = b_min;
	all[1] = b_full;
	e = make_entry(all, 2);
	write_input("txn", "entry-two", e.buf, e.len);
	{
		size_t first_off = ENTRY_HEADER;
		size_t second_off = ENTRY_HEADER + 4 + b_min.len;
		size_t body = ENTRY_HEADER + 8 + b_min.len + b_full.len;
		struct {
			const char *name;
			size_t off;
			size_t len;
			uint64_t val;
		} patches[] = {
			{ "entry-bad-magic", 0, 1, 'X' },
			{ "entry-bad-format", 4, 1, 2 },
			{ "entry-reserved-set", 5, 1, 1 },
			{ "entry-reserved-6-set", 6, 1, 1 },
			{ "entry-reserved-7-set", 7, 1, 1 },
			{ "entry-count-too-many-for-body", 8, 4,
			  (body - ENTRY_HEADER) / 5 + 1 },
			{ "entry-count-0", 8, 4, 0 },
			{ "entry-count-3", 8, 4, 3 },
			{ "entry-count-huge", 8, 4, UINT32_MAX },
			{ "entry-body-plus-1", 12, 4, body - ENTRY_HEADER + 1 },
			{ "entry-body-minus-1", 12, 4,
			  body - ENTRY_HEADER - 1 },
			{ "entry-body-huge", 12, 4, UINT32_MAX },
			{ "entry-txn-len-0", first_off, 4, 0 },
			{ "entry-txn-len-huge", first_off, 4, UINT32_MAX },
			{ "entry-txn-len-plus-1", first_off, 4, b_min.len + 1 },
			{ "entry-txn2-len-minus-1", second_off, 4,
			  b_full.len - 1 },
		};

		if (get_u32le(e.buf + 12) != body - ENTRY_HEADER ||
		    get_u32le(e.buf + first_off) != b_min.len ||
		    get_u32le(e.buf + second_off) != b_full.len)
			die("the entry layout of docs/storage-format.md does "
			    "not match the builder: update gen_corpus");
		for (i = 0; i < sizeof patches / sizeof patches[0]; i++) {
			uint8_t *p = copy_bytes(e.buf, e.len, 0);
			size_t k;

			for (k = 0; k < patches[i].len; k++)
				p[patches[i].off + k] =
					(uint8_t)(patches[i].val >> (8 * k));
			write_input("txn", patches[i].name, p, e.len);
			free(p);
		}
		if (body < e.len) {
			uint8_t *p = copy_bytes(e.buf, e.len, 0);

			p[e.len - 1] = 0xff;
			write_input("txn", "entry-padding-set", p, e.len);
			free(p);
		}
		{
			/* An extra 8 zero bytes after the padding. */
			uint8_t *p = copy_bytes(e.buf, e.len, 8);

			write_input("txn", "entry-extra-padding", p, e.len + 8);
			free(p);
		}
		{
			size_t cuts[] = { 8, 16, 20, e.len - 1 };

			write_truncations("txn", "entry-two", &e, cuts,
					  sizeof cuts / sizeof cuts[0]);
		}
	}
	free(e.buf);
	{
		/* Framing fine, the transaction inside broken. */
		struct blob bad;

		bad.buf = copy_bytes(b_full.buf, b_full.len, 0);
		bad.len = b_full.len;
		put_u32le(bad.buf + l.n_events, 0);
		all[0] = b_min;
		all[1] = bad;
		e = make_entry(all, 2);
		write_input("txn", "entry-bad-txn", e.buf, e.len);
		free(e.buf);
		free(bad.buf);
	}

	{
		/* State operations: beside events, alone, in an entry. */
		static const char snap[] = "{\"items\":2}";
		struct store_op ops[3] = {
			{ STORE_OP_CHECKPOINT_SET, "billing", 7, 0, 41, NULL,
			  0 },
			{ STORE_OP_CHECKPOINT_CAS, "audit", 5, 3, 4, NULL, 0 },
			{ STORE_OP_SNAPSHOT_PUT, "order-1", 7, 0, 1, snap,
			  sizeof snap - 1 },
		};
		struct store_txn t_ops = t_full;
		struct store_txn t_only = txn(NULL, 0, 1, 9);
		struct blob b_ops;
		struct blob b_only;
		const size_t cuts[] = { 17, 40, 60 };

		t_ops.n_ops = 3;
		t_ops.ops = ops;
		t_only.n_ops = 2;
		t_only.ops = ops;
		b_ops = encode_txn(&t_ops);
		b_only = encode_txn(&t_only);
		write_input("txn", "txn-ops", b_ops.buf, b_ops.len);
		write_input("txn", "txn-ops-only", b_only.buf, b_only.len);
		write_truncations("txn", "txn-ops-only", &b_only, cuts, 3);
		all[0] = b_min;
		all[1] = b_ops;
		all[2] = b_only;
		e = make_entry(all, 3);
		write_input("txn", "entry-ops", e.buf, e.len);
		free(e.buf);
		free(b_ops.buf);
		free(b_only.buf);
	}

	free(b_min.buf);
	free(b_full.buf);
	free(b_long.buf);
	free(b_big.buf);
	free(b_many.buf);
	free(b_multi.buf);
	free(b_dup.buf);
	free(b_utf8.buf);
}

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "gen_corpus: remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

/* A record file: the position as 8 bytes big-endian, then the value. */
static void write_record(const char *name, uint64_t position,
			 const uint8_t *val, size_t len)
{
	uint8_t *p = copy_bytes("", 0, 8 + len);

	put_be64(p, position);
	if (len > 0)
		memcpy(p + 8, val, len);
	write_input("record", name, p, 8 + len);
	free(p);
}

/* Rewrites the checksum trailer of @val for @position, as record.c
 * computes it. */
static void fix_crc(uint64_t position, uint8_t *val, size_t len)
{
	uint8_t key[8];
	uLong crc;

	put_be64(key, position);
	crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, key, sizeof key);
	crc = crc32(crc, val, (uInt)(len - RECORD_TRAILER));
	put_u32le(val + len - RECORD_TRAILER, (uint32_t)crc);
}

/* Writes @val with @n bytes at @off set to @v (little-endian) and the
 * checksum made right again, so only the field is wrong. */
static void write_record_patched(const char *name, uint64_t position,
				 const uint8_t *val, size_t len, size_t off,
				 size_t n, uint64_t v)
{
	uint8_t *p = copy_bytes(val, len, 0);
	size_t i;

	for (i = 0; i < n; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
	fix_crc(position, p, len);
	write_record(name, position, p, len);
	free(p);
}

static void gen_record_corpus(void)
{
	static uint8_t data[4096];
	char long_stream[STORE_STREAM_NAME_MAX + 1];
	char long_type[STORE_EVENT_TYPE_MAX + 1];
	char tmpl[4096];
	const char *tmp = getenv("TMPDIR");
	struct store_event ev[3];
	struct store_part parts[3];
	struct store_txn t[3];
	struct blob b[3];
	struct blob e;
	struct store_results res;
	struct store s;
	const char *names[3] = { "rec-minimal", "rec-full", "rec-long" };
	uint8_t *vals[3];
	size_t lens[3];
	uint64_t pos[3];
	char *dir;
	size_t i;
	int rv;

	for (i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 13 + 5);
	memset(long_stream, 'S', STORE_STREAM_NAME_MAX);
	long_stream[STORE_STREAM_NAME_MAX] = '\0';
	memset(long_type, 't', STORE_EVENT_TYPE_MAX);
	long_type[STORE_EVENT_TYPE_MAX] = '\0';

	ev[0] = event(11, "T", NULL, 0, NULL, 0);
	parts[0] = part("s", STORE_EXPECT_ANY, 0, &ev[0], 1);
	t[0] = txn(&parts[0], 1, -1, 0);
	ev[1] = event(12, "OrderPlaced", json_data, sizeof json_data - 1,
		      json_meta, sizeof json_meta - 1);
	ev[1].schema_version = 2;
	ev[1].event_time_us = 1699999999000001ll;
	parts[1] = part("order-9", STORE_EXPECT_NO_STREAM, 0, &ev[1], 1);
	t[1] = txn(&parts[1], 1, 1, 77);
	ev[2] = event(13, long_type, data, sizeof data, json_meta, 10);
	parts[2] = part(long_stream, STORE_EXPECT_NO_STREAM, 0, &ev[2], 1);
	t[2] = txn(&parts[2], 1, 2, 3);
	for (i = 0; i < 3; i++)
		b[i] = encode_txn(&t[i]);
	e = make_entry(b, 3);

	snprintf(tmpl, sizeof tmpl, "%s/cairn-gen-corpus-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	dir = mkdtemp(tmpl);
	if (dir == NULL)
		die("mkdtemp %s: %s", tmpl, strerror(errno));
	rv = store_open(&s, dir, NULL);
	if (rv != 0)
		die("store_open %s: %s", dir, s.errmsg);
	store_results_init(&res);
	rv = store_apply(&s, 1, e.buf, e.len, &res);
	if (rv != 0)
		die("store_apply: %s", s.errmsg);
	if (res.skipped || res.entry_error != 0 || res.n != 3)
		die("store_apply: unexpected results (skipped %d, entry "
		    "error %d, %u transactions)",
		    res.skipped, res.entry_error, res.n);
	for (i = 0; i < 3; i++) {
		uint8_t key[8];
		void *val;

		if (res.txns[i].outcome != STORE_COMMITTED)
			die("transaction %zu: outcome %u", i,
			    res.txns[i].outcome);
		pos[i] = res.txns[i].parts[0].first_position;
		put_be64(key, pos[i]);
		rv = store_debug_get(&s, STORE_CF_LOG, key, sizeof key, &val,
				     &lens[i]);
		if (rv != 0)
			die("store_debug_get: %s", s.errmsg);
		if (val == NULL)
			die("no record at position %llu",
			    (unsigned long long)pos[i]);
		vals[i] = copy_bytes(val, lens[i], 0);
		free(val);
		write_record(names[i], pos[i], vals[i], lens[i]);
	}
	store_results_close(&res);
	store_close(&s);
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "gen_corpus: remove %s: %s\n", dir,
			strerror(errno));

	/* Invalid records, from "rec-full". */
	{
		const uint8_t *v = vals[1];
		size_t len = lens[1];
		uint64_t p = pos[1];
		uint8_t *c;

		if (len != RECORD_HEADER + strlen("order-9") +
				   strlen("OrderPlaced") + sizeof json_data -
				   1 + sizeof json_meta - 1 + RECORD_TRAILER)
			die("the record layout of docs/storage-format.md "
			    "does not match the store: update gen_corpus");
		write_record("rec-wrong-position", p + 1, v, len);
		write_record("rec-empty", p, v, 0);
		/* Shorter than the position itself. */
		write_input("record", "rec-no-position", v, 3);
		write_record("rec-trunc-83", p, v, 83);
		write_record("rec-trunc-last", p, v, len - 1);
		c = copy_bytes(v, len, 0);
		c[100] ^= 0x04;
		write_record("rec-flip-100", p, c, len);
		free(c);
		c = copy_bytes(v, len, 0);
		c[len - 1] ^= 0x80;
		write_record("rec-flip-crc", p, c, len);
		free(c);
		write_record_patched("rec-bad-format", p, v, len, 0, 1, 2);
		write_record_patched("rec-unknown-flag", p, v, len, 1, 1, 0x80);
		write_record_patched("rec-stream-len-0", p, v, len, 2, 1, 0);
		write_record_patched("rec-stream-len-plus-1", p, v, len, 2, 1,
				     strlen("order-9") + 1);
		write_record_patched("rec-type-len-0", p, v, len, 3, 1, 0);
		write_record_patched("rec-data-len-huge", p, v, len, 72, 4,
				     UINT32_MAX);
		write_record_patched("rec-data-len-minus-1", p, v, len, 72, 4,
				     sizeof json_data - 2);
		write_record_patched("rec-meta-len-huge", p, v, len, 76, 4,
				     UINT32_MAX);
		/* An empty stream name or type whose bytes went to the
		 * neighbour: the lengths still add up. */
		write_record_patched(
			"rec-stream-empty", p, v, len, 2, 2,
			(uint64_t)(strlen("order-9") + strlen("OrderPlaced"))
				<< 8);
		write_record_patched("rec-type-empty", p, v, len, 2, 2,
				     strlen("order-9") + strlen("OrderPlaced"));
		/* Data and metadata lengths that trade bytes: still adds up. */
		{
			uint8_t *q = copy_bytes(v, len, 0);

			put_u32le(q + 72, get_u32le(q + 72) + 5);
			put_u32le(q + 76, get_u32le(q + 76) - 5);
			fix_crc(p, q, len);
			write_record("rec-lengths-traded", p, q, len);
			free(q);
		}
		/* A valid record at the largest position. */
		c = copy_bytes(v, len, 0);
		put_u64le(c + 8, 1);
		fix_crc(UINT64_MAX, c, len);
		write_record("rec-position-max", UINT64_MAX, c, len);
		free(c);
	}
	for (i = 0; i < 3; i++) {
		free(vals[i]);
		free(b[i].buf);
	}
	free(e.buf);
}

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	out_root = argv[1];
	make_dir(out_root);
	snprintf(path, sizeof path, "%s/txn", out_root);
	make_dir(path);
	remove_generated(path);
	snprintf(path, sizeof path, "%s/record", out_root);
	make_dir(path);
	remove_generated(path);
	gen_txn_corpus();
	gen_record_corpus();
	printf("gen_corpus: wrote %u files, %zu bytes, to %s\n", files_written,
	       bytes_written, out_root);
	return 0;
}
