/* vm_def.c - VM definitions: parse and validate JSON, serialize it back, copy.
 *
 * vm_def_from_json() walks the document in schema order (docs/vm-definition.md),
 * refusing unknown keys at every level, filling defaults, and checking every
 * value a VM definition can carry before anything reaches QEMU: names, device
 * ids, taps and serials are restricted to characters that need no escaping in
 * QEMU option strings; image, ISO and kernel paths must be clean absolute paths
 * under one of the host's allowed roots and contain no ',', '=' or ':'.  Cross
 * checks (vCPU topology, NUMA coverage, unique ids/MACs/taps/paths, IDE slots)
 * run once the parts are parsed.  Every refusal is one ERR_INVALID_ARG naming
 * the JSON path of the value and quoting it.
 *
 * vm_def_to_json() is the canonical form (every field spelled out), which the
 * agent stores and which parses back to an equal definition.  The QEMU layer
 * (qemu/qemu_argv.c, qemu/qemu_hotplug.c) trusts what this file accepted. */
#include "model/vm_def.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

#define JSON_SAFE_INT_MAX (1ULL << 53)
#define DEFAULT_MAX_MEM_MIB (4ULL * 1024 * 1024)   /* 4 TiB */
#define QUOTE_MAX 80

/* ---- enum tables ---- */

static const char *const disk_format_names[DISK_FORMAT__COUNT] = { "raw", "qcow2" };
static const char *const disk_bus_names[DISK_BUS__COUNT] = { "virtio", "scsi", "sata" };
static const char *const disk_cache_names[DISK_CACHE__COUNT] = {
    "none", "writeback", "writethrough", "directsync", "unsafe"
};
static const char *const nic_model_names[NIC_MODEL__COUNT] = { "virtio", "e1000", "rtl8139" };
static const char *const boot_dev_names[BOOT_DEV__COUNT] = { "disk", "cdrom", "network" };
static const char *const vnc_listen_names[] = { "none", "unix", "loopback" };

static int table_lookup(const char *const *table, size_t n, const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(table[i], s))
            return (int) i;
    return -1;
}

static const char *table_name(const char *const *table, size_t n, int v)
{
    return v >= 0 && (size_t) v < n ? table[v] : "?";
}

#define ENUM_FUNCS(prefix, type, table)                                       \
    const char *prefix##_to_string(enum type v)                               \
    {                                                                         \
        return table_name(table, ARRAY_SIZE(table), (int) v);                 \
    }                                                                         \
    int prefix##_from_string(const char *s)                                   \
    {                                                                         \
        return table_lookup(table, ARRAY_SIZE(table), s);                     \
    }

ENUM_FUNCS(disk_format, disk_format, disk_format_names)
ENUM_FUNCS(disk_bus, disk_bus, disk_bus_names)
ENUM_FUNCS(disk_cache, disk_cache, disk_cache_names)
ENUM_FUNCS(nic_model, nic_model, nic_model_names)
ENUM_FUNCS(boot_dev, boot_dev, boot_dev_names)

/* ---- small helpers ---- */

/* Returns a new copy of 's' fit to quote in a one-line message: control and
 * non-ASCII bytes become '?', and a long value is cut with "...". */
static char *quote(const char *s)
{
    size_t n = strlen(s);
    size_t keep = n > QUOTE_MAX ? QUOTE_MAX : n;
    char *out = xmalloc(keep + 4);
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char) s[i];
        out[i] = c < 0x20 || c >= 0x7f ? '?' : (char) c;
    }
    strcpy(out + keep, n > keep ? "..." : "");
    return out;
}

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Returns the first byte of 's' outside [A-Za-z0-9] and 'extra', or NULL. */
static const char *first_bad_char(const char *s, const char *extra)
{
    for (const char *p = s; *p; p++)
        if (!is_alnum((unsigned char) *p) && !strchr(extra, *p))
            return p;
    return NULL;
}

/* Sets an error for a string that holds a byte outside its character class:
 * printable bytes are quoted, others named by their code. */
static int bad_char_error(struct error **errp, const char *field, const char *what,
                          const char *value, char bad, const char *allowed)
{
    AUTOFREE char *qv = quote(value);
    unsigned char c = (unsigned char) bad;
    if (c >= 0x20 && c < 0x7f)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "%s '%s' contains '%c'; allowed are %s", what, qv, bad, allowed);
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "%s '%s' contains the byte 0x%02x; allowed are %s", what, qv, c,
                           allowed);
}

static int get_ull(const json_t *obj, const char *key, const char *prefix, bool required,
                   unsigned long long min, unsigned long long max, unsigned long long *out,
                   struct error **errp)
{
    if (max > JSON_SAFE_INT_MAX)
        max = JSON_SAFE_INT_MAX;
    return json_get_uint(obj, key, prefix, required, min, max, out, errp);
}

static int get_unsigned(const json_t *obj, const char *key, const char *prefix, bool required,
                        unsigned min, unsigned max, unsigned *out, struct error **errp)
{
    unsigned long long v = *out;
    if (get_ull(obj, key, prefix, required, min, max, &v, errp) < 0)
        return -1;
    *out = (unsigned) v;
    return 0;
}

/* Gets an optional enum-valued string; 'names' lists the accepted values. */
static int get_enum(const json_t *obj, const char *key, const char *prefix,
                    const char *const *names, size_t n, int *out, struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(obj, key, prefix, false, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    int v = table_lookup(names, n, s);
    if (v < 0) {
        AUTOFREE char *f = json_path_join(prefix, key);
        AUTOFREE char *qv = quote(s);
        AUTOFREE char *list = NULL;
        for (size_t i = 0; i < n; i++) {
            char *next = xasprintf("%s%s'%s'", list ? list : "", list ? ", " : "", names[i]);
            free(list);
            list = next;
        }
        return error_set_field(errp, ERR_INVALID_ARG, f, "%s '%s' is not one of %s", f, qv,
                               list);
    }
    *out = v;
    return 0;
}

/* Fails unless 'v' is a JSON object, naming 'field'. */
static int require_object(const json_t *v, const char *field, struct error **errp)
{
    if (!json_is_object(v))
        return error_set_field(errp, ERR_INVALID_ARG, field, "field '%s' must be an object",
                               field);
    return 0;
}

static int require_array(const json_t *v, const char *field, size_t max, struct error **errp)
{
    if (!json_is_array(v))
        return error_set_field(errp, ERR_INVALID_ARG, field, "field '%s' must be an array",
                               field);
    if (json_array_size(v) > max)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "field '%s' has %zu entries, at most %zu are allowed", field,
                               json_array_size(v), max);
    return 0;
}

/* ---- field validators (exported) ---- */

int vm_name_validate(const char *name, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(name);
    size_t len = strlen(name);
    if (len == 0)
        return error_set_field(errp, ERR_INVALID_ARG, field, "VM name must not be empty");
    if (len > VM_NAME_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "VM name '%s' is %zu bytes long, at most %d are allowed", qv, len,
                               VM_NAME_MAX);
    if (!is_alnum((unsigned char) name[0]))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "VM name '%s' must start with a letter or a digit", qv);
    const char *bad = first_bad_char(name, "_.-");
    if (bad)
        return bad_char_error(errp, field, "VM name", name, *bad,
                              "letters, digits, '_', '.' and '-'");
    if (strstr(name, ".."))
        return error_set_field(errp, ERR_INVALID_ARG, field, "VM name '%s' must not contain '..'",
                               qv);
    return 0;
}

/* Ids the QEMU layer gives its own devices (qemu/qemu_argv.h); a user device
 * must not take them.  "hotplugN", "dimmN" and "vcpuN" are reserved too. */
static const char *const reserved_ids[] = {
    "balloon0", "scsi0", "video0", "virtio-serial0", "channel0", NULL
};
static const char *const reserved_prefixes[] = { "hotplug", "dimm", "vcpu", NULL };

int vm_device_id_validate(const char *id, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(id);
    size_t len = strlen(id);
    if (len == 0)
        return error_set_field(errp, ERR_INVALID_ARG, field, "device id must not be empty");
    if (len > 32)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "device id '%s' is %zu bytes long, at most 32 are allowed", qv,
                               len);
    if (id[0] < 'a' || id[0] > 'z')
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "device id '%s' must start with a lowercase letter", qv);
    for (const char *p = id; *p; p++)
        if (!is_lower_alnum((unsigned char) *p) && *p != '-')
            return bad_char_error(errp, field, "device id", id, *p,
                                  "lowercase letters, digits and '-'");
    for (size_t i = 0; reserved_ids[i]; i++)
        if (!strcmp(id, reserved_ids[i]))
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "device id '%s' is reserved for Strata's own devices", qv);
    for (size_t i = 0; reserved_prefixes[i]; i++) {
        size_t pl = strlen(reserved_prefixes[i]);
        if (!strncmp(id, reserved_prefixes[i], pl) && id[pl] &&
            strspn(id + pl, "0123456789") == strlen(id + pl))
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "device id '%s' is reserved for Strata's own devices", qv);
    }
    return 0;
}

/* Parses "xx:xx:xx:xx:xx:xx" (either case) into 'b'; returns false if malformed. */
static bool mac_parse(const char *mac, unsigned char b[6])
{
    if (strlen(mac) != VM_MAC_STRLEN)
        return false;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(mac[i * 3]), lo = hexval(mac[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && mac[i * 3 + 2] != ':'))
            return false;
        b[i] = (unsigned char) (hi * 16 + lo);
    }
    return true;
}

int vm_mac_validate(const char *mac, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(mac);
    unsigned char b[6];
    if (!mac_parse(mac, b))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "MAC address '%s' is not of the form xx:xx:xx:xx:xx:xx", qv);
    if (b[0] & 1)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "MAC address '%s' is multicast; a NIC needs a unicast address",
                               qv);
    if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
        return error_set_field(errp, ERR_INVALID_ARG, field, "MAC address '%s' is all zeros",
                               qv);
    return 0;
}

int vm_image_path_validate(const char *path, const struct vm_def_limits *limits,
                           const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(path);
    size_t len = strlen(path);
    if (len == 0)
        return error_set_field(errp, ERR_INVALID_ARG, field, "path must not be empty");
    if (len > 4095)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "path '%s' is %zu bytes long, at most 4095 are allowed", qv, len);
    if (path[0] != '/')
        return error_set_field(errp, ERR_INVALID_ARG, field, "path '%s' is not absolute", qv);
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char) *p;
        if (c < 0x20 || c == 0x7f)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "path '%s' contains the control character 0x%02x", qv, c);
        if (c == ',' || c == '=' || c == ':')
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "path '%s' contains '%c'; ',', '=' and ':' are refused in "
                                   "paths", qv, c);
    }
    if (!path_is_clean(path))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "path '%s' is not clean: '.', '..' and empty components and a "
                               "trailing '/' are refused", qv);
    const char *const *roots = limits ? limits->allowed_roots : NULL;
    for (size_t i = 0; roots && roots[i]; i++)
        if (path_is_under(path, roots[i]))
            return 0;
    if (!roots || !roots[0])
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "path '%s' is refused: this host allows no image directory", qv);
    AUTOFREE char *list = NULL;
    for (size_t i = 0; roots[i]; i++) {
        char *next = xasprintf("%s%s'%s'", list ? list : "", list ? ", " : "", roots[i]);
        free(list);
        list = next;
    }
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "path '%s' is outside the allowed directories %s", qv, list);
}

static int tap_validate(const char *tap, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(tap);
    size_t len = strlen(tap);
    if (len == 0 || len > 15)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "tap name '%s' must be 1 to 15 bytes long", qv);
    const char *bad = first_bad_char(tap, "_.-");
    if (bad)
        return bad_char_error(errp, field, "tap name", tap, *bad,
                              "letters, digits, '_', '.' and '-'");
    if (!strcmp(tap, ".") || !strcmp(tap, ".."))
        return error_set_field(errp, ERR_INVALID_ARG, field, "tap name '%s' is refused", qv);
    return 0;
}

static int serial_validate(const char *serial, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(serial);
    size_t len = strlen(serial);
    if (len == 0 || len > 20)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "disk serial '%s' must be 1 to 20 bytes long", qv);
    const char *bad = first_bad_char(serial, "_-");
    if (bad)
        return bad_char_error(errp, field, "disk serial", serial, *bad,
                              "letters, digits, '_' and '-'");
    return 0;
}

/* machine: pc | q35 | pc-q35-X[.Y[.Z]] | pc-i440fx-X[.Y[.Z]] */
static bool machine_is_valid(const char *m)
{
    if (!strcmp(m, "pc") || !strcmp(m, "q35"))
        return true;
    const char *v;
    if (!strncmp(m, "pc-q35-", 7))
        v = m + 7;
    else if (!strncmp(m, "pc-i440fx-", 10))
        v = m + 10;
    else
        return false;
    int parts = 0;
    for (;;) {
        size_t digits = strspn(v, "0123456789");
        if (digits == 0 || digits > 4)
            return false;
        v += digits;
        parts++;
        if (!*v)
            return parts <= 3;
        if (*v != '.')
            return false;
        v++;
    }
}

bool vm_machine_is_q35(const char *machine)
{
    return machine && (!strcmp(machine, "q35") || !strncmp(machine, "pc-q35-", 7));
}

unsigned vm_ide_slots(const char *machine)
{
    return vm_machine_is_q35(machine) ? 6 : 4;
}

/* ---- disks, cdroms, NICs ---- */

void vm_disk_clear(struct vm_disk *d)
{
    if (!d)
        return;
    free(d->id);
    free(d->path);
    free(d->serial);
    memset(d, 0, sizeof(*d));
}

void vm_nic_clear(struct vm_nic *n)
{
    if (!n)
        return;
    free(n->id);
    free(n->tap);
    vm_nic_network_free(n->network);
    memset(n, 0, sizeof(*n));
}

void vm_nic_network_free(struct vm_nic_network *n)
{
    if (!n)
        return;
    free(n->dvs);
    free(n->portgroup);
    free(n->nat);
    free(n->security_group);
    strv_free(n->ips);
    free(n);
}

struct vm_nic_network *vm_nic_network_copy(const struct vm_nic_network *n)
{
    if (!n)
        return NULL;
    struct vm_nic_network *c = xzalloc(sizeof(*c));
    c->dvs = xstrdup(n->dvs);
    c->portgroup = xstrdup(n->portgroup);
    c->nat = xstrdup(n->nat);
    c->security_group = xstrdup(n->security_group);
    if (n->ips) {
        size_t k = strv_len(n->ips);
        c->ips = xcalloc(k + 1, sizeof(char *));
        for (size_t i = 0; i < k; i++)
            c->ips[i] = xstrdup(n->ips[i]);
    }
    return c;
}

int vm_net_name_validate(const char *name, const char *field, struct error **errp)
{
    AUTOFREE char *qv = quote(name);
    size_t len = strlen(name);
    if (len == 0 || len > 32)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "name '%s' must be 1 to 32 bytes long", qv);
    const char *bad = first_bad_char(name, "_.-");
    if (bad)
        return bad_char_error(errp, field, "name", name, *bad,
                              "letters, digits, '_', '.' and '-'");
    if (!isalnum((unsigned char) name[0]))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "name '%s' must start with a letter or a digit", qv);
    return 0;
}

static void vm_cdrom_clear(struct vm_cdrom *c)
{
    free(c->id);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

/* Reads string 'key' of 'j', runs 'check' on it and stores a copy in '*out'. */
static int get_checked_string(const json_t *j, const char *key, const char *prefix,
                              bool required,
                              int (*check)(const char *, const char *, struct error **),
                              char **out, struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(j, key, prefix, required, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    AUTOFREE char *f = json_path_join(prefix, key);
    if (check && check(s, f, errp) < 0)
        return -1;
    *out = xstrdup(s);
    return 0;
}

static int disk_parse(const json_t *j, const struct vm_def_limits *limits, const char *field,
                      struct vm_disk *d, struct error **errp)
{
    static const char *const keys[] = {
        "id", "path", "format", "bus", "cache", "readonly", "shared", "serial", NULL
    };
    if (require_object(j, field, errp) < 0 || json_check_keys(j, keys, field, errp) < 0)
        return -1;
    d->bus = DISK_BUS_VIRTIO;
    d->cache = DISK_CACHE_NONE;
    if (get_checked_string(j, "id", field, true, vm_device_id_validate, &d->id, errp) < 0)
        return -1;
    const char *path = NULL;
    if (json_get_string(j, "path", field, true, &path, errp) < 0)
        return -1;
    AUTOFREE char *pf = json_path_join(field, "path");
    if (vm_image_path_validate(path, limits, pf, errp) < 0)
        return -1;
    d->path = xstrdup(path);
    const char *format = NULL;
    int v = -1;
    if (json_get_string(j, "format", field, true, &format, errp) < 0 ||
        get_enum(j, "format", field, disk_format_names, DISK_FORMAT__COUNT, &v, errp) < 0)
        return -1;
    d->format = (enum disk_format) v;
    v = (int) d->bus;
    if (get_enum(j, "bus", field, disk_bus_names, DISK_BUS__COUNT, &v, errp) < 0)
        return -1;
    d->bus = (enum disk_bus) v;
    v = (int) d->cache;
    if (get_enum(j, "cache", field, disk_cache_names, DISK_CACHE__COUNT, &v, errp) < 0)
        return -1;
    d->cache = (enum disk_cache) v;
    if (json_get_bool(j, "readonly", field, false, &d->readonly, errp) < 0 ||
        json_get_bool(j, "shared", field, false, &d->shared, errp) < 0)
        return -1;
    if (get_checked_string(j, "serial", field, false, serial_validate, &d->serial, errp) < 0)
        return -1;

    if (d->shared && d->format != DISK_FORMAT_RAW) {
        AUTOFREE char *f = json_path_join(field, "shared");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "disk '%s' is shared but its format is '%s'; shared disks must "
                               "be raw", d->id, disk_format_names[d->format]);
    }
    if (d->shared && d->cache != DISK_CACHE_NONE && d->cache != DISK_CACHE_DIRECTSYNC) {
        AUTOFREE char *f = json_path_join(field, "cache");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "disk '%s' is shared but its cache mode is '%s'; shared disks "
                               "need 'none' or 'directsync' (no host page cache)", d->id,
                               disk_cache_names[d->cache]);
    }
    if (d->readonly && d->bus == DISK_BUS_SATA) {
        AUTOFREE char *f = json_path_join(field, "readonly");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "disk '%s' is read-only on the sata bus, which QEMU's ide-hd "
                               "refuses; use virtio or scsi", d->id);
    }
    return 0;
}

int vm_disk_from_json(const json_t *j, const struct vm_def_limits *limits, const char *field,
                      struct vm_disk *out, struct error **errp)
{
    struct vm_disk d = { 0 };
    if (disk_parse(j, limits, field, &d, errp) < 0) {
        vm_disk_clear(&d);
        return -1;
    }
    *out = d;
    return 0;
}

static int cdrom_parse(const json_t *j, const struct vm_def_limits *limits, const char *field,
                       struct vm_cdrom *c, struct error **errp)
{
    static const char *const keys[] = { "id", "path", NULL };
    if (require_object(j, field, errp) < 0 || json_check_keys(j, keys, field, errp) < 0)
        return -1;
    if (get_checked_string(j, "id", field, true, vm_device_id_validate, &c->id, errp) < 0)
        return -1;
    const char *path = NULL;
    if (json_get_string(j, "path", field, false, &path, errp) < 0)
        return -1;
    if (path) {
        AUTOFREE char *pf = json_path_join(field, "path");
        if (vm_image_path_validate(path, limits, pf, errp) < 0)
            return -1;
        c->path = xstrdup(path);
    }
    return 0;
}

/* "network": {"dvs", "portgroup"} or {"nat"}, plus "security_group" and "ips". */
static int nic_network_parse(const json_t *j, const char *field, struct vm_nic_network *n,
                             struct error **errp)
{
    static const char *const keys[] = { "dvs", "portgroup", "nat", "security_group", "ips",
                                         NULL };
    if (require_object(j, field, errp) < 0 || json_check_keys(j, keys, field, errp) < 0)
        return -1;
    if (get_checked_string(j, "dvs", field, false, vm_net_name_validate, &n->dvs, errp) < 0 ||
        get_checked_string(j, "portgroup", field, false, vm_net_name_validate, &n->portgroup,
                           errp) < 0 ||
        get_checked_string(j, "nat", field, false, vm_net_name_validate, &n->nat, errp) < 0 ||
        get_checked_string(j, "security_group", field, false, vm_net_name_validate,
                           &n->security_group, errp) < 0)
        return -1;
    if (n->dvs && n->nat) {
        AUTOFREE char *f = json_path_join(field, "nat");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "a NIC joins either a DVS port group or a NAT network, not both");
    }
    if (!n->dvs && !n->nat)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "network needs either 'dvs' and 'portgroup', or 'nat'");
    if (n->dvs && !n->portgroup) {
        AUTOFREE char *f = json_path_join(field, "portgroup");
        return error_set_field(errp, ERR_INVALID_ARG, f, "a NIC on DVS '%s' needs a port group",
                               n->dvs);
    }
    if (n->nat && n->portgroup) {
        AUTOFREE char *f = json_path_join(field, "portgroup");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "a NIC on NAT network '%s' has no port group", n->nat);
    }
    const json_t *ips = json_object_get(j, "ips");
    if (ips && !json_is_null(ips)) {
        AUTOFREE char *f = json_path_join(field, "ips");
        if (!json_is_array(ips))
            return error_set_field(errp, ERR_INVALID_ARG, f, "ips must be an array of strings");
        size_t k = json_array_size(ips);
        if (k > VM_NIC_MAX_IPS)
            return error_set_field(errp, ERR_INVALID_ARG, f,
                                   "a NIC has at most %d bound addresses, not %zu",
                                   VM_NIC_MAX_IPS, k);
        n->ips = xcalloc(k + 1, sizeof(char *));
        for (size_t i = 0; i < k; i++) {
            AUTOFREE char *fi = json_path_index(f, i);
            const char *ip = json_string_value(json_array_get(ips, i));
            struct in_addr a;
            if (!ip)
                return error_set_field(errp, ERR_INVALID_ARG, fi, "ips[%zu] must be a string", i);
            AUTOFREE char *qv = quote(ip);
            if (strlen(ip) > 15 || inet_pton(AF_INET, ip, &a) != 1)
                return error_set_field(errp, ERR_INVALID_ARG, fi,
                                       "'%s' is not an IPv4 address (a.b.c.d)", qv);
            if (a.s_addr == 0 || a.s_addr == 0xffffffffu || (ntohl(a.s_addr) >> 28) == 0xe)
                return error_set_field(errp, ERR_INVALID_ARG, fi,
                                       "'%s' is not a unicast address", qv);
            for (size_t m = 0; m < i; m++)
                if (!strcmp(n->ips[m], ip))
                    return error_set_field(errp, ERR_INVALID_ARG, fi,
                                           "address '%s' is listed twice", qv);
            n->ips[i] = xstrdup(ip);
        }
    }
    return 0;
}

static json_t *nic_network_to_json(const struct vm_nic_network *n)
{
    json_t *o = json_object();
    if (n->dvs) {
        json_object_set_new(o, "dvs", json_string(n->dvs));
        json_object_set_new(o, "portgroup", json_string(n->portgroup));
    } else {
        json_object_set_new(o, "nat", json_string(n->nat));
    }
    json_object_set_new(o, "security_group",
                        n->security_group ? json_string(n->security_group) : json_null());
    json_t *ips = json_array();
    for (size_t i = 0; n->ips && n->ips[i]; i++)
        json_array_append_new(ips, json_string(n->ips[i]));
    json_object_set_new(o, "ips", ips);
    return o;
}

static int nic_parse(const json_t *j, const char *field, struct vm_nic *n, struct error **errp)
{
    static const char *const keys[] = { "id", "mac", "model", "tap", "network", NULL };
    if (require_object(j, field, errp) < 0 || json_check_keys(j, keys, field, errp) < 0)
        return -1;
    n->model = NIC_MODEL_VIRTIO;
    if (get_checked_string(j, "id", field, true, vm_device_id_validate, &n->id, errp) < 0)
        return -1;
    const char *mac = NULL;
    if (json_get_string(j, "mac", field, true, &mac, errp) < 0)
        return -1;
    AUTOFREE char *mf = json_path_join(field, "mac");
    if (vm_mac_validate(mac, mf, errp) < 0)
        return -1;
    for (size_t i = 0; i < VM_MAC_STRLEN; i++)
        n->mac[i] = (char) (mac[i] >= 'A' && mac[i] <= 'F' ? mac[i] - 'A' + 'a' : mac[i]);
    n->mac[VM_MAC_STRLEN] = '\0';
    int v = (int) n->model;
    if (get_enum(j, "model", field, nic_model_names, NIC_MODEL__COUNT, &v, errp) < 0)
        return -1;
    n->model = (enum nic_model) v;
    if (get_checked_string(j, "tap", field, true, tap_validate, &n->tap, errp) < 0)
        return -1;
    const json_t *net = json_object_get(j, "network");
    if (net && !json_is_null(net)) {
        AUTOFREE char *nf = json_path_join(field, "network");
        n->network = xzalloc(sizeof(*n->network));
        if (nic_network_parse(net, nf, n->network, errp) < 0)
            return -1;
    }
    return 0;
}

int vm_nic_from_json(const json_t *j, const char *field, struct vm_nic *out,
                     struct error **errp)
{
    struct vm_nic n = { 0 };
    if (nic_parse(j, field, &n, errp) < 0) {
        vm_nic_clear(&n);
        return -1;
    }
    *out = n;
    return 0;
}

json_t *vm_disk_to_json(const struct vm_disk *d)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:o}",
                     "id", d->id, "path", d->path,
                     "format", disk_format_to_string(d->format),
                     "bus", disk_bus_to_string(d->bus),
                     "cache", disk_cache_to_string(d->cache),
                     "readonly", d->readonly, "shared", d->shared,
                     "serial", d->serial ? json_string(d->serial) : json_null());
}

json_t *vm_nic_to_json(const struct vm_nic *n)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", n->id, "mac", n->mac,
                          "model", nic_model_to_string(n->model), "tap", n->tap);
    if (n->network)
        json_object_set_new(o, "network", nic_network_to_json(n->network));
    return o;
}

static json_t *cdrom_to_json(const struct vm_cdrom *c)
{
    return json_pack("{s:s, s:o}", "id", c->id,
                     "path", c->path ? json_string(c->path) : json_null());
}

/* ---- whole definition ---- */

void vm_def_free(struct vm_def *def)
{
    if (!def)
        return;
    free(def->name);
    free(def->cpu_model);
    free(def->machine);
    free(def->numa);
    free(def->kernel);
    free(def->initrd);
    free(def->cmdline);
    for (size_t i = 0; i < def->n_disks; i++)
        vm_disk_clear(&def->disks[i]);
    free(def->disks);
    for (size_t i = 0; i < def->n_cdroms; i++)
        vm_cdrom_clear(&def->cdroms[i]);
    free(def->cdroms);
    for (size_t i = 0; i < def->n_nics; i++)
        vm_nic_clear(&def->nics[i]);
    free(def->nics);
    free(def);
}

static int parse_uuid(const json_t *root, struct vm_def *def, struct error **errp)
{
    const char *u = NULL;
    if (json_get_string(root, "uuid", NULL, false, &u, errp) < 0)
        return -1;
    if (!u) {
        uuid_generate(def->uuid);
        return 0;
    }
    AUTOFREE char *qv = quote(u);
    if (!uuid_is_valid(u))
        return error_set_field(errp, ERR_INVALID_ARG, "uuid",
                               "uuid '%s' is not of the form 8-4-4-4-12 hexadecimal digits", qv);
    if (strspn(u, "0-") == strlen(u))
        return error_set_field(errp, ERR_INVALID_ARG, "uuid", "uuid '%s' is the nil UUID", qv);
    for (size_t i = 0; i <= UUID_STRLEN; i++)
        def->uuid[i] = (char) (u[i] >= 'A' && u[i] <= 'F' ? u[i] - 'A' + 'a' : u[i]);
    return 0;
}

static int parse_vcpus(const json_t *root, const struct vm_def_limits *limits,
                       struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "count", "max", "sockets", "cores", "threads", NULL };
    unsigned limit = limits && limits->max_vcpus && limits->max_vcpus < VM_MAX_VCPUS
                         ? limits->max_vcpus : VM_MAX_VCPUS;
    const json_t *v = json_object_get(root, "vcpus");
    def->vcpus = 1;
    if (!v || json_is_null(v) || json_is_integer(v)) {
        if (get_unsigned(root, "vcpus", NULL, false, 1, limit, &def->vcpus, errp) < 0)
            return -1;
        def->max_vcpus = def->sockets = def->vcpus;
        def->cores = def->threads = 1;
        return 0;
    }
    if (!json_is_object(v))
        return error_set_field(errp, ERR_INVALID_ARG, "vcpus",
                               "field 'vcpus' must be an integer or an object");
    if (json_check_keys(v, keys, "vcpus", errp) < 0 ||
        get_unsigned(v, "count", "vcpus", true, 1, limit, &def->vcpus, errp) < 0)
        return -1;
    def->max_vcpus = def->vcpus;
    def->cores = def->threads = 1;
    if (get_unsigned(v, "max", "vcpus", false, 1, limit, &def->max_vcpus, errp) < 0 ||
        get_unsigned(v, "cores", "vcpus", false, 1, limit, &def->cores, errp) < 0 ||
        get_unsigned(v, "threads", "vcpus", false, 1, limit, &def->threads, errp) < 0)
        return -1;
    if (def->max_vcpus < def->vcpus)
        return error_set_field(errp, ERR_INVALID_ARG, "vcpus.max",
                               "vcpus.max %u is less than vcpus.count %u", def->max_vcpus,
                               def->vcpus);
    def->sockets = def->max_vcpus / (def->cores * def->threads);
    if (def->sockets == 0)
        def->sockets = 1;
    if (get_unsigned(v, "sockets", "vcpus", false, 1, limit, &def->sockets, errp) < 0)
        return -1;
    unsigned long long product = (unsigned long long) def->sockets * def->cores * def->threads;
    if (product != def->max_vcpus)
        return error_set_field(errp, ERR_INVALID_ARG, "vcpus",
                               "vCPU topology sockets %u * cores %u * threads %u = %llu does not "
                               "equal vcpus.max %u", def->sockets, def->cores, def->threads,
                               product, def->max_vcpus);
    return 0;
}

static int parse_memory(const json_t *root, const struct vm_def_limits *limits,
                        struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "mib", "max_mib", "slots", NULL };
    unsigned long long limit = limits && limits->max_mem_mib ? limits->max_mem_mib
                                                             : DEFAULT_MAX_MEM_MIB;
    const json_t *v = json_object_get(root, "memory");
    if (!v || json_is_integer(v) || json_is_null(v)) {
        if (get_ull(root, "memory", NULL, true, VM_MIN_MEM_MIB, limit, &def->mem_mib, errp) < 0)
            return -1;
        def->max_mem_mib = def->mem_mib;
        return 0;
    }
    if (!json_is_object(v))
        return error_set_field(errp, ERR_INVALID_ARG, "memory",
                               "field 'memory' must be an integer (MiB) or an object");
    if (json_check_keys(v, keys, "memory", errp) < 0 ||
        get_ull(v, "mib", "memory", true, VM_MIN_MEM_MIB, limit, &def->mem_mib, errp) < 0)
        return -1;
    def->max_mem_mib = def->mem_mib;
    if (get_ull(v, "max_mib", "memory", false, VM_MIN_MEM_MIB, limit, &def->max_mem_mib,
                errp) < 0 ||
        get_unsigned(v, "slots", "memory", false, 0, VM_MAX_MEM_SLOTS, &def->mem_slots,
                     errp) < 0)
        return -1;
    if (def->max_mem_mib < def->mem_mib)
        return error_set_field(errp, ERR_INVALID_ARG, "memory.max_mib",
                               "memory.max_mib %llu is less than memory.mib %llu",
                               def->max_mem_mib, def->mem_mib);
    if (def->max_mem_mib > def->mem_mib) {
        if (def->mem_slots == 0)
            return error_set_field(errp, ERR_INVALID_ARG, "memory.slots",
                                   "memory hot-plug (max_mib %llu > mib %llu) needs "
                                   "memory.slots between 1 and %d", def->max_mem_mib,
                                   def->mem_mib, VM_MAX_MEM_SLOTS);
        if ((def->max_mem_mib - def->mem_mib) % VM_HOTPLUG_MEM_ALIGN_MIB)
            return error_set_field(errp, ERR_INVALID_ARG, "memory.max_mib",
                                   "memory.max_mib %llu minus memory.mib %llu is not a multiple "
                                   "of %d MiB (the hot-plug unit)", def->max_mem_mib,
                                   def->mem_mib, VM_HOTPLUG_MEM_ALIGN_MIB);
    } else if (def->mem_slots) {
        return error_set_field(errp, ERR_INVALID_ARG, "memory.slots",
                               "memory.slots is %u but memory.max_mib equals memory.mib: "
                               "there is nothing to hot-plug", def->mem_slots);
    }
    return 0;
}

static int parse_cpu_machine(const json_t *root, struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "model", NULL };
    const char *model = "host", *machine = "q35";
    const json_t *cpu = json_object_get(root, "cpu");
    if (cpu && !json_is_null(cpu)) {
        if (require_object(cpu, "cpu", errp) < 0 || json_check_keys(cpu, keys, "cpu", errp) < 0 ||
            json_get_string(cpu, "model", "cpu", false, &model, errp) < 0)
            return -1;
    }
    AUTOFREE char *qm = quote(model);
    if (!*model || strlen(model) > 63)
        return error_set_field(errp, ERR_INVALID_ARG, "cpu.model",
                               "CPU model '%s' must be 1 to 63 bytes long", qm);
    const char *bad = first_bad_char(model, "_.-");
    if (bad)
        return bad_char_error(errp, "cpu.model", "CPU model", model, *bad,
                              "letters, digits, '_', '.' and '-'");
    if (json_get_string(root, "machine", NULL, false, &machine, errp) < 0)
        return -1;
    if (!machine_is_valid(machine)) {
        AUTOFREE char *qv = quote(machine);
        return error_set_field(errp, ERR_INVALID_ARG, "machine",
                               "machine '%s' is not one of 'pc', 'q35', 'pc-q35-X.Y', "
                               "'pc-i440fx-X.Y'", qv);
    }
    def->cpu_model = xstrdup(model);
    def->machine = xstrdup(machine);
    return 0;
}

/* Parses "N" or "N-M" (decimal, no sign) into an inclusive range. */
static bool cpu_range_parse(const char *s, unsigned *first, unsigned *last)
{
    unsigned long a = 0, b;
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 3)
        return false;
    a = strtoul(s, NULL, 10);
    s += n;
    b = a;
    if (*s == '-') {
        s++;
        n = strspn(s, "0123456789");
        if (n == 0 || n > 3)
            return false;
        b = strtoul(s, NULL, 10);
        s += n;
    }
    if (*s || b < a)
        return false;
    *first = (unsigned) a;
    *last = (unsigned) b;
    return true;
}

static int parse_numa(const json_t *root, const struct vm_def_limits *limits,
                      struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "cpus", "mem_mib", NULL };
    const json_t *arr = json_object_get(root, "numa");
    if (!arr || json_is_null(arr))
        return 0;
    if (require_array(arr, "numa", VM_MAX_NUMA_NODES, errp) < 0)
        return -1;
    if (json_array_size(arr) == 0)
        return 0;
    unsigned long long limit = limits && limits->max_mem_mib ? limits->max_mem_mib
                                                             : DEFAULT_MAX_MEM_MIB;
    def->numa = xcalloc(json_array_size(arr), sizeof(*def->numa));
    signed char owner[VM_MAX_VCPUS];
    memset(owner, -1, sizeof(owner));
    unsigned long long sum = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *n = json_array_get(arr, i);
        AUTOFREE char *f = json_path_index("numa", i);
        AUTOFREE char *cf = json_path_join(f, "cpus");
        struct vm_numa_node *node = &def->numa[i];
        const char *cpus = NULL;
        if (require_object(n, f, errp) < 0 || json_check_keys(n, keys, f, errp) < 0 ||
            json_get_string(n, "cpus", f, true, &cpus, errp) < 0 ||
            get_ull(n, "mem_mib", f, true, 1, limit, &node->mem_mib, errp) < 0)
            return -1;
        AUTOFREE char *qv = quote(cpus);
        if (!cpu_range_parse(cpus, &node->cpu_first, &node->cpu_last))
            return error_set_field(errp, ERR_INVALID_ARG, cf,
                                   "%s '%s' is not a vCPU index 'N' or range 'N-M'", cf, qv);
        if (node->cpu_last >= def->max_vcpus)
            return error_set_field(errp, ERR_INVALID_ARG, cf,
                                   "%s '%s' goes beyond the last vCPU %u (vcpus.max %u)", cf, qv,
                                   def->max_vcpus - 1, def->max_vcpus);
        for (unsigned c = node->cpu_first; c <= node->cpu_last; c++) {
            if (owner[c] >= 0)
                return error_set_field(errp, ERR_INVALID_ARG, cf,
                                       "vCPU %u of %s '%s' is already in numa[%d]", c, cf, qv,
                                       owner[c]);
            owner[c] = (signed char) i;
        }
        sum += node->mem_mib;
        def->n_numa++;
    }
    for (unsigned c = 0; c < def->max_vcpus; c++)
        if (owner[c] < 0)
            return error_set_field(errp, ERR_INVALID_ARG, "numa",
                                   "vCPU %u is in no NUMA node; the nodes must cover vCPUs 0-%u",
                                   c, def->max_vcpus - 1);
    if (sum != def->mem_mib)
        return error_set_field(errp, ERR_INVALID_ARG, "numa",
                               "NUMA node memory sums to %llu MiB but memory.mib is %llu", sum,
                               def->mem_mib);
    return 0;
}

static int check_cmdline(const char *cmdline, struct error **errp)
{
    size_t len = strlen(cmdline);
    if (len > VM_CMDLINE_MAX)
        return error_set_field(errp, ERR_INVALID_ARG, "boot.cmdline",
                               "boot.cmdline is %zu bytes long, at most %d are allowed", len,
                               VM_CMDLINE_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) cmdline[i];
        if (c < 0x20 || c >= 0x7f) {
            AUTOFREE char *qv = quote(cmdline);
            return error_set_field(errp, ERR_INVALID_ARG, "boot.cmdline",
                                   "boot.cmdline '%s' contains the non-printable byte 0x%02x at "
                                   "offset %zu", qv, c, i);
        }
    }
    return 0;
}

static int parse_boot(const json_t *root, const struct vm_def_limits *limits,
                      struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "order", "kernel", "initrd", "cmdline", NULL };
    const json_t *boot = json_object_get(root, "boot");
    const json_t *order = NULL;
    const char *kernel = NULL, *initrd = NULL, *cmdline = NULL;
    if (boot && !json_is_null(boot)) {
        if (require_object(boot, "boot", errp) < 0 ||
            json_check_keys(boot, keys, "boot", errp) < 0 ||
            json_get_string(boot, "kernel", "boot", false, &kernel, errp) < 0 ||
            json_get_string(boot, "initrd", "boot", false, &initrd, errp) < 0 ||
            json_get_string(boot, "cmdline", "boot", false, &cmdline, errp) < 0)
            return -1;
        order = json_object_get(boot, "order");
        if (json_is_null(order))
            order = NULL;
    }
    if (kernel) {
        if (order)
            return error_set_field(errp, ERR_INVALID_ARG, "boot.order",
                                   "boot.order and boot.kernel are exclusive: a direct kernel "
                                   "boot has no firmware boot order");
        if (vm_image_path_validate(kernel, limits, "boot.kernel", errp) < 0 ||
            (initrd && vm_image_path_validate(initrd, limits, "boot.initrd", errp) < 0) ||
            (cmdline && check_cmdline(cmdline, errp) < 0))
            return -1;
        def->kernel = xstrdup(kernel);
        def->initrd = xstrdup(initrd);
        def->cmdline = xstrdup(cmdline);
        return 0;
    }
    if (initrd)
        return error_set_field(errp, ERR_INVALID_ARG, "boot.initrd",
                               "boot.initrd is set without boot.kernel");
    if (cmdline)
        return error_set_field(errp, ERR_INVALID_ARG, "boot.cmdline",
                               "boot.cmdline is set without boot.kernel");
    if (!order) {
        def->boot_order[0] = BOOT_DEV_DISK;
        def->boot_order[1] = BOOT_DEV_CDROM;
        def->n_boot = 2;
        return 0;
    }
    if (require_array(order, "boot.order", BOOT_DEV__COUNT, errp) < 0)
        return -1;
    if (json_array_size(order) == 0)
        return error_set_field(errp, ERR_INVALID_ARG, "boot.order",
                               "boot.order must name at least one device");
    for (size_t i = 0; i < json_array_size(order); i++) {
        AUTOFREE char *f = json_path_index("boot.order", i);
        const char *s = json_string_value(json_array_get(order, i));
        int d = boot_dev_from_string(s);
        if (d < 0) {
            AUTOFREE char *qv = quote(s ? s : "(not a string)");
            return error_set_field(errp, ERR_INVALID_ARG, f,
                                   "%s '%s' is not one of 'disk', 'cdrom', 'network'", f, qv);
        }
        for (size_t k = 0; k < def->n_boot; k++)
            if (def->boot_order[k] == (enum boot_dev) d)
                return error_set_field(errp, ERR_INVALID_ARG, f, "%s '%s' is listed twice", f,
                                       s);
        def->boot_order[def->n_boot++] = (enum boot_dev) d;
    }
    return 0;
}

/* Remembers which device took an id, to refuse duplicates across lists. */
struct id_seen {
    const char *id;
    char *field;
};

static int check_unique(struct id_seen *seen, size_t *n, const char *value, const char *field,
                        const char *what, struct error **errp)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(seen[i].id, value)) {
            AUTOFREE char *qv = quote(value);
            return error_set_field(errp, ERR_INVALID_ARG, field, "%s '%s' is already used by %s",
                                   what, qv, seen[i].field);
        }
    seen[*n].id = value;
    seen[*n].field = xstrdup(field);
    (*n)++;
    return 0;
}

static void seen_free(struct id_seen *seen, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(seen[i].field);
    free(seen);
}

static int parse_devices(const json_t *root, const struct vm_def_limits *limits,
                         struct vm_def *def, struct error **errp)
{
    const json_t *disks = json_object_get(root, "disks");
    const json_t *cdroms = json_object_get(root, "cdroms");
    const json_t *nics = json_object_get(root, "nics");
    unsigned ide_slots = vm_ide_slots(def->machine);
    if (disks && !json_is_null(disks)) {
        if (require_array(disks, "disks", VM_MAX_DISKS, errp) < 0)
            return -1;
        def->disks = xcalloc(json_array_size(disks) + 1, sizeof(*def->disks));
        for (size_t i = 0; i < json_array_size(disks); i++) {
            AUTOFREE char *f = json_path_index("disks", i);
            if (vm_disk_from_json(json_array_get(disks, i), limits, f, &def->disks[i], errp) < 0)
                return -1;
            def->n_disks++;
        }
    }
    if (cdroms && !json_is_null(cdroms)) {
        if (require_array(cdroms, "cdroms", ide_slots, errp) < 0)
            return -1;
        def->cdroms = xcalloc(json_array_size(cdroms) + 1, sizeof(*def->cdroms));
        for (size_t i = 0; i < json_array_size(cdroms); i++) {
            AUTOFREE char *f = json_path_index("cdroms", i);
            if (cdrom_parse(json_array_get(cdroms, i), limits, f, &def->cdroms[i], errp) < 0) {
                vm_cdrom_clear(&def->cdroms[i]);
                return -1;
            }
            def->n_cdroms++;
        }
    }
    if (nics && !json_is_null(nics)) {
        if (require_array(nics, "nics", VM_MAX_NICS, errp) < 0)
            return -1;
        def->nics = xcalloc(json_array_size(nics) + 1, sizeof(*def->nics));
        for (size_t i = 0; i < json_array_size(nics); i++) {
            AUTOFREE char *f = json_path_index("nics", i);
            if (vm_nic_from_json(json_array_get(nics, i), f, &def->nics[i], errp) < 0)
                return -1;
            def->n_nics++;
        }
    }

    /* Cross checks, in document order. */
    size_t total = def->n_disks + def->n_cdroms + def->n_nics;
    struct id_seen *ids = xcalloc(total + 1, sizeof(*ids));
    struct id_seen *uniq = xcalloc(total + 1, sizeof(*uniq));
    size_t n_ids = 0, n_uniq = 0;
    unsigned ide_used = 0;
    int ret = -1;
    for (size_t i = 0; i < def->n_disks; i++) {
        AUTOFREE char *f = json_path_index("disks", i);
        AUTOFREE char *fid = json_path_join(f, "id");
        AUTOFREE char *fp = json_path_join(f, "path");
        if (check_unique(ids, &n_ids, def->disks[i].id, fid, "device id", errp) < 0 ||
            check_unique(uniq, &n_uniq, def->disks[i].path, fp, "disk path", errp) < 0)
            goto cleanup;
        if (def->disks[i].bus == DISK_BUS_SATA && ++ide_used > ide_slots) {
            error_set_field(errp, ERR_INVALID_ARG, f,
                            "%s needs a SATA/IDE slot but machine '%s' has only %u (shared by "
                            "sata disks and cdroms)", f, def->machine, ide_slots);
            goto cleanup;
        }
    }
    seen_free(uniq, n_uniq);
    uniq = xcalloc(total + 1, sizeof(*uniq));
    n_uniq = 0;
    for (size_t i = 0; i < def->n_cdroms; i++) {
        AUTOFREE char *f = json_path_index("cdroms", i);
        AUTOFREE char *fid = json_path_join(f, "id");
        if (check_unique(ids, &n_ids, def->cdroms[i].id, fid, "device id", errp) < 0)
            goto cleanup;
        if (++ide_used > ide_slots) {
            error_set_field(errp, ERR_INVALID_ARG, f,
                            "%s needs a SATA/IDE slot but machine '%s' has only %u (shared by "
                            "sata disks and cdroms)", f, def->machine, ide_slots);
            goto cleanup;
        }
    }
    struct id_seen *taps = xcalloc(total + 1, sizeof(*taps));
    size_t n_taps = 0;
    for (size_t i = 0; i < def->n_nics; i++) {
        AUTOFREE char *f = json_path_index("nics", i);
        AUTOFREE char *fid = json_path_join(f, "id");
        AUTOFREE char *fm = json_path_join(f, "mac");
        AUTOFREE char *ft = json_path_join(f, "tap");
        if (check_unique(ids, &n_ids, def->nics[i].id, fid, "device id", errp) < 0 ||
            check_unique(uniq, &n_uniq, def->nics[i].mac, fm, "MAC address", errp) < 0 ||
            check_unique(taps, &n_taps, def->nics[i].tap, ft, "tap", errp) < 0) {
            seen_free(taps, n_taps);
            goto cleanup;
        }
    }
    seen_free(taps, n_taps);
    ret = 0;
cleanup:
    seen_free(ids, n_ids);
    seen_free(uniq, n_uniq);
    return ret;
}

static int parse_display(const json_t *root, struct vm_def *def, struct error **errp)
{
    static const char *const keys[] = { "listen", "websocket", NULL };
    def->serial = def->balloon = def->guest_agent = true;
    def->vnc = VNC_LISTEN_NONE;
    if (json_get_bool(root, "serial", NULL, false, &def->serial, errp) < 0 ||
        json_get_bool(root, "balloon", NULL, false, &def->balloon, errp) < 0 ||
        json_get_bool(root, "guest_agent", NULL, false, &def->guest_agent, errp) < 0)
        return -1;
    const json_t *vnc = json_object_get(root, "vnc");
    if (!vnc || json_is_null(vnc))
        return 0;
    const char *listen = NULL;
    if (require_object(vnc, "vnc", errp) < 0 || json_check_keys(vnc, keys, "vnc", errp) < 0 ||
        json_get_string(vnc, "listen", "vnc", true, &listen, errp) < 0)
        return -1;
    int l = -1;
    if (get_enum(vnc, "listen", "vnc", vnc_listen_names, ARRAY_SIZE(vnc_listen_names), &l,
                 errp) < 0 ||
        json_get_bool(vnc, "websocket", "vnc", false, &def->vnc_websocket, errp) < 0)
        return -1;
    def->vnc = (enum vnc_listen) l;
    if (def->vnc_websocket && def->vnc != VNC_LISTEN_LOOPBACK)
        return error_set_field(errp, ERR_INVALID_ARG, "vnc.websocket",
                               "vnc.websocket needs vnc.listen 'loopback', not '%s'",
                               vnc_listen_names[def->vnc]);
    return 0;
}

struct vm_def *vm_def_from_json(const json_t *json, const struct vm_def_limits *limits,
                                struct error **errp)
{
    static const char *const keys[] = {
        "name", "uuid", "vcpus", "memory", "cpu", "machine", "numa", "boot", "disks",
        "cdroms", "nics", "serial", "vnc", "balloon", "guest_agent", NULL
    };
    if (!json_is_object(json))
        return error_set(errp, ERR_INVALID_ARG, "a VM definition must be a JSON object"), NULL;
    if (json_check_keys(json, keys, NULL, errp) < 0)
        return NULL;
    AUTOVMDEF struct vm_def *def = xzalloc(sizeof(*def));
    if (get_checked_string(json, "name", NULL, true, vm_name_validate, &def->name, errp) < 0 ||
        parse_uuid(json, def, errp) < 0 || parse_vcpus(json, limits, def, errp) < 0 ||
        parse_memory(json, limits, def, errp) < 0 || parse_cpu_machine(json, def, errp) < 0 ||
        parse_numa(json, limits, def, errp) < 0 || parse_boot(json, limits, def, errp) < 0 ||
        parse_devices(json, limits, def, errp) < 0 || parse_display(json, def, errp) < 0)
        return NULL;
    return steal_pointer(&def);
}

json_t *vm_def_to_json(const struct vm_def *def)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(def->name));
    json_object_set_new(j, "uuid", json_string(def->uuid));
    json_object_set_new(j, "vcpus",
                        json_pack("{s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t) def->vcpus,
                                  "max", (json_int_t) def->max_vcpus,
                                  "sockets", (json_int_t) def->sockets,
                                  "cores", (json_int_t) def->cores,
                                  "threads", (json_int_t) def->threads));
    json_object_set_new(j, "memory",
                        json_pack("{s:I, s:I, s:I}", "mib", (json_int_t) def->mem_mib,
                                  "max_mib", (json_int_t) def->max_mem_mib,
                                  "slots", (json_int_t) def->mem_slots));
    json_object_set_new(j, "cpu", json_pack("{s:s}", "model", def->cpu_model));
    json_object_set_new(j, "machine", json_string(def->machine));
    json_t *numa = json_array();
    for (size_t i = 0; i < def->n_numa; i++) {
        const struct vm_numa_node *n = &def->numa[i];
        AUTOFREE char *cpus = n->cpu_first == n->cpu_last
                                  ? xasprintf("%u", n->cpu_first)
                                  : xasprintf("%u-%u", n->cpu_first, n->cpu_last);
        json_array_append_new(numa, json_pack("{s:s, s:I}", "cpus", cpus, "mem_mib",
                                              (json_int_t) n->mem_mib));
    }
    json_object_set_new(j, "numa", numa);
    if (def->kernel) {
        json_object_set_new(j, "boot",
                            json_pack("{s:s, s:o, s:o}", "kernel", def->kernel,
                                      "initrd", def->initrd ? json_string(def->initrd)
                                                            : json_null(),
                                      "cmdline", def->cmdline ? json_string(def->cmdline)
                                                              : json_null()));
    } else {
        json_t *order = json_array();
        for (size_t i = 0; i < def->n_boot; i++)
            json_array_append_new(order, json_string(boot_dev_to_string(def->boot_order[i])));
        json_object_set_new(j, "boot", json_pack("{s:o}", "order", order));
    }
    json_t *a = json_array();
    for (size_t i = 0; i < def->n_disks; i++)
        json_array_append_new(a, vm_disk_to_json(&def->disks[i]));
    json_object_set_new(j, "disks", a);
    a = json_array();
    for (size_t i = 0; i < def->n_cdroms; i++)
        json_array_append_new(a, cdrom_to_json(&def->cdroms[i]));
    json_object_set_new(j, "cdroms", a);
    a = json_array();
    for (size_t i = 0; i < def->n_nics; i++)
        json_array_append_new(a, vm_nic_to_json(&def->nics[i]));
    json_object_set_new(j, "nics", a);
    json_object_set_new(j, "serial", json_boolean(def->serial));
    json_object_set_new(j, "vnc", json_pack("{s:s, s:b}", "listen", vnc_listen_names[def->vnc],
                                            "websocket", def->vnc_websocket));
    json_object_set_new(j, "balloon", json_boolean(def->balloon));
    json_object_set_new(j, "guest_agent", json_boolean(def->guest_agent));
    return j;
}

struct vm_def *vm_def_copy(const struct vm_def *def)
{
    struct vm_def *c = xmalloc(sizeof(*c));
    *c = *def;
    c->name = xstrdup(def->name);
    c->cpu_model = xstrdup(def->cpu_model);
    c->machine = xstrdup(def->machine);
    c->kernel = xstrdup(def->kernel);
    c->initrd = xstrdup(def->initrd);
    c->cmdline = xstrdup(def->cmdline);
    c->numa = xcalloc(def->n_numa + 1, sizeof(*c->numa));
    if (def->n_numa)
        memcpy(c->numa, def->numa, def->n_numa * sizeof(*c->numa));
    c->disks = xcalloc(def->n_disks + 1, sizeof(*c->disks));
    for (size_t i = 0; i < def->n_disks; i++) {
        c->disks[i] = def->disks[i];
        c->disks[i].id = xstrdup(def->disks[i].id);
        c->disks[i].path = xstrdup(def->disks[i].path);
        c->disks[i].serial = xstrdup(def->disks[i].serial);
    }
    c->cdroms = xcalloc(def->n_cdroms + 1, sizeof(*c->cdroms));
    for (size_t i = 0; i < def->n_cdroms; i++) {
        c->cdroms[i].id = xstrdup(def->cdroms[i].id);
        c->cdroms[i].path = xstrdup(def->cdroms[i].path);
    }
    c->nics = xcalloc(def->n_nics + 1, sizeof(*c->nics));
    for (size_t i = 0; i < def->n_nics; i++) {
        c->nics[i] = def->nics[i];
        c->nics[i].id = xstrdup(def->nics[i].id);
        c->nics[i].tap = xstrdup(def->nics[i].tap);
        c->nics[i].network = vm_nic_network_copy(def->nics[i].network);
    }
    return c;
}
