/* test_api_spec.c - every route the agent serves is documented in
 * docs/api/openapi.yaml, and every documented route is served.
 *
 * The spec is read line by line: a path is a line "  /v1/...:" at indent 2
 * (paths of the manager, "/api/v1/...", are checked by tests/unit/manager),
 * a method a line "    get:" (etc.) at indent 4 below it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "util/fileutil.h"
#include "util/mem.h"

struct spec_route {
    char method[8];
    char path[128];
    bool served;
};

static struct spec_route spec[256];
static size_t n_spec;

static void load_spec(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    assert_non_null(src);
    AUTOFREE char *path = xasprintf("%s/docs/api/openapi.yaml", src);
    AUTOFREE char *text = file_read_all(path, 1 << 20, NULL, NULL);
    assert_non_null(text);
    char cur[128] = "";
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "  /", 3)) {
            char *colon = strrchr(line, ':');
            assert_non_null(colon);
            size_t n = (size_t) (colon - line - 2);
            assert_true(n < sizeof cur);
            memcpy(cur, line + 2, n);
            cur[n] = '\0';
            if (strncmp(cur, "/v1/", 4) != 0)
                cur[0] = '\0';     /* another server's path (the manager's /api/v1/) */
        } else if (line[0] != ' ' && line[0] != '#') {
            cur[0] = '\0';   /* left the paths section */
        } else if (cur[0] && !strncmp(line, "    ", 4) && line[4] != ' ') {
            static const char *const methods[] = { "get", "post", "put", "delete", "patch" };
            for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
                size_t ml = strlen(methods[i]);
                if (!strncmp(line + 4, methods[i], ml) && line[4 + ml] == ':') {
                    struct spec_route *r = &spec[n_spec++];
                    for (size_t k = 0; k <= ml; k++)
                        r->method[k] = (char) toupper((unsigned char) methods[i][k]);
                    snprintf(r->path, sizeof r->path, "%s", cur);
                }
            }
        }
    }
}

static void test_routes_documented(void **state)
{
    (void) state;
    load_spec();
    assert_true(n_spec > 10);
    size_t served = 0;
    for (const struct http_route *r = agent_api_routes(); r->method; r++) {
        bool found = false;
        for (size_t i = 0; i < n_spec; i++)
            if (!strcmp(spec[i].method, r->method) && !strcmp(spec[i].path, r->pattern)) {
                spec[i].served = true;
                found = true;
            }
        if (!found)
            fail_msg("route %s %s is not in docs/api/openapi.yaml", r->method, r->pattern);
        served++;
    }
    for (size_t i = 0; i < n_spec; i++)
        if (!spec[i].served)
            fail_msg("docs/api/openapi.yaml documents %s %s, which the agent does not serve",
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
