/* placement.c - see placement.h: filter the cluster's hosts for a new VM,
 * then pick one by the cluster's startup policy.
 *
 * fit() applies the rules in the documented order and, for a host that does
 * not fit, writes its one reason; placement_choose() collects the fitting
 * indices and the reasons, then applies the policy.  No I/O, no globals
 * (random() only when the caller passes no 'rnd').
 *
 * Neighbours: placement.h (the rules), vms.c (the caller),
 * tests/unit/manager/test_placement.c. */
#include "manager/placement.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

/* Hosts named in a "no host fits" message before it is cut short. */
#define PLACEMENT_MAX_REASONS 20
/* Loads this close to the lowest tie (LEAST_LOADED). */
#define PLACEMENT_LOAD_EPSILON 1e-9

#define MiB(x) ((unsigned long long) (x))

static const char *host_label(const struct placement_host *h)
{
    return h->name ? h->name : h->id ? h->id : "(unnamed)";
}

static bool strv_contains(const char *const *v, const char *s)
{
    for (; v && *v; v++)
        if (strcmp(*v, s) == 0)
            return true;
    return false;
}

/* a + b <= limit, without overflow. */
static bool fits_u64(uint64_t a, uint64_t b, uint64_t limit)
{
    return a <= limit && b <= limit - a;
}

/* limit * ratio, rounded down, saturating. */
static uint64_t scale(uint64_t limit, double ratio)
{
    double v = (double) limit * ratio;     /* truncated below: floor for v >= 0 */
    if (!(v > 0))
        return 0;
    if (v >= 18446744073709551615.0)
        return UINT64_MAX;
    return (uint64_t) v;
}

/* Returns true if 'h' fits 'req'; otherwise returns false and sets '*why' to
 * a new string (the reason, without the host's name). */
static bool fit(const struct placement_host *h, const struct placement_request *req,
                const struct placement_policy_cfg *cfg, char **why)
{
    if (!h->state || strcmp(h->state, "connected") != 0) {
        *why = h->state ? xstrdup(h->state) : xstrdup("state unknown");
        return false;
    }

    /* CPU */
    if (h->cpus == 0) {
        *why = xstrdup("no CPU facts yet");
        return false;
    }
    if (req->vcpus > h->cpus) {
        *why = xasprintf("%u vCPUs > %u CPUs", req->vcpus, h->cpus);
        return false;
    }
    double cpu_ratio = cfg->cpu_overcommit_ratio > 0 ? cfg->cpu_overcommit_ratio : 1.0;
    uint64_t vcpu_limit = scale(h->cpus, cpu_ratio);
    if (!fits_u64(h->vcpus_committed, req->vcpus, vcpu_limit)) {
        *why = xasprintf("%u vCPUs committed + %u > %llu (%u CPUs x %g)", h->vcpus_committed,
                         req->vcpus, MiB(vcpu_limit), h->cpus, cpu_ratio);
        return false;
    }

    /* memory: commitments, then the last stats */
    if (h->mem_total_mib == 0) {
        *why = xstrdup("no memory statistics yet");
        return false;
    }
    uint64_t usable = h->mem_total_mib > cfg->host_reserved_mib
                      ? h->mem_total_mib - cfg->host_reserved_mib : 0;
    double mem_ratio = 1.0;
    if (cfg->mem_overcommit && cfg->mem_overcommit_ratio > 1.0)
        mem_ratio = cfg->mem_overcommit_ratio;
    uint64_t mem_limit = mem_ratio > 1.0 ? scale(usable, mem_ratio) : usable;
    if (!fits_u64(h->mem_committed_mib, req->mem_mib, mem_limit)) {
        uint64_t free_mib = mem_limit > h->mem_committed_mib ? mem_limit - h->mem_committed_mib
                                                             : 0;
        if (mem_ratio > 1.0)
            *why = xasprintf("%llu MiB free < %llu MiB (%g x overcommit)", MiB(free_mib),
                             MiB(req->mem_mib), mem_ratio);
        else
            *why = xasprintf("%llu MiB free < %llu MiB", MiB(free_mib), MiB(req->mem_mib));
        return false;
    }
    uint64_t taken = h->mem_used_mib;
    uint64_t actual = h->mem_total_mib > taken ? h->mem_total_mib - taken : 0;
    actual = actual > cfg->host_reserved_mib ? actual - cfg->host_reserved_mib : 0;
    if (actual < req->mem_mib) {
        *why = xasprintf("%llu MiB free in the last stats < %llu MiB", MiB(actual),
                         MiB(req->mem_mib));
        return false;
    }

    /* reachability */
    for (const char *const *d = req->datastores; d && *d; d++) {
        if (!strv_contains(h->datastores, *d)) {
            *why = xasprintf("datastore '%s' not reachable", *d);
            return false;
        }
    }
    for (const char *const *nw = req->networks; nw && *nw; nw++) {
        if (!strv_contains(h->networks, *nw)) {
            *why = xasprintf("network '%s' not reachable", *nw);
            return false;
        }
    }
    return true;
}

double placement_load(const struct placement_host *h)
{
    double cpu = h->cpu_usage;
    if (!(cpu > 0))             /* also NaN */
        cpu = 0;
    if (cpu > 1)
        cpu = 1;
    double mem = 1.0;
    if (h->mem_total_mib > 0) {
        uint64_t m = h->mem_used_mib > h->mem_committed_mib ? h->mem_used_mib
                                                             : h->mem_committed_mib;
        mem = (double) m / (double) h->mem_total_mib;
    }
    return 0.5 * cpu + 0.5 * mem;
}

static unsigned draw(unsigned (*rnd)(void *), void *rnd_arg)
{
    return rnd ? rnd(rnd_arg) : (unsigned) random();
}

/* Appends "; <host>: <why>" (or "<host>: <why>" first) to '*msg'. */
static void add_reason(char **msg, const struct placement_host *h, const char *why)
{
    char *m = xasprintf("%s%s%s: %s", *msg, **msg ? "; " : "", host_label(h), why);
    free(*msg);
    *msg = m;
}

int placement_choose(const struct placement_host *hosts, size_t n,
                     const struct placement_request *req,
                     const struct placement_policy_cfg *cfg,
                     unsigned (*rnd)(void *), void *rnd_arg, struct error **errp)
{
    if (req->vcpus == 0)
        return error_set_field(errp, ERR_INVALID_ARG, "vcpus", "a VM needs at least 1 vCPU");
    if (req->mem_mib == 0)
        return error_set_field(errp, ERR_INVALID_ARG, "memory", "a VM needs memory (0 MiB)");
    if (n == 0)
        return error_set(errp, ERR_NOT_FOUND, "no host in the cluster to place the VM on");

    AUTOFREE size_t *fitting = xcalloc(n, sizeof(*fitting));
    size_t n_fit = 0, n_rejected = 0, n_considered = 0;
    AUTOFREE char *reasons = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        const struct placement_host *h = &hosts[i];
        if (req->pinned_host && (!h->id || strcmp(h->id, req->pinned_host) != 0))
            continue;
        n_considered++;
        AUTOFREE char *why = NULL;
        if (fit(h, req, cfg, &why)) {
            fitting[n_fit++] = i;
        } else {
            if (n_rejected < PLACEMENT_MAX_REASONS)
                add_reason(&reasons, h, why);
            n_rejected++;
        }
    }
    if (n_considered == 0)
        return error_set(errp, ERR_NOT_FOUND, "pinned host '%s' is not in the cluster",
                         req->pinned_host);
    if (n_fit == 0) {
        if (n_rejected > PLACEMENT_MAX_REASONS)
            return error_set(errp, ERR_NO_SPACE,
                             "no host fits the VM (%u vCPUs, %llu MiB): %s; ... %zu more hosts "
                             "rejected", req->vcpus, MiB(req->mem_mib), reasons,
                             n_rejected - PLACEMENT_MAX_REASONS);
        return error_set(errp, ERR_NO_SPACE, "no host fits the VM (%u vCPUs, %llu MiB): %s",
                         req->vcpus, MiB(req->mem_mib), reasons);
    }

    if (cfg->policy == PLACEMENT_LEAST_LOADED) {
        /* Keep only the hosts tied for the lowest load, in input order. */
        double best = DBL_MAX;
        for (size_t k = 0; k < n_fit; k++) {
            double l = placement_load(&hosts[fitting[k]]);
            if (l < best)
                best = l;
        }
        size_t n_tied = 0;
        for (size_t k = 0; k < n_fit; k++)
            if (placement_load(&hosts[fitting[k]]) <= best + PLACEMENT_LOAD_EPSILON)
                fitting[n_tied++] = fitting[k];
        n_fit = n_tied;
    }
    if (n_fit == 1)
        return (int) fitting[0];
    return (int) fitting[draw(rnd, rnd_arg) % n_fit];
}

int placement_policy_from_string(const char *s, enum placement_policy *out,
                                 struct error **errp)
{
    if (s && strcmp(s, "automatic") == 0) {
        *out = PLACEMENT_RANDOM;
        return 0;
    }
    if (s && strcmp(s, "load-balancing") == 0) {
        *out = PLACEMENT_LEAST_LOADED;
        return 0;
    }
    return error_set_field(errp, ERR_INVALID_ARG, "startup_policy",
                           "unknown startup policy '%s' (automatic or load-balancing)",
                           s ? s : "");
}
