/* Parser for call-like config values: name or name(args). */
#include "spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p)) p++;
    return p;
}

static int read_ident(const char **pp, char *buf, size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    while (*p && (isalnum((unsigned char)*p) || *p == '_')) {
        if (n + 1 >= cap) return 0;
        buf[n++] = *p++;
    }
    buf[n] = 0;
    *pp = p;
    return n > 0;
}

static int known_key(const char *const *allowed, const char *key)
{
    for (int i = 0; allowed && allowed[i]; i++)
        if (strcmp(allowed[i], key) == 0) return 1;
    return 0;
}

static ct_status parse_arg(const char **pp, const char *text, const char *const *allowed, ct_spec *s)
{
    const char *p = skip_ws(*pp);
    char key[24] = "";
    const char *save = p;
    if (read_ident(&p, key, sizeof key) && *skip_ws(p) == '=') {
        p = skip_ws(p) + 1;
    } else {
        p = save;
        if (!allowed || !allowed[s->n_args] )
            return CT_FAIL(CT_ERR_CONFIG, "'%s': too many arguments", text);
        strcpy(key, allowed[s->n_args]);
    }
    if (!known_key(allowed, key))
        return CT_FAIL(CT_ERR_CONFIG, "'%s': unknown argument '%s'", text, key);
    for (int i = 0; i < s->n_args; i++)
        if (strcmp(s->keys[i], key) == 0)
            return CT_FAIL(CT_ERR_CONFIG, "'%s': argument '%s' given twice", text, key);
    if (s->n_args >= CT_SPEC_MAX_ARGS) return CT_FAIL(CT_ERR_CONFIG, "'%s': too many arguments", text);
    p = skip_ws(p);
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || v != v)
        return CT_FAIL(CT_ERR_CONFIG, "'%s': argument '%s' is not a number", text, key);
    strcpy(s->keys[s->n_args], key);
    s->vals[s->n_args++] = v;
    *pp = skip_ws(end);
    return CT_OK;
}

ct_status ct_spec_parse(const char *text, const char *const *allowed, ct_spec *out)
{
    memset(out, 0, sizeof *out);
    const char *p = skip_ws(text);
    if (!read_ident(&p, out->name, sizeof out->name))
        return CT_FAIL(CT_ERR_CONFIG, "'%s': expected a name such as 'l2' or 'he_normal'", text);
    p = skip_ws(p);
    if (*p == 0) return CT_OK;
    if (*p != '(') return CT_FAIL(CT_ERR_CONFIG, "'%s': expected '(' or the end after '%s'", text, out->name);
    p = skip_ws(p + 1);
    if (*p == ')') {
        p++;
    } else {
        for (;;) {
            CT_TRY(parse_arg(&p, text, allowed, out));
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == ')') {
                p++;
                break;
            }
            return CT_FAIL(CT_ERR_CONFIG, "'%s': expected ',' or ')'", text);
        }
    }
    if (*skip_ws(p)) return CT_FAIL(CT_ERR_CONFIG, "'%s': unexpected text after ')'", text);
    return CT_OK;
}

double ct_spec_get(const ct_spec *s, const char *key, double dflt)
{
    for (int i = 0; i < s->n_args; i++)
        if (strcmp(s->keys[i], key) == 0) return s->vals[i];
    return dflt;
}
