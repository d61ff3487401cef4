/* HDF5 model files in the Keras layout (see checkpoint.h). */
#include "checkpoint.h"
#include "keras_json.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outfile.h"
#include "sources.h"

#define CT_FORMAT_VERSION 1

int ct_checkpoint_is_hdf5(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    unsigned char buf[8];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(buf, 1, 8, f);
    fclose(f);
    return n == 8 && memcmp(buf, sig, 8) == 0;
}

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* --- writing ---------------------------------------------------------------- */

static int write_str_attr(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, &value) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok;
}

/* A 1-D fixed-length NULLPAD string array, as h5py writes numpy 'S' arrays;
 * an empty list becomes a 0-element float64 attribute, as Keras's does. */
static int write_names_attr(hid_t obj, const char *name, char **names, int n)
{
    hsize_t dim = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    int ok;
    if (n == 0) {
        hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        ok = a >= 0;
        if (a >= 0) H5Aclose(a);
    } else {
        size_t w = 1;
        for (int i = 0; i < n; i++) w = strlen(names[i]) > w ? strlen(names[i]) : w;
        char *buf = calloc((size_t)n, w);
        for (int i = 0; buf && i < n; i++) memcpy(buf + (size_t)i * w, names[i], strlen(names[i]));
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, w);
        H5Tset_strpad(t, H5T_STR_NULLPAD);
        hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        ok = buf && a >= 0 && H5Awrite(a, t, buf) >= 0;
        if (a >= 0) H5Aclose(a);
        H5Tclose(t);
        free(buf);
    }
    H5Sclose(sp);
    return ok;
}

/* Chunked with the Fletcher32 filter, so that a damaged weight is noticed
 * when the file is read (HDF5 checks the sum on every read). One chunk
 * holds the whole tensor unless that passes HDF5's 4 GiB chunk limit. */
hid_t ct_hdf5_checksummed(int rank, const hsize_t *dims, size_t elem)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk[CT_MAX_DIMS];
    double bytes = (double)elem;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) return dcpl; /* empty: nothing to check */
        chunk[i] = dims[i];
        bytes *= (double)dims[i];
    }
    if (rank == 0) return dcpl;
    while (bytes >= 1073741824.0 && chunk[0] > 1) {
        bytes /= (double)chunk[0];
        chunk[0] = (chunk[0] + 1) / 2;
        bytes *= (double)chunk[0];
    }
    if (bytes < 1073741824.0) {
        H5Pset_chunk(dcpl, rank, chunk);
        H5Pset_fletcher32(dcpl);
    }
    return dcpl;
}

static int write_floats(hid_t loc, const char *name, const float *v, const ct_shape *shape)
{
    hsize_t dims[CT_MAX_DIMS];
    for (int i = 0; i < shape->rank; i++) dims[i] = (hsize_t)shape->dims[i];
    hid_t sp = shape->rank ? H5Screate_simple(shape->rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = ct_hdf5_checksummed(shape->rank, dims, sizeof(float));
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    H5Sclose(sp);
    return ok;
}

static int write_bytes(hid_t loc, const char *name, const uint8_t *v, size_t n)
{
    hsize_t dim = n;
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t dcpl = ct_hdf5_checksummed(1, &dim, 1);
    hid_t d = H5Dcreate2(loc, name, H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int ok = d >= 0 && (n == 0 || H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return ok;
}

static int write_scalar_attr(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok;
}

static ct_status write_weights(hid_t root, const ct_graph *g, int at_root)
{
    hid_t mw = at_root ? H5Gopen2(root, "/", H5P_DEFAULT)
                       : H5Gcreate2(root, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (mw < 0) return CT_FAIL(CT_ERR_IO, "cannot create group model_weights");
    char **names = calloc((size_t)g->n_layers, sizeof *names);
    int ok = names != NULL;
    for (int i = 0; ok && i < g->n_layers; i++) { /* a shared layer's weights once */
        const ct_layer *l = g->layers[i];
        names[i] = (char *)l->name;
        hid_t lg = H5Gcreate2(mw, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        char wn[CT_LAYER_MAX_PARAMS][2 * CT_NAME_MAX + 8];
        char *wp[CT_LAYER_MAX_PARAMS];
        for (int k = 0; k < l->n_params; k++) {
            snprintf(wn[k], sizeof wn[k], "%s/%s:0", l->name, l->params[k].name);
            wp[k] = wn[k];
            ok = ok && lg >= 0 && write_floats(lg, wn[k], l->params[k].value, &l->params[k].shape);
        }
        ok = ok && lg >= 0 && write_names_attr(lg, "weight_names", wp, l->n_params);
        if (lg >= 0) H5Gclose(lg);
    }
    ok = ok && write_names_attr(mw, "layer_names", names, g->n_layers);
    if (!at_root) ok = ok && write_str_attr(mw, "backend", "tensorflow") && write_str_attr(mw, "keras_version", "2.11.0");
    free(names);
    H5Gclose(mw);
    return ok ? CT_OK : CT_FAIL(CT_ERR_IO, "cannot write the weights");
}

static int write_double_attrs(hid_t obj, const char *const *names, const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!write_scalar_attr(obj, names[i], H5T_NATIVE_DOUBLE, &v[i])) return 0;
    return 1;
}

/* Training state and callback state as scalar attributes of /ctrain. */
static const char *const state_names[] = {"epoch", "batch", "step", "loss_sum", "seen", "lr"};
static const char *const cb_names[] = {"es_best", "es_wait", "es_best_epoch", "ckpt_best",
                                       "plateau_best", "plateau_wait", "plateau_cooldown", "base_lr"};

static int write_state(hid_t cg, const ct_model *m, const ct_callback_state *cb)
{
    double st[6] = {m->state.epoch, (double)m->state.batch, (double)m->step, m->state.loss_sum,
                    (double)m->state.seen, cb ? cb->lr : m->lr};
    if (!write_double_attrs(cg, state_names, st, 6)) return 0;
    if (cb) {
        double c[8] = {cb->es_best, cb->es_wait, cb->es_best_epoch, cb->ckpt_best, cb->plateau_best,
                       cb->plateau_wait, cb->plateau_cooldown, cb->base_lr};
        if (!write_double_attrs(cg, cb_names, c, 8)) return 0;
        /* EarlyStopping's best weights, so a resumed run restores the same ones. */
        ct_shape all = ct_shape1(m->graph->n_values);
        if (cb->best_weights && !write_floats(cg, "es_best_weights", cb->best_weights, &all)) return 0;
    }
    /* Metric sums of the running epoch, for a resume inside an epoch. */
    double ms[2 * CT_MAX_METRICS];
    for (int k = 0; k < m->n_metrics; k++) {
        ms[2 * k] = m->metrics[k].sum;
        ms[2 * k + 1] = m->metrics[k].count;
    }
    hsize_t dim = (hsize_t)(2 * m->n_metrics);
    hid_t sp = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(cg, "metrics", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && (dim == 0 || H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ms) >= 0);
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    if (!ok) return 0;
    /* Optimizer slots, flat, named by slot. */
    const ct_optimizer *o = m->opt;
    hid_t og = H5Gcreate2(cg, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (og < 0) return 0;
    long long iters = (long long)o->iterations;
    int kind = (int)o->cfg.kind;
    ok = write_scalar_attr(og, "iterations", H5T_NATIVE_LLONG, &iters) &&
         write_scalar_attr(og, "kind", H5T_NATIVE_INT, &kind);
    ct_shape sh = ct_shape1(o->n);
    for (int k = 0; ok && k < o->n_slots; k++)
        ok = write_floats(og, ct_optimizer_slot_name(o, k), o->slots + (size_t)k * (size_t)o->n, &sh);
    H5Gclose(og);
    return ok;
}

static ct_status write_ctrain(hid_t root, const ct_config *cfg, const ct_model *m, const ct_inputs *norm,
                              const ct_callback_state *cb)
{
    hid_t cg = H5Gcreate2(root, "ctrain", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (cg < 0) return CT_FAIL(CT_ERR_IO, "cannot create group ctrain");
    uint8_t *bytes = NULL;
    size_t len = 0;
    ct_status s = ct_config_pack(cfg, &bytes, &len);
    int version = CT_FORMAT_VERSION;
    double rescale = norm ? norm->rescale : 1.0;
    int ok = s == CT_OK && write_bytes(cg, "config", bytes, len) &&
             write_scalar_attr(cg, "format_version", H5T_NATIVE_INT, &version) &&
             write_scalar_attr(cg, "rescale", H5T_NATIVE_DOUBLE, &rescale) && write_state(cg, m, cb);
    if (ok && norm && norm->mean) {
        ct_shape sh = ct_shape1(norm->n_features);
        ok = write_floats(cg, "feature_mean", norm->mean, &sh) && write_floats(cg, "feature_std", norm->std, &sh);
    }
    if (ok && s == CT_OK && norm && norm->vocab) { /* text models: predict and generate read raw text */
        char *voc = NULL;
        size_t vlen = 0;
        s = ct_vocab_serialize(norm->vocab, &voc, &vlen);
        ok = s == CT_OK && write_bytes(cg, "vocabulary", (const uint8_t *)voc, vlen);
        free(voc);
    }
    free(bytes);
    H5Gclose(cg);
    if (s != CT_OK) return s;
    return ok ? CT_OK : CT_FAIL(CT_ERR_IO, "cannot write the ctrain group");
}

/* The file is built in memory (HDF5's core driver) and written by
 * ct_write_file_atomic: a full disk is then an ordinary failed write()
 * with its errno, never a half-closed HDF5 file (whose exit handler used
 * to crash), and the old file stays until the rename. */
hid_t ct_hdf5_memory_create(const char *path)
{
    quiet_hdf5();
    char name[4200];
    snprintf(name, sizeof name, "%s.in-memory", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 20, 0); /* no backing store: nothing touches the disk */
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

ct_status ct_hdf5_memory_image(hid_t f, const char *path, void **image, size_t *len)
{
    ct_status s = CT_OK;
    *image = NULL;
    *len = 0;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) s = CT_FAIL(CT_ERR_IO, "%s: HDF5 cannot flush", path);
    ssize_t n = s == CT_OK ? H5Fget_file_image(f, NULL, 0) : -1;
    if (s == CT_OK && n <= 0) s = CT_FAIL(CT_ERR_IO, "%s: HDF5 gives no file image", path);
    if (s == CT_OK && !(*image = malloc((size_t)n))) s = CT_FAIL(CT_ERR_NOMEM, "%s: %lld bytes", path, (long long)n);
    if (s == CT_OK && H5Fget_file_image(f, *image, (size_t)n) != n)
        s = CT_FAIL(CT_ERR_IO, "%s: HDF5 cannot copy the file image", path);
    if (s == CT_OK) *len = (size_t)n;
    H5Fclose(f);
    if (s != CT_OK) {
        free(*image);
        *image = NULL;
    }
    return s;
}

static ct_status save_locked(const char *path, const ct_config *cfg, const ct_model *m, const ct_inputs *norm,
                             const ct_callback_state *cb, int weights_only, void **image, size_t *len)
{
    hid_t f = ct_hdf5_memory_create(path);
    if (f < 0) return CT_FAIL(CT_ERR_IO, "%s: HDF5 cannot create the model file in memory", path);
    ct_status s = CT_OK;
    if (!write_str_attr(f, "keras_version", "2.11.0") || !write_str_attr(f, "backend", "tensorflow"))
        s = CT_FAIL(CT_ERR_IO, "%s: cannot write attributes", path);
    if (s == CT_OK && !weights_only) {
        char *json = NULL;
        s = ct_keras_model_json_string(m->graph, cfg->model ? cfg->model->name : NULL, 0, 0, &json);
        if (s == CT_OK && !write_str_attr(f, "model_config", json))
            s = CT_FAIL(CT_ERR_IO, "%s: cannot write attributes", path);
        free(json);
    }
    if (s == CT_OK) s = write_weights(f, m->graph, weights_only);
    if (s == CT_OK && !weights_only) s = write_ctrain(f, cfg, m, norm, cb);
    if (s != CT_OK) {
        H5Fclose(f);
        return s;
    }
    return ct_hdf5_memory_image(f, path, image, len);
}

ct_status ct_model_check_finite(const ct_model *m, const char *what)
{
    const ct_graph *g = m->graph;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = ct_graph_param(g, i);
        int64_t n = ct_shape_numel(&p->shape);
        for (int64_t k = 0; k < n; k++)
            if (!isfinite(p->value[k]))
                return CT_FAIL(CT_ERR_RUNTIME, "%s: the weight %s/%s holds %s (at index %lld)", what,
                               g->nodes[g->params[i].node].layer->name, p->name, isnan(p->value[k]) ? "NaN" : "an infinity",
                               (long long)k);
    }
    return CT_OK;
}

ct_status ct_checkpoint_save(const char *path, const ct_config *cfg, const ct_model *m, const ct_inputs *norm,
                             const ct_callback_state *cb, int weights_only)
{
    /* A NaN model never replaces a file (which may hold a good one). */
    ct_status fin = ct_model_check_finite(m, path);
    if (fin != CT_OK) {
        ct_error_prefix("not saved: ");
        return fin;
    }
    void *image = NULL;
    size_t len = 0;
    ct_hdf5_lock();
    ct_status s = save_locked(path, cfg, m, norm, cb, weights_only, &image, &len);
    ct_hdf5_unlock();
    if (s == CT_OK) s = ct_write_file_atomic(path, image, len);
    free(image);
    return s;
}

/* --- reading ---------------------------------------------------------------- */

/* HDF5 checks the Fletcher32 sum of a chunk on read: say so when that is
 * what failed. */
ct_status ct_hdf5_read_failure(hid_t d, const char *file, const char *name)
{
    hid_t dcpl = H5Dget_create_plist(d);
    unsigned flags;
    size_t nv = 0;
    char fname[32];
    int summed = dcpl >= 0 && H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nv, NULL, sizeof fname, fname,
                                                   NULL) >= 0;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (summed)
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: '%s' fails its Fletcher32 checksum: the file is damaged", file, name);
    return CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot read '%s' (truncated or damaged?)", file, name);
}

/* A NaN or infinite weight loads into a model that only ever outputs NaN. */
static ct_status check_finite(const char *file, const char *name, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return CT_FAIL(CT_ERR_CHECKPOINT, "%s: '%s' holds %s at index %lld; expected finite numbers", file, name,
                           isnan(v[i]) ? "NaN" : "an infinity", (long long)i);
    return CT_OK;
}

static ct_status read_floats(hid_t loc, const char *file, const char *name, const ct_shape *want, float *out)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: no dataset '%s'", file, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return CT_FAIL(CT_ERR_CHECKPOINT, "%s: '%s' is not a dataset", file, name);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[CT_MAX_DIMS + 1];
    int rank = H5Sget_simple_extent_ndims(sp);
    ct_status s = CT_OK;
    if (rank < 0 || rank > CT_MAX_DIMS) {
        s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: '%s' has an unsupported rank", file, name);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        int same = rank == want->rank;
        for (int i = 0; same && i < rank; i++) same = dims[i] == (hsize_t)want->dims[i];
        if (!same) {
            ct_shape got = {rank, {0}};
            for (int i = 0; i < rank; i++) got.dims[i] = (int64_t)dims[i];
            char a[64], b[64];
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: '%s' has shape %s, the model expects %s", file, name,
                        ct_shape_str(&got, 0, a, sizeof a), ct_shape_str(want, 0, b, sizeof b));
        } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
            s = ct_hdf5_read_failure(d, file, name);
        } else {
            s = check_finite(file, name, out, ct_shape_numel(want));
        }
    }
    H5Sclose(sp);
    H5Dclose(d);
    return s;
}

static ct_status read_weights(hid_t f, const char *file, ct_model *m)
{
    const char *prefix = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? "model_weights/" : "";
    for (int i = 0; i < m->graph->n_params; i++) {
        ct_param_ref *r = &m->graph->params[i];
        const ct_layer *l = m->graph->nodes[r->node].layer;
        const ct_layer_param *p = &l->params[r->index];
        char path[512];
        snprintf(path, sizeof path, "%s%s/%s/%s:0", prefix, l->name, l->name, p->name);
        CT_TRY(read_floats(f, file, path, &p->shape, p->value));
    }
    return CT_OK;
}

static ct_status read_config(hid_t f, const char *file, ct_config **cfg)
{
    if (H5Lexists(f, "ctrain", H5P_DEFAULT) <= 0 || H5Lexists(f, "ctrain/config", H5P_DEFAULT) <= 0)
        return CT_FAIL(CT_ERR_CHECKPOINT,
                       "%s: no ctrain/config: this is not a whole-model file written by ctrain (weights-only files "
                       "need a config)",
                       file);
    hid_t d = H5Dopen2(f, "ctrain/config", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    ct_status s = CT_OK;
    if (!buf || n < 0 || (n > 0 && H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0))
        s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot read ctrain/config", file);
    H5Sclose(sp);
    H5Dclose(d);
    if (s == CT_OK) s = ct_config_unpack(buf, (size_t)n, cfg);
    if (s == CT_OK) s = ct_config_validate(*cfg);
    if (s != CT_OK) ct_error_prefix("%s: ", file);
    free(buf);
    return s;
}

static int read_scalar_attr(hid_t obj, const char *name, hid_t type, void *v)
{
    if (H5Aexists(obj, name) <= 0) return 0;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int ok = a >= 0 && H5Aread(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok;
}

static int read_double_attrs(hid_t obj, const char *const *names, double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!read_scalar_attr(obj, names[i], H5T_NATIVE_DOUBLE, &v[i])) return 0;
    return 1;
}

static ct_status read_norm(hid_t f, const char *file, ct_inputs *norm)
{
    memset(norm, 0, sizeof *norm);
    norm->rescale = 1.0;
    hid_t cg = H5Gopen2(f, "ctrain", H5P_DEFAULT);
    if (cg < 0) return CT_OK;
    read_scalar_attr(cg, "rescale", H5T_NATIVE_DOUBLE, &norm->rescale);
    ct_status s = CT_OK;
    if (H5Lexists(cg, "feature_mean", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(cg, "feature_mean", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        H5Sclose(sp);
        H5Dclose(d);
        norm->n_features = n;
        norm->mean = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        norm->std = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        ct_shape sh = ct_shape1(n);
        if (!norm->mean || !norm->std) s = CT_FAIL(CT_ERR_NOMEM, "feature statistics");
        if (s == CT_OK) s = read_floats(cg, file, "feature_mean", &sh, norm->mean);
        if (s == CT_OK) s = read_floats(cg, file, "feature_std", &sh, norm->std);
    }
    if (s == CT_OK && H5Lexists(cg, "vocabulary", H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(cg, "vocabulary", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        char *buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || n < 0 || (n > 0 && H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0))
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot read ctrain/vocabulary", file);
        H5Sclose(sp);
        H5Dclose(d);
        if (s == CT_OK) s = ct_vocab_parse(buf, (size_t)n, file, &norm->vocab);
        free(buf);
    }
    H5Gclose(cg);
    return s;
}

static ct_status open_file(const char *path, hid_t *f)
{
    quiet_hdf5();
    if (!ct_checkpoint_is_hdf5(path)) {
        FILE *probe = fopen(path, "rb");
        /* a missing or unreadable model file is bad input, like a damaged one */
        if (!probe) return CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot open: %s", path, strerror(errno));
        fclose(probe);
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: offset 0: not an HDF5 file (no HDF5 signature)", path);
    }
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return CT_FAIL(CT_ERR_CHECKPOINT, "%s: HDF5 cannot open it (truncated or damaged?)", path);
    return CT_OK;
}

static ct_status load_locked(const char *path, ct_config **cfg, ct_model **m, ct_inputs *norm)
{
    hid_t f;
    *cfg = NULL;
    *m = NULL;
    CT_TRY(open_file(path, &f));
    ct_status s = read_config(f, path, cfg);
    if (s == CT_OK) s = ct_model_create(*cfg, m);
    if (s == CT_OK) s = read_weights(f, path, *m);
    if (s == CT_OK && norm) s = read_norm(f, path, norm);
    hid_t cg = s == CT_OK ? H5Gopen2(f, "ctrain", H5P_DEFAULT) : -1;
    if (cg >= 0) {
        double st[3];
        if (read_double_attrs(cg, state_names, st, 3)) (*m)->step = (uint64_t)st[2];
        H5Gclose(cg);
    }
    H5Fclose(f);
    if (s != CT_OK) {
        ct_model_destroy(*m);
        ct_config_free(*cfg);
        *m = NULL;
        *cfg = NULL;
    }
    return s;
}

static ct_status load_weights_locked(const char *path, ct_model *m)
{
    hid_t f;
    CT_TRY(open_file(path, &f));
    ct_status s = read_weights(f, path, m);
    H5Fclose(f);
    return s;
}

static ct_status read_optimizer(hid_t cg, const char *file, ct_model *m)
{
    ct_optimizer *o = m->opt;
    if (H5Lexists(cg, "optimizer", H5P_DEFAULT) <= 0) return CT_OK; /* a fresh optimizer, as Keras */
    hid_t og = H5Gopen2(cg, "optimizer", H5P_DEFAULT);
    int kind = -1;
    long long iters = 0;
    ct_status s = CT_OK;
    if (!read_scalar_attr(og, "kind", H5T_NATIVE_INT, &kind) || kind != (int)o->cfg.kind)
        s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: the optimizer state is for another optimizer than the config's", file);
    read_scalar_attr(og, "iterations", H5T_NATIVE_LLONG, &iters);
    ct_shape sh = ct_shape1(o->n);
    for (int k = 0; s == CT_OK && k < o->n_slots; k++) {
        char where[256];
        snprintf(where, sizeof where, "ctrain/optimizer/%s", ct_optimizer_slot_name(o, k));
        s = read_floats(og, file, ct_optimizer_slot_name(o, k), &sh, o->slots + (size_t)k * (size_t)o->n);
        if (s != CT_OK) ct_error_prefix("%s: ", where);
    }
    if (s == CT_OK) o->iterations = iters;
    H5Gclose(og);
    return s;
}

static ct_status read_state(hid_t cg, const char *file, ct_model *m, ct_callback_state *cb)
{
    double st[6];
    if (!read_double_attrs(cg, state_names, st, 6))
        return CT_FAIL(CT_ERR_CHECKPOINT, "%s: ctrain group lacks the training state (epoch, batch, step)", file);
    m->state.epoch = (int)st[0];
    m->state.batch = (int64_t)st[1];
    m->step = (uint64_t)st[2];
    m->state.loss_sum = st[3];
    m->state.seen = (int64_t)st[4];
    m->lr = st[5];
    if (cb) {
        double c[8];
        cb->lr = st[5];
        if (read_double_attrs(cg, cb_names, c, 8)) {
            cb->es_best = c[0];
            cb->es_wait = (int)c[1];
            cb->es_best_epoch = (int)c[2];
            cb->ckpt_best = c[3];
            cb->plateau_best = c[4];
            cb->plateau_wait = (int)c[5];
            cb->plateau_cooldown = (int)c[6];
            cb->base_lr = c[7];
        }
        if (H5Lexists(cg, "es_best_weights", H5P_DEFAULT) > 0) {
            ct_shape all = ct_shape1(m->graph->n_values);
            if (!cb->best_weights && !(cb->best_weights = malloc(sizeof(float) * (size_t)(all.dims[0] + 1))))
                return CT_FAIL(CT_ERR_NOMEM, "%s: EarlyStopping's best weights", file);
            CT_TRY(read_floats(cg, file, "es_best_weights", &all, cb->best_weights));
        }
    }
    if (H5Lexists(cg, "metrics", H5P_DEFAULT) > 0) {
        double ms[2 * CT_MAX_METRICS] = {0};
        hid_t d = H5Dopen2(cg, "metrics", H5P_DEFAULT);
        hid_t sp = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(sp);
        ct_status s = CT_OK;
        if (n != 2 * m->n_metrics)
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: ctrain/metrics holds %lld values, the config has %d metrics", file,
                        (long long)n, m->n_metrics);
        else if (n > 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, ms) < 0)
            s = CT_FAIL(CT_ERR_CHECKPOINT, "%s: cannot read ctrain/metrics", file);
        H5Sclose(sp);
        H5Dclose(d);
        CT_TRY(s);
        for (int k = 0; k < m->n_metrics; k++) {
            m->metrics[k].sum = ms[2 * k];
            m->metrics[k].count = ms[2 * k + 1];
        }
    }
    return read_optimizer(cg, file, m);
}

static ct_status resume_locked(const char *path, ct_model *m, ct_callback_state *cb)
{
    hid_t f;
    CT_TRY(open_file(path, &f));
    ct_status s = read_weights(f, path, m);
    if (s == CT_OK && H5Lexists(f, "ctrain", H5P_DEFAULT) > 0) {
        hid_t cg = H5Gopen2(f, "ctrain", H5P_DEFAULT);
        s = read_state(cg, path, m, cb);
        H5Gclose(cg);
    }
    H5Fclose(f);
    return s;
}

static ct_status position_locked(const char *path, int64_t *epoch, int64_t *batch, int64_t *step)
{
    hid_t f;
    *epoch = *batch = *step = 0;
    CT_TRY(open_file(path, &f));
    if (H5Lexists(f, "ctrain", H5P_DEFAULT) > 0) {
        hid_t cg = H5Gopen2(f, "ctrain", H5P_DEFAULT);
        double st[3];
        if (read_double_attrs(cg, state_names, st, 3)) {
            *epoch = (int64_t)st[0];
            *batch = (int64_t)st[1];
            *step = (int64_t)st[2];
        }
        H5Gclose(cg);
    }
    H5Fclose(f);
    return CT_OK;
}

/* --- dump ------------------------------------------------------------------- */

typedef struct dump_ctx {
    FILE *out;
    const char *file;
    ct_status status;
} dump_ctx;

static herr_t dump_one(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    dump_ctx *c = data;
    H5O_info_t oi;
    if (H5Oget_info_by_name(g, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[32] = {0};
    if (rank > 0 && rank <= 32) H5Sget_simple_extent_dims(sp, dims, NULL);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    float *v = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!v) {
        c->status = CT_FAIL(CT_ERR_NOMEM, "%s: '%s'", c->file, name);
    } else if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        c->status = ct_hdf5_read_failure(d, c->file, name);
    } else {
        fprintf(c->out, "%s shape (", name);
        for (int i = 0; i < rank; i++) fprintf(c->out, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        fprintf(c->out, "%s)\n", rank == 1 ? "," : "");
        for (hssize_t i = 0; i < n; i++) fprintf(c->out, "%.9g%c", v[i], (i + 1) % 8 == 0 || i + 1 == n ? '\n' : ' ');
    }
    free(v);
    H5Sclose(sp);
    H5Dclose(d);
    return c->status == CT_OK ? 0 : -1;
}

static ct_status dump_locked(const char *path, FILE *out)
{
    hid_t f;
    CT_TRY(open_file(path, &f));
    const char *root = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? "model_weights" : "/";
    hid_t g = H5Gopen2(f, root, H5P_DEFAULT);
    dump_ctx c = {out, path, CT_OK};
    if (g >= 0) {
        H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, dump_one, &c);
        H5Gclose(g);
    }
    H5Fclose(f);
    return c.status;
}

ct_status ct_checkpoint_load(const char *path, ct_config **cfg, ct_model **m, ct_inputs *norm)
{
    ct_hdf5_lock();
    ct_status s = load_locked(path, cfg, m, norm);
    ct_hdf5_unlock();
    return s;
}

ct_status ct_checkpoint_load_weights(const char *path, ct_model *m)
{
    ct_hdf5_lock();
    ct_status s = load_weights_locked(path, m);
    ct_hdf5_unlock();
    return s;
}

ct_status ct_checkpoint_resume(const char *path, ct_model *m, ct_callback_state *cb)
{
    ct_hdf5_lock();
    ct_status s = resume_locked(path, m, cb);
    ct_hdf5_unlock();
    return s;
}

ct_status ct_checkpoint_position(const char *path, int64_t *epoch, int64_t *batch, int64_t *step)
{
    ct_hdf5_lock();
    ct_status s = position_locked(path, epoch, batch, step);
    ct_hdf5_unlock();
    return s;
}

ct_status ct_checkpoint_dump(const char *path, FILE *out)
{
    ct_hdf5_lock();
    ct_status s = dump_locked(path, out);
    ct_hdf5_unlock();
    return s;
}
