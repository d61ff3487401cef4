/* Fuzz target for the .conf reader (core/config.c).
 *
 * The same bytes go three ways:
 *  - as .conf text to ct_config_parse; a config that parses must pack,
 *    unpack, validate and pack again to the same bytes;
 *  - as one --set override (up to the first NUL or newline) applied to a
 *    fixed valid config, which must stay valid whether it succeeds or not;
 *  - as packed protobuf bytes to ct_config_unpack, whose result is
 *    validated and packed (validation of configs that arrive as bytes must
 *    not trust them).
 * A broken invariant aborts, which the fuzzer and the replay test report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "layer.h"

static const char base_conf[] =
    "[model]\ninput = 4, 2\n"
    "[flat]\ntype = flatten\n"
    "[fc1]\ntype = dense\nunits = 3\nactivation = relu\n"
    "[fc2]\ntype = dense\nunits = 3\ninputs = flat\n"
    "[sum]\ntype = add\ninputs = fc1, fc2\n"
    "[train]\nloss = mse\nmetrics = mae\n";

/* pack -> unpack -> pack gives the same bytes, and the copy validates
 * when the original does. */
static void round_trip(const ct_config *cfg, int valid)
{
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    ct_config *back = NULL;
    if (ct_config_pack(cfg, &a, &na) != CT_OK) abort();
    if (ct_config_unpack(a, na, &back) != CT_OK) abort();
    if (valid && ct_config_validate(back) != CT_OK) abort();
    if (ct_config_pack(back, &b, &nb) != CT_OK) abort();
    if (na != nb || memcmp(a, b, na) != 0) abort();
    ct_config_free(back);
    free(a);
    free(b);
}

static void fuzz_text(const uint8_t *data, size_t size)
{
    ct_config *cfg = NULL;
    ct_status s = ct_config_parse((const char *)data, size, "fuzz.conf", "/base", &cfg);
    if (s == CT_OK) {
        if (!cfg || ct_config_validate(cfg) != CT_OK) abort();
        round_trip(cfg, 1);
        ct_config_free(cfg);
    } else if (cfg || ct_error_message()[0] == 0) {
        abort(); /* a failure leaves no config and says why */
    }
}

static void fuzz_override(const uint8_t *data, size_t size)
{
    static ct_config *base;
    if (!base && ct_config_parse(base_conf, sizeof base_conf - 1, "base.conf", NULL, &base) != CT_OK)
        abort();
    ct_config *cfg = NULL;
    size_t n = 0;
    while (n < size && n < 4096 && data[n] && data[n] != '\n') n++;
    char *set = malloc(n + 1);
    if (!set) return;
    memcpy(set, data, n);
    set[n] = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (ct_config_pack(base, &bytes, &len) != CT_OK || ct_config_unpack(bytes, len, &cfg) != CT_OK)
        abort();
    ct_config_override(cfg, set);
    if (ct_config_validate(cfg) != CT_OK) abort(); /* failed overrides change nothing */
    round_trip(cfg, 1);
    ct_config_free(cfg);
    free(bytes);
    free(set);
}

static void fuzz_bytes(const uint8_t *data, size_t size)
{
    ct_config *cfg = NULL;
    if (ct_config_unpack(data, size, &cfg) != CT_OK) return;
    int valid = ct_config_validate(cfg) == CT_OK;
    round_trip(cfg, valid);
    ct_config_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int registered;
    if (!registered) {
        ct_register_builtins();
        registered = 1;
    }
    fuzz_text(data, size);
    fuzz_override(data, size);
    fuzz_bytes(data, size);
    return 0;
}
