/* The text source (data/text.h): Keras TextVectorization's standardize,
 * split, vocabulary order and padding on hand-worked cases, CSV quoting,
 * language-model windows, labels, the saved vocabulary, and errors that
 * name the file and line. */
#include <stdlib.h>
#include <string.h>

#include "ct_test.h"
#include "text.h"
#include "tmpfiles.h"

static ct_text_options opts(int64_t T)
{
    ct_text_options o = {0};
    o.sequence_length = T;
    return o;
}

/* The ids of sample i of s into x (T floats) and its label into *y. */
static void sample(ct_stage *s, int64_t i, float *x, float *y)
{
    ct_sample smp = {.x = x, .y = y};
    CHECK(ct_stage_get(s, i, &smp) == CT_OK);
}

static void check_ids(const float *got, const float *want, int n, const char *what)
{
    int bad = 0;
    for (int i = 0; i < n; i++) bad += got[i] != want[i];
    CHECK_MSG(bad == 0, "%s: ids %g %g %g %g, expected %g %g %g %g", what, got[0], got[1], got[2], n > 3 ? got[3] : 0,
              want[0], want[1], want[2], n > 3 ? want[3] : 0);
}

static void test_vocabulary_order(void)
{
    /* standardized: "the cat the dog", "a cat", "b b dog"; counts the 2,
     * cat 2, dog 2, b 2, a 1. Keras: count descending, ties by token
     * descending: the, dog, cat, b, then a. */
    const char *tsv = "label\ttext\ngreat\tThe cat, the DOG!\nother\ta cat\ngreat\tb b dog\n";
    ct_text_options o = opts(3);
    ct_stage *s = NULL;
    CHECK(ct_text_open_memory(tsv, strlen(tsv), "t.tsv", &o, NULL, -1, &s) == CT_OK);
    if (!s) return;
    const ct_vocab *v = ct_text_stage_vocab(s);
    const char *want[] = {"", "[UNK]", "the", "dog", "cat", "b", "a"};
    CHECK(ct_vocab_size(v) == 7);
    for (int i = 0; i < 7 && i < ct_vocab_size(v); i++) CHECK_MSG(strcmp(ct_vocab_token(v, i, NULL), want[i]) == 0,
                                                                  "token %d is '%s', expected '%s'", i, ct_vocab_token(v, i, NULL), want[i]);
    CHECK(s->length == 3 && s->x_shape.dims[0] == 3 && s->num_classes == 2);
    CHECK(ct_vocab_class_count(v) == 2 && strcmp(ct_vocab_class(v, 0), "great") == 0);
    float x[3], y;
    sample(s, 0, x, &y);
    check_ids(x, (float[]){2, 4, 2}, 3, "cut at the end");
    CHECK(y == 0);
    sample(s, 1, x, &y);
    check_ids(x, (float[]){6, 4, 0}, 3, "padded at the end");
    CHECK(y == 1);

    /* the same vocabulary on another file: unknown words are [UNK] */
    const char *test = "text\tlabel\nzebra the\tother\n";
    ct_stage *t = NULL;
    CHECK(ct_text_open_memory(test, strlen(test), "test.tsv", &o, v, -1, &t) == CT_OK);
    if (t) {
        sample(t, 0, x, &y);
        check_ids(x, (float[]){1, 2, 0}, 3, "borrowed vocabulary");
        CHECK(y == 1);
        ct_stage_close(t);
    }
    /* serialised and parsed back: the same tokens and classes */
    char *ser = NULL;
    size_t n = 0;
    CHECK(ct_vocab_serialize(v, &ser, &n) == CT_OK);
    ct_vocab *back = NULL;
    CHECK(ser && ct_vocab_parse(ser, n, "model.h5", &back) == CT_OK);
    if (back) {
        CHECK(ct_vocab_size(back) == 7 && ct_vocab_class_count(back) == 2);
        CHECK(ct_vocab_lookup(back, "dog", 3) == 3 && ct_vocab_lookup(back, "zebra", 5) == 1);
        CHECK(strcmp(ct_vocab_class(back, 1), "other") == 0);
    }
    ct_vocab_destroy(back);
    free(ser);
    ct_stage_close(s);

    /* max_tokens counts padding and [UNK]: 5 keeps the, dog, cat */
    o.max_tokens = 5;
    CHECK(ct_text_open_memory(tsv, strlen(tsv), "t.tsv", &o, NULL, -1, &s) == CT_OK);
    if (s) {
        CHECK(ct_vocab_size(ct_text_stage_vocab(s)) == 5);
        sample(s, 1, x, &y);
        check_ids(x, (float[]){1, 4, 0}, 3, "max_tokens");
        ct_stage_close(s);
    }
    /* only the first int(n * train_part) records (the training part) build it */
    o.max_tokens = 0;
    CHECK(ct_text_open_memory(tsv, strlen(tsv), "t.tsv", &o, NULL, 0.34, &s) == CT_OK); /* int(3 * 0.34) = 1 */
    if (s) {
        CHECK(ct_vocab_size(ct_text_stage_vocab(s)) == 5); /* the, cat, dog */
        sample(s, 2, x, &y);
        check_ids(x, (float[]){1, 1, 3}, 3, "vocabulary from the training part");
        ct_stage_close(s);
    }
}

static void test_csv_numeric_and_chars(void)
{
    const char *csv = "id,text,label\n7,\"Hello, \"\"World\"\"\nagain\",1\n8,bye,0\n";
    ct_text_options o = opts(4);
    o.delimiter = ',';
    ct_stage *s = NULL;
    CHECK(ct_text_open_memory(csv, strlen(csv), "r.csv", &o, NULL, -1, &s) == CT_OK);
    if (s) {
        const ct_vocab *v = ct_text_stage_vocab(s);
        /* hello world again bye, all once: descending bytes world, hello, bye, again */
        CHECK(ct_vocab_size(v) == 6 && strcmp(ct_vocab_token(v, 2, NULL), "world") == 0);
        CHECK(s->num_classes == 0 && ct_vocab_class_count(v) == 0);
        float x[4], y;
        sample(s, 0, x, &y);
        check_ids(x, (float[]){3, 2, 5, 0}, 4, "quoted CSV field with a newline");
        CHECK(y == 1);
        sample(s, 1, x, &y);
        CHECK(y == 0 && x[0] == 4);
        ct_stage_close(s);
    }
    /* characters, no standardization: "ab a" -> a 2, then b and ' ' once */
    const char *tsv = "label\ttext\n0\tab a\n";
    o = opts(5);
    o.characters = 1;
    o.standardize = CT_TEXT_NONE;
    CHECK(ct_text_open_memory(tsv, strlen(tsv), "c.tsv", &o, NULL, -1, &s) == CT_OK);
    if (s) {
        const ct_vocab *v = ct_text_stage_vocab(s);
        CHECK(ct_vocab_size(v) == 5 && strcmp(ct_vocab_token(v, 3, NULL), "b") == 0 && strcmp(ct_vocab_token(v, 4, NULL), " ") == 0);
        float x[5], y;
        sample(s, 0, x, &y);
        check_ids(x, (float[]){2, 3, 4, 2, 0}, 5, "character split");
        ct_stage_close(s);
    }
}

static void test_language_model(void)
{
    const char *txt = "abcabcab";
    ct_text_options o = opts(3);
    o.lm = 1, o.characters = 1, o.standardize = CT_TEXT_NONE;
    ct_stage *s = NULL;
    CHECK(ct_text_open_memory(txt, strlen(txt), "novel.txt", &o, NULL, -1, &s) == CT_OK);
    if (!s) return;
    /* a 3 times, b 3 (the tie goes to the greater token: b, a), c 2:
     * b, a, c = 2, 3, 4; windows every T + 1 = 4 */
    CHECK(s->length == 2 && s->y_shape.dims[0] == 1 && s->num_classes == 5);
    float x[3], y[3];
    sample(s, 0, x, y);
    check_ids(x, (float[]){3, 2, 4}, 3, "window 0");
    CHECK(y[0] == 3);
    sample(s, 1, x, y);
    check_ids(x, (float[]){2, 4, 3}, 3, "window 1");
    CHECK(y[0] == 2);
    ct_stage_close(s);
    o.lm_sequence_targets = 1, o.lm_step = 1;
    CHECK(ct_text_open_memory(txt, strlen(txt), "novel.txt", &o, NULL, -1, &s) == CT_OK);
    if (s) {
        CHECK(s->length == 5 && s->y_shape.dims[0] == 3);
        sample(s, 1, x, y);
        check_ids(x, (float[]){2, 4, 3}, 3, "window at step 1");
        check_ids(y, (float[]){4, 3, 2}, 3, "targets shifted by one");
        ct_stage_close(s);
    }
}

static void test_errors(void)
{
    ct_text_options o = opts(4);
    ct_stage *s = NULL;
    const char *a = "label\tbody\n1\thello\n";
    CHECK_FAILS(ct_text_open_memory(a, strlen(a), "r.tsv", &o, NULL, -1, &s), CT_ERR_DATA, "r.tsv:1", "'text'", "'body'");
    const char *b = "label\ttext\n1\t!!! ...\n0\t?\n";
    CHECK_FAILS(ct_text_open_memory(b, strlen(b), "r.tsv", &o, NULL, -1, &s), CT_ERR_DATA, "r.tsv", "vocabulary is empty");
    const char *c = "label\ttext\n1\tgood\n0\n";
    CHECK_FAILS(ct_text_open_memory(c, strlen(c), "r.tsv", &o, NULL, -1, &s), CT_ERR_DATA, "r.tsv:3", "1 field");
    const char *d = "label,text\n1,\"open\n";
    o.delimiter = ',';
    CHECK_FAILS(ct_text_open_memory(d, strlen(d), "r.csv", &o, NULL, -1, &s), CT_ERR_DATA, "r.csv:2", "not closed");
    o.delimiter = 0;
    const char *e = "label\ttext\ngreat\tgood\n";
    CHECK(ct_text_open_memory(e, strlen(e), "train.tsv", &o, NULL, -1, &s) == CT_OK);
    const char *f = "label\ttext\nsuperb\tgood\n";
    ct_stage *t = NULL;
    if (s) CHECK_FAILS(ct_text_open_memory(f, strlen(f), "test.tsv", &o, ct_text_stage_vocab(s), -1, &t), CT_ERR_DATA, "test.tsv:2", "superb", "training classes");
    ct_stage_close(s);
    o.lm = 1;
    CHECK_FAILS(ct_text_open_memory("one two", 7, "n.txt", &o, NULL, -1, &s), CT_ERR_DATA, "n.txt", "too few");
    o.lm = 0, o.sequence_length = 0;
    CHECK_FAILS(ct_text_open_memory(e, strlen(e), "r.tsv", &o, NULL, -1, &s), CT_ERR_CONFIG, "output_sequence_length");
    /* a real file through the path API */
    CHECK(tmp_make("text"));
    write_file(tmp_path("r.tsv"), e, strlen(e));
    o.sequence_length = 2;
    CHECK(ct_text_open(tmp_path("r.tsv"), &o, NULL, -1, &s) == CT_OK);
    ct_stage_close(s);
    CHECK_FAILS(ct_text_open(tmp_path("missing.tsv"), &o, NULL, -1, &s), CT_ERR_DATA, "missing.tsv");
    tmp_remove();
}

int main(void)
{
    test_vocabulary_order();
    test_csv_numeric_and_chars();
    test_language_model();
    test_errors();
    return ct_test_report("test_text");
}
