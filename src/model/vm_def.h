/* vm_def.h - a virtual machine definition: parse, validate, serialize.
 *
 * Pure data, no I/O: the node agent receives a definition as JSON (see
 * docs/vm-definition.md), vm_def_from_json() checks it against the host's
 * limits and returns the struct; vm_def_to_json() gives the canonical JSON back
 * (what the agent stores on disk and reports).  Every refusal is an
 * ERR_INVALID_ARG whose 'field' is the JSON path of the offending value, e.g.
 * "disks[1].path", and whose message quotes it.
 *
 * Neighbours: qemu/qemu_argv.c turns a vm_def plus host caps into a QEMU argv;
 * agent/vm_manager.c owns the definitions of the VMs on a host. */
#ifndef STRATA_VM_DEF_H
#define STRATA_VM_DEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "util/uuid.h"

#define VM_NAME_MAX 64
#define VM_MAX_DISKS 32
#define VM_MAX_NICS 16
#define VM_MAX_VCPUS 255
#define VM_MAC_STRLEN 17
#define VM_MAX_NUMA_NODES 16
#define VM_MIN_MEM_MIB 16
#define VM_MAX_MEM_SLOTS 255
#define VM_HOTPLUG_MEM_ALIGN_MIB 128   /* max_mib - mib and DIMM sizes are multiples */
#define VM_CMDLINE_MAX 4096

enum disk_format { DISK_FORMAT_RAW, DISK_FORMAT_QCOW2, DISK_FORMAT__COUNT };
enum disk_bus { DISK_BUS_VIRTIO, DISK_BUS_SCSI, DISK_BUS_SATA, DISK_BUS__COUNT };
enum disk_cache {
    DISK_CACHE_NONE, DISK_CACHE_WRITEBACK, DISK_CACHE_WRITETHROUGH,
    DISK_CACHE_DIRECTSYNC, DISK_CACHE_UNSAFE, DISK_CACHE__COUNT
};
enum nic_model { NIC_MODEL_VIRTIO, NIC_MODEL_E1000, NIC_MODEL_RTL8139, NIC_MODEL__COUNT };
enum boot_dev { BOOT_DEV_DISK, BOOT_DEV_CDROM, BOOT_DEV_NETWORK, BOOT_DEV__COUNT };
enum vnc_listen { VNC_LISTEN_NONE, VNC_LISTEN_UNIX, VNC_LISTEN_LOOPBACK };

const char *disk_format_to_string(enum disk_format f);
int disk_format_from_string(const char *s);          /* -1 if unknown */
const char *disk_bus_to_string(enum disk_bus b);
int disk_bus_from_string(const char *s);
const char *disk_cache_to_string(enum disk_cache c);
int disk_cache_from_string(const char *s);
const char *nic_model_to_string(enum nic_model m);
int nic_model_from_string(const char *s);
const char *boot_dev_to_string(enum boot_dev d);
int boot_dev_from_string(const char *s);

struct vm_disk {
    char *id;               /* device id, [a-z][a-z0-9-]{0,31}, unique in the VM */
    char *path;             /* absolute, clean, under an allowed root */
    enum disk_format format;
    enum disk_bus bus;
    enum disk_cache cache;
    bool readonly;
    bool shared;            /* opened share-rw (raw only) */
    char *serial;           /* optional, [A-Za-z0-9_-]{1,20} */
};

struct vm_cdrom {
    char *id;
    char *path;             /* NULL: empty drive; else raw ISO under an allowed root */
};

/* Where the agent's network module plugs a NIC's tap (docs/network.md):
 * a port group of a distributed virtual switch, or a host-local NAT network.
 * Names are [A-Za-z0-9][A-Za-z0-9_.-]{0,31}; they are resolved by the agent
 * when the VM starts, not here. */
struct vm_nic_network {
    char *dvs;              /* DVS name, or NULL for a NAT network */
    char *portgroup;        /* port group of 'dvs' (required with it) */
    char *nat;              /* NAT network name (exclusive with 'dvs'), or NULL */
    char *security_group;   /* or NULL: no security group */
    char **ips;             /* NULL-terminated bound IPv4 addresses (IP-MAC binding), or NULL */
};

struct vm_nic {
    char *id;
    char mac[VM_MAC_STRLEN + 1];   /* lowercase xx:xx:xx:xx:xx:xx, unicast */
    enum nic_model model;
    char *tap;              /* host tap name, [A-Za-z0-9_.-]{1,15} */
    struct vm_nic_network *network; /* NULL: Strata does not connect the tap */
};

#define VM_NIC_MAX_IPS 8

struct vm_numa_node {
    unsigned cpu_first, cpu_last;  /* inclusive range of vCPU indexes */
    unsigned long long mem_mib;
};

struct vm_def {
    char *name;             /* [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, no ".." */
    char uuid[UUID_STRLEN + 1];

    /* vCPUs: 'count' online at start; sockets*cores*threads == max. */
    unsigned vcpus, max_vcpus, sockets, cores, threads;
    /* Memory: 'mem_mib' at start; max_mem_mib > mem_mib needs mem_slots > 0. */
    unsigned long long mem_mib, max_mem_mib;
    unsigned mem_slots;

    char *cpu_model;        /* "host" or a QEMU CPU model name */
    char *machine;          /* "q35", "pc", or a versioned "pc-q35-7.2" */

    struct vm_numa_node *numa;
    size_t n_numa;

    /* Boot: firmware with an order, or a direct kernel boot. */
    enum boot_dev boot_order[BOOT_DEV__COUNT];
    size_t n_boot;
    char *kernel, *initrd, *cmdline;   /* all NULL unless direct kernel boot */

    struct vm_disk *disks;
    size_t n_disks;
    struct vm_cdrom *cdroms;
    size_t n_cdroms;
    struct vm_nic *nics;
    size_t n_nics;

    bool serial;            /* serial console captured to a log (default true) */
    enum vnc_listen vnc;
    bool vnc_websocket;     /* loopback only */
    bool balloon;           /* default true */
    bool guest_agent;       /* virtio-serial channel for qemu-ga (default true) */
};

/* What a host allows; borrowed by the parser. */
struct vm_def_limits {
    const char *const *allowed_roots;   /* NULL-terminated clean directories */
    unsigned max_vcpus;                 /* 0: VM_MAX_VCPUS */
    unsigned long long max_mem_mib;     /* 0: 4 TiB */
};

/* Parses and validates 'json'.  Unknown keys are refused.  A missing uuid is
 * generated.  Returns a new definition or NULL with 'errp' naming the field. */
struct vm_def *vm_def_from_json(const json_t *json, const struct vm_def_limits *limits,
                                struct error **errp);
/* Returns a new JSON object with every field (canonical form). */
json_t *vm_def_to_json(const struct vm_def *def);
struct vm_def *vm_def_copy(const struct vm_def *def);
void vm_def_free(struct vm_def *def);   /* Accepts NULL. */
static inline void autovmdef_impl(struct vm_def **d) { vm_def_free(*d); }
#define AUTOVMDEF __attribute__((cleanup(autovmdef_impl)))

/* Field validators shared with the API (online changes): each returns -1 and
 * sets an ERR_INVALID_ARG naming 'field' on a bad value. */
int vm_name_validate(const char *name, const char *field, struct error **errp);
int vm_device_id_validate(const char *id, const char *field, struct error **errp);
int vm_mac_validate(const char *mac, const char *field, struct error **errp);
/* Network object names (DVS, port group, NAT network, security group). */
int vm_net_name_validate(const char *name, const char *field, struct error **errp);
/* Returns a deep copy (NULL in, NULL out); vm_nic_network_free accepts NULL. */
struct vm_nic_network *vm_nic_network_copy(const struct vm_nic_network *n);
void vm_nic_network_free(struct vm_nic_network *n);
int vm_image_path_validate(const char *path, const struct vm_def_limits *limits,
                           const char *field, struct error **errp);
/* Parses one disk / NIC object (the same schema as in a definition), for
 * attach-disk / attach-interface.  Returns 0 and fills '*out' (caller frees
 * with vm_disk_clear / vm_nic_clear). */
int vm_disk_from_json(const json_t *j, const struct vm_def_limits *limits, const char *field,
                      struct vm_disk *out, struct error **errp);
int vm_nic_from_json(const json_t *j, const char *field, struct vm_nic *out,
                     struct error **errp);
json_t *vm_disk_to_json(const struct vm_disk *d);
json_t *vm_nic_to_json(const struct vm_nic *n);
void vm_disk_clear(struct vm_disk *d);
void vm_nic_clear(struct vm_nic *n);

/* True for "q35" and "pc-q35-*"; anything else valid is an i440fx "pc". */
bool vm_machine_is_q35(const char *machine);
/* SATA/IDE slots of the machine, shared by sata disks and cdroms: q35 6 (AHCI
 * ports ide.0-ide.5), pc 4 (ide.0 and ide.1, units 0 and 1). */
unsigned vm_ide_slots(const char *machine);

#endif
