/* The CIFAR-10/100 binary source: known content read back exactly (HWC
 * from planar records, several files by glob in sorted order), and
 * truncated, foreign and out-of-range files refused with file and offset. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ct_test.h"
#include "sources.h"

static char dir[] = "/tmp/ct_cifar_XXXXXX";

static void path(char *out, const char *name) { snprintf(out, 512, "%s/%s", dir, name); }

/* Record i: label, then pixel (c, y, x) = (i * 7 + c * 50 + y * 3 + x) & 255. */
static void write_file(const char *name, int first, int n, int rec, int bad_label_at, int cut)
{
    char p[512];
    path(p, name);
    FILE *f = fopen(p, "wb");
    for (int i = first; i < first + n; i++) {
        unsigned char r[3074];
        int k = 0;
        if (rec == 3074) r[k++] = (unsigned char)(i % 20);
        r[k++] = (unsigned char)(rec == 3074 ? i % 100 : i % 10);
        if (i == bad_label_at) r[0] = 200;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) r[k++] = (unsigned char)((i * 7 + c * 50 + y * 3 + x) & 255);
        fwrite(r, 1, (size_t)rec - (i == first + n - 1 ? (size_t)cut : 0), f);
    }
    fclose(f);
}

static int check_sample(const float *x, int i)
{
    for (int y = 0; y < 32; y++)
        for (int xx = 0; xx < 32; xx++)
            for (int c = 0; c < 3; c++)
                if (x[(y * 32 + xx) * 3 + c] != (float)((i * 7 + c * 50 + y * 3 + xx) & 255)) return 0;
    return 1;
}

static void test_read(void)
{
    write_file("data_batch_2.bin", 5, 4, 3073, -1, 0);
    write_file("data_batch_1.bin", 0, 5, 3073, -1, 0);
    char pat[512];
    path(pat, "data_batch_*.bin");
    ct_stage *s = NULL;
    CHECK(ct_cifar_open(pat, CT_CIFAR10, &s) == CT_OK);
    if (!s) return;
    CHECK(s->length == 9 && s->num_classes == 10);
    CHECK(s->x_shape.rank == 3 && s->x_shape.dims[0] == 32 && s->x_shape.dims[2] == 3);
    float x[3072], y;
    ct_sample smp = {x, &y, 0, 0};
    int eof = 0, i = 0, ok = 1;
    while (ct_stage_next(s, &smp, &eof) == CT_OK && !eof) {
        ok &= check_sample(x, i) && y == (float)(i % 10) && smp.index == i;
        i++;
    }
    CHECK(ok && i == 9); /* batch 1 before batch 2: sorted order */
    uint64_t c;
    CHECK(ct_stage_seek(s, 7) == CT_OK && ct_stage_tell(s, &c) == CT_OK && c == 7);
    CHECK(ct_stage_next(s, &smp, &eof) == CT_OK && !eof && check_sample(x, 7));
    CHECK(ct_stage_seek(s, 10) == CT_ERR_DATA);
    CHECK(ct_stage_reset(s, 1) == CT_OK && ct_stage_next(s, &smp, &eof) == CT_OK && check_sample(x, 0));
    ct_stage_close(s);

    write_file("train.bin", 0, 3, 3074, -1, 0);
    path(pat, "train.bin");
    CHECK(ct_cifar_open(pat, CT_CIFAR100_FINE, &s) == CT_OK);
    if (s) {
        CHECK(s->num_classes == 100 && s->length == 3);
        CHECK(ct_stage_seek(s, 2) == CT_OK && ct_stage_next(s, &smp, &eof) == CT_OK && y == 2.0f && check_sample(x, 2));
        ct_stage_close(s);
    }
    CHECK(ct_cifar_open(pat, CT_CIFAR100_COARSE, &s) == CT_OK);
    if (s) {
        CHECK(s->num_classes == 20);
        ct_stage_close(s);
    }
}

static void test_errors(void)
{
    char p[512];
    ct_stage *s = NULL;
    write_file("cut.bin", 0, 3, 3073, -1, 100);
    path(p, "cut.bin");
    CHECK(ct_cifar_open(p, CT_CIFAR10, &s) == CT_ERR_DATA && s == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "cut.bin: offset 6146");
    CHECK_STR_CONTAINS(ct_error_message(), "ends inside a record");
    write_file("label.bin", 0, 3, 3073, 1, 0);
    path(p, "label.bin");
    CHECK(ct_cifar_open(p, CT_CIFAR10, &s) == CT_ERR_DATA);
    CHECK_STR_CONTAINS(ct_error_message(), "label.bin: offset 3073: label 200");
    /* A CIFAR-100 file read as CIFAR-10 has the wrong record size. */
    write_file("hundred.bin", 0, 10, 3074, -1, 0);
    path(p, "hundred.bin");
    CHECK(ct_cifar_open(p, CT_CIFAR10, &s) == CT_ERR_DATA);
    CHECK_STR_CONTAINS(ct_error_message(), "hundred.bin");
    path(p, "nothing_*.bin");
    CHECK(ct_cifar_open(p, CT_CIFAR10, &s) == CT_ERR_DATA);
    CHECK_STR_CONTAINS(ct_error_message(), "matches the pattern");
    path(p, "empty.bin");
    fclose(fopen(p, "wb"));
    CHECK(ct_cifar_open(p, CT_CIFAR10, &s) == CT_ERR_DATA);
    CHECK_STR_CONTAINS(ct_error_message(), "empty file");
    unsigned char png[3073] = {0x89, 'P', 'N', 'G'};
    CHECK(ct_cifar_open_memory(png, sizeof png, "image.png", CT_CIFAR10, &s) == CT_ERR_DATA);
    CHECK_STR_CONTAINS(ct_error_message(), "image.png: offset 0: label 137");
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    test_read();
    test_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return ct_test_report("test_cifar");
}
