/* Activation kernels (forward and backward) for every ct_activation.
 * Keras 2.x definitions: elu alpha 1, selu's fixed constants, leaky_relu
 * alpha 0.2 (tf.nn.leaky_relu), exact (erf) gelu, hard_sigmoid
 * clip(0.2 z + 0.5, 0, 1). */
#include <math.h>
#include <string.h>

#include "ops.h"

#define SELU_ALPHA 1.6732632423543772
#define SELU_SCALE 1.0507009873554805
#define LEAKY_ALPHA 0.2f

static inline float sigmoidf_stable(float z)
{
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

static void softmax_rows(const float *z, float *y, int64_t rows, int64_t cols)
{
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * cols;
        float *yr = y + r * cols;
        float m = zr[0];
        for (int64_t c = 1; c < cols; c++) m = zr[c] > m ? zr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < cols; c++) {
            yr[c] = expf(zr[c] - m);
            s += yr[c];
        }
        float inv = (float)(1.0 / s);
        for (int64_t c = 0; c < cols; c++) yr[c] *= inv;
    }
}

/* dx (=, or += with acc) y * (dy - sum(dy * y)) per row. dx may equal dy
 * when not accumulating (each row's dot is taken before it is written). */
static void softmax_bwd_rows(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols, int acc)
{
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *dyr = dy + r * cols;
        float *dxr = dx + r * cols;
        double dot = 0;
        for (int64_t c = 0; c < cols; c++) dot += (double)yr[c] * dyr[c];
        for (int64_t c = 0; c < cols; c++) dxr[c] = (acc ? dxr[c] : 0.0f) + yr[c] * (dyr[c] - (float)dot);
    }
}

static inline __attribute__((always_inline)) float act_fwd(ct_activation a, float z)
{
    switch (a) {
    case CT_ACT_RELU: return z > 0 ? z : 0;
    case CT_ACT_SIGMOID: return sigmoidf_stable(z);
    case CT_ACT_TANH: return tanhf(z);
    case CT_ACT_ELU: return z > 0 ? z : expm1f(z);
    case CT_ACT_SELU: return (float)(SELU_SCALE * (z > 0 ? z : SELU_ALPHA * expm1(z)));
    case CT_ACT_LEAKY_RELU: return z > 0 ? z : LEAKY_ALPHA * z;
    case CT_ACT_GELU: return 0.5f * z * (1.0f + erff(z * (float)M_SQRT1_2));
    case CT_ACT_SWISH: return z * sigmoidf_stable(z);
    case CT_ACT_SOFTPLUS: return (z > 0 ? z : 0) + log1pf(expf(-fabsf(z)));
    case CT_ACT_HARD_SIGMOID: {
        float v = 0.2f * z + 0.5f;
        return v < 0 ? 0 : (v > 1 ? 1 : v);
    }
    default: return z;
    }
}

/* Derivative dy/dz given z and y = f(z). For the activations that
 * ct_activation_in_place accepts it reads y (and z only through its sign,
 * which y shares), so z may have been overwritten by y. */
static inline __attribute__((always_inline)) float act_grad(ct_activation a, float z, float y)
{
    switch (a) {
    case CT_ACT_RELU: return z > 0 ? 1.0f : 0.0f;
    case CT_ACT_SIGMOID: return y * (1.0f - y);
    case CT_ACT_TANH: return 1.0f - y * y;
    case CT_ACT_ELU: return z > 0 ? 1.0f : y + 1.0f;
    case CT_ACT_SELU: return y > 0 ? (float)SELU_SCALE : y + (float)(SELU_SCALE * SELU_ALPHA);
    case CT_ACT_LEAKY_RELU: return z > 0 ? 1.0f : LEAKY_ALPHA;
    case CT_ACT_GELU: {
        float cdf = 0.5f * (1.0f + erff(z * (float)M_SQRT1_2));
        float pdf = expf(-0.5f * z * z) * 0.3989422804014327f;
        return cdf + z * pdf;
    }
    case CT_ACT_SWISH: {
        float s = sigmoidf_stable(z);
        return s + z * s * (1.0f - s);
    }
    case CT_ACT_SOFTPLUS: return sigmoidf_stable(z);
    case CT_ACT_HARD_SIGMOID: return (y > 0 && y < 1) ? 0.2f : 0.0f;
    default: return 1.0f;
    }
}

int ct_activation_in_place(ct_activation a)
{
    return a != CT_ACT_GELU && a != CT_ACT_SWISH && a != CT_ACT_SOFTPLUS;
}

/* One loop per activation, so each is vectorised with its own body; the
 * switch inside act_fwd/act_grad folds away once `a` is a constant. */
#define ACT_LOOP_FWD(A)                                                   \
    do {                                                                  \
        _Pragma("omp parallel for simd schedule(static) if (n > 65536)") \
        for (int64_t i = 0; i < n; i++) y[i] = act_fwd(A, z[i]);          \
    } while (0)

#define ACT_LOOP_BWD(A)                                                   \
    do {                                                                  \
        _Pragma("omp parallel for simd schedule(static) if (n > 65536)") \
        for (int64_t i = 0; i < n; i++) dz[i] = dy[i] * act_grad(A, z[i], y[i]); \
    } while (0)

void ct_op_activation_fwd(ct_activation a, const float *z, float *y, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    switch (a) {
    case CT_ACT_SOFTMAX: softmax_rows(z, y, rows, cols); break;
    case CT_ACT_LINEAR:
        if (y != z) memcpy(y, z, sizeof(float) * (size_t)n);
        break;
    case CT_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) y[i] = z[i] > 0 ? z[i] : 0.0f;
        break;
    case CT_ACT_SIGMOID: ACT_LOOP_FWD(CT_ACT_SIGMOID); break;
    case CT_ACT_TANH: ACT_LOOP_FWD(CT_ACT_TANH); break;
    case CT_ACT_ELU: ACT_LOOP_FWD(CT_ACT_ELU); break;
    case CT_ACT_SELU: ACT_LOOP_FWD(CT_ACT_SELU); break;
    case CT_ACT_LEAKY_RELU: ACT_LOOP_FWD(CT_ACT_LEAKY_RELU); break;
    case CT_ACT_GELU: ACT_LOOP_FWD(CT_ACT_GELU); break;
    case CT_ACT_SWISH: ACT_LOOP_FWD(CT_ACT_SWISH); break;
    case CT_ACT_SOFTPLUS: ACT_LOOP_FWD(CT_ACT_SOFTPLUS); break;
    case CT_ACT_HARD_SIGMOID: ACT_LOOP_FWD(CT_ACT_HARD_SIGMOID); break;
    default: break;
    }
}

void ct_op_activation_bwd(ct_activation a, const float *z, const float *y, const float *dy, float *dz,
                          int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    switch (a) {
    case CT_ACT_SOFTMAX: softmax_bwd_rows(y, dy, dz, rows, cols, 0); break;
    case CT_ACT_LINEAR:
        if (dz != dy) memcpy(dz, dy, sizeof(float) * (size_t)n);
        break;
    case CT_ACT_RELU: /* a select, as TF's ReluGrad: no multiply, so no denormal assists */
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float d = dy[i]; /* loaded unconditionally, so the select vectorises */
            dz[i] = z[i] > 0 ? d : 0.0f;
        }
        break;
    case CT_ACT_SIGMOID: ACT_LOOP_BWD(CT_ACT_SIGMOID); break;
    case CT_ACT_TANH: ACT_LOOP_BWD(CT_ACT_TANH); break;
    case CT_ACT_ELU: ACT_LOOP_BWD(CT_ACT_ELU); break;
    case CT_ACT_SELU: ACT_LOOP_BWD(CT_ACT_SELU); break;
    case CT_ACT_LEAKY_RELU: ACT_LOOP_BWD(CT_ACT_LEAKY_RELU); break;
    case CT_ACT_GELU: ACT_LOOP_BWD(CT_ACT_GELU); break;
    case CT_ACT_SWISH: ACT_LOOP_BWD(CT_ACT_SWISH); break;
    case CT_ACT_SOFTPLUS: ACT_LOOP_BWD(CT_ACT_SOFTPLUS); break;
    case CT_ACT_HARD_SIGMOID: ACT_LOOP_BWD(CT_ACT_HARD_SIGMOID); break;
    default: break;
    }
}

#define ACT_LOOP_ACC(A)                                                   \
    do {                                                                  \
        _Pragma("omp parallel for simd schedule(static) if (n > 65536)") \
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * act_grad(A, z[i], y[i]); \
    } while (0)

void ct_op_activation_bwd_acc(ct_activation a, const float *z, const float *y, const float *dy, float *dx,
                              int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    switch (a) {
    case CT_ACT_SOFTMAX: softmax_bwd_rows(y, dy, dx, rows, cols, 1); break;
    case CT_ACT_LINEAR:
#pragma omp parallel for simd schedule(static) if (n > 262144)
        for (int64_t i = 0; i < n; i++) dx[i] += dy[i];
        break;
    case CT_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float d = dy[i]; /* unconditional load: no branch to mispredict */
            dx[i] += z[i] > 0 ? d : 0.0f;
        }
        break;
    case CT_ACT_SIGMOID: ACT_LOOP_ACC(CT_ACT_SIGMOID); break;
    case CT_ACT_TANH: ACT_LOOP_ACC(CT_ACT_TANH); break;
    case CT_ACT_ELU: ACT_LOOP_ACC(CT_ACT_ELU); break;
    case CT_ACT_SELU: ACT_LOOP_ACC(CT_ACT_SELU); break;
    case CT_ACT_LEAKY_RELU: ACT_LOOP_ACC(CT_ACT_LEAKY_RELU); break;
    case CT_ACT_GELU: ACT_LOOP_ACC(CT_ACT_GELU); break;
    case CT_ACT_SWISH: ACT_LOOP_ACC(CT_ACT_SWISH); break;
    case CT_ACT_SOFTPLUS: ACT_LOOP_ACC(CT_ACT_SOFTPLUS); break;
    case CT_ACT_HARD_SIGMOID: ACT_LOOP_ACC(CT_ACT_HARD_SIGMOID); break;
    default: break;
    }
}
