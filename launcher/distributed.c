/* What the launcher does so that N ranks train one model: rank 0 reads the
 * config and broadcasts the packed bytes; rank 0's initial weights are
 * broadcast and every rank checks that it built the same parameters; rank
 * 0 runs the callbacks and broadcasts a decision record (stop, learning
 * rate) so that every rank stops at the same step. */
#include <errno.h>
#include <mpi.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "launcher.h"

ct_status ct_dist_load_config(ct_comm *c, const char *path, const char *const *overrides, int n, ct_config **out)
{
    *out = NULL;
    if (c->size == 1) return ct_config_load(path, overrides, n, out);
    uint8_t *bytes = NULL;
    size_t len = 0;
    int64_t len64 = 0;
    if (c->rank == 0) {
        CT_TRY(ct_config_load(path, overrides, n, out));
        CT_TRY(ct_config_pack(*out, &bytes, &len));
        len64 = (int64_t)len;
    }
    ct_status s = ct_comm_bcast(c, &len64, sizeof len64, 0);
    if (s == CT_OK && c->rank != 0 && !(bytes = malloc((size_t)len64 + 1))) s = CT_FAIL(CT_ERR_NOMEM, "config bytes");
    if (s == CT_OK) s = ct_comm_bcast(c, bytes, len64, 0);
    if (s == CT_OK && c->rank != 0) {
        s = ct_config_unpack(bytes, (size_t)len64, out);
        if (s == CT_OK) s = ct_config_validate(*out);
    }
    free(bytes);
    return s;
}

/* FNV-1a over parameter names and shapes. */
static uint64_t layout_hash(const ct_graph *g)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < g->n_params; i++) {
        const ct_layer_param *p = ct_graph_param(g, i);
        for (const char *s = g->params[i].full_name; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
        for (int d = 0; d < p->shape.rank; d++) h = (h ^ (uint64_t)p->shape.dims[d]) * 1099511628211ull;
        h = (h ^ (uint64_t)p->trainable) * 1099511628211ull;
    }
    return h;
}

ct_status ct_dist_setup_model(ct_comm *c, const ct_config *cfg, ct_model *m)
{
    const Ctrain__DistributedConfig *d = cfg->distributed;
    ct_reduce_algo algo = d && d->allreduce && strcmp(d->allreduce, "mpi") == 0 ? CT_ALLREDUCE_MPI : CT_ALLREDUCE_RING;
    CT_TRY(ct_model_set_comm(m, c, algo, d ? d->fp16 : 0, (int64_t)(d ? d->bucket_kb : 1024) * 1024));
    if (d && d->lr_scaling && strcmp(d->lr_scaling, "linear") == 0)
        m->lr *= (double)m->batch_size / (double)d->base_batch_size;
    if (c->size == 1) return CT_OK;
    CT_TRY(ct_comm_set_timeout(c, d ? d->timeout : 300));
    CT_TRY(ct_comm_set_heartbeat(c, d ? d->heartbeat : 20));
    uint64_t mine = layout_hash(m->graph), root = mine;
    CT_TRY(ct_comm_bcast(c, &root, sizeof root, 0));
    if (root != mine)
        return CT_FAIL(CT_ERR_CONFIG, "rank %d built other parameters (names or shapes) than rank 0: are all ranks "
                       "running the same ctrain on the same config?", c->rank);
    return ct_comm_bcast(c, m->graph->values, (int64_t)sizeof(float) * m->graph->n_values, 0);
}

ct_status ct_dist_check_weights(ct_comm *c, const ct_model *m)
{
    if (c->size == 1) return CT_OK;
    uint64_t h = 1469598103934665603ull, root;
    const unsigned char *p = (const unsigned char *)m->graph->values;
    for (size_t i = 0; i < sizeof(float) * (size_t)m->graph->n_values; i++) h = (h ^ p[i]) * 1099511628211ull;
    root = h;
    CT_TRY(ct_comm_bcast(c, &root, sizeof root, 0));
    if (root != h) return CT_FAIL(CT_ERR_RUNTIME, "rank %d: the weights differ from rank 0's after training", c->rank);
    return CT_OK;
}

int ct_dist_local_ranks(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 1;
}

/* --- signals --------------------------------------------------------------- */

static volatile sig_atomic_t got_signal;
static struct timespec signal_time;

static void on_signal(int sig)
{
    if (!got_signal) clock_gettime(CLOCK_MONOTONIC, &signal_time); /* async-signal-safe */
    static const char msg[] = "ctrain: signal received: finishing the step, then saving a checkpoint and exiting\n";
    if (!got_signal) {
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
    }
    got_signal = sig;
}

ct_status ct_dist_catch_signals(void)
{
    static const int sigs[] = {SIGUSR1, SIGTERM, SIGINT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return CT_FAIL(CT_ERR_RUNTIME, "cannot install the handler for signal %d: %s", sigs[i], strerror(errno));
    return CT_OK;
}

int ct_dist_signal_received(void) { return got_signal; }

double ct_dist_since_signal(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - signal_time.tv_sec) + 1e-9 * (double)(t.tv_nsec - signal_time.tv_nsec);
}

/* --- the decision record ------------------------------------------------- */

/* Every rank contributes and every rank gets the sums: rank 0's learning
 * rate and stop (the callbacks run there) and any rank's signal, so that
 * all ranks act on the same decision after the same step. */
static ct_status share(dist_hooks *d, int *stop)
{
    double r[3] = {d->comm->rank == 0 ? d->m->lr : 0, d->comm->rank == 0 && *stop, got_signal != 0};
    CT_TRY(ct_comm_allreduce_f64(d->comm, r, 3));
    d->m->lr = r[0];
    if (r[2] > 0 && !d->interrupted) {
        d->interrupted = 1;
        if (d->comm->rank == 0 && d->comm->size > 1)
            fprintf(stderr, "ctrain: %g rank(s) got a signal: every rank stops after step %llu\n", r[2],
                    (unsigned long long)d->m->step);
    }
    *stop = r[1] > 0 || d->interrupted;
    return CT_OK;
}

/* After the last step every rank takes rank 0's weights: EarlyStopping may
 * have restored its best ones there. */
static ct_status share_weights(dist_hooks *d)
{
    ct_graph *g = d->m->graph;
    return ct_comm_bcast(d->comm, g->values, (int64_t)sizeof(float) * g->n_values, 0);
}

static ct_status on_epoch_begin(void *ctx, int epoch, int epochs, int64_t steps)
{
    dist_hooks *d = ctx;
    if (d->inner.epoch_begin) CT_TRY(d->inner.epoch_begin(d->inner.ctx, epoch, epochs, steps));
    int stop = 0;
    return share(d, &stop);
}

static ct_status on_batch_end(void *ctx, int epoch, int64_t step, int64_t steps, const ct_logs *logs, int *stop)
{
    dist_hooks *d = ctx;
    if (d->inner.batch_end) CT_TRY(d->inner.batch_end(d->inner.ctx, epoch, step, steps, logs, stop));
    /* A signal on any rank came with the step's totals (m->stop_votes);
     * rank 0's learning rate and stop need a record of their own only
     * with callbacks that decide after every batch. */
    if (d->m->stop_votes > 0 && !d->interrupted) {
        d->interrupted = 1;
        if (d->comm->rank == 0 && d->comm->size > 1)
            fprintf(stderr, "ctrain: %g rank(s) got a signal: every rank stops after step %llu\n", d->m->stop_votes,
                    (unsigned long long)d->m->step);
    }
    if (d->per_batch) return share(d, stop);
    *stop = *stop || d->interrupted;
    return CT_OK;
}

static ct_status on_epoch_end(void *ctx, int epoch, ct_logs *logs, double seconds, int *stop)
{
    dist_hooks *d = ctx;
    if (d->inner.epoch_end) CT_TRY(d->inner.epoch_end(d->inner.ctx, epoch, logs, seconds, stop));
    CT_TRY(share(d, stop));
    return *stop ? share_weights(d) : CT_OK;
}

static ct_status on_train_end(void *ctx, int epoch)
{
    dist_hooks *d = ctx;
    return d->inner.train_end ? d->inner.train_end(d->inner.ctx, epoch) : CT_OK;
}

ct_fit_hooks ct_dist_hooks(dist_hooks *d, ct_comm *c, ct_model *m, const ct_config *cfg, const ct_fit_hooks *rank0)
{
    memset(d, 0, sizeof *d);
    d->comm = c;
    d->m = m;
    m->stop_vote = &got_signal;
    if (c->rank == 0 && rank0) d->inner = *rank0;
    /* Decisions inside an epoch only exist with these callbacks. */
    d->per_batch = (cfg->terminate_on_nan && cfg->terminate_on_nan->enabled) ||
                   (cfg->lr_schedule && cfg->lr_schedule->warmup_epochs > 0);
    ct_fit_hooks h = {.ctx = d, .epoch_begin = on_epoch_begin, .batch_end = on_batch_end,
                      .epoch_end = on_epoch_end, .train_end = on_train_end};
    return h;
}

void ct_launcher_exit_now(int code) { _exit(code); }

void ct_comm_abort(const ct_comm *c, int code)
{
    if (c->mpi && c->size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}
