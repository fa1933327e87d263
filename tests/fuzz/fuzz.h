/* What the fuzz targets and their corpus replayer share: the libFuzzer entry
 * point every target defines, and CHECK, which aborts with the failed
 * condition and a message so libFuzzer (or the replay test) reports the
 * input as a crash. Used by the files of tests/fuzz/ only. */
#ifndef CAIRN_TESTS_FUZZ_H
#define CAIRN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs one input through a target. Returns 0; a failed check aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts when @cond is false, printing it and a printf-style message. */
#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/* True when [p, p+n) lies inside [buf, buf+len); an empty span may also be
 * NULL. */
static inline int fuzz_inside(const void *p, size_t n, const void *buf,
			      size_t len)
{
	uintptr_t q = (uintptr_t)p;
	uintptr_t b = (uintptr_t)buf;

	if (n == 0 && p == NULL)
		return 1;
	return q >= b && q - b <= len && n <= len - (q - b);
}

#endif /* CAIRN_TESTS_FUZZ_H */
