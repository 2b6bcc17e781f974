/* test_hotplug_golden.c - golden test of the hot-plug QMP builders.
 *
 * Builds the QMP commands of a fixed script of hot-plug operations (attach
 * and detach of disks and NICs, DIMMs, a vCPU, cdrom media, balloon) and of
 * the refusals (sata hot-plug, odd DIMM size, plugged vCPU slot, no spare
 * port), and compares them with tests/golden/hotplug.qmp: one
 * {"execute":...,"arguments":...} per line, "# <step>" lines naming each step
 * and "! <message>" lines for expected errors.  REGENERATE=1 rewrites it.
 * The same commands, with real paths, were run against QEMU 7.2 (see
 * docs/vm-definition.md, "Hot-plug"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu/qemu_hotplug.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

static const char *const roots[] = { "/var/lib/strata/images", "/var/lib/strata/isos", NULL };
static const struct vm_def_limits limits = { .allowed_roots = roots };

struct out {
    char *text;
};

static void emit_line(struct out *o, const char *line)
{
    char *n = xasprintf("%s%s\n", o->text ? o->text : "", line);
    free(o->text);
    o->text = n;
}

static void step(struct out *o, const char *label)
{
    AUTOFREE char *l = xasprintf("# %s", label);
    emit_line(o, l);
}

/* Emits one command; takes ownership of 'args'.  NULL 'args' emits the error
 * in '*errp' instead (read here, after the builder ran) and frees it. */
static void cmd(struct out *o, const char *execute, json_t *args, struct error **errp)
{
    if (!args) {
        struct error *err = errp ? *errp : NULL;
        if (!err) {
            fprintf(stderr, "%s: builder failed without an error\n", execute);
            exit(1);
        }
        AUTOFREE char *l = xasprintf("! %s: %s", err_code_to_string(err->code), err->message);
        emit_line(o, l);
        error_free(err);
        *errp = NULL;
        return;
    }
    json_t *c = json_pack("{s:s, s:o}", "execute", execute, "arguments", args);
    char *s = json_dumps(c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    emit_line(o, s);
    free(s);
    json_decref(c);
}

static struct vm_def *parse_def(const char *text)
{
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *j = json_from_string(text, strlen(text), &err);
    struct vm_def *def = j ? vm_def_from_json(j, &limits, &err) : NULL;
    if (!def) {
        fprintf(stderr, "bad test definition: %s\n", err ? err->message : "?");
        exit(1);
    }
    return def;
}

static void disk_attach(struct out *o, const struct vm_disk *d, const char *bus)
{
    struct error *err = NULL;
    cmd(o, "blockdev-add", qemu_hotplug_disk_file_args(d), NULL);
    cmd(o, "blockdev-add", qemu_hotplug_disk_format_args(d), NULL);
    cmd(o, "device_add", qemu_hotplug_disk_device_args(d, bus, &err), &err);
}

static char *run_script(void)
{
    struct out o = { 0 };
    struct error *err = NULL;
    AUTOVMDEF struct vm_def *q35 = parse_def(
        "{\"name\":\"hp\",\"uuid\":\"6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c\",\"memory\":"
        "{\"mib\":512,\"max_mib\":1536,\"slots\":4},\"vcpus\":{\"count\":1,\"max\":4},"
        "\"disks\":[{\"id\":\"disk0\",\"path\":\"/var/lib/strata/images/hp.qcow2\","
        "\"format\":\"qcow2\"},{\"id\":\"disk9\",\"path\":\"/var/lib/strata/images/s.raw\","
        "\"format\":\"raw\",\"bus\":\"scsi\"}],\"cdroms\":[{\"id\":\"cd0\"}]}");
    AUTOVMDEF struct vm_def *pc = parse_def(
        "{\"name\":\"hp-pc\",\"uuid\":\"6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5d\",\"memory\":512,"
        "\"machine\":\"pc\"}");

    AUTOJSON json_t *disks = json_pack(
        "[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s, s:b}, {s:s, s:s, s:s, s:s, s:b},"
        " {s:s, s:s, s:s, s:s}]",
        "id", "data1", "path", "/var/lib/strata/images/data1.qcow2", "format", "qcow2",
        "cache", "writeback",
        "id", "shared1", "path", "/var/lib/strata/images/quorum.raw", "format", "raw",
        "bus", "scsi", "cache", "none", "shared", 1,
        "id", "ro1", "path", "/var/lib/strata/images/base.raw", "format", "raw",
        "serial", "RO-1", "readonly", 1,
        "id", "sata1", "path", "/var/lib/strata/images/sata.raw", "format", "raw", "bus",
        "sata");
    struct vm_disk d[4];
    for (size_t i = 0; i < 4; i++)
        if (vm_disk_from_json(json_array_get(disks, i), &limits, "disk", &d[i], &err) < 0) {
            fprintf(stderr, "bad test disk: %s\n", err->message);
            exit(1);
        }

    AUTOFREE char *bus0 = qemu_hotplug_bus(q35, 0, &err);
    AUTOFREE char *bus1 = qemu_hotplug_bus(q35, 1, &err);
    AUTOFREE char *bus7 = qemu_hotplug_bus(q35, 7, &err);
    AUTOFREE char *pcbus = qemu_hotplug_bus(pc, 5, &err);
    step(&o, "buses: q35 port 0, 1, 7; pc");
    emit_line(&o, bus0);
    emit_line(&o, bus1);
    emit_line(&o, bus7);
    emit_line(&o, pcbus);
    step(&o, "q35 has no port 8");
    char *none = qemu_hotplug_bus(q35, QEMU_HOTPLUG_PORTS, &err);
    cmd(&o, "-", NULL, &err);
    free(none);

    step(&o, "attach qcow2 virtio disk data1 (writeback) on hotplug0");
    disk_attach(&o, &d[0], bus0);
    step(&o, "attach shared raw scsi disk shared1 (cache none) on scsi0.0");
    disk_attach(&o, &d[1], "scsi0.0");
    step(&o, "attach read-only raw virtio disk ro1 with a serial on pc's pci.0");
    disk_attach(&o, &d[2], pcbus);
    step(&o, "sata disks cannot be hot-plugged");
    cmd(&o, "device_add", qemu_hotplug_disk_device_args(&d[3], "ide.2", &err), &err);
    step(&o, "detach disk data1");
    cmd(&o, "device_del", qemu_hotplug_device_del_args("data1"), NULL);
    cmd(&o, "blockdev-del", qemu_hotplug_disk_format_del_args("data1"), NULL);
    cmd(&o, "blockdev-del", qemu_hotplug_disk_file_del_args("data1"), NULL);

    AUTOJSON json_t *nics = json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]",
                                      "id", "nic1", "mac", "52:54:00:AB:cd:01", "tap", "tap-hp-1",
                                      "id", "nic2", "mac", "52:54:00:ab:cd:02", "tap", "tap-hp-2",
                                      "model", "e1000");
    struct vm_nic n[2];
    for (size_t i = 0; i < 2; i++)
        if (vm_nic_from_json(json_array_get(nics, i), "nic", &n[i], &err) < 0) {
            fprintf(stderr, "bad test NIC: %s\n", err->message);
            exit(1);
        }
    step(&o, "attach virtio NIC nic1 on hotplug1");
    cmd(&o, "netdev_add", qemu_hotplug_nic_netdev_args(&n[0]), NULL);
    cmd(&o, "device_add", qemu_hotplug_nic_device_args(&n[0], bus1), NULL);
    step(&o, "attach e1000 NIC nic2 on pc's pci.0");
    cmd(&o, "netdev_add", qemu_hotplug_nic_netdev_args(&n[1]), NULL);
    cmd(&o, "device_add", qemu_hotplug_nic_device_args(&n[1], pcbus), NULL);
    step(&o, "detach NIC nic1");
    cmd(&o, "device_del", qemu_hotplug_device_del_args("nic1"), NULL);
    cmd(&o, "netdev_del", qemu_hotplug_netdev_del_args("nic1"), NULL);

    step(&o, "hot-add DIMM 0 of 256 MiB");
    cmd(&o, "object-add", qemu_hotplug_dimm_backend_args(0, 256, &err), &err);
    cmd(&o, "device_add", qemu_hotplug_dimm_device_args(0), NULL);
    step(&o, "DIMM sizes are multiples of 128 MiB");
    cmd(&o, "object-add", qemu_hotplug_dimm_backend_args(1, 100, &err), &err);
    step(&o, "remove DIMM 0");
    cmd(&o, "device_del", qemu_hotplug_device_del_args("dimm0"), NULL);
    cmd(&o, "object-del", qemu_hotplug_object_del_args("mem-dimm0"), NULL);

    AUTOJSON json_t *free_cpu = json_pack(
        "{s:{s:i, s:i, s:i}, s:i, s:s}", "props", "core-id", 0, "thread-id", 0, "socket-id", 2,
        "vcpus-count", 1, "type", "max-x86_64-cpu");
    AUTOJSON json_t *used_cpu = json_pack(
        "{s:{s:i, s:i, s:i}, s:i, s:s, s:s}", "props", "core-id", 0, "thread-id", 0,
        "socket-id", 0, "vcpus-count", 1, "qom-path", "/machine/unattached/device[0]",
        "type", "max-x86_64-cpu");
    AUTOJSON json_t *bad_cpu = json_pack("{s:i}", "vcpus-count", 1);
    step(&o, "hot-add the vCPU of socket 2 as vcpu2");
    cmd(&o, "device_add", qemu_hotplug_vcpu_args(free_cpu, 2, &err), &err);
    step(&o, "a plugged vCPU slot is refused");
    cmd(&o, "device_add", qemu_hotplug_vcpu_args(used_cpu, 0, &err), &err);
    step(&o, "a malformed entry is refused");
    cmd(&o, "device_add", qemu_hotplug_vcpu_args(bad_cpu, 3, &err), &err);

    step(&o, "insert and eject the media of cd0");
    cmd(&o, "blockdev-change-medium",
        qemu_hotplug_cdrom_insert_args("cd0", "/var/lib/strata/isos/debian.iso"), NULL);
    cmd(&o, "eject", qemu_hotplug_cdrom_eject_args("cd0"), NULL);
    step(&o, "balloon to 384 MiB");
    cmd(&o, "balloon", qemu_hotplug_balloon_args(384), NULL);

    for (size_t i = 0; i < 4; i++)
        vm_disk_clear(&d[i]);
    for (size_t i = 0; i < 2; i++)
        vm_nic_clear(&n[i]);
    return o.text;
}

int main(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    if (!src) {
        fprintf(stderr, "STRATA_SRCDIR is not set\n");
        return 1;
    }
    AUTOFREE char *path = xasprintf("%s/tests/golden/hotplug.qmp", src);
    AUTOFREE char *got = run_script();
    AUTOERROR struct error *err = NULL;
    if (getenv("REGENERATE") && !strcmp(getenv("REGENERATE"), "1")) {
        if (file_write_atomic(path, got, strlen(got), 0644, &err) < 0) {
            fprintf(stderr, "FAIL: %s\n", err->message);
            return 1;
        }
        printf("regenerated %s\n", path);
        return 0;
    }
    AUTOFREE char *want = file_read_all(path, 1 << 20, NULL, &err);
    if (!want) {
        fprintf(stderr, "FAIL: %s (run with REGENERATE=1)\n", err->message);
        return 1;
    }
    if (strcmp(want, got)) {
        const char *w = want, *g = got;
        int line = 1;
        while (*w && *w == *g) {
            line += *w == '\n';
            w++;
            g++;
        }
        fprintf(stderr, "FAIL: hotplug.qmp differs at line %d\n  expected: %.*s\n  got:      %.*s\n",
                line, (int) strcspn(w, "\n"), w, (int) strcspn(g, "\n"), g);
        return 1;
    }
    printf("ok hotplug.qmp\n");
    return 0;
}
