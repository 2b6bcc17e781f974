/* hotplug.c - online and offline hardware changes: vCPUs, memory, balloon,
 * disks, NICs, CD-ROM media.
 *
 * Every change is checked the same way whether the VM runs or not: the new
 * definition is produced as JSON and parsed again with the host's limits
 * (model/vm_def.c), so a change can never store a definition the agent would
 * refuse at its next start.  On a running VM the QMP steps come from
 * qemu/qemu_hotplug.c; steps that succeeded are undone in reverse when a later
 * one fails.  Live additions are recorded in vm->hotplug_extra as the command
 * line arguments that recreate them, and live removals of boot-time devices
 * as ids to drop, so a hibernated VM is restored on identical hardware
 * (lifecycle.c, restore_argv()). */
#define LOG_MODULE "hotplug"
#include "agent/hotplug.h"

#include <string.h>

#include "agent/lifecycle.h"
#include "agent/monitor.h"
#include "qemu/qemu_argv.h"
#include "qemu/qemu_device.h"
#include "qemu/qemu_hotplug.h"
#include "util/command.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QMP_TIMEOUT_MS 10000
#define UNPLUG_TIMEOUT_MS 20000

static enum vm_state get_state(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    enum vm_state s = vm->state;
    pthread_mutex_unlock(&vm->lock);
    return s;
}

static bool is_live(enum vm_state s)
{
    return s == VM_STATE_RUNNING || s == VM_STATE_PAUSED;
}

/* Refuses changes while the VM is between states (starting, saving ...). */
static int check_changeable(struct vm *vm, struct error **errp)
{
    enum vm_state s = get_state(vm);
    if (is_live(s) || s == VM_STATE_STOPPED)
        return 0;
    return error_set(errp, ERR_BAD_STATE, "VM '%s' is %s: hardware cannot change now", vm->name,
                     vm_state_to_string(s));
}

/* Validates 'j' (a whole definition) and installs it as the VM's definition,
 * written to disk.  Takes ownership of 'j'. */
static int commit_def(struct agent *a, struct vm *vm, json_t *j, struct error **errp)
{
    struct vm_def_limits limits;
    agent_vm_limits(a, &limits);
    struct vm_def *def = vm_def_from_json(j, &limits, errp);
    json_decref(j);
    if (!def)
        return -1;
    pthread_mutex_lock(&vm->lock);
    struct vm_def *old = vm->def;
    vm->def = def;
    pthread_mutex_unlock(&vm->lock);
    if (vm_save_def(vm, errp) < 0) {
        pthread_mutex_lock(&vm->lock);
        vm->def = old;
        pthread_mutex_unlock(&vm->lock);
        vm_def_free(def);
        return -1;
    }
    vm_def_free(old);
    return 0;
}

int vm_commit_def(struct agent *a, struct vm *vm, json_t *j, struct error **errp)
{
    return commit_def(a, vm, j, errp);
}

static json_t *def_json(struct vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    json_t *j = vm_def_to_json(vm->def);
    pthread_mutex_unlock(&vm->lock);
    return j;
}

static json_t *qmp(struct vm *vm, const char *cmd, json_t *args, struct error **errp)
{
    return vm_qmp_call(vm, cmd, args, QMP_TIMEOUT_MS, errp);
}

/* Runs a QMP command whose reply is not needed. */
static int qmp_do(struct vm *vm, const char *cmd, json_t *args, struct error **errp)
{
    json_t *r = qmp(vm, cmd, args, errp);
    json_decref(r);
    return r ? 0 : -1;
}

/* Records argv that recreate a live addition owned by device 'owner'. */
static void extra_add(struct vm *vm, const char *owner, const char *opt, const json_t *args)
{
    AUTOFREE char *text = json_to_string(args);
    pthread_mutex_lock(&vm->lock);
    json_array_append_new(vm->hotplug_extra,
                          json_pack("{s:s, s:[s,s]}", "owner", owner, "args", opt, text));
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
}

/* Forgets live additions of 'owner'; if there were none, the device was there
 * at boot, so its boot-time arguments (named in 'ids') are marked removed. */
static void extra_remove(struct vm *vm, const char *owner, const char *const *ids)
{
    pthread_mutex_lock(&vm->lock);
    bool found = false;
    for (size_t i = json_array_size(vm->hotplug_extra); i-- > 0;) {
        json_t *e = json_array_get(vm->hotplug_extra, i);
        const char *o = json_string_value(json_object_get(e, "owner"));
        if (o && !strcmp(o, owner)) {
            json_array_remove(vm->hotplug_extra, i);
            found = true;
        }
    }
    if (!found)
        for (const char *const *id = ids; *id; id++)
            json_array_append_new(vm->hotplug_extra, json_pack("{s:s}", "remove", *id));
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
}

/* Takes a free spare PCI port for 'dev' (q35), or "pci.0" (pc). */
static char *take_bus(struct vm *vm, const char *dev, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    bool q35 = strstr(vm->def->machine, "q35") != NULL;
    if (!q35) {
        char *bus = qemu_hotplug_bus(vm->def, 0, errp);
        pthread_mutex_unlock(&vm->lock);
        return bus;
    }
    if (!vm->hotplug_ports) {
        vm->hotplug_ports = xcalloc(QEMU_HOTPLUG_PORTS + 1, sizeof(char *));
        for (unsigned i = 0; i < QEMU_HOTPLUG_PORTS; i++)
            vm->hotplug_ports[i] = xstrdup("");
    }
    for (unsigned i = 0; i < QEMU_HOTPLUG_PORTS; i++) {
        if (!*vm->hotplug_ports[i]) {
            free(vm->hotplug_ports[i]);
            vm->hotplug_ports[i] = xstrdup(dev);
            char *bus = qemu_hotplug_bus(vm->def, i, errp);
            vm_save_runtime_locked(vm, NULL);
            pthread_mutex_unlock(&vm->lock);
            return bus;
        }
    }
    pthread_mutex_unlock(&vm->lock);
    return error_set(errp, ERR_NO_SPACE, "VM '%s' has no free hot-plug slot (%d in use)",
                     vm->name, QEMU_HOTPLUG_PORTS), NULL;
}

static void release_bus(struct vm *vm, const char *dev)
{
    pthread_mutex_lock(&vm->lock);
    for (size_t i = 0; vm->hotplug_ports && vm->hotplug_ports[i]; i++)
        if (!strcmp(vm->hotplug_ports[i], dev)) {
            free(vm->hotplug_ports[i]);
            vm->hotplug_ports[i] = xstrdup("");
        }
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
}

struct deleted_arg {
    const char *id;
};

static bool pred_deleted(struct vm *vm, void *arg)
{
    const char *id = ((struct deleted_arg *) arg)->id;
    for (size_t i = 0; vm->deleted_devices && vm->deleted_devices[i]; i++)
        if (!strcmp(vm->deleted_devices[i], id))
            return true;
    return vm->pid == 0;
}

/* device_del and wait for the guest to let go (DEVICE_DELETED). */
static int unplug_device(struct vm *vm, const char *id, struct error **errp)
{
    if (qmp_do(vm, "device_del", qemu_hotplug_device_del_args(id), errp) < 0)
        return -1;
    struct deleted_arg arg = { id };
    pthread_mutex_lock(&vm->lock);
    bool ok = vm_wait_locked(vm, pred_deleted, &arg, UNPLUG_TIMEOUT_MS);
    pthread_mutex_unlock(&vm->lock);
    if (!ok)
        return error_set(errp, ERR_TIMEOUT,
                         "VM '%s': the guest did not release device '%s' within %d s", vm->name,
                         id, UNPLUG_TIMEOUT_MS / 1000);
    return 0;
}

/* ---- vCPUs --------------------------------------------------------------- */

static int cmp_cpu(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *) pa, *b = *(json_t *const *) pb;
    static const char *const keys[] = { "node-id", "socket-id", "die-id", "core-id", "thread-id" };
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        json_int_t x = json_integer_value(json_object_get(json_object_get(a, "props"), keys[i]));
        json_int_t y = json_integer_value(json_object_get(json_object_get(b, "props"), keys[i]));
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

int vm_set_vcpus(struct agent *a, struct vm *vm, unsigned count, struct error **errp)
{
    if (vm_job_begin(vm, "set-vcpus", 5000, errp) < 0)
        return -1;
    int ret = -1;
    AUTOERROR struct error *cerr = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    unsigned cur = vm->def->vcpus, max = vm->def->max_vcpus;
    pthread_mutex_unlock(&vm->lock);
    if (count > max) {
        error_set_field(errp, ERR_INVALID_ARG, "count",
                        "count %u is above the maximum of %u vCPUs of VM '%s'", count, max, vm->name);
        goto out;
    }
    json_t *nd = def_json(vm);
    json_object_set_new(json_object_get(nd, "vcpus"), "count", json_integer(count));
    if (!is_live(get_state(vm))) {
        ret = commit_def(a, vm, nd, errp);
        goto out;
    }
    if (count < cur) {
        json_decref(nd);
        /* QEMU 7.2 under TCG crashes on vCPU unplug (measured); refuse it. */
        error_set_field(errp, ERR_UNSUPPORTED, "count",
                        "removing vCPUs from running VM '%s' is not supported (%u -> %u): "
                        "change it while stopped", vm->name, cur, count);
        goto out;
    }
    json_t *cpus = qmp(vm, "query-hotpluggable-cpus", NULL, errp);
    if (!cpus) {
        json_decref(nd);
        goto out;
    }
    size_t n = json_array_size(cpus), nfree = 0;
    json_t **avail = xcalloc(n + 1, sizeof *avail);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(cpus, i);
        if (!json_object_get(e, "qom-path"))
            avail[nfree++] = e;
    }
    qsort(avail, nfree, sizeof *avail, cmp_cpu);
    unsigned added = 0;
    for (unsigned k = 0; k < count - cur; k++) {
        if (k >= nfree) {
            error_set(errp, ERR_QEMU, "VM '%s' has no free vCPU slot left", vm->name);
            break;
        }
        json_t *args = qemu_hotplug_vcpu_args(avail[k], cur + k, errp);
        if (!args)
            break;
        AUTOFREE char *owner = xasprintf("vcpu%u", cur + k);
        json_t *copy = json_deep_copy(args);
        if (qmp_do(vm, "device_add", args, errp) < 0) {
            json_decref(copy);
            break;
        }
        extra_add(vm, owner, "-device", copy);
        json_decref(copy);
        added++;
    }
    free(avail);
    json_decref(cpus);
    /* Keep what was plugged, even on a partial failure: the guest has it. */
    json_object_set_new(json_object_get(nd, "vcpus"), "count", json_integer(cur + added));
    if (commit_def(a, vm, nd, &cerr) < 0)
        LOG_ERROR("VM '%s': cannot record %u vCPUs: %s", vm->name, cur + added, cerr->message);
    if (added == count - cur) {
        LOG_INFO("VM '%s': vCPUs %u -> %u", vm->name, cur, count);
        ret = 0;
    }
out:
    vm_job_end(vm);
    return ret;
}

/* ---- memory -------------------------------------------------------------- */

/* The definition with memory 'mib' (NUMA node 0 takes the difference). */
static json_t *def_with_memory(struct vm *vm, unsigned long long mib)
{
    json_t *nd = def_json(vm);
    json_t *mem = json_object_get(nd, "memory");
    long long delta = (long long) mib - (long long) json_integer_value(json_object_get(mem, "mib"));
    json_object_set_new(mem, "mib", json_integer((json_int_t) mib));
    json_t *node0 = json_array_get(json_object_get(nd, "numa"), 0);
    if (node0) {
        json_int_t m = json_integer_value(json_object_get(node0, "mem_mib"));
        json_object_set_new(node0, "mem_mib", json_integer(m + delta));
    }
    return nd;
}

int vm_set_memory(struct agent *a, struct vm *vm, unsigned long long mib, struct error **errp)
{
    if (vm_job_begin(vm, "set-memory", 5000, errp) < 0)
        return -1;
    int ret = -1;
    AUTOFREE char *backend_id = NULL;
    AUTOFREE char *owner = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    unsigned long long cur = vm->def->mem_mib, max = vm->def->max_mem_mib;
    unsigned slots = vm->def->mem_slots, next = vm->dimm_next;
    pthread_mutex_unlock(&vm->lock);
    if (!is_live(get_state(vm))) {
        ret = commit_def(a, vm, def_with_memory(vm, mib), errp);
        goto out;
    }
    if (mib <= cur) {
        error_set_field(errp, ERR_UNSUPPORTED, "mib",
                        "running VM '%s' has %llu MiB; memory can only grow live (use the "
                        "balloon to give memory back)", vm->name, cur);
        goto out;
    }
    if (mib > max) {
        error_set_field(errp, ERR_INVALID_ARG, "mib",
                        "%llu MiB is above the maximum of %llu MiB of VM '%s'", mib, max, vm->name);
        goto out;
    }
    if (next >= slots) {
        error_set_field(errp, ERR_NO_SPACE, "mib", "VM '%s' has no free memory slot (%u used)",
                        vm->name, slots);
        goto out;
    }
    json_t *nd = def_with_memory(vm, mib);
    {
        /* Validate before touching QEMU. */
        struct vm_def_limits limits;
        agent_vm_limits(a, &limits);
        struct vm_def *check = vm_def_from_json(nd, &limits, errp);
        if (!check) {
            json_decref(nd);
            goto out;
        }
        vm_def_free(check);
    }
    json_t *backend = qemu_hotplug_dimm_backend_args(next, mib - cur, errp);
    if (!backend) {
        json_decref(nd);
        goto out;
    }
    json_t *backend_copy = json_deep_copy(backend);
    json_t *dev = qemu_hotplug_dimm_device_args(next);
    json_t *dev_copy = json_deep_copy(dev);
    backend_id = qemu_dimm_backend_name(next);
    owner = qemu_dimm_name(next);
    if (qmp_do(vm, "object-add", backend, errp) < 0) {
        json_decref(dev);
        goto fail;
    }
    if (qmp_do(vm, "device_add", dev, errp) < 0) {
        qmp_do(vm, "object-del", qemu_hotplug_object_del_args(backend_id), NULL);
        goto fail;
    }
    extra_add(vm, owner, "-object", backend_copy);
    extra_add(vm, owner, "-device", dev_copy);
    pthread_mutex_lock(&vm->lock);
    vm->dimm_next = next + 1;
    vm->mem_plugged_mib += mib - cur;
    vm_save_runtime_locked(vm, NULL);
    pthread_mutex_unlock(&vm->lock);
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
    if (ret == 0)
        LOG_INFO("VM '%s': memory %llu -> %llu MiB (DIMM %u)", vm->name, cur, mib, next);
fail:
    json_decref(nd);
    json_decref(backend_copy);
    json_decref(dev_copy);
out:
    vm_job_end(vm);
    return ret;
}

int vm_set_balloon(struct agent *a, struct vm *vm, unsigned long long mib, struct error **errp)
{
    (void) a;
    if (vm_job_begin(vm, "balloon", 5000, errp) < 0)
        return -1;
    int ret = -1;
    pthread_mutex_lock(&vm->lock);
    bool has = vm->def->balloon;
    unsigned long long cur = vm->def->mem_mib;
    pthread_mutex_unlock(&vm->lock);
    if (!has)
        error_set(errp, ERR_UNSUPPORTED, "VM '%s' has no balloon device", vm->name);
    else if (!is_live(get_state(vm)))
        error_set(errp, ERR_BAD_STATE, "VM '%s' is not running", vm->name);
    else if (mib > cur)
        error_set_field(errp, ERR_INVALID_ARG, "mib",
                        "balloon target %llu MiB is above the %llu MiB of VM '%s'", mib, cur,
                        vm->name);
    else
        ret = qmp_do(vm, "balloon", qemu_hotplug_balloon_args(mib), errp);
    vm_job_end(vm);
    return ret;
}

/* ---- disks --------------------------------------------------------------- */

static bool id_in_use(const struct vm_def *d, const char *id)
{
    for (size_t i = 0; i < d->n_disks; i++)
        if (!strcmp(d->disks[i].id, id))
            return true;
    for (size_t i = 0; i < d->n_cdroms; i++)
        if (!strcmp(d->cdroms[i].id, id))
            return true;
    for (size_t i = 0; i < d->n_nics; i++)
        if (!strcmp(d->nics[i].id, id))
            return true;
    return false;
}

int vm_attach_disk(struct agent *a, struct vm *vm, const json_t *disk, struct error **errp)
{
    struct vm_def_limits limits;
    agent_vm_limits(a, &limits);
    struct vm_disk d = { 0 };
    if (vm_disk_from_json(disk, &limits, "", &d, errp) < 0)
        return -1;
    if (vm_job_begin(vm, "attach-disk", 5000, errp) < 0) {
        vm_disk_clear(&d);
        return -1;
    }
    int ret = -1;
    char *bus = NULL;
    bool file_added = false, format_added = false;
    json_t *nd = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    bool used = id_in_use(vm->def, d.id);
    pthread_mutex_unlock(&vm->lock);
    if (used) {
        error_set_field(errp, ERR_CONFLICT, "id", "VM '%s' already has a device '%s'", vm->name,
                        d.id);
        goto out;
    }
    nd = def_json(vm);
    json_array_append_new(json_object_get(nd, "disks"), vm_disk_to_json(&d));
    if (!is_live(get_state(vm))) {
        ret = commit_def(a, vm, nd, errp);
        nd = NULL;
        goto out;
    }
    {
        struct vm_def *check = vm_def_from_json(nd, &limits, errp);
        if (!check)
            goto out;
        vm_def_free(check);
    }
    if (d.bus == DISK_BUS_VIRTIO && !(bus = take_bus(vm, d.id, errp)))
        goto out;
    json_t *dev = qemu_hotplug_disk_device_args(&d, bus ? bus : "scsi0.0", errp);
    if (!dev)
        goto undo;
    json_t *file = qemu_hotplug_disk_file_args(&d), *fmt = qemu_hotplug_disk_format_args(&d);
    json_t *file_c = json_deep_copy(file), *fmt_c = json_deep_copy(fmt), *dev_c = json_deep_copy(dev);
    file_added = qmp_do(vm, "blockdev-add", file, errp) == 0;
    format_added = file_added && qmp_do(vm, "blockdev-add", fmt, errp) == 0;
    bool dev_added = format_added && qmp_do(vm, "device_add", dev, errp) == 0;
    if (!file_added)
        json_decref(fmt);
    if (!format_added)
        json_decref(dev);
    if (dev_added) {
        extra_add(vm, d.id, "-blockdev", file_c);
        extra_add(vm, d.id, "-blockdev", fmt_c);
        extra_add(vm, d.id, "-device", dev_c);
    }
    json_decref(file_c);
    json_decref(fmt_c);
    json_decref(dev_c);
    if (!dev_added)
        goto undo;
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
    if (ret == 0)
        LOG_INFO("VM '%s': disk '%s' attached", vm->name, d.id);
    goto out;
undo:
    if (format_added)
        qmp_do(vm, "blockdev-del", qemu_hotplug_disk_format_del_args(d.id), NULL);
    if (file_added)
        qmp_do(vm, "blockdev-del", qemu_hotplug_disk_file_del_args(d.id), NULL);
    if (bus)
        release_bus(vm, d.id);
out:
    json_decref(nd);
    free(bus);
    vm_disk_clear(&d);
    vm_job_end(vm);
    return ret;
}

/* Removes the element of array 'key' whose "id" is 'id'; false if none. */
static bool remove_by_id(json_t *def, const char *key, const char *id)
{
    json_t *arr = json_object_get(def, key);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *x = json_string_value(json_object_get(e, "id"));
        if (x && !strcmp(x, id)) {
            json_array_remove(arr, i);
            return true;
        }
    }
    return false;
}

int vm_detach_disk(struct agent *a, struct vm *vm, const char *id, struct error **errp)
{
    if (vm_job_begin(vm, "detach-disk", 5000, errp) < 0)
        return -1;
    int ret = -1;
    json_t *nd = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    nd = def_json(vm);
    if (!remove_by_id(nd, "disks", id)) {
        error_set_field(errp, ERR_NOT_FOUND, "id", "VM '%s' has no disk '%s'", vm->name, id);
        goto out;
    }
    if (is_live(get_state(vm))) {
        if (unplug_device(vm, id, errp) < 0)
            goto out;
        AUTOERROR struct error *e1 = NULL;
        AUTOERROR struct error *e2 = NULL;
        if (qmp_do(vm, "blockdev-del", qemu_hotplug_disk_format_del_args(id), &e1) < 0)
            LOG_WARN("VM '%s': %s", vm->name, e1->message);
        if (qmp_do(vm, "blockdev-del", qemu_hotplug_disk_file_del_args(id), &e2) < 0)
            LOG_WARN("VM '%s': %s", vm->name, e2->message);
        AUTOFREE char *fnode = qemu_file_node_name(id);
        AUTOFREE char *dnode = qemu_format_node_name(id);
        const char *ids[] = { id, fnode, dnode, NULL };
        extra_remove(vm, id, ids);
        release_bus(vm, id);
    }
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
    if (ret == 0)
        LOG_INFO("VM '%s': disk '%s' detached", vm->name, id);
out:
    json_decref(nd);
    vm_job_end(vm);
    return ret;
}

/* ---- NICs ---------------------------------------------------------------- */

/* QEMU creates a missing tap DOWN; bring it up. */
static void tap_up(const char *tap)
{
    AUTOCOMMAND struct command *cmd = command_new("ip");
    command_add_args(cmd, "link", "set", "dev", tap, "up", NULL);
    AUTOERROR struct error *err = NULL;
    if (command_run(cmd, NULL, NULL, NULL, &err) < 0)
        LOG_WARN("cannot bring tap '%s' up: %s", tap, err->message);
}

/* Module hooks (e.g. the network module plugs the tap's OVS port). */
static int modules_nic_plug(struct agent *a, struct vm *vm, const struct vm_nic *n,
                            struct error **errp)
{
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->nic_plug && (*m)->nic_plug(a, vm, n, errp) < 0) {
            error_prefix(errp, "%s", (*m)->name);
            return -1;
        }
    return 0;
}

static void modules_nic_unplug(struct agent *a, struct vm *vm, const char *id)
{
    for (const struct agent_module *const *m = agent_modules; *m; m++)
        if ((*m)->nic_unplug)
            (*m)->nic_unplug(a, vm, id);
}

int vm_attach_nic(struct agent *a, struct vm *vm, const json_t *nic, struct error **errp)
{
    struct vm_nic n = { 0 };
    if (vm_nic_from_json(nic, "", &n, errp) < 0)
        return -1;
    if (vm_job_begin(vm, "attach-nic", 5000, errp) < 0) {
        vm_nic_clear(&n);
        return -1;
    }
    int ret = -1;
    char *bus = NULL;
    json_t *nd = NULL;
    bool netdev_added = false, plugged = false;
    if (check_changeable(vm, errp) < 0)
        goto out;
    pthread_mutex_lock(&vm->lock);
    bool used = id_in_use(vm->def, n.id);
    pthread_mutex_unlock(&vm->lock);
    if (used) {
        error_set_field(errp, ERR_CONFLICT, "id", "VM '%s' already has a device '%s'", vm->name,
                        n.id);
        goto out;
    }
    nd = def_json(vm);
    json_array_append_new(json_object_get(nd, "nics"), vm_nic_to_json(&n));
    if (!is_live(get_state(vm))) {
        ret = commit_def(a, vm, nd, errp);
        nd = NULL;
        goto out;
    }
    {
        struct vm_def_limits limits;
        agent_vm_limits(a, &limits);
        struct vm_def *check = vm_def_from_json(nd, &limits, errp);
        if (!check)
            goto out;
        vm_def_free(check);
    }
    if (!(bus = take_bus(vm, n.id, errp)))
        goto out;
    if (modules_nic_plug(a, vm, &n, errp) < 0)
        goto undo;
    plugged = true;
    json_t *netdev = qemu_hotplug_nic_netdev_args(&n);
    json_t *netdev_c = json_deep_copy(netdev);
    netdev_added = qmp_do(vm, "netdev_add", netdev, errp) == 0;
    if (netdev_added) {
        tap_up(n.tap);
        json_t *dev = qemu_hotplug_nic_device_args(&n, bus);
        json_t *dev_c = json_deep_copy(dev);
        if (qmp_do(vm, "device_add", dev, errp) == 0) {
            extra_add(vm, n.id, "-netdev", netdev_c);
            extra_add(vm, n.id, "-device", dev_c);
            ret = 0;
        }
        json_decref(dev_c);
    }
    json_decref(netdev_c);
    if (ret < 0)
        goto undo;
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
    if (ret == 0)
        LOG_INFO("VM '%s': NIC '%s' attached on tap '%s'", vm->name, n.id, n.tap);
    goto out;
undo:
    if (netdev_added)
        qmp_do(vm, "netdev_del", qemu_hotplug_netdev_del_args(n.id), NULL);
    if (plugged)
        modules_nic_unplug(a, vm, n.id);
    release_bus(vm, n.id);
out:
    json_decref(nd);
    free(bus);
    vm_nic_clear(&n);
    vm_job_end(vm);
    return ret;
}

int vm_detach_nic(struct agent *a, struct vm *vm, const char *id, struct error **errp)
{
    if (vm_job_begin(vm, "detach-nic", 5000, errp) < 0)
        return -1;
    int ret = -1;
    json_t *nd = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    nd = def_json(vm);
    if (!remove_by_id(nd, "nics", id)) {
        error_set_field(errp, ERR_NOT_FOUND, "id", "VM '%s' has no NIC '%s'", vm->name, id);
        goto out;
    }
    if (is_live(get_state(vm))) {
        if (unplug_device(vm, id, errp) < 0)
            goto out;
        AUTOERROR struct error *e = NULL;
        if (qmp_do(vm, "netdev_del", qemu_hotplug_netdev_del_args(id), &e) < 0)
            LOG_WARN("VM '%s': %s", vm->name, e->message);
        AUTOFREE char *netdev = qemu_netdev_name(id);
        const char *ids[] = { id, netdev, NULL };
        extra_remove(vm, id, ids);
        release_bus(vm, id);
        modules_nic_unplug(a, vm, id);
    }
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
out:
    json_decref(nd);
    vm_job_end(vm);
    return ret;
}

/* ---- CD-ROM media -------------------------------------------------------- */

int vm_change_media(struct agent *a, struct vm *vm, const char *id, const char *path,
                    struct error **errp)
{
    struct vm_def_limits limits;
    agent_vm_limits(a, &limits);
    if (path && vm_image_path_validate(path, &limits, "path", errp) < 0)
        return -1;
    if (vm_job_begin(vm, "change-media", 5000, errp) < 0)
        return -1;
    int ret = -1;
    json_t *nd = NULL;
    if (check_changeable(vm, errp) < 0)
        goto out;
    nd = def_json(vm);
    json_t *cd = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(nd, "cdroms"), i, e) {
        const char *x = json_string_value(json_object_get(e, "id"));
        if (x && !strcmp(x, id))
            cd = e;
    }
    if (!cd) {
        error_set_field(errp, ERR_NOT_FOUND, "id", "VM '%s' has no CD-ROM drive '%s'", vm->name,
                        id);
        goto out;
    }
    json_object_set_new(cd, "path", path ? json_string(path) : json_null());
    {
        struct vm_def_limits l2;
        agent_vm_limits(a, &l2);
        struct vm_def *check = vm_def_from_json(nd, &l2, errp);
        if (!check)
            goto out;
        vm_def_free(check);
    }
    if (is_live(get_state(vm))) {
        if (path ? qmp_do(vm, "blockdev-change-medium", qemu_hotplug_cdrom_insert_args(id, path),
                          errp) < 0
                 : qmp_do(vm, "eject", qemu_hotplug_cdrom_eject_args(id), errp) < 0)
            goto out;
    }
    ret = commit_def(a, vm, nd, errp);
    nd = NULL;
    if (ret == 0)
        LOG_INFO("VM '%s': CD-ROM '%s' %s%s", vm->name, id, path ? "now holds " : "ejected",
                 path ? path : "");
out:
    json_decref(nd);
    vm_job_end(vm);
    return ret;
}
