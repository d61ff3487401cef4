/* A custom training loop: the model of a .conf (fashion_mnist.conf by
 * default) trained by hand with the step's pieces -- forward, loss,
 * backward, apply -- over the same batches `ctrain train` reads. On the
 * same seed the weights it saves are identical, bit for bit, to the ones
 * `ctrain train` saves.
 *
 *   ./custom_loop CONF OUT.h5 [section.key=value ...]
 *   ctrain train CONF --set train.save_model=ref.h5     # the same weights */
#include <ctrain.h>
#include <stdio.h>

static int fail(const char *what)
{
    fprintf(stderr, "custom_loop: %s: %s\n", what, ct_error_message());
    return ct_status_exit_code(ct_error_status()) ? ct_status_exit_code(ct_error_status()) : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: custom_loop CONF OUT.h5 [section.key=value ...]\n");
        return 2;
    }
    ct_net *net;
    if (ct_net_load(argv[1], (const char *const *)argv + 3, argc - 3, &net) != CT_OK) return fail(argv[1]);
    ct_batches *batches;
    if (ct_net_batches(net, &batches) != CT_OK) return fail("data");
    int epochs = 1;
    for (int i = 3; i < argc; i++) sscanf(argv[i], "train.epochs=%d", &epochs);
    for (int epoch = 0; epoch < epochs; epoch++) {
        if (ct_batches_epoch(batches, epoch) != CT_OK) return fail("epoch");
        double loss_sum = 0;
        int64_t seen = 0;
        for (;;) {
            const float *x, *y;
            int64_t rows;
            int end;
            if (ct_batches_next(batches, &x, &y, &rows, &end) != CT_OK) return fail("batch");
            if (end) break;
            double loss;
            if (ct_net_forward(net, x, rows, 1, NULL) != CT_OK || ct_net_loss(net, y, &loss) != CT_OK ||
                ct_net_backward(net, 0) != CT_OK || ct_net_apply_gradients(net, 0, NULL) != CT_OK)
                return fail("step");
            loss_sum += loss * (double)rows;
            seen += rows;
        }
        printf("epoch %d: loss %.4f over %lld samples\n", epoch + 1, loss_sum / (double)seen, (long long)seen);
    }
    if (ct_net_save(net, argv[2]) != CT_OK) return fail(argv[2]);
    printf("saved %s after %llu steps\n", argv[2], (unsigned long long)ct_net_step(net));
    ct_batches_destroy(batches);
    ct_net_destroy(net);
    return 0;
}
