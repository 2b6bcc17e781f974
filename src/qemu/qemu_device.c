/* qemu_device.c - the JSON objects that describe one disk, cdrom, NIC or DIMM
 * to QEMU, used both on the command line and in QMP hot-plug (see
 * qemu_device.h).
 *
 * Cache modes map to the block layer the way libvirt maps them:
 *   mode          cache.direct  cache.no-flush  device write-cache
 *   none          true          false           on
 *   writeback     false         false           on
 *   writethrough  false         false           off
 *   directsync    true          false           off
 *   unsafe        false         true            on
 * Both the protocol and the format node get the cache options.  Every disk
 * device carries werror=enospc (the VM pauses when the datastore is full, so
 * the agent can grow it and resume) and rerror=report. */
#include "qemu/qemu_device.h"

#include "util/mem.h"

char *qemu_file_node_name(const char *dev_id)
{
    return xasprintf("file-%s", dev_id);
}

char *qemu_format_node_name(const char *dev_id)
{
    return xasprintf("drive-%s", dev_id);
}

char *qemu_netdev_name(const char *nic_id)
{
    return xasprintf("net-%s", nic_id);
}

char *qemu_dimm_name(unsigned index)
{
    return xasprintf("dimm%u", index);
}

char *qemu_dimm_backend_name(unsigned index)
{
    return xasprintf("mem-dimm%u", index);
}

char *qemu_hotplug_port_name(unsigned index)
{
    return xasprintf("hotplug%u", index);
}

static bool cache_direct(enum disk_cache c)
{
    return c == DISK_CACHE_NONE || c == DISK_CACHE_DIRECTSYNC;
}

static bool cache_no_flush(enum disk_cache c)
{
    return c == DISK_CACHE_UNSAFE;
}

static bool cache_write_cache(enum disk_cache c)
{
    return c != DISK_CACHE_WRITETHROUGH && c != DISK_CACHE_DIRECTSYNC;
}

static json_t *cache_obj(enum disk_cache c)
{
    return json_pack("{s:b, s:b}", "direct", cache_direct(c), "no-flush", cache_no_flush(c));
}

json_t *qemu_file_node(const char *dev_id, const char *path, enum disk_cache cache,
                       bool readonly)
{
    AUTOFREE char *node = qemu_file_node_name(dev_id);
    return json_pack("{s:s, s:s, s:s, s:b, s:o}", "driver", "file", "filename", path,
                     "node-name", node, "read-only", readonly, "cache", cache_obj(cache));
}

json_t *qemu_format_node(const char *dev_id, enum disk_format format, enum disk_cache cache,
                         bool readonly)
{
    AUTOFREE char *node = qemu_format_node_name(dev_id);
    AUTOFREE char *file = qemu_file_node_name(dev_id);
    return json_pack("{s:s, s:s, s:s, s:b, s:o}", "driver", disk_format_to_string(format),
                     "file", file, "node-name", node, "read-only", readonly,
                     "cache", cache_obj(cache));
}

static const char *disk_driver(enum disk_bus bus)
{
    switch (bus) {
    case DISK_BUS_SCSI:
        return "scsi-hd";
    case DISK_BUS_SATA:
        return "ide-hd";
    case DISK_BUS_VIRTIO:
    case DISK_BUS__COUNT:
        break;
    }
    return "virtio-blk-pci";
}

json_t *qemu_disk_device(const struct vm_disk *d, const char *bus, int unit, unsigned bootindex)
{
    AUTOFREE char *node = qemu_format_node_name(d->id);
    json_t *j = json_pack("{s:s, s:s, s:s}", "driver", disk_driver(d->bus), "id", d->id,
                          "bus", bus);
    if (unit >= 0 && d->bus == DISK_BUS_SCSI) {
        json_object_set_new(j, "channel", json_integer(0));
        json_object_set_new(j, "scsi-id", json_integer(unit));
        json_object_set_new(j, "lun", json_integer(0));
    } else if (unit >= 0 && d->bus == DISK_BUS_SATA) {
        json_object_set_new(j, "unit", json_integer(unit));
    }
    json_object_set_new(j, "drive", json_string(node));
    json_object_set_new(j, "write-cache", json_string(cache_write_cache(d->cache) ? "on" : "off"));
    json_object_set_new(j, "werror", json_string("enospc"));
    json_object_set_new(j, "rerror", json_string("report"));
    if (d->shared)
        json_object_set_new(j, "share-rw", json_true());
    if (d->serial)
        json_object_set_new(j, "serial", json_string(d->serial));
    if (bootindex > 0)
        json_object_set_new(j, "bootindex", json_integer(bootindex));
    return j;
}

json_t *qemu_cdrom_device(const struct vm_cdrom *c, bool with_media, const char *bus, int unit,
                          unsigned bootindex)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "driver", "ide-cd", "id", c->id, "bus", bus);
    if (unit >= 0)
        json_object_set_new(j, "unit", json_integer(unit));
    if (with_media) {
        AUTOFREE char *node = qemu_format_node_name(c->id);
        json_object_set_new(j, "drive", json_string(node));
    }
    if (bootindex > 0)
        json_object_set_new(j, "bootindex", json_integer(bootindex));
    return j;
}

json_t *qemu_nic_netdev(const struct vm_nic *n)
{
    AUTOFREE char *id = qemu_netdev_name(n->id);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "type", "tap", "id", id,
                     "ifname", n->tap, "script", "no", "downscript", "no", "vnet_hdr", 0);
}

static const char *nic_driver(enum nic_model m)
{
    switch (m) {
    case NIC_MODEL_E1000:
        return "e1000";
    case NIC_MODEL_RTL8139:
        return "rtl8139";
    case NIC_MODEL_VIRTIO:
    case NIC_MODEL__COUNT:
        break;
    }
    return "virtio-net-pci";
}

json_t *qemu_nic_device(const struct vm_nic *n, const char *bus, unsigned bootindex)
{
    AUTOFREE char *netdev = qemu_netdev_name(n->id);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "driver", nic_driver(n->model),
                          "id", n->id, "bus", bus, "netdev", netdev, "mac", n->mac);
    if (bootindex > 0)
        json_object_set_new(j, "bootindex", json_integer(bootindex));
    return j;
}

json_t *qemu_ram_backend(const char *id, unsigned long long mib)
{
    return json_pack("{s:s, s:s, s:I}", "qom-type", "memory-backend-ram", "id", id,
                     "size", (json_int_t) (mib * 1024 * 1024));
}

json_t *qemu_dimm_backend(unsigned index, unsigned long long mib)
{
    AUTOFREE char *id = qemu_dimm_backend_name(index);
    return qemu_ram_backend(id, mib);
}

json_t *qemu_dimm_device(unsigned index)
{
    AUTOFREE char *id = qemu_dimm_name(index);
    AUTOFREE char *mem = qemu_dimm_backend_name(index);
    return json_pack("{s:s, s:s, s:s}", "driver", "pc-dimm", "id", id, "memdev", mem);
}
