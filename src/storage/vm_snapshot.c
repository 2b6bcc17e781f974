/* vm_snapshot.c - external (redirect-on-write) snapshots of a VM's disks.
 *
 * Taking snapshot S of a disk whose active layer is A: a qcow2 overlay
 * O = "<dir>/<prefix>.<id>.qcow2" backed by A (relative name) is created and
 * the VM switches to it - live, all disks at once in one QMP transaction of
 * blockdev-snapshot actions (QEMU reopens A read-only), or offline by editing
 * the definition.  A is S's *frozen layer*; the stored definition names O, so
 * a cold start opens the chain.  With kind "memory" the VM is paused across
 * the switch and its memory saved (migration to a file descriptor, as
 * hibernation does); "consistent" freezes the guest's filesystems through
 * qemu-ga around the switch when the guest agent answers.  Independent and
 * read-only disks are left out.
 *
 * Revert to S (VM stopped): a new overlay on each of S's frozen layers; the
 * current active layers are discarded when no snapshot holds them; with
 * memory, the VM is put in the hibernated state on S's memory and command
 * line (disk paths replaced), and starting it resumes from there.
 *
 * Delete S (a job): each layer L of S has a parent P (L's backing file) and
 * children (the layers whose backing file is L: later snapshots' frozen
 * layers, or the active layer).  L's data is streamed into every child
 * (block-stream live when the child is in the running VM's graph, else
 * "qemu-img rebase" onto P), then L is removed, so nothing is lost whatever
 * the tree looks like.  Before starting, the snapshot is marked "merging" and
 * the operation recorded in snapshots.json ("pending"); it is cleared only
 * after every child is confirmed rebased.  Each step is idempotent (a child
 * already on P is skipped), so on agent start an interrupted merge is simply
 * run again as a job ("snapshot-merge-resumed" event), and a failure leaves
 * the snapshot "merge-failed" with the error - never a silently broken chain.
 *
 * Record: <vm dir>/snapshots.json
 *   {"current": id|null, "snapshots": [{"id", "name", "parent", "created_ms",
 *     "kind", "vm_state", "description", "memory", "argv", "state",
 *     "disks": [{"id", "file", "format"}]}], "pending": {...}|null} */
#define LOG_MODULE "snapshot"
#include "storage/vm_storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/guest.h"
#include "agent/hotplug.h"
#include "agent/jobs.h"
#include "agent/lifecycle.h"
#include "agent/monitor.h"
#include "qmp/qmp.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QMP_TIMEOUT_MS 10000
#define SNAP_FD_NAME "strata-snap"

/* ---- the record ------------------------------------------------------------------ */

static char *tree_path(struct vm *vm)
{
    return xasprintf("%s/snapshots.json", vm->dir);
}

static json_t *tree_load(struct vm *vm, struct error **errp)
{
    AUTOFREE char *path = tree_path(vm);
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *text = file_read_all(path, 8 << 20, NULL, &err);
    if (!text) {
        if (err->code == ERR_NOT_FOUND)
            return json_pack("{s:[], s:n, s:n}", "snapshots", "current", "pending");
        error_propagate(errp, steal_pointer(&err));
        return NULL;
    }
    json_t *t = json_from_string(text, strlen(text), errp);
    if (t && !json_is_array(json_object_get(t, "snapshots"))) {
        json_decref(t);
        return error_set(errp, ERR_INTERNAL, "'%s' is not a snapshot record", path), NULL;
    }
    return t;
}

static int tree_save(struct vm *vm, json_t *t, struct error **errp)
{
    AUTOFREE char *path = tree_path(vm);
    AUTOFREE char *text = json_dumps(t, JSON_INDENT(1) | JSON_SORT_KEYS);
    return file_write_atomic(path, text, strlen(text), 0600, errp);
}

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *snap_by(const json_t *t, const char *key, const char *value)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(t, "snapshots"), i, s) {
        const char *v = sget(s, key);
        if (v && value && !strcmp(v, value))
            return s;
    }
    return NULL;
}

static void new_id(char out[9])
{
    char u[UUID_STRLEN + 1];
    uuid_generate(u);
    memcpy(out, u, 8);
    out[8] = '\0';
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash != path ? xstrndup(path, (size_t) (slash - path)) : xstrdup("/");
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* "<dir>/<prefix>.<tag>.qcow2" next to 'top' (prefix: up to the first '.'). */
char *storage_overlay_path(const char *top, const char *tag)
{
    AUTOFREE char *dir = dir_of(top);
    const char *b = base_of(top);
    const char *dot = strchr(b, '.');
    AUTOFREE char *prefix = dot ? xstrndup(b, (size_t) (dot - b)) : xstrdup(b);
    return xasprintf("%s/%s.%s.qcow2", dir, prefix, tag);
}

/* The name to write into 'child's header for backing file 'backing'. */
char *storage_relative_backing(const char *child, const char *backing)
{
    AUTOFREE char *cd = dir_of(child);
    AUTOFREE char *bd = dir_of(backing);
    return !strcmp(cd, bd) ? xstrdup(base_of(backing)) : xstrdup(backing);
}

static json_t *def_json(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    json_t *j = vm_def_to_json(vm->def);
    pthread_mutex_unlock(&vm->lock);
    return j;
}

static json_t *def_disk(json_t *def, const char *id)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(def, "disks"), i, d) {
        const char *v = sget(d, "id");
        if (v && !strcmp(v, id))
            return d;
    }
    return NULL;
}

int storage_commit_def(struct agent *a, struct vm *vm, json_t *def, struct error **errp)
{
    return vm_commit_def(a, vm, def, errp);
}

static bool file_same(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    if (!strcmp(a, b))
        return true;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* True if some snapshot of 't' has 'file' as a frozen layer. */
static bool is_frozen_layer(const json_t *t, const char *file)
{
    size_t i, k;
    json_t *s, *d;
    json_array_foreach(json_object_get(t, "snapshots"), i, s)
        json_array_foreach(json_object_get(s, "disks"), k, d)
            if (file_same(sget(d, "file"), file))
                return true;
    return false;
}

bool vm_snapshot_uses_disk(struct agent *a, struct vm *vm, const char *disk_id)
{
    (void) a;
    AUTOJSON json_t *t = tree_load(vm, NULL);
    size_t i, k;
    json_t *s, *d;
    json_array_foreach(json_object_get(t, "snapshots"), i, s)
        json_array_foreach(json_object_get(s, "disks"), k, d)
            if (!strcmp(sget(d, "id") ? sget(d, "id") : "", disk_id))
                return true;
    return false;
}

/* ---- views ------------------------------------------------------------------------ */

static json_t *snap_view(const json_t *t, const json_t *s)
{
    json_t *o = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s}", "name", sget(s, "name"), "id",
                          sget(s, "id"), "created_ms", json_object_get(s, "created_ms"), "kind",
                          sget(s, "kind"), "vm_state", sget(s, "vm_state"), "state",
                          sget(s, "state") ? sget(s, "state") : "ready");
    const json_t *parent = snap_by(t, "id", sget(s, "parent"));
    json_object_set_new(o, "parent", parent ? json_string(sget(parent, "name")) : json_null());
    if (sget(s, "description"))
        json_object_set_new(o, "description", json_string(sget(s, "description")));
    if (sget(s, "error"))
        json_object_set_new(o, "error", json_string(sget(s, "error")));
    unsigned long long size = 0;
    json_t *disks = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(s, "disks"), i, d) {
        long long b = image_allocated_bytes(sget(d, "file"));
        size += b > 0 ? (unsigned long long) b : 0;
        json_array_append_new(disks, json_pack("{s:s, s:s, s:I}", "id", sget(d, "id"), "file",
                                               sget(d, "file"), "size",
                                               (json_int_t) (b > 0 ? b : 0)));
    }
    if (sget(s, "memory")) {
        long long b = image_allocated_bytes(sget(s, "memory"));
        size += b > 0 ? (unsigned long long) b : 0;
        json_object_set_new(o, "memory_size", json_integer(b > 0 ? b : 0));
    }
    json_object_set_new(o, "disks", disks);
    json_object_set_new(o, "size", json_integer((json_int_t) size));
    json_object_set_new(o, "current", json_boolean(sget(t, "current") && sget(s, "id")
                                                   && !strcmp(sget(t, "current"), sget(s, "id"))));
    json_t *kids = json_array();
    json_t *c;
    json_array_foreach(json_object_get(t, "snapshots"), i, c)
        if (sget(c, "parent") && !strcmp(sget(c, "parent"), sget(s, "id")))
            json_array_append_new(kids, json_string(sget(c, "name")));
    json_object_set_new(o, "children", kids);
    return o;
}

static json_t *tree_node(const json_t *t, const json_t *s)
{
    json_t *o = snap_view(t, s);
    json_t *kids = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(t, "snapshots"), i, c)
        if (sget(c, "parent") && !strcmp(sget(c, "parent"), sget(s, "id")))
            json_array_append_new(kids, tree_node(t, c));
    json_object_set_new(o, "children", kids);
    return o;
}

json_t *vm_snapshot_list(struct agent *a, struct vm *vm, struct error **errp)
{
    (void) a;
    AUTOJSON json_t *t = tree_load(vm, errp);
    if (!t)
        return NULL;
    json_t *flat = json_array(), *roots = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(t, "snapshots"), i, s) {
        json_array_append_new(flat, snap_view(t, s));
        if (!snap_by(t, "id", sget(s, "parent")))
            json_array_append_new(roots, tree_node(t, s));
    }
    const json_t *cur = snap_by(t, "id", sget(t, "current"));
    json_t *out = json_pack("{s:o, s:o}", "snapshots", flat, "tree", roots);
    json_object_set_new(out, "current", cur ? json_string(sget(cur, "name")) : json_null());
    json_t *p = json_object_get(t, "pending");
    if (json_is_object(p))
        json_object_set_new(out, "pending", json_deep_copy(p));
    return out;
}

json_t *vm_snapshot_get(struct agent *a, struct vm *vm, const char *name, struct error **errp)
{
    (void) a;
    AUTOJSON json_t *t = tree_load(vm, errp);
    if (!t)
        return NULL;
    json_t *s = snap_by(t, "name", name);
    if (!s)
        return error_set_field(errp, ERR_NOT_FOUND, "snapshot", "VM '%s' has no snapshot '%s'",
                               vm->name, name), NULL;
    return snap_view(t, s);
}

/* ---- memory ------------------------------------------------------------------------- */

/* Saves the paused VM's memory into 'path' (migration to a passed fd). */
static int save_memory(struct vm *vm, const char *path, struct error **errp)
{
    AUTOFREE char *tmp = xasprintf("%s.part", path);
    AUTOCLOSE int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create '%s'", tmp);
    {
        AUTOVMQMP struct vm_qmp *q = vm_qmp_acquire(vm, errp);
        if (!q)
            goto fail;
        json_t *r = qmp_client_call_fd(q->client, "getfd",
                                       json_pack("{s:s}", "fdname", SNAP_FD_NAME), fd,
                                       QMP_TIMEOUT_MS, errp);
        if (!r)
            goto fail;
        json_decref(r);
    }
    json_t *r = vm_qmp_call(vm, "migrate", json_pack("{s:s}", "uri", "fd:" SNAP_FD_NAME),
                            QMP_TIMEOUT_MS, errp);
    if (!r)
        goto fail;
    json_decref(r);
    for (;;) {
        r = vm_qmp_call(vm, "query-migrate", NULL, QMP_TIMEOUT_MS, errp);
        if (!r)
            goto fail;
        const char *st = sget(r, "status");
        if (st && !strcmp(st, "completed")) {
            json_decref(r);
            break;
        }
        if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"))) {
            error_set(errp, ERR_QEMU, "saving the memory of VM '%s' failed: %s", vm->name,
                      sget(r, "error-desc") ? sget(r, "error-desc") : st);
            json_decref(r);
            goto fail;
        }
        json_decref(r);
        usleep(10000);
    }
    if (fsync(fd) < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot sync '%s'", tmp);
        goto fail;
    }
    if (rename(tmp, path) < 0) {
        error_set_errno(errp, ERR_IO, errno, "cannot rename '%s'", tmp);
        goto fail;
    }
    return 0;
fail:
    unlink(tmp);
    return -1;
}

/* ---- create ------------------------------------------------------------------------- */

struct snap_disk {
    char *id, *top, *overlay, *node, *file_node;
    enum disk_format format;
};

static void snap_disks_free(struct snap_disk *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].top);
        free(v[i].overlay);
        free(v[i].node);
        free(v[i].file_node);
    }
    free(v);
}

/* The disks a snapshot covers: dependent, writable. */
static struct snap_disk *pick_disks(struct agent *a, struct vm *vm, size_t *n)
{
    pthread_mutex_lock(&vm->lock);
    struct vm_def *def = vm_def_copy(vm->def);
    pthread_mutex_unlock(&vm->lock);
    struct snap_disk *v = xcalloc(def->n_disks + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < def->n_disks; i++) {
        const struct vm_disk *d = &def->disks[i];
        if (d->readonly || d->shared)
            continue;
        struct disk_ctx c;
        storage_disk_ctx(a, d, &c);
        bool dep = c.mode == VOLUME_DEPENDENT;
        disk_ctx_clear(&c);
        if (!dep)
            continue;
        v[*n].id = xstrdup(d->id);
        v[*n].top = xstrdup(d->path);
        v[*n].format = d->format;
        (*n)++;
    }
    vm_def_free(def);
    return v;
}

static json_t *thaw(struct agent *a, struct vm *vm, bool frozen)
{
    if (!frozen)
        return NULL;
    AUTOERROR struct error *err = NULL;
    json_t *r = guest_agent_call(a, vm, "guest-fsfreeze-thaw", NULL, 10000, &err);
    if (!r)
        LOG_ERROR("VM '%s': cannot thaw the guest's filesystems: %s", vm->name, err->message);
    return r;
}

json_t *vm_snapshot_create(struct agent *a, struct vm *vm, const char *name, const char *kind,
                           const char *description, struct error **errp)
{
    if (vm_job_begin(vm, "snapshot-create", 5000, errp) < 0)
        return NULL;
    json_t *result = NULL;
    AUTOJSON json_t *t = NULL;
    size_t n = 0;
    struct snap_disk *disks = NULL;
    bool frozen = false, stopped_here = false, switched = false;
    long long switch_ms = -1;
    char id[9];
    new_id(id);
    AUTOFREE char *memfile = NULL;
    AUTOERROR struct error *serr = NULL;
    bool with_memory = !strcmp(kind, "memory");

    enum vm_state s = storage_vm_state(vm);
    bool live = s == VM_STATE_RUNNING || s == VM_STATE_PAUSED;
    if (!live && s != VM_STATE_STOPPED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: snapshots are taken running, paused or "
                  "stopped", vm->name, vm_state_to_string(s));
        goto out;
    }
    if (with_memory && !live) {
        error_set_field(errp, ERR_BAD_STATE, "kind",
                        "a snapshot with memory needs VM '%s' running or paused", vm->name);
        goto out;
    }
    if (with_memory) {
        pthread_mutex_lock(&vm->lock);
        bool changed = json_array_size(vm->hotplug_extra) > 0;
        pthread_mutex_unlock(&vm->lock);
        if (changed) {
            error_set_field(errp, ERR_BAD_STATE, "kind",
                            "VM '%s' had hardware added or removed since it started: power "
                            "it off and on before taking a snapshot with memory", vm->name);
            goto out;
        }
    }
    t = tree_load(vm, errp);
    if (!t)
        goto out;
    if (snap_by(t, "name", name)) {
        error_set_field(errp, ERR_CONFLICT, "name", "VM '%s' already has a snapshot '%s'",
                        vm->name, name);
        goto out;
    }
    if (json_is_object(json_object_get(t, "pending"))) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' has an unfinished snapshot operation (%s)",
                  vm->name, sget(json_object_get(t, "pending"), "op"));
        goto out;
    }
    disks = pick_disks(a, vm, &n);
    if (n == 0 && !with_memory) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' has no dependent writable disk to snapshot",
                  vm->name);
        goto out;
    }
    struct blockjob_qmp q;
    storage_vm_qmp(vm, &q);
    for (size_t i = 0; i < n; i++) {
        disks[i].overlay = storage_overlay_path(disks[i].top, id);
        if (file_exists(disks[i].overlay)) {
            error_set(errp, ERR_CONFLICT, "file '%s' already exists", disks[i].overlay);
            goto undo_files;
        }
        AUTOFREE char *rel = storage_relative_backing(disks[i].overlay, disks[i].top);
        AUTOCOMMAND struct command *c = image_cmd_create_overlay(disks[i].overlay, rel,
                                                                 disks[i].format);
        if (image_run(c, NULL, errp) < 0) {
            error_prefix(errp, "disk '%s'", disks[i].id);
            goto undo_files;
        }
        disks[i].node = xasprintf("sn%s-%zu", id, i);
        disks[i].file_node = xasprintf("sf%s-%zu", id, i);
    }
    /* Intent first: a crash from here on is finished or rolled back at start. */
    json_t *pend = json_pack("{s:s, s:s, s:[]}", "op", "create", "id", id, "overlays");
    for (size_t i = 0; i < n; i++)
        json_array_append_new(json_object_get(pend, "overlays"),
                              json_pack("{s:s, s:s, s:s}", "id", disks[i].id, "file",
                                        disks[i].overlay, "top", disks[i].top));
    json_object_set_new(t, "pending", pend);
    if (tree_save(vm, t, errp) < 0)
        goto undo_files;

    bool was_running = s == VM_STATE_RUNNING;
    if (live) {
        if (!strcmp(kind, "consistent")) {
            pthread_mutex_lock(&vm->lock);
            bool has_agent = vm->def->guest_agent;
            pthread_mutex_unlock(&vm->lock);
            has_agent = has_agent && guest_agent_available(a, vm, 1000);
            if (has_agent) {
                AUTOERROR struct error *ferr = NULL;
                json_t *r = guest_agent_call(a, vm, "guest-fsfreeze-freeze", NULL, 10000, &ferr);
                if (r) {
                    frozen = true;
                    json_decref(r);
                } else {
                    LOG_WARN("VM '%s': fsfreeze failed (%s); snapshot is crash-consistent",
                             vm->name, ferr->message);
                }
            }
        }
        if (with_memory && was_running) {
            json_t *r = vm_qmp_call(vm, "stop", NULL, QMP_TIMEOUT_MS, errp);
            if (!r)
                goto undo_pending;
            json_decref(r);
            stopped_here = true;
        }
        if (n) {
            struct blockjob_snap *bs = xcalloc(n, sizeof *bs);
            for (size_t i = 0; i < n; i++) {
                char *top = blockjob_top_node(&q, disks[i].id, errp);
                if (!top) {
                    for (size_t k = 0; k < i; k++)
                        free((char *) bs[k].top_node);
                    free(bs);
                    goto undo_pending;
                }
                bs[i] = (struct blockjob_snap) { top, disks[i].overlay, disks[i].node,
                                                 disks[i].file_node };
            }
            int r = blockjob_snapshot(&q, bs, n, &switch_ms, errp);
            for (size_t i = 0; i < n; i++)
                free((char *) bs[i].top_node);
            free(bs);
            if (r < 0)
                goto undo_pending;
        }
        switched = true;
        json_decref(thaw(a, vm, frozen));
        frozen = false;
        if (with_memory) {
            memfile = xasprintf("%s/snap-%s.vmstate", vm->dir, id);
            AUTOERROR struct error *merr = NULL;
            if (save_memory(vm, memfile, &merr) < 0) {
                /* The disks switched already: keep a disk-only snapshot. */
                LOG_ERROR("VM '%s': %s; snapshot '%s' is kept without memory", vm->name,
                          merr->message, name);
                error_set(errp, merr->code, "%s; snapshot '%s' was kept as disk-only",
                          merr->message, name);
                free(memfile);
                memfile = NULL;
            }
        }
    } else {
        switched = true;
    }
    /* The definition names the new active layers. */
    {
        json_t *def = def_json(vm);
        for (size_t i = 0; i < n; i++) {
            json_t *d = def_disk(def, disks[i].id);
            json_object_set_new(d, "path", json_string(disks[i].overlay));
            json_object_set_new(d, "format", json_string("qcow2"));
        }
        AUTOERROR struct error *derr = NULL;
        if (storage_commit_def(a, vm, def, &derr) < 0)
            LOG_ERROR("VM '%s': cannot record the new active layers: %s (the next agent "
                      "start finishes it)", vm->name, derr->message);
    }
    json_t *snap = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:[]}", "id", id, "name", name,
                             "created_ms", (json_int_t) storage_wall_ms(), "kind",
                             memfile ? "memory" : (with_memory ? "disk-only" : kind), "vm_state",
                             vm_state_to_string(s), "state", "ready", "disks");
    json_object_set_new(snap, "parent", sget(t, "current") ? json_string(sget(t, "current"))
                                                           : json_null());
    if (description)
        json_object_set_new(snap, "description", json_string(description));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(json_object_get(snap, "disks"),
                              json_pack("{s:s, s:s, s:s}", "id", disks[i].id, "file",
                                        disks[i].top, "format",
                                        disk_format_to_string(disks[i].format)));
    if (memfile) {
        json_object_set_new(snap, "memory", json_string(memfile));
        pthread_mutex_lock(&vm->lock);
        json_t *argv = json_array();
        for (size_t i = 0; vm->argv && vm->argv[i]; i++)
            json_array_append_new(argv, json_string(vm->argv[i]));
        pthread_mutex_unlock(&vm->lock);
        json_object_set_new(snap, "argv", argv);
        json_object_set_new(snap, "was_running", json_boolean(was_running));
    }
    json_array_append(json_object_get(t, "snapshots"), snap);
    json_object_set_new(t, "current", json_string(id));
    json_object_set_new(t, "pending", json_null());
    if (tree_save(vm, t, &serr) < 0)
        LOG_ERROR("VM '%s': cannot record snapshot '%s': %s", vm->name, name, serr->message);
    if (stopped_here) {
        json_decref(vm_qmp_call(vm, "cont", NULL, QMP_TIMEOUT_MS, NULL));
        stopped_here = false;
    }
    LOG_INFO("VM '%s': snapshot '%s' (%s, %zu disk(s)) taken%s", vm->name, name, kind, n,
             live ? " live" : "");
    agent_event(a, vm->name, "snapshot-created",
                json_pack("{s:s, s:s, s:I}", "snapshot", name, "kind", sget(snap, "kind"),
                          "switch_ms", (json_int_t) switch_ms));
    if (!errp || !*errp) {
        result = snap_view(t, snap);
        json_object_set_new(result, "switch_ms", json_integer(switch_ms));
    }
    json_decref(snap);
    goto out;

undo_pending:
    json_decref(thaw(a, vm, frozen));
    if (stopped_here)
        json_decref(vm_qmp_call(vm, "cont", NULL, QMP_TIMEOUT_MS, NULL));
    json_object_set_new(t, "pending", json_null());
    tree_save(vm, t, NULL);
undo_files:
    for (size_t i = 0; i < n && !switched; i++)
        if (disks[i].overlay && disks[i].node)
            unlink(disks[i].overlay);
out:
    snap_disks_free(disks, n);
    vm_job_end(vm);
    return result;
}

/* ---- revert ------------------------------------------------------------------------- */

/* Replaces the file of disk 'id' in a saved argv by 'path' (qcow2 now). */
static void argv_set_disk(json_t *argv, const char *id, const char *path)
{
    AUTOFREE char *file_node = xasprintf("file-%s", id);
    AUTOFREE char *fmt_node = xasprintf("drive-%s", id);
    size_t n = json_array_size(argv);
    for (size_t i = 0; i + 1 < n; i++) {
        const char *opt = json_string_value(json_array_get(argv, i));
        if (!opt || strcmp(opt, "-blockdev"))
            continue;
        const char *v = json_string_value(json_array_get(argv, i + 1));
        AUTOJSON json_t *o = v ? json_loads(v, 0, NULL) : NULL;
        const char *node = sget(o, "node-name");
        if (!node)
            continue;
        if (!strcmp(node, file_node))
            json_object_set_new(o, "filename", json_string(path));
        else if (!strcmp(node, fmt_node))
            json_object_set_new(o, "driver", json_string("qcow2"));
        else
            continue;
        AUTOFREE char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_array_set_new(argv, i + 1, json_string(text));
    }
}

int vm_snapshot_revert(struct agent *a, struct vm *vm, const char *name, int start,
                       struct error **errp)
{
    if (vm_job_begin(vm, "snapshot-revert", 5000, errp) < 0)
        return -1;
    int ret = -1;
    AUTOJSON json_t *t = NULL;
    AUTOJSON json_t *def = NULL;
    AUTOSTRV char **created = NULL;
    AUTOSTRV char **cids = NULL;
    AUTOSTRV char **discard = NULL;
    size_t nc = 0, nd = 0;
    bool resume = false;
    enum vm_state s = storage_vm_state(vm);
    if (s != VM_STATE_STOPPED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: stop it before reverting to a snapshot",
                  vm->name, vm_state_to_string(s));
        goto out;
    }
    t = tree_load(vm, errp);
    if (!t)
        goto out;
    json_t *snap = snap_by(t, "name", name);
    if (!snap) {
        error_set_field(errp, ERR_NOT_FOUND, "snapshot", "VM '%s' has no snapshot '%s'",
                        vm->name, name);
        goto out;
    }
    if (json_is_object(json_object_get(t, "pending"))) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' has an unfinished snapshot operation (%s)",
                  vm->name, sget(json_object_get(t, "pending"), "op"));
        goto out;
    }
    if (sget(snap, "state") && strcmp(sget(snap, "state"), "ready")) {
        error_set(errp, ERR_BAD_STATE, "snapshot '%s' is %s", name, sget(snap, "state"));
        goto out;
    }
    def = def_json(vm);
    size_t nsd = json_array_size(json_object_get(snap, "disks"));
    created = xcalloc(nsd + 1, sizeof *created);
    cids = xcalloc(nsd + 1, sizeof *cids);
    discard = xcalloc(nsd + 1, sizeof *discard);
    char id[9];
    new_id(id);
    size_t i;
    json_t *sd;
    json_array_foreach(json_object_get(snap, "disks"), i, sd) {
        const char *did = sget(sd, "id"), *frozen = sget(sd, "file");
        json_t *d = def_disk(def, did);
        if (!d) {
            error_set(errp, ERR_BAD_STATE, "disk '%s' of snapshot '%s' is no longer attached",
                      did, name);
            goto undo;
        }
        int bf = disk_format_from_string(sget(sd, "format"));
        char *ov = storage_overlay_path(frozen, id);
        AUTOFREE char *rel = storage_relative_backing(ov, frozen);
        AUTOCOMMAND struct command *c = image_cmd_create_overlay(ov, rel, (enum disk_format) bf);
        if (image_run(c, NULL, errp) < 0) {
            free(ov);
            goto undo;
        }
        cids[nc] = xstrdup(did);
        created[nc++] = ov;
        const char *active = sget(d, "path");
        if (!is_frozen_layer(t, active) && !file_same(active, frozen))
            discard[nd++] = xstrdup(active);
        json_object_set_new(d, "path", json_string(ov));
        json_object_set_new(d, "format", json_string("qcow2"));
    }
    if (storage_commit_def(a, vm, json_incref(def), errp) < 0)
        goto undo;
    for (size_t k = 0; k < nd; k++)
        if (unlink(discard[k]) < 0 && errno != ENOENT)
            LOG_WARN("VM '%s': cannot remove discarded layer '%s': %s", vm->name, discard[k],
                     strerror(errno));
    json_object_set_new(t, "current", json_string(sget(snap, "id")));
    if (tree_save(vm, t, errp) < 0)
        goto out;
    if (sget(snap, "memory") && start != 0) {
        /* Hibernated on the snapshot's memory: starting restores it. */
        AUTOFREE char *save = vm_path(a, vm, "save.img");
        unlink(save);
        if (link(sget(snap, "memory"), save) < 0) {
            error_set_errno(errp, ERR_IO, errno, "cannot use the memory of snapshot '%s'", name);
            goto out;
        }
        json_t *argv = json_deep_copy(json_object_get(snap, "argv"));
        for (size_t k = 0; k < nc; k++)
            argv_set_disk(argv, cids[k], created[k]);
        pthread_mutex_lock(&vm->lock);
        strv_free(vm->argv);
        size_t na = json_array_size(argv);
        vm->argv = xcalloc(na + 1, sizeof *vm->argv);
        for (size_t k = 0; k < na; k++)
            vm->argv[k] = xstrdup(json_string_value(json_array_get(argv, k)));
        json_array_clear(vm->hotplug_extra);
        vm->saved_was_running = json_is_true(json_object_get(snap, "was_running"));
        free(vm->exit_reason);
        vm->exit_reason = xasprintf("reverted to snapshot '%s'", name);
        vm_set_state_locked(a, vm, VM_STATE_SAVED, vm->exit_reason);
        pthread_mutex_unlock(&vm->lock);
        json_decref(argv);
        resume = true;
    }
    LOG_INFO("VM '%s' reverted to snapshot '%s'", vm->name, name);
    agent_event(a, vm->name, "snapshot-reverted", json_pack("{s:s}", "snapshot", name));
    ret = 0;
    goto out;
undo:
    for (size_t k = 0; k < nc; k++)
        unlink(created[k]);
out:
    vm_job_end(vm);
    if (ret == 0 && (resume || start == 1))
        ret = vm_start(a, vm, errp);
    return ret;
}

/* ---- delete (merge) ------------------------------------------------------------------- */

struct merge_arg {
    struct agent *a;
    struct vm *vm;
    char *id;
    bool resumed;
};

static void merge_arg_free(void *p)
{
    struct merge_arg *m = p;
    vm_unref(m->a, m->vm);
    free(m->id);
    free(m);
}

/* Merges layer 'L' (disk 'did', format 'lfmt') of snapshot 'sid' into its
 * children; idempotent. */
static int merge_layer(struct agent *a, struct vm *vm, const json_t *t, const char *sid,
                       const char *did, const char *L, enum disk_format lfmt,
                       struct image_progress *p, struct error **errp)
{
    if (!file_exists(L))
        return 0;   /* merged before an interruption */
    struct image_info li;
    if (image_info_get(L, lfmt, &li, errp) < 0)
        return -1;
    AUTOFREE char *P = li.full_backing ? xstrdup(li.full_backing) : NULL;
    enum disk_format pfmt = li.backing_format >= 0 ? (enum disk_format) li.backing_format
                                                   : DISK_FORMAT_RAW;
    image_info_clear(&li);
    /* Candidate children: other snapshots' layers of this disk and the
     * disk's active layer. */
    size_t cap = 1, nc = 0;
    size_t i, k;
    json_t *s, *d;
    json_array_foreach(json_object_get(t, "snapshots"), i, s) cap += json_array_size(json_object_get(s, "disks"));
    char **cand = xcalloc(cap + 1, sizeof *cand);
    int *cfmt = xcalloc(cap + 1, sizeof *cfmt);
    json_array_foreach(json_object_get(t, "snapshots"), i, s)
        json_array_foreach(json_object_get(s, "disks"), k, d)
            if (!strcmp(sget(d, "id"), did) && !file_same(sget(d, "file"), L)) {
                cand[nc] = xstrdup(sget(d, "file"));
                cfmt[nc++] = disk_format_from_string(sget(d, "format"));
            }
    pthread_mutex_lock(&vm->lock);
    for (i = 0; i < vm->def->n_disks; i++)
        if (!strcmp(vm->def->disks[i].id, did)) {
            cand[nc] = xstrdup(vm->def->disks[i].path);
            cfmt[nc++] = (int) vm->def->disks[i].format;
        }
    pthread_mutex_unlock(&vm->lock);
    int ret = -1;
    bool live = vm_state_is_active(storage_vm_state(vm));
    struct blockjob_qmp q;
    storage_vm_qmp(vm, &q);
    for (size_t c = 0; c < nc; c++) {
        if (cfmt[c] != DISK_FORMAT_QCOW2 || !file_exists(cand[c]))
            continue;
        struct image_info ci;
        if (image_info_get(cand[c], DISK_FORMAT_QCOW2, &ci, errp) < 0)
            goto out;
        bool child = ci.full_backing && file_same(ci.full_backing, L);
        image_info_clear(&ci);
        if (!child)
            continue;
        AUTOFREE char *rel = P ? storage_relative_backing(cand[c], P) : NULL;
        AUTOFREE char *node = live ? blockjob_node_of_file(&q, cand[c], false, NULL) : NULL;
        if (node) {
            AUTOFREE char *job = xasprintf("strata-merge-%s-%zu", sid, c);
            AUTOFREE char *base = P ? blockjob_node_of_file(&q, P, false, errp) : NULL;
            if (P && !base)
                goto out;
            int r = blockjob_exists(&q, job)
                        ? blockjob_wait(&q, job, false, p, errp)
                        : blockjob_stream(&q, job, node, base, rel, p, errp);
            if (r < 0)
                goto out;
            blockjob_release_file(&q, L);
        } else {
            AUTOCOMMAND struct command *cmd = image_cmd_rebase(cand[c], rel, pfmt);
            if (image_run_long(cmd, p, errp) < 0)
                goto out;
        }
        LOG_INFO("VM '%s': layer '%s' merged into '%s'", vm->name, L, cand[c]);
    }
    if (unlink(L) < 0 && errno != ENOENT) {
        error_set_errno(errp, ERR_IO, errno, "cannot remove merged layer '%s'", L);
        goto out;
    }
    /* A volume whose root file was merged away: the record names the new root. */
    struct datastore *ds = storage_ds_for_path(a, L);
    if (ds) {
        AUTOFREE char *vname = volume_name_of_file(ds->path, L);
        struct volume *v = vname ? volume_load(ds->path, vname, NULL) : NULL;
        if (v && !strcmp(v->file, base_of(L))) {
            AUTOSTRV char **files = volume_files(ds->path, v->name);
            for (size_t f = 0; files[f]; f++) {
                struct image_info fi;
                if (image_info_get(files[f], DISK_FORMAT_QCOW2, &fi, NULL) < 0)
                    continue;
                bool root = !fi.backing || (P && file_same(fi.full_backing, P));
                image_info_clear(&fi);
                if (root) {
                    free(v->file);
                    v->file = xstrdup(base_of(files[f]));
                    if (!P)
                        v->format = DISK_FORMAT_QCOW2;
                    volume_save(ds->path, v, NULL);
                    break;
                }
            }
        }
        volume_free(v);
        datastore_free(ds);
    }
    ret = 0;
out:
    strv_free(cand);
    free(cfmt);
    return ret;
}

static int job_merge(struct agent_job *job, void *arg, struct error **errp)
{
    struct merge_arg *m = arg;
    struct agent *a = m->a;
    struct vm *vm = m->vm;
    int ret = -1;
    AUTOFREE char *name = NULL;
    AUTOJSON json_t *t = tree_load(vm, errp);
    json_t *snap = t ? snap_by(t, "id", m->id) : NULL;
    if (!snap) {
        if (t)
            error_set(errp, ERR_NOT_FOUND, "snapshot '%s' of VM '%s' is gone", m->id, vm->name);
        goto out;
    }
    name = xstrdup(sget(snap, "name"));
    struct storage_progress sp = { .vm = vm, .job = job };
    size_t nd = json_array_size(json_object_get(snap, "disks"));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(snap, "disks"), i, d) {
        struct image_progress p;
        storage_progress_init(&p, &sp, (int) (i * 99 / (nd ? nd : 1)),
                              (int) ((i + 1) * 99 / (nd ? nd : 1)));
        if (merge_layer(a, vm, t, m->id, sget(d, "id"), sget(d, "file"),
                        (enum disk_format) disk_format_from_string(sget(d, "format")), &p,
                        errp) < 0) {
            bool cancelled = agent_job_cancelled(job);
            json_object_set_new(snap, "state", json_string(cancelled ? "ready" : "merge-failed"));
            if (!cancelled)
                json_object_set_new(snap, "error", json_string(*errp ? (*errp)->message : "?"));
            json_object_set_new(t, "pending", json_null());
            tree_save(vm, t, NULL);
            agent_event(a, vm->name, cancelled ? "snapshot-merge-cancelled" : "snapshot-merge-failed",
                        json_pack("{s:s, s:s}", "snapshot", name, "error",
                                  *errp ? (*errp)->message : "?"));
            goto out;
        }
    }
    if (sget(snap, "memory"))
        unlink(sget(snap, "memory"));
    /* Children of the snapshot now hang off its parent. */
    json_t *parent = json_object_get(snap, "parent");
    json_t *s;
    json_array_foreach(json_object_get(t, "snapshots"), i, s)
        if (sget(s, "parent") && !strcmp(sget(s, "parent"), m->id))
            json_object_set(s, "parent", parent);
    if (sget(t, "current") && !strcmp(sget(t, "current"), m->id))
        json_object_set(t, "current", parent);
    json_array_foreach(json_object_get(t, "snapshots"), i, s)
        if (!strcmp(sget(s, "id"), m->id)) {
            json_array_remove(json_object_get(t, "snapshots"), i);
            break;
        }
    json_object_set_new(t, "pending", json_null());
    if (tree_save(vm, t, errp) < 0)
        goto out;
    LOG_INFO("VM '%s': snapshot '%s' deleted (merged)", vm->name, name);
    agent_event(a, vm->name, "snapshot-deleted", json_pack("{s:s, s:b}", "snapshot", name,
                                                           "resumed", m->resumed));
    agent_job_set_result(job, json_pack("{s:s, s:b}", "snapshot", name, "resumed", m->resumed));
    ret = 0;
out:
    vm_job_end(vm);
    return ret;
}

/* Marks the snapshot merging, then starts the job; the VM's job token is
 * taken here and returned by the job. */
static json_t *start_merge(struct agent *a, struct vm *vm, const char *id, bool resumed,
                           struct error **errp)
{
    if (vm_job_begin(vm, "snapshot-delete", resumed ? 60000 : 5000, errp) < 0)
        return NULL;
    AUTOJSON json_t *t = tree_load(vm, errp);
    json_t *snap = t ? snap_by(t, "id", id) : NULL;
    if (!snap) {
        if (t)
            error_set(errp, ERR_NOT_FOUND, "VM '%s' has no snapshot '%s'", vm->name, id);
        vm_job_end(vm);
        return NULL;
    }
    enum vm_state s = storage_vm_state(vm);
    if (s != VM_STATE_STOPPED && s != VM_STATE_RUNNING && s != VM_STATE_PAUSED) {
        vm_job_end(vm);
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s", vm->name,
                         vm_state_to_string(s)), NULL;
    }
    json_object_set_new(snap, "state", json_string("merging"));
    json_object_del(snap, "error");
    json_object_set_new(t, "pending", json_pack("{s:s, s:s, s:I}", "op", "delete", "id", id,
                                                "started_ms", (json_int_t) storage_wall_ms()));
    if (tree_save(vm, t, errp) < 0) {
        vm_job_end(vm);
        return NULL;
    }
    struct merge_arg *m = xzalloc(sizeof *m);
    m->a = a;
    vm_ref(a, vm);
    m->vm = vm;
    m->id = xstrdup(id);
    m->resumed = resumed;
    AUTOFREE char *target = xasprintf("%s/%s", vm->name, sget(snap, "name"));
    json_t *job = agent_job_start(a, "snapshot-delete", target, job_merge, m, merge_arg_free,
                                  errp);
    if (!job) {
        json_object_set_new(snap, "state", json_string("ready"));
        json_object_set_new(t, "pending", json_null());
        tree_save(vm, t, NULL);
        vm_job_end(vm);
    }
    return job;
}

json_t *vm_snapshot_delete(struct agent *a, struct vm *vm, const char *name,
                           struct error **errp)
{
    AUTOJSON json_t *t = tree_load(vm, errp);
    if (!t)
        return NULL;
    json_t *snap = snap_by(t, "name", name);
    if (!snap)
        return error_set_field(errp, ERR_NOT_FOUND, "snapshot", "VM '%s' has no snapshot '%s'",
                               vm->name, name), NULL;
    json_t *pend = json_object_get(t, "pending");
    if (json_is_object(pend) && strcmp(sget(pend, "id") ? sget(pend, "id") : "",
                                       sget(snap, "id")))
        return error_set(errp, ERR_BAD_STATE, "VM '%s' has an unfinished snapshot operation (%s)",
                         vm->name, sget(pend, "op")), NULL;
    return start_merge(a, vm, sget(snap, "id"), false, errp);
}

/* ---- recovery ------------------------------------------------------------------------- */

/* The file QEMU's device 'id' writes to, or NULL. */
static char *live_top_file(struct vm *vm, const char *id)
{
    AUTOJSON json_t *r = vm_qmp_call(vm, "query-block", NULL, 5000, NULL);
    AUTOFREE char *prefix = xasprintf("/machine/peripheral/%s/", id);
    size_t i;
    json_t *e;
    json_array_foreach(r, i, e) {
        const char *qdev = sget(e, "qdev");
        if (!qdev || (strcmp(qdev, id) && strncmp(qdev, prefix, strlen(prefix))))
            continue;
        json_t *img = json_object_get(json_object_get(e, "inserted"), "image");
        return xstrdup(sget(img, "filename"));
    }
    return NULL;
}

static void recover_create(struct agent *a, struct vm *vm, json_t *t, json_t *pend)
{
    /* Switched if the definition or the running QEMU uses the overlays. */
    bool switched = false;
    AUTOJSON json_t *def = def_json(vm);
    bool live = vm_state_is_active(storage_vm_state(vm));
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(pend, "overlays"), i, o) {
        json_t *d = def_disk(def, sget(o, "id"));
        if (d && file_same(sget(d, "path"), sget(o, "file")))
            switched = true;
        AUTOFREE char *top = live ? live_top_file(vm, sget(o, "id")) : NULL;
        if (top && file_same(top, sget(o, "file"))) {
            switched = true;
            json_object_set_new(d, "path", json_string(sget(o, "file")));
            json_object_set_new(d, "format", json_string("qcow2"));
        }
    }
    if (switched) {
        storage_commit_def(a, vm, json_incref(def), NULL);
        LOG_WARN("VM '%s': an interrupted snapshot had switched its disks; they stay on the "
                 "new layers (the snapshot itself is not recorded)", vm->name);
    } else {
        json_array_foreach(json_object_get(pend, "overlays"), i, o)
            unlink(sget(o, "file"));
        LOG_WARN("VM '%s': an interrupted snapshot was rolled back", vm->name);
    }
    json_object_set_new(t, "pending", json_null());
    tree_save(vm, t, NULL);
    agent_event(a, vm->name, "snapshot-create-interrupted",
                json_pack("{s:b}", "switched", switched));
}

void vm_snapshot_recover(struct agent *a)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    for (size_t i = 0; i < n; i++) {
        struct vm *vm = vms[i];
        AUTOERROR struct error *err = NULL;
        AUTOJSON json_t *t = tree_load(vm, &err);
        if (!t) {
            LOG_ERROR("VM '%s': %s", vm->name, err->message);
            continue;
        }
        json_t *pend = json_object_get(t, "pending");
        if (!json_is_object(pend))
            continue;
        const char *op = sget(pend, "op");
        if (op && !strcmp(op, "create")) {
            recover_create(a, vm, t, pend);
        } else if (op && !strcmp(op, "delete") && sget(pend, "id")) {
            AUTOFREE char *id = xstrdup(sget(pend, "id"));
            LOG_WARN("VM '%s': resuming the merge of snapshot %s interrupted by a restart",
                     vm->name, id);
            agent_event(a, vm->name, "snapshot-merge-resumed", json_pack("{s:s}", "id", id));
            json_t *job = start_merge(a, vm, id, true, &err);
            if (!job) {
                const char *why = err ? err->message : "unknown error";
                LOG_ERROR("VM '%s': cannot resume the merge: %s", vm->name, why);
                json_t *snap = snap_by(t, "id", id);
                if (snap) {
                    json_object_set_new(snap, "state", json_string("merge-failed"));
                    json_object_set_new(snap, "error", json_string(why));
                }
                json_object_set_new(t, "pending", json_null());
                tree_save(vm, t, NULL);
            }
            json_decref(job);
        } else {
            json_object_set_new(t, "pending", json_null());
            tree_save(vm, t, NULL);
        }
    }
    agent_vm_list_free(a, vms, n);
}
