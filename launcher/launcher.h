/* Internal interfaces of the ctrain executable. */
#ifndef CT_LAUNCHER_H
#define CT_LAUNCHER_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "comm.h"
#include "config.h"
#include "graph.h"
#include "model.h"

typedef struct ct_progress {
    int verbose;       /* 0 silent, 1 bar, 2 one line per epoch */
    int tty;
    int64_t steps;
    double t0, t_first, last_draw;
    int last_width;
} ct_progress;

void ct_progress_epoch_begin(ct_progress *p, int epoch, int epochs, int64_t steps);
void ct_progress_batch(ct_progress *p, int64_t step, const ct_logs *logs);
void ct_progress_epoch_end(ct_progress *p, const ct_logs *logs, double seconds);

void ct_format_value(char *buf, size_t n, double v);
/* Appends " - name: value" for each entry (val_ ones only if include_val). */
void ct_format_logs(char *buf, size_t n, const ct_logs *logs, int include_val);

/* Distributed runs (launcher/distributed.c). */
ct_status ct_dist_load_config(ct_comm *c, const char *path, const char *const *overrides, int n, ct_config **out);
/* Wire the model to the communicator, apply lr scaling, check every rank
 * built the same parameters and broadcast rank 0's initial weights. */
ct_status ct_dist_setup_model(ct_comm *c, const ct_config *cfg, ct_model *m);
/* Every rank must hold bitwise the weights of rank 0 after training; a
 * difference is a bug worth stopping for (CT_ERR_RUNTIME names the rank). */
ct_status ct_dist_check_weights(ct_comm *c, const ct_model *m);
/* Ranks on this node, from the MPI launcher's environment (1 if unknown). */
int ct_dist_local_ranks(void);

typedef struct dist_hooks {
    ct_comm *comm;
    ct_model *m;
    ct_fit_hooks inner;    /* rank 0's callbacks and progress bar */
    int per_batch;         /* callbacks decide after every batch: share rank 0's record */
    int interrupted;       /* a rank got SIGUSR1, SIGTERM or SIGINT: all stopped */
} dist_hooks;

/* Hooks for every rank (a world of one too): rank 0 runs `rank0`, then
 * all ranks share its decision at every epoch's start and end (and after
 * every batch when a callback decides per batch: terminate_on_nan, a
 * warm-up); any rank's signal reaches all with the step's totals; when
 * training stops early every rank takes rank 0's weights. */
ct_fit_hooks ct_dist_hooks(dist_hooks *d, ct_comm *c, ct_model *m, const ct_config *cfg, const ct_fit_hooks *rank0);

/* SIGUSR1, SIGTERM and SIGINT only set a flag that the hooks above share
 * (repeats are harmless): training stops after the step in progress. */
ct_status ct_dist_catch_signals(void);
/* The signal number received, 0 when none. */
int ct_dist_signal_received(void);
/* Seconds since the first signal arrived. */
double ct_dist_since_signal(void);

/* Exit code of a run stopped by a signal after saving its checkpoint. */
#define CT_EXIT_INTERRUPTED 3

/* End every rank of the job (MPI_Abort) with `code`; returns only in a
 * world of one. Here, not in dist/, because the library never aborts. */
void ct_comm_abort(const ct_comm *c, int code);
/* _exit(code): the heartbeat's dead-peer hook in the ctrain program. */
void ct_launcher_exit_now(int code);

/* Before the first step (launcher/preflight.c): output paths (created,
 * writable, none an input), checkpoint templates, class weights; warns
 * of monitors never logged and of from_logits on a softmax output. */
ct_status ct_preflight(const ct_config *cfg, const ct_model *m, int has_val, const char *conf, const char *resume_from);
/* Every split before training: sample shapes, finite values, labels in
 * range for sparse class indices; messages name the file and sample. */
struct ct_inputs;
ct_status ct_preflight_data(const ct_config *cfg, const ct_model *m, struct ct_inputs *in);

/* Text models (launcher/text_cli.c): `generate` prints the prompt and
 * `length` sampled tokens of a language model; `export-embeddings` writes
 * dir/vectors.tsv and dir/metadata.tsv of an Embedding layer. */
ct_status ct_text_generate(const char *model_path, const char *prompt, int length, double temperature, uint64_t seed,
                           FILE *out);
ct_status ct_text_export_embeddings(const char *model_path, const char *layer, const char *dir);

/* Boosted trees (launcher/trees_cli.c): the command line for configs
 * with [model] kind = boosted_trees and their model files. */
typedef struct ct_trees_cli {
    const char *command, *target;
    const char *const *overrides;
    int n_overrides;
    int verbose;               /* -1: the config's */
    const char *input, *output;
    int resume;
    const char *resume_from;
} ct_trees_cli;
/* 1 when the command is for boosted trees (dump-trees, a trees model file, a trees config). */
int ct_trees_cli_wants(const char *command, const char *target, const char *const *overrides, int n);
ct_status ct_trees_cli_run(ct_comm *comm, const ct_trees_cli *a);

/* Keras model.summary() for a built graph. */
void ct_print_summary(const ct_graph *g, const char *model_name, int functional);

/* Converter commands (launcher/convert.c): export-json. They run on rank
 * 0 alone and read their own options from argv (argv[1] is the command). */
int ct_convert_is_command(const char *cmd);
ct_status ct_convert_command(int argc, char **argv);

#endif
