/* Text sources: reviews in a TSV/CSV file (a label column and a text
 * column) or a plain text file for language models, vectorized as Keras's
 * TextVectorization does.
 *
 * Fidelity (Keras 2.x TextVectorization, output_mode "int"):
 *   standardize  lower_and_strip_punctuation: ASCII lower case
 *                (tf.strings.lower), then every ASCII punctuation
 *                character !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ removed; or
 *                "lower", or none.
 *   split        whitespace: runs of ' ', \t, \n, \r, \v, \f separate
 *                tokens; character: every UTF-8 character is a token
 *                (spaces included), as tf.strings.unicode_split.
 *   vocabulary   from the training part only: tokens by count, highest
 *                first, ties broken by the token's bytes in DESCENDING
 *                order (np.lexsort((tokens, counts))[::-1], as Keras's
 *                IndexLookup does); index 0 is padding (""), 1 is [UNK];
 *                max_tokens counts both (max_tokens - 2 learned tokens).
 *   output_sequence_length  pad with 0 or cut at the END.
 * Files: TSV lines are records read literally (a quote is text); CSV
 * fields follow RFC 4180 (quotes, "" inside, newlines inside quotes).
 * Labels: when every label is a number, y is that number; otherwise the
 * distinct label strings sorted by bytes are classes 0, 1, ... (great = 0,
 * other = 1) and num_classes is their count.
 * Language models: the whole file is one token stream; window i holds
 * tokens [i*step, i*step + T) and its target is the token after it
 * (y (1), many-to-one as Keras's lstm_text_generation) or, with
 * lm_sequence_targets, the window shifted by one (y (T)).
 * Samples come out as floats holding token ids. */
#ifndef CT_TEXT_H
#define CT_TEXT_H

#include <stddef.h>

#include "stage.h"

typedef struct ct_vocab ct_vocab;

typedef enum ct_text_standardize {
    CT_TEXT_STRIP = 0, /* lower_and_strip_punctuation (Keras default) */
    CT_TEXT_LOWER,
    CT_TEXT_NONE
} ct_text_standardize;

typedef struct ct_text_options {
    char delimiter;              /* '\t' or ','; 0: ',' for *.csv, else '\t' */
    const char *label_column;    /* header name; NULL: "label" */
    const char *text_column;     /* header name; NULL: "text" */
    int characters;              /* 1: split = character; 0: whitespace */
    ct_text_standardize standardize;
    int64_t max_tokens;          /* 0: no limit; else >= 3 */
    int64_t sequence_length;     /* output_sequence_length T (>= 1) */
    int lm;                      /* 1: plain text language-model windows */
    int64_t lm_step;             /* window starts every lm_step tokens; 0: T + 1 */
    int lm_sequence_targets;     /* 1: y = the window shifted by one (T) */
    int labels_optional;         /* 1: a file without the label column reads with y = 0 */
} ct_text_options;

/* ---- vocabulary ---------------------------------------------------------- */

/* Tokens of a vocabulary; index 0 "" and 1 "[UNK]" included. */
int64_t ct_vocab_size(const ct_vocab *v);
const char *ct_vocab_token(const ct_vocab *v, int64_t i, size_t *len);
/* Id of token s[0..len), 1 ([UNK]) when absent. */
int64_t ct_vocab_lookup(const ct_vocab *v, const char *s, size_t len);
void ct_vocab_destroy(ct_vocab *v);

/* Serialised form (model files, checkpoints): a "ctrain-vocab 1" line,
 * "classes N" and N class lines, "tokens M" and the M tokens from index 2
 * on, one per line, with '\n' and '\\' escaped as "\n" and "\\". */
ct_status ct_vocab_serialize(const ct_vocab *v, char **out, size_t *len);
ct_status ct_vocab_parse(const char *text, size_t len, const char *name, ct_vocab **out);

/* Tokenize s[0..len) as o says and write T ids into ids (padded/cut at
 * the end). Returns the number of tokens before padding or cutting. */
int64_t ct_text_vectorize(const ct_vocab *v, const ct_text_options *o, const char *s, size_t len, float *ids);

/* ---- sources ------------------------------------------------------------- */

/* Open path as o says. vocab NULL: build the vocabulary from the training
 * part of this file and own it: all of it when train_part <= 0 or >= 1,
 * else the first int(n * train_part) records (Keras's validation_split
 * split_at), or for a language model that fraction of the text; else use
 * vocab (borrowed, must outlive the stage). Errors name the file and line: unknown column
 * (listing the header), a record with too few fields, an empty
 * vocabulary, a label column without labels, a text shorter than T + 1
 * tokens for a language model. */
ct_status ct_text_open(const char *path, const ct_text_options *o, const ct_vocab *vocab, double train_part,
                       ct_stage **out);
ct_status ct_text_open_memory(const char *text, size_t len, const char *name, const ct_text_options *o,
                              const ct_vocab *vocab, double train_part, ct_stage **out);

/* The vocabulary a text stage uses (its own or the borrowed one), or NULL
 * for another kind of stage. */
const ct_vocab *ct_text_stage_vocab(const ct_stage *s);
/* Class names of string labels, kept with the vocabulary so test files
 * map labels as the training file did (0 classes: labels are numbers). */
int64_t ct_vocab_class_count(const ct_vocab *v);
const char *ct_vocab_class(const ct_vocab *v, int64_t i);

#endif
