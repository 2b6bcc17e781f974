/* nat.c - NAT network helpers: dnsmasq argv, nftables script, leases.  Pure.
 * See nat.h. */
#include "net/nat.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

char *net_nat_pid_path(const char *run_dir, const struct net_nat *n)
{
    return xasprintf("%s/nat-%s.pid", run_dir, n->name);
}

char *net_nat_lease_path(const char *state_dir, const struct net_nat *n)
{
    return xasprintf("%s/nat-%s.leases", state_dir, n->name);
}

char *net_nat_log_path(const char *run_dir, const struct net_nat *n)
{
    return xasprintf("%s/nat-%s.log", run_dir, n->name);
}

char **net_nat_dnsmasq_argv(const struct net_nat *n, const char *run_dir,
                            const char *state_dir)
{
    char addr[16], start[16], end[16], mask[16];
    ipv4_format(n->address, addr);
    ipv4_format(n->dhcp_start, start);
    ipv4_format(n->dhcp_end, end);
    ipv4_format(0xffffffffu << (32 - n->prefix), mask);
    AUTOFREE char *pid = net_nat_pid_path(run_dir, n);
    AUTOFREE char *lease = net_nat_lease_path(state_dir, n);
    AUTOFREE char *log = net_nat_log_path(run_dir, n);
    char *v[] = {
        xstrdup("dnsmasq"),
        xstrdup("--keep-in-foreground"),
        xstrdup("--conf-file=/dev/null"),
        xstrdup("--strict-order"),
        xstrdup("--bind-interfaces"),
        xstrdup("--except-interface=lo"),
        xasprintf("--interface=%s", n->bridge),
        xasprintf("--listen-address=%s", addr),
        xstrdup("--port=0"),
        xasprintf("--dhcp-range=%s,%s,%s,%u", start, end, mask, n->lease_s),
        xasprintf("--dhcp-option=option:router,%s", addr),
        xasprintf("--dhcp-leasefile=%s", lease),
        xstrdup("--dhcp-authoritative"),
        xstrdup("--dhcp-no-override"),
        xasprintf("--pid-file=%s", pid),
        xasprintf("--log-facility=%s", log),
        xstrdup("--log-dhcp"),
        NULL,
    };
    char **out = xcalloc(ARRAY_SIZE(v), sizeof(char *));
    memcpy(out, v, sizeof v);
    return out;
}

char *net_nat_nft_table(const char *name)
{
    char *s = xstrdup("strata_nat_");
    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        char *n = isalnum(*p) ? xasprintf("%s%c", s, *p) : xasprintf("%s_%02x", s, *p);
        free(s);
        s = n;
    }
    return s;
}

char *net_nat_nft_script(const struct net_nat *n)
{
    char net[16];
    ipv4_format(n->subnet, net);
    AUTOFREE char *t = net_nat_nft_table(n->name);
    AUTOFREE char *rule = n->masquerade
        ? xasprintf("\t\tip saddr %s/%u ip daddr != %s/%u masquerade\n", net, n->prefix, net,
                    n->prefix)
        : xstrdup("");
    /* "table" then "delete table" makes the script work whether or not the
     * table exists; the whole file is one transaction. */
    return xasprintf("table ip %s\n"
                     "delete table ip %s\n"
                     "table ip %s {\n"
                     "\tchain postrouting {\n"
                     "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
                     "%s"
                     "\t}\n"
                     "}\n",
                     t, t, t, rule);
}

json_t *net_nat_leases_parse(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        AUTOFREE char *line = xstrndup(p, len);
        p = nl ? nl + 1 : NULL;
        char *f[5] = { 0 };
        size_t n = 0;
        char *save = NULL;
        for (char *w = strtok_r(line, " \t", &save); w && n < 5; w = strtok_r(NULL, " \t", &save))
            f[n++] = w;
        if (n < 3)
            continue;
        char *end;
        long long expiry = strtoll(f[0], &end, 10);
        uint32_t ip;
        if (*end || expiry < 0 || strlen(f[1]) != 17 || ipv4_parse(f[2], &ip) < 0)
            continue;
        json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:o, s:o}", "expiry",
                                           (json_int_t) expiry, "mac", f[1], "ip", f[2],
                                           "hostname",
                                           n > 3 && strcmp(f[3], "*") ? json_string(f[3])
                                                                      : json_null(),
                                           "client_id",
                                           n > 4 && strcmp(f[4], "*") ? json_string(f[4])
                                                                      : json_null()));
    }
    return a;
}
