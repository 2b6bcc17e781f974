/* qemu_device.h - JSON builders for QEMU devices, block nodes and backends,
 * shared by the boot-time argv (qemu_argv.c: "-blockdev {...}", "-device
 * {...}", "-netdev {...}", "-object {...}") and hot-plug (qemu_hotplug.c:
 * the "arguments" of blockdev-add, device_add, netdev_add, object-add).
 * Because both go through these functions, a disk attached at run time gets
 * exactly the node names and properties it would have had at boot.
 *
 * Internal to src/qemu; callers outside use qemu_argv.h and qemu_hotplug.h.
 * Inputs are definitions that vm_def.c accepted; nothing here validates.
 * Every json_t returned is a new reference the caller owns. */
#ifndef STRATA_QEMU_DEVICE_H
#define STRATA_QEMU_DEVICE_H

#include <jansson.h>

#include "model/vm_def.h"

/* Names (see qemu_argv.h).  Each returns a new string; the caller frees it. */
char *qemu_file_node_name(const char *dev_id);      /* "file-<id>" */
char *qemu_format_node_name(const char *dev_id);    /* "drive-<id>" */
char *qemu_netdev_name(const char *nic_id);         /* "net-<id>" */
char *qemu_dimm_name(unsigned index);               /* "dimm<N>" */
char *qemu_dimm_backend_name(unsigned index);       /* "mem-dimm<N>" */
char *qemu_hotplug_port_name(unsigned index);       /* "hotplug<N>" */

#define QEMU_SCSI_CONTROLLER "scsi0"
#define QEMU_SCSI_BUS "scsi0.0"

/* Protocol node ("file" driver) and format node of a disk image or ISO. */
json_t *qemu_file_node(const char *dev_id, const char *path, enum disk_cache cache,
                       bool readonly);
json_t *qemu_format_node(const char *dev_id, enum disk_format format, enum disk_cache cache,
                         bool readonly);
/* A disk's device on 'bus'.  'unit' is the scsi-id (scsi) or IDE unit (pc
 * IDE) when >= 0; 'bootindex' is added when > 0. */
json_t *qemu_disk_device(const struct vm_disk *d, const char *bus, int unit, unsigned bootindex);
/* A cdrom's ide-cd device; 'with_media' attaches node "drive-<id>". */
json_t *qemu_cdrom_device(const struct vm_cdrom *c, bool with_media, const char *bus, int unit,
                          unsigned bootindex);
/* The tap netdev and the NIC device of a NIC. */
json_t *qemu_nic_netdev(const struct vm_nic *n);
json_t *qemu_nic_device(const struct vm_nic *n, const char *bus, unsigned bootindex);
/* A memory-backend-ram object of 'mib' MiB named 'id'. */
json_t *qemu_ram_backend(const char *id, unsigned long long mib);
/* DIMM 'index': backend "mem-dimm<N>" and pc-dimm "dimm<N>". */
json_t *qemu_dimm_backend(unsigned index, unsigned long long mib);
json_t *qemu_dimm_device(unsigned index);

#endif
