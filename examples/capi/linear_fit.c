/* TensorFlow's "custom training basics" with ctrain's tape: fit
 * y = W x + b to points drawn around y = 3x + 2, by gradient descent on
 * the mean squared error, and print the learned W and b.
 *
 *   cc linear_fit.c $(pkg-config --cflags --libs ctrain) -o linear_fit && ./linear_fit */
#include <ctrain.h>
#include <stdio.h>

#define N 1000

static int fail(const char *what)
{
    fprintf(stderr, "linear_fit: %s: %s\n", what, ct_error_message());
    return 1;
}

int main(void)
{
    int64_t n[1] = {N};
    /* the data: x ~ N(0, 1), y = 3x + 2 + noise, noise ~ N(0, 0.5) */
    ct_eager *x = ct_eager_random_normal(1, n, 0, 1, 42, 0);
    ct_eager *noise = ct_eager_random_normal(1, n, 0, 0.5f, 42, 1);
    ct_eager *y = ct_eager_add(ct_eager_add_scalar(ct_eager_scale(x, 3), 2), noise);
    if (!y) return fail("data");
    /* the model, started where the tutorial starts it */
    ct_eager *w = ct_eager_scalar(5), *b = ct_eager_scalar(0);
    const float lr = 0.1f;
    for (int epoch = 0; epoch < 100; epoch++) {
        ct_scope_begin(); /* everything this step creates is freed at ct_scope_end */
        ct_tape *tape;
        if (ct_tape_create(&tape) != CT_OK) return fail("tape");
        ct_eager *pred = ct_eager_add(ct_eager_mul(w, x), b);
        ct_eager *loss = ct_eager_mean(ct_eager_square(ct_eager_sub(pred, y)), 0, NULL, 0);
        ct_eager *params[2] = {w, b}, *grads[2];
        if (!loss || ct_tape_gradient(tape, loss, 2, params, grads) != CT_OK) return fail("step");
        ct_eager_axpy(w, -lr, grads[0]);
        ct_eager_axpy(b, -lr, grads[1]);
        if (epoch % 20 == 0 || epoch == 99)
            printf("epoch %3d: W = %.4f, b = %.4f, loss = %.5f\n", epoch, ct_eager_item(w, 0), ct_eager_item(b, 0),
                   ct_eager_item(loss, 0));
        ct_tape_destroy(tape);
        ct_scope_end();
    }
    printf("learned W = %.4f (true 3), b = %.4f (true 2)\n", ct_eager_item(w, 0), ct_eager_item(b, 0));
    ct_eager_free(w);
    ct_eager_free(b);
    ct_eager_free(x);
    ct_eager_free(noise);
    ct_eager_free(y);
    return 0;
}
