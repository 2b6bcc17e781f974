/* qemu_hotplug.c - QMP arguments for hot-plug and media changes (see
 * qemu_hotplug.h).  Block nodes, netdevs and devices come from the same
 * builders as the boot-time argv (qemu_device.c); this file adds the few
 * QMP-only shapes (vCPU from query-hotpluggable-cpus, cdrom media, balloon,
 * removals).  Verified against QEMU 7.2 (docs/vm-definition.md, "Hot-plug"). */
#include "qemu/qemu_hotplug.h"

#include <string.h>

#include "qemu/qemu_argv.h"
#include "qemu/qemu_device.h"
#include "util/mem.h"

char *qemu_hotplug_bus(const struct vm_def *def, unsigned port, struct error **errp)
{
    if (!vm_machine_is_q35(def->machine))
        return xstrdup("pci.0");
    if (port >= QEMU_HOTPLUG_PORTS)
        return error_set(errp, ERR_NO_SPACE, "VM '%s' has only %d hot-plug ports", def->name,
                         QEMU_HOTPLUG_PORTS), NULL;
    return qemu_hotplug_port_name(port);
}

json_t *qemu_hotplug_disk_file_args(const struct vm_disk *d)
{
    return qemu_file_node(d->id, d->path, d->cache, d->readonly);
}

json_t *qemu_hotplug_disk_format_args(const struct vm_disk *d)
{
    return qemu_format_node(d->id, d->format, d->cache, d->readonly);
}

json_t *qemu_hotplug_disk_device_args(const struct vm_disk *d, const char *bus,
                                      struct error **errp)
{
    if (d->bus == DISK_BUS_SATA)
        return error_set(errp, ERR_UNSUPPORTED,
                         "disk '%s' is on the sata bus, which does not support hot-plug", d->id),
               NULL;
    return qemu_disk_device(d, bus, -1, 0);
}

json_t *qemu_hotplug_nic_netdev_args(const struct vm_nic *n)
{
    return qemu_nic_netdev(n);
}

json_t *qemu_hotplug_nic_device_args(const struct vm_nic *n, const char *bus)
{
    return qemu_nic_device(n, bus, 0);
}

json_t *qemu_hotplug_dimm_backend_args(unsigned index, unsigned long long mib,
                                       struct error **errp)
{
    if (mib == 0 || mib % VM_HOTPLUG_MEM_ALIGN_MIB)
        return error_set_field(errp, ERR_INVALID_ARG, "mib",
                               "DIMM size %llu MiB is not a positive multiple of %d MiB", mib,
                               VM_HOTPLUG_MEM_ALIGN_MIB), NULL;
    return qemu_dimm_backend(index, mib);
}

json_t *qemu_hotplug_dimm_device_args(unsigned index)
{
    return qemu_dimm_device(index);
}

json_t *qemu_hotplug_vcpu_args(const json_t *entry, unsigned index, struct error **errp)
{
    const char *type = json_string_value(json_object_get(entry, "type"));
    const json_t *props = json_object_get(entry, "props");
    if (!type || !json_is_object(props))
        return error_set(errp, ERR_QEMU,
                         "query-hotpluggable-cpus entry has no 'type' or 'props'"), NULL;
    if (json_object_get(entry, "qom-path"))
        return error_set(errp, ERR_CONFLICT, "the vCPU slot of this entry is already plugged"),
               NULL;
    AUTOFREE char *id = xasprintf("vcpu%u", index);
    json_t *args = json_pack("{s:s, s:s}", "driver", type, "id", id);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) props, key, v) {
        if (!json_is_integer(v)) {
            json_decref(args);
            return error_set(errp, ERR_QEMU, "query-hotpluggable-cpus prop '%s' is not an integer",
                             key), NULL;
        }
        json_object_set(args, key, v);
    }
    return args;
}

json_t *qemu_hotplug_cdrom_insert_args(const char *cdrom_id, const char *path)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", cdrom_id, "filename", path, "format", "raw",
                     "read-only-mode", "read-only");
}

json_t *qemu_hotplug_cdrom_eject_args(const char *cdrom_id)
{
    return json_pack("{s:s, s:b}", "id", cdrom_id, "force", 1);
}

json_t *qemu_hotplug_balloon_args(unsigned long long mib)
{
    return json_pack("{s:I}", "value", (json_int_t) (mib * 1024 * 1024));
}

json_t *qemu_hotplug_device_del_args(const char *device_id)
{
    return json_pack("{s:s}", "id", device_id);
}

json_t *qemu_hotplug_blockdev_del_args(const char *node_name)
{
    return json_pack("{s:s}", "node-name", node_name);
}

json_t *qemu_hotplug_disk_format_del_args(const char *disk_id)
{
    AUTOFREE char *node = qemu_format_node_name(disk_id);
    return qemu_hotplug_blockdev_del_args(node);
}

json_t *qemu_hotplug_disk_file_del_args(const char *disk_id)
{
    AUTOFREE char *node = qemu_file_node_name(disk_id);
    return qemu_hotplug_blockdev_del_args(node);
}

json_t *qemu_hotplug_netdev_del_args(const char *nic_id)
{
    AUTOFREE char *id = qemu_netdev_name(nic_id);
    return json_pack("{s:s}", "id", id);
}

json_t *qemu_hotplug_object_del_args(const char *object_id)
{
    return json_pack("{s:s}", "id", object_id);
}
