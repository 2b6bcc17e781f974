/* json_util.h - jansson helpers used by parsers and the REST layers.
 *
 * Field paths: parsers name the offending value with a JSON path built by
 * json_path_join("disks[1]", "path") -> "disks[1].path". */
#ifndef STRATA_JSON_UTIL_H
#define STRATA_JSON_UTIL_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

static inline void autojson_impl(json_t **j) { json_decref(*j); }
#define AUTOJSON __attribute__((cleanup(autojson_impl)))

/* Returns a new string "<prefix>.<key>" (or "<key>" when prefix is empty/NULL). */
char *json_path_join(const char *prefix, const char *key);
/* Returns a new string "<prefix>[<index>]". */
char *json_path_index(const char *prefix, size_t index);

/* Fails with ERR_INVALID_ARG naming the first key of 'obj' that is not in the
 * NULL-terminated 'allowed' list. */
int json_check_keys(const json_t *obj, const char *const *allowed, const char *prefix,
                    struct error **errp);

/* Typed getters: a missing key leaves '*out' untouched and returns 0 unless
 * 'required'; a present key of the wrong type or out of range is an error
 * naming the field. */
int json_get_string(const json_t *obj, const char *key, const char *prefix, bool required,
                    const char **out, struct error **errp);
int json_get_bool(const json_t *obj, const char *key, const char *prefix, bool required,
                  bool *out, struct error **errp);
int json_get_uint(const json_t *obj, const char *key, const char *prefix, bool required,
                  unsigned long long min, unsigned long long max, unsigned long long *out,
                  struct error **errp);

/* Replaces, in place, every byte of 'buf' (length 'len') that is not part of
 * a well-formed UTF-8 sequence (overlong forms, surrogates and code points
 * above U+10FFFF included) with '?', so that the text can go into a JSON
 * string; the length does not change (byte offsets stay valid).  Returns
 * the number of bytes replaced. */
size_t utf8_sanitize(char *buf, size_t len);

/* Returns a new compact string of 'j' (sorted keys); caller frees. */
char *json_to_string(const json_t *j);
/* Parses 'text' (at most 'max_depth'-deep by jansson's own limit); on failure an
 * ERR_INVALID_ARG with line/column. Returns a new reference. */
json_t *json_from_string(const char *text, size_t len, struct error **errp);

#endif
