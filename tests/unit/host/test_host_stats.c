/* test_host_stats.c - /proc/stat parsing, utilisation between two samples
 * (pure), and sampling of a fake tree and of the real machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <string.h>

#include "host/host_stats.h"
#include "util/mem.h"

static void assert_pct(double got, double want)
{
    if (got - want > 1e-9 || want - got > 1e-9)
        fail_msg("got %.12f, want %.12f", got, want);
}

static void test_parse(void **state)
{
    (void) state;
    struct host_stats_sample s;
    const char *text = "cpu  100 20 30 800 40 5 5 10 7 0\ncpu0 50 10 15 400 20 2 3 5 3 0\n"
                       "cpu1 50 10 15 400 20 3 2 5 4 0\nintr 1 2 3\nctxt 99\n";
    assert_int_equal(host_stats_parse_proc_stat(text, &s, NULL), 0);
    assert_int_equal(s.n_cpus, 2);
    assert_int_equal(s.cpu.user, 100);
    assert_int_equal(s.cpu.nice, 20);
    assert_int_equal(s.cpu.system, 30);
    assert_int_equal(s.cpu.idle, 800);
    assert_int_equal(s.cpu.iowait, 40);
    assert_int_equal(s.cpu.irq, 5);
    assert_int_equal(s.cpu.softirq, 5);
    assert_int_equal(s.cpu.steal, 10);
    /* Old kernels: only four columns. */
    assert_int_equal(host_stats_parse_proc_stat("cpu 1 2 3 4\n", &s, NULL), 0);
    assert_int_equal(s.cpu.idle, 4);
    assert_int_equal(s.cpu.steal, 0);
    struct error *err = NULL;
    assert_int_equal(host_stats_parse_proc_stat("cpu0 1 2 3 4\n", &s, &err), -1);
    assert_int_equal(err->code, ERR_IO);
    error_free(err);
    err = NULL;
    assert_int_equal(host_stats_parse_proc_stat("cpu  1 2\n", &s, &err), -1);
    error_free(err);
}

static void test_util(void **state)
{
    (void) state;
    struct host_cpu_times a = { .user = 100, .nice = 0, .system = 50, .idle = 800,
                                .iowait = 10, .irq = 0, .softirq = 0, .steal = 0 };
    struct host_cpu_times b = a;
    struct host_cpu_util u;
    /* No time passed. */
    assert_false(host_stats_cpu_util(&a, &b, &u));
    assert_pct(u.busy_pct, 0);
    /* 200 ticks: 60 user (+20 nice), 30 system, 10 irq, 60 idle, 10 iowait, 10 steal. */
    b.user += 60;
    b.nice += 20;
    b.system += 30;
    b.irq += 10;
    b.idle += 60;
    b.iowait += 10;
    b.steal += 10;
    assert_true(host_stats_cpu_util(&a, &b, &u));
    assert_pct(u.user_pct, 40);
    assert_pct(u.system_pct, 20);
    assert_pct(u.idle_pct, 30);
    assert_pct(u.iowait_pct, 5);
    assert_pct(u.steal_pct, 5);
    assert_pct(u.busy_pct, 65);
    assert_pct(u.busy_pct + u.idle_pct + u.iowait_pct, 100);
    /* Fully idle. */
    struct host_cpu_times c = b;
    c.idle += 500;
    assert_true(host_stats_cpu_util(&b, &c, &u));
    assert_pct(u.busy_pct, 0);
    assert_pct(u.idle_pct, 100);
    /* Counters that went backwards (CPU unplugged) count as zero, not as huge. */
    struct host_cpu_times d = c;
    d.user -= 50;
    d.idle += 100;
    assert_true(host_stats_cpu_util(&c, &d, &u));
    assert_pct(u.busy_pct, 0);
    assert_pct(u.idle_pct, 100);
    /* Swapped order: everything went backwards, nothing to report. */
    assert_false(host_stats_cpu_util(&d, &a, &u));
}

static void test_sample_fake(void **state)
{
    (void) state;
    struct host_stats_sample s;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(host_stats_sample(HOST_TEST_DATA "/intel-2s-vmx", &s, &err), 0);
    assert_int_equal(s.n_cpus, 8);
    assert_int_equal(s.cpu.idle, 8000);
    assert_int_equal(s.mem_total, 65584900ull * 1024);
    assert_int_equal(s.mem_available, 52000000ull * 1024);
    assert_true(s.mono_ns > 0);
    /* The minimal tree has no MemAvailable: falls back to MemFree. */
    assert_int_equal(host_stats_sample(HOST_TEST_DATA "/minimal", &s, NULL), 0);
    assert_int_equal(s.mem_available, s.mem_free);
    assert_int_equal(host_stats_sample("/nonexistent/root", &s, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
}

static void test_sample_real(void **state)
{
    (void) state;
    struct host_stats_sample a, b;
    assert_int_equal(host_stats_sample(NULL, &a, NULL), 0);
    assert_true(a.n_cpus >= 1);
    assert_true(a.mem_total > 0);
    /* Busy for a while so at least one tick passes. */
    volatile unsigned long x = 0;
    struct host_cpu_util u;
    bool got = false;
    for (int round = 0; round < 200 && !got; round++) {
        for (unsigned long i = 0; i < 5000000; i++)
            x += i;
        assert_int_equal(host_stats_sample(NULL, &b, NULL), 0);
        got = host_stats_cpu_util(&a.cpu, &b.cpu, &u);
    }
    assert_true(got);
    assert_true(b.mono_ns > a.mono_ns);
    assert_true(u.busy_pct >= 0 && u.busy_pct <= 100);
    json_t *j = host_stats_to_json(&b, &u);
    assert_true(json_is_real(json_object_get(json_object_get(j, "cpu"), "busy_pct")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "memory"),
                                                        "total_bytes")),
                     (json_int_t) b.mem_total);
    json_decref(j);
    j = host_stats_to_json(&b, NULL);
    assert_null(json_object_get(j, "cpu"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_util),
        cmocka_unit_test(test_sample_fake),
        cmocka_unit_test(test_sample_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
