/* The configured data (core/inputs.c): validation_split takes the last
 * fraction before shuffling, normalisation statistics come from the
 * training part only (per feature for [data] standardize, per channel
 * after rescale for featurewise_*), the training pipeline hands out the
 * normalised samples, and augmentation refuses non-image samples. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inputs.h"
#include "layer.h"
#include "stages.h"
#include "ct_test.h"
#include "tmpfiles.h"


static ct_config *parse(const char *text)
{
    ct_config *c = NULL;
    ct_status s = ct_config_parse(text, strlen(text), "test.conf", tmpdir, &c);
    if (s != CT_OK) fprintf(stderr, "config: %s\n", ct_error_message());
    return c;
}

/* Rows i = 0..9: a = i, b = i * i, label i % 2. */
static void test_csv_split_and_standardize(void)
{
    char csv[512];
    int k = snprintf(csv, sizeof csv, "a,b,y\n");
    for (int i = 0; i < 10; i++) k += snprintf(csv + k, sizeof csv - (size_t)k, "%d,%d,%d\n", i, i * i, i % 2);
    write_file(tmp_path("t.csv"), csv, (size_t)k);
    ct_config *c = parse("[model]\ninput = 2\n[d]\ntype = dense\nunits = 2\n"
                         "[data]\nformat = csv\ntrain = t.csv\nvalidation_split = 0.3\nstandardize = true\n"
                         "workers = 2\nprefetch = 1\n"
                         "[train]\nshuffle = false\nbatch_size = 4\n");
    if (!c) return;
    ct_inputs in;
    CHECK(ct_inputs_load(c, 1, &in) == CT_OK);
    /* Keras: split_at = int(10 * (1 - 0.3)) = 7; validation = rows 7, 8, 9 */
    CHECK(in.n_train == 7 && in.val.n == 3);
    /* statistics of rows 0..6 only: a mean 3, population std 2; b mean 13 */
    double mb = (0 + 1 + 4 + 9 + 16 + 25 + 36) / 7.0, vb = 0;
    for (int i = 0; i < 7; i++) vb += (i * i - mb) * (i * i - mb) / 7.0;
    CHECK(in.n_features == 2);
    CHECK_NEAR(in.mean[0], 3.0, 1e-6);
    CHECK_NEAR(in.std[0], 2.0, 1e-6);
    CHECK_NEAR(in.mean[1], mb, 1e-5);
    CHECK_NEAR(in.std[1], sqrt(vb), 1e-5);
    /* the validation rows are normalised with the training statistics */
    CHECK_NEAR(in.val.x[0], (7 - 3) / 2.0, 1e-6);
    CHECK_NEAR(in.val.x[5], (81 - mb) / sqrt(vb), 1e-5);
    CHECK(in.val.y[0] == 1 && in.val.y[1] == 0);
    /* the pipeline: batches of 4 and 3, rows in file order, normalised */
    ct_stage *p = NULL;
    CHECK(ct_inputs_pipeline(&in, c, 1, 4, 0, 1, &p) == CT_OK);
    if (p) {
        float x[8], y[4];
        ct_sample s = {x, y, 0, 0};
        int eof;
        CHECK(ct_stage_reset(p, 0) == CT_OK);
        CHECK(ct_stage_next(p, &s, &eof) == CT_OK && !eof && s.rows == 4);
        CHECK_NEAR(x[2], (1 - 3) / 2.0, 1e-6);
        CHECK(y[3] == 1);
        CHECK(ct_stage_next(p, &s, &eof) == CT_OK && !eof && s.rows == 3);
        CHECK_NEAR(x[4], (6 - 3) / 2.0, 1e-6);
        CHECK(ct_stage_next(p, &s, &eof) == CT_OK && eof);
        ct_stage_close(p);
    }
    /* two ranks: rank 1 takes rows 2, 3 of the first batch and 5, 6 of the second */
    CHECK(ct_inputs_pipeline(&in, c, 1, 4, 1, 2, &p) == CT_OK);
    if (p) {
        float x[8], y[4];
        ct_sample s = {x, y, 0, 0};
        int eof;
        CHECK(ct_stage_reset(p, 0) == CT_OK);
        CHECK(ct_stage_next(p, &s, &eof) == CT_OK && s.rows == 2 && s.index == 2);
        CHECK(ct_stage_next(p, &s, &eof) == CT_OK && s.rows == 2 && s.index == 5);
        ct_stage_close(p);
    }
    ct_inputs_free(&in);
    /* image transforms on tabular samples are refused */
    CHECK(ct_config_override(c, "augment.rotation_range=10") == CT_OK);
    CHECK(ct_inputs_load(c, 1, &in) == CT_OK);
    CHECK(ct_inputs_pipeline(&in, c, 1, 4, 0, 1, &p) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "image transforms need image samples");
    ct_inputs_free(&in);
    ct_config_free(c);
}

/* A .npy of 4 images 2 x 2 x 3, value = 10 * channel + sample: featurewise
 * statistics are per channel, after rescale 0.5. */
static void test_featurewise(void)
{
    const char hdr[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 2, 3), }";
    unsigned char buf[1024];
    size_t hl = strlen(hdr), pad = 64 - (10 + hl + 1) % 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((hl + pad + 1) & 0xff);
    buf[9] = (unsigned char)((hl + pad + 1) >> 8);
    memcpy(buf + 10, hdr, hl);
    memset(buf + 10 + hl, ' ', pad);
    buf[10 + hl + pad] = '\n';
    size_t off = 10 + hl + pad + 1;
    float v[48];
    for (int s = 0; s < 4; s++)
        for (int p = 0; p < 4; p++)
            for (int ch = 0; ch < 3; ch++) v[(s * 4 + p) * 3 + ch] = (float)(10 * ch + s);
    memcpy(buf + off, v, sizeof v);
    write_file(tmp_path("x.npy"), buf, off + sizeof v);
    unsigned char lb[256];
    const char lh[] = "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }";
    hl = strlen(lh);
    pad = 64 - (10 + hl + 1) % 64;
    memcpy(lb, "\x93NUMPY\x01\x00", 8);
    lb[8] = (unsigned char)(hl + pad + 1);
    lb[9] = 0;
    memcpy(lb + 10, lh, hl);
    memset(lb + 10 + hl, ' ', pad);
    lb[10 + hl + pad] = '\n';
    off = 10 + hl + pad + 1;
    long long labels[4] = {0, 1, 0, 1};
    memcpy(lb + off, labels, sizeof labels);
    write_file(tmp_path("y.npy"), lb, off + sizeof labels);
    ct_config *c = parse("[model]\ninput = 2, 2, 3\n[f]\ntype = flatten\n[d]\ntype = dense\nunits = 2\n"
                         "[data]\nformat = npy\ntrain = x.npy\ntrain_labels = y.npy\n"
                         "[augment]\nrescale = 0.5\nfeaturewise_center = true\nfeaturewise_std_normalization = true\n"
                         "[train]\nshuffle = false\nbatch_size = 4\n");
    if (!c) return;
    ct_inputs in;
    CHECK(ct_inputs_load(c, 1, &in) == CT_OK);
    CHECK(in.n_features == 3);
    /* channel ch after rescale: 0.5 * (10 ch + s), s = 0..3 -> mean 5 ch + 0.75, population std 0.5 * sqrt(1.25) */
    for (int ch = 0; ch < 3; ch++) {
        CHECK_NEAR(in.mean[ch], 5.0 * ch + 0.75, 1e-6);
        CHECK_NEAR(in.std[ch], 0.5 * sqrt(1.25) + 1e-6, 1e-6);
    }
    ct_stage *p = NULL;
    CHECK(ct_inputs_pipeline(&in, c, 1, 4, 0, 1, &p) == CT_OK);
    if (p) {
        float x[48], y[4];
        ct_sample s = {x, y, 0, 0};
        int eof;
        CHECK(ct_stage_reset(p, 0) == CT_OK && ct_stage_next(p, &s, &eof) == CT_OK && s.rows == 4);
        /* sample 3, pixel 1, channel 2: (0.5 * 23 - 10.75) / (0.5 sqrt(1.25) + 1e-6) */
        CHECK_NEAR(x[(3 * 4 + 1) * 3 + 2], (11.5 - 10.75) / (0.5 * sqrt(1.25) + 1e-6), 1e-5);
        ct_stage_close(p);
    }
    ct_inputs_free(&in);
    /* [data] standardize and featurewise together are refused */
    CHECK(ct_config_override(c, "data.standardize=true") == CT_OK);
    CHECK(ct_inputs_load(c, 1, &in) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "choose one");
    ct_config_free(c);
}

int main(void)
{
    if (!tmp_make("inputs")) return 1;
    ct_register_builtins();
    test_csv_split_and_standardize();
    test_featurewise();
    tmp_remove();
    return ct_test_report("test_inputs");
}
