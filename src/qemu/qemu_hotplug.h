/* qemu_hotplug.h - pure builders of the QMP "arguments" objects for changes
 * to a running VM.  No I/O: the agent (agent/vm_manager.c) sends them with
 * qmp/qmp.c in the order given below and undoes the steps that succeeded when
 * a later one fails.  Names match the boot-time argv (qemu_argv.h), so a
 * device attached at run time is indistinguishable from one present at boot.
 *
 * Every function returns a new JSON object the caller owns (or NULL with
 * 'errp' set where an error is possible).
 *
 *   attach disk:   blockdev-add  qemu_hotplug_disk_file_args()     undo: blockdev-del file
 *                  blockdev-add  qemu_hotplug_disk_format_args()   undo: blockdev-del format
 *                  device_add    qemu_hotplug_disk_device_args()   undo: device_del <id>
 *   detach disk:   device_del    qemu_hotplug_device_del_args(id), wait for DEVICE_DELETED,
 *                  blockdev-del  qemu_hotplug_disk_format_del_args(id)  ("drive-<id>"),
 *                  blockdev-del  qemu_hotplug_disk_file_del_args(id)    ("file-<id>")
 *   attach NIC:    netdev_add    qemu_hotplug_nic_netdev_args()    undo: netdev_del net-<id>
 *                  device_add    qemu_hotplug_nic_device_args()    undo: device_del <id>
 *   detach NIC:    device_del <id>, wait for DEVICE_DELETED, netdev_del
 *                  qemu_hotplug_netdev_del_args(id)
 *   add memory:    object-add    qemu_hotplug_dimm_backend_args()  undo: object-del mem-dimm<N>
 *                  device_add    qemu_hotplug_dimm_device_args()
 *   add vCPU:      device_add    qemu_hotplug_vcpu_args(entry of query-hotpluggable-cpus)
 *   cdrom:         blockdev-change-medium qemu_hotplug_cdrom_insert_args(),
 *                  eject qemu_hotplug_cdrom_eject_args()
 *   balloon:       balloon qemu_hotplug_balloon_args()
 *
 * Buses: on q35 a hot-added PCI device goes on a free spare root port
 * "hotplug<N>" (qemu_hotplug_bus()); on pc on "pci.0".  SCSI disks go on
 * "scsi0.0" (the controller exists when the VM booted with a scsi disk).
 * SATA disks cannot be hot-plugged (QEMU's AHCI has no hot-plug). */
#ifndef STRATA_QEMU_HOTPLUG_H
#define STRATA_QEMU_HOTPLUG_H

#include <jansson.h>

#include "model/vm_def.h"
#include "qemu/qemu_argv.h"
#include "util/error.h"

/* The bus for the 'port'-th hot-plugged PCI device of 'def' (a new string):
 * "hotplug<port>" on q35, "pci.0" on pc.  'port' < QEMU_HOTPLUG_PORTS on q35. */
char *qemu_hotplug_bus(const struct vm_def *def, unsigned port, struct error **errp);

json_t *qemu_hotplug_disk_file_args(const struct vm_disk *d);
json_t *qemu_hotplug_disk_format_args(const struct vm_disk *d);
/* 'bus': a free "hotplug<N>"/"pci.0" for virtio, "scsi0.0" for scsi (QEMU
 * picks the scsi-id); a sata disk is ERR_UNSUPPORTED. */
json_t *qemu_hotplug_disk_device_args(const struct vm_disk *d, const char *bus,
                                      struct error **errp);

json_t *qemu_hotplug_nic_netdev_args(const struct vm_nic *n);
json_t *qemu_hotplug_nic_device_args(const struct vm_nic *n, const char *bus);

/* DIMM 'index' of 'mib' MiB (a positive multiple of VM_HOTPLUG_MEM_ALIGN_MIB,
 * else ERR_INVALID_ARG). */
json_t *qemu_hotplug_dimm_backend_args(unsigned index, unsigned long long mib,
                                       struct error **errp);
json_t *qemu_hotplug_dimm_device_args(unsigned index);

/* From one entry of query-hotpluggable-cpus ({"type", "props", "vcpus-count",
 * "qom-path" when plugged}): device_add {"driver": type, "id": "vcpu<index>",
 * props...}.  An entry already plugged is ERR_CONFLICT; a malformed one
 * ERR_QEMU. */
json_t *qemu_hotplug_vcpu_args(const json_t *entry, unsigned index, struct error **errp);

/* blockdev-change-medium of device 'cdrom_id' to the raw ISO 'path' (validated
 * by the caller with vm_image_path_validate), opened read-only. */
json_t *qemu_hotplug_cdrom_insert_args(const char *cdrom_id, const char *path);
/* eject with force (works even when the guest locked the tray). */
json_t *qemu_hotplug_cdrom_eject_args(const char *cdrom_id);

/* balloon: the guest's target size. */
json_t *qemu_hotplug_balloon_args(unsigned long long mib);

/* Removal steps. */
json_t *qemu_hotplug_device_del_args(const char *device_id);
json_t *qemu_hotplug_blockdev_del_args(const char *node_name);
json_t *qemu_hotplug_disk_format_del_args(const char *disk_id);
json_t *qemu_hotplug_disk_file_del_args(const char *disk_id);
json_t *qemu_hotplug_netdev_del_args(const char *nic_id);
json_t *qemu_hotplug_object_del_args(const char *object_id);

#endif
