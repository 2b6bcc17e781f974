/* net_config.c - parse, validate and serialize the host network configuration.
 * See net_config.h; the JSON forms are in docs/network.md.  No I/O. */
#include "net/net_config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/vm_def.h"
#include "util/json_util.h"
#include "util/mem.h"

/* ---- enums ---------------------------------------------------------------- */

static const char *const datapath_names[] = { "auto", "system", "netdev" };
static const char *const bond_names[] = { "active-backup", "balance-slb", "balance-tcp" };
static const char *const lacp_names[] = { "off", "active", "passive" };
static const char *const prio_names[] = { "normal", "low", "high" };
static const char *const dir_names[] = { "ingress", "egress" };
static const char *const proto_names[] = { "any", "tcp", "udp", "icmp" };
static const char *const plane_names[] = { "management", "storage", "business" };

#define ENUM_TO_STRING(fn, type, table)                                  \
    const char *fn(enum type v)                                          \
    {                                                                    \
        return (unsigned) v < ARRAY_SIZE(table) ? table[v] : "unknown";  \
    }
ENUM_TO_STRING(net_datapath_to_string, net_datapath, datapath_names)
ENUM_TO_STRING(net_bond_mode_to_string, net_bond_mode, bond_names)
ENUM_TO_STRING(net_lacp_to_string, net_lacp, lacp_names)
ENUM_TO_STRING(net_priority_to_string, net_priority, prio_names)
ENUM_TO_STRING(sg_direction_to_string, sg_direction, dir_names)
ENUM_TO_STRING(sg_protocol_to_string, sg_protocol, proto_names)
ENUM_TO_STRING(net_plane_to_string, net_plane, plane_names)

/* Reads optional enum 'key' into '*out' (left alone when absent). */
static int get_enum(const json_t *j, const char *key, const char *prefix,
                    const char *const *names, size_t n, int *out, struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(j, key, prefix, false, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = (int) i;
            return 0;
        }
    AUTOFREE char *f = json_path_join(prefix, key);
    AUTOFREE char *list = NULL;
    for (size_t i = 0; i < n; i++) {
        char *next = xasprintf("%s%s'%s'", list ? list : "", list ? ", " : "", names[i]);
        free(list);
        list = next;
    }
    return error_set_field(errp, ERR_INVALID_ARG, f, "%s '%.40s' is not one of %s", key, s,
                           list);
}

/* ---- names ---------------------------------------------------------------- */

int net_name_validate(const char *name, const char *field, struct error **errp)
{
    return vm_net_name_validate(name, field, errp);
}

int net_ifname_validate(const char *name, const char *field, struct error **errp)
{
    size_t len = strlen(name);
    if (len == 0 || len > 15)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "interface name '%.40s' must be 1 to 15 bytes long", name);
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char) *p) && *p != '_' && *p != '.' && *p != '-')
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "interface name '%.40s' may only contain letters, digits, "
                                   "'_', '.' and '-'", name);
    if (!strcmp(name, ".") || !strcmp(name, ".."))
        return error_set_field(errp, ERR_INVALID_ARG, field, "interface name '%s' is refused",
                               name);
    return 0;
}

/* A "name" key in a body must match the name from the URL. */
static int check_name_key(const json_t *j, const char *name, const char *field, char **out,
                          struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(j, "name", field, name == NULL, &s, errp) < 0)
        return -1;
    AUTOFREE char *f = json_path_join(field, "name");
    if (s && name && strcmp(s, name))
        return error_set_field(errp, ERR_INVALID_ARG, f, "name '%.40s' differs from '%s'", s,
                               name);
    const char *n = name ? name : s;
    if (net_name_validate(n, f, errp) < 0)
        return -1;
    *out = xstrdup(n);
    return 0;
}

/* ---- VLAN sets -------------------------------------------------------------- */

static void vlan_set_add(struct vlan_set *s, unsigned vid)
{
    s->bits[vid / 64] |= 1ULL << (vid % 64);
}

bool vlan_set_has(const struct vlan_set *s, unsigned vid)
{
    return vid < 4096 && (s->bits[vid / 64] >> (vid % 64)) & 1;
}

bool vlan_set_is_empty(const struct vlan_set *s)
{
    for (size_t i = 0; i < 64; i++)
        if (s->bits[i])
            return false;
    return true;
}

static int parse_vid(const char **p, unsigned *out)
{
    if (!isdigit((unsigned char) **p))
        return -1;
    unsigned long v = 0;
    while (isdigit((unsigned char) **p)) {
        v = v * 10 + (unsigned long) (**p - '0');
        if (v > 9999)
            return -1;
        (*p)++;
    }
    *out = (unsigned) v;
    return 0;
}

int vlan_set_parse(const char *text, struct vlan_set *out, const char *field,
                   struct error **errp)
{
    memset(out, 0, sizeof(*out));
    const char *p = text;
    if (!*p)
        return error_set_field(errp, ERR_INVALID_ARG, field, "VLAN list must not be empty");
    for (;;) {
        unsigned a, b;
        if (parse_vid(&p, &a) < 0)
            goto bad;
        b = a;
        if (*p == '-') {
            p++;
            if (parse_vid(&p, &b) < 0)
                goto bad;
        }
        if (a < 1 || b > 4094 || a > b)
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "VLAN range '%u-%u' in '%.60s' is not within 1-4094", a, b,
                                   text);
        for (unsigned v = a; v <= b; v++)
            vlan_set_add(out, v);
        if (!*p)
            return 0;
        if (*p != ',')
            goto bad;
        p++;
    }
bad:
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "VLAN list '%.60s' is not of the form '100-200,300'", text);
}

char *vlan_set_format(const struct vlan_set *s)
{
    char *out = xstrdup("");
    for (unsigned v = 1; v < 4095; v++) {
        if (!vlan_set_has(s, v))
            continue;
        unsigned e = v;
        while (e + 1 < 4095 && vlan_set_has(s, e + 1))
            e++;
        char *n = e == v ? xasprintf("%s%s%u", out, *out ? "," : "", v)
                         : xasprintf("%s%s%u-%u", out, *out ? "," : "", v, e);
        free(out);
        out = n;
        v = e;
    }
    return out;
}

/* ---- IPv4 ------------------------------------------------------------------- */

int ipv4_parse(const char *text, uint32_t *out)
{
    struct in_addr a;
    if (!text || strlen(text) > 15 || inet_pton(AF_INET, text, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

void ipv4_format(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

int ipv4_cidr_parse(const char *text, uint32_t *addr, unsigned *prefix, const char *field,
                    struct error **errp)
{
    char buf[32];
    if (strlen(text) >= sizeof buf)
        goto bad;
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    unsigned pfx = 32;
    if (slash) {
        *slash = '\0';
        const char *p = slash + 1;
        unsigned v;
        if (parse_vid(&p, &v) < 0 || *p || v > 32)
            goto bad;
        pfx = v;
    }
    uint32_t a;
    if (ipv4_parse(buf, &a) < 0)
        goto bad;
    uint32_t mask = pfx ? 0xffffffffu << (32 - pfx) : 0;
    if (a & ~mask)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "'%.40s' has host bits set (network address expected)", text);
    *addr = a;
    *prefix = pfx;
    return 0;
bad:
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "'%.40s' is not an IPv4 address or CIDR (a.b.c.d[/n])", text);
}

/* ---- string lists ------------------------------------------------------------- */

/* Reads an optional array of strings, each checked by 'check'. */
static int get_strv(const json_t *j, const char *key, const char *prefix, size_t max,
                    int (*check)(const char *, const char *, struct error **), char ***out,
                    struct error **errp)
{
    *out = xcalloc(1, sizeof(char *));
    const json_t *a = json_object_get(j, key);
    if (!a || json_is_null(a))
        return 0;
    AUTOFREE char *f = json_path_join(prefix, key);
    if (!json_is_array(a))
        return error_set_field(errp, ERR_INVALID_ARG, f, "%s must be an array of strings", key);
    size_t n = json_array_size(a);
    if (n > max)
        return error_set_field(errp, ERR_INVALID_ARG, f, "%s has %zu entries, at most %zu", key,
                               n, max);
    free(*out);
    *out = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        AUTOFREE char *fi = json_path_index(f, i);
        const char *s = json_string_value(json_array_get(a, i));
        if (!s)
            return error_set_field(errp, ERR_INVALID_ARG, fi, "must be a string");
        if (check(s, fi, errp) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (!strcmp((*out)[k], s))
                return error_set_field(errp, ERR_INVALID_ARG, fi, "'%s' is listed twice", s);
        (*out)[i] = xstrdup(s);
    }
    return 0;
}

static json_t *strv_to_json(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static char **strv_copy(char *const *v)
{
    size_t n = v ? strv_len(v) : 0;
    char **c = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        c[i] = xstrdup(v[i]);
    return c;
}

/* ---- port groups ---------------------------------------------------------------- */

void net_portgroup_clear(struct net_portgroup *pg)
{
    if (!pg)
        return;
    free(pg->name);
    memset(pg, 0, sizeof(*pg));
}

static int rate_parse(const json_t *j, const char *key, const char *prefix, struct net_rate *r,
                      struct error **errp)
{
    const json_t *o = json_object_get(j, key);
    memset(r, 0, sizeof(*r));
    if (!o || json_is_null(o))
        return 0;
    AUTOFREE char *f = json_path_join(prefix, key);
    static const char *const keys[] = { "rate_kbps", "burst_kbit", NULL };
    if (!json_is_object(o))
        return error_set_field(errp, ERR_INVALID_ARG, f, "%s must be an object", key);
    if (json_check_keys(o, keys, f, errp) < 0 ||
        json_get_uint(o, "rate_kbps", f, true, 8, 100000000, &r->rate_kbps, errp) < 0)
        return -1;
    unsigned long long def = r->rate_kbps / 5 < 64 ? 64 : r->rate_kbps / 5;
    r->burst_kbit = def;
    return json_get_uint(o, "burst_kbit", f, false, 8, 100000000, &r->burst_kbit, errp);
}

static json_t *rate_to_json(const struct net_rate *r)
{
    if (!r->rate_kbps)
        return json_null();
    return json_pack("{s:I, s:I}", "rate_kbps", (json_int_t) r->rate_kbps, "burst_kbit",
                     (json_int_t) r->burst_kbit);
}

static int pg_parse(const json_t *j, const char *name, const char *field,
                    struct net_portgroup *pg, struct error **errp)
{
    static const char *const keys[] = { "name", "vlan", "trunk", "bandwidth", "priority",
                                         "broadcast_suppression", "dhcp_isolation",
                                         "ip_mac_binding", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field[0] ? field : NULL,
                               "a port group must be an object");
    if (json_check_keys(j, keys, field, errp) < 0 ||
        check_name_key(j, name, field, &pg->name, errp) < 0)
        return -1;
    unsigned long long vlan = 0;
    if (json_get_uint(j, "vlan", field, false, 1, 4094, &vlan, errp) < 0)
        return -1;
    pg->vlan = (unsigned) vlan;
    const char *trunk = NULL;
    if (json_get_string(j, "trunk", field, false, &trunk, errp) < 0)
        return -1;
    if (trunk) {
        AUTOFREE char *f = json_path_join(field, "trunk");
        if (pg->vlan)
            return error_set_field(errp, ERR_INVALID_ARG, f,
                                   "a port group is either an access VLAN or a trunk");
        if (vlan_set_parse(trunk, &pg->trunk_vlans, f, errp) < 0)
            return -1;
        pg->trunk = true;
    }
    const json_t *bw = json_object_get(j, "bandwidth");
    if (bw && !json_is_null(bw)) {
        AUTOFREE char *f = json_path_join(field, "bandwidth");
        static const char *const bkeys[] = { "in", "out", NULL };
        if (!json_is_object(bw))
            return error_set_field(errp, ERR_INVALID_ARG, f, "bandwidth must be an object");
        if (json_check_keys(bw, bkeys, f, errp) < 0 ||
            rate_parse(bw, "in", f, &pg->bw_in, errp) < 0 ||
            rate_parse(bw, "out", f, &pg->bw_out, errp) < 0)
            return -1;
    }
    int prio = NET_PRIO_NORMAL;
    if (get_enum(j, "priority", field, prio_names, ARRAY_SIZE(prio_names), &prio, errp) < 0)
        return -1;
    pg->priority = (enum net_priority) prio;
    const json_t *bs = json_object_get(j, "broadcast_suppression");
    if (bs && !json_is_null(bs)) {
        AUTOFREE char *f = json_path_join(field, "broadcast_suppression");
        static const char *const skeys[] = { "pps", "burst", NULL };
        if (!json_is_object(bs))
            return error_set_field(errp, ERR_INVALID_ARG, f,
                                   "broadcast_suppression must be an object");
        if (json_check_keys(bs, skeys, f, errp) < 0 ||
            json_get_uint(bs, "pps", f, true, 1, 10000000, &pg->bcast_pps, errp) < 0)
            return -1;
        pg->bcast_burst = pg->bcast_pps / 10 ? pg->bcast_pps / 10 : 1;
        if (json_get_uint(bs, "burst", f, false, 1, 10000000, &pg->bcast_burst, errp) < 0)
            return -1;
    }
    if (json_get_bool(j, "dhcp_isolation", field, false, &pg->dhcp_isolation, errp) < 0 ||
        json_get_bool(j, "ip_mac_binding", field, false, &pg->ip_mac_binding, errp) < 0)
        return -1;
    return 0;
}

int net_portgroup_from_json(const json_t *j, const char *name, const char *field,
                            struct net_portgroup *out, struct error **errp)
{
    struct net_portgroup pg = { 0 };
    if (pg_parse(j, name, field, &pg, errp) < 0) {
        net_portgroup_clear(&pg);
        return -1;
    }
    *out = pg;
    return 0;
}

json_t *net_portgroup_to_json(const struct net_portgroup *pg)
{
    AUTOFREE char *trunk = pg->trunk ? vlan_set_format(&pg->trunk_vlans) : NULL;
    json_t *bs = pg->bcast_pps ? json_pack("{s:I, s:I}", "pps", (json_int_t) pg->bcast_pps,
                                           "burst", (json_int_t) pg->bcast_burst)
                               : json_null();
    return json_pack("{s:s, s:o, s:o, s:{s:o, s:o}, s:s, s:o, s:b, s:b}", "name", pg->name,
                     "vlan", pg->vlan ? json_integer(pg->vlan) : json_null(),
                     "trunk", trunk ? json_string(trunk) : json_null(),
                     "bandwidth", "in", rate_to_json(&pg->bw_in), "out",
                     rate_to_json(&pg->bw_out),
                     "priority", net_priority_to_string(pg->priority),
                     "broadcast_suppression", bs, "dhcp_isolation", pg->dhcp_isolation,
                     "ip_mac_binding", pg->ip_mac_binding);
}

static void pg_copy(struct net_portgroup *dst, const struct net_portgroup *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
}

/* ---- DVS ------------------------------------------------------------------------ */

void net_dvs_clear(struct net_dvs *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->bridge);
    strv_free(d->uplink_nics);
    free(d->bond);
    for (size_t i = 0; i < d->n_pgs; i++)
        net_portgroup_clear(&d->pgs[i]);
    free(d->pgs);
    memset(d, 0, sizeof(*d));
}

static int uplink_parse(const json_t *j, const char *field, struct net_dvs *d,
                        struct error **errp)
{
    static const char *const keys[] = { "nics", "bond", "mode", "lacp", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field, "uplink must be an object");
    if (json_check_keys(j, keys, field, errp) < 0)
        return -1;
    strv_free(d->uplink_nics);
    if (get_strv(j, "nics", field, NET_MAX_UPLINK_NICS, net_ifname_validate, &d->uplink_nics,
                 errp) < 0)
        return -1;
    size_t n = strv_len(d->uplink_nics);
    AUTOFREE char *fn = json_path_join(field, "nics");
    if (n == 0)
        return error_set_field(errp, ERR_INVALID_ARG, fn, "an uplink needs at least one NIC");
    const char *bond = NULL;
    if (json_get_string(j, "bond", field, false, &bond, errp) < 0)
        return -1;
    int mode = NET_BOND_ACTIVE_BACKUP, lacp = NET_LACP_OFF;
    if (get_enum(j, "mode", field, bond_names, ARRAY_SIZE(bond_names), &mode, errp) < 0 ||
        get_enum(j, "lacp", field, lacp_names, ARRAY_SIZE(lacp_names), &lacp, errp) < 0)
        return -1;
    d->bond_mode = (enum net_bond_mode) mode;
    d->lacp = (enum net_lacp) lacp;
    if (n == 1) {
        const json_t *m = json_object_get(j, "mode"), *l = json_object_get(j, "lacp");
        if (bond || (m && !json_is_null(m)) || (l && !json_is_null(l)))
            return error_set_field(errp, ERR_INVALID_ARG, fn,
                                   "a bond ('bond', 'mode', 'lacp') needs at least two NICs");
        return 0;
    }
    AUTOFREE char *fb = json_path_join(field, "bond");
    d->bond = xstrdup(bond ? bond : "bond0");
    if (net_ifname_validate(d->bond, fb, errp) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(d->uplink_nics[i], d->bond))
            return error_set_field(errp, ERR_INVALID_ARG, fb,
                                   "bond name '%s' is also one of its NICs", d->bond);
    if (d->bond_mode == NET_BOND_BALANCE_TCP && d->lacp == NET_LACP_OFF) {
        AUTOFREE char *f = json_path_join(field, "lacp");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "balance-tcp needs LACP ('active' or 'passive')");
    }
    return 0;
}

static int dvs_parse(const json_t *j, const char *name, const char *field, bool with_pgs,
                     struct net_dvs *d, struct error **errp)
{
    static const char *const keys[] = { "name", "bridge", "mtu", "datapath", "uplink", "vlans",
                                        "portgroups", NULL };
    static const char *const body_keys[] = { "name", "bridge", "mtu", "datapath", "uplink",
                                             "vlans", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field[0] ? field : NULL,
                               "a DVS must be an object");
    if (json_check_keys(j, with_pgs ? keys : body_keys, field, errp) < 0 ||
        check_name_key(j, name, field, &d->name, errp) < 0)
        return -1;
    const char *bridge = NULL;
    if (json_get_string(j, "bridge", field, false, &bridge, errp) < 0)
        return -1;
    AUTOFREE char *fbr = json_path_join(field, "bridge");
    if (!bridge && strlen(d->name) > 12)
        return error_set_field(errp, ERR_INVALID_ARG, fbr,
                               "DVS name '%s' is longer than 12 bytes: name its bridge",
                               d->name);
    d->bridge = bridge ? xstrdup(bridge) : xasprintf("sd-%s", d->name);
    if (net_ifname_validate(d->bridge, fbr, errp) < 0)
        return -1;
    unsigned long long mtu = 1500;
    if (json_get_uint(j, "mtu", field, false, NET_MTU_MIN, NET_MTU_MAX, &mtu, errp) < 0)
        return -1;
    d->mtu = (unsigned) mtu;
    int dp = NET_DP_AUTO;
    if (get_enum(j, "datapath", field, datapath_names, ARRAY_SIZE(datapath_names), &dp,
                 errp) < 0)
        return -1;
    d->datapath = (enum net_datapath) dp;
    d->uplink_nics = xcalloc(1, sizeof(char *));
    const json_t *up = json_object_get(j, "uplink");
    if (up && !json_is_null(up)) {
        AUTOFREE char *f = json_path_join(field, "uplink");
        if (uplink_parse(up, f, d, errp) < 0)
            return -1;
        for (size_t i = 0; d->uplink_nics[i]; i++)
            if (!strcmp(d->uplink_nics[i], d->bridge))
                return error_set_field(errp, ERR_INVALID_ARG, f,
                                       "uplink NIC '%s' has the bridge's name", d->bridge);
    }
    const char *vlans = NULL;
    if (json_get_string(j, "vlans", field, false, &vlans, errp) < 0)
        return -1;
    if (vlans) {
        AUTOFREE char *f = json_path_join(field, "vlans");
        if (vlan_set_parse(vlans, &d->vlan_pool, f, errp) < 0)
            return -1;
        d->has_vlan_pool = true;
    }
    const json_t *pgs = json_object_get(j, "portgroups");
    if (with_pgs && pgs && !json_is_null(pgs)) {
        AUTOFREE char *f = json_path_join(field, "portgroups");
        if (!json_is_array(pgs))
            return error_set_field(errp, ERR_INVALID_ARG, f, "portgroups must be an array");
        size_t n = json_array_size(pgs);
        if (n > NET_MAX_PORTGROUPS)
            return error_set_field(errp, ERR_INVALID_ARG, f, "at most %d port groups",
                                   NET_MAX_PORTGROUPS);
        d->pgs = xcalloc(n + 1, sizeof(*d->pgs));
        for (size_t i = 0; i < n; i++) {
            AUTOFREE char *fi = json_path_index(f, i);
            if (net_portgroup_from_json(json_array_get(pgs, i), NULL, fi, &d->pgs[i], errp) < 0)
                return -1;
            d->n_pgs++;
            for (size_t k = 0; k < i; k++)
                if (!strcmp(d->pgs[k].name, d->pgs[i].name))
                    return error_set_field(errp, ERR_INVALID_ARG, fi,
                                           "port group '%s' is defined twice", d->pgs[i].name);
        }
    }
    return 0;
}

int net_dvs_from_json(const json_t *j, const char *name, const char *field, bool with_pgs,
                      struct net_dvs *out, struct error **errp)
{
    struct net_dvs d = { 0 };
    if (dvs_parse(j, name, field, with_pgs, &d, errp) < 0) {
        net_dvs_clear(&d);
        return -1;
    }
    *out = d;
    return 0;
}

json_t *net_dvs_to_json(const struct net_dvs *d, bool with_pgs)
{
    json_t *up = json_null();
    if (d->uplink_nics && d->uplink_nics[0]) {
        up = json_pack("{s:o}", "nics", strv_to_json(d->uplink_nics));
        if (d->bond) {
            json_object_set_new(up, "bond", json_string(d->bond));
            json_object_set_new(up, "mode", json_string(net_bond_mode_to_string(d->bond_mode)));
            json_object_set_new(up, "lacp", json_string(net_lacp_to_string(d->lacp)));
        } else {
            json_object_set_new(up, "bond", json_null());
            json_object_set_new(up, "mode", json_null());
            json_object_set_new(up, "lacp", json_null());
        }
    }
    AUTOFREE char *pool = d->has_vlan_pool ? vlan_set_format(&d->vlan_pool) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:o, s:o}", "name", d->name, "bridge",
                          d->bridge, "mtu", (int) d->mtu, "datapath",
                          net_datapath_to_string(d->datapath), "uplink", up, "vlans",
                          pool ? json_string(pool) : json_null());
    if (with_pgs) {
        json_t *a = json_array();
        for (size_t i = 0; i < d->n_pgs; i++)
            json_array_append_new(a, net_portgroup_to_json(&d->pgs[i]));
        json_object_set_new(o, "portgroups", a);
    }
    return o;
}

static void dvs_copy(struct net_dvs *dst, const struct net_dvs *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->bridge = xstrdup(src->bridge);
    dst->uplink_nics = strv_copy(src->uplink_nics);
    dst->bond = xstrdup(src->bond);
    dst->pgs = xcalloc(src->n_pgs + 1, sizeof(*dst->pgs));
    for (size_t i = 0; i < src->n_pgs; i++)
        pg_copy(&dst->pgs[i], &src->pgs[i]);
}

/* ---- security groups --------------------------------------------------------------- */

void net_sg_clear(struct net_sg *sg)
{
    if (!sg)
        return;
    free(sg->name);
    for (size_t i = 0; i < sg->n_rules; i++)
        free(sg->rules[i].remote_group);
    free(sg->rules);
    strv_free(sg->remote_ips);
    memset(sg, 0, sizeof(*sg));
}

static int cidr_check(const char *s, const char *field, struct error **errp)
{
    uint32_t a;
    unsigned p;
    return ipv4_cidr_parse(s, &a, &p, field, errp);
}

static int rule_parse(const json_t *j, const char *field, struct net_sg_rule *r,
                      struct error **errp)
{
    static const char *const keys[] = { "direction", "protocol", "port_min", "port_max",
                                        "remote_cidr", "remote_group", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field, "a rule must be an object");
    if (json_check_keys(j, keys, field, errp) < 0)
        return -1;
    int dir = -1, proto = SG_PROTO_ANY;
    if (get_enum(j, "direction", field, dir_names, ARRAY_SIZE(dir_names), &dir, errp) < 0 ||
        get_enum(j, "protocol", field, proto_names, ARRAY_SIZE(proto_names), &proto, errp) < 0)
        return -1;
    if (dir < 0) {
        AUTOFREE char *f = json_path_join(field, "direction");
        return error_set_field(errp, ERR_INVALID_ARG, f, "missing field 'direction'");
    }
    r->direction = (enum sg_direction) dir;
    r->protocol = (enum sg_protocol) proto;
    unsigned long long lo = 0, hi = 0;
    if (json_get_uint(j, "port_min", field, false, 1, 65535, &lo, errp) < 0)
        return -1;
    hi = lo;
    if (json_get_uint(j, "port_max", field, false, 1, 65535, &hi, errp) < 0)
        return -1;
    if ((lo || hi) && r->protocol != SG_PROTO_TCP && r->protocol != SG_PROTO_UDP) {
        AUTOFREE char *f = json_path_join(field, "port_min");
        return error_set_field(errp, ERR_INVALID_ARG, f, "ports need protocol tcp or udp");
    }
    if (hi && !lo)
        lo = 1;
    if (lo > hi) {
        AUTOFREE char *f = json_path_join(field, "port_max");
        return error_set_field(errp, ERR_INVALID_ARG, f, "port_max %llu is below port_min %llu",
                               hi, lo);
    }
    r->port_min = (unsigned) lo;
    r->port_max = (unsigned) hi;
    const char *cidr = NULL, *group = NULL;
    if (json_get_string(j, "remote_cidr", field, false, &cidr, errp) < 0 ||
        json_get_string(j, "remote_group", field, false, &group, errp) < 0)
        return -1;
    if (cidr && group) {
        AUTOFREE char *f = json_path_join(field, "remote_group");
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "a rule has either remote_cidr or remote_group");
    }
    if (cidr) {
        AUTOFREE char *f = json_path_join(field, "remote_cidr");
        if (ipv4_cidr_parse(cidr, &r->remote_addr, &r->remote_prefix, f, errp) < 0)
            return -1;
    }
    if (group) {
        AUTOFREE char *f = json_path_join(field, "remote_group");
        if (net_name_validate(group, f, errp) < 0)
            return -1;
        r->remote_group = xstrdup(group);
    }
    return 0;
}

static int sg_parse(const json_t *j, const char *name, const char *field, struct net_sg *sg,
                    struct error **errp)
{
    static const char *const keys[] = { "name", "rules", "remote_ips", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field[0] ? field : NULL,
                               "a security group must be an object");
    if (json_check_keys(j, keys, field, errp) < 0 ||
        check_name_key(j, name, field, &sg->name, errp) < 0)
        return -1;
    const json_t *rules = json_object_get(j, "rules");
    if (rules && !json_is_null(rules)) {
        AUTOFREE char *f = json_path_join(field, "rules");
        if (!json_is_array(rules))
            return error_set_field(errp, ERR_INVALID_ARG, f, "rules must be an array");
        size_t n = json_array_size(rules);
        if (n > NET_MAX_SG_RULES)
            return error_set_field(errp, ERR_INVALID_ARG, f, "at most %d rules",
                                   NET_MAX_SG_RULES);
        sg->rules = xcalloc(n + 1, sizeof(*sg->rules));
        for (size_t i = 0; i < n; i++) {
            AUTOFREE char *fi = json_path_index(f, i);
            sg->n_rules++;
            if (rule_parse(json_array_get(rules, i), fi, &sg->rules[i], errp) < 0)
                return -1;
        }
    }
    return get_strv(j, "remote_ips", field, NET_MAX_SG_REMOTE_IPS, cidr_check, &sg->remote_ips,
                    errp);
}

int net_sg_from_json(const json_t *j, const char *name, const char *field, struct net_sg *out,
                     struct error **errp)
{
    struct net_sg sg = { 0 };
    if (sg_parse(j, name, field, &sg, errp) < 0) {
        net_sg_clear(&sg);
        return -1;
    }
    *out = sg;
    return 0;
}

json_t *net_sg_to_json(const struct net_sg *sg)
{
    json_t *rules = json_array();
    for (size_t i = 0; i < sg->n_rules; i++) {
        const struct net_sg_rule *r = &sg->rules[i];
        char a[16];
        ipv4_format(r->remote_addr, a);
        AUTOFREE char *cidr = xasprintf("%s/%u", a, r->remote_prefix);
        json_t *o = json_pack("{s:s, s:s}", "direction", sg_direction_to_string(r->direction),
                              "protocol", sg_protocol_to_string(r->protocol));
        json_object_set_new(o, "port_min", r->port_min ? json_integer(r->port_min) : json_null());
        json_object_set_new(o, "port_max", r->port_max ? json_integer(r->port_max) : json_null());
        json_object_set_new(o, "remote_cidr", r->remote_group ? json_null() : json_string(cidr));
        json_object_set_new(o, "remote_group",
                            r->remote_group ? json_string(r->remote_group) : json_null());
        json_array_append_new(rules, o);
    }
    return json_pack("{s:s, s:o, s:o}", "name", sg->name, "rules", rules, "remote_ips",
                     strv_to_json(sg->remote_ips));
}

static void sg_copy(struct net_sg *dst, const struct net_sg *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->rules = xcalloc(src->n_rules + 1, sizeof(*dst->rules));
    for (size_t i = 0; i < src->n_rules; i++) {
        dst->rules[i] = src->rules[i];
        dst->rules[i].remote_group = xstrdup(src->rules[i].remote_group);
    }
    dst->remote_ips = strv_copy(src->remote_ips);
}

/* ---- NAT networks --------------------------------------------------------------------- */

void net_nat_clear(struct net_nat *n)
{
    if (!n)
        return;
    free(n->name);
    free(n->bridge);
    memset(n, 0, sizeof(*n));
}

static int get_ip_in(const json_t *j, const char *key, const char *field, uint32_t subnet,
                     unsigned prefix, uint32_t *out, struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(j, key, field, false, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    AUTOFREE char *f = json_path_join(field, key);
    uint32_t a;
    if (ipv4_parse(s, &a) < 0)
        return error_set_field(errp, ERR_INVALID_ARG, f, "'%.40s' is not an IPv4 address", s);
    uint32_t mask = 0xffffffffu << (32 - prefix);
    if ((a & mask) != subnet || a == subnet || a == (subnet | ~mask))
        return error_set_field(errp, ERR_INVALID_ARG, f,
                               "'%s' is not a host address of the subnet", s);
    *out = a;
    return 0;
}

static int nat_parse(const json_t *j, const char *name, const char *field, struct net_nat *n,
                     struct error **errp)
{
    static const char *const keys[] = { "name", "bridge", "subnet", "address", "dhcp_start",
                                        "dhcp_end", "lease_s", "mtu", "masquerade", NULL };
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field[0] ? field : NULL,
                               "a NAT network must be an object");
    if (json_check_keys(j, keys, field, errp) < 0 ||
        check_name_key(j, name, field, &n->name, errp) < 0)
        return -1;
    const char *bridge = NULL, *subnet = "192.168.122.0/24";
    if (json_get_string(j, "bridge", field, false, &bridge, errp) < 0 ||
        json_get_string(j, "subnet", field, false, &subnet, errp) < 0)
        return -1;
    AUTOFREE char *fbr = json_path_join(field, "bridge");
    if (!bridge && strlen(n->name) > 12)
        return error_set_field(errp, ERR_INVALID_ARG, fbr,
                               "NAT network name '%s' is longer than 12 bytes: name its bridge",
                               n->name);
    n->bridge = bridge ? xstrdup(bridge) : xasprintf("sn-%s", n->name);
    if (net_ifname_validate(n->bridge, fbr, errp) < 0)
        return -1;
    AUTOFREE char *fs = json_path_join(field, "subnet");
    if (ipv4_cidr_parse(subnet, &n->subnet, &n->prefix, fs, errp) < 0)
        return -1;
    if (n->prefix < 8 || n->prefix > 29)
        return error_set_field(errp, ERR_INVALID_ARG, fs,
                               "subnet '%s' must have a prefix length of 8 to 29", subnet);
    uint32_t bcast = n->subnet | ~(0xffffffffu << (32 - n->prefix));
    n->address = n->subnet + 1;
    n->dhcp_start = n->subnet + 2;
    n->dhcp_end = bcast - 1;
    if (get_ip_in(j, "address", field, n->subnet, n->prefix, &n->address, errp) < 0 ||
        get_ip_in(j, "dhcp_start", field, n->subnet, n->prefix, &n->dhcp_start, errp) < 0 ||
        get_ip_in(j, "dhcp_end", field, n->subnet, n->prefix, &n->dhcp_end, errp) < 0)
        return -1;
    if (n->dhcp_start > n->dhcp_end) {
        AUTOFREE char *f = json_path_join(field, "dhcp_end");
        return error_set_field(errp, ERR_INVALID_ARG, f, "dhcp_end is below dhcp_start");
    }
    if (n->address >= n->dhcp_start && n->address <= n->dhcp_end) {
        if (n->address == n->dhcp_start && n->dhcp_start < n->dhcp_end) {
            n->dhcp_start++;
        } else if (json_object_get(j, "dhcp_start") || json_object_get(j, "dhcp_end")) {
            AUTOFREE char *f = json_path_join(field, "address");
            return error_set_field(errp, ERR_INVALID_ARG, f,
                                   "the host address is inside the DHCP range");
        } else {
            n->dhcp_start = n->address + 1;
            if (n->dhcp_start > n->dhcp_end) {
                AUTOFREE char *f = json_path_join(field, "address");
                return error_set_field(errp, ERR_INVALID_ARG, f,
                                       "no room for a DHCP range after the host address");
            }
        }
    }
    unsigned long long lease = 3600, mtu = 1500;
    if (json_get_uint(j, "lease_s", field, false, 120, 31536000, &lease, errp) < 0 ||
        json_get_uint(j, "mtu", field, false, NET_MTU_MIN, NET_MTU_MAX, &mtu, errp) < 0)
        return -1;
    n->lease_s = (unsigned) lease;
    n->mtu = (unsigned) mtu;
    n->masquerade = true;
    return json_get_bool(j, "masquerade", field, false, &n->masquerade, errp);
}

int net_nat_from_json(const json_t *j, const char *name, const char *field, struct net_nat *out,
                      struct error **errp)
{
    struct net_nat n = { 0 };
    if (nat_parse(j, name, field, &n, errp) < 0) {
        net_nat_clear(&n);
        return -1;
    }
    *out = n;
    return 0;
}

json_t *net_nat_to_json(const struct net_nat *n)
{
    char s[16], a[16], ds[16], de[16];
    ipv4_format(n->subnet, s);
    ipv4_format(n->address, a);
    ipv4_format(n->dhcp_start, ds);
    ipv4_format(n->dhcp_end, de);
    AUTOFREE char *subnet = xasprintf("%s/%u", s, n->prefix);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b}", "name", n->name, "bridge",
                     n->bridge, "subnet", subnet, "address", a, "dhcp_start", ds, "dhcp_end",
                     de, "lease_s", (int) n->lease_s, "mtu", (int) n->mtu, "masquerade",
                     n->masquerade);
}

static void nat_copy(struct net_nat *dst, const struct net_nat *src)
{
    *dst = *src;
    dst->name = xstrdup(src->name);
    dst->bridge = xstrdup(src->bridge);
}

/* ---- planes ------------------------------------------------------------------------------ */

int net_planes_from_json(const json_t *j, const char *field, char **out[NET_PLANE__COUNT],
                         struct error **errp)
{
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        out[p] = NULL;
    if (!json_is_object(j))
        return error_set_field(errp, ERR_INVALID_ARG, field[0] ? field : NULL,
                               "planes must be an object");
    static const char *const keys[] = { "management", "storage", "business", NULL };
    if (json_check_keys(j, keys, field, errp) < 0)
        return -1;
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        if (get_strv(j, plane_names[p], field, 64, net_ifname_validate, &out[p], errp) < 0) {
            for (size_t k = 0; k <= p; k++) {
                strv_free(out[k]);
                out[k] = NULL;
            }
            return -1;
        }
    return 0;
}

json_t *net_planes_to_json(char **const planes[NET_PLANE__COUNT])
{
    json_t *o = json_object();
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        json_object_set_new(o, plane_names[p], strv_to_json(planes[p]));
    return o;
}

/* ---- the whole configuration ------------------------------------------------------------ */

struct net_config *net_config_new(void)
{
    struct net_config *c = xzalloc(sizeof(*c));
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        c->planes[p] = xcalloc(1, sizeof(char *));
    return c;
}

void net_config_free(struct net_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_dvs; i++)
        net_dvs_clear(&c->dvs[i]);
    free(c->dvs);
    for (size_t i = 0; i < c->n_sgs; i++)
        net_sg_clear(&c->sgs[i]);
    free(c->sgs);
    for (size_t i = 0; i < c->n_nats; i++)
        net_nat_clear(&c->nats[i]);
    free(c->nats);
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        strv_free(c->planes[p]);
    free(c);
}

struct net_config *net_config_copy(const struct net_config *c)
{
    struct net_config *n = xzalloc(sizeof(*n));
    n->dvs = xcalloc(c->n_dvs + 1, sizeof(*n->dvs));
    for (size_t i = 0; i < c->n_dvs; i++)
        dvs_copy(&n->dvs[i], &c->dvs[i]);
    n->n_dvs = c->n_dvs;
    n->sgs = xcalloc(c->n_sgs + 1, sizeof(*n->sgs));
    for (size_t i = 0; i < c->n_sgs; i++)
        sg_copy(&n->sgs[i], &c->sgs[i]);
    n->n_sgs = c->n_sgs;
    n->nats = xcalloc(c->n_nats + 1, sizeof(*n->nats));
    for (size_t i = 0; i < c->n_nats; i++)
        nat_copy(&n->nats[i], &c->nats[i]);
    n->n_nats = c->n_nats;
    for (size_t p = 0; p < NET_PLANE__COUNT; p++)
        n->planes[p] = strv_copy(c->planes[p]);
    return n;
}

struct net_dvs *net_config_dvs(const struct net_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_dvs; i++)
        if (!strcmp(c->dvs[i].name, name))
            return &c->dvs[i];
    return NULL;
}

struct net_portgroup *net_dvs_portgroup(const struct net_dvs *d, const char *name)
{
    for (size_t i = 0; i < d->n_pgs; i++)
        if (!strcmp(d->pgs[i].name, name))
            return &d->pgs[i];
    return NULL;
}

struct net_sg *net_config_sg(const struct net_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_sgs; i++)
        if (!strcmp(c->sgs[i].name, name))
            return &c->sgs[i];
    return NULL;
}

struct net_nat *net_config_nat(const struct net_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_nats; i++)
        if (!strcmp(c->nats[i].name, name))
            return &c->nats[i];
    return NULL;
}

int net_config_check(const struct net_config *c, struct error **errp)
{
    /* Bridge names are unique across DVSs and NAT networks; a NIC is the
     * uplink of one DVS at most. */
    for (size_t i = 0; i < c->n_dvs; i++) {
        const struct net_dvs *d = &c->dvs[i];
        for (size_t k = 0; k < i; k++)
            if (!strcmp(c->dvs[k].bridge, d->bridge))
                return error_set_field(errp, ERR_CONFLICT, "bridge",
                                       "bridge '%s' is already used by DVS '%s'", d->bridge,
                                       c->dvs[k].name);
        for (size_t k = 0; k < c->n_nats; k++)
            if (!strcmp(c->nats[k].bridge, d->bridge))
                return error_set_field(errp, ERR_CONFLICT, "bridge",
                                       "bridge '%s' is already used by NAT network '%s'",
                                       d->bridge, c->nats[k].name);
        for (size_t n = 0; d->uplink_nics[n]; n++)
            for (size_t k = 0; k < i; k++)
                for (size_t m = 0; c->dvs[k].uplink_nics[m]; m++)
                    if (!strcmp(c->dvs[k].uplink_nics[m], d->uplink_nics[n]))
                        return error_set_field(errp, ERR_CONFLICT, "uplink.nics",
                                               "NIC '%s' is already the uplink of DVS '%s'",
                                               d->uplink_nics[n], c->dvs[k].name);
    }
    for (size_t i = 0; i < c->n_nats; i++)
        for (size_t k = 0; k < i; k++) {
            if (!strcmp(c->nats[k].bridge, c->nats[i].bridge))
                return error_set_field(errp, ERR_CONFLICT, "bridge",
                                       "bridge '%s' is already used by NAT network '%s'",
                                       c->nats[i].bridge, c->nats[k].name);
            unsigned p = c->nats[i].prefix < c->nats[k].prefix ? c->nats[i].prefix
                                                                : c->nats[k].prefix;
            uint32_t mask = 0xffffffffu << (32 - p);
            if ((c->nats[i].subnet & mask) == (c->nats[k].subnet & mask))
                return error_set_field(errp, ERR_CONFLICT, "subnet",
                                       "subnet overlaps NAT network '%s'", c->nats[k].name);
        }
    for (size_t i = 0; i < c->n_sgs; i++)
        for (size_t r = 0; r < c->sgs[i].n_rules; r++) {
            const char *g = c->sgs[i].rules[r].remote_group;
            if (g && !net_config_sg(c, g)) {
                AUTOFREE char *f = xasprintf("rules[%zu].remote_group", r);
                return error_set_field(errp, ERR_INVALID_ARG, f,
                                       "security group '%s' refers to unknown group '%s'",
                                       c->sgs[i].name, g);
            }
        }
    return 0;
}

struct net_config *net_config_from_json(const json_t *j, struct error **errp)
{
    static const char *const keys[] = { "dvs", "security_groups", "nat", "planes", NULL };
    if (!json_is_object(j)) {
        error_set(errp, ERR_INVALID_ARG, "the network configuration must be an object");
        return NULL;
    }
    if (json_check_keys(j, keys, "", errp) < 0)
        return NULL;
    struct net_config *c = net_config_new();
    const json_t *a;
    size_t i;
    json_t *e;
    a = json_object_get(j, "dvs");
    c->dvs = xcalloc(json_array_size(a) + 1, sizeof(*c->dvs));
    json_array_foreach(a, i, e) {
        AUTOFREE char *f = xasprintf("dvs[%zu]", i);
        if (net_dvs_from_json(e, NULL, f, true, &c->dvs[i], errp) < 0)
            goto fail;
        c->n_dvs++;
        if (net_config_dvs(c, c->dvs[i].name) != &c->dvs[i]) {
            error_set_field(errp, ERR_CONFLICT, f, "DVS '%s' is defined twice", c->dvs[i].name);
            goto fail;
        }
    }
    a = json_object_get(j, "security_groups");
    c->sgs = xcalloc(json_array_size(a) + 1, sizeof(*c->sgs));
    json_array_foreach(a, i, e) {
        AUTOFREE char *f = xasprintf("security_groups[%zu]", i);
        if (net_sg_from_json(e, NULL, f, &c->sgs[i], errp) < 0)
            goto fail;
        c->n_sgs++;
        if (net_config_sg(c, c->sgs[i].name) != &c->sgs[i]) {
            error_set_field(errp, ERR_CONFLICT, f, "security group '%s' is defined twice",
                            c->sgs[i].name);
            goto fail;
        }
    }
    a = json_object_get(j, "nat");
    c->nats = xcalloc(json_array_size(a) + 1, sizeof(*c->nats));
    json_array_foreach(a, i, e) {
        AUTOFREE char *f = xasprintf("nat[%zu]", i);
        if (net_nat_from_json(e, NULL, f, &c->nats[i], errp) < 0)
            goto fail;
        c->n_nats++;
        if (net_config_nat(c, c->nats[i].name) != &c->nats[i]) {
            error_set_field(errp, ERR_CONFLICT, f, "NAT network '%s' is defined twice",
                            c->nats[i].name);
            goto fail;
        }
    }
    const json_t *pl = json_object_get(j, "planes");
    if (pl && !json_is_null(pl)) {
        for (size_t p = 0; p < NET_PLANE__COUNT; p++) {
            strv_free(c->planes[p]);
            c->planes[p] = NULL;
        }
        if (net_planes_from_json(pl, "planes", c->planes, errp) < 0) {
            for (size_t p = 0; p < NET_PLANE__COUNT; p++)
                if (!c->planes[p])
                    c->planes[p] = xcalloc(1, sizeof(char *));
            goto fail;
        }
    }
    if (net_config_check(c, errp) < 0)
        goto fail;
    return c;
fail:
    net_config_free(c);
    return NULL;
}

json_t *net_config_to_json(const struct net_config *c)
{
    json_t *dvs = json_array(), *sgs = json_array(), *nats = json_array();
    for (size_t i = 0; i < c->n_dvs; i++)
        json_array_append_new(dvs, net_dvs_to_json(&c->dvs[i], true));
    for (size_t i = 0; i < c->n_sgs; i++)
        json_array_append_new(sgs, net_sg_to_json(&c->sgs[i]));
    for (size_t i = 0; i < c->n_nats; i++)
        json_array_append_new(nats, net_nat_to_json(&c->nats[i]));
    return json_pack("{s:o, s:o, s:o, s:o}", "dvs", dvs, "security_groups", sgs, "nat", nats,
                     "planes", net_planes_to_json(c->planes));
}
