/* A plain main() for the fuzz targets: feeds every file named on the command line, or found
 * directly inside a directory named there, to LLVMFuzzerTestOneInput, so the seed corpora run on
 * every `make test` without libFuzzer. A crash or a sanitizer report is the failure. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bounds for a corpus gone wrong: libFuzzer's own inputs are far smaller and fewer. */
#define REPLAY_MAX_FILES 10000
#define REPLAY_MAX_SIZE  (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay {
	uint8_t *buf; /* REPLAY_MAX_SIZE bytes, reused for every file */
	size_t count;
};

static int replay_file(struct replay *r, const char *path)
{
	uint8_t *copy;
	size_t n;
	FILE *f;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	/* Longer files are cut, as libFuzzer's -max_len would. */
	n = fread(r->buf, 1, REPLAY_MAX_SIZE, f);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* An exactly sized copy, as libFuzzer gives, so that a read past the end is caught. */
	copy = malloc(n > 0 ? n : 1);
	if (!copy) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	memcpy(copy, r->buf, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	r->count++;
	return 0;
}

static int replay_dir(struct replay *r, const char *dir)
{
	struct dirent *de;
	char path[4096];
	struct stat st;
	int rc = 0;
	DIR *d;
	int n;

	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (r->count >= REPLAY_MAX_FILES) {
			fprintf(stderr, "%s: stopping at %d inputs\n", dir, REPLAY_MAX_FILES);
			break;
		}
		n = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			fprintf(stderr, "%s: path too long\n", dir);
			rc = -1;
			break;
		}
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(r, path) != 0) {
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	struct replay r = { NULL, 0 };
	struct stat st;
	int rc = EXIT_SUCCESS;
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE-OR-DIRECTORY...\n", argv[0]);
		return 2;
	}
	r.buf = malloc(REPLAY_MAX_SIZE);
	if (!r.buf) {
		fprintf(stderr, "out of memory\n");
		return EXIT_FAILURE;
	}
	for (i = 1; i < argc && rc == EXIT_SUCCESS; i++) {
		/* A path that cannot be read is a broken test setup, not a pass with nothing replayed. */
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rc = EXIT_FAILURE;
		} else if (S_ISDIR(st.st_mode)) {
			if (replay_dir(&r, argv[i]) != 0)
				rc = EXIT_FAILURE;
		} else if (r.count >= REPLAY_MAX_FILES) {
			fprintf(stderr, "%s: stopping at %d inputs\n", argv[i], REPLAY_MAX_FILES);
			break;
		} else if (replay_file(&r, argv[i]) != 0) {
			rc = EXIT_FAILURE;
		}
	}
	free(r.buf);
	printf("replayed %zu inputs\n", r.count);
	return rc;
}
