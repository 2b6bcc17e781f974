/* vm_storage.h - the storage module's state in the node agent, and the
 * operations on a VM's disks: snapshots (vm_snapshot.c), migration, resize,
 * throw-away overlays and start-time checks (vm_disk.c).
 *
 * These files live in src/storage but are compiled into the agent (they use
 * struct vm, job tokens and the VM's monitor); the routes are in
 * agent/storage_api.c.  Each operation takes the VM's job token (one job per
 * VM at a time) for its whole duration, also when it runs as an agent job
 * (the HTTP handler takes the token, the job thread gives it back).
 *
 * Locks: st->lock guards the datastore list and the module's small maps; it
 * is taken after vm->lock is released, never while waiting on QMP, qemu-ga
 * or a child process, and never around agent_vm_list() (agent->lock).
 *
 * Files in a VM's state directory (<state_dir>/vms/<name>/):
 *   snapshots.json   the snapshot tree and any operation in progress
 *   snap-<id>.vmstate  memory of a snapshot taken with memory
 *   storage-op.json  a disk migration in progress (crash recovery) */
#ifndef STRATA_STORAGE_VM_STORAGE_H
#define STRATA_STORAGE_VM_STORAGE_H

#include <jansson.h>
#include <pthread.h>

#include "agent/agent.h"
#include "storage/blockjob.h"
#include "storage/datastore.h"
#include "storage/volume.h"

struct storage {
    struct agent *a;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct datastore **ds;           /* registered datastores */
    size_t n_ds;
    json_t *heartbeat;               /* datastore name -> {seq, last_ms, error} */
    json_t *nonpersistent;           /* vm -> disk id -> {orig, format, overlay} */
    json_t *io_paused;               /* vm -> true while paused for ENOSPC (event sent) */
    json_t *copying;                 /* "ds/vol" -> copies reading it (full copies) */
    char host_id[UUID_STRLEN + 1];
    char *hostname;
    bool stopping;
    pthread_t hb_thread, ev_thread;
    bool threads_started;
};

/* The module state (a->storage). */
static inline struct storage *storage_of(struct agent *a) { return a->storage; }

/* True while a full copy reads volume 'vol' of datastore 'ds' (st->lock held). */
bool storage_volume_copying_locked(struct storage *st, const char *ds, const char *vol);

/* A copy of the datastore named 'name' (ERR_NOT_FOUND naming 'field'). */
struct datastore *storage_ds_get(struct agent *a, const char *name, const char *field,
                                 struct error **errp);
/* A copy of the datastore containing 'path', or NULL. */
struct datastore *storage_ds_for_path(struct agent *a, const char *path);
/* The directory 'path' must stay inside: its datastore, else the allowed
 * image root containing it; new string or NULL. */
char *storage_containment_root(struct agent *a, const char *path);

/* What the storage module knows about one disk of a VM definition. */
struct disk_ctx {
    struct datastore *ds;            /* owned copy or NULL (not in a datastore) */
    struct volume *vol;              /* owned or NULL (no record) */
    enum volume_mode mode;
};
void disk_ctx_clear(struct disk_ctx *c);
void storage_disk_ctx(struct agent *a, const struct vm_disk *d, struct disk_ctx *out);

/* QMP access for blockjob.c on the VM's monitor. */
void storage_vm_qmp(struct vm *vm, struct blockjob_qmp *q);
/* Progress into the VM's summary (job.progress) and an agent job. */
struct storage_progress {
    struct vm *vm;
    struct agent_job *job;
};
void storage_progress_init(struct image_progress *p, struct storage_progress *sp, int lo,
                           int hi);

/* The VM's definition with 'fn' applied, validated and stored. */
int storage_commit_def(struct agent *a, struct vm *vm, json_t *def, struct error **errp);
enum vm_state storage_vm_state(struct vm *vm);

/* ---- vm_snapshot.c ---- */
/* "<dir>/<prefix>.<tag>.qcow2" beside 'top' (prefix: its name up to the
 * first '.'); new string. */
char *storage_overlay_path(const char *top, const char *tag);
/* The backing name to write into 'child': relative when in the same
 * directory; new string. */
char *storage_relative_backing(const char *child, const char *backing);
json_t *vm_snapshot_list(struct agent *a, struct vm *vm, struct error **errp);
json_t *vm_snapshot_get(struct agent *a, struct vm *vm, const char *name, struct error **errp);
/* kind: "disk-only", "memory", "consistent". */
json_t *vm_snapshot_create(struct agent *a, struct vm *vm, const char *name, const char *kind,
                           const char *description, struct error **errp);
/* VM stopped: new deltas on the snapshot's layers; a memory snapshot then
 * resumes from its memory when 'start' (default for memory snapshots). */
int vm_snapshot_revert(struct agent *a, struct vm *vm, const char *name, int start,
                       struct error **errp);
/* Starts the merge as an agent job; returns the job. */
json_t *vm_snapshot_delete(struct agent *a, struct vm *vm, const char *name,
                           struct error **errp);
/* Agent start: finishes or rolls back snapshot operations a crash
 * interrupted; resumes interrupted merges as jobs. */
void vm_snapshot_recover(struct agent *a);
/* True if 'path' is a layer of one of the VM's snapshots. */
bool vm_snapshot_uses_disk(struct agent *a, struct vm *vm, const char *disk_id);

/* ---- vm_disk.c ---- */
int storage_vm_prepare(struct agent *a, struct vm *vm, struct error **errp);
void storage_vm_stopped(struct agent *a, struct vm *vm);
void storage_nonpersistent_recover(struct agent *a);
void storage_nonpersistent_save_locked(struct storage *st);
/* Live (running) or cold (stopped) move of a disk to another datastore: a job. */
json_t *vm_disk_migrate(struct agent *a, struct vm *vm, const char *disk_id,
                        const json_t *body, struct error **errp);
int vm_disk_resize(struct agent *a, struct vm *vm, const char *disk_id,
                   unsigned long long capacity, struct error **errp);
/* Per-disk storage view: datastore, volume, mode, chain, io status. */
json_t *vm_storage_info(struct agent *a, struct vm *vm, struct error **errp);
void vm_disk_migrate_recover(struct agent *a);
/* VMs whose definition uses a file of volume 'vol' in 'ds' (new string of
 * names, comma separated, or NULL). */
char *storage_volume_users(struct agent *a, const struct datastore *ds, const char *vol,
                           bool active_only);

#endif
