/* test_api_spec.c - every route the manager serves is documented in
 * docs/api/openapi.yaml with the same role, and every documented /api/v1/
 * route is served.
 *
 * The spec is read line by line: a path is a line "  /api/v1/...:" at
 * indent 2 (other paths belong to the agent and are skipped), a method a line
 * "    get:" (etc.) at indent 4 below it, and its role the line
 * "      x-strata-role: <public|viewer|operator|administrator>" inside it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/api.h"
#include "util/fileutil.h"
#include "util/mem.h"

struct spec_route {
    char method[8];
    char path[128];
    char role[32];
    bool served;
};

static struct spec_route spec[256];
static size_t n_spec;

static void load_spec(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    assert_non_null(src);
    AUTOFREE char *path = xasprintf("%s/docs/api/openapi.yaml", src);
    AUTOFREE char *text = file_read_all(path, 4 << 20, NULL, NULL);
    assert_non_null(text);
    char cur[128] = "";
    struct spec_route *last = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "  /", 3)) {
            char *colon = strrchr(line, ':');
            assert_non_null(colon);
            size_t n = (size_t) (colon - line - 2);
            assert_true(n < sizeof cur);
            memcpy(cur, line + 2, n);
            cur[n] = '\0';
            if (strncmp(cur, "/api/v1/", 8) != 0)
                cur[0] = '\0';
            last = NULL;
        } else if (line[0] != ' ' && line[0] != '#') {
            cur[0] = '\0';   /* left the paths section */
            last = NULL;
        } else if (cur[0] && !strncmp(line, "    ", 4) && line[4] != ' ') {
            static const char *const methods[] = { "get", "post", "put", "delete", "patch" };
            last = NULL;
            for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
                size_t ml = strlen(methods[i]);
                if (!strncmp(line + 4, methods[i], ml) && line[4 + ml] == ':') {
                    assert_true(n_spec < ARRAY_SIZE(spec));
                    last = &spec[n_spec++];
                    for (size_t k = 0; k <= ml; k++)
                        last->method[k] = (char) toupper((unsigned char) methods[i][k]);
                    snprintf(last->path, sizeof last->path, "%s", cur);
                }
            }
        } else if (last && !strncmp(line, "      x-strata-role: ", 21)) {
            snprintf(last->role, sizeof last->role, "%s", line + 21);
        }
    }
}

static void test_routes_documented(void **state)
{
    (void) state;
    load_spec();
    assert_true(n_spec >= 30);
    size_t served = 0;
    for (const struct api_route *r = manager_api_table(); r->method; r++) {
        bool found = false;
        for (size_t i = 0; i < n_spec; i++)
            if (!strcmp(spec[i].method, r->method) && !strcmp(spec[i].path, r->pattern)) {
                spec[i].served = true;
                found = true;
                if (strcmp(spec[i].role, api_access_to_string(r->access)) != 0)
                    fail_msg("%s %s: the spec says role '%s', the server '%s'", r->method,
                             r->pattern, spec[i].role, api_access_to_string(r->access));
            }
        if (!found)
            fail_msg("route %s %s is not in docs/api/openapi.yaml", r->method, r->pattern);
        served++;
    }
    for (size_t i = 0; i < n_spec; i++)
        if (!spec[i].served)
            fail_msg("docs/api/openapi.yaml documents %s %s, which the manager does not serve",
                     spec[i].method, spec[i].path);
    assert_int_equal(served, n_spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
