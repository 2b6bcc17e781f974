/* vm_disk.c - a VM's disks as the storage module sees them: the checks made
 * before QEMU opens them, throw-away overlays of independent-nonpersistent
 * disks, online/offline growth, and storage migration.
 *
 * Start (vm_prepare hook, before QEMU is spawned): every disk's image chain is
 * checked (image_chain_check: inside its datastore, formats as recorded, no
 * foreign data file); a read-only base is never opened writable; a normal
 * volume is not opened by two running VMs; a shared volume must be attached
 * "shared".  An independent-nonpersistent disk gets a fresh overlay
 * "<dir>/<vol>.nonpersistent.qcow2" and the in-memory definition points at it
 * for this run; at power-off (vm_stopped hook) the overlay is dropped and the
 * definition points back at the volume.  A hibernated VM keeps its overlay
 * (its memory expects that disk state).  The map of overlays in use is
 * <state_dir>/storage/nonpersistent.json, so an agent restart puts back the
 * definitions of VMs that stopped meanwhile.
 *
 * Migration of one disk to another datastore is an agent job: live, the disk
 * is mirrored (whole chain flattened) into a new image and QEMU pivots to it
 * once source and target are in sync; cold, qemu-img convert copies it.  The
 * definition then names the new image, the volume record moves with it and
 * the source files are released.  Cancel or failure leaves the VM on its
 * source and removes the target.  <vm dir>/storage-op.json records the move
 * while it runs so a restart finishes it (QEMU already on the target) or
 * rolls it back. */
#define LOG_MODULE "vmdisk"
#include "storage/vm_storage.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/hotplug.h"
#include "agent/jobs.h"
#include "agent/lifecycle.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static bool same_file(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return true;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* ---- nonpersistent overlays ------------------------------------------------------- */

static char *np_path(struct agent *a)
{
    return xasprintf("%s/storage/nonpersistent.json", a->cfg.state_dir);
}

void storage_nonpersistent_save_locked(struct storage *st)
{
    AUTOFREE char *path = np_path(st->a);
    AUTOFREE char *dir = xasprintf("%s/storage", st->a->cfg.state_dir);
    AUTOFREE char *text = json_dumps(st->nonpersistent, JSON_INDENT(1) | JSON_SORT_KEYS);
    AUTOERROR struct error *err = NULL;
    if (mkdir_p(dir, 0700, &err) < 0
        || file_write_replace(path, text, strlen(text), 0600, &err) < 0)
        LOG_ERROR("cannot record throw-away overlays: %s", err->message);
}

/* Points disk 'id' of the VM's in-memory definition at 'path'. */
static void def_set_disk(struct vm *vm, const char *id, const char *path, enum disk_format fmt)
{
    pthread_mutex_lock(&vm->lock);
    for (size_t i = 0; i < vm->def->n_disks; i++)
        if (!strcmp(vm->def->disks[i].id, id)) {
            free(vm->def->disks[i].path);
            vm->def->disks[i].path = xstrdup(path);
            vm->def->disks[i].format = fmt;
        }
    pthread_mutex_unlock(&vm->lock);
}

/* Drops the VM's throw-away overlays and restores its definition. */
static void np_drop(struct agent *a, struct vm *vm, bool save)
{
    struct storage *st = storage_of(a);
    pthread_mutex_lock(&st->lock);
    json_t *m = json_deep_copy(json_object_get(st->nonpersistent, vm->name));
    json_object_del(st->nonpersistent, vm->name);
    if (m)
        storage_nonpersistent_save_locked(st);
    pthread_mutex_unlock(&st->lock);
    if (!m)
        return;
    const char *id;
    json_t *e;
    json_object_foreach(m, id, e) {
        def_set_disk(vm, id, sget(e, "orig"),
                     (enum disk_format) disk_format_from_string(sget(e, "format")));
        if (unlink(sget(e, "overlay")) < 0 && errno != ENOENT)
            LOG_WARN("VM '%s': cannot remove throw-away overlay '%s': %s", vm->name,
                     sget(e, "overlay"), strerror(errno));
    }
    json_decref(m);
    AUTOERROR struct error *err = NULL;
    if (save && vm_save_def(vm, &err) < 0)
        LOG_ERROR("VM '%s': %s", vm->name, err->message);
}

void storage_vm_stopped(struct agent *a, struct vm *vm)
{
    enum vm_state s = storage_vm_state(vm);
    if (s == VM_STATE_SAVING || s == VM_STATE_SAVED)
        return;   /* hibernated: the memory image expects these disks */
    np_drop(a, vm, true);
}

void storage_nonpersistent_recover(struct agent *a)
{
    struct storage *st = storage_of(a);
    AUTOFREE char *path = np_path(a);
    AUTOFREE char *text = file_read_all(path, 4 << 20, NULL, NULL);
    json_t *m = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(m)) {
        json_decref(m);
        return;
    }
    pthread_mutex_lock(&st->lock);
    json_decref(st->nonpersistent);
    st->nonpersistent = m;
    json_t *copy = json_deep_copy(m);
    pthread_mutex_unlock(&st->lock);
    const char *name;
    json_t *e;
    json_object_foreach(copy, name, e) {
        struct vm *vm = agent_vm_get(a, name, NULL);
        if (!vm) {
            pthread_mutex_lock(&st->lock);
            json_object_del(st->nonpersistent, name);
            storage_nonpersistent_save_locked(st);
            pthread_mutex_unlock(&st->lock);
            continue;
        }
        enum vm_state s = storage_vm_state(vm);
        if (!vm_state_is_active(s) && s != VM_STATE_SAVED) {
            LOG_INFO("VM '%s' stopped while the agent was down: dropping its throw-away "
                     "overlays", vm->name);
            np_drop(a, vm, true);
        }
        vm_unref(a, vm);
    }
    json_decref(copy);
}

/* ---- start-time checks ------------------------------------------------------------ */

/* Another running VM opening 'path' (or a file of the same volume), or
 * another VM's definition naming a different layer of the same volume (one
 * of them would write into the other's backing chain)? */
static char *conflicting_vm(struct agent *a, struct vm *self, const struct vm_disk *d,
                            const struct disk_ctx *c)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    char *who = NULL;
    AUTOFREE char *vol = c->ds ? volume_name_of_file(c->ds->path, d->path) : NULL;
    for (size_t i = 0; i < n && !who; i++) {
        if (vms[i] == self)
            continue;
        pthread_mutex_lock(&vms[i]->lock);
        bool active = vm_state_is_active(vms[i]->state) || vms[i]->state == VM_STATE_SAVED;
        for (size_t k = 0; k < vms[i]->def->n_disks && !who; k++) {
            const struct vm_disk *o = &vms[i]->def->disks[k];
            bool same_file = !strcmp(o->path, d->path), same = same_file;
            if (!same && vol && c->ds) {
                AUTOFREE char *ov = volume_name_of_file(c->ds->path, o->path);
                same = ov && !strcmp(ov, vol);
            }
            bool both_shared = d->shared && o->shared
                               && (!c->vol || c->vol->type == VOLUME_SHARED);
            bool both_ro = d->readonly && o->readonly;
            if (same && !both_shared && !both_ro && (active || !same_file))
                who = xstrdup(vms[i]->name);
        }
        pthread_mutex_unlock(&vms[i]->lock);
    }
    agent_vm_list_free(a, vms, n);
    return who;
}

static int prepare_disk(struct agent *a, struct vm *vm, const struct vm_disk *d, size_t idx,
                        bool restoring, struct error **errp)
{
    struct storage *st = storage_of(a);
    AUTOFREE char *field = xasprintf("disks[%zu].path", idx);
    struct disk_ctx c;
    storage_disk_ctx(a, d, &c);
    int ret = -1;
    AUTOFREE char *who = NULL;
    AUTOFREE char *orig = NULL;
    AUTOFREE char *ofmt = NULL;
    AUTOFREE char *ov = NULL;
    AUTOFREE char *rel = NULL;
    AUTOCOMMAND struct command *cmd = NULL;
    AUTOFREE char *root = storage_containment_root(a, d->path);
    if (!root) {
        error_set_field(errp, ERR_INVALID_ARG, field, "disk '%s': '%s' is outside every image "
                        "root", d->id, d->path);
        goto out;
    }
    if (c.vol) {
        if (strcmp(c.vol->state, "ready")) {
            error_set(errp, ERR_BAD_STATE, "disk '%s': volume '%s' is %s", d->id, c.vol->name,
                      c.vol->state);
            goto out;
        }
        if (c.vol->readonly && !d->readonly) {
            error_set_field(errp, ERR_BAD_STATE, field,
                            "disk '%s': volume '%s' is read-only (a base of linked clones); "
                            "attach a clone or attach it read-only", d->id, c.vol->name);
            goto out;
        }
        if (c.vol->type == VOLUME_SHARED && !d->shared) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "disk '%s': volume '%s' is shared: attach it with \"shared\": true",
                            d->id, c.vol->name);
            goto out;
        }
    }
    if (c.ds) {
        AUTOFREE char *meta = datastore_meta_path(c.ds, NULL);
        if (path_is_under(d->path, meta)) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "disk '%s': '%s' is datastore metadata, not an image", d->id,
                            d->path);
            goto out;
        }
    }
    who = conflicting_vm(a, vm, d, &c);
    if (who) {
        error_set_field(errp, ERR_CONFLICT, field,
                        "disk '%s': '%s' belongs to a volume VM '%s' uses (running, or "
                        "through another layer)", d->id, d->path, who);
        goto out;
    }
    if (c.mode != VOLUME_INDEPENDENT_NONPERSISTENT || d->readonly) {
        ret = image_chain_check(d->path, d->format, root, field, NULL, errp);
        goto out;
    }
    /* Independent-nonpersistent: a throw-away overlay for this run. */
    pthread_mutex_lock(&st->lock);
    json_t *e = json_object_get(json_object_get(st->nonpersistent, vm->name), d->id);
    orig = xstrdup(sget(e, "orig"));
    ofmt = xstrdup(sget(e, "format"));
    pthread_mutex_unlock(&st->lock);
    if (restoring && orig && !strcmp(sget(e, "overlay") ? sget(e, "overlay") : "", d->path)
        && file_exists(d->path)) {
        ret = image_chain_check(d->path, d->format, root, field, NULL, errp);
        goto out;
    }
    const char *base = orig ? orig : d->path;
    enum disk_format bfmt = orig ? (enum disk_format) disk_format_from_string(ofmt) : d->format;
    if (image_chain_check(base, bfmt, root, field, NULL, errp) < 0)
        goto out;
    /* Always the same name beside the volume: a memory image restored later
     * (hibernation, a snapshot with memory) names this path in its argv. */
    ov = storage_overlay_path(base, "nonpersistent");
    rel = storage_relative_backing(ov, base);
    unlink(ov);
    cmd = image_cmd_create_overlay(ov, rel, bfmt);
    if (image_run(cmd, NULL, errp) < 0)
        goto out;
    pthread_mutex_lock(&st->lock);
    json_t *m = json_object_get(st->nonpersistent, vm->name);
    if (!m) {
        m = json_object();
        json_object_set_new(st->nonpersistent, vm->name, m);
    }
    json_object_set_new(m, d->id, json_pack("{s:s, s:s, s:s}", "orig", base, "format",
                                            disk_format_to_string(bfmt), "overlay", ov));
    storage_nonpersistent_save_locked(st);
    pthread_mutex_unlock(&st->lock);
    def_set_disk(vm, d->id, ov, DISK_FORMAT_QCOW2);
    LOG_INFO("VM '%s': disk '%s' runs on throw-away overlay '%s'", vm->name, d->id, ov);
    ret = 0;
out:
    disk_ctx_clear(&c);
    return ret;
}

int storage_vm_prepare(struct agent *a, struct vm *vm, struct error **errp)
{
    bool restoring = storage_vm_state(vm) == VM_STATE_SAVED;
    pthread_mutex_lock(&vm->lock);
    struct vm_def *def = vm_def_copy(vm->def);
    pthread_mutex_unlock(&vm->lock);
    int ret = 0;
    /* A full copy reading one of its volumes must see it unchanged. */
    struct storage *st = storage_of(a);
    for (size_t i = 0; st && i < def->n_disks && ret == 0; i++) {
        struct datastore *ds = storage_ds_for_path(a, def->disks[i].path);
        AUTOFREE char *vol = ds ? volume_name_of_file(ds->path, def->disks[i].path) : NULL;
        pthread_mutex_lock(&st->lock);
        bool busy = vol && storage_volume_copying_locked(st, ds->name, vol);
        pthread_mutex_unlock(&st->lock);
        if (busy) {
            AUTOFREE char *f = xasprintf("disks[%zu].path", i);
            ret = error_set_field(errp, ERR_BAD_STATE, f,
                                  "volume '%s' of datastore '%s' is being copied", vol,
                                  ds->name);
        }
        datastore_free(ds);
    }
    for (size_t i = 0; i < def->n_disks && ret == 0; i++)
        ret = prepare_disk(a, vm, &def->disks[i], i, restoring, errp);
    vm_def_free(def);
    if (ret < 0 && !restoring)
        np_drop(a, vm, false);
    return ret;
}

/* ---- storage view --------------------------------------------------------------------- */

json_t *vm_storage_info(struct agent *a, struct vm *vm, struct error **errp)
{
    (void) errp;
    pthread_mutex_lock(&vm->lock);
    struct vm_def *def = vm_def_copy(vm->def);
    pthread_mutex_unlock(&vm->lock);
    json_t *arr = json_array();
    for (size_t i = 0; i < def->n_disks; i++) {
        const struct vm_disk *d = &def->disks[i];
        struct disk_ctx c;
        storage_disk_ctx(a, d, &c);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b}", "id", d->id, "path", d->path,
                              "format", disk_format_to_string(d->format), "mode",
                              volume_mode_to_string(c.mode), "readonly", d->readonly, "shared",
                              d->shared);
        if (c.ds)
            json_object_set_new(o, "datastore", json_string(c.ds->name));
        if (c.vol) {
            json_object_set_new(o, "volume", json_string(c.vol->name));
            json_object_set_new(o, "provisioning",
                                json_string(volume_prov_to_string(c.vol->prov)));
        }
        AUTOFREE char *root = storage_containment_root(a, d->path);
        struct image_chain chain = { 0 };
        AUTOERROR struct error *err = NULL;
        if (root && image_chain_check(d->path, d->format, root, "path", &chain, &err) == 0) {
            json_t *layers = json_array();
            for (size_t k = 0; k < chain.n; k++)
                json_array_append_new(layers, json_pack(
                    "{s:s, s:s, s:I, s:I}", "file",
                    chain.layers[k].filename ? chain.layers[k].filename : "",
                    "format", disk_format_to_string((enum disk_format) chain.layers[k].format),
                    "virtual_size", (json_int_t) chain.layers[k].virtual_size, "actual_size",
                    (json_int_t) chain.layers[k].actual_size));
            json_object_set_new(o, "chain", layers);
            if (chain.n)
                json_object_set_new(o, "capacity",
                                    json_integer((json_int_t) chain.layers[0].virtual_size));
            image_chain_clear(&chain);
        } else {
            json_object_set_new(o, "error", json_string(err ? err->message : "no image root"));
        }
        json_array_append_new(arr, o);
        disk_ctx_clear(&c);
    }
    vm_def_free(def);
    return json_pack("{s:s, s:o}", "vm", vm->name, "disks", arr);
}

/* ---- resize ----------------------------------------------------------------------------- */

int vm_disk_resize(struct agent *a, struct vm *vm, const char *disk_id,
                   unsigned long long capacity, struct error **errp)
{
    if (vm_job_begin(vm, "disk-resize", 5000, errp) < 0)
        return -1;
    int ret = -1;
    struct disk_ctx c = { 0 };
    struct vm_disk d = { 0 };
    pthread_mutex_lock(&vm->lock);
    for (size_t i = 0; i < vm->def->n_disks; i++)
        if (!strcmp(vm->def->disks[i].id, disk_id)) {
            d = vm->def->disks[i];
            d.path = xstrdup(d.path);
        }
    pthread_mutex_unlock(&vm->lock);
    if (!d.path) {
        error_set_field(errp, ERR_NOT_FOUND, "id", "VM '%s' has no disk '%s'", vm->name,
                        disk_id);
        goto out;
    }
    enum vm_state s = storage_vm_state(vm);
    bool live = s == VM_STATE_RUNNING || s == VM_STATE_PAUSED;
    if (!live && s != VM_STATE_STOPPED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s", vm->name, vm_state_to_string(s));
        goto out;
    }
    storage_disk_ctx(a, &d, &c);
    if (d.readonly || (c.vol && c.vol->readonly)) {
        error_set(errp, ERR_BAD_STATE, "disk '%s' is read-only", disk_id);
        goto out;
    }
    if (c.vol && c.vol->type == VOLUME_SHARED) {
        error_set(errp, ERR_BAD_STATE, "disk '%s' is shared: grow it while no VM uses it",
                  disk_id);
        goto out;
    }
    if (c.mode == VOLUME_INDEPENDENT_NONPERSISTENT && live) {
        error_set(errp, ERR_BAD_STATE,
                  "disk '%s' is independent-nonpersistent: grow it while the VM is stopped",
                  disk_id);
        goto out;
    }
    struct image_info info;
    if (image_info_get(d.path, d.format, &info, errp) < 0)
        goto out;
    unsigned long long cur = info.virtual_size;
    image_info_clear(&info);
    if (capacity <= cur) {
        error_set_field(errp, ERR_INVALID_ARG, "capacity",
                        "capacity %llu is not above the current %llu (disks only grow)",
                        capacity, cur);
        goto out;
    }
    bool thick = c.vol && c.vol->prov != VOLUME_THIN;
    if (c.ds && datastore_check_alloc(c.ds, capacity - cur, thick, "capacity", errp) < 0)
        goto out;
    if (live) {
        /* A raw thick disk: the new range is allocated (and for eager,
         * zeroed) before the guest can see it. */
        if (thick && d.format == DISK_FORMAT_RAW
            && image_prealloc_range(d.path, cur, capacity, c.vol->prov == VOLUME_THICK_EAGER,
                                    errp) < 0)
            goto out;
        struct blockjob_qmp q;
        storage_vm_qmp(vm, &q);
        AUTOFREE char *node = blockjob_top_node(&q, disk_id, errp);
        if (!node || blockjob_resize(&q, node, capacity, errp) < 0)
            goto out;
    } else {
        struct volume thin = { .prov = VOLUME_THIN };
        if (volume_grow_file(d.path, d.format, c.vol ? c.vol : &thin, cur, capacity, errp) < 0)
            goto out;
    }
    if (c.vol) {
        c.vol->capacity = capacity;
        AUTOERROR struct error *err = NULL;
        if (volume_save(c.ds->path, c.vol, &err) < 0)
            LOG_ERROR("volume '%s': %s", c.vol->name, err->message);
    }
    LOG_INFO("VM '%s': disk '%s' grown %s from %llu to %llu bytes", vm->name, disk_id,
             live ? "online" : "offline", cur, capacity);
    agent_event(a, vm->name, "disk-resized",
                json_pack("{s:s, s:I, s:I, s:b}", "disk", disk_id, "from", (json_int_t) cur, "to",
                          (json_int_t) capacity, "live", live));
    ret = 0;
out:
    disk_ctx_clear(&c);
    free(d.path);
    vm_job_end(vm);
    return ret;
}

/* ---- migration ---------------------------------------------------------------------------- */

struct mig {
    struct agent *a;
    struct vm *vm;
    char *disk, *source, *target;
    enum disk_format sfmt, tfmt;
    struct datastore *sds, *tds;       /* sds may be NULL (not in a datastore) */
    struct volume *vol;                /* may be NULL */
    unsigned long long capacity, speed;
    enum volume_prov prov;
};

static void mig_free(void *p)
{
    struct mig *m = p;
    vm_unref(m->a, m->vm);
    free(m->disk);
    free(m->source);
    free(m->target);
    datastore_free(m->sds);
    datastore_free(m->tds);
    volume_free(m->vol);
    free(m);
}

static char *op_path(struct vm *vm)
{
    return xasprintf("%s/storage-op.json", vm->dir);
}

/* After the switch: the record moves, the source is released. */
static void mig_finish(struct mig *m)
{
    if (m->vol && m->sds) {
        struct volume *v = volume_copy(m->vol);
        free(v->file);
        v->file = xstrdup(base_of(m->target));
        free(v->base);
        v->base = NULL;
        v->format = m->tfmt;
        free(v->state);
        v->state = xstrdup("ready");
        AUTOERROR struct error *err = NULL;
        if (volume_save(m->tds->path, v, &err) < 0)
            LOG_ERROR("volume '%s': %s", v->name, err->message);
        else if (volume_remove_record(m->sds->path, v->name, &err) < 0)
            LOG_ERROR("volume '%s': %s", v->name, err->message);
        if (volume_delete_files(m->sds->path, v->name, false, NULL, NULL, NULL, &err) < 0)
            LOG_ERROR("volume '%s': releasing the source: %s", v->name, err->message);
        volume_free(v);
    }
    AUTOFREE char *op = op_path(m->vm);
    unlink(op);
}

static int job_migrate(struct agent_job *job, void *arg, struct error **errp)
{
    struct mig *m = arg;
    struct vm *vm = m->vm;
    struct storage_progress sp = { .vm = vm, .job = job };
    struct image_progress p;
    long long t0 = storage_wall_ms();
    int ret = -1;
    bool live = vm_state_is_active(storage_vm_state(vm));
    AUTOFREE char *part = xasprintf("%s.part", m->target);
    AUTOFREE char *op = op_path(vm);
    {
        AUTOJSON json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "op", "migrate",
                                         "disk", m->disk, "source", m->source, "target",
                                         m->target, "format", disk_format_to_string(m->tfmt),
                                         "target_datastore", m->tds->name, "source_datastore",
                                         m->sds ? m->sds->name : "");
        if (m->vol)
            json_object_set_new(rec, "volume", json_string(m->vol->name));
        AUTOFREE char *text = json_dumps(rec, JSON_SORT_KEYS);
        if (file_write_atomic(op, text, strlen(text), 0600, errp) < 0)
            goto out;
    }
    if (live) {
        /* Target with the volume's provisioning, then mirror and pivot. */
        struct volume tv = { .format = m->tfmt, .prov = m->prov, .capacity = m->capacity,
                             .name = (char *) "", .file = (char *) base_of(m->target) };
        storage_progress_init(&p, &sp, 0, m->prov == VOLUME_THICK_EAGER ? 20 : 1);
        if (volume_create_files(m->tds->path, &tv, &p, errp) < 0)
            goto fail;
        struct blockjob_qmp q;
        storage_vm_qmp(vm, &q);
        AUTOFREE char *top = blockjob_top_node(&q, m->disk, errp);
        if (!top)
            goto fail;
        char tag[9];
        {
            char u[UUID_STRLEN + 1];
            uuid_generate(u);
            memcpy(tag, u, 8);
            tag[8] = '\0';
        }
        AUTOFREE char *tnode = xasprintf("mg%s", tag);
        AUTOFREE char *tfile = xasprintf("mf%s", tag);
        AUTOFREE char *jobid = xasprintf("strata-mirror-%s", m->disk);
        storage_progress_init(&p, &sp, m->prov == VOLUME_THICK_EAGER ? 20 : 1, 98);
        if (blockjob_mirror(&q, jobid, top, m->target, m->tfmt, tnode, tfile, m->speed, &p,
                            errp) < 0)
            goto fail;
        /* QEMU writes to the target now; let go of the source chain. */
        blockjob_release_file(&q, m->source);
    } else {
        storage_progress_init(&p, &sp, 0, 98);
        AUTOCOMMAND struct command *c = image_cmd_convert(
            m->source, m->sfmt, part, m->tfmt,
            m->prov == VOLUME_THICK_EAGER  ? IMAGE_PREALLOC_FULL
            : m->prov == VOLUME_THICK_LAZY ? IMAGE_PREALLOC_FALLOC
                                           : IMAGE_PREALLOC_OFF);
        if (image_run_long(c, &p, errp) < 0)
            goto fail;
        if (rename(part, m->target) < 0) {
            error_set_errno(errp, ERR_IO, errno, "cannot rename '%s'", part);
            goto fail;
        }
    }
    {
        pthread_mutex_lock(&vm->lock);
        json_t *def = vm_def_to_json(vm->def);
        pthread_mutex_unlock(&vm->lock);
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(def, "disks"), i, d)
            if (!strcmp(sget(d, "id"), m->disk)) {
                json_object_set_new(d, "path", json_string(m->target));
                json_object_set_new(d, "format", json_string(disk_format_to_string(m->tfmt)));
            }
        if (storage_commit_def(m->a, vm, def, errp) < 0) {
            if (live)
                goto out;   /* QEMU is on the target: the next start finishes it */
            goto fail;
        }
    }
    mig_finish(m);
    long long ms = storage_wall_ms() - t0;
    agent_job_set_result(job, json_pack("{s:s, s:s, s:b, s:I, s:I}", "disk", m->disk, "path",
                                        m->target, "live", live, "capacity",
                                        (json_int_t) m->capacity, "elapsed_ms", (json_int_t) ms));
    agent_event(m->a, vm->name, "disk-migrated",
                json_pack("{s:s, s:s, s:s, s:b}", "disk", m->disk, "datastore", m->tds->name,
                          "path", m->target, "live", live));
    LOG_INFO("VM '%s': disk '%s' moved %s to '%s' in %lld ms", vm->name, m->disk,
             live ? "live" : "cold", m->target, ms);
    ret = 0;
    goto out;
fail:
    unlink(part);
    unlink(m->target);
    unlink(op);
out:
    vm_job_end(vm);
    return ret;
}

json_t *vm_disk_migrate(struct agent *a, struct vm *vm, const char *disk_id,
                        const json_t *body, struct error **errp)
{
    static const char *const keys[] = { "datastore", "speed", "format", NULL };
    const char *dsname = NULL, *fmt = NULL;
    unsigned long long speed = 0;
    if (json_check_keys(body, keys, "", errp) < 0
        || json_get_string(body, "datastore", "", true, &dsname, errp) < 0
        || storage_name_validate(dsname, "datastore", "datastore", errp) < 0
        || json_get_uint(body, "speed", "", false, 0, 1ULL << 40, &speed, errp) < 0
        || json_get_string(body, "format", "", false, &fmt, errp) < 0)
        return NULL;
    int tf = fmt ? disk_format_from_string(fmt) : -1;
    if (fmt && tf < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "format",
                               "format '%.20s' must be raw or qcow2", fmt), NULL;
    struct datastore *tds = storage_ds_get(a, dsname, "datastore", errp);
    if (!tds)
        return NULL;
    if (vm_job_begin(vm, "disk-migrate", 5000, errp) < 0) {
        datastore_free(tds);
        return NULL;
    }
    struct mig *m = xzalloc(sizeof *m);
    m->a = a;
    vm_ref(a, vm);
    m->vm = vm;
    m->tds = tds;
    m->speed = speed;
    m->disk = xstrdup(disk_id);
    struct disk_ctx c = { 0 };
    json_t *job = NULL;
    struct vm_disk d = { 0 };
    AUTOFREE char *name = NULL;
    AUTOFREE char *target = NULL;
    pthread_mutex_lock(&vm->lock);
    for (size_t i = 0; i < vm->def->n_disks; i++)
        if (!strcmp(vm->def->disks[i].id, disk_id)) {
            d = vm->def->disks[i];
            d.path = xstrdup(d.path);
        }
    pthread_mutex_unlock(&vm->lock);
    if (!d.path) {
        error_set_field(errp, ERR_NOT_FOUND, "id", "VM '%s' has no disk '%s'", vm->name, disk_id);
        goto fail;
    }
    enum vm_state s = storage_vm_state(vm);
    if (s != VM_STATE_RUNNING && s != VM_STATE_PAUSED && s != VM_STATE_STOPPED) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s", vm->name, vm_state_to_string(s));
        goto fail;
    }
    storage_disk_ctx(a, &d, &c);
    if (d.readonly || d.shared || c.mode == VOLUME_INDEPENDENT_NONPERSISTENT
        || (c.vol && (c.vol->readonly || c.vol->type == VOLUME_SHARED))) {
        error_set(errp, ERR_BAD_STATE, "disk '%s' is read-only, shared or nonpersistent: it "
                  "cannot be migrated", disk_id);
        goto fail;
    }
    if (vm_snapshot_uses_disk(a, vm, disk_id)) {
        error_set(errp, ERR_BAD_STATE, "disk '%s' has snapshots: delete them (merge) before "
                  "moving it", disk_id);
        goto fail;
    }
    if (c.ds && !strcmp(c.ds->name, tds->name)) {
        error_set_field(errp, ERR_INVALID_ARG, "datastore",
                        "disk '%s' is already in datastore '%s'", disk_id, tds->name);
        goto fail;
    }
    struct image_info info;
    if (image_info_get(d.path, d.format, &info, errp) < 0)
        goto fail;
    m->capacity = info.virtual_size;
    image_info_clear(&info);
    m->source = xstrdup(d.path);
    m->sfmt = d.format;
    m->vol = c.vol ? volume_copy(c.vol) : NULL;
    m->sds = steal_pointer(&c.ds);
    m->prov = c.vol ? c.vol->prov : VOLUME_THIN;
    m->tfmt = tf >= 0 ? (enum disk_format) tf : c.vol ? c.vol->format : DISK_FORMAT_QCOW2;
    const char *b = base_of(d.path);
    const char *dot = strchr(b, '.');
    name = c.vol ? xstrdup(c.vol->name) : dot ? xstrndup(b, (size_t) (dot - b)) : xstrdup(b);
    m->target = xasprintf("%s/%s.%s", tds->path, name, disk_format_to_string(m->tfmt));
    {
        AUTOERROR struct error *e = NULL;
        struct volume *exists = volume_load(tds->path, name, &e);
        bool taken = exists || file_exists(m->target);
        volume_free(exists);
        if (taken) {
            error_set_field(errp, ERR_CONFLICT, "datastore",
                            "datastore '%s' already has a volume or file '%s'", tds->name, name);
            goto fail;
        }
    }
    if (datastore_check_alloc(tds, m->capacity, m->prov != VOLUME_THIN, "datastore", errp) < 0)
        goto fail;
    target = xasprintf("%s/%s", vm->name, disk_id);
    job = agent_job_start(a, "disk-migrate", target, job_migrate, m, mig_free, errp);
    disk_ctx_clear(&c);
    free(d.path);
    if (!job)
        vm_job_end(vm);
    return job;
fail:
    disk_ctx_clear(&c);
    free(d.path);
    mig_free(m);
    vm_job_end(vm);
    return NULL;
}

void vm_disk_migrate_recover(struct agent *a)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    for (size_t i = 0; i < n; i++) {
        struct vm *vm = vms[i];
        AUTOFREE char *op = op_path(vm);
        AUTOFREE char *text = file_read_all(op, 1 << 16, NULL, NULL);
        AUTOJSON json_t *rec = text ? json_loads(text, 0, NULL) : NULL;
        if (!rec)
            continue;
        const char *disk = sget(rec, "disk"), *target = sget(rec, "target");
        if (!disk || !target) {
            unlink(op);
            continue;
        }
        AUTOFREE char *path = NULL;
        pthread_mutex_lock(&vm->lock);
        for (size_t k = 0; k < vm->def->n_disks; k++)
            if (!strcmp(vm->def->disks[k].id, disk))
                path = xstrdup(vm->def->disks[k].path);
        pthread_mutex_unlock(&vm->lock);
        bool live = vm_state_is_active(storage_vm_state(vm));
        struct blockjob_qmp q;
        storage_vm_qmp(vm, &q);
        AUTOFREE char *jobid = xasprintf("strata-mirror-%s", disk);
        if (live && blockjob_exists(&q, jobid)) {
            /* The mirror outlived the agent: stop it; the VM stays on its source. */
            json_decref(vm_qmp_call(vm, "job-cancel", json_pack("{s:s, s:b}", "id", jobid,
                                                                "force", 1), 5000, NULL));
            struct image_progress none = { 0 };
            blockjob_wait(&q, jobid, false, &none, NULL);
        }
        AUTOFREE char *qtop = NULL;
        if (live) {
            AUTOFREE char *node = blockjob_top_node(&q, disk, NULL);
            AUTOJSON json_t *nodes = node ? vm_qmp_call(vm, "query-named-block-nodes",
                                                        json_pack("{s:b}", "flat", 1), 5000,
                                                        NULL) : NULL;
            size_t k;
            json_t *e;
            json_array_foreach(nodes, k, e)
                if (sget(e, "node-name") && !strcmp(sget(e, "node-name"), node)
                    && sget(e, "file"))
                    qtop = xstrdup(sget(e, "file"));
        }
        bool on_target = (path && same_file(path, target)) || (qtop && same_file(qtop, target));
        struct mig m = { .a = a, .vm = vm, .target = (char *) target };
        if (on_target) {
            LOG_WARN("VM '%s': finishing the move of disk '%s' interrupted by a restart",
                     vm->name, disk);
            if (!path || !same_file(path, target)) {
                pthread_mutex_lock(&vm->lock);
                json_t *def = vm_def_to_json(vm->def);
                pthread_mutex_unlock(&vm->lock);
                size_t k;
                json_t *d;
                json_array_foreach(json_object_get(def, "disks"), k, d)
                    if (!strcmp(sget(d, "id"), disk)) {
                        json_object_set_new(d, "path", json_string(target));
                        json_object_set_new(d, "format", json_string(sget(rec, "format")));
                    }
                storage_commit_def(a, vm, def, NULL);
            }
            m.sds = sget(rec, "source_datastore") && *sget(rec, "source_datastore")
                        ? storage_ds_get(a, sget(rec, "source_datastore"), "", NULL) : NULL;
            m.tds = sget(rec, "target_datastore")
                        ? storage_ds_get(a, sget(rec, "target_datastore"), "", NULL) : NULL;
            m.vol = m.sds && sget(rec, "volume") ? volume_load(m.sds->path, sget(rec, "volume"),
                                                               NULL) : NULL;
            m.tfmt = (enum disk_format) disk_format_from_string(sget(rec, "format"));
            if (m.tds)
                mig_finish(&m);
            else
                unlink(op);
            datastore_free(m.sds);
            datastore_free(m.tds);
            volume_free(m.vol);
        } else {
            LOG_WARN("VM '%s': rolling back the move of disk '%s' interrupted by a restart",
                     vm->name, disk);
            AUTOFREE char *part = xasprintf("%s.part", target);
            unlink(part);
            unlink(target);
            unlink(op);
        }
        agent_event(a, vm->name, "disk-migrate-interrupted",
                    json_pack("{s:s, s:b}", "disk", disk, "finished", on_target));
    }
    agent_vm_list_free(a, vms, n);
}
