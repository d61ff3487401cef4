/* Tapes: recording eager operations and running them backwards.
 *
 * A tape is a list of nodes in the order the operations ran, which is a
 * topological order. A gradient pass (1) marks the tensors that depend on
 * a wrt tensor, walking the nodes forwards, (2) seeds the target and walks
 * the nodes backwards, calling each node's backward function for nodes
 * whose output received a gradient, with gradient buffers only for the
 * inputs that depend on a wrt tensor, (3) hands the wrt gradients out and
 * returns every other buffer to the cache. Gradients live in the tensors
 * themselves during a pass (ct_eager.grad), which is why a tensor belongs
 * to one thread at a time. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "eager_impl.h"

#define TAPES_MAX 16

struct ct_tape {
    ct_tape_node *nodes;
    int64_t n, cap;
    int recording;
};

static _Thread_local ct_tape *active[TAPES_MAX];
static _Thread_local int n_active;
static _Atomic uint64_t pass_counter;

int ct_tape_recording(void) { return n_active > 0; }

ct_status ct_tape_create(ct_tape **out)
{
    *out = NULL;
    if (n_active == TAPES_MAX)
        return CT_FAIL(CT_ERR_USAGE, "ct_tape_create: at most %d tapes record at once on a thread", TAPES_MAX);
    ct_tape *t = calloc(1, sizeof *t);
    if (!t) return CT_FAIL(CT_ERR_NOMEM, "ct_tape_create: out of memory");
    t->recording = 1;
    active[n_active++] = t;
    *out = t;
    return CT_OK;
}

void ct_tape_stop(ct_tape *t)
{
    if (!t || !t->recording) return;
    t->recording = 0;
    for (int i = 0; i < n_active; i++) {
        if (active[i] != t) continue;
        memmove(active + i, active + i + 1, sizeof(*active) * (size_t)(n_active - i - 1));
        n_active--;
        break;
    }
}

static void node_release(ct_tape_node *n)
{
    for (int k = 0; k < n->n_in; k++) ct_eager_free(n->in[k]);
    free(n->in);
    ct_eager_free(n->out);
    free(n->aux);
}

void ct_tape_destroy(ct_tape *t)
{
    if (!t) return;
    ct_tape_stop(t);
    for (int64_t i = 0; i < t->n; i++) node_release(&t->nodes[i]);
    free(t->nodes);
    free(t);
}

int64_t ct_tape_size(const ct_tape *t) { return t ? t->n : 0; }

static ct_status record_one(ct_tape *t, const ct_tape_node *proto, int n_in, ct_eager *const *in, ct_eager *out,
                            const void *aux, size_t aux_size)
{
    if (t->n == t->cap) {
        int64_t cap = t->cap ? 2 * t->cap : 64;
        ct_tape_node *nodes = realloc(t->nodes, sizeof(*nodes) * (size_t)cap);
        if (!nodes) return CT_FAIL(CT_ERR_NOMEM, "tape: out of memory recording '%s'", proto->op);
        t->nodes = nodes;
        t->cap = cap;
    }
    ct_tape_node n = *proto;
    n.n_in = n_in;
    n.in = malloc(sizeof(ct_eager *) * (size_t)(n_in > 0 ? n_in : 1));
    n.aux = NULL;
    if (aux_size) n.aux = malloc(aux_size);
    if (!n.in || (aux_size && !n.aux)) {
        free(n.in);
        free(n.aux);
        return CT_FAIL(CT_ERR_NOMEM, "tape: out of memory recording '%s'", proto->op);
    }
    if (aux_size) memcpy(n.aux, aux, aux_size);
    for (int k = 0; k < n_in; k++) n.in[k] = ct_eager_retain(in[k]);
    n.out = ct_eager_retain(out);
    t->nodes[t->n++] = n;
    return CT_OK;
}

ct_status ct_tape_record(const ct_tape_node *proto, int n_in, ct_eager *const *in, ct_eager *out,
                         const void *aux, size_t aux_size)
{
    for (int i = 0; i < n_active; i++) CT_TRY(record_one(active[i], proto, n_in, in, out, aux, aux_size));
    return CT_OK;
}

/* ---- the gradient pass ------------------------------------------------------- */
typedef struct touched {
    ct_eager **t;
    int64_t n, cap;
} touched;

static int touch(touched *s, ct_eager *e)
{
    if (s->n == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 64;
        ct_eager **p = realloc(s->t, sizeof(*p) * (size_t)cap);
        if (!p) return 0;
        s->t = p;
        s->cap = cap;
    }
    s->t[s->n++] = e;
    return 1;
}

static void release_grads(touched *s)
{
    for (int64_t i = 0; i < s->n; i++) {
        ct_eager *e = s->t[i];
        if (e->grad_owned) ct_eager_buf_free(e->grad, e->numel);
        e->grad = NULL;
        e->grad_owned = 0;
        e->mark = 0;
    }
    free(s->t);
}

ct_status ct_tape_backward_into(ct_tape *t, ct_eager *target, const float *seed, int n, ct_eager *const *wrt,
                                float *const *acc)
{
    if (!t || !target) return CT_FAIL(CT_ERR_USAGE, "tape gradient: NULL tape or target");
    uint64_t pass = atomic_fetch_add(&pass_counter, 1) + 1;
    touched s = {0};
    ct_status st = CT_OK;
    int target_known = 0;
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) {
            st = CT_FAIL(CT_ERR_USAGE, "tape gradient: wrt[%d] is NULL", i);
            goto done;
        }
        if (wrt[i]->mark == pass) continue; /* listed twice: both get the same accumulation target */
        wrt[i]->mark = pass;
        wrt[i]->grad = acc[i];
        if (!touch(&s, wrt[i])) goto nomem;
        if (wrt[i] == target) target_known = 1;
    }
    for (int64_t j = 0; j < t->n; j++) {
        ct_tape_node *nd = &t->nodes[j];
        if (nd->out == target) target_known = 1;
        if (nd->out->mark == pass) continue;
        for (int k = 0; k < nd->n_in; k++) {
            if (nd->in[k]->mark != pass) continue;
            nd->out->mark = pass;
            if (!touch(&s, nd->out)) goto nomem;
            break;
        }
    }
    if (!target_known) {
        st = CT_FAIL(CT_ERR_USAGE, "tape gradient: the target was not computed on this tape (nor is it in wrt)");
        goto done;
    }
    if (target->mark != pass) goto done; /* no wrt tensor influences it: zero gradients */
    /* seed: dL/dtarget, added to what a wrt alias of the target holds */
    if (!target->grad) {
        target->grad = ct_eager_buf_zeros(target->numel);
        if (!target->grad) goto nomem;
        target->grad_owned = 1;
    }
    for (int64_t i = 0; i < target->numel; i++) target->grad[i] += seed ? seed[i] : 1.0f;
    float *din_small[8];
    for (int64_t j = t->n - 1; j >= 0; j--) {
        ct_tape_node *nd = &t->nodes[j];
        if (nd->out->mark != pass || !nd->out->grad || !nd->bwd) continue;
        float **din = nd->n_in <= 8 ? din_small : malloc(sizeof(float *) * (size_t)nd->n_in);
        if (!din) goto nomem;
        int any = 0;
        for (int k = 0; k < nd->n_in; k++) {
            ct_eager *e = nd->in[k];
            din[k] = NULL;
            if (e->mark != pass) continue;
            if (!e->grad) {
                e->grad = ct_eager_buf_zeros(e->numel);
                if (!e->grad) {
                    if (din != din_small) free(din);
                    goto nomem;
                }
                e->grad_owned = 1;
            }
            din[k] = e->grad;
            any = 1;
        }
        if (any) nd->bwd(nd, nd->out->grad, din);
        if (din != din_small) free(din);
    }
    goto done;
nomem:
    st = CT_FAIL(CT_ERR_NOMEM, "tape gradient: out of memory");
done:
    release_grads(&s);
    return st;
}

static ct_status gradient(ct_tape *t, ct_eager *target, const float *seed, int n, ct_eager *const *wrt,
                          ct_eager **grads)
{
    for (int i = 0; i < n; i++) grads[i] = NULL;
    float *acc_small[16] = {0};
    float **acc = n <= 16 ? acc_small : malloc(sizeof(float *) * (size_t)n);
    if (!acc) return CT_FAIL(CT_ERR_NOMEM, "tape gradient: out of memory");
    ct_status st = CT_OK;
    for (int i = 0; i < n; i++) {
        if (!wrt[i]) {
            st = CT_FAIL(CT_ERR_USAGE, "tape gradient: wrt[%d] is NULL", i);
            goto fail;
        }
        grads[i] = ct_eager_zeros(wrt[i]->rank, wrt[i]->dims);
        if (!grads[i]) {
            st = ct_error_status();
            goto fail;
        }
        acc[i] = grads[i]->data;
        /* the same tensor twice in wrt: one accumulation, copied after */
        for (int k = 0; k < i; k++)
            if (wrt[k] == wrt[i]) acc[i] = acc[k];
    }
    st = ct_tape_backward_into(t, target, seed, n, wrt, acc);
    if (st != CT_OK) goto fail;
    for (int i = 0; i < n; i++)
        if (acc[i] != grads[i]->data) memcpy(grads[i]->data, acc[i], sizeof(float) * (size_t)grads[i]->numel);
    if (acc != acc_small) free(acc);
    return CT_OK;
fail:
    for (int i = 0; i < n; i++) {
        ct_eager_discard(grads[i]);
        grads[i] = NULL;
    }
    if (acc != acc_small) free(acc);
    return st;
}

ct_status ct_tape_gradient(ct_tape *t, ct_eager *target, int n, ct_eager *const *wrt, ct_eager **grads)
{
    if (!target) return CT_FAIL(CT_ERR_USAGE, "ct_tape_gradient: target is NULL");
    if (target->numel != 1)
        return CT_FAIL(CT_ERR_SHAPE,
                       "ct_tape_gradient: the target has %lld elements, expected one (a scalar loss); "
                       "use ct_tape_gradient_seeded for other shapes",
                       (long long)target->numel);
    return gradient(t, target, NULL, n, wrt, grads);
}

ct_status ct_tape_gradient_seeded(ct_tape *t, ct_eager *target, ct_eager *seed, int n, ct_eager *const *wrt,
                                  ct_eager **grads)
{
    if (!target || !seed) return CT_FAIL(CT_ERR_USAGE, "ct_tape_gradient_seeded: target or seed is NULL");
    if (seed->numel != target->numel)
        return CT_FAIL(CT_ERR_SHAPE, "ct_tape_gradient_seeded: the seed has %lld elements, the target %lld",
                       (long long)seed->numel, (long long)target->numel);
    return gradient(t, target, seed->data, n, wrt, grads);
}
