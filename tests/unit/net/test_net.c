/* test_net.c - unit tests of the network library's pure parts: VLAN sets,
 * IPv4 parsing, port ranges as value/mask pairs, the MAC allocator, the
 * configuration parser (a table of bad inputs naming their field, round
 * trips, cross-object checks), NAT helpers, host NIC listing and the OVSDB
 * observation parser.  Flows and ovs-vsctl plans are pinned by
 * test_net_golden.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/host_nics.h"
#include "net/mac_alloc.h"
#include "net/nat.h"
#include "net/net_config.h"
#include "net/net_flows.h"
#include "net/net_plan.h"
#include "util/json_util.h"
#include "util/mem.h"

/* JSON with single quotes, for readable tables. */
static json_t *jq(const char *s)
{
    AUTOFREE char *t = xstrdup(s);
    for (char *p = t; *p; p++)
        if (*p == '\'')
            *p = '"';
    json_t *j = json_from_string(t, strlen(t), NULL);
    if (!j)
        fail_msg("bad test JSON: %s", s);
    return j;
}

/* ---- VLAN sets, IPv4 -------------------------------------------------------- */

static void test_vlan_sets(void **state)
{
    (void) state;
    struct vlan_set s;
    assert_int_equal(vlan_set_parse("300,100-102,101,4094", &s, "f", NULL), 0);
    AUTOFREE char *t = vlan_set_format(&s);
    assert_string_equal(t, "100-102,300,4094");
    assert_true(vlan_set_has(&s, 101));
    assert_false(vlan_set_has(&s, 103));
    assert_false(vlan_set_has(&s, 0));
    static const char *const bad[] = { "", "0", "4095", "1-", "-5", "5-3", "a", "1,,2", "1 2",
                                       "99999" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *err = NULL;
        if (vlan_set_parse(bad[i], &s, "vlans", &err) == 0)
            fail_msg("VLAN list '%s' accepted", bad[i]);
        assert_string_equal(err->field, "vlans");
    }
}

static void test_ipv4(void **state)
{
    (void) state;
    uint32_t a;
    unsigned p;
    assert_int_equal(ipv4_cidr_parse("10.1.0.0/16", &a, &p, "f", NULL), 0);
    assert_int_equal(a, 0x0a010000);
    assert_int_equal(p, 16);
    assert_int_equal(ipv4_cidr_parse("10.1.2.3", &a, &p, "f", NULL), 0);
    assert_int_equal(p, 32);
    assert_int_equal(ipv4_cidr_parse("0.0.0.0/0", &a, &p, "f", NULL), 0);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(ipv4_cidr_parse("10.1.2.3/16", &a, &p, "f", &err), -1);
    assert_non_null(strstr(err->message, "host bits"));
    static const char *const bad[] = { "10.1.2", "10.1.2.3/33", "10.1.2.3/", "x", "1.2.3.4/8x" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        if (ipv4_cidr_parse(bad[i], &a, &p, "f", NULL) == 0)
            fail_msg("'%s' accepted", bad[i]);
    char buf[16];
    ipv4_format(0xc0a87a01, buf);
    assert_string_equal(buf, "192.168.122.1");
}

/* ---- port ranges --------------------------------------------------------------- */

static bool covered(unsigned port, const unsigned *val, const unsigned *mask, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((port & mask[i]) == val[i])
            return true;
    return false;
}

static void test_port_ranges(void **state)
{
    (void) state;
    unsigned val[32], mask[32];
    size_t n = net_port_range_masks(80, 80, val, mask);
    assert_int_equal(n, 1);
    assert_int_equal(val[0], 80);
    assert_int_equal(mask[0], 0xffff);
    n = net_port_range_masks(1, 65535, val, mask);
    assert_int_equal(n, 16);
    n = net_port_range_masks(1024, 2047, val, mask);
    assert_int_equal(n, 1);
    assert_int_equal(mask[0], 0xfc00);
    /* Exact cover, no overlap, for many ranges. */
    static const unsigned ranges[][2] = { { 8000, 8080 }, { 1, 1 }, { 1, 1023 }, { 22, 25 },
                                          { 65534, 65535 }, { 3, 65533 }, { 4096, 4097 },
                                          { 5000, 5999 } };
    for (size_t r = 0; r < ARRAY_SIZE(ranges); r++) {
        unsigned lo = ranges[r][0], hi = ranges[r][1];
        n = net_port_range_masks(lo, hi, val, mask);
        assert_true(n >= 1 && n <= 32);
        for (unsigned p = 1; p <= 65535; p++)
            if (covered(p, val, mask, n) != (p >= lo && p <= hi))
                fail_msg("range %u-%u: port %u wrongly %s", lo, hi, p,
                         covered(p, val, mask, n) ? "covered" : "missed");
        for (size_t i = 0; i < n; i++)
            for (size_t k = i + 1; k < n; k++)
                assert_false((val[i] & mask[k]) == val[k] || (val[k] & mask[i]) == val[i]);
    }
}

/* ---- MAC allocator -------------------------------------------------------------- */

static void test_mac_alloc(void **state)
{
    (void) state;
    char *used[] = { "52:54:00:00:00:05", "52:54:00:00:00:06", "52:54:00:00:00:08" };
    uint32_t cur = 5;
    char mac[18];
    assert_int_equal(net_mac_alloc("52:54:00", &cur, used, 3, mac, NULL), 0);
    assert_string_equal(mac, "52:54:00:00:00:07");
    assert_int_equal(cur, 8);
    assert_int_equal(net_mac_alloc("52:54:00", &cur, used, 3, mac, NULL), 0);
    assert_string_equal(mac, "52:54:00:00:00:09");
    /* Wraps around, skipping the all-ones and all-zeros suffixes. */
    cur = 0xfffffe;
    assert_int_equal(net_mac_alloc("02:AB:cd", &cur, NULL, 0, mac, NULL), 0);
    assert_string_equal(mac, "02:ab:cd:ff:ff:fe");
    assert_int_equal(net_mac_alloc("02:ab:cd", &cur, NULL, 0, mac, NULL), 0);
    assert_string_equal(mac, "02:ab:cd:00:00:01");
    /* A thousand allocations never collide. */
    char **all = xcalloc(1001, sizeof(char *));
    cur = net_mac_seed("host-a");
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(net_mac_alloc("52:54:00", &cur, all, i, mac, NULL), 0);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(all[k], mac);
        all[i] = xstrdup(mac);
    }
    strv_free(all);
    static const char *const bad[] = { "01:00:5e", "00:00:00", "52:54", "52:54:0g", "52-54-00",
                                       "52:54:00:" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *err = NULL;
        if (net_mac_prefix_validate(bad[i], "prefix", &err) == 0)
            fail_msg("prefix '%s' accepted", bad[i]);
        assert_string_equal(err->field, "prefix");
    }
    assert_int_equal(net_mac_seed("host-a"), net_mac_seed("host-a"));
    assert_true(net_mac_seed("host-a") != net_mac_seed("host-b"));
    assert_true(net_mac_seed("x") <= 0xffffff);
}

/* ---- configuration ----------------------------------------------------------------- */

struct bad_case {
    const char *what;               /* dvs, pg, sg, nat, config */
    const char *json;
    const char *field;
    const char *message;
};

static const struct bad_case bad_cases[] = {
    { "dvs", "{'mtu': 100}", "mtu", "" },
    { "dvs", "{'mtu': 9217}", "mtu", "" },
    { "dvs", "{'datapath': 'dpdk'}", "datapath", "is not one of" },
    { "dvs", "{'bridge': 'a-very-long-bridge-name'}", "bridge", "1 to 15 bytes" },
    { "dvs", "{'bridge': 'br/x'}", "bridge", "may only contain" },
    { "dvs", "{'uplink': {'nics': []}}", "uplink.nics", "at least one NIC" },
    { "dvs", "{'uplink': {'nics': ['eth0', 'eth0']}}", "uplink.nics[1]", "listed twice" },
    { "dvs", "{'uplink': {'nics': ['eth0'], 'mode': 'balance-slb'}}", "uplink.nics",
      "at least two NICs" },
    { "dvs", "{'uplink': {'nics': ['eth0', 'eth1'], 'mode': 'balance-tcp'}}", "uplink.lacp",
      "needs LACP" },
    { "dvs", "{'uplink': {'nics': ['eth0', 'eth1'], 'bond': 'eth1'}}", "uplink.bond",
      "also one of its NICs" },
    { "dvs", "{'uplink': {'nics': ['eth0'], 'speed': 10}}", "uplink.speed", "" },
    { "dvs", "{'uplink': {'nics': ['sd-x']}}", "uplink", "has the bridge's name" },
    { "dvs", "{'vlans': '0-10'}", "vlans", "not within 1-4094" },
    { "dvs", "{'name': 'y'}", "name", "differs from 'x'" },
    { "dvs", "{'portgroups': []}", "portgroups", "unknown" },
    { "pg", "{'vlan': 0}", "vlan", "" },
    { "pg", "{'vlan': 4095}", "vlan", "" },
    { "pg", "{'vlan': 10, 'trunk': '10-20'}", "trunk", "either an access VLAN or a trunk" },
    { "pg", "{'trunk': '10-'}", "trunk", "not of the form" },
    { "pg", "{'bandwidth': {'out': {}}}", "bandwidth.out.rate_kbps", "" },
    { "pg", "{'bandwidth': {'out': {'rate_kbps': 4}}}", "bandwidth.out.rate_kbps", "" },
    { "pg", "{'bandwidth': {'up': {'rate_kbps': 100}}}", "bandwidth.up", "" },
    { "pg", "{'priority': 'urgent'}", "priority", "is not one of" },
    { "pg", "{'broadcast_suppression': {'pps': 0}}", "broadcast_suppression.pps", "" },
    { "pg", "{'dhcp_isolation': 'yes'}", "dhcp_isolation", "" },
    { "sg", "{'rules': [{}]}", "rules[0].direction", "missing" },
    { "sg", "{'rules': [{'direction': 'in'}]}", "rules[0].direction", "is not one of" },
    { "sg", "{'rules': [{'direction': 'ingress', 'protocol': 'icmp', 'port_min': 1}]}",
      "rules[0].port_min", "tcp or udp" },
    { "sg", "{'rules': [{'direction': 'ingress', 'protocol': 'tcp', 'port_min': 90, "
      "'port_max': 80}]}", "rules[0].port_max", "below port_min" },
    { "sg", "{'rules': [{'direction': 'egress', 'remote_cidr': '10.0.0.1/8'}]}",
      "rules[0].remote_cidr", "host bits" },
    { "sg", "{'rules': [{'direction': 'egress', 'remote_cidr': '10.0.0.0/8', "
      "'remote_group': 'x'}]}", "rules[0].remote_group", "either" },
    { "sg", "{'remote_ips': ['10.0.0.300']}", "remote_ips[0]", "" },
    { "nat", "{'subnet': '192.168.122.0/30'}", "subnet", "prefix length of 8 to 29" },
    { "nat", "{'subnet': '192.168.122.1/24'}", "subnet", "host bits" },
    { "nat", "{'address': '192.168.123.1'}", "address", "not a host address" },
    { "nat", "{'address': '192.168.122.255'}", "address", "not a host address" },
    { "nat", "{'dhcp_start': '192.168.122.100', 'dhcp_end': '192.168.122.50'}", "dhcp_end",
      "below dhcp_start" },
    { "nat", "{'address': '192.168.122.60', 'dhcp_start': '192.168.122.50', "
      "'dhcp_end': '192.168.122.70'}", "address", "inside the DHCP range" },
    { "nat", "{'lease_s': 10}", "lease_s", "" },
    { "config", "{'dvs': [{'name': 'a', 'bridge': 'br0'}, {'name': 'b', 'bridge': 'br0'}]}",
      "bridge", "already used by DVS 'a'" },
    { "config", "{'dvs': [{'name': 'a', 'uplink': {'nics': ['eth0']}}, "
      "{'name': 'b', 'uplink': {'nics': ['eth0']}}]}", "uplink.nics",
      "already the uplink of DVS 'a'" },
    { "config", "{'dvs': [{'name': 'a'}, {'name': 'a'}]}", "dvs[1]", "defined twice" },
    { "config", "{'security_groups': [{'name': 'web', 'rules': [{'direction': 'ingress', "
      "'remote_group': 'db'}]}]}", "rules[0].remote_group", "unknown group 'db'" },
    { "config", "{'nat': [{'name': 'a'}, {'name': 'b', 'subnet': '192.168.0.0/16'}]}", "subnet",
      "overlaps" },
    { "config", "{'dvs': [{'name': 'averyveryverylongname'}]}", "dvs[0].bridge",
      "longer than 12 bytes" },
    { "config", "{'planes': {'storage': ['eth/0']}}", "planes.storage[0]", "may only contain" },
    { "config", "{'planes': {'backup': []}}", "planes.backup", "" },
};

static void test_bad_inputs(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        AUTOJSON json_t *j = jq(c->json);
        AUTOERROR struct error *err = NULL;
        int r;
        if (!strcmp(c->what, "dvs")) {
            struct net_dvs d;
            r = net_dvs_from_json(j, "x", "", false, &d, &err);
            if (r == 0)
                net_dvs_clear(&d);
        } else if (!strcmp(c->what, "pg")) {
            struct net_portgroup pg;
            r = net_portgroup_from_json(j, "p", "", &pg, &err);
            if (r == 0)
                net_portgroup_clear(&pg);
        } else if (!strcmp(c->what, "sg")) {
            struct net_sg sg;
            r = net_sg_from_json(j, "s", "", &sg, &err);
            if (r == 0)
                net_sg_clear(&sg);
        } else if (!strcmp(c->what, "nat")) {
            struct net_nat n;
            r = net_nat_from_json(j, "n", "", &n, &err);
            if (r == 0)
                net_nat_clear(&n);
        } else {
            struct net_config *cfg = net_config_from_json(j, &err);
            r = cfg ? 0 : -1;
            net_config_free(cfg);
        }
        if (r == 0)
            fail_msg("case %zu (%s %s) accepted", i, c->what, c->json);
        if (!err->field || strcmp(err->field, c->field))
            fail_msg("case %zu (%s): field '%s', expected '%s' (%s)", i, c->json,
                     err->field ? err->field : "(none)", c->field, err->message);
        if (!strstr(err->message, c->message))
            fail_msg("case %zu (%s): message '%s' lacks '%s'", i, c->json, err->message,
                     c->message);
    }
}

static const char full_config[] =
    "{'dvs': [{'name': 'prod', 'mtu': 9000, 'datapath': 'netdev', 'vlans': '100-200,4000',"
    "  'uplink': {'nics': ['eth0', 'eth1'], 'mode': 'balance-slb'},"
    "  'portgroups': [{'name': 'v100', 'vlan': 100, 'ip_mac_binding': true,"
    "    'bandwidth': {'in': {'rate_kbps': 1000}, 'out': {'rate_kbps': 2000, 'burst_kbit': 100}},"
    "    'broadcast_suppression': {'pps': 30}, 'priority': 'low', 'dhcp_isolation': true},"
    "   {'name': 'tr', 'trunk': '100-105,200'}]},"
    " {'name': 'lab', 'bridge': 'br-lab', 'uplink': {'nics': ['eth2']}}],"
    " 'security_groups': [{'name': 'web', 'rules': [{'direction': 'ingress', 'protocol': 'tcp',"
    "   'port_min': 80, 'port_max': 90, 'remote_cidr': '10.0.0.0/8'},"
    "   {'direction': 'egress', 'remote_group': 'web'}], 'remote_ips': ['10.9.0.0/16']}],"
    " 'nat': [{'name': 'default', 'subnet': '10.77.0.0/16', 'lease_s': 600, 'masquerade': false}],"
    " 'planes': {'management': ['mgmt0'], 'storage': [], 'business': ['eth0', 'eth1']}}";

static void test_round_trip(void **state)
{
    (void) state;
    AUTOJSON json_t *in = jq(full_config);
    AUTOERROR struct error *err = NULL;
    struct net_config *c1 = net_config_from_json(in, &err);
    if (!c1)
        fail_msg("refused: %s: %s", err->field, err->message);
    AUTOJSON json_t *j1 = net_config_to_json(c1);
    struct net_config *c2 = net_config_from_json(j1, &err);
    if (!c2)
        fail_msg("canonical form refused: %s: %s", err->field, err->message);
    AUTOJSON json_t *j2 = net_config_to_json(c2);
    struct net_config *c3 = net_config_copy(c2);
    AUTOJSON json_t *j3 = net_config_to_json(c3);
    AUTOFREE char *s1 = json_to_string(j1);
    AUTOFREE char *s2 = json_to_string(j2);
    AUTOFREE char *s3 = json_to_string(j3);
    assert_string_equal(s1, s2);
    assert_string_equal(s1, s3);
    /* Defaults and normalisation. */
    const struct net_dvs *d = net_config_dvs(c1, "prod");
    assert_string_equal(d->bridge, "sd-prod");
    assert_string_equal(d->bond, "bond0");
    assert_int_equal(d->bond_mode, NET_BOND_BALANCE_SLB);
    assert_int_equal(d->lacp, NET_LACP_OFF);
    const struct net_portgroup *pg = net_dvs_portgroup(d, "v100");
    assert_int_equal(pg->bw_in.burst_kbit, 200);   /* rate / 5 */
    assert_int_equal(pg->bw_out.burst_kbit, 100);
    assert_int_equal(pg->bcast_burst, 3);          /* pps / 10 */
    const struct net_nat *n = net_config_nat(c1, "default");
    assert_string_equal(n->bridge, "sn-default");
    char a[16];
    ipv4_format(n->address, a);
    assert_string_equal(a, "10.77.0.1");
    ipv4_format(n->dhcp_start, a);
    assert_string_equal(a, "10.77.0.2");
    ipv4_format(n->dhcp_end, a);
    assert_string_equal(a, "10.77.255.254");
    assert_false(n->masquerade);
    assert_string_equal(c1->planes[NET_PLANE_BUSINESS][1], "eth1");
    assert_null(net_config_dvs(c1, "nope"));
    assert_null(net_config_sg(c1, "nope"));
    net_config_free(c1);
    net_config_free(c2);
    net_config_free(c3);
}

/* ---- NAT helpers -------------------------------------------------------------------- */

static void test_nat(void **state)
{
    (void) state;
    AUTOJSON json_t *j = jq("{'subnet': '192.168.122.0/24', 'address': '192.168.122.1'}");
    struct net_nat n;
    assert_int_equal(net_nat_from_json(j, "my.net-1", "", &n, NULL), 0);
    AUTOFREE char *t = net_nat_nft_table(n.name);
    assert_string_equal(t, "strata_nat_my_2enet_2d1");
    AUTOFREE char *script = net_nat_nft_script(&n);
    assert_non_null(strstr(script, "delete table ip strata_nat_my_2enet_2d1\n"));
    assert_non_null(strstr(script,
                           "ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 masquerade"));
    AUTOSTRV char **argv = net_nat_dnsmasq_argv(&n, "/run/x", "/var/x");
    AUTOFREE char *joined = NULL;
    for (size_t i = 0; argv[i]; i++) {
        char *s = xasprintf("%s%s ", joined ? joined : "", argv[i]);
        free(joined);
        joined = s;
    }
    assert_string_equal(joined,
        "dnsmasq --keep-in-foreground --conf-file=/dev/null --strict-order --bind-interfaces "
        "--except-interface=lo --interface=sn-my.net-1 --listen-address=192.168.122.1 --port=0 "
        "--dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0,3600 "
        "--dhcp-option=option:router,192.168.122.1 "
        "--dhcp-leasefile=/var/x/nat-my.net-1.leases --dhcp-authoritative --dhcp-no-override "
        "--pid-file=/run/x/nat-my.net-1.pid --log-facility=/run/x/nat-my.net-1.log "
        "--log-dhcp ");
    net_nat_clear(&n);

    AUTOJSON json_t *leases = net_nat_leases_parse(
        "1763780000 52:54:00:05:00:01 192.168.122.242 n1 01:52:54:00:05:00:01\n"
        "garbage\n"
        "1763780001 52:54:00:05:00:02 192.168.122.7 * *\n"
        "x 52:54:00:05:00:03 192.168.122.8 * *\n");
    AUTOFREE char *ls = json_to_string(leases);
    assert_string_equal(ls,
        "[{\"client_id\":\"01:52:54:00:05:00:01\",\"expiry\":1763780000,\"hostname\":\"n1\","
        "\"ip\":\"192.168.122.242\",\"mac\":\"52:54:00:05:00:01\"},"
        "{\"client_id\":null,\"expiry\":1763780001,\"hostname\":null,"
        "\"ip\":\"192.168.122.7\",\"mac\":\"52:54:00:05:00:02\"}]");
}

/* ---- host NICs, observed OVSDB ---------------------------------------------------------- */

static void test_host_nics(void **state)
{
    (void) state;
    const char *ip =
        "[{\"ifindex\":1,\"ifname\":\"lo\",\"mtu\":65536,\"operstate\":\"UNKNOWN\"},"
        " {\"ifindex\":2,\"ifname\":\"eno1\",\"mtu\":1500,\"operstate\":\"UP\","
        "  \"address\":\"00:11:22:33:44:55\",\"parentbus\":\"pci\",\"parentdev\":\"0000:01:00.0\","
        "  \"addr_info\":[{\"family\":\"inet\",\"local\":\"10.0.0.5\",\"prefixlen\":24}]},"
        " {\"ifindex\":3,\"ifname\":\"bond0\",\"mtu\":9000,\"operstate\":\"DOWN\","
        "  \"linkinfo\":{\"info_kind\":\"bond\"},\"addr_info\":[]},"
        " {\"ifindex\":4,\"ifname\":\"t-vm1\",\"linkinfo\":{\"info_kind\":\"tun\"}},"
        " {\"ifindex\":5,\"ifname\":\"eth9\",\"mtu\":1500,\"master\":\"bond0\"}]";
    AUTOJSON json_t *nics = net_host_nics_parse(ip, NULL);
    assert_non_null(nics);
    AUTOFREE char *s = json_to_string(nics);
    assert_string_equal(s,
        "[{\"addresses\":[\"10.0.0.5/24\"],\"kind\":\"physical\",\"mac\":\"00:11:22:33:44:55\","
        "\"master\":null,\"mtu\":1500,\"name\":\"eno1\",\"state\":\"UP\"},"
        "{\"addresses\":[],\"kind\":\"bond\",\"mac\":null,\"master\":null,\"mtu\":9000,"
        "\"name\":\"bond0\",\"state\":\"DOWN\"},"
        "{\"addresses\":[],\"kind\":\"other\",\"mac\":null,\"master\":\"bond0\",\"mtu\":1500,"
        "\"name\":\"eth9\",\"state\":\"UNKNOWN\"}]");
    AUTOERROR struct error *err = NULL;
    assert_null(net_host_nics_parse("{}", &err));
}

static void test_observed(void **state)
{
    (void) state;
    const char *text =
        "{\"data\":[[\"sd-a\",[\"set\",[[\"uuid\",\"u1\"],[\"uuid\",\"u2\"]]],"
        "[\"map\",[[\"strata-dvs\",\"a\"],[\"strata-cfg\",\"dp=netdev;mtu=1500\"]]]],"
        "[\"br9\",[\"uuid\",\"u3\"],[\"map\",[]]]],\"headings\":[]}\n"
        "{\"data\":[[[\"uuid\",\"u1\"],\"t-x\",[\"map\",[[\"strata-vm\",\"x\"]]]],"
        "[[\"uuid\",\"u3\"],\"eth0\",[\"map\",[[\"strata-uplink\",\"a\"]]]],"
        "[[\"uuid\",\"u9\"],\"orphan\",[\"map\",[]]]],\"headings\":[]}\n";
    struct net_observed o;
    assert_int_equal(net_observed_parse(text, &o, NULL), 0);
    assert_int_equal(o.n_bridges, 2);
    assert_string_equal(o.bridges[0].dvs, "a");
    assert_string_equal(o.bridges[0].cfg, "dp=netdev;mtu=1500");
    assert_null(o.bridges[1].dvs);
    assert_int_equal(o.n_ports, 3);
    assert_string_equal(o.ports[0].bridge, "sd-a");
    assert_string_equal(o.ports[0].vm, "x");
    assert_string_equal(o.ports[1].bridge, "br9");
    assert_string_equal(o.ports[1].uplink, "a");
    assert_null(o.ports[2].bridge);
    net_observed_clear(&o);
    AUTOERROR struct error *err = NULL;
    assert_int_equal(net_observed_parse("{}", &o, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vlan_sets),
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_port_ranges),
        cmocka_unit_test(test_mac_alloc),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nat),
        cmocka_unit_test(test_host_nics),
        cmocka_unit_test(test_observed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
