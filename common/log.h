/* Structured logging for cairnd and its modules: one line per event on
 * stderr, with a UTC timestamp, the level, the node id and key=value fields:
 *
 *   ts=2026-11-24T06:30:00.123Z level=info node=1 event=leader_elected term=3
 *
 * Used by consensus/ and node/. Thread-safe: a line is written with one
 * write(2), so lines from threads never interleave. */
#ifndef CAIRN_COMMON_LOG_H
#define CAIRN_COMMON_LOG_H

#include <stdint.h>

enum log_level {
	LOG_DEBUG = 0,
	LOG_INFO = 1,
	LOG_WARN = 2,
	LOG_ERROR = 3,
};

/* Sets the node id printed on every line and the lowest level written.
 * Before it is called, lines carry node=0 and level info and above. */
void log_setup(uint64_t node_id, enum log_level min_level);

/* Parses "debug", "info", "warn" or "error"; returns -1 otherwise. */
int log_level_parse(const char *s);

/* Writes one line: @event is a short snake_case name; @fmt (may be NULL)
 * formats the remaining key=value fields, space separated. Values with
 * spaces should be quoted by the caller: msg="no leader". */
void log_emit(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_emit(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_emit(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__)

#endif /* CAIRN_COMMON_LOG_H */
