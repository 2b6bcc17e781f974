/* test_host_facts.c - host facts against the fake trees of tests/data/host,
 * the accelerator decision in every case, the parsers, and one collection
 * on the real machine.
 *
 * Each fake tree <case>/ has a golden rendering <case>.json (GET /v1/host as
 * the agent would serve it, with QEMU answered by the command runner's
 * dry-run hook and /dev/kvm pointed at a path that does not exist, so the
 * output does not depend on the machine).  REGENERATE=1 rewrites the golden
 * files; a directory in tests/data/host that no test uses fails the suite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/host_facts.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/mem.h"

#define FAKE_QEMU "/opt/fake/bin/qemu-system-x86_64"
#define NO_KVM "/nonexistent/kvm"

static const char *const cases[] = { "pvm-single-node", "intel-2s-vmx", "amd-svm", "minimal" };
/* Data directories used by other test files of this suite. */
static const char *const other_data[] = { "procs" };

static char *data_path(const char *name)
{
    return xasprintf("%s/%s", HOST_TEST_DATA, name);
}

/* ---- fake QEMU through the dry-run hook -------------------------------- */

struct fake_qemu {
    const char *version_out;    /* stdout of --version */
    const char *sandbox_out;    /* stdout of -sandbox on,help */
    int version_status;
    int calls;
    char *argv_log;             /* "argv0 arg1 ...;..." */
};

static int fake_qemu_run(char *const *argv, char **out, void *opaque)
{
    struct fake_qemu *fq = opaque;
    fq->calls++;
    for (size_t i = 0; argv[i]; i++) {
        char *s = xasprintf("%s%s%s", fq->argv_log ? fq->argv_log : "", i ? " " : "", argv[i]);
        free(fq->argv_log);
        fq->argv_log = s;
    }
    char *s = xasprintf("%s;", fq->argv_log);
    free(fq->argv_log);
    fq->argv_log = s;
    if (argv[1] && strcmp(argv[1], "--version") == 0) {
        *out = xstrdup(fq->version_out);
        return fq->version_status;
    }
    *out = xstrdup(fq->sandbox_out);
    return 1;
}

static const char *const v8_out =
    "QEMU emulator version 8.2.1 (Debian 1:8.2.1+ds-2)\n"
    "Copyright (c) 2003-2023 Fabrice Bellard and the QEMU Project developers\n";
static const char *const sandbox_yes = "sandbox options:\n  elevateprivileges=<str>\n"
                                       "  enable=<bool (on/off)>\n";

static struct host_facts *collect_case(const char *name, struct fake_qemu *fq)
{
    AUTOFREE char *root = data_path(name);
    struct host_facts_opts opts = { .sysroot = root, .qemu_binary = FAKE_QEMU,
                                    .dev_kvm = NO_KVM };
    command_set_dry_run(fake_qemu_run, fq);
    AUTOERROR struct error *err = NULL;
    struct host_facts *f = host_facts_collect(&opts, &err);
    command_set_dry_run(NULL, NULL);
    if (!f)
        fail_msg("collecting '%s': %s", name, err->message);
    return f;
}

/* ---- golden renderings --------------------------------------------------- */

static void test_golden(void **state)
{
    (void) state;
    bool regen = getenv("REGENERATE") && strcmp(getenv("REGENERATE"), "1") == 0;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct fake_qemu fq = { .version_out = v8_out, .sandbox_out = sandbox_yes };
        struct host_facts *f = collect_case(cases[i], &fq);
        json_t *j = host_facts_to_json(f);
        AUTOFREE char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(j);
        host_facts_free(f);
        free(fq.argv_log);
        AUTOFREE char *name = xasprintf("%s.json", cases[i]);
        AUTOFREE char *path = data_path(name);
        AUTOFREE char *want_nl = xasprintf("%s\n", text);
        if (regen) {
            assert_int_equal(file_write_atomic(path, want_nl, strlen(want_nl), 0644, NULL), 0);
            continue;
        }
        AUTOFREE char *golden = file_read_all(path, 1 << 20, NULL, NULL);
        if (!golden)
            fail_msg("missing golden file '%s' (run with REGENERATE=1)", path);
        if (strcmp(golden, want_nl) != 0) {
            fprintf(stderr, "--- %s\n+++ actual\n%s", path, want_nl);
            fail_msg("'%s' differs from the actual rendering", path);
        }
    }
}

static void test_all_data_used(void **state)
{
    (void) state;
    DIR *d = opendir(HOST_TEST_DATA);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        bool used = false;
        char base[256];
        snprintf(base, sizeof base, "%s", e->d_name);
        char *dot = strrchr(base, '.');
        if (dot && strcmp(dot, ".json") == 0)
            *dot = '\0';
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
            used |= strcmp(base, cases[i]) == 0;
        for (size_t i = 0; i < ARRAY_SIZE(other_data); i++)
            used |= strcmp(base, other_data[i]) == 0;
        if (!used)
            fail_msg("tests/data/host/%s is used by no test", e->d_name);
    }
    closedir(d);
}

/* ---- each fake tree, field by field ------------------------------------- */

static void test_pvm_single_node(void **state)
{
    (void) state;
    struct fake_qemu fq = { .version_out = v8_out, .sandbox_out = sandbox_yes };
    struct host_facts *f = collect_case("pvm-single-node", &fq);
    assert_string_equal(f->hostname, "vm");
    assert_string_equal(f->kernel_release, "6.18.44-fc-v669");
    assert_string_equal(f->cpu_vendor, "AuthenticAMD");
    assert_string_equal(f->cpu_model_name, "AMD EPYC");
    assert_true(host_facts_has_flag(f->cpu_flags, "hypervisor"));
    assert_false(host_facts_has_flag(f->cpu_flags, "svm"));
    assert_int_equal(f->sockets, 1);
    assert_int_equal(f->cores_per_socket, 2);
    assert_int_equal(f->threads_per_core, 1);
    assert_int_equal(f->online_cpus, 2);
    assert_int_equal(f->mem_total, 24684084ull * 1024);
    assert_int_equal(f->mem_free, 24029460ull * 1024);
    assert_int_equal(f->mem_available, 24008848ull * 1024);
    assert_int_equal(f->n_numa_nodes, 1);
    assert_int_equal(f->numa_nodes[0].n_cpus, 2);
    assert_int_equal(f->numa_nodes[0].mem_total, 5073100ull * 1024);
    assert_int_equal(f->n_hugepages, 2);
    assert_int_equal(f->hugepages[0].page_size, 2ull << 20);
    assert_int_equal(f->hugepages[1].page_size, 1ull << 30);
    assert_true(f->ksm.available);
    assert_int_equal(f->ksm.run, 0);
    assert_int_equal(f->ksm.pages_to_scan, 100);
    assert_int_equal(f->accel.accel, ACCEL_TCG);
    assert_string_equal(f->accel.reason, "tcg: cpu has no vmx/svm flag");
    assert_int_equal(f->accel.probe.status, KVM_PROBE_NOT_RUN);
    assert_null(f->accel.dev_kvm_error);   /* /dev/kvm was not even looked at */
    host_facts_free(f);
    free(fq.argv_log);
}

static void test_intel_two_sockets(void **state)
{
    (void) state;
    struct fake_qemu fq = { .version_out = v8_out, .sandbox_out = sandbox_yes };
    struct host_facts *f = collect_case("intel-2s-vmx", &fq);
    assert_string_equal(f->cpu_vendor, "GenuineIntel");
    assert_true(host_facts_has_flag(f->cpu_flags, "vmx"));
    assert_int_equal(f->sockets, 2);
    assert_int_equal(f->cores_per_socket, 2);
    assert_int_equal(f->threads_per_core, 2);
    assert_int_equal(f->online_cpus, 8);
    assert_int_equal(f->n_numa_nodes, 2);
    static const unsigned n0[] = { 0, 1, 4, 5 }, n1[] = { 2, 3, 6, 7 };
    assert_int_equal(f->numa_nodes[0].id, 0);
    assert_int_equal(f->numa_nodes[1].id, 1);
    assert_int_equal(f->numa_nodes[0].n_cpus, 4);
    assert_int_equal(f->numa_nodes[1].n_cpus, 4);
    assert_memory_equal(f->numa_nodes[0].cpus, n0, sizeof n0);
    assert_memory_equal(f->numa_nodes[1].cpus, n1, sizeof n1);
    assert_int_equal(f->numa_nodes[1].mem_free, 20123456ull * 1024);
    assert_int_equal(f->numa_nodes[1].n_hugepages, 2);
    assert_int_equal(f->numa_nodes[1].hugepages[1].total, 2);
    assert_int_equal(f->numa_nodes[1].hugepages[1].free, 1);
    assert_int_equal(f->n_hugepages, 2);
    assert_int_equal(f->hugepages[0].total, 1024);
    assert_int_equal(f->hugepages[0].free, 512);
    assert_int_equal(f->hugepages[1].total, 4);
    assert_int_equal(f->hugepages[1].free, 3);
    assert_int_equal(f->ksm.run, 1);
    assert_int_equal(f->ksm.pages_sharing, 53000);
    assert_int_equal(f->ksm.merge_across_nodes, 0);
    /* vmx present, so the device was checked - and it does not exist. */
    assert_string_equal(f->accel.virt_flag, "vmx");
    assert_int_equal(f->accel.accel, ACCEL_TCG);
    assert_non_null(f->accel.dev_kvm_error);
    assert_string_equal(f->accel.reason, "tcg: kvm device not usable: cannot open "
                                         "'" NO_KVM "': No such file or directory");
    assert_int_equal(f->accel.probe.status, KVM_PROBE_NOT_RUN);
    /* QEMU facts from the fake runner. */
    assert_string_equal(f->qemu.binary, FAKE_QEMU);
    assert_string_equal(f->qemu.version, "8.2.1");
    assert_int_equal(f->qemu.version_code, 8002001);
    assert_string_equal(f->qemu.package, "Debian 1:8.2.1+ds-2");
    assert_true(f->qemu.sandbox);
    assert_null(f->qemu.error);
    assert_string_equal(fq.argv_log,
                        FAKE_QEMU " --version;" FAKE_QEMU " -sandbox on,help;");
    struct host_caps caps;
    host_facts_to_caps(f, &caps);
    assert_int_equal(caps.accel, ACCEL_TCG);
    assert_ptr_equal(caps.qemu_binary, f->qemu.binary);
    assert_int_equal(caps.qemu_version, 8002001);
    assert_true(caps.sandbox);
    host_facts_free(f);
    free(fq.argv_log);
}

static void test_amd_svm(void **state)
{
    (void) state;
    struct fake_qemu fq = { .version_out = v8_out, .sandbox_out = sandbox_yes };
    struct host_facts *f = collect_case("amd-svm", &fq);
    assert_string_equal(f->cpu_model_name, "AMD EPYC 7302P 16-Core Processor");
    assert_string_equal(f->accel.virt_flag, "svm");
    assert_int_equal(f->sockets, 1);
    assert_int_equal(f->cores_per_socket, 4);
    assert_int_equal(f->threads_per_core, 2);
    assert_int_equal(f->online_cpus, 8);
    assert_int_equal(f->n_numa_nodes, 1);
    assert_int_equal(f->numa_nodes[0].n_hugepages, 0);
    assert_int_equal(f->n_hugepages, 1);
    assert_false(f->ksm.available);
    assert_int_equal(f->ksm.run, -1);
    host_facts_free(f);
    free(fq.argv_log);
}

static void test_minimal(void **state)
{
    (void) state;
    struct fake_qemu fq = { .version_out = v8_out, .sandbox_out = sandbox_yes };
    struct host_facts *f = collect_case("minimal", &fq);
    assert_null(f->hostname);
    assert_null(f->kernel_release);
    assert_int_equal(f->sockets, 1);
    assert_int_equal(f->cores_per_socket, 1);
    assert_int_equal(f->threads_per_core, 1);
    assert_int_equal(f->online_cpus, 1);
    assert_int_equal(f->mem_available, f->mem_free);   /* no MemAvailable line */
    assert_int_equal(f->n_numa_nodes, 0);
    assert_int_equal(f->n_hugepages, 0);
    assert_false(f->ksm.available);
    host_facts_free(f);
    free(fq.argv_log);
}

static void test_missing_root(void **state)
{
    (void) state;
    struct host_facts_opts opts = { .sysroot = "/nonexistent/root", .skip_qemu = true };
    AUTOERROR struct error *err = NULL;
    assert_null(host_facts_collect(&opts, &err));
    assert_non_null(err);
    assert_int_equal(err->code, ERR_NOT_FOUND);
    assert_non_null(strstr(err->message, "/nonexistent/root/proc/cpuinfo"));
}

/* ---- QEMU --------------------------------------------------------------- */

static void test_qemu_without_seccomp(void **state)
{
    (void) state;
    struct fake_qemu fq = {
        .version_out = "QEMU emulator version 6.2.0\n",
        .sandbox_out = "",   /* the real message goes to stderr */
    };
    struct host_facts *f = collect_case("amd-svm", &fq);
    assert_string_equal(f->qemu.version, "6.2.0");
    assert_int_equal(f->qemu.version_code, 6002000);
    assert_null(f->qemu.package);
    assert_false(f->qemu.sandbox);
    assert_null(f->qemu.error);
    host_facts_free(f);
    free(fq.argv_log);
}

static void test_qemu_failures(void **state)
{
    (void) state;
    struct fake_qemu fq = { .version_out = "", .sandbox_out = "", .version_status = 1 };
    struct host_facts *f = collect_case("amd-svm", &fq);
    assert_non_null(f->qemu.error);
    assert_null(f->qemu.version);
    assert_int_equal(fq.calls, 1);   /* no sandbox check after a failure */
    host_facts_free(f);
    free(fq.argv_log);

    struct fake_qemu garbage = { .version_out = "hello\n", .sandbox_out = "" };
    f = collect_case("amd-svm", &garbage);
    assert_non_null(strstr(f->qemu.error, "no QEMU version"));
    host_facts_free(f);
    free(garbage.argv_log);

    AUTOFREE char *root = data_path("amd-svm");
    struct host_facts_opts opts = { .sysroot = root, .qemu_binary = "no-such-qemu-binary",
                                    .dev_kvm = NO_KVM };
    f = host_facts_collect(&opts, NULL);
    assert_non_null(f);
    assert_null(f->qemu.binary);
    assert_string_equal(f->qemu.error, "'no-such-qemu-binary' not found in PATH");
    json_t *j = host_facts_to_json(f);
    assert_true(json_is_null(json_object_get(json_object_get(j, "qemu"), "binary")));
    json_decref(j);
    host_facts_free(f);
}

static void test_parse_qemu_version(void **state)
{
    (void) state;
    static const struct {
        const char *text, *version, *package;
        unsigned code;
    } ok[] = {
        { "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright\n",
          "7.2.22", "Debian 1:7.2+dfsg-7+deb12u18+b3", 7002022 },
        { "QEMU emulator version 9.0.0\n", "9.0.0", NULL, 9000000 },
        { "QEMU emulator version 2.11\n", "2.11", NULL, 2011000 },
        { "QEMU emulator version 8.1.50 (v8.1.0-1234-gdeadbeef)\n", "8.1.50",
          "v8.1.0-1234-gdeadbeef", 8001050 },
        { "QEMU emulator version 7.0.0\n(not a package)\n", "7.0.0", NULL, 7000000 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        char *v, *pkg;
        unsigned code;
        assert_int_equal(host_facts_parse_qemu_version(ok[i].text, &v, &code, &pkg, NULL), 0);
        assert_string_equal(v, ok[i].version);
        assert_int_equal(code, ok[i].code);
        if (ok[i].package)
            assert_string_equal(pkg, ok[i].package);
        else
            assert_null(pkg);
        free(v);
        free(pkg);
    }
    static const char *const bad[] = { "", "QEMU emulator", "QEMU emulator version x.y",
                                       "QEMU emulator version 1000.0.0" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        char *v, *pkg;
        unsigned code;
        AUTOERROR struct error *err = NULL;
        assert_int_equal(host_facts_parse_qemu_version(bad[i], &v, &code, &pkg, &err), -1);
        assert_int_equal(err->code, ERR_QEMU);
        assert_null(v);
    }
}

/* ---- CPU lists ---------------------------------------------------------- */

static void test_parse_cpulist(void **state)
{
    (void) state;
    unsigned *c;
    size_t n;
    assert_int_equal(host_facts_parse_cpulist("0-3,8-11\n", &c, &n, NULL), 0);
    static const unsigned want[] = { 0, 1, 2, 3, 8, 9, 10, 11 };
    assert_int_equal(n, 8);
    assert_memory_equal(c, want, sizeof want);
    free(c);
    assert_int_equal(host_facts_parse_cpulist("5,1,3", &c, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(c[0], 1);
    assert_int_equal(c[2], 5);
    free(c);
    assert_int_equal(host_facts_parse_cpulist("\n", &c, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(c);
    assert_int_equal(host_facts_parse_cpulist("", &c, &n, NULL), 0);
    assert_int_equal(n, 0);
    static const char *const bad[] = { "a", "3-1", "1-", "1,,2", "0-9999999", "1 2" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *err = NULL;
        assert_int_equal(host_facts_parse_cpulist(bad[i], &c, &n, &err), -1);
        assert_int_equal(err->code, ERR_INVALID_ARG);
        assert_null(c);
    }
}

/* ---- the accelerator decision, every case ------------------------------- */

static void expect_decision(const struct host_accel_inputs *in, enum accel want,
                            const char *want_reason)
{
    AUTOFREE char *reason = NULL;
    assert_int_equal(host_facts_decide_accel(in, &reason), want);
    assert_string_equal(reason, want_reason);
}

static void test_decide_accel(void **state)
{
    (void) state;
    struct kvm_probe_result passed = { .status = KVM_PROBE_PASSED,
                                       .stage = KVM_PROBE_STAGE_DONE, .duration_ms = 4 };
    struct kvm_probe_result failed = {
        .status = KVM_PROBE_FAILED, .stage = KVM_PROBE_STAGE_LONG_MODE,
        .detail = "KVM_EXIT_INTERNAL_ERROR suberror 1 (emulation failure) at rip 0x10c0",
    };
    struct kvm_probe_result timed_out = { .status = KVM_PROBE_TIMED_OUT,
                                          .stage = KVM_PROBE_STAGE_REAL_MODE,
                                          .detail = "guest did not finish within 2000 ms" };
    struct kvm_probe_result error = { .status = KVM_PROBE_ERROR,
                                      .detail = "KVM_CREATE_VM failed: Cannot allocate memory" };
    struct kvm_probe_result not_run = { .status = KVM_PROBE_NOT_RUN };

    /* No vmx/svm: TCG whatever the rest says. */
    expect_decision(&(struct host_accel_inputs) { .probe = &passed }, ACCEL_TCG,
                    "tcg: cpu has no vmx/svm flag");
    expect_decision(&(struct host_accel_inputs) { 0 }, ACCEL_TCG,
                    "tcg: cpu has no vmx/svm flag");
    /* Disabled by configuration beats everything. */
    expect_decision(&(struct host_accel_inputs) { .kvm_disabled = true, .virt_flag = "vmx",
                                                  .probe = &passed },
                    ACCEL_TCG, "tcg: kvm disabled by configuration");
    /* Flag present, device unusable. */
    expect_decision(&(struct host_accel_inputs) {
                        .virt_flag = "svm",
                        .dev_kvm_error = "cannot open '/dev/kvm': Permission denied",
                        .probe = &passed },
                    ACCEL_TCG,
                    "tcg: kvm device not usable: cannot open '/dev/kvm': Permission denied");
    /* Flag and device, probe not run. */
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "vmx" }, ACCEL_TCG,
                    "tcg: kvm probe not run");
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "vmx", .probe = &not_run },
                    ACCEL_TCG, "tcg: kvm probe not run");
    /* The probe decides. */
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "vmx", .probe = &passed },
                    ACCEL_KVM,
                    "kvm: cpu has vmx, kvm device usable, probe guest reached long mode and "
                    "took an interrupt in 4 ms");
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "svm", .probe = &failed },
                    ACCEL_TCG,
                    "tcg: kvm probe guest failed after stage 'long mode': KVM_EXIT_INTERNAL_ERROR "
                    "suberror 1 (emulation failure) at rip 0x10c0");
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "vmx", .probe = &timed_out },
                    ACCEL_TCG,
                    "tcg: kvm probe guest did not finish within 2000 ms (last stage 'real mode')");
    expect_decision(&(struct host_accel_inputs) { .virt_flag = "vmx", .probe = &error },
                    ACCEL_TCG,
                    "tcg: kvm probe could not run: KVM_CREATE_VM failed: Cannot allocate memory");
}

static void test_probe_accel_shell(void **state)
{
    (void) state;
    char *novirt[] = { "fpu", "lm", "hypervisor", NULL };
    char *vmx[] = { "fpu", "vmx", "lm", NULL };
    struct host_facts_accel a;

    /* Without the flag nothing is opened: a bad device path stays unreported. */
    struct host_facts_opts opts = { .dev_kvm = "/dev/null" };
    host_facts_probe_accel(&opts, novirt, &a);
    assert_int_equal(a.accel, ACCEL_TCG);
    assert_null(a.virt_flag);
    assert_null(a.dev_kvm_error);
    assert_int_equal(a.probe.status, KVM_PROBE_NOT_RUN);
    host_facts_accel_clear(&a);

    /* With the flag the device is checked; /dev/null is no KVM. */
    host_facts_probe_accel(&opts, vmx, &a);
    assert_int_equal(a.accel, ACCEL_TCG);
    assert_string_equal(a.virt_flag, "vmx");
    assert_non_null(a.dev_kvm_error);
    assert_non_null(strstr(a.reason, "tcg: kvm device not usable: '/dev/null' does not answer"));
    host_facts_accel_clear(&a);

    opts.kvm_disabled = true;
    host_facts_probe_accel(&opts, vmx, &a);
    assert_string_equal(a.reason, "tcg: kvm disabled by configuration");
    assert_null(a.dev_kvm_error);
    host_facts_accel_clear(&a);
}

/* ---- the real machine --------------------------------------------------- */

static void test_real_host(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    struct host_facts *f = host_facts_collect(NULL, &err);
    if (!f)
        fail_msg("collecting the real host: %s", err->message);
    assert_non_null(f->cpu_vendor);
    assert_true(f->online_cpus >= 1);
    assert_true(f->mem_total > 0);
    assert_non_null(f->accel.reason);
    bool virt = host_facts_has_flag(f->cpu_flags, "vmx")
                || host_facts_has_flag(f->cpu_flags, "svm");
    if (!virt) {
        /* This project's build machines: nested PVM, no vmx/svm. */
        assert_int_equal(f->accel.accel, ACCEL_TCG);
        assert_string_equal(f->accel.reason, "tcg: cpu has no vmx/svm flag");
        assert_int_equal(f->accel.probe.status, KVM_PROBE_NOT_RUN);
    } else {
        assert_true(f->accel.probe.duration_ms <= 3000);
        assert_int_equal(f->accel.accel == ACCEL_KVM,
                         f->accel.probe.status == KVM_PROBE_PASSED);
    }
    if (file_exists("/usr/bin/qemu-system-x86_64")) {
        assert_null(f->qemu.error);
        assert_true(f->qemu.version_code >= 2000000);
    }
    json_t *j = host_facts_to_json(f);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "accel"), "accel")),
                        accel_to_string(f->accel.accel));
    json_decref(j);
    host_facts_free(f);
    host_facts_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_all_data_used),
        cmocka_unit_test(test_pvm_single_node),
        cmocka_unit_test(test_intel_two_sockets),
        cmocka_unit_test(test_amd_svm),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_missing_root),
        cmocka_unit_test(test_qemu_without_seccomp),
        cmocka_unit_test(test_qemu_failures),
        cmocka_unit_test(test_parse_qemu_version),
        cmocka_unit_test(test_parse_cpulist),
        cmocka_unit_test(test_decide_accel),
        cmocka_unit_test(test_probe_accel_shell),
        cmocka_unit_test(test_real_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
