/* node/disk.h: the free-space guard of cairnd's data directory (disk.c).
 *
 * A node whose disk fills up must not corrupt anything and must not take
 * the cluster down with it. The guard checks statvfs(2) of --data-dir on a
 * timer; while the free bytes are below --disk-reserve the node is "low":
 * a leader refuses appends with WIRE_ENO_SPACE (HTTP 507) and hands
 * leadership to another voter, so the cluster keeps accepting writes on the
 * others; a follower keeps replicating (Raft needs it) and redirects
 * clients as usual. The state is logged (disk_low, disk_ok) and exported
 * (cairn_disk_free_bytes, cairn_disk_low). At start-up, a node below the
 * reserve waits (logging, answering GET /health with 503) instead of
 * opening a store it cannot write to, so a node that died of ENOSPC does
 * not crash-loop. See docs/disk.md.
 *
 * Used by main.c (start-up wait, start, close), handlers.c and http.c
 * (append refusals) and http.c (metrics). Everything runs on the node's
 * loop. */
#ifndef CAIRN_NODE_DISK_H
#define CAIRN_NODE_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

struct node;
struct node_config;

/* Free bytes kept on the data directory's file system by default
 * (--disk-reserve): room for RocksDB to flush and compact its memtables
 * and for libraft to finish the segments it preallocated (8 MiB each)
 * after the node stops taking writes. */
#define DISK_RESERVE_DEFAULT (256ull << 20)

/* How often the guard looks at the file system. statvfs is one system
 * call; a second keeps the window in which a burst can eat the reserve
 * short. */
#define DISK_CHECK_MS 1000

/* While waiting at start-up, how often a disk_wait line is logged. */
#define DISK_WAIT_LOG_MS 10000

/* Free bytes of the file system holding @path (what an unprivileged
 * writer may use). Returns 0 or an errno value. */
int disk_free_bytes_of(const char *path, uint64_t *free_bytes);

/* Start-up: while the data directory's free bytes are below the reserve,
 * runs @loop with a timer (logging disk_wait), a SIGTERM/SIGINT handler and,
 * when cfg->http_address is set, a listener answering every request with
 * 503 and a JSON body. Returns 0 once there is room, 1 when a signal asked
 * the node to stop first (exit 0), or -1 when the directory cannot be
 * examined (the caller goes on; opening the store will say why). Every
 * handle it opened is closed before it returns. */
int disk_wait_for_space(uv_loop_t *loop, const struct node_config *cfg);

/* Starts the guard on n->loop (checks once at once). Returns 0 or a
 * negative uv error code. */
int disk_start(struct node *n);

/* Closes the guard's handle; its memory is freed by the close callback.
 * Idempotent; call after consensus has closed. */
void disk_close(struct node *n);

/* True while the free bytes are below the reserve (false when the guard
 * is not running). */
bool disk_low(const struct node *n);

/* The free bytes at the last check (0 when the guard is not running). */
uint64_t disk_free_bytes(const struct node *n);

#endif /* CAIRN_NODE_DISK_H */
