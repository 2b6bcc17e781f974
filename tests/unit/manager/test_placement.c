/* test_placement.c - initial placement (placement.c): the host filters, the
 * two startup policies, and the error that explains a refusal.
 *
 * Cases: a table of one-host cases where each filter rejects (state, CPU
 * facts, vCPUs per CPU, committed vCPUs, committed memory with and without
 * overcommit, memory actually free, datastores, networks) or just fits at its
 * boundary, each checking the reason in the message; no hosts and bad
 * requests; a pinned host (chosen, still filtered, unknown); the message
 * listing every rejected host and cut short past 20; random choice
 * deterministic with a fixed 'rnd', never a rejected host, evenly spread over
 * many draws; least loaded: the score, the lowest fitting host, ties broken
 * by 'rnd', and a burst of placements spread when the caller adds each VM to
 * its host's commitments.
 *
 * Neighbours: src/manager/placement.h (the rules under test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manager/placement.h"
#include "util/mem.h"

/* The tables below start from a base host, request and policy and override a
 * field or two with a later designated initializer; that is the point. */
#pragma GCC diagnostic ignored "-Woverride-init"

static const char *const DS_BOTH[] = { "ds1", "ds2", NULL };
static const char *const NET_BOTH[] = { "dvs1", "nat1", NULL };
static const char *const NEED_DS1[] = { "ds1", NULL };
static const char *const NEED_DVS1[] = { "dvs1", NULL };
static const char *const NEED_DS1_DS3[] = { "ds1", "ds3", NULL };
static const char *const NEED_NAT2[] = { "nat2", NULL };

/* 8 CPUs at 20 %, 16 GiB with 4 GiB used and 4 GiB committed, 8 vCPUs
 * committed, reaching ds1, ds2, dvs1, nat1. */
#define HOST(...)                                                               \
    { .id = "h-1", .name = "node1", .state = "connected", .cpus = 8,             \
      .cpu_usage = 0.2, .mem_total_mib = 16384, .mem_used_mib = 4096,           \
      .mem_committed_mib = 4096, .vcpus_committed = 8, .datastores = DS_BOTH,   \
      .networks = NET_BOTH, __VA_ARGS__ }
/* 2 vCPUs, 1 GiB, on ds1 and dvs1. */
#define REQ(...)                                                                \
    { .vcpus = 2, .mem_mib = 1024, .datastores = NEED_DS1, .networks = NEED_DVS1, \
      __VA_ARGS__ }
/* Random, no memory overcommit (1.5 when on), 8 vCPUs per CPU, 1 GiB kept. */
#define CFG(...)                                                                \
    { .policy = PLACEMENT_RANDOM, .mem_overcommit = false,                      \
      .mem_overcommit_ratio = 1.5, .cpu_overcommit_ratio = 8,                   \
      .host_reserved_mib = 1024, __VA_ARGS__ }

static unsigned rnd_fixed(void *arg)
{
    return *(const unsigned *) arg;
}

/* xorshift32: a reproducible sequence for the distribution tests. */
static unsigned rnd_xorshift(void *arg)
{
    uint32_t *s = arg;
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- each filter, one host at a time ------------------------------------- */

struct filter_case {
    const char *what;
    struct placement_host host;
    struct placement_request req;
    struct placement_policy_cfg cfg;
    const char *reason;         /* NULL: fits; else the message's tail after "): " */
};

static const struct filter_case filter_cases[] = {
    { "fits", HOST(), REQ(), CFG(), NULL },
    { "disconnected", HOST(.state = "disconnected"), REQ(), CFG(), "node1: disconnected" },
    { "maintenance", HOST(.state = "maintenance"), REQ(), CFG(), "node1: maintenance" },
    { "no state", HOST(.state = NULL), REQ(), CFG(), "node1: state unknown" },
    { "state first", HOST(.state = "disconnected", .cpus = 0, .mem_total_mib = 0), REQ(), CFG(),
      "node1: disconnected" },
    { "unnamed host: its id", HOST(.name = NULL, .state = "maintenance"), REQ(), CFG(),
      "h-1: maintenance" },
    /* CPU */
    { "no CPU facts", HOST(.cpus = 0), REQ(), CFG(), "node1: no CPU facts yet" },
    { "more vCPUs than CPUs", HOST(), REQ(.vcpus = 9), CFG(), "node1: 9 vCPUs > 8 CPUs" },
    { "as many vCPUs as CPUs", HOST(.vcpus_committed = 0), REQ(.vcpus = 8), CFG(), NULL },
    { "vCPUs committed over 8 per CPU", HOST(.vcpus_committed = 63), REQ(), CFG(),
      "node1: 63 vCPUs committed + 2 > 64 (8 CPUs x 8)" },
    { "vCPUs committed exactly 8 per CPU", HOST(.vcpus_committed = 62), REQ(), CFG(), NULL },
    { "CPU ratio 0 counts as 1", HOST(.vcpus_committed = 7), REQ(),
      CFG(.cpu_overcommit_ratio = 0), "node1: 7 vCPUs committed + 2 > 8 (8 CPUs x 1)" },
    { "CPU ratio 1.5", HOST(.vcpus_committed = 10), REQ(), CFG(.cpu_overcommit_ratio = 1.5),
      NULL },
    { "CPU usage does not filter", HOST(.cpu_usage = 1.0), REQ(), CFG(), NULL },
    /* memory: commitments (usable = 16384 - 1024 = 15360) */
    { "committed over usable", HOST(.mem_committed_mib = 14848), REQ(), CFG(),
      "node1: 512 MiB free < 1024 MiB" },
    { "committed exactly usable", HOST(.mem_committed_mib = 14336), REQ(), CFG(), NULL },
    { "overcommit 1.5 lets it fit", HOST(.mem_committed_mib = 14848), REQ(),
      CFG(.mem_overcommit = true), NULL },
    { "overcommit 1.5 exceeded", HOST(.mem_committed_mib = 22528), REQ(),
      CFG(.mem_overcommit = true), "node1: 512 MiB free < 1024 MiB (1.5 x overcommit)" },
    { "overcommit 1.5 exactly", HOST(.mem_committed_mib = 22016), REQ(),
      CFG(.mem_overcommit = true), NULL },
    { "ratio ignored when overcommit off", HOST(.mem_committed_mib = 14848), REQ(),
      CFG(.mem_overcommit_ratio = 3), "node1: 512 MiB free < 1024 MiB" },
    { "overcommit ratio below 1 counts as 1", HOST(.mem_committed_mib = 14848), REQ(),
      CFG(.mem_overcommit = true, .mem_overcommit_ratio = 0.5),
      "node1: 512 MiB free < 1024 MiB" },
    { "reserve larger than the host", HOST(.mem_committed_mib = 0, .mem_used_mib = 0), REQ(),
      CFG(.host_reserved_mib = 20000), "node1: 0 MiB free < 1024 MiB" },
    { "committed above the limit", HOST(.mem_committed_mib = 30000), REQ(), CFG(),
      "node1: 0 MiB free < 1024 MiB" },
    { "no memory statistics", HOST(.mem_total_mib = 0), REQ(), CFG(),
      "node1: no memory statistics yet" },
    /* memory: what the last stats show free (16384 - used - 1024) */
    { "actually free too little", HOST(.mem_used_mib = 14848, .mem_committed_mib = 0), REQ(),
      CFG(), "node1: 512 MiB free in the last stats < 1024 MiB" },
    { "actually free too little, overcommit on", HOST(.mem_used_mib = 14848), REQ(),
      CFG(.mem_overcommit = true), "node1: 512 MiB free in the last stats < 1024 MiB" },
    { "actually free exactly", HOST(.mem_used_mib = 14336, .mem_committed_mib = 0), REQ(),
      CFG(), NULL },
    { "used above total", HOST(.mem_used_mib = 17000, .mem_committed_mib = 0), REQ(), CFG(),
      "node1: 0 MiB free in the last stats < 1024 MiB" },
    /* reachability */
    { "datastore missing", HOST(), REQ(.datastores = NEED_DS1_DS3), CFG(),
      "node1: datastore 'ds3' not reachable" },
    { "host reaches no datastore", HOST(.datastores = NULL), REQ(), CFG(),
      "node1: datastore 'ds1' not reachable" },
    { "no datastore needed", HOST(.datastores = NULL), REQ(.datastores = NULL), CFG(), NULL },
    { "network missing", HOST(), REQ(.networks = NEED_NAT2), CFG(),
      "node1: network 'nat2' not reachable" },
    { "host reaches no network", HOST(.networks = NULL), REQ(), CFG(),
      "node1: network 'dvs1' not reachable" },
    { "no network needed", HOST(.networks = NULL), REQ(.networks = NULL), CFG(), NULL },
    { "capacity before reachability", HOST(.vcpus_committed = 64), REQ(.networks = NEED_NAT2),
      CFG(), "node1: 64 vCPUs committed + 2 > 64 (8 CPUs x 8)" },
};

static void test_filters(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(filter_cases); i++) {
        const struct filter_case *c = &filter_cases[i];
        for (int p = 0; p < 2; p++) {       /* both policies filter alike */
            struct placement_policy_cfg cfg = c->cfg;
            cfg.policy = p ? PLACEMENT_LEAST_LOADED : PLACEMENT_RANDOM;
            struct error *err = NULL;
            int r = placement_choose(&c->host, 1, &c->req, &cfg, NULL, NULL, &err);
            if (!c->reason) {
                if (r != 0)
                    fail_msg("case '%s': expected to fit, got %d: %s", c->what, r,
                             err ? err->message : "(no error)");
                assert_null(err);
                continue;
            }
            if (r != -1 || !err)
                fail_msg("case '%s': expected a refusal, got %d", c->what, r);
            assert_int_equal(err->code, ERR_NO_SPACE);
            AUTOFREE char *want = xasprintf("no host fits the VM (%u vCPUs, %llu MiB): %s",
                                            c->req.vcpus,
                                            (unsigned long long) c->req.mem_mib, c->reason);
            if (strcmp(err->message, want) != 0)
                fail_msg("case '%s':\n  got  '%s'\n  want '%s'", c->what, err->message, want);
            error_free(err);
        }
    }
}

/* ---- no host, bad requests ------------------------------------------------- */

static void test_no_hosts_and_bad_requests(void **state)
{
    (void) state;
    struct placement_host h = HOST();
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    struct error *err = NULL;

    assert_int_equal(placement_choose(NULL, 0, &req, &cfg, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
    assert_non_null(strstr(err->message, "no host in the cluster"));
    error_free(err);
    err = NULL;

    struct placement_request r0 = REQ(.vcpus = 0);
    assert_int_equal(placement_choose(&h, 1, &r0, &cfg, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_string_equal(err->field, "vcpus");
    error_free(err);
    err = NULL;

    struct placement_request m0 = REQ(.mem_mib = 0);
    assert_int_equal(placement_choose(&h, 1, &m0, &cfg, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_string_equal(err->field, "memory");
    error_free(err);

    /* errp may be NULL */
    assert_int_equal(placement_choose(NULL, 0, &req, &cfg, NULL, NULL, NULL), -1);
}

/* ---- pinned host --------------------------------------------------------------- */

static void test_pinned(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.id = "h-1", .name = "node1", .state = "disconnected"),
        HOST(.id = "h-2", .name = "node2"),
        HOST(.id = "h-3", .name = "node3", .cpu_usage = 0.0, .mem_used_mib = 0,
             .mem_committed_mib = 0),
    };
    struct placement_policy_cfg cfgs[] = { CFG(), CFG(.policy = PLACEMENT_LEAST_LOADED) };
    struct error *err = NULL;

    /* chosen whatever the policy and rnd, although node3 is less loaded */
    for (size_t p = 0; p < ARRAY_SIZE(cfgs); p++) {
        for (unsigned v = 0; v < 5; v++) {
            struct placement_request req = REQ(.pinned_host = "h-2");
            assert_int_equal(placement_choose(hosts, 3, &req, &cfgs[p], rnd_fixed, &v, &err), 1);
            assert_null(err);
        }
    }

    /* still filtered: only the pinned host is named in the refusal */
    struct placement_request req1 = REQ(.pinned_host = "h-1");
    assert_int_equal(placement_choose(hosts, 3, &req1, &cfgs[0], NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_string_equal(err->message,
                        "no host fits the VM (2 vCPUs, 1024 MiB): node1: disconnected");
    error_free(err);
    err = NULL;

    struct placement_request req2 = REQ(.pinned_host = "h-2", .mem_mib = 100000);
    assert_int_equal(placement_choose(hosts, 3, &req2, &cfgs[0], NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_non_null(strstr(err->message, "node2: "));
    assert_null(strstr(err->message, "node3"));
    error_free(err);
    err = NULL;

    /* an id, not a name; unknown: not found */
    struct placement_request req3 = REQ(.pinned_host = "node2");
    assert_int_equal(placement_choose(hosts, 3, &req3, &cfgs[0], NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NOT_FOUND);
    assert_string_equal(err->message, "pinned host 'node2' is not in the cluster");
    error_free(err);
}

/* ---- the refusal message ------------------------------------------------------ */

static void test_message_every_host(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.id = "h-1", .name = "node1", .state = "disconnected"),
        HOST(.id = "h-2", .name = "node2", .mem_committed_mib = 14848),
        HOST(.id = "h-3", .name = "node3", .datastores = NULL),
    };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    struct error *err = NULL;
    assert_int_equal(placement_choose(hosts, 3, &req, &cfg, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_null(err->field);
    assert_string_equal(err->message,
                        "no host fits the VM (2 vCPUs, 1024 MiB): node1: disconnected; "
                        "node2: 512 MiB free < 1024 MiB; node3: datastore 'ds1' not reachable");
    error_free(err);
}

static void test_message_cut_short(void **state)
{
    (void) state;
    enum { N = 25 };
    struct placement_host hosts[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "node%d", i + 1);
        hosts[i] = (struct placement_host) HOST(.id = names[i], .name = names[i],
                                                .state = "maintenance");
    }
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    struct error *err = NULL;
    assert_int_equal(placement_choose(hosts, N, &req, &cfg, NULL, NULL, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_non_null(strstr(err->message, "): node1: maintenance; node2: maintenance; "));
    assert_non_null(strstr(err->message, "; node20: maintenance; ... 5 more hosts rejected"));
    assert_null(strstr(err->message, "node21"));
    assert_null(strchr(err->message, '\n'));
    error_free(err);
}

/* ---- random -------------------------------------------------------------------- */

static struct placement_host four_hosts[] = {
    HOST(.id = "h-1", .name = "node1"),
    HOST(.id = "h-2", .name = "node2"),
    HOST(.id = "h-3", .name = "node3", .state = "disconnected"),
    HOST(.id = "h-4", .name = "node4", .cpu_usage = 0.9),
};

static void test_random_deterministic(void **state)
{
    (void) state;
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    /* fitting: 0, 1, 3 (node3 is disconnected); rnd % 3 indexes them */
    static const struct { unsigned rnd; int want; } draws[] = {
        { 0, 0 }, { 1, 1 }, { 2, 3 }, { 3, 0 }, { 5, 3 }, { 4000000000u, 1 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(draws); i++) {
        for (int again = 0; again < 2; again++) {
            unsigned v = draws[i].rnd;
            struct error *err = NULL;
            assert_int_equal(placement_choose(four_hosts, 4, &req, &cfg, rnd_fixed, &v, &err),
                             draws[i].want);
            assert_null(err);
        }
    }
}

static unsigned rnd_counting(void *arg)
{
    (*(unsigned *) arg)++;
    return 7;
}

static void test_random_single_fit_needs_no_draw(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.state = "disconnected"), HOST(.id = "h-2", .name = "node2"),
    };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    unsigned calls = 0;
    assert_int_equal(placement_choose(hosts, 2, &req, &cfg, rnd_counting, &calls, NULL), 1);
    assert_int_equal(calls, 0);
}

static void test_random_distribution(void **state)
{
    (void) state;
    enum { DRAWS = 40000 };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG();
    unsigned count[4] = { 0 };
    uint32_t seed = 12345;
    for (int i = 0; i < DRAWS; i++) {
        int r = placement_choose(four_hosts, 4, &req, &cfg, rnd_xorshift, &seed, NULL);
        assert_in_range(r, 0, 3);
        count[r]++;
    }
    assert_int_equal(count[2], 0);          /* the disconnected host, never */
    for (int i = 0; i < 4; i++) {
        if (i == 2)
            continue;
        /* DRAWS/3 each; 3 % is about 8 standard deviations */
        if (count[i] < DRAWS / 3 * 97 / 100 || count[i] > DRAWS / 3 * 103 / 100)
            fail_msg("host %d chosen %u times of %d", i, count[i], DRAWS);
    }

    /* rnd NULL: random(), reproducible after srandom() */
    unsigned seen[4] = { 0 };
    srandom(1);
    int first[50];
    for (int i = 0; i < 50; i++) {
        first[i] = placement_choose(four_hosts, 4, &req, &cfg, NULL, NULL, NULL);
        assert_true(first[i] == 0 || first[i] == 1 || first[i] == 3);
        seen[first[i]]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[3] > 0);
    srandom(1);
    for (int i = 0; i < 50; i++)
        assert_int_equal(placement_choose(four_hosts, 4, &req, &cfg, NULL, NULL, NULL), first[i]);
}

/* ---- least loaded ---------------------------------------------------------------- */

static void test_load_score(void **state)
{
    (void) state;
    struct placement_host h = HOST(.cpu_usage = 0.5, .mem_used_mib = 8192,
                                   .mem_committed_mib = 4096);
    assert_float_equal(placement_load(&h), 0.5, 1e-12);
    h.mem_committed_mib = 12288;            /* committed above used counts */
    assert_float_equal(placement_load(&h), 0.25 + 0.375, 1e-12);
    h.cpu_usage = 1.7;                      /* clamped */
    assert_float_equal(placement_load(&h), 0.5 + 0.375, 1e-12);
    h.cpu_usage = -0.3;
    assert_float_equal(placement_load(&h), 0.375, 1e-12);
    h.mem_committed_mib = 24576;            /* overcommitted: above 1 */
    assert_float_equal(placement_load(&h), 0.75, 1e-12);
    h.mem_total_mib = 0;                    /* no stats: full */
    assert_float_equal(placement_load(&h), 0.5, 1e-12);
}

static void test_least_loaded(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.id = "h-1", .name = "node1", .cpu_usage = 0.6),     /* 0.3 + 0.125: next */
        HOST(.id = "h-2", .name = "node2", .cpu_usage = 0.2,      /* 0.1 + 0.375 */
             .mem_used_mib = 12288, .mem_committed_mib = 1024),
        HOST(.id = "h-3", .name = "node3", .cpu_usage = 0.2),     /* 0.1 + 0.125: lowest */
        HOST(.id = "h-4", .name = "node4", .cpu_usage = 0.0,      /* 0 + 0: lowest, unfit */
             .mem_used_mib = 0, .mem_committed_mib = 0, .state = "maintenance"),
    };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG(.policy = PLACEMENT_LEAST_LOADED);
    for (unsigned v = 0; v < 8; v++) {
        struct error *err = NULL;
        assert_int_equal(placement_choose(hosts, 4, &req, &cfg, rnd_fixed, &v, &err), 2);
        assert_null(err);
    }
    /* node3 stops fitting: node1 next */
    hosts[2].vcpus_committed = 64;
    assert_int_equal(placement_choose(hosts, 4, &req, &cfg, NULL, NULL, NULL), 0);
    /* the same hosts under random spread over 0, 1 */
    struct placement_policy_cfg rcfg = CFG();
    unsigned v = 1;
    assert_int_equal(placement_choose(hosts, 4, &req, &rcfg, rnd_fixed, &v, NULL), 1);
}

static void test_least_loaded_ties(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.id = "h-1", .name = "node1"),
        HOST(.id = "h-2", .name = "node2", .cpu_usage = 0.3),
        HOST(.id = "h-3", .name = "node3"),
        HOST(.id = "h-4", .name = "node4", .state = "disconnected"),
        HOST(.id = "h-5", .name = "node5"),
    };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG(.policy = PLACEMENT_LEAST_LOADED);
    /* tied: 0, 2, 4 in input order; rnd % 3 picks */
    static const int want[] = { 0, 2, 4, 0, 2, 4 };
    for (unsigned v = 0; v < ARRAY_SIZE(want); v++) {
        for (int again = 0; again < 2; again++) {
            unsigned x = v;
            assert_int_equal(placement_choose(hosts, 5, &req, &cfg, rnd_fixed, &x, NULL),
                             want[v]);
        }
    }
    /* a tie within 1e-9 is a tie; 1e-6 apart is not */
    hosts[2].cpu_usage = 0.2 + 1e-12;
    unsigned one = 1;
    assert_int_equal(placement_choose(hosts, 5, &req, &cfg, rnd_fixed, &one, NULL), 2);
    hosts[2].cpu_usage = 0.2 + 1e-6;
    hosts[4].cpu_usage = 0.2 + 1e-6;
    for (unsigned x = 0; x < 4; x++)
        assert_int_equal(placement_choose(hosts, 5, &req, &cfg, rnd_fixed, &x, NULL), 0);
}

/* A burst: the caller adds each placed VM to its host's commitments, as
 * placement.h asks; identical idle hosts then share the VMs evenly. */
static void test_least_loaded_burst(void **state)
{
    (void) state;
    struct placement_host hosts[] = {
        HOST(.id = "h-1", .name = "node1", .cpu_usage = 0, .mem_used_mib = 0,
             .mem_committed_mib = 0, .vcpus_committed = 0),
        HOST(.id = "h-2", .name = "node2", .cpu_usage = 0, .mem_used_mib = 0,
             .mem_committed_mib = 0, .vcpus_committed = 0),
        HOST(.id = "h-3", .name = "node3", .cpu_usage = 0, .mem_used_mib = 0,
             .mem_committed_mib = 0, .vcpus_committed = 0),
    };
    struct placement_request req = REQ();
    struct placement_policy_cfg cfg = CFG(.policy = PLACEMENT_LEAST_LOADED);
    uint32_t seed = 99;
    unsigned count[3] = { 0 };
    for (int i = 0; i < 30; i++) {
        int r = placement_choose(hosts, 3, &req, &cfg, rnd_xorshift, &seed, NULL);
        assert_in_range(r, 0, 2);
        count[r]++;
        hosts[r].mem_committed_mib += req.mem_mib;
        hosts[r].vcpus_committed += req.vcpus;
    }
    assert_int_equal(count[0], 10);
    assert_int_equal(count[1], 10);
    assert_int_equal(count[2], 10);
    /* 15 GiB usable each: the 16th VM of 1 GiB on every host does not fit */
    for (int i = 0; i < 3 * 5; i++) {
        int r = placement_choose(hosts, 3, &req, &cfg, rnd_xorshift, &seed, NULL);
        assert_in_range(r, 0, 2);
        hosts[r].mem_committed_mib += req.mem_mib;
    }
    struct error *err = NULL;
    assert_int_equal(placement_choose(hosts, 3, &req, &cfg, rnd_xorshift, &seed, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_non_null(strstr(err->message, "node1: 0 MiB free < 1024 MiB; node2: 0 MiB free"));
    error_free(err);
}

static void test_policy_from_string(void **state)
{
    (void) state;
    enum placement_policy p = PLACEMENT_LEAST_LOADED;
    assert_int_equal(placement_policy_from_string("automatic", &p, NULL), 0);
    assert_int_equal(p, PLACEMENT_RANDOM);
    assert_int_equal(placement_policy_from_string("load-balancing", &p, NULL), 0);
    assert_int_equal(p, PLACEMENT_LEAST_LOADED);
    struct error *err = NULL;
    assert_int_equal(placement_policy_from_string("fastest", &p, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_string_equal(err->field, "startup_policy");
    error_free(err);
    assert_int_equal(placement_policy_from_string(NULL, &p, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_no_hosts_and_bad_requests),
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_message_every_host),
        cmocka_unit_test(test_message_cut_short),
        cmocka_unit_test(test_random_deterministic),
        cmocka_unit_test(test_random_single_fit_needs_no_draw),
        cmocka_unit_test(test_random_distribution),
        cmocka_unit_test(test_load_score),
        cmocka_unit_test(test_least_loaded),
        cmocka_unit_test(test_least_loaded_ties),
        cmocka_unit_test(test_least_loaded_burst),
        cmocka_unit_test(test_policy_from_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
