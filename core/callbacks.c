/* Keras's callbacks over ct_fit_hooks. Semantics follow tf.keras 2.11
 * (FORMATS.md section 6): improvement tests, waits, cooldowns, messages. */
#include "callbacks.h"

#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint.h"
#include "outfile.h"
#include "tfevents.h"

#define KEEP_MAX 64

typedef struct monitor {
    const char *name;
    int maximize;
} monitor;

struct ct_callbacks {
    const ct_config *cfg;
    ct_model *m;
    const ct_inputs *norm;
    int verbose;
    ct_fit_hooks next;
    ct_callback_state st;
    /* EarlyStopping */
    monitor es;
    int stopped_epoch;
    /* ModelCheckpoint */
    monitor ck;
    int64_t save_every;            /* 0: each epoch */
    char *kept[KEEP_MAX];
    int n_kept;
    /* ReduceLROnPlateau */
    monitor rp;
    /* CSVLogger: the whole file, rewritten through a temporary name each epoch */
    char *csv;
    size_t csv_len, csv_cap;
    int csv_trim;                  /* resumed: drop rows of epochs that run again */
    int csv_cols;
    char csv_keys[CT_MAX_LOGS][48];
    /* TensorBoard */
    ct_tfevents *tb_train, *tb_val;
    int64_t tb_every;              /* 0: per epoch only */
    int64_t steps_per_epoch;
    ct_logs last;                  /* the newest logs, for ct_callbacks_save_now */
};

/* --- helpers ------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* EarlyStopping's auto mode: maximise accuracies and AUC. The others
 * (ModelCheckpoint, ReduceLROnPlateau) look for "acc" anywhere. */
static ct_status resolve_mode(const char *section, const char *mode, const char *name, int strict_suffix, monitor *out)
{
    out->name = name;
    if (strcmp(mode, "min") == 0) out->maximize = 0;
    else if (strcmp(mode, "max") == 0) out->maximize = 1;
    else if (strcmp(mode, "auto") == 0)
        out->maximize = strict_suffix ? (ends_with(name, "acc") || ends_with(name, "accuracy") || ends_with(name, "auc"))
                                      : strstr(name, "acc") != NULL;
    else return CT_FAIL(CT_ERR_CONFIG, "[%s] mode = %s: use auto, min or max", section, mode);
    return CT_OK;
}

static double worst(const monitor *mo) { return mo->maximize ? -INFINITY : INFINITY; }

static int improved(const monitor *mo, double current, double best, double min_delta)
{
    return mo->maximize ? current - fabs(min_delta) > best : current + fabs(min_delta) < best;
}

static ct_status parse_freq(const char *section, const char *v, int64_t *every)
{
    if (strcmp(v, "epoch") == 0) {
        *every = 0;
        return CT_OK;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || end == v || n < 1)
        return CT_FAIL(CT_ERR_CONFIG, "[%s] '%s': expected 'epoch' or a number of batches >= 1", section, v);
    *every = n;
    return CT_OK;
}

/* Python's repr of a float: the shortest text that reads back the same. */
static void shortest(char *buf, size_t n, double v)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strchr(buf, '.') && !strchr(buf, 'e') && !strchr(buf, 'n') && !strchr(buf, 'i'))
        snprintf(buf + strlen(buf), n - strlen(buf), ".0");
}

/* --- file name templates --------------------------------------------------- */

static ct_status format_field(const char *name, const char *spec, int epoch, int64_t batch, const ct_logs *logs,
                              char *out, size_t n)
{
    int is_int = 1;
    double v;
    if (strcmp(name, "epoch") == 0) v = epoch + 1;
    else if (strcmp(name, "batch") == 0) v = (double)batch;
    else if (ct_logs_get(logs, name, &v)) is_int = 0;
    else return CT_FAIL(CT_ERR_CONFIG, "[model_checkpoint] filepath: no value named '%s' (known: epoch, batch, loss, metrics, val_ ones)", name);
    char fmt[32];
    size_t len = strlen(spec);
    if (len == 0) {
        if (is_int) snprintf(out, n, "%lld", (long long)v);
        else shortest(out, n, v);
        return CT_OK;
    }
    char conv = spec[len - 1];
    if (len > 12 || !strchr("dfeg", conv) || strspn(spec, "0123456789.") != len - 1)
        return CT_FAIL(CT_ERR_CONFIG, "[model_checkpoint] filepath: format '{%s:%s}' is not supported (use d, f, e or g)", name, spec);
    if (conv == 'd') {
        snprintf(fmt, sizeof fmt, "%%%.*slld", (int)(len - 1), spec);
        snprintf(out, n, fmt, (long long)v);
    } else {
        snprintf(fmt, sizeof fmt, "%%%s", spec);
        snprintf(out, n, fmt, v);
    }
    return CT_OK;
}

ct_status ct_format_filepath(const char *tmpl, int epoch, int64_t batch, const ct_logs *logs, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = tmpl; *p; p++) {
        if (*p == '{' && p[1] != '{') {
            const char *close = strchr(p, '}');
            if (!close || close - p > 96)
                return CT_FAIL(CT_ERR_CONFIG, "[model_checkpoint] filepath '%s': unclosed '{'", tmpl);
            char field[100] = {0}, *colon;
            memcpy(field, p + 1, (size_t)(close - p - 1));
            colon = strchr(field, ':');
            if (colon) *colon = 0;
            char piece[128];
            CT_TRY(format_field(field, colon ? colon + 1 : "", epoch, batch, logs, piece, sizeof piece));
            k += (size_t)snprintf(out + k, k < n ? n - k : 0, "%s", piece);
            p = close;
        } else {
            if (*p == '{' || (*p == '}' && p[1] == '}')) p++; /* {{ and }} */
            if (k + 1 < n) out[k] = *p;
            k++;
        }
        if (k >= n) return CT_FAIL(CT_ERR_CONFIG, "[model_checkpoint] filepath '%s' is too long", tmpl);
    }
    out[k] = 0;
    return CT_OK;
}

/* The glob(3) pattern of a file template: each {field} becomes '*'. */
static void glob_pattern(const char *t, char *pattern, size_t cap)
{
    size_t k = 0;
    for (const char *p = t; *p && k + 2 < cap; p++) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (!close) break;
            pattern[k++] = '*';
            p = close;
        } else {
            pattern[k++] = *p;
        }
    }
    pattern[k] = 0;
}

ct_status ct_find_latest_checkpoint(const ct_config *cfg, char *out, size_t n)
{
    out[0] = 0;
    if (!cfg->model_checkpoint || !cfg->model_checkpoint->filepath) return CT_OK;
    char pattern[4096];
    glob_pattern(cfg->model_checkpoint->filepath, pattern, sizeof pattern);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) return CT_OK;
    int64_t best_step = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        int64_t e, b, s;
        ct_status st = ct_checkpoint_position(g.gl_pathv[i], &e, &b, &s);
        if (st != CT_OK) {
            fprintf(stderr, "ctrain: warning: skipping %s: %s\n", g.gl_pathv[i], ct_error_message());
            continue;
        }
        if (s > best_step) {
            best_step = s;
            snprintf(out, n, "%s", g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return CT_OK;
}

/* --- creation ---------------------------------------------------------------- */

/* Appends to the CSV text (printf-style). */
static ct_status csv_add(ct_callbacks *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ct_status csv_add(ct_callbacks *c, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->csv + c->csv_len, c->csv_cap - c->csv_len, fmt, ap);
        va_end(ap);
        if (n < 0) return CT_FAIL(CT_ERR_RUNTIME, "csv_logger: cannot format a row");
        if ((size_t)n < c->csv_cap - c->csv_len) {
            c->csv_len += (size_t)n;
            return CT_OK;
        }
        char *grown = realloc(c->csv, 2 * c->csv_cap + (size_t)n);
        if (!grown) return CT_FAIL(CT_ERR_NOMEM, "csv_logger: %zu bytes", 2 * c->csv_cap + (size_t)n);
        c->csv = grown;
        c->csv_cap = 2 * c->csv_cap + (size_t)n;
    }
}

static ct_status open_csv(ct_callbacks *c, const Ctrain__CSVLoggerConfig *cl, int resuming)
{
    if (!cl->filename) return CT_FAIL(CT_ERR_CONFIG, "[csv_logger] needs filename = ...");
    CT_TRY(ct_mkdirs_for(cl->filename));
    c->csv_cap = 4096;
    c->csv_len = 0;
    if (!(c->csv = malloc(c->csv_cap))) return CT_FAIL(CT_ERR_NOMEM, "csv_logger");
    c->csv[0] = 0;
    /* A resumed run continues the file it wrote, as Keras users pass
     * append=True: its old rows are kept and the file rewritten whole. */
    if (!(cl->append || resuming)) return CT_OK;
    FILE *f = fopen(cl->filename, "rb");
    if (!f) {
        if (errno == ENOENT) return CT_OK;
        return CT_FAIL(CT_ERR_IO, "%s: cannot open to append: %s", cl->filename, strerror(errno));
    }
    char buf[8192];
    size_t n;
    ct_status s = CT_OK;
    while (s == CT_OK && (n = fread(buf, 1, sizeof buf, f)) > 0) s = csv_add(c, "%.*s", (int)n, buf);
    if (s == CT_OK && ferror(f)) s = CT_FAIL(CT_ERR_IO, "%s: cannot read: %s", cl->filename, strerror(errno));
    fclose(f);
    return s;
}

static ct_status open_tensorboard(ct_callbacks *c, const Ctrain__TensorBoardConfig *tb)
{
    CT_TRY(parse_freq("tensorboard", tb->update_freq, &c->tb_every));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/train", tb->log_dir);
    CT_TRY(ct_tfevents_open(dir, &c->tb_train));
    snprintf(dir, sizeof dir, "%s/validation", tb->log_dir);
    return ct_tfevents_open(dir, &c->tb_val);
}

ct_status ct_callbacks_create(const ct_config *cfg, ct_model *m, const ct_inputs *norm, int verbose,
                              ct_callbacks **out)
{
    ct_callbacks *c = calloc(1, sizeof *c);
    if (!c) return CT_FAIL(CT_ERR_NOMEM, "callbacks");
    c->cfg = cfg;
    c->m = m;
    c->norm = norm;
    c->verbose = verbose;
    c->st.lr = c->st.base_lr = m->lr;
    ct_status s = CT_OK;
    if (cfg->early_stopping) {
        const Ctrain__EarlyStoppingConfig *e = cfg->early_stopping;
        s = resolve_mode("early_stopping", e->mode, e->monitor, 1, &c->es);
        c->st.es_best = worst(&c->es);
    }
    if (s == CT_OK && cfg->model_checkpoint) {
        const Ctrain__ModelCheckpointConfig *k = cfg->model_checkpoint;
        if (!k->filepath) s = CT_FAIL(CT_ERR_CONFIG, "[model_checkpoint] needs filepath = ...");
        if (s == CT_OK) s = resolve_mode("model_checkpoint", k->mode, k->monitor, 0, &c->ck);
        if (s == CT_OK) s = parse_freq("model_checkpoint", k->save_freq, &c->save_every);
        c->st.ckpt_best = k->has_initial_value_threshold ? k->initial_value_threshold : worst(&c->ck);
    }
    if (s == CT_OK && cfg->reduce_lr_on_plateau) {
        const Ctrain__ReduceLROnPlateauConfig *r = cfg->reduce_lr_on_plateau;
        if (!(r->factor < 1.0 && r->factor >= 0))
            s = CT_FAIL(CT_ERR_CONFIG, "[reduce_lr_on_plateau] factor = %g: must be in [0, 1)", r->factor);
        if (s == CT_OK && cfg->lr_schedule)
            s = CT_FAIL(CT_ERR_CONFIG, "[reduce_lr_on_plateau] and [lr_schedule] both set the learning rate; keep one");
        if (s == CT_OK) s = resolve_mode("reduce_lr_on_plateau", r->mode, r->monitor, 0, &c->rp);
        c->st.plateau_best = worst(&c->rp);
    }
    if (s == CT_OK && cfg->lr_schedule) {
        static const char *const known[] = {"constant", "step", "exponential", "cosine", "cosine_restarts"};
        const char *v = cfg->lr_schedule->schedule ? cfg->lr_schedule->schedule : "constant";
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++) ok |= strcmp(v, known[i]) == 0;
        if (!ok)
            s = CT_FAIL(CT_ERR_CONFIG, "[lr_schedule] schedule = %s: known are constant, step, exponential, cosine, cosine_restarts", v);
    }
    if (s != CT_OK) {
        ct_callbacks_destroy(c);
        return s;
    }
    *out = c;
    return CT_OK;
}

void ct_callbacks_destroy(ct_callbacks *c)
{
    if (!c) return;
    free(c->csv);
    ct_tfevents_close(c->tb_train);
    ct_tfevents_close(c->tb_val);
    free(c->st.best_weights);
    for (int i = 0; i < c->n_kept; i++) free(c->kept[i]);
    free(c);
}

ct_callback_state *ct_callbacks_state(ct_callbacks *c) { return &c->st; }

/* --- learning rate ------------------------------------------------------------ */

static double scheduled_lr(const Ctrain__LRScheduleConfig *s, double lr, int epoch)
{
    const char *k = s->schedule ? s->schedule : "constant";
    double e = epoch;
    if (strcmp(k, "step") == 0) {
        lr *= pow(s->gamma, floor(e / (s->step_size > 0 ? s->step_size : 1)));
    } else if (strcmp(k, "exponential") == 0) {
        double p = e / (s->decay_epochs > 0 ? s->decay_epochs : 1);
        lr *= pow(s->decay_rate, s->staircase ? floor(p) : p);
    } else if (strcmp(k, "cosine") == 0) {
        double d = s->first_decay_epochs > 0 ? s->first_decay_epochs : 1;
        double frac = fmin(e, d) / d;
        lr *= (1 - s->alpha) * 0.5 * (1 + cos(M_PI * frac)) + s->alpha;
    } else if (strcmp(k, "cosine_restarts") == 0) {
        /* SGDR (tf CosineDecayRestarts): periods grow by t_mul, peaks by m_mul. */
        double period = s->first_decay_epochs > 0 ? s->first_decay_epochs : 1, start = 0, amp = 1;
        while (e >= start + period) {
            start += period;
            period *= s->t_mul;
            amp *= s->m_mul;
        }
        double frac = (e - start) / period;
        lr *= amp * ((1 - s->alpha) * 0.5 * (1 + cos(M_PI * frac)) + s->alpha);
    }
    return lr;
}

/* Linear warm-up over the first warmup_epochs, per step (Goyal et al.). */
static double warmup_factor(const Ctrain__LRScheduleConfig *s, uint64_t step, int64_t steps_per_epoch)
{
    if (!s || s->warmup_epochs <= 0) return 1.0;
    double total = (double)s->warmup_epochs * (double)steps_per_epoch;
    if ((double)step >= total) return 1.0;
    return s->warmup_start + (1 - s->warmup_start) * ((double)step + 1) / total;
}

static void apply_lr(ct_callbacks *c, int epoch)
{
    double lr = c->st.lr;
    if (c->cfg->lr_schedule) {
        lr = scheduled_lr(c->cfg->lr_schedule, c->st.base_lr, epoch);
        c->st.lr = lr;
        lr *= warmup_factor(c->cfg->lr_schedule, c->m->step, c->steps_per_epoch);
    }
    c->m->lr = lr;
}

/* --- resuming ------------------------------------------------------------------ */

/* A resumed run continues the CSV log from `epoch`: rows of that epoch and
 * later (written after the checkpoint it resumed from) would run again and
 * appear twice, so they are dropped from the log before the first epoch
 * begins (the next row rewrites the file). */
static ct_status trim_csv(ct_callbacks *c, int epoch)
{
    c->csv_trim = 0;
    size_t keep = 0;
    for (size_t at = 0, line = 0; at < c->csv_len; line++) {
        const char *row = c->csv + at;
        size_t len = strcspn(row, "\n");
        if (at + len < c->csv_len) len++; /* with its newline */
        char *end;
        long e = strtol(row, &end, 10);
        if (line == 0 || end == row || e < epoch) {
            memmove(c->csv + keep, row, len);
            keep += len;
        }
        at += len;
    }
    c->csv_len = keep;
    c->csv[keep] = 0;
    return CT_OK;
}

static int by_step(const void *a, const void *b)
{
    const struct { int64_t step; char *path; } *x = a, *y = b;
    return (x->step > y->step) - (x->step < y->step);
}

/* model_checkpoint.keep counts the files an earlier run of the job left
 * too: they are adopted, oldest (by training step) first. */
static ct_status adopt_checkpoints(ct_callbacks *c)
{
    const Ctrain__ModelCheckpointConfig *k = c->cfg->model_checkpoint;
    char pattern[4096];
    glob_pattern(k->filepath, pattern, sizeof pattern);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) return CT_OK;
    struct { int64_t step; char *path; } found[KEEP_MAX];
    int n = 0;
    for (size_t i = 0; i < g.gl_pathc && n < KEEP_MAX; i++) {
        int64_t e, b, st;
        if (ct_checkpoint_position(g.gl_pathv[i], &e, &b, &st) != CT_OK) continue;
        found[n].step = st;
        found[n++].path = g.gl_pathv[i];
    }
    qsort(found, (size_t)n, sizeof *found, by_step);
    ct_status s = CT_OK;
    for (int i = 0; i < n && s == CT_OK; i++)
        if (!(c->kept[c->n_kept++] = strdup(found[i].path))) {
            c->n_kept--;
            s = CT_FAIL(CT_ERR_NOMEM, "checkpoint names");
        }
    globfree(&g);
    return s;
}

/* --- hooks -------------------------------------------------------------------- */

static ct_status on_epoch_begin(void *ctx, int epoch, int epochs, int64_t steps)
{
    ct_callbacks *c = ctx;
    c->steps_per_epoch = steps;
    if (c->csv_trim) CT_TRY(trim_csv(c, epoch));
    apply_lr(c, epoch);
    if (c->next.epoch_begin) CT_TRY(c->next.epoch_begin(c->next.ctx, epoch, epochs, steps));
    return CT_OK;
}

static ct_status save_checkpoint(ct_callbacks *c, int epoch, int64_t batch, const ct_logs *logs, int force,
                                 char *path, size_t n)
{
    const Ctrain__ModelCheckpointConfig *k = c->cfg->model_checkpoint;
    CT_TRY(ct_format_filepath(k->filepath, epoch, batch, logs, path, n));
    if (k->save_best_only && !force) {
        double v;
        if (!ct_logs_get(logs, k->monitor, &v)) {
            fprintf(stderr, "ctrain: warning: can save best model only with %s available, skipping\n", k->monitor);
            return CT_OK;
        }
        if (!(c->ck.maximize ? v > c->st.ckpt_best : v < c->st.ckpt_best)) {
            if (k->verbose > 0) printf("\nEpoch %d: %s did not improve from %.5f\n", epoch + 1, k->monitor, c->st.ckpt_best);
            return CT_OK;
        }
        if (k->verbose > 0)
            printf("\nEpoch %d: %s improved from %.5f to %.5f, saving model to %s\n", epoch + 1, k->monitor,
                   c->st.ckpt_best, v, path);
        c->st.ckpt_best = v;
    } else if (k->verbose > 0) {
        printf("\nEpoch %d: saving model to %s\n", epoch + 1, path);
    }
    CT_TRY(ct_mkdirs_for(path));
    CT_TRY(ct_checkpoint_save(path, c->cfg, c->m, c->norm, &c->st, k->save_weights_only));
    if (k->keep > 0) {
        for (int i = 0; i < c->n_kept; i++)
            if (strcmp(c->kept[i], path) == 0) { /* overwritten in place: not a new file */
                free(c->kept[i]);
                memmove(&c->kept[i], &c->kept[i + 1], sizeof(char *) * (size_t)(c->n_kept - i - 1));
                c->n_kept--;
                break;
            }
        while (c->n_kept > 0 && (c->n_kept == KEEP_MAX || c->n_kept >= k->keep)) {
            remove(c->kept[0]);
            free(c->kept[0]);
            memmove(&c->kept[0], &c->kept[1], sizeof(char *) * (size_t)(c->n_kept - 1));
            c->n_kept--;
        }
        c->kept[c->n_kept++] = strdup(path);
    }
    return CT_OK;
}

static ct_status tb_write(ct_tfevents *w, const char *prefix, const char *name, int64_t step, double v)
{
    char tag[96];
    snprintf(tag, sizeof tag, "%s%s", prefix, name);
    return ct_tfevents_scalar(w, tag, step, v);
}

static ct_status on_batch_end(void *ctx, int epoch, int64_t step, int64_t steps, const ct_logs *logs, int *stop)
{
    ct_callbacks *c = ctx;
    c->last = *logs;
    if (c->next.batch_end) CT_TRY(c->next.batch_end(c->next.ctx, epoch, step, steps, logs, stop));
    double loss;
    if (c->cfg->terminate_on_nan && c->cfg->terminate_on_nan->enabled && ct_logs_get(logs, "loss", &loss) &&
        !isfinite(loss)) {
        printf("Batch %lld: Invalid loss, terminating training\n", (long long)(step - 1));
        *stop = 1;
    }
    if (c->tb_train && c->tb_every > 0 && (int64_t)c->m->step % c->tb_every == 0)
        for (int i = 0; i < logs->n; i++)
            CT_TRY(tb_write(c->tb_train, "batch_", logs->names[i], (int64_t)c->m->step, logs->values[i]));
    /* Every save_every optimizer steps of the whole run, so that a resumed
     * run saves where the uninterrupted one would have. */
    if (c->cfg->model_checkpoint && c->save_every > 0 && (int64_t)(c->m->step % (uint64_t)c->save_every) == 0) {
        char path[4096];
        CT_TRY(save_checkpoint(c, epoch, step, logs, 0, path, sizeof path));
    }
    /* Warm-up moves the learning rate every step. */
    if (c->cfg->lr_schedule && c->cfg->lr_schedule->warmup_epochs > 0)
        c->m->lr = c->st.lr * warmup_factor(c->cfg->lr_schedule, c->m->step, steps);
    return CT_OK;
}

static void early_stopping(ct_callbacks *c, int epoch, const ct_logs *logs, int *stop)
{
    const Ctrain__EarlyStoppingConfig *e = c->cfg->early_stopping;
    double v;
    if (!ct_logs_get(logs, e->monitor, &v) || epoch < e->start_from_epoch) return;
    int64_t n = c->m->graph->n_values;
    if (e->restore_best_weights && !c->st.best_weights) {
        c->st.best_weights = malloc(sizeof(float) * (size_t)n);
        if (c->st.best_weights) memcpy(c->st.best_weights, c->m->graph->values, sizeof(float) * (size_t)n);
    }
    c->st.es_wait++;
    if (improved(&c->es, v, c->st.es_best, e->min_delta)) {
        c->st.es_best = v;
        c->st.es_best_epoch = epoch;
        if (c->st.best_weights) memcpy(c->st.best_weights, c->m->graph->values, sizeof(float) * (size_t)n);
        if (!e->has_baseline || improved(&c->es, v, e->baseline, e->min_delta)) c->st.es_wait = 0;
    }
    if (c->st.es_wait >= e->patience && epoch > 0) {
        c->stopped_epoch = epoch;
        *stop = 1;
        if (c->st.best_weights) {
            if (e->verbose > 0 || c->verbose > 0)
                printf("Restoring model weights from the end of the best epoch: %d.\n", c->st.es_best_epoch + 1);
            memcpy(c->m->graph->values, c->st.best_weights, sizeof(float) * (size_t)n);
        }
    }
}

static void reduce_on_plateau(ct_callbacks *c, int epoch, const ct_logs *logs)
{
    const Ctrain__ReduceLROnPlateauConfig *r = c->cfg->reduce_lr_on_plateau;
    double v;
    if (!ct_logs_get(logs, r->monitor, &v)) {
        fprintf(stderr, "ctrain: warning: ReduceLROnPlateau needs %s, which is not available\n", r->monitor);
        return;
    }
    if (c->st.plateau_cooldown > 0) {
        c->st.plateau_cooldown--;
        c->st.plateau_wait = 0;
    }
    if (improved(&c->rp, v, c->st.plateau_best, r->min_delta)) {
        c->st.plateau_best = v;
        c->st.plateau_wait = 0;
    } else if (c->st.plateau_cooldown <= 0 && ++c->st.plateau_wait >= r->patience && c->st.lr > r->min_lr) {
        double lr = fmax(c->st.lr * r->factor, r->min_lr);
        if (r->verbose > 0) printf("\nEpoch %d: ReduceLROnPlateau reducing learning rate to %g.\n", epoch + 1, lr);
        c->st.lr = lr;
        c->m->lr = lr;
        c->st.plateau_cooldown = r->cooldown;
        c->st.plateau_wait = 0;
    }
}

static int key_cmp(const void *a, const void *b) { return strcmp(a, b); }

static ct_status write_csv(ct_callbacks *c, int epoch, const ct_logs *logs)
{
    const char *sep = c->cfg->csv_logger->separator;
    if (c->csv_cols == 0) { /* columns: the sorted keys of the first epoch's logs */
        for (int i = 0; i < logs->n; i++) snprintf(c->csv_keys[c->csv_cols++], 48, "%s", logs->names[i]);
        qsort(c->csv_keys, (size_t)c->csv_cols, 48, key_cmp);
        if (c->csv_len == 0) {
            CT_TRY(csv_add(c, "epoch"));
            for (int i = 0; i < c->csv_cols; i++) CT_TRY(csv_add(c, "%s%s", sep, c->csv_keys[i]));
            CT_TRY(csv_add(c, "\r\n"));
        }
    }
    CT_TRY(csv_add(c, "%d", epoch));
    for (int i = 0; i < c->csv_cols; i++) {
        double v;
        char buf[40] = "NA";
        if (ct_logs_get(logs, c->csv_keys[i], &v)) shortest(buf, sizeof buf, v);
        CT_TRY(csv_add(c, "%s%s", sep, buf));
    }
    CT_TRY(csv_add(c, "\r\n"));
    return ct_write_file_atomic(c->cfg->csv_logger->filename, c->csv, c->csv_len);
}

static ct_status write_tensorboard(ct_callbacks *c, int epoch, const ct_logs *logs)
{
    for (int i = 0; i < logs->n; i++) {
        const char *n = logs->names[i];
        if (strcmp(n, "lr") == 0) continue;
        if (strncmp(n, "val_", 4) == 0) CT_TRY(tb_write(c->tb_val, "epoch_", n + 4, epoch, logs->values[i]));
        else CT_TRY(tb_write(c->tb_train, "epoch_", n, epoch, logs->values[i]));
    }
    CT_TRY(tb_write(c->tb_train, "epoch_", "learning_rate", epoch, c->m->lr));
    const Ctrain__TensorBoardConfig *tb = c->cfg->tensorboard;
    if (tb->histogram_freq > 0 && (epoch + 1) % tb->histogram_freq == 0) {
        const ct_graph *g = c->m->graph;
        for (int i = 0; i < g->n_params; i++) {
            const ct_layer_param *p = ct_graph_param(g, i);
            char tag[160];
            snprintf(tag, sizeof tag, "%s/%s_0/histogram", g->nodes[g->params[i].node].layer->name, p->name);
            CT_TRY(ct_tfevents_histogram(c->tb_train, tag, epoch, p->value, ct_shape_numel(&p->shape), 30));
        }
    }
    CT_TRY(ct_tfevents_flush(c->tb_train));
    return ct_tfevents_flush(c->tb_val);
}

static ct_status on_epoch_end(void *ctx, int epoch, ct_logs *logs, double seconds, int *stop)
{
    ct_callbacks *c = ctx;
    c->last = *logs;
    if (c->next.epoch_end) CT_TRY(c->next.epoch_end(c->next.ctx, epoch, logs, seconds, stop));
    if (c->cfg->reduce_lr_on_plateau || c->cfg->lr_schedule) ct_logs_set(logs, "lr", c->m->lr);
    if (c->cfg->reduce_lr_on_plateau) reduce_on_plateau(c, epoch, logs);
    if (c->cfg->early_stopping) early_stopping(c, epoch, logs, stop);
    char path[4096];
    if (c->cfg->model_checkpoint && c->save_every == 0) CT_TRY(save_checkpoint(c, epoch, 0, logs, 0, path, sizeof path));
    if (c->csv) CT_TRY(write_csv(c, epoch, logs));
    if (c->tb_train) CT_TRY(write_tensorboard(c, epoch, logs));
    return CT_OK;
}

static ct_status on_train_end(void *ctx, int epoch)
{
    ct_callbacks *c = ctx;
    if (c->stopped_epoch > 0 && c->verbose > 0) printf("Epoch %d: early stopping\n", c->stopped_epoch + 1);
    if (c->next.train_end) CT_TRY(c->next.train_end(c->next.ctx, epoch));
    return CT_OK;
}

ct_fit_hooks ct_callbacks_hooks(ct_callbacks *c, const ct_fit_hooks *next)
{
    if (next) c->next = *next;
    ct_fit_hooks h = {.ctx = c, .epoch_begin = on_epoch_begin, .batch_end = on_batch_end,
                      .epoch_end = on_epoch_end, .train_end = on_train_end};
    return h;
}

/* Files are opened when training starts, so a config error never leaves
 * an empty log behind. */
ct_status ct_callbacks_open_files(ct_callbacks *c, int resuming)
{
    if (c->cfg->csv_logger) CT_TRY(open_csv(c, c->cfg->csv_logger, resuming));
    c->csv_trim = resuming && c->csv;
    if (resuming && c->cfg->model_checkpoint && c->cfg->model_checkpoint->keep > 0) CT_TRY(adopt_checkpoints(c));
    if (c->cfg->tensorboard) CT_TRY(open_tensorboard(c, c->cfg->tensorboard));
    return CT_OK;
}

ct_status ct_callbacks_save_now(ct_callbacks *c, char *path, size_t n)
{
    path[0] = 0;
    if (!c->cfg->model_checkpoint) {
        fprintf(stderr, "ctrain: warning: no [model_checkpoint] filepath: nothing saved, the run cannot be resumed\n");
        return CT_OK;
    }
    const ct_train_state *t = &c->m->state;
    int epoch = t->batch > 0 || t->epoch == 0 ? t->epoch : t->epoch - 1;
    /* A template field with no value yet (val_loss inside an epoch) is
     * written as nan: the name still matches what --resume looks for. */
    ct_logs logs = c->last;
    for (const char *p = strchr(c->cfg->model_checkpoint->filepath, '{'); p; p = strchr(p + 1, '{')) {
        char field[48];
        size_t len = strcspn(p + 1, ":}");
        if (p[1] == '{' || len == 0 || len >= sizeof field) continue;
        memcpy(field, p + 1, len);
        field[len] = 0;
        double v;
        if (strcmp(field, "epoch") && strcmp(field, "batch") && !ct_logs_get(&logs, field, &v)) ct_logs_set(&logs, field, NAN);
    }
    return save_checkpoint(c, epoch, t->batch, &logs, 1, path, n);
}
