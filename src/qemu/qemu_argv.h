/* qemu_argv.h - pure builder: VM definition + host caps -> QEMU argv.
 *
 * No I/O and no global state: the same inputs always give the same argv, which
 * the golden tests (tests/golden, tests/data/argv/<case>.json -> .args) pin.
 * Modern syntax only: -blockdev/-device/-netdev/-object, -nodefaults
 * -no-user-config, -sandbox when available.  Values that QEMU parses with
 * comma-separated options are comma-escaped; JSON syntax is used where QEMU
 * accepts it.
 *
 * Naming contract used by the hot-plug code (agent/vm_manager.c):
 *   disks:  node "drive-<id>" (format) over "file-<id>" (protocol), device id <id>
 *   nics:   netdev "net-<id>", device id <id>
 *   cdroms: node "drive-<id>" when media is present, device id <id>
 *   vCPUs:  hot-pluggable; QEMU's query-hotpluggable-cpus gives the props
 *   memory: DIMMs "dimm<N>" backed by "mem-dimm<N>"
 *   q35:    spare "pcie-root-port" devices "hotplug<N>" (N = 0..QEMU_HOTPLUG_PORTS-1)
 *           for hot-added PCI devices; pc: bus "pci.0".  Boot-time PCI devices
 *           each sit on their own root port "pci.<k>" (k = 1, 2, ...).
 *   others: "balloon0", "scsi0" (bus "scsi0.0"), "virtio-serial0", "channel0",
 *           "video0", NUMA backends "ram-node<i>" (vm_def refuses these ids).
 *   qga:    chardev "qga0", serial chardev "serial0", monitor chardev "monitor". */
#ifndef STRATA_QEMU_ARGV_H
#define STRATA_QEMU_ARGV_H

#include "model/host_caps.h"
#include "model/vm_def.h"
#include "util/error.h"

#define QEMU_HOTPLUG_PORTS 8

/* Paths of the per-VM runtime files; chosen by the agent, all must be clean. */
struct qemu_runtime {
    const char *qmp_socket;     /* QMP monitor, unix socket, server */
    const char *qga_socket;     /* guest agent channel, unix socket, server */
    const char *serial_socket;  /* serial console, unix socket server (interactive) */
    const char *serial_log;     /* its output also appended here (logfile=) */
    const char *vnc_socket;     /* used when def->vnc == VNC_LISTEN_UNIX */
    int vnc_display;            /* used when def->vnc == VNC_LISTEN_LOOPBACK */
    const char *pidfile;
    int incoming_fd;            /* >= 0: add "-incoming fd:<n>" (restore); set -1
                                   otherwise (0 would mean stdin) */
    bool start_paused;          /* -S */
};

/* Returns a new NULL-terminated argv (free with strv_free) or NULL. */
char **qemu_argv_build(const struct vm_def *def, const struct host_caps *caps,
                       const struct qemu_runtime *rt, struct error **errp);

/* Escapes ',' as ",," for a QEMU option value.  Returns a new string. */
char *qemu_escape_opt(const char *value);

#endif
