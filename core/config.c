/* The .conf reader: INI text in, a validated ctrain.Config out.
 *
 * Keys are filled generically through protobuf-c's descriptors: a key is
 * looked up by field name and parsed by the field's type, so a field added
 * to core/ctrain.proto is a new key with no change here. What the schema
 * cannot say -- which names a string may take, numeric ranges, which keys
 * are paths, which keys a layer type accepts -- lives in the data tables
 * below. The rules run while reading, where the line of the key is known,
 * and again in ct_config_validate, for --set overrides and for configs
 * that arrive as packed bytes.
 *
 * Memory follows protobuf-c's conventions (malloc'd strings and arrays,
 * string defaults pointing at the descriptor's default_value), so
 * protobuf_c_message_free_unpacked frees a config however it was built. */
#include "config.h"
#include "capi_loss.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "activation.h"
#include "init.h"
#include "layer.h"
#include "loss.h"
#include "metrics.h"
#include "optim.h"
#include "plugin.h"
#include "regularizer.h"

#define QUOTE_MAX 60                 /* bytes of a user's text shown in a message */
#define QUOTE_BUF (QUOTE_MAX + 4)
#define LIST_BUF 720                 /* "allowed: a, b, ..." part of a message */
#define NEAREST_MAX 64               /* longer words get no suggestion */
#define CONF_MAX_BYTES (16u << 20)   /* a bigger file is not a config */

/* ---- data tables ------------------------------------------------------ */

/* Sections that CLI.md reserves, whether or not the schema has them yet:
 * naming one the schema lacks must not make it a layer without a type.
 * (The schema's own sections are found through its descriptor.) */
static const char *const planned_sections[] = {
    "distributed", "early_stopping", "model_checkpoint", "tensorboard",
    "csv_logger", "reduce_lr_on_plateau", "lr_schedule", "terminate_on_nan",
};

/* Rules name messages by type ("TrainConfig"), so a rule for a message
 * the schema lacks is inert rather than a build error. */

/* Fields the file may not set, and why. */
static const struct reserved_key {
    const char *msg;
    const char *key, *why;
} reserved_keys[] = {
    {"LayerConfig", "name", "the section header names the layer"},
    {"LayerConfig", "line", "it is the line of the section header"},
    {"LayerConfig", "extra", "it holds the layer's other keys"},
    {"Config", "source", "it is the path of the .conf file"},
};

/* String keys holding paths: relative ones resolve against the directory
 * of the .conf file. Sections the schema lacks yet are harmless here. */
static const struct path_key {
    const char *section, *key;
} path_keys[] = {
    {"data", "train"},           {"data", "train_labels"},
    {"data", "test"},            {"data", "test_labels"},
    {"data", "validation"},      {"data", "validation_labels"},
    {"train", "save_model"},
    {"model_checkpoint", "filepath"}, {"tensorboard", "log_dir"},
    {"csv_logger", "filename"},
    {"plugins", "load"},
    {"boosted_trees", "checkpoint"},
};

static const char *const data_formats[] = {"idx", "csv", "cifar10", "cifar100", "npy", "hdf5", "image_folder", "text", "text_lm"};
static const char *const text_splits[] = {"whitespace", "character"};
static const char *const text_standardizes[] = {"lower_and_strip_punctuation", "lower", "none"};
static const char *const fill_modes[] = {"nearest", "constant", "reflect", "wrap"};
static const char *const interpolations[] = {"bilinear", "nearest"};
static const char *const color_modes[] = {"rgb", "grayscale"};
static const char *const monitor_modes[] = {"auto", "min", "max"};
static const char *const lr_schedules[] = {"step", "exponential", "cosine", "cosine_restarts",
                                           "constant"};
static const char *const allreduce_algos[] = {"ring", "mpi"};
static const char *const lr_scalings[] = {"none", "linear"};
/* [model] kind and the [boosted_trees] names (core/trees.h). */
static const char *const model_kinds[] = {"neural_network", "boosted_trees"};
static const char *const tree_losses[] = {"log_loss", "binary_crossentropy", "categorical_crossentropy", "squared_error"};
static const char *const tree_early_stopping[] = {"auto", "true", "false"};
static const char *const tree_growth[] = {"leafwise", "depthwise"};
static const char *const tree_scoring[] = {"loss"};

typedef ct_status (*name_check)(const char *value);
static ct_status check_activation(const char *v);
static ct_status check_initializer(const char *v);
static ct_status check_regularizer(const char *v);
static ct_status check_optimizer(const char *v);
static ct_status check_loss(const char *v);
static ct_status check_metric(const char *v);
static ct_status check_loss_weight(const char *v);
static int is_decimal(const char *s, int real);
static double strtod_c(const char *s);
static ct_status check_data_format(const char *v);
static ct_status check_mode(const char *v);
static ct_status check_schedule(const char *v);
static ct_status check_freq(const char *v);
static ct_status check_allreduce(const char *v);
static ct_status check_lr_scaling(const char *v);
static ct_status check_fill_mode(const char *v);
static ct_status check_interpolation(const char *v);
static ct_status check_color_mode(const char *v);
static ct_status check_model_kind(const char *v);
static ct_status check_tree_loss(const char *v);
static ct_status check_tree_early_stopping(const char *v);
static ct_status check_tree_growth(const char *v);
static ct_status check_tree_scoring(const char *v);
static ct_status check_text_split(const char *v);
static ct_status check_text_standardize(const char *v);

/* String values that must be a known name. "*_x" matches any key ending
 * in "_x", so a new kernel/bias/activity key is checked too. */
static const struct name_rule {
    const char *msg;
    const char *key;
    name_check check;
} name_rules[] = {
    {"LayerConfig", "activation", check_activation},
    {"LayerConfig", "*_initializer", check_initializer},
    {"LayerConfig", "*_regularizer", check_regularizer},
    {"TrainConfig", "optimizer", check_optimizer},
    {"TrainConfig", "loss", check_loss},
    {"TrainConfig", "metrics", check_metric},
    {"TrainConfig", "loss_weights", check_loss_weight},
    {"DataConfig", "format", check_data_format},
    {"EarlyStoppingConfig", "mode", check_mode},
    {"ModelCheckpointConfig", "mode", check_mode},
    {"ReduceLROnPlateauConfig", "mode", check_mode},
    {"ModelCheckpointConfig", "save_freq", check_freq},
    {"TensorBoardConfig", "update_freq", check_freq},
    {"LRScheduleConfig", "schedule", check_schedule},
    {"DistributedConfig", "allreduce", check_allreduce},
    {"DistributedConfig", "lr_scaling", check_lr_scaling},
    {"AugmentConfig", "fill_mode", check_fill_mode},
    {"AugmentConfig", "interpolation", check_interpolation},
    {"DataConfig", "color_mode", check_color_mode},
    {"ModelConfig", "kind", check_model_kind},
    {"BoostedTreesConfig", "loss", check_tree_loss},
    {"BoostedTreesConfig", "early_stopping", check_tree_early_stopping},
    {"BoostedTreesConfig", "grow_policy", check_tree_growth},
    {"BoostedTreesConfig", "scoring", check_tree_scoring},
    {"DataConfig", "split", check_text_split},
    {"DataConfig", "text_standardize", check_text_standardize},
};

/* Numeric keys with bounds (every element of a repeated key); max_n > 0
 * caps the number of elements. */
static const struct range_rule {
    const char *msg;
    const char *key;
    double lo, hi;
    int lo_open, hi_open; /* 1: the bound itself is excluded */
    size_t max_n;
} range_rules[] = {
    {"ModelConfig", "input", 1, INFINITY, 0, 1, CT_MAX_DIMS},
    {"LayerConfig", "target_shape", 1, INFINITY, 0, 1, CT_MAX_DIMS},
    {"LayerConfig", "units", 1, INFINITY, 0, 1, 0},
    {"LayerConfig", "rate", 0, 1, 0, 1, 0},
    {"TrainConfig", "batch_size", 1, INFINITY, 0, 1, 0},
    {"TrainConfig", "epochs", 1, INFINITY, 0, 1, 0},
    {"TrainConfig", "validation_freq", 1, INFINITY, 0, 1, 0},
    {"TrainConfig", "learning_rate", 0, INFINITY, 1, 1, 0},
    {"TrainConfig", "verbose", 0, 2, 0, 0, 0},
    {"DataConfig", "validation_split", 0, 1, 0, 1, 0},
    {"DataConfig", "test_split", 0, 1, 0, 1, 0},
    {"DataConfig", "skip_rows", 0, INFINITY, 0, 1, 0},
    {"DataConfig", "target_size", 1, 65536, 0, 0, 2},
    {"DataConfig", "workers", 0, 256, 0, 0, 0},
    {"DataConfig", "prefetch", 0, 1024, 0, 0, 0},
    {"DataConfig", "shuffle_buffer", 0, INFINITY, 0, 1, 0},
    {"DataConfig", "max_tokens", 0, INFINITY, 0, 1, 0},
    {"DataConfig", "output_sequence_length", 1, INFINITY, 0, 1, 0},
    {"DataConfig", "lm_step", 0, INFINITY, 0, 1, 0},
    {"AugmentConfig", "rescale", 0, INFINITY, 1, 1, 0},
    {"AugmentConfig", "rotation_range", 0, 360, 0, 0, 0},
    {"AugmentConfig", "width_shift_range", 0, INFINITY, 0, 1, 0},
    {"AugmentConfig", "height_shift_range", 0, INFINITY, 0, 1, 0},
    {"AugmentConfig", "shear_range", 0, 360, 0, 0, 0},
    {"AugmentConfig", "zoom_range", 0, INFINITY, 0, 1, 2},
    {"AugmentConfig", "brightness_range", 0, INFINITY, 0, 1, 2},
    {"AugmentConfig", "channel_shift_range", 0, INFINITY, 0, 1, 0},
    {"AugmentConfig", "crop_padding", 0, 4096, 0, 0, 0},
    {"EarlyStoppingConfig", "patience", 0, INFINITY, 0, 1, 0},
    {"EarlyStoppingConfig", "start_from_epoch", 0, INFINITY, 0, 1, 0},
    {"ReduceLROnPlateauConfig", "patience", 0, INFINITY, 0, 1, 0},
    {"ReduceLROnPlateauConfig", "factor", 0, 1, 1, 1, 0},
    {"ReduceLROnPlateauConfig", "cooldown", 0, INFINITY, 0, 1, 0},
    {"ReduceLROnPlateauConfig", "min_lr", 0, INFINITY, 0, 1, 0},
    {"ModelCheckpointConfig", "keep", 0, INFINITY, 0, 1, 0},
    {"LRScheduleConfig", "step_size", 1, INFINITY, 0, 1, 0},
    {"LRScheduleConfig", "decay_epochs", 0, INFINITY, 1, 1, 0},
    {"LRScheduleConfig", "first_decay_epochs", 1, INFINITY, 0, 1, 0},
    {"LRScheduleConfig", "warmup_epochs", 0, INFINITY, 0, 1, 0},
    {"TensorBoardConfig", "histogram_freq", 0, INFINITY, 0, 1, 0},
    {"DistributedConfig", "timeout", 0, INFINITY, 1, 1, 0},
    {"DistributedConfig", "base_batch_size", 1, INFINITY, 0, 1, 0},
    {"DistributedConfig", "threads", 1, 1024, 0, 0, 0},
    {"DistributedConfig", "bucket_kb", 1, INFINITY, 0, 1, 0},
    {"DistributedConfig", "heartbeat", 0, INFINITY, 1, 1, 0},
    {"TrainConfig", "threads", 1, 1024, 0, 0, 0},
    {"LayerConfig", "filters", 1, INFINITY, 0, 1, 0},
    {"LayerConfig", "kernel_size", 1, INFINITY, 0, 1, 2},
    {"LayerConfig", "strides", 1, INFINITY, 0, 1, 2},
    {"LayerConfig", "dilation_rate", 1, INFINITY, 0, 1, 2},
    {"LayerConfig", "pool_size", 1, INFINITY, 0, 1, 2},
    {"LayerConfig", "size", 1, INFINITY, 0, 1, 2},
    {"LayerConfig", "output_padding", 0, INFINITY, 0, 1, 2},
    {"LayerConfig", "depth_multiplier", 1, INFINITY, 0, 1, 0},
    {"LayerConfig", "momentum", 0, 1, 0, 0, 0},
    {"LayerConfig", "epsilon", 0, INFINITY, 1, 1, 0},
    {"BoostedTreesConfig", "learning_rate", 0, INFINITY, 1, 1, 0},
    {"BoostedTreesConfig", "max_iter", 1, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "max_leaf_nodes", 0, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "max_depth", 0, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "min_samples_leaf", 1, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "l2_regularization", 0, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "max_bins", 2, 255, 0, 0, 0},
    {"BoostedTreesConfig", "validation_fraction", 0, 1, 0, 1, 0},
    {"BoostedTreesConfig", "n_iter_no_change", 1, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "tol", 0, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "checkpoint_freq", 1, INFINITY, 0, 1, 0},
    {"BoostedTreesConfig", "subsample_bins", 1, INFINITY, 0, 1, 0},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- small helpers ---------------------------------------------------- */

/* A user's text for a message: at most QUOTE_MAX bytes, control bytes as
 * '?', so a binary file cannot garble the terminal. buf: QUOTE_BUF. */
static const char *quote(char *buf, const char *s)
{
    size_t i = 0;
    for (; s[i] && i < QUOTE_MAX; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = 0;
    return buf;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Trim in place; returns the first non-blank character. */
static char *trim(char *s)
{
    while (is_blank(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1])) s[--n] = 0;
    return s;
}

static ct_status nomem(void) { return CT_FAIL(CT_ERR_NOMEM, "out of memory reading the config"); }

/* "a, b, c" into buf, "..." when it does not fit. */
static void join_names(char *buf, size_t cap, const char *const *names, int n)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        if (!names[i]) continue;
        int w = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - len - 4) {
            snprintf(buf + len, cap - len, "%s...", len ? ", " : "");
            return;
        }
        len += (size_t)w;
    }
}

/* A growable list of borrowed names, for messages and suggestions. An
 * allocation failure only shortens the list. */
typedef struct name_list {
    const char **v;
    int n, cap;
} name_list;

static void names_add(name_list *l, const char *s)
{
    if (!s) return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        const char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
}

static void names_free(name_list *l) { free(l->v); }

/* "unknown <what> 'word'; did you mean 'x'? <label>: a, b, c" */
static ct_status fail_unknown(const char *what, const char *word, const char *const *known, int n,
                              const char *label)
{
    char q[QUOTE_BUF], list[LIST_BUF], hint[NEAREST_MAX + 32] = "";
    const char *near = ct_nearest_name(word, known, n);
    if (near) snprintf(hint, sizeof hint, " did you mean '%s'?", near);
    join_names(list, sizeof list, known, n);
    return CT_FAIL(CT_ERR_CONFIG, "unknown %s '%s';%s %s: %s", what, quote(q, word), hint, label,
                   list);
}

/* Prefix the current message with "file:line: [section] key: " (parts
 * left out when 0/NULL) and return its status. */
static ct_status locate(const char *file, int line, const char *section, const char *key)
{
    char qs[QUOTE_BUF], qk[QUOTE_BUF], where[2 * QUOTE_BUF + 8] = "";
    if (section) snprintf(where, sizeof where, "[%s] ", quote(qs, section));
    if (key) snprintf(where + strlen(where), sizeof where - strlen(where), "%s: ", quote(qk, key));
    if (line > 0)
        ct_error_prefix("%s:%d: %s", file, line, where);
    else
        ct_error_prefix("%s: %s", file, where);
    return ct_error_status();
}

/* A status from another module's parser, as a config error. */
static ct_status as_config_error(ct_status s)
{
    if (s == CT_OK || s == CT_ERR_CONFIG || s == CT_ERR_NOMEM) return s;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ct_error_message());
    return CT_FAIL(CT_ERR_CONFIG, "%s", msg);
}

/* ---- names ------------------------------------------------------------ */

static int edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    int row[NEAREST_MAX + 1];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            int best = diag + !same;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

const char *ct_nearest_name(const char *word, const char *const *candidates, int n)
{
    if (!word || !candidates) return NULL;
    size_t len = strlen(word);
    if (len > NEAREST_MAX) return NULL;
    int limit = (int)len / 3 > 2 ? (int)len / 3 : 2;
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        const char *c = candidates[i];
        size_t clen = c ? strlen(c) : NEAREST_MAX + 1;
        if (clen > NEAREST_MAX) continue;
        int d = edit_distance(word, len, c, clen);
        /* d < len: replacing every letter is no resemblance ("ab" vs "xy") */
        if (d < best_d && d < (int)len) {
            best = c;
            best_d = d;
        }
    }
    return best;
}

static int in_list(const char *v, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(v, names[i]) == 0) return 1;
    return 0;
}

static ct_status check_activation(const char *v)
{
    ct_activation a;
    if (ct_activation_find(v, &a)) return CT_OK;
    int n = 0;
    const char *const *names = ct_activation_names(&n);
    return fail_unknown("activation", v, names, n, "known activations");
}

static ct_status check_initializer(const char *v)
{
    ct_initializer init;
    return as_config_error(ct_initializer_parse(v, &init));
}

static ct_status check_regularizer(const char *v)
{
    ct_regularizer reg;
    return as_config_error(ct_regularizer_parse(v, &reg));
}

static ct_status check_optimizer(const char *v)
{
    ct_optim_config oc;
    return as_config_error(ct_optim_defaults(v, &oc));
}

const char *ct_config_output_entry(const char *entry, char *name, size_t cap, char *vbuf, size_t vcap)
{
    const char *colon = strchr(entry, ':');
    size_t n = colon ? (size_t)(colon - entry) : 0;
    const char *v = colon ? colon + 1 : entry;
    while (n && is_blank(entry[n - 1])) n--;
    while (n && is_blank(*entry)) entry++, n--;
    if (n >= cap) n = cap - 1;
    memcpy(name, entry, n);
    name[n] = 0;
    snprintf(vbuf, vcap, "%s", v);
    return trim(vbuf);
}

/* loss: one name, or "output: name" entries separated by commas. */
static ct_status check_loss(const char *v)
{
    char *copy = strdup(v);
    if (!copy) return nomem();
    ct_status s = CT_OK;
    for (char *e = strtok(copy, ","); e && s == CT_OK; e = strtok(NULL, ",")) {
        char out[CT_NAME_MAX], val[128];
        ct_loss loss;
        s = as_config_error(ct_loss_from_name(ct_config_output_entry(e, out, sizeof out, val, sizeof val), &loss));
    }
    free(copy);
    return s;
}

static ct_status check_metric(const char *v)
{
    int n = 0;
    const char *const *names = ct_metric_names(&n);
    char out[CT_NAME_MAX], val[128];
    const char *m = ct_config_output_entry(v, out, sizeof out, val, sizeof val);
    if (in_list(m, names, n) || ct_custom_metric_find(m) >= 0) return CT_OK;
    return fail_unknown("metric", m, names, n, "known metrics");
}

static ct_status check_loss_weight(const char *v)
{
    char out[CT_NAME_MAX], val[128];
    const char *w = ct_config_output_entry(v, out, sizeof out, val, sizeof val);
    double d;
    if (!is_decimal(w, 1) || !((d = strtod_c(w)) >= 0) || !isfinite(d))
        return CT_FAIL(CT_ERR_CONFIG, "'%s' is not a loss weight (a number >= 0, or output: number)", w);
    return CT_OK;
}

static ct_status check_data_format(const char *v)
{
    if (in_list(v, data_formats, (int)COUNT(data_formats))) return CT_OK;
    return fail_unknown("data format", v, data_formats, (int)COUNT(data_formats), "known formats");
}

static ct_status check_mode(const char *v)
{
    if (in_list(v, monitor_modes, (int)COUNT(monitor_modes))) return CT_OK;
    return fail_unknown("mode", v, monitor_modes, (int)COUNT(monitor_modes), "known modes");
}

static ct_status check_allreduce(const char *v)
{
    if (in_list(v, allreduce_algos, (int)COUNT(allreduce_algos))) return CT_OK;
    return fail_unknown("allreduce", v, allreduce_algos, (int)COUNT(allreduce_algos), "known algorithms");
}

static ct_status check_fill_mode(const char *v)
{
    if (in_list(v, fill_modes, (int)COUNT(fill_modes))) return CT_OK;
    return fail_unknown("fill_mode", v, fill_modes, (int)COUNT(fill_modes), "known modes");
}

static ct_status check_interpolation(const char *v)
{
    if (in_list(v, interpolations, (int)COUNT(interpolations))) return CT_OK;
    return fail_unknown("interpolation", v, interpolations, (int)COUNT(interpolations), "known ones");
}

static ct_status check_color_mode(const char *v)
{
    if (in_list(v, color_modes, (int)COUNT(color_modes))) return CT_OK;
    return fail_unknown("color_mode", v, color_modes, (int)COUNT(color_modes), "known modes");
}

static ct_status check_text_split(const char *v)
{
    if (in_list(v, text_splits, (int)COUNT(text_splits))) return CT_OK;
    return fail_unknown("split", v, text_splits, (int)COUNT(text_splits), "known splits");
}

static ct_status check_text_standardize(const char *v)
{
    if (in_list(v, text_standardizes, (int)COUNT(text_standardizes))) return CT_OK;
    return fail_unknown("text_standardize", v, text_standardizes, (int)COUNT(text_standardizes), "known modes");
}

static ct_status check_lr_scaling(const char *v)
{
    if (in_list(v, lr_scalings, (int)COUNT(lr_scalings))) return CT_OK;
    return fail_unknown("lr_scaling", v, lr_scalings, (int)COUNT(lr_scalings), "known rules");
}

static ct_status check_schedule(const char *v)
{
    if (in_list(v, lr_schedules, (int)COUNT(lr_schedules))) return CT_OK;
    return fail_unknown("schedule", v, lr_schedules, (int)COUNT(lr_schedules), "known schedules");
}

/* A check that v is one of the names in `list`. */
#define NAME_CHECK(fn, what, list, label)                                                    \
    static ct_status fn(const char *v)                                                       \
    {                                                                                        \
        if (in_list(v, list, (int)COUNT(list))) return CT_OK;                                \
        return fail_unknown(what, v, list, (int)COUNT(list), label);                         \
    }
NAME_CHECK(check_model_kind, "model kind", model_kinds, "known kinds")
NAME_CHECK(check_tree_loss, "boosted_trees loss", tree_losses, "known losses")
NAME_CHECK(check_tree_early_stopping, "early_stopping", tree_early_stopping, "allowed")
NAME_CHECK(check_tree_growth, "grow_policy", tree_growth, "known policies")
NAME_CHECK(check_tree_scoring, "scoring", tree_scoring, "supported")

int ct_config_is_trees(const ct_config *cfg)
{
    return cfg && cfg->model && cfg->model->kind && strcmp(cfg->model->kind, "boosted_trees") == 0;
}

/* ---- generic field access --------------------------------------------- */

/* Bytes of one element in the C struct; 0: not settable from text. */
static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    default: return 0;
    }
}

static void *member(const ProtobufCMessage *m, unsigned offset) { return (char *)m + offset; }

static int is_repeated(const ProtobufCFieldDescriptor *f) { return f->label == PROTOBUF_C_LABEL_REPEATED; }

/* Optional scalars carry a has_ flag at quantifier_offset; strings and
 * messages are present when their pointer is set. */
static int has_flag(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
           f->type != PROTOBUF_C_TYPE_MESSAGE;
}

static size_t elem_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (is_repeated(f)) return *(size_t *)member(m, f->quantifier_offset);
    if (has_flag(f)) return *(protobuf_c_boolean *)member(m, f->quantifier_offset) ? 1 : 0;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        void *p = *(void **)member(m, f->offset);
        return p && p != f->default_value;
    }
    return 1;
}

static void *elem_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t i)
{
    if (!is_repeated(f)) return member(m, f->offset);
    return *(char **)member(m, f->offset) + i * elem_size(f);
}

static double elem_number(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const int32_t *)p;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)p;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return (double)*(const int64_t *)p;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return (double)*(const uint64_t *)p;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p;
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p;
    default: return NAN;
    }
}

/* Elements a LayerConfig field holds. A scalar with a schema default
 * whose has_ flag a program left unset counts when its value differs from
 * the default (layers read such fields as values before key tables, and
 * configs built in C rely on it); one without a default needs has_. */
static size_t field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    size_t n = elem_count(m, f);
    if (n || !has_flag(f) || is_repeated(f) || !f->default_value) return n;
    return elem_number(f, member(m, f->offset)) != elem_number(f, f->default_value);
}

/* Free the field's value and leave it empty (strings: their default). */
static void clear_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    void **slot = member(m, f->offset);
    if (is_repeated(f)) {
        size_t *n = member(m, f->quantifier_offset);
        if (f->type == PROTOBUF_C_TYPE_STRING)
            for (size_t i = 0; i < *n; i++) free(((char **)*slot)[i]);
        free(*slot);
        *slot = NULL;
        *n = 0;
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
        if (*slot != f->default_value) free(*slot);
        *slot = (void *)f->default_value;
    }
}

/* ---- values ----------------------------------------------------------- */

/* Strict decimal syntax: [+-]digits, and with `real` also [.digits] and
 * [(e|E)[+-]digits]. Turns away what strtod would take on top: hex, nan,
 * inf, blanks, a trailing unit, a locale's decimal comma. */
static int is_decimal(const char *s, int real)
{
    size_t digits = 0;
    if (*s == '+' || *s == '-') s++;
    while (isdigit((unsigned char)*s)) s++, digits++;
    if (real && *s == '.')
        for (s++; isdigit((unsigned char)*s); s++) digits++;
    if (!digits) return 0;
    if (real && (*s == 'e' || *s == 'E')) {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

/* strtod in the "C" locale whatever the process runs under: a config
 * means the same in Berlin (uselocale is per thread). */
static double strtod_c(const char *s)
{
    pthread_once(&c_locale_once, make_c_locale);
    locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
    double v = strtod(s, NULL);
    if (c_locale) uselocale(old);
    return v;
}

static ct_status parse_int(const char *s, int64_t lo, int64_t hi, const char *type, int64_t *out)
{
    char q[QUOTE_BUF];
    if (!is_decimal(s, 0))
        return CT_FAIL(CT_ERR_CONFIG, "'%s' is not an integer (expected %s)", quote(q, s), type);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return CT_FAIL(CT_ERR_CONFIG, "%s is out of range for %s (%lld to %lld)", quote(q, s), type,
                       (long long)lo, (long long)hi);
    *out = v;
    return CT_OK;
}

/* "epoch", or a number of batches, as Keras's save_freq/update_freq. */
static ct_status check_freq(const char *v)
{
    char q[QUOTE_BUF];
    int64_t n;
    if (strcmp(v, "epoch") == 0 || (is_decimal(v, 0) && parse_int(v, 1, INT32_MAX, "", &n) == CT_OK))
        return CT_OK;
    return CT_FAIL(CT_ERR_CONFIG, "'%s' is neither 'epoch' nor a number of batches (>= 1)",
                   quote(q, v));
}

static ct_status parse_uint(const char *s, uint64_t hi, const char *type, uint64_t *out)
{
    char q[QUOTE_BUF];
    if (!is_decimal(s, 0) || *s == '-')
        return CT_FAIL(CT_ERR_CONFIG, "'%s' is not a non-negative integer (expected %s)", quote(q, s),
                       type);
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE || v > hi)
        return CT_FAIL(CT_ERR_CONFIG, "%s is out of range for %s (0 to %llu)", quote(q, s), type,
                       (unsigned long long)hi);
    *out = v;
    return CT_OK;
}

static ct_status parse_real(const char *s, double max, const char *type, double *out)
{
    char q[QUOTE_BUF];
    if (!is_decimal(s, 1))
        return CT_FAIL(CT_ERR_CONFIG, "'%s' is not a number (%s, e.g. 0.5 or 1e-3)",
                       quote(q, s), type);
    double v = strtod_c(s);
    if (!(fabs(v) <= max))
        return CT_FAIL(CT_ERR_CONFIG, "%s is out of range for %s", quote(q, s), type);
    *out = v;
    return CT_OK;
}

static const struct {
    const char *word;
    protobuf_c_boolean value;
} bool_words[] = {{"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0}, {"1", 1}, {"0", 0}};

static ct_status parse_bool(const char *s, protobuf_c_boolean *out)
{
    for (size_t i = 0; i < COUNT(bool_words); i++)
        if (strcasecmp(s, bool_words[i].word) == 0) {
            *out = bool_words[i].value;
            return CT_OK;
        }
    char q[QUOTE_BUF];
    return CT_FAIL(CT_ERR_CONFIG, "'%s' is not a boolean (expected true/false, yes/no or 1/0)",
                   quote(q, s));
}

static ct_status parse_enum(const ProtobufCFieldDescriptor *f, const char *s, int *out)
{
    const ProtobufCEnumDescriptor *e = f->descriptor;
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, s);
    if (v) {
        *out = v->value;
        return CT_OK;
    }
    name_list known = {0};
    for (unsigned i = 0; i < e->n_values; i++) names_add(&known, e->values[i].name);
    ct_status st = fail_unknown("value", s, known.v, known.n, "allowed");
    names_free(&known);
    return st;
}

/* Parse one element of field f from text into dst, the element's storage. */
static ct_status parse_elem(const ProtobufCFieldDescriptor *f, const char *s, void *dst)
{
    int64_t i;
    uint64_t u;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        CT_TRY(parse_int(s, INT32_MIN, INT32_MAX, "int32", &i));
        *(int32_t *)dst = (int32_t)i;
        return CT_OK;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return parse_int(s, INT64_MIN, INT64_MAX, "int64", (int64_t *)dst);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        CT_TRY(parse_uint(s, UINT32_MAX, "uint32", &u));
        *(uint32_t *)dst = (uint32_t)u;
        return CT_OK;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return parse_uint(s, UINT64_MAX, "uint64", (uint64_t *)dst);
    case PROTOBUF_C_TYPE_FLOAT:
        CT_TRY(parse_real(s, FLT_MAX, "float", &d));
        *(float *)dst = (float)d;
        return CT_OK;
    case PROTOBUF_C_TYPE_DOUBLE: return parse_real(s, DBL_MAX, "double", (double *)dst);
    case PROTOBUF_C_TYPE_BOOL: return parse_bool(s, (protobuf_c_boolean *)dst);
    case PROTOBUF_C_TYPE_ENUM: return parse_enum(f, s, (int *)dst);
    case PROTOBUF_C_TYPE_STRING:
        if (!(*(char **)dst = strdup(s))) return nomem();
        return CT_OK;
    default: return CT_FAIL(CT_ERR_CONFIG, "this key cannot be set from a .conf file");
    }
}

static void free_elems(const ProtobufCFieldDescriptor *f, void *arr, size_t n)
{
    if (f->type == PROTOBUF_C_TYPE_STRING)
        for (size_t i = 0; i < n; i++) free(((char **)arr)[i]);
    free(arr);
}

/* A comma-separated list replaces the field's elements. */
static ct_status set_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *text)
{
    size_t sz = elem_size(f), n = 1, done = 0;
    for (const char *c = text; *c; c++) n += *c == ',';
    char *copy = strdup(text), *arr = calloc(n, sz);
    ct_status s = copy && arr ? CT_OK : nomem();
    char *piece = copy;
    for (; s == CT_OK && done < n; done++) {
        char *comma = strchr(piece, ',');
        if (comma) *comma = 0;
        char *e = trim(piece);
        if (!*e)
            s = CT_FAIL(CT_ERR_CONFIG, "element %zu of the list is empty (expected %zu "
                        "comma-separated values)", done + 1, n);
        else
            s = parse_elem(f, e, arr + done * sz);
        piece = comma ? comma + 1 : piece;
    }
    free(copy);
    if (s != CT_OK) {
        if (arr) free_elems(f, arr, n); /* calloc'd: elements not reached are NULL */
        return s;
    }
    clear_field(m, f);
    *(void **)member(m, f->offset) = arr;
    *(size_t *)member(m, f->quantifier_offset) = n;
    return CT_OK;
}

static ct_status set_single(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const char *text)
{
    union {
        int32_t i32; int64_t i64; float f32; double f64; protobuf_c_boolean b; char *s;
    } v;
    CT_TRY(parse_elem(f, text, &v));
    clear_field(m, f);
    memcpy(member(m, f->offset), &v, elem_size(f));
    if (has_flag(f)) *(protobuf_c_boolean *)member(m, f->quantifier_offset) = 1;
    return CT_OK;
}

/* ---- rules ------------------------------------------------------------ */

static int key_matches(const char *pattern, const char *key)
{
    if (pattern[0] != '*') return strcmp(pattern, key) == 0;
    size_t np = strlen(pattern + 1), nk = strlen(key);
    return nk > np && strcmp(key + nk - np, pattern + 1) == 0;
}

static ct_status check_range(const struct range_rule *r, double v, size_t n)
{
    if (r->max_n && n > r->max_n)
        return CT_FAIL(CT_ERR_CONFIG, "has %zu values, at most %zu are allowed", n, r->max_n);
    int low = r->lo_open ? !(v > r->lo) : !(v >= r->lo);
    int high = r->hi_open ? !(v < r->hi) : !(v <= r->hi);
    if (!low && !high) return CT_OK;
    char want[80];
    if (isinf(r->hi))
        snprintf(want, sizeof want, "%s %g", r->lo_open ? ">" : ">=", r->lo);
    else
        snprintf(want, sizeof want, "in %c%g, %g%c", r->lo_open ? '(' : '[', r->lo, r->hi,
                 r->hi_open ? ')' : ']');
    return CT_FAIL(CT_ERR_CONFIG, "must be %s, got %.10g", want, v);
}

/* The table rules for one field, on every element it holds. The message
 * carries no location; callers add it. */
static ct_status check_field(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    size_t n = elem_count(m, f);
    for (size_t r = 0; r < COUNT(name_rules); r++) {
        if (strcmp(name_rules[r].msg, m->descriptor->short_name) ||
            !key_matches(name_rules[r].key, f->name))
            continue;
        for (size_t i = 0; i < n && f->type == PROTOBUF_C_TYPE_STRING; i++) {
            const char *v = *(char **)elem_at(m, f, i);
            CT_TRY(name_rules[r].check(v ? v : ""));
        }
    }
    for (size_t r = 0; r < COUNT(range_rules); r++) {
        if (strcmp(range_rules[r].msg, m->descriptor->short_name) ||
            strcmp(range_rules[r].key, f->name))
            continue;
        if (strcmp(f->name, "input") == 0 || strcmp(f->name, "target_shape") == 0) {
            ct_shape sh = {0};
            for (size_t i = 0; i < n && i < CT_MAX_DIMS; i++) {
                double v = elem_number(f, elem_at(m, f, i));
                sh.dims[sh.rank++] = v == -1 ? 1 : (int64_t)fmin(fmax(v, 0), 9.2e18);
            }
            if (ct_shape_numel_checked(&sh, CT_MAX_NUMEL) < 0)
                return CT_FAIL(CT_ERR_CONFIG, "the shape holds more than %lld values per sample", (long long)CT_MAX_NUMEL);
        }
        /* Keras's Reshape infers one dimension given as -1 */
        int inferable = strcmp(f->name, "target_shape") == 0;
        for (size_t i = 0; i < n; i++) {
            double v = elem_number(f, elem_at(m, f, i));
            if (inferable && v == -1) continue;
            ct_status s = check_range(&range_rules[r], v, n);
            if (s != CT_OK && inferable && v < 1 && n <= CT_MAX_DIMS) ct_error_set(s, __FILE__, __LINE__, "must be >= 1, or -1 for the one dimension "
                                                      "to infer, got %.10g", v);
            CT_TRY(s);
        }
    }
    return CT_OK;
}

/* check_field on every field that is set, messages located at `line`. */
static ct_status check_values(const char *file, int line, const char *section,
                              const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned k = 0; k < d->n_fields; k++) {
        if (!elem_count(m, &d->fields[k]) || elem_size(&d->fields[k]) == 0) continue;
        if (check_field(m, &d->fields[k]) != CT_OK)
            return locate(file, line, section, d->fields[k].name);
    }
    return CT_OK;
}

/* ---- sections and keys ------------------------------------------------ */

/* The Config field a reserved section fills, or NULL for a layer. */
static const ProtobufCFieldDescriptor *section_field(const char *name)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&ctrain__config__descriptor, name);
    return f && f->type == PROTOBUF_C_TYPE_MESSAGE && !is_repeated(f) ? f : NULL;
}

static void add_section_names(name_list *l)
{
    const ProtobufCMessageDescriptor *d = &ctrain__config__descriptor;
    for (unsigned k = 0; k < d->n_fields; k++)
        if (section_field(d->fields[k].name)) names_add(l, d->fields[k].name);
}

#define HINT_BUF (NEAREST_MAX + 48)

/* A layer without a type may be a misspelt reserved section ([trian]):
 * " (<pre> the section [train]?)", or "". buf: HINT_BUF. */
static const char *section_hint(char *buf, const char *name, const char *pre)
{
    name_list sections = {0};
    add_section_names(&sections);
    const char *near = ct_nearest_name(name, sections.v, sections.n);
    buf[0] = 0;
    if (near) snprintf(buf, HINT_BUF, " (%s the section [%s]?)", pre, near);
    names_free(&sections);
    return buf;
}

static int is_planned_section(const char *name)
{
    return in_list(name, planned_sections, (int)COUNT(planned_sections));
}

/* Layer names end up in messages, HDF5 groups and --set addresses
 * ("fc1.units"), so they keep to a safe alphabet. */
static int layer_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-') return 0;
    return n > 0 && n < CT_NAME_MAX;
}

/* Index of the layer called `name` among the first `n`, or -1. */
static long find_layer(const ct_config *cfg, const char *name, size_t n)
{
    for (size_t i = 0; i < n && i < cfg->n_layers; i++)
        if (cfg->layers[i]->name && strcmp(cfg->layers[i]->name, name) == 0) return (long)i;
    return -1;
}

static const char *reserved_why(const ProtobufCMessageDescriptor *d, const char *key)
{
    for (size_t i = 0; i < COUNT(reserved_keys); i++)
        if (strcmp(reserved_keys[i].msg, d->short_name) == 0 && strcmp(reserved_keys[i].key, key) == 0)
            return reserved_keys[i].why;
    return NULL;
}

/* Keys of every layer section (core/layer.h). */
static const char *const layer_base_keys[] = {"type", "inputs", "apply", "trainable"};

static int layer_base_key(const char *key) { return in_list(key, layer_base_keys, (int)COUNT(layer_base_keys)); }

/* The keys a layer section may hold: the base keys and, when the type is
 * known, its table's keys, else every key of every registered type. */
static void add_layer_keys(name_list *l, const ct_layer_type *t)
{
    names_add(l, "type");
    names_add(l, "inputs");
    for (int i = 0; i < ct_layer_type_count(); i++) {
        const ct_layer_type *u = t ? t : ct_layer_type_at(i);
        for (const ct_layer_key *k = u ? u->keys : NULL; k && k->name; k++)
            if (!in_list(k->name, l->v, l->n)) names_add(l, k->name);
        if (t) break;
    }
    names_add(l, "apply");
    names_add(l, "trainable");
}

/* Whether some registered type declares `key`. */
static int any_type_has_key(const char *key)
{
    for (int i = 0; i < ct_layer_type_count(); i++)
        if (ct_layer_type_key(ct_layer_type_at(i), key)) return 1;
    return 0;
}



static void add_type_names(name_list *l)
{
    for (int i = 0; i < ct_layer_type_count(); i++) {
        const ct_layer_type *t = ct_layer_type_at(i);
        if (t) names_add(l, t->name);
    }
}

/* ---- whole-layer checks ---------------------------------------------- */

/* Where a layer's messages point: key_line gives the line of each
 * LayerConfig field when known, else header_line (0: no line). */
typedef struct layer_site {
    const char *file;
    const int *key_line;
    int header_line;
} layer_site;

static int site_line(const layer_site *w, const char *key)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&ctrain__layer_config__descriptor, key);
    int idx = f ? (int)(f - ctrain__layer_config__descriptor.fields) : -1;
    return w->key_line && idx >= 0 && w->key_line[idx] ? w->key_line[idx] : w->header_line;
}

static ct_status check_layer_name(const layer_site *w, const ct_config *cfg, size_t i)
{
    const char *name = cfg->layers[i]->name;
    char q[QUOTE_BUF];
    if (!name || !layer_name_ok(name)) {
        CT_FAIL(CT_ERR_CONFIG, "layer %zu has a bad name '%s' (expected 1 to %d letters, digits, "
                "'_' or '-')", i + 1, quote(q, name ? name : ""), CT_NAME_MAX - 1);
        return locate(w->file, w->header_line, NULL, NULL);
    }
    long first = find_layer(cfg, name, i);
    if (first >= 0) {
        const ct_layer_config *f = cfg->layers[first];
        CT_FAIL(CT_ERR_CONFIG, "duplicate section [%s] (first on line %d)", name,
                f->has_line ? f->line : 0);
        return locate(w->file, w->header_line, NULL, NULL);
    }
    return CT_OK;
}

static ct_status check_layer_type(const layer_site *w, const ct_layer_config *l,
                                  const ct_layer_type **out)
{
    name_list known = {0};
    add_type_names(&known);
    ct_status s = CT_OK;
    if (!l->type || !*l->type) {
        char list[LIST_BUF], hint[HINT_BUF];
        join_names(list, sizeof list, known.v, known.n);
        CT_FAIL(CT_ERR_CONFIG, "layer section has no 'type' key%s; known types: %s",
                section_hint(hint, l->name, "or did you mean"), list);
        s = locate(w->file, w->header_line, l->name, NULL);
    } else if (!(*out = ct_layer_type_find(l->type))) {
        fail_unknown("layer type", l->type, known.v, known.n, "known types");
        s = locate(w->file, site_line(w, "type"), l->name, "type");
    }
    names_free(&known);
    return s;
}

static ct_status fail_layer_key(const layer_site *w, const ct_layer_config *l, const ct_layer_type *t,
                                const char *key, int line)
{
    name_list keys = {0};
    char list[LIST_BUF];
    add_layer_keys(&keys, t);
    join_names(list, sizeof list, keys.v, keys.n);
    CT_FAIL(CT_ERR_CONFIG, "layer type %s does not take this key; %s keys: %s", t->name, t->name, list);
    names_free(&keys);
    return locate(w->file, line ? line : w->header_line, l->name, key);
}

/* Every key set must be in the type's table (or a base key), with a value
 * its entry accepts; extra entries must not repeat or shadow a field. */
static ct_status check_layer_keys(const layer_site *w, const ct_layer_config *l,
                                  const ct_layer_type *t)
{
    const ProtobufCMessageDescriptor *d = &ctrain__layer_config__descriptor;
    char buf[1024];
    for (unsigned k = 0; k < d->n_fields; k++) {
        const char *key = d->fields[k].name;
        if (reserved_why(d, key) || !field_present(&l->base, &d->fields[k]) || layer_base_key(key)) continue;
        const ct_layer_key *e = ct_layer_type_key(t, key);
        if (!e) return fail_layer_key(w, l, t, key, site_line(w, key));
        const char *text = ct_config_layer_text(l, key, buf, sizeof buf, NULL);
        if (text && ct_layer_key_check(e, text) != CT_OK) return locate(w->file, site_line(w, key), l->name, key);
    }
    for (size_t i = 0; i < l->n_extra; i++) {
        const Ctrain__LayerKey *x = l->extra[i];
        int line = x->has_line ? x->line : 0;
        char q[QUOTE_BUF];
        if (!x->key || !layer_name_ok(x->key)) {
            CT_FAIL(CT_ERR_CONFIG, "key '%s' is not a key name", quote(q, x->key ? x->key : ""));
            return locate(w->file, line ? line : w->header_line, l->name, NULL);
        }
        if (protobuf_c_message_descriptor_get_field_by_name(d, x->key)) {
            CT_FAIL(CT_ERR_CONFIG, "an extra entry may not shadow the LayerConfig field of that name");
            return locate(w->file, line ? line : w->header_line, l->name, x->key);
        }
        for (size_t j = 0; j < i; j++)
            if (l->extra[j]->key && strcmp(l->extra[j]->key, x->key) == 0) {
                CT_FAIL(CT_ERR_CONFIG, "duplicate key (first set on line %d)",
                        l->extra[j]->has_line ? l->extra[j]->line : 0);
                return locate(w->file, line ? line : w->header_line, l->name, x->key);
            }
        const ct_layer_key *e = ct_layer_type_key(t, x->key);
        if (!e) return fail_layer_key(w, l, t, x->key, line);
        if (ct_layer_key_check(e, x->value ? x->value : "") != CT_OK)
            return locate(w->file, line ? line : w->header_line, l->name, x->key);
    }
    return CT_OK;
}

static int is_input_layer(const ct_layer_config *l) { return l->type && strcmp(l->type, "input") == 0; }

static size_t count_input_layers(const ct_config *cfg)
{
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_layers; i++) n += is_input_layer(cfg->layers[i]);
    return n;
}

static ct_status check_one_input(const layer_site *w, const ct_config *cfg, size_t i,
                                 const char *in)
{
    const ct_layer_config *l = cfg->layers[i];
    char q[QUOTE_BUF];
    if (strcmp(in, CT_MODEL_INPUT_NAME) == 0) { /* the [model] input */
        if (!cfg->model || cfg->model->n_input) return CT_OK;
        CT_FAIL(CT_ERR_CONFIG, "'input' names the [model] input = ..., but this model declares its inputs "
                "as sections with type = input: name one of them");
        return locate(w->file, site_line(w, "inputs"), l->name, "inputs");
    }
    long j = find_layer(cfg, in, cfg->n_layers);
    if (j >= 0 && (size_t)j < i) return CT_OK;
    if ((size_t)j == i) {
        CT_FAIL(CT_ERR_CONFIG, "a layer cannot be its own input");
    } else if (j >= 0) {
        CT_FAIL(CT_ERR_CONFIG, "layer '%s' is defined after [%s]; inputs must name layers defined "
                "earlier in the file", quote(q, in), l->name);
    } else {
        name_list before = {0};
        for (size_t j = 0; j < i; j++) names_add(&before, cfg->layers[j]->name);
        if (before.n)
            fail_unknown("input layer", in, before.v, before.n, "layers defined before it");
        else
            CT_FAIL(CT_ERR_CONFIG, "unknown input layer '%s'; no layer is defined before [%s]",
                    quote(q, in), l->name);
        names_free(&before);
    }
    return locate(w->file, site_line(w, "inputs"), l->name, "inputs");
}

static ct_status check_layer_inputs(const layer_site *w, const ct_config *cfg, size_t i,
                                    const ct_layer_type *t)
{
    const ct_layer_config *l = cfg->layers[i];
    if (t->max_inputs == 0) {
        if (!l->n_inputs) return CT_OK;
        CT_FAIL(CT_ERR_CONFIG, "layer type %s takes no inputs", t->name);
        return locate(w->file, site_line(w, "inputs"), l->name, "inputs");
    }
    for (size_t k = 0; k < l->n_inputs; k++) CT_TRY(check_one_input(w, cfg, i, l->inputs[k]));
    /* without inputs a layer takes the previous layer (or the model input) */
    int n = l->n_inputs ? (int)l->n_inputs : 1;
    if (t->max_inputs > 0 && (n < t->min_inputs || n > t->max_inputs)) {
        CT_FAIL(CT_ERR_CONFIG, "layer type %s takes %d to %d inputs, got %d (name them with "
                "inputs = a, b)", t->name, t->min_inputs, t->max_inputs, n);
        return locate(w->file, site_line(w, "inputs"), l->name, l->n_inputs ? "inputs" : NULL);
    }
    return CT_OK;
}

/* A section that applies an earlier layer to other inputs (a shared
 * layer): no type and no keys of its own. *t gets the layer's type. */
static ct_status check_apply(const layer_site *w, const ct_config *cfg, size_t i, const ct_layer_type **t)
{
    const ct_layer_config *l = cfg->layers[i];
    const ProtobufCMessageDescriptor *d = &ctrain__layer_config__descriptor;
    char q[QUOTE_BUF];
    long j = find_layer(cfg, l->apply, i);
    if (j < 0) {
        name_list before = {0};
        for (size_t k = 0; k < i; k++)
            if (!cfg->layers[k]->apply && !is_input_layer(cfg->layers[k])) names_add(&before, cfg->layers[k]->name);
        if (before.n)
            fail_unknown("layer", l->apply, before.v, before.n, "layers defined before it");
        else
            CT_FAIL(CT_ERR_CONFIG, "unknown layer '%s'; apply names a layer defined before [%s]",
                    quote(q, l->apply), l->name);
        names_free(&before);
        return locate(w->file, site_line(w, "apply"), l->name, "apply");
    }
    const ct_layer_config *target = cfg->layers[j];
    if (target->apply)
        CT_FAIL(CT_ERR_CONFIG, "[%s] itself applies '%s': write apply = %s", target->name, target->apply,
                target->apply);
    else if (is_input_layer(target))
        CT_FAIL(CT_ERR_CONFIG, "'%s' is a model input, not a layer to apply; name it in inputs = ...",
                target->name);
    else if (!(*t = ct_layer_type_find(target->type)))
        CT_FAIL(CT_ERR_CONFIG, "layer '%s' has no known type", target->name);
    else {
        for (unsigned k = 0; k < d->n_fields; k++) {
            const char *key = d->fields[k].name;
            if (reserved_why(d, key) || !field_present(&l->base, &d->fields[k]) || strcmp(key, "inputs") == 0 ||
                strcmp(key, "apply") == 0)
                continue;
            CT_FAIL(CT_ERR_CONFIG, "a section with apply = %s reuses that layer as it is: it takes only "
                    "inputs (set %s in [%s])", target->name, key, target->name);
            return locate(w->file, site_line(w, key), l->name, key);
        }
        if (!l->n_extra) return CT_OK;
        CT_FAIL(CT_ERR_CONFIG, "a section with apply = %s reuses that layer as it is: it takes only "
                "inputs (set %s in [%s])", target->name, l->extra[0]->key ? l->extra[0]->key : "", target->name);
        return locate(w->file, l->extra[0]->has_line ? l->extra[0]->line : w->header_line, l->name, NULL);
    }
    return locate(w->file, site_line(w, "apply"), l->name, "apply");
}

/* Everything about layer i that needs the registry or the other layers. */
static ct_status check_layer(const layer_site *w, const ct_config *cfg, size_t i)
{
    const ct_layer_config *l = cfg->layers[i];
    const ct_layer_type *t = NULL;
    CT_TRY(check_layer_name(w, cfg, i));
    if (l->apply) {
        CT_TRY(check_apply(w, cfg, i, &t));
    } else {
        CT_TRY(check_layer_type(w, l, &t));
        CT_TRY(check_layer_keys(w, l, t));
    }
    return check_layer_inputs(w, cfg, i, t);
}

/* [model] outputs: layers (not inputs), each once. */
static ct_status check_outputs(const char *file, const ct_config *cfg, int model_line)
{
    const Ctrain__ModelConfig *m = cfg->model;
    char q[QUOTE_BUF];
    for (size_t k = 0; k < m->n_outputs; k++) {
        long j = find_layer(cfg, m->outputs[k], cfg->n_layers);
        if (j < 0) {
            name_list known = {0};
            for (size_t i = 0; i < cfg->n_layers; i++)
                if (!is_input_layer(cfg->layers[i])) names_add(&known, cfg->layers[i]->name);
            fail_unknown("output layer", m->outputs[k], known.v, known.n, "layers");
            names_free(&known);
            return locate(file, model_line, "model", "outputs");
        }
        if (is_input_layer(cfg->layers[j])) {
            CT_FAIL(CT_ERR_CONFIG, "'%s' is a model input; outputs name layers", quote(q, m->outputs[k]));
            return locate(file, model_line, "model", "outputs");
        }
        for (size_t i = 0; i < k; i++)
            if (strcmp(m->outputs[i], m->outputs[k]) == 0) {
                CT_FAIL(CT_ERR_CONFIG, "'%s' is named twice", quote(q, m->outputs[k]));
                return locate(file, model_line, "model", "outputs");
            }
    }
    return CT_OK;
}

/* The output names of a neural network: [model] outputs, else the last
 * layer that is not an input. */
static void output_names(const ct_config *cfg, name_list *out)
{
    for (size_t k = 0; k < cfg->model->n_outputs; k++) names_add(out, cfg->model->outputs[k]);
    for (size_t i = cfg->n_layers; !out->n && i > 0; i--)
        if (!is_input_layer(cfg->layers[i - 1])) names_add(out, cfg->layers[i - 1]->name);
}

/* One per-output entry of [train] `key`: its output must exist. */
static ct_status check_output_entry(const char *file, int line, const char *key, const char *entry,
                                    const name_list *outs)
{
    char name[CT_NAME_MAX], val[128];
    ct_config_output_entry(entry, name, sizeof name, val, sizeof val);
    if (!name[0] || in_list(name, outs->v, outs->n)) return CT_OK;
    fail_unknown("output", name, outs->v, outs->n, "the model's outputs");
    return locate(file, line, "train", key);
}

/* loss, loss_weights and metrics name outputs that exist; loss_weights
 * are all named or one number per output. train_line: the [train]
 * header line, 0 when unknown. */
static ct_status check_train_outputs(const char *file, const ct_config *cfg, int train_line)
{
    const Ctrain__TrainConfig *t = cfg->train;
    if (!t || ct_config_is_trees(cfg) || !cfg->n_layers) return CT_OK;
    name_list outs = {0};
    output_names(cfg, &outs);
    ct_status s = CT_OK;
    char *copy = t->loss ? strdup(t->loss) : NULL;
    for (char *e = copy ? strtok(copy, ",") : NULL; e && s == CT_OK; e = strtok(NULL, ","))
        s = check_output_entry(file, train_line, "loss", e, &outs);
    free(copy);
    for (size_t i = 0; s == CT_OK && i < t->n_metrics; i++)
        s = check_output_entry(file, train_line, "metrics", t->metrics[i], &outs);
    size_t plain = 0;
    for (size_t i = 0; s == CT_OK && i < t->n_loss_weights; i++) {
        s = check_output_entry(file, train_line, "loss_weights", t->loss_weights[i], &outs);
        plain += strchr(t->loss_weights[i], ':') == NULL;
    }
    if (s == CT_OK && plain && plain != (size_t)outs.n) {
        CT_FAIL(CT_ERR_CONFIG, "%zu weights for %d outputs (give one per output, in order, or output: weight)",
                plain, outs.n);
        s = locate(file, train_line, "train", "loss_weights");
    }
    names_free(&outs);
    return s;
}

/* [model] with an input shape (or input sections) and at least one layer.
 * model_line: the [model] header line, 0 when unknown. */
static ct_status check_required(const char *file, const ct_config *cfg, int model_line)
{
    if (!cfg->model)
        return CT_FAIL(CT_ERR_CONFIG, "%s: no [model] section (it gives the per-sample input "
                       "shape: input = 28, 28, 1)", file);
    if (ct_config_is_trees(cfg)) { /* boosted trees take their input from the data, and have no layers */
        if (cfg->n_layers) {
            CT_FAIL(CT_ERR_CONFIG, "layer section [%s] in a model of kind boosted_trees (the trees are set in "
                    "[boosted_trees]; is the section name misspelt?)", cfg->layers[0]->name);
            return locate(file, cfg->layers[0]->has_line ? cfg->layers[0]->line : 0, NULL, NULL);
        }
        if (!cfg->boosted_trees || !cfg->boosted_trees->loss) {
            CT_FAIL(CT_ERR_CONFIG, "[model] kind = boosted_trees needs [boosted_trees] loss = log_loss "
                    "(classification) or squared_error (regression)");
            return locate(file, model_line, "model", NULL);
        }
        return CT_OK;
    }
    size_t n_in = count_input_layers(cfg);
    if (!cfg->model->n_input && !n_in) {
        CT_FAIL(CT_ERR_CONFIG, "no 'input' key (the per-sample input shape, e.g. input = 28, 28, 1; "
                "or sections with type = input for named inputs)");
        return locate(file, model_line, "model", NULL);
    }
    if (cfg->model->n_input && n_in) {
        CT_FAIL(CT_ERR_CONFIG, "both 'input' and sections with type = input declare model inputs; use one");
        return locate(file, model_line, "model", "input");
    }
    if (cfg->n_layers <= n_in)
        return CT_FAIL(CT_ERR_CONFIG, "%s: no layer sections (a layer is a section like [fc1] "
                       "with type = dense)", file);
    return check_outputs(file, cfg, model_line);
}

ct_status ct_config_validate(const ct_config *cfg)
{
    const char *file = cfg->source ? cfg->source : "<config>";
    const ProtobufCMessageDescriptor *d = &ctrain__config__descriptor;
    CT_TRY(check_required(file, cfg, 0));
    CT_TRY(ct_plugins_load_config(cfg)); /* before the layers: plugins register their types */
    CT_TRY(check_train_outputs(file, cfg, 0));
    for (unsigned k = 0; k < d->n_fields; k++) {
        if (!section_field(d->fields[k].name)) continue;
        const ProtobufCMessage *sub = *(ProtobufCMessage **)member(&cfg->base, d->fields[k].offset);
        if (sub) CT_TRY(check_values(file, 0, d->fields[k].name, sub));
    }
    for (size_t i = 0; i < cfg->n_layers; i++) {
        const ct_layer_config *l = cfg->layers[i];
        layer_site w = {file, NULL, l->has_line ? l->line : 0};
        CT_TRY(check_layer(&w, cfg, i));
        CT_TRY(check_values(file, w.header_line, l->name, &l->base));
    }
    const ct_layer_config *first = cfg->n_layers ? cfg->layers[0] : NULL;
    if (first && !cfg->model->n_input && !first->n_inputs && !is_input_layer(first)) {
        CT_FAIL(CT_ERR_CONFIG, "the first layer has no input: declare the inputs first, as sections with "
                "type = input (or [model] input = <shape>)");
        return locate(file, first->has_line ? first->line : 0, first->name, NULL);
    }
    return CT_OK;
}

/* ---- the reader ------------------------------------------------------- */

typedef struct parser {
    const char *file;        /* for messages: the path, or "<--set>" */
    const char *base_dir;    /* relative paths resolve here; NULL: keep them */
    int line;                /* current line, 0 when there is none */
    ct_config *cfg;
    int *section_line;       /* header line of each reserved section, by Config field */
    /* the open section */
    ProtobufCMessage *msg;   /* NULL before the first header */
    const char *section;     /* its name */
    long layer;              /* its index in cfg->layers, -1 for a reserved section */
    int *key_line;           /* line each field was set on; NULL: no duplicate check */
} parser;

static ct_status fail_line(const parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ct_status fail_line(const parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_error_setv(CT_ERR_CONFIG, __FILE__, __LINE__, fmt, ap);
    va_end(ap);
    return locate(p->file, p->line, NULL, NULL);
}

static int is_path_key(const char *section, const char *key)
{
    for (size_t i = 0; i < COUNT(path_keys); i++)
        if (strcmp(path_keys[i].section, section) == 0 && strcmp(path_keys[i].key, key) == 0)
            return 1;
    return 0;
}

/* base_dir/value for a relative path key, NULL when it stays as written. */
/* A list of paths ("a.npy, b.npy": the inputs of a model with several)
 * resolves item by item. */
static char *resolve_path(const parser *p, const char *key, const char *value)
{
    if (!p->base_dir || p->layer >= 0 || !is_path_key(p->section, key)) return NULL;
    if (value[0] == '/' && !strchr(value, ',')) return NULL;
    size_t nb = strlen(p->base_dir), nv = strlen(value), items = 1;
    for (const char *c = value; *c; c++) items += *c == ',';
    int slash = nb > 0 && p->base_dir[nb - 1] != '/';
    char *out = malloc(items * (nb + slash + 2) + nv + 1);
    if (!out) return NULL;
    size_t len = 0;
    for (const char *v = value;;) {
        const char *comma = strchr(v, ',');
        size_t n = comma ? (size_t)(comma - v) : strlen(v);
        while (n && is_blank(*v)) v++, n--;
        if (len) out[len++] = ',', out[len++] = ' ';
        if (n && *v != '/') {
            memcpy(out + len, p->base_dir, nb);
            len += nb;
            if (slash) out[len++] = '/';
        }
        memcpy(out + len, v, n);
        len += n;
        if (!comma) break;
        v = comma + 1;
    }
    out[len] = 0;
    return out;
}

static ct_status fail_unknown_key(const parser *p, const char *key)
{
    const ProtobufCMessageDescriptor *d = p->msg->descriptor;
    name_list keys = {0};
    char hint[HINT_BUF] = "";
    if (p->layer >= 0) {
        const ct_layer_config *l = p->cfg->layers[p->layer];
        add_layer_keys(&keys, l->type ? ct_layer_type_find(l->type) : NULL);
        if (!l->type) section_hint(hint, l->name, "read as a layer; did you mean");
    } else {
        for (unsigned k = 0; k < d->n_fields; k++)
            if (!reserved_why(d, d->fields[k].name)) names_add(&keys, d->fields[k].name);
    }
    char label[QUOTE_BUF + HINT_BUF + 16];
    snprintf(label, sizeof label, "[%s]%s keys", p->section, hint);
    fail_unknown("key", key, keys.v, keys.n, label);
    names_free(&keys);
    return locate(p->file, p->line, p->section, NULL);
}

static ct_status check_settable(const parser *p, const ProtobufCFieldDescriptor *f, size_t idx,
                                const char *value)
{
    const char *why = reserved_why(p->msg->descriptor, f->name);
    if (why) return CT_FAIL(CT_ERR_CONFIG, "cannot be set: %s", why);
    if (!elem_size(f)) return CT_FAIL(CT_ERR_CONFIG, "cannot be set from a .conf file");
    if (p->key_line && p->key_line[idx])
        return CT_FAIL(CT_ERR_CONFIG, "duplicate key (first set on line %d)", p->key_line[idx]);
    if (!*value) return CT_FAIL(CT_ERR_CONFIG, "missing value after '='");
    return CT_OK;
}

/* key = value in the open section: parse by the field's type, resolve
 * paths, apply the rules. */
/* A layer key that is no LayerConfig field: kept as text in `extra`,
 * checked against the type's table (now when the type is known, else
 * when the section closes). */
static ct_status set_extra(parser *p, const char *key, const char *value)
{
    ct_layer_config *l = p->cfg->layers[p->layer];
    const ct_layer_type *t = l->type ? ct_layer_type_find(l->type) : NULL;
    if (!layer_name_ok(key) || (t && !ct_layer_type_key(t, key)) || (!t && !any_type_has_key(key)) || l->apply)
        return fail_unknown_key(p, key);
    if (!*value) return fail_line(p, "[%s] %s: missing value after '='", p->section, key);
    Ctrain__LayerKey *x = NULL;
    for (size_t i = 0; i < l->n_extra; i++)
        if (strcmp(l->extra[i]->key, key) == 0) x = l->extra[i];
    if (x && p->key_line)
        return fail_line(p, "[%s] %s: duplicate key (first set on line %d)", p->section, key, x->line);
    if (!x) {
        Ctrain__LayerKey **grown = realloc(l->extra, (l->n_extra + 1) * sizeof *grown);
        if (!grown) return nomem();
        l->extra = grown;
        if (!(x = malloc(sizeof *x))) return nomem();
        ctrain__layer_key__init(x);
        l->extra[l->n_extra++] = x;
        if (!(x->key = strdup(key))) return nomem();
    }
    char *v = strdup(value);
    if (!v) return nomem();
    free(x->value);
    x->value = v;
    x->has_line = p->line > 0;
    x->line = p->line;
    const ct_layer_key *e = t ? ct_layer_type_key(t, key) : NULL;
    if (e && ct_layer_key_check(e, value) != CT_OK) return locate(p->file, p->line, p->section, key);
    return CT_OK;
}

static ct_status set_key(parser *p, const char *key, const char *value)
{
    const ProtobufCMessageDescriptor *d = p->msg->descriptor;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!f && p->layer >= 0) return set_extra(p, key, value);
    if (!f) return fail_unknown_key(p, key);
    size_t idx = (size_t)(f - d->fields);
    if (check_settable(p, f, idx, value) != CT_OK) return locate(p->file, p->line, p->section, key);

    char *path = resolve_path(p, key, value);
    ct_status s = is_repeated(f) ? set_repeated(p->msg, f, path ? path : value)
                                 : set_single(p->msg, f, path ? path : value);
    free(path);
    if (s == CT_OK) s = check_field(p->msg, f);
    if (s != CT_OK) return locate(p->file, p->line, p->section, key);
    if (p->key_line) p->key_line[idx] = p->line;
    return CT_OK;
}

/* `--set SECTION.KEY=` (nothing after '='): the key as if never written,
 * its schema default. */
static ct_status unset_key(parser *p, const char *key)
{
    const ProtobufCMessageDescriptor *d = p->msg->descriptor;
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!f) return fail_unknown_key(p, key);
    void *field = member(p->msg, f->offset);
    if (is_repeated(f)) {
        size_t *n = member(p->msg, f->quantifier_offset);
        void **arr = field;
        for (size_t i = 0; i < *n; i++) {
            if (f->type == PROTOBUF_C_TYPE_STRING) free(((char **)*arr)[i]);
            else if (f->type == PROTOBUF_C_TYPE_MESSAGE) protobuf_c_message_free_unpacked(((ProtobufCMessage **)*arr)[i], NULL);
        }
        free(*arr);
        *arr = NULL;
        *n = 0;
        return CT_OK;
    }
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        char **str = field;
        if (*str && *str != (const char *)f->default_value) free(*str);
        *str = (char *)f->default_value;
        return CT_OK;
    }
    if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage **sub = field;
        if (*sub) protobuf_c_message_free_unpacked(*sub, NULL);
        *sub = NULL;
        return CT_OK;
    }
    /* a scalar: the default of a freshly initialised message */
    void *fresh = malloc(d->sizeof_message);
    if (!fresh) return nomem();
    protobuf_c_message_init(d, fresh);
    size_t width = f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_INT64 ||
                           f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
                           f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_FIXED64
                       ? 8
                       : f->type == PROTOBUF_C_TYPE_BOOL ? sizeof(protobuf_c_boolean) : 4;
    memcpy(field, (char *)fresh + f->offset, width);
    free(fresh);
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        *(protobuf_c_boolean *)member(p->msg, f->quantifier_offset) = 0;
    return CT_OK;
}

/* The sub-message of a reserved section, created when absent. */
static ct_status reserved_message(ct_config *cfg, const ProtobufCFieldDescriptor *f,
                                  ProtobufCMessage **out)
{
    ProtobufCMessage **slot = member(&cfg->base, f->offset);
    if (!*slot) {
        const ProtobufCMessageDescriptor *d = f->descriptor;
        ProtobufCMessage *m = malloc(d->sizeof_message);
        if (!m) return nomem();
        protobuf_c_message_init(d, m); /* sets the schema's defaults */
        *slot = m;
    }
    *out = *slot;
    return CT_OK;
}

static ct_status add_layer(ct_config *cfg, const char *name, int line)
{
    ct_layer_config **grown = realloc(cfg->layers, (cfg->n_layers + 1) * sizeof *grown);
    if (!grown) return nomem();
    cfg->layers = grown;
    ct_layer_config *l = malloc(sizeof *l);
    if (!l) return nomem();
    ctrain__layer_config__init(l);
    if (!(l->name = strdup(name))) {
        free(l);
        return nomem();
    }
    l->has_line = 1;
    l->line = line;
    cfg->layers[cfg->n_layers++] = l;
    return CT_OK;
}

/* End of a section: a layer is complete now, so check it with the lines
 * of its keys. */
static ct_status close_section(parser *p)
{
    ct_status s = CT_OK;
    if (p->msg && p->layer >= 0) {
        const ct_layer_config *l = p->cfg->layers[p->layer];
        layer_site w = {p->file, p->key_line, l->line};
        s = check_layer(&w, p->cfg, (size_t)p->layer);
    } else if (p->msg && p->section && strcmp(p->section, "plugins") == 0) {
        s = ct_plugins_load_config(p->cfg); /* the layers after it may use their types */
    }
    free(p->key_line);
    p->key_line = NULL;
    p->msg = NULL;
    return s;
}

static ct_status open_reserved(parser *p, const ProtobufCFieldDescriptor *f)
{
    size_t idx = (size_t)(f - ctrain__config__descriptor.fields);
    if (*(ProtobufCMessage **)member(&p->cfg->base, f->offset))
        return fail_line(p, "duplicate section [%s] (first on line %d)", f->name,
                         p->section_line[idx]);
    CT_TRY(reserved_message(p->cfg, f, &p->msg));
    p->section_line[idx] = p->line;
    p->section = f->name;
    p->layer = -1;
    return CT_OK;
}

static ct_status open_layer(parser *p, const char *name)
{
    char q[QUOTE_BUF];
    if (!layer_name_ok(name))
        return fail_line(p, "section name '%s' must be 1 to %d letters, digits, '_' or '-'",
                         quote(q, name), CT_NAME_MAX - 1);
    if (strcmp(name, CT_MODEL_INPUT_NAME) == 0)
        return fail_line(p, "[%s] cannot name a layer: 'input' names the model input in inputs = ...", name);
    long first = find_layer(p->cfg, name, p->cfg->n_layers);
    if (first >= 0)
        return fail_line(p, "duplicate section [%s] (first on line %d)", name,
                         p->cfg->layers[first]->line);
    CT_TRY(add_layer(p->cfg, name, p->line));
    p->layer = (long)p->cfg->n_layers - 1;
    p->msg = &p->cfg->layers[p->layer]->base;
    p->section = p->cfg->layers[p->layer]->name;
    return CT_OK;
}

static ct_status open_section(parser *p, const char *name)
{
    CT_TRY(close_section(p));
    const ProtobufCFieldDescriptor *f = section_field(name);
    if (f)
        CT_TRY(open_reserved(p, f));
    else if (is_planned_section(name))
        return fail_line(p, "section [%s] is not supported by this build yet", name);
    else
        CT_TRY(open_layer(p, name));
    p->key_line = calloc(p->msg->descriptor->n_fields, sizeof *p->key_line);
    return p->key_line ? CT_OK : nomem();
}

static ct_status parse_header(parser *p, char *t)
{
    char q[QUOTE_BUF];
    char *close = strchr(t, ']');
    if (!close) return fail_line(p, "unterminated section header '%s' (expected ']')", quote(q, t));
    if (close[1])
        return fail_line(p, "unexpected '%s' after the section header", quote(q, trim(close + 1)));
    *close = 0;
    char *name = trim(t + 1);
    if (!*name) return fail_line(p, "empty section header '[]'");
    return open_section(p, name);
}

static ct_status parse_assignment(parser *p, char *t)
{
    char q[QUOTE_BUF];
    char *eq = strchr(t, '=');
    if (!eq) return fail_line(p, "expected '[section]' or 'key = value', got '%s'", quote(q, t));
    *eq = 0;
    char *key = trim(t), *value = trim(eq + 1);
    if (!*key) return fail_line(p, "missing key before '='");
    if (!p->msg)
        return fail_line(p, "key '%s' comes before any [section] header", quote(q, key));
    return set_key(p, key, value);
}

/* One line of n bytes (no '\n'); may hold anything. */
static ct_status parse_line(parser *p, const char *s, size_t n)
{
    if (memchr(s, 0, n)) return fail_line(p, "NUL byte in the line (is this a text file?)");
    const char *hash = memchr(s, '#', n);
    if (hash) n = (size_t)(hash - s);
    char *copy = malloc(n + 1);
    if (!copy) return nomem();
    memcpy(copy, s, n);
    copy[n] = 0;
    char *t = trim(copy);
    ct_status st = CT_OK;
    if (*t == '[')
        st = parse_header(p, t);
    else if (*t)
        st = parse_assignment(p, t);
    free(copy);
    return st;
}

static ct_status parse_lines(parser *p, const char *text, size_t len)
{
    size_t pos = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* UTF-8 BOM */
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        p->line++;
        CT_TRY(parse_line(p, text + pos, end - pos));
        pos = end + 1;
    }
    return close_section(p);
}

ct_status ct_config_parse(const char *text, size_t len, const char *name, const char *base_dir,
                          ct_config **out)
{
    *out = NULL;
    parser p = {.file = name ? name : "<config>", .base_dir = base_dir, .layer = -1};
    p.cfg = malloc(sizeof *p.cfg);
    p.section_line = calloc(ctrain__config__descriptor.n_fields, sizeof *p.section_line);
    if (p.cfg) ctrain__config__init(p.cfg);
    ct_status s = p.cfg && p.section_line ? CT_OK : nomem();
    if (s == CT_OK && !(p.cfg->source = strdup(p.file))) s = nomem();
    if (s == CT_OK) s = parse_lines(&p, text ? text : "", text ? len : 0);
    if (s == CT_OK) {
        const ProtobufCFieldDescriptor *mf = section_field("model");
        int model_line = mf ? p.section_line[mf - ctrain__config__descriptor.fields] : 0;
        s = check_required(p.file, p.cfg, model_line);
        const ProtobufCFieldDescriptor *tf = section_field("train");
        if (s == CT_OK)
            s = check_train_outputs(p.file, p.cfg, tf ? p.section_line[tf - ctrain__config__descriptor.fields] : 0);
    }
    if (s == CT_OK) s = ct_config_validate(p.cfg);
    free(p.key_line);
    free(p.section_line);
    if (s != CT_OK) {
        ct_config_free(p.cfg);
        return s;
    }
    *out = p.cfg;
    return CT_OK;
}

/* ---- overrides -------------------------------------------------------- */

static ct_status fail_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static ct_status fail_set(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ct_error_setv(CT_ERR_CONFIG, __FILE__, __LINE__, fmt, ap);
    va_end(ap);
    return locate("<--set>", 0, NULL, NULL);
}

/* Point p at the section an override names: a reserved one (created when
 * the file lacks it) or an existing layer. */
static ct_status override_section(parser *p, const char *name)
{
    const ProtobufCFieldDescriptor *f = section_field(name);
    if (f) {
        p->section = f->name;
        return reserved_message(p->cfg, f, &p->msg);
    }
    long i = find_layer(p->cfg, name, p->cfg->n_layers);
    if (i >= 0) {
        p->layer = i;
        p->msg = &p->cfg->layers[i]->base;
        p->section = p->cfg->layers[i]->name;
        return CT_OK;
    }
    if (is_planned_section(name))
        return fail_set("section [%s] is not supported by this build yet", name);
    name_list known = {0};
    add_section_names(&known);
    for (size_t k = 0; k < p->cfg->n_layers; k++) names_add(&known, p->cfg->layers[k]->name);
    fail_unknown("section", name, known.v, known.n, "sections and layers");
    names_free(&known);
    return locate("<--set>", 0, NULL, NULL);
}

static ct_status apply_override(ct_config *cfg, const char *assignment)
{
    char q[QUOTE_BUF];
    parser p = {.file = "<--set>", .cfg = cfg, .layer = -1};
    char *copy = strdup(assignment);
    if (!copy) return nomem();
    char *eq = strchr(copy, '='), *dot = strchr(copy, '.');
    ct_status s = CT_OK;
    if (!eq || !dot || dot > eq) {
        s = fail_set("'%s' is not SECTION.KEY=VALUE", quote(q, assignment));
    } else {
        *eq = *dot = 0;
        char *section = trim(copy), *key = trim(dot + 1);
        if (!*section || !*key)
            s = fail_set("'%s' is not SECTION.KEY=VALUE", quote(q, assignment));
        if (s == CT_OK) s = override_section(&p, section);
        /* no comment stripping: '#' is an ordinary character on a command line */
        char *value = trim(eq + 1);
        if (s == CT_OK) s = *value ? set_key(&p, key, value) : unset_key(&p, key);
        if (s == CT_OK && p.layer >= 0) {
            layer_site w = {"<--set>", NULL, 0};
            s = check_layer(&w, cfg, (size_t)p.layer);
        }
    }
    free(copy);
    return s == CT_OK ? ct_config_validate(cfg) : s;
}

/* A deep copy through the wire format, which keeps every field. */
static ct_status copy_config(const ct_config *cfg, ct_config **out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    CT_TRY(ct_config_pack(cfg, &buf, &len));
    *out = ctrain__config__unpack(NULL, len, buf);
    free(buf);
    if (!*out) return CT_FAIL(CT_ERR_CONFIG, "<--set>: the config does not survive a copy");
    return CT_OK;
}

/* Applied to a copy that replaces the config only when the result is
 * valid, so a failed override changes nothing. */
ct_status ct_config_override(ct_config *cfg, const char *assignment)
{
    ct_config *work = NULL;
    CT_TRY(copy_config(cfg, &work));
    ct_status s = apply_override(work, assignment);
    if (s == CT_OK) {
        ct_config old = *cfg;
        *cfg = *work;
        *work = old;
    }
    ct_config_free(work);
    return s;
}

/* ---- files and bytes -------------------------------------------------- */

static ct_status read_file(const char *path, char **text, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    /* A config that cannot be read is bad input (exit 2), like a malformed one. */
    if (!fp) return CT_FAIL(CT_ERR_CONFIG, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    ct_status s = buf ? CT_OK : nomem();
    while (s == CT_OK) {
        n += fread(buf + n, 1, cap - n, fp);
        if (ferror(fp)) s = CT_FAIL(CT_ERR_CONFIG, "%s: cannot read: %s", path, strerror(errno));
        else if (feof(fp)) break;
        else if (cap >= CONF_MAX_BYTES)
            s = CT_FAIL(CT_ERR_CONFIG, "%s: larger than %u MiB; is this a .conf file?", path,
                        CONF_MAX_BYTES >> 20);
        else {
            char *grown = realloc(buf, cap * 2);
            if (!grown) s = nomem();
            else buf = grown, cap *= 2;
        }
    }
    fclose(fp);
    if (s != CT_OK) {
        free(buf);
        return s;
    }
    *text = buf;
    *len = n;
    return CT_OK;
}

/* The directory part of path, NULL when there is none (the current one). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    return slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
}

ct_status ct_config_load(const char *path, const char *const *overrides, int n_overrides,
                         ct_config **out)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    CT_TRY(read_file(path, &text, &len));
    char *dir = dir_of(path);
    ct_config *cfg = NULL;
    ct_status s = ct_config_parse(text, len, path, dir, &cfg);
    free(text);
    free(dir);
    for (int i = 0; s == CT_OK && i < n_overrides; i++) s = ct_config_override(cfg, overrides[i]);
    if (s != CT_OK) {
        ct_config_free(cfg);
        return s;
    }
    *out = cfg;
    return CT_OK;
}

void ct_config_free(ct_config *cfg)
{
    if (cfg) protobuf_c_message_free_unpacked(&cfg->base, NULL);
}

ct_status ct_config_pack(const ct_config *cfg, uint8_t **buf, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(&cfg->base);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return nomem();
    *len = protobuf_c_message_pack(&cfg->base, b);
    *buf = b;
    return CT_OK;
}

/* Finds a field of m (or of a message inside it) that this build's
 * schema lacks: 1 with its tag and the message type, else 0. */
static int find_unknown(const ProtobufCMessage *m, uint32_t *tag, const char **where)
{
    if (m->n_unknown_fields) {
        *tag = m->unknown_fields[0].tag;
        *where = m->descriptor->name;
        return 1;
    }
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned k = 0; k < d->n_fields; k++) {
        const ProtobufCFieldDescriptor *f = &d->fields[k];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        size_t n = is_repeated(f) ? *(size_t *)member(m, f->quantifier_offset) : 1;
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *sub =
                is_repeated(f) ? (*(ProtobufCMessage ***)member(m, f->offset))[i]
                               : *(ProtobufCMessage **)member(m, f->offset);
            if (sub && find_unknown(sub, tag, where)) return 1;
        }
    }
    return 0;
}

/* Fields this build does not know are refused rather than dropped: a
 * model from a newer ctrain would silently come out different. (They
 * also need not re-encode: protobuf-c reads an over-long tag 0.) */
ct_status ct_config_unpack(const uint8_t *buf, size_t len, ct_config **out)
{
    const char *where = "";
    uint32_t tag = 0;
    *out = ctrain__config__unpack(NULL, len, buf);
    if (!*out) return CT_FAIL(CT_ERR_CHECKPOINT, "config bytes do not decode (%zu bytes)", len);
    if (find_unknown(&(*out)->base, &tag, &where)) {
        ct_config_free(*out);
        *out = NULL;
        return CT_FAIL(CT_ERR_CHECKPOINT, "config bytes do not decode: field %u of %s is unknown "
                       "to this build (written by a newer ctrain?)", tag, where);
    }
    return CT_OK;
}

/* ---- layer keys for key tables (core/layer.h) -------------------------- */

ct_status ct_config_parse_int(const char *s, int64_t *out) { return parse_int(s, INT64_MIN, INT64_MAX, "an integer", out); }

ct_status ct_config_parse_real(const char *s, double *out) { return parse_real(s, DBL_MAX, "a real", out); }

ct_status ct_config_parse_bool(const char *s, int *out)
{
    protobuf_c_boolean b;
    CT_TRY(parse_bool(s, &b));
    *out = b != 0;
    return CT_OK;
}

/* Element i of field f as .conf text, appended to buf. */
static void render_elem(const ProtobufCFieldDescriptor *f, const void *p, char *buf, size_t cap)
{
    size_t n = strlen(buf);
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT: snprintf(buf + n, cap - n, "%.9g", (double)*(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: snprintf(buf + n, cap - n, "%.17g", *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL: snprintf(buf + n, cap - n, "%s", *(const protobuf_c_boolean *)p ? "true" : "false"); break;
    case PROTOBUF_C_TYPE_STRING: snprintf(buf + n, cap - n, "%s", *(char *const *)p ? *(char *const *)p : ""); break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf + n, cap - n, "%lld", (long long)*(const int64_t *)p);
        break;
    default: snprintf(buf + n, cap - n, "%.0f", elem_number(f, p)); break;
    }
}

const char *ct_config_layer_text(const ct_layer_config *c, const char *key, char *buf, size_t cap, int *line)
{
    if (line) *line = 0;
    for (size_t i = 0; i < c->n_extra; i++)
        if (c->extra[i]->key && strcmp(c->extra[i]->key, key) == 0) {
            if (line) *line = c->extra[i]->has_line ? c->extra[i]->line : 0;
            return c->extra[i]->value ? c->extra[i]->value : "";
        }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&ctrain__layer_config__descriptor, key);
    if (!f || !elem_size(f) || reserved_why(&ctrain__layer_config__descriptor, key)) return NULL;
    size_t n = field_present(&c->base, f);
    if (!n) return NULL;
    if (f->type == PROTOBUF_C_TYPE_STRING && !is_repeated(f)) return *(char **)member(&c->base, f->offset);
    if (!cap) return NULL;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) snprintf(buf + strlen(buf), cap - strlen(buf), ", ");
        render_elem(f, elem_at(&c->base, f, i), buf, cap);
    }
    return buf;
}
