/* DCGAN on Fashion-MNIST with the C API: TensorFlow's DCGAN tutorial
 * architecture (generator Dense 7x7x256 - BatchNormalization - LeakyReLU -
 * three Conv2DTranspose 5x5 ending in tanh; discriminator two Conv2D 5x5
 * stride 2 with LeakyReLU and Dropout 0.3, then Dense 1; binary
 * cross-entropy from logits; Adam 1e-4 for both), alternating a
 * discriminator step and a generator step per batch, data-parallel under
 * mpirun, a PNG grid of 16 samples after each epoch.
 *
 *   ./dcgan [--epochs N] [--samples N] [--batch N] [--out DIR] [--dump FILE.idx] [--data DIR]
 *   mpirun -np 2 ./dcgan ...
 *
 * Three nets share weights by name: D (the discriminator), G (the
 * generator) and GD (G followed by D). The D step trains D on real images
 * (label 1) and G's fakes (label 0), gradients accumulated over the two
 * halves; GD then receives D's weights. The G step trains GD to make D say
 * 1 and applies the optimizer to the generator's layers only (D's stay as
 * they are); G then receives the generator's weights. --dump writes 1000
 * generated images as an IDX file (for the quality check with ctrain's
 * Fashion-MNIST CNN). LeakyReLU's slope is ctrain's 0.2 (Keras's layer
 * default is 0.3). */
#include <ctrain.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOISE 100

static const char *gen_layers =
    "[g_dense]\ntype = dense\nunits = 12544\nuse_bias = false\n\n"
    "[g_bn1]\ntype = batch_normalization\n\n[g_act1]\ntype = activation\nactivation = leaky_relu\n\n"
    "[g_reshape]\ntype = reshape\ntarget_shape = 7, 7, 256\n\n"
    "[g_deconv1]\ntype = conv2d_transpose\nfilters = 128\nkernel_size = 5\nstrides = 1\npadding = same\nuse_bias = false\n\n"
    "[g_bn2]\ntype = batch_normalization\n\n[g_act2]\ntype = activation\nactivation = leaky_relu\n\n"
    "[g_deconv2]\ntype = conv2d_transpose\nfilters = 64\nkernel_size = 5\nstrides = 2\npadding = same\nuse_bias = false\n\n"
    "[g_bn3]\ntype = batch_normalization\n\n[g_act3]\ntype = activation\nactivation = leaky_relu\n\n"
    "[g_deconv3]\ntype = conv2d_transpose\nfilters = 1\nkernel_size = 5\nstrides = 2\npadding = same\nuse_bias = false\n"
    "activation = tanh\n\n";
static const char *disc_layers =
    "[d_conv1]\ntype = conv2d\nfilters = 64\nkernel_size = 5\nstrides = 2\npadding = same\nactivation = leaky_relu\n\n"
    "[d_drop1]\ntype = dropout\nrate = 0.3\n\n"
    "[d_conv2]\ntype = conv2d\nfilters = 128\nkernel_size = 5\nstrides = 2\npadding = same\nactivation = leaky_relu\n\n"
    "[d_drop2]\ntype = dropout\nrate = 0.3\n\n[d_flatten]\ntype = flatten\n\n[d_out]\ntype = dense\nunits = 1\n\n";

static const char *const gen_names[] = {"g_dense", "g_bn1", "g_deconv1", "g_bn2", "g_deconv2", "g_bn3", "g_deconv3"};

static int fail(const char *what)
{
    fprintf(stderr, "dcgan: %s: %s\n", what, ct_error_message());
    return 1;
}

static ct_net *make(const char *input, const char *a, const char *b, const char *loss, int64_t batch, const char *name)
{
    char *text = malloc(16384);
    snprintf(text, 16384,
             "[model]\ninput = %s\n\n%s%s[train]\noptimizer = adam\nlearning_rate = 0.0001\nloss = %s\n"
             "from_logits = true\nbatch_size = %lld\nseed = 7\n",
             input, a, b ? b : "", loss, (long long)batch);
    ct_net *n = NULL;
    if (ct_net_from_text(text, name, &n) != CT_OK) fprintf(stderr, "dcgan: %s: %s\n", name, ct_error_message());
    free(text);
    return n;
}

/* dst's weights named like src's get src's values */
static void copy_weights(ct_net *dst, ct_net *src, const char *prefix)
{
    for (int i = 0; i < ct_net_param_count(src); i++) {
        const char *name = ct_net_param_name(src, i);
        if (strncmp(name, prefix, strlen(prefix)) != 0) continue;
        int j = ct_net_param_find(dst, name);
        if (j >= 0) memcpy(ct_net_param_value(dst, j), ct_net_param_value(src, i), sizeof(float) * ct_net_param_size(src, i));
    }
}

/* ---- a PNG writer: 8-bit grayscale, deflate "stored" blocks ------------------------- */
static uint32_t crc_table[256];

static uint32_t crc(uint32_t c, const unsigned char *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t v = i;
            for (int k = 0; k < 8; k++) v = v & 1 ? 0xEDB88320u ^ (v >> 1) : v >> 1;
            crc_table[i] = v;
        }
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char h[8];
    put32(h, n);
    memcpy(h + 4, type, 4);
    fwrite(h, 1, 8, f);
    if (n) fwrite(data, 1, n, f);
    uint32_t c = crc(crc(0xffffffffu, h + 4, 4), data, n) ^ 0xffffffffu;
    put32(h, c);
    fwrite(h, 1, 4, f);
}

static int write_png(const char *path, const unsigned char *pix, int w, int h)
{
    size_t raw_n = (size_t)h * (w + 1), blocks = (raw_n + 65534) / 65535;
    unsigned char *raw = malloc(raw_n), *z = malloc(2 + raw_n + 5 * blocks + 4);
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (w + 1)] = 0; /* filter: none */
        memcpy(raw + (size_t)y * (w + 1) + 1, pix + (size_t)y * w, (size_t)w);
    }
    size_t k = 0;
    z[k++] = 0x78, z[k++] = 0x01;
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_n; i++) a = (a + raw[i]) % 65521, b = (b + a) % 65521;
    for (size_t off = 0; off < raw_n; off += 65535) {
        size_t len = raw_n - off < 65535 ? raw_n - off : 65535;
        z[k++] = off + len == raw_n;
        z[k++] = (unsigned char)len, z[k++] = (unsigned char)(len >> 8);
        z[k++] = (unsigned char)~len, z[k++] = (unsigned char)(~len >> 8);
        memcpy(z + k, raw + off, len);
        k += len;
    }
    put32(z + k, (b << 16) | a);
    k += 4;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(raw);
        free(z);
        return -1;
    }
    static const unsigned char sig[8] = {137, 'P', 'N', 'G', 13, 10, 26, 10};
    unsigned char ihdr[13];
    put32(ihdr, (uint32_t)w);
    put32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8, ihdr[9] = 0, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
    fwrite(sig, 1, 8, f);
    chunk(f, "IHDR", ihdr, 13);
    chunk(f, "IDAT", z, (uint32_t)k);
    chunk(f, "IEND", NULL, 0);
    int bad = fclose(f);
    free(raw);
    free(z);
    return bad ? -1 : 0;
}

/* 16 samples of G (inference mode) as a 4x4 grid, 2x enlarged */
static int save_grid(ct_net *g, const float *noise, const char *path)
{
    float img[16 * 784];
    if (ct_net_predict(g, noise, 16, img) != CT_OK) return -1;
    enum { S = 2, W = 4 * 28 * S };
    static unsigned char pix[W * W];
    for (int i = 0; i < 16; i++)
        for (int y = 0; y < 28 * S; y++)
            for (int x = 0; x < 28 * S; x++) {
                float v = img[i * 784 + (y / S) * 28 + x / S] * 127.5f + 127.5f;
                pix[((i / 4) * 28 * S + y) * W + (i % 4) * 28 * S + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    return write_png(path, pix, W, W);
}

/* 1000 samples as an IDX file of uint8 28x28 images (what ctrain predict reads) */
static int dump_idx(ct_net *g, const char *path)
{
    int64_t d[2] = {1000, NOISE};
    ct_eager *z = ct_eager_random_normal(2, d, 0, 1, 99, 0);
    float *img = malloc(sizeof(float) * 1000 * 784);
    FILE *f = fopen(path, "wb");
    int rc = !z || !img || !f || ct_net_predict(g, ct_eager_data(z), 1000, img) != CT_OK;
    unsigned char h[16] = {0, 0, 8, 3};
    put32(h + 4, 1000), put32(h + 8, 28), put32(h + 12, 28);
    if (!rc) {
        fwrite(h, 1, 16, f);
        for (int i = 0; i < 1000 * 784; i++) {
            float v = img[i] * 127.5f + 127.5f;
            fputc(v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5f), f);
        }
    }
    if (f && fclose(f)) rc = 1;
    free(img);
    ct_eager_free(z);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    int epochs = 1, rank, world;
    int64_t samples = 60000, batch = 256;
    const char *out = ".", *dump = NULL, *dir = "/usr/share/datasets/fashion-mnist";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--epochs")) epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--samples")) samples = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--dump")) dump = argv[i + 1];
        else if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
    }
    if (ct_mpi_init(&argc, &argv, &rank, &world) != CT_OK) return fail("mpi");
    char path[1024];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    ct_data *train;
    if (ct_data_load("idx", path, NULL, &train) != CT_OK) return fail(path);
    if (samples > ct_data_count(train)) samples = ct_data_count(train);
    int64_t lo = batch * rank / world, hi = batch * (rank + 1) / world, local = hi - lo;
    ct_net *g = make("100", gen_layers, NULL, "mse", batch, "generator");
    ct_net *d = make("28, 28, 1", disc_layers, NULL, "binary_crossentropy", batch, "discriminator");
    ct_net *gd = make("100", gen_layers, disc_layers, "binary_crossentropy", batch, "generator+discriminator");
    if (!g || !d || !gd) return 1;
    copy_weights(gd, d, "d_");
    copy_weights(gd, g, "g_");
    if (ct_net_data_parallel(g) != CT_OK || ct_net_data_parallel(d) != CT_OK || ct_net_data_parallel(gd) != CT_OK)
        return fail("data parallel");
    float *real = malloc(sizeof(float) * (size_t)(local * 784)), *ones = malloc(sizeof(float) * (size_t)local),
          *zeros = calloc((size_t)local, sizeof(float));
    for (int64_t i = 0; i < local; i++) ones[i] = 1;
    int64_t nd[2] = {16, NOISE};
    ct_eager *grid_noise = ct_eager_random_normal(2, nd, 0, 1, 1234, 0);
    int64_t steps = samples / batch;
    for (int epoch = 0; epoch < epochs; epoch++) {
        double dsum = 0, gsum = 0;
        for (int64_t s = 0; s < steps; s++) {
            ct_scope_begin();
            uint64_t step = (uint64_t)epoch * (uint64_t)steps + (uint64_t)s;
            /* this rank's rows of the global batch: real images in [-1, 1], noise */
            const float *px = ct_data_x(train) + (s * batch + lo) * 784;
            for (int64_t i = 0; i < local * 784; i++) real[i] = px[i] / 127.5f - 1;
            int64_t zd[2] = {batch, NOISE}, zb[2] = {lo, 0}, zs[2] = {local, NOISE};
            ct_eager *z = ct_eager_slice(ct_eager_random_normal(2, zd, 0, 1, 7, step + 1), zb, zs);
            const float *fake;
            double lr, lf, lg;
            /* discriminator: real -> 1, fake -> 0, gradients of both halves summed */
            if (ct_net_forward(g, ct_eager_data(z), local, 1, &fake) != CT_OK ||
                ct_net_forward(d, real, local, 1, NULL) != CT_OK || ct_net_loss(d, ones, &lr) != CT_OK ||
                ct_net_backward(d, 0) != CT_OK || ct_net_forward(d, fake, local, 1, NULL) != CT_OK ||
                ct_net_loss(d, zeros, &lf) != CT_OK || ct_net_backward(d, 1) != CT_OK ||
                ct_net_allreduce_grads(d) != CT_OK || ct_net_apply_gradients(d, 0, NULL) != CT_OK)
                return fail("discriminator step");
            copy_weights(gd, d, "d_");
            /* generator: make D say 1; only the generator's layers move */
            if (ct_net_forward(gd, ct_eager_data(z), local, 1, NULL) != CT_OK || ct_net_loss(gd, ones, &lg) != CT_OK ||
                ct_net_backward(gd, 0) != CT_OK || ct_net_allreduce_grads(gd) != CT_OK ||
                ct_net_apply_gradients(gd, (int)(sizeof gen_names / sizeof gen_names[0]), gen_names) != CT_OK)
                return fail("generator step");
            copy_weights(g, gd, "g_");
            dsum += lr + lf;
            gsum += lg;
            ct_scope_end();
        }
        if (rank == 0) {
            snprintf(path, sizeof path, "%s/dcgan_epoch_%03d.png", out, epoch + 1);
            if (save_grid(g, ct_eager_data(grid_noise), path) != 0) return fail(path);
            printf("epoch %d: discriminator loss %.4f, generator loss %.4f, %s\n", epoch + 1, dsum / (double)steps,
                   gsum / (double)steps, path);
            fflush(stdout);
        }
    }
    if (dump && rank == 0 && dump_idx(g, dump) != 0) return fail(dump);
    free(real);
    free(ones);
    free(zeros);
    ct_eager_free(grid_noise);
    ct_net_destroy(g);
    ct_net_destroy(d);
    ct_net_destroy(gd);
    ct_data_destroy(train);
    ct_mpi_finalize();
    return 0;
}
