/* Driver for fuzz targets in ordinary builds (no libFuzzer): runs
 * LLVMFuzzerTestOneInput on every file of the seed corpus directories
 * given as arguments, then on deterministic mutations of each (every
 * truncation of the first 256 bytes and at 64 points beyond, and 400
 * random byte edits), so CTest exercises the error paths on each run. A
 * crash or a sanitizer report fails the test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t next_rand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static long runs;

static void run(const uint8_t *d, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);  /* exact size so ASan sees overreads */
    if (n) memcpy(copy, d, n);
    LLVMFuzzerTestOneInput(copy, n);
    free(copy);
    runs++;
}

static void mutate_all(const uint8_t *d, size_t n)
{
    run(d, n);
    for (size_t k = 0; k < n && k < 256; k++) run(d, k);
    for (int i = 1; i < 64 && n > 256; i++) run(d, 256 + (n - 256) * (size_t)i / 64);
    uint8_t *m = malloc(n + 8);
    for (int i = 0; i < 400 && n > 0; i++) {
        memcpy(m, d, n);
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = next_rand() % n;
            switch (next_rand() % 4) {
            case 0: m[pos] = (uint8_t)next_rand(); break;
            case 1: m[pos] ^= (uint8_t)(1u << (next_rand() % 8)); break;
            case 2: m[pos] = "\n=[],#.-0\xff"[next_rand() % 10]; break;
            default: m[pos] = 0; break;
            }
        }
        run(m, n);
    }
    free(m);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = fread(buf, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    mutate_all(buf, got);
    free(buf);
    return 1;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return run_file(path);
    DIR *dir = opendir(path);
    if (!dir) return 0;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        files += run_path(sub);
    }
    closedir(dir);
    return files;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) files += run_path(argv[i]);
    if (files == 0) {
        fprintf(stderr, "no corpus files found\n");
        return 1;
    }
    printf("replayed %d corpus files, %ld inputs: 1 passed, 0 failed\n", files, runs);
    return 0;
}
