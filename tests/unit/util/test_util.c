/* test_util.c - unit tests of the util library: errors, paths, JSON helpers,
 * UUIDs, atomic files and the command runner (real runs and the dry-run hook). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/command.h"
#include "util/error.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"
#include "util/uuid.h"

static void test_error_once(void **state)
{
    (void) state;
    struct error *err = NULL;
    assert_int_equal(error_set(&err, ERR_NOT_FOUND, "VM '%s' not found", "web1"), -1);
    /* A second error does not overwrite the first: reported once, where detected. */
    error_set(&err, ERR_INTERNAL, "later");
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_prefix(&err, "starting VM '%s'", "web1");
    assert_string_equal(err->message, "starting VM 'web1': VM 'web1' not found");
    assert_int_equal(err_code_http_status(err->code), 404);
    assert_int_equal(err_code_exit_code(err->code), 3);
    json_t *body = error_to_json(err);
    struct error *back = error_from_json(body);
    assert_non_null(back);
    assert_int_equal(back->code, ERR_NOT_FOUND);
    assert_string_equal(back->message, err->message);
    json_decref(body);
    error_free(back);
    error_free(err);
    error_set(NULL, ERR_INTERNAL, "ignored");   /* errp may be NULL */
}

static void test_error_table(void **state)
{
    (void) state;
    for (int c = 0; c < ERR__COUNT; c++) {
        const char *name = err_code_to_string((enum err_code) c);
        assert_int_equal(err_code_from_string(name), c);
        int http = err_code_http_status((enum err_code) c);
        assert_true(http >= 400 && http < 600);
    }
    assert_int_equal(err_code_from_string("nope"), -1);
}

static void test_error_field(void **state)
{
    (void) state;
    struct error *err = NULL;
    error_set_field(&err, ERR_INVALID_ARG, "disks[1].path", "path '%s' is outside", "/etc");
    json_t *body = error_to_json(err);
    assert_string_equal(json_string_value(json_object_get(json_object_get(body, "error"), "field")),
                        "disks[1].path");
    json_decref(body);
    error_free(err);
}

static void test_paths(void **state)
{
    (void) state;
    assert_true(path_is_clean("/var/lib/strata/a.qcow2"));
    assert_true(path_is_clean("/"));
    assert_false(path_is_clean("var/lib"));
    assert_false(path_is_clean("/var/../etc"));
    assert_false(path_is_clean("/var/./x"));
    assert_false(path_is_clean("/var//x"));
    assert_false(path_is_clean("/var/x/"));
    assert_false(path_is_clean("/var/x\n"));
    assert_false(path_is_clean(""));
    assert_false(path_is_clean(NULL));
    assert_true(path_is_clean("/var/..x"));   /* a name, not a parent reference */
    assert_true(path_is_under("/var/lib/strata/a", "/var/lib/strata"));
    assert_false(path_is_under("/var/lib/strata", "/var/lib/strata"));
    assert_false(path_is_under("/var/lib/strataX/a", "/var/lib/strata"));
    assert_false(path_is_under("/var/lib/strata/../a", "/var/lib/strata"));
    assert_true(path_is_under("/a", "/"));
}

static void test_json_helpers(void **state)
{
    (void) state;
    json_t *o = json_pack("{s:s, s:i, s:b, s:i}", "name", "x", "n", 5, "flag", 1, "neg", -1);
    static const char *const allowed[] = { "name", "n", "flag", "neg", NULL };
    static const char *const fewer[] = { "name", NULL };
    struct error *err = NULL;
    assert_int_equal(json_check_keys(o, allowed, "", &err), 0);
    assert_int_equal(json_check_keys(o, fewer, "vm", &err), -1);
    assert_non_null(strstr(err->field, "vm."));
    error_free(err);
    err = NULL;
    unsigned long long v = 0;
    assert_int_equal(json_get_uint(o, "n", "", true, 1, 10, &v, &err), 0);
    assert_int_equal(v, 5);
    assert_int_equal(json_get_uint(o, "n", "", true, 6, 10, &v, &err), -1);
    assert_string_equal(err->field, "n");
    error_free(err);
    err = NULL;
    assert_int_equal(json_get_uint(o, "neg", "mem", true, 0, 10, &v, &err), -1);
    assert_string_equal(err->field, "mem.neg");
    error_free(err);
    err = NULL;
    const char *s = NULL;
    assert_int_equal(json_get_string(o, "n", "", true, &s, &err), -1);
    error_free(err);
    err = NULL;
    assert_int_equal(json_get_string(o, "missing", "", false, &s, &err), 0);
    assert_null(s);
    json_decref(o);

    json_t *j = json_from_string("{\"a\": 1, \"a\": 2}", 16, &err);
    assert_null(j);   /* duplicate keys refused */
    error_free(err);
    err = NULL;
    j = json_from_string("{\"a\": ", 6, &err);
    assert_null(j);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    AUTOFREE char *p = json_path_index("disks", 3);
    assert_string_equal(p, "disks[3]");
}

static void test_uuid(void **state)
{
    (void) state;
    char a[UUID_STRLEN + 1], b[UUID_STRLEN + 1];
    uuid_generate(a);
    uuid_generate(b);
    assert_true(uuid_is_valid(a));
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_false(uuid_is_valid("0000"));
    assert_false(uuid_is_valid("zzzzzzzz-0000-0000-0000-000000000000"));
    assert_true(uuid_is_valid("12345678-90ab-cdef-1234-567890ABCDEF"));
}

static void test_file_atomic(void **state)
{
    (void) state;
    char dir[] = "/tmp/strata-util-XXXXXX";
    assert_non_null(mkdtemp(dir));
    AUTOFREE char *sub = xasprintf("%s/a/b/c", dir);
    assert_int_equal(mkdir_p(sub, 0700, NULL), 0);
    AUTOFREE char *f = xasprintf("%s/file.json", sub);
    assert_int_equal(file_write_atomic(f, "hello", 5, 0600, NULL), 0);
    assert_int_equal(file_write_atomic(f, "world!", 6, 0600, NULL), 0);
    size_t len = 0;
    AUTOFREE char *text = file_read_all(f, 100, &len, NULL);
    assert_string_equal(text, "world!");
    assert_int_equal(len, 6);
    struct error *err = NULL;
    assert_null(file_read_all(f, 3, NULL, &err));
    assert_int_equal(err->code, ERR_TOO_LARGE);
    error_free(err);
    err = NULL;
    AUTOFREE char *tmp = xasprintf("%s.tmp", f);
    assert_false(file_exists(tmp));
    assert_int_equal(rm_rf(dir, NULL), 0);
    assert_false(file_exists(dir));
    assert_null(file_read_all(f, 100, NULL, &err));
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_free(err);
}

static void test_command_run(void **state)
{
    (void) state;
    AUTOCOMMAND struct command *c = command_new("sh");
    /* An argument with shell syntax reaches the program untouched. */
    command_add_args(c, "-c", "printf '%s|' \"$@\"; echo err >&2; echo $LC_ALL", "x",
                     "a b", "$(id)", ";rm -rf /", NULL);
    char *out = NULL, *err_out = NULL;
    assert_int_equal(command_run(c, NULL, &out, &err_out, NULL), 0);
    assert_string_equal(out, "a b|$(id)|;rm -rf /|C\n");
    assert_string_equal(err_out, "err\n");
    free(out);
    free(err_out);

    AUTOCOMMAND struct command *f = command_new("sh");
    command_add_args(f, "-c", "echo 'bad thing' >&2; exit 3", NULL);
    struct error *err = NULL;
    assert_int_equal(command_run(f, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err->message, "exit status 3"));
    assert_non_null(strstr(err->message, "bad thing"));
    error_free(err);
    int status = 0;
    assert_int_equal(command_run(f, &status, NULL, NULL, NULL), 0);
    assert_int_equal(status, 3);

    AUTOCOMMAND struct command *m = command_new("/nonexistent/program");
    err = NULL;
    assert_int_equal(command_run(m, NULL, NULL, NULL, &err), -1);
    assert_non_null(strstr(err->message, "cannot execute"));
    error_free(err);

    AUTOCOMMAND struct command *t = command_new("sleep");
    command_add_arg(t, "5");
    command_set_timeout(t, 100);
    err = NULL;
    assert_int_equal(command_run(t, NULL, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_TIMEOUT);
    error_free(err);
}

static void test_command_fds(void **state)
{
    (void) state;
    /* Only kept fds reach the child. */
    int keep = open("/dev/null", O_RDONLY);
    int lost = open("/dev/null", O_RDONLY);
    AUTOCOMMAND struct command *c = command_new("sh");
    AUTOFREE char *script = xasprintf("test -e /proc/self/fd/%d && ! test -e /proc/self/fd/%d",
                                      keep, lost);
    command_add_args(c, "-c", script, NULL);
    command_keep_fd(c, keep);
    assert_int_equal(command_run(c, NULL, NULL, NULL, NULL), 0);
    close(keep);
    close(lost);
}

static int recorded;
static int dry(char *const *argv, char **out, void *opaque)
{
    (void) opaque;
    recorded++;
    assert_string_equal(argv[0], "qemu-img");
    assert_string_equal(argv[1], "info");
    *out = xstrdup("{}");
    return 0;
}

static void test_command_dry_run(void **state)
{
    (void) state;
    command_set_dry_run(dry, NULL);
    AUTOCOMMAND struct command *c = command_new("qemu-img");
    command_add_args(c, "info", "-f", "qcow2", "/x", NULL);
    char *out = NULL;
    assert_int_equal(command_run(c, NULL, &out, NULL, NULL), 0);
    assert_string_equal(out, "{}");
    free(out);
    assert_int_equal(recorded, 1);
    AUTOFREE char *s = command_to_string(c);
    assert_string_equal(s, "qemu-img info -f qcow2 /x");
    command_set_dry_run(NULL, NULL);
}

/* Console bytes into JSON: invalid UTF-8 becomes '?', valid text stays. */
static void test_utf8_sanitize(void **state)
{
    (void) state;
    static const struct { const char *in, *out; size_t bad; } cases[] = {
        { "plain ascii", "plain ascii", 0 },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0 },
        { "a\xff" "b", "a?b", 1 },
        { "\xc3", "?", 1 },                          /* truncated at the end */
        { "\xc3(", "?(", 1 },                        /* bad continuation */
        { "\xc0\xaf", "??", 2 },                     /* overlong '/' */
        { "\xed\xa0\x80", "???", 3 },                /* surrogate U+D800 */
        { "\xf4\x90\x80\x80", "????", 4 },           /* above U+10FFFF */
        { "\x80\x80ok", "??ok", 2 },                 /* stray continuations */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        size_t n = strlen(cases[i].in);
        memcpy(buf, cases[i].in, n + 1);
        assert_int_equal(utf8_sanitize(buf, n), cases[i].bad);
        assert_string_equal(buf, cases[i].out);
        json_t *j = json_stringn(buf, n);       /* jansson accepts it now */
        assert_non_null(j);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_once),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_error_field),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_json_helpers),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_file_atomic),
        cmocka_unit_test(test_command_run),
        cmocka_unit_test(test_command_fds),
        cmocka_unit_test(test_command_dry_run),
        cmocka_unit_test(test_utf8_sanitize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
