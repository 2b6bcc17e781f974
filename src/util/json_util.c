/* json_util.c - see json_util.h. */
#include "util/json_util.h"

#include <string.h>

#include "util/mem.h"

char *json_path_join(const char *prefix, const char *key)
{
    if (!prefix || !*prefix)
        return xstrdup(key);
    return xasprintf("%s.%s", prefix, key);
}

char *json_path_index(const char *prefix, size_t index)
{
    return xasprintf("%s[%zu]", prefix ? prefix : "", index);
}

int json_check_keys(const json_t *obj, const char *const *allowed, const char *prefix,
                    struct error **errp)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, key)) {
                ok = true;
                break;
            }
        if (!ok) {
            AUTOFREE char *f = json_path_join(prefix, key);
            return error_set_field(errp, ERR_INVALID_ARG, f, "unknown field '%s'", f);
        }
    }
    return 0;
}

int json_get_string(const json_t *obj, const char *key, const char *prefix, bool required,
                    const char **out, struct error **errp)
{
    json_t *v = json_object_get(obj, key);
    AUTOFREE char *f = json_path_join(prefix, key);
    if (!v || json_is_null(v)) {
        if (required)
            return error_set_field(errp, ERR_INVALID_ARG, f, "missing field '%s'", f);
        return 0;
    }
    if (!json_is_string(v))
        return error_set_field(errp, ERR_INVALID_ARG, f, "field '%s' must be a string", f);
    *out = json_string_value(v);
    return 0;
}

int json_get_bool(const json_t *obj, const char *key, const char *prefix, bool required,
                  bool *out, struct error **errp)
{
    json_t *v = json_object_get(obj, key);
    AUTOFREE char *f = json_path_join(prefix, key);
    if (!v || json_is_null(v)) {
        if (required)
            return error_set_field(errp, ERR_INVALID_ARG, f, "missing field '%s'", f);
        return 0;
    }
    if (!json_is_boolean(v))
        return error_set_field(errp, ERR_INVALID_ARG, f, "field '%s' must be true or false", f);
    *out = json_is_true(v);
    return 0;
}

int json_get_uint(const json_t *obj, const char *key, const char *prefix, bool required,
                  unsigned long long min, unsigned long long max, unsigned long long *out,
                  struct error **errp)
{
    json_t *v = json_object_get(obj, key);
    AUTOFREE char *f = json_path_join(prefix, key);
    if (!v || json_is_null(v)) {
        if (required)
            return error_set_field(errp, ERR_INVALID_ARG, f, "missing field '%s'", f);
        return 0;
    }
    if (!json_is_integer(v))
        return error_set_field(errp, ERR_INVALID_ARG, f, "field '%s' must be an integer", f);
    json_int_t i = json_integer_value(v);
    if (i < 0 || (unsigned long long) i < min || (unsigned long long) i > max)
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "field '%s' is %lld, must be between %llu and %llu", f,
                               (long long) i, min, max);
    *out = (unsigned long long) i;
    return 0;
}

char *json_to_string(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

json_t *json_from_string(const char *text, size_t len, struct error **errp)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return error_set(errp, ERR_INVALID_ARG, "malformed JSON at line %d column %d: %s",
                         je.line, je.column, je.text), NULL;
    return j;
}

size_t utf8_sanitize(char *buf, size_t len)
{
    unsigned char *p = (unsigned char *) buf;
    size_t i = 0, bad = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4, min = 0x10000, cp = c & 0x07;
        } else {
            p[i++] = '?';
            bad++;
            continue;
        }
        bool ok = i + n <= len;
        for (size_t k = 1; ok && k < n; k++) {
            ok = (p[i + k] & 0xc0) == 0x80;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (ok && cp >= min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff)) {
            i += n;
            continue;
        }
        p[i++] = '?';       /* only the lead byte: what follows is looked at again */
        bad++;
    }
    return bad;
}
