/* The text commands of ctrain: generate (sample from a language model)
 * and export-embeddings (the Embedding Projector's vectors.tsv and
 * metadata.tsv, as TensorFlow's word-embedding tutorial writes them).
 * Both read the vocabulary a text model file carries (ctrain/vocabulary). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "inputs.h"
#include "launcher.h"
#include "outfile.h"
#include "rng.h"

static ct_status load_text_model(const char *path, ct_config **cfg, ct_model **m, ct_inputs *norm)
{
    CT_TRY(ct_checkpoint_load(path, cfg, m, norm));
    if (!norm->vocab)
        return CT_FAIL(CT_ERR_USAGE, "%s: the model has no vocabulary (it was not trained on [data] format = text or "
                       "text_lm)", path);
    return CT_OK;
}

/* Index of the next token drawn from probabilities p (n): temperature 0
 * takes the most likely one; else p^(1/t) renormalised, sampled with u. */
static int64_t draw(const float *p, int64_t n, double temperature, float u)
{
    int64_t best = 2;
    for (int64_t i = 2; i < n; i++)
        if (p[i] > p[best]) best = i;
    if (temperature <= 0) return best;
    double tot = 0;
    for (int64_t i = 2; i < n; i++) tot += pow((double)p[i] + 1e-30, 1.0 / temperature);
    double r = u * tot, acc = 0;
    for (int64_t i = 2; i < n; i++) {
        acc += pow((double)p[i] + 1e-30, 1.0 / temperature);
        if (acc >= r) return i;
    }
    return best;
}

ct_status ct_text_generate(const char *model_path, const char *prompt, int length, double temperature, uint64_t seed,
                           FILE *out)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_inputs norm = {0};
    float *ids = NULL, *x = NULL, *probs = NULL;
    ct_status s = load_text_model(model_path, &cfg, &m, &norm);
    if (s != CT_OK) goto done;
    ct_text_options o;
    if ((s = ct_inputs_text_options(cfg, &o)) != CT_OK) goto done;
    /* The output: C >= V probabilities of the next token (ids past the
     * vocabulary never win), or (T, C) of every position. */
    const int64_t T = m->graph->input_size, V = ct_vocab_size(norm.vocab);
    const int64_t per_step = m->out_dim >= V && m->out_dim < T * V ? 0 : m->out_dim % T == 0 && m->out_dim / T >= V ? 1 : -1;
    const int64_t C = per_step ? m->out_dim / T : m->out_dim;
    if (per_step < 0) {
        s = CT_FAIL(CT_ERR_USAGE, "%s: generate needs a language model whose output has at least %lld probabilities "
                    "(the vocabulary; or %lld x that), got %lld", model_path, (long long)V, (long long)T,
                    (long long)m->out_dim);
        goto done;
    }
    const size_t plen = strlen(prompt);
    const int64_t cap = (int64_t)plen + length + T + 1;
    ids = calloc((size_t)cap, sizeof(float));
    x = calloc((size_t)T, sizeof(float));
    probs = malloc(sizeof(float) * (size_t)m->out_dim);
    if (!ids || !x || !probs) {
        s = CT_FAIL(CT_ERR_NOMEM, "generate: out of memory");
        goto done;
    }
    ct_text_options all = o;
    all.sequence_length = cap;
    int64_t n = ct_text_vectorize(norm.vocab, &all, prompt, plen, ids);
    if (n <= 0) {
        s = CT_FAIL(CT_ERR_USAGE, "--prompt '%s' holds no token", prompt);
        goto done;
    }
    fputs(prompt, out);
    ct_rng r = ct_rng_make(seed, CT_RNG_TEST, 0x67656e);
    for (int k = 0; k < length; k++) {
        /* the last T tokens, left-padded with 0 when the text is shorter */
        int64_t have = n < T ? n : T;
        memset(x, 0, sizeof(float) * (size_t)T);
        memcpy(x + (T - have), ids + (n - have), sizeof(float) * (size_t)have);
        if ((s = ct_model_predict(m, x, 1, probs)) != CT_OK) goto done;
        const float *p = per_step ? probs + (T - 1) * C : probs;
        int64_t next = draw(p, V, temperature, ct_rng_uniform(&r, (uint64_t)k));
        ids[n++] = (float)next;
        size_t tl = 0;
        const char *tok = ct_vocab_token(norm.vocab, next, &tl);
        if (!o.characters) fputc(' ', out);
        fwrite(tok, 1, tl, out);
    }
    fputc('\n', out);
done:
    free(ids);
    free(x);
    free(probs);
    ct_inputs_free(&norm);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}

/* Writes s[0..n) for a TSV cell: tabs and line breaks become spaces. */
static void put_cell(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) fputc(s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ? ' ' : s[i], f);
}

ct_status ct_text_export_embeddings(const char *model_path, const char *layer, const char *dir)
{
    ct_config *cfg = NULL;
    ct_model *m = NULL;
    ct_inputs norm = {0};
    FILE *fv = NULL, *fm = NULL;
    ct_outfile ov, om;
    char pv[4096], pm[4096];
    ct_status s = load_text_model(model_path, &cfg, &m, &norm);
    if (s != CT_OK) goto done;
    const ct_layer_param *table = NULL;
    for (int i = 0; i < m->graph->n_params && !table; i++) {
        const ct_layer_param *p = ct_graph_param(m->graph, i);
        const ct_layer *l = m->graph->nodes[m->graph->params[i].node].layer;
        if (strcmp(l->name, layer) == 0 && (strcmp(p->name, "embeddings") == 0 || strcmp(p->name, "token_emb/embeddings") == 0))
            table = p;
    }
    if (!table) {
        s = CT_FAIL(CT_ERR_USAGE, "%s: no Embedding layer named '%s' (--layer names an embedding or "
                    "token_and_position_embedding layer)", model_path, layer);
        goto done;
    }
    const int64_t rows = table->shape.dims[0], dim = table->shape.dims[1], V = ct_vocab_size(norm.vocab);
    snprintf(pv, sizeof pv, "%s/vectors.tsv", dir);
    snprintf(pm, sizeof pm, "%s/metadata.tsv", dir);
    /* both through temporary names (core/outfile.h): never one of the inputs */
    const char *inputs[1] = {model_path};
    if ((s = ct_output_check("vectors", pv, inputs, 1)) != CT_OK || (s = ct_output_check("metadata", pm, inputs, 1)) != CT_OK ||
        (s = ct_outfile_open(&ov, pv)) != CT_OK)
        goto done;
    fv = ov.f;
    if ((s = ct_outfile_open(&om, pm)) != CT_OK) goto done;
    fm = om.f;
    /* As the tutorial: every vocabulary entry but index 0 (padding). */
    for (int64_t i = 1; i < rows && i < V; i++) {
        for (int64_t j = 0; j < dim; j++) fprintf(fv, "%.7g%c", table->value[i * dim + j], j + 1 < dim ? '\t' : '\n');
        size_t tl = 0;
        const char *tok = ct_vocab_token(norm.vocab, i, &tl);
        put_cell(fm, tok, tl);
        fputc('\n', fm);
    }
    fv = fm = NULL;
    s = ct_output_close(pv, &ov, CT_OK);
    s = ct_output_close(pm, &om, s);
    if (s == CT_OK)
        printf("Wrote %lld vectors of %lld values to %s and their words to %s\n", (long long)(rows < V ? rows - 1 : V - 1),
               (long long)dim, pv, pm);
done:
    if (fv) ct_outfile_abort(&ov);
    if (fm) ct_outfile_abort(&om);
    ct_inputs_free(&norm);
    ct_model_destroy(m);
    ct_config_free(cfg);
    return s;
}
