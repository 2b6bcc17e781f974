/* resources.h - storage and network resources the manager pushes to hosts:
 * datastores and volumes, NAT networks, DVSs and port groups.
 *
 * The manager's rows (datastores + host_datastores, nat_networks +
 * host_nat_networks, dvs + host_dvs, portgroups) say what each host should
 * have; the agents hold the real thing.  Writes are pushed to every host
 * concerned *before* the rows are committed, all or nothing: when one host
 * refuses, what was done on the others is undone and nothing is recorded.
 * Every push bumps the host's desired generation (hosts.desired_generation);
 * the host monitor (hosts.c) re-pushes a host's whole share with
 * res_host_resync() when it (re)connects or reports an applied generation
 * below the desired one, then sets the agent's generation.
 *
 * Volumes live on agents only (a datastore's directory is the record); their
 * writes are tasks (task_engine.h) run on any connected host that has the
 * datastore: kinds "volume.create" (also a full copy, "source"),
 * "volume.delete", "volume.resize", "volume.wipe".
 *
 * No store transaction is open while an agent is called.
 *
 * Neighbours: api_storage.c, api_net.c (routes), agent_client.h (calls),
 * hosts.c (the monitor calls res_host_resync/res_host_usage), schema.c
 * (tables; v5 adds datastores.provisioned_bytes). */
#ifndef STRATA_MANAGER_RESOURCES_H
#define STRATA_MANAGER_RESOURCES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/inventory.h"
#include "manager/task_engine.h"
#include "util/error.h"
#include "util/uuid.h"

struct manager;
struct agent_conn;

/* The resource task kinds, NULL-terminated. */
extern const struct task_kind_def *const resource_task_kinds[];

extern const struct inv_kind inv_datastores, inv_nat_networks, inv_dvs, inv_portgroups;

/* ---- pushing one change to several hosts -------------------------------- */

/* One agent call of a push and how to take it back.  'undo_*' are filled by
 * the push itself (from what the agent had before). */
struct res_push {
    char host_id[UUID_STRLEN + 1];
    char *method, *path;
    json_t *body;                   /* may be NULL */
    bool ok_if_conflict;            /* 409 means "already there": kept, never undone */
    char *conflict_get;             /* optional: ... when GET of this answers ... */
    char *conflict_path;            /* ... an object whose "path" is this */
    bool ok_if_missing;             /* 404 means "already gone" (deletes) */
    char *get_path;                 /* optional: read first, see res_push_all() */
    char *undo_method, *undo_path;  /* how to take it back (or filled from get_path) */
    json_t *undo_body;
    /* filled by res_push_all() */
    bool done;
    json_t *reply;                  /* the agent's answer (or the object already there) */
};
void res_push_clear(struct res_push *p);
/* res_push_clear() of each, then free(v).  Accepts NULL. */
void res_pushes_free(struct res_push *v, size_t n);

/* Runs every push in order; when one fails, undoes those done (newest
 * first) and fails with its error, prefixed with the host's name.  'get_path'
 * (optional, per push) is read first so that a PUT replacing an existing
 * object is undone by putting the old one back, and one creating it by a
 * DELETE of 'path'.  Hosts must be connected. */
int res_push_all(struct manager *m, struct res_push *v, size_t n, struct error **errp);
/* Undoes every push done (when what follows the pushes fails). */
void res_push_undo_all(struct manager *m, struct res_push *v, size_t n);

/* Bumps the desired generation of every host in 'host_ids' (n). */
int res_bump_generation(struct store_txn *t, char (*host_ids)[UUID_STRLEN + 1], size_t n,
                        struct error **errp);

/* Resolves a JSON array of host references (ids or names; with 'objects'
 * also {"host": ref, ...}) named 'field' into 'ids' (at most 'max'); every
 * host must exist, none twice.  Returns the count or -1. */
int res_hosts_resolve(struct store_txn *t, const json_t *refs, const char *field, bool objects,
                      char (*ids)[UUID_STRLEN + 1], size_t max, struct error **errp);

#define RES_MAX_HOSTS 256

/* ---- security groups and VLAN pools (api_netsec.c) ---------------------- */

extern const struct inv_kind inv_security_groups, inv_vlan_pools;

/* Parses VLAN ranges "100-199,300" (ascending, 1..4094) into 'set';
 * ERR_INVALID_ARG naming 'field' otherwise. */
int vlan_ranges_parse(const char *s, const char *field, bool set[4096], struct error **errp);
/* The agent body of security group 'name' with rules 'rules_text' (JSON):
 * {"rules", "remote_ips": the addresses of every NIC in the group}. */
json_t *secgroup_agent_body(struct store_txn *t, const char *name, const char *rules_text,
                            struct error **errp);
/* Pushes group 'name' again to every connected host (its members changed);
 * best effort, logged.  A name the inventory does not have is left alone. */
void secgroup_refresh(struct manager *m, const char *name);

/* ---- datastores and volumes --------------------------------------------- */

/* A datastore as shown (the row plus "hosts": [{host_id, host_name, path}]). */
json_t *res_datastore_get(struct store_txn *t, const char *ref, struct error **errp);
json_t *res_datastore_list(struct store_txn *t, const struct inv_page *p, struct error **errp);
/* Registers {"name", "type", "path", "hosts", "overcommit_ratio"?,
 * "heartbeat_interval_s"?} on every host, then records it.  'id_out' gets
 * its id. */
int res_datastore_create(struct manager *m, const json_t *spec, const char *actor,
                         char id_out[UUID_STRLEN + 1], struct error **errp);
/* Removes it from every host and forgets it; ERR_CONFLICT while disks or
 * templates use it, ERR_BAD_STATE while a host still holds volumes in it. */
int res_datastore_delete(struct manager *m, const char *ref, const char *actor,
                         struct error **errp);
/* The agent's volumes of datastore 'ref': a new {"items", "total"}. */
json_t *res_volume_list(struct manager *m, const char *ref, struct error **errp);

enum res_volume_op { RES_VOL_CREATE, RES_VOL_DELETE, RES_VOL_RESIZE, RES_VOL_WIPE };
/* Validates and submits a volume task; 'task_id' receives its id.  'vol' is
 * NULL for RES_VOL_CREATE (the name is in 'body'). */
int res_volume_submit(struct manager *m, enum res_volume_op op, const char *ds_ref,
                      const char *vol, const json_t *body, bool secure, const char *actor,
                      char task_id[UUID_STRLEN + 1], struct error **errp);

/* ---- host monitor hooks -------------------------------------------------- */

/* Pushes everything host 'a' should have (datastores, NAT networks, DVSs
 * with their port groups; idempotent on the agent) and then sets the agent's
 * generation to 'desired'.  Returns 0 when all of it went through. */
int res_host_resync(struct manager *m, struct agent_conn *a, int64_t desired,
                    struct error **errp);
/* Records what the agent says of the datastores it shares with the manager
 * (capacity, free, provisioned, available).  Errors are logged. */
void res_host_usage(struct manager *m, struct agent_conn *a);

#endif
