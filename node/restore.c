/* node/restore.c: `cairnd --restore DIR`, which turns a backup made by
 * `cairn backup` (docs/backup.md) into the store of a node of a new
 * cluster. main.c calls node_restore() before anything else touches the
 * data directory.
 *
 * Steps, each leaving a state the next start recognises:
 *   1. the data directory must be missing or empty (else exit 2): a node
 *      that has state of its own is never overwritten;
 *   2. the backup must be complete (DIR/CAIRN-COPY present, every file it
 *      lists there with its size);
 *   3. the files are copied into DATA/store.restoring with a buffer of
 *      RESTORE_BUFFER_BYTES, each fsynced, then the directory;
 *   4. store_restore_prepare() resets what belonged to the old cluster
 *      (the applied Raft index to 0, the member table) and keeps events,
 *      versions, dedup records, consumer checkpoints, aggregate snapshots
 *      and the last position;
 *   5. DATA/store.restoring is renamed to DATA/store and DATA fsynced;
 *   6. DATA/RESTORED records the backup's identity (written to a temporary
 *      name, fsynced, renamed, DATA fsynced).
 * A later start with the same --restore DIR (a restart by a supervisor,
 * the re-execution of a state transfer) finds DATA/RESTORED naming the
 * same backup and goes on without restoring. A crash before 6 leaves a
 * data directory that is not empty and names no backup: the next start
 * with --restore refuses (remove DATA and start again); a start without
 * --restore runs what is there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node.h"

/* Copy buffer: memory does not grow with the store. */
#define RESTORE_BUFFER_BYTES (1u << 20)

/* Files a backup may list (storage's bound on a copy). */
#define RESTORE_FILES_MAX STORE_COPY_FILES_MAX

/* Exit statuses (main.c's): a usage error, or a runtime failure. */
#define RESTORE_EXIT_USAGE   2
#define RESTORE_EXIT_FAILURE 1

static int fail(int status, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fsync_path(const char *path, bool dir);

static int fail(int status, const char *event, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_error(event, "error=\"%s\"", msg);
	fprintf(stderr, "cairnd: --restore: %s\n", msg);
	return status;
}

/* Reads the "identity ..." line of @path into @out (@cap bytes); "" when
 * the file or the line is missing. */
static void identity_of(const char *path, char *out, size_t cap)
{
	char line[512];
	FILE *fp = fopen(path, "r");

	out[0] = '\0';
	if (fp == NULL)
		return;
	while (fgets(line, sizeof line, fp) != NULL) {
		size_t n;

		if (strncmp(line, "identity ", 9) != 0)
			continue;
		n = strcspn(line + 9, "\r\n");
		if (n < cap) {
			memcpy(out, line + 9, n);
			out[n] = '\0';
		}
		break;
	}
	fclose(fp);
}

/* Writes DATA/RESTORED: the backup's identity, durably. */
static int write_restored(const char *data_dir, const char *identity)
{
	char tmp[PATH_MAX];
	char path[PATH_MAX];
	FILE *fp;

	if (snprintf(tmp, sizeof tmp, "%s/RESTORED.tmp", data_dir) >=
		    (int)sizeof tmp ||
	    snprintf(path, sizeof path, "%s/RESTORED", data_dir) >=
		    (int)sizeof path)
		return ENAMETOOLONG;
	fp = fopen(tmp, "w");
	if (fp == NULL)
		return errno;
	fprintf(fp, "identity %s\n", identity);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		int rv = errno;

		fclose(fp);
		return rv;
	}
	fclose(fp);
	if (rename(tmp, path) != 0)
		return errno;
	return fsync_path(data_dir, true);
}

/* 1 when @dir holds anything, 0 when it is missing or empty, -1 on an
 * error (errno). */
static int dir_not_empty(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int found = 0;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

static int fsync_path(const char *path, bool dir)
{
	int fd = open(path,
		      (dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
	int rv = 0;

	if (fd < 0)
		return errno;
	if (fsync(fd) != 0)
		rv = errno;
	close(fd);
	return rv;
}

/* Copies @from to @to (created, must not exist) and fsyncs it; checks
 * that @size bytes were copied. Returns 0 or an errno value (EIO for a
 * size that differs). */
static int copy_file(const char *from, const char *to, uint64_t size,
		     uint8_t *buf)
{
	uint64_t done = 0;
	int in;
	int out;
	int rv = 0;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errno;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		rv = errno;
		close(in);
		return rv;
	}
	for (;;) {
		ssize_t n = read(in, buf, RESTORE_BUFFER_BYTES);
		ssize_t w = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rv = errno;
			break;
		}
		if (n == 0)
			break;
		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				rv = k < 0 ? errno : EIO;
				break;
			}
			w += k;
		}
		if (rv != 0)
			break;
		done += (uint64_t)n;
	}
	if (rv == 0 && done != size)
		rv = EIO;
	if (rv == 0 && fsync(out) != 0)
		rv = errno;
	close(out);
	close(in);
	return rv;
}

int node_restore(const struct node_config *cfg)
{
	char marker[PATH_MAX];
	char restored[PATH_MAX];
	char identity[STORE_COPY_IDENTITY_MAX + 1];
	char done_identity[STORE_COPY_IDENTITY_MAX + 1];
	char restoring[PATH_MAX];
	char store[PATH_MAX];
	char from[PATH_MAX + 256];
	char to[PATH_MAX + 256];
	char line[512];
	uint64_t last_position = 0;
	uint64_t applied_index = 0;
	uint64_t total = 0;
	char errmsg[STORE_ERRMSG_SIZE];
	unsigned n_files = 0;
	uint8_t *buf;
	FILE *fp;
	int full;
	int rv;

	if (snprintf(marker, sizeof marker, "%s/CAIRN-COPY",
		     cfg->restore_dir) >= (int)sizeof marker ||
	    snprintf(restoring, sizeof restoring, "%s/store.restoring",
		     cfg->data_dir) >= (int)sizeof restoring ||
	    snprintf(store, sizeof store, "%s/store", cfg->data_dir) >=
		    (int)sizeof store)
		return fail(RESTORE_EXIT_USAGE, "restore_refused",
			    "path too long");
	if (snprintf(restored, sizeof restored, "%s/RESTORED", cfg->data_dir) >=
	    (int)sizeof restored)
		return fail(RESTORE_EXIT_USAGE, "restore_refused",
			    "path too long");
	/* Restored before from this very backup: nothing to do. */
	identity_of(marker, identity, sizeof identity);
	identity_of(restored, done_identity, sizeof done_identity);
	if (identity[0] != '\0' && strcmp(identity, done_identity) == 0) {
		log_info("restore_skipped",
			 "from=\"%s\" identity=%s reason=\"restored before\"",
			 cfg->restore_dir, identity);
		return 0;
	}
	full = dir_not_empty(cfg->data_dir);
	if (full != 0)
		return fail(RESTORE_EXIT_USAGE, "restore_refused",
			    full < 0 ? "cannot read the data directory %s: %s"
				     : "the data directory %s is not empty%s: "
				       "a backup is restored only into an "
				       "empty one",
			    cfg->data_dir, full < 0 ? strerror(errno) : "");
	fp = fopen(marker, "r");
	if (fp == NULL)
		return fail(RESTORE_EXIT_USAGE, "restore_refused",
			    "%s: %s (not a complete backup)", marker,
			    strerror(errno));
	buf = malloc(RESTORE_BUFFER_BYTES);
	if (buf == NULL) {
		fclose(fp);
		return fail(RESTORE_EXIT_FAILURE, "restore_failed",
			    "out of memory");
	}
	if (mkdir(cfg->data_dir, 0755) != 0 && errno != EEXIST) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "create %s: %s", cfg->data_dir, strerror(errno));
		goto err_after_open;
	}
	if (mkdir(restoring, 0755) != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "create %s: %s", restoring, strerror(errno));
		goto err_after_open;
	}
	log_info("restore_started", "from=\"%s\" data_dir=\"%s\"",
		 cfg->restore_dir, cfg->data_dir);
	/* The files CAIRN-COPY lists, each with its size; a name with a '/'
	 * or a leading '.' is refused: the backup's own files only. */
	while (fgets(line, sizeof line, fp) != NULL) {
		char name[STORE_COPY_NAME_MAX + 1];
		unsigned long long size;

		if (sscanf(line, "applied_index %" SCNu64, &applied_index) == 1)
			continue;
		if (strncmp(line, "file ", 5) != 0)
			continue;
		if (sscanf(line + 5, "%255s %llu", name, &size) != 2 ||
		    strchr(name, '/') != NULL || name[0] == '.' ||
		    ++n_files > RESTORE_FILES_MAX) {
			rv = fail(RESTORE_EXIT_USAGE, "restore_refused",
				  "%s: malformed line \"%.*s\"", marker,
				  (int)strcspn(line, "\n"), line);
			goto err_after_open;
		}
		/* The backup's RocksDB identity stays with the backup: the
		 * restored store gets its own (RocksDB makes one on open),
		 * so copies resumed later never mistake its files for the
		 * source's. */
		if (strcmp(name, "IDENTITY") == 0)
			continue;
		snprintf(from, sizeof from, "%s/%s", cfg->restore_dir, name);
		snprintf(to, sizeof to, "%s/%s", restoring, name);
		rv = copy_file(from, to, size, buf);
		if (rv != 0) {
			rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
				  "copy %s: %s", from,
				  rv == EIO ? "size differs from the backup's "
					      "listing"
					    : strerror(rv));
			goto err_after_open;
		}
		total += size;
	}
	fclose(fp);
	fp = NULL;
	if (n_files == 0) {
		rv = fail(RESTORE_EXIT_USAGE, "restore_refused",
			  "%s lists no files", marker);
		goto err_after_open;
	}
	rv = fsync_path(restoring, true);
	if (rv != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "fsync %s: %s", restoring, strerror(rv));
		goto err_after_open;
	}
	rv = store_restore_prepare(restoring, &last_position, errmsg);
	if (rv != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "prepare the store: %s", errmsg);
		goto err_after_open;
	}
	if (rename(restoring, store) != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "rename %s: %s", restoring, strerror(errno));
		goto err_after_open;
	}
	rv = fsync_path(cfg->data_dir, true);
	if (rv != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "fsync %s: %s", cfg->data_dir, strerror(rv));
		goto err_after_open;
	}
	rv = write_restored(cfg->data_dir, identity);
	if (rv != 0) {
		rv = fail(RESTORE_EXIT_FAILURE, "restore_failed",
			  "write %s: %s", restored, strerror(rv));
		goto err_after_open;
	}
	free(buf);
	log_info("restore_done",
		 "from=\"%s\" files=%u bytes=%" PRIu64
		 " backup_applied_index=%" PRIu64 " last_position=%" PRIu64,
		 cfg->restore_dir, n_files, total, applied_index,
		 last_position);
	return 0;

err_after_open:
	if (fp != NULL)
		fclose(fp);
	free(buf);
	return rv;
}
