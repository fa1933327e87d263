/* uuid: 16-byte identifiers (event ids, client ids) in RFC 4122 byte order,
 * their 36-character text form, and random version-4 ids from
 * getrandom(2). Shared by cairnd's HTTP gateway and libcairn, so that both
 * read and write exactly the same text. */
#ifndef CAIRN_COMMON_UUID_H
#define CAIRN_COMMON_UUID_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of the text form, without and with its terminating NUL. */
#define UUID_TEXT_LEN  36
#define UUID_TEXT_SIZE 37

/* Fills @out with a random version-4 UUID. */
void uuid_random(uint8_t out[16]);

/* Writes the lowercase 8-4-4-4-12 text of @id and a NUL into @out. */
void uuid_format(const uint8_t id[16], char out[UUID_TEXT_SIZE]);

/* Parses exactly @len bytes of 8-4-4-4-12 hex text (either case) into @out.
 * Returns 0, or -1 when @s is not such a text (then @out is unchanged). */
int uuid_parse(const char *s, size_t len, uint8_t out[16]);

/* Fills @out with @n random bytes (getrandom(2), retried on EINTR). */
void uuid_random_bytes(void *out, size_t n);

#endif /* CAIRN_COMMON_UUID_H */
