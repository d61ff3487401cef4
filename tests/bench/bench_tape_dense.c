/* A tape-defined dense layer against the built-in Dense, side by side:
 * the same MLP (784 -> 512 relu -> 512 relu -> 10 softmax, Adam, batch 128) with its
 * hidden layers either built-in `dense` or `tape_dense` (matmul + bias
 * written with eager operations, backward by the tape). Each round times
 * STEPS training steps of one then the other (alternating which goes
 * first); prints per-round ratios and their median. Public API only.
 *
 *   bench_tape_dense [ROUNDS] [STEPS]      goal: median ratio <= 1.3 */
#include <ctrain.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const ct_key_def keys[] = {
    {"units", CT_KEYTYPE_INT, NULL, 1, 0, 0, 0, "output width"},
    {"activation", CT_KEYTYPE_STRING, "linear", 0, 0, 0, 0, "activation"},
    {NULL},
};

typedef struct td {
    int64_t units;
} td;

static ct_status td_init(ct_layer *l, void *s)
{
    return ct_layer_key_int(l, "units", &((td *)s)->units);
}

static ct_status td_build(ct_layer *l, void *s)
{
    td *d = s;
    int64_t k[2] = {ct_layer_input_dim(l, 0, -1), d->units};
    if (ct_layer_add_weight(l, "kernel", 2, k, "glorot_uniform", NULL, 1) < 0 ||
        ct_layer_add_weight(l, "bias", 1, &d->units, "zeros", NULL, 1) < 0)
        return ct_error_status();
    return ct_layer_set_output_shape(l, 1, &d->units);
}

static ct_eager *td_call(ct_layer *l, void *s, ct_eager *const *in, ct_eager *const *w, int training)
{
    return ct_eager_add(ct_eager_matmul(in[0], w[0], 0, 0), w[1]);
}

static const ct_layer_def tape_dense = {.type = "tape_dense", .keys = keys, .state_size = sizeof(td),
                                        .init = td_init, .build = td_build, .call = td_call};

static ct_net *make(const char *type)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[model]\ninput = 784\n\n[fc1]\ntype = %s\nunits = 512\nactivation = relu\n\n"
             "[fc2]\ntype = %s\nunits = 512\nactivation = relu\n\n"
             "[out]\ntype = dense\nunits = 10\nactivation = softmax\n\n"
             "[train]\noptimizer = adam\nloss = sparse_categorical_crossentropy\nbatch_size = 128\nseed = 1\n",
             type, type);
    ct_net *n;
    if (ct_net_from_text(text, type, &n) != CT_OK) {
        fprintf(stderr, "bench_tape_dense: %s\n", ct_error_message());
        exit(1);
    }
    return n;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double run(ct_net *n, const float *x, const float *y, int steps)
{
    double t0 = now(), loss;
    for (int i = 0; i < steps; i++)
        if (ct_net_forward(n, x, 128, 1, NULL) != CT_OK || ct_net_loss(n, y, &loss) != CT_OK ||
            ct_net_backward(n, 0) != CT_OK || ct_net_apply_gradients(n, 0, NULL) != CT_OK) {
            fprintf(stderr, "bench_tape_dense: %s\n", ct_error_message());
            exit(1);
        }
    return now() - t0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 7, steps = argc > 2 ? atoi(argv[2]) : 30;
    if (rounds < 1 || rounds > 100 || steps < 1) return 2;
    if (ct_register_layer(&tape_dense) != CT_OK) return 1;
    ct_net *builtin = make("dense"), *taped = make("tape_dense");
    static float x[128 * 784], y[128];
    int64_t d[2] = {128, 784};
    ct_eager *rx = ct_eager_random_uniform(2, d, 0, 1, 5, 0);
    for (int i = 0; i < 128 * 784; i++) x[i] = ct_eager_item(rx, i);
    for (int i = 0; i < 128; i++) y[i] = (float)(i % 10);
    ct_eager_free(rx);
    run(builtin, x, y, 3); /* warm up both (plans, buffer caches) */
    run(taped, x, y, 3);
    double ratio[100];
    for (int r = 0; r < rounds; r++) {
        double a, b;
        if (r % 2) {
            b = run(taped, x, y, steps);
            a = run(builtin, x, y, steps);
        } else {
            a = run(builtin, x, y, steps);
            b = run(taped, x, y, steps);
        }
        ratio[r] = b / a;
        printf("round %d: dense %.2f ms/step, tape_dense %.2f ms/step, ratio %.3f\n", r + 1, 1e3 * a / steps,
               1e3 * b / steps, ratio[r]);
    }
    qsort(ratio, (size_t)rounds, sizeof ratio[0], cmp);
    printf("bench_tape_dense: median ratio tape_dense / dense = %.3f over %d rounds (goal <= 1.3)\n",
           ratio[rounds / 2], rounds);
    ct_net_destroy(builtin);
    ct_net_destroy(taped);
    ct_eager_release_cache();
    return 0;
}
