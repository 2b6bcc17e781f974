/* test_kvm_probe.c - the KVM probe against the machine's own /dev/kvm.
 *
 * What the verdict is depends on the machine, so these tests check what must
 * hold everywhere: the device check rejects non-KVM files, every run ends
 * within the timeout plus a little, the child is always reaped, a guest that
 * never finishes is reported as timed out, and the stages are consistent with
 * the verdict.  On a machine without a usable /dev/kvm the runs are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "host/kvm_probe.h"

static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_check_dev(void **state)
{
    (void) state;
    struct error *err = NULL;
    assert_int_equal(kvm_probe_check_dev("/nonexistent/kvm", &err), -1);
    assert_int_equal(err->code, ERR_UNSUPPORTED);
    assert_string_equal(err->message,
                        "cannot open '/nonexistent/kvm': No such file or directory");
    error_free(err);
    err = NULL;
    assert_int_equal(kvm_probe_check_dev("/dev/null", &err), -1);
    assert_non_null(strstr(err->message, "'/dev/null' does not answer KVM_GET_API_VERSION"));
    error_free(err);
}

static void test_names(void **state)
{
    (void) state;
    assert_string_equal(kvm_probe_status_to_string(KVM_PROBE_TIMED_OUT), "timed-out");
    assert_string_equal(kvm_probe_status_to_string((enum kvm_probe_status) 99), "unknown");
    assert_string_equal(kvm_probe_stage_to_string(KVM_PROBE_STAGE_INTERRUPT),
                        "interrupt in long mode");
}

static void test_run_missing_device(void **state)
{
    (void) state;
    struct kvm_probe_result r;
    kvm_probe_run("/nonexistent/kvm", KVM_PROBE_GUEST_STANDARD, 1000, &r);
    assert_int_equal(r.status, KVM_PROBE_ERROR);
    assert_string_equal(r.detail, "open failed: No such file or directory");
    assert_no_children();
}

static void skip_without_kvm(void)
{
    if (kvm_probe_check_dev(NULL, NULL) < 0)
        skip();
}

static void test_standard_guest(void **state)
{
    (void) state;
    skip_without_kvm();
    struct kvm_probe_result r;
    kvm_probe_run(NULL, KVM_PROBE_GUEST_STANDARD, 2000, &r);
    fprintf(stderr, "# standard guest: %s, stage '%s', %u ms%s%s\n",
            kvm_probe_status_to_string(r.status), kvm_probe_stage_to_string(r.stage),
            r.duration_ms, r.detail[0] ? ": " : "", r.detail);
    assert_true(r.duration_ms <= 2500);
    assert_no_children();
    switch (r.status) {
    case KVM_PROBE_PASSED:
        assert_int_equal(r.stage, KVM_PROBE_STAGE_DONE);
        assert_string_equal(r.detail, "");
        break;
    case KVM_PROBE_FAILED:
    case KVM_PROBE_TIMED_OUT:
        assert_true(r.stage < KVM_PROBE_STAGE_DONE);
        assert_true(r.detail[0] != '\0');
        break;
    case KVM_PROBE_ERROR:
        assert_true(r.detail[0] != '\0');
        break;
    case KVM_PROBE_NOT_RUN:
        fail_msg("the probe did not run");
    }
}

static void test_real_mode_guest(void **state)
{
    (void) state;
    skip_without_kvm();
    struct kvm_probe_result r;
    kvm_probe_run(NULL, KVM_PROBE_GUEST_REAL_MODE, 2000, &r);
    fprintf(stderr, "# real-mode guest: %s, %u ms\n", kvm_probe_status_to_string(r.status),
            r.duration_ms);
    assert_no_children();
    /* A KVM that cannot even run real mode cannot run the standard guest. */
    if (r.status != KVM_PROBE_PASSED) {
        struct kvm_probe_result s;
        kvm_probe_run(NULL, KVM_PROBE_GUEST_STANDARD, 2000, &s);
        assert_int_not_equal(s.status, KVM_PROBE_PASSED);
    } else {
        assert_int_equal(r.stage, KVM_PROBE_STAGE_REAL_MODE);
    }
}

static void test_spinning_guest_is_killed(void **state)
{
    (void) state;
    skip_without_kvm();
    struct kvm_probe_result r;
    kvm_probe_run(NULL, KVM_PROBE_GUEST_SPIN, 300, &r);
    fprintf(stderr, "# spinning guest: %s, stage '%s', %u ms\n",
            kvm_probe_status_to_string(r.status), kvm_probe_stage_to_string(r.stage),
            r.duration_ms);
    assert_no_children();
    if (r.status == KVM_PROBE_TIMED_OUT) {
        assert_true(r.duration_ms >= 300);
        assert_true(r.duration_ms <= 800);
        assert_string_equal(r.detail, "guest did not finish within 300 ms");
    } else {
        /* Only a KVM that cannot run real mode stops it earlier. */
        assert_int_not_equal(r.status, KVM_PROBE_PASSED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_dev),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_run_missing_device),
        cmocka_unit_test(test_standard_guest),
        cmocka_unit_test(test_real_mode_guest),
        cmocka_unit_test(test_spinning_guest_is_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
