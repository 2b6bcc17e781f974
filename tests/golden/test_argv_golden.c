/* test_argv_golden.c - golden tests of the QEMU argv builder.
 *
 * Every tests/data/argv/<case>.json holds
 *   {"definition": {...VM definition...},
 *    "caps": {"accel": "kvm"|"tcg", "qemu_binary": "...", "qemu_version": N,
 *             "sandbox": bool},                           (optional)
 *    "runtime": {"qmp_socket": "...", ..., "incoming_fd": N,
 *                "start_paused": bool}}                   (optional)
 * and <case>.args the expected argv, one argument per line.  Missing caps and
 * runtime fields take the defaults below (KVM with seccomp, runtime files
 * under /run/strata/vms/<name>/).  The definition is parsed with the allowed
 * roots /var/lib/strata/{images,isos,kernels}.
 *
 * REGENERATE=1 rewrites the .args files.  A .json without its .args, an .args
 * without its .json, or any other file in the directory fails the suite, so
 * no case is silently skipped.  STRATA_SRCDIR (set by meson) locates the
 * source tree. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_argv.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

static const char *const roots[] = {
    "/var/lib/strata/images", "/var/lib/strata/isos", "/var/lib/strata/kernels", NULL
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

/* Reads an optional runtime path override. */
static int rt_string(const json_t *rt, const char *key, const char **out, struct error **errp)
{
    return json_get_string(rt, key, "runtime", false, out, errp);
}

/* Builds the argv of one case as text, one argument per line. */
static char *build_case(const char *json_path, struct error **errp)
{
    AUTOFREE char *text = file_read_all(json_path, 1 << 20, NULL, errp);
    if (!text)
        return NULL;
    AUTOJSON json_t *j = json_from_string(text, strlen(text), errp);
    if (!j)
        return NULL;
    static const char *const keys[] = { "definition", "caps", "runtime", NULL };
    static const char *const cap_keys[] = {
        "accel", "qemu_binary", "qemu_version", "sandbox", NULL
    };
    static const char *const rt_keys[] = {
        "qmp_socket", "qga_socket", "serial_socket", "serial_log", "vnc_socket",
        "vnc_display", "pidfile", "incoming_fd", "start_paused", NULL
    };
    if (json_check_keys(j, keys, NULL, errp) < 0)
        return NULL;
    struct vm_def_limits limits = { .allowed_roots = roots };
    AUTOVMDEF struct vm_def *def = vm_def_from_json(json_object_get(j, "definition"), &limits,
                                                    errp);
    if (!def)
        return NULL;

    struct host_caps caps = {
        .accel = ACCEL_KVM, .qemu_binary = "/usr/bin/qemu-system-x86_64",
        .qemu_version = 7002000, .sandbox = true,
    };
    json_t *c = json_object_get(j, "caps");
    if (c) {
        const char *accel = NULL;
        unsigned long long ver = caps.qemu_version;
        if (json_check_keys(c, cap_keys, "caps", errp) < 0 ||
            json_get_string(c, "accel", "caps", false, &accel, errp) < 0 ||
            json_get_string(c, "qemu_binary", "caps", false, &caps.qemu_binary, errp) < 0 ||
            json_get_uint(c, "qemu_version", "caps", false, 0, 99999999, &ver, errp) < 0 ||
            json_get_bool(c, "sandbox", "caps", false, &caps.sandbox, errp) < 0)
            return NULL;
        if (accel && strcmp(accel, "kvm") && strcmp(accel, "tcg"))
            return error_set(errp, ERR_INVALID_ARG, "caps.accel '%s' is not kvm or tcg", accel),
                   NULL;
        if (accel)
            caps.accel = !strcmp(accel, "kvm") ? ACCEL_KVM : ACCEL_TCG;
        caps.qemu_version = (unsigned) ver;
    }

    AUTOFREE char *dir = xasprintf("/run/strata/vms/%s", def->name);
    AUTOFREE char *qmp = xasprintf("%s/qmp.sock", dir);
    AUTOFREE char *qga = xasprintf("%s/qga.sock", dir);
    AUTOFREE char *serial = xasprintf("%s/serial.sock", dir);
    AUTOFREE char *serial_log = xasprintf("%s/serial.log", dir);
    AUTOFREE char *vnc = xasprintf("%s/vnc.sock", dir);
    AUTOFREE char *pid = xasprintf("%s/qemu.pid", dir);
    struct qemu_runtime rt = {
        .qmp_socket = qmp, .qga_socket = qga, .serial_socket = serial,
        .serial_log = serial_log, .vnc_socket = vnc, .vnc_display = 0, .pidfile = pid,
        .incoming_fd = -1, .start_paused = false,
    };
    json_t *r = json_object_get(j, "runtime");
    if (r) {
        unsigned long long display = 0, fd = 0;
        if (json_check_keys(r, rt_keys, "runtime", errp) < 0 ||
            rt_string(r, "qmp_socket", &rt.qmp_socket, errp) < 0 ||
            rt_string(r, "qga_socket", &rt.qga_socket, errp) < 0 ||
            rt_string(r, "serial_socket", &rt.serial_socket, errp) < 0 ||
            rt_string(r, "serial_log", &rt.serial_log, errp) < 0 ||
            rt_string(r, "vnc_socket", &rt.vnc_socket, errp) < 0 ||
            rt_string(r, "pidfile", &rt.pidfile, errp) < 0 ||
            json_get_bool(r, "start_paused", "runtime", false, &rt.start_paused, errp) < 0 ||
            json_get_uint(r, "vnc_display", "runtime", false, 0, 100000, &display, errp) < 0 ||
            json_get_uint(r, "incoming_fd", "runtime", false, 0, 1024, &fd, errp) < 0)
            return NULL;
        rt.vnc_display = (int) display;
        if (json_object_get(r, "incoming_fd"))
            rt.incoming_fd = (int) fd;
        if (json_is_null(json_object_get(r, "serial_log")))
            rt.serial_log = NULL;
        if (json_is_null(json_object_get(r, "pidfile")))
            rt.pidfile = NULL;
    }

    AUTOSTRV char **argv = qemu_argv_build(def, &caps, &rt, errp);
    if (!argv)
        return NULL;
    size_t len = 1;
    for (char **a = argv; *a; a++)
        len += strlen(*a) + 1;
    char *out = xmalloc(len), *o = out;
    for (char **a = argv; *a; a++) {
        if (strchr(*a, '\n')) {
            free(out);
            return error_set(errp, ERR_INTERNAL, "argument '%s' contains a newline", *a), NULL;
        }
        o = stpcpy(o, *a);
        *o++ = '\n';
    }
    *o = '\0';
    return out;
}

/* Reports the first differing line of 'want' and 'got'. */
static void report_diff(const char *name, const char *want, const char *got)
{
    int line = 1;
    for (;;) {
        size_t wl = strcspn(want, "\n"), gl = strcspn(got, "\n");
        if (wl != gl || strncmp(want, got, wl)) {
            fprintf(stderr, "FAIL %s: line %d differs\n  expected: %.*s\n  got:      %.*s\n",
                    name, line, (int) wl, want, (int) gl, got);
            return;
        }
        if (!want[wl] || !got[gl])
            break;
        want += wl + 1;
        got += gl + 1;
        line++;
    }
    fprintf(stderr, "FAIL %s: length differs at line %d\n", name, line);
}

/* TAP output, one line per case, so the runner counts cases. */
static int tap_n;
static void tap(bool ok, const char *what)
{
    printf("%sok %d - %s\n", ok ? "" : "not ", ++tap_n, what);
}

int main(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    bool regen = getenv("REGENERATE") && !strcmp(getenv("REGENERATE"), "1");
    if (!src) {
        fprintf(stderr, "STRATA_SRCDIR is not set\n");
        return 1;
    }
    AUTOFREE char *dir = xasprintf("%s/tests/data/argv", src);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = xrealloc(names, (n + 2) * sizeof(*names));
        names[n++] = xstrdup(de->d_name);
        names[n] = NULL;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);

    int failures = 0, cases = 0;
    for (size_t i = 0; i < n; i++) {
        const char *f = names[i];
        if (has_suffix(f, ".args")) {
            AUTOFREE char *stem = xstrndup(f, strlen(f) - 5);
            AUTOFREE char *jp = xasprintf("%s/%s.json", dir, stem);
            if (!file_exists(jp)) {
                fprintf(stderr, "FAIL %s: no %s.json beside it\n", f, stem);
                tap(false, f);
                failures++;
            }
            continue;
        }
        if (!has_suffix(f, ".json")) {
            fprintf(stderr, "FAIL %s: unexpected file in tests/data/argv\n", f);
            tap(false, f);
            failures++;
            continue;
        }
        cases++;
        AUTOFREE char *stem = xstrndup(f, strlen(f) - 5);
        AUTOFREE char *jp = xasprintf("%s/%s", dir, f);
        AUTOFREE char *ap = xasprintf("%s/%s.args", dir, stem);
        AUTOERROR struct error *err = NULL;
        AUTOFREE char *got = build_case(jp, &err);
        if (!got) {
            fprintf(stderr, "FAIL %s: %s%s%s\n", stem, err->message, err->field ? " field " : "",
                    err->field ? err->field : "");
            tap(false, stem);
            failures++;
            continue;
        }
        if (regen) {
            if (file_write_atomic(ap, got, strlen(got), 0644, &err) < 0) {
                fprintf(stderr, "FAIL %s: %s\n", stem, err->message);
                tap(false, stem);
                failures++;
            } else {
                printf("# regenerated %s.args\n", stem);
                tap(true, stem);
            }
            continue;
        }
        AUTOFREE char *want = file_read_all(ap, 1 << 20, NULL, &err);
        if (!want) {
            fprintf(stderr, "FAIL %s: no %s.args (run with REGENERATE=1): %s\n", stem, stem,
                    err->message);
            tap(false, stem);
            failures++;
            continue;
        }
        if (strcmp(want, got)) {
            report_diff(stem, want, got);
            tap(false, stem);
            failures++;
            continue;
        }
        tap(true, stem);
    }
    strv_free(names);
    if (cases == 0) {
        fprintf(stderr, "FAIL: no cases in %s\n", dir);
        tap(false, "no cases");
        failures++;
    }
    printf("# %d cases, %d failures\n1..%d\n", cases, failures, tap_n);
    return failures ? 1 : 0;
}
