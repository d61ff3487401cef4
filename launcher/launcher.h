/* Internal interfaces of the ctrain executable. */
#ifndef CT_LAUNCHER_H
#define CT_LAUNCHER_H

#include <stddef.h>
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
    int per_batch;         /* share decisions after every batch */
} dist_hooks;

/* Hooks for every rank: rank 0 runs `rank0`, then all share its decision. */
ct_fit_hooks ct_dist_hooks(dist_hooks *d, ct_comm *c, ct_model *m, const ct_config *cfg, const ct_fit_hooks *rank0);

/* Before the first step (launcher/preflight.c): output paths (created,
 * writable, none an input), checkpoint templates, class weights; warns
 * of monitors never logged and of from_logits on a softmax output. */
ct_status ct_preflight(const ct_config *cfg, const ct_model *m, int has_val, const char *conf, const char *resume_from);
/* Every split before training: sample shapes, finite values, labels in
 * range for sparse class indices; messages name the file and sample. */
struct ct_inputs;
ct_status ct_preflight_data(const ct_config *cfg, const ct_model *m, struct ct_inputs *in);

/* Keras model.summary() for a built graph. */
void ct_print_summary(const ct_graph *g, const char *model_name, int functional);

/* Converter commands (launcher/convert.c): export-json. They run on rank
 * 0 alone and read their own options from argv (argv[1] is the command). */
int ct_convert_is_command(const char *cmd);
ct_status ct_convert_command(int argc, char **argv);

#endif
