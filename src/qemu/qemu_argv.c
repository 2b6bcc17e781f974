/* qemu_argv.c - the pure argv builder: vm_def + host_caps + runtime paths ->
 * the command line of one QEMU process (see qemu_argv.h for the contract and
 * the naming scheme, docs/vm-definition.md for the mapping of each field).
 *
 * The argv comes out in a fixed order: process options (-name, -uuid,
 * -nodefaults, -sandbox, -accel, -machine, -cpu, -m, -smp, NUMA), runtime
 * channels (pidfile, QMP monitor, serial, display), boot, then the device
 * tree: on q35 all pcie-root-ports first (one per PCI device, then the spare
 * "hotplug<N>" ports), then each device preceded by its backends.  Backends
 * and devices use QEMU's JSON syntax (built by qemu_device.c, shared with
 * hot-plug), so the only values that need comma escaping are those in the
 * classic option strings: runtime socket/log paths and the VM name.
 *
 * PCI layout on q35: VGA sits on pcie.0 at 0x1 (it is never unplugged); root
 * port k sits at slot 0x2 + k/8, function k%8 (multifunction on function 0),
 * chassis k+1, port 0x10+k.  Ports carry io-reserve=0 unless the device
 * behind them needs I/O space (e1000, rtl8139): modern virtio devices need
 * none, and SeaBIOS's 4 KiB-per-port default runs out of I/O space after a
 * dozen ports.  On pc every device goes on pci.0 and QEMU picks the slots. */
#include "qemu/qemu_argv.h"

#include <stdarg.h>
#include <string.h>

#include "qemu/qemu_device.h"
#include "util/fileutil.h"
#include "util/mem.h"

struct argv {
    char **v;
    size_t n, cap;
};

static void arg_take(struct argv *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void arg(struct argv *a, const char *s)
{
    arg_take(a, xstrdup(s));
}

static void __attribute__((format(printf, 2, 3))) argf(struct argv *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    arg_take(a, xvasprintf(fmt, ap));
    va_end(ap);
}

/* Adds 'opt' followed by the compact JSON of 'j'; takes ownership of 'j'. */
static void arg_json(struct argv *a, const char *opt, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        abort();
    json_decref(j);
    arg(a, opt);
    arg_take(a, s);
}

static void argv_move(struct argv *dst, struct argv *src)
{
    for (size_t i = 0; i < src->n; i++)
        arg_take(dst, src->v[i]);
    free(src->v);
    memset(src, 0, sizeof(*src));
}

char *qemu_escape_opt(const char *value)
{
    size_t commas = 0;
    for (const char *p = value; *p; p++)
        commas += *p == ',';
    char *out = xmalloc(strlen(value) + commas + 1), *o = out;
    for (const char *p = value; *p; p++) {
        *o++ = *p;
        if (*p == ',')
            *o++ = ',';
    }
    *o = '\0';
    return out;
}

/* ---- PCI placement ---- */

struct pci_plan {
    bool q35;
    unsigned n_ports;
    struct argv ports;      /* "-device" "{pcie-root-port}" pairs */
};

/* Returns the bus for a new PCI device (a new string): on q35 a new root port
 * "pci.<k>" (or "hotplug<N>" when 'spare_index' >= 0); on pc "pci.0". */
static char *pci_bus_new(struct pci_plan *p, int spare_index, bool needs_io)
{
    if (!p->q35)
        return xstrdup("pci.0");
    unsigned k = p->n_ports++;
    char *id = spare_index >= 0 ? qemu_hotplug_port_name((unsigned) spare_index)
                                : xasprintf("pci.%u", k + 1);
    AUTOFREE char *addr = xasprintf("0x%x.0x%x", 2 + k / 8, k % 8);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "driver", "pcie-root-port",
                          "id", id, "bus", "pcie.0", "chassis", (int) k + 1,
                          "port", (int) (0x10 + k), "addr", addr);
    if (k % 8 == 0)
        json_object_set_new(j, "multifunction", json_true());
    if (!needs_io)
        json_object_set_new(j, "io-reserve", json_integer(0));
    arg_json(&p->ports, "-device", j);
    return id;
}

/* IDE/SATA slot k: q35 AHCI "ide.<k>" (no unit), pc PIIX "ide.<k/2>" unit k%2. */
static char *ide_bus(bool q35, unsigned k, int *unit)
{
    *unit = q35 ? -1 : (int) (k % 2);
    return xasprintf("ide.%u", q35 ? k : k / 2);
}

/* ---- runtime checks ---- */

static int check_rt_path(const char *path, const char *name, bool required, struct error **errp)
{
    AUTOFREE char *field = xasprintf("runtime.%s", name);
    if (!path) {
        if (required)
            return error_set_field(errp, ERR_INVALID_ARG, field, "runtime path %s is missing",
                                   name);
        return 0;
    }
    if (!path_is_clean(path))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "runtime path %s '%s' is not a clean absolute path", name, path);
    return 0;
}

static int check_runtime(const struct vm_def *def, const struct host_caps *caps,
                         const struct qemu_runtime *rt, struct error **errp)
{
    if (!caps->qemu_binary || !*caps->qemu_binary)
        return error_set(errp, ERR_INVALID_ARG, "host capabilities name no QEMU binary");
    if (check_rt_path(rt->qmp_socket, "qmp_socket", true, errp) < 0 ||
        check_rt_path(rt->pidfile, "pidfile", false, errp) < 0 ||
        check_rt_path(rt->qga_socket, "qga_socket", def->guest_agent, errp) < 0 ||
        check_rt_path(rt->serial_socket, "serial_socket", def->serial, errp) < 0 ||
        check_rt_path(rt->serial_log, "serial_log", false, errp) < 0 ||
        check_rt_path(rt->vnc_socket, "vnc_socket", def->vnc == VNC_LISTEN_UNIX, errp) < 0)
        return -1;
    if (def->vnc == VNC_LISTEN_LOOPBACK && (rt->vnc_display < 0 || rt->vnc_display > 59000))
        return error_set_field(errp, ERR_INVALID_ARG, "runtime.vnc_display",
                               "VNC display %d is out of range 0-59000", rt->vnc_display);
    return 0;
}

/* ---- sections ---- */

static void add_process_options(struct argv *a, const struct vm_def *def,
                                const struct host_caps *caps)
{
    AUTOFREE char *name = qemu_escape_opt(def->name);
    arg(a, caps->qemu_binary);
    arg(a, "-name");
    argf(a, "guest=%s,debug-threads=on", name);
    arg(a, "-uuid");
    arg(a, def->uuid);
    arg(a, "-nodefaults");
    arg(a, "-no-user-config");
    if (caps->sandbox) {
        arg(a, "-sandbox");
        arg(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
    }
    arg(a, "-accel");
    arg(a, accel_to_string(caps->accel));
    arg(a, "-machine");
    arg(a, def->machine);
    arg(a, "-cpu");
    arg(a, caps->accel == ACCEL_TCG && !strcmp(def->cpu_model, "host") ? "max" : def->cpu_model);
    arg(a, "-m");
    if (def->max_mem_mib > def->mem_mib)
        argf(a, "size=%lluM,slots=%u,maxmem=%lluM", def->mem_mib, def->mem_slots,
             def->max_mem_mib);
    else
        argf(a, "size=%lluM", def->mem_mib);
    arg(a, "-smp");
    argf(a, "%u,maxcpus=%u,sockets=%u,cores=%u,threads=%u", def->vcpus, def->max_vcpus,
         def->sockets, def->cores, def->threads);
    for (size_t i = 0; i < def->n_numa; i++) {
        const struct vm_numa_node *n = &def->numa[i];
        AUTOFREE char *id = xasprintf("ram-node%zu", i);
        arg_json(a, "-object", qemu_ram_backend(id, n->mem_mib));
        arg(a, "-numa");
        if (n->cpu_first == n->cpu_last)
            argf(a, "node,nodeid=%zu,cpus=%u,memdev=%s", i, n->cpu_first, id);
        else
            argf(a, "node,nodeid=%zu,cpus=%u-%u,memdev=%s", i, n->cpu_first, n->cpu_last, id);
    }
}

static void add_chardev_socket(struct argv *a, const char *id, const char *path,
                               const char *logfile)
{
    AUTOFREE char *p = qemu_escape_opt(path);
    arg(a, "-chardev");
    if (logfile) {
        AUTOFREE char *l = qemu_escape_opt(logfile);
        argf(a, "socket,id=%s,path=%s,server=on,wait=off,logfile=%s,logappend=on", id, p, l);
    } else {
        argf(a, "socket,id=%s,path=%s,server=on,wait=off", id, p);
    }
}

static void add_runtime_channels(struct argv *a, const struct vm_def *def,
                                 const struct qemu_runtime *rt)
{
    if (rt->pidfile) {
        arg(a, "-pidfile");
        arg(a, rt->pidfile);
    }
    add_chardev_socket(a, "monitor", rt->qmp_socket, NULL);
    arg(a, "-mon");
    arg(a, "chardev=monitor,mode=control");
    if (def->serial) {
        add_chardev_socket(a, "serial0", rt->serial_socket, rt->serial_log);
        arg(a, "-serial");
        arg(a, "chardev:serial0");
    }
    if (def->vnc == VNC_LISTEN_NONE) {
        arg(a, "-display");
        arg(a, "none");
    } else if (def->vnc == VNC_LISTEN_UNIX) {
        AUTOFREE char *p = qemu_escape_opt(rt->vnc_socket);
        arg(a, "-vnc");
        argf(a, "unix:%s", p);
    } else {
        arg(a, "-vnc");
        argf(a, "127.0.0.1:%d%s", rt->vnc_display, def->vnc_websocket ? ",websocket=on" : "");
    }
}

static void add_boot(struct argv *a, const struct vm_def *def)
{
    if (def->kernel) {
        arg(a, "-kernel");
        arg(a, def->kernel);
        if (def->initrd) {
            arg(a, "-initrd");
            arg(a, def->initrd);
        }
        if (def->cmdline) {
            arg(a, "-append");
            arg(a, def->cmdline);
        }
        return;
    }
    arg(a, "-boot");
    arg(a, "strict=on");
}

/* Boot indexes, 1-based in boot order: every disk, then every cdrom, then
 * every NIC of each boot device class; 0 for none (direct kernel boot). */
struct bootidx {
    unsigned disk[VM_MAX_DISKS], cdrom[VM_MAX_DISKS], nic[VM_MAX_NICS];
};

static void compute_bootindex(const struct vm_def *def, struct bootidx *b)
{
    memset(b, 0, sizeof(*b));
    if (def->kernel)
        return;
    unsigned next = 1;
    for (size_t o = 0; o < def->n_boot; o++) {
        switch (def->boot_order[o]) {
        case BOOT_DEV_DISK:
            for (size_t i = 0; i < def->n_disks && i < VM_MAX_DISKS; i++)
                b->disk[i] = next++;
            break;
        case BOOT_DEV_CDROM:
            for (size_t i = 0; i < def->n_cdroms && i < VM_MAX_DISKS; i++)
                b->cdrom[i] = next++;
            break;
        case BOOT_DEV_NETWORK:
            for (size_t i = 0; i < def->n_nics && i < VM_MAX_NICS; i++)
                b->nic[i] = next++;
            break;
        case BOOT_DEV__COUNT:
            break;
        }
    }
}

static void add_devices(struct argv *a, const struct vm_def *def, const struct qemu_runtime *rt)
{
    struct pci_plan pci = { .q35 = vm_machine_is_q35(def->machine) };
    struct argv dev = { 0 };
    struct bootidx boot;
    compute_bootindex(def, &boot);

    if (def->vnc != VNC_LISTEN_NONE)
        arg_json(&dev, "-device",
                 pci.q35 ? json_pack("{s:s, s:s, s:s, s:s}", "driver", "VGA", "id", "video0",
                                     "bus", "pcie.0", "addr", "0x1")
                         : json_pack("{s:s, s:s, s:s}", "driver", "VGA", "id", "video0",
                                     "bus", "pci.0"));

    bool any_scsi = false;
    for (size_t i = 0; i < def->n_disks; i++)
        any_scsi |= def->disks[i].bus == DISK_BUS_SCSI;
    if (any_scsi) {
        AUTOFREE char *bus = pci_bus_new(&pci, -1, false);
        arg_json(&dev, "-device", json_pack("{s:s, s:s, s:s}", "driver", "virtio-scsi-pci",
                                            "id", QEMU_SCSI_CONTROLLER, "bus", bus));
    }
    if (def->guest_agent) {
        AUTOFREE char *bus = pci_bus_new(&pci, -1, false);
        arg_json(&dev, "-device", json_pack("{s:s, s:s, s:s}", "driver", "virtio-serial-pci",
                                            "id", "virtio-serial0", "bus", bus));
        add_chardev_socket(&dev, "qga0", rt->qga_socket, NULL);
        arg_json(&dev, "-device",
                 json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "driver", "virtserialport",
                           "id", "channel0", "bus", "virtio-serial0.0", "nr", 1,
                           "chardev", "qga0", "name", "org.qemu.guest_agent.0"));
    }

    unsigned ide_next = 0, scsi_next = 0;
    for (size_t i = 0; i < def->n_disks; i++) {
        const struct vm_disk *d = &def->disks[i];
        arg_json(&dev, "-blockdev", qemu_file_node(d->id, d->path, d->cache, d->readonly));
        arg_json(&dev, "-blockdev", qemu_format_node(d->id, d->format, d->cache, d->readonly));
        AUTOFREE char *bus = NULL;
        int unit = -1;
        if (d->bus == DISK_BUS_VIRTIO) {
            bus = pci_bus_new(&pci, -1, false);
        } else if (d->bus == DISK_BUS_SCSI) {
            bus = xstrdup(QEMU_SCSI_BUS);
            unit = (int) scsi_next++;
        } else {
            bus = ide_bus(pci.q35, ide_next++, &unit);
        }
        arg_json(&dev, "-device", qemu_disk_device(d, bus, unit, boot.disk[i]));
    }
    for (size_t i = 0; i < def->n_cdroms; i++) {
        const struct vm_cdrom *c = &def->cdroms[i];
        if (c->path) {
            arg_json(&dev, "-blockdev", qemu_file_node(c->id, c->path, DISK_CACHE_WRITEBACK,
                                                       true));
            arg_json(&dev, "-blockdev", qemu_format_node(c->id, DISK_FORMAT_RAW,
                                                         DISK_CACHE_WRITEBACK, true));
        }
        int unit;
        AUTOFREE char *bus = ide_bus(pci.q35, ide_next++, &unit);
        arg_json(&dev, "-device", qemu_cdrom_device(c, c->path != NULL, bus, unit, boot.cdrom[i]));
    }
    for (size_t i = 0; i < def->n_nics; i++) {
        const struct vm_nic *n = &def->nics[i];
        arg_json(&dev, "-netdev", qemu_nic_netdev(n));
        AUTOFREE char *bus = pci_bus_new(&pci, -1, n->model != NIC_MODEL_VIRTIO);
        arg_json(&dev, "-device", qemu_nic_device(n, bus, boot.nic[i]));
    }
    if (def->balloon) {
        AUTOFREE char *bus = pci_bus_new(&pci, -1, false);
        arg_json(&dev, "-device", json_pack("{s:s, s:s, s:s}", "driver", "virtio-balloon-pci",
                                            "id", "balloon0", "bus", bus));
    }
    if (pci.q35)
        for (int i = 0; i < QEMU_HOTPLUG_PORTS; i++)
            free(pci_bus_new(&pci, i, false));

    argv_move(a, &pci.ports);
    argv_move(a, &dev);
}

char **qemu_argv_build(const struct vm_def *def, const struct host_caps *caps,
                       const struct qemu_runtime *rt, struct error **errp)
{
    if (check_runtime(def, caps, rt, errp) < 0)
        return NULL;
    struct argv a = { 0 };
    add_process_options(&a, def, caps);
    add_runtime_channels(&a, def, rt);
    add_boot(&a, def);
    add_devices(&a, def, rt);
    if (rt->start_paused)
        arg(&a, "-S");
    if (rt->incoming_fd >= 0) {
        arg(&a, "-incoming");
        argf(&a, "fd:%d", rt->incoming_fd);
    }
    return a.v;
}
