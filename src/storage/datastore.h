/* datastore.h - datastores: the directories VM disks live in.
 *
 * A datastore is a directory on this host, either *local* or *shared* (the
 * same path mounted on several hosts: NFS, CephFS, OCFS2 in production, one
 * directory in tests).  The agent keeps one record per datastore under its
 * state directory:
 *   <state_dir>/storage/datastores/<name>.json
 * and the datastore carries its own identity and metadata inside:
 *   <path>/.strata/datastore.json        uuid, name, type (adopted by every
 *                                        host that registers the directory)
 *   <path>/.strata/volumes/<vol>.json    volume records (volume.h)
 *   <path>/.strata/heartbeat/<host>.json storage heartbeats (shared only)
 *   <path>/<vol>.<fmt>, <vol>.<id>.qcow2 image files
 * Capacity and free space come from statvfs(); "provisioned" is the sum of
 * the virtual sizes of the datastore's volumes, so thin overcommit is
 * visible.  An allocation is refused (ERR_NO_SPACE) when provisioned + new
 * would exceed capacity * overcommit_ratio, and a thick one also when it
 * exceeds the free space.
 *
 * Pure records and file I/O; no threads.  The agent module
 * (agent/storage_api.c) owns the list, the lock and the heartbeat thread. */
#ifndef STRATA_STORAGE_DATASTORE_H
#define STRATA_STORAGE_DATASTORE_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"
#include "util/uuid.h"

#define DATASTORE_NAME_MAX 64
#define DATASTORE_DEFAULT_OVERCOMMIT 3.0
#define DATASTORE_DEFAULT_HEARTBEAT_S 5

enum datastore_type { DATASTORE_LOCAL, DATASTORE_SHARED, DATASTORE__COUNT };
const char *datastore_type_to_string(enum datastore_type t);
int datastore_type_from_string(const char *s);

struct datastore {
    char *name;
    char uuid[UUID_STRLEN + 1];
    enum datastore_type type;
    char *path;                     /* clean absolute directory */
    double overcommit_ratio;        /* >= 1.0 */
    unsigned heartbeat_interval_s;  /* shared only; 1..60 */
    long long created_ms;
};

struct datastore_usage {
    unsigned long long capacity, free, used, provisioned;
    unsigned volumes;
};

/* [A-Za-z0-9][A-Za-z0-9_-]{0,63}: also used for volume and snapshot names. */
int storage_name_validate(const char *name, const char *what, const char *field,
                          struct error **errp);

/* Parses an API body or a stored record (unknown keys refused; 'uuid' and
 * 'created_ms' accepted only when 'stored').  Returns a new datastore. */
struct datastore *datastore_from_json(const json_t *j, bool stored, struct error **errp);
json_t *datastore_to_json(const struct datastore *ds);
void datastore_free(struct datastore *ds);   /* Accepts NULL. */

/* Records under <state_dir>/storage/datastores/. */
int datastore_save(const struct datastore *ds, const char *state_dir, struct error **errp);
int datastore_remove_record(const char *name, const char *state_dir, struct error **errp);
/* Loads every record; '*n' set; bad records are logged and skipped. */
struct datastore **datastore_load_all(const char *state_dir, size_t *n);

/* Checks the directory exists, creates <path>/.strata/..., and adopts the
 * identity found there (a shared directory registered by another host keeps
 * its uuid) or writes a new one. */
int datastore_prepare_dir(struct datastore *ds, struct error **errp);

int datastore_usage_get(const struct datastore *ds, struct datastore_usage *u,
                        struct error **errp);
/* ERR_NO_SPACE naming 'field' when 'bytes' more cannot be provisioned. */
int datastore_check_alloc(const struct datastore *ds, unsigned long long bytes, bool thick,
                          const char *field, struct error **errp);

/* Writes <path>/.strata/heartbeat/<host_id>.json (atomic, fsync'd). */
int datastore_heartbeat_write(const struct datastore *ds, const char *host_id,
                              const char *hostname, unsigned long long seq,
                              struct error **errp);
/* Every host's heartbeat record, with "age_ms". */
json_t *datastore_heartbeats_read(const struct datastore *ds);

/* Directory of the datastore's metadata: "<path>/.strata/<sub>" (new string). */
char *datastore_meta_path(const struct datastore *ds, const char *sub);

#endif
