/* test_qemu_util.c - unit tests of the QEMU layer's helpers and refusals:
 * qemu_escape_opt(), the runtime checks of qemu_argv_build(), and how values
 * with commas reach the argv (escaped in option strings, verbatim in JSON).
 * The full argv of each configuration is pinned by the golden tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "qemu/qemu_argv.h"
#include "qemu/qemu_hotplug.h"
#include "util/json_util.h"
#include "util/mem.h"

static const char *const roots[] = { "/var/lib/strata/images", NULL };
static const struct vm_def_limits limits = { .allowed_roots = roots };
static const struct host_caps caps = {
    .accel = ACCEL_TCG, .qemu_binary = "/usr/bin/qemu-system-x86_64", .sandbox = false,
};

static struct vm_def *def_new(const char *text)
{
    AUTOJSON json_t *j = json_from_string(text, strlen(text), NULL);
    assert_non_null(j);
    AUTOERROR struct error *err = NULL;
    struct vm_def *d = vm_def_from_json(j, &limits, &err);
    if (!d)
        fail_msg("%s", err->message);
    return d;
}

static void test_escape(void **state)
{
    (void) state;
    static const char *const cases[][2] = {
        { "", "" }, { "abc", "abc" }, { "a,b", "a,,b" }, { ",", ",," }, { ",,", ",,,," },
        { "/run/a,b/c,", "/run/a,,b/c,," }, { "x=y", "x=y" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        AUTOFREE char *e = qemu_escape_opt(cases[i][0]);
        assert_string_equal(e, cases[i][1]);
    }
}

static bool argv_has(char **argv, const char *opt, const char *value)
{
    for (char **a = argv; *a && a[1]; a++)
        if (!strcmp(*a, opt) && !strcmp(a[1], value))
            return true;
    return false;
}

static void test_runtime_checks(void **state)
{
    (void) state;
    AUTOVMDEF struct vm_def *d = def_new("{\"name\":\"a\",\"memory\":128}");
    struct qemu_runtime rt = { .incoming_fd = -1 };
    AUTOERROR struct error *err = NULL;
    assert_null(qemu_argv_build(d, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.qmp_socket");
    error_free(steal_pointer(&err));

    rt.qmp_socket = "/run/x/qmp.sock";
    assert_null(qemu_argv_build(d, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.qga_socket");
    error_free(steal_pointer(&err));

    rt.qga_socket = "/run/x/../qga.sock";
    assert_null(qemu_argv_build(d, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.qga_socket");
    assert_non_null(strstr(err->message, "not a clean"));
    error_free(steal_pointer(&err));

    rt.qga_socket = "/run/x/qga.sock";
    assert_null(qemu_argv_build(d, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.serial_socket");
    error_free(steal_pointer(&err));

    /* Commas in runtime paths are escaped in option strings. */
    rt.serial_socket = "/run/x,y/serial.sock";
    rt.serial_log = "/var/log/x,y.log";
    rt.qmp_socket = "/run/x,y/qmp.sock";
    AUTOSTRV char **argv = qemu_argv_build(d, &caps, &rt, &err);
    assert_non_null(argv);
    assert_true(argv_has(argv, "-chardev",
                         "socket,id=monitor,path=/run/x,,y/qmp.sock,server=on,wait=off"));
    assert_true(argv_has(argv, "-chardev",
                         "socket,id=serial0,path=/run/x,,y/serial.sock,server=on,wait=off,"
                         "logfile=/var/log/x,,y.log,logappend=on"));
    assert_true(argv_has(argv, "-cpu", "max"));
    assert_false(argv_has(argv, "-sandbox",
                          "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"));
    for (char **a = argv; *a; a++)
        assert_string_not_equal(*a, "-incoming");

    /* VNC needs its socket or a display in range. */
    AUTOVMDEF struct vm_def *v = def_new("{\"name\":\"a\",\"memory\":128,\"serial\":false,"
                                         "\"guest_agent\":false,\"vnc\":{\"listen\":\"unix\"}}");
    assert_null(qemu_argv_build(v, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.vnc_socket");
    error_free(steal_pointer(&err));
    AUTOVMDEF struct vm_def *l = def_new("{\"name\":\"a\",\"memory\":128,"
                                         "\"vnc\":{\"listen\":\"loopback\"}}");
    rt.vnc_display = -1;
    assert_null(qemu_argv_build(l, &caps, &rt, &err));
    assert_string_equal(err->field, "runtime.vnc_display");
    error_free(steal_pointer(&err));

    struct host_caps nobin = caps;
    nobin.qemu_binary = NULL;
    rt.vnc_display = 3;
    assert_null(qemu_argv_build(l, &nobin, &rt, &err));
}

static void test_hotplug_errors(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    AUTOVMDEF struct vm_def *q = def_new("{\"name\":\"a\",\"memory\":128}");
    AUTOVMDEF struct vm_def *p = def_new("{\"name\":\"a\",\"memory\":128,\"machine\":\"pc\"}");
    AUTOFREE char *b = qemu_hotplug_bus(q, QEMU_HOTPLUG_PORTS - 1, NULL);
    assert_string_equal(b, "hotplug7");
    assert_null(qemu_hotplug_bus(q, QEMU_HOTPLUG_PORTS, &err));
    assert_int_equal(err->code, ERR_NO_SPACE);
    error_free(steal_pointer(&err));
    AUTOFREE char *pb = qemu_hotplug_bus(p, 100, NULL);
    assert_string_equal(pb, "pci.0");
    assert_null(qemu_hotplug_dimm_backend_args(0, 0, &err));
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(steal_pointer(&err));
    AUTOJSON json_t *entry = json_pack("{s:s, s:{s:s}}", "type", "x", "props", "core-id", "0");
    assert_null(qemu_hotplug_vcpu_args(entry, 1, &err));
    assert_int_equal(err->code, ERR_QEMU);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_runtime_checks),
        cmocka_unit_test(test_hotplug_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
