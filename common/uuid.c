/* uuid: see uuid.h. */
#include "uuid.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

void uuid_random_bytes(void *out, size_t n)
{
	uint8_t *p = out;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			/* Only EINTR is possible for requests this small once
			 * the pool is initialised (it blocks until then). */
			assert(errno == EINTR);
			continue;
		}
		p += got;
		n -= (size_t)got;
	}
}

void uuid_random(uint8_t out[16])
{
	uuid_random_bytes(out, 16);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* variant 10 (RFC 4122) */
}

void uuid_format(const uint8_t id[16], char out[UUID_TEXT_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	size_t i;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[id[i] >> 4];
		*p++ = hex[id[i] & 0x0f];
	}
	*p = '\0';
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int uuid_parse(const char *s, size_t len, uint8_t out[16])
{
	uint8_t id[16];
	size_t i = 0;
	size_t k = 0;

	if (s == NULL || len != UUID_TEXT_LEN)
		return -1;
	while (i < UUID_TEXT_LEN) {
		int hi;
		int lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			i++;
			continue;
		}
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		id[k++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(out, id, sizeof id);
	return 0;
}
