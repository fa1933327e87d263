/* fuzz_record: libFuzzer target for store_record_decode() (storage/record.c),
 * which reads every value of the `log` column family back from disk. An
 * input is a position (its first 8 bytes, big-endian, as the `log` key) and
 * the record bytes after it.
 *
 * The record ends in a CRC-32 over the position and its bytes that the
 * decoder verifies first, and random bytes almost never carry a right one.
 * So each input is decoded twice: as it is (the checksum path, and whatever
 * the corpus brings), and with its last 4 bytes replaced by the CRC-32 that
 * docs/storage-format.md specifies (zlib's crc32 over the big-endian
 * position then the bytes before the trailer, stored little-endian), which
 * takes the fuzzer into the parsing behind the checksum. When the input
 * decodes as it is, the fixed copy must be the same bytes: that pins the
 * harness's idea of the checksum to the decoder's.
 *
 * On success the fields must be sane: the position is the one given, every
 * pointer is inside the input, the lengths are within storage/store_limits.h
 * and add up to the record's size. The corpus replay test (replay.c) links this
 * file too. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz.h"
#include "store.h"

/* Fixed bytes of a record before its variable fields, and its checksum
 * trailer (docs/storage-format.md). */
#define RECORD_HEADER  80
#define RECORD_TRAILER 4

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Writes the checksum of record @buf (@len bytes, trailer included) at
 * position @position into its trailer. */
static void fix_crc(uint64_t position, uint8_t *buf, size_t len)
{
	uint8_t key[8];
	uint64_t v = position;
	uLong crc;
	int i;

	for (i = 7; i >= 0; i--) {
		key[i] = (uint8_t)v;
		v >>= 8;
	}
	crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, key, sizeof key);
	crc = crc32(crc, buf, (uInt)(len - RECORD_TRAILER));
	for (i = 0; i < 4; i++)
		buf[len - RECORD_TRAILER + i] = (uint8_t)(crc >> (8 * i));
}

static void check_record(uint64_t position, const struct store_record *r,
			 const uint8_t *buf, size_t len)
{
	uint64_t total;

	CHECK(r->position == position, "position %llu, given %llu",
	      (unsigned long long)r->position, (unsigned long long)position);
	CHECK(r->stream_len >= 1 && r->stream_len <= STORE_STREAM_NAME_MAX,
	      "stream_len %u", r->stream_len);
	CHECK(r->type_len >= 1 && r->type_len <= STORE_EVENT_TYPE_MAX,
	      "type_len %u", r->type_len);
	CHECK(r->data_len <= STORE_EVENT_DATA_MAX, "data_len %u", r->data_len);
	CHECK(r->metadata_len <= STORE_EVENT_METADATA_MAX, "metadata_len %u",
	      r->metadata_len);
	CHECK(fuzz_inside(r->stream, r->stream_len, buf, len),
	      "stream outside the record");
	CHECK(fuzz_inside(r->type, r->type_len, buf, len),
	      "type outside the record");
	CHECK(fuzz_inside(r->data, r->data_len, buf, len),
	      "data outside the record");
	CHECK(fuzz_inside(r->metadata, r->metadata_len, buf, len),
	      "metadata outside the record");
	total = (uint64_t)RECORD_HEADER + r->stream_len + r->type_len +
		r->data_len + r->metadata_len + RECORD_TRAILER;
	CHECK(total == len, "fields add up to %llu bytes of %zu",
	      (unsigned long long)total, len);
}

/* Decodes @len bytes at @buf as the record at @position; returns the
 * decoder's code after checking what it returned. */
static int decode(uint64_t position, const uint8_t *buf, size_t len)
{
	char errmsg[STORE_ERRMSG_SIZE];
	struct store_record r;
	int rv;

	memset(errmsg, 'x', sizeof errmsg);
	memset(&r, 0xa5, sizeof r);
	rv = store_record_decode(position, buf, len, &r, errmsg);
	if (rv == 0) {
		check_record(position, &r, buf, len);
		return 0;
	}
	CHECK(rv == STORE_ECORRUPT || rv == STORE_EMALFORMED,
	      "record_decode returned %d (%s)", rv, store_strerror(rv));
	CHECK(memchr(errmsg, '\0', sizeof errmsg) != NULL,
	      "errmsg not terminated");
	CHECK(errmsg[0] != '\0', "empty errmsg");
	return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *val = data + 8;
	uint64_t position;
	uint8_t *fixed;
	size_t len;
	int rv;
	int rv_fixed;

	if (size < 8)
		return 0;
	position = get_be64(data);
	len = size - 8;
	/* libFuzzer's buffer ends exactly at the input's end, so ASan sees
	 * any read past the record. */
	rv = decode(position, val, len);
	if (len < RECORD_TRAILER)
		return 0;
	fixed = malloc(len);
	CHECK(fixed != NULL, "out of memory");
	memcpy(fixed, val, len);
	fix_crc(position, fixed, len);
	if (rv == 0)
		CHECK(memcmp(fixed, val, len) == 0,
		      "the harness's CRC differs from the decoder's");
	rv_fixed = decode(position, fixed, len);
	if (len >= RECORD_HEADER + RECORD_TRAILER)
		CHECK(rv_fixed != STORE_ECORRUPT,
		      "checksum rejected after fixing it");
	free(fixed);
	return 0;
}
