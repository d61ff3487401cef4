/* The configured data: the training source behind the input pipeline, the
 * validation and test sets in memory, and the normalisation statistics. */
#include "inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources.h"
#include "stages.h"


/* Images up to this many floats are augmented in a stack buffer. */

int ct_inputs_is_text(const ct_config *cfg)
{
    const char *f = cfg->data && cfg->data->format ? cfg->data->format : "";
    return strcmp(f, "text") == 0 || strcmp(f, "text_lm") == 0;
}

ct_status ct_inputs_text_options(const ct_config *cfg, ct_text_options *o)
{
    const Ctrain__DataConfig *d = cfg->data;
    memset(o, 0, sizeof *o);
    o->lm = strcmp(d->format, "text_lm") == 0;
    if (!d->has_output_sequence_length)
        return CT_FAIL(CT_ERR_CONFIG, "%s: [data] format = %s needs output_sequence_length = T (the tokens per sample)",
                       cfg->source ? cfg->source : "config", d->format);
    o->sequence_length = d->output_sequence_length;
    o->max_tokens = d->max_tokens;
    o->characters = d->split && strcmp(d->split, "character") == 0;
    o->standardize = !d->text_standardize || strcmp(d->text_standardize, "lower_and_strip_punctuation") == 0 ? CT_TEXT_STRIP
                     : strcmp(d->text_standardize, "lower") == 0                                           ? CT_TEXT_LOWER
                                                                                                            : CT_TEXT_NONE;
    o->delimiter = 0; /* by the file name, see ct_inputs_open_text */
    o->label_column = d->label_column ? d->label_column : "label";
    o->text_column = d->text_column ? d->text_column : "text";
    o->lm_step = d->lm_step;
    o->lm_sequence_targets = d->lm_sequence_targets;
    return CT_OK;
}

ct_status ct_inputs_open_text(const ct_config *cfg, const char *path, const ct_vocab *vocab, double train_part,
                              int labels_optional, ct_stage **out)
{
    ct_text_options o;
    CT_TRY(ct_inputs_text_options(cfg, &o));
    o.labels_optional = labels_optional;
    /* .tsv is tab-separated and .csv comma-separated; other names use [data] delimiter */
    size_t n = strlen(path);
    int known = n >= 4 && (strcmp(path + n - 4, ".tsv") == 0 || strcmp(path + n - 4, ".csv") == 0);
    const char *dl = cfg->data->delimiter;
    if (!known && dl && dl[0]) o.delimiter = strcmp(dl, "\\t") == 0 ? '\t' : dl[0];
    return ct_text_open(path, &o, vocab, train_part, out);
}

ct_status ct_inputs_open(const ct_config *cfg, const char *path, const char *labels, ct_stage **out)
{
    return ct_inputs_open_as(cfg, path, labels, 0, out);
}

/* The comma-separated items of a list value ("a.npy, b.npy"), trimmed,
 * into buf (items point into it); returns the count (at most max). */
static int split_list(const char *v, char *buf, size_t cap, char **items, int max)
{
    int n = 0;
    if (!v) return 0;
    snprintf(buf, cap, "%s", v);
    for (char *p = strtok(buf, ","); p && n < max; p = strtok(NULL, ",")) {
        while (*p == ' ' || *p == '\t') p++;
        size_t len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) p[--len] = 0;
        items[n++] = p;
    }
    return n;
}

/* Several inputs or targets (a list of .npy files, of HDF5 data sets):
 * one source per item, side by side. *handled = 0 when the value names
 * one item (the ordinary sources). */
static ct_status open_parts(const ct_config *cfg, const char *fmt, const char *path, const char *labels,
                            ct_stage **out, int *handled)
{
    const Ctrain__DataConfig *d = cfg->data;
    enum { MAX = 64 };
    char xb[4096], yb[4096], *xi[MAX], *yi[MAX];
    int npy = strcmp(fmt, "npy") == 0, h5 = strcmp(fmt, "hdf5") == 0;
    const char *xs = npy ? path : h5 ? d->x_dataset : NULL, *ys = npy ? labels : h5 ? d->y_dataset : NULL;
    *handled = (npy || h5) && ((xs && strchr(xs, ',')) || (ys && strchr(ys, ',')));
    if (!*handled) return CT_OK;
    int nx = split_list(xs, xb, sizeof xb, xi, MAX), ny = split_list(ys, yb, sizeof yb, yi, MAX);
    ct_stage *parts[2 * MAX] = {0};
    ct_status s = CT_OK;
    for (int k = 0; k < nx + ny && s == CT_OK; k++) {
        const char *item = k < nx ? xi[k] : yi[k - nx];
        s = npy ? ct_npy_open(item, NULL, &parts[k]) : ct_hdf5_open(path, item, NULL, &parts[k]);
    }
    if (s != CT_OK) {
        for (int k = 0; k < nx + ny; k++) ct_stage_close(parts[k]);
        return s;
    }
    return ct_concat_open(parts, nx, ny, path, out);
}

ct_status ct_inputs_open_as(const ct_config *cfg, const char *path, const char *labels, int no_label, ct_stage **out)
{
    const Ctrain__DataConfig *d = cfg->data;
    const char *fmt = d->format ? d->format : "";
    int handled = 0;
    CT_TRY(open_parts(cfg, fmt, path, no_label ? NULL : labels, out, &handled));
    if (handled) return CT_OK;
    if (strcmp(fmt, "idx") == 0) {
        if (!labels) return CT_FAIL(CT_ERR_CONFIG, "[data] format = idx needs a labels file for '%s'", path);
        return ct_idx_open(path, labels, out);
    }
    if (strcmp(fmt, "cifar10") == 0) return ct_cifar_open(path, CT_CIFAR10, out);
    if (strcmp(fmt, "cifar100") == 0) {
        int coarse = d->label_mode && strcmp(d->label_mode, "coarse") == 0;
        if (d->label_mode && !coarse && strcmp(d->label_mode, "fine") != 0)
            return CT_FAIL(CT_ERR_CONFIG, "[data] label_mode = %s: use fine or coarse", d->label_mode);
        return ct_cifar_open(path, coarse ? CT_CIFAR100_COARSE : CT_CIFAR100_FINE, out);
    }
    if (strcmp(fmt, "csv") == 0) {
        ct_csv_options o = {.delimiter = d->delimiter && d->delimiter[0] ? d->delimiter[0] : ',',
                            .header = d->header, .label_column = d->label_column,
                            .skip_rows = d->skip_rows, .no_label = no_label, .text = ct_config_is_trees(cfg)};
        return ct_csv_open(path, &o, out);
    }
    if (strcmp(fmt, "npy") == 0) return ct_npy_open(path, labels, out);
    if (strcmp(fmt, "hdf5") == 0) return ct_hdf5_open(path, d->x_dataset, d->y_dataset, out);
    if (strcmp(fmt, "image_folder") == 0) {
        ct_image_folder_options o = {0, 0, d->color_mode && strcmp(d->color_mode, "grayscale") == 0 ? 1 : 3};
        if (d->n_target_size == 1 || d->n_target_size > 2)
            return CT_FAIL(CT_ERR_CONFIG, "[data] target_size = height, width (two numbers)");
        if (d->n_target_size == 2) {
            o.height = d->target_size[0];
            o.width = d->target_size[1];
        }
        return ct_image_folder_open(path, &o, out);
    }
    if (ct_inputs_is_text(cfg)) return ct_inputs_open_text(cfg, path, NULL, 1.0, 0, out);
    return CT_FAIL(CT_ERR_CONFIG,
                   "[data] format '%s' is not known: use idx, csv, cifar10, cifar100, npy, hdf5, image_folder, text or "
                   "text_lm", fmt);
}

/* A deep copy of a vocabulary (it outlives the source that built it). */
static ct_status vocab_copy(const ct_vocab *v, ct_vocab **out)
{
    char *t = NULL;
    size_t n = 0;
    CT_TRY(ct_vocab_serialize(v, &t, &n));
    ct_status s = ct_vocab_parse(t, n, "vocabulary", out);
    free(t);
    return s;
}

/* The training source; text formats build the vocabulary from its
 * training part (before validation_split's tail) unless one was given. */
static ct_status open_train(ct_inputs *in, const ct_config *cfg)
{
    const Ctrain__DataConfig *d = cfg->data;
    if (!ct_inputs_is_text(cfg)) return ct_inputs_open(cfg, d->train, d->train_labels, &in->source);
    double part = !d->validation && d->has_validation_split && d->validation_split > 0 ? 1.0 - ct_inputs_decimal(d->validation_split) : 1.0;
    CT_TRY(ct_inputs_open_text(cfg, d->train, in->vocab, part, 0, &in->source));
    return in->vocab ? CT_OK : vocab_copy(ct_text_stage_vocab(in->source), &in->vocab);
}

static ct_status read_set(const ct_config *cfg, const ct_inputs *in, const char *path, const char *labels,
                          ct_dataset *out)
{
    ct_stage *s = NULL;
    if (ct_inputs_is_text(cfg)) {
        if (!in->vocab)
            return CT_FAIL(CT_ERR_CONFIG, "%s: a text file needs the vocabulary of the training data (or a model file's)",
                           path);
        CT_TRY(ct_inputs_open_text(cfg, path, in->vocab, 1.0, 0, &s));
    } else {
        CT_TRY(ct_inputs_open(cfg, path, labels, &s));
    }
    ct_status st = ct_dataset_from_stage(s, out);
    ct_stage_close(s);
    return st;
}

/* Positions [lo, hi) of the source into memory. */
static ct_status read_range(ct_stage *src, int64_t lo, int64_t hi, ct_dataset *out)
{
    ct_stage *r = NULL;
    CT_TRY(ct_range_open(src, lo, hi, 0, &r));
    ct_status s = ct_dataset_from_stage(r, out);
    ct_stage_close(r);
    return s;
}

void ct_inputs_normalize_sample(const ct_inputs *in, float *x, int64_t size)
{
    if (in->rescale != 1.0) {
        float f = (float)in->rescale;
        for (int64_t i = 0; i < size; i++) x[i] *= f;
    }
    if ((in->samplewise_center || in->samplewise_std) && size > 0) { /* Keras: x -= mean(x); x /= std(x) + 1e-6 */
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < size; i++) sum += x[i];
        float mean = (float)(sum / (double)size);
        if (in->samplewise_center)
            for (int64_t i = 0; i < size; i++) x[i] -= mean;
        if (in->samplewise_std) {
            float m2 = in->samplewise_center ? 0.0f : mean;
            for (int64_t i = 0; i < size; i++) sq += (double)(x[i] - m2) * (double)(x[i] - m2);
            float inv = 1.0f / ((float)sqrt(sq / (double)size) + 1e-6f);
            for (int64_t i = 0; i < size; i++) x[i] *= inv;
        }
    }
    if (in->mean) {
        int64_t c = in->n_features;
        for (int64_t i = 0; i < size; i += c)
            for (int64_t k = 0; k < c; k++) x[i + k] = (x[i + k] - in->mean[k]) / in->std[k];
    }
}

void ct_inputs_normalize(const ct_inputs *in, ct_dataset *d)
{
    for (int64_t i = 0; i < d->n; i++) ct_inputs_normalize_sample(in, d->x + i * d->x_size, d->x_size);
}

/* Per-channel (last axis) statistics of the training part after rescale:
 * Keras's ImageDataGenerator.fit(x_train) (which computes them before
 * rescale; we compute what standardize() will actually see), and the
 * per-feature z-score of [data] standardize for tabular data. */
static ct_status fit_statistics(ct_inputs *in, int center, int scale, double eps)
{
    const ct_stage *src = in->source;
    int64_t xs = ct_shape_numel(&src->x_shape), c = src->x_shape.dims[src->x_shape.rank - 1];
    float *x = malloc(sizeof(float) * (size_t)xs), y[64];
    float *ybuf = src->y_shape.rank && ct_shape_numel(&src->y_shape) > 64
                      ? malloc(sizeof(float) * (size_t)ct_shape_numel(&src->y_shape))
                      : y;
    in->mean = malloc(sizeof(float) * (size_t)c);
    in->std = malloc(sizeof(float) * (size_t)c);
    ct_feature_stats fs = {0};
    ct_status s = !x || !ybuf || !in->mean || !in->std ? CT_FAIL(CT_ERR_NOMEM, "feature statistics")
                                                       : ct_feature_stats_init(&fs, (int)c);
    ct_inputs tmp = {.rescale = in->rescale};
    for (int64_t i = 0; s == CT_OK && i < in->n_train; i++) {
        ct_sample smp = {x, ybuf, 0, 1};
        s = ct_stage_get(in->source, i, &smp);
        if (s != CT_OK) break;
        ct_inputs_normalize_sample(&tmp, x, xs);
        ct_feature_stats_add(&fs, x, xs / c);
    }
    if (s == CT_OK) {
        ct_feature_stats_finish(&fs, in->mean, in->std);
        for (int64_t k = 0; k < c; k++) {
            if (!center) in->mean[k] = 0;
            in->std[k] = scale ? in->std[k] + (float)eps : 1.0f;
        }
        in->n_features = c;
    }
    ct_feature_stats_free(&fs);
    free(x);
    if (ybuf != y) free(ybuf);
    return s;
}

static ct_status setup_augment(ct_inputs *in, const ct_config *cfg)
{
    const Ctrain__AugmentConfig *a = cfg->augment;
    ct_augment_options *o = &in->aug;
    ct_augment_defaults(o);
    o->seed = (uint64_t)cfg->train->seed;
    in->rescale = a && a->has_rescale ? a->rescale : 1.0;
    if (!a) return CT_OK;
    in->samplewise_center = a->samplewise_center;
    in->samplewise_std = a->samplewise_std_normalization;
    o->rotation_range = a->rotation_range;
    o->width_shift_range = a->width_shift_range;
    o->height_shift_range = a->height_shift_range;
    o->shear_range = a->shear_range;
    if (a->n_zoom_range == 1) {
        o->zoom_lo = 1 - a->zoom_range[0];
        o->zoom_hi = 1 + a->zoom_range[0];
    } else if (a->n_zoom_range == 2) {
        o->zoom_lo = a->zoom_range[0];
        o->zoom_hi = a->zoom_range[1];
    }
    if (a->n_brightness_range == 2) {
        o->brightness_lo = a->brightness_range[0];
        o->brightness_hi = a->brightness_range[1];
    } else if (a->n_brightness_range) {
        return CT_FAIL(CT_ERR_CONFIG, "[augment] brightness_range = lo, hi (two numbers)");
    }
    if (o->zoom_lo > o->zoom_hi || o->brightness_lo > o->brightness_hi)
        return CT_FAIL(CT_ERR_CONFIG, "[augment] zoom_range and brightness_range are lo, hi with lo <= hi");
    o->horizontal_flip = a->horizontal_flip;
    o->vertical_flip = a->vertical_flip;
    o->channel_shift_range = a->channel_shift_range;
    const char *fm = a->fill_mode ? a->fill_mode : "nearest";
    o->fill_mode = strcmp(fm, "constant") == 0 ? CT_FILL_CONSTANT
                   : strcmp(fm, "reflect") == 0 ? CT_FILL_REFLECT
                   : strcmp(fm, "wrap") == 0    ? CT_FILL_WRAP
                                                : CT_FILL_NEAREST;
    o->cval = (float)a->cval;
    o->interpolation = a->interpolation && strcmp(a->interpolation, "nearest") == 0 ? CT_INTERP_NEAREST
                                                                                   : CT_INTERP_BILINEAR;
    o->crop_padding = a->crop_padding;
    in->augment = ct_augment_is_random(o);
    return CT_OK;
}

/* The double the user wrote for a float field ("0.3" is 0.30000001f, and
 * 10 * (1 - 0.30000001) truncates to 6 where Keras's doubles give 7). */
double ct_inputs_decimal(float f)
{
    char b[32];
    snprintf(b, sizeof b, "%.6g", (double)f);
    return strtod(b, NULL);
}

ct_status ct_inputs_load(const ct_config *cfg, int want_train, ct_inputs *out)
{
    memset(out, 0, sizeof *out);
    const Ctrain__DataConfig *d = cfg->data;
    out->train_path = d ? d->train : NULL;
    out->labels_path = d && d->train_labels ? d->train_labels : NULL;
    if (!d || !d->train) return CT_FAIL(CT_ERR_CONFIG, "%s: [data] needs train = <file>", cfg->source ? cfg->source : "config");
    ct_status s = setup_augment(out, cfg);
    if (s != CT_OK) return s;
    const Ctrain__AugmentConfig *a = cfg->augment;
    int featurewise = a && (a->featurewise_center || a->featurewise_std_normalization);
    if (featurewise && d->standardize) {
        s = CT_FAIL(CT_ERR_CONFIG, "[data] standardize and [augment] featurewise_* both normalise the inputs; choose one");
        goto fail;
    }
    /* The training file is read even for evaluation when the test set is
     * a split of it, or normalisation needs its statistics. */
    int need_train = want_train || (!d->test && !d->validation) || d->standardize || featurewise || d->has_test_split ||
                     ct_inputs_is_text(cfg); /* the vocabulary comes from the training part */
    if (need_train) {
        if ((s = open_train(out, cfg)) != CT_OK) goto fail;
        if (d->has_test_split && d->test_split > 0) {
            if (d->test) {
                s = CT_FAIL(CT_ERR_CONFIG, "[data] gives both test = and test_split =; choose one");
                goto fail;
            }
            s = ct_dataset_from_stage(out->source, &out->train);
            ct_stage_close(out->source);
            out->source = NULL;
            if (s != CT_OK) goto fail;
            if ((s = ct_dataset_split_random(&out->train, ct_inputs_decimal(d->test_split), (uint64_t)d->split_seed, &out->test)) != CT_OK)
                goto fail;
            if ((s = ct_dataset_stage_open(&out->train, &out->source)) != CT_OK) goto fail;
        }
        if (!out->source->vt->get) {
            s = CT_FAIL(CT_ERR_DATA, "%s: the %s source has no random access", d->train, out->source->vt->name);
            goto fail;
        }
        int64_t n = out->source->length;
        out->n_train = n;
        if (!d->validation && d->has_validation_split && d->validation_split > 0) {
            /* Keras: split_at = int(num_samples * (1. - validation_split)), before shuffling. */
            out->n_train = (int64_t)((double)n * (1.0 - ct_inputs_decimal(d->validation_split)));
            if (out->n_train < 1 || out->n_train >= n) {
                s = CT_FAIL(CT_ERR_CONFIG, "[data] validation_split = %g of %lld samples leaves %lld for training and %lld for validation",
                            d->validation_split, (long long)n, (long long)out->n_train, (long long)(n - out->n_train));
                goto fail;
            }
            if ((s = read_range(out->source, out->n_train, n, &out->val)) != CT_OK) goto fail;
        }
        if (d->standardize || featurewise) {
            if (out->n_train < 1 || out->source->x_shape.rank < 1) {
                s = CT_FAIL(CT_ERR_DATA, "%s: no training samples to compute feature statistics from", d->train);
                goto fail;
            }
            if (d->standardize) s = fit_statistics(out, 1, 1, 0.0);
            else s = fit_statistics(out, a->featurewise_center, a->featurewise_std_normalization, 1e-6);
            if (s != CT_OK) goto fail;
        }
    }
    if (d->validation && (s = read_set(cfg, out, d->validation, d->validation_labels, &out->val)) != CT_OK) goto fail;
    if (d->test && !(d->has_test_split && d->test_split > 0) &&
        (s = read_set(cfg, out, d->test, d->test_labels, &out->test)) != CT_OK)
        goto fail;
    ct_inputs_normalize(out, &out->val);
    ct_inputs_normalize(out, &out->test);
    return CT_OK;
fail:
    ct_inputs_free(out);
    return s;
}

/* The map of training samples: augmentation, then normalisation, then a
 * check that the sample is finite (a NaN would train silently: ReLU makes
 * it 0). scratch is the worker's own buffer of one sample. */
static ct_status train_map(void *ctx, uint64_t epoch, ct_sample *smp, float *scratch)
{
    const ct_inputs *in = ctx;
    const ct_shape *sh = &in->source->x_shape;
    int64_t size = ct_shape_numel(sh);
    for (int64_t k = 0; k < size; k++)
        if (!isfinite(smp->x[k]))
            return CT_FAIL(CT_ERR_DATA, "%s: sample %lld: value %lld is %s; expected finite numbers",
                           in->train_path ? in->train_path : "training data", (long long)smp->index, (long long)k,
                           isnan(smp->x[k]) ? "NaN" : "infinite");
    const ct_shape *ysh = &in->source->y_shape;
    for (int64_t k = 0, ys = ysh->rank ? ct_shape_numel(ysh) : 0; k < ys; k++)
        if (!isfinite(smp->y[k]))
            return CT_FAIL(CT_ERR_DATA, "%s: sample %lld: target %lld is %s; expected finite numbers",
                           in->labels_path ? in->labels_path : (in->train_path ? in->train_path : "training data"),
                           (long long)smp->index, (long long)k, isnan(smp->y[k]) ? "NaN" : "infinite");
    if (in->augment) {
        int h = (int)sh->dims[0], w = (int)sh->dims[1], c = sh->rank == 3 ? (int)sh->dims[2] : 1;
        ct_transform t;
        ct_augment_draw(&in->aug, epoch, smp->index, h, w, &t);
        ct_augment_apply(&in->aug, &t, h, w, c, smp->x, scratch);
    }
    ct_inputs_normalize_sample(in, smp->x, size);
    return CT_OK;
}

ct_status ct_inputs_pipeline(ct_inputs *in, const ct_config *cfg, uint64_t seed, int64_t batch_size, int rank,
                             int world, ct_stage **out)
{
    const Ctrain__DataConfig *d = cfg->data;
    if (!in->source) return CT_FAIL(CT_ERR_USAGE, "no training data was read");
    const ct_shape *sh = &in->source->x_shape;
    if (in->augment && !(sh->rank == 3 || sh->rank == 2)) {
        char b[64];
        return CT_FAIL(CT_ERR_CONFIG, "[augment] image transforms need image samples (height, width[, channels]); %s has "
                       "samples of shape %s", d->train, ct_shape_str(sh, 0, b, sizeof b));
    }
    ct_pipeline_options o = {.seed = seed, .shuffle = cfg->train->shuffle, .shuffle_buffer = d->shuffle_buffer,
                             .cache = d->cache, .workers = d->workers, .prefetch = d->prefetch,
                             .batch_size = batch_size, .rank = rank, .world = world,
                             .drop_remainder = d->drop_remainder, .map = train_map, .map_ctx = in};
    return ct_pipeline_open(in->source, 0, in->n_train, 0, &o, out);
}

void ct_inputs_free(ct_inputs *in)
{
    ct_stage_close(in->source);
    ct_dataset_free(&in->train);
    ct_dataset_free(&in->val);
    ct_dataset_free(&in->test);
    free(in->mean);
    free(in->std);
    ct_vocab_destroy(in->vocab);
    memset(in, 0, sizeof *in);
}
