/* Writes small CIFAR-10-format files for tests and demos, since the real
 * data set cannot be downloaded here:
 *
 *   make_cifar DIR [TRAIN_PER_FILE] [TEST] [FILES]
 *
 * DIR/data_batch_1.bin .. data_batch_FILES.bin and DIR/test_batch.bin,
 * 3073-byte records. Each class is a learnable pattern: a coloured square
 * at a class-dependent place and hue, on noise, so a small CNN separates
 * the classes. Deterministic (fixed seed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static unsigned long long state = 0x9E3779B97F4A7C15ull;

static unsigned rnd(void)
{
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(state >> 33);
}

static void record(unsigned char *r, int label)
{
    r[0] = (unsigned char)label;
    int cx = 4 + (label % 5) * 5, cy = 6 + (label / 5) * 12;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                int v = (int)(rnd() % 96);
                int inside = x >= cx + (int)(rnd() % 3) - 1 && x < cx + 8 && y >= cy && y < cy + 8;
                if (inside) v += 80 + 50 * ((label + c) % 3);
                r[1 + c * 1024 + y * 32 + x] = (unsigned char)(v > 255 ? 255 : v);
            }
}

static int write_file(const char *path, int n)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    unsigned char r[3073];
    for (int i = 0; i < n; i++) {
        record(r, (int)(rnd() % 10));
        if (fwrite(r, 1, sizeof r, f) != sizeof r) {
            perror(path);
            fclose(f);
            return 1;
        }
    }
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: make_cifar DIR [TRAIN_PER_FILE] [TEST] [FILES]\n");
        return 2;
    }
    int per = argc > 2 ? atoi(argv[2]) : 1000, test = argc > 3 ? atoi(argv[3]) : 1000, files = argc > 4 ? atoi(argv[4]) : 5;
    char p[4096];
    /* The output folder and its parents, as mkdir -p. */
    snprintf(p, sizeof p, "%s", argv[1]);
    for (char *s = p + 1;; s++)
        if (*s == '/' || !*s) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "make_cifar: cannot create %s: %s\n", p, strerror(errno));
                return 1;
            }
            if (!(*s = c)) break;
        }
    for (int i = 1; i <= files; i++) {
        snprintf(p, sizeof p, "%s/data_batch_%d.bin", argv[1], i);
        if (write_file(p, per)) return 1;
    }
    snprintf(p, sizeof p, "%s/test_batch.bin", argv[1]);
    return write_file(p, test);
}
