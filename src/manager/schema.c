/* schema.c - the manager's database schema as numbered migrations.
 *
 * store.c applies every migration newer than the database's recorded
 * version, each in one transaction, and records it in schema_version.  A
 * migration is never edited once released: a change is a new migration.
 *
 * The SQL is portable (SQLite and PostgreSQL): TEXT/INTEGER/BIGINT columns,
 * ids are UUID strings made by the manager (no autoincrement), times are
 * BIGINT milliseconds since the epoch (*_at), booleans INTEGER 0/1 with a
 * CHECK, JSON documents TEXT.  Counters (event sequence numbers) come from
 * the table 'sequences' (store_next_seq()).
 *
 * Deletion rules are in the foreign keys: an object still referenced cannot
 * be deleted (the default, RESTRICT-like NO ACTION: the API answers
 * 'conflict'); tokens, snapshots and per-host links go with their owner.
 *
 * Neighbours: store.c (runs these), inventory.c/auth.c/tasks.c/events.c (use
 * the tables), docs/manager.md (describes them). */
#include "manager/store_backend.h"

#define TS "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL"

static const char *const v1[] = {
    "CREATE TABLE sequences ("
    " name TEXT PRIMARY KEY,"
    " value BIGINT NOT NULL)",

    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " role TEXT NOT NULL CHECK (role IN ('administrator', 'operator', 'viewer')),"
    " password_hash TEXT NOT NULL,"
    " enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"
    " " TS ")",

    "CREATE TABLE api_tokens ("
    " id TEXT PRIMARY KEY,"
    " user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " kind TEXT NOT NULL CHECK (kind IN ('session', 'api')),"
    " name TEXT NOT NULL DEFAULT '',"
    " token_hash TEXT NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT,"
    " last_used_at BIGINT)",
    "CREATE INDEX api_tokens_user ON api_tokens (user_id)",

    "CREATE TABLE sites ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " " TS ")",

    "CREATE TABLE clusters ("
    " id TEXT PRIMARY KEY,"
    " site_id TEXT NOT NULL REFERENCES sites (id),"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " startup_policy TEXT NOT NULL DEFAULT 'automatic'"
    "  CHECK (startup_policy IN ('automatic', 'load-balancing')),"
    " memory_overcommit INTEGER NOT NULL DEFAULT 0 CHECK (memory_overcommit IN (0, 1)),"
    " " TS ")",
    "CREATE INDEX clusters_site ON clusters (site_id)",

    "CREATE TABLE hosts ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " cluster_id TEXT REFERENCES clusters (id),"
    " address TEXT NOT NULL,"
    " port INTEGER NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'disconnected'"
    "  CHECK (state IN ('connected', 'disconnected', 'maintenance')),"
    " desired_generation BIGINT NOT NULL DEFAULT 0,"
    " applied_generation BIGINT NOT NULL DEFAULT 0,"
    " facts TEXT,"
    " cert_serial TEXT,"
    " last_seen_at BIGINT,"
    " " TS ")",
    "CREATE INDEX hosts_cluster ON hosts (cluster_id)",

    "CREATE TABLE datastores ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " site_id TEXT REFERENCES sites (id),"
    " kind TEXT NOT NULL,"
    " virtualized INTEGER NOT NULL DEFAULT 1 CHECK (virtualized IN (0, 1)),"
    " state TEXT NOT NULL DEFAULT 'unknown',"
    " capacity_bytes BIGINT NOT NULL DEFAULT 0,"
    " free_bytes BIGINT NOT NULL DEFAULT 0,"
    " config TEXT NOT NULL DEFAULT '{}',"
    " " TS ")",
    "CREATE TABLE host_datastores ("
    " host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,"
    " datastore_id TEXT NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,"
    " path TEXT,"
    " PRIMARY KEY (host_id, datastore_id))",

    "CREATE TABLE vlan_pools ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " ranges TEXT NOT NULL DEFAULT '[]',"
    " " TS ")",

    "CREATE TABLE dvs ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " site_id TEXT REFERENCES sites (id),"
    " mode TEXT NOT NULL DEFAULT 'normal' CHECK (mode IN ('normal', 'user-space', 'sr-iov')),"
    " mtu INTEGER NOT NULL DEFAULT 1500,"
    " vlan_pool_id TEXT REFERENCES vlan_pools (id),"
    " config TEXT NOT NULL DEFAULT '{}',"
    " " TS ")",
    "CREATE TABLE host_dvs ("
    " host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,"
    " dvs_id TEXT NOT NULL REFERENCES dvs (id) ON DELETE CASCADE,"
    " uplink TEXT NOT NULL DEFAULT '{}',"
    " PRIMARY KEY (host_id, dvs_id))",

    "CREATE TABLE portgroups ("
    " id TEXT PRIMARY KEY,"
    " dvs_id TEXT NOT NULL REFERENCES dvs (id),"
    " name TEXT NOT NULL,"
    " vlan_mode TEXT NOT NULL DEFAULT 'none' CHECK (vlan_mode IN ('none', 'access', 'trunk')),"
    " vlan_id INTEGER,"
    " trunk TEXT,"
    " config TEXT NOT NULL DEFAULT '{}',"
    " " TS ","
    " UNIQUE (dvs_id, name))",

    "CREATE TABLE security_groups ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " description TEXT NOT NULL DEFAULT '',"
    " rules TEXT NOT NULL DEFAULT '[]',"
    " " TS ")",

    "CREATE TABLE templates ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " cluster_id TEXT REFERENCES clusters (id),"
    " definition TEXT NOT NULL,"
    " " TS ")",

    "CREATE TABLE vms ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " cluster_id TEXT REFERENCES clusters (id),"
    " host_id TEXT REFERENCES hosts (id),"
    " template_id TEXT REFERENCES templates (id) ON DELETE SET NULL,"
    " state TEXT NOT NULL DEFAULT 'stopped',"
    " definition TEXT NOT NULL,"
    " ha INTEGER NOT NULL DEFAULT 0 CHECK (ha IN (0, 1)),"
    " " TS ")",
    "CREATE INDEX vms_cluster ON vms (cluster_id)",
    "CREATE INDEX vms_host ON vms (host_id)",
    "CREATE INDEX vms_state ON vms (state)",

    "CREATE TABLE disks ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " vm_id TEXT REFERENCES vms (id),"
    " template_id TEXT REFERENCES templates (id),"
    " datastore_id TEXT REFERENCES datastores (id),"
    " parent_id TEXT REFERENCES disks (id),"
    " path TEXT,"
    " size_bytes BIGINT NOT NULL,"
    " provisioning TEXT NOT NULL DEFAULT 'thin'"
    "  CHECK (provisioning IN ('thick-eager', 'thick-lazy', 'thin', 'differencing')),"
    " disk_type TEXT NOT NULL DEFAULT 'normal' CHECK (disk_type IN ('normal', 'shared')),"
    " mode TEXT NOT NULL DEFAULT 'dependent'"
    "  CHECK (mode IN ('dependent', 'independent-persistent', 'independent-nonpersistent')),"
    " " TS ")",
    "CREATE INDEX disks_vm ON disks (vm_id)",
    "CREATE INDEX disks_datastore ON disks (datastore_id)",

    "CREATE TABLE snapshots ("
    " id TEXT PRIMARY KEY,"
    " vm_id TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
    " parent_id TEXT REFERENCES snapshots (id),"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL DEFAULT 'disk-only' CHECK (kind IN ('disk-only', 'memory', 'consistent')),"
    " created_at BIGINT NOT NULL,"
    " UNIQUE (vm_id, name))",

    "CREATE TABLE tasks ("
    " id TEXT PRIMARY KEY,"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'queued'"
    "  CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),"
    " progress INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),"
    " object_type TEXT,"
    " object_id TEXT,"
    " user_name TEXT,"
    " params TEXT NOT NULL DEFAULT '{}',"
    " steps TEXT NOT NULL DEFAULT '[]',"
    " result TEXT,"
    " error TEXT,"
    " " TS ","
    " started_at BIGINT,"
    " finished_at BIGINT)",
    "CREATE INDEX tasks_state ON tasks (state)",
    "CREATE INDEX tasks_object ON tasks (object_type, object_id)",

    "CREATE TABLE events ("
    " seq BIGINT PRIMARY KEY,"
    " at BIGINT NOT NULL,"
    " type TEXT NOT NULL,"
    " severity TEXT NOT NULL DEFAULT 'info' CHECK (severity IN ('info', 'warning', 'error')),"
    " object_type TEXT,"
    " object_id TEXT,"
    " object_name TEXT,"
    " task_id TEXT,"
    " user_name TEXT,"
    " message TEXT NOT NULL,"
    " data TEXT)",
    "CREATE INDEX events_object ON events (object_type, object_id)",
    NULL,
};

/* Host join: one-time tokens an administrator hands to a new host. */
static const char *const v2[] = {
    "CREATE TABLE join_tokens ("
    " id TEXT PRIMARY KEY,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " cluster_id TEXT REFERENCES clusters (id) ON DELETE CASCADE,"
    " created_by TEXT,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " used_at BIGINT,"
    " host_id TEXT)",
    NULL,
};

/* Task engine: what completed steps recorded, for resuming or undoing them
 * after a restart. */
static const char *const v3[] = {
    "ALTER TABLE tasks ADD COLUMN checkpoint TEXT NOT NULL DEFAULT '{}'",
    NULL,
};

/* Compute: what the manager needs to drive agents and to reconcile with
 * them.  hosts.stats is the last heartbeat's /v1/host/stats (placement reads
 * it); vms.host_state is the state the agent last reported and vms.task_id
 * the task that holds the VM; vm_nics keeps MAC addresses unique across the
 * inventory; template disks keep the volumes a deployment clones from;
 * revoked_certs lists the agent certificates of deleted hosts (the CRL). */
static const char *const v4[] = {
    "ALTER TABLE hosts ADD COLUMN stats TEXT",
    "ALTER TABLE hosts ADD COLUMN stats_at BIGINT",
    "ALTER TABLE vms ADD COLUMN stats TEXT",
    "ALTER TABLE vms ADD COLUMN stats_at BIGINT",
    "ALTER TABLE vms ADD COLUMN reason TEXT",
    "ALTER TABLE templates ADD COLUMN datastore_id TEXT REFERENCES datastores (id)",
    "ALTER TABLE templates ADD COLUMN description TEXT NOT NULL DEFAULT ''",
    "CREATE TABLE vm_nics ("
    " mac TEXT PRIMARY KEY,"
    " vm_id TEXT NOT NULL REFERENCES vms (id) ON DELETE CASCADE,"
    " nic_id TEXT NOT NULL)",
    "CREATE INDEX vm_nics_vm ON vm_nics (vm_id)",
    "CREATE TABLE nat_networks ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " subnet TEXT NOT NULL,"
    " config TEXT NOT NULL DEFAULT '{}',"
    " " TS ")",
    "CREATE TABLE host_nat_networks ("
    " host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,"
    " nat_id TEXT NOT NULL REFERENCES nat_networks (id) ON DELETE CASCADE,"
    " PRIMARY KEY (host_id, nat_id))",
    "CREATE TABLE revoked_certs ("
    " serial TEXT PRIMARY KEY,"
    " host_name TEXT NOT NULL,"
    " revoked_at BIGINT NOT NULL)",
    NULL,
};

/* Storage inventory: what the agents last reported of each datastore's
 * provisioned (virtual) size, beside capacity_bytes and free_bytes. */
static const char *const v5[] = {
    "ALTER TABLE datastores ADD COLUMN provisioned_bytes BIGINT NOT NULL DEFAULT 0",
    NULL,
};

const struct store_migration store_migrations[] = {
    { 1, "inventory, users, tokens, tasks, events", v1 },
    { 2, "host join tokens", v2 },
    { 3, "task checkpoints", v3 },
    { 4, "compute: host stats, VM NICs, NAT networks, revoked certificates", v4 },
    { 5, "datastore provisioned bytes", v5 },
    { 0, NULL, NULL },
};
