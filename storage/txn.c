/* The transaction and entry codec: the bytes a Raft entry carries, as
 * docs/storage-format.md specifies. Validation of every data-model rule and
 * limit lives here too, so the encoder, the decoder and the leader's
 * pre-checks apply exactly the same rules. The decoder trusts nothing: every
 * length is checked against the bytes that remain before it is used, and
 * every count before anything is allocated from it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

const char *store_strerror(int code)
{
	switch (code) {
	case 0:
		return "ok";
#define STORE_ERROR_CASE(name, value, msg) \
	case value:                        \
		return msg;
		STORE_ERRORS(STORE_ERROR_CASE)
#undef STORE_ERROR_CASE
	default:
		return "unknown error";
	}
}

void store_errorf(char *errmsg, const char *fmt, ...)
{
	va_list ap;

	if (errmsg == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(errmsg, STORE_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* Valid UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF)
 * without C0 controls, DEL or C1 controls. */
static bool text_valid(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		uint32_t cp;
		size_t n;
		size_t k;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		i += n + 1;
	}
	return true;
}

bool store_stream_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > STORE_STREAM_NAME_MAX)
		return false;
	return text_valid(name, len);
}

const char *store_stream_category(const char *name, size_t name_len,
				  size_t *len)
{
	const char *dash = memchr(name, '-', name_len);

	*len = dash != NULL ? (size_t)(dash - name) : 0;
	return name;
}

static int compare_streams(const struct store_part *x,
			   const struct store_part *y)
{
	if (x->stream_len != y->stream_len)
		return x->stream_len < y->stream_len ? -1 : 1;
	return memcmp(x->stream, y->stream, x->stream_len);
}

static int compare_part_ptrs(const void *a, const void *b)
{
	return compare_streams(*(const struct store_part *const *)a,
			       *(const struct store_part *const *)b);
}

/* Finds a stream named by two parts: quadratic for the common few parts,
 * sorting pointers for many, so 10,000 parts cost n log n. Sets @dup to the
 * later part's index. */
static int find_duplicate_stream(const struct store_txn *t, uint32_t *dup,
				 bool *found)
{
	const struct store_part **sorted;
	uint32_t i;
	uint32_t j;

	*found = false;
	if (t->n_parts <= 16) {
		for (i = 0; i < t->n_parts; i++) {
			for (j = i + 1; j < t->n_parts; j++) {
				if (compare_streams(&t->parts[i],
						    &t->parts[j]) == 0) {
					*dup = j;
					*found = true;
					return 0;
				}
			}
		}
		return 0;
	}
	sorted = malloc(sizeof *sorted * t->n_parts);
	if (sorted == NULL)
		return STORE_ENOMEM;
	for (i = 0; i < t->n_parts; i++)
		sorted[i] = &t->parts[i];
	qsort(sorted, t->n_parts, sizeof *sorted, compare_part_ptrs);
	for (i = 1; i < t->n_parts; i++) {
		if (compare_streams(sorted[i - 1], sorted[i]) == 0) {
			*dup = (uint32_t)(sorted[i] - t->parts);
			*found = true;
			break;
		}
	}
	free(sorted);
	return 0;
}

static int check_duplicate_stream(const struct store_txn *t, char *errmsg)
{
	uint32_t dup = 0;
	bool found;

	if (find_duplicate_stream(t, &dup, &found) != 0) {
		store_errorf(errmsg, "validate transaction: out of memory");
		return STORE_ENOMEM;
	}
	if (!found)
		return 0;
	store_errorf(errmsg,
		     "part %u: stream '%.*s' appears twice in one transaction",
		     dup, (int)t->parts[dup].stream_len, t->parts[dup].stream);
	return STORE_EDUPLICATE_STREAM;
}

static uint64_t event_encoded_size(const struct store_event *e)
{
	return STORE_EVENT_FIXED + (uint64_t)e->type_len + e->data_len +
	       e->metadata_len;
}

static uint64_t op_encoded_size(const struct store_op *op)
{
	return STORE_OP_FIXED + (uint64_t)op->name_len + op->data_len;
}

/* Checks the state operations of @t, whose parts took @size bytes. */
static int validate_ops(const struct store_txn *t, uint64_t size, char *errmsg)
{
	uint32_t i;
	uint32_t k;

	if (t->ops == NULL || t->n_ops > STORE_TXN_OPS_MAX) {
		store_errorf(errmsg,
			     "more than %d state operations in one "
			     "transaction",
			     STORE_TXN_OPS_MAX);
		return STORE_EINVALID_OP;
	}
	size += 4;
	for (i = 0; i < t->n_ops; i++) {
		const struct store_op *op = &t->ops[i];

		if (op->name == NULL ||
		    !store_stream_name_valid(op->name, op->name_len)) {
			store_errorf(errmsg,
				     "operation %u: name must be 1..%d bytes "
				     "of UTF-8 without control characters",
				     i, STORE_STREAM_NAME_MAX);
			return STORE_EINVALID_OP;
		}
		switch (op->kind) {
		case STORE_OP_CHECKPOINT_SET:
		case STORE_OP_CHECKPOINT_CAS:
			if (op->data_len != 0 ||
			    (op->kind == STORE_OP_CHECKPOINT_SET &&
			     op->expected != 0)) {
				store_errorf(errmsg,
					     "operation %u: a checkpoint "
					     "takes a value only",
					     i);
				return STORE_EINVALID_OP;
			}
			break;
		case STORE_OP_SNAPSHOT_PUT:
			if (op->value == 0 || op->value > STORE_VERSION_MAX ||
			    op->expected != 0) {
				store_errorf(errmsg,
					     "operation %u: a snapshot needs a "
					     "version 1..%lld",
					     i, (long long)STORE_VERSION_MAX);
				return STORE_EINVALID_OP;
			}
			if (op->data_len > STORE_SNAPSHOT_BYTES_MAX ||
			    (op->data_len > 0 && op->data == NULL)) {
				store_errorf(errmsg,
					     "operation %u: snapshot of %u "
					     "bytes over the limit of %u",
					     i, op->data_len,
					     STORE_SNAPSHOT_BYTES_MAX);
				return STORE_ESNAPSHOT_TOO_LARGE;
			}
			break;
		default:
			store_errorf(errmsg, "operation %u: unknown kind %u", i,
				     op->kind);
			return STORE_EINVALID_OP;
		}
		/* One operation per checkpoint or stream snapshot: a CAS
		 * after a set of the same name would be ambiguous. */
		for (k = 0; k < i; k++) {
			const struct store_op *o = &t->ops[k];

			if ((o->kind == STORE_OP_SNAPSHOT_PUT) ==
				    (op->kind == STORE_OP_SNAPSHOT_PUT) &&
			    o->name_len == op->name_len &&
			    memcmp(o->name, op->name, op->name_len) == 0) {
				store_errorf(errmsg,
					     "operations %u and %u name the "
					     "same %s",
					     k, i,
					     op->kind == STORE_OP_SNAPSHOT_PUT
						     ? "stream"
						     : "checkpoint");
				return STORE_EINVALID_OP;
			}
		}
		size += op_encoded_size(op);
		if (size > STORE_TXN_BYTES_MAX) {
			store_errorf(errmsg, "transaction over %u bytes",
				     STORE_TXN_BYTES_MAX);
			return STORE_ETXN_TOO_LARGE;
		}
	}
	return 0;
}

int store_txn_validate(const struct store_txn *t, char *errmsg)
{
	uint64_t size = STORE_TXN_HEADER;
	uint64_t events = 0;
	uint32_t i;
	uint32_t k;

	if (t->has_client)
		size += STORE_TXN_CLIENT;
	if ((t->n_parts > 0 && t->parts == NULL) ||
	    (t->n_parts == 0 && t->n_ops == 0)) {
		store_errorf(errmsg, "transaction has no parts");
		return STORE_EEMPTY;
	}
	for (i = 0; i < t->n_parts; i++) {
		const struct store_part *p = &t->parts[i];

		if (p->stream == NULL ||
		    !store_stream_name_valid(p->stream, p->stream_len)) {
			store_errorf(errmsg,
				     "part %u: stream name must be 1..%d bytes "
				     "of UTF-8 without control characters",
				     i, STORE_STREAM_NAME_MAX);
			return STORE_EINVALID_STREAM;
		}
		switch (p->expect.kind) {
		case STORE_EXPECT_ANY:
		case STORE_EXPECT_NO_STREAM:
		case STORE_EXPECT_EXISTS:
			if (p->expect.version != 0) {
				store_errorf(errmsg,
					     "part %u: expected version set "
					     "for a non-exact mode",
					     i);
				return STORE_EINVALID_EXPECTED;
			}
			break;
		case STORE_EXPECT_EXACT:
			if (p->expect.version > STORE_VERSION_MAX) {
				store_errorf(
					errmsg,
					"part %u: expected version %llu "
					"above the maximum %lld",
					i,
					(unsigned long long)p->expect.version,
					(long long)STORE_VERSION_MAX);
				return STORE_EINVALID_EXPECTED;
			}
			break;
		default:
			store_errorf(errmsg,
				     "part %u: unknown expected "
				     "version mode %u",
				     i, p->expect.kind);
			return STORE_EINVALID_EXPECTED;
		}
		if (p->n_events == 0 || p->events == NULL) {
			store_errorf(errmsg, "part %u: no events", i);
			return STORE_EEMPTY;
		}
		events += p->n_events;
		if (events > STORE_TXN_EVENTS_MAX) {
			store_errorf(errmsg,
				     "more than %d events in one "
				     "transaction",
				     STORE_TXN_EVENTS_MAX);
			return STORE_ETOO_MANY_EVENTS;
		}
		size += STORE_PART_FIXED + (uint64_t)p->stream_len;
		for (k = 0; k < p->n_events; k++) {
			const struct store_event *e = &p->events[k];

			if (e->type == NULL || e->type_len == 0 ||
			    e->type_len > STORE_EVENT_TYPE_MAX ||
			    !text_valid(e->type, e->type_len)) {
				store_errorf(errmsg,
					     "part %u event %u: type must be "
					     "1..%d bytes of UTF-8 without "
					     "control characters",
					     i, k, STORE_EVENT_TYPE_MAX);
				return STORE_EINVALID_TYPE;
			}
			if (e->data_len > STORE_EVENT_DATA_MAX ||
			    (e->data_len > 0 && e->data == NULL)) {
				store_errorf(errmsg,
					     "part %u event %u: data of %u "
					     "bytes over the limit of %u",
					     i, k, e->data_len,
					     STORE_EVENT_DATA_MAX);
				return STORE_EDATA_TOO_LARGE;
			}
			if (e->metadata_len > STORE_EVENT_METADATA_MAX ||
			    (e->metadata_len > 0 && e->metadata == NULL)) {
				store_errorf(errmsg,
					     "part %u event %u: metadata of "
					     "%u bytes over the limit of %u",
					     i, k, e->metadata_len,
					     STORE_EVENT_METADATA_MAX);
				return STORE_EMETADATA_TOO_LARGE;
			}
			size += event_encoded_size(e);
			if (size > STORE_TXN_BYTES_MAX) {
				store_errorf(errmsg,
					     "transaction over %u bytes",
					     STORE_TXN_BYTES_MAX);
				return STORE_ETXN_TOO_LARGE;
			}
		}
	}
	if (t->n_ops > 0) {
		int rv = validate_ops(t, size, errmsg);

		if (rv != 0)
			return rv;
	}
	return t->n_parts > 0 ? check_duplicate_stream(t, errmsg) : 0;
}

size_t store_txn_encoded_size(const struct store_txn *t)
{
	size_t size = STORE_TXN_HEADER;
	uint32_t i;
	uint32_t k;

	if (t->has_client)
		size += STORE_TXN_CLIENT;
	for (i = 0; i < t->n_parts; i++) {
		size += STORE_PART_FIXED + t->parts[i].stream_len;
		for (k = 0; k < t->parts[i].n_events; k++)
			size += (size_t)event_encoded_size(
				&t->parts[i].events[k]);
	}
	if (t->n_ops > 0) {
		size += 4;
		for (i = 0; i < t->n_ops; i++)
			size += (size_t)op_encoded_size(&t->ops[i]);
	}
	return size;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t len)
{
	if (len > 0)
		memcpy(p, src, len);
	return p + len;
}

size_t store_txn_encode(const struct store_txn *t, void *buf)
{
	uint8_t *p = buf;
	uint32_t i;
	uint32_t k;

	p[0] = STORE_TXN_FORMAT;
	p[1] = (uint8_t)((t->has_client ? STORE_TXN_FLAG_CLIENT : 0) |
			 (t->n_ops > 0 ? STORE_TXN_FLAG_OPS : 0));
	put_u16(p + 2, 0);
	put_u32(p + 4, t->n_parts);
	put_u64(p + 8, t->commit_time_us);
	p += STORE_TXN_HEADER;
	if (t->has_client) {
		p = put_bytes(p, t->client_id, 16);
		put_u64(p, t->client_seq);
		p += 8;
	}
	for (i = 0; i < t->n_parts; i++) {
		const struct store_part *part = &t->parts[i];

		*p++ = (uint8_t)part->stream_len;
		p = put_bytes(p, part->stream, part->stream_len);
		*p++ = part->expect.kind;
		put_u64(p, part->expect.version);
		p += 8;
		put_u32(p, part->n_events);
		p += 4;
		for (k = 0; k < part->n_events; k++) {
			const struct store_event *e = &part->events[k];

			p = put_bytes(p, e->id, 16);
			*p++ = (uint8_t)e->type_len;
			p = put_bytes(p, e->type, e->type_len);
			put_u16(p, e->schema_version);
			p += 2;
			put_u64(p, (uint64_t)e->event_time_us);
			p += 8;
			put_u32(p, e->data_len);
			p += 4;
			p = put_bytes(p, e->data, e->data_len);
			put_u32(p, e->metadata_len);
			p += 4;
			p = put_bytes(p, e->metadata, e->metadata_len);
		}
	}
	if (t->n_ops > 0) {
		put_u32(p, t->n_ops);
		p += 4;
		for (i = 0; i < t->n_ops; i++) {
			const struct store_op *op = &t->ops[i];

			*p++ = op->kind;
			*p++ = (uint8_t)op->name_len;
			p = put_bytes(p, op->name, op->name_len);
			put_u64(p, op->expected);
			p += 8;
			put_u64(p, op->value);
			p += 8;
			put_u32(p, op->data_len);
			p += 4;
			p = put_bytes(p, op->data, op->data_len);
		}
	}
	return (size_t)(p - (uint8_t *)buf);
}

void store_txn_view_init(struct store_txn_view *v)
{
	memset(v, 0, sizeof *v);
}

void store_txn_view_close(struct store_txn_view *v)
{
	free(v->parts);
	free(v->events);
	free(v->ops);
	memset(v, 0, sizeof *v);
}

static int reserve(void **arr, uint32_t *cap, uint32_t want, size_t size)
{
	void *p;

	if (want <= *cap)
		return 0;
	p = realloc(*arr, (size_t)want * size);
	if (p == NULL)
		return STORE_ENOMEM;
	*arr = p;
	*cap = want;
	return 0;
}

/* A bounds-checked reader over the encoded bytes. */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static bool take(struct reader *r, size_t n, const uint8_t **out)
{
	if ((size_t)(r->end - r->p) < n)
		return false;
	*out = r->p;
	r->p += n;
	return true;
}

/* Decodes the state operations that follow the parts into v->ops. */
static int decode_ops(struct reader *r, struct store_txn_view *v, char *errmsg)
{
	struct store_txn *t = &v->txn;
	const uint8_t *q;
	uint32_t n;
	uint32_t i;

	if (!take(r, 4, &q))
		goto truncated;
	n = get_u32(q);
	if (n == 0 || n > STORE_TXN_OPS_MAX ||
	    (uint64_t)n * (STORE_OP_FIXED + 1) > (uint64_t)(r->end - r->p)) {
		store_errorf(errmsg,
			     "transaction claims %u operations in %zu "
			     "bytes",
			     n, (size_t)(r->end - r->p));
		return STORE_EMALFORMED;
	}
	if (reserve((void **)&v->ops, &v->cap_ops, n, sizeof *v->ops) != 0) {
		store_errorf(errmsg, "decode transaction: out of memory");
		return STORE_ENOMEM;
	}
	for (i = 0; i < n; i++) {
		struct store_op *op = &v->ops[i];

		if (!take(r, 2, &q))
			goto truncated;
		op->kind = q[0];
		op->name_len = q[1];
		if (!take(r, op->name_len, &q))
			goto truncated;
		op->name = (const char *)q;
		if (!take(r, 20, &q))
			goto truncated;
		op->expected = get_u64(q);
		op->value = get_u64(q + 8);
		op->data_len = get_u32(q + 16);
		if (!take(r, op->data_len, &q))
			goto truncated;
		op->data = q;
	}
	t->n_ops = n;
	t->ops = v->ops;
	return 0;

truncated:
	store_errorf(errmsg, "transaction truncated in its operations");
	return STORE_EMALFORMED;
}

int store_txn_decode(const void *buf, size_t len, struct store_txn_view *v,
		     char *errmsg)
{
	struct reader r = { buf, (const uint8_t *)buf + len };
	struct store_txn *t = &v->txn;
	const uint8_t *q;
	uint32_t n_events = 0;
	bool has_ops;
	uint32_t i;
	uint32_t k;
	int rv;

	memset(t, 0, sizeof *t);
	if (len > STORE_TXN_BYTES_MAX) {
		store_errorf(errmsg, "transaction of %zu bytes over %u", len,
			     STORE_TXN_BYTES_MAX);
		return STORE_ETXN_TOO_LARGE;
	}
	if (!take(&r, STORE_TXN_HEADER, &q))
		goto truncated;
	if (q[0] != STORE_TXN_FORMAT) {
		store_errorf(errmsg, "transaction format %u, expected %u", q[0],
			     STORE_TXN_FORMAT);
		return STORE_EMALFORMED;
	}
	if ((q[1] & ~(STORE_TXN_FLAG_CLIENT | STORE_TXN_FLAG_OPS)) != 0 ||
	    get_u16(q + 2) != 0) {
		store_errorf(errmsg, "transaction has unknown flags");
		return STORE_EMALFORMED;
	}
	t->has_client = (q[1] & STORE_TXN_FLAG_CLIENT) != 0;
	has_ops = (q[1] & STORE_TXN_FLAG_OPS) != 0;
	t->n_parts = get_u32(q + 4);
	t->commit_time_us = get_u64(q + 8);
	if (t->has_client) {
		if (!take(&r, STORE_TXN_CLIENT, &q))
			goto truncated;
		memcpy(t->client_id, q, 16);
		t->client_seq = get_u64(q + 16);
	}
	if (t->n_parts == 0 && !has_ops) {
		store_errorf(errmsg, "transaction has no parts");
		return STORE_EEMPTY;
	}
	/* Every part takes at least its fixed bytes plus one event: a count
	 * the remaining bytes cannot hold is rejected before allocation. */
	if (t->n_parts > STORE_TXN_EVENTS_MAX ||
	    (uint64_t)t->n_parts *
			    (STORE_PART_FIXED + 1 + STORE_EVENT_FIXED + 1) >
		    (uint64_t)(r.end - r.p)) {
		store_errorf(errmsg, "transaction claims %u parts in %zu bytes",
			     t->n_parts, (size_t)(r.end - r.p));
		return STORE_EMALFORMED;
	}
	if (t->n_parts > 0 && reserve((void **)&v->parts, &v->cap_parts,
				      t->n_parts, sizeof *v->parts) != 0)
		goto nomem;

	/* First pass: part headers and event counts, to size the event
	 * array once; the second pass fills it. */
	for (i = 0; i < t->n_parts; i++) {
		struct store_part *p = &v->parts[i];
		uint32_t name_len;

		if (!take(&r, 1, &q))
			goto truncated;
		name_len = q[0];
		if (!take(&r, name_len, &q))
			goto truncated;
		p->stream = (const char *)q;
		p->stream_len = name_len;
		if (!take(&r, 13, &q))
			goto truncated;
		p->expect.kind = q[0];
		p->expect.version = get_u64(q + 1);
		p->n_events = get_u32(q + 9);
		if (p->n_events == 0) {
			store_errorf(errmsg, "part %u: no events", i);
			return STORE_EEMPTY;
		}
		if (p->n_events > STORE_TXN_EVENTS_MAX - n_events) {
			store_errorf(errmsg,
				     "more than %d events in one "
				     "transaction",
				     STORE_TXN_EVENTS_MAX);
			return STORE_ETOO_MANY_EVENTS;
		}
		if ((uint64_t)p->n_events * (STORE_EVENT_FIXED + 1) >
		    (uint64_t)(r.end - r.p)) {
			store_errorf(errmsg,
				     "part %u claims %u events in %zu "
				     "bytes",
				     i, p->n_events, (size_t)(r.end - r.p));
			return STORE_EMALFORMED;
		}
		n_events += p->n_events;
		/* Skip the events to reach the next part header. */
		for (k = 0; k < p->n_events; k++) {
			const uint8_t *e;
			uint32_t n;

			if (!take(&r, 16, &e) || !take(&r, 1, &e))
				goto truncated;
			n = e[0];
			if (!take(&r, n + 10u, &e) || !take(&r, 4, &e))
				goto truncated;
			n = get_u32(e);
			if (!take(&r, n, &e) || !take(&r, 4, &e))
				goto truncated;
			n = get_u32(e);
			if (!take(&r, n, &e))
				goto truncated;
		}
	}
	if (has_ops) {
		rv = decode_ops(&r, v, errmsg);
		if (rv != 0)
			return rv;
	}
	if (r.p != r.end) {
		store_errorf(errmsg, "%zu trailing bytes after the transaction",
			     (size_t)(r.end - r.p));
		return STORE_EMALFORMED;
	}
	if (n_events > 0 && reserve((void **)&v->events, &v->cap_events,
				    n_events, sizeof *v->events) != 0)
		goto nomem;

	/* Second pass: every length was checked by the first. */
	n_events = 0;
	for (i = 0; i < t->n_parts; i++) {
		struct store_part *p = &v->parts[i];
		const uint8_t *e =
			(const uint8_t *)p->stream + p->stream_len + 13;

		p->events = &v->events[n_events];
		for (k = 0; k < p->n_events; k++) {
			struct store_event *ev = &v->events[n_events + k];

			memcpy(ev->id, e, 16);
			ev->type_len = e[16];
			ev->type = (const char *)e + 17;
			e += 17 + ev->type_len;
			ev->schema_version = get_u16(e);
			ev->event_time_us = (int64_t)get_u64(e + 2);
			ev->data_len = get_u32(e + 10);
			ev->data = e + 14;
			e += 14 + ev->data_len;
			ev->metadata_len = get_u32(e);
			ev->metadata = e + 4;
			e += 4 + ev->metadata_len;
		}
		n_events += p->n_events;
	}
	t->parts = v->parts;
	rv = store_txn_validate(t, errmsg);
	if (rv != 0)
		return rv;
	return 0;

truncated:
	store_errorf(errmsg, "transaction truncated at byte %zu of %zu",
		     (size_t)(r.p - (const uint8_t *)buf), len);
	return STORE_EMALFORMED;
nomem:
	store_errorf(errmsg, "decode transaction: out of memory");
	return STORE_ENOMEM;
}

void store_entry_builder_init(struct store_entry_builder *b)
{
	memset(b, 0, sizeof *b);
}

void store_entry_builder_close(struct store_entry_builder *b)
{
	free(b->buf);
	memset(b, 0, sizeof *b);
}

void store_entry_builder_reset(struct store_entry_builder *b)
{
	b->len = 0;
	b->count = 0;
}

/* Makes room for @more bytes after the header and the bytes used so far. */
static int builder_grow(struct store_entry_builder *b, size_t more)
{
	size_t want;
	size_t cap;
	uint8_t *p;

	if (b->len == 0)
		b->len = STORE_ENTRY_HEADER;
	want = b->len + more + 8;
	if (want <= b->cap)
		return 0;
	cap = b->cap > 0 ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	p = realloc(b->buf, cap);
	if (p == NULL)
		return STORE_ENOMEM;
	b->buf = p;
	b->cap = cap;
	return 0;
}

static int builder_check_room(struct store_entry_builder *b, size_t txn_len,
			      char *errmsg)
{
	size_t used = b->len > 0 ? b->len : STORE_ENTRY_HEADER;

	if (b->count >= STORE_ENTRY_TXNS_MAX) {
		store_errorf(errmsg, "entry already holds %d transactions",
			     STORE_ENTRY_TXNS_MAX);
		return STORE_EENTRY_TOO_LARGE;
	}
	if (used + 4 + txn_len + 7 > STORE_ENTRY_BYTES_MAX) {
		store_errorf(errmsg, "entry would exceed %u bytes",
			     STORE_ENTRY_BYTES_MAX);
		return STORE_EENTRY_TOO_LARGE;
	}
	if (builder_grow(b, 4 + txn_len) != 0) {
		store_errorf(errmsg, "build entry: out of memory");
		return STORE_ENOMEM;
	}
	return 0;
}

int store_entry_add(struct store_entry_builder *b, const struct store_txn *t,
		    char *errmsg)
{
	size_t len;
	int rv;

	rv = store_txn_validate(t, errmsg);
	if (rv != 0)
		return rv;
	len = store_txn_encoded_size(t);
	rv = builder_check_room(b, len, errmsg);
	if (rv != 0)
		return rv;
	put_u32(b->buf + b->len, (uint32_t)len);
	store_txn_encode(t, b->buf + b->len + 4);
	b->len += 4 + len;
	b->count++;
	return 0;
}

int store_entry_add_encoded(struct store_entry_builder *b, const void *txn,
			    size_t len, char *errmsg)
{
	int rv;

	if (len == 0) {
		store_errorf(errmsg, "empty encoded transaction");
		return STORE_EMALFORMED;
	}
	if (len > STORE_TXN_BYTES_MAX) {
		store_errorf(errmsg, "encoded transaction of %zu bytes over %u",
			     len, STORE_TXN_BYTES_MAX);
		return STORE_ETXN_TOO_LARGE;
	}
	rv = builder_check_room(b, len, errmsg);
	if (rv != 0)
		return rv;
	put_u32(b->buf + b->len, (uint32_t)len);
	memcpy(b->buf + b->len + 4, txn, len);
	b->len += 4 + len;
	b->count++;
	return 0;
}

int store_entry_finish(struct store_entry_builder *b, const void **buf,
		       size_t *len)
{
	size_t padded;

	if (b->count == 0)
		return STORE_EEMPTY;
	padded = (b->len + 7) & ~(size_t)7;
	/* builder_grow() always leaves 8 spare bytes for the padding. */
	memset(b->buf + b->len, 0, padded - b->len);
	put_u32(b->buf, STORE_ENTRY_MAGIC);
	b->buf[4] = STORE_ENTRY_FORMAT;
	b->buf[5] = 0;
	b->buf[6] = 0;
	b->buf[7] = 0;
	put_u32(b->buf + 8, b->count);
	put_u32(b->buf + 12, (uint32_t)(b->len - STORE_ENTRY_HEADER));
	*buf = b->buf;
	*len = padded;
	return 0;
}

int store_entry_open(const void *buf, size_t len, struct store_entry_iter *it,
		     char *errmsg)
{
	const uint8_t *p = buf;
	const uint8_t *q;
	const uint8_t *end;
	uint32_t count;
	uint32_t body;
	uint32_t i;
	size_t k;

	if (len < STORE_ENTRY_HEADER || len % 8 != 0 ||
	    len > STORE_ENTRY_BYTES_MAX) {
		store_errorf(errmsg,
			     "entry of %zu bytes: not a multiple of 8 "
			     "between %d and %u",
			     len, STORE_ENTRY_HEADER, STORE_ENTRY_BYTES_MAX);
		return STORE_EMALFORMED;
	}
	if (get_u32(p) != STORE_ENTRY_MAGIC || p[4] != STORE_ENTRY_FORMAT ||
	    p[5] != 0 || p[6] != 0 || p[7] != 0) {
		store_errorf(errmsg, "entry header: bad magic or format %u",
			     p[4]);
		return STORE_EMALFORMED;
	}
	count = get_u32(p + 8);
	body = get_u32(p + 12);
	if (count == 0 || count > STORE_ENTRY_TXNS_MAX ||
	    (uint64_t)body + STORE_ENTRY_HEADER > len ||
	    len - (body + (size_t)STORE_ENTRY_HEADER) >= 8 ||
	    (uint64_t)count * 5 > body) {
		store_errorf(errmsg,
			     "entry header: %u transactions in %u "
			     "bytes of %zu",
			     count, body, len);
		return STORE_EMALFORMED;
	}
	end = p + STORE_ENTRY_HEADER + body;
	for (k = STORE_ENTRY_HEADER + body; k < len; k++) {
		if (p[k] != 0) {
			store_errorf(errmsg, "entry padding is not zero");
			return STORE_EMALFORMED;
		}
	}
	q = p + STORE_ENTRY_HEADER;
	for (i = 0; i < count; i++) {
		uint32_t n;

		if (end - q < 4)
			goto bad_length;
		n = get_u32(q);
		if (n == 0 || (size_t)(end - q - 4) < n)
			goto bad_length;
		q += 4 + n;
	}
	if (q != end)
		goto bad_length;
	it->p = p + STORE_ENTRY_HEADER;
	it->end = end;
	it->remaining = count;
	return 0;

bad_length:
	store_errorf(errmsg, "entry: transaction %u has a bad length", i);
	return STORE_EMALFORMED;
}

bool store_entry_next(struct store_entry_iter *it, const void **txn,
		      size_t *len)
{
	uint32_t n;

	if (it->remaining == 0)
		return false;
	n = get_u32(it->p);
	*txn = it->p + 4;
	*len = n;
	it->p += 4 + n;
	it->remaining--;
	return true;
}

uint32_t store_entry_count(const void *buf)
{
	return get_u32((const uint8_t *)buf + 8);
}
