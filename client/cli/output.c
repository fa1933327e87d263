/* How `cairn read` and `cairn read-all` print events: a human line each
 * (position, stream@version, type, id, data as text when printable, else
 * base64), or with --json one JSON object a line, its data embedded as a
 * JSON value when it parses as JSON, else as base64. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

void cli_format_time(uint64_t us, char *out, size_t size)
{
	time_t secs = (time_t)(us / 1000000u);
	struct tm tm;
	char date[24];

	gmtime_r(&secs, &tm);
	strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%06uZ", date, (unsigned)(us % 1000000u));
}

char *cli_base64(const void *data, size_t len)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"+/";
	const uint8_t *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	char *o = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];

		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		*o++ = abc[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = i + 1 < len ? abc[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

bool cli_printable(const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t i = 0;

	while (i < len) {
		uint8_t b = p[i];
		size_t n;
		uint32_t cp;
		size_t k;

		if (b < 0x80) {
			if (b < 0x20 || b == 0x7f)
				return false;
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			n = 2;
			cp = b & 0x1f;
		} else if ((b & 0xf0) == 0xe0) {
			n = 3;
			cp = b & 0x0f;
		} else if ((b & 0xf8) == 0xf0) {
			n = 4;
			cp = b & 0x07;
		} else {
			return false;
		}
		if (i + n > len)
			return false;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond Unicode, C1 controls. */
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
		    (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
		    (cp >= 0x80 && cp < 0xa0))
			return false;
		i += n;
	}
	return true;
}

/* Sets @key to the JSON value of @data when it parses as JSON, else
 * @key_base64 to its base64. */
static void set_payload(json_t *o, const char *key, const char *key_base64,
			const void *data, size_t len)
{
	json_error_t jerr;
	json_t *v = NULL;

	if (len > 0)
		v = json_loadb(data, len, JSON_DECODE_ANY, &jerr);
	if (v != NULL) {
		json_object_set_new(o, key, v);
	} else {
		char *b64 = cli_base64(data, len);

		if (b64 != NULL)
			json_object_set_new(o, key_base64, json_string(b64));
		free(b64);
	}
}

/* A JSON string of @len bytes; text that is not UTF-8 (the server refuses
 * such names, but this prints whatever it gets) becomes "base64:...". */
static json_t *text_value(const char *p, size_t len)
{
	json_t *v = json_stringn(p, len);
	char *b64;
	size_t n;
	char *tagged;

	if (v != NULL)
		return v;
	b64 = cli_base64(p, len);
	if (b64 == NULL)
		return json_string("");
	n = strlen(b64) + 8;
	tagged = malloc(n);
	if (tagged != NULL)
		snprintf(tagged, n, "base64:%s", b64);
	v = json_string(tagged != NULL ? tagged : "");
	free(tagged);
	free(b64);
	return v;
}

void cli_print_event(FILE *f, const struct cairn_event *e, bool json)
{
	char id[37];
	char when[40];

	cairn_uuid_format(e->id, id);
	if (json) {
		json_t *o = json_object();
		char *line;

		json_object_set_new(o, "position",
				    json_integer((json_int_t)e->position));
		json_object_set_new(o, "stream",
				    text_value(e->stream, e->stream_len));
		json_object_set_new(o, "version",
				    json_integer((json_int_t)e->version));
		json_object_set_new(o, "id", json_string(id));
		json_object_set_new(o, "type",
				    text_value(e->type, e->type_len));
		cli_format_time(e->commit_time_us, when, sizeof when);
		json_object_set_new(o, "time", json_string(when));
		set_payload(o, "data", "data_base64", e->data, e->data_len);
		if (e->metadata_len > 0)
			set_payload(o, "metadata", "metadata_base64",
				    e->metadata, e->metadata_len);
		line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (line != NULL)
			fprintf(f, "%s\n", line);
		free(line);
		json_decref(o);
		return;
	}
	fprintf(f, "%llu %.*s@%llu %.*s %s ", (unsigned long long)e->position,
		(int)e->stream_len, e->stream, (unsigned long long)e->version,
		(int)e->type_len, e->type, id);
	if (cli_printable(e->data, e->data_len)) {
		fprintf(f, "%.*s\n", (int)e->data_len, (const char *)e->data);
	} else {
		char *b64 = cli_base64(e->data, e->data_len);

		fprintf(f, "base64:%s\n", b64 != NULL ? b64 : "");
		free(b64);
	}
}
