/* Checks made before the first training step, so that a run never fails
 * (or silently does the wrong thing) after hours of work: every output
 * path is writable and none is one of the run's inputs, checkpoint file
 * templates format, monitored keys are ones the run logs, class weights
 * fit the classes, and Keras's warnings (from_logits on a softmax output,
 * a monitor never logged) are given. Rank 0 only. */
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callbacks.h"
#include "inputs.h"
#include "launcher.h"
#include "outfile.h"

#define MAX_INPUTS 64

typedef struct input_list {
    const char *v[MAX_INPUTS];
    char *owned[MAX_INPUTS];
    int n, n_owned;
} input_list;

static void add_input(input_list *l, const char *path)
{
    if (!path || l->n >= MAX_INPUTS) return;
    glob_t g;
    if (strpbrk(path, "*?[") && glob(path, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc && l->n < MAX_INPUTS && l->n_owned < MAX_INPUTS; i++) {
            char *c = strdup(g.gl_pathv[i]);
            if (!c) break;
            l->owned[l->n_owned++] = c;
            l->v[l->n++] = c;
        }
        globfree(&g);
        return;
    }
    l->v[l->n++] = path;
}

static void free_inputs(input_list *l)
{
    for (int i = 0; i < l->n_owned; i++) free(l->owned[i]);
}

/* The keys fit will log: loss, the metrics, their val_ versions when
 * there is validation data, lr when a callback sets it. */
static void expected_logs(const ct_config *cfg, const ct_model *m, int has_val, ct_logs *logs)
{
    memset(logs, 0, sizeof *logs);
    ct_logs_set(logs, "loss", 1.0);
    for (int k = 0; k < m->n_metrics; k++) ct_logs_set(logs, m->metrics[k].name, 1.0);
    if (has_val) {
        char name[64];
        int n = logs->n;
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "val_%s", logs->names[i]);
            ct_logs_set(logs, name, 1.0);
        }
    }
    if (cfg->reduce_lr_on_plateau || cfg->lr_schedule) ct_logs_set(logs, "lr", 1.0);
}

static void list_keys(const ct_logs *logs, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < logs->n && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%s", i ? ", " : "", logs->names[i]);
}

static void check_monitor(const char *section, const char *key, const ct_logs *logs, int has_val)
{
    double v;
    if (!key || ct_logs_get(logs, key, &v)) return;
    char known[512];
    list_keys(logs, known, sizeof known);
    const char *names[CT_MAX_LOGS];
    for (int i = 0; i < logs->n; i++) names[i] = logs->names[i];
    const char *near = ct_nearest_name(key, names, logs->n);
    if (strncmp(key, "val_", 4) == 0 && !has_val)
        fprintf(stderr, "ctrain: warning: [%s] monitor = %s, but the run has no validation data ([data] "
                        "validation_split or validation), so %s is never logged (logged: %s)\n", section, key, key, known);
    else
        fprintf(stderr, "ctrain: warning: [%s] monitor = %s is never logged (logged: %s)%s%s%s\n", section, key, known,
                near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
}

static ct_status check_class_weight(const ct_config *cfg, const ct_model *m)
{
    const Ctrain__TrainConfig *t = cfg->train;
    if (!t->n_class_weight) return CT_OK;
    const char *src = cfg->source ? cfg->source : "config";
    int64_t classes = m->out_dim == 1 ? 2 : m->out_dim;
    if ((int64_t)t->n_class_weight != classes)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [train] class_weight has %zu weights, the model has %lld classes (%s); give one "
                       "weight per class", src, t->n_class_weight, (long long)classes,
                       m->out_dim == 1 ? "one sigmoid unit: classes 0 and 1" : "one per output unit");
    for (size_t i = 0; i < t->n_class_weight; i++)
        if (!(t->class_weight[i] >= 0) || t->class_weight[i] > 1e30)
            return CT_FAIL(CT_ERR_CONFIG, "%s: [train] class_weight: weight %zu of class %zu is %g; expected a finite "
                           "number >= 0", src, i + 1, i, t->class_weight[i]);
    return CT_OK;
}

static void warn_from_logits(const ct_model *m)
{
    const ct_layer *out = ct_graph_output(m->graph)->layer;
    if (!m->loss.from_logits) return;
    if (out->act == CT_ACT_SOFTMAX || out->act == CT_ACT_SIGMOID)
        fprintf(stderr, "ctrain: warning: [train] from_logits = true, but the output layer '%s' ends in a %s "
                        "activation and so does not produce logits. Was this intended?\n", out->name,
                out->act == CT_ACT_SOFTMAX ? "softmax" : "sigmoid");
}

ct_status ct_preflight(const ct_config *cfg, const ct_model *m, int has_val, const char *conf, const char *resume_from)
{
    input_list in = {0};
    add_input(&in, conf);
    add_input(&in, resume_from);
    add_input(&in, cfg->model ? cfg->model->weights : NULL);
    const Ctrain__DataConfig *d = cfg->data;
    if (d) {
        const char *files[] = {d->train, d->train_labels, d->test, d->test_labels, d->validation, d->validation_labels};
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) add_input(&in, files[i]);
    }
    ct_logs logs;
    expected_logs(cfg, m, has_val, &logs);
    ct_status s = check_class_weight(cfg, m);
    if (s == CT_OK && cfg->train->save_model) s = ct_output_check("[train] save_model", cfg->train->save_model, in.v, in.n);
    if (s == CT_OK && cfg->csv_logger && cfg->csv_logger->filename)
        s = ct_output_check("[csv_logger] filename", cfg->csv_logger->filename, in.v, in.n);
    if (s == CT_OK && cfg->model_checkpoint && cfg->model_checkpoint->filepath) {
        char path[4096];
        s = ct_format_filepath(cfg->model_checkpoint->filepath, 0, 1, &logs, path, sizeof path);
        if (s == CT_OK) s = ct_output_check("[model_checkpoint] filepath", path, in.v, in.n);
    }
    if (s == CT_OK && cfg->tensorboard && cfg->tensorboard->log_dir) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/train/events", cfg->tensorboard->log_dir);
        s = ct_output_check("[tensorboard] log_dir", probe, in.v, in.n);
    }
    free_inputs(&in);
    CT_TRY(s);
    warn_from_logits(m);
    if (cfg->early_stopping) check_monitor("early_stopping", cfg->early_stopping->monitor, &logs, has_val);
    if (cfg->model_checkpoint && cfg->model_checkpoint->save_best_only)
        check_monitor("model_checkpoint", cfg->model_checkpoint->monitor, &logs, has_val);
    if (cfg->reduce_lr_on_plateau) check_monitor("reduce_lr_on_plateau", cfg->reduce_lr_on_plateau->monitor, &logs, has_val);
    return CT_OK;
}

/* --- the data of every split, before training ------------------------------ */

/* Why label v cannot be a class index of an output with `classes` units,
 * or NULL when it can. */
static const char *bad_label(float v, int64_t classes)
{
    if (!isfinite(v)) return "is not a number";
    if (v != floorf(v)) return "is not an integer";
    if (v < 0) return "is negative";
    if (v >= (float)classes) return "is out of range";
    return NULL;
}

static ct_status label_error(const char *file, const char *part, int64_t sample, float v, const char *why,
                             const ct_model *m)
{
    const ct_layer *out = ct_graph_output(m->graph)->layer;
    return CT_FAIL(CT_ERR_DATA, "%s: %ssample %lld: label %g %s; sparse_categorical_crossentropy with the %lld units of "
                   "'%s' expects class indices 0 to %lld", file, part, (long long)sample, (double)v, why,
                   (long long)m->out_dim, out->name, (long long)m->out_dim - 1);
}

static ct_status finite_error(const char *file, const char *part, int64_t sample, const char *what, int64_t k, float v)
{
    return CT_FAIL(CT_ERR_DATA, "%s: %ssample %lld: %s %lld is %s; expected finite numbers", file, part,
                   (long long)sample, what, (long long)k, isnan(v) ? "NaN" : "infinite");
}

/* One sample's values: finite inputs and targets, labels in range. */
static ct_status check_sample(const ct_model *m, const char *data, const char *file, const char *part, int64_t sample,
                              const float *x, int64_t xs, const float *y, int64_t ys, int sparse)
{
    for (int64_t k = 0; k < xs; k++)
        if (!isfinite(x[k])) return finite_error(data, part, sample, "value", k, x[k]);
    if (sparse && ys == 1) {
        const char *why = bad_label(y[0], m->out_dim);
        if (why) return label_error(file, part, sample, y[0], why, m);
    }
    for (int64_t k = 0; k < ys; k++)
        if (!isfinite(y[k])) return finite_error(file, part, sample, "target", k, y[k]);
    return CT_OK;
}

static ct_status check_set(const ct_model *m, const ct_dataset *d, const char *data, const char *file, const char *part,
                           int64_t first, const char *what)
{
    if (!d->n) return CT_OK;
    char name[4200];
    snprintf(name, sizeof name, "%s (%s)", data, what);
    CT_TRY(ct_model_check_shapes(m, &d->x_shape, &d->y_shape, 0, name));
    int sparse = m->loss.kind == CT_LOSS_SCCE;
    for (int64_t i = 0; i < d->n; i++)
        CT_TRY(check_sample(m, data, file, part, first + i, d->x + i * d->x_size, d->x_size, d->y + i * d->y_size, d->y_size,
                            sparse));
    return CT_OK;
}

/* The training source: shapes always; its labels read one by one only
 * when the source's own scan does not already prove them in range (a
 * num_classes of 0 means some label is no class index). */
static ct_status check_train(const ct_model *m, ct_stage *src, int64_t n, const char *data, const char *file)
{
    char name[4200];
    snprintf(name, sizeof name, "%s (training data)", data);
    int sparse = m->loss.kind == CT_LOSS_SCCE;
    CT_TRY(ct_model_check_shapes(m, &src->x_shape, &src->y_shape, sparse ? 0 : src->num_classes, name));
    if (!sparse || (src->num_classes > 0 && src->num_classes <= m->out_dim)) return CT_OK;
    int64_t xs = ct_shape_numel(&src->x_shape), ys = src->y_shape.rank ? ct_shape_numel(&src->y_shape) : 0;
    float *x = malloc(sizeof(float) * (size_t)xs), *y = malloc(sizeof(float) * (size_t)(ys ? ys : 1));
    ct_status s = x && y ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "%s: one sample", file);
    for (int64_t i = 0; s == CT_OK && i < n; i++) {
        ct_sample smp = {x, y, 0, 1};
        s = ct_stage_get(src, i, &smp);
        if (s == CT_OK && ys == 1) {
            const char *why = bad_label(y[0], m->out_dim);
            if (why) s = label_error(file, "", i, y[0], why, m);
        }
    }
    free(x);
    free(y);
    return s;
}

ct_status ct_preflight_data(const ct_config *cfg, const ct_model *m, ct_inputs *in)
{
    const Ctrain__DataConfig *d = cfg->data;
    const char *train = d->train_labels ? d->train_labels : d->train; /* where the targets are */
    if (in->source) CT_TRY(check_train(m, in->source, in->n_train, d->train, train));
    if (in->val.n) {
        if (d->validation)
            CT_TRY(check_set(m, &in->val, d->validation, d->validation_labels ? d->validation_labels : d->validation, "",
                             0, "validation data"));
        else CT_TRY(check_set(m, &in->val, d->train, train, "", in->n_train, "the validation_split part"));
    }
    if (in->test.n) {
        if (d->test)
            CT_TRY(check_set(m, &in->test, d->test, d->test_labels ? d->test_labels : d->test, "", 0, "test data"));
        else CT_TRY(check_set(m, &in->test, d->train, train, "the test_split part: ", 0, "the test_split part"));
    }
    return CT_OK;
}
