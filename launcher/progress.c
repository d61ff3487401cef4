/* The Keras-style progress bar (fit verbose=1) and metric formatting. */
#include "launcher.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ct_format_value(char *buf, size_t n, double v)
{
    if (fabs(v) > 1e-3 || v == 0) snprintf(buf, n, "%.4f", v);
    else snprintf(buf, n, "%.4e", v);
}

void ct_format_logs(char *buf, size_t n, const ct_logs *logs, int include_val)
{
    size_t k = strlen(buf);
    for (int i = 0; i < logs->n && k < n; i++) {
        if (!include_val && strncmp(logs->names[i], "val_", 4) == 0) continue;
        char v[32];
        ct_format_value(v, sizeof v, logs->values[i]);
        k += (size_t)snprintf(buf + k, n - k, " - %s: %s", logs->names[i], v);
    }
}

static void format_time_per_step(char *buf, size_t n, double t)
{
    if (t >= 1) snprintf(buf, n, "%.0fs/step", t);
    else if (t >= 1e-3) snprintf(buf, n, "%.0fms/step", t * 1e3);
    else snprintf(buf, n, "%.0fus/step", t * 1e6);
}

static void format_eta(char *buf, size_t n, double eta)
{
    if (eta > 3600) snprintf(buf, n, "%d:%02d:%02d", (int)eta / 3600, ((int)eta % 3600) / 60, (int)eta % 60);
    else if (eta > 60) snprintf(buf, n, "%d:%02d", (int)eta / 60, (int)eta % 60);
    else snprintf(buf, n, "%ds", (int)eta);
}

static void bar(char *buf, size_t n, int64_t cur, int64_t target)
{
    int digits = 1;
    for (int64_t t = target; t >= 10; t /= 10) digits++;
    int p = (int)(30 * cur / target);
    size_t k = (size_t)snprintf(buf, n, "%*lld/%lld [", digits, (long long)cur, (long long)target);
    for (int i = 0; i < 30 && k + 2 < n; i++) {
        char c = '.';
        if (i < p - 1 || (i == p - 1 && cur >= target)) c = '=';
        else if (i == p - 1) c = '>';
        buf[k++] = c;
    }
    snprintf(buf + k, n - k, "]");
}

void ct_progress_epoch_begin(ct_progress *p, int epoch, int epochs, int64_t steps)
{
    p->steps = steps;
    p->t0 = p->last_draw = now_s();
    p->t_first = 0;
    p->last_width = 0;
    p->tty = p->verbose == 1 && isatty(fileno(stdout));
    if (p->verbose > 0 && epochs > 1) {
        printf("Epoch %d/%d\n", epoch + 1, epochs);
        fflush(stdout);
    }
}

void ct_progress_batch(ct_progress *p, int64_t step, const ct_logs *logs)
{
    double t = now_s();
    if (step == 1) p->t_first = t - p->t0;
    if (!p->tty || step >= p->steps || t - p->last_draw < 0.05) return;
    p->last_draw = t;
    char line[1024], eta[32];
    bar(line, sizeof line, step, p->steps);
    double per = (t - p->t0) / (double)step;
    format_eta(eta, sizeof eta, per * (double)(p->steps - step));
    snprintf(line + strlen(line), sizeof line - strlen(line), " - ETA: %s", eta);
    ct_format_logs(line, sizeof line, logs, 0);
    int w = (int)strlen(line);
    printf("\r%s%*s", line, p->last_width > w ? p->last_width - w : 0, "");
    p->last_width = w;
    fflush(stdout);
}

void ct_progress_epoch_end(ct_progress *p, const ct_logs *logs, double seconds)
{
    if (p->verbose <= 0) return;
    char line[2048], per[32];
    if (p->verbose == 2) {
        /* Keras's verbose=2 line: no bar, "N/N - 3s - loss: ... - 3s/epoch - 2ms/step" */
        snprintf(line, sizeof line, "%lld/%lld - %.0fs", (long long)p->steps, (long long)p->steps, floor(seconds));
        ct_format_logs(line, sizeof line, logs, 1);
        format_time_per_step(per, sizeof per, seconds / (double)(p->steps > 0 ? p->steps : 1));
        printf("%s - %.0fs/epoch - %s\n", line, floor(seconds), per);
        fflush(stdout);
        return;
    }
    bar(line, sizeof line, p->steps, p->steps);
    /* Keras leaves the first step out of the per-step time once there are more. */
    double t = p->steps > 1 ? (seconds - p->t_first) / (double)(p->steps - 1) : seconds;
    format_time_per_step(per, sizeof per, t);
    snprintf(line + strlen(line), sizeof line - strlen(line), " - %.0fs %s", floor(seconds), per);
    ct_format_logs(line, sizeof line, logs, 1);
    int w = (int)strlen(line);
    if (p->tty) printf("\r%s%*s\n", line, p->last_width > w ? p->last_width - w : 0, "");
    else printf("%s\n", line);
    fflush(stdout);
}
