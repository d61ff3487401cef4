/* Internal interfaces of the ctrain executable. */
#ifndef CT_LAUNCHER_H
#define CT_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>

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

/* Keras model.summary() for a built graph. */
void ct_print_summary(const ct_graph *g, const char *model_name, int functional);

#endif
