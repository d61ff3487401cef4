/* ctrain: the command line. The only place that turns a status into an
 * exit code (0 ok, 2 bad usage or input, 1 runtime failure) and, with
 * several ranks, into MPI_Abort so that no rank is left waiting. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "callbacks.h"
#include "checkpoint.h"
#include "comm.h"
#include "config.h"
#include "inputs.h"
#include "launcher.h"
#include "model.h"
#include "ops.h"
#include "outfile.h"
#include "sources.h"

#define MAX_OVERRIDES 64

typedef struct args {
    const char *command, *target;
    const char *overrides[MAX_OVERRIDES];
    int n_overrides;
    int threads, verbose, steps, bench_data, bench_inference;
    const char *input, *output;
    int resume;                /* --resume given */
    int help;                  /* --help or -h after the command */
    const char *resume_from;   /* its optional path */
    const char *prompt, *layer; /* generate, export-embeddings */
    int length;
    double temperature;
} args;

static ct_comm comm;
static int interrupted; /* train stopped by a signal: exit CT_EXIT_INTERRUPTED */

static const char options_text[] =
    "options:\n"
    "  --set SECTION.KEY=VALUE  override a config key (repeatable; KEY= with no value unsets it)\n"
    "  --threads N              OpenMP threads per rank (default: the cores available)\n"
    "  --verbose 0|1|2          0 silent, 1 progress bar, 2 one line per epoch\n"
    "  --resume [CKPT]          continue from CKPT, or from the newest checkpoint the\n"
    "                           config's [model_checkpoint] wrote (fresh start if none)\n"
    "  --help, -h               the help of the command\n";

static const char usage_text[] =
    "usage: ctrain [COMMAND] CONF|MODEL.h5 [options]\n"
    "\n"
    "commands:\n"
    "  train CONF            train the model a config describes (the default command)\n"
    "  evaluate CONF|MODEL.h5  loss and metrics on the test set (or the validation set)\n"
    "  predict MODEL.h5 --input FILE [--output FILE]  one CSV row of outputs per sample\n"
    "  summary CONF|MODEL.h5 the Keras-style layer table\n"
    "  bench CONF [--steps N] [--data]  time training steps on synthetic data (--data: on the\n"
    "                        configured data through the input pipeline, with augmentation;\n"
    "                        --inference: forward passes as evaluate and predict run them)\n"
    "  bench-comm            (under mpirun) our ring allreduce against MPI_Allreduce\n"
    "  dump-weights MODEL.h5 [--output FILE]  every variable as text\n"
    "  export-json MODEL.h5|CONF  the architecture as Keras JSON (model.to_json())\n"
    "  dump-trees MODEL.h5 [--output FILE]  the trees of a boosted-trees model as text\n"
    "  generate MODEL.h5 --prompt TEXT [--length N] [--temperature T]  sample a language model\n"
    "  export-embeddings MODEL.h5 --layer NAME [--output DIR]  vectors.tsv and metadata.tsv\n"
    "  help [COMMAND]        the help of one command (also COMMAND --help)\n"
    "  version, --version    the version of ctrain\n"
    "\n"
    "\n";

static void print_usage(FILE *f)
{
    fputs(usage_text, f);
    fputs(options_text, f);
}

static ct_status usage(const char *fmt, const char *arg)
{
    return CT_FAIL(CT_ERR_USAGE, fmt, arg);
}

/* One entry per command: `ctrain help COMMAND` and `COMMAND --help`. */
typedef struct command_help {
    const char *name, *synopsis, *about;
} command_help;

static const command_help commands[] = {
    {"train", "train CONF [--set SECTION.KEY=VALUE]... [--resume [CKPT]] [--threads N] [--verbose 0|1|2]",
     "Trains the model CONF describes (the default command: `ctrain CONF` is the same). Prints Keras's\n"
     "progress lines, then `Test: ...` when the config has a test set, and writes [train] save_model.\n"
     "--resume continues from CKPT, or from the newest checkpoint the config's [model_checkpoint]\n"
     "wrote (a fresh start when there is none)."},
    {"evaluate", "evaluate CONF|MODEL.h5 [--set SECTION.KEY=VALUE]...",
     "Loss and metrics on the test set (or the validation set). With a config, the trained model is\n"
     "used: [train] save_model when that file exists, else the newest [model_checkpoint] file, else\n"
     "[model] weights; with none of them it refuses rather than evaluate untrained weights."},
    {"predict", "predict MODEL.h5 --input FILE [--output FILE]",
     "One CSV row of model outputs per input sample. The input is read in the model's data format; a\n"
     "CSV may have the label column (ignored) or only the feature columns."},
    {"summary", "summary CONF|MODEL.h5 [--set SECTION.KEY=VALUE]...",
     "The layer table of Keras's model.summary() (a config needs no [train] section for it)."},
    {"bench", "bench CONF [--steps N] [--data] [--inference] [--threads N]",
     "Times training steps on synthetic data of the model's input shape (--data: on the configured\n"
     "data through the input pipeline, with augmentation; --inference: forward passes as evaluate and\n"
     "predict run them)."},
    {"bench-comm", "bench-comm", "(under mpirun) our ring allreduce against MPI_Allreduce."},
    {"dump-weights", "dump-weights MODEL.h5 [--output FILE]", "Every variable as text: name, shape, values."},
    {"export-json", "export-json MODEL.h5|CONF", "The architecture as Keras JSON (model.to_json())."},
    {"dump-trees", "dump-trees MODEL.h5 [--output FILE]",
     "The trees of a boosted-trees model ([model] kind = boosted_trees) as text: every split with its\n"
     "gain and sample count, every leaf value. train, evaluate, predict and summary take boosted-trees\n"
     "configs and model files too (summary: trees, leaves and feature importances by gain)."},
    {"generate", "generate MODEL.h5 --prompt TEXT [--length N] [--temperature T]",
     "Samples N tokens (default 100) from a language model trained on [data] format = text_lm,\n"
     "starting from TEXT; temperature 0 takes the most likely token, 1 (the default) samples the\n"
     "model's distribution, higher is more random."},
    {"export-embeddings", "export-embeddings MODEL.h5 --layer NAME [--output DIR]",
     "Writes DIR/vectors.tsv and DIR/metadata.tsv (default DIR: .) for the Embedding Projector: one\n"
     "row per vocabulary entry but padding, the layer's vector and its token."},
    {"help", "help [COMMAND]", "This text, or the help of one command."},
    {"version", "version", "The version of ctrain (also --version)."},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static const command_help *find_command(const char *name)
{
    for (int k = 0; k < N_COMMANDS; k++)
        if (strcmp(name, commands[k].name) == 0) return &commands[k];
    return NULL;
}

/* "did you mean 'train'?" for a first argument that is no file and close
 * to a command name. */
static const char *near_command(const char *word)
{
    const char *names[N_COMMANDS];
    for (int k = 0; k < N_COMMANDS; k++) names[k] = commands[k].name;
    return ct_nearest_name(word, names, N_COMMANDS);
}

static ct_status print_help(const char *name)
{
    if (!name) {
        print_usage(stdout);
        return CT_OK;
    }
    const command_help *c = find_command(name);
    if (!c) {
        const char *near = near_command(name);
        if (near) return CT_FAIL(CT_ERR_USAGE, "help: unknown command '%s'; did you mean '%s'?", name, near);
        return usage("help: unknown command '%s' (commands: train, evaluate, predict, summary, bench, "
                     "bench-comm, dump-weights, help, version)", name);
    }
    printf("usage: ctrain %s\n\n%s\n\n%s", c->synopsis, c->about, options_text);
    return CT_OK;
}

static ct_status parse_int(const char *opt, const char *v, int lo, int *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || end == v || x < lo || x > 1000000000)
        return CT_FAIL(CT_ERR_USAGE, "%s needs an integer >= %d, got '%s'", opt, lo, v ? v : "");
    *out = (int)x;
    return CT_OK;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* The argument after --resume is its checkpoint when it is a model file by
 * name or content, or when the config was already named: so that a missing
 * checkpoint is reported as missing, not as an unexpected argument. */
static int resume_takes(const char *v, const char *target)
{
    if (!v || v[0] == '-') return 0;
    if (has_suffix(v, ".h5") || has_suffix(v, ".hdf5") || ct_checkpoint_is_hdf5(v)) return 1;
    return target != NULL && !has_suffix(v, ".conf");
}

static ct_status parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->verbose = -1;
    a->temperature = 1.0;
    int i = 1;
    a->command = "train";
    if (i < argc) {
        const command_help *c = find_command(argv[i]);
        if (c) {
            a->command = c->name;
            i++;
        } else if (argv[i][0] != '-' && !file_exists(argv[i])) {
            const char *near = near_command(argv[i]);
            if (near)
                return CT_FAIL(CT_ERR_USAGE, "unknown command '%s'; did you mean '%s'? (see ctrain help)", argv[i], near);
        }
    }
    for (; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            a->help = 1;
        } else if (strcmp(o, "--set") == 0 || strcmp(o, "-s") == 0) {
            if (!v) return usage("%s needs SECTION.KEY=VALUE", o);
            if (a->n_overrides >= MAX_OVERRIDES) return usage("too many %s options", o);
            a->overrides[a->n_overrides++] = v;
            i++;
        } else if (strncmp(o, "--set=", 6) == 0) {
            if (a->n_overrides >= MAX_OVERRIDES) return usage("too many %s options", "--set");
            a->overrides[a->n_overrides++] = o + 6;
        } else if (strcmp(o, "--threads") == 0) {
            CT_TRY(parse_int(o, v, 1, &a->threads));
            /* libgomp crashes trying to start 100000 threads */
            if (a->threads > 1024) return usage("--threads takes 1 to 1024, got '%s'", v);
            i++;
        } else if (strcmp(o, "--verbose") == 0) {
            CT_TRY(parse_int(o, v, 0, &a->verbose));
            if (a->verbose > 2) return usage("--verbose takes 0, 1 or 2, got '%s'", v);
            i++;
        } else if (strcmp(o, "--steps") == 0) {
            CT_TRY(parse_int(o, v, 1, &a->steps));
            i++;
        } else if (strcmp(o, "--data") == 0) {
            a->bench_data = 1;
        } else if (strcmp(o, "--inference") == 0) {
            a->bench_inference = 1;
        } else if (strcmp(o, "--resume") == 0) {
            a->resume = 1;
            if (resume_takes(v, a->target)) {
                a->resume_from = v;
                i++;
            }
        } else if (strncmp(o, "--resume=", 9) == 0) {
            a->resume = 1;
            a->resume_from = o + 9;
        } else if (strcmp(o, "--prompt") == 0 || strcmp(o, "--layer") == 0) {
            if (!v) return usage("%s needs a value", o);
            *(o[2] == 'p' ? &a->prompt : &a->layer) = v;
            i++;
        } else if (strcmp(o, "--length") == 0) {
            CT_TRY(parse_int(o, v, 1, &a->length));
            i++;
        } else if (strcmp(o, "--temperature") == 0) {
            char *end = NULL;
            a->temperature = v ? strtod(v, &end) : -1;
            if (!v || *end || a->temperature < 0 || a->temperature > 100)
                return usage("--temperature takes a number in [0, 100], got '%s'", v ? v : "");
            i++;
        } else if (strcmp(o, "--input") == 0 || strcmp(o, "--output") == 0) {
            if (!v) return usage("%s needs a file name", o);
            *(o[2] == 'i' ? &a->input : &a->output) = v;
            i++;
        } else if (o[0] == '-' && o[1]) {
            return usage("unknown option '%s' (see ctrain help)", o);
        } else if (!a->target) {
            a->target = o;
        } else {
            return CT_FAIL(CT_ERR_USAGE, "unexpected argument '%s' after '%s' (see ctrain help %s)", o, a->target,
                           a->command);
        }
    }
    if (a->help || strcmp(a->command, "help") == 0 || strcmp(a->command, "version") == 0) return CT_OK;
    if (!a->target && strcmp(a->command, "bench-comm") != 0)
        return usage("%s needs a config file or a model file (see ctrain help)", a->command);
    return CT_OK;
}

/* Threads per rank: --threads, [distributed] or [train] threads, else the
 * cores of this node shared among its ranks (OMP_NUM_THREADS wins over
 * the default). BLAS runs in the same OpenMP pool, never nested. */
static void set_threads(const args *a, const ct_config *cfg)
{
    /* omp_get_num_procs() honours the affinity mpirun gives a rank: when
     * the rank is bound to fewer cores than the node has, use those;
     * otherwise share the node's cores among its ranks. */
    int ranks = ct_dist_local_ranks(), avail = omp_get_num_procs(), cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int share = avail < cores ? avail : cores / ranks;
    int n = a->threads;
    if (!n && cfg && cfg->distributed && cfg->distributed->has_threads) n = cfg->distributed->threads;
    if (!n && cfg && cfg->train && cfg->train->has_threads) n = cfg->train->threads;
    if (!n && getenv("OMP_NUM_THREADS")) n = omp_get_max_threads();
    if (!n) n = share > 0 ? share : 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
    if (comm.rank == 0 && n * ranks > cores)
        fprintf(stderr, "ctrain: warning: %d ranks x %d threads on this node exceed its %d cores; expect slow steps\n",
                ranks, n, cores);
}

static int is_model_file(const char *path)
{
    size_t n = strlen(path);
    return ct_checkpoint_is_hdf5(path) || (n > 3 && strcmp(path + n - 3, ".h5") == 0) ||
           (n > 5 && strcmp(path + n - 5, ".hdf5") == 0);
}

/* The model a config describes, with [model] weights loaded when given. */
static ct_status create_model(const ct_config *cfg, ct_model **m)
{
    CT_TRY(ct_model_create(cfg, m));
    if (cfg->model->weights) {
        ct_status s = ct_checkpoint_load_weights(cfg->model->weights, *m);
        if (s != CT_OK) {
            ct_model_destroy(*m);
            *m = NULL;
            return s;
        }
    }
    return CT_OK;
}

/* A config, or the config inside a model file. Collective on `c`. */
static ct_status load_target(ct_comm *c, const args *a, ct_config **cfg, ct_model **m, ct_inputs *norm)
{
    if (is_model_file(a->target)) {
        CT_TRY(ct_checkpoint_load(a->target, cfg, m, norm));
        for (int i = 0; i < a->n_overrides; i++) CT_TRY(ct_config_override(*cfg, a->overrides[i]));
        return CT_OK;
    }
    CT_TRY(ct_dist_load_config(c, a->target, a->overrides, a->n_overrides, cfg));
    if (m) return create_model(*cfg, m);
    return CT_OK;
}

/* --- train --------------------------------------------------------------- */

static ct_status hook_begin(void *c, int epoch, int epochs, int64_t steps)
{
    ct_progress_epoch_begin(c, epoch, epochs, steps);
    return CT_OK;
}

static ct_status hook_batch(void *c, int epoch, int64_t step, int64_t steps, const ct_logs *logs, int *stop)
{
    ct_progress_batch(c, step, logs);
    return CT_OK;
}

static ct_status hook_end(void *c, int epoch, ct_logs *logs, double seconds, int *stop)
{
    ct_progress_epoch_end(c, logs, seconds);
    return CT_OK;
}

static void print_test_line(const char *label, const ct_logs *logs)
{
    char line[1024];
    snprintf(line, sizeof line, "%s:", label);
    ct_format_logs(line, sizeof line, logs, 1);
    /* "Test: - loss: ..." -> "Test: loss: ..." */
    char *dash = strstr(line, ": - ");
    if (dash) memmove(dash + 2, dash + 4, strlen(dash + 4) + 1);
    printf("%s\n", line);
    fflush(stdout);
}

/* --resume: the named file, or the newest the config's checkpoints left
 * (found by rank 0, read by every rank). */
static ct_status resume(const args *a, const ct_config *cfg, ct_model *m, ct_callbacks *cb, int verbose)
{
    char path[4096] = "";
    ct_callback_state scratch = {0};
    if (a->resume_from) snprintf(path, sizeof path, "%s", a->resume_from);
    else if (comm.rank == 0) CT_TRY(ct_find_latest_checkpoint(cfg, path, sizeof path));
    CT_TRY(ct_comm_bcast(&comm, path, sizeof path, 0));
    if (!cb) cb = NULL;
    if (!path[0]) {
        if (verbose) printf("No checkpoint to resume from; starting fresh.\n");
        return CT_OK;
    }
    ct_status s = ct_checkpoint_resume(path, m, cb ? ct_callbacks_state(cb) : &scratch);
    free(scratch.best_weights);
    CT_TRY(s);
    if (verbose) printf("Resuming from %s (epoch %d, batch %lld)\n", path, m->state.epoch + 1, (long long)m->state.batch);
    return CT_OK;
}

static ct_status cmd_train(const args *a)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_callbacks *cb = NULL;
    ct_inputs in = {0};
    ct_status s;
    if ((s = ct_dist_load_config(&comm, a->target, a->overrides, a->n_overrides, &cfg)) != CT_OK) goto done;
    set_threads(a, cfg);
    if ((s = create_model(cfg, &m)) != CT_OK) goto done;
    if ((s = ct_dist_setup_model(&comm, cfg, m)) != CT_OK) goto done;
    if ((s = ct_inputs_load(cfg, 1, &in)) != CT_OK) goto done;
    if ((s = ct_preflight_data(cfg, m, &in)) != CT_OK) goto done;
    if (comm.rank == 0 && (s = ct_preflight(cfg, m, in.val.n > 0, a->target, a->resume_from)) != CT_OK) goto done;
    ct_progress progress = {.verbose = a->verbose >= 0 ? a->verbose : cfg->train->verbose};
    /* Only rank 0 prints and writes files. */
    if (comm.rank != 0) progress.verbose = 0;
    if (comm.rank == 0 && (s = ct_callbacks_create(cfg, m, &in, progress.verbose, &cb)) != CT_OK) goto done;
    if (a->resume && (s = resume(a, cfg, m, cb, progress.verbose)) != CT_OK) goto done;
    if (cb && (s = ct_callbacks_open_files(cb, a->resume)) != CT_OK) goto done;
    ct_fit_hooks bar = {.ctx = &progress, .epoch_begin = hook_begin, .batch_end = hook_batch, .epoch_end = hook_end};
    ct_fit_hooks rank0 = cb ? ct_callbacks_hooks(cb, &bar) : bar;
    dist_hooks dh;
    ct_fit_hooks hooks = ct_dist_hooks(&dh, &comm, m, cfg, &rank0);
    ct_stage *pipe = NULL;
    s = ct_dist_catch_signals();
    if (s == CT_OK) s = ct_inputs_pipeline(&in, cfg, m->seed, m->batch_size, comm.rank, comm.size, &pipe);
    if (s == CT_OK)
        s = ct_model_fit_stream(m, pipe, in.val.n ? &in.val : NULL, cfg->train->epochs, cfg->train->validation_freq,
                                &hooks);
    ct_stage_close(pipe);
    if (s != CT_OK) goto done;
    /* terminate_on_nan stops the run; it must not end as a success */
    if ((s = ct_model_check_finite(m, "training stopped")) != CT_OK) {
        if (cfg->train->save_model) ct_error_prefix("%s was not written: ", cfg->train->save_model);
        goto done;
    }
    if (dh.interrupted) { /* a resume point, then exit CT_EXIT_INTERRUPTED */
        interrupted = 1;
        char path[4096] = "";
        if (cb) s = ct_callbacks_save_now(cb, path, sizeof path);
        if (s == CT_OK) s = ct_comm_barrier(&comm); /* no rank exits before the file is complete */
        if (s == CT_OK && comm.rank == 0)
            fprintf(stderr, "ctrain: stopped by a signal after step %llu (epoch %d, batch %lld); %s%s; %.2f s after "
                    "the signal; exit %d\n", (unsigned long long)m->step, m->state.epoch + 1,
                    (long long)m->state.batch, path[0] ? "checkpoint " : "no checkpoint", path,
                    ct_dist_since_signal(), CT_EXIT_INTERRUPTED);
        goto done;
    }
    if ((s = ct_dist_check_weights(&comm, m)) != CT_OK) goto done;
    if (in.test.n) {
        ct_logs logs = {0};
        if ((s = ct_model_evaluate(m, &in.test, &logs)) != CT_OK) goto done;
        if (comm.rank == 0) print_test_line("Test", &logs);
    }
    if (cfg->train->save_model && comm.rank == 0) {
        s = ct_checkpoint_save(cfg->train->save_model, cfg, m, &in, ct_callbacks_state(cb), 0);
        if (s == CT_OK && progress.verbose) printf("Saved model to %s\n", cfg->train->save_model);
    }
done:
    ct_callbacks_destroy(cb);
    ct_inputs_free(&in);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* --- evaluate, predict, summary, dump-weights ----------------------------- */

/* `evaluate CONF` evaluates what training made, never fresh weights: the
 * config's [model] weights when given (already loaded), else [train]
 * save_model, else the newest [model_checkpoint] file. */
static ct_status load_trained(const args *a, const ct_config *cfg, ct_model *m)
{
    if (cfg->model->weights) return CT_OK;
    const char *saved = cfg->train->save_model;
    if (saved && access(saved, F_OK) == 0) {
        if (comm.rank == 0) fprintf(stderr, "ctrain: evaluating %s ([train] save_model)\n", saved);
        return ct_checkpoint_load_weights(saved, m);
    }
    char latest[4096] = "";
    CT_TRY(ct_find_latest_checkpoint(cfg, latest, sizeof latest));
    if (latest[0]) {
        if (comm.rank == 0) fprintf(stderr, "ctrain: evaluating %s (the newest [model_checkpoint] file)\n", latest);
        return ct_checkpoint_load_weights(latest, m);
    }
    char why[4200];
    if (saved) snprintf(why, sizeof why, "[train] save_model = %s does not exist", saved);
    else snprintf(why, sizeof why, "[train] save_model is not set");
    return CT_FAIL(CT_ERR_USAGE, "%s: no trained model to evaluate: %s, %s and [model] weights is not set; train first "
                   "(ctrain train %s) or evaluate a model file", a->target, why,
                   cfg->model_checkpoint ? "[model_checkpoint] has written no file" : "there is no [model_checkpoint]",
                   a->target);
}

static ct_status cmd_evaluate(const args *a)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_inputs norm = {0}, in = {0};
    ct_status s = load_target(&comm, a, &cfg, &m, &norm);
    if (s != CT_OK) goto done;
    set_threads(a, cfg);
    if (!is_model_file(a->target) && (s = load_trained(a, cfg, m)) != CT_OK) goto done;
    if ((s = ct_dist_setup_model(&comm, cfg, m)) != CT_OK) goto done;
    if ((s = ct_inputs_load(cfg, 0, &in)) != CT_OK) goto done;
    if ((s = ct_preflight_data(cfg, m, &in)) != CT_OK) goto done; /* shapes, finite values, labels: file and sample */
    const ct_dataset *d = in.test.n ? &in.test : (in.val.n ? &in.val : NULL);
    if (!d) {
        s = CT_FAIL(CT_ERR_CONFIG, "%s: no test or validation data to evaluate on ([data] test = ...)", a->target);
        goto done;
    }
    ct_logs logs = {0};
    if ((s = ct_model_evaluate(m, d, &logs)) == CT_OK && comm.rank == 0) print_test_line(d == &in.test ? "Test" : "Validation", &logs);
done:
    ct_inputs_free(&in);
    ct_inputs_free(&norm);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

static ct_status write_predictions(FILE *f, const char *name, const float *out, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < d; k++)
            if (fprintf(f, "%.9g%c", out[i * d + k], k + 1 < d ? ',' : '\n') < 0)
                return CT_FAIL(CT_ERR_IO, "%s: cannot write predictions: %s", name, strerror(errno));
    return CT_OK;
}

static ct_status cmd_predict(const args *a)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_inputs norm = {0};
    ct_stage *src = NULL;
    ct_dataset d = {0};
    float *out = NULL;
    FILE *f = stdout;
    ct_outfile of = {0};
    int opened = 0;
    ct_status s;
    if (!a->input) return CT_FAIL(CT_ERR_USAGE, "predict needs --input FILE");
    if (!is_model_file(a->target))
        return CT_FAIL(CT_ERR_USAGE, "predict needs a model file written by training (train.save_model), got '%s'", a->target);
    const char *inputs[2] = {a->target, a->input};
    if (a->output) CT_TRY(ct_output_check("--output", a->output, inputs, 2)); /* before the work */
    if ((s = ct_checkpoint_load(a->target, &cfg, &m, &norm)) != CT_OK) goto done;
    set_threads(a, cfg);
    if (cfg->augment) {
        norm.samplewise_center = cfg->augment->samplewise_center;
        norm.samplewise_std = cfg->augment->samplewise_std_normalization;
    }
    int csv = cfg->data && cfg->data->format && strcmp(cfg->data->format, "csv") == 0;
    if (cfg->data && cfg->data->format && strcmp(cfg->data->format, "idx") == 0) s = ct_idx_open(a->input, NULL, &src);
    else if (ct_inputs_is_text(cfg) && norm.vocab) s = ct_inputs_open_text(cfg, a->input, norm.vocab, 1.0, 1, &src); /* raw text */
    else s = ct_inputs_open(cfg, a->input, NULL, &src);
    /* an unlabelled CSV: one column fewer than the training file had */
    if (s == CT_OK && csv && ct_shape_numel(&src->x_shape) + 1 == m->graph->input_size) {
        ct_stage_close(src);
        src = NULL;
        s = ct_inputs_open_as(cfg, a->input, NULL, 1, &src);
    }
    if (s != CT_OK || (s = ct_dataset_from_stage(src, &d)) != CT_OK) goto done;
    if (d.x_size != m->graph->input_size) {
        s = CT_FAIL(CT_ERR_SHAPE, "%s: samples have %lld values, the model expects %lld", a->input, (long long)d.x_size,
                    (long long)m->graph->input_size);
        goto done;
    }
    if (!ct_model_same_shape(&d.x_shape, &m->graph->input_shape)) {
        char sa[64], sb[64];
        s = CT_FAIL(CT_ERR_SHAPE, "%s: samples have shape %s, the model input expects %s (the same values in another "
                    "shape)", a->input, ct_shape_str(&d.x_shape, 0, sa, sizeof sa),
                    ct_shape_str(&m->graph->input_shape, 0, sb, sizeof sb));
        goto done;
    }
    ct_inputs_normalize(&norm, &d);
    out = malloc(sizeof(float) * (size_t)(d.n * m->pred_size + 1));
    if (!out) {
        s = CT_FAIL(CT_ERR_NOMEM, "predictions");
        goto done;
    }
    if ((s = ct_model_predict(m, d.x, d.n, out)) != CT_OK) goto done;
    if ((s = ct_output_open("--output", a->output, inputs, 2, &of, &f)) != CT_OK) goto done;
    opened = 1;
    s = ct_output_close(a->output, &of, write_predictions(f, a->output ? a->output : "standard output", out, d.n, m->pred_size));
done:
    if (!opened && of.f) ct_outfile_abort(&of);
    free(out);
    ct_dataset_free(&d);
    ct_stage_close(src);
    ct_inputs_free(&norm);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* A config needs no [train] for its summary: only the graph is built. */
static ct_status cmd_summary(const args *a)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_graph *g = NULL;
    ct_inputs norm = {0};
    ct_comm solo = {.rank = 0, .size = 1};
    ct_status s;
    if (is_model_file(a->target)) {
        s = load_target(&solo, a, &cfg, &m, &norm);
        if (s == CT_OK) g = m->graph;
    } else {
        s = ct_dist_load_config(&solo, a->target, a->overrides, a->n_overrides, &cfg);
        if (s == CT_OK) s = ct_graph_build(cfg, cfg->train ? (uint64_t)cfg->train->seed : 42, &g);
    }
    if (s == CT_OK) {
        int functional = 0;
        for (size_t i = 0; i < cfg->n_layers; i++)
            if (cfg->layers[i]->n_inputs || cfg->layers[i]->apply || g->n_inputs > 1 || g->n_outputs > 1) functional = 1;
        const char *name = cfg->model->name ? cfg->model->name : (functional ? "model" : "sequential");
        ct_print_summary(g, name, functional);
    }
    if (!m) ct_graph_destroy(g);
    ct_inputs_free(&norm);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

static ct_status cmd_dump(const args *a)
{
    FILE *f;
    ct_outfile of = {0};
    const char *inputs[1] = {a->target};
    CT_TRY(ct_output_open("--output", a->output, inputs, 1, &of, &f));
    return ct_output_close(a->output, &of, ct_checkpoint_dump(a->target, f));
}

/* --- bench ----------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* io of node i as the graph fills it, in training. */
static void profile_io(ct_graph *g, int i, int64_t batch, ct_layer_io *io)
{
    ct_graph_fill_io(g, i, batch, io);
    io->training = 1;
}

/* Seconds per call of one node's forward (with the graph's activation),
 * or of its backward with (data) or without (weights only) input grads. */
static double profile_node(ct_graph *g, int i, int64_t batch, int what, int reps)
{
    ct_node *n = &g->nodes[i];
    ct_layer_io io;
    profile_io(g, i, batch, &io);
    if (what == 2)
        for (int k = 0; k < io.n_in; k++) io.din[k] = NULL;
    int64_t cols = n->layer->out_shape.dims[n->layer->out_shape.rank - 1];
    int act = n->layer->act != CT_ACT_LINEAR && !n->layer->own_act;
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
        if (what == 0) {
            n->layer->type->forward(n->layer, &io);
            if (act) ct_op_activation_fwd(n->layer->act, n->z, n->y, batch * n->out_size / cols, cols);
        } else {
            if (act && n->out_index < 0)
                ct_op_activation_bwd(n->layer->act, n->z, n->y, n->dy, n->dy, batch * n->out_size / cols, cols);
            n->layer->type->backward(n->layer, &io);
        }
    }
    return (now_s() - t0) / reps;
}

/* bench --verbose: per layer, forward, backward-data (backward with input
 * gradients minus backward without) and backward-weights, each timed on
 * its own after a real step (warm caches, so a lower bound). Buffers shared
 * between nodes hold stale values then; only the timing means anything. */
static void profile_layers(ct_model *m, int64_t batch, double step_s)
{
    ct_graph *g = m->graph;
    int reps = 5;
    double tot[3] = {0};
    printf("%-14s %-22s %9s %9s %9s %6s\n", "layer", "type", "fwd_ms", "bwd_d_ms", "bwd_w_ms", "share");
    double *t = calloc((size_t)g->n_nodes * 3, sizeof *t);
    if (!t) return;
    for (int i = 0; i < g->n_nodes; i++) {
        ct_node *n = &g->nodes[i];
        t[3 * i] = profile_node(g, i, batch, 0, reps);
        if (n->needs_grad) {
            double full = profile_node(g, i, batch, 1, reps), wonly = profile_node(g, i, batch, 2, reps);
            t[3 * i + 1] = full > wonly ? full - wonly : 0;
            t[3 * i + 2] = wonly;
        }
        for (int k = 0; k < 3; k++) tot[k] += t[3 * i + k];
    }
    double all = tot[0] + tot[1] + tot[2];
    for (int i = 0; i < g->n_nodes; i++) {
        ct_layer *l = g->nodes[i].layer;
        printf("%-14s %-22s %9.3f %9.3f %9.3f %5.1f%%\n", l->name, l->type->name, 1e3 * t[3 * i],
               1e3 * t[3 * i + 1], 1e3 * t[3 * i + 2], 100 * (t[3 * i] + t[3 * i + 1] + t[3 * i + 2]) / all);
    }
    printf("%-14s %-22s %9.3f %9.3f %9.3f (layers %.3f ms of a %.3f ms step)\n", "total", "", 1e3 * tot[0],
           1e3 * tot[1], 1e3 * tot[2], 1e3 * all, 1e3 * step_s);
    free(t);
}

static ct_status cmd_bench(const args *a)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_status s = ct_dist_load_config(&comm, a->target, a->overrides, a->n_overrides, &cfg);
    if (s != CT_OK) return s;
    set_threads(a, cfg);
    float *x = NULL, *y = NULL;
    ct_inputs in = {0};
    ct_stage *pipe = NULL;
    if ((s = ct_model_create(cfg, &m)) != CT_OK || (s = ct_dist_setup_model(&comm, cfg, m)) != CT_OK) goto done;
    int64_t b = m->batch_size, steps = a->steps ? a->steps : 50;
    if ((double)b * (double)(m->graph->input_size + m->y_size) > (double)CT_MAX_NUMEL) {
        /* synthetic data is allocated and written whole: refuse rather than be killed for memory */
        s = CT_FAIL(CT_ERR_CONFIG, "%s: bench: [train] batch_size = %lld of %lld values per sample is more than %lld "
                    "values of synthetic data", a->target, (long long)b, (long long)m->graph->input_size,
                    (long long)CT_MAX_NUMEL);
        goto done;
    }
    x = malloc(sizeof(float) * (size_t)(b * m->graph->input_size));
    y = malloc(sizeof(float) * (size_t)(b * m->y_size));
    if (!x || !y) {
        s = CT_FAIL(CT_ERR_NOMEM, "bench batch");
        goto done;
    }
    /* The same synthetic global batch on every rank; each trains its share. */
    ct_rng r = ct_rng_make(1, CT_RNG_TEST, 0);
    ct_rng_fill_uniform(&r, 0, 0, 1, x, b * m->graph->input_size);
    for (int64_t i = 0; i < b * m->y_size; i++)
        y[i] = m->loss.kind == CT_LOSS_SCCE ? (float)(i % m->out_dim) : (float)(ct_rng_uniform(&r, (uint64_t)i + (1ull << 30)) > 0.5f);
    double loss, t0 = 0;
    int64_t warm = steps / 10 + 2;
    if (a->bench_data) {
        if ((s = ct_inputs_load(cfg, 1, &in)) != CT_OK ||
            (s = ct_inputs_pipeline(&in, cfg, m->seed, b, comm.rank, comm.size, &pipe)) != CT_OK ||
            (s = ct_stage_reset(pipe, 0)) != CT_OK)
            goto done;
    }
    if (a->bench_inference) { /* forward passes only, as evaluate/predict (BatchNormalization folded) */
        float *out = malloc(sizeof(float) * (size_t)(b * m->pred_size));
        for (int64_t i = 0; out && s == CT_OK && i < warm + steps; i++) {
            if (i == warm) t0 = now_s();
            s = ct_model_predict(m, x, b, out);
        }
        if (!out) s = CT_FAIL(CT_ERR_NOMEM, "bench outputs");
        if (s == CT_OK && comm.rank == 0)
            printf("bench: %.1f images/s (inference, batch %lld, %d threads)\n", (double)(b * steps) / (now_s() - t0),
                   (long long)b, omp_get_max_threads());
        free(out);
        goto done;
    }
    uint64_t epoch = 0;
    int64_t k = 0; /* batch of the epoch */
    for (int64_t i = 0; i < warm + steps; i++) {
        if (i == warm) {
            if ((s = ct_comm_barrier(&comm)) != CT_OK) goto done;
            t0 = now_s();
        }
        if (pipe) { /* this rank's share of the next global batch, as fit reads it */
            ct_sample smp = {x, y, 0, 0};
            int eof = 0;
            if ((s = ct_stage_next(pipe, &smp, &eof)) != CT_OK) goto done;
            if (eof) {
                if ((s = ct_stage_reset(pipe, ++epoch)) != CT_OK) goto done;
                k = 0;
                i--;
                continue;
            }
            int64_t global = pipe->global_samples - k * b < b ? pipe->global_samples - k * b : b;
            k++;
            s = ct_model_train_local(m, x, y, smp.rows, global, &loss);
        } else {
            s = ct_model_train_global(m, x, y, b, &loss);
        }
        if (s != CT_OK) goto done;
    }
    double dt = now_s() - t0;
    if (comm.rank == 0)
        printf("bench: %.1f images/s (batch %lld, %d threads x %d ranks, %lld steps%s)\n", (double)(b * steps) / dt,
               (long long)b, omp_get_max_threads(), comm.size, (long long)steps,
               pipe ? (in.augment ? ", data pipeline with augmentation" : ", data pipeline") : "");
    if (comm.rank == 0 && comm.size == 1 && a->verbose > 0) profile_layers(m, b, dt / (double)steps);
done:
    ct_stage_close(pipe);
    ct_inputs_free(&in);
    free(x);
    free(y);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* --- main ------------------------------------------------------------------ */

/* SIGINT, SIGTERM, SIGHUP while a file is being written: remove its
 * temporary name, then die of the signal as before. Only installed where
 * the disposition is still the default (a handler installed by someone
 * else stays). */
static void on_fatal_signal(int sig)
{
    ct_outfile_unlink_pending();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_signal_cleanup(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction old, sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_DFL) sigaction(sigs[i], &sa, NULL);
    }
}

static ct_status run(const args *a)
{
    if (a->help) return print_help(a->command);
    if (strcmp(a->command, "help") == 0) return print_help(a->target);
    if (strcmp(a->command, "version") == 0) {
        if (comm.rank == 0) printf("ctrain %s\n", ct_version_string());
        return CT_OK;
    }
    if (strcmp(a->command, "bench-comm") == 0) return ct_comm_bench(&comm, stdout);
    if (ct_trees_cli_wants(a->command, a->target, a->overrides, a->n_overrides)) {
        ct_trees_cli tc = {a->command, a->target, a->overrides, a->n_overrides, a->verbose,
                           a->input, a->output, a->resume, a->resume_from};
        set_threads(a, NULL);
        return ct_trees_cli_run(&comm, &tc);
    }
    if (strcmp(a->command, "train") == 0) return cmd_train(a);
    if (strcmp(a->command, "evaluate") == 0) return cmd_evaluate(a);
    if (strcmp(a->command, "bench") == 0) return cmd_bench(a);
    /* The rest is the work of one process: rank 0 does it. */
    if (comm.rank != 0) return CT_OK;
    if (strcmp(a->command, "predict") == 0) return cmd_predict(a);
    if (strcmp(a->command, "generate") == 0) {
        if (!a->prompt) return CT_FAIL(CT_ERR_USAGE, "generate needs --prompt TEXT");
        set_threads(a, NULL);
        return ct_text_generate(a->target, a->prompt, a->length ? a->length : 100, a->temperature, 0, stdout);
    }
    if (strcmp(a->command, "export-embeddings") == 0) {
        if (!a->layer) return CT_FAIL(CT_ERR_USAGE, "export-embeddings needs --layer NAME");
        return ct_text_export_embeddings(a->target, a->layer, a->output ? a->output : ".");
    }
    if (strcmp(a->command, "summary") == 0) return cmd_summary(a);
    return cmd_dump(a);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("ctrain %s\n", ct_version_string());
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    ct_register_builtins();
    ct_comm_dead_peer_hook = ct_launcher_exit_now; /* a silent peer ends this rank (dist/heartbeat.c) */
    ct_status s = ct_comm_init(&argc, &argv, &comm);
    install_signal_cleanup();
    args a;
    int asks_help = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
    if (s == CT_OK && asks_help && find_command(argv[1])) s = comm.rank == 0 ? print_help(argv[1]) : CT_OK;
    else if (s == CT_OK && ct_convert_is_command(argv[1])) s = comm.rank == 0 ? ct_convert_command(argc, argv) : CT_OK;
    else if (s == CT_OK && (s = parse_args(argc, argv, &a)) == CT_OK) s = run(&a);
    int code = s == CT_OK && interrupted ? CT_EXIT_INTERRUPTED : ct_status_exit_code(s);
    if (s != CT_OK) {
        /* Bad input is the same on every rank (each reads the same config
         * and data): rank 0 reports it, and its MPI_Abort ends this rank
         * while it waits here. A rank speaks only when rank 0 did not. */
        if (comm.size > 1 && comm.rank != 0 && code == 2) {
            struct timespec pause = {3, 0};
            while (nanosleep(&pause, &pause) != 0) {
            }
        }
        if (comm.size > 1) fprintf(stderr, "ctrain: error on rank %d: %s\n", comm.rank, ct_error_message());
        else fprintf(stderr, "ctrain: error: %s\n", ct_error_message());
        if (getenv("CT_DEBUG")) fprintf(stderr, "ctrain: (raised at %s)\n", ct_error_source());
        fflush(stderr);
        ct_comm_abort(&comm, code);
    }
    ct_comm_finalize(&comm);
    return code;
}
