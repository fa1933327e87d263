/* Structured logging: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t log_node_id;
static enum log_level log_min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_setup(uint64_t node_id, enum log_level min_level)
{
	log_node_id = node_id;
	log_min_level = min_level;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0)
			return i;
	}
	return -1;
}

void log_emit(enum log_level level, const char *event, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int rv;

	if (level < log_min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "ts=%Y-%m-%dT%H:%M:%S", &tm);
	rv = snprintf(line + n, sizeof line - n,
		      ".%03ldZ level=%s node=%llu event=%s",
		      (long)(ts.tv_nsec / 1000000), level_names[level],
		      (unsigned long long)log_node_id, event);
	if (rv > 0)
		n += (size_t)rv < sizeof line - n ? (size_t)rv
						  : sizeof line - n - 1;
	if (fmt != NULL && n < sizeof line - 2) {
		va_list ap;
		line[n++] = ' ';
		va_start(ap, fmt);
		rv = vsnprintf(line + n, sizeof line - n, fmt, ap);
		va_end(ap);
		if (rv > 0)
			n += (size_t)rv < sizeof line - n ? (size_t)rv
							  : sizeof line - n - 1;
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	/* One write so concurrent lines never interleave. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}
