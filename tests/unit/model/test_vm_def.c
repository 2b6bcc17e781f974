/* test_vm_def.c - unit tests of VM definition parsing (model/vm_def.c).
 *
 * Bad definitions are table-driven: each case is a JSON merge patch (RFC 7386:
 * objects merge, null deletes a key, arrays replace) applied to one valid base
 * definition, with the JSON path the error must name and a substring of its
 * message.  Single quotes in the case text stand for double quotes.  Good
 * definitions must survive from_json -> to_json -> from_json unchanged, and
 * vm_def_copy() must give the same canonical JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "model/vm_def.h"
#include "util/json_util.h"
#include "util/mem.h"

static const char *const roots[] = {
    "/var/lib/strata/images", "/var/lib/strata/isos", "/var/lib/strata/kernels", NULL
};
static const struct vm_def_limits limits = { .allowed_roots = roots };

static const char base_def[] =
    "{'name': 'web1', 'uuid': '6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c',"
    " 'vcpus': {'count': 2, 'max': 4, 'sockets': 2, 'cores': 2, 'threads': 1},"
    " 'memory': {'mib': 512, 'max_mib': 1024, 'slots': 4},"
    " 'cpu': {'model': 'host'}, 'machine': 'q35',"
    " 'boot': {'order': ['disk', 'cdrom']},"
    " 'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/web1.qcow2',"
    "            'format': 'qcow2'}],"
    " 'cdroms': [{'id': 'cd0', 'path': null}],"
    " 'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 'tap-web1-0'}],"
    " 'serial': true, 'vnc': {'listen': 'unix'}, 'balloon': true, 'guest_agent': true}";

/* Parses 'text' with ' standing for ". */
static json_t *jq(const char *text)
{
    AUTOFREE char *t = xstrdup(text);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_error_t je;
    json_t *j = json_loads(t, 0, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, t);
    return j;
}

static void merge_patch(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *) patch, key, v) {
        json_t *t = json_object_get(target, key);
        if (json_is_null(v))
            json_object_del(target, key);
        else if (json_is_object(v) && json_is_object(t))
            merge_patch(t, v);
        else
            json_object_set(target, key, v);
    }
}

static json_t *patched(const char *patch)
{
    json_t *base = jq(base_def);
    AUTOJSON json_t *p = jq(patch);
    merge_patch(base, p);
    return base;
}

struct bad_case {
    const char *name;
    const char *patch;
    const char *field;      /* expected error field */
    const char *message;    /* expected substring of the message */
};

#define DISK(extra) \
    "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/a.raw', 'format': 'raw'" extra "}]}"
#define NIC2(a, b) "{'nics': [{'id': 'nic0', 'mac': " a ", 'tap': 'tap0'}, {'id': 'nic1', 'mac': " b ", 'tap': 'tap1'}]}"

static const struct bad_case bad_cases[] = {
    /* paths */
    { "path-traversal",
      "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/../../etc/passwd', "
      "'format': 'raw'}]}", "disks[0].path", "is not clean" },
    { "path-comma", "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/a,b.raw', "
      "'format': 'raw'}]}", "disks[0].path", "contains ','" },
    { "path-equals", "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/a=b.raw', "
      "'format': 'raw'}]}", "disks[0].path", "contains '='" },
    { "path-colon", "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images/nbd:x', "
      "'format': 'raw'}]}", "disks[0].path", "contains ':'" },
    { "path-outside-roots", "{'disks': [{'id': 'disk0', 'path': '/etc/passwd', "
      "'format': 'raw'}]}", "disks[0].path", "outside the allowed directories" },
    { "path-root-itself", "{'disks': [{'id': 'disk0', 'path': '/var/lib/strata/images', "
      "'format': 'raw'}]}", "disks[0].path", "outside the allowed directories" },
    { "path-sibling-prefix", "{'disks': [{'id': 'disk0', "
      "'path': '/var/lib/strata/images2/a.raw', 'format': 'raw'}]}", "disks[0].path",
      "outside the allowed directories" },
    { "path-relative", "{'disks': [{'id': 'disk0', 'path': 'images/a.raw', 'format': 'raw'}]}",
      "disks[0].path", "is not absolute" },
    { "path-trailing-slash", "{'disks': [{'id': 'disk0', "
      "'path': '/var/lib/strata/images/a/', 'format': 'raw'}]}", "disks[0].path", "not clean" },
    { "path-control-char", "{'disks': [{'id': 'disk0', "
      "'path': '/var/lib/strata/images/a\\nb', 'format': 'raw'}]}", "disks[0].path",
      "control character 0x0a" },
    { "cdrom-path-traversal", "{'cdroms': [{'id': 'cd0', 'path': '/var/lib/strata/isos/../x'}]}",
      "cdroms[0].path", "is not clean" },
    { "kernel-outside-roots", "{'boot': {'order': null, 'kernel': '/boot/vmlinuz'}}",
      "boot.kernel", "outside the allowed directories" },
    { "initrd-comma", "{'boot': {'order': null, 'kernel': '/var/lib/strata/kernels/k', "
      "'initrd': '/var/lib/strata/kernels/i,x'}}", "boot.initrd", "contains ','" },
    /* names, ids, taps, serials */
    { "name-comma", "{'name': 'web,1'}", "name", "contains ','" },
    { "name-equals", "{'name': 'web=1'}", "name", "contains '='" },
    { "name-dotdot", "{'name': 'a..b'}", "name", "must not contain '..'" },
    { "name-leading-dot", "{'name': '.hidden'}", "name", "must start with a letter or a digit" },
    { "name-too-long",
      "{'name': 'a1234567890123456789012345678901234567890123456789012345678901234'}", "name",
      "65 bytes long" },
    { "name-empty", "{'name': ''}", "name", "must not be empty" },
    { "name-missing", "{'name': null}", "name", "missing field 'name'" },
    { "name-not-string", "{'name': 5}", "name", "must be a string" },
    { "id-comma", "{'nics': [{'id': 'nic,0', 'mac': '52:54:00:12:34:56', 'tap': 'tap0'}]}",
      "nics[0].id", "contains ','" },
    { "id-equals", DISK(", 'id': 'd=0'"), "disks[0].id", "contains '='" },
    { "id-uppercase", DISK(", 'id': 'Disk0'"), "disks[0].id", "must start with a lowercase" },
    { "id-too-long", DISK(", 'id': 'd12345678901234567890123456789012'"), "disks[0].id",
      "33 bytes long" },
    { "id-reserved", DISK(", 'id': 'balloon0'"), "disks[0].id", "reserved" },
    { "id-reserved-hotplug", DISK(", 'id': 'hotplug3'"), "disks[0].id", "reserved" },
    { "id-duplicate", "{'cdroms': [{'id': 'disk0'}]}", "cdroms[0].id",
      "'disk0' is already used by disks[0].id" },
    { "tap-slash", "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 'tap/0'}]}",
      "nics[0].tap", "contains '/'" },
    { "tap-too-long",
      "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 'tap-0123456789ab'}]}",
      "nics[0].tap", "1 to 15 bytes" },
    { "tap-comma", "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 't,0'}]}",
      "nics[0].tap", "contains ','" },
    { "tap-duplicate", "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 't0'},"
      " {'id': 'nic1', 'mac': '52:54:00:12:34:57', 'tap': 't0'}]}", "nics[1].tap",
      "already used by nics[0].tap" },
    { "serial-comma", DISK(", 'serial': 'a,b'"), "disks[0].serial", "contains ','" },
    { "serial-too-long", DISK(", 'serial': '123456789012345678901'"), "disks[0].serial",
      "1 to 20 bytes" },
    /* unknown keys */
    { "unknown-top-key", "{'colour': 'red'}", "colour", "unknown field 'colour'" },
    { "unknown-nested-key", "{'memory': {'hugepages': true}}", "memory.hugepages",
      "unknown field" },
    { "unknown-disk-key", DISK(", 'aio': 'native'"), "disks[0].aio", "unknown field" },
    { "unknown-vnc-key", "{'vnc': {'password': 'x'}}", "vnc.password", "unknown field" },
    { "unknown-boot-key", "{'boot': {'menu': true}}", "boot.menu", "unknown field" },
    /* sizes and numbers */
    { "memory-negative", "{'memory': -1}", "memory", "is -1, must be between 16" },
    { "memory-huge", "{'memory': {'mib': 1152921504606846976}}", "memory.mib",
      "1152921504606846976" },
    { "memory-too-small", "{'memory': 8}", "memory", "is 8, must be between 16" },
    { "memory-fraction", "{'memory': 512.5}", "memory", "must be an integer" },
    { "memory-max-below", "{'memory': {'max_mib': 256}}", "memory.max_mib", "less than" },
    { "memory-no-slots", "{'memory': {'slots': null}}", "memory.slots", "needs memory.slots" },
    { "memory-too-many-slots", "{'memory': {'slots': 256}}", "memory.slots",
      "between 0 and 255" },
    { "memory-misaligned", "{'memory': {'max_mib': 1000}}", "memory.max_mib",
      "multiple of 128" },
    { "memory-slots-no-room", "{'memory': {'max_mib': 512}}", "memory.slots",
      "nothing to hot-plug" },
    { "numa-mem-huge", "{'numa': [{'cpus': '0-3', 'mem_mib': 9007199254740993}]}",
      "numa[0].mem_mib", "9007199254740993" },
    { "vcpus-zero", "{'vcpus': 0}", "vcpus", "is 0, must be between 1" },
    { "vcpus-too-many", "{'vcpus': 256}", "vcpus", "between 1 and 255" },
    { "vcpus-negative", "{'vcpus': {'count': -2}}", "vcpus.count", "is -2" },
    { "vcpus-count-over-max", "{'vcpus': {'count': 4, 'max': 2, 'sockets': null, "
      "'cores': null}}", "vcpus.max", "vcpus.max 2 is less than vcpus.count 4" },
    { "vcpus-topology", "{'vcpus': {'sockets': 3}}", "vcpus", "does not equal vcpus.max 4" },
    { "vcpus-string", "{'vcpus': 'two'}", "vcpus", "must be an integer or an object" },
    /* MACs */
    { "mac-duplicate", NIC2("'52:54:00:12:34:56'", "'52:54:00:12:34:56'"), "nics[1].mac",
      "already used by nics[0].mac" },
    { "mac-duplicate-case", NIC2("'52:54:00:ab:34:56'", "'52:54:00:AB:34:56'"), "nics[1].mac",
      "already used" },
    { "mac-multicast", "{'nics': [{'id': 'nic0', 'mac': '01:00:5e:00:00:01', 'tap': 't'}]}",
      "nics[0].mac", "multicast" },
    { "mac-broadcast", "{'nics': [{'id': 'nic0', 'mac': 'ff:ff:ff:ff:ff:ff', 'tap': 't'}]}",
      "nics[0].mac", "multicast" },
    { "mac-zero", "{'nics': [{'id': 'nic0', 'mac': '00:00:00:00:00:00', 'tap': 't'}]}",
      "nics[0].mac", "all zeros" },
    { "mac-malformed", "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34', 'tap': 't'}]}",
      "nics[0].mac", "not of the form" },
    { "mac-dashes", "{'nics': [{'id': 'nic0', 'mac': '52-54-00-12-34-56', 'tap': 't'}]}",
      "nics[0].mac", "not of the form" },
    { "nic-model", "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 't', "
      "'model': 'ne2k'}]}", "nics[0].model", "'ne2k' is not one of" },
    /* NIC network (docs/network.md) */
#define NICNET(net) "{'nics': [{'id': 'nic0', 'mac': '52:54:00:12:34:56', 'tap': 't', " \
    "'network': " net "}]}"
    { "net-not-object", NICNET("'dvs1'"), "nics[0].network", "must be an object" },
    { "net-empty", NICNET("{}"), "nics[0].network", "either 'dvs' and 'portgroup', or 'nat'" },
    { "net-unknown-key", NICNET("{'nat': 'default', 'vlan': 5}"), "nics[0].network.vlan",
      "unknown" },
    { "net-dvs-and-nat", NICNET("{'dvs': 'd', 'portgroup': 'p', 'nat': 'default'}"),
      "nics[0].network.nat", "not both" },
    { "net-dvs-no-pg", NICNET("{'dvs': 'd'}"), "nics[0].network.portgroup",
      "needs a port group" },
    { "net-nat-with-pg", NICNET("{'nat': 'n', 'portgroup': 'p'}"), "nics[0].network.portgroup",
      "has no port group" },
    { "net-name-slash", NICNET("{'dvs': 'd/1', 'portgroup': 'p'}"), "nics[0].network.dvs",
      "contains '/'" },
    { "net-name-dash-first", NICNET("{'dvs': 'd', 'portgroup': '-p'}"),
      "nics[0].network.portgroup", "must start with a letter or a digit" },
    { "net-name-long", NICNET("{'nat': 'n23456789012345678901234567890123'}"),
      "nics[0].network.nat", "1 to 32 bytes" },
    { "net-sg-comma", NICNET("{'nat': 'n', 'security_group': 'a,b'}"),
      "nics[0].network.security_group", "contains ','" },
    { "net-ips-not-array", NICNET("{'nat': 'n', 'ips': '10.0.0.1'}"), "nics[0].network.ips",
      "must be an array" },
    { "net-ip-bad", NICNET("{'nat': 'n', 'ips': ['10.0.0.256']}"), "nics[0].network.ips[0]",
      "not an IPv4 address" },
    { "net-ip-v6", NICNET("{'nat': 'n', 'ips': ['fe80::1']}"), "nics[0].network.ips[0]",
      "not an IPv4 address" },
    { "net-ip-multicast", NICNET("{'nat': 'n', 'ips': ['10.0.0.1', '224.0.0.1']}"),
      "nics[0].network.ips[1]", "not a unicast address" },
    { "net-ip-twice", NICNET("{'nat': 'n', 'ips': ['10.0.0.1', '10.0.0.1']}"),
      "nics[0].network.ips[1]", "listed twice" },
    { "net-ips-too-many", NICNET("{'nat': 'n', 'ips': ['10.0.0.1', '10.0.0.2', '10.0.0.3', "
      "'10.0.0.4', '10.0.0.5', '10.0.0.6', '10.0.0.7', '10.0.0.8', '10.0.0.9']}"),
      "nics[0].network.ips", "at most 8" },
    /* disks */
    { "disk-missing-format", "{'disks': [{'id': 'disk0', 'path': "
      "'/var/lib/strata/images/a.raw'}]}", "disks[0].format", "missing field" },
    { "disk-unknown-format", DISK(", 'format': 'vmdk'"), "disks[0].format",
      "'vmdk' is not one of 'raw', 'qcow2'" },
    { "disk-shared-qcow2", DISK(", 'format': 'qcow2', 'shared': true"), "disks[0].shared",
      "shared disks must be raw" },
    { "disk-shared-writeback", DISK(", 'shared': true, 'cache': 'writeback'"), "disks[0].cache",
      "shared disks need 'none' or 'directsync'" },
    { "disk-readonly-sata", DISK(", 'bus': 'sata', 'readonly': true"), "disks[0].readonly",
      "ide-hd refuses" },
    { "disk-bad-bus", DISK(", 'bus': 'ide'"), "disks[0].bus", "not one of" },
    { "disk-bad-cache", DISK(", 'cache': 'fast'"), "disks[0].cache", "not one of" },
    { "disk-readonly-string", DISK(", 'readonly': 'yes'"), "disks[0].readonly",
      "must be true or false" },
    { "disk-duplicate-path", "{'disks': [{'id': 'a', 'path': '/var/lib/strata/images/x.raw', "
      "'format': 'raw'}, {'id': 'b', 'path': '/var/lib/strata/images/x.raw', 'format': 'raw'}]}",
      "disks[1].path", "already used by disks[0].path" },
    { "disks-not-array", "{'disks': {'id': 'disk0'}}", "disks", "must be an array" },
    { "disk-not-object", "{'disks': ['disk0']}", "disks[0]", "must be an object" },
    { "ide-slots-pc", "{'machine': 'pc', 'disks': ["
      "{'id': 'a', 'path': '/var/lib/strata/images/a', 'format': 'raw', 'bus': 'sata'},"
      "{'id': 'b', 'path': '/var/lib/strata/images/b', 'format': 'raw', 'bus': 'sata'},"
      "{'id': 'c', 'path': '/var/lib/strata/images/c', 'format': 'raw', 'bus': 'sata'}],"
      "'cdroms': [{'id': 'cd0'}, {'id': 'cd1'}]}", "cdroms[1]", "has only 4" },
    /* machine, cpu */
    { "machine-bad", "{'machine': 'virt'}", "machine", "'virt' is not one of" },
    { "machine-suffix", "{'machine': 'pc-q35-7.2,accel=kvm'}", "machine", "is not one of" },
    { "machine-empty-version", "{'machine': 'pc-q35-'}", "machine", "is not one of" },
    { "cpu-model-comma", "{'cpu': {'model': 'host,+vmx'}}", "cpu.model", "contains ','" },
    { "cpu-model-empty", "{'cpu': {'model': ''}}", "cpu.model", "1 to 63 bytes" },
    /* NUMA */
    { "numa-not-covering", "{'numa': [{'cpus': '0-1', 'mem_mib': 512}]}", "numa",
      "vCPU 2 is in no NUMA node" },
    { "numa-memory-sum", "{'numa': [{'cpus': '0-1', 'mem_mib': 256}, "
      "{'cpus': '2-3', 'mem_mib': 128}]}", "numa", "sums to 384 MiB but memory.mib is 512" },
    { "numa-overlap", "{'numa': [{'cpus': '0-2', 'mem_mib': 256}, "
      "{'cpus': '2-3', 'mem_mib': 256}]}", "numa[1].cpus", "already in numa[0]" },
    { "numa-beyond-max", "{'numa': [{'cpus': '0-4', 'mem_mib': 512}]}", "numa[0].cpus",
      "beyond the last vCPU 3" },
    { "numa-bad-range", "{'numa': [{'cpus': '3-1', 'mem_mib': 512}]}", "numa[0].cpus",
      "not a vCPU index" },
    { "numa-zero-mem", "{'numa': [{'cpus': '0-3', 'mem_mib': 0}]}", "numa[0].mem_mib",
      "is 0" },
    /* uuid */
    { "uuid-bad", "{'uuid': 'not-a-uuid'}", "uuid", "'not-a-uuid' is not of the form" },
    { "uuid-nil", "{'uuid': '00000000-0000-0000-0000-000000000000'}", "uuid", "nil UUID" },
    /* boot */
    { "cmdline-control", "{'boot': {'order': null, 'kernel': '/var/lib/strata/kernels/k', "
      "'cmdline': 'console=ttyS0\\u0007'}}", "boot.cmdline", "non-printable byte 0x07" },
    { "cmdline-without-kernel", "{'boot': {'cmdline': 'quiet'}}", "boot.cmdline",
      "without boot.kernel" },
    { "initrd-without-kernel", "{'boot': {'initrd': '/var/lib/strata/kernels/i'}}",
      "boot.initrd", "without boot.kernel" },
    { "kernel-and-order", "{'boot': {'kernel': '/var/lib/strata/kernels/k'}}", "boot.order",
      "exclusive" },
    { "boot-order-dup", "{'boot': {'order': ['disk', 'disk']}}", "boot.order[1]",
      "listed twice" },
    { "boot-order-unknown", "{'boot': {'order': ['floppy']}}", "boot.order[0]",
      "'floppy' is not one of" },
    { "boot-order-empty", "{'boot': {'order': []}}", "boot.order", "at least one" },
    /* display and flags */
    { "vnc-websocket-unix", "{'vnc': {'websocket': true}}", "vnc.websocket",
      "needs vnc.listen 'loopback'" },
    { "vnc-listen-bad", "{'vnc': {'listen': 'public'}}", "vnc.listen", "'public' is not one of" },
    { "serial-string", "{'serial': 'yes'}", "serial", "must be true or false" },
};

static void test_bad_definition(void **state)
{
    const struct bad_case *c = *state;
    AUTOJSON json_t *j = patched(c->patch);
    AUTOERROR struct error *err = NULL;
    AUTOVMDEF struct vm_def *def = vm_def_from_json(j, &limits, &err);
    if (def)
        fail_msg("case %s: accepted", c->name);
    assert_non_null(err);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    if (!err->field || strcmp(err->field, c->field))
        fail_msg("case %s: field '%s', expected '%s' (message: %s)", c->name,
                 err->field ? err->field : "(none)", c->field, err->message);
    if (!strstr(err->message, c->message))
        fail_msg("case %s: message '%s' lacks '%s'", c->name, err->message, c->message);
    if (strchr(err->message, '\n'))
        fail_msg("case %s: message spans lines", c->name);
}

/* Cases built in code: too many devices, an over-long cmdline, limits. */
static void test_bad_generated(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *j = patched("{}");
    json_t *disks = json_array();
    for (int i = 0; i <= VM_MAX_DISKS; i++)
        json_array_append_new(disks, json_pack("{s:s, s:s, s:s}", "id", "d", "path", "/x",
                                               "format", "raw"));
    json_object_set_new(j, "disks", disks);
    assert_null(vm_def_from_json(j, &limits, &err));
    assert_string_equal(err->field, "disks");
    assert_non_null(strstr(err->message, "at most 32"));
    error_free(steal_pointer(&err));

    json_t *nics = json_array();
    for (int i = 0; i <= VM_MAX_NICS; i++)
        json_array_append_new(nics, json_object());
    json_object_set_new(j, "nics", nics);
    json_object_set_new(j, "disks", json_array());
    assert_null(vm_def_from_json(j, &limits, &err));
    assert_string_equal(err->field, "nics");
    error_free(steal_pointer(&err));
    json_object_set_new(j, "nics", json_array());

    char *cmdline = xmalloc(VM_CMDLINE_MAX + 2);
    memset(cmdline, 'x', VM_CMDLINE_MAX + 1);
    cmdline[VM_CMDLINE_MAX + 1] = '\0';
    json_object_set_new(j, "boot", json_pack("{s:s, s:s}", "kernel",
                                             "/var/lib/strata/kernels/k", "cmdline", cmdline));
    free(cmdline);
    assert_null(vm_def_from_json(j, &limits, &err));
    assert_string_equal(err->field, "boot.cmdline");
    assert_non_null(strstr(err->message, "4097 bytes"));
    error_free(steal_pointer(&err));
    json_object_del(j, "boot");

    /* Host limits. */
    struct vm_def_limits small = { .allowed_roots = roots, .max_vcpus = 2, .max_mem_mib = 768 };
    assert_null(vm_def_from_json(j, &small, &err));
    assert_string_equal(err->field, "vcpus.max");
    error_free(steal_pointer(&err));
    json_object_set_new(j, "vcpus", json_integer(2));
    assert_null(vm_def_from_json(j, &small, &err));
    assert_string_equal(err->field, "memory.max_mib");
    assert_non_null(strstr(err->message, "is 1024, must be between 16 and 768"));
    error_free(steal_pointer(&err));

    /* No allowed roots at all. */
    struct vm_def_limits none = { 0 };
    AUTOJSON json_t *fresh = patched("{}");
    assert_null(vm_def_from_json(fresh, &none, &err));
    assert_string_equal(err->field, "disks[0].path");
    assert_non_null(strstr(err->message, "allows no image directory"));
    error_free(steal_pointer(&err));

    /* Not an object. */
    AUTOJSON json_t *arr = json_array();
    assert_null(vm_def_from_json(arr, &limits, &err));
    assert_null(err->field);
}

/* ---- good definitions ---- */

static const char *const good_defs[] = {
    base_def,
    "{'name': 'a', 'memory': 128}",
    "{'name': 'k1', 'uuid': '6F1C2B9E-6A43-4C59-9D8F-0D1E2F3A4B5C', 'vcpus': 4, 'memory': 256,"
    " 'boot': {'kernel': '/var/lib/strata/kernels/vmlinuz',"
    " 'initrd': '/var/lib/strata/kernels/initrd.img', 'cmdline': 'console=ttyS0 quiet'},"
    " 'serial': false, 'balloon': false, 'guest_agent': false}",
    "{'name': 'numa.vm_1', 'vcpus': {'count': 2, 'max': 8, 'cores': 2, 'threads': 2},"
    " 'memory': {'mib': 1024, 'max_mib': 2048, 'slots': 8}, 'cpu': {'model': 'Skylake-Server'},"
    " 'numa': [{'cpus': '0-3', 'mem_mib': 512}, {'cpus': '4-6', 'mem_mib': 256},"
    " {'cpus': '7', 'mem_mib': 256}]}",
    "{'name': 'pc1', 'machine': 'pc-i440fx-7.2', 'memory': 256,"
    " 'boot': {'order': ['network', 'cdrom', 'disk']},"
    " 'disks': [{'id': 'a', 'path': '/var/lib/strata/images/a', 'format': 'raw', 'bus': 'sata',"
    " 'cache': 'directsync', 'shared': true, 'serial': 'SER_1-a'},"
    " {'id': 'b', 'path': '/var/lib/strata/images/b', 'format': 'qcow2', 'bus': 'scsi',"
    " 'cache': 'unsafe', 'readonly': true}],"
    " 'cdroms': [{'id': 'c', 'path': '/var/lib/strata/isos/x.iso'}, {'id': 'd'}],"
    " 'nics': [{'id': 'n-1', 'mac': '52:54:00:AA:BB:CC', 'model': 'e1000', 'tap': 'vnet.1'},"
    " {'id': 'n-2', 'mac': '02:00:00:00:00:01', 'model': 'rtl8139', 'tap': 'vnet_2'}],"
    " 'vnc': {'listen': 'loopback', 'websocket': true}}",
    "{'name': 'net1', 'memory': 128,"
    " 'nics': [{'id': 'n0', 'mac': '52:54:00:00:00:01', 'tap': 't0',"
    " 'network': {'dvs': 'dvs-1', 'portgroup': 'vlan100', 'security_group': 'web',"
    " 'ips': ['10.0.0.5', '10.0.1.5']}},"
    " {'id': 'n1', 'mac': '52:54:00:00:00:02', 'tap': 't1', 'network': {'nat': 'default'}},"
    " {'id': 'n2', 'mac': '52:54:00:00:00:03', 'tap': 't2', 'network': null}]}",
};

static void test_round_trip(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(good_defs); i++) {
        AUTOJSON json_t *in = jq(good_defs[i]);
        AUTOERROR struct error *err = NULL;
        AUTOVMDEF struct vm_def *d1 = vm_def_from_json(in, &limits, &err);
        if (!d1)
            fail_msg("good definition %zu refused: %s: %s", i, err->field, err->message);
        AUTOJSON json_t *j1 = vm_def_to_json(d1);
        AUTOVMDEF struct vm_def *d2 = vm_def_from_json(j1, &limits, &err);
        if (!d2)
            fail_msg("canonical form of %zu refused: %s: %s", i, err->field, err->message);
        AUTOJSON json_t *j2 = vm_def_to_json(d2);
        AUTOFREE char *s1 = json_to_string(j1);
        AUTOFREE char *s2 = json_to_string(j2);
        assert_string_equal(s1, s2);
        AUTOVMDEF struct vm_def *d3 = vm_def_copy(d2);
        AUTOJSON json_t *j3 = vm_def_to_json(d3);
        AUTOFREE char *s3 = json_to_string(j3);
        assert_string_equal(s1, s3);
        assert_string_equal(d1->uuid, d2->uuid);
    }
}

static void test_defaults(void **state)
{
    (void) state;
    AUTOJSON json_t *in = jq("{'name': 'a', 'memory': 128}");
    AUTOVMDEF struct vm_def *d = vm_def_from_json(in, &limits, NULL);
    assert_non_null(d);
    assert_true(uuid_is_valid(d->uuid));
    assert_int_equal(d->vcpus, 1);
    assert_int_equal(d->max_vcpus, 1);
    assert_int_equal(d->sockets * d->cores * d->threads, 1);
    assert_int_equal(d->mem_mib, 128);
    assert_int_equal(d->max_mem_mib, 128);
    assert_int_equal(d->mem_slots, 0);
    assert_string_equal(d->cpu_model, "host");
    assert_string_equal(d->machine, "q35");
    assert_int_equal(d->n_boot, 2);
    assert_int_equal(d->boot_order[0], BOOT_DEV_DISK);
    assert_int_equal(d->boot_order[1], BOOT_DEV_CDROM);
    assert_null(d->kernel);
    assert_true(d->serial);
    assert_true(d->balloon);
    assert_true(d->guest_agent);
    assert_int_equal(d->vnc, VNC_LISTEN_NONE);
    assert_false(d->vnc_websocket);

    /* Two parses without uuid get different ones. */
    AUTOVMDEF struct vm_def *d2 = vm_def_from_json(in, &limits, NULL);
    assert_string_not_equal(d->uuid, d2->uuid);

    /* vcpus integer form: one socket per vCPU; object form: sockets derived. */
    AUTOJSON json_t *v = jq("{'name': 'a', 'memory': 128, 'vcpus': {'count': 2, 'max': 8, "
                            "'cores': 2}}");
    AUTOVMDEF struct vm_def *d3 = vm_def_from_json(v, &limits, NULL);
    assert_non_null(d3);
    assert_int_equal(d3->sockets, 4);
    assert_int_equal(d3->threads, 1);
}

static void test_normalization(void **state)
{
    (void) state;
    AUTOJSON json_t *in = jq(good_defs[2]);
    AUTOVMDEF struct vm_def *d = vm_def_from_json(in, &limits, NULL);
    assert_non_null(d);
    assert_string_equal(d->uuid, "6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c");
    assert_int_equal(d->sockets, 4);
    assert_int_equal(d->n_boot, 0);
    AUTOJSON json_t *pc = jq(good_defs[4]);
    AUTOVMDEF struct vm_def *p = vm_def_from_json(pc, &limits, NULL);
    assert_non_null(p);
    assert_string_equal(p->nics[0].mac, "52:54:00:aa:bb:cc");
    assert_int_equal(p->disks[0].cache, DISK_CACHE_DIRECTSYNC);
    assert_null(p->cdroms[1].path);
    assert_false(vm_machine_is_q35(p->machine));
    assert_int_equal(vm_ide_slots(p->machine), 4);
    assert_true(vm_machine_is_q35("pc-q35-7.2"));
    assert_int_equal(vm_ide_slots("q35"), 6);
}

static void test_nic_network(void **state)
{
    (void) state;
    AUTOJSON json_t *in = jq(good_defs[5]);
    AUTOVMDEF struct vm_def *d = vm_def_from_json(in, &limits, NULL);
    assert_non_null(d);
    const struct vm_nic_network *n = d->nics[0].network;
    assert_non_null(n);
    assert_string_equal(n->dvs, "dvs-1");
    assert_string_equal(n->portgroup, "vlan100");
    assert_null(n->nat);
    assert_string_equal(n->security_group, "web");
    assert_string_equal(n->ips[0], "10.0.0.5");
    assert_string_equal(n->ips[1], "10.0.1.5");
    assert_null(n->ips[2]);
    assert_string_equal(d->nics[1].network->nat, "default");
    assert_null(d->nics[1].network->ips);
    assert_null(d->nics[2].network);
    AUTOJSON json_t *j = vm_nic_to_json(&d->nics[1]);
    AUTOFREE char *s = json_to_string(j);
    assert_non_null(strstr(s, "\"network\":{\"ips\":[],\"nat\":\"default\","
                              "\"security_group\":null}"));
    AUTOJSON json_t *j2 = vm_nic_to_json(&d->nics[2]);
    assert_null(json_object_get(j2, "network"));
}

static void test_enum_tables(void **state)
{
    (void) state;
    for (int i = 0; i < DISK_FORMAT__COUNT; i++)
        assert_int_equal(disk_format_from_string(disk_format_to_string(i)), i);
    for (int i = 0; i < DISK_BUS__COUNT; i++)
        assert_int_equal(disk_bus_from_string(disk_bus_to_string(i)), i);
    for (int i = 0; i < DISK_CACHE__COUNT; i++)
        assert_int_equal(disk_cache_from_string(disk_cache_to_string(i)), i);
    for (int i = 0; i < NIC_MODEL__COUNT; i++)
        assert_int_equal(nic_model_from_string(nic_model_to_string(i)), i);
    for (int i = 0; i < BOOT_DEV__COUNT; i++)
        assert_int_equal(boot_dev_from_string(boot_dev_to_string(i)), i);
    assert_int_equal(disk_format_from_string("vmdk"), -1);
    assert_int_equal(disk_format_from_string(NULL), -1);
}

static void test_validators(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(vm_name_validate("web-1.prod_2", "name", NULL), 0);
    assert_int_equal(vm_device_id_validate("disk-10", "id", NULL), 0);
    assert_int_equal(vm_device_id_validate("hotplug", "id", NULL), 0);
    assert_int_equal(vm_device_id_validate("vcpu1a", "id", NULL), 0);
    assert_int_equal(vm_device_id_validate("dimm7", "id", &err), -1);
    assert_string_equal(err->field, "id");
    error_free(steal_pointer(&err));
    assert_int_equal(vm_mac_validate("02:00:00:00:00:01", "mac", NULL), 0);
    assert_int_equal(vm_mac_validate("52:54:00:12:34:5g", "mac", NULL), -1);
    assert_int_equal(vm_image_path_validate("/var/lib/strata/images/a/b.qcow2", &limits, "p",
                                            NULL), 0);
    assert_int_equal(vm_image_path_validate("/var/lib/strata/images//a", &limits, "p", &err),
                     -1);
    assert_non_null(strstr(err->message, "not clean"));
    error_free(steal_pointer(&err));

    /* A long or binary value is quoted on one line, cut and sanitized. */
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    longname[3] = '\x01';
    assert_int_equal(vm_name_validate(longname, "name", &err), -1);
    assert_non_null(strstr(err->message, "aaa?aaa"));
    assert_non_null(strstr(err->message, "..."));
    assert_null(strchr(err->message, '\x01'));
}

static void test_disk_nic_parsers(void **state)
{
    (void) state;
    AUTOJSON json_t *dj = jq("{'id': 'data', 'path': '/var/lib/strata/images/d.qcow2', "
                             "'format': 'qcow2', 'cache': 'writethrough'}");
    struct vm_disk d;
    assert_int_equal(vm_disk_from_json(dj, &limits, "disk", &d, NULL), 0);
    assert_int_equal(d.cache, DISK_CACHE_WRITETHROUGH);
    assert_int_equal(d.bus, DISK_BUS_VIRTIO);
    AUTOJSON json_t *back = vm_disk_to_json(&d);
    assert_string_equal(json_string_value(json_object_get(back, "cache")), "writethrough");
    vm_disk_clear(&d);
    vm_disk_clear(NULL);

    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *bad = jq("{'id': 'data', 'path': '/tmp/x', 'format': 'raw'}");
    assert_int_equal(vm_disk_from_json(bad, &limits, "disk", &d, &err), -1);
    assert_string_equal(err->field, "disk.path");

    AUTOJSON json_t *nj = jq("{'id': 'eth1', 'mac': '52:54:00:FE:DC:BA', 'tap': 'tap1'}");
    struct vm_nic n;
    assert_int_equal(vm_nic_from_json(nj, "nic", &n, NULL), 0);
    assert_string_equal(n.mac, "52:54:00:fe:dc:ba");
    assert_int_equal(n.model, NIC_MODEL_VIRTIO);
    AUTOJSON json_t *nb = vm_nic_to_json(&n);
    assert_string_equal(json_string_value(json_object_get(nb, "model")), "virtio");
    vm_nic_clear(&n);
    vm_def_free(NULL);
}

int main(void)
{
    size_t n = ARRAY_SIZE(bad_cases);
    struct CMUnitTest *tests = xcalloc(n + 8, sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        tests[i].name = bad_cases[i].name;
        tests[i].test_func = test_bad_definition;
        tests[i].initial_state = (void *) &bad_cases[i];
    }
    const struct CMUnitTest rest[] = {
        cmocka_unit_test(test_bad_generated),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_normalization),
        cmocka_unit_test(test_nic_network),
        cmocka_unit_test(test_enum_tables),
        cmocka_unit_test(test_validators),
        cmocka_unit_test(test_disk_nic_parsers),
    };
    memcpy(tests + n, rest, sizeof(rest));
    int rc = _cmocka_run_group_tests("vm_def", tests, n + ARRAY_SIZE(rest), NULL, NULL);
    free(tests);
    return rc;
}
