/* mgr_seed.c - fills a fresh manager database for bench/manager-bench.sh.
 *
 *   mgr_seed DB N_VMS IDS_FILE
 *
 * Creates DB (SQLite, through the manager's own store API so the schema is
 * the one the manager migrates to) and, in one write transaction: a site
 * "bench-site", a cluster "bench-cluster", 4 hosts (disconnected, at
 * 127.0.0.1:9, so the host monitor's heartbeat fails at once) and N_VMS VMs
 * "vm-00001" ... spread over the hosts, each with a definition of about 700
 * bytes (2 vCPUs, 2 GiB, one disk, one NIC) and, for the 2 in 3 marked
 * running, a stats document like the one the agent reports.  Writes every
 * VM's id to IDS_FILE, one per line, for the load generator.  Prints the
 * time the seeding took to stderr.
 *
 * Neighbours: src/manager/store.h (the API used), schema.c (the tables),
 * bench/manager-bench.sh (the caller), bench/rest_load.c (reads IDS_FILE). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/store.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/uuid.h"

#define N_HOSTS 4

static int seed(struct store *s, long n_vms, FILE *ids, struct error **errp)
{
    int64_t now = store_now_ms();
    char site[UUID_STRLEN + 1], cluster[UUID_STRLEN + 1], hosts[N_HOSTS][UUID_STRLEN + 1];
    uuid_generate(site);
    uuid_generate(cluster);

    AUTOTXN struct store_txn *t = store_begin(s, STORE_WRITE, errp);
    if (!t)
        return -1;
    if (store_exec(t, "INSERT INTO sites (id, name, description, created_at, updated_at) "
                      "VALUES (?, 'bench-site', 'manager-bench', ?, ?)",
                   STORE_ARGS(SV_TEXT(site), SV_INT(now), SV_INT(now)), errp) < 0)
        return -1;
    if (store_exec(t, "INSERT INTO clusters (id, site_id, name, startup_policy, "
                      "memory_overcommit, created_at, updated_at) "
                      "VALUES (?, ?, 'bench-cluster', 'load-balancing', 0, ?, ?)",
                   STORE_ARGS(SV_TEXT(cluster), SV_TEXT(site), SV_INT(now), SV_INT(now)),
                   errp) < 0)
        return -1;
    for (int h = 0; h < N_HOSTS; h++) {
        uuid_generate(hosts[h]);
        char name[32];
        snprintf(name, sizeof name, "bench-node%d", h + 1);
        if (store_exec(t, "INSERT INTO hosts (id, name, cluster_id, address, port, state, "
                          "facts, created_at, updated_at) "
                          "VALUES (?, ?, ?, '127.0.0.1', 9, 'disconnected', "
                          "'{\"cpus\": 64, \"memory_mib\": 524288}', ?, ?)",
                       STORE_ARGS(SV_TEXT(hosts[h]), SV_TEXT(name), SV_TEXT(cluster),
                                  SV_INT(now), SV_INT(now)), errp) < 0)
            return -1;
    }

    for (long i = 1; i <= n_vms; i++) {
        char id[UUID_STRLEN + 1];
        uuid_generate(id);
        char name[32];
        snprintf(name, sizeof name, "vm-%05ld", i);
        bool running = i % 3 != 0;
        AUTOFREE char *def = xasprintf(
            "{\"name\": \"%s\", \"machine\": \"q35\", \"firmware\": \"bios\","
            " \"vcpus\": {\"count\": 2, \"max\": 4}, \"memory\": {\"mib\": 2048},"
            " \"cpu\": {\"model\": \"host-model\"},"
            " \"disks\": [{\"id\": \"disk0\", \"bus\": \"virtio\", \"boot_index\": 1,"
            " \"volume\": {\"datastore\": \"ds1\", \"name\": \"%s-disk0\", \"format\": \"qcow2\","
            " \"size_bytes\": 21474836480, \"provisioning\": \"thin\"}}],"
            " \"nics\": [{\"id\": \"nic0\", \"model\": \"virtio\", \"mac\": \"52:54:00:%02lx:%02lx:%02lx\","
            " \"network\": {\"dvs\": \"dvs1\", \"portgroup\": \"pg-vlan100\"}}],"
            " \"graphics\": {\"vnc\": true}, \"guest_agent\": true, \"balloon\": true,"
            " \"description\": \"seeded by bench/mgr_seed for the REST latency benchmark\"}",
            name, name, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        AUTOFREE char *stats = running
            ? xasprintf("{\"cpu_percent\": %.1f, \"memory_rss_mib\": %ld, \"balloon_mib\": 2048,"
                        " \"disk_rd_bytes\": %ld, \"disk_wr_bytes\": %ld,"
                        " \"net_rx_bytes\": %ld, \"net_tx_bytes\": %ld}",
                        (double) (i % 100), 900 + i % 1000, i * 4096, i * 8192, i * 1500,
                        i * 700)
            : NULL;
        if (store_exec(t, "INSERT INTO vms (id, name, cluster_id, host_id, state, definition, "
                          "ha, stats, stats_at, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(cluster),
                                  SV_TEXT(running ? hosts[i % N_HOSTS] : NULL),
                                  SV_TEXT(running ? "running" : "stopped"), SV_TEXT(def),
                                  SV_BOOL(i % 5 == 0), SV_TEXT(stats),
                                  running ? SV_INT(now) : SV_NULL, SV_INT(now), SV_INT(now)),
                       errp) < 0)
            return -1;
        fprintf(ids, "%s\n", id);
    }
    return store_commit(steal_pointer(&t), errp);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: mgr_seed DB N_VMS IDS_FILE\n");
        return 2;
    }
    char *end;
    long n = strtol(argv[2], &end, 10);
    if (!*argv[2] || *end || n < 1 || n > 10000000) {
        fprintf(stderr, "mgr_seed: N_VMS '%s' must be 1..10000000\n", argv[2]);
        return 2;
    }
    FILE *ids = fopen(argv[3], "w");
    if (!ids) {
        perror(argv[3]);
        return 1;
    }
    log_set_level(LOG_LEVEL_WARN);      /* not every migration applied */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    AUTOERROR struct error *err = NULL;
    struct store_config cfg = { .url = argv[1] };
    AUTOSTORE struct store *s = store_open(&cfg, &err);
    if (!s || seed(s, n, ids, &err) < 0) {
        fprintf(stderr, "mgr_seed: %s\n", err ? err->message : "failed");
        fclose(ids);
        return 1;
    }
    if (fclose(ids) != 0) {
        perror(argv[3]);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "mgr_seed: %ld VMs in one transaction, %.0f ms (schema version %u)\n", n,
            (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6,
            store_schema_version(s));
    return 0;
}
