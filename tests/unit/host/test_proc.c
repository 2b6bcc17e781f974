/* test_proc.c - /proc/<pid> readers against tests/data/host/procs and against
 * the test's own process and a child it starts and kills. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/proc.h"
#include "util/mem.h"

#define ROOT HOST_TEST_DATA "/procs"

static void test_fake_qemu(void **state)
{
    (void) state;
    struct proc_stat st;
    assert_int_equal(proc_read_stat_at(ROOT, 4242, &st, NULL), 0);
    assert_int_equal(st.pid, 4242);
    assert_string_equal(st.comm, "qemu (web 1)");
    assert_int_equal(st.state, 'S');
    assert_int_equal(st.ppid, 1);
    assert_int_equal(st.utime_ticks, 1234);
    assert_int_equal(st.stime_ticks, 567);
    long tck = sysconf(_SC_CLK_TCK);
    assert_int_equal(st.cpu_time_ns, 1801ull * 1000000000ull / (unsigned long long) tck);
    assert_int_equal(st.num_threads, 3);
    assert_int_equal(st.start_ticks, 987654);
    assert_int_equal(st.rss_bytes, 204800ull * 1024);

    AUTOSTRV char **argv = proc_read_cmdline_at(ROOT, 4242, NULL);
    static const char *const want[] = { "/usr/bin/qemu-system-x86_64", "-name", "guest=web 1",
                                        "-append", "", "-accel", "tcg" };
    assert_int_equal(strv_len(argv), ARRAY_SIZE(want));
    for (size_t i = 0; i < ARRAY_SIZE(want); i++)
        assert_string_equal(argv[i], want[i]);

    assert_true(proc_is_same_at(ROOT, 4242, 987654));
    assert_false(proc_is_same_at(ROOT, 4242, 987655));
    assert_false(proc_is_same_at(ROOT, 4243, 987654));
}

static void test_fake_kernel_thread(void **state)
{
    (void) state;
    struct proc_stat st;
    assert_int_equal(proc_read_stat_at(ROOT, 2, &st, NULL), 0);
    assert_string_equal(st.comm, "kthreadd");
    assert_int_equal(st.ppid, 0);
    assert_int_equal(st.rss_bytes, 0);
    AUTOSTRV char **argv = proc_read_cmdline_at(ROOT, 2, NULL);
    assert_non_null(argv);
    assert_null(argv[0]);
}

static void test_fake_rewritten_cmdline(void **state)
{
    (void) state;
    AUTOSTRV char **argv = proc_read_cmdline_at(ROOT, 77, NULL);
    assert_int_equal(strv_len(argv), 2);
    assert_string_equal(argv[0], "strata-agent: worker");
    assert_string_equal(argv[1], "idle");
    struct proc_stat st;
    assert_int_equal(proc_read_stat_at(ROOT, 77, &st, NULL), 0);
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.start_ticks, 5000);
    assert_int_equal(st.rss_bytes, 1024 * 1024);
}

static void test_fake_errors(void **state)
{
    (void) state;
    struct proc_stat st;
    struct error *err = NULL;
    assert_int_equal(proc_read_stat_at(ROOT, 99, &st, &err), -1);
    assert_int_equal(err->code, ERR_IO);
    assert_non_null(strstr(err->message, "malformed field"));
    error_free(err);
    err = NULL;
    assert_int_equal(proc_read_stat_at(ROOT, 12345, &st, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
    assert_string_equal(err->message, "process 12345 does not exist");
    error_free(err);
    err = NULL;
    assert_null(proc_read_cmdline_at(ROOT, 12345, &err));
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_free(err);
    err = NULL;
    assert_int_equal(proc_read_stat(0, &st, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    assert_int_equal(proc_parse_stat("no parens here", &st, NULL), -1);
    assert_int_equal(proc_parse_stat("1 (x)", &st, NULL), -1);
}

static void test_self(void **state)
{
    (void) state;
    struct proc_stat st;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(proc_read_stat(getpid(), &st, &err), 0);
    assert_int_equal(st.pid, getpid());
    assert_int_equal(st.ppid, getppid());
    assert_int_equal(st.state, 'R');
    assert_true(st.rss_bytes > 0);
    assert_true(st.start_ticks > 0);
    assert_true(st.num_threads >= 1);
    /* Burn some CPU and see the counter move (ticks are 10 ms). */
    unsigned long long before = st.cpu_time_ns;
    volatile unsigned long x = 0;
    struct proc_stat after;
    for (int round = 0; round < 200; round++) {
        for (unsigned long i = 0; i < 5000000; i++)
            x += i;
        assert_int_equal(proc_read_stat(getpid(), &after, NULL), 0);
        if (after.cpu_time_ns > before)
            break;
    }
    assert_true(after.cpu_time_ns > before);
    assert_int_equal(after.start_ticks, st.start_ticks);
    assert_true(proc_is_same(getpid(), st.start_ticks));
    assert_false(proc_is_same(getpid(), st.start_ticks + 1));

    AUTOSTRV char **argv = proc_read_cmdline(getpid(), NULL);
    assert_non_null(argv);
    assert_non_null(argv[0]);
    assert_non_null(strstr(argv[0], "test_proc"));
}

static void test_child(void **state)
{
    (void) state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sleep", "sleep", "30", (char *) NULL);
        _exit(127);
    }
    /* Wait for the exec to show in the command line. */
    char **argv = NULL;
    for (int i = 0; i < 500; i++) {
        argv = proc_read_cmdline(pid, NULL);
        if (argv && argv[0] && strcmp(argv[0], "sleep") == 0)
            break;
        strv_free(argv);
        argv = NULL;
        usleep(2000);
    }
    assert_non_null(argv);
    assert_int_equal(strv_len(argv), 2);
    assert_string_equal(argv[1], "30");
    strv_free(argv);
    struct proc_stat st;
    assert_int_equal(proc_read_stat(pid, &st, NULL), 0);
    assert_string_equal(st.comm, "sleep");
    assert_int_equal(st.ppid, getpid());
    assert_true(proc_is_same(pid, st.start_ticks));

    kill(pid, SIGKILL);
    /* A zombie still has its stat but no command line. */
    struct proc_stat z;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(proc_read_stat(pid, &z, NULL), 0);
        if (z.state == 'Z')
            break;
        usleep(2000);
    }
    assert_int_equal(z.state, 'Z');
    AUTOSTRV char **zargv = proc_read_cmdline(pid, NULL);
    assert_non_null(zargv);
    assert_null(zargv[0]);

    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_false(proc_is_same(pid, st.start_ticks));
    struct error *err = NULL;
    assert_int_equal(proc_read_stat(pid, &z, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_qemu),
        cmocka_unit_test(test_fake_kernel_thread),
        cmocka_unit_test(test_fake_rewritten_cmdline),
        cmocka_unit_test(test_fake_errors),
        cmocka_unit_test(test_self),
        cmocka_unit_test(test_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
