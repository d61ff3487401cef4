/* The JSON writer against hand-written expected text (escapes, commas,
 * shortest round-trip numbers) and the reader against hand-built
 * documents (escapes, surrogate pairs, nesting, errors with offsets).
 * Python's json module checks the writer's output of whole models in
 * tests/keras_json.sh. */
#include <stdlib.h>

#include "../core/json.h"
#include "ct_test.h"

static char *write_sample(void)
{
    ct_json j;
    ct_json_init(&j);
    ct_json_obj(&j);
    ct_json_kstr(&j, "q\"b\\", "a\tb\nc\x01\x7f\xc3\xa9");
    ct_json_key(&j, "nums");
    ct_json_arr(&j);
    ct_json_num(&j, 0.1);
    ct_json_num(&j, 1.0);
    ct_json_numf(&j, 0.99f);
    ct_json_numf(&j, 1e-7f);
    ct_json_int(&j, -42);
    ct_json_num(&j, 1.0 / 0.0);
    ct_json_arr_end(&j);
    ct_json_key(&j, "empty");
    ct_json_obj(&j);
    ct_json_obj_end(&j);
    ct_json_kbool(&j, "t", 1);
    ct_json_knull(&j, "n");
    ct_json_obj_end(&j);
    CHECK(ct_json_finish(&j) == CT_OK);
    return j.buf;
}

static void test_writer(void)
{
    char *text = write_sample();
    const char *want = "{\"q\\\"b\\\\\": \"a\\tb\\nc\\u0001\\u007f\xc3\xa9\", \"nums\": [0.1, 1.0, 0.99, 1e-07, -42, "
                       "null], \"empty\": {}, \"t\": true, \"n\": null}";
    CHECK_MSG(strcmp(text, want) == 0, "got %s", text);
    free(text);

    ct_json j;
    ct_json_init(&j);
    ct_json_arr(&j);
    CHECK(ct_json_finish(&j) != CT_OK); /* unclosed */
    ct_json_free(&j);
}

static void test_reader(void)
{
    char *text = write_sample();
    ct_json_value *v = NULL;
    CHECK(ct_json_parse(text, strlen(text), "sample", &v) == CT_OK);
    CHECK(v && v->type == CT_JSON_OBJECT && v->len == 5);
    const char *s = ct_json_get_str(v, "q\"b\\");
    CHECK(s && strcmp(s, "a\tb\nc\x01\x7f\xc3\xa9") == 0);
    const ct_json_value *nums = ct_json_get_type(v, "nums", CT_JSON_ARRAY);
    CHECK(nums && nums->len == 6);
    if (nums && nums->len == 6) {
        CHECK(nums->items[0]->num == 0.1);
        CHECK((float)nums->items[2]->num == 0.99f);
        CHECK((float)nums->items[3]->num == 1e-7f);
        CHECK(nums->items[4]->num == -42);
        CHECK(nums->items[5]->type == CT_JSON_NULL);
    }
    CHECK(ct_json_get(v, "empty") && ct_json_get(v, "empty")->len == 0);
    CHECK(ct_json_get(v, "t")->type == CT_JSON_BOOL && ct_json_get(v, "t")->num == 1);
    CHECK(ct_json_get(v, "missing") == NULL);
    ct_json_value_free(v);
    free(text);

    const char *u = "[\"\\u00e9\\ud83d\\ude00\\/\", NaN, -1.5e3, [[]]]";
    CHECK(ct_json_parse(u, strlen(u), "u", &v) == CT_OK);
    CHECK(v && v->len == 4 && strcmp(v->items[0]->str, "\xc3\xa9\xf0\x9f\x98\x80/") == 0);
    CHECK(v && isnan(v->items[1]->num) && v->items[2]->num == -1500);
    ct_json_value_free(v);

    CHECK_FAILS(ct_json_parse("{\"a\": 1,}", 9, "doc.json", &v), CT_ERR_DATA, "doc.json: offset 8", "key");
    CHECK_FAILS(ct_json_parse("[1 2]", 5, "d", &v), CT_ERR_DATA, "offset 3", "',' or ']'");
    CHECK_FAILS(ct_json_parse("\"abc", 4, "d", &v), CT_ERR_DATA, "offset 0", "never closed");
    CHECK_FAILS(ct_json_parse("{} x", 4, "d", &v), CT_ERR_DATA, "offset 3", "end of the text");
    CHECK_FAILS(ct_json_parse("", 0, "d", &v), CT_ERR_DATA, "offset 0");
    char deep[600];
    memset(deep, '[', sizeof deep);
    CHECK_FAILS(ct_json_parse(deep, sizeof deep, "d", &v), CT_ERR_DATA, "deeper than 256");
}

int main(void)
{
    test_writer();
    test_reader();
    return ct_test_report("test_json");
}
