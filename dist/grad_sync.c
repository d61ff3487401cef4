/* The communication thread behind ct_grad_sync. */
#include "grad_sync.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ct_grad_sync {
    ct_comm *comm;
    float *slab;
    int64_t *bounds;
    int n_buckets;
    ct_reduce_algo algo;
    int fp16;
    float scale;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t ready_from;   /* [ready_from, n) final */
    int next;             /* next bucket to reduce, counting down; -1 when all done */
    int active;           /* a step is in flight */
    int quit;
    ct_status status;
    char message[512];
};

static void *run(void *arg)
{
    ct_grad_sync *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->quit && !(s->active && s->next >= 0 && s->bounds[s->next] >= s->ready_from))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->quit) break;
        int k = s->next;
        pthread_mutex_unlock(&s->mu);
        float *buf = s->slab + s->bounds[k];
        int64_t n = s->bounds[k + 1] - s->bounds[k];
        ct_status st = s->fp16 ? ct_comm_allreduce_fp16(s->comm, buf, n, s->scale)
                               : ct_comm_allreduce(s->comm, buf, n, s->algo, s->scale);
        pthread_mutex_lock(&s->mu);
        if (st != CT_OK && s->status == CT_OK) {
            s->status = st;
            snprintf(s->message, sizeof s->message, "%s", ct_error_message());
        }
        s->next = st == CT_OK ? k - 1 : -1; /* after an error the communicator is unusable */
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

ct_status ct_grad_sync_create(ct_comm *c, float *slab, const int64_t *bounds, int n_buckets, ct_reduce_algo algo,
                              int fp16, float scale, ct_grad_sync **out)
{
    ct_grad_sync *s = calloc(1, sizeof *s);
    if (!s) return CT_FAIL(CT_ERR_NOMEM, "gradient buckets");
    s->bounds = malloc(sizeof(int64_t) * (size_t)(n_buckets + 1));
    if (!s->bounds) {
        free(s);
        return CT_FAIL(CT_ERR_NOMEM, "gradient buckets");
    }
    memcpy(s->bounds, bounds, sizeof(int64_t) * (size_t)(n_buckets + 1));
    s->comm = c;
    s->slab = slab;
    s->n_buckets = n_buckets;
    s->algo = algo;
    s->fp16 = fp16;
    s->scale = scale;
    s->next = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        free(s->bounds);
        free(s);
        return CT_FAIL(CT_ERR_RUNTIME, "cannot start the communication thread");
    }
    *out = s;
    return CT_OK;
}

void ct_grad_sync_destroy(ct_grad_sync *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->bounds);
    free(s);
}

void ct_grad_sync_start(ct_grad_sync *s)
{
    pthread_mutex_lock(&s->mu);
    s->ready_from = s->bounds[s->n_buckets] + 1; /* nothing final yet */
    s->next = s->n_buckets - 1;
    s->active = 1;
    pthread_mutex_unlock(&s->mu);
}

void ct_grad_sync_ready(ct_grad_sync *s, int64_t offset)
{
    pthread_mutex_lock(&s->mu);
    if (offset < s->ready_from) {
        s->ready_from = offset;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

ct_status ct_grad_sync_wait(ct_grad_sync *s)
{
    ct_grad_sync_ready(s, 0);
    pthread_mutex_lock(&s->mu);
    while (s->next >= 0) pthread_cond_wait(&s->cv, &s->mu);
    s->active = 0;
    ct_status st = s->status;
    char msg[sizeof s->message];
    memcpy(msg, s->message, sizeof msg);
    pthread_mutex_unlock(&s->mu);
    if (st != CT_OK) return CT_FAIL(st, "%s", msg);
    return CT_OK;
}

int ct_grad_sync_plan(const int64_t *starts, int n_starts, int64_t n, int64_t bucket_bytes, int64_t *bounds, int max)
{
    /* Walk the parameter starts from the end; close a bucket once it holds
     * bucket_bytes. Collected from the end into bounds, then reversed in
     * place (no fixed-size scratch: any number of parameters). */
    int k = 0;
    int64_t hi = n;
    bounds[k++] = n;
    for (int i = n_starts - 1; i > 0 && k < max; i--)
        if ((hi - starts[i]) * (int64_t)sizeof(float) >= bucket_bytes) {
            bounds[k++] = starts[i];
            hi = starts[i];
        }
    bounds[k++] = 0;
    for (int i = 0; i < k / 2; i++) {
        int64_t t = bounds[i];
        bounds[i] = bounds[k - 1 - i];
        bounds[k - 1 - i] = t;
    }
    return k - 1;
}
