/* Callbacks and resume: file name templates, EarlyStopping (patience,
 * baseline, restore_best_weights), ReduceLROnPlateau (patience, cooldown,
 * min_lr), learning-rate schedules, CSVLogger's file, ModelCheckpoint
 * (save_best_only, keep), TensorBoard event files, and a resumed run that
 * ends bit-identical to the uninterrupted one. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "callbacks.h"
#include "checkpoint.h"
#include "config.h"
#include "blobs.h"
#include "ct_test.h"
#include "model.h"
#include "rng.h"
#include "tensorboard.pb-c.h"
#include "tfevents.h"

static char tmpdir[] = "/tmp/ct_cb_XXXXXX";

static ct_config *parse(const char *text)
{
    ct_config *c = NULL;
    if (ct_config_parse(text, strlen(text), "cb.conf", NULL, &c) != CT_OK)
        fprintf(stderr, "config: %s\n", ct_error_message());
    return c;
}


static void test_filepath(void)
{
    ct_logs logs = {0};
    ct_logs_set(&logs, "val_loss", 0.456789);
    ct_logs_set(&logs, "accuracy", 0.5);
    char out[256];
    CHECK(ct_format_filepath("cifar-{epoch:02d}-{val_loss:.2f}.h5", 2, 0, &logs, out, sizeof out) == CT_OK);
    CHECK(strcmp(out, "cifar-03-0.46.h5") == 0);
    CHECK(ct_format_filepath("w{epoch}_{batch:04d}_{accuracy}.h5", 0, 7, &logs, out, sizeof out) == CT_OK);
    CHECK_MSG(strcmp(out, "w1_0007_0.5.h5") == 0, "%s", out);
    CHECK(ct_format_filepath("a{{b}}.h5", 0, 0, &logs, out, sizeof out) == CT_OK);
    CHECK(strcmp(out, "a{b}.h5") == 0);
    CHECK(ct_format_filepath("m-{val_acc:.2f}.h5", 0, 0, &logs, out, sizeof out) == CT_ERR_CONFIG);
    CHECK_STR_CONTAINS(ct_error_message(), "val_acc");
    CHECK(ct_format_filepath("m-{epoch:x}.h5", 0, 0, &logs, out, sizeof out) == CT_ERR_CONFIG);
    CHECK(ct_format_filepath("m-{epoch.h5", 0, 0, &logs, out, sizeof out) == CT_ERR_CONFIG);
}

static const char model_text[] =
    "[model]\ninput = 4\n[h]\ntype = dense\nunits = 8\nactivation = relu\n"
    "[out]\ntype = dense\nunits = 3\nactivation = softmax\n"
    "[train]\noptimizer = adam\nlearning_rate = 0.01\nloss = sparse_categorical_crossentropy\nmetrics = accuracy\n"
    "batch_size = 10\nepochs = 4\nseed = 9\n";

/* Feeds epoch_end with val_loss values and reports the epoch it stopped at. */
static int drive(ct_callbacks *cb, ct_model *m, const double *vals, int n, double *lrs)
{
    ct_fit_hooks h = ct_callbacks_hooks(cb, NULL);
    for (int e = 0; e < n; e++) {
        CHECK(h.epoch_begin(h.ctx, e, n, 1) == CT_OK);
        ct_logs logs = {0};
        ct_logs_set(&logs, "loss", 1.0);
        ct_logs_set(&logs, "val_loss", vals[e]);
        m->graph->values[0] = (float)e; /* marks which epoch's weights these are */
        int stop = 0;
        CHECK(h.epoch_end(h.ctx, e, &logs, 0.1, &stop) == CT_OK);
        if (lrs) lrs[e] = m->lr;
        if (stop) return e;
    }
    return -1;
}

static void test_early_stopping(void)
{
    char text[2048];
    snprintf(text, sizeof text, "%s[early_stopping]\npatience = 2\nrestore_best_weights = true\n", model_text);
    ct_config *c = parse(text);
    ct_model *m = NULL;
    ct_callbacks *cb = NULL;
    CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
    if (!cb) return;
    /* Best at epoch 1 (0.5); epochs 2 and 3 do not improve: stop at 3. */
    double v[] = {0.9, 0.5, 0.6, 0.55, 0.4, 0.3};
    CHECK(drive(cb, m, v, 6, NULL) == 3);
    CHECK(m->graph->values[0] == 1.0f); /* the weights of epoch 1 are back */
    CHECK(ct_callbacks_state(cb)->es_best_epoch == 1);
    ct_callbacks_destroy(cb);
    ct_model_destroy(m);
    ct_config_free(c);
    /* min_delta: an improvement smaller than it does not count. */
    snprintf(text, sizeof text, "%s[early_stopping]\npatience = 1\nmin_delta = 0.1\n", model_text);
    c = parse(text);
    CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
    double v2[] = {1.0, 0.95, 0.5};
    CHECK(drive(cb, m, v2, 3, NULL) == 1);
    ct_callbacks_destroy(cb);
    ct_model_destroy(m);
    ct_config_free(c);
    /* mode max on accuracy-like names is automatic; a baseline holds waits. */
    snprintf(text, sizeof text, "%s[early_stopping]\nmonitor = val_loss\nmode = max\npatience = 1\nbaseline = 0.8\n", model_text);
    c = parse(text);
    CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
    double v3[] = {0.5, 0.6, 0.7};
    CHECK(drive(cb, m, v3, 3, NULL) == 1); /* improving, but never past the baseline */
    ct_callbacks_destroy(cb);
    ct_model_destroy(m);
    ct_config_free(c);
}

static void test_plateau_and_schedules(void)
{
    char text[2048];
    snprintf(text, sizeof text, "%s[reduce_lr_on_plateau]\npatience = 2\nfactor = 0.5\ncooldown = 1\nmin_lr = 0.002\n",
             model_text);
    ct_config *c = parse(text);
    ct_model *m = NULL;
    ct_callbacks *cb = NULL;
    CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
    if (!cb) return;
    double v[] = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}, lr[8];
    drive(cb, m, v, 8, lr);
    /* Keras 2.11: e0 best; e1 wait 1; e2 wait 2 -> 0.005, cooldown 1;
     * e3 the cooldown ends (wait 0), then counts: wait 1; e4 wait 2 ->
     * 0.0025; e5 wait 1; e6 -> max(0.00125, min_lr 0.002); e7 wait 1. */
    double want[] = {0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.002, 0.002};
    for (int i = 0; i < 8; i++) CHECK_NEAR(lr[i], want[i], 1e-12);
    ct_callbacks_destroy(cb);
    ct_model_destroy(m);
    ct_config_free(c);

    struct { const char *sec; double want[5]; } cases[] = {
        {"[lr_schedule]\nschedule = step\nstep_size = 2\ngamma = 0.5\n", {0.01, 0.01, 0.005, 0.005, 0.0025}},
        {"[lr_schedule]\nschedule = exponential\ndecay_rate = 0.5\ndecay_epochs = 2\n",
         {0.01, 0.01 * 0.70710678118654757, 0.005, 0.005 * 0.70710678118654757, 0.0025}},
        {"[lr_schedule]\nschedule = cosine\nfirst_decay_epochs = 4\n", {0.01, 0.01 * 0.85355339059327373, 0.005, 0.01 * 0.14644660940672627, 0}},
        {"[lr_schedule]\nschedule = cosine_restarts\nfirst_decay_epochs = 2\nt_mul = 1\nm_mul = 0.5\n", {0.01, 0.005, 0.005, 0.0025, 0.0025}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        snprintf(text, sizeof text, "%s%s", model_text, cases[k].sec);
        c = parse(text);
        CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
        if (!cb) continue;
        double lrs[5], vals[5] = {1, 1, 1, 1, 1};
        drive(cb, m, vals, 5, lrs);
        for (int i = 0; i < 5; i++) CHECK_MSG(fabs(lrs[i] - cases[k].want[i]) < 1e-12, "case %zu epoch %d: %g", k, i, lrs[i]);
        ct_callbacks_destroy(cb);
        ct_model_destroy(m);
        ct_config_free(c);
    }
    /* Both at once is refused. */
    snprintf(text, sizeof text, "%s[lr_schedule]\nschedule = step\n[reduce_lr_on_plateau]\n", model_text);
    c = parse(text);
    CHECK(c && ct_model_create(c, &m) == CT_OK);
    CHECK(ct_callbacks_create(c, m, NULL, 0, &cb) == CT_ERR_CONFIG);
    ct_model_destroy(m);
    ct_config_free(c);
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

typedef struct tb_seen {
    int events, loss, acc, val_loss, lr;
} tb_seen;

static int tb_count(void *ctx, const uint8_t *p, size_t n)
{
    tb_seen *s = ctx;
    Tensorboard__Event *ev = tensorboard__event__unpack(NULL, n, p);
    if (!ev) return 1;
    s->events++;
    if (ev->what_case == TENSORBOARD__EVENT__WHAT_SUMMARY)
        for (size_t i = 0; i < ev->summary->n_value; i++) {
            const char *t = ev->summary->value[i]->tag;
            s->loss += strcmp(t, "epoch_loss") == 0;
            s->acc += strcmp(t, "epoch_accuracy") == 0;
            s->lr += strcmp(t, "epoch_learning_rate") == 0;
        }
    tensorboard__event__free_unpacked(ev, NULL);
    return 0;
}

static void read_events(const char *dir, tb_seen *s)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, "tfevents")) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            CHECK(ct_tfevents_read(p, tb_count, s) == CT_OK);
        }
    if (d) closedir(d);
}

/* Train `epochs` with the given extra sections; returns the model. */
static ct_model *train(const char *extra, int epochs, int resume, ct_dataset *tr, ct_dataset *va, ct_config **cfg_out)
{
    char text[4096];
    snprintf(text, sizeof text, "%s%s", model_text, extra);
    ct_config *c = parse(text);
    ct_model *m = NULL;
    ct_callbacks *cb = NULL;
    if (!c || ct_model_create(c, &m) != CT_OK || ct_callbacks_create(c, m, NULL, 0, &cb) != CT_OK) {
        fprintf(stderr, "train: %s\n", ct_error_message());
        return NULL;
    }
    if (resume) {
        char path[1024];
        CHECK(ct_find_latest_checkpoint(c, path, sizeof path) == CT_OK);
        CHECK(path[0] != 0);
        if (path[0]) CHECK(ct_checkpoint_resume(path, m, ct_callbacks_state(cb)) == CT_OK);
    }
    CHECK(ct_callbacks_open_files(cb, resume) == CT_OK);
    ct_fit_hooks h = ct_callbacks_hooks(cb, NULL);
    ct_status s = ct_model_fit(m, tr, va, epochs, 1, 1, &h);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    ct_callbacks_destroy(cb);
    *cfg_out = c;
    return m;
}

static void test_files_and_resume(void)
{
    ct_dataset tr, va;
    make_blobs(&tr, 95, 1, 0.8f, 1.0f);
    make_blobs(&va, 30, 2, 0.8f, 1.0f);
    char extra[2048];
    snprintf(extra, sizeof extra,
             "[model_checkpoint]\nfilepath = %s/ck-{epoch:02d}.h5\n"
             "[csv_logger]\nfilename = %s/log.csv\n[tensorboard]\nlog_dir = %s/tb\nhistogram_freq = 1\n",
             tmpdir, tmpdir, tmpdir);
    ct_config *c_full, *c_a, *c_b;
    ct_model *full = train(extra, 4, 0, &tr, &va, &c_full);
    CHECK(full != NULL);
    if (!full) return;
    CHECK(count_files(tmpdir, "ck-") == 4);
    /* CSV: header with the sorted keys, \r\n line ends, one row per epoch. */
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/log.csv", tmpdir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (f) {
        CHECK(fgets(line, sizeof line, f) && strcmp(line, "epoch,accuracy,loss,val_accuracy,val_loss\r\n") == 0);
        int rows = 0;
        while (fgets(line, sizeof line, f)) rows += line[0] == '0' + rows && strstr(line, "\r\n") != NULL;
        CHECK(rows == 4);
        fclose(f);
    }
    tb_seen train_ev = {0}, val_ev = {0};
    snprintf(path, sizeof path, "%s/tb/train", tmpdir);
    read_events(path, &train_ev);
    snprintf(path, sizeof path, "%s/tb/validation", tmpdir);
    read_events(path, &val_ev);
    CHECK(train_ev.loss == 4 && train_ev.acc == 4 && train_ev.lr == 4);
    CHECK(val_ev.loss == 4 && val_ev.acc == 4);

    /* Resume: remove the checkpoints of epochs 3 and 4, resume from 2. */
    snprintf(path, sizeof path, "%s/ck-03.h5", tmpdir);
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof path, "%s/ck-04.h5", tmpdir);
    CHECK(unlink(path) == 0);
    ct_model *resumed = train(extra, 4, 1, &tr, &va, &c_a);
    CHECK(resumed != NULL);
    if (resumed) {
        CHECK(resumed->step == full->step);
        CHECK_MSG(memcmp(resumed->graph->values, full->graph->values, sizeof(float) * (size_t)full->graph->n_values) == 0,
                  "a resumed run differs from the uninterrupted one");
        CHECK(memcmp(resumed->opt->slots, full->opt->slots,
                     sizeof(float) * (size_t)(full->opt->n * full->opt->n_slots)) == 0);
    }
    /* Mid-epoch checkpoints every 4 batches, keep the last 2; resume inside an epoch. */
    snprintf(extra, sizeof extra, "[model_checkpoint]\nfilepath = %s/mid-{epoch}-{batch}.h5\nsave_freq = 4\nkeep = 2\n", tmpdir);
    ct_model *mid = train(extra, 3, 0, &tr, &va, &c_b);
    CHECK(count_files(tmpdir, "mid-") == 2);
    /* 30 batches in 3 epochs: the newest is after batch 28 = epoch 3, batch 8. */
    snprintf(path, sizeof path, "%s/mid-3-8.h5", tmpdir);
    CHECK(access(path, F_OK) == 0);
    int64_t e, b, s;
    CHECK(ct_checkpoint_position(path, &e, &b, &s) == CT_OK && e == 2 && b == 8 && s == 28);
    ct_config *c_c;
    ct_model *mid2 = train(extra, 3, 1, &tr, &va, &c_c);
    if (mid && mid2)
        CHECK(memcmp(mid->graph->values, mid2->graph->values, sizeof(float) * (size_t)mid->graph->n_values) == 0);
    ct_model_destroy(mid2);
    ct_config_free(c_c);
    ct_model_destroy(mid);
    ct_config_free(c_b);
    ct_model_destroy(resumed);
    ct_config_free(c_a);
    ct_model_destroy(full);
    ct_config_free(c_full);
    ct_dataset_free(&tr);
    ct_dataset_free(&va);
}

static void test_save_best_only(void)
{
    char text[2048];
    snprintf(text, sizeof text, "%s[model_checkpoint]\nfilepath = %s/best-{epoch}.h5\nsave_best_only = true\n", model_text,
             tmpdir);
    ct_config *c = parse(text);
    ct_model *m = NULL;
    ct_callbacks *cb = NULL;
    CHECK(c && ct_model_create(c, &m) == CT_OK && ct_callbacks_create(c, m, NULL, 0, &cb) == CT_OK);
    if (!cb) return;
    double v[] = {0.9, 0.8, 0.85, 0.7};
    drive(cb, m, v, 4, NULL);
    char p[1024];
    int want[] = {1, 1, 0, 1};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/best-%d.h5", tmpdir, i + 1);
        CHECK_MSG((access(p, F_OK) == 0) == want[i], "best-%d.h5", i + 1);
    }
    ct_callbacks_destroy(cb);
    ct_model_destroy(m);
    ct_config_free(c);
}

static void cleanup(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void)
{
    ct_register_builtins();
    CHECK(mkdtemp(tmpdir) != NULL);
    test_filepath();
    test_early_stopping();
    test_plateau_and_schedules();
    test_save_best_only();
    test_files_and_resume();
    cleanup(tmpdir);
    return ct_test_report("test_callbacks");
}
