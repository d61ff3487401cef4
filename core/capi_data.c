/* The public data-set calls (ct_data_*): whole sources read into memory
 * through data/, and copies of caller arrays. */
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "sources.h"

ct_status ct_data_load(const char *format, const char *x_path, const char *y_path, ct_data **out)
{
    *out = NULL;
    if (!format || !x_path) return CT_FAIL(CT_ERR_USAGE, "ct_data_load: format and x_path are required");
    ct_stage *src = NULL;
    if (!strcmp(format, "idx"))
        CT_TRY(ct_idx_open(x_path, y_path, &src));
    else if (!strcmp(format, "npy"))
        CT_TRY(ct_npy_open(x_path, y_path, &src));
    else
        return CT_FAIL(CT_ERR_USAGE, "ct_data_load: format '%s' is not one of idx, npy", format);
    ct_dataset *d = calloc(1, sizeof *d);
    ct_status st = d ? ct_dataset_from_stage(src, d) : CT_FAIL(CT_ERR_NOMEM, "ct_data_load: out of memory");
    ct_stage_close(src);
    if (st != CT_OK) {
        free(d);
        return st;
    }
    *out = d;
    return CT_OK;
}

ct_status ct_data_from_arrays(int64_t n, int x_rank, const int64_t *x_dims, const float *x, int64_t y_size,
                              const float *y, ct_data **out)
{
    *out = NULL;
    if (n < 0 || x_rank < 1 || x_rank > CT_MAX_DIMS || !x_dims || (n > 0 && !x) || y_size < 0 ||
        (y_size > 0 && n > 0 && !y))
        return CT_FAIL(CT_ERR_USAGE,
                       "ct_data_from_arrays: needs n >= 0, x rank in [1, %d] with its dims and data, y_size >= 0 "
                       "(with y when > 0)",
                       CT_MAX_DIMS);
    ct_dataset *d = calloc(1, sizeof *d);
    if (!d) return CT_FAIL(CT_ERR_NOMEM, "ct_data_from_arrays: out of memory");
    d->n = n;
    d->x_shape = ct_shape_make(x_rank, x_dims);
    d->x_size = ct_shape_numel(&d->x_shape);
    d->y_shape = ct_shape1(y_size);
    d->y_size = y_size;
    d->x = malloc(sizeof(float) * (size_t)(n * d->x_size + 1));
    d->y = malloc(sizeof(float) * (size_t)(n * y_size + 1));
    if (!d->x || !d->y) {
        ct_data_destroy(d);
        return CT_FAIL(CT_ERR_NOMEM, "ct_data_from_arrays: out of memory for %lld samples", (long long)n);
    }
    if (n) memcpy(d->x, x, sizeof(float) * (size_t)(n * d->x_size));
    if (n && y_size) memcpy(d->y, y, sizeof(float) * (size_t)(n * y_size));
    *out = d;
    return CT_OK;
}

void ct_data_destroy(ct_data *d)
{
    if (!d) return;
    ct_dataset_free(d);
    free(d);
}

int64_t ct_data_count(const ct_data *d) { return d ? d->n : 0; }

int ct_data_x_shape(const ct_data *d, int64_t *dims)
{
    if (!d) return 0;
    for (int i = 0; dims && i < d->x_shape.rank; i++) dims[i] = d->x_shape.dims[i];
    return d->x_shape.rank;
}

int64_t ct_data_y_size(const ct_data *d) { return d ? d->y_size : 0; }
int64_t ct_data_num_classes(const ct_data *d) { return d ? d->num_classes : 0; }
const float *ct_data_x(const ct_data *d) { return d ? d->x : NULL; }
const float *ct_data_y(const ct_data *d) { return d ? d->y : NULL; }
