/* Reading the configured data sets into memory. */
#include "inputs.h"

#include <stdlib.h>
#include <string.h>

#include "sources.h"

ct_status ct_inputs_open(const ct_config *cfg, const char *path, const char *labels, ct_stage **out)
{
    const Ctrain__DataConfig *d = cfg->data;
    const char *fmt = d->format ? d->format : "";
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
                            .skip_rows = d->skip_rows};
        return ct_csv_open(path, &o, out);
    }
    return CT_FAIL(CT_ERR_CONFIG, "[data] format '%s' is not known: use idx, csv, cifar10 or cifar100", fmt);
}

static ct_status read_set(const ct_config *cfg, const char *path, const char *labels, ct_dataset *out)
{
    ct_stage *s = NULL;
    CT_TRY(ct_inputs_open(cfg, path, labels, &s));
    ct_status st = ct_dataset_from_stage(s, out);
    ct_stage_close(s);
    return st;
}

void ct_inputs_normalize(const ct_inputs *in, ct_dataset *d)
{
    if (d->n == 0) return;
    if (in->rescale != 1.0) ct_dataset_scale(d, (float)in->rescale);
    if (in->mean) ct_dataset_standardize(d, in->mean, in->std);
}

ct_status ct_inputs_load(const ct_config *cfg, int want_train, ct_inputs *out)
{
    memset(out, 0, sizeof *out);
    out->rescale = cfg->augment && cfg->augment->has_rescale ? cfg->augment->rescale : 1.0;
    const Ctrain__DataConfig *d = cfg->data;
    if (!d || !d->train) return CT_FAIL(CT_ERR_CONFIG, "%s: [data] needs train = <file>", cfg->source ? cfg->source : "config");
    ct_status s;
    /* The training file is read even for evaluation when the test set is
     * a split of it, or standardisation needs its statistics. */
    int need_train = want_train || (!d->test && !d->validation) || d->standardize || d->has_test_split;
    if (need_train && (s = read_set(cfg, d->train, d->train_labels, &out->train)) != CT_OK) goto fail;
    if (d->has_test_split && d->test_split > 0) {
        if (d->test) {
            s = CT_FAIL(CT_ERR_CONFIG, "[data] gives both test = and test_split =; choose one");
            goto fail;
        }
        if ((s = ct_dataset_split_random(&out->train, d->test_split, (uint64_t)d->split_seed, &out->test)) != CT_OK)
            goto fail;
    } else if (d->test && (s = read_set(cfg, d->test, d->test_labels, &out->test)) != CT_OK) {
        goto fail;
    }
    if (d->validation) {
        if ((s = read_set(cfg, d->validation, d->validation_labels, &out->val)) != CT_OK) goto fail;
    } else if (d->has_validation_split && d->validation_split > 0 && out->train.n) {
        if ((s = ct_dataset_split_tail(&out->train, d->validation_split, &out->val)) != CT_OK) goto fail;
    }
    if (d->standardize && out->train.n) {
        out->n_features = out->train.x_size;
        out->mean = malloc(sizeof(float) * (size_t)out->n_features);
        out->std = malloc(sizeof(float) * (size_t)out->n_features);
        if (!out->mean || !out->std) {
            s = CT_FAIL(CT_ERR_NOMEM, "feature statistics");
            goto fail;
        }
        if (out->rescale != 1.0) ct_dataset_scale(&out->train, (float)out->rescale);
        ct_dataset_feature_stats(&out->train, out->mean, out->std);
        ct_dataset_standardize(&out->train, out->mean, out->std);
    } else {
        ct_inputs_normalize(out, &out->train);
    }
    ct_inputs_normalize(out, &out->val);
    ct_inputs_normalize(out, &out->test);
    return CT_OK;
fail:
    ct_inputs_free(out);
    return s;
}

void ct_inputs_free(ct_inputs *in)
{
    ct_dataset_free(&in->train);
    ct_dataset_free(&in->val);
    ct_dataset_free(&in->test);
    free(in->mean);
    free(in->std);
    memset(in, 0, sizeof *in);
}
