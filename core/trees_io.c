/* Boosted-tree model files (HDF5), the text dump and the summary.
 *
 *   /                 attrs ctrain_format (1), ctrain_kind "boosted_trees"
 *   /ctrain/config    packed ctrain.Config (uint8)
 *   /trees            attrs loss (0 squared_error, 1 binary, 2 multiclass),
 *                     n_features, n_classes, k (trees per iteration),
 *                     n_iter, early_stopped
 *   /trees/baseline   float64 (k)
 *   /trees/train_loss, val_loss   float64 (n_iter + 1): sklearn's loss
 *                     after each iteration (0: the baseline; NaN: none)
 *   /trees/feature_*  names (strings), categorical, has_missing (uint8),
 *                     edge_offsets (int64, F + 1) into edges (float64),
 *                     level_offsets (int64, F + 1) into levels (strings)
 *   /trees/tree_offsets (int64, n_iter * k + 1) into the node_* arrays:
 *                     left, right, feature, depth, bin (int32), missing_left,
 *                     categorical (uint8), cats (uint32, (N, 8)),
 *                     threshold, value, gain (float64), count (int64)
 * Node indices are local to their tree; children follow their parent. */
#include "trees.h"
#include "outfile.h"
#include "checkpoint.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sources.h"

#define TREES_FORMAT 1

/* --- HDF5 helpers ------------------------------------------------------------ */

static int write_ds(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int rank, const hsize_t *dims,
                    const void *data)
{
    hsize_t zero = 0;
    hid_t sp = H5Screate_simple(rank, dims ? dims : &zero, NULL);
    /* Fletcher32 on fixed-size data, so a damaged file is noticed on read */
    hid_t dcpl = H5Tis_variable_str(file_type) > 0 || !dims ? H5Pcreate(H5P_DATASET_CREATE)
                                                           : ct_hdf5_checksummed(rank, dims, H5Tget_size(file_type));
    hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int empty = dims[0] == 0;
    int ok = d >= 0 && (empty || H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ok;
}

static int write_1d(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int64_t n, const void *data)
{
    hsize_t dim = (hsize_t)n;
    return write_ds(loc, name, file_type, mem_type, 1, &dim, data);
}

static int write_strings(hid_t loc, const char *name, char **v, int64_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int ok = write_1d(loc, name, t, t, n, v);
    H5Tclose(t);
    return ok;
}

static int write_attr(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok;
}

static int write_int_attr(hid_t obj, const char *name, int64_t v) { return write_attr(obj, name, H5T_NATIVE_INT64, &v); }

static int write_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    int ok = write_attr(obj, name, t, &value);
    H5Tclose(t);
    return ok;
}

/* Elements of a 1-D data set (or rows of a 2-D one); -1 when absent. */
static int64_t ds_len(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    int r = H5Sget_simple_extent_ndims(sp);
    if (r >= 1 && r <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    H5Dclose(d);
    return r >= 1 && r <= 2 ? (int64_t)dims[0] : -1;
}

/* Read data set `name` of exactly n elements (rows) into v. */
static ct_status read_ds(hid_t loc, const char *path, const char *name, hid_t mem_type, int64_t n, void *v)
{
    int64_t have = ds_len(loc, name);
    if (have != n)
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: trees/%s has %lld entries, expected %lld", path, name, (long long)have,
                       (long long)n);
    if (n == 0) return CT_OK;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t e = H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    char where[256];
    snprintf(where, sizeof where, "trees/%s", name);
    ct_status s = e < 0 ? ct_hdf5_read_failure(d, path, where) : CT_OK;
    H5Dclose(d);
    return s;
}

static ct_status read_strings(hid_t loc, const char *path, const char *name, int64_t n, char **out)
{
    char **tmp = calloc((size_t)(n ? n : 1), sizeof *tmp);
    if (!tmp) return CT_FAIL(CT_ERR_NOMEM, "strings");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    ct_status s = read_ds(loc, path, name, t, n, tmp);
    H5Tclose(t);
    for (int64_t i = 0; i < n; i++) {
        if (s == CT_OK && !(out[i] = strdup(tmp[i] ? tmp[i] : ""))) s = CT_FAIL(CT_ERR_NOMEM, "strings");
        if (tmp[i]) H5free_memory(tmp[i]);
    }
    free(tmp);
    return s;
}

static ct_status read_int_attr(hid_t obj, const char *path, const char *name, int64_t *v)
{
    if (H5Aexists(obj, name) <= 0) return CT_FAIL(CT_ERR_CHECKPOINT, "%s: no attribute trees.%s", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t e = H5Aread(a, H5T_NATIVE_INT64, v);
    H5Aclose(a);
    return e < 0 ? CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot read trees.%s", path, name) : CT_OK;
}

/* --- saving ------------------------------------------------------------------ */

typedef struct node_arrays {
    int32_t *left, *right, *feature, *depth, *bin;
    uint8_t *missing_left, *categorical;
    uint32_t *cats;
    double *threshold, *value, *gain;
    int64_t *count;
} node_arrays;

static void node_arrays_free(node_arrays *a)
{
    free(a->left), free(a->right), free(a->feature), free(a->depth), free(a->bin), free(a->missing_left);
    free(a->categorical), free(a->cats), free(a->threshold), free(a->value), free(a->gain), free(a->count);
}

static int node_arrays_alloc(node_arrays *a, int64_t n)
{
    size_t k = (size_t)(n ? n : 1);
    a->left = malloc(k * 4), a->right = malloc(k * 4), a->feature = malloc(k * 4), a->depth = malloc(k * 4);
    a->bin = malloc(k * 4), a->missing_left = malloc(k), a->categorical = malloc(k), a->cats = malloc(k * 32);
    a->threshold = malloc(k * 8), a->value = malloc(k * 8), a->gain = malloc(k * 8), a->count = malloc(k * 8);
    return a->left && a->right && a->feature && a->depth && a->bin && a->missing_left && a->categorical && a->cats &&
           a->threshold && a->value && a->gain && a->count;
}

static int write_nodes(hid_t g, const ct_trees *m)
{
    int64_t T = (int64_t)m->n_iter * m->k, N = 0;
    int64_t *off = malloc(sizeof *off * (size_t)(T + 1));
    if (!off) return 0;
    off[0] = 0;
    for (int64_t t = 0; t < T; t++) off[t + 1] = (N += m->trees[t].n_nodes);
    node_arrays a = {0};
    int ok = node_arrays_alloc(&a, N);
    for (int64_t t = 0, i = 0; ok && t < T; t++)
        for (int j = 0; j < m->trees[t].n_nodes; j++, i++) {
            const ct_tree_node *nd = &m->trees[t].nodes[j];
            a.left[i] = nd->left, a.right[i] = nd->right, a.feature[i] = nd->feature, a.depth[i] = nd->depth;
            a.bin[i] = nd->bin, a.missing_left[i] = nd->missing_left, a.categorical[i] = nd->categorical;
            memcpy(a.cats + i * 8, nd->cats, sizeof nd->cats);
            a.threshold[i] = nd->threshold, a.value[i] = nd->value, a.gain[i] = nd->gain, a.count[i] = nd->count;
        }
    hsize_t cd[2] = {(hsize_t)N, 8};
    ok = ok && write_1d(g, "tree_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, T + 1, off) &&
         write_1d(g, "node_left", H5T_STD_I32LE, H5T_NATIVE_INT32, N, a.left) &&
         write_1d(g, "node_right", H5T_STD_I32LE, H5T_NATIVE_INT32, N, a.right) &&
         write_1d(g, "node_feature", H5T_STD_I32LE, H5T_NATIVE_INT32, N, a.feature) &&
         write_1d(g, "node_depth", H5T_STD_I32LE, H5T_NATIVE_INT32, N, a.depth) &&
         write_1d(g, "node_bin", H5T_STD_I32LE, H5T_NATIVE_INT32, N, a.bin) &&
         write_1d(g, "node_missing_left", H5T_STD_U8LE, H5T_NATIVE_UINT8, N, a.missing_left) &&
         write_1d(g, "node_categorical", H5T_STD_U8LE, H5T_NATIVE_UINT8, N, a.categorical) &&
         write_ds(g, "node_cats", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, cd, a.cats) &&
         write_1d(g, "node_threshold", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, N, a.threshold) &&
         write_1d(g, "node_value", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, N, a.value) &&
         write_1d(g, "node_gain", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, N, a.gain) &&
         write_1d(g, "node_count", H5T_STD_I64LE, H5T_NATIVE_INT64, N, a.count);
    node_arrays_free(&a);
    free(off);
    return ok;
}

static int write_features(hid_t g, const ct_trees *m)
{
    int F = m->n_features;
    int64_t E = 0, L = 0;
    for (int f = 0; f < F; f++) E += m->features[f].n_edges, L += m->features[f].n_levels;
    int64_t *eo = malloc(sizeof *eo * (size_t)(F + 1)), *lo = malloc(sizeof *lo * (size_t)(F + 1));
    double *edges = malloc(sizeof *edges * (size_t)(E + 1));
    char **names = malloc(sizeof *names * (size_t)F), **levels = malloc(sizeof *levels * (size_t)(L + 1));
    uint8_t *cat = malloc((size_t)F), *miss = malloc((size_t)F);
    int ok = eo && lo && edges && names && levels && cat && miss;
    if (ok) {
        eo[0] = lo[0] = 0;
        for (int f = 0; f < F; f++) {
            const ct_trees_feature *fe = &m->features[f];
            if (fe->n_edges) memcpy(edges + eo[f], fe->edges, sizeof(double) * (size_t)fe->n_edges);
            for (int i = 0; i < fe->n_levels; i++) levels[lo[f] + i] = fe->levels[i];
            eo[f + 1] = eo[f] + fe->n_edges;
            lo[f + 1] = lo[f] + fe->n_levels;
            names[f] = fe->name;
            cat[f] = (uint8_t)fe->categorical;
            miss[f] = (uint8_t)fe->has_missing;
        }
        ok = write_strings(g, "feature_names", names, F) &&
             write_1d(g, "feature_categorical", H5T_STD_U8LE, H5T_NATIVE_UINT8, F, cat) &&
             write_1d(g, "feature_has_missing", H5T_STD_U8LE, H5T_NATIVE_UINT8, F, miss) &&
             write_1d(g, "edge_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, F + 1, eo) &&
             write_1d(g, "edges", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, E, edges) &&
             write_1d(g, "level_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, F + 1, lo) &&
             write_strings(g, "levels", levels, L);
    }
    free(eo), free(lo), free(edges), free(names), free(levels), free(cat), free(miss);
    return ok;
}

static int write_model(hid_t file, const ct_config *cfg, const ct_trees *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ct_config_pack(cfg, &buf, &len) != CT_OK) return 0;
    hid_t c = H5Gcreate2(file, "ctrain", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = c >= 0 && write_1d(c, "config", H5T_STD_U8LE, H5T_NATIVE_UINT8, (int64_t)len, buf);
    if (c >= 0) H5Gclose(c);
    free(buf);
    hid_t g = ok ? H5Gcreate2(file, "trees", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    ok = g >= 0 && write_int_attr(file, "ctrain_format", TREES_FORMAT) &&
         write_str_attr(file, "ctrain_kind", "boosted_trees") && write_int_attr(g, "loss", m->loss) &&
         write_int_attr(g, "n_features", m->n_features) && write_int_attr(g, "n_classes", m->n_classes) &&
         write_int_attr(g, "k", m->k) && write_int_attr(g, "n_iter", m->n_iter) &&
         write_int_attr(g, "early_stopped", m->early_stopped) &&
         write_1d(g, "baseline", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->k, m->baseline) &&
         write_1d(g, "train_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->n_iter + 1, m->train_loss) &&
         write_1d(g, "val_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m->n_iter + 1, m->val_loss) &&
         write_features(g, m) && write_nodes(g, m);
    if (g >= 0) H5Gclose(g);
    return ok;
}

/* Built in memory and written through a temporary name (core/checkpoint.h):
 * a full disk is an errno naming the file, and the old file stays. */
ct_status ct_trees_save(const char *path, const ct_config *cfg, const ct_trees *m)
{
    void *image = NULL;
    size_t len = 0;
    ct_hdf5_lock();
    hid_t f = ct_hdf5_memory_create(path);
    ct_status s = f >= 0 && write_model(f, cfg, m) ? CT_OK : CT_FAIL(CT_ERR_IO, "%s: HDF5 cannot build the model", path);
    if (s == CT_OK) s = ct_hdf5_memory_image(f, path, &image, &len);
    else if (f >= 0) H5Fclose(f);
    ct_hdf5_unlock();
    if (s == CT_OK) s = ct_write_file_atomic(path, image, len);
    free(image);
    return s;
}

/* --- loading ----------------------------------------------------------------- */

int ct_trees_file_is(const char *path)
{
    FILE *fp = fopen(path, "rb");
    unsigned char sig[8];
    size_t n = fp ? fread(sig, 1, 8, fp) : 0;
    if (fp) fclose(fp);
    if (n != 8 || memcmp(sig, "\x89HDF\r\n\x1a\n", 8) != 0) return 0;
    ct_hdf5_lock();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int yes = f >= 0 && H5Lexists(f, "trees", H5P_DEFAULT) > 0;
    if (f >= 0) H5Fclose(f);
    ct_hdf5_unlock();
    return yes;
}

static ct_status load_features(hid_t g, const char *path, ct_trees *m)
{
    int F = m->n_features;
    int64_t *eo = malloc(sizeof *eo * (size_t)(F + 1)), *lo = malloc(sizeof *lo * (size_t)(F + 1));
    uint8_t *cat = malloc((size_t)F), *miss = malloc((size_t)F);
    char **names = calloc((size_t)F, sizeof *names), **levels = NULL;
    double *edges = NULL;
    m->features = calloc((size_t)F, sizeof *m->features);
    ct_status s = eo && lo && cat && miss && names && m->features ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "features");
    if (s == CT_OK) s = read_strings(g, path, "feature_names", F, names);
    if (s == CT_OK) s = read_ds(g, path, "feature_categorical", H5T_NATIVE_UINT8, F, cat);
    if (s == CT_OK) s = read_ds(g, path, "feature_has_missing", H5T_NATIVE_UINT8, F, miss);
    if (s == CT_OK) s = read_ds(g, path, "edge_offsets", H5T_NATIVE_INT64, F + 1, eo);
    if (s == CT_OK) s = read_ds(g, path, "level_offsets", H5T_NATIVE_INT64, F + 1, lo);
    for (int f = 0; s == CT_OK && f < F; f++)
        if (eo[f] < 0 || eo[f + 1] - eo[f] < 0 || eo[f + 1] - eo[f] > 254 || lo[f] < 0 || lo[f + 1] - lo[f] < 0 ||
            lo[f + 1] - lo[f] > 255 || eo[0] || lo[0])
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: trees/edge_offsets or level_offsets are not increasing from 0", path);
    if (s == CT_OK) {
        edges = malloc(sizeof *edges * (size_t)(eo[F] + 1));
        levels = calloc((size_t)(lo[F] + 1), sizeof *levels);
        s = edges && levels ? CT_OK : CT_FAIL(CT_ERR_NOMEM, "features");
    }
    if (s == CT_OK) s = read_ds(g, path, "edges", H5T_NATIVE_DOUBLE, eo[F], edges);
    if (s == CT_OK) s = read_strings(g, path, "levels", lo[F], levels);
    for (int f = 0; s == CT_OK && f < F; f++) {
        ct_trees_feature *fe = &m->features[f];
        fe->name = names[f], names[f] = NULL;
        fe->categorical = cat[f], fe->has_missing = miss[f];
        fe->n_edges = (int)(eo[f + 1] - eo[f]);
        fe->edges = malloc(sizeof(double) * 255);
        fe->levels = calloc(256, sizeof(char *));
        if (!fe->edges || !fe->levels) {
            s = CT_FAIL(CT_ERR_NOMEM, "features");
            break;
        }
        memcpy(fe->edges, edges + eo[f], sizeof(double) * (size_t)fe->n_edges);
        for (int64_t i = lo[f]; i < lo[f + 1]; i++) fe->levels[fe->n_levels++] = levels[i], levels[i] = NULL;
    }
    for (int f = 0; names && f < F; f++) free(names[f]);
    for (int64_t i = 0; levels && lo && i < lo[F]; i++) free(levels[i]);
    free(eo), free(lo), free(cat), free(miss), free(names), free(levels), free(edges);
    return s;
}

static ct_status check_node(const char *path, const ct_trees *m, int64_t t, int j, const ct_tree_node *nd, int n)
{
    int leaf = nd->left < 0 && nd->right < 0;
    int ok = leaf ? 1
                  : nd->left > j && nd->right > j && nd->left < n && nd->right < n && nd->feature >= 0 &&
                        nd->feature < m->n_features && nd->bin < 255;
    if (!ok) return CT_FAIL(CT_ERR_CHECKPOINT, "%s: tree %lld node %d is malformed (children %d, %d, feature %d)",
                            path, (long long)t, j, nd->left, nd->right, nd->feature);
    return CT_OK;
}

static ct_status load_nodes(hid_t g, const char *path, ct_trees *m)
{
    int64_t T = (int64_t)m->n_iter * m->k;
    int64_t *off = malloc(sizeof *off * (size_t)(T + 1));
    if (!off) return CT_FAIL(CT_ERR_NOMEM, "trees");
    ct_status s = read_ds(g, path, "tree_offsets", H5T_NATIVE_INT64, T + 1, off);
    for (int64_t t = 0; s == CT_OK && t < T; t++)
        if (off[0] != 0 || off[t + 1] - off[t] < 1 || off[t + 1] - off[t] > INT32_MAX)
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: trees/tree_offsets are not increasing from 0", path);
    int64_t N = s == CT_OK ? off[T] : 0;
    node_arrays a = {0};
    if (s == CT_OK && !node_arrays_alloc(&a, N)) s = CT_FAIL(CT_ERR_NOMEM, "trees");
    if (s == CT_OK) s = read_ds(g, path, "node_left", H5T_NATIVE_INT32, N, a.left);
    if (s == CT_OK) s = read_ds(g, path, "node_right", H5T_NATIVE_INT32, N, a.right);
    if (s == CT_OK) s = read_ds(g, path, "node_feature", H5T_NATIVE_INT32, N, a.feature);
    if (s == CT_OK) s = read_ds(g, path, "node_depth", H5T_NATIVE_INT32, N, a.depth);
    if (s == CT_OK) s = read_ds(g, path, "node_bin", H5T_NATIVE_INT32, N, a.bin);
    if (s == CT_OK) s = read_ds(g, path, "node_missing_left", H5T_NATIVE_UINT8, N, a.missing_left);
    if (s == CT_OK) s = read_ds(g, path, "node_categorical", H5T_NATIVE_UINT8, N, a.categorical);
    if (s == CT_OK) s = read_ds(g, path, "node_cats", H5T_NATIVE_UINT32, N, a.cats);
    if (s == CT_OK) s = read_ds(g, path, "node_threshold", H5T_NATIVE_DOUBLE, N, a.threshold);
    if (s == CT_OK) s = read_ds(g, path, "node_value", H5T_NATIVE_DOUBLE, N, a.value);
    if (s == CT_OK) s = read_ds(g, path, "node_gain", H5T_NATIVE_DOUBLE, N, a.gain);
    if (s == CT_OK) s = read_ds(g, path, "node_count", H5T_NATIVE_INT64, N, a.count);
    if (s == CT_OK) {
        m->trees = calloc((size_t)(T ? T : 1), sizeof *m->trees);
        m->cap_iter = m->n_iter;
        if (!m->trees) s = CT_FAIL(CT_ERR_NOMEM, "trees");
    }
    for (int64_t t = 0; s == CT_OK && t < T; t++) {
        ct_tree *tr = &m->trees[t];
        tr->n_nodes = tr->cap = (int32_t)(off[t + 1] - off[t]);
        if (!(tr->nodes = calloc((size_t)tr->cap, sizeof *tr->nodes))) {
            s = CT_FAIL(CT_ERR_NOMEM, "trees");
            break;
        }
        for (int j = 0; s == CT_OK && j < tr->n_nodes; j++) {
            int64_t i = off[t] + j;
            ct_tree_node *nd = &tr->nodes[j];
            nd->left = a.left[i], nd->right = a.right[i], nd->feature = a.feature[i], nd->depth = a.depth[i];
            nd->bin = (uint16_t)(a.bin[i] < 0 ? 255 : a.bin[i] > 255 ? 255 : a.bin[i]);
            nd->missing_left = a.missing_left[i] != 0, nd->categorical = a.categorical[i] != 0;
            memcpy(nd->cats, a.cats + i * 8, sizeof nd->cats);
            nd->threshold = a.threshold[i], nd->value = a.value[i], nd->gain = a.gain[i], nd->count = a.count[i];
            s = check_node(path, m, t, j, nd, tr->n_nodes);
        }
    }
    node_arrays_free(&a);
    free(off);
    return s;
}

static ct_status load_model(hid_t f, const char *path, ct_config **cfg, ct_trees *m)
{
    if (H5Lexists(f, "trees", H5P_DEFAULT) <= 0 || H5Lexists(f, "ctrain", H5P_DEFAULT) <= 0)
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: not a boosted-trees model (no /trees group)", path);
    hid_t g = H5Gopen2(f, "trees", H5P_DEFAULT), c = H5Gopen2(f, "ctrain", H5P_DEFAULT);
    int64_t loss = 0, F = 0, nc = 0, k = 0, it = 0, es = 0, len = ds_len(c, "config");
    ct_status s = len > 0 ? CT_OK : CT_FAIL(CT_ERR_CHECKPOINT, "%s: no ctrain/config", path);
    uint8_t *buf = s == CT_OK ? malloc((size_t)len) : NULL;
    if (s == CT_OK && !buf) s = CT_FAIL(CT_ERR_NOMEM, "config");
    if (s == CT_OK) s = read_ds(c, path, "config", H5T_NATIVE_UINT8, len, buf);
    if (s == CT_OK && cfg) s = ct_config_unpack(buf, (size_t)len, cfg);
    free(buf);
    if (s == CT_OK) s = read_int_attr(g, path, "loss", &loss);
    if (s == CT_OK) s = read_int_attr(g, path, "n_features", &F);
    if (s == CT_OK) s = read_int_attr(g, path, "n_classes", &nc);
    if (s == CT_OK) s = read_int_attr(g, path, "k", &k);
    if (s == CT_OK) s = read_int_attr(g, path, "n_iter", &it);
    if (s == CT_OK) s = read_int_attr(g, path, "early_stopped", &es);
    if (s == CT_OK && (loss < 0 || loss > 2 || F < 1 || F > INT32_MAX / 256 || k < 1 || k > 256 || it < 0 ||
                       it > 100000000 || nc < 0 || nc > 256 || (loss == 2 && k != nc) || (loss != 2 && k != 1)))
        s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: trees attributes out of range (loss %lld, %lld features, k %lld, %lld iterations)",
                    path, (long long)loss, (long long)F, (long long)k, (long long)it);
    if (s == CT_OK) {
        m->loss = (ct_trees_loss)loss, m->n_features = (int)F, m->n_classes = (int)nc, m->k = (int)k;
        m->n_iter = (int)it, m->early_stopped = (int)es;
        m->train_loss = malloc(sizeof(double) * (size_t)(it + 1));
        m->val_loss = malloc(sizeof(double) * (size_t)(it + 1));
        if (!m->train_loss || !m->val_loss) s = CT_FAIL(CT_ERR_NOMEM, "trees");
    }
    if (s == CT_OK) s = read_ds(g, path, "baseline", H5T_NATIVE_DOUBLE, k, m->baseline);
    if (s == CT_OK) s = read_ds(g, path, "train_loss", H5T_NATIVE_DOUBLE, it + 1, m->train_loss);
    if (s == CT_OK) s = read_ds(g, path, "val_loss", H5T_NATIVE_DOUBLE, it + 1, m->val_loss);
    if (s == CT_OK) s = load_features(g, path, m);
    if (s == CT_OK) s = load_nodes(g, path, m);
    H5Gclose(g);
    H5Gclose(c);
    return s;
}

ct_status ct_trees_load(const char *path, ct_config **cfg, ct_trees *m)
{
    memset(m, 0, sizeof *m);
    if (cfg) *cfg = NULL;
    ct_hdf5_lock();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ct_status s = f >= 0 ? load_model(f, path, cfg, m) : CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot open as HDF5", path);
    if (f >= 0) H5Fclose(f);
    ct_hdf5_unlock();
    if (s != CT_OK) {
        ct_trees_free(m);
        if (cfg) {
            ct_config_free(*cfg);
            *cfg = NULL;
        }
    }
    return s;
}

/* --- text -------------------------------------------------------------------- */

static void print_condition(const ct_trees *m, const ct_tree_node *nd, FILE *out)
{
    const ct_trees_feature *fe = &m->features[nd->feature];
    if (nd->categorical) {
        fprintf(out, "%s in {", fe->name);
        for (int c = 0, k = 0; c < fe->n_levels; c++)
            if ((nd->cats[c >> 5] >> (c & 31)) & 1) fprintf(out, "%s%s", k++ ? ", " : "", fe->levels[c]);
        fprintf(out, "}");
    } else if (isinf(nd->threshold)) {
        fprintf(out, "%s is not missing", fe->name);
    } else {
        fprintf(out, "%s <= %.9g", fe->name, nd->threshold);
    }
    fprintf(out, " (missing: %s) gain %.6g, %lld samples\n", nd->missing_left ? "left" : "right", nd->gain,
            (long long)nd->count);
}

static void dump_node(const ct_trees *m, const ct_tree *t, int j, int indent, FILE *out)
{
    const ct_tree_node *nd = &t->nodes[j];
    fprintf(out, "%*s[%d] ", indent, "", j);
    if (nd->left < 0) {
        fprintf(out, "leaf %.9g, %lld samples\n", nd->value, (long long)nd->count);
        return;
    }
    print_condition(m, nd, out);
    dump_node(m, t, nd->left, indent + 2, out);
    dump_node(m, t, nd->right, indent + 2, out);
}

static const char *loss_name(const ct_trees *m)
{
    return m->loss == CT_TREES_SQUARED_ERROR ? "squared_error" : m->loss == CT_TREES_BINARY ? "log_loss (binary)" : "log_loss (multiclass)";
}

void ct_trees_dump(const ct_trees *m, FILE *out)
{
    fprintf(out, "boosted trees: %s, %d features, %d iterations x %d tree%s, baseline", loss_name(m), m->n_features,
            m->n_iter, m->k, m->k > 1 ? "s" : "");
    for (int c = 0; c < m->k; c++) fprintf(out, " %.9g", m->baseline[c]);
    fprintf(out, "\n");
    for (int it = 0; it < m->n_iter; it++)
        for (int c = 0; c < m->k; c++) {
            const ct_tree *t = &m->trees[it * m->k + c];
            int leaves = 0;
            for (int j = 0; j < t->n_nodes; j++) leaves += t->nodes[j].left < 0;
            fprintf(out, "tree %d (iteration %d, class %d): %d leaves\n", it * m->k + c, it + 1, c, leaves);
            dump_node(m, t, 0, 2, out);
        }
}

void ct_trees_summary(const ct_trees *m, const char *name, FILE *out)
{
    int64_t leaves = 0;
    int depth = 0, T = m->n_iter * m->k;
    double *imp = calloc((size_t)m->n_features, sizeof *imp), total = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < m->trees[t].n_nodes; j++) {
            const ct_tree_node *nd = &m->trees[t].nodes[j];
            depth = nd->depth > depth ? nd->depth : depth;
            if (nd->left < 0) leaves++;
            else if (imp) imp[nd->feature] += nd->gain, total += nd->gain;
        }
    fprintf(out, "Model: \"%s\" (boosted trees)\n", name);
    fprintf(out, "loss: %s, %d features, %d iterations x %d tree%s = %d trees\n", loss_name(m), m->n_features,
            m->n_iter, m->k, m->k > 1 ? "s" : "", T);
    fprintf(out, "leaves: %lld (%.1f per tree), max depth %d%s\n", (long long)leaves, T ? (double)leaves / T : 0.0,
            depth, m->early_stopped ? ", stopped early" : "");
    if (m->n_iter) {
        if (!isnan(m->train_loss[m->n_iter])) fprintf(out, "train loss: %.6g\n", m->train_loss[m->n_iter]);
        if (!isnan(m->val_loss[m->n_iter])) fprintf(out, "validation loss: %.6g\n", m->val_loss[m->n_iter]);
    }
    fprintf(out, "%-30s %-12s %12s\n", "feature", "kind", "importance");
    for (int f = 0; imp && f < m->n_features; f++) {
        const ct_trees_feature *fe = &m->features[f];
        char kind[32];
        if (fe->categorical) snprintf(kind, sizeof kind, "%d levels", fe->n_levels);
        else snprintf(kind, sizeof kind, "%d bins", fe->n_edges + 1);
        fprintf(out, "%-30.30s %-12s %12.6f\n", fe->name, kind, total > 0 ? imp[f] / total : 0.0);
    }
    fprintf(out, "(importance: the feature's share of the total split gain)\n");
    free(imp);
}
