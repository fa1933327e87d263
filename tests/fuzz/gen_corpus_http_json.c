/* gen_corpus_http_json: writes the seed corpus of fuzz_http_json
 * (tests/fuzz/corpus/http_json/gen-*). Each seed starts with the byte that
 * picks the target's mode (see fuzz_http_json.c): 0 append (then a stream
 * name length byte and the name), 1 sync, 2 expected version header, 3
 * u64, 4 render a record. The bodies cover every field of
 * docs/http-api.md and one break of each rule the codec checks, so the
 * fuzzer starts from the shapes that reach every branch. Deterministic;
 * replaces only gen-* files.
 *
 *   gen_corpus_http_json DIR   (writes DIR/http_json/gen-*) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One seed: its file name, mode, stream (append only) and text. */
struct seed {
	const char *name;
	int mode;
	const char *stream;
	const char *text;
};

#define CID "0c6f9e2a-1b3c-4d5e-8f70-112233445566"

static const struct seed seeds[] = {
	{ "append-one", 0, "order-1", "{\"type\":\"ItemAdded\"}" },
	{ "append-full", 0, "order-1",
	  "[{\"type\":\"ItemAdded\",\"data\":{\"sku\":\"A1\",\"qty\":2},"
	  "\"metadata\":{\"correlation_id\":\"c-9\"},"
	  "\"id\":\"6f1c8a52-3f0e-4b8e-9d7c-2b5a1f0e9c11\","
	  "\"schema_version\":3,\"event_time_us\":1764000000000000}]" },
	{ "append-kinds", 0, "k",
	  "[{\"type\":\"a\",\"data\":[1,-2,3.5e10,true,false,null]},"
	  "{\"type\":\"b\",\"data\":\"caf\\u00e9\\n\\\"\"},"
	  "{\"type\":\"c\",\"data\":0.1,\"metadata\":-0.0},"
	  "{\"type\":\"d\",\"data\":null,\"metadata\":{}}]" },
	{ "append-utf8-stream", 0, "caf\xc3\xa9-\xe2\x82\xac",
	  "[{\"type\":\"\xe2\x82\xac\"}]" },
	{ "append-type-control", 0, "s", "[{\"type\":\"a\\u0001b\"}]" },
	{ "append-unknown-field", 0, "s", "[{\"type\":\"t\",\"x\":1}]" },
	{ "append-no-type", 0, "s", "[{\"data\":1}]" },
	{ "append-empty", 0, "s", "[]" },
	{ "append-dup-key", 0, "s", "[{\"type\":\"a\",\"type\":\"b\"}]" },
	{ "append-bad-id", 0, "s", "[{\"type\":\"t\",\"id\":\"nope\"}]" },
	{ "append-bad-utf8", 0, "s", "[{\"type\":\"\xc3\"}]" },
	{ "append-bad-stream", 0, "a\x01", "[{\"type\":\"t\"}]" },
	{ "append-deep", 0, "s",
	  "[{\"type\":\"t\",\"data\":[[[[[[[[[[{\"a\":[[[[1]]]]}]]]]]]]]]]}]" },
	{ "append-malformed", 0, "s", "[{\"type\":\"t\",]" },
	{ "sync", 1, NULL,
	  "{\"client_id\":\"" CID "\",\"batches\":["
	  "{\"seq\":1,\"streams\":[{\"stream\":\"canvas-main\","
	  "\"events\":[{\"type\":\"a\",\"data\":{\"x\":1}},{\"type\":\"b\"}]},"
	  "{\"stream\":\"canvas-side\",\"events\":{\"type\":\"c\"}}]},"
	  "{\"seq\":7,\"streams\":[{\"stream\":\"canvas-main\","
	  "\"events\":[{\"type\":\"d\"}]}]}]}" },
	{ "sync-empty", 1, NULL, "{\"client_id\":\"" CID "\",\"batches\":[]}" },
	{ "sync-dup-stream", 1, NULL,
	  "{\"client_id\":\"" CID "\",\"batches\":[{\"seq\":1,\"streams\":["
	  "{\"stream\":\"s\",\"events\":[{\"type\":\"t\"}]},"
	  "{\"stream\":\"s\",\"events\":[{\"type\":\"t\"}]}]}]}" },
	{ "sync-seq-order", 1, NULL,
	  "{\"client_id\":\"" CID "\",\"batches\":["
	  "{\"seq\":2,\"streams\":[{\"stream\":\"s\",\"events\":[{\"type\":"
	  "\"t\"}]}]},{\"seq\":2,\"streams\":[{\"stream\":\"s\",\"events\":"
	  "[{\"type\":\"t\"}]}]}]}" },
	{ "sync-no-client", 1, NULL, "{\"batches\":[]}" },
	{ "sync-bad-shape", 1, NULL,
	  "{\"client_id\":\"" CID "\",\"batches\":[{\"seq\":1,\"streams\":"
	  "[{\"stream\":\"s\"}]}]}" },
	{ "expected-any", 2, NULL, "any" },
	{ "expected-no-stream", 2, NULL, "no-stream" },
	{ "expected-exists", 2, NULL, "exists" },
	{ "expected-number", 2, NULL, "9223372036854775807" },
	{ "expected-over", 2, NULL, "9223372036854775808" },
	{ "u64-max", 3, NULL, "18446744073709551615" },
	{ "u64-over", 3, NULL, "18446744073709551616" },
	{ "u64-sign", 3, NULL, "-1" },
};

/* Mode 4 seeds: three length bytes (stream, type, metadata) and the rest
 * as data; written as bytes, since they need not be text. */
static const struct {
	const char *name;
	const char *bytes;
	size_t len;
} records[] = {
	{ "render-json",
	  "\x07\x09\x0b"
	  "order-1ItemAdded{\"c\":\"c-9\"}{\"sku\":\"A1\"}",
	  3 + 7 + 9 + 11 + 12 },
	{ "render-binary",
	  "\x01\x01\x02"
	  "st\xff\xfe\x00\x01\x02\x03",
	  3 + 1 + 1 + 2 + 4 },
	{ "render-bad-utf8",
	  "\x02\x02\x00"
	  "\xc3x\xed\xa0[1,2",
	  3 + 2 + 2 + 4 },
};

static int write_file(const char *dir, const char *name, const void *a,
		      size_t a_len, const void *b, size_t b_len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof path, "%s/gen-%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "gen_corpus_http_json: %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	if (fwrite(a, 1, a_len, f) != a_len ||
	    (b_len > 0 && fwrite(b, 1, b_len, f) != b_len) || fclose(f) != 0) {
		fprintf(stderr, "gen_corpus_http_json: write %s\n", path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char dir[4096];
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	snprintf(dir, sizeof dir, "%s/http_json", argv[1]);
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "gen_corpus_http_json: %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
		const struct seed *s = &seeds[i];
		unsigned char head[2 + 255];
		size_t head_len = 0;

		head[head_len++] = (unsigned char)s->mode;
		if (s->mode == 0) {
			size_t n = strlen(s->stream);

			head[head_len++] = (unsigned char)n;
			memcpy(head + head_len, s->stream, n);
			head_len += n;
		}
		if (write_file(dir, s->name, head, head_len, s->text,
			       strlen(s->text)) != 0)
			return 1;
	}
	for (i = 0; i < sizeof records / sizeof records[0]; i++) {
		static const unsigned char mode = 4;

		if (write_file(dir, records[i].name, &mode, 1, records[i].bytes,
			       records[i].len) != 0)
			return 1;
	}
	return 0;
}
