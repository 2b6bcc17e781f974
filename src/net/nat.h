/* nat.h - host-local NAT networks (like libvirt's "default"): the pure parts.
 *
 * A NAT network is an OVS bridge whose internal port carries the host's
 * address on the subnet; dnsmasq serves DHCP on it (no DNS: --port=0) and
 * writes its leases to a file the API reads; an nftables table masquerades
 * traffic from the subnet to anywhere else.  This file builds the dnsmasq
 * argv and the nftables ruleset and parses the lease file; net_apply.c runs
 * them. */
#ifndef STRATA_NAT_H
#define STRATA_NAT_H

#include <jansson.h>

#include "net/net_config.h"

/* Files of NAT network 'n': new strings. */
char *net_nat_pid_path(const char *run_dir, const struct net_nat *n);
char *net_nat_lease_path(const char *state_dir, const struct net_nat *n);
char *net_nat_log_path(const char *run_dir, const struct net_nat *n);

/* The dnsmasq argv (NULL-terminated, new; strv_free). */
char **net_nat_dnsmasq_argv(const struct net_nat *n, const char *run_dir,
                            const char *state_dir);

/* The nftables table name of 'name': "strata_nat_" + name with every byte
 * outside [A-Za-z0-9] written as _XX (hex).  New string. */
char *net_nat_nft_table(const char *name);

/* An nft -f script that (re)creates the table atomically; new string. */
char *net_nat_nft_script(const struct net_nat *n);

/* Parses a dnsmasq lease file ("expiry mac ip hostname client-id" lines)
 * into [{"expiry": N, "mac", "ip", "hostname" (or null), "client_id" (or
 * null)}]. Malformed lines are skipped.  New reference. */
json_t *net_nat_leases_parse(const char *text);

#endif
