/* vms.c - see vms.h: VM specifications, their agent definitions, the VM
 * task kinds and the reconciliation with agents.
 *
 * Layout: store helpers (VM records, datastore paths, events); the
 * specification (creation requests, clones, template deployments, checks);
 * agent definitions; the task steps by kind; vms_host_sync().
 *
 * Every step that changes something on an agent is written so that running
 * it again is harmless (a volume that already exists and is ours, a VM
 * already defined with our uuid, a VM already running), and every undo
 * tolerates a step that did not finish: after a kill -9 of the manager the
 * task engine resumes the operations that can go on and rolls back the
 * others (task_engine.h).  No store transaction is open while an agent is
 * called.
 *
 * Neighbours: api_vms.c (routes), placement.c (host choice),
 * agent_client.c, task_engine.c, inventory.c (kinds), docs/manager.md. */
#define LOG_MODULE "vms"
#include "manager/vms.h"

#include <ctype.h>
#include <libgen.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "manager/agent_client.h"
#include "manager/events.h"
#include "manager/inventory.h"
#include "manager/manager.h"
#include "manager/placement.h"
#include "manager/resources.h"
#include "manager/tasks.h"
#include "model/vm_def.h"
#include "storage/datastore.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define MAX_DISKS 32
#define MAX_NICS 16
#define VALIDATE_ROOT "/strata-manager-check"
#define HOST_RESERVED_MIB 256           /* memory placement leaves to the host itself */
#define VOLUME_BUSY_TRIES 480           /* x 250 ms: 2 minutes */

/* Fields of the specification handed to the agent unchanged. */
static const char *const passthrough[] = {
    "vcpus", "memory", "cpu", "machine", "numa", "boot", "cdroms", "serial", "vnc", "balloon",
    "guest_agent", NULL,
};

/* ---- store helpers ------------------------------------------------------ */

struct vm_rec {
    char id[UUID_STRLEN + 1];
    char *name, *state, *host_id, *cluster_id, *template_id;
    json_t *spec;
};

static void vm_rec_clear(struct vm_rec *v)
{
    free(v->name);
    free(v->state);
    free(v->host_id);
    free(v->cluster_id);
    free(v->template_id);
    json_decref(v->spec);
    memset(v, 0, sizeof *v);
}

static int vm_rec_read(struct store_txn *t, const char *id, struct vm_rec *v,
                       struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT id, name, state, host_id, cluster_id, template_id, definition FROM vms "
           "WHERE id = ?", STORE_ARGS(SV_TEXT(id)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r < 0 ? -1 : error_set(errp, ERR_NOT_FOUND, "VM '%s' does not exist", id);
    snprintf(v->id, sizeof v->id, "%s", store_col_text(st, 0));
    v->name = xstrdup(store_col_text(st, 1));
    v->state = xstrdup(store_col_text(st, 2));
    v->host_id = store_col_is_null(st, 3) ? NULL : xstrdup(store_col_text(st, 3));
    v->cluster_id = store_col_is_null(st, 4) ? NULL : xstrdup(store_col_text(st, 4));
    v->template_id = store_col_is_null(st, 5) ? NULL : xstrdup(store_col_text(st, 5));
    const char *def = store_col_text(st, 6);
    v->spec = json_from_string(def, strlen(def), errp);
    return v->spec ? 0 : -1;
}

static int vm_rec_load(struct manager *m, const char *id, struct vm_rec *v, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    return t ? vm_rec_read(t, id, v, errp) : -1;
}

static int append_event(struct store_txn *t, const char *type, const char *severity,
                        const char *vm_id, const char *vm_name, const char *task_id,
                        const char *actor, const char *msg, struct error **errp)
{
    struct event e = {
        .type = type, .severity = severity, .object_type = "vm", .object_id = vm_id,
        .object_name = vm_name, .task_id = task_id, .user_name = actor, .message = msg,
    };
    return event_append(t, &e, errp) < 0 ? -1 : 0;
}

/* Sets a VM's state (and optionally its host and reason), with an event
 * "vm.<state>" when the state changes. */
static int vm_state_set(struct manager *m, const char *vm_id, const char *state,
                        const char *reason, const char *task_id, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name, state FROM vms WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(vm_id)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r;       /* gone: nothing to record */
    AUTOFREE char *name = xstrdup(store_col_text(st, 0));
    bool changed = strcmp(store_col_text(st, 1), state) != 0;
    store_stmt_free(steal_pointer(&st));
    if (!changed)
        return 0;
    if (store_exec(t, "UPDATE vms SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                   STORE_ARGS(SV_TEXT(state), SV_TEXT(reason), SV_INT(store_now_ms()),
                              SV_TEXT(vm_id)), errp) < 0)
        return -1;
    AUTOFREE char *type = xasprintf("vm.%s", state);
    AUTOFREE char *msg = reason ? xasprintf("VM '%s' is %s: %s", name, state, reason)
                                : xasprintf("VM '%s' is %s", name, state);
    bool bad = !strcmp(state, "crashed") || !strcmp(state, "missing");
    if (append_event(t, type, bad ? "warning" : "info", vm_id, name, task_id, NULL, msg,
                     errp) < 0)
        return -1;
    return manager_commit(m, steal_pointer(&t), errp);
}

static int vm_spec_save(struct manager *m, const char *vm_id, const json_t *spec,
                        struct error **errp)
{
    AUTOFREE char *text = json_to_string(spec);
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t || store_exec(t, "UPDATE vms SET definition = ?, updated_at = ? WHERE id = ?",
                         STORE_ARGS(SV_TEXT(text), SV_INT(store_now_ms()), SV_TEXT(vm_id)),
                         errp) < 0)
        return -1;
    return manager_commit(m, steal_pointer(&t), errp);
}

/* The directory of datastore 'ds_id' on host 'host_id'. */
static char *host_ds_path(struct store_txn *t, const char *host_id, const char *ds_id,
                          struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT hd.path, d.name FROM host_datastores hd JOIN datastores d "
           "ON d.id = hd.datastore_id WHERE hd.host_id = ? AND hd.datastore_id = ?",
        STORE_ARGS(SV_TEXT(host_id), SV_TEXT(ds_id)), errp);
    if (!st)
        return NULL;
    int r = store_step(st, errp);
    if (r < 0)
        return NULL;
    if (r == 0 || store_col_is_null(st, 0))
        return error_set(errp, ERR_BAD_STATE, "datastore '%s' is not reachable from the host",
                         ds_id), NULL;
    return xstrdup(store_col_text(st, 0));
}

struct ds_path_ctx {
    struct manager *m;
    const char *host_id;
};

static char *ds_path_from_store(void *opaque, const char *ds_id, struct error **errp)
{
    struct ds_path_ctx *c = opaque;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
    return t ? host_ds_path(t, c->host_id, ds_id, errp) : NULL;
}

static char *ds_path_placeholder(void *opaque, const char *ds_id, struct error **errp)
{
    (void) opaque, (void) errp;
    return xasprintf(VALIDATE_ROOT "/%s", ds_id);
}

/* ---- the specification -------------------------------------------------- */

/* A volume name from a VM name and a disk id: [A-Za-z0-9][A-Za-z0-9_-]{0,63}. */
static char *volume_name(const char *vm_name, const char *disk_id)
{
    char buf[65];
    snprintf(buf, sizeof buf, "%.40s-%.23s", vm_name, disk_id);
    for (char *p = buf; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '-' && *p != '_')
            *p = '_';
    return xstrdup(buf);
}

static void mac_random(char out[18])
{
    unsigned char b[3];
    gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof b);
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
}

static int ds_resolve(struct store_txn *t, const char *ref, const char *field,
                      char id_out[UUID_STRLEN + 1], char **name_out, struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT id, name FROM datastores WHERE id = ? OR name = ?",
        STORE_ARGS(SV_TEXT(ref), SV_TEXT(ref)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set_field(errp, ERR_NOT_FOUND, field, "datastore '%.80s' does not exist",
                               ref);
    snprintf(id_out, UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    *name_out = xstrdup(store_col_text(st, 1));
    return 0;
}

/* A volume the manager created for some disk or template already has this
 * name in this datastore. */
static int volume_taken(struct store_txn *t, const char *ds_id, const char *vol,
                        const char *field, struct error **errp)
{
    int64_t n = 0;
    if (store_query_int(t, "SELECT COUNT(*) FROM disks WHERE datastore_id = ? AND path = ?",
                        STORE_ARGS(SV_TEXT(ds_id), SV_TEXT(vol)), &n, errp) < 0)
        return -1;
    if (n > 0)
        return error_set_field(errp, ERR_CONFLICT, field,
                               "volume '%s' already exists in that datastore", vol);
    return 0;
}

/* Normalises one disk of a creation request into the specification. */
static json_t *disk_prepare(struct store_txn *t, const json_t *d, size_t i, const char *vm_name,
                            struct error **errp)
{
    static const char *const keys[] = {
        "id", "datastore", "size", "volume", "base", "format", "provisioning", "bus", "cache",
        "readonly", "shared", "serial", "mode", NULL,
    };
    AUTOFREE char *pfx = json_path_index("disks", i);
    if (!json_is_object(d))
        return error_set_field(errp, ERR_INVALID_ARG, pfx, "a disk must be an object"), NULL;
    const char *id = NULL, *ds = NULL, *vol = NULL, *base = NULL, *fmt = NULL, *prov = "thin",
               *mode = NULL;
    unsigned long long size = 0;
    char defid[32];
    snprintf(defid, sizeof defid, "disk%zu", i);
    id = defid;
    if (json_check_keys(d, keys, pfx, errp) < 0 ||
        json_get_string(d, "id", pfx, false, &id, errp) < 0 ||
        json_get_string(d, "datastore", pfx, true, &ds, errp) < 0 ||
        json_get_uint(d, "size", pfx, false, 1 << 20, 1ULL << 50, &size, errp) < 0 ||
        json_get_string(d, "volume", pfx, false, &vol, errp) < 0 ||
        json_get_string(d, "base", pfx, false, &base, errp) < 0 ||
        json_get_string(d, "format", pfx, false, &fmt, errp) < 0 ||
        json_get_string(d, "provisioning", pfx, false, &prov, errp) < 0 ||
        json_get_string(d, "mode", pfx, false, &mode, errp) < 0)
        return NULL;
    AUTOFREE char *fid = json_path_join(pfx, "id");
    if (vm_device_id_validate(id, fid, errp) < 0)
        return NULL;
    int sources = (size > 0) + (vol != NULL) + (base != NULL);
    if (sources != 1)
        return error_set_field(errp, ERR_INVALID_ARG, pfx,
                               "a disk needs exactly one of 'size' (a new volume), 'volume' "
                               "(an existing one) or 'base' (a linked clone of one)"), NULL;
    AUTOFREE char *fds = json_path_join(pfx, "datastore");
    char ds_id[UUID_STRLEN + 1];
    AUTOFREE char *ds_name = NULL;
    if (!uuid_is_valid(ds) && inv_name_validate(ds, fds, errp) < 0)
        return NULL;
    if (ds_resolve(t, ds, fds, ds_id, &ds_name, errp) < 0)
        return NULL;
    if (!fmt)
        fmt = "qcow2";
    AUTOFREE char *ffmt = json_path_join(pfx, "format");
    if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw"))
        return error_set_field(errp, ERR_INVALID_ARG, ffmt, "format '%.20s' must be qcow2 or raw",
                               fmt), NULL;
    AUTOFREE char *fprov = json_path_join(pfx, "provisioning");
    if (strcmp(prov, "thin") && strcmp(prov, "thick-lazy") && strcmp(prov, "thick-eager"))
        return error_set_field(errp, ERR_INVALID_ARG, fprov,
                               "provisioning '%.20s' must be thin, thick-lazy or thick-eager",
                               prov), NULL;
    AUTOFREE char *fmode = json_path_join(pfx, "mode");
    if (mode && strcmp(mode, "dependent") && strcmp(mode, "independent-persistent") &&
        strcmp(mode, "independent-nonpersistent"))
        return error_set_field(errp, ERR_INVALID_ARG, fmode,
                               "mode '%.30s' must be dependent, independent-persistent or "
                               "independent-nonpersistent", mode), NULL;
    json_t *out = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "datastore_id", ds_id,
                            "datastore", ds_name, "format", fmt);
    static const char *const copy[] = { "bus", "cache", "readonly", "shared", "serial", NULL };
    for (const char *const *k = copy; *k; k++)
        if (json_object_get(d, *k))
            json_object_set(out, *k, json_object_get(d, *k));
    if (vol) {
        AUTOFREE char *fvol = json_path_join(pfx, "volume");
        if (storage_name_validate(vol, "volume", fvol, errp) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "volume", json_string(vol));
        json_object_set_new(out, "origin", json_pack("{s:b}", "existing", 1));
        return out;
    }
    AUTOFREE char *newvol = volume_name(vm_name, id);
    if (volume_taken(t, ds_id, newvol, pfx, errp) < 0) {
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "volume", json_string(newvol));
    if (base) {
        AUTOFREE char *fbase = json_path_join(pfx, "base");
        if (storage_name_validate(base, "volume", fbase, errp) < 0) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, "format", json_string("qcow2"));
        json_object_set_new(out, "origin", json_pack("{s:s}", "base", base));
    } else {
        json_t *o = json_pack("{s:I, s:s}", "capacity", (json_int_t) size, "provisioning", prov);
        if (mode)
            json_object_set_new(o, "mode", json_string(mode));
        json_object_set_new(out, "origin", json_pack("{s:o}", "create", o));
    }
    return out;
}

/* Normalises one NIC; with 'reserve', records its MAC address for VM
 * 'vm_id' (which must exist); else reserve_macs() does it once the VM is
 * recorded. */
static json_t *nic_prepare(struct store_txn *t, const json_t *n, size_t i, const char *vm_id,
                           bool reserve, struct error **errp)
{
    static const char *const keys[] = { "id", "mac", "model", "network", NULL };
    AUTOFREE char *pfx = json_path_index("nics", i);
    if (!json_is_object(n))
        return error_set_field(errp, ERR_INVALID_ARG, pfx, "a NIC must be an object"), NULL;
    char defid[32];
    snprintf(defid, sizeof defid, "nic%zu", i);
    const char *id = defid, *mac = NULL;
    if (json_check_keys(n, keys, pfx, errp) < 0 ||
        json_get_string(n, "id", pfx, false, &id, errp) < 0 ||
        json_get_string(n, "mac", pfx, false, &mac, errp) < 0)
        return NULL;
    AUTOFREE char *fid = json_path_join(pfx, "id");
    AUTOFREE char *fmac = json_path_join(pfx, "mac");
    if (vm_device_id_validate(id, fid, errp) < 0 || (mac && vm_mac_validate(mac, fmac, errp) < 0))
        return NULL;
    char buf[18];
    for (int attempt = 0;; attempt++) {
        if (!mac) {
            mac_random(buf);
        } else {
            snprintf(buf, sizeof buf, "%s", mac);
            for (char *p = buf; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        }
        int64_t used = 0;
        if (store_query_int(t, "SELECT COUNT(*) FROM vm_nics WHERE mac = ?",
                            STORE_ARGS(SV_TEXT(buf)), &used, errp) < 0)
            return NULL;
        if (!used)
            break;
        if (mac)
            return error_set_field(errp, ERR_CONFLICT, fmac,
                                   "MAC address %s is used by another VM", buf), NULL;
        if (attempt > 16)
            return error_set(errp, ERR_INTERNAL, "cannot find a free MAC address"), NULL;
    }
    if (reserve && store_exec(t, "INSERT INTO vm_nics (mac, vm_id, nic_id) VALUES (?, ?, ?)",
                              STORE_ARGS(SV_TEXT(buf), SV_TEXT(vm_id), SV_TEXT(id)), errp) < 0)
        return NULL;
    const char *sg = json_string_value(json_object_get(json_object_get(n, "network"),
                                                       "security_group"));
    if (sg) {
        int64_t have = 0;
        if (store_query_int(t, "SELECT COUNT(*) FROM security_groups WHERE name = ?",
                            STORE_ARGS(SV_TEXT(sg)), &have, errp) < 0)
            return NULL;
        if (!have) {
            AUTOFREE char *f = xasprintf("%s.network.security_group", pfx);
            return error_set_field(errp, ERR_NOT_FOUND, f, "security group '%.40s' does not "
                                   "exist", sg), NULL;
        }
    }
    json_t *out = json_pack("{s:s, s:s}", "id", id, "mac", buf);
    if (json_object_get(n, "model"))
        json_object_set(out, "model", json_object_get(n, "model"));
    if (json_object_get(n, "network"))
        json_object_set(out, "network", json_object_get(n, "network"));
    return out;
}

int vm_spec_check(const json_t *spec, const char *vm_id, struct error **errp)
{
    AUTOJSON json_t *def = vm_agent_def(spec, vm_id, ds_path_placeholder, NULL, errp);
    if (!def)
        return -1;
    /* Roots: the placeholder datastores, and the directories the definition
     * names for kernels and ISOs (the agent checks them against its own). */
    const char *roots[8] = { VALIDATE_ROOT };
    AUTOFREE char *d1 = NULL, *d2 = NULL;
    size_t nr = 1;
    const json_t *boot = json_object_get(def, "boot");
    const char *k = json_string_value(json_object_get(boot, "kernel"));
    const char *i = json_string_value(json_object_get(boot, "initrd"));
    if (k && k[0] == '/') {
        AUTOFREE char *c = xstrdup(k);
        d1 = xstrdup(dirname(c));
        roots[nr++] = d1;
    }
    if (i && i[0] == '/') {
        AUTOFREE char *c = xstrdup(i);
        d2 = xstrdup(dirname(c));
        roots[nr++] = d2;
    }
    size_t ni = 0;
    const json_t *cds = json_object_get(def, "cdroms");
    size_t idx;
    const json_t *cd;
    char *isodirs[4] = { 0 };
    json_array_foreach(cds, idx, cd) {
        const char *p = json_string_value(json_object_get(cd, "path"));
        if (p && p[0] == '/' && ni < 4 && nr < 7) {
            AUTOFREE char *c = xstrdup(p);
            isodirs[ni] = xstrdup(dirname(c));
            roots[nr++] = isodirs[ni++];
        }
    }
    struct vm_def_limits lim = { .allowed_roots = roots };
    struct vm_def *vd = vm_def_from_json(def, &lim, errp);
    for (size_t j = 0; j < ni; j++)
        free(isodirs[j]);
    if (!vd)
        return -1;
    vm_def_free(vd);
    return 0;
}

static int resolve_cluster(struct store_txn *t, const char *ref, char id[UUID_STRLEN + 1],
                           struct error **errp)
{
    if (ref)
        return inv_resolve(t, &inv_clusters, ref, "cluster", id, errp);
    /* No cluster named: the only one there is. */
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT id FROM clusters ORDER BY name LIMIT 2",
                                                 STORE_NO_ARGS, errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return error_set_field(errp, ERR_BAD_STATE, "cluster", "there is no cluster yet");
    snprintf(id, UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    if ((r = store_step(st, errp)) != 0)
        return r < 0 ? -1 : error_set_field(errp, ERR_INVALID_ARG, "cluster",
                                            "there are several clusters: name one");
    return 0;
}

/* Records the MAC addresses of the NICs of 'spec' for VM 'vm_id'. */
static int reserve_macs(struct store_txn *t, const char *vm_id, const json_t *spec,
                        struct error **errp)
{
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(spec, "nics"), i, n) {
        const char *mac = json_string_value(json_object_get(n, "mac"));
        if (store_exec(t, "INSERT INTO vm_nics (mac, vm_id, nic_id) VALUES (?, ?, ?)",
                       STORE_ARGS(SV_TEXT(mac), SV_TEXT(vm_id),
                                  SV_TEXT(json_string_value(json_object_get(n, "id")))),
                       errp) < 0) {
            if (*errp && (*errp)->code == ERR_CONFLICT) {
                error_free(steal_pointer(errp));
                AUTOFREE char *f = json_path_index("nics", i);
                return error_set_field(errp, ERR_CONFLICT, f, "MAC address %s is used twice",
                                       mac);
            }
            return -1;
        }
    }
    return 0;
}

/* Records the VM row, its disks and NICs ('spec' complete), state creating. */
static int vm_insert(struct store_txn *t, const char *id, const json_t *spec,
                     const char *cluster_id, const char *host_id, const char *template_id,
                     const char *actor, struct error **errp)
{
    const char *name = json_string_value(json_object_get(spec, "name"));
    AUTOFREE char *text = json_to_string(spec);
    int64_t now = store_now_ms();
    if (store_exec(t, "INSERT INTO vms (id, name, cluster_id, host_id, template_id, state, "
                      "definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'creating', ?, "
                      "?, ?)",
                   STORE_ARGS(SV_TEXT(id), SV_TEXT(name), SV_TEXT(cluster_id), SV_TEXT(host_id),
                              SV_TEXT(template_id), SV_TEXT(text), SV_INT(now), SV_INT(now)),
                   errp) < 0) {
        if (*errp && (*errp)->code == ERR_CONFLICT) {
            error_free(steal_pointer(errp));
            return error_set_field(errp, ERR_CONFLICT, "name", "a VM named '%s' already exists",
                                   name);
        }
        return -1;
    }
    if (reserve_macs(t, id, spec, errp) < 0)
        return -1;
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(spec, "disks"), i, d) {
        const json_t *origin = json_object_get(d, "origin");
        if (json_object_get(origin, "existing"))
            continue;       /* not the VM's own volume */
        char did[UUID_STRLEN + 1];
        uuid_generate(did);
        const json_t *cr = json_object_get(origin, "create");
        json_int_t cap = json_integer_value(json_object_get(cr, "capacity"));
        const char *prov = cr ? json_string_value(json_object_get(cr, "provisioning"))
                           : json_object_get(origin, "base") ? "differencing" : "thin";
        if (store_exec(t, "INSERT INTO disks (id, name, vm_id, datastore_id, path, size_bytes, "
                          "provisioning, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(did), SV_TEXT(json_string_value(json_object_get(d, "id"))),
                                  SV_TEXT(id),
                                  SV_TEXT(json_string_value(json_object_get(d, "datastore_id"))),
                                  SV_TEXT(json_string_value(json_object_get(d, "volume"))),
                                  SV_INT(cap), SV_TEXT(prov), SV_INT(now), SV_INT(now)),
                       errp) < 0)
            return -1;
    }
    AUTOFREE char *msg = xasprintf("VM '%s' is being created", name);
    return append_event(t, "vm.creating", "info", id, name, NULL, actor, msg, errp);
}

/* Copies the pass-through fields of 'from' into 'to' (those not already set). */
static void copy_passthrough(json_t *to, const json_t *from)
{
    for (const char *const *k = passthrough; *k; k++)
        if (json_object_get(from, *k) && !json_object_get(to, *k))
            json_object_set(to, *k, json_object_get(from, *k));
}

/* Disks of a new VM made from 'src_disks' (a template's or a VM's). */
static json_t *disks_from(struct store_txn *t, const json_t *src_disks, const char *vm_name,
                          enum vm_source how, struct error **errp)
{
    json_t *out = json_array();
    size_t i;
    const json_t *d;
    json_array_foreach(src_disks, i, d) {
        json_t *n = json_deep_copy(d);
        const char *did = json_string_value(json_object_get(d, "id"));
        const char *ds_id = json_string_value(json_object_get(d, "datastore_id"));
        const char *src = json_string_value(json_object_get(d, "volume"));
        AUTOFREE char *vol = volume_name(vm_name, did);
        AUTOFREE char *f = json_path_index("disks", i);
        if (volume_taken(t, ds_id, vol, f, errp) < 0) {
            json_decref(n);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(n, "volume", json_string(vol));
        if (how == VM_SOURCE_LINKED) {
            json_object_set_new(n, "format", json_string("qcow2"));
            json_object_set_new(n, "origin", json_pack("{s:s}", "base", src));
        } else {
            json_object_set_new(n, "origin", json_pack("{s:s}", "source", src));
        }
        json_array_append_new(out, n);
    }
    return out;
}

static json_t *nics_from(struct store_txn *t, const json_t *src_nics, const char *vm_id,
                         struct error **errp)
{
    json_t *out = json_array();
    size_t i;
    const json_t *n;
    json_array_foreach(src_nics, i, n) {
        json_t *req = json_deep_copy(n);
        json_object_del(req, "mac");
        json_t *x = nic_prepare(t, req, i, vm_id, false, errp);
        json_decref(req);
        if (!x) {
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, x);
    }
    return out;
}

int vm_prepare_create(struct store_txn *t, const json_t *body, const char *actor,
                      char id_out[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const keys[] = {
        "name", "cluster", "host", "description", "start", "template", "clone", "vcpus",
        "memory", "cpu", "machine", "numa", "boot", "cdroms", "serial", "vnc", "balloon",
        "guest_agent", "disks", "nics", NULL,
    };
    const char *name = NULL, *cluster = NULL, *host = NULL, *tmpl = NULL, *clone = NULL,
               *desc = NULL;
    bool start = false;
    if (json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", true, &name, errp) < 0 ||
        json_get_string(body, "cluster", "", false, &cluster, errp) < 0 ||
        json_get_string(body, "host", "", false, &host, errp) < 0 ||
        json_get_string(body, "template", "", false, &tmpl, errp) < 0 ||
        json_get_string(body, "clone", "", false, &clone, errp) < 0 ||
        json_get_string(body, "description", "", false, &desc, errp) < 0 ||
        json_get_bool(body, "start", "", false, &start, errp) < 0)
        return -1;
    if (inv_name_validate(name, "name", errp) < 0 || vm_name_validate(name, "name", errp) < 0)
        return -1;
    if (desc && strlen(desc) > INV_DESCRIPTION_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, "description", "description is too long");
    const json_t *disks = json_object_get(body, "disks"), *nics = json_object_get(body, "nics");
    if (disks && (!json_is_array(disks) || json_array_size(disks) > MAX_DISKS))
        return error_set_field(errp, ERR_INVALID_ARG, "disks", "disks must be an array of at "
                               "most %d disks", MAX_DISKS);
    if (nics && (!json_is_array(nics) || json_array_size(nics) > MAX_NICS))
        return error_set_field(errp, ERR_INVALID_ARG, "nics", "nics must be an array of at most "
                               "%d NICs", MAX_NICS);
    enum vm_source how = VM_SOURCE_NONE;
    if (clone && !tmpl)
        return error_set_field(errp, ERR_INVALID_ARG, "clone", "'clone' goes with 'template'");
    if (tmpl) {
        if (clone && strcmp(clone, "linked") && strcmp(clone, "full"))
            return error_set_field(errp, ERR_INVALID_ARG, "clone",
                                   "clone '%.20s' must be linked or full", clone);
        how = clone && !strcmp(clone, "full") ? VM_SOURCE_FULL : VM_SOURCE_LINKED;
        if (disks)
            return error_set_field(errp, ERR_INVALID_ARG, "disks",
                                   "a VM deployed from a template takes the template's disks");
    }

    char id[UUID_STRLEN + 1], cluster_id[UUID_STRLEN + 1], host_id[UUID_STRLEN + 1] = "",
         tmpl_id[UUID_STRLEN + 1] = "";
    uuid_generate(id);
    if (resolve_cluster(t, cluster, cluster_id, errp) < 0)
        return -1;
    if (host && inv_resolve(t, &inv_hosts, host, "host", host_id, errp) < 0)
        return -1;

    AUTOJSON json_t *spec = json_pack("{s:s}", "name", name);
    if (desc)
        json_object_set_new(spec, "description", json_string(desc));
    for (const char *const *k = passthrough; *k; k++)
        if (json_object_get(body, *k))
            json_object_set(spec, *k, json_object_get(body, *k));
    if (tmpl) {
        if (inv_resolve(t, &inv_templates, tmpl, "template", tmpl_id, errp) < 0)
            return -1;
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT definition FROM templates WHERE id = ?", STORE_ARGS(SV_TEXT(tmpl_id)),
            errp);
        if (!st || store_step(st, errp) <= 0)
            return -1;
        const char *text = store_col_text(st, 0);
        AUTOJSON json_t *tdef = json_from_string(text, strlen(text), errp);
        if (!tdef)
            return -1;
        copy_passthrough(spec, tdef);
        json_t *nd = disks_from(t, json_object_get(tdef, "disks"), name, how, errp);
        if (!nd)
            return -1;
        json_object_set_new(spec, "disks", nd);
        if (!nics) {
            json_t *nn = nics_from(t, json_object_get(tdef, "nics"), id, errp);
            if (!nn)
                return -1;
            json_object_set_new(spec, "nics", nn);
        }
    } else {
        json_t *arr = json_array();
        json_object_set_new(spec, "disks", arr);
        size_t i;
        const json_t *d;
        json_array_foreach(disks, i, d) {
            json_t *x = disk_prepare(t, d, i, name, errp);
            if (!x)
                return -1;
            json_array_append_new(arr, x);
        }
    }
    if (nics || !json_object_get(spec, "nics")) {
        json_t *arr = json_array();
        json_object_set_new(spec, "nics", arr);
        size_t i;
        const json_t *n;
        json_array_foreach(nics, i, n) {
            json_t *x = nic_prepare(t, n, i, id, false, errp);
            if (!x)
                return -1;
            json_array_append_new(arr, x);
        }
    }
    if (!json_object_get(spec, "memory"))
        return error_set_field(errp, ERR_INVALID_ARG, "memory", "memory is required");
    if (vm_spec_check(spec, id, errp) < 0 ||
        vm_insert(t, id, spec, cluster_id, host_id[0] ? host_id : NULL,
                  tmpl_id[0] ? tmpl_id : NULL, actor, errp) < 0)
        return -1;
    memcpy(id_out, id, sizeof id);
    return 0;
}

int vm_prepare_clone(struct store_txn *t, const char *src_ref, const json_t *body,
                     const char *actor, char id_out[UUID_STRLEN + 1], struct error **errp)
{
    static const char *const keys[] = { "name", "start", "host", NULL };
    const char *name = NULL, *host = NULL;
    bool start = false;
    if (json_check_keys(body, keys, "", errp) < 0 ||
        json_get_string(body, "name", "", true, &name, errp) < 0 ||
        json_get_string(body, "host", "", false, &host, errp) < 0 ||
        json_get_bool(body, "start", "", false, &start, errp) < 0 ||
        inv_name_validate(name, "name", errp) < 0 || vm_name_validate(name, "name", errp) < 0)
        return -1;
    char src_id[UUID_STRLEN + 1], id[UUID_STRLEN + 1], host_id[UUID_STRLEN + 1] = "";
    if (inv_resolve(t, &inv_vms, src_ref, NULL, src_id, errp) < 0 ||
        (host && inv_resolve(t, &inv_hosts, host, "host", host_id, errp) < 0))
        return -1;
    struct vm_rec src = { 0 };
    if (vm_rec_read(t, src_id, &src, errp) < 0) {
        vm_rec_clear(&src);
        return -1;
    }
    int ret = -1;
    uuid_generate(id);
    json_t *spec = json_pack("{s:s}", "name", name);
    copy_passthrough(spec, src.spec);
    json_t *nd = NULL, *nn = NULL;
    if (strcmp(src.state, "stopped") != 0) {
        error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: a full clone is made of a stopped VM",
                  src.name, src.state);
        goto out;
    }
    if (!(nd = disks_from(t, json_object_get(src.spec, "disks"), name, VM_SOURCE_FULL, errp)))
        goto out;
    json_object_set_new(spec, "disks", nd);
    if (!(nn = nics_from(t, json_object_get(src.spec, "nics"), id, errp)))
        goto out;
    json_object_set_new(spec, "nics", nn);
    /* The copy is made on the source's host; the clone may run anywhere the
     * datastores are. */
    if (vm_spec_check(spec, id, errp) < 0 ||
        vm_insert(t, id, spec, src.cluster_id, host_id[0] ? host_id : NULL, NULL, actor,
                  errp) < 0)
        goto out;
    memcpy(id_out, id, sizeof id);
    ret = 0;
out:
    json_decref(spec);
    vm_rec_clear(&src);
    return ret;
}

int vm_prepare_disk(struct store_txn *t, const char *vm_id, const json_t *body,
                    json_t **disk_out, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    AUTOJSON json_t *d = NULL;
    if (vm_rec_read(t, vm_id, &v, errp) < 0)
        goto out;
    d = disk_prepare(t, body, 0, v.name, errp);
    if (!d)
        goto out;
    const char *did = json_string_value(json_object_get(d, "id"));
    size_t i;
    const json_t *x;
    json_array_foreach(json_object_get(v.spec, "disks"), i, x)
        if (!strcmp(json_string_value(json_object_get(x, "id")), did)) {
            error_set_field(errp, ERR_CONFLICT, "id", "VM '%s' already has a disk '%s'", v.name,
                            did);
            goto out;
        }
    if (!json_object_get(json_object_get(d, "origin"), "existing")) {
        char rid[UUID_STRLEN + 1];
        uuid_generate(rid);
        const json_t *cr = json_object_get(json_object_get(d, "origin"), "create");
        int64_t now = store_now_ms();
        if (store_exec(t, "INSERT INTO disks (id, name, vm_id, datastore_id, path, size_bytes, "
                          "provisioning, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       STORE_ARGS(SV_TEXT(rid), SV_TEXT(did), SV_TEXT(v.id),
                                  SV_TEXT(json_string_value(json_object_get(d, "datastore_id"))),
                                  SV_TEXT(json_string_value(json_object_get(d, "volume"))),
                                  SV_INT(json_integer_value(json_object_get(cr, "capacity"))),
                                  SV_TEXT(cr ? json_string_value(json_object_get(cr, "provisioning"))
                                             : "differencing"),
                                  SV_INT(now), SV_INT(now)), errp) < 0)
            goto out;
    }
    *disk_out = steal_pointer(&d);
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

int vm_prepare_nic(struct store_txn *t, const char *vm_id, const json_t *body, json_t **nic_out,
                   struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    AUTOJSON json_t *x = NULL;
    if (vm_rec_read(t, vm_id, &v, errp) < 0)
        goto out;
    x = nic_prepare(t, body, json_array_size(json_object_get(v.spec, "nics")), v.id, true, errp);
    if (!x)
        goto out;
    const char *nid = json_string_value(json_object_get(x, "id"));
    size_t i;
    const json_t *o;
    json_array_foreach(json_object_get(v.spec, "nics"), i, o)
        if (!strcmp(json_string_value(json_object_get(o, "id")), nid)) {
            error_set_field(errp, ERR_CONFLICT, "id", "VM '%s' already has a NIC '%s'", v.name,
                            nid);
            goto out;
        }
    *nic_out = steal_pointer(&x);
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

/* ---- agent definitions -------------------------------------------------- */

/* "st" + the first 8 hex digits of the VM id + 4 of a hash of the NIC id:
 * stable whatever the order of the NICs, 14 characters (the limit is 15). */
static void vm_tap_name(const char *vm_id, const char *nic_id, char out[16])
{
    uint32_t h = 2166136261u;
    for (const char *p = nic_id ? nic_id : ""; *p; p++)
        h = (h ^ (unsigned char) *p) * 16777619u;
    snprintf(out, 16, "st%.8s%04x", vm_id, (unsigned) (h & 0xffff));
}

json_t *vm_agent_def(const json_t *spec, const char *vm_id, vm_ds_path_fn *ds_path,
                     void *opaque, struct error **errp)
{
    json_t *def = json_pack("{s:s, s:s}", "name",
                            json_string_value(json_object_get(spec, "name")), "uuid", vm_id);
    copy_passthrough(def, spec);
    json_t *disks = json_array();
    json_object_set_new(def, "disks", disks);
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(spec, "disks"), i, d) {
        const char *ds_id = json_string_value(json_object_get(d, "datastore_id"));
        AUTOFREE char *dir = ds_path(opaque, ds_id, errp);
        if (!dir) {
            json_decref(def);
            return NULL;
        }
        json_t *o = json_pack("{s:s, s:s++, s:s}", "id",
                              json_string_value(json_object_get(d, "id")), "path", dir, "/",
                              json_string_value(json_object_get(d, "volume")), "format",
                              json_string_value(json_object_get(d, "format")));
        /* Volume files are <volume>.<format> in the datastore. */
        const char *fmt = json_string_value(json_object_get(d, "format"));
        AUTOFREE char *path = xasprintf("%s.%s", json_string_value(json_object_get(o, "path")),
                                        fmt);
        json_object_set_new(o, "path", json_string(path));
        static const char *const copy[] = { "bus", "cache", "readonly", "shared", "serial",
                                            NULL };
        for (const char *const *k = copy; *k; k++)
            if (json_object_get(d, *k))
                json_object_set(o, *k, json_object_get(d, *k));
        json_array_append_new(disks, o);
    }
    json_t *nics = json_array();
    json_object_set_new(def, "nics", nics);
    const json_t *n;
    json_array_foreach(json_object_get(spec, "nics"), i, n) {
        char tap[16];
        vm_tap_name(vm_id, json_string_value(json_object_get(n, "id")), tap);
        json_t *o = json_pack("{s:s, s:s, s:s}", "id", json_string_value(json_object_get(n, "id")),
                              "mac", json_string_value(json_object_get(n, "mac")), "tap", tap);
        if (json_object_get(n, "model"))
            json_object_set(o, "model", json_object_get(n, "model"));
        if (json_object_get(n, "network"))
            json_object_set(o, "network", json_object_get(n, "network"));
        json_array_append_new(nics, o);
    }
    return def;
}

/* ---- placement ---------------------------------------------------------- */

static unsigned spec_vcpus(const json_t *spec)
{
    const json_t *v = json_object_get(spec, "vcpus");
    if (json_is_integer(v))
        return (unsigned) json_integer_value(v);
    if (json_is_object(v))
        return (unsigned) json_integer_value(json_object_get(v, "count"));
    return 1;
}

static uint64_t spec_mem_mib(const json_t *spec)
{
    const json_t *v = json_object_get(spec, "memory");
    if (json_is_integer(v))
        return (uint64_t) json_integer_value(v);
    return (uint64_t) json_integer_value(json_object_get(v, "mib"));
}

struct place_host {
    char id[UUID_STRLEN + 1];
    char *name, *state;
    json_t *facts, *stats;
    char **datastores, **networks;      /* NULL-terminated */
    size_t n_ds, n_net;
    uint64_t committed_mib;
    unsigned committed_vcpus;
};

static void mstrv_push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

static void mstrv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int read_column_list(struct store_txn *t, const char *sql, const char *arg, char ***v,
                            size_t *n, struct error **errp)
{
    AUTOSTMT struct store_stmt *st = store_query(t, sql, STORE_ARGS(SV_TEXT(arg)), errp);
    if (!st)
        return -1;
    int r;
    while ((r = store_step(st, errp)) > 0)
        mstrv_push(v, n, store_col_text(st, 0));
    if (!*v)
        *v = xzalloc(sizeof **v);
    return r < 0 ? -1 : 0;
}

/* Chooses a host for VM 'v' in its cluster (or checks the pinned one). */
static int vm_place(struct manager *m, const struct vm_rec *v, const char *pinned,
                    char host_out[UUID_STRLEN + 1], struct error **errp)
{
    struct place_host *hosts = NULL;
    size_t n = 0;
    int ret = -1;
    char **need_ds = NULL, **need_net = NULL;
    size_t n_need_ds = 0, n_need_net = 0;
    struct placement_policy_cfg cfg = { .policy = PLACEMENT_RANDOM,
                                        .mem_overcommit_ratio = 1.0,
                                        .cpu_overcommit_ratio = 8.0,
                                        .host_reserved_mib = HOST_RESERVED_MIB };
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
        if (!t)
            return -1;
        AUTOSTMT struct store_stmt *cs = store_query(
            t, "SELECT startup_policy, memory_overcommit FROM clusters WHERE id = ?",
            STORE_ARGS(SV_TEXT(v->cluster_id)), errp);
        if (!cs || store_step(cs, errp) < 0)
            return -1;
        if (store_col_text(cs, 0) && !strcmp(store_col_text(cs, 0), "load-balancing"))
            cfg.policy = PLACEMENT_LEAST_LOADED;
        if (store_col_int(cs, 1)) {
            cfg.mem_overcommit = true;
            cfg.mem_overcommit_ratio = 1.5;
        }
        AUTOSTMT struct store_stmt *hs = store_query(
            t, "SELECT id, name, state, facts, stats FROM hosts WHERE cluster_id = ? "
               "ORDER BY name", STORE_ARGS(SV_TEXT(v->cluster_id)), errp);
        if (!hs)
            return -1;
        int r;
        while ((r = store_step(hs, errp)) > 0) {
            hosts = xrealloc(hosts, (n + 1) * sizeof *hosts);
            struct place_host *h = &hosts[n++];
            memset(h, 0, sizeof *h);
            snprintf(h->id, sizeof h->id, "%s", store_col_text(hs, 0));
            h->name = xstrdup(store_col_text(hs, 1));
            h->state = xstrdup(store_col_text(hs, 2));
            const char *f = store_col_text(hs, 3), *s = store_col_text(hs, 4);
            h->facts = f ? json_loads(f, 0, NULL) : NULL;
            h->stats = s ? json_loads(s, 0, NULL) : NULL;
        }
        if (r < 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            struct place_host *h = &hosts[i];
            if (read_column_list(t, "SELECT datastore_id FROM host_datastores WHERE host_id = ?",
                                 h->id, &h->datastores, &h->n_ds, errp) < 0 ||
                read_column_list(t, "SELECT dvs_id FROM host_dvs WHERE host_id = ?", h->id,
                                 &h->networks, &h->n_net, errp) < 0 ||
                read_column_list(t, "SELECT nat_id FROM host_nat_networks WHERE host_id = ?",
                                 h->id, &h->networks, &h->n_net, errp) < 0)
                goto out;
            AUTOSTMT struct store_stmt *vs = store_query(
                t, "SELECT definition FROM vms WHERE host_id = ? AND id <> ?",
                STORE_ARGS(SV_TEXT(h->id), SV_TEXT(v->id)), errp);
            if (!vs)
                goto out;
            while ((r = store_step(vs, errp)) > 0) {
                AUTOJSON json_t *d = json_loads(store_col_text(vs, 0), 0, NULL);
                h->committed_mib += spec_mem_mib(d);
                h->committed_vcpus += spec_vcpus(d);
            }
            if (r < 0)
                goto out;
        }
        size_t i;
        const json_t *d;
        json_array_foreach(json_object_get(v->spec, "disks"), i, d)
            mstrv_push(&need_ds, &n_need_ds,
                      json_string_value(json_object_get(d, "datastore_id")));
        json_array_foreach(json_object_get(v->spec, "nics"), i, d) {
            const json_t *net = json_object_get(d, "network");
            const char *nat = json_string_value(json_object_get(net, "nat"));
            const char *dvs = json_string_value(json_object_get(net, "dvs"));
            int64_t found = 0;
            AUTOSTMT struct store_stmt *ns = NULL;
            if (nat)
                ns = store_query(t, "SELECT id FROM nat_networks WHERE name = ?",
                                 STORE_ARGS(SV_TEXT(nat)), errp);
            else if (dvs)
                ns = store_query(t, "SELECT id FROM dvs WHERE name = ?",
                                 STORE_ARGS(SV_TEXT(dvs)), errp);
            if ((nat || dvs) && !ns)
                goto out;
            if (ns && (found = store_step(ns, errp)) < 0)
                goto out;
            if (found)      /* networks unknown to the inventory are the agent's business */
                mstrv_push(&need_net, &n_need_net, store_col_text(ns, 0));
        }
    }
    if (n == 0) {
        error_set(errp, ERR_BAD_STATE, "cluster of VM '%s' has no host", v->name);
        goto out;
    }
    struct placement_host *ph = xcalloc(n, sizeof *ph);
    for (size_t i = 0; i < n; i++) {
        struct place_host *h = &hosts[i];
        const json_t *st = h->stats, *f = h->facts;
        ph[i].id = h->id;
        ph[i].name = h->name;
        ph[i].state = h->state;
        json_int_t cpus = json_integer_value(json_object_get(st, "online_cpus"));
        if (!cpus)
            cpus = json_integer_value(json_object_get(json_object_get(f, "cpu"), "online_cpus"));
        ph[i].cpus = (unsigned) (cpus > 0 ? cpus : 1);
        ph[i].cpu_usage = json_number_value(json_object_get(json_object_get(st, "cpu"),
                                                            "busy_pct")) / 100.0;
        const json_t *mem = json_object_get(st, "memory");
        if (!mem)
            mem = json_object_get(f, "memory");
        uint64_t total = (uint64_t) json_integer_value(json_object_get(mem, "total_bytes"));
        uint64_t avail = (uint64_t) json_integer_value(json_object_get(mem, "available_bytes"));
        ph[i].mem_total_mib = total >> 20;
        ph[i].mem_used_mib = (total - (avail < total ? avail : total)) >> 20;
        ph[i].mem_committed_mib = h->committed_mib;
        ph[i].vcpus_committed = h->committed_vcpus;
        ph[i].datastores = (const char *const *) h->datastores;
        ph[i].networks = (const char *const *) h->networks;
    }
    struct placement_request req = {
        .vcpus = spec_vcpus(v->spec), .mem_mib = spec_mem_mib(v->spec),
        .datastores = (const char *const *) need_ds, .networks = (const char *const *) need_net,
        .pinned_host = pinned,
    };
    int k = placement_choose(ph, n, &req, &cfg, NULL, NULL, errp);
    if (k >= 0) {
        snprintf(host_out, UUID_STRLEN + 1, "%s", hosts[k].id);
        ret = 0;
    }
    free(ph);
out:
    for (size_t i = 0; i < n; i++) {
        free(hosts[i].name);
        free(hosts[i].state);
        json_decref(hosts[i].facts);
        json_decref(hosts[i].stats);
        mstrv_free(hosts[i].datastores);
        mstrv_free(hosts[i].networks);
    }
    free(hosts);
    mstrv_free(need_ds);
    mstrv_free(need_net);
    return ret;
}

/* A connected host that reaches datastore 'ds_id' (preferring 'prefer'). */
static int ds_host(struct manager *m, const char *ds_id, const char *prefer,
                   char out[UUID_STRLEN + 1], struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    AUTOSTMT struct store_stmt *st = t ? store_query(
        t, "SELECT h.id FROM hosts h JOIN host_datastores hd ON hd.host_id = h.id "
           "WHERE hd.datastore_id = ? AND h.state = 'connected' "
           "ORDER BY CASE WHEN h.id = ? THEN 0 ELSE 1 END, h.name LIMIT 1",
        STORE_ARGS(SV_TEXT(ds_id), SV_TEXT(prefer)), errp) : NULL;
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r < 0 ? -1 : error_set(errp, ERR_BAD_STATE,
                                      "no connected host reaches datastore '%s'", ds_id);
    snprintf(out, UUID_STRLEN + 1, "%s", store_col_text(st, 0));
    return 0;
}

/* ---- task helpers ------------------------------------------------------- */

/* Progress of an agent job into the task's; false once the task is being
 * cancelled, which cancels the agent job too. */
static bool on_progress(int pct, void *opaque)
{
    task_progress(opaque, pct);
    return !task_cancel_requested(opaque);
}

static const char *param_str(const struct task_ctx *c, const char *key)
{
    return json_string_value(json_object_get(c->params, key));
}

static const char *vm_id_of(const struct task_ctx *c)
{
    const char *id = param_str(c, "vm_id");
    return id ? id : c->object_id;
}

static bool is_not_found(const struct error *e)
{
    return e && e->code == ERR_NOT_FOUND;
}

/* The agent's view of VM 'v': a new object, or NULL with '*errp' (not-found
 * when the agent does not have it, or has another VM of that name). */
static json_t *agent_vm(struct agent_conn *a, const struct vm_rec *v, struct error **errp)
{
    AUTOFREE char *path = agent_path("/v1/vms/%s", v->name);
    json_t *r = NULL;
    if (agent_call(a, "GET", path, NULL, NULL, &r, errp) < 0)
        return NULL;
    const char *uuid = json_string_value(json_object_get(r, "uuid"));
    if (!uuid || strcasecmp(uuid, v->id) != 0) {
        json_decref(r);
        return error_set(errp, ERR_NOT_FOUND, "host '%s' has another VM named '%s'",
                         a->host_name, v->name), NULL;
    }
    return r;
}

/* Loads the task's VM and connects to its host. */
static struct agent_conn *vm_open(struct task_ctx *c, struct vm_rec *v, struct error **errp)
{
    if (vm_rec_load(c->m, vm_id_of(c), v, errp) < 0)
        return NULL;
    if (!v->host_id)
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is on no host", v->name), NULL;
    return agent_connect(c->m, v->host_id, false, errp);
}

/* Records the state the agent reports for 'v'. */
static int vm_refresh(struct task_ctx *c, struct agent_conn *a, const struct vm_rec *v,
                      struct error **errp)
{
    AUTOJSON json_t *r = agent_vm(a, v, errp);
    if (!r)
        return -1;
    const char *state = json_string_value(json_object_get(r, "state"));
    return vm_state_set(c->m, v->id, state ? state : "unknown", NULL, c->task_id, errp);
}

static int checkpoint_persist(struct task_ctx *c, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t || task_checkpoint_save(t, c->task_id, c->checkpoint, errp) < 0)
        return -1;
    return store_commit(steal_pointer(&t), errp);
}

/* Pushes again the security groups whose members are NICs of 'spec' (their
 * member addresses changed). */
static void refresh_groups(struct manager *m, const json_t *spec)
{
    size_t i;
    const json_t *n;
    json_array_foreach(json_object_get(spec, "nics"), i, n) {
        const json_t *net = json_object_get(n, "network");
        const char *sg = json_string_value(json_object_get(net, "security_group"));
        if (sg && json_array_size(json_object_get(net, "ips")))
            secgroup_refresh(m, sg);
    }
}

/* ---- vm.create ---------------------------------------------------------- */

static int forget_vm(struct manager *m, const char *vm_id, const char *task_id,
                     const char *why, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name FROM vms WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(vm_id)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r;
    AUTOFREE char *name = xstrdup(store_col_text(st, 0));
    store_stmt_free(steal_pointer(&st));
    if (store_exec(t, "DELETE FROM disks WHERE vm_id = ?", STORE_ARGS(SV_TEXT(vm_id)), errp) < 0 ||
        store_exec(t, "DELETE FROM snapshots WHERE vm_id = ?", STORE_ARGS(SV_TEXT(vm_id)),
                   errp) < 0 ||
        store_exec(t, "DELETE FROM vm_nics WHERE vm_id = ?", STORE_ARGS(SV_TEXT(vm_id)),
                   errp) < 0 ||
        store_exec(t, "DELETE FROM vms WHERE id = ?", STORE_ARGS(SV_TEXT(vm_id)), errp) < 0)
        return -1;
    AUTOFREE char *msg = xasprintf("VM '%s' deleted%s%s", name, why ? ": " : "", why ? why : "");
    if (append_event(t, "vm.deleted", "info", vm_id, name, task_id, NULL, msg, errp) < 0)
        return -1;
    return manager_commit(m, steal_pointer(&t), errp);
}

/* Placements run one at a time: each sees the commitments of the one
 * before (the VM's host is recorded before the next chooses), so parallel
 * creations cannot overcommit a host between two heartbeats. */
static pthread_mutex_t place_lock = PTHREAD_MUTEX_INITIALIZER;

static int step_place(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    char host[UUID_STRLEN + 1];
    if (vm_rec_load(c->m, vm_id_of(c), &v, errp) < 0)
        return -1;
    pthread_mutex_lock(&place_lock);
    if (vm_place(c->m, &v, v.host_id, host, errp) < 0)
        goto out;
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || store_exec(t, "UPDATE vms SET host_id = ?, updated_at = ? WHERE id = ?",
                             STORE_ARGS(SV_TEXT(host), SV_INT(store_now_ms()), SV_TEXT(v.id)),
                             errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            goto out;
    }
    json_object_set_new(c->checkpoint, "host", json_string(host));
    ret = 0;
out:
    pthread_mutex_unlock(&place_lock);
    vm_rec_clear(&v);
    return ret;
}

static void undo_place(struct task_ctx *c)
{
    AUTOERROR struct error *err = NULL;
    if (forget_vm(c->m, vm_id_of(c), c->task_id, "its creation failed", &err) < 0)
        LOG_WARN("task %s: cannot forget VM %s: %s", c->task_id, c->object_id, err->message);
}

/* Creates the volumes of the disks in 'disks' that the VM owns, on 'a'. */
static int create_volumes(struct task_ctx *c, struct agent_conn *a, const json_t *disks,
                          struct error **errp)
{
    json_t *made = json_object_get(c->checkpoint, "volumes");
    if (!made) {
        made = json_array();
        json_object_set_new(c->checkpoint, "volumes", made);
    }
    size_t i, total = json_array_size(disks);
    const json_t *d;
    json_array_foreach(disks, i, d) {
        const json_t *origin = json_object_get(d, "origin");
        if (json_object_get(origin, "existing"))
            continue;
        const char *ds = json_string_value(json_object_get(d, "datastore"));
        const char *vol = json_string_value(json_object_get(d, "volume"));
        const char *fmt = json_string_value(json_object_get(d, "format"));
        bool ours = false;
        size_t j;
        const json_t *x;
        json_array_foreach(made, j, x)
            ours |= !strcmp(json_string_value(json_object_get(x, "volume")), vol) &&
                    !strcmp(json_string_value(json_object_get(x, "datastore")), ds);
        AUTOFREE char *vpath = agent_path("/v1/datastores/%s/volumes/%s", ds, vol);
        AUTOERROR struct error *gerr = NULL;
        AUTOJSON json_t *existing = NULL;
        if (agent_call(a, "GET", vpath, NULL, NULL, &existing, &gerr) == 0) {
            const char *st = json_string_value(json_object_get(existing, "state"));
            if (ours && st && !strcmp(st, "ready"))
                continue;       /* made before a restart */
            if (!ours)
                return error_set(errp, ERR_CONFLICT, "volume '%s' already exists in datastore "
                                 "'%s'", vol, ds);
        } else if (!is_not_found(gerr)) {
            *errp = steal_pointer(&gerr);
            return -1;
        }
        if (!ours) {
            json_array_append_new(made, json_pack("{s:s, s:s}", "datastore", ds, "volume", vol));
            if (checkpoint_persist(c, errp) < 0)   /* before: undo must know of it */
                return -1;
        }
        json_t *body = json_pack("{s:s}", "name", vol);
        const json_t *cr = json_object_get(origin, "create");
        if (cr) {
            json_object_set(body, "capacity", json_object_get(cr, "capacity"));
            json_object_set_new(body, "format", json_string(fmt));
            json_object_set(body, "provisioning", json_object_get(cr, "provisioning"));
            if (json_object_get(cr, "mode"))
                json_object_set(body, "mode", json_object_get(cr, "mode"));
        } else if (json_object_get(origin, "base")) {
            json_object_set(body, "base", json_object_get(origin, "base"));
        } else {
            json_object_set(body, "source", json_object_get(origin, "source"));
            json_object_set_new(body, "format", json_string(fmt));
        }
        AUTOFREE char *cpath = agent_path("/v1/datastores/%s/volumes", ds);
        int r = agent_call_wait(a, "POST", cpath, body, on_progress, c, NULL, errp);
        json_decref(body);
        if (r < 0) {
            error_prefix(errp, "volume '%s'", vol);
            return -1;
        }
        task_progress(c, (int) ((i + 1) * 100 / (total ? total : 1)));
    }
    return 0;
}

static void delete_volumes(struct task_ctx *c, const char *host_id, const json_t *list)
{
    size_t i;
    const json_t *x;
    AUTOERROR struct error *err = NULL;
    AUTOAGENT struct agent_conn *a = host_id ? agent_connect(c->m, host_id, false, &err) : NULL;
    if (!a) {
        if (json_array_size(list))
            LOG_WARN("task %s: cannot delete volumes: %s", c->task_id,
                     err ? err->message : "no host");
        return;
    }
    json_array_foreach(list, i, x) {
        const char *ds = json_string_value(json_object_get(x, "datastore"));
        const char *vol = json_string_value(json_object_get(x, "volume"));
        AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s", ds, vol);
        /* A volume still being made (an agent job the manager started
         * before it stopped) cannot be deleted yet: wait for the job. */
        for (int tries = 0;; tries++) {
            AUTOERROR struct error *e = NULL;
            if (agent_call_wait(a, "DELETE", path, NULL, NULL, NULL, NULL, &e) == 0 ||
                is_not_found(e))
                break;
            if (e->code != ERR_BAD_STATE || tries >= VOLUME_BUSY_TRIES) {
                LOG_WARN("task %s: cannot delete volume %s/%s: %s", c->task_id, ds, vol,
                         e->message);
                break;
            }
            struct timespec ts = { 0, 250 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
}

static int step_create_disks(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    int ret = a ? create_volumes(c, a, json_object_get(v.spec, "disks"), errp) : -1;
    vm_rec_clear(&v);
    return ret;
}

static void undo_create_disks(struct task_ctx *c)
{
    delete_volumes(c, json_string_value(json_object_get(c->checkpoint, "host")),
                   json_object_get(c->checkpoint, "volumes"));
}

static int define_on(struct task_ctx *c, struct agent_conn *a, const struct vm_rec *v,
                     struct error **errp)
{
    struct ds_path_ctx pc = { c->m, a->host_id };
    AUTOJSON json_t *def = vm_agent_def(v->spec, v->id, ds_path_from_store, &pc, errp);
    if (!def)
        return -1;
    AUTOERROR struct error *e = NULL;
    if (agent_call(a, "POST", "/v1/vms", def, NULL, NULL, &e) == 0)
        return 0;
    if (e->code == ERR_CONFLICT) {      /* ours already (a resumed task)? */
        AUTOERROR struct error *e2 = NULL;
        AUTOJSON json_t *r = agent_vm(a, v, &e2);
        if (r)
            return 0;
    }
    *errp = steal_pointer(&e);
    return -1;
}

static int step_define(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    int ret = a ? define_on(c, a, &v, errp) : -1;
    if (ret == 0)
        json_object_set_new(c->checkpoint, "defined", json_true());
    vm_rec_clear(&v);
    return ret;
}

/* Removes VM 'v' from its agent if the agent has it (by uuid). */
static int undefine_on(struct agent_conn *a, const struct vm_rec *v, bool force,
                       struct error **errp)
{
    AUTOERROR struct error *e = NULL;
    AUTOJSON json_t *r = agent_vm(a, v, &e);
    if (!r)
        return is_not_found(e) ? 0 : (*errp = steal_pointer(&e), -1);
    AUTOFREE char *path = agent_path("/v1/vms/%s", v->name);
    const char *state = json_string_value(json_object_get(r, "state"));
    if (force && state && strcmp(state, "stopped") && strcmp(state, "saved")) {
        AUTOFREE char *dpath = agent_path("/v1/vms/%s/destroy", v->name);
        if (agent_call(a, "POST", dpath, NULL, NULL, NULL, errp) < 0)
            return -1;
    }
    AUTOERROR struct error *de = NULL;
    if (agent_call(a, "DELETE", path, NULL, NULL, NULL, &de) < 0 && !is_not_found(de)) {
        *errp = steal_pointer(&de);
        return -1;
    }
    return 0;
}

static void undo_define(struct task_ctx *c)
{
    struct vm_rec v = { 0 };
    AUTOERROR struct error *err = NULL;
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, &err);
    if (!a || undefine_on(a, &v, true, &err) < 0)
        LOG_WARN("task %s: cannot remove VM %s from its host: %s", c->task_id, c->object_id,
                 err ? err->message : "?");
    vm_rec_clear(&v);
}

static int start_on(struct task_ctx *c, struct agent_conn *a, const struct vm_rec *v,
                    struct error **errp)
{
    AUTOJSON json_t *r = agent_vm(a, v, errp);
    if (!r)
        return -1;
    if (strcmp(json_string_value(json_object_get(r, "state")), "running") != 0) {
        AUTOFREE char *path = agent_path("/v1/vms/%s/start", v->name);
        if (agent_call(a, "POST", path, NULL, NULL, NULL, errp) < 0)
            return -1;
    }
    return vm_refresh(c, a, v, errp);
}

static int step_finish_create(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    int ret = -1;
    if (!a)
        goto out;
    if (json_is_true(json_object_get(c->params, "start"))) {
        if (start_on(c, a, &v, errp) < 0)
            goto out;
    } else if (vm_refresh(c, a, &v, errp) < 0) {
        goto out;
    }
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        AUTOFREE char *msg = xasprintf("VM '%s' created on host '%s'", v.name, a->host_name);
        if (!t || append_event(t, "vm.created", "info", v.id, v.name, c->task_id, NULL, msg,
                               errp) < 0 ||
            manager_commit(c->m, steal_pointer(&t), errp) < 0)
            goto out;
    }
    refresh_groups(c->m, v.spec);
    json_object_set_new(c->result, "vm_id", json_string(v.id));
    json_object_set_new(c->result, "host", json_string(a->host_name));
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

static const struct task_step_def create_steps[] = {
    { "place", step_place, undo_place },
    { "create-disks", step_create_disks, undo_create_disks },
    { "define", step_define, undo_define },
    { "finish", step_finish_create, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_create = { "vm.create", create_steps, false, NULL };

/* ---- vm.delete ---------------------------------------------------------- */

static int step_undefine(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    if (vm_rec_load(c->m, c->object_id, &v, errp) < 0)
        goto out;
    if (v.host_id) {
        AUTOAGENT struct agent_conn *a = agent_connect(c->m, v.host_id, false, errp);
        if (!a || undefine_on(a, &v, false, errp) < 0)
            goto out;
        json_object_set_new(c->checkpoint, "host", json_string(v.host_id));
    }
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

static int step_delete_disks(struct task_ctx *c, struct error **errp)
{
    if (json_is_true(json_object_get(c->params, "keep_disks")))
        return 0;
    json_t *list = json_array();
    const char *host = json_string_value(json_object_get(c->checkpoint, "host"));
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_READ, errp);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT d.name, k.path FROM disks k JOIN datastores d ON d.id = k.datastore_id "
               "WHERE k.vm_id = ?", STORE_ARGS(SV_TEXT(c->object_id)), errp) : NULL;
        if (!st) {
            json_decref(list);
            return -1;
        }
        while (store_step(st, errp) > 0)
            json_array_append_new(list, json_pack("{s:s, s:s}", "datastore",
                                                  store_col_text(st, 0), "volume",
                                                  store_col_text(st, 1)));
    }
    delete_volumes(c, host, list);
    json_decref(list);
    return 0;
}

static int step_forget(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    AUTOERROR struct error *e = NULL;
    bool had = vm_rec_load(c->m, c->object_id, &v, &e) == 0;
    int ret = forget_vm(c->m, c->object_id, c->task_id, NULL, errp);
    if (ret == 0 && had)
        refresh_groups(c->m, v.spec);
    vm_rec_clear(&v);
    return ret;
}

static const struct task_step_def delete_steps[] = {
    { "undefine", step_undefine, NULL },
    { "delete-disks", step_delete_disks, NULL },
    { "forget", step_forget, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_delete = { "vm.delete", delete_steps, true, NULL };

/* ---- power operations --------------------------------------------------- */

struct power_op {
    const char *verb;           /* agent route: /v1/vms/{name}/<verb> */
    const char *done;           /* agent state meaning "already done" (NULL: always act) */
};

static int step_power(struct task_ctx *c, struct error **errp)
{
    const struct power_op *op = c->opaque;
    struct vm_rec v = { 0 };
    int ret = -1;
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    if (!a)
        goto out;
    {
        AUTOJSON json_t *r = agent_vm(a, &v, errp);
        if (!r)
            goto out;
        const char *state = json_string_value(json_object_get(r, "state"));
        if (!op->done || !state || strcmp(state, op->done) != 0) {
            AUTOFREE char *path = agent_path("/v1/vms/%s/", v.name);
            AUTOFREE char *full = xasprintf("%s%s", path, op->verb);
            const json_t *body = json_object_get(c->params, "body");
            if (agent_call_wait(a, "POST", full, body, on_progress, c, NULL, errp) < 0)
                goto out;
        }
    }
    ret = vm_refresh(c, a, &v, errp);
out:
    vm_rec_clear(&v);
    return ret;
}

#define POWER_KIND(var, kind, verb, done, resumable)                                 \
    static const struct power_op var##_op = { verb, done };                          \
    static const struct task_step_def var##_steps[] = {                              \
        { verb, step_power, NULL }, { NULL, NULL, NULL },                             \
    };                                                                                \
    static const struct task_kind_def var = { kind, var##_steps, resumable,          \
                                              (void *) &var##_op }

POWER_KIND(kind_start, "vm.start", "start", "running", true);
POWER_KIND(kind_shutdown, "vm.shutdown", "shutdown", "stopped", true);
POWER_KIND(kind_destroy, "vm.destroy", "destroy", "stopped", true);
POWER_KIND(kind_reboot, "vm.reboot", "reboot", NULL, false);
POWER_KIND(kind_suspend, "vm.suspend", "pause", "paused", true);
POWER_KIND(kind_resume, "vm.resume", "resume", "running", true);
POWER_KIND(kind_save, "vm.save", "hibernate", "saved", true);
POWER_KIND(kind_restore, "vm.restore", "restore", "running", true);

/* ---- changes of a VM's hardware ----------------------------------------- */

/* Applies 'edit' to the stored specification of the task's VM. */
static int spec_update(struct task_ctx *c, void (*edit)(json_t *spec, const json_t *params),
                       struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    if (vm_rec_load(c->m, vm_id_of(c), &v, errp) == 0) {
        edit(v.spec, c->params);
        ret = vm_spec_save(c->m, v.id, v.spec, errp);
    }
    vm_rec_clear(&v);
    return ret;
}

static int array_find(const json_t *arr, const char *id)
{
    size_t i;
    const json_t *x;
    json_array_foreach(arr, i, x)
        if (!strcmp(json_string_value(json_object_get(x, "id")) ?: "", id))
            return (int) i;
    return -1;
}

/* One agent call on the task's VM: 'method' on /v1/vms/{name}<suffix>,
 * 'body' optional; a 'tolerate' error code counts as done. */
static int vm_agent_call(struct task_ctx *c, const char *method, const char *suffix,
                         const json_t *body, enum err_code tolerate, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    if (a) {
        AUTOFREE char *base = agent_path("/v1/vms/%s", v.name);
        AUTOFREE char *path = xasprintf("%s%s", base, suffix);
        AUTOERROR struct error *e = NULL;
        ret = agent_call_wait(a, method, path, body, on_progress, c, NULL, &e);
        if (ret < 0 && tolerate && e->code == tolerate)
            ret = 0;
        else if (ret < 0)
            *errp = steal_pointer(&e);
        if (ret == 0)
            ret = vm_refresh(c, a, &v, errp);
    }
    vm_rec_clear(&v);
    return ret;
}

/* vCPUs and memory change the same way: the agent's PUT, then the value
 * in the specification (an integer shorthand becomes the object form). */
struct size_change {
    const char *spec_key, *value_key, *max_key, *route;
};
static const struct size_change vcpus_change = { "vcpus", "count", "max", "/vcpus" };
static const struct size_change memory_change = { "memory", "mib", "max_mib", "/memory" };

static int step_size(struct task_ctx *c, struct error **errp)
{
    const struct size_change *sc = c->opaque;
    json_t *value = json_object_get(c->params, sc->value_key);
    AUTOJSON json_t *b = json_pack("{s:O}", sc->value_key, value);
    if (vm_agent_call(c, "PUT", sc->route, b, 0, errp) < 0)
        return -1;
    struct vm_rec v = { 0 };
    int ret = -1;
    if (vm_rec_load(c->m, vm_id_of(c), &v, errp) == 0) {
        json_t *cur = json_object_get(v.spec, sc->spec_key);
        if (json_is_object(cur))
            json_object_set(cur, sc->value_key, value);
        else
            json_object_set_new(v.spec, sc->spec_key,
                                json_pack("{s:O, s:O}", sc->value_key, value, sc->max_key,
                                          json_is_integer(cur) ? cur : value));
        ret = vm_spec_save(c->m, v.id, v.spec, errp);
    }
    vm_rec_clear(&v);
    return ret;
}

static const struct task_step_def vcpus_steps[] = {
    { "set-vcpus", step_size, NULL }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_vcpus = { "vm.set-vcpus", vcpus_steps, true,
                                                 (void *) &vcpus_change };
static const struct task_step_def memory_steps[] = {
    { "set-memory", step_size, NULL }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_memory = { "vm.set-memory", memory_steps, true,
                                                  (void *) &memory_change };

/* attach-disk: params {"disk": a prepared disk of the specification} */
static int step_disk_volume(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    json_object_set_new(c->checkpoint, "host", json_string(v.host_id ? v.host_id : ""));
    AUTOJSON json_t *one = json_pack("[O]", json_object_get(c->params, "disk"));
    int ret = a ? create_volumes(c, a, one, errp) : -1;
    vm_rec_clear(&v);
    return ret;
}

static void undo_disk_volume(struct task_ctx *c)
{
    undo_create_disks(c);
    const json_t *d = json_object_get(c->params, "disk");
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, &err);
    if (!t || store_exec(t, "DELETE FROM disks WHERE vm_id = ? AND name = ?",
                         STORE_ARGS(SV_TEXT(c->object_id),
                                    SV_TEXT(json_string_value(json_object_get(d, "id")))),
                         &err) < 0 ||
        store_commit(steal_pointer(&t), &err) < 0)
        LOG_WARN("task %s: %s", c->task_id, err->message);
}

/* Attaches device params[param] ("disk", "nic") to the task's VM live: its
 * agent form comes from vm_agent_def() on a one-device specification; an
 * agent that already has it (a resumed task) is fine. */
static int device_attach(struct task_ctx *c, const char *param, const char *array,
                         struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    AUTOAGENT struct agent_conn *a = vm_open(c, &v, errp);
    if (!a)
        goto out;
    {
        struct ds_path_ctx pc = { c->m, a->host_id };
        AUTOJSON json_t *mini = json_pack("{s:s, s:[O]}", "name", v.name, array,
                                          json_object_get(c->params, param));
        AUTOJSON json_t *def = vm_agent_def(mini, v.id, ds_path_from_store, &pc, errp);
        if (!def)
            goto out;
        AUTOFREE char *base = agent_path("/v1/vms/%s", v.name);
        AUTOFREE char *path = xasprintf("%s/%s", base, array);
        AUTOERROR struct error *e = NULL;
        if (agent_call(a, "POST", path, json_array_get(json_object_get(def, array), 0), NULL,
                       NULL, &e) < 0 && e->code != ERR_CONFLICT) {
            *errp = steal_pointer(&e);
            goto out;
        }
    }
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

/* Undo of device_attach(): detaches params[param] again (gone is fine). */
static void device_detach_again(struct task_ctx *c, const char *param, const char *array)
{
    const json_t *d = json_object_get(c->params, param);
    AUTOFREE char *id = agent_path("%s", json_string_value(json_object_get(d, "id")));
    AUTOFREE char *suffix = xasprintf("/%s/%s", array, id);
    AUTOERROR struct error *err = NULL;
    if (vm_agent_call(c, "DELETE", suffix, NULL, ERR_NOT_FOUND, &err) < 0)
        LOG_WARN("task %s: cannot detach %s '%s' again: %s", c->task_id, param,
                 json_string_value(json_object_get(d, "id")), err->message);
}

static int step_disk_attach(struct task_ctx *c, struct error **errp)
{
    return device_attach(c, "disk", "disks", errp);
}

static void undo_disk_attach(struct task_ctx *c)
{
    device_detach_again(c, "disk", "disks");
}

static void edit_add_disk(json_t *spec, const json_t *p)
{
    const json_t *d = json_object_get(p, "disk");
    json_t *disks = json_object_get(spec, "disks");
    if (!disks)
        json_object_set_new(spec, "disks", disks = json_array());
    if (array_find(disks, json_string_value(json_object_get(d, "id"))) < 0)
        json_array_append(disks, (json_t *) d);
}

static int step_disk_record(struct task_ctx *c, struct error **errp)
{
    return spec_update(c, edit_add_disk, errp);
}

static const struct task_step_def attach_disk_steps[] = {
    { "create-volume", step_disk_volume, undo_disk_volume },
    { "attach", step_disk_attach, undo_disk_attach },
    { "record", step_disk_record, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_attach_disk = { "vm.attach-disk", attach_disk_steps,
                                                       false, NULL };

/* detach-disk: params {"disk_id", "delete_volume"?} */
static int step_disk_detach(struct task_ctx *c, struct error **errp)
{
    AUTOFREE char *suffix = agent_path("/disks/%s", param_str(c, "disk_id"));
    return vm_agent_call(c, "DELETE", suffix, NULL, ERR_NOT_FOUND, errp);
}

static void edit_remove_disk(json_t *spec, const json_t *p)
{
    json_t *disks = json_object_get(spec, "disks");
    int i = array_find(disks, json_string_value(json_object_get(p, "disk_id")));
    if (i >= 0)
        json_array_remove(disks, (size_t) i);
}

static int step_disk_forget(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    if (vm_rec_load(c->m, c->object_id, &v, errp) < 0)
        goto out;
    int i = array_find(json_object_get(v.spec, "disks"), param_str(c, "disk_id"));
    if (i >= 0 && json_is_true(json_object_get(c->params, "delete_volume"))) {
        const json_t *d = json_array_get(json_object_get(v.spec, "disks"), (size_t) i);
        if (!json_object_get(json_object_get(d, "origin"), "existing")) {
            AUTOJSON json_t *l = json_pack("[{s:O, s:O}]", "datastore",
                                           json_object_get(d, "datastore"), "volume",
                                           json_object_get(d, "volume"));
            delete_volumes(c, v.host_id, l);
        }
    }
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || store_exec(t, "DELETE FROM disks WHERE vm_id = ? AND name = ?",
                             STORE_ARGS(SV_TEXT(v.id), SV_TEXT(param_str(c, "disk_id"))),
                             errp) < 0 ||
            store_commit(steal_pointer(&t), errp) < 0)
            goto out;
    }
    ret = spec_update(c, edit_remove_disk, errp);
out:
    vm_rec_clear(&v);
    return ret;
}

static const struct task_step_def detach_disk_steps[] = {
    { "detach", step_disk_detach, NULL },
    { "record", step_disk_forget, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_detach_disk = { "vm.detach-disk", detach_disk_steps,
                                                       true, NULL };

/* attach-nic: params {"nic": a prepared NIC (its MAC reserved)} */
static int step_nic_attach(struct task_ctx *c, struct error **errp)
{
    return device_attach(c, "nic", "nics", errp);
}

static void undo_nic_attach(struct task_ctx *c)
{
    const json_t *n = json_object_get(c->params, "nic");
    device_detach_again(c, "nic", "nics");
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, &err);
    if (!t || store_exec(t, "DELETE FROM vm_nics WHERE mac = ?",
                         STORE_ARGS(SV_TEXT(json_string_value(json_object_get(n, "mac")))),
                         &err) < 0 ||
        store_commit(steal_pointer(&t), &err) < 0)
        LOG_WARN("task %s: %s", c->task_id, err->message);
}

static void edit_add_nic(json_t *spec, const json_t *p)
{
    const json_t *n = json_object_get(p, "nic");
    json_t *nics = json_object_get(spec, "nics");
    if (!nics)
        json_object_set_new(spec, "nics", nics = json_array());
    if (array_find(nics, json_string_value(json_object_get(n, "id"))) < 0)
        json_array_append(nics, (json_t *) n);
}

static int step_nic_record(struct task_ctx *c, struct error **errp)
{
    if (spec_update(c, edit_add_nic, errp) < 0)
        return -1;
    AUTOJSON json_t *one = json_pack("{s:[O]}", "nics", json_object_get(c->params, "nic"));
    refresh_groups(c->m, one);
    return 0;
}

static const struct task_step_def attach_nic_steps[] = {
    { "attach", step_nic_attach, undo_nic_attach },
    { "record", step_nic_record, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_attach_nic = { "vm.attach-nic", attach_nic_steps, false,
                                                      NULL };

static int step_nic_detach(struct task_ctx *c, struct error **errp)
{
    AUTOFREE char *suffix = agent_path("/nics/%s", param_str(c, "nic_id"));
    return vm_agent_call(c, "DELETE", suffix, NULL, ERR_NOT_FOUND, errp);
}

static void edit_remove_nic(json_t *spec, const json_t *p)
{
    json_t *nics = json_object_get(spec, "nics");
    int i = array_find(nics, json_string_value(json_object_get(p, "nic_id")));
    if (i >= 0)
        json_array_remove(nics, (size_t) i);
}

static int step_nic_forget(struct task_ctx *c, struct error **errp)
{
    {
        AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
        if (!t || store_exec(t, "DELETE FROM vm_nics WHERE vm_id = ? AND nic_id = ?",
                             STORE_ARGS(SV_TEXT(c->object_id), SV_TEXT(param_str(c, "nic_id"))),
                             errp) < 0 ||
            store_commit(steal_pointer(&t), errp) < 0)
            return -1;
    }
    struct vm_rec v = { 0 };
    AUTOJSON json_t *gone = NULL;
    if (vm_rec_load(c->m, c->object_id, &v, errp) == 0) {
        int i = array_find(json_object_get(v.spec, "nics"), param_str(c, "nic_id"));
        if (i >= 0)
            gone = json_pack("{s:[O]}", "nics",
                             json_array_get(json_object_get(v.spec, "nics"), (size_t) i));
    }
    vm_rec_clear(&v);
    if (spec_update(c, edit_remove_nic, errp) < 0)
        return -1;
    if (gone)
        refresh_groups(c->m, gone);
    return 0;
}

static const struct task_step_def detach_nic_steps[] = {
    { "detach", step_nic_detach, NULL },
    { "record", step_nic_forget, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_detach_nic = { "vm.detach-nic", detach_nic_steps, true,
                                                      NULL };

/* change-media: params {"cdrom", "path": string | null} */
static void edit_media(json_t *spec, const json_t *p)
{
    json_t *cds = json_object_get(spec, "cdroms");
    int i = array_find(cds, json_string_value(json_object_get(p, "cdrom")));
    if (i >= 0)
        json_object_set(json_array_get(cds, (size_t) i), "path", json_object_get(p, "path"));
}

static int step_media(struct task_ctx *c, struct error **errp)
{
    AUTOFREE char *suffix = agent_path("/cdroms/%s/media", param_str(c, "cdrom"));
    const json_t *path = json_object_get(c->params, "path");
    AUTOJSON json_t *b = json_is_string(path) ? json_pack("{s:O}", "path", path) : NULL;
    if (vm_agent_call(c, b ? "PUT" : "DELETE", suffix, b, 0, errp) < 0)
        return -1;
    return spec_update(c, edit_media, errp);
}

static const struct task_step_def media_steps[] = {
    { "change-media", step_media, NULL }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_media = { "vm.change-media", media_steps, true, NULL };

/* ---- snapshots ---------------------------------------------------------- */

static int step_snap_create(struct task_ctx *c, struct error **errp)
{
    AUTOJSON json_t *b = json_pack("{s:O}", "name", json_object_get(c->params, "name"));
    if (json_object_get(c->params, "kind"))
        json_object_set(b, "kind", json_object_get(c->params, "kind"));
    if (json_object_get(c->params, "description"))
        json_object_set(b, "description", json_object_get(c->params, "description"));
    json_object_set_new(c->checkpoint, "snapshot", json_true());
    if (checkpoint_persist(c, errp) < 0 || vm_agent_call(c, "POST", "/snapshots", b, 0, errp) < 0)
        return -1;
    const char *kind = param_str(c, "kind");
    char id[UUID_STRLEN + 1];
    uuid_generate(id);
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    AUTOFREE char *msg = xasprintf("snapshot '%s' taken", param_str(c, "name"));
    if (!t || store_exec(t, "INSERT INTO snapshots (id, vm_id, name, description, kind, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (vm_id, name) DO NOTHING",
                         STORE_ARGS(SV_TEXT(id), SV_TEXT(c->object_id),
                                    SV_TEXT(param_str(c, "name")),
                                    SV_TEXT(param_str(c, "description") ?: ""),
                                    SV_TEXT(kind ? kind : "disk-only"),
                                    SV_INT(store_now_ms())), errp) < 0 ||
        append_event(t, "vm.snapshot-created", "info", c->object_id, NULL, c->task_id, NULL, msg,
                     errp) < 0)
        return -1;
    json_object_set_new(c->result, "snapshot_id", json_string(id));
    return manager_commit(c->m, steal_pointer(&t), errp);
}

static int snap_delete(struct task_ctx *c, struct error **errp)
{
    AUTOFREE char *suffix = agent_path("/snapshots/%s", param_str(c, "name"));
    if (vm_agent_call(c, "DELETE", suffix, NULL, ERR_NOT_FOUND, errp) < 0)
        return -1;
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    AUTOFREE char *msg = xasprintf("snapshot '%s' deleted", param_str(c, "name"));
    if (!t || store_exec(t, "DELETE FROM snapshots WHERE vm_id = ? AND name = ?",
                         STORE_ARGS(SV_TEXT(c->object_id), SV_TEXT(param_str(c, "name"))),
                         errp) < 0 ||
        append_event(t, "vm.snapshot-deleted", "info", c->object_id, NULL, c->task_id, NULL, msg,
                     errp) < 0)
        return -1;
    return manager_commit(c->m, steal_pointer(&t), errp);
}

static void undo_snap_create(struct task_ctx *c)
{
    AUTOERROR struct error *err = NULL;
    if (snap_delete(c, &err) < 0)
        LOG_WARN("task %s: cannot remove snapshot '%s': %s", c->task_id, param_str(c, "name"),
                 err->message);
}

static int step_snap_delete(struct task_ctx *c, struct error **errp)
{
    return snap_delete(c, errp);
}

static int step_snap_revert(struct task_ctx *c, struct error **errp)
{
    AUTOFREE char *suffix = agent_path("/snapshots/%s/revert", param_str(c, "name"));
    AUTOJSON json_t *b = json_object();
    if (json_object_get(c->params, "start"))
        json_object_set(b, "start", json_object_get(c->params, "start"));
    return vm_agent_call(c, "POST", suffix, b, 0, errp);
}

static const struct task_step_def snap_create_steps[] = {
    { "snapshot", step_snap_create, undo_snap_create }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_snap_create = { "vm.snapshot-create", snap_create_steps,
                                                       false, NULL };
static const struct task_step_def snap_delete_steps[] = {
    { "delete", step_snap_delete, NULL }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_snap_delete = { "vm.snapshot-delete", snap_delete_steps,
                                                       true, NULL };
static const struct task_step_def snap_revert_steps[] = {
    { "revert", step_snap_revert, NULL }, { NULL, NULL, NULL },
};
static const struct task_kind_def kind_snap_revert = { "vm.snapshot-revert", snap_revert_steps,
                                                       true, NULL };

/* ---- templates ---------------------------------------------------------- */

/* The VM's own volumes (not attached existing ones), as [{datastore, volume}]. */
static json_t *own_volumes(const json_t *spec)
{
    json_t *l = json_array();
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(spec, "disks"), i, d)
        if (!json_object_get(json_object_get(d, "origin"), "existing"))
            json_array_append_new(l, json_pack("{s:O, s:O, s:O}", "datastore",
                                               json_object_get(d, "datastore"), "datastore_id",
                                               json_object_get(d, "datastore_id"), "volume",
                                               json_object_get(d, "volume")));
    return l;
}

static int set_readonly(struct task_ctx *c, const char *prefer_host, const json_t *vols,
                        bool ro, struct error **errp)
{
    size_t i;
    const json_t *x;
    json_array_foreach(vols, i, x) {
        char host[UUID_STRLEN + 1];
        if (ds_host(c->m, json_string_value(json_object_get(x, "datastore_id")), prefer_host,
                    host, errp) < 0)
            return -1;
        AUTOAGENT struct agent_conn *a = agent_connect(c->m, host, false, errp);
        if (!a)
            return -1;
        AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s",
                                         json_string_value(json_object_get(x, "datastore")),
                                         json_string_value(json_object_get(x, "volume")));
        AUTOJSON json_t *b = json_pack("{s:b}", "readonly", ro);
        if (agent_call(a, "PUT", path, b, NULL, NULL, errp) < 0)
            return -1;
    }
    return 0;
}

/* vm.to-template: params {"template_id", "name", "description"?} */
static int step_tt_undefine(struct task_ctx *c, struct error **errp)
{
    struct vm_rec v = { 0 };
    int ret = -1;
    if (vm_rec_load(c->m, c->object_id, &v, errp) < 0) {
        /* Gone: a resumed task whose record step already ran. */
        ret = is_not_found(*errp) ? (error_free(steal_pointer(errp)), 0) : -1;
        goto out;
    }
    json_object_set_new(c->checkpoint, "spec", json_incref(v.spec));
    json_object_set_new(c->checkpoint, "host", v.host_id ? json_string(v.host_id) : json_null());
    if (v.host_id) {
        AUTOAGENT struct agent_conn *a = agent_connect(c->m, v.host_id, false, errp);
        if (!a || undefine_on(a, &v, false, errp) < 0)
            goto out;
    }
    ret = 0;
out:
    vm_rec_clear(&v);
    return ret;
}

static int step_tt_protect(struct task_ctx *c, struct error **errp)
{
    AUTOJSON json_t *vols = own_volumes(json_object_get(c->checkpoint, "spec"));
    return set_readonly(c, json_string_value(json_object_get(c->checkpoint, "host")), vols, true,
                        errp);
}

static int step_tt_record(struct task_ctx *c, struct error **errp)
{
    const char *tid = param_str(c, "template_id"), *name = param_str(c, "name");
    json_t *spec = json_object_get(c->checkpoint, "spec");
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    int64_t have = 0;
    if (store_query_int(t, "SELECT COUNT(*) FROM templates WHERE id = ?",
                        STORE_ARGS(SV_TEXT(tid)), &have, errp) < 0)
        return -1;
    if (have)
        return 0;
    /* A template keeps the hardware, the disks (now read-only bases) and the
     * NICs without their addresses. */
    AUTOJSON json_t *tdef = json_deep_copy(spec);
    json_object_set_new(tdef, "name", json_string(name));
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(tdef, "nics"), i, n)
        json_object_del(n, "mac");
    AUTOFREE char *text = json_to_string(tdef);
    const char *ds = json_string_value(
        json_object_get(json_array_get(json_object_get(spec, "disks"), 0), "datastore_id"));
    AUTOFREE char *cluster = NULL;
    {
        AUTOSTMT struct store_stmt *st = store_query(t, "SELECT cluster_id FROM vms WHERE id = ?",
                                                     STORE_ARGS(SV_TEXT(c->object_id)), errp);
        if (!st || store_step(st, errp) < 0)
            return -1;
        cluster = store_col_text(st, 0) ? xstrdup(store_col_text(st, 0)) : NULL;
    }
    int64_t now = store_now_ms();
    AUTOFREE char *msg = xasprintf("VM '%s' became template '%s'",
                                   json_string_value(json_object_get(spec, "name")), name);
    struct event e = {
        .type = "template.created", .object_type = "template", .object_id = tid,
        .object_name = name, .task_id = c->task_id, .message = msg,
    };
    if (store_exec(t, "INSERT INTO templates (id, name, cluster_id, datastore_id, description, "
                      "definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(tid), SV_TEXT(name), SV_TEXT(cluster), SV_TEXT(ds),
                              SV_TEXT(param_str(c, "description") ?: ""), SV_TEXT(text),
                              SV_INT(now), SV_INT(now)), errp) < 0 ||
        store_exec(t, "UPDATE disks SET template_id = ?, vm_id = NULL WHERE vm_id = ?",
                   STORE_ARGS(SV_TEXT(tid), SV_TEXT(c->object_id)), errp) < 0 ||
        store_exec(t, "UPDATE vms SET template_id = NULL WHERE template_id = ?",
                   STORE_ARGS(SV_TEXT(c->object_id)), errp) < 0 ||
        store_exec(t, "DELETE FROM vm_nics WHERE vm_id = ?", STORE_ARGS(SV_TEXT(c->object_id)),
                   errp) < 0 ||
        store_exec(t, "DELETE FROM vms WHERE id = ?", STORE_ARGS(SV_TEXT(c->object_id)),
                   errp) < 0 ||
        event_append(t, &e, errp) < 0)
        return -1;
    json_object_set_new(c->result, "template_id", json_string(tid));
    return manager_commit(c->m, steal_pointer(&t), errp);
}

static const struct task_step_def to_template_steps[] = {
    { "undefine", step_tt_undefine, NULL },
    { "protect-disks", step_tt_protect, NULL },
    { "record", step_tt_record, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_to_template = { "vm.to-template", to_template_steps, true,
                                                       NULL };

/* template.delete */
static int template_volumes(struct manager *m, const char *tid, json_t **out,
                            struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, errp);
    AUTOSTMT struct store_stmt *st = t ? store_query(
        t, "SELECT d.name, d.id, k.path FROM disks k JOIN datastores d ON d.id = k.datastore_id "
           "WHERE k.template_id = ?", STORE_ARGS(SV_TEXT(tid)), errp) : NULL;
    if (!st)
        return -1;
    *out = json_array();
    int r;
    while ((r = store_step(st, errp)) > 0)
        json_array_append_new(*out, json_pack("{s:s, s:s, s:s}", "datastore",
                                              store_col_text(st, 0), "datastore_id",
                                              store_col_text(st, 1), "volume",
                                              store_col_text(st, 2)));
    return r < 0 ? -1 : 0;
}

static int step_template_delete_disks(struct task_ctx *c, struct error **errp)
{
    AUTOJSON json_t *vols = NULL;
    if (template_volumes(c->m, c->object_id, &vols, errp) < 0)
        return -1;
    size_t i;
    const json_t *x;
    json_array_foreach(vols, i, x) {
        char host[UUID_STRLEN + 1];
        if (ds_host(c->m, json_string_value(json_object_get(x, "datastore_id")), NULL, host,
                    errp) < 0)
            return -1;
        AUTOAGENT struct agent_conn *a = agent_connect(c->m, host, false, errp);
        if (!a)
            return -1;
        AUTOFREE char *path = agent_path("/v1/datastores/%s/volumes/%s",
                                         json_string_value(json_object_get(x, "datastore")),
                                         json_string_value(json_object_get(x, "volume")));
        AUTOERROR struct error *e = NULL;
        if (agent_call_wait(a, "DELETE", path, NULL, NULL, NULL, NULL, &e) < 0 &&
            !is_not_found(e)) {
            *errp = steal_pointer(&e);
            return -1;
        }
    }
    return 0;
}

static int step_template_forget(struct task_ctx *c, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(t, "SELECT name FROM templates WHERE id = ?",
                                                 STORE_ARGS(SV_TEXT(c->object_id)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r <= 0)
        return r;
    AUTOFREE char *name = xstrdup(store_col_text(st, 0));
    store_stmt_free(steal_pointer(&st));
    AUTOFREE char *msg = xasprintf("template '%s' deleted", name);
    struct event e = {
        .type = "template.deleted", .object_type = "template", .object_id = c->object_id,
        .object_name = name, .task_id = c->task_id, .message = msg,
    };
    if (store_exec(t, "DELETE FROM disks WHERE template_id = ?",
                   STORE_ARGS(SV_TEXT(c->object_id)), errp) < 0 ||
        store_exec(t, "DELETE FROM templates WHERE id = ?", STORE_ARGS(SV_TEXT(c->object_id)),
                   errp) < 0 ||
        event_append(t, &e, errp) < 0)
        return -1;
    return manager_commit(c->m, steal_pointer(&t), errp);
}

static const struct task_step_def template_delete_steps[] = {
    { "delete-disks", step_template_delete_disks, NULL },
    { "forget", step_template_forget, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_template_delete = { "template.delete",
                                                           template_delete_steps, true, NULL };

/* template.to-vm: params {"vm_id", "name"} - the template becomes VM
 * 'vm_id' (recorded 'creating'), which is then placed and defined. */
static int step_tv_unprotect(struct task_ctx *c, struct error **errp)
{
    AUTOJSON json_t *vols = NULL;
    if (template_volumes(c->m, c->object_id, &vols, errp) < 0)
        return -1;
    json_object_set(c->checkpoint, "volumes", vols);
    return set_readonly(c, NULL, vols, false, errp);
}

static void undo_tv_unprotect(struct task_ctx *c)
{
    AUTOERROR struct error *err = NULL;
    if (set_readonly(c, NULL, json_object_get(c->checkpoint, "volumes"), true, &err) < 0)
        LOG_WARN("task %s: cannot protect the template's disks again: %s", c->task_id,
                 err->message);
}

static int step_tv_record(struct task_ctx *c, struct error **errp)
{
    const char *vm_id = param_str(c, "vm_id");
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT name, cluster_id, definition, description FROM templates WHERE id = ?",
        STORE_ARGS(SV_TEXT(c->object_id)), errp);
    if (!st)
        return -1;
    int r = store_step(st, errp);
    if (r < 0)
        return -1;
    if (r == 0)
        return 0;       /* resumed: already converted */
    const char *text = store_col_text(st, 2);
    AUTOJSON json_t *spec = json_from_string(text, strlen(text), errp);
    if (!spec)
        return -1;
    json_object_set_new(c->checkpoint, "template",
                        json_pack("{s:s, s:s?, s:O, s:s}", "name", store_col_text(st, 0),
                                  "cluster_id", store_col_text(st, 1), "definition", spec,
                                  "description", store_col_text(st, 3)));
    AUTOFREE char *cluster = store_col_text(st, 1) ? xstrdup(store_col_text(st, 1)) : NULL;
    store_stmt_free(steal_pointer(&st));
    json_object_set_new(spec, "name", json_string(param_str(c, "name")));
    json_t *nn = nics_from(t, json_object_get(spec, "nics"), vm_id, errp);
    if (!nn)
        return -1;
    json_object_set_new(spec, "nics", nn);
    AUTOFREE char *vtext = json_to_string(spec);
    int64_t now = store_now_ms();
    if (store_exec(t, "INSERT INTO vms (id, name, cluster_id, state, definition, created_at, "
                      "updated_at) VALUES (?, ?, ?, 'creating', ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(vm_id), SV_TEXT(param_str(c, "name")), SV_TEXT(cluster),
                              SV_TEXT(vtext), SV_INT(now), SV_INT(now)), errp) < 0 ||
        reserve_macs(t, vm_id, spec, errp) < 0 ||
        store_exec(t, "UPDATE disks SET vm_id = ?, template_id = NULL WHERE template_id = ?",
                   STORE_ARGS(SV_TEXT(vm_id), SV_TEXT(c->object_id)), errp) < 0 ||
        store_exec(t, "DELETE FROM templates WHERE id = ?", STORE_ARGS(SV_TEXT(c->object_id)),
                   errp) < 0)
        return -1;
    return manager_commit(c->m, steal_pointer(&t), errp);
}

static void undo_tv_record(struct task_ctx *c)
{
    const char *vm_id = param_str(c, "vm_id");
    const json_t *tp = json_object_get(c->checkpoint, "template");
    if (!tp)
        return;
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *text = json_to_string(json_object_get(tp, "definition"));
    int64_t now = store_now_ms();
    AUTOTXN struct store_txn *t = store_begin(c->m->store, STORE_WRITE, &err);
    if (!t ||
        store_exec(t, "INSERT INTO templates (id, name, cluster_id, description, definition, "
                      "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (id) DO NOTHING",
                   STORE_ARGS(SV_TEXT(c->object_id),
                              SV_TEXT(json_string_value(json_object_get(tp, "name"))),
                              SV_TEXT(json_string_value(json_object_get(tp, "cluster_id"))),
                              SV_TEXT(json_string_value(json_object_get(tp, "description"))),
                              SV_TEXT(text), SV_INT(now), SV_INT(now)), &err) < 0 ||
        store_exec(t, "UPDATE disks SET template_id = ?, vm_id = NULL WHERE vm_id = ?",
                   STORE_ARGS(SV_TEXT(c->object_id), SV_TEXT(vm_id)), &err) < 0 ||
        store_exec(t, "DELETE FROM vm_nics WHERE vm_id = ?", STORE_ARGS(SV_TEXT(vm_id)),
                   &err) < 0 ||
        store_exec(t, "DELETE FROM vms WHERE id = ?", STORE_ARGS(SV_TEXT(vm_id)), &err) < 0 ||
        manager_commit(c->m, steal_pointer(&t), &err) < 0)
        LOG_WARN("task %s: cannot restore template: %s", c->task_id, err->message);
}

static int step_tv_place(struct task_ctx *c, struct error **errp)
{
    return step_place(c, errp);
}

static const struct task_step_def to_vm_steps[] = {
    { "unprotect-disks", step_tv_unprotect, undo_tv_unprotect },
    { "record", step_tv_record, undo_tv_record },
    { "place", step_tv_place, NULL },
    { "define", step_define, undo_define },
    { "finish", step_finish_create, NULL },
    { NULL, NULL, NULL },
};
static const struct task_kind_def kind_to_vm = { "template.to-vm", to_vm_steps, false, NULL };

/* ---- reconciliation ----------------------------------------------------- */

/* Adopts a VM an agent runs that the manager has no record of (defined on
 * the host directly, or by a manager whose database was restored). */
static int adopt(struct manager *m, const char *host_id, const json_t *avm,
                 struct error **errp)
{
    const char *uuid = json_string_value(json_object_get(avm, "uuid"));
    const char *name = json_string_value(json_object_get(avm, "name"));
    const char *state = json_string_value(json_object_get(avm, "state"));
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    int64_t clash = 0;
    if (store_query_int(t, "SELECT COUNT(*) FROM vms WHERE id = ? OR name = ?",
                        STORE_ARGS(SV_TEXT(uuid), SV_TEXT(name)), &clash, errp) < 0)
        return -1;
    if (clash) {
        LOG_RL_WARN("host %s runs VM '%s' (%s) whose name or uuid another VM has: not adopted",
                    host_id, name, uuid);
        return 0;
    }
    /* The specification of an adopted VM is its agent definition, as is. */
    AUTOJSON json_t *spec = json_pack("{s:s, s:b}", "name", name, "adopted", 1);
    json_object_set(spec, "vcpus", json_object_get(avm, "vcpus"));
    json_object_set(spec, "memory", json_object_get(avm, "memory_mib"));
    AUTOFREE char *text = json_to_string(spec);
    int64_t now = store_now_ms();
    AUTOFREE char *msg = xasprintf("VM '%s' found running on a host and adopted", name);
    if (store_exec(t, "INSERT INTO vms (id, name, cluster_id, host_id, state, definition, "
                      "created_at, updated_at) VALUES (?, ?, (SELECT cluster_id FROM hosts "
                      "WHERE id = ?), ?, ?, ?, ?, ?)",
                   STORE_ARGS(SV_TEXT(uuid), SV_TEXT(name), SV_TEXT(host_id), SV_TEXT(host_id),
                              SV_TEXT(state ? state : "unknown"), SV_TEXT(text), SV_INT(now),
                              SV_INT(now)), errp) < 0 ||
        append_event(t, "vm.adopted", "warning", uuid, name, NULL, NULL, msg, errp) < 0)
        return -1;
    return manager_commit(m, steal_pointer(&t), errp);
}

void vms_host_sync(struct manager *m, const char *host_id, struct agent_conn *a,
                   bool reconnected)
{
    (void) reconnected;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *list = NULL;
    if (agent_call(a, "GET", "/v1/vms", NULL, NULL, &list, &err) < 0) {
        LOG_RL_WARN("cannot list the VMs of host %s: %s", a->host_name, err->message);
        return;
    }
    const json_t *vms = json_object_get(list, "vms");
    /* The manager's VMs on this host, and those with a task under way. */
    AUTOJSON json_t *known = json_object();    /* id -> state */
    AUTOJSON json_t *busy = json_object();
    {
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_READ, &err);
        AUTOSTMT struct store_stmt *st = t ? store_query(
            t, "SELECT id, state FROM vms WHERE host_id = ?", STORE_ARGS(SV_TEXT(host_id)),
            &err) : NULL;
        if (!st) {
            LOG_RL_WARN("reconciliation of host %s: %s", a->host_name, err->message);
            return;
        }
        while (store_step(st, &err) > 0)
            json_object_set_new(known, store_col_text(st, 0), json_string(store_col_text(st, 1)));
        AUTOSTMT struct store_stmt *bt = store_query(
            t, "SELECT object_id FROM tasks WHERE object_type IN ('vm', 'template') AND state IN "
               "('queued', 'running')", STORE_NO_ARGS, &err);
        while (bt && store_step(bt, &err) > 0)
            json_object_set_new(busy, store_col_text(bt, 0), json_true());
    }
    size_t i;
    const json_t *avm;
    json_t *seen = json_object();
    json_array_foreach(vms, i, avm) {
        const char *uuid = json_string_value(json_object_get(avm, "uuid"));
        const char *state = json_string_value(json_object_get(avm, "state"));
        if (!uuid || !state)
            continue;
        char id[UUID_STRLEN + 1];
        snprintf(id, sizeof id, "%s", uuid);
        for (char *p = id; *p; p++)
            *p = (char) tolower((unsigned char) *p);
        json_object_set_new(seen, id, json_true());
        const char *mine = json_string_value(json_object_get(known, id));
        AUTOERROR struct error *e = NULL;
        if (!mine) {
            /* Not on this host in the records: adopt it, unless it is being
             * created or moved by a task (its record is on its way). */
            if (!json_object_get(busy, id) && adopt(m, host_id, avm, &e) < 0)
                LOG_RL_WARN("cannot adopt VM '%s': %s",
                            json_string_value(json_object_get(avm, "name")), e->message);
            continue;
        }
        if (!strcmp(mine, "creating") || !strcmp(mine, state))
            continue;
        const char *why = json_is_true(json_object_get(avm, "crashed"))
                          ? json_string_value(json_object_get(avm, "exit_reason")) : NULL;
        const char *ns = json_is_true(json_object_get(avm, "crashed")) &&
                         !strcmp(state, "stopped") ? "crashed" : state;
        if (strcmp(mine, ns) && vm_state_set(m, id, ns, why, NULL, &e) < 0)
            LOG_RL_WARN("cannot record the state of VM %s: %s", id, e->message);
    }
    /* Periodic statistics of the running VMs: what the agent measures
     * (CPU time, RSS, block and network counters), kept with the time. */
    json_array_foreach(vms, i, avm) {
        const char *state = json_string_value(json_object_get(avm, "state"));
        const char *uuid = json_string_value(json_object_get(avm, "uuid"));
        if (!state || !uuid || strcmp(state, "running") || !json_object_get(seen, uuid))
            continue;
        AUTOFREE char *path = agent_path("/v1/vms/%s/stats",
                                         json_string_value(json_object_get(avm, "name")));
        AUTOJSON json_t *stats = NULL;
        AUTOERROR struct error *e = NULL;
        if (agent_call(a, "GET", path, NULL, NULL, &stats, &e) < 0)
            continue;   /* it may just have stopped */
        AUTOFREE char *text = json_to_string(stats);
        AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, &e);
        if (!t || store_exec(t, "UPDATE vms SET stats = ?, stats_at = ? WHERE id = ? AND host_id = ?",
                             STORE_ARGS(SV_TEXT(text), SV_INT(store_now_ms()), SV_TEXT(uuid),
                                        SV_TEXT(host_id)), &e) < 0 ||
            store_commit(steal_pointer(&t), &e) < 0)
            LOG_RL_WARN("cannot record the statistics of VM %s: %s", uuid, e->message);
    }
    const char *id;
    json_t *st;
    json_object_foreach(known, id, st) {
        const char *mine = json_string_value(st);
        if (json_object_get(seen, id) || json_object_get(busy, id) ||
            !strcmp(mine, "creating") || !strcmp(mine, "missing"))
            continue;
        AUTOERROR struct error *e = NULL;
        if (vm_state_set(m, id, "missing", "its host does not have it", NULL, &e) < 0)
            LOG_RL_WARN("cannot record VM %s missing: %s", id, e->message);
    }
    json_decref(seen);
}

int64_t vms_mark_unknown(struct store_txn *t, const char *host_id, const char *host_name,
                         struct error **errp)
{
    json_t *list = json_array();
    {
        AUTOSTMT struct store_stmt *st = store_query(
            t, "SELECT id, name FROM vms WHERE host_id = ? AND state NOT IN "
               "('creating', 'unknown', 'missing')", STORE_ARGS(SV_TEXT(host_id)), errp);
        if (!st) {
            json_decref(list);
            return -1;
        }
        int r;
        while ((r = store_step(st, errp)) > 0)
            json_array_append_new(list, json_pack("[s, s]", store_col_text(st, 0),
                                                  store_col_text(st, 1)));
        if (r < 0) {
            json_decref(list);
            return -1;
        }
    }
    size_t i;
    const json_t *x;
    int64_t now = store_now_ms();
    json_array_foreach(list, i, x) {
        const char *id = json_string_value(json_array_get(x, 0));
        const char *name = json_string_value(json_array_get(x, 1));
        AUTOFREE char *why = xasprintf("host '%s' does not answer", host_name);
        AUTOFREE char *msg = xasprintf("VM '%s' is unknown: %s", name, why);
        if (store_exec(t, "UPDATE vms SET state = 'unknown', reason = ?, updated_at = ? "
                          "WHERE id = ?",
                       STORE_ARGS(SV_TEXT(why), SV_INT(now), SV_TEXT(id)), errp) < 0 ||
            append_event(t, "vm.unknown", "warning", id, name, NULL, NULL, msg, errp) < 0) {
            json_decref(list);
            return -1;
        }
    }
    int64_t n = (int64_t) json_array_size(list);
    json_decref(list);
    return n;
}

int vms_startup_sweep(struct manager *m, struct error **errp)
{
    AUTOTXN struct store_txn *t = store_begin(m->store, STORE_WRITE, errp);
    if (!t)
        return -1;
    const char *orphan = "state = 'creating' AND NOT EXISTS (SELECT 1 FROM tasks k WHERE "
                         "k.state IN ('queued', 'running') AND (k.object_id = vms.id OR "
                         "k.params LIKE '%' || vms.id || '%'))";
    AUTOFREE char *d1 = xasprintf("DELETE FROM disks WHERE vm_id IN (SELECT id FROM vms WHERE %s)",
                                  orphan);
    AUTOFREE char *d2 = xasprintf("DELETE FROM vm_nics WHERE vm_id IN (SELECT id FROM vms "
                                  "WHERE %s)", orphan);
    AUTOFREE char *d3 = xasprintf("DELETE FROM vms WHERE %s", orphan);
    int64_t n;
    if (store_exec(t, d1, STORE_NO_ARGS, errp) < 0 || store_exec(t, d2, STORE_NO_ARGS, errp) < 0 ||
        (n = store_exec(t, d3, STORE_NO_ARGS, errp)) < 0)
        return -1;
    if (manager_commit(m, steal_pointer(&t), errp) < 0)
        return -1;
    if (n > 0)
        LOG_WARN("%lld VM record(s) left 'creating' without a task were removed", (long long) n);
    return (int) n;
}

const struct task_kind_def *const vm_task_kinds[] = {
    &kind_create, &kind_delete, &kind_start, &kind_shutdown, &kind_destroy, &kind_reboot,
    &kind_suspend, &kind_resume, &kind_save, &kind_restore, &kind_vcpus, &kind_memory,
    &kind_attach_disk, &kind_detach_disk, &kind_attach_nic, &kind_detach_nic, &kind_media,
    &kind_snap_create, &kind_snap_delete, &kind_snap_revert, &kind_to_template,
    &kind_template_delete, &kind_to_vm, NULL,
};
