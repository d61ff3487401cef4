/* Tests of the .conf reader (core/config.c): every field type, defaults,
 * comments and line ends, path resolution, overrides, pack/unpack, and
 * the malformed files under tests/configs/bad, each of which names the
 * message it must produce on its first line ("# expect: file:line: ..."). */
#include <dirent.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ct_test.h"
#include "layer.h"

#define CONFIGS CT_SOURCE_DIR "/tests/configs"

static const char base_conf[] =
    "[model]\n"
    "input = 4\n"
    "\n"
    "[fc1]\n"
    "type = dense\n"
    "units = 3\n";

static ct_config *parse_ok(const char *text)
{
    ct_config *cfg = NULL;
    ct_status s = ct_config_parse(text, strlen(text), "mem.conf", NULL, &cfg);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    return cfg;
}

/* Parse and expect CT_ERR_CONFIG with `needle` in the message. */
static void parse_bad(const char *text, size_t len, const char *needle)
{
    ct_config *cfg = NULL;
    ct_status s = ct_config_parse(text, len, "mem.conf", NULL, &cfg);
    CHECK_MSG(s == CT_ERR_CONFIG, "status %d for %s", s, needle);
    CHECK(cfg == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), needle);
}

static void test_all_types(void)
{
    ct_config *cfg = parse_ok(
        "# comment line\n"
        "   # indented comment\n"
        "[model]\n"
        "input = 28, 28 ,1   # trailing comment\n"
        "name=tiny\n"
        "[fc1]\n"
        "  type   =   dense  \n"
        "units = +16\n"
        "use_bias = No\n"
        "kernel_initializer = random_normal(mean=0, stddev=0.05)\n"
        "[drop]\n"
        "type = dropout\n"
        "rate = .25\n"
        "seed = -9000000000\n"
        "[cat]\n"
        "type = concatenate\n"
        "inputs = fc1, drop\n"
        "axis = 1\n"
        "[data]\n"
        "format = csv\n"
        "validation_split = 1e-1\n"
        "header = FALSE\n"
        "[augment]\n"
        "rescale = 0.00392156862745098\n"
        "[train]\n"
        "learning_rate = 3.5E-4\n"
        "metrics = accuracy, mse\n"
        "class_weight = 1, 2.5, -0\n"
        "amsgrad = YES\n"
        "threads = 3\n");
    if (!cfg) return;
    CHECK_STR_CONTAINS(cfg->source, "mem.conf");
    CHECK(cfg->model->n_input == 3 && cfg->model->input[0] == 28 && cfg->model->input[2] == 1);
    CHECK(strcmp(cfg->model->name, "tiny") == 0);
    CHECK(cfg->n_layers == 3);
    const ct_layer_config *fc1 = cfg->layers[0], *drop = cfg->layers[1], *cat = cfg->layers[2];
    CHECK(strcmp(fc1->name, "fc1") == 0 && fc1->has_line && fc1->line == 6);
    CHECK(strcmp(fc1->type, "dense") == 0);
    CHECK(fc1->has_units && fc1->units == 16);
    CHECK(fc1->has_use_bias && fc1->use_bias == 0);
    CHECK(strcmp(fc1->kernel_initializer, "random_normal(mean=0, stddev=0.05)") == 0);
    CHECK(strcmp(fc1->activation, "linear") == 0);         /* [default = "linear"] */
    CHECK(strcmp(fc1->bias_initializer, "zeros") == 0);
    CHECK(fc1->kernel_regularizer == NULL);
    CHECK(drop->has_rate && drop->rate == 0.25f);
    CHECK(drop->has_seed && drop->seed == -9000000000LL);
    CHECK(drop->line == 11);
    CHECK(cat->n_inputs == 2 && strcmp(cat->inputs[1], "drop") == 0);
    CHECK(cat->has_axis && cat->axis == 1);
    CHECK(drop->axis == -1 && !drop->has_axis);               /* default -1 */
    CHECK(strcmp(cfg->data->format, "csv") == 0);
    CHECK_NEAR(cfg->data->validation_split, 0.1, 1e-7);
    CHECK(cfg->data->has_header && cfg->data->header == 0);
    CHECK(strcmp(cfg->data->delimiter, ",") == 0);
    CHECK(cfg->data->split_seed == 113);
    CHECK_NEAR(cfg->augment->rescale, 1.0 / 255, 1e-15);
    const Ctrain__TrainConfig *t = cfg->train;
    CHECK_NEAR(t->learning_rate, 3.5e-4, 1e-18);
    CHECK(t->n_metrics == 2 && strcmp(t->metrics[0], "accuracy") == 0 &&
          strcmp(t->metrics[1], "mse") == 0);
    CHECK(t->n_class_weight == 3 && t->class_weight[1] == 2.5 && t->class_weight[2] == 0);
    CHECK(t->amsgrad == 1 && t->threads == 3);
    /* defaults of keys the file does not set */
    CHECK(!t->has_batch_size && t->batch_size == 32);
    CHECK(t->epochs == 1 && t->shuffle == 1 && t->seed == 42);
    CHECK_NEAR(t->beta_1, 0.9, 0);
    CHECK_NEAR(t->beta_2, 0.999, 0);
    CHECK_NEAR(t->epsilon, 1e-7, 0);
    CHECK(strcmp(t->optimizer, "rmsprop") == 0);
    CHECK(t->loss == NULL);
    ct_config_free(cfg);
}

/* CRLF, tabs, a BOM, no final newline, empty and comment-only text. */
static void test_line_ends(void)
{
    const char crlf[] = "\xEF\xBB\xBF[model]\r\ninput\t=\t4\r\n\r\n[fc1]\r\ntype = dense\r\n"
                        "units = 2 # x\r\n[train]\r\nepochs = 5";
    ct_config *cfg = parse_ok(crlf);
    if (cfg) {
        CHECK(cfg->model->input[0] == 4 && cfg->layers[0]->units == 2);
        CHECK(cfg->layers[0]->line == 4 && cfg->train->epochs == 5);
        ct_config_free(cfg);
    }
    parse_bad("", 0, "mem.conf: no [model] section");
    parse_bad("# nothing\n\n", 11, "no [model] section");
    parse_bad("[model]\r\ninput = 4\r\n[fc1]\r\ntype = dense\r\nunits = x\r\n", 53,
              "mem.conf:5: [fc1] units: 'x' is not an integer");
    /* a NUL byte inside the text, not at its end */
    const char nul[] = "[model]\ninput = 4\n[fc1]\ntype = de\0nse\nunits = 1\n";
    parse_bad(nul, sizeof nul - 1, "mem.conf:4: NUL byte");
}

/* A 200 kB key and value: no fixed line buffer, a quoted excerpt. */
static void test_long_lines(void)
{
    size_t n = 200000;
    char *text = malloc(n + 64);
    strcpy(text, "[model]\ninput = 4\n[fc1]\ntype = dense\n");
    size_t k = strlen(text);
    memset(text + k, 'u', n);
    memcpy(text + k + n, " = 3\n", 6);
    parse_bad(text, strlen(text), "mem.conf:5: [fc1] unknown key 'uuuuuuuu");
    CHECK(strlen(ct_error_message()) < 1000);
    memcpy(text + k, "units =", 7);
    text[k + n] = 0;
    parse_bad(text, strlen(text), "is not an integer");
    free(text);
}

static void test_numbers(void)
{
    static const struct {
        const char *line, *needle; /* needle NULL: must parse */
    } cases[] = {
        {"units = 2147483647", NULL},
        {"units = 2147483648", "out of range for int32"},
        {"units = -2147483649", "out of range for int32"},
        {"units = 1e3", "'1e3' is not an integer"},
        {"units = 12abc", "'12abc' is not an integer"},
        {"units = - 3", "is not an integer"},
        {"units = ", "missing value"},
        {"activation = relu", NULL},
        {"use_bias = 1", NULL},
        {"use_bias = 2", "is not a boolean"},
        {"use_bias = truee", "is not a boolean"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "[model]\ninput = 4\n[fc1]\ntype = dense\n%s\n", cases[i].line);
        if (!strstr(cases[i].line, "units")) strcat(text, "units = 1\n");
        if (!cases[i].needle) {
            ct_config *cfg = parse_ok(text);
            ct_config_free(cfg);
        } else {
            parse_bad(text, strlen(text), cases[i].needle);
        }
    }
    static const struct {
        const char *value, *needle;
    } reals[] = {
        {"0.5", NULL}, {"5.", NULL}, {".5", NULL}, {"+1e-3", NULL}, {"1E+2", NULL},
        {"inf", "is not a number"}, {"-infinity", "is not a number"}, {"NaN", "is not a number"},
        {"0x1p-3", "is not a number"}, {"1e", "is not a number"}, {".", "is not a number"},
        {"1e999", "out of range for double"}, {"0,001", "is not a number"},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "%s[train]\nclipnorm = %s\n", base_conf, reals[i].value);
        if (!reals[i].needle) {
            ct_config *cfg = parse_ok(text);
            ct_config_free(cfg);
        } else {
            parse_bad(text, strlen(text), reals[i].needle);
        }
    }
}

/* A thread running under a locale with a decimal comma still reads 0.25.
 * uselocale, not setlocale: glibc's setlocale leaks a name LSan reports. */
static void test_locale(void)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    locale_t comma = (locale_t)0;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !comma; i++)
        comma = newlocale(LC_NUMERIC_MASK, names[i], (locale_t)0);
    if (!comma) {
        /* tests/cli.cmake builds de_DE and sets CT_REQUIRE_LOCALE when it can */
        CHECK_MSG(!getenv("CT_REQUIRE_LOCALE"), "CT_REQUIRE_LOCALE set but no de_DE locale");
        printf("test_config: no decimal-comma locale installed; locale test skipped\n");
        return;
    }
    locale_t old = uselocale(comma);
    CHECK(strtod("0.25", NULL) == 0.0); /* the locale really reads a comma */
    char text[256];
    snprintf(text, sizeof text, "%s[train]\nlearning_rate = 0.25\nclipnorm = 1e-2\n", base_conf);
    ct_config *cfg = parse_ok(text);
    if (cfg) CHECK(cfg->train->learning_rate == 0.25 && cfg->train->clipnorm == 1e-2);
    ct_config_free(cfg);
    uselocale(old);
    freelocale(comma);
    printf("test_config: numbers read under a decimal-comma locale\n");
}

static void test_paths(void)
{
    ct_config *cfg = NULL;
    const char *sets[] = {"data.test_labels = rel/labels.idx", "data.validation=/abs/v.idx"};
    ct_status s = ct_config_load(CONFIGS "/good/paths.conf", sets, 2, &cfg);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    if (!cfg) return;
    CHECK(strcmp(cfg->data->train, CONFIGS "/good/data/train.idx") == 0);
    CHECK(strcmp(cfg->data->train_labels, "/abs/labels.idx") == 0);
    CHECK(strcmp(cfg->data->test, CONFIGS "/good/../t10k.idx") == 0);
    CHECK(strcmp(cfg->train->save_model, CONFIGS "/good/out/model.h5") == 0);
    /* --set paths are relative to the current directory: kept as given */
    CHECK(strcmp(cfg->data->test_labels, "rel/labels.idx") == 0);
    CHECK(strcmp(cfg->data->validation, "/abs/v.idx") == 0);
    CHECK(strcmp(cfg->source, CONFIGS "/good/paths.conf") == 0);
    ct_config_free(cfg);

    /* parse with a base directory, and without one */
    const char text[] = "[model]\ninput=1\n[o]\ntype=dense\nunits=1\n[data]\ntrain = x.idx\n";
    CHECK(ct_config_parse(text, strlen(text), "t.conf", "/base/", &cfg) == CT_OK);
    if (cfg) CHECK(strcmp(cfg->data->train, "/base/x.idx") == 0);
    ct_config_free(cfg);
    CHECK(ct_config_parse(text, strlen(text), "t.conf", NULL, &cfg) == CT_OK);
    if (cfg) CHECK(strcmp(cfg->data->train, "x.idx") == 0);
    ct_config_free(cfg);

    s = ct_config_load(CONFIGS "/no/such.conf", NULL, 0, &cfg);
    CHECK(s == CT_ERR_CONFIG && cfg == NULL); /* bad input: exit 2 */
    CHECK_STR_CONTAINS(ct_error_message(), "no/such.conf");
    s = ct_config_load(CONFIGS, NULL, 0, &cfg); /* a directory */
    CHECK(s == CT_ERR_CONFIG);
}

static void test_callbacks(void)
{
    ct_config *cfg = NULL;
    ct_status s = ct_config_load(CONFIGS "/good/callbacks.conf", NULL, 0, &cfg);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    if (!cfg) return;
    CHECK(cfg->early_stopping && cfg->early_stopping->patience == 3);
    CHECK(strcmp(cfg->early_stopping->mode, "min") == 0 && cfg->early_stopping->restore_best_weights);
    CHECK(cfg->early_stopping->start_from_epoch == 0);                   /* default */
    CHECK(strcmp(cfg->model_checkpoint->filepath,
                 CONFIGS "/good/checkpoints/cifar-{epoch:02d}-{val_loss:.2f}.h5") == 0);
    CHECK(strcmp(cfg->model_checkpoint->monitor, "val_loss") == 0);      /* default */
    CHECK(cfg->reduce_lr_on_plateau->factor == 0.5 && cfg->reduce_lr_on_plateau->min_lr == 1e-6);
    CHECK(cfg->reduce_lr_on_plateau->cooldown == 0);
    CHECK(strcmp(cfg->lr_schedule->schedule, "cosine") == 0);
    CHECK(cfg->lr_schedule->t_mul == 2.0);
    CHECK(strcmp(cfg->tensorboard->log_dir, CONFIGS "/good/logs/cifar") == 0);
    CHECK(strcmp(cfg->csv_logger->filename, CONFIGS "/good/logs/cifar.csv") == 0);
    CHECK(cfg->csv_logger->append == 1 && strcmp(cfg->csv_logger->separator, ",") == 0);
    /* an empty section is present: the callback is on, with its defaults */
    CHECK(cfg->terminate_on_nan && cfg->terminate_on_nan->enabled == 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    ct_config *back = NULL;
    CHECK(ct_config_pack(cfg, &buf, &len) == CT_OK);
    CHECK(ct_config_unpack(buf, len, &back) == CT_OK);
    if (back) CHECK(back->terminate_on_nan != NULL && back->tensorboard != NULL);
    ct_config_free(back);
    free(buf);
    ct_config_free(cfg);
}

static void override_bad(ct_config *cfg, const char *set, const char *needle)
{
    ct_status s = ct_config_override(cfg, set);
    CHECK_MSG(s == CT_ERR_CONFIG, "status %d for --set %s", s, set);
    CHECK_STR_CONTAINS(ct_error_message(), needle);
}

static void test_overrides(void)
{
    ct_config *cfg = parse_ok(base_conf);
    if (!cfg) return;
    CHECK(cfg->train == NULL && cfg->augment == NULL);
    CHECK(ct_config_override(cfg, "train.epochs=3") == CT_OK);
    CHECK(cfg->train && cfg->train->epochs == 3 && cfg->train->batch_size == 32);
    CHECK(ct_config_override(cfg, " train.epochs = 4 ") == CT_OK && cfg->train->epochs == 4);
    CHECK(ct_config_override(cfg, "augment.rescale=0.5") == CT_OK && cfg->augment->rescale == 0.5);
    CHECK(ct_config_override(cfg, "fc1.units=64") == CT_OK && cfg->layers[0]->units == 64);
    CHECK(ct_config_override(cfg, "fc1.activation=relu") == CT_OK);
    CHECK(ct_config_override(cfg, "fc1.activation=tanh") == CT_OK);
    CHECK(strcmp(cfg->layers[0]->activation, "tanh") == 0);
    CHECK(ct_config_override(cfg, "train.metrics=mae,mse") == CT_OK && cfg->train->n_metrics == 2);
    CHECK(ct_config_override(cfg, "train.metrics=accuracy") == CT_OK && cfg->train->n_metrics == 1);
    CHECK(ct_config_override(cfg, "model.input=2,2") == CT_OK && cfg->model->n_input == 2);
    CHECK(ct_config_override(cfg, "data.train=a#b.idx") == CT_OK);  /* '#' is no comment here */
    CHECK(strcmp(cfg->data->train, "a#b.idx") == 0);
    /* CLI.md: a section the file lacks is created, turning the callback on */
    CHECK(ct_config_override(cfg, "tensorboard.log_dir=logs/run1") == CT_OK);
    CHECK(cfg->tensorboard && strcmp(cfg->tensorboard->log_dir, "logs/run1") == 0);
    CHECK(cfg->tensorboard->update_freq && strcmp(cfg->tensorboard->update_freq, "epoch") == 0);

    override_bad(cfg, "train.epochs", "<--set>: 'train.epochs' is not SECTION.KEY=VALUE");
    override_bad(cfg, "epochs=3", "is not SECTION.KEY=VALUE");
    override_bad(cfg, ".epochs=3", "is not SECTION.KEY=VALUE");
    override_bad(cfg, "train.=3", "is not SECTION.KEY=VALUE");
    override_bad(cfg, "trian.epochs=3", "<--set>: unknown section 'trian'; did you mean 'train'?");
    override_bad(cfg, "fc2.units=3", "did you mean 'fc1'?");
    override_bad(cfg, "train.epoch=3", "<--set>: [train] unknown key 'epoch'; did you mean 'epochs'?");
    override_bad(cfg, "train.epochs=0", "<--set>: [train] epochs: must be >= 1, got 0");
    /* KEY= with nothing after '=' unsets the key: its schema default */
    CHECK(ct_config_override(cfg, "train.save_model=m.h5") == CT_OK && cfg->train->save_model);
    CHECK(ct_config_override(cfg, "train.save_model=") == CT_OK && cfg->train->save_model == NULL);
    CHECK(ct_config_override(cfg, "train.epochs=") == CT_OK && cfg->train->epochs == 1 && !cfg->train->has_epochs);
    CHECK(ct_config_override(cfg, "train.metrics=") == CT_OK && cfg->train->n_metrics == 0);
    CHECK(ct_config_override(cfg, "augment.rescale=") == CT_OK && !cfg->augment->has_rescale);
    override_bad(cfg, "train.epoch=", "<--set>: [train] unknown key 'epoch'; did you mean 'epochs'?");
    CHECK(ct_config_override(cfg, "train.epochs=4") == CT_OK && cfg->train->epochs == 4);
    override_bad(cfg, "fc1.rate=0.5", "<--set>: [fc1] rate: layer type dense does not take this key");
    override_bad(cfg, "fc1.name=x", "[fc1] name: cannot be set");
    override_bad(cfg, "fc1.inputs=fc1", "a layer cannot be its own input");
    override_bad(cfg, "distributed.backend=mpi", "unknown key 'backend'");
    override_bad(cfg, "tensorboard.histogram_freq=-1", "[tensorboard] histogram_freq: must be >= 0");
    CHECK(!cfg->tensorboard->has_histogram_freq);
    override_bad(cfg, "fc1.type=flatten", "[fc1] units: layer type flatten does not take this key");
    /* a failed override changes nothing: not the value, not the sections */
    CHECK(cfg->layers[0]->units == 64 && !cfg->layers[0]->has_rate);
    CHECK(strcmp(cfg->layers[0]->type, "dense") == 0);
    CHECK(ct_config_validate(cfg) == CT_OK);
    ct_config *fresh = parse_ok(base_conf);
    if (fresh) {
        override_bad(fresh, "train.epochs=0", "must be >= 1");
        override_bad(fresh, "csv_logger.append=maybe", "is not a boolean");
        CHECK(fresh->train == NULL && fresh->csv_logger == NULL); /* nothing created */
        ct_config_free(fresh);
    }
    ct_config_free(cfg);
}

static void test_pack_round_trip(void)
{
    ct_config *cfg = NULL;
    const char *sets[] = {"train.batch_size=16"};
    ct_status s = ct_config_load(CONFIGS "/good/mnist_mlp.conf", sets, 1, &cfg);
    CHECK_MSG(s == CT_OK, "%s", ct_error_message());
    if (!cfg) return;
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    CHECK(ct_config_pack(cfg, &a, &na) == CT_OK && na > 0);
    ct_config *back = NULL;
    CHECK(ct_config_unpack(a, na, &back) == CT_OK);
    if (back) {
        CHECK(ct_config_validate(back) == CT_OK);
        CHECK(back->n_layers == 4 && strcmp(back->layers[1]->name, "fc1") == 0);
        CHECK(back->layers[1]->units == 128 && back->layers[1]->line == 9);
        CHECK(strcmp(back->layers[1]->kernel_regularizer, "l2(0.0001)") == 0);
        CHECK(strcmp(back->layers[3]->activation, "softmax") == 0);
        CHECK(strcmp(back->layers[0]->activation, "linear") == 0); /* default survives */
        CHECK(back->train->batch_size == 16 && back->train->has_batch_size);
        CHECK(back->train->beta_2 == 0.999 && !back->train->has_beta_2);
        CHECK(strcmp(back->source, cfg->source) == 0);
        CHECK(ct_config_pack(back, &b, &nb) == CT_OK);
        CHECK(na == nb && memcmp(a, b, na) == 0);
        ct_config_free(back);
    }
    free(a);
    free(b);
    ct_config_free(cfg);

    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    CHECK(ct_config_unpack(junk, sizeof junk, &back) == CT_ERR_CHECKPOINT && back == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "config bytes do not decode");
    /* a field this build does not know (number 99 of LayerConfig) is refused */
    const uint8_t newer[] = {0x12, 0x06, 0x0a, 0x01, 'a', 0x98, 0x06, 0x01};
    CHECK(ct_config_unpack(newer, sizeof newer, &back) == CT_ERR_CHECKPOINT && back == NULL);
    CHECK_STR_CONTAINS(ct_error_message(), "field 99 of ctrain.LayerConfig is unknown");
    const uint8_t tag0[] = {0x80, 0x00, 0x00}; /* found by the fuzzer: an over-long tag 0 */
    CHECK(ct_config_unpack(tag0, sizeof tag0, &back) == CT_ERR_CHECKPOINT && back == NULL);
    /* bytes that decode but say nothing: validate names what is missing */
    CHECK(ct_config_unpack(junk, 0, &back) == CT_OK);
    if (back) {
        CHECK(ct_config_validate(back) == CT_ERR_CONFIG);
        CHECK_STR_CONTAINS(ct_error_message(), "no [model] section");
        ct_config_free(back);
    }
}

static void test_nearest(void)
{
    const char *const names[] = {"units", "activation", "use_bias", "Dense", NULL};
    CHECK(strcmp(ct_nearest_name("unit", names, 5), "units") == 0);
    CHECK(strcmp(ct_nearest_name("UNITS", names, 5), "units") == 0);
    CHECK(strcmp(ct_nearest_name("activaton", names, 5), "activation") == 0);
    CHECK(strcmp(ct_nearest_name("dense", names, 5), "Dense") == 0);
    CHECK(strcmp(ct_nearest_name("actvtion", names, 5), "activation") == 0); /* 2 edits */
    CHECK(ct_nearest_name("xyz", names, 5) == NULL);
    CHECK(ct_nearest_name("ab", names, 5) == NULL);
    CHECK(ct_nearest_name("unit", names, 0) == NULL);
    CHECK(ct_nearest_name("", names, 5) == NULL);
}

/* The "# expect: " line of a file, without the line end. */
static int read_expect(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char line[512] = "";
    int ok = fgets(line, sizeof line, f) && strncmp(line, "# expect: ", 10) == 0;
    fclose(f);
    if (!ok) return 0;
    line[strcspn(line, "\r\n")] = 0;
    snprintf(out, cap, "%s", line + 10);
    return 1;
}

static int is_conf(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

static void test_bad_files(void)
{
    DIR *dir = opendir(CONFIGS "/bad");
    CHECK(dir != NULL);
    if (!dir) return;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!is_conf(e->d_name)) continue;
        char path[1024], expect[512];
        snprintf(path, sizeof path, "%s/%s", CONFIGS "/bad", e->d_name);
        CHECK_MSG(read_expect(path, expect, sizeof expect), "%s has no '# expect:' line", path);
        /* the expectation names this file and a line (or the file alone) */
        CHECK_MSG(strncmp(expect, e->d_name, strlen(e->d_name)) == 0, "%s: %s", path, expect);
        ct_config *cfg = NULL;
        ct_status s = ct_config_load(path, NULL, 0, &cfg);
        CHECK_MSG(s == CT_ERR_CONFIG, "%s: status %d", e->d_name, s);
        CHECK(cfg == NULL);
        CHECK_STR_CONTAINS(ct_error_message(), expect);
        files++;
    }
    closedir(dir);
    CHECK_MSG(files >= 30, "only %d malformed configs", files);
    printf("test_config: %d malformed configs\n", files);
}

static void test_good_files(void)
{
    DIR *dir = opendir(CONFIGS "/good");
    CHECK(dir != NULL);
    if (!dir) return;
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!is_conf(e->d_name)) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", CONFIGS "/good", e->d_name);
        ct_config *cfg = NULL;
        ct_status s = ct_config_load(path, NULL, 0, &cfg);
        CHECK_MSG(s == CT_OK, "%s: %s", e->d_name, ct_error_message());
        if (cfg) CHECK(ct_config_validate(cfg) == CT_OK);
        ct_config_free(cfg);
        files++;
    }
    closedir(dir);
    CHECK(files >= 4);
}

int main(void)
{
    ct_register_builtins();
    test_all_types();
    test_line_ends();
    test_long_lines();
    test_numbers();
    test_locale();
    test_paths();
    test_overrides();
    test_callbacks();
    test_pack_round_trip();
    test_nearest();
    test_bad_files();
    test_good_files();
    return ct_test_report("test_config");
}
