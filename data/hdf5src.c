/* HDF5 data sets as a source stage.
 *
 * Samples are rows along the first axis of a data set. Reading row by row
 * through HDF5 is slow (every H5Dread walks the chunk index and converts
 * types), so rows are read as hyperslabs of a block of consecutive rows
 * into a cache, and next() and get() copy out of it; the file never has to
 * fit in memory. The serial HDF5 library is not thread-safe, so one
 * process-wide mutex serialises every HDF5 call made here and also guards
 * the caches: concurrent get()s are correct, and cheap while they fall in
 * the same block. HDF5 converts every numeric type to float itself. */
#include "memsource.h"
#include "sources.h"

#include <errno.h>
#include <hdf5.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define H5SRC_BLOCK_ROWS 256
#define H5SRC_BLOCK_BYTES (16u << 20)
#define H5SRC_MAX_LABEL 2147483647.0

static pthread_mutex_t h5_lock = PTHREAD_MUTEX_INITIALIZER;

void ct_hdf5_lock(void) { pthread_mutex_lock(&h5_lock); }
void ct_hdf5_unlock(void) { pthread_mutex_unlock(&h5_lock); }

/* One data set and its block cache. */
typedef struct h5_array {
    char *name;         /* data set path, owned */
    hid_t ds;           /* < 0 when not open */
    int rank;
    hsize_t dims[H5S_MAX_RANK];
    int is_int;
    int64_t row_elems;  /* floats per row */
    int64_t block_rows; /* rows per cache block */
    float *cache;       /* block_rows x row_elems */
    int64_t cache_first, cache_rows; /* rows held; cache_rows 0: empty */
} h5_array;

typedef struct h5_stage {
    ct_mem_source src; /* base, name (the file), cursor */
    hid_t file;
    h5_array x, y;
    int has_y;
} h5_stage;

/* --- helpers (called with h5_lock held) ------------------------------- */

typedef struct name_list {
    char buf[256];
    size_t n;
    int count;
} name_list;

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    name_list *l = data;
    if (l->count++ < 12 && l->n + strlen(name) + 4 < sizeof l->buf)
        l->n += (size_t)snprintf(l->buf + l->n, sizeof l->buf - l->n, "%s'%s'", l->n ? ", " : "", name);
    return 0;
}

/* "'images', 'labels'": what the root group holds, for messages. */
static void root_names(hid_t file, name_list *l)
{
    memset(l, 0, sizeof *l);
    H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_name, l);
    if (l->count > 12) snprintf(l->buf + l->n, sizeof l->buf - l->n, ", ...");
    if (l->count == 0) snprintf(l->buf, sizeof l->buf, "nothing");
}

static ct_status array_open(h5_stage *s, h5_array *a, const char *name)
{
    const char *file = s->src.name;
    a->name = strdup(name);
    if (!a->name) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", file);
    htri_t exists = H5Lexists(s->file, name, H5P_DEFAULT);
    a->ds = exists > 0 ? H5Dopen2(s->file, name, H5P_DEFAULT) : -1;
    if (exists > 0 && a->ds < 0)
        return CT_FAIL(CT_ERR_DATA, "%s: '%s' is not a data set (a group?)", file, name);
    if (a->ds < 0) {
        name_list l;
        root_names(s->file, &l);
        return CT_FAIL(CT_ERR_DATA, "%s: no data set '%s' (the root holds %s)", file, name, l.buf);
    }
    hid_t t = H5Dget_type(a->ds), sp = H5Dget_space(a->ds);
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    a->rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (a->rank > 0 && a->rank <= CT_MAX_DIMS + 1) H5Sget_simple_extent_dims(sp, a->dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        return CT_FAIL(CT_ERR_DATA, "%s: data set '%s' is not numeric (expected an integer or float type)", file,
                       name);
    a->is_int = cls == H5T_INTEGER;
    if (a->rank <= 0)
        return CT_FAIL(CT_ERR_DATA, "%s: data set '%s' is a scalar (rank 0); expected samples along the first "
                       "axis", file, name);
    if (a->rank > CT_MAX_DIMS + 1)
        return CT_FAIL(CT_ERR_DATA, "%s: data set '%s' has rank %d (at most %d)", file, name, a->rank,
                       CT_MAX_DIMS + 1);
    a->row_elems = 1;
    for (int i = 0; i < a->rank; i++) {
        if (a->dims[i] == 0)
            return CT_FAIL(CT_ERR_DATA, "%s: data set '%s': dimension %d is 0", file, name, i);
        if (i > 0) a->row_elems *= (int64_t)a->dims[i];
        if (a->row_elems > (1ll << 40))
            return CT_FAIL(CT_ERR_DATA, "%s: data set '%s': samples are too large", file, name);
    }
    int64_t rows = (int64_t)(H5SRC_BLOCK_BYTES / sizeof(float)) / a->row_elems;
    a->block_rows = rows < 1 ? 1 : rows > H5SRC_BLOCK_ROWS ? H5SRC_BLOCK_ROWS : rows;
    if (a->block_rows > (int64_t)a->dims[0]) a->block_rows = (int64_t)a->dims[0];
    a->cache = malloc((size_t)(a->block_rows * a->row_elems) * sizeof(float));
    if (!a->cache) return CT_FAIL(CT_ERR_NOMEM, "%s: data set '%s': block cache", file, name);
    return CT_OK;
}

/* Reads rows [first, first + n) as floats into buf. */
static ct_status read_rows(const h5_stage *s, const h5_array *a, int64_t first, int64_t n, float *buf)
{
    hsize_t start[H5S_MAX_RANK] = {0}, count[H5S_MAX_RANK];
    start[0] = (hsize_t)first;
    count[0] = (hsize_t)n;
    for (int i = 1; i < a->rank; i++) count[i] = a->dims[i];
    hsize_t total = (hsize_t)(n * a->row_elems);
    hid_t fsp = H5Dget_space(a->ds), msp = H5Screate_simple(1, &total, NULL);
    herr_t rc = -1;
    if (fsp >= 0 && msp >= 0 && H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        rc = H5Dread(a->ds, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, buf);
    if (fsp >= 0) H5Sclose(fsp);
    if (msp >= 0) H5Sclose(msp);
    if (rc < 0)
        return CT_FAIL(CT_ERR_DATA, "%s: data set '%s': cannot read rows %lld to %lld (corrupt file?)",
                       s->src.name, a->name, (long long)first, (long long)(first + n - 1));
    return CT_OK;
}

/* Row `pos` through the block cache into dst. */
static ct_status cached_row(const h5_stage *s, h5_array *a, int64_t pos, float *dst)
{
    if (a->cache_rows == 0 || pos < a->cache_first || pos >= a->cache_first + a->cache_rows) {
        int64_t first = pos / a->block_rows * a->block_rows, n = (int64_t)a->dims[0] - first;
        if (n > a->block_rows) n = a->block_rows;
        a->cache_rows = 0;
        CT_TRY(read_rows(s, a, first, n, a->cache));
        a->cache_first = first;
        a->cache_rows = n;
    }
    memcpy(dst, a->cache + (pos - a->cache_first) * a->row_elems, (size_t)a->row_elems * sizeof(float));
    return CT_OK;
}

/* Class labels must be whole, >= 0 and < 2^31; returns the largest. */
static ct_status scan_labels(const h5_stage *s, const h5_array *y, double *max_label)
{
    float *buf = y->cache;
    *max_label = 0;
    for (int64_t first = 0; first < (int64_t)y->dims[0]; first += y->block_rows) {
        int64_t n = (int64_t)y->dims[0] - first < y->block_rows ? (int64_t)y->dims[0] - first : y->block_rows;
        CT_TRY(read_rows(s, y, first, n, buf));
        for (int64_t i = 0; i < n; i++) {
            if (buf[i] < 0)
                return CT_FAIL(CT_ERR_DATA, "%s: data set '%s': label %.0f of sample %lld is negative",
                               s->src.name, y->name, (double)buf[i], (long long)(first + i));
            if (buf[i] > H5SRC_MAX_LABEL)
                return CT_FAIL(CT_ERR_DATA, "%s: data set '%s': label %.0f of sample %lld is too large (expected "
                               "a class index below 2^31)", s->src.name, y->name, (double)buf[i],
                               (long long)(first + i));
            if (buf[i] > *max_label) *max_label = buf[i];
        }
    }
    return CT_OK;
}

/* --- the stage -------------------------------------------------------- */

static ct_status h5_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    h5_stage *s = (h5_stage *)st;
    pthread_mutex_lock(&h5_lock);
    ct_status rc = cached_row(s, &s->x, pos, out->x);
    if (rc == CT_OK && s->has_y) rc = cached_row(s, &s->y, pos, out->y);
    pthread_mutex_unlock(&h5_lock);
    out->index = pos;
    out->rows = 1;
    return rc;
}

static void array_close(h5_array *a)
{
    if (a->ds >= 0) H5Dclose(a->ds);
    free(a->cache);
    free(a->name);
}

static void h5_close_locked(h5_stage *s)
{
    array_close(&s->x);
    array_close(&s->y);
    if (s->file >= 0) H5Fclose(s->file);
    free(s->src.name);
    free(s);
}

static void h5_close(ct_stage *st)
{
    pthread_mutex_lock(&h5_lock);
    h5_close_locked((h5_stage *)st);
    pthread_mutex_unlock(&h5_lock);
}

static const ct_stage_vtable h5_vtable = {"hdf5", ct_mem_source_next, ct_mem_source_reset, ct_mem_source_tell,
                                          ct_mem_source_seek, h5_close, h5_get};

static ct_status open_file(h5_stage *s, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return CT_FAIL(CT_ERR_DATA, "%s: not a regular file", path);
    if (H5Fis_hdf5(path) <= 0)
        return CT_FAIL(CT_ERR_DATA, "%s: not an HDF5 file (expected the signature \\211HDF\\r\\n\\032\\n)", path);
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) return CT_FAIL(CT_ERR_DATA, "%s: HDF5 cannot open the file (corrupt?)", path);
    return CT_OK;
}

/* Labels: one row per sample of x; class indices when 1-D integers. */
static ct_status check_labels(h5_stage *s)
{
    ct_stage *b = &s->src.base;
    if (s->y.dims[0] != s->x.dims[0])
        return CT_FAIL(CT_ERR_DATA, "%s: count mismatch: data set '%s' holds %llu labels, but '%s' holds %llu "
                       "samples", s->src.name, s->y.name, (unsigned long long)s->y.dims[0], s->x.name,
                       (unsigned long long)s->x.dims[0]);
    if (s->y.rank > 1) {
        int64_t d[CT_MAX_DIMS];
        for (int i = 1; i < s->y.rank; i++) d[i - 1] = (int64_t)s->y.dims[i];
        b->y_shape = ct_shape_make(s->y.rank - 1, d);
        return CT_OK;
    }
    b->y_shape = ct_shape1(1);
    if (s->y.is_int) {
        double max_label;
        CT_TRY(scan_labels(s, &s->y, &max_label));
        b->num_classes = (int64_t)max_label + 1;
    }
    return CT_OK;
}

static ct_status h5_setup(h5_stage *s, const char *path, const char *x_dataset, const char *y_dataset)
{
    ct_stage *b = &s->src.base;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    CT_TRY(open_file(s, path));
    CT_TRY(array_open(s, &s->x, x_dataset));
    if (y_dataset) CT_TRY(array_open(s, &s->y, y_dataset));
    int64_t d[CT_MAX_DIMS];
    for (int i = 1; i < s->x.rank; i++) d[i - 1] = (int64_t)s->x.dims[i];
    b->x_shape = s->x.rank == 1 ? ct_shape1(1) : ct_shape_make(s->x.rank - 1, d);
    b->length = (int64_t)s->x.dims[0];
    if (y_dataset) CT_TRY(check_labels(s));
    return CT_OK;
}

ct_status ct_hdf5_open(const char *path, const char *x_dataset, const char *y_dataset, ct_stage **out)
{
    *out = NULL;
    if (!path || !x_dataset) return CT_FAIL(CT_ERR_USAGE, "hdf5 source: a file and an x data set are needed");
    h5_stage *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", path);
    s->src.base.vt = &h5_vtable;
    s->file = s->x.ds = s->y.ds = -1;
    s->has_y = y_dataset != NULL;
    s->src.name = strdup(path);
    if (!s->src.name) {
        free(s);
        return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", path);
    }
    pthread_mutex_lock(&h5_lock);
    ct_status st = h5_setup(s, path, x_dataset, y_dataset);
    if (st != CT_OK) h5_close_locked(s);
    pthread_mutex_unlock(&h5_lock);
    if (st == CT_OK) *out = &s->src.base;
    return st;
}
