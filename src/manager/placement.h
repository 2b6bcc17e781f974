/* placement.h - initial placement: which host of a cluster gets a new VM.
 *
 * Pure logic, no I/O: the caller takes a snapshot of the cluster's hosts
 * (state, facts, last stats, what the manager already placed on each, which
 * datastores and networks each reaches), the VM's needs and the cluster's
 * policy, and placement_choose() returns the index of the host to use.  The
 * same inputs (and the same 'rnd') always give the same answer, so the rules
 * are unit-tested (tests/unit/manager/test_placement.c) and can be
 * benchmarked at any cluster size.
 *
 * Step 1, filter.  A host fits when every rule below holds, checked in this
 * order; the first rule that fails is the host's reason in the error:
 *
 *   state     state is "connected" ("disconnected", "maintenance" never fit).
 *   pinned    with req->pinned_host set, only the host with that id is
 *             considered (and it still has to pass every rule).
 *   CPU       the host has facts (cpus > 0); the VM has no more vCPUs than
 *             the host has logical CPUs; and
 *               vcpus_committed + req.vcpus <= floor(cpus * cpu_ratio)
 *             where cpu_ratio = cfg->cpu_overcommit_ratio (values <= 0 count
 *             as 1: no CPU overcommit).  The host's current CPU usage does
 *             not filter; it only ranks (step 2).
 *   memory    the host has stats (mem_total_mib > 0), and with
 *               usable = mem_total_mib - host_reserved_mib   (0 if negative)
 *             two checks hold:
 *             a. commitments: mem_committed_mib + req.mem_mib <= limit, where
 *                limit = usable without overcommit, and
 *                limit = floor(usable * mem_ratio) with it (memory_overcommit
 *                on: mem_ratio = cfg->mem_overcommit_ratio, values < 1
 *                count as 1).  "free" in the message is limit - committed.
 *             b. reality, in both modes: the last stats show the request
 *                actually free on top of the reserve:
 *                  mem_total_mib - mem_used_mib - host_reserved_mib >= req.mem_mib
 *                A host short of memory now (workloads the manager does not
 *                account for, or overcommitted VMs that really use their
 *                memory) is not given more.
 *   storage   every id in req->datastores is in the host's datastores.
 *   network   every id in req->networks is in the host's networks.
 *
 * Step 2, choose among the fitting hosts by cfg->policy:
 *
 *   PLACEMENT_RANDOM (cluster startup_policy 'automatic'): fitting host
 *     number rnd(rnd_arg) % n_fitting, in input order.
 *   PLACEMENT_LEAST_LOADED (startup_policy 'load-balancing'): the lowest
 *     placement_load(); hosts whose load is within 1e-9 of the lowest tie,
 *     and rnd picks among the tied ones the same way (so a burst of VMs on
 *     identical idle hosts spreads instead of piling onto the first).
 *
 * 'rnd' may be NULL: random() is used.  Load figures come from the last
 * stats and do not move until the next heartbeat, so a caller placing
 * several VMs in a row adds each VM to its host's mem_committed_mib and
 * vcpus_committed before the next call (placement_load() counts committed
 * memory, so the next VM sees the first).
 *
 * Neighbours: vms.c (builds the snapshot from the store and calls this),
 * schema.c (clusters.startup_policy, memory_overcommit; hosts.stats;
 * host_datastores, host_dvs, host_nat_networks), docs/manager.md
 * ("Placement"). */
#ifndef STRATA_MANAGER_PLACEMENT_H
#define STRATA_MANAGER_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* One host of the cluster, as the caller saw it.  Every pointer is borrowed
 * for the duration of the call. */
struct placement_host {
    const char *id, *name;              /* name is used in messages (id if NULL) */
    const char *state;                  /* only "connected" fits */
    unsigned cpus;                      /* logical CPUs */
    double cpu_usage;                   /* 0..1, from the last stats */
    uint64_t mem_total_mib, mem_used_mib;   /* host, from the last stats */
    uint64_t mem_committed_mib;         /* sum of the memory of VMs the manager placed there */
    unsigned vcpus_committed;
    const char *const *datastores;      /* NULL-terminated ids reachable from the host */
    const char *const *networks;        /* NULL-terminated ids (DVS or NAT network) */
};

/* What the VM needs.  Borrowed. */
struct placement_request {
    unsigned vcpus;                     /* > 0 */
    uint64_t mem_mib;                   /* > 0 */
    const char *const *datastores;      /* all needed (NULL-terminated, may be NULL) */
    const char *const *networks;        /* all needed (NULL-terminated, may be NULL) */
    const char *pinned_host;            /* id: only this one may be chosen (still filtered) */
};

enum placement_policy {
    PLACEMENT_RANDOM,                   /* startup_policy 'automatic' */
    PLACEMENT_LEAST_LOADED,             /* startup_policy 'load-balancing' */
};

/* The cluster's rules. */
struct placement_policy_cfg {
    enum placement_policy policy;
    bool mem_overcommit;                /* clusters.memory_overcommit */
    double mem_overcommit_ratio;        /* e.g. 1.5; used when mem_overcommit */
    double cpu_overcommit_ratio;        /* vCPUs per logical CPU, e.g. 8 */
    uint64_t host_reserved_mib;         /* kept for the host itself */
};

/* Chooses the host for 'req' among hosts[0..n-1].  Returns its index, or -1
 * with ERR_NOT_FOUND when there is no host at all (n == 0, or the pinned
 * host is not among them), ERR_NO_SPACE when no host fits (the message
 * gives each rejected host's reason, "no host fits the VM (2 vCPUs, 1024
 * MiB): node1: disconnected; node2: 512 MiB free < 1024 MiB"; past 20 hosts
 * it ends with "; ... N more hosts rejected"), or ERR_INVALID_ARG for a
 * request of 0 vCPUs or 0 MiB.  'rnd' (NULL: random()) picks among fitting
 * hosts as described above; 'rnd_arg' is passed to it. */
int placement_choose(const struct placement_host *hosts, size_t n,
                     const struct placement_request *req,
                     const struct placement_policy_cfg *cfg,
                     unsigned (*rnd)(void *), void *rnd_arg, struct error **errp);

/* The load score used by PLACEMENT_LEAST_LOADED: 0.5 * CPU fraction + 0.5 *
 * memory fraction, where the CPU fraction is cpu_usage clamped to 0..1 and
 * the memory fraction is max(mem_used_mib, mem_committed_mib) /
 * mem_total_mib (may exceed 1 under memory overcommit; 1 without stats). */
double placement_load(const struct placement_host *h);

/* Maps clusters.startup_policy to a policy.  Returns 0, or -1 with
 * ERR_INVALID_ARG for an unknown value. */
int placement_policy_from_string(const char *s, enum placement_policy *out,
                                 struct error **errp);

#endif
