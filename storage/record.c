/* Event records: the values of the `log` column family. A record holds the
 * event, its assigned stream version, and a CRC-32 over its position and
 * bytes, computed when it is encoded and verified whenever it is read back,
 * so a flipped bit or a record under the wrong key is reported as
 * corruption, never returned as data. Layout in docs/storage-format.md. */
#include <zlib.h>

#include "store_int.h"

static uint32_t record_crc(uint64_t position, const uint8_t *buf, size_t len)
{
	uint8_t key[8];
	uLong crc;

	put_be64(key, position);
	crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, key, sizeof key);
	/* zlib takes a uInt length; records are far below 4 GiB. */
	crc = crc32(crc, buf, (uInt)len);
	return (uint32_t)crc;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	size_t k;

	for (k = 0; k < len; k++)
		if (p[k] != 0)
			return false;
	return true;
}

size_t store_record_size(uint32_t stream_len, const struct store_event *e)
{
	return STORE_RECORD_HEADER + (size_t)stream_len + e->type_len +
	       e->data_len + e->metadata_len + STORE_RECORD_TRAILER;
}

void store_record_encode(uint8_t *buf, uint64_t position, uint64_t version,
			 const char *stream, uint32_t stream_len,
			 const struct store_event *e, const struct store_txn *t)
{
	uint8_t *p = buf;
	size_t body;

	p[0] = STORE_RECORD_FORMAT;
	p[1] = t->has_client ? STORE_RECORD_FLAG_CLIENT : 0;
	p[2] = (uint8_t)stream_len;
	p[3] = (uint8_t)e->type_len;
	put_u16(p + 4, e->schema_version);
	put_u16(p + 6, 0);
	put_u64(p + 8, version);
	put_u64(p + 16, t->commit_time_us);
	put_u64(p + 24, (uint64_t)e->event_time_us);
	memcpy(p + 32, e->id, 16);
	if (t->has_client) {
		memcpy(p + 48, t->client_id, 16);
		put_u64(p + 64, t->client_seq);
	} else {
		memset(p + 48, 0, 24);
	}
	put_u32(p + 72, e->data_len);
	put_u32(p + 76, e->metadata_len);
	p += STORE_RECORD_HEADER;
	memcpy(p, stream, stream_len);
	p += stream_len;
	memcpy(p, e->type, e->type_len);
	p += e->type_len;
	if (e->data_len > 0)
		memcpy(p, e->data, e->data_len);
	p += e->data_len;
	if (e->metadata_len > 0)
		memcpy(p, e->metadata, e->metadata_len);
	p += e->metadata_len;
	body = (size_t)(p - buf);
	put_u32(p, record_crc(position, buf, body));
}

int store_record_decode(uint64_t position, const void *buf, size_t len,
			struct store_record *r, char *errmsg)
{
	const uint8_t *p = buf;
	uint64_t want;
	uint32_t crc;

	if (len < STORE_RECORD_HEADER + STORE_RECORD_TRAILER) {
		store_errorf(errmsg,
			     "record at position %llu: %zu bytes is "
			     "too short",
			     (unsigned long long)position, len);
		return STORE_ECORRUPT;
	}
	/* The checksum first: nothing of a damaged record is trusted, not
	 * even its lengths. */
	crc = get_u32(p + len - STORE_RECORD_TRAILER);
	if (crc != record_crc(position, p, len - STORE_RECORD_TRAILER)) {
		store_errorf(errmsg,
			     "record at position %llu: checksum "
			     "mismatch",
			     (unsigned long long)position);
		return STORE_ECORRUPT;
	}
	if (p[0] != STORE_RECORD_FORMAT ||
	    (p[1] & ~STORE_RECORD_FLAG_CLIENT) != 0 || get_u16(p + 6) != 0 ||
	    ((p[1] & STORE_RECORD_FLAG_CLIENT) == 0 && !all_zero(p + 48, 24))) {
		store_errorf(errmsg,
			     "record at position %llu: format %u, "
			     "flags %#x, or reserved bytes not zero",
			     (unsigned long long)position, p[0], p[1]);
		return STORE_EMALFORMED;
	}
	memset(r, 0, sizeof *r);
	r->position = position;
	r->stream_len = p[2];
	r->type_len = p[3];
	r->schema_version = get_u16(p + 4);
	r->version = get_u64(p + 8);
	r->commit_time_us = get_u64(p + 16);
	r->event_time_us = (int64_t)get_u64(p + 24);
	memcpy(r->id, p + 32, 16);
	r->has_client = (p[1] & STORE_RECORD_FLAG_CLIENT) != 0;
	memcpy(r->client_id, p + 48, 16);
	r->client_seq = get_u64(p + 64);
	r->data_len = get_u32(p + 72);
	r->metadata_len = get_u32(p + 76);
	want = (uint64_t)STORE_RECORD_HEADER + r->stream_len + r->type_len +
	       r->data_len + r->metadata_len + STORE_RECORD_TRAILER;
	if (want != len || r->stream_len == 0 || r->type_len == 0 ||
	    r->data_len > STORE_EVENT_DATA_MAX ||
	    r->metadata_len > STORE_EVENT_METADATA_MAX) {
		store_errorf(errmsg,
			     "record at position %llu: lengths do not "
			     "add up to its %zu bytes",
			     (unsigned long long)position, len);
		return STORE_EMALFORMED;
	}
	p += STORE_RECORD_HEADER;
	r->stream = (const char *)p;
	p += r->stream_len;
	r->type = (const char *)p;
	p += r->type_len;
	r->data = p;
	p += r->data_len;
	r->metadata = p;
	return 0;
}
