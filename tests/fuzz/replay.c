/* replay: runs a fuzz target's LLVMFuzzerTestOneInput() over every file of
 * the directories (or the single files) named on the command line, without
 * libFuzzer. Linked with each target as fuzz_<name>_replay, it is how CTest
 * replays the committed corpus in every build, sanitizers or not, and how a
 * crash reproducer is rerun under a debugger.
 *
 * Exits 0 when every input ran; 1 when a directory is missing, unreadable
 * or has no inputs (a corpus that vanished must not pass as green), or a
 * file cannot be read; a failing input aborts in the target itself. Names
 * each input on stderr before running it, so the last name printed is the
 * culprit. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads @path into a buffer of exactly its size (so ASan sees any read past
 * it) and runs the target on it. Returns 0 or 1 with a message. */
static int run_file(const char *path)
{
	static const uint8_t empty[1];
	uint8_t *buf = NULL;
	FILE *f;
	long size;

	f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "replay: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "replay: seek %s: %s\n", path, strerror(errno));
		fclose(f);
		return 1;
	}
	if (size > 0) {
		buf = malloc((size_t)size);
		if (buf == NULL) {
			fprintf(stderr, "replay: %s: out of memory\n", path);
			fclose(f);
			return 1;
		}
		if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
			fprintf(stderr, "replay: read %s: short read\n", path);
			free(buf);
			fclose(f);
			return 1;
		}
	}
	fclose(f);
	fprintf(stderr, "replay: %s (%ld bytes)\n", path, size);
	LLVMFuzzerTestOneInput(size > 0 ? buf : empty, (size_t)size);
	free(buf);
	return 0;
}

static int skip_name(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

/* Runs every regular file of @dir, in name order. Returns 0 or 1. */
static int run_dir(const char *dir, unsigned *count)
{
	struct dirent **names;
	char path[4096];
	unsigned ran = 0;
	int rv = 0;
	int n;
	int i;

	n = scandir(dir, &names, skip_name, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		struct stat st;

		if (rv != 0)
			goto next;
		if (snprintf(path, sizeof path, "%s/%s", dir,
			     names[i]->d_name) >= (int)sizeof path) {
			fprintf(stderr, "replay: %s/%s: path too long\n", dir,
				names[i]->d_name);
			rv = 1;
			goto next;
		}
		if (stat(path, &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", path,
				strerror(errno));
			rv = 1;
			goto next;
		}
		if (S_ISREG(st.st_mode)) {
			rv = run_file(path);
			ran++;
		}
	next:
		free(names[i]);
	}
	free(names);
	if (rv == 0 && ran == 0) {
		fprintf(stderr, "replay: %s: no inputs\n", dir);
		return 1;
	}
	*count += ran;
	return rv;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (i = 1; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) != 0)
				return 1;
		} else {
			if (run_file(argv[i]) != 0)
				return 1;
			count++;
		}
	}
	printf("replay: %u inputs ran\n", count);
	return 0;
}
