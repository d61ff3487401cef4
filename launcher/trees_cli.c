/* The commands for [model] kind = boosted_trees (core/trees.h): train,
 * evaluate, predict, summary and dump-trees. Every rank trains (each on
 * its shard); rank 0 prints, writes the checkpoints and the model. */
#include <math.h>
#include <omp.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"
#include "outfile.h"
#include "trees.h"

static int is_hdf5(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char sig[8];
    size_t n = f ? fread(sig, 1, 8, f) : 0;
    if (f) fclose(f);
    return n == 8 && memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
}

int ct_trees_cli_wants(const char *command, const char *target, const char *const *overrides, int n)
{
    if (strcmp(command, "dump-trees") == 0) return 1;
    if (!target || strcmp(command, "help") == 0 || strcmp(command, "bench-comm") == 0) return 0;
    if (is_hdf5(target)) return ct_trees_file_is(target);
    ct_config *cfg = NULL;
    if (ct_config_load(target, overrides, n, &cfg) != CT_OK) {
        ct_error_clear();
        return 0; /* the ordinary path reports the error */
    }
    int yes = ct_config_is_trees(cfg);
    ct_config_free(cfg);
    return yes;
}

/* --- train --------------------------------------------------------------- */

typedef struct train_ctx {
    const ct_config *cfg;
    ct_comm *comm;
    int verbose, max_iter;
    double t0;
} train_ctx;

static int max_depth_of(const ct_tree *t)
{
    int d = 0;
    for (int j = 0; j < t->n_nodes; j++) d = t->nodes[j].depth > d ? t->nodes[j].depth : d;
    return d;
}

static ct_status iteration_end(void *c, const ct_trees *m, int it, double seconds, int *stop)
{
    train_ctx *x = c;
    (void)stop;
    if (x->comm->rank != 0) return CT_OK;
    if (x->verbose) { /* sklearn's verbose line */
        int leaves = 0, depth = 0;
        for (int k = 0; k < m->k; k++) {
            const ct_tree *t = &m->trees[(it - 1) * m->k + k];
            for (int j = 0; j < t->n_nodes; j++) leaves += t->nodes[j].left < 0;
            int d = max_depth_of(t);
            depth = d > depth ? d : depth;
        }
        printf("[%d/%d] %d tree%s, %d leaves, max depth = %d", it, x->max_iter, m->k, m->k > 1 ? "s" : "", leaves, depth);
        if (!isnan(m->train_loss[it])) printf(", train loss: %.5f", m->train_loss[it]);
        if (!isnan(m->val_loss[it])) printf(", val loss: %.5f", m->val_loss[it]);
        printf(", in %.3fs\n", seconds);
        fflush(stdout);
    }
    const Ctrain__BoostedTreesConfig *b = x->cfg->boosted_trees;
    if (b->checkpoint && (it % b->checkpoint_freq == 0 || m->early_stopped || it == x->max_iter))
        CT_TRY(ct_trees_save(b->checkpoint, x->cfg, m));
    return CT_OK;
}

static void print_scores(const char *label, const ct_trees *m, const ct_trees_scores *s)
{
    if (m->loss == CT_TREES_SQUARED_ERROR)
        printf("%s: loss: %.4f - mse: %.4f - mae: %.4f\n", label, s->loss, s->mse, s->mae);
    else
        printf("%s: loss: %.4f - accuracy: %.4f\n", label, s->loss, s->accuracy);
    fflush(stdout);
}

/* --resume: the named file or [boosted_trees] checkpoint, when it exists. */
static ct_status resume(const ct_trees_cli *a, const ct_config *cfg, ct_trees *m, int verbose, ct_comm *comm)
{
    const char *path = a->resume_from ? a->resume_from : cfg->boosted_trees->checkpoint;
    if (!path || access(path, R_OK) != 0) {
        if (a->resume_from) return CT_FAIL(CT_ERR_USAGE, "--resume %s: no such file", a->resume_from);
        if (verbose && comm->rank == 0) printf("No checkpoint to resume from; starting fresh.\n");
        return CT_OK;
    }
    CT_TRY(ct_trees_load(path, NULL, m));
    if (verbose && comm->rank == 0) printf("Resuming from %s (iteration %d)\n", path, m->n_iter);
    return CT_OK;
}

static ct_status cmd_train(ct_comm *comm, const ct_trees_cli *a)
{
    ct_config *cfg = NULL;
    ct_trees m = {0};
    ct_trees_data d = {0};
    ct_trees_params p = {0};
    ct_status s = ct_dist_load_config(comm, a->target, a->overrides, a->n_overrides, &cfg);
    if (s != CT_OK) return s;
    int verbose = a->verbose >= 0 ? a->verbose : cfg->train && cfg->train->has_verbose ? cfg->train->verbose : 1;
    if (comm->size > 1 && (s = ct_comm_set_timeout(comm, cfg->distributed ? cfg->distributed->timeout : 300)) != CT_OK)
        goto done;
    if (a->resume && (s = resume(a, cfg, &m, verbose, comm)) != CT_OK) goto done;
    if ((s = ct_trees_data_load(cfg, 1, &m, &d)) != CT_OK) goto done;
    if ((s = ct_trees_params_from_config(cfg, &m, &d.train, &p)) != CT_OK) goto done;
    p.need_train_loss = verbose > 0;
    if (comm->rank == 0 && cfg->train && cfg->train->save_model) { /* before the work; never over an input */
        const Ctrain__DataConfig *dc = cfg->data;
        const char *inputs[5] = {a->target, a->resume_from, dc ? dc->train : NULL, dc ? dc->test : NULL,
                                 dc ? dc->validation : NULL};
        if ((s = ct_output_check("[train] save_model", cfg->train->save_model, inputs, 5)) != CT_OK) goto done;
    }
    if (m.n_iter >= p.max_iter || m.early_stopped) {
        if (verbose && comm->rank == 0) printf("The checkpoint has finished training (%d iterations%s).\n", m.n_iter,
                                               m.early_stopped ? ", stopped early" : "");
    } else {
        train_ctx x = {cfg, comm, verbose && comm->rank == 0, p.max_iter, omp_get_wtime()};
        ct_trees_hooks hooks = {&x, iteration_end};
        if ((s = ct_trees_fit(&m, &d, &p, comm, &hooks)) != CT_OK) goto done;
        if (comm->rank == 0 && verbose) {
            printf("Fit %d trees in %.3f s (%d iteration%s%s, %lld training samples, %d rank%s x %d thread%s)\n",
                   m.n_iter * m.k, omp_get_wtime() - x.t0, m.n_iter, m.n_iter == 1 ? "" : "s",
                   m.early_stopped ? ", stopped early" : "", (long long)d.train.n, comm->size,
                   comm->size > 1 ? "s" : "", omp_get_max_threads(), omp_get_max_threads() > 1 ? "s" : "");
        }
    }
    if (d.test.n && comm->rank == 0) {
        ct_trees_scores sc;
        if ((s = ct_trees_evaluate(&m, &d.test, &sc)) != CT_OK) goto done;
        print_scores("Test", &m, &sc);
    }
    const char *save = cfg->train ? cfg->train->save_model : NULL;
    if (save && comm->rank == 0) {
        if ((s = ct_trees_save(save, cfg, &m)) != CT_OK) goto done;
        if (verbose) printf("Saved model to %s\n", save);
    }
done:
    ct_trees_params_free(&p);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
    ct_config_free(cfg);
    return s;
}

/* --- the others ----------------------------------------------------------- */

/* The model of the target: a model file, or a config's [train] save_model. */
static ct_status load_target(const ct_trees_cli *a, ct_config **cfg, ct_trees *m)
{
    const char *path = a->target;
    ct_config *conf = NULL;
    if (!is_hdf5(path)) {
        CT_TRY(ct_config_load(path, a->overrides, a->n_overrides, &conf));
        const char *save = conf->train ? conf->train->save_model : NULL;
        if (!save || !is_hdf5(save)) {
            ct_status s = CT_FAIL(CT_ERR_USAGE, "%s: no trained model (train first: [train] save_model = %s)", path,
                                  save ? save : "<file>.h5");
            ct_config_free(conf);
            return s;
        }
        path = save;
    }
    ct_status s = ct_trees_load(path, cfg, m);
    for (int i = 0; s == CT_OK && i < a->n_overrides; i++) s = ct_config_override(*cfg, a->overrides[i]);
    if (s == CT_OK && conf) { /* the config's [data] (it may name other files) */
        ct_config_free(*cfg);
        *cfg = conf;
        conf = NULL;
    }
    ct_config_free(conf);
    return s;
}

static ct_status cmd_evaluate(ct_comm *comm, const ct_trees_cli *a)
{
    ct_config *cfg = NULL;
    ct_trees m = {0};
    ct_trees_data d = {0};
    ct_status s = load_target(a, &cfg, &m);
    if (s == CT_OK) s = ct_trees_data_load(cfg, 0, &m, &d);
    const ct_dataset *set = d.test.n ? &d.test : d.val.n ? &d.val : NULL;
    if (s == CT_OK && !set) s = CT_FAIL(CT_ERR_CONFIG, "%s: no test or validation data to evaluate on ([data] test = ...)", a->target);
    ct_trees_scores sc;
    if (s == CT_OK && (s = ct_trees_evaluate(&m, set, &sc)) == CT_OK && comm->rank == 0)
        print_scores(set == &d.test ? "Test" : "Validation", &m, &sc);
    ct_trees_data_free(&d);
    ct_trees_free(&m);
    ct_config_free(cfg);
    return s;
}

static ct_status cmd_predict(const ct_trees_cli *a)
{
    ct_config *cfg = NULL;
    ct_trees m = {0};
    ct_dataset d = {0};
    float *out = NULL;
    FILE *f = stdout;
    ct_outfile of;
    if (!a->input) return CT_FAIL(CT_ERR_USAGE, "predict needs --input FILE");
    const char *inputs[2] = {a->target, a->input};
    if (a->output) CT_TRY(ct_output_check("--output", a->output, inputs, 2)); /* before the work */
    ct_status s = load_target(a, &cfg, &m);
    if (s == CT_OK) s = ct_trees_read(cfg, &m, a->input, &d);
    if (s == CT_OK && !(out = malloc(sizeof(float) * (size_t)(d.n * m.k + 1)))) s = CT_FAIL(CT_ERR_NOMEM, "predictions");
    if (s == CT_OK) ct_trees_predict(&m, d.x, d.n, out);
    if (s == CT_OK && (s = ct_output_open("--output", a->output, inputs, 2, &of, &f)) == CT_OK) {
        for (int64_t i = 0; s == CT_OK && i < d.n; i++)
            for (int k = 0; k < m.k; k++)
                if (fprintf(f, "%.9g%c", out[i * m.k + k], k + 1 < m.k ? ',' : '\n') < 0)
                    s = CT_FAIL(CT_ERR_IO, "%s: cannot write predictions: %s", a->output ? a->output : "standard output",
                                strerror(errno));
        s = ct_output_close(a->output, &of, s);
    }
    free(out);
    ct_dataset_free(&d);
    ct_trees_free(&m);
    ct_config_free(cfg);
    return s;
}

/* summary of a config whose model is not trained yet: its parameters. */
static ct_status summary_untrained(const ct_trees_cli *a)
{
    ct_config *cfg = NULL;
    CT_TRY(ct_config_load(a->target, a->overrides, a->n_overrides, &cfg));
    const Ctrain__BoostedTreesConfig *b = cfg->boosted_trees;
    printf("Model: \"%s\" (boosted trees, not trained yet: ctrain train %s)\n",
           cfg->model->name ? cfg->model->name : "boosted_trees", a->target);
    printf("loss: %s, learning_rate %g, max_iter %d, max_leaf_nodes %d, max_depth %d, min_samples_leaf %d,\n"
           "l2_regularization %g, max_bins %d, grow_policy %s, early_stopping %s\n",
           b->loss, b->learning_rate, b->max_iter, b->max_leaf_nodes, b->max_depth, b->min_samples_leaf,
           b->l2_regularization, b->max_bins, b->grow_policy, b->early_stopping);
    for (size_t i = 0; i < b->n_categorical_features; i++)
        printf("%s%s", i ? ", " : "categorical features: ", b->categorical_features[i]);
    if (b->n_categorical_features) printf("\n");
    ct_config_free(cfg);
    return CT_OK;
}

static ct_status cmd_summary(const ct_trees_cli *a, int dump)
{
    ct_config *cfg = NULL;
    ct_trees m = {0};
    FILE *f = stdout;
    if (dump && !is_hdf5(a->target))
        return CT_FAIL(CT_ERR_USAGE, "dump-trees needs a model file written by training, got '%s'", a->target);
    if (!dump && !is_hdf5(a->target)) {
        ct_status s = ct_config_load(a->target, a->overrides, a->n_overrides, &cfg);
        const char *save = s == CT_OK && cfg->train ? cfg->train->save_model : NULL;
        int trained = save && is_hdf5(save);
        ct_config_free(cfg);
        cfg = NULL;
        if (s != CT_OK) return s;
        if (!trained) return summary_untrained(a);
    }
    ct_outfile of;
    const char *inputs[1] = {a->target};
    ct_status s = load_target(a, &cfg, &m);
    if (s == CT_OK && (s = ct_output_open("--output", a->output, inputs, 1, &of, &f)) == CT_OK) {
        if (dump) ct_trees_dump(&m, f);
        else ct_trees_summary(&m, cfg->model && cfg->model->name ? cfg->model->name : "boosted_trees", f);
        s = ct_output_close(a->output, &of, s);
    }
    ct_trees_free(&m);
    ct_config_free(cfg);
    return s;
}

ct_status ct_trees_cli_run(ct_comm *comm, const ct_trees_cli *a)
{
    if (strcmp(a->command, "train") == 0) return cmd_train(comm, a);
    if (strcmp(a->command, "evaluate") == 0) return cmd_evaluate(comm, a);
    if (strcmp(a->command, "bench") == 0)
        return CT_FAIL(CT_ERR_USAGE, "bench times neural networks; for boosted trees see tests/bench/gbdt_vs_xgboost.sh");
    if (comm->rank != 0) return CT_OK;
    if (strcmp(a->command, "predict") == 0) return cmd_predict(a);
    if (strcmp(a->command, "summary") == 0) return cmd_summary(a, 0);
    if (strcmp(a->command, "dump-trees") == 0) return cmd_summary(a, 1);
    return CT_FAIL(CT_ERR_USAGE, "%s: %s is for neural networks (boosted trees: dump-trees)", a->target, a->command);
}
