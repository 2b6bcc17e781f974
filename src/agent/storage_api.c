/* storage_api.c - the storage module of the node agent: routes for
 * datastores, volumes, VM snapshots and disk operations; module start-up and
 * recovery; the storage heartbeat and the ENOSPC watcher.  See
 * storage_api.h and docs/storage.md.
 *
 * Handlers validate everything (names, sizes, unknown fields) before they
 * touch a file.  Short operations answer 200/201/204; long ones (eager
 * zeroing, secure delete, merges, migrations) answer 202 with an agent job
 * (jobs.h).  A volume's record carries its state: an operation moves it from
 * "ready" to what it is doing and back, under st->lock, so two operations on
 * one volume never overlap.  A full copy ("source") only reads its source:
 * st->copying counts the copies reading each volume, and while one runs the
 * source refuses every state change (vol_begin) and its VMs refuse to start. */
#define LOG_MODULE "storage"
#include "agent/storage_api.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/jobs.h"
#include "agent/lifecycle.h"
#include "storage/vm_storage.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

/* ---- module state helpers --------------------------------------------------- */

static struct datastore *ds_copy(const struct datastore *d)
{
    struct datastore *c = xmalloc(sizeof *c);
    *c = *d;
    c->name = xstrdup(d->name);
    c->path = xstrdup(d->path);
    return c;
}

struct datastore *storage_ds_get(struct agent *a, const char *name, const char *field,
                                 struct error **errp)
{
    struct storage *st = storage_of(a);
    struct datastore *found = NULL;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_ds; i++)
        if (!strcmp(st->ds[i]->name, name))
            found = ds_copy(st->ds[i]);
    pthread_mutex_unlock(&st->lock);
    if (!found)
        error_set_field(errp, ERR_NOT_FOUND, field, "datastore '%s' not found", name);
    return found;
}

struct datastore *storage_ds_for_path(struct agent *a, const char *path)
{
    struct storage *st = storage_of(a);
    struct datastore *found = NULL;
    if (!st)
        return NULL;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_ds && !found; i++)
        if (path_is_under(path, st->ds[i]->path))
            found = ds_copy(st->ds[i]);
    pthread_mutex_unlock(&st->lock);
    return found;
}

char *storage_containment_root(struct agent *a, const char *path)
{
    struct datastore *ds = storage_ds_for_path(a, path);
    if (ds) {
        char *p = xstrdup(ds->path);
        datastore_free(ds);
        return p;
    }
    /* Readers of a->roots need no lock (append-only). */
    const char *best = NULL;
    for (size_t i = 0; i < AGENT_MAX_ROOTS && a->roots[i]; i++)
        if (path_is_under(path, a->roots[i]) && (!best || strlen(a->roots[i]) > strlen(best)))
            best = a->roots[i];
    return xstrdup(best);
}

static json_t *ds_json(struct agent *a, const struct datastore *ds)
{
    json_t *j = datastore_to_json(ds);
    struct datastore_usage u;
    AUTOERROR struct error *err = NULL;
    if (datastore_usage_get(ds, &u, &err) == 0) {
        json_object_set_new(j, "capacity", json_integer((json_int_t) u.capacity));
        json_object_set_new(j, "free", json_integer((json_int_t) u.free));
        json_object_set_new(j, "used", json_integer((json_int_t) u.used));
        json_object_set_new(j, "provisioned", json_integer((json_int_t) u.provisioned));
        json_object_set_new(j, "volumes", json_integer(u.volumes));
        json_object_set_new(j, "available", json_true());
    } else {
        json_object_set_new(j, "available", json_false());
        json_object_set_new(j, "error", json_string(err->message));
    }
    if (ds->type == DATASTORE_SHARED) {
        struct storage *st = storage_of(a);
        pthread_mutex_lock(&st->lock);
        json_t *hb = json_object_get(st->heartbeat, ds->name);
        json_object_set_new(j, "heartbeat", hb ? json_deep_copy(hb) : json_object());
        pthread_mutex_unlock(&st->lock);
    }
    return j;
}

void disk_ctx_clear(struct disk_ctx *c)
{
    datastore_free(c->ds);
    volume_free(c->vol);
    memset(c, 0, sizeof *c);
}

void storage_disk_ctx(struct agent *a, const struct vm_disk *d, struct disk_ctx *out)
{
    memset(out, 0, sizeof *out);
    out->mode = VOLUME_DEPENDENT;
    out->ds = storage_ds_for_path(a, d->path);
    if (!out->ds)
        return;
    AUTOFREE char *name = volume_name_of_file(out->ds->path, d->path);
    if (name && storage_name_validate(name, "volume", "", NULL) == 0)
        out->vol = volume_load(out->ds->path, name, NULL);
    if (out->vol)
        out->mode = out->vol->mode;
}

static json_t *qmp_call_cb(void *ctx, const char *command, json_t *args, int timeout_ms,
                           struct error **errp)
{
    return vm_qmp_call(ctx, command, args, timeout_ms, errp);
}

void storage_vm_qmp(struct vm *vm, struct blockjob_qmp *q)
{
    q->call = qmp_call_cb;
    q->ctx = vm;
}

static void progress_report(void *opaque, int pct)
{
    struct storage_progress *sp = opaque;
    if (sp->job)
        agent_job_progress(sp->job, pct);
    if (sp->vm) {
        pthread_mutex_lock(&sp->vm->lock);
        sp->vm->job_progress = pct;
        pthread_mutex_unlock(&sp->vm->lock);
    }
}

static bool progress_cancelled(void *opaque)
{
    struct storage_progress *sp = opaque;
    return sp->job && agent_job_cancelled(sp->job);
}

void storage_progress_init(struct image_progress *p, struct storage_progress *sp, int lo, int hi)
{
    p->report = progress_report;
    p->cancelled = progress_cancelled;
    p->opaque = sp;
    p->lo = lo;
    p->hi = hi;
}

enum vm_state storage_vm_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state s = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return s;
}

char *storage_volume_users(struct agent *a, const struct datastore *ds, const char *vol,
                           bool active_only)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    char *users = NULL;
    for (size_t i = 0; i < n; i++) {
        bool uses = false;
        pthread_mutex_lock(&vms[i]->lock);
        bool active = vm_state_is_active(vms[i]->state) || vms[i]->state == VM_STATE_SAVED;
        for (size_t k = 0; k < vms[i]->def->n_disks; k++) {
            AUTOFREE char *name = volume_name_of_file(ds->path, vms[i]->def->disks[k].path);
            if (name && !strcmp(name, vol))
                uses = true;
        }
        pthread_mutex_unlock(&vms[i]->lock);
        if (uses && (active || !active_only)) {
            char *next = xasprintf("%s%s'%s'", users ? users : "", users ? ", " : "",
                                   vms[i]->name);
            free(users);
            users = next;
        }
    }
    agent_vm_list_free(a, vms, n);
    return users;
}

/* Linked clones of 'vol' (names, comma separated) or NULL. */
static char *volume_children(const struct datastore *ds, const char *vol)
{
    size_t n;
    struct volume **v = volume_list(ds->path, &n);
    char *kids = NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i]->base && !strcmp(v[i]->base, vol)) {
            char *next = xasprintf("%s%s'%s'", kids ? kids : "", kids ? ", " : "", v[i]->name);
            free(kids);
            kids = next;
        }
    volume_list_free(v, n);
    return kids;
}

/* ---- copies in progress: "ds/vol" -> how many copies read it ---------------- */

bool storage_volume_copying_locked(struct storage *st, const char *ds, const char *vol)
{
    AUTOFREE char *key = xasprintf("%s/%s", ds, vol);
    return json_integer_value(json_object_get(st->copying, key)) > 0;
}

static void copy_count(struct storage *st, const char *ds, const char *vol, int delta)
{
    AUTOFREE char *key = xasprintf("%s/%s", ds, vol);
    json_int_t n = json_integer_value(json_object_get(st->copying, key)) + delta;
    if (n > 0)
        json_object_set_new(st->copying, key, json_integer(n));
    else
        json_object_del(st->copying, key);
}

/* Moves volume 'name' from state 'from' (NULL: "ready") to 'to', atomically
 * with respect to other operations.  Returns the record (caller frees). */
static struct volume *vol_begin(struct agent *a, const struct datastore *ds, const char *name,
                                const char *from, const char *to, struct error **errp)
{
    struct storage *st = storage_of(a);
    pthread_mutex_lock(&st->lock);
    if (storage_volume_copying_locked(st, ds->name, name)) {
        pthread_mutex_unlock(&st->lock);
        error_set(errp, ERR_BAD_STATE, "volume '%s' is being copied", name);
        return NULL;
    }
    struct volume *v = volume_load(ds->path, name, errp);
    if (v && strcmp(v->state, from ? from : "ready")) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is %s", name, v->state);
        volume_free(v);
        v = NULL;
    }
    if (v) {
        free(v->state);
        v->state = xstrdup(to);
        if (volume_save(ds->path, v, errp) < 0) {
            volume_free(v);
            v = NULL;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return v;
}

static void vol_set_state(struct agent *a, const struct datastore *ds, struct volume *v,
                          const char *state)
{
    struct storage *st = storage_of(a);
    pthread_mutex_lock(&st->lock);
    free(v->state);
    v->state = xstrdup(state);
    AUTOERROR struct error *err = NULL;
    if (volume_save(ds->path, v, &err) < 0)
        LOG_ERROR("volume '%s': cannot record state '%s': %s", v->name, state, err->message);
    pthread_mutex_unlock(&st->lock);
}

/* ---- datastores ----------------------------------------------------------------- */

static int h_ds_list(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct agent *a = opaque;
    (void) req;
    (void) errp;
    struct storage *st = storage_of(a);
    pthread_mutex_lock(&st->lock);
    size_t n = st->n_ds;
    struct datastore **copy = xcalloc(n + 1, sizeof *copy);
    for (size_t i = 0; i < n; i++)
        copy[i] = ds_copy(st->ds[i]);
    pthread_mutex_unlock(&st->lock);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, ds_json(a, copy[i]));
        datastore_free(copy[i]);
    }
    free(copy);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "datastores", arr);
    return 0;
}

static int h_ds_create(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct storage *st = storage_of(a);
    struct datastore *ds = datastore_from_json(req->body, false, errp);
    if (!ds)
        return -1;
    int ret = -1;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_ds; i++) {
        if (!strcmp(st->ds[i]->name, ds->name)) {
            error_set_field(errp, ERR_CONFLICT, "name", "datastore '%s' already exists",
                            ds->name);
            goto unlock;
        }
        if (!strcmp(st->ds[i]->path, ds->path) || path_is_under(ds->path, st->ds[i]->path)
            || path_is_under(st->ds[i]->path, ds->path)) {
            error_set_field(errp, ERR_CONFLICT, "path",
                            "path '%s' overlaps datastore '%s' ('%s')", ds->path,
                            st->ds[i]->name, st->ds[i]->path);
            goto unlock;
        }
    }
    if (datastore_prepare_dir(ds, errp) < 0 || datastore_save(ds, a->cfg.state_dir, errp) < 0)
        goto unlock;
    if (agent_add_image_root(a, ds->path, errp) < 0) {
        datastore_remove_record(ds->name, a->cfg.state_dir, NULL);
        goto unlock;
    }
    st->ds = xrealloc(st->ds, (st->n_ds + 2) * sizeof *st->ds);
    st->ds[st->n_ds++] = ds_copy(ds);
    st->ds[st->n_ds] = NULL;
    ret = 0;
unlock:
    pthread_mutex_unlock(&st->lock);
    if (ret == 0) {
        LOG_INFO("datastore '%s' (%s) registered at '%s'", ds->name,
                 datastore_type_to_string(ds->type), ds->path);
        agent_event(a, NULL, "datastore-added", json_pack("{s:s, s:s}", "datastore", ds->name,
                                                          "path", ds->path));
        resp->status = 201;
        resp->body = ds_json(a, ds);
    }
    datastore_free(ds);
    return ret;
}

static struct datastore *req_ds(struct agent *a, const struct http_request *req,
                                struct error **errp)
{
    if (storage_name_validate(req->params[0], "datastore", "datastore", errp) < 0)
        return NULL;
    return storage_ds_get(a, req->params[0], "datastore", errp);
}

static int h_ds_get(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct datastore *ds = req_ds(opaque, req, errp);
    if (!ds)
        return -1;
    resp->status = 200;
    resp->body = ds_json(opaque, ds);
    datastore_free(ds);
    return 0;
}

static int h_ds_update(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct storage *st = storage_of(a);
    static const char *const keys[] = { "overcommit_ratio", "heartbeat_interval_s", NULL };
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body is required");
    if (json_check_keys(req->body, keys, "", errp) < 0)
        return -1;
    AUTOJSON json_t *merged = NULL;
    struct datastore *ds = req_ds(a, req, errp);
    if (!ds)
        return -1;
    merged = datastore_to_json(ds);
    json_object_update(merged, req->body);
    struct datastore *nd = datastore_from_json(merged, true, errp);
    datastore_free(ds);
    if (!nd)
        return -1;
    int ret = -1;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_ds; i++)
        if (!strcmp(st->ds[i]->name, nd->name) && datastore_save(nd, a->cfg.state_dir, errp) == 0) {
            datastore_free(st->ds[i]);
            st->ds[i] = ds_copy(nd);
            ret = 0;
        }
    pthread_mutex_unlock(&st->lock);
    if (ret == 0) {
        resp->status = 200;
        resp->body = ds_json(a, nd);
    }
    datastore_free(nd);
    return ret;
}

static int h_ds_delete(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    struct storage *st = storage_of(a);
    struct datastore *ds = req_ds(a, req, errp);
    if (!ds)
        return -1;
    int ret = -1;
    size_t nv;
    struct volume **vols = volume_list(ds->path, &nv);
    volume_list_free(vols, nv);
    if (nv) {
        error_set(errp, ERR_BAD_STATE, "datastore '%s' still holds %zu volume(s)", ds->name, nv);
        goto out;
    }
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    char *user = NULL;
    for (size_t i = 0; i < n && !user; i++) {
        pthread_mutex_lock(&vms[i]->lock);
        for (size_t k = 0; k < vms[i]->def->n_disks && !user; k++)
            if (path_is_under(vms[i]->def->disks[k].path, ds->path))
                user = xstrdup(vms[i]->name);
        pthread_mutex_unlock(&vms[i]->lock);
    }
    agent_vm_list_free(a, vms, n);
    if (user) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' has a disk in datastore '%s'", user, ds->name);
        free(user);
        goto out;
    }
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; i < st->n_ds; i++)
        if (!strcmp(st->ds[i]->name, ds->name)) {
            datastore_free(st->ds[i]);
            memmove(st->ds + i, st->ds + i + 1, (st->n_ds - i) * sizeof *st->ds);
            st->n_ds--;
            break;
        }
    json_object_del(st->heartbeat, ds->name);
    ret = datastore_remove_record(ds->name, a->cfg.state_dir, errp);
    pthread_mutex_unlock(&st->lock);
    if (ds->type == DATASTORE_SHARED) {
        AUTOFREE char *hb = xasprintf("%s/.strata/heartbeat/%s.json", ds->path, st->host_id);
        unlink(hb);
    }
    if (ret == 0) {
        /* The directory stays an allowed image root until the agent restarts
         * (roots are append-only); no VM uses it now. */
        agent_event(a, NULL, "datastore-removed", json_pack("{s:s}", "datastore", ds->name));
        resp->status = 204;
    }
out:
    datastore_free(ds);
    return ret;
}

static int h_ds_heartbeats(const struct http_request *req, struct http_response *resp,
                           void *opaque, struct error **errp)
{
    struct datastore *ds = req_ds(opaque, req, errp);
    if (!ds)
        return -1;
    resp->status = 200;
    resp->body = json_pack("{s:o}", "heartbeats", datastore_heartbeats_read(ds));
    datastore_free(ds);
    return 0;
}

/* ---- volumes -------------------------------------------------------------------- */

static json_t *vol_json(struct agent *a, const struct datastore *ds, const struct volume *v)
{
    json_t *j = volume_to_json(v);
    json_object_set_new(j, "datastore", json_string(ds->name));
    AUTOFREE char *root = volume_root_path(ds->path, v);
    json_object_set_new(j, "path", json_string(root));
    AUTOSTRV char **files = volume_files(ds->path, v->name);
    unsigned long long alloc = 0;
    for (size_t i = 0; files[i]; i++) {
        long long b = image_allocated_bytes(files[i]);
        alloc += b > 0 ? (unsigned long long) b : 0;
    }
    json_object_set_new(j, "allocated", json_integer((json_int_t) alloc));
    json_object_set_new(j, "files", json_integer((json_int_t) strv_len(files)));
    AUTOFREE char *users = storage_volume_users(a, ds, v->name, false);
    AUTOFREE char *kids = volume_children(ds, v->name);
    json_object_set_new(j, "used_by", json_string(users ? users : ""));
    json_object_set_new(j, "clones", json_string(kids ? kids : ""));
    return j;
}

static struct volume *req_vol(struct agent *a, const struct http_request *req,
                              struct datastore **ds_out, struct error **errp)
{
    if (storage_name_validate(req->params[1], "volume", "volume", errp) < 0)
        return NULL;
    struct datastore *ds = req_ds(a, req, errp);
    if (!ds)
        return NULL;
    struct volume *v = volume_load(ds->path, req->params[1], errp);
    if (!v) {
        datastore_free(ds);
        return NULL;
    }
    *ds_out = ds;
    return v;
}

static int h_vol_list(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    struct agent *a = opaque;
    struct datastore *ds = req_ds(a, req, errp);
    if (!ds)
        return -1;
    size_t n;
    struct volume **v = volume_list(ds->path, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, vol_json(a, ds, v[i]));
    volume_list_free(v, n);
    datastore_free(ds);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "volumes", arr);
    return 0;
}

static int h_vol_get(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct datastore *ds = NULL;
    struct volume *v = req_vol(opaque, req, &ds, errp);
    if (!v)
        return -1;
    resp->status = 200;
    resp->body = vol_json(opaque, ds, v);
    volume_free(v);
    datastore_free(ds);
    return 0;
}

struct vol_job {
    struct agent *a;
    struct datastore *ds;
    struct volume *v;
    bool secure;
};

static void vol_job_free(void *p)
{
    struct vol_job *j = p;
    datastore_free(j->ds);
    volume_free(j->v);
    free(j);
}

static int job_create_eager(struct agent_job *job, void *arg, struct error **errp)
{
    struct vol_job *j = arg;
    struct storage_progress sp = { .job = job };
    struct image_progress p;
    storage_progress_init(&p, &sp, 0, 99);
    long long t0 = storage_wall_ms();
    if (volume_create_files(j->ds->path, j->v, &p, errp) < 0) {
        volume_remove_record(j->ds->path, j->v->name, NULL);
        return -1;
    }
    vol_set_state(j->a, j->ds, j->v, "ready");
    long long ms = storage_wall_ms() - t0;
    agent_job_set_result(job, json_pack("{s:s, s:I, s:I, s:f}", "volume", j->v->name,
                                        "capacity", (json_int_t) j->v->capacity, "elapsed_ms",
                                        (json_int_t) ms, "mib_per_s",
                                        ms > 0 ? (double) j->v->capacity / 1048576.0 * 1000.0 / ms
                                               : 0.0));
    agent_event(j->a, NULL, "volume-created", json_pack("{s:s, s:s}", "datastore", j->ds->name,
                                                        "volume", j->v->name));
    return 0;
}

static int import_volume(struct agent *a, const struct datastore *ds, struct volume *v,
                         struct error **errp)
{
    (void) a;
    AUTOFREE char *path = volume_root_path(ds->path, v);
    if (!file_exists(path))
        return error_set_field(errp, ERR_NOT_FOUND, "import",
                               "no file '%s' to import (place it in the datastore first)", path);
    if (v->format == DISK_FORMAT_RAW && image_has_qcow2_magic(path))
        return error_set_field(errp, ERR_INVALID_ARG, "format",
                               "'%s' is a qcow2 image, not raw as requested", path);
    struct image_chain chain = { 0 };
    if (image_chain_check(path, v->format, ds->path, "import", &chain, errp) < 0)
        return -1;
    v->capacity = chain.layers[0].virtual_size;
    bool has_backing = chain.n > 1;
    image_chain_clear(&chain);
    if (has_backing)
        return error_set_field(errp, ERR_INVALID_ARG, "import",
                               "'%s' has a backing file: import its base and create a linked "
                               "clone instead", path);
    return 0;
}

/* ---- full copy ---------------------------------------------------------------- */

struct copy_job {
    struct agent *a;
    struct datastore *sds, *tds;
    struct volume *v;                /* the new volume, recorded "creating" */
    char *source;                    /* the source volume's name */
    char *src_path;                  /* the source's active layer (top of its chain) */
    enum disk_format src_fmt;
};

static void copy_job_free(void *p)
{
    struct copy_job *c = p;
    datastore_free(c->sds);
    datastore_free(c->tds);
    volume_free(c->v);
    free(c->source);
    free(c->src_path);
    free(c);
}

static enum image_prealloc copy_prealloc(const struct volume *v)
{
    return v->prov == VOLUME_THICK_EAGER  ? IMAGE_PREALLOC_FULL
           : v->prov == VOLUME_THICK_LAZY ? IMAGE_PREALLOC_FALLOC
                                          : IMAGE_PREALLOC_OFF;
}

static void copy_release(struct copy_job *c)
{
    struct storage *st = storage_of(c->a);
    pthread_mutex_lock(&st->lock);
    copy_count(st, c->sds->name, c->source, -1);
    pthread_mutex_unlock(&st->lock);
}

/* The copy: qemu-img convert of the source's whole chain into
 * "<target>.part" (explicit -f/-O, progress), renamed when complete; a
 * failure or cancel removes the part and the record. */
static int job_copy(struct agent_job *job, void *arg, struct error **errp)
{
    struct copy_job *c = arg;
    struct storage_progress sp = { .job = job };
    struct image_progress p;
    storage_progress_init(&p, &sp, 0, 99);
    AUTOFREE char *dst = volume_root_path(c->tds->path, c->v);
    AUTOFREE char *part = xasprintf("%s.part", dst);
    long long t0 = storage_wall_ms();
    AUTOCOMMAND struct command *cmd = image_cmd_convert(c->src_path, c->src_fmt, part,
                                                        c->v->format, copy_prealloc(c->v));
    int r = image_run_long(cmd, &p, errp);
    if (r == 0 && rename(part, dst) < 0)
        r = error_set_errno(errp, ERR_IO, errno, "cannot rename '%s'", part);
    if (r < 0) {
        unlink(part);
        volume_remove_record(c->tds->path, c->v->name, NULL);
        copy_release(c);
        return -1;
    }
    vol_set_state(c->a, c->tds, c->v, "ready");
    copy_release(c);
    long long ms = storage_wall_ms() - t0;
    agent_job_set_result(job, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "volume",
                                        c->v->name, "datastore", c->tds->name, "source",
                                        c->source, "source_datastore", c->sds->name, "path", dst,
                                        "capacity", (json_int_t) c->v->capacity, "elapsed_ms",
                                        (json_int_t) ms));
    agent_event(c->a, NULL, "volume-created",
                json_pack("{s:s, s:s, s:s, s:s}", "datastore", c->tds->name, "volume",
                          c->v->name, "source", c->source, "source_datastore", c->sds->name));
    return 0;
}

/* The file a copy of 'src' reads: the layer a VM definition names (the top
 * of the volume's chain), else the volume's only file.  Sets '*fmt'. */
static char *copy_source_layer(struct agent *a, const struct datastore *ds,
                               const struct volume *src, enum disk_format *fmt,
                               struct error **errp)
{
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    char *path = NULL;
    for (size_t i = 0; i < n && !path; i++) {
        pthread_mutex_lock(&vms[i]->lock);
        for (size_t k = 0; k < vms[i]->def->n_disks && !path; k++) {
            const struct vm_disk *d = &vms[i]->def->disks[k];
            AUTOFREE char *name = volume_name_of_file(ds->path, d->path);
            if (name && !strcmp(name, src->name)) {
                path = xstrdup(d->path);
                *fmt = d->format;
            }
        }
        pthread_mutex_unlock(&vms[i]->lock);
    }
    agent_vm_list_free(a, vms, n);
    if (path)
        return path;
    AUTOSTRV char **files = volume_files(ds->path, src->name);
    if (strv_len(files) > 1)
        return error_set_field(errp, ERR_BAD_STATE, "source",
                               "volume '%s' has snapshot layers but no VM names its top one",
                               src->name), NULL;
    *fmt = src->format;
    return volume_root_path(ds->path, src);
}

/* POST .../volumes {"name", "source", "source_datastore"?, "format"?,
 * "provisioning"?, "type"?, "mode"?}: a standalone copy (chain flattened). */
static int vol_copy(struct agent *a, struct datastore *ds, const json_t *body,
                    struct http_response *resp, struct error **errp)
{
    static const char *const keys[] = { "name", "source", "source_datastore", "format",
                                        "provisioning", "type", "mode", NULL };
    const char *name = NULL, *source = NULL, *sds_name = NULL;
    if (json_check_keys(body, keys, "", errp) < 0
        || json_get_string(body, "name", "", true, &name, errp) < 0
        || storage_name_validate(name, "volume", "name", errp) < 0
        || json_get_string(body, "source", "", true, &source, errp) < 0
        || storage_name_validate(source, "volume", "source", errp) < 0
        || json_get_string(body, "source_datastore", "", false, &sds_name, errp) < 0
        || (sds_name && storage_name_validate(sds_name, "datastore", "source_datastore",
                                              errp) < 0))
        return -1;
    struct storage *st = storage_of(a);
    struct datastore *sds = sds_name ? storage_ds_get(a, sds_name, "source_datastore", errp)
                                     : ds_copy(ds);
    if (!sds)
        return -1;
    int ret = -1;
    struct volume *src = NULL, *v = NULL;
    AUTOFREE char *src_path = NULL;
    AUTOFREE char *active = NULL;
    AUTOJSON json_t *req = NULL;
    AUTOFREE char *target = NULL;
    enum disk_format src_fmt = DISK_FORMAT_QCOW2;
    bool held = false, saved = false;
    src = volume_load(sds->path, source, errp);
    if (!src) {
        if (errp && *errp && (*errp)->field && !strcmp((*errp)->field, "volume")) {
            free((*errp)->field);
            (*errp)->field = xstrdup("source");
        }
        goto out;
    }
    active = storage_volume_users(a, sds, src->name, true);
    if (active) {
        error_set_field(errp, ERR_BAD_STATE, "source",
                        "volume '%s' is in use by running VM %s: stop it first", src->name,
                        active);
        goto out;
    }
    src_path = copy_source_layer(a, sds, src, &src_fmt, errp);
    if (!src_path)
        goto out;
    /* The new volume: the source's settings unless the body says otherwise. */
    req = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "name", name, "capacity",
                    (json_int_t) src->capacity, "format", disk_format_to_string(src->format),
                    "provisioning", volume_prov_to_string(src->prov), "type",
                    volume_type_to_string(src->type), "mode", volume_mode_to_string(src->mode));
    static const char *const copied[] = { "format", "provisioning", "type", "mode" };
    for (size_t i = 0; i < ARRAY_SIZE(copied); i++) {
        json_t *x = json_object_get(body, copied[i]);
        if (x)
            json_object_set(req, copied[i], x);
    }
    bool import = false;
    v = volume_from_request(req, &import, errp);
    if (!v || datastore_check_alloc(ds, v->capacity, v->prov != VOLUME_THIN, "provisioning",
                                    errp) < 0)
        goto out;
    /* Reserve the name and hold the source, atomically with other operations. */
    pthread_mutex_lock(&st->lock);
    {
        AUTOERROR struct error *e = NULL;
        struct volume *old = volume_load(ds->path, v->name, &e);
        struct volume *now = volume_load(sds->path, src->name, NULL);
        if (old)
            error_set_field(errp, ERR_CONFLICT, "name", "volume '%s' already exists in '%s'",
                            v->name, ds->name);
        else if (!now || strcmp(now->state, "ready"))
            error_set_field(errp, ERR_BAD_STATE, "source", "volume '%s' is %s", src->name,
                            now ? now->state : "gone");
        else if (volume_save(ds->path, v, errp) == 0) {
            saved = true;
            copy_count(st, sds->name, src->name, +1);
            held = true;
        }
        volume_free(old);
        volume_free(now);
    }
    pthread_mutex_unlock(&st->lock);
    if (!held)
        goto out;
    struct copy_job *c = xzalloc(sizeof *c);
    c->a = a;
    c->sds = ds_copy(sds);
    c->tds = ds_copy(ds);
    c->v = volume_copy(v);
    c->source = xstrdup(src->name);
    c->src_path = steal_pointer(&src_path);
    c->src_fmt = src_fmt;
    target = xasprintf("%s/%s", ds->name, v->name);
    json_t *job = agent_job_start(a, "volume-copy", target, job_copy, c, copy_job_free, errp);
    if (!job) {
        pthread_mutex_lock(&st->lock);
        copy_count(st, sds->name, src->name, -1);
        pthread_mutex_unlock(&st->lock);
        goto out;
    }
    saved = false;
    resp->status = 202;
    resp->body = job;
    ret = 0;
out:
    if (saved)
        volume_remove_record(ds->path, v->name, NULL);
    volume_free(src);
    volume_free(v);
    datastore_free(sds);
    return ret;
}

/* ---- in-place wipe ------------------------------------------------------------- */

/* Every allocated extent of the volume's file overwritten with zeros in
 * place and synced (the secure-delete pass); a qcow2 image (whose metadata
 * went with it) is then made again, empty, with the same name, format,
 * capacity and provisioning (a linked clone again on its base). */
static int job_wipe(struct agent_job *job, void *arg, struct error **errp)
{
    struct vol_job *j = arg;
    struct storage_progress sp = { .job = job };
    struct image_progress p;
    storage_progress_init(&p, &sp, 0, j->v->format == DISK_FORMAT_QCOW2 ? 90 : 99);
    AUTOFREE char *root = volume_root_path(j->ds->path, j->v);
    unsigned long long wiped = 0;
    long long t0 = storage_wall_ms();
    if (image_wipe(root, &p, &wiped, errp) < 0)
        return -1;      /* left "wiping": POST .../wipe again finishes it */
    long long ms = storage_wall_ms() - t0;
    if (j->v->format == DISK_FORMAT_QCOW2) {
        struct image_progress rest;
        storage_progress_init(&rest, &sp, 90, 99);
        struct volume *base = j->v->base ? volume_load(j->ds->path, j->v->base, errp) : NULL;
        if (j->v->base && !base)
            return -1;
        int r = unlink(root) < 0 && errno != ENOENT
                    ? error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", root)
                : base ? volume_create_clone(j->ds->path, j->v, base, errp)
                       : volume_create_files(j->ds->path, j->v, &rest, errp);
        volume_free(base);
        if (r < 0)
            return -1;
    }
    vol_set_state(j->a, j->ds, j->v, "ready");
    agent_job_set_result(job, json_pack("{s:s, s:s, s:I, s:I, s:f}", "volume", j->v->name,
                                        "datastore", j->ds->name, "wiped_bytes",
                                        (json_int_t) wiped, "wipe_ms", (json_int_t) ms,
                                        "mib_per_s",
                                        ms > 0 ? (double) wiped / 1048576.0 * 1000.0 / ms : 0.0));
    agent_event(j->a, NULL, "volume-wiped",
                json_pack("{s:s, s:s, s:I}", "datastore", j->ds->name, "volume", j->v->name,
                          "wiped_bytes", (json_int_t) wiped));
    return 0;
}

static int h_vol_wipe(const struct http_request *req, struct http_response *resp,
                      void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { NULL };
    if (req->body && json_check_keys(req->body, keys, "", errp) < 0)
        return -1;
    struct datastore *ds = NULL;
    struct volume *cur = req_vol(a, req, &ds, errp);
    if (!cur)
        return -1;
    int ret = -1;
    struct volume *v = NULL;
    AUTOFREE char *active = storage_volume_users(a, ds, cur->name, true);
    AUTOFREE char *kids = volume_children(ds, cur->name);
    AUTOSTRV char **files = volume_files(ds->path, cur->name);
    AUTOFREE char *target = NULL;
    if (active) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is in use by running VM %s", cur->name,
                  active);
        goto out;
    }
    if (kids || cur->readonly) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is read-only (a base%s%s)", cur->name,
                  kids ? " of " : "", kids ? kids : "");
        goto out;
    }
    if (strv_len(files) > 1) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' has snapshot layers: delete the snapshots "
                  "first", cur->name);
        goto out;
    }
    v = vol_begin(a, ds, cur->name, !strcmp(cur->state, "wiping") ? "wiping" : NULL, "wiping",
                  errp);
    if (!v)
        goto out;
    struct vol_job *j = xzalloc(sizeof *j);
    j->a = a;
    j->ds = ds_copy(ds);
    j->v = volume_copy(v);
    target = xasprintf("%s/%s", ds->name, v->name);
    json_t *job = agent_job_start(a, "volume-wipe", target, job_wipe, j, vol_job_free, errp);
    if (!job) {
        vol_set_state(a, ds, v, "ready");
        goto out;
    }
    resp->status = 202;
    resp->body = job;
    ret = 0;
out:
    volume_free(v);
    volume_free(cur);
    datastore_free(ds);
    return ret;
}

static int h_vol_create(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    bool import = false;
    struct datastore *ds = req_ds(a, req, errp);
    if (!ds)
        return -1;
    if (json_is_object(req->body) && json_object_get(req->body, "source")) {
        int r = vol_copy(a, ds, req->body, resp, errp);
        datastore_free(ds);
        return r;
    }
    int ret = -1;
    struct volume *base = NULL;
    struct volume *v = volume_from_request(req->body, &import, errp);
    if (!v)
        goto out;
    {
        AUTOERROR struct error *e = NULL;
        struct volume *old = volume_load(ds->path, v->name, &e);
        if (old) {
            volume_free(old);
            error_set_field(errp, ERR_CONFLICT, "name", "volume '%s' already exists in '%s'",
                            v->name, ds->name);
            goto out;
        }
    }
    if (import) {
        if (import_volume(a, ds, v, errp) < 0)
            goto out;
        free(v->state);
        v->state = xstrdup("ready");
        if (volume_save(ds->path, v, errp) < 0)
            goto out;
        resp->status = 201;
        resp->body = vol_json(a, ds, v);
        ret = 0;
        goto out;
    }
    if (v->base) {
        base = volume_load(ds->path, v->base, errp);
        if (!base) {
            error_prefix(errp, "base");
            if (*errp && !(*errp)->field)
                (*errp)->field = xstrdup("base");
            goto out;
        }
        if (strcmp(base->state, "ready")) {
            error_set_field(errp, ERR_BAD_STATE, "base", "base volume '%s' is %s", base->name,
                            base->state);
            goto out;
        }
        AUTOFREE char *users = base->readonly ? NULL : storage_volume_users(a, ds, base->name, false);
        if (users) {
            error_set_field(errp, ERR_BAD_STATE, "base",
                            "base volume '%s' is used by VM %s: a base must be read-only",
                            base->name, users);
            goto out;
        }
        if (!v->capacity || v->capacity < base->capacity)
            v->capacity = base->capacity;
    }
    if (datastore_check_alloc(ds, v->capacity, v->prov != VOLUME_THIN, "capacity", errp) < 0)
        goto out;
    if (v->base) {
        if (!base->readonly) {
            base->readonly = true;
            if (volume_save(ds->path, base, errp) < 0)
                goto out;
        }
        if (volume_create_clone(ds->path, v, base, errp) < 0)
            goto out;
        free(v->state);
        v->state = xstrdup("ready");
        if (volume_save(ds->path, v, errp) < 0) {
            volume_delete_files(ds->path, v->name, false, NULL, NULL, NULL, NULL);
            goto out;
        }
        resp->status = 201;
        resp->body = vol_json(a, ds, v);
        ret = 0;
        goto out;
    }
    if (volume_save(ds->path, v, errp) < 0)   /* state "creating" */
        goto out;
    if (v->prov == VOLUME_THICK_EAGER) {
        struct vol_job *j = xzalloc(sizeof *j);
        j->a = a;
        j->ds = ds_copy(ds);
        j->v = volume_copy(v);
        AUTOFREE char *target = xasprintf("%s/%s", ds->name, v->name);
        json_t *job = agent_job_start(a, "volume-create", target, job_create_eager, j,
                                      vol_job_free, errp);
        if (!job) {
            volume_remove_record(ds->path, v->name, NULL);
            goto out;
        }
        resp->status = 202;
        resp->body = job;
        ret = 0;
        goto out;
    }
    if (volume_create_files(ds->path, v, NULL, errp) < 0) {
        volume_remove_record(ds->path, v->name, NULL);
        goto out;
    }
    free(v->state);
    v->state = xstrdup("ready");
    if (volume_save(ds->path, v, errp) < 0)
        goto out;
    agent_event(a, NULL, "volume-created", json_pack("{s:s, s:s}", "datastore", ds->name,
                                                     "volume", v->name));
    resp->status = 201;
    resp->body = vol_json(a, ds, v);
    ret = 0;
out:
    volume_free(base);
    volume_free(v);
    datastore_free(ds);
    return ret;
}

static int job_delete(struct agent_job *job, void *arg, struct error **errp)
{
    struct vol_job *j = arg;
    struct storage_progress sp = { .job = job };
    struct image_progress p;
    storage_progress_init(&p, &sp, 0, 99);
    unsigned long long wiped = 0;
    long long ms = 0;
    if (volume_delete_files(j->ds->path, j->v->name, j->secure, job ? &p : NULL, &wiped, &ms,
                            errp) < 0) {
        /* Left "deleting": a retried DELETE (or the next agent start) goes on. */
        return -1;
    }
    if (volume_remove_record(j->ds->path, j->v->name, errp) < 0)
        return -1;
    if (job)
        agent_job_set_result(job, json_pack("{s:s, s:b, s:I, s:I, s:f}", "volume", j->v->name,
                                            "secure", j->secure, "wiped_bytes",
                                            (json_int_t) wiped, "wipe_ms", (json_int_t) ms,
                                            "mib_per_s",
                                            ms > 0 ? (double) wiped / 1048576.0 * 1000.0 / ms
                                                   : 0.0));
    agent_event(j->a, NULL, "volume-deleted",
                json_pack("{s:s, s:s, s:b, s:I}", "datastore", j->ds->name, "volume",
                          j->v->name, "secure", j->secure, "wiped_bytes", (json_int_t) wiped));
    return 0;
}

static int h_vol_delete(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    const char *sec = http_request_query(req, "secure");
    if (sec && strcmp(sec, "true") && strcmp(sec, "false"))
        return error_set_field(errp, ERR_INVALID_ARG, "secure",
                               "secure '%.20s' must be true or false", sec);
    bool secure = sec && !strcmp(sec, "true");
    struct datastore *ds = NULL;
    struct volume *cur = req_vol(a, req, &ds, errp);
    if (!cur)
        return -1;
    int ret = -1;
    struct volume *v = NULL;
    AUTOFREE char *target = NULL;
    AUTOFREE char *users = storage_volume_users(a, ds, cur->name, false);
    AUTOFREE char *kids = volume_children(ds, cur->name);
    if (users) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is used by VM %s: detach it first",
                  cur->name, users);
        goto out;
    }
    if (kids) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is the base of linked clone(s) %s",
                  cur->name, kids);
        goto out;
    }
    /* "deleting": a delete that failed or was interrupted may be retried. */
    v = vol_begin(a, ds, cur->name, !strcmp(cur->state, "deleting") ? "deleting" : NULL,
                  "deleting", errp);
    if (!v)
        goto out;
    struct vol_job *j = xzalloc(sizeof *j);
    j->a = a;
    j->ds = ds_copy(ds);
    j->v = volume_copy(v);
    j->secure = secure;
    if (!secure) {
        ret = job_delete(NULL, j, errp);
        vol_job_free(j);
        if (ret == 0)
            resp->status = 204;
        goto out;
    }
    target = xasprintf("%s/%s", ds->name, v->name);
    json_t *job = agent_job_start(a, "volume-wipe", target, job_delete, j, vol_job_free, errp);
    if (!job)
        goto out;
    resp->status = 202;
    resp->body = job;
    ret = 0;
out:
    volume_free(v);
    volume_free(cur);
    datastore_free(ds);
    return ret;
}

static int h_vol_update(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "mode", "readonly", NULL };
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body is required");
    if (json_check_keys(req->body, keys, "", errp) < 0)
        return -1;
    const char *mode = NULL;
    bool ro = false, has_ro = json_object_get(req->body, "readonly") != NULL;
    if (json_get_string(req->body, "mode", "", false, &mode, errp) < 0
        || json_get_bool(req->body, "readonly", "", false, &ro, errp) < 0)
        return -1;
    int m = mode ? volume_mode_from_string(mode) : -1;
    if (mode && m < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "mode",
                               "mode '%.40s' must be dependent, independent-persistent or "
                               "independent-nonpersistent", mode);
    struct datastore *ds = NULL;
    struct volume *cur = req_vol(a, req, &ds, errp);
    if (!cur)
        return -1;
    int ret = -1;
    struct volume *v = NULL;
    AUTOFREE char *active = storage_volume_users(a, ds, cur->name, true);
    AUTOFREE char *kids = volume_children(ds, cur->name);
    if (active) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is in use by running VM %s", cur->name,
                  active);
        goto out;
    }
    if (has_ro && !ro && kids) {
        error_set_field(errp, ERR_BAD_STATE, "readonly",
                        "volume '%s' is the base of linked clone(s) %s: it stays read-only",
                        cur->name, kids);
        goto out;
    }
    if (m >= 0 && cur->type == VOLUME_SHARED && m != VOLUME_INDEPENDENT_PERSISTENT) {
        error_set_field(errp, ERR_INVALID_ARG, "mode",
                        "shared volume '%s' must stay independent-persistent", cur->name);
        goto out;
    }
    v = vol_begin(a, ds, cur->name, NULL, "ready", errp);
    if (!v)
        goto out;
    if (m >= 0)
        v->mode = (enum volume_mode) m;
    if (has_ro)
        v->readonly = ro;
    if (volume_save(ds->path, v, errp) < 0)
        goto out;
    resp->status = 200;
    resp->body = vol_json(a, ds, v);
    ret = 0;
out:
    volume_free(v);
    volume_free(cur);
    datastore_free(ds);
    return ret;
}

static int h_vol_resize(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "capacity", NULL };
    unsigned long long cap = 0;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body is required");
    if (json_check_keys(req->body, keys, "", errp) < 0
        || json_get_uint(req->body, "capacity", "", true, VOLUME_MIN_CAPACITY,
                         VOLUME_MAX_CAPACITY, &cap, errp) < 0)
        return -1;
    if (cap % 512)
        return error_set_field(errp, ERR_INVALID_ARG, "capacity",
                               "capacity %llu is not a multiple of 512", cap);
    struct datastore *ds = NULL;
    struct volume *cur = req_vol(a, req, &ds, errp);
    if (!cur)
        return -1;
    int ret = -1;
    struct volume *v = NULL;
    AUTOFREE char *root = NULL;
    AUTOFREE char *users = storage_volume_users(a, ds, cur->name, false);
    AUTOFREE char *kids = volume_children(ds, cur->name);
    if (users) {
        error_set(errp, ERR_BAD_STATE,
                  "volume '%s' is attached to VM %s: resize it through the VM's disk", cur->name,
                  users);
        goto out;
    }
    if (kids || cur->readonly) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' is read-only (a base)", cur->name);
        goto out;
    }
    if (cap <= cur->capacity) {
        error_set_field(errp, ERR_INVALID_ARG, "capacity",
                        "capacity %llu is not above the current %llu (disks only grow)", cap,
                        cur->capacity);
        goto out;
    }
    if (datastore_check_alloc(ds, cap - cur->capacity, cur->prov != VOLUME_THIN, "capacity",
                              errp) < 0)
        goto out;
    v = vol_begin(a, ds, cur->name, NULL, "resizing", errp);
    if (!v)
        goto out;
    root = volume_root_path(ds->path, v);
    if (volume_grow_file(root, v->format, v, v->capacity, cap, errp) < 0) {
        vol_set_state(a, ds, v, "ready");
        goto out;
    }
    v->capacity = cap;
    vol_set_state(a, ds, v, "ready");
    resp->status = 200;
    resp->body = vol_json(a, ds, v);
    ret = 0;
out:
    volume_free(v);
    volume_free(cur);
    datastore_free(ds);
    return ret;
}

struct move_job {
    struct agent *a;
    struct datastore *sds, *tds;
    struct volume *v;
    enum disk_format tfmt;
};

static void move_job_free(void *p)
{
    struct move_job *m = p;
    datastore_free(m->sds);
    datastore_free(m->tds);
    volume_free(m->v);
    free(m);
}

/* Cold move of an unattached volume: copy (chain flattened), record moved,
 * source released; a failure or cancel leaves it where it was. */
static int job_move(struct agent_job *job, void *arg, struct error **errp)
{
    struct move_job *m = arg;
    struct storage_progress sp = { .job = job };
    struct image_progress p;
    storage_progress_init(&p, &sp, 0, 98);
    AUTOFREE char *src = volume_root_path(m->sds->path, m->v);
    AUTOFREE char *dst = xasprintf("%s/%s.%s", m->tds->path, m->v->name,
                                   disk_format_to_string(m->tfmt));
    AUTOFREE char *part = xasprintf("%s.part", dst);
    long long t0 = storage_wall_ms();
    AUTOCOMMAND struct command *c = image_cmd_convert(
        src, m->v->format, part, m->tfmt,
        m->v->prov == VOLUME_THICK_EAGER  ? IMAGE_PREALLOC_FULL
        : m->v->prov == VOLUME_THICK_LAZY ? IMAGE_PREALLOC_FALLOC
                                          : IMAGE_PREALLOC_OFF);
    if (image_run_long(c, &p, errp) < 0 || rename(part, dst) < 0) {
        if (errp && !*errp)
            error_set_errno(errp, ERR_IO, errno, "cannot rename '%s'", part);
        unlink(part);
        vol_set_state(m->a, m->sds, m->v, "ready");
        return -1;
    }
    struct volume *nv = volume_copy(m->v);
    free(nv->file);
    nv->file = xasprintf("%s.%s", nv->name, disk_format_to_string(m->tfmt));
    nv->format = m->tfmt;
    free(nv->base);
    nv->base = NULL;
    free(nv->state);
    nv->state = xstrdup("ready");
    int r = volume_save(m->tds->path, nv, errp);
    volume_free(nv);
    if (r < 0) {
        unlink(dst);
        vol_set_state(m->a, m->sds, m->v, "ready");
        return -1;
    }
    AUTOERROR struct error *err = NULL;
    if (volume_remove_record(m->sds->path, m->v->name, &err) < 0
        || volume_delete_files(m->sds->path, m->v->name, false, NULL, NULL, NULL, &err) < 0)
        LOG_ERROR("volume '%s': releasing the source: %s", m->v->name, err->message);
    agent_job_set_result(job, json_pack("{s:s, s:s, s:s, s:I}", "volume", m->v->name,
                                        "datastore", m->tds->name, "path", dst, "elapsed_ms",
                                        (json_int_t) (storage_wall_ms() - t0)));
    agent_event(m->a, NULL, "volume-migrated",
                json_pack("{s:s, s:s, s:s}", "volume", m->v->name, "from", m->sds->name, "to",
                          m->tds->name));
    return 0;
}

static int h_vol_migrate(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    static const char *const keys[] = { "datastore", "format", NULL };
    const char *tname = NULL, *fmt = NULL;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body naming the target datastore is required");
    if (json_check_keys(req->body, keys, "", errp) < 0
        || json_get_string(req->body, "datastore", "", true, &tname, errp) < 0
        || storage_name_validate(tname, "datastore", "datastore", errp) < 0
        || json_get_string(req->body, "format", "", false, &fmt, errp) < 0)
        return -1;
    int tf = fmt ? disk_format_from_string(fmt) : -1;
    if (fmt && tf < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "format",
                               "format '%.20s' must be raw or qcow2", fmt);
    struct datastore *ds = NULL;
    struct volume *cur = req_vol(a, req, &ds, errp);
    if (!cur)
        return -1;
    int ret = -1;
    struct volume *v = NULL;
    struct datastore *tds = storage_ds_get(a, tname, "datastore", errp);
    AUTOFREE char *users = storage_volume_users(a, ds, cur->name, false);
    AUTOFREE char *kids = volume_children(ds, cur->name);
    AUTOSTRV char **files = volume_files(ds->path, cur->name);
    AUTOFREE char *target = NULL;
    if (!tds)
        goto out;
    if (!strcmp(tds->name, ds->name)) {
        error_set_field(errp, ERR_INVALID_ARG, "datastore", "volume '%s' is already in '%s'",
                        cur->name, ds->name);
        goto out;
    }
    if (users) {
        error_set(errp, ERR_BAD_STATE,
                  "volume '%s' is attached to VM %s: move it through the VM's disk", cur->name,
                  users);
        goto out;
    }
    if (kids || strv_len(files) != 1) {
        error_set(errp, ERR_BAD_STATE, "volume '%s' has linked clones or snapshot layers",
                  cur->name);
        goto out;
    }
    {
        AUTOERROR struct error *e = NULL;
        struct volume *exists = volume_load(tds->path, cur->name, &e);
        volume_free(exists);
        if (exists) {
            error_set_field(errp, ERR_CONFLICT, "datastore", "datastore '%s' already has a "
                            "volume '%s'", tds->name, cur->name);
            goto out;
        }
    }
    if (datastore_check_alloc(tds, cur->capacity, cur->prov != VOLUME_THIN, "datastore",
                              errp) < 0)
        goto out;
    v = vol_begin(a, ds, cur->name, NULL, "migrating", errp);
    if (!v)
        goto out;
    struct move_job *m = xzalloc(sizeof *m);
    m->a = a;
    m->sds = ds_copy(ds);
    m->tds = steal_pointer(&tds);
    m->v = volume_copy(v);
    m->tfmt = tf >= 0 ? (enum disk_format) tf : v->format;
    target = xasprintf("%s/%s", ds->name, v->name);
    json_t *job = agent_job_start(a, "volume-migrate", target, job_move, m, move_job_free, errp);
    if (!job) {
        vol_set_state(a, ds, v, "ready");
        goto out;
    }
    resp->status = 202;
    resp->body = job;
    ret = 0;
out:
    datastore_free(tds);
    volume_free(v);
    volume_free(cur);
    datastore_free(ds);
    return ret;
}

/* ---- VM snapshots and disks ------------------------------------------------------ */

static struct vm *req_vm(struct agent *a, const struct http_request *req, struct error **errp)
{
    if (vm_name_validate(req->params[0], "name", errp) < 0)
        return NULL;
    return agent_vm_get(a, req->params[0], errp);
}

static int h_snap_list(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_snapshot_list(opaque, vm, errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_snap_create(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    static const char *const keys[] = { "name", "kind", "description", NULL };
    const char *name = NULL, *kind = "disk-only", *desc = NULL;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a snapshot object is required");
    if (json_check_keys(req->body, keys, "", errp) < 0
        || json_get_string(req->body, "name", "", true, &name, errp) < 0
        || storage_name_validate(name, "snapshot", "name", errp) < 0
        || json_get_string(req->body, "kind", "", false, &kind, errp) < 0
        || json_get_string(req->body, "description", "", false, &desc, errp) < 0)
        return -1;
    if (strcmp(kind, "disk-only") && strcmp(kind, "memory") && strcmp(kind, "consistent"))
        return error_set_field(errp, ERR_INVALID_ARG, "kind",
                               "kind '%.40s' must be disk-only, memory or consistent", kind);
    if (desc && strlen(desc) > 1024)
        return error_set_field(errp, ERR_INVALID_ARG, "description",
                               "description is longer than 1024 bytes");
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_snapshot_create(opaque, vm, name, kind, desc, errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 201;
    resp->body = j;
    return 0;
}

static int h_snap_get(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    if (storage_name_validate(req->params[1], "snapshot", "snapshot", errp) < 0)
        return -1;
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_snapshot_get(opaque, vm, req->params[1], errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_snap_delete(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    if (storage_name_validate(req->params[1], "snapshot", "snapshot", errp) < 0)
        return -1;
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_snapshot_delete(opaque, vm, req->params[1], errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 202;
    resp->body = j;
    return 0;
}

static int h_snap_revert(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    static const char *const keys[] = { "start", NULL };
    int start = -1;
    if (storage_name_validate(req->params[1], "snapshot", "snapshot", errp) < 0)
        return -1;
    if (req->body) {
        bool b = false;
        if (json_check_keys(req->body, keys, "", errp) < 0
            || json_get_bool(req->body, "start", "", false, &b, errp) < 0)
            return -1;
        if (json_object_get(req->body, "start"))
            start = b;
    }
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    int r = vm_snapshot_revert(opaque, vm, req->params[1], start, errp);
    if (r == 0) {
        resp->status = 200;
        resp->body = vm_to_json(vm, false);
    }
    vm_unref(opaque, vm);
    return r;
}

static int h_disk_resize(const struct http_request *req, struct http_response *resp,
                         void *opaque, struct error **errp)
{
    static const char *const keys[] = { "capacity", NULL };
    unsigned long long cap = 0;
    if (vm_device_id_validate(req->params[1], "id", errp) < 0)
        return -1;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body is required");
    if (json_check_keys(req->body, keys, "", errp) < 0
        || json_get_uint(req->body, "capacity", "", true, VOLUME_MIN_CAPACITY,
                         VOLUME_MAX_CAPACITY, &cap, errp) < 0)
        return -1;
    if (cap % 512)
        return error_set_field(errp, ERR_INVALID_ARG, "capacity",
                               "capacity %llu is not a multiple of 512", cap);
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    int r = vm_disk_resize(opaque, vm, req->params[1], cap, errp);
    if (r == 0) {
        resp->status = 200;
        resp->body = vm_storage_info(opaque, vm, NULL);
    }
    vm_unref(opaque, vm);
    return r;
}

static int h_disk_migrate(const struct http_request *req, struct http_response *resp,
                          void *opaque, struct error **errp)
{
    if (vm_device_id_validate(req->params[1], "id", errp) < 0)
        return -1;
    if (!req->body)
        return error_set(errp, ERR_INVALID_ARG, "a body naming the target datastore is required");
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_disk_migrate(opaque, vm, req->params[1], req->body, errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 202;
    resp->body = j;
    return 0;
}

static int h_vm_storage(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct vm *vm = req_vm(opaque, req, errp);
    if (!vm)
        return -1;
    json_t *j = vm_storage_info(opaque, vm, errp);
    vm_unref(opaque, vm);
    if (!j)
        return -1;
    resp->status = 200;
    resp->body = j;
    return 0;
}

/* Keep in step with docs/api/openapi.yaml (tests/unit/agent checks it). */
static const struct http_route storage_routes[] = {
    { "GET", "/v1/datastores", h_ds_list },
    { "POST", "/v1/datastores", h_ds_create },
    { "GET", "/v1/datastores/{datastore}", h_ds_get },
    { "PUT", "/v1/datastores/{datastore}", h_ds_update },
    { "DELETE", "/v1/datastores/{datastore}", h_ds_delete },
    { "GET", "/v1/datastores/{datastore}/heartbeats", h_ds_heartbeats },
    { "GET", "/v1/datastores/{datastore}/volumes", h_vol_list },
    { "POST", "/v1/datastores/{datastore}/volumes", h_vol_create },
    { "GET", "/v1/datastores/{datastore}/volumes/{volume}", h_vol_get },
    { "PUT", "/v1/datastores/{datastore}/volumes/{volume}", h_vol_update },
    { "DELETE", "/v1/datastores/{datastore}/volumes/{volume}", h_vol_delete },
    { "POST", "/v1/datastores/{datastore}/volumes/{volume}/resize", h_vol_resize },
    { "POST", "/v1/datastores/{datastore}/volumes/{volume}/migrate", h_vol_migrate },
    { "POST", "/v1/datastores/{datastore}/volumes/{volume}/wipe", h_vol_wipe },
    { "GET", "/v1/vms/{name}/storage", h_vm_storage },
    { "GET", "/v1/vms/{name}/snapshots", h_snap_list },
    { "POST", "/v1/vms/{name}/snapshots", h_snap_create },
    { "GET", "/v1/vms/{name}/snapshots/{snapshot}", h_snap_get },
    { "DELETE", "/v1/vms/{name}/snapshots/{snapshot}", h_snap_delete },
    { "POST", "/v1/vms/{name}/snapshots/{snapshot}/revert", h_snap_revert },
    { "POST", "/v1/vms/{name}/disks/{id}/resize", h_disk_resize },
    { "POST", "/v1/vms/{name}/disks/{id}/migrate", h_disk_migrate },
    { NULL, NULL, NULL },
};

/* ---- threads: heartbeat and ENOSPC watcher ----------------------------------------- */

static bool wait_stop(struct storage *st, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long) (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&st->lock);
    while (!st->stopping)
        if (pthread_cond_timedwait(&st->cond, &st->lock, &dl) == ETIMEDOUT)
            break;
    bool stop = st->stopping;
    pthread_mutex_unlock(&st->lock);
    return stop;
}

static void *heartbeat_main(void *opaque)
{
    struct storage *st = opaque;
    unsigned long long seq = 0;
    do {
        pthread_mutex_lock(&st->lock);
        size_t n = st->n_ds;
        struct datastore **v = xcalloc(n + 1, sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = ds_copy(st->ds[i]);
        pthread_mutex_unlock(&st->lock);
        long long now = storage_wall_ms();
        seq++;
        for (size_t i = 0; i < n; i++) {
            if (v[i]->type != DATASTORE_SHARED)
                continue;
            pthread_mutex_lock(&st->lock);
            json_t *hb = json_object_get(st->heartbeat, v[i]->name);
            long long last = json_integer_value(json_object_get(hb, "last_ms"));
            bool failing = hb && json_object_get(hb, "error");
            pthread_mutex_unlock(&st->lock);
            if (last && now - last < (long long) v[i]->heartbeat_interval_s * 1000 - 500)
                continue;
            AUTOERROR struct error *err = NULL;
            int r = datastore_heartbeat_write(v[i], st->host_id, st->hostname, seq, &err);
            pthread_mutex_lock(&st->lock);
            json_t *rec = json_pack("{s:I, s:I}", "seq", (json_int_t) seq, "last_ms",
                                    (json_int_t) (r == 0 ? storage_wall_ms() : last));
            if (r < 0)
                json_object_set_new(rec, "error", json_string(err->message));
            json_object_set_new(st->heartbeat, v[i]->name, rec);
            pthread_mutex_unlock(&st->lock);
            if (r < 0 && !failing) {
                LOG_ERROR("storage heartbeat on '%s' failed: %s", v[i]->name, err->message);
                agent_event(st->a, NULL, "heartbeat-failed",
                            json_pack("{s:s, s:s}", "datastore", v[i]->name, "error",
                                      err->message));
            } else if (r == 0 && failing) {
                agent_event(st->a, NULL, "heartbeat-restored",
                            json_pack("{s:s}", "datastore", v[i]->name));
            }
        }
        for (size_t i = 0; i < n; i++)
            datastore_free(v[i]);
        free(v);
    } while (!wait_stop(st, 1000));
    return NULL;
}

/* A BLOCK_IO_ERROR with nospace: say which datastore filled up, once per pause. */
static void on_io_error(struct storage *st, const char *vmname, const json_t *data)
{
    struct agent *a = st->a;
    pthread_mutex_lock(&st->lock);
    bool seen = json_is_true(json_object_get(st->io_paused, vmname));
    json_object_set_new(st->io_paused, vmname, json_true());
    pthread_mutex_unlock(&st->lock);
    if (seen)
        return;
    const char *node = json_string_value(json_object_get(data, "node-name"));
    struct vm *vm = agent_vm_get(a, vmname, NULL);
    if (!vm)
        return;
    /* The disk whose top node failed; its file names the datastore. */
    AUTOFREE char *disk = NULL;
    AUTOFREE char *path = NULL;
    struct blockjob_qmp q;
    storage_vm_qmp(vm, &q);
    AUTOJSON json_t *blocks = vm_qmp_call(vm, "query-block", NULL, 5000, NULL);
    size_t i;
    json_t *b;
    json_array_foreach(blocks, i, b) {
        json_t *ins = json_object_get(b, "inserted");
        const char *nn = json_string_value(json_object_get(ins, "node-name"));
        const char *qdev = json_string_value(json_object_get(b, "qdev"));
        if (!nn || !node || strcmp(nn, node) || !qdev)
            continue;
        const char *p = strncmp(qdev, "/machine/peripheral/", 20) ? qdev : qdev + 20;
        const char *slash = strchr(p, '/');
        disk = slash ? xstrndup(p, (size_t) (slash - p)) : xstrdup(p);
    }
    pthread_mutex_lock(&vm->lock);
    for (size_t k = 0; disk && k < vm->def->n_disks; k++)
        if (!strcmp(vm->def->disks[k].id, disk))
            path = xstrdup(vm->def->disks[k].path);
    pthread_mutex_unlock(&vm->lock);
    struct datastore *ds = path ? storage_ds_for_path(a, path) : NULL;
    struct datastore_usage u = { 0 };
    if (ds)
        datastore_usage_get(ds, &u, NULL);
    AUTOFREE char *why = ds ? xasprintf("datastore '%s' is full (%llu bytes free): VM '%s' paused "
                                        "writing disk '%s'; free space, then resume it",
                                        ds->name, u.free, vmname, disk ? disk : "?")
                            : xasprintf("no space left for disk '%s' of VM '%s': VM paused",
                                        disk ? disk : "?", vmname);
    LOG_WARN("%s", why);
    json_t *ev = json_pack("{s:s, s:s}", "reason", "no-space", "message", why);
    if (disk)
        json_object_set_new(ev, "disk", json_string(disk));
    if (ds) {
        json_object_set_new(ev, "datastore", json_string(ds->name));
        json_object_set_new(ev, "free", json_integer((json_int_t) u.free));
    }
    agent_event(a, vmname, "storage-full", ev);
    datastore_free(ds);
    vm_unref(a, vm);
}

static void *watcher_main(void *opaque)
{
    struct storage *st = opaque;
    AUTOJSON json_t *first = agent_events_since(st->a, ~0ULL >> 1, 0);
    unsigned long long since = (unsigned long long) json_integer_value(json_object_get(first,
                                                                                       "next"));
    for (;;) {
        pthread_mutex_lock(&st->lock);
        bool stop = st->stopping;
        pthread_mutex_unlock(&st->lock);
        if (stop)
            break;
        json_t *page = agent_events_since(st->a, since, 500);
        since = (unsigned long long) json_integer_value(json_object_get(page, "next"));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(page, "events"), i, e) {
            const char *type = json_string_value(json_object_get(e, "type"));
            const char *vm = json_string_value(json_object_get(e, "vm"));
            json_t *d = json_object_get(e, "data");
            const char *qev = json_string_value(json_object_get(d, "event"));
            if (!type || !vm || strcmp(type, "qemu-event") || !qev)
                continue;
            if (!strcmp(qev, "BLOCK_IO_ERROR")
                && json_is_true(json_object_get(json_object_get(d, "data"), "nospace")))
                on_io_error(st, vm, json_object_get(d, "data"));
            else if (!strcmp(qev, "RESUME")) {
                pthread_mutex_lock(&st->lock);
                json_object_del(st->io_paused, vm);
                pthread_mutex_unlock(&st->lock);
            }
        }
        json_decref(page);
    }
    return NULL;
}

/* ---- module ----------------------------------------------------------------------- */

static void host_identity(struct agent *a, struct storage *st)
{
    AUTOFREE char *path = xasprintf("%s/storage/host-id", a->cfg.state_dir);
    AUTOFREE char *text = file_read_all(path, 256, NULL, NULL);
    if (text) {
        size_t l = strlen(text);
        while (l && (text[l - 1] == '\n'))
            text[--l] = '\0';
    }
    if (text && uuid_is_valid(text)) {
        snprintf(st->host_id, sizeof st->host_id, "%s", text);
    } else {
        uuid_generate(st->host_id);
        AUTOFREE char *dir = xasprintf("%s/storage", a->cfg.state_dir);
        AUTOFREE char *line = xasprintf("%s\n", st->host_id);
        AUTOERROR struct error *err = NULL;
        if (mkdir_p(dir, 0700, &err) < 0
            || file_write_atomic(path, line, strlen(line), 0600, &err) < 0)
            LOG_ERROR("cannot record the host id: %s", err->message);
    }
    char hn[256] = "";
    gethostname(hn, sizeof hn - 1);
    st->hostname = xstrdup(hn);
}

/* Before VMs are recovered: the datastores become allowed image roots, so
 * definitions with disks in them load. */
static int storage_pre_recover(struct agent *a, struct error **errp)
{
    (void) errp;
    struct storage *st = xzalloc(sizeof *st);
    st->a = a;
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    st->heartbeat = json_object();
    st->nonpersistent = json_object();
    st->io_paused = json_object();
    st->copying = json_object();
    host_identity(a, st);
    st->ds = datastore_load_all(a->cfg.state_dir, &st->n_ds);
    for (size_t i = 0; i < st->n_ds; i++) {
        AUTOERROR struct error *err = NULL;
        if (datastore_prepare_dir(st->ds[i], &err) < 0)
            LOG_ERROR("datastore '%s': %s", st->ds[i]->name, err->message);
        if (agent_add_image_root(a, st->ds[i]->path, &err) < 0)
            LOG_ERROR("datastore '%s': %s", st->ds[i]->name, err->message);
    }
    a->storage = st;
    return 0;
}

/* Volumes an agent crash left half-created or half-deleted. */
static void recover_volumes(struct agent *a)
{
    struct storage *st = storage_of(a);
    for (size_t i = 0; i < st->n_ds; i++) {
        size_t n;
        struct volume **v = volume_list(st->ds[i]->path, &n);
        for (size_t k = 0; k < n; k++) {
            if (!strcmp(v[k]->state, "creating")) {
                LOG_WARN("volume '%s/%s': creation was interrupted; removing it",
                         st->ds[i]->name, v[k]->name);
                volume_delete_files(st->ds[i]->path, v[k]->name, false, NULL, NULL, NULL, NULL);
                volume_remove_record(st->ds[i]->path, v[k]->name, NULL);
                agent_event(a, NULL, "volume-create-interrupted",
                            json_pack("{s:s, s:s}", "datastore", st->ds[i]->name, "volume",
                                      v[k]->name));
            } else if (!strcmp(v[k]->state, "resizing") || !strcmp(v[k]->state, "migrating")) {
                vol_set_state(a, st->ds[i], v[k], "ready");
            } else if (!strcmp(v[k]->state, "wiping")) {
                LOG_WARN("volume '%s/%s' was being wiped; POST .../wipe again to finish",
                         st->ds[i]->name, v[k]->name);
                agent_event(a, NULL, "volume-wipe-interrupted",
                            json_pack("{s:s, s:s}", "datastore", st->ds[i]->name, "volume",
                                      v[k]->name));
            } else if (!strcmp(v[k]->state, "deleting")) {
                LOG_WARN("volume '%s/%s' was being deleted; DELETE it again to finish",
                         st->ds[i]->name, v[k]->name);
                agent_event(a, NULL, "volume-delete-interrupted",
                            json_pack("{s:s, s:s}", "datastore", st->ds[i]->name, "volume",
                                      v[k]->name));
            }
        }
        volume_list_free(v, n);
    }
}

static int storage_init(struct agent *a, struct error **errp)
{
    struct storage *st = storage_of(a);
    if (!st && storage_pre_recover(a, errp) < 0)
        return -1;
    st = storage_of(a);
    recover_volumes(a);
    storage_nonpersistent_recover(a);
    vm_snapshot_recover(a);
    vm_disk_migrate_recover(a);
    if (pthread_create(&st->hb_thread, NULL, heartbeat_main, st) != 0
        || pthread_create(&st->ev_thread, NULL, watcher_main, st) != 0)
        return error_set(errp, ERR_INTERNAL, "cannot start the storage threads");
    st->threads_started = true;
    return 0;
}

static void storage_fini(struct agent *a)
{
    struct storage *st = storage_of(a);
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->stopping = true;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    if (st->threads_started) {
        pthread_join(st->hb_thread, NULL);
        pthread_join(st->ev_thread, NULL);
    }
    for (size_t i = 0; i < st->n_ds; i++)
        datastore_free(st->ds[i]);
    free(st->ds);
    json_decref(st->heartbeat);
    json_decref(st->nonpersistent);
    json_decref(st->io_paused);
    json_decref(st->copying);
    free(st->hostname);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
    a->storage = NULL;
}

static int storage_prepare_hook(struct agent *a, struct vm *vm, struct error **errp)
{
    return storage_vm_prepare(a, vm, errp);
}

static void storage_stopped_hook(struct agent *a, struct vm *vm)
{
    storage_vm_stopped(a, vm);
}

const struct agent_module storage_module = {
    .name = "storage",
    .routes = storage_routes,
    .pre_recover = storage_pre_recover,
    .init = storage_init,
    .fini = storage_fini,
    .vm_prepare = storage_prepare_hook,
    .vm_stopped = storage_stopped_hook,
};
