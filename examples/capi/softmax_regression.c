/* Softmax regression on Fashion-MNIST written with tape operations only:
 * logits = x W + b, loss = mean cross-entropy (from log_softmax), plain
 * SGD on mini-batches; prints the test accuracy after each epoch.
 *
 *   ./softmax_regression [DIR] [EPOCHS]    DIR holds the four IDX files
 *   (default /usr/share/datasets/fashion-mnist, Debian's dataset-fashion-mnist) */
#include <ctrain.h>
#include <stdio.h>
#include <stdlib.h>

#define CLASSES 10
#define BATCH 100

static int fail(const char *what)
{
    fprintf(stderr, "softmax_regression: %s: %s\n", what, ct_error_message());
    return 1;
}

static ct_status load(const char *dir, const char *images, const char *labels, ct_data **out)
{
    char x[1024], y[1024];
    snprintf(x, sizeof x, "%s/%s", dir, images);
    snprintf(y, sizeof y, "%s/%s", dir, labels);
    return ct_data_load("idx", x, y, out);
}

/* rows [first, first + n) of d as (n, 784) pixels in [0, 1] and (n,) labels */
static void batch(const ct_data *d, int64_t first, int64_t n, ct_eager **x, ct_eager **y)
{
    int64_t xd[2] = {n, 784}, yd[1] = {n};
    *x = ct_eager_scale(ct_eager_from_data(2, xd, ct_data_x(d) + first * 784), 1.0f / 255);
    *y = ct_eager_from_data(1, yd, ct_data_y(d) + first);
}

static double accuracy(const ct_data *test, ct_eager *w, ct_eager *b)
{
    ct_scope_begin();
    ct_eager *x, *y;
    batch(test, 0, ct_data_count(test), &x, &y);
    ct_eager *pred = ct_eager_argmax(ct_eager_add(ct_eager_matmul(x, w, 0, 0), b), 1);
    double acc = ct_eager_item(ct_eager_mean(ct_eager_equal(pred, y), 0, NULL, 0), 0);
    ct_scope_end();
    return acc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int epochs = argc > 2 ? atoi(argv[2]) : 5;
    ct_data *train, *test;
    if (load(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", &train) != CT_OK ||
        load(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", &test) != CT_OK)
        return fail("data");
    int64_t wd[2] = {784, CLASSES}, bd[1] = {CLASSES};
    ct_eager *w = ct_eager_zeros(2, wd), *b = ct_eager_zeros(1, bd);
    const float lr = 0.1f;
    int64_t steps = ct_data_count(train) / BATCH;
    for (int epoch = 1; epoch <= epochs; epoch++) {
        double loss_sum = 0;
        for (int64_t s = 0; s < steps; s++) {
            ct_scope_begin();
            ct_eager *x, *y;
            batch(train, s * BATCH, BATCH, &x, &y);
            ct_tape *tape;
            if (ct_tape_create(&tape) != CT_OK) return fail("tape");
            ct_eager *logp = ct_eager_log_softmax(ct_eager_add(ct_eager_matmul(x, w, 0, 0), b));
            ct_eager *loss = ct_eager_neg(ct_eager_mean(ct_eager_sum(ct_eager_mul(logp, ct_eager_one_hot(y, CLASSES)),
                                                                     1, (int[]){1}, 0),
                                                        0, NULL, 0));
            ct_eager *params[2] = {w, b}, *grads[2];
            if (!loss || ct_tape_gradient(tape, loss, 2, params, grads) != CT_OK) return fail("step");
            ct_eager_axpy(w, -lr, grads[0]);
            ct_eager_axpy(b, -lr, grads[1]);
            loss_sum += ct_eager_item(loss, 0);
            ct_tape_destroy(tape);
            ct_scope_end();
        }
        printf("epoch %d: loss %.4f, test accuracy %.4f\n", epoch, loss_sum / (double)steps, accuracy(test, w, b));
    }
    ct_eager_free(w);
    ct_eager_free(b);
    ct_data_destroy(train);
    ct_data_destroy(test);
    return 0;
}
