/* fuzz_txn: libFuzzer target for the entry and transaction codec
 * (storage/txn.c), the first code on every replica to see the bytes of a
 * committed Raft entry. An input is read twice:
 *
 *   - as an entry: store_entry_open() checks its framing, store_entry_next()
 *     walks it, and every transaction goes to store_txn_decode();
 *   - as one bare transaction, straight to store_txn_decode(), from an
 *     odd address so that a decoder which loads misaligned words is caught
 *     by UBSan.
 *
 * Whatever decodes must round-trip: store_txn_validate() accepts the view,
 * store_txn_encode() gives back exactly the input bytes, and an entry whose
 * transactions all decode is rebuilt byte for byte by the entry builder.
 * Every pointer of a decoded view must point inside the input. The corpus
 * replay test (replay.c) links this file too. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "store.h"

/* Reused between inputs, as the node reuses one view per apply, so the
 * growth of its arrays is exercised too. */
static struct store_txn_view view;
static bool view_ready;

static void check_errmsg(int rv, const char *errmsg)
{
	CHECK(rv > 0, "negative error code %d", rv);
	CHECK(strcmp(store_strerror(rv), "unknown error") != 0,
	      "error code %d is not in STORE_ERRORS", rv);
	CHECK(memchr(errmsg, '\0', STORE_ERRMSG_SIZE) != NULL,
	      "errmsg not terminated for code %d", rv);
	CHECK(errmsg[0] != '\0', "empty errmsg for code %d (%s)", rv,
	      store_strerror(rv));
}

/* Every field of a decoded view is inside @buf and within the limits. */
static void check_view(const struct store_txn *t, const uint8_t *buf,
		       size_t len)
{
	uint64_t events = 0;
	uint32_t i;
	uint32_t k;

	CHECK(t->n_parts >= 1 || t->n_ops >= 1,
	      "decoded a transaction without parts or operations");
	CHECK(t->n_parts == 0 || t->parts != NULL, "parts is NULL");
	CHECK(t->n_ops <= STORE_TXN_OPS_MAX, "%u operations", t->n_ops);
	for (i = 0; i < t->n_ops; i++) {
		const struct store_op *op = &t->ops[i];

		CHECK(op->kind >= STORE_OP_CHECKPOINT_SET &&
			      op->kind <= STORE_OP_SNAPSHOT_PUT,
		      "op %u: kind %u", i, op->kind);
		CHECK(fuzz_inside(op->name, op->name_len, buf, len),
		      "op %u: name outside the input", i);
		CHECK(store_stream_name_valid(op->name, op->name_len),
		      "op %u: invalid name decoded", i);
		CHECK(op->data_len <= STORE_SNAPSHOT_BYTES_MAX,
		      "op %u: %u data bytes", i, op->data_len);
		CHECK(op->data_len == 0 ||
			      fuzz_inside(op->data, op->data_len, buf, len),
		      "op %u: data outside the input", i);
	}
	for (i = 0; i < t->n_parts; i++) {
		const struct store_part *p = &t->parts[i];

		CHECK(p->stream_len >= 1 &&
			      p->stream_len <= STORE_STREAM_NAME_MAX,
		      "part %u: stream_len %u", i, p->stream_len);
		CHECK(fuzz_inside(p->stream, p->stream_len, buf, len),
		      "part %u: stream outside the input", i);
		CHECK(store_stream_name_valid(p->stream, p->stream_len),
		      "part %u: invalid stream name decoded", i);
		CHECK(p->expect.kind <= STORE_EXPECT_EXACT,
		      "part %u: expect kind %u", i, p->expect.kind);
		CHECK(p->expect.version <= STORE_VERSION_MAX,
		      "part %u: expected version %llu", i,
		      (unsigned long long)p->expect.version);
		CHECK(p->n_events >= 1, "part %u: no events", i);
		CHECK(p->events != NULL, "part %u: events is NULL", i);
		events += p->n_events;
		CHECK(events <= STORE_TXN_EVENTS_MAX, "%llu events",
		      (unsigned long long)events);
		for (k = 0; k < p->n_events; k++) {
			const struct store_event *e = &p->events[k];

			CHECK(e->type_len >= 1 &&
				      e->type_len <= STORE_EVENT_TYPE_MAX,
			      "part %u event %u: type_len %u", i, k,
			      e->type_len);
			CHECK(fuzz_inside(e->type, e->type_len, buf, len),
			      "part %u event %u: type outside the input", i, k);
			CHECK(e->data_len <= STORE_EVENT_DATA_MAX,
			      "part %u event %u: data_len %u", i, k,
			      e->data_len);
			CHECK(fuzz_inside(e->data, e->data_len, buf, len),
			      "part %u event %u: data outside the input", i, k);
			CHECK(e->metadata_len <= STORE_EVENT_METADATA_MAX,
			      "part %u event %u: metadata_len %u", i, k,
			      e->metadata_len);
			CHECK(fuzz_inside(e->metadata, e->metadata_len, buf,
					  len),
			      "part %u event %u: metadata outside the input", i,
			      k);
		}
	}
}

/* Decodes one transaction; returns true when it decoded, after checking
 * that it round-trips. */
static bool decode_txn(const uint8_t *buf, size_t len)
{
	char errmsg[STORE_ERRMSG_SIZE];
	uint8_t *out;
	size_t size;
	size_t n;
	int rv;

	memset(errmsg, 'x', sizeof errmsg);
	rv = store_txn_decode(buf, len, &view, errmsg);
	if (rv != 0) {
		check_errmsg(rv, errmsg);
		return false;
	}
	check_view(&view.txn, buf, len);
	rv = store_txn_validate(&view.txn, errmsg);
	CHECK(rv == 0, "validate rejects what decode accepted: %s", errmsg);
	size = store_txn_encoded_size(&view.txn);
	CHECK(size == len, "re-encoded size %zu, input %zu", size, len);
	/* Exactly the size, so ASan catches an encoder writing past it. */
	out = malloc(size);
	CHECK(out != NULL, "out of memory");
	n = store_txn_encode(&view.txn, out);
	CHECK(n == size, "encode wrote %zu of %zu bytes", n, size);
	CHECK(memcmp(out, buf, len) == 0, "re-encoding differs from input");
	free(out);
	return true;
}

/* Reads @data as an entry. */
static void fuzz_entry(const uint8_t *data, size_t size)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_entry_builder b;
	struct store_entry_iter it;
	const void *txn;
	const void *rebuilt;
	size_t rebuilt_len;
	size_t len;
	uint32_t count;
	uint32_t seen = 0;
	bool all_decoded = true;
	int rv;

	memset(errmsg, 'x', sizeof errmsg);
	rv = store_entry_open(data, size, &it, errmsg);
	if (rv != 0) {
		check_errmsg(rv, errmsg);
		CHECK(rv == STORE_EMALFORMED, "entry_open returned %d (%s)", rv,
		      store_strerror(rv));
		return;
	}
	count = store_entry_count(data);
	CHECK(count <= STORE_ENTRY_TXNS_MAX, "entry count %u", count);
	store_entry_builder_init(&b);
	while (store_entry_next(&it, &txn, &len)) {
		seen++;
		CHECK(seen <= count, "iterator yields more than %u", count);
		CHECK(len >= 1, "transaction %u is empty", seen);
		CHECK(fuzz_inside(txn, len, data, size),
		      "transaction %u outside the entry", seen);
		if (!decode_txn(txn, len)) {
			all_decoded = false;
			continue;
		}
		rv = store_entry_add_encoded(&b, txn, len, errmsg);
		CHECK(rv == 0, "entry_add_encoded: %s", errmsg);
	}
	CHECK(seen == count, "iterator yields %u of %u", seen, count);
	CHECK(!store_entry_next(&it, &txn, &len),
	      "iterator restarts after its end");
	if (all_decoded) {
		rv = store_entry_finish(&b, &rebuilt, &rebuilt_len);
		CHECK(rv == 0, "entry_finish: %s", store_strerror(rv));
		CHECK(rebuilt_len == size,
		      "rebuilt entry of %zu bytes, input "
		      "%zu",
		      rebuilt_len, size);
		CHECK(memcmp(rebuilt, data, size) == 0,
		      "rebuilt entry differs from input");
	}
	store_entry_builder_close(&b);
}

/* Reads @data as one bare transaction, from an odd address. */
static void fuzz_bare_txn(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size + 1);

	CHECK(copy != NULL, "out of memory");
	if (size > 0)
		memcpy(copy + 1, data, size);
	decode_txn(copy + 1, size);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!view_ready) {
		store_txn_view_init(&view);
		view_ready = true;
	}
	fuzz_entry(data, size);
	fuzz_bare_txn(data, size);
	return 0;
}
