/* Eager operations: each computes its result at once and, while a tape
 * records, leaves a node whose backward function accumulates +dL/dinput.
 * Heavy lifting goes to ops/ (OpenBLAS sgemm, the convolution, pooling and
 * softmax kernels); the rest are loops here. Broadcasting follows numpy:
 * shapes align at the last axis and a length of 1 stretches. Sums over
 * many elements accumulate in double. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "eager_impl.h"
#include "image_ops.h"
#include "ops.h"

/* ---- shared helpers ----------------------------------------------------------- */

/* Record `out` (the result of an op on in[0..n)) when a tape listens.
 * Ops without a gradient pass bwd = NULL and are not recorded. */
static ct_eager *finish(ct_eager *out, const ct_tape_node *proto, int n, ct_eager *const *in, const void *aux,
                        size_t aux_size)
{
    if (!out || !proto->bwd || !ct_tape_recording()) return out;
    if (ct_tape_record(proto, n, in, out, aux, aux_size) != CT_OK) {
        ct_eager_discard(out);
        return NULL;
    }
    return out;
}

static int norm_axis(int axis, int rank, const char *op, int *out)
{
    int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
        CT_FAIL(CT_ERR_SHAPE, "%s: axis %d is out of range for a tensor of rank %d", op, axis, rank);
        return 0;
    }
    *out = a;
    return 1;
}

static const char *shape_str(const ct_eager *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->rank && k < n; i++) k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->dims[i]);
    if (k < n) snprintf(buf + k, n - k, t->rank == 1 ? ",)" : ")");
    return buf;
}

static int same_shape(const ct_eager *a, const ct_eager *b)
{
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

static void strides_of(const ct_eager *t, int64_t *st)
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->dims[i];
    }
}

/* ---- broadcasting binary operations ---------------------------------------------- */
typedef struct bshape {
    int rank;
    int64_t dims[CT_EAGER_MAX_DIMS];
    int64_t sa[CT_EAGER_MAX_DIMS], sb[CT_EAGER_MAX_DIMS]; /* 0 on stretched axes */
} bshape;

static int bcast(const ct_eager *a, const ct_eager *b, bshape *s, const char *op)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    int64_t sta[CT_EAGER_MAX_DIMS], stb[CT_EAGER_MAX_DIMS];
    strides_of(a, sta);
    strides_of(b, stb);
    s->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char x[128], y[128];
            CT_FAIL(CT_ERR_SHAPE, "%s: shapes %s and %s do not broadcast (axis %d: %lld vs %lld)", op,
                    shape_str(a, x, sizeof x), shape_str(b, y, sizeof y), i, (long long)da, (long long)db);
            return 0;
        }
        s->dims[i] = da == 1 ? db : da;
        s->sa[i] = (ia >= 0 && da != 1) ? sta[ia] : 0;
        s->sb[i] = (ib >= 0 && db != 1) ? stb[ib] : 0;
    }
    return 1;
}

/* Runs BODY with io (output index), ia, ib (operand indices) over every
 * output element of the broadcast shape s, innermost axis as a loop. */
#define BCAST_FOR(s, numel, BODY)                                                             \
    do {                                                                                      \
        const bshape *s_ = (s);                                                               \
        int r_ = s_->rank;                                                                    \
        int64_t inner_ = r_ ? s_->dims[r_ - 1] : 1, ai_ = r_ ? s_->sa[r_ - 1] : 0;            \
        int64_t bi_ = r_ ? s_->sb[r_ - 1] : 0, idx_[CT_EAGER_MAX_DIMS] = {0}, oa_ = 0, ob_ = 0; \
        for (int64_t o_ = 0; inner_ > 0 && o_ < (numel); o_ += inner_) {                     \
            for (int64_t j_ = 0; j_ < inner_; j_++) {                                         \
                int64_t io = o_ + j_, ia = oa_ + j_ * ai_, ib = ob_ + j_ * bi_;               \
                BODY;                                                                         \
            }                                                                                 \
            for (int d_ = r_ - 2; d_ >= 0; d_--) {                                            \
                idx_[d_]++;                                                                   \
                oa_ += s_->sa[d_];                                                            \
                ob_ += s_->sb[d_];                                                            \
                if (idx_[d_] < s_->dims[d_]) break;                                           \
                oa_ -= s_->sa[d_] * s_->dims[d_];                                             \
                ob_ -= s_->sb[d_] * s_->dims[d_];                                             \
                idx_[d_] = 0;                                                                 \
            }                                                                                 \
        }                                                                                     \
    } while (0)

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MAX, B_MIN, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE };
static const char *const bin_names[] = {"add", "sub", "mul", "div", "maximum", "minimum",
                                        "equal", "not_equal", "less", "less_equal", "greater", "greater_equal"};

static inline float bin_f(int op, float x, float y)
{
    switch (op) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_MAX: return x >= y ? x : y;
    case B_MIN: return x <= y ? x : y;
    case B_EQ: return x == y ? 1.0f : 0.0f;
    case B_NE: return x != y ? 1.0f : 0.0f;
    case B_LT: return x < y ? 1.0f : 0.0f;
    case B_LE: return x <= y ? 1.0f : 0.0f;
    case B_GT: return x > y ? 1.0f : 0.0f;
    default: return x >= y ? 1.0f : 0.0f;
    }
}

/* d(x op y)/dx and /dy times g */
static inline float bin_gx(int op, float x, float y, float g)
{
    switch (op) {
    case B_ADD: case B_SUB: return g;
    case B_MUL: return g * y;
    case B_DIV: return g / y;
    case B_MAX: return x >= y ? g : 0.0f;
    default: return x <= y ? g : 0.0f; /* B_MIN */
    }
}

static inline float bin_gy(int op, float x, float y, float g)
{
    switch (op) {
    case B_ADD: return g;
    case B_SUB: return -g;
    case B_MUL: return g * x;
    case B_DIV: return -g * x / (y * y);
    case B_MAX: return x >= y ? 0.0f : g;
    default: return x <= y ? 0.0f : g; /* B_MIN */
    }
}

#define BIN_FWD(OP)                                                                  \
    do {                                                                             \
        if (flat) {                                                                  \
            _Pragma("omp parallel for simd schedule(static) if (n > 65536)")         \
            for (int64_t i = 0; i < n; i++) o[i] = bin_f(OP, x[i], y[i]);            \
        } else {                                                                     \
            BCAST_FOR(&s, n, o[io] = bin_f(OP, x[ia], y[ib]));                       \
        }                                                                            \
    } while (0)

static void bin_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    int op = (int)nd->i[0];
    const ct_eager *a = nd->in[0], *b = nd->in[1];
    const float *x = a->data, *y = b->data;
    float *dx = din[0], *dy = din[1];
    int64_t n = nd->out->numel;
    if (same_shape(a, b)) {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            if (dx) dx[i] += bin_gx(op, x[i], y[i], g[i]);
            if (dy) dy[i] += bin_gy(op, x[i], y[i], g[i]);
        }
        return;
    }
    bshape s;
    bcast(a, b, &s, bin_names[op]);
    if (dx) BCAST_FOR(&s, n, dx[ia] += bin_gx(op, x[ia], y[ib], g[io]));
    if (dy) BCAST_FOR(&s, n, dy[ib] += bin_gy(op, x[ia], y[ib], g[io]));
}

static ct_eager *binary(int op, ct_eager *a, ct_eager *b)
{
    if (!a || !b) return NULL;
    bshape s;
    if (!bcast(a, b, &s, bin_names[op])) return NULL;
    ct_eager *out = ct_eager_new(s.rank, s.dims);
    if (!out) return NULL;
    int flat = same_shape(a, b);
    const float *x = a->data, *y = b->data;
    float *o = out->data;
    int64_t n = out->numel;
    switch (op) {
    case B_ADD: BIN_FWD(B_ADD); break;
    case B_SUB: BIN_FWD(B_SUB); break;
    case B_MUL: BIN_FWD(B_MUL); break;
    case B_DIV: BIN_FWD(B_DIV); break;
    case B_MAX: BIN_FWD(B_MAX); break;
    case B_MIN: BIN_FWD(B_MIN); break;
    case B_EQ: BIN_FWD(B_EQ); break;
    case B_NE: BIN_FWD(B_NE); break;
    case B_LT: BIN_FWD(B_LT); break;
    case B_LE: BIN_FWD(B_LE); break;
    case B_GT: BIN_FWD(B_GT); break;
    default: BIN_FWD(B_GE); break;
    }
    ct_tape_node p = {.op = bin_names[op], .bwd = op <= B_MIN ? bin_bwd : NULL, .i = {op}};
    ct_eager *in[2] = {a, b};
    return finish(out, &p, 2, in, NULL, 0);
}

ct_eager *ct_eager_add(ct_eager *a, ct_eager *b) { return binary(B_ADD, a, b); }
ct_eager *ct_eager_sub(ct_eager *a, ct_eager *b) { return binary(B_SUB, a, b); }
ct_eager *ct_eager_mul(ct_eager *a, ct_eager *b) { return binary(B_MUL, a, b); }
ct_eager *ct_eager_div(ct_eager *a, ct_eager *b) { return binary(B_DIV, a, b); }
ct_eager *ct_eager_maximum(ct_eager *a, ct_eager *b) { return binary(B_MAX, a, b); }
ct_eager *ct_eager_minimum(ct_eager *a, ct_eager *b) { return binary(B_MIN, a, b); }
ct_eager *ct_eager_equal(ct_eager *a, ct_eager *b) { return binary(B_EQ, a, b); }
ct_eager *ct_eager_not_equal(ct_eager *a, ct_eager *b) { return binary(B_NE, a, b); }
ct_eager *ct_eager_less(ct_eager *a, ct_eager *b) { return binary(B_LT, a, b); }
ct_eager *ct_eager_less_equal(ct_eager *a, ct_eager *b) { return binary(B_LE, a, b); }
ct_eager *ct_eager_greater(ct_eager *a, ct_eager *b) { return binary(B_GT, a, b); }
ct_eager *ct_eager_greater_equal(ct_eager *a, ct_eager *b) { return binary(B_GE, a, b); }

/* ---- unary math ---------------------------------------------------------------------- */
enum { U_NEG, U_EXP, U_LOG, U_SQRT, U_SQUARE, U_ABS, U_TANH, U_SIGMOID, U_RELU, U_LEAKY, U_SCALE, U_ADDS, U_POW };
static const char *const un_names[] = {"neg", "exp", "log", "sqrt", "square", "abs", "tanh",
                                       "sigmoid", "relu", "leaky_relu", "scale", "add_scalar", "pow"};

static inline float un_f(int op, float x, float p)
{
    switch (op) {
    case U_NEG: return -x;
    case U_EXP: return expf(x);
    case U_LOG: return logf(x);
    case U_SQRT: return sqrtf(x);
    case U_SQUARE: return x * x;
    case U_ABS: return fabsf(x);
    case U_TANH: return tanhf(x);
    case U_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case U_RELU: return x > 0 ? x : 0.0f;
    case U_LEAKY: return x > 0 ? x : p * x;
    case U_SCALE: return p * x;
    case U_ADDS: return x + p;
    default: return powf(x, p);
    }
}

/* dy/dx given x, y and the parameter */
static inline float un_d(int op, float x, float y, float p)
{
    switch (op) {
    case U_NEG: return -1.0f;
    case U_EXP: return y;
    case U_LOG: return 1.0f / x;
    case U_SQRT: return 0.5f / y;
    case U_SQUARE: return 2.0f * x;
    case U_ABS: return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
    case U_TANH: return 1.0f - y * y;
    case U_SIGMOID: return y * (1.0f - y);
    case U_RELU: return x > 0 ? 1.0f : 0.0f;
    case U_LEAKY: return x > 0 ? 1.0f : p;
    case U_SCALE: return p;
    case U_ADDS: return 1.0f;
    default: return p == 0 ? 0.0f : p * powf(x, p - 1.0f);
    }
}

#define UN_CASE(OP)                                                              \
    case OP:                                                                     \
        _Pragma("omp parallel for simd schedule(static) if (n > 65536)")         \
        for (int64_t i = 0; i < n; i++) y[i] = un_f(OP, x[i], p);                \
        break

#define UN_BWD_CASE(OP)                                                          \
    case OP:                                                                     \
        _Pragma("omp parallel for simd schedule(static) if (n > 65536)")         \
        for (int64_t i = 0; i < n; i++) dx[i] += g[i] * un_d(OP, x[i], y[i], p); \
        break

static void un_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    const float *x = nd->in[0]->data, *y = nd->out->data;
    float *dx = din[0], p = nd->f[0];
    int64_t n = nd->out->numel;
    switch ((int)nd->i[0]) {
    UN_BWD_CASE(U_NEG); UN_BWD_CASE(U_EXP); UN_BWD_CASE(U_LOG); UN_BWD_CASE(U_SQRT);
    UN_BWD_CASE(U_SQUARE); UN_BWD_CASE(U_ABS); UN_BWD_CASE(U_TANH); UN_BWD_CASE(U_SIGMOID);
    UN_BWD_CASE(U_RELU); UN_BWD_CASE(U_LEAKY); UN_BWD_CASE(U_SCALE); UN_BWD_CASE(U_ADDS);
    default: UN_BWD_CASE(U_POW);
    }
}

static ct_eager *unary(int op, ct_eager *a, float p)
{
    if (!a) return NULL;
    ct_eager *out = ct_eager_new(a->rank, a->dims);
    if (!out) return NULL;
    const float *x = a->data;
    float *y = out->data;
    int64_t n = out->numel;
    switch (op) {
    UN_CASE(U_NEG); UN_CASE(U_EXP); UN_CASE(U_LOG); UN_CASE(U_SQRT); UN_CASE(U_SQUARE);
    UN_CASE(U_ABS); UN_CASE(U_TANH); UN_CASE(U_SIGMOID); UN_CASE(U_RELU); UN_CASE(U_LEAKY);
    UN_CASE(U_SCALE); UN_CASE(U_ADDS);
    default: UN_CASE(U_POW);
    }
    ct_tape_node nd = {.op = un_names[op], .bwd = un_bwd, .i = {op}, .f = {p}};
    return finish(out, &nd, 1, &a, NULL, 0);
}

ct_eager *ct_eager_neg(ct_eager *x) { return unary(U_NEG, x, 0); }
ct_eager *ct_eager_exp(ct_eager *x) { return unary(U_EXP, x, 0); }
ct_eager *ct_eager_log(ct_eager *x) { return unary(U_LOG, x, 0); }
ct_eager *ct_eager_sqrt(ct_eager *x) { return unary(U_SQRT, x, 0); }
ct_eager *ct_eager_square(ct_eager *x) { return unary(U_SQUARE, x, 0); }
ct_eager *ct_eager_abs(ct_eager *x) { return unary(U_ABS, x, 0); }
ct_eager *ct_eager_tanh(ct_eager *x) { return unary(U_TANH, x, 0); }
ct_eager *ct_eager_sigmoid(ct_eager *x) { return unary(U_SIGMOID, x, 0); }
ct_eager *ct_eager_relu(ct_eager *x) { return unary(U_RELU, x, 0); }
ct_eager *ct_eager_leaky_relu(ct_eager *x, float alpha) { return unary(U_LEAKY, x, alpha); }
ct_eager *ct_eager_scale(ct_eager *x, float s) { return unary(U_SCALE, x, s); }
ct_eager *ct_eager_add_scalar(ct_eager *x, float s) { return unary(U_ADDS, x, s); }
ct_eager *ct_eager_pow(ct_eager *x, float p) { return unary(U_POW, x, p); }

/* ---- matmul ------------------------------------------------------------------------------ */
static void matmul_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    int ta = (int)nd->i[0], tb = (int)nd->i[1];
    int64_t M = nd->i[2], N = nd->i[3], K = nd->i[4];
    const float *A = nd->in[0]->data, *B = nd->in[1]->data;
    /* C = op(A) op(B). dA: dC op(B)^T, stored transposed when ta. dB likewise. */
    if (din[0]) {
        if (!ta)
            ct_op_gemm(0, !tb, M, K, N, 1.0f, g, B, 1.0f, din[0]);
        else
            ct_op_gemm(tb, 1, K, M, N, 1.0f, B, g, 1.0f, din[0]);
    }
    if (din[1]) {
        if (!tb)
            ct_op_gemm(!ta, 0, K, N, M, 1.0f, A, g, 1.0f, din[1]);
        else
            ct_op_gemm(1, ta, N, K, M, 1.0f, g, A, 1.0f, din[1]);
    }
}

ct_eager *ct_eager_matmul(ct_eager *a, ct_eager *b, int transpose_a, int transpose_b)
{
    if (!a || !b) return NULL;
    char x[128], y[128];
    if (a->rank != 2 || b->rank != 2) {
        CT_FAIL(CT_ERR_SHAPE, "matmul: operands must have rank 2, got %s and %s", shape_str(a, x, sizeof x),
                shape_str(b, y, sizeof y));
        return NULL;
    }
    int64_t M = transpose_a ? a->dims[1] : a->dims[0], K = transpose_a ? a->dims[0] : a->dims[1];
    int64_t Kb = transpose_b ? b->dims[1] : b->dims[0], N = transpose_b ? b->dims[0] : b->dims[1];
    if (K != Kb) {
        CT_FAIL(CT_ERR_SHAPE, "matmul: inner dimensions differ: %s%s has %lld, %s%s has %lld",
                shape_str(a, x, sizeof x), transpose_a ? "^T" : "", (long long)K, shape_str(b, y, sizeof y),
                transpose_b ? "^T" : "", (long long)Kb);
        return NULL;
    }
    int64_t dims[2] = {M, N};
    ct_eager *out = ct_eager_new(2, dims);
    if (!out) return NULL;
    if (K == 0)
        memset(out->data, 0, sizeof(float) * (size_t)out->numel);
    else if (M > 0 && N > 0)
        ct_op_gemm(transpose_a, transpose_b, M, N, K, 1.0f, a->data, b->data, 0.0f, out->data);
    ct_tape_node nd = {.op = "matmul", .bwd = matmul_bwd, .i = {transpose_a != 0, transpose_b != 0, M, N, K}};
    ct_eager *in[2] = {a, b};
    return finish(out, &nd, 2, in, NULL, 0);
}

/* ---- reductions ------------------------------------------------------------------------- */
enum { R_SUM, R_MEAN, R_MAX };

/* For x's every element, in row-major order, the offset of its group in
 * the output: ost[d] is the output stride of axis d, 0 when reduced. */
#define REDUCE_FOR(x, ost, BODY)                                                 \
    do {                                                                         \
        int64_t idx_[CT_EAGER_MAX_DIMS] = {0}, oo = 0;                           \
        for (int64_t i = 0; i < (x)->numel; i++) {                               \
            BODY;                                                                \
            for (int d_ = (x)->rank - 1; d_ >= 0; d_--) {                        \
                idx_[d_]++;                                                      \
                oo += (ost)[d_];                                                 \
                if (idx_[d_] < (x)->dims[d_]) break;                             \
                oo -= (ost)[d_] * (x)->dims[d_];                                 \
                idx_[d_] = 0;                                                    \
            }                                                                    \
        }                                                                        \
    } while (0)

static void reduce_strides(const ct_eager *x, int64_t mask, int64_t *ost)
{
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        if (mask >> d & 1) {
            ost[d] = 0;
        } else {
            ost[d] = s;
            s *= x->dims[d];
        }
    }
}

static void reduce_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    const ct_eager *x = nd->in[0];
    float *dx = din[0];
    if (nd->i[0] == R_MAX) {
        const int64_t *arg = nd->aux;
        for (int64_t o = 0; o < nd->out->numel; o++)
            if (arg[o] >= 0) dx[arg[o]] += g[o];
        return;
    }
    int64_t ost[CT_EAGER_MAX_DIMS];
    reduce_strides(x, nd->i[1], ost);
    float scale = nd->i[0] == R_MEAN && nd->i[2] > 0 ? 1.0f / (float)nd->i[2] : 1.0f;
    if (nd->out->numel == 1) {
        float v = g[0] * scale;
#pragma omp parallel for simd schedule(static) if (x->numel > 65536)
        for (int64_t i = 0; i < x->numel; i++) dx[i] += v;
        return;
    }
    REDUCE_FOR(x, ost, dx[i] += g[oo] * scale);
}

static ct_eager *reduce(int kind, ct_eager *x, int n_axes, const int *axes, int keepdims)
{
    static const char *const names[] = {"sum", "mean", "max"};
    if (!x) return NULL;
    int64_t mask = 0;
    if (n_axes == 0) {
        mask = (1 << x->rank) - 1;
    } else {
        if (!axes) {
            CT_FAIL(CT_ERR_USAGE, "%s: axes is NULL with n_axes %d", names[kind], n_axes);
            return NULL;
        }
        for (int k = 0; k < n_axes; k++) {
            int a;
            if (!norm_axis(axes[k], x->rank, names[kind], &a)) return NULL;
            mask |= (int64_t)1 << a;
        }
    }
    int64_t dims[CT_EAGER_MAX_DIMS], count = 1;
    int rank = 0;
    for (int d = 0; d < x->rank; d++) {
        if (mask >> d & 1) {
            count *= x->dims[d];
            if (keepdims) dims[rank++] = 1;
        } else {
            dims[rank++] = x->dims[d];
        }
    }
    if (kind == R_MAX && count == 0) {
        CT_FAIL(CT_ERR_SHAPE, "max: reduction over an empty axis");
        return NULL;
    }
    ct_eager *out = ct_eager_new(rank, dims);
    if (!out) return NULL;
    int64_t ost[CT_EAGER_MAX_DIMS], *arg = NULL;
    reduce_strides(x, mask, ost);
    const float *xv = x->data;
    float *o = out->data;
    if (kind == R_MAX) {
        arg = malloc(sizeof(int64_t) * (size_t)(out->numel ? out->numel : 1));
        if (!arg) {
            ct_eager_discard(out);
            CT_FAIL(CT_ERR_NOMEM, "max: out of memory");
            return NULL;
        }
        for (int64_t i = 0; i < out->numel; i++) arg[i] = -1;
        REDUCE_FOR(x, ost, if (arg[oo] < 0 || xv[i] > o[oo]) {
            o[oo] = xv[i];
            arg[oo] = i;
        });
    } else {
        double *acc = calloc((size_t)(out->numel ? out->numel : 1), sizeof(double));
        if (!acc) {
            ct_eager_discard(out);
            CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", names[kind]);
            return NULL;
        }
        if (out->numel == 1) {
            double s = 0;
            for (int64_t i = 0; i < x->numel; i++) s += xv[i];
            acc[0] = s;
        } else {
            REDUCE_FOR(x, ost, acc[oo] += xv[i]);
        }
        double scale = kind == R_MEAN && count > 0 ? 1.0 / (double)count : 1.0;
        for (int64_t i = 0; i < out->numel; i++) o[i] = (float)(acc[i] * scale);
        free(acc);
    }
    ct_tape_node nd = {.op = names[kind], .bwd = reduce_bwd, .i = {kind, mask, count}};
    ct_eager *r = finish(out, &nd, 1, &x, arg, arg ? sizeof(int64_t) * (size_t)out->numel : 0);
    free(arg);
    return r;
}

ct_eager *ct_eager_sum(ct_eager *x, int n_axes, const int *axes, int keepdims)
{
    return reduce(R_SUM, x, n_axes, axes, keepdims);
}
ct_eager *ct_eager_mean(ct_eager *x, int n_axes, const int *axes, int keepdims)
{
    return reduce(R_MEAN, x, n_axes, axes, keepdims);
}
ct_eager *ct_eager_max(ct_eager *x, int n_axes, const int *axes, int keepdims)
{
    return reduce(R_MAX, x, n_axes, axes, keepdims);
}

/* x as (outer, n, inner) around `axis` */
static void split_at(const ct_eager *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int d = 0; d < axis; d++) *outer *= x->dims[d];
    for (int d = axis + 1; d < x->rank; d++) *inner *= x->dims[d];
    *n = x->dims[axis];
}

ct_eager *ct_eager_argmax(ct_eager *x, int axis)
{
    if (!x) return NULL;
    int a;
    if (!norm_axis(axis, x->rank, "argmax", &a)) return NULL;
    int64_t outer, n, inner, dims[CT_EAGER_MAX_DIMS];
    split_at(x, a, &outer, &n, &inner);
    if (n == 0) {
        CT_FAIL(CT_ERR_SHAPE, "argmax: axis %d is empty", axis);
        return NULL;
    }
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (d != a) dims[r++] = x->dims[d];
    ct_eager *out = ct_eager_new(r, dims);
    if (!out) return NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < inner; k++) {
            const float *p = x->data + o * n * inner + k;
            int64_t best = 0;
            for (int64_t j = 1; j < n; j++)
                if (p[j * inner] > p[best * inner]) best = j;
            out->data[o * inner + k] = (float)best;
        }
    return out;
}

/* ---- shape operations ---------------------------------------------------------------------- */
static void copy_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    ct_op_axpy(din[0], g, 1.0f, nd->out->numel);
}

ct_eager *ct_eager_reshape(ct_eager *x, int rank, const int64_t *dims)
{
    if (!x) return NULL;
    if (rank < 0 || rank > CT_EAGER_MAX_DIMS || (rank > 0 && !dims)) {
        CT_FAIL(CT_ERR_SHAPE, "reshape: rank %d is outside [0, %d] or dims is NULL", rank, CT_EAGER_MAX_DIMS);
        return NULL;
    }
    int64_t d[CT_EAGER_MAX_DIMS], known = 1;
    int infer = -1;
    for (int i = 0; i < rank; i++) {
        d[i] = dims[i];
        if (dims[i] == -1 && infer < 0) {
            infer = i;
        } else if (dims[i] < 0) {
            CT_FAIL(CT_ERR_SHAPE, "reshape: dimension %d is %lld (only one -1 is allowed)", i, (long long)dims[i]);
            return NULL;
        } else {
            known *= dims[i];
        }
    }
    if (infer >= 0) d[infer] = known ? x->numel / known : 0;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    if (n != x->numel) {
        char b[128];
        CT_FAIL(CT_ERR_SHAPE, "reshape: %s has %lld elements, the new shape %lld", shape_str(x, b, sizeof b),
                (long long)x->numel, (long long)n);
        return NULL;
    }
    ct_eager *out = ct_eager_new(rank, d);
    if (!out) return NULL;
    memcpy(out->data, x->data, sizeof(float) * (size_t)n);
    ct_tape_node nd = {.op = "reshape", .bwd = copy_bwd};
    return finish(out, &nd, 1, &x, NULL, 0);
}

/* Output element io of a permuted or sliced view reads input offset ii. */
#define VIEW_FOR(out, ist, base, BODY)                                           \
    do {                                                                         \
        int64_t idx_[CT_EAGER_MAX_DIMS] = {0}, ii = (base);                      \
        for (int64_t io = 0; io < (out)->numel; io++) {                          \
            BODY;                                                                \
            for (int d_ = (out)->rank - 1; d_ >= 0; d_--) {                      \
                idx_[d_]++;                                                      \
                ii += (ist)[d_];                                                 \
                if (idx_[d_] < (out)->dims[d_]) break;                           \
                ii -= (ist)[d_] * (out)->dims[d_];                               \
                idx_[d_] = 0;                                                    \
            }                                                                    \
        }                                                                        \
    } while (0)

/* i[0..8): per-output-axis input strides, i[8]: base offset */
static void view_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    float *dx = din[0];
    VIEW_FOR(nd->out, nd->i, nd->i[8], dx[ii] += g[io]);
}

static ct_eager *view_op(const char *op, ct_eager *x, int rank, const int64_t *dims, const int64_t *ist,
                         int64_t base)
{
    ct_eager *out = ct_eager_new(rank, dims);
    if (!out) return NULL;
    const float *xv = x->data;
    float *o = out->data;
    VIEW_FOR(out, ist, base, o[io] = xv[ii]);
    ct_tape_node nd = {.op = op, .bwd = view_bwd};
    for (int d = 0; d < rank; d++) nd.i[d] = ist[d];
    nd.i[8] = base;
    return finish(out, &nd, 1, &x, NULL, 0);
}

ct_eager *ct_eager_transpose(ct_eager *x, const int *perm)
{
    if (!x) return NULL;
    int p[CT_EAGER_MAX_DIMS], seen[CT_EAGER_MAX_DIMS] = {0};
    for (int d = 0; d < x->rank; d++) {
        p[d] = perm ? perm[d] : x->rank - 1 - d;
        if (p[d] < 0) p[d] += x->rank;
        if (p[d] < 0 || p[d] >= x->rank || seen[p[d]]++) {
            CT_FAIL(CT_ERR_USAGE, "transpose: perm is not a permutation of the %d axes (entry %d)", x->rank, d);
            return NULL;
        }
    }
    int64_t st[CT_EAGER_MAX_DIMS], dims[CT_EAGER_MAX_DIMS], ist[CT_EAGER_MAX_DIMS];
    strides_of(x, st);
    for (int d = 0; d < x->rank; d++) {
        dims[d] = x->dims[p[d]];
        ist[d] = st[p[d]];
    }
    return view_op("transpose", x, x->rank, dims, ist, 0);
}

ct_eager *ct_eager_slice(ct_eager *x, const int64_t *begin, const int64_t *size)
{
    if (!x) return NULL;
    if (x->rank > 0 && (!begin || !size)) {
        CT_FAIL(CT_ERR_USAGE, "slice: begin or size is NULL");
        return NULL;
    }
    int64_t st[CT_EAGER_MAX_DIMS], dims[CT_EAGER_MAX_DIMS], base = 0;
    strides_of(x, st);
    for (int d = 0; d < x->rank; d++) {
        int64_t b = begin[d], s = size[d] == -1 ? x->dims[d] - begin[d] : size[d];
        if (b < 0 || s < 0 || b + s > x->dims[d]) {
            CT_FAIL(CT_ERR_SHAPE, "slice: axis %d has length %lld; begin %lld size %lld does not fit", d,
                    (long long)x->dims[d], (long long)begin[d], (long long)size[d]);
            return NULL;
        }
        dims[d] = s;
        base += b * st[d];
    }
    return view_op("slice", x, x->rank, dims, st, base);
}

/* i[0]: axis; per input k the offset of its block within an output row
 * is the sum of the earlier blocks */
static void concat_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    int axis = (int)nd->i[0];
    int64_t outer, n, inner;
    split_at(nd->out, axis, &outer, &n, &inner);
    int64_t row = n * inner, off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        int64_t blk = nd->in[k]->dims[axis] * inner;
        if (din[k])
            for (int64_t o = 0; o < outer; o++) ct_op_axpy(din[k] + o * blk, g + o * row + off, 1.0f, blk);
        off += blk;
    }
}

ct_eager *ct_eager_concat(int n, ct_eager *const *xs, int axis)
{
    if (n < 1 || !xs) {
        CT_FAIL(CT_ERR_USAGE, "concat: needs at least one tensor");
        return NULL;
    }
    for (int k = 0; k < n; k++)
        if (!xs[k]) return NULL;
    const ct_eager *x0 = xs[0];
    int a;
    if (!norm_axis(axis, x0->rank, "concat", &a)) return NULL;
    int64_t dims[CT_EAGER_MAX_DIMS];
    for (int d = 0; d < x0->rank; d++) dims[d] = x0->dims[d];
    dims[a] = 0;
    for (int k = 0; k < n; k++) {
        char b0[128], bk[128];
        int ok = xs[k]->rank == x0->rank;
        for (int d = 0; ok && d < x0->rank; d++) ok = d == a || xs[k]->dims[d] == x0->dims[d];
        if (!ok) {
            CT_FAIL(CT_ERR_SHAPE, "concat: tensor %d has shape %s, tensor 0 %s; they may differ only on axis %d", k,
                    shape_str(xs[k], bk, sizeof bk), shape_str(x0, b0, sizeof b0), a);
            return NULL;
        }
        dims[a] += xs[k]->dims[a];
    }
    ct_eager *out = ct_eager_new(x0->rank, dims);
    if (!out) return NULL;
    int64_t outer, len, inner;
    split_at(out, a, &outer, &len, &inner);
    int64_t row = len * inner, off = 0;
    for (int k = 0; k < n; k++) {
        int64_t blk = xs[k]->dims[a] * inner;
        for (int64_t o = 0; o < outer; o++)
            memcpy(out->data + o * row + off, xs[k]->data + o * blk, sizeof(float) * (size_t)blk);
        off += blk;
    }
    ct_tape_node nd = {.op = "concat", .bwd = concat_bwd, .i = {a}};
    return finish(out, &nd, n, xs, NULL, 0);
}

/* i[0]: axis, i[1]: count; aux: the indices */
static void gather_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    const int64_t *idx = nd->aux;
    int64_t outer, n, inner, cnt = nd->i[1];
    split_at(nd->in[0], (int)nd->i[0], &outer, &n, &inner);
#pragma omp parallel for schedule(static) if (outer * cnt * inner > 65536)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < cnt; j++) {
            float *dx = din[0] + (o * n + idx[j]) * inner;
            const float *gj = g + (o * cnt + j) * inner;
            for (int64_t k = 0; k < inner; k++) dx[k] += gj[k];
        }
}

ct_eager *ct_eager_gather(ct_eager *x, int axis, int64_t n, const int64_t *indices)
{
    if (!x) return NULL;
    int a;
    if (!norm_axis(axis, x->rank, "gather", &a)) return NULL;
    if (n < 0 || (n > 0 && !indices)) {
        CT_FAIL(CT_ERR_USAGE, "gather: %lld indices and %s", (long long)n, indices ? "an array" : "NULL");
        return NULL;
    }
    for (int64_t j = 0; j < n; j++)
        if (indices[j] < 0 || indices[j] >= x->dims[a]) {
            CT_FAIL(CT_ERR_USAGE, "gather: index %lld (entry %lld) is outside [0, %lld) on axis %d",
                    (long long)indices[j], (long long)j, (long long)x->dims[a], a);
            return NULL;
        }
    int64_t dims[CT_EAGER_MAX_DIMS], outer, len, inner;
    for (int d = 0; d < x->rank; d++) dims[d] = x->dims[d];
    dims[a] = n;
    split_at(x, a, &outer, &len, &inner);
    ct_eager *out = ct_eager_new(x->rank, dims);
    if (!out) return NULL;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            memcpy(out->data + (o * n + j) * inner, x->data + (o * len + indices[j]) * inner,
                   sizeof(float) * (size_t)inner);
    ct_tape_node nd = {.op = "gather", .bwd = gather_bwd, .i = {a, n}};
    return finish(out, &nd, 1, &x, indices, sizeof(int64_t) * (size_t)n);
}

ct_eager *ct_eager_one_hot(ct_eager *labels, int64_t depth)
{
    if (!labels) return NULL;
    if (labels->rank != 1 || depth < 1) {
        char b[128];
        CT_FAIL(CT_ERR_SHAPE, "one_hot: labels must be (n,) and depth >= 1, got %s and %lld",
                shape_str(labels, b, sizeof b), (long long)depth);
        return NULL;
    }
    int64_t dims[2] = {labels->dims[0], depth};
    ct_eager *out = ct_eager_zeros(2, dims);
    if (!out) return NULL;
    for (int64_t i = 0; i < dims[0]; i++) {
        float v = labels->data[i];
        if (!(v >= 0 && v < (float)depth) || v != floorf(v)) {
            ct_eager_discard(out);
            CT_FAIL(CT_ERR_USAGE, "one_hot: label %lld is %g, expected an integer in [0, %lld)", (long long)i,
                    (double)v, (long long)depth);
            return NULL;
        }
        out->data[i * depth + (int64_t)v] = 1.0f;
    }
    return out;
}

/* ---- softmax ---------------------------------------------------------------------------------- */
static int rows_cols(const ct_eager *x, const char *op, int64_t *rows, int64_t *cols)
{
    if (x->rank < 1 || x->dims[x->rank - 1] < 1) {
        CT_FAIL(CT_ERR_SHAPE, "%s: needs at least one axis with a non-zero last dimension", op);
        return 0;
    }
    *cols = x->dims[x->rank - 1];
    *rows = x->numel / *cols;
    return 1;
}

static void softmax_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    int64_t rows = 0, cols = 0;
    rows_cols(nd->out, "softmax", &rows, &cols);
    ct_op_activation_bwd_acc(CT_ACT_SOFTMAX, nd->in[0]->data, nd->out->data, g, din[0], rows, cols);
}

ct_eager *ct_eager_softmax(ct_eager *x)
{
    if (!x) return NULL;
    int64_t rows = 0, cols = 0;
    if (!rows_cols(x, "softmax", &rows, &cols)) return NULL;
    ct_eager *out = ct_eager_new(x->rank, x->dims);
    if (!out) return NULL;
    ct_op_activation_fwd(CT_ACT_SOFTMAX, x->data, out->data, rows, cols);
    ct_tape_node nd = {.op = "softmax", .bwd = softmax_bwd};
    return finish(out, &nd, 1, &x, NULL, 0);
}

static void log_softmax_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    int64_t rows = 0, cols = 0;
    rows_cols(nd->out, "log_softmax", &rows, &cols);
    const float *y = nd->out->data;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * cols, *gr = g + r * cols;
        float *dx = din[0] + r * cols;
        double s = 0;
        for (int64_t c = 0; c < cols; c++) s += gr[c];
        for (int64_t c = 0; c < cols; c++) dx[c] += gr[c] - expf(yr[c]) * (float)s;
    }
}

ct_eager *ct_eager_log_softmax(ct_eager *x)
{
    if (!x) return NULL;
    int64_t rows = 0, cols = 0;
    if (!rows_cols(x, "log_softmax", &rows, &cols)) return NULL;
    ct_eager *out = ct_eager_new(x->rank, x->dims);
    if (!out) return NULL;
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * cols;
        float *yr = out->data + r * cols, m = xr[0];
        for (int64_t c = 1; c < cols; c++) m = xr[c] > m ? xr[c] : m;
        double s = 0;
        for (int64_t c = 0; c < cols; c++) s += exp((double)(xr[c] - m));
        float lse = m + (float)log(s);
        for (int64_t c = 0; c < cols; c++) yr[c] = xr[c] - lse;
    }
    ct_tape_node nd = {.op = "log_softmax", .bwd = log_softmax_bwd};
    return finish(out, &nd, 1, &x, NULL, 0);
}

/* ---- convolution and pooling --------------------------------------------------------------------- */
static int image_of(const ct_eager *x, const char *op)
{
    char b[128];
    if (x->rank != 4) {
        CT_FAIL(CT_ERR_SHAPE, "%s: input must be (batch, height, width, channels), got %s", op,
                shape_str(x, b, sizeof b));
        return 0;
    }
    return 1;
}

static void conv_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    const ct_conv2d_geom *geo = nd->aux;
    float *scratch = ct_eager_buf_alloc(ct_op_conv2d_scratch(geo));
    const ct_eager *k = nd->in[1];
    float *dk = din[1] ? din[1] : ct_eager_buf_zeros(k->numel);
    if (scratch && dk) ct_op_conv2d_bwd(geo, nd->in[0]->data, g, k->data, din[0], dk, scratch);
    if (!din[1]) ct_eager_buf_free(dk, k->numel);
    ct_eager_buf_free(scratch, ct_op_conv2d_scratch(geo));
}

ct_eager *ct_eager_conv2d(ct_eager *x, ct_eager *kernel, int stride_h, int stride_w, int same)
{
    if (!x || !kernel) return NULL;
    if (!image_of(x, "conv2d")) return NULL;
    char b[128], c[128];
    if (kernel->rank != 4 || kernel->dims[2] != x->dims[3]) {
        CT_FAIL(CT_ERR_SHAPE, "conv2d: kernel %s must be (kh, kw, %lld, filters) for input %s",
                shape_str(kernel, b, sizeof b), (long long)x->dims[3], shape_str(x, c, sizeof c));
        return NULL;
    }
    if (stride_h < 1 || stride_w < 1) {
        CT_FAIL(CT_ERR_USAGE, "conv2d: strides must be >= 1, got %d and %d", stride_h, stride_w);
        return NULL;
    }
    ct_conv_window win = {(int)kernel->dims[0], (int)kernel->dims[1], stride_h, stride_w, 1, 1, same != 0};
    ct_conv2d_geom g = ct_conv2d_geom_make(&win, (int)x->dims[1], (int)x->dims[2], (int)x->dims[3],
                                           (int)kernel->dims[3]);
    if (g.oh < 1 || g.ow < 1) {
        CT_FAIL(CT_ERR_SHAPE, "conv2d: a %lldx%lld kernel does not fit input %s with 'valid' padding",
                (long long)kernel->dims[0], (long long)kernel->dims[1], shape_str(x, b, sizeof b));
        return NULL;
    }
    g.batch = x->dims[0];
    int64_t dims[4] = {x->dims[0], g.oh, g.ow, g.f};
    ct_eager *out = ct_eager_new(4, dims);
    if (!out) return NULL;
    int64_t ns = ct_op_conv2d_scratch(&g);
    float *scratch = ct_eager_buf_alloc(ns);
    if (!scratch) {
        ct_eager_discard(out);
        CT_FAIL(CT_ERR_NOMEM, "conv2d: out of memory for scratch");
        return NULL;
    }
    if (out->numel) ct_op_conv2d_fwd(&g, x->data, kernel->data, NULL, out->data, 0, scratch);
    ct_eager_buf_free(scratch, ns);
    ct_tape_node nd = {.op = "conv2d", .bwd = conv_bwd};
    ct_eager *in[2] = {x, kernel};
    return finish(out, &nd, 2, in, &g, sizeof g);
}

static void pool_bwd(const ct_tape_node *nd, const float *g, float *const *din)
{
    const ct_pool2d_geom *geo = nd->aux;
    if (nd->i[0])
        ct_op_maxpool2d_bwd(geo, nd->in[0]->dims[0], nd->in[0]->data, g, din[0]);
    else
        ct_op_avgpool2d_bwd(geo, nd->in[0]->dims[0], g, din[0]);
}

static ct_eager *pool(int is_max, ct_eager *x, int kh, int kw, int sh, int sw, int same)
{
    const char *op = is_max ? "max_pool2d" : "avg_pool2d";
    if (!x) return NULL;
    if (!image_of(x, op)) return NULL;
    ct_pool2d_geom g;
    if (!ct_pool2d_geom_make(&g, x->dims[1], x->dims[2], x->dims[3], kh, kw, sh, sw, same != 0)) {
        char b[128];
        CT_FAIL(CT_ERR_SHAPE, "%s: window %dx%d stride %dx%d does not fit input %s", op, kh, kw, sh, sw,
                shape_str(x, b, sizeof b));
        return NULL;
    }
    int64_t dims[4] = {x->dims[0], g.oh, g.ow, x->dims[3]};
    ct_eager *out = ct_eager_new(4, dims);
    if (!out) return NULL;
    if (is_max)
        ct_op_maxpool2d_fwd(&g, x->dims[0], x->data, out->data);
    else
        ct_op_avgpool2d_fwd(&g, x->dims[0], x->data, out->data);
    ct_tape_node nd = {.op = op, .bwd = pool_bwd, .i = {is_max}};
    return finish(out, &nd, 1, &x, &g, sizeof g);
}

ct_eager *ct_eager_max_pool2d(ct_eager *x, int kh, int kw, int stride_h, int stride_w, int same)
{
    return pool(1, x, kh, kw, stride_h, stride_w, same);
}

ct_eager *ct_eager_avg_pool2d(ct_eager *x, int kh, int kw, int stride_h, int stride_w, int same)
{
    return pool(0, x, kh, kw, stride_h, stride_w, same);
}
