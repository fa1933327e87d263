/* libcairn's small helpers: error texts, UUIDs (version 4, from
 * getrandom(2)), "host:port" addresses and seed lists. Used by the rest of
 * the library; cairn_strerror and the UUID functions are public. */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_int.h"
#include "uuid.h"

const char *cairn_strerror(int code)
{
	switch (code) {
	case 0:
		return "ok";
#define CAIRN_ERROR_CASE(name, value, msg) \
	case value:                        \
		return msg;
		CAIRN_ERRORS(CAIRN_ERROR_CASE)
#undef CAIRN_ERROR_CASE
	default:
		return "unknown error";
	}
}

void client_set_error(struct cairn_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	memset(err, 0, sizeof *err);
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

void client_random(void *out, size_t n)
{
	uuid_random_bytes(out, n);
}

uint64_t client_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ------------------------------------------------------------------------
 * UUIDs
 * ------------------------------------------------------------------------ */

void cairn_uuid(uint8_t out[16])
{
	uuid_random(out);
}

void cairn_uuid_format(const uint8_t id[16], char out[37])
{
	uuid_format(id, out);
}

int cairn_uuid_parse(const char *s, uint8_t out[16])
{
	if (s == NULL || uuid_parse(s, strlen(s), out) != 0)
		return CAIRN_EARG;
	return 0;
}

/* ------------------------------------------------------------------------
 * Addresses
 * ------------------------------------------------------------------------ */

int client_address_split(const char *address, char *host, int *port)
{
	const char *colon;
	const char *h = address;
	size_t host_len;
	char *end;
	long p;

	if (strlen(address) > CLIENT_ADDRESS_LEN_MAX)
		return CAIRN_EARG;
	colon = strrchr(address, ':');
	if (colon == NULL)
		return CAIRN_EARG;
	host_len = (size_t)(colon - address);
	if (host_len >= 2 && address[0] == '[' && colon[-1] == ']') {
		h = address + 1;
		host_len -= 2;
	} else if (memchr(address, ':', host_len) != NULL) {
		/* An IPv6 address needs brackets to carry a port. */
		return CAIRN_EARG;
	}
	if (host_len == 0)
		return CAIRN_EARG;
	if (colon[1] < '0' || colon[1] > '9')
		return CAIRN_EARG;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
		return CAIRN_EARG;
	memcpy(host, h, host_len);
	host[host_len] = '\0';
	*port = (int)p;
	return 0;
}

int client_seeds_parse(struct cairn_client *c, const char *seeds, char *why)
{
	const char *p = seeds;

	c->n_addrs = 0;
	while (*p != '\0') {
		const char *start;
		const char *end;
		const char *comma = strchr(p, ',');
		char address[CLIENT_ADDRESS_LEN_MAX + 1];
		char host[CLIENT_ADDRESS_LEN_MAX + 1];
		size_t len;
		size_t i;
		int port;

		end = comma != NULL ? comma : p + strlen(p);
		start = p;
		while (start < end && (*start == ' ' || *start == '\t'))
			start++;
		len = (size_t)(end - start);
		while (len > 0 &&
		       (start[len - 1] == ' ' || start[len - 1] == '\t'))
			len--;
		if (len == 0) {
			snprintf(why, 256, "empty address in seed list");
			return CAIRN_EARG;
		}
		if (len > CLIENT_ADDRESS_LEN_MAX) {
			snprintf(why, 256, "address longer than %d bytes",
				 CLIENT_ADDRESS_LEN_MAX);
			return CAIRN_EARG;
		}
		memcpy(address, start, len);
		address[len] = '\0';
		if (client_address_split(address, host, &port) != 0) {
			snprintf(why, 256,
				 "%.200s: not host:port with a port in "
				 "1..65535",
				 address);
			return CAIRN_EARG;
		}
		for (i = 0; i < c->n_addrs; i++) {
			if (strcmp(c->addrs[i], address) == 0)
				break;
		}
		if (i == c->n_addrs) {
			if (c->n_addrs == CLIENT_ADDRESSES_MAX / 2) {
				snprintf(why, 256, "more than %d seeds",
					 CLIENT_ADDRESSES_MAX / 2);
				return CAIRN_EARG;
			}
			memcpy(c->addrs[c->n_addrs++], address, len + 1);
		}
		if (comma == NULL)
			break;
		p = comma + 1;
		if (*p == '\0') {
			snprintf(why, 256, "empty address in seed list");
			return CAIRN_EARG;
		}
	}
	if (c->n_addrs == 0) {
		snprintf(why, 256, "no seed address");
		return CAIRN_EARG;
	}
	c->n_seeds = c->n_addrs;
	return 0;
}
