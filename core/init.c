/* Initializers with Keras's names, defaults and fan rules. The variance
 * scaling family uses a truncated normal (cut at two standard deviations)
 * with Keras's correction factor 0.87962566103423978. */
#include "init.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "spec.h"

#define TRUNC_STD_CORRECTION 0.87962566103423978

static const char *const init_names[CT_INIT_COUNT] = {
    [CT_INIT_ZEROS] = "zeros",
    [CT_INIT_ONES] = "ones",
    [CT_INIT_CONSTANT] = "constant",
    [CT_INIT_RANDOM_NORMAL] = "random_normal",
    [CT_INIT_RANDOM_UNIFORM] = "random_uniform",
    [CT_INIT_TRUNCATED_NORMAL] = "truncated_normal",
    [CT_INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [CT_INIT_GLOROT_NORMAL] = "glorot_normal",
    [CT_INIT_HE_NORMAL] = "he_normal",
    [CT_INIT_HE_UNIFORM] = "he_uniform",
    [CT_INIT_LECUN_NORMAL] = "lecun_normal",
    [CT_INIT_LECUN_UNIFORM] = "lecun_uniform",
    [CT_INIT_ORTHOGONAL] = "orthogonal",
    [CT_INIT_UNIT_FORGET] = "unit_forget_bias",
};

/* Arguments each initializer takes, positional order first. */
static const char *const *init_args(ct_init_kind k)
{
    static const char *const constant[] = {"value", NULL};
    static const char *const normal[] = {"mean", "stddev", "seed", NULL};
    static const char *const uniform[] = {"minval", "maxval", "seed", NULL};
    static const char *const orth[] = {"gain", "seed", NULL};
    static const char *const seeded[] = {"seed", NULL};
    switch (k) {
    case CT_INIT_CONSTANT: return constant;
    case CT_INIT_RANDOM_NORMAL: case CT_INIT_TRUNCATED_NORMAL: return normal;
    case CT_INIT_RANDOM_UNIFORM: return uniform;
    case CT_INIT_ORTHOGONAL: return orth;
    case CT_INIT_ZEROS: case CT_INIT_ONES: case CT_INIT_UNIT_FORGET: return NULL;
    default: return seeded;
    }
}

const char *const *ct_initializer_names(int *n)
{
    *n = CT_INIT_COUNT;
    return init_names;
}

ct_status ct_initializer_parse(const char *spec, ct_initializer *out)
{
    char name[48] = "";
    size_t i = 0;
    while (spec[i] && spec[i] != '(' && spec[i] != ' ' && i + 1 < sizeof name) name[i] = spec[i], i++;
    name[i] = 0;
    int kind = -1;
    for (int k = 0; k < CT_INIT_COUNT; k++)
        if (strcmp(name, init_names[k]) == 0) kind = k;
    if (kind < 0) {
        const char *near = ct_nearest_name(name, init_names, CT_INIT_COUNT);
        return CT_FAIL(CT_ERR_CONFIG,
                       "unknown initializer '%s'%s%s%s: known are zeros, ones, constant, random_normal, "
                       "random_uniform, truncated_normal, glorot_uniform, glorot_normal, he_normal, "
                       "he_uniform, lecun_normal, lecun_uniform, orthogonal",
                       name, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    ct_spec s;
    CT_TRY(ct_spec_parse(spec, init_args((ct_init_kind)kind), &s));
    memset(out, 0, sizeof *out);
    out->kind = (ct_init_kind)kind;
    out->value = ct_spec_get(&s, "value", 0.0);
    out->mean = ct_spec_get(&s, "mean", 0.0);
    out->stddev = ct_spec_get(&s, "stddev", 0.05);
    out->minval = ct_spec_get(&s, "minval", -0.05);
    out->maxval = ct_spec_get(&s, "maxval", 0.05);
    out->gain = ct_spec_get(&s, "gain", 1.0);
    if (out->stddev < 0 || out->maxval < out->minval)
        return CT_FAIL(CT_ERR_CONFIG, "initializer '%s': needs stddev >= 0 and minval <= maxval", spec);
    return CT_OK;
}

void ct_compute_fans(const ct_shape *shape, double *fan_in, double *fan_out)
{
    if (shape->rank < 1) {
        *fan_in = *fan_out = 1;
    } else if (shape->rank == 1) {
        *fan_in = *fan_out = (double)shape->dims[0];
    } else {
        double receptive = 1;
        for (int i = 0; i < shape->rank - 2; i++) receptive *= (double)shape->dims[i];
        *fan_in = (double)shape->dims[shape->rank - 2] * receptive;
        *fan_out = (double)shape->dims[shape->rank - 1] * receptive;
    }
}

static void fill_truncated(const ct_rng *r, double mean, double stddev, float *out, int64_t n)
{
    /* Redraw beyond two standard deviations; element i uses indices 64i.. */
    for (int64_t i = 0; i < n; i++) {
        double z = 0;
        for (uint64_t k = 0; k < 64; k++) {
            z = ct_rng_normal(r, (uint64_t)i * 64 + k);
            if (fabs(z) <= 2.0) break;
        }
        if (fabs(z) > 2.0) z = 0;
        out[i] = (float)(mean + stddev * z);
    }
}

/* Q of the QR decomposition of a (rows x cols) normal matrix, signs fixed
 * so that diag(R) > 0, as Keras's Orthogonal (rows >= cols here). */
static ct_status orthogonal(const ct_rng *r, int64_t rows, int64_t cols, double gain, float *out)
{
    int transpose = rows < cols;
    int64_t m = transpose ? cols : rows, k = transpose ? rows : cols;
    double *q = malloc(sizeof(double) * (size_t)(m * k));
    if (!q) return CT_FAIL(CT_ERR_NOMEM, "orthogonal initializer: %lld x %lld", (long long)m, (long long)k);
    for (int64_t i = 0; i < m * k; i++) q[i] = ct_rng_normal(r, (uint64_t)i);
    /* Modified Gram-Schmidt on columns j of q (m x k, column j at q[i*k+j]). */
    for (int64_t j = 0; j < k; j++) {
        for (int64_t p = 0; p < j; p++) {
            double dot = 0;
            for (int64_t i = 0; i < m; i++) dot += q[i * k + p] * q[i * k + j];
            for (int64_t i = 0; i < m; i++) q[i * k + j] -= dot * q[i * k + p];
        }
        double norm = 0;
        for (int64_t i = 0; i < m; i++) norm += q[i * k + j] * q[i * k + j];
        norm = sqrt(norm);
        if (norm < 1e-12) norm = 1;
        for (int64_t i = 0; i < m; i++) q[i * k + j] /= norm;
    }
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            out[i * cols + j] = (float)(gain * (transpose ? q[j * k + i] : q[i * k + j]));
    free(q);
    return CT_OK;
}

ct_status ct_initializer_fill(const ct_initializer *in, const ct_shape *shape, const ct_rng *r, float *out)
{
    int64_t n = ct_shape_numel(shape);
    double fan_in, fan_out;
    ct_compute_fans(shape, &fan_in, &fan_out);
    double avg = (fan_in + fan_out) / 2;
    switch (in->kind) {
    case CT_INIT_ZEROS: for (int64_t i = 0; i < n; i++) out[i] = 0; break;
    case CT_INIT_ONES: for (int64_t i = 0; i < n; i++) out[i] = 1; break;
    case CT_INIT_UNIT_FORGET:
        for (int64_t i = 0; i < n; i++) out[i] = i >= n / 4 && i < n / 2 ? 1.0f : 0.0f;
        break;
    case CT_INIT_CONSTANT: for (int64_t i = 0; i < n; i++) out[i] = (float)in->value; break;
    case CT_INIT_RANDOM_NORMAL: ct_rng_fill_normal(r, 0, (float)in->mean, (float)in->stddev, out, n); break;
    case CT_INIT_RANDOM_UNIFORM: ct_rng_fill_uniform(r, 0, (float)in->minval, (float)in->maxval, out, n); break;
    case CT_INIT_TRUNCATED_NORMAL: fill_truncated(r, in->mean, in->stddev, out, n); break;
    case CT_INIT_GLOROT_UNIFORM: {
        float lim = (float)sqrt(3.0 / avg);
        ct_rng_fill_uniform(r, 0, -lim, lim, out, n);
        break;
    }
    case CT_INIT_GLOROT_NORMAL: fill_truncated(r, 0, sqrt(1.0 / avg) / TRUNC_STD_CORRECTION, out, n); break;
    case CT_INIT_HE_NORMAL: fill_truncated(r, 0, sqrt(2.0 / fan_in) / TRUNC_STD_CORRECTION, out, n); break;
    case CT_INIT_HE_UNIFORM: {
        float lim = (float)sqrt(6.0 / fan_in);
        ct_rng_fill_uniform(r, 0, -lim, lim, out, n);
        break;
    }
    case CT_INIT_LECUN_NORMAL: fill_truncated(r, 0, sqrt(1.0 / fan_in) / TRUNC_STD_CORRECTION, out, n); break;
    case CT_INIT_LECUN_UNIFORM: {
        float lim = (float)sqrt(3.0 / fan_in);
        ct_rng_fill_uniform(r, 0, -lim, lim, out, n);
        break;
    }
    case CT_INIT_ORTHOGONAL: {
        int64_t cols = shape->rank ? shape->dims[shape->rank - 1] : 1;
        return orthogonal(r, n / (cols ? cols : 1), cols, in->gain, out);
    }
    default: return CT_FAIL(CT_ERR_RUNTIME, "initializer kind %d unknown", (int)in->kind);
    }
    return CT_OK;
}
