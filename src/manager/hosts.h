/* hosts.h - hosts joining the manager, and the connection to their agents.
 *
 * Join, in three steps:
 *   1. an administrator makes a one-time join token (host_join_token_create:
 *      "sjt_" + 64 hex digits, stored hashed, expiring, optionally bound to a
 *      cluster);
 *   2. the host (its installer, or an administrator's script) presents it
 *      with the host's name and address: host_enroll() checks and consumes
 *      the token, has the manager's CA issue the agent's server certificate
 *      (from the host's CSR, or with a key made here), records the host
 *      'disconnected' and answers the certificate, the CA and the client name
 *      the agent must admit ("strata-manager") - the agent then runs with
 *      --tls-cert/--tls-key/--tls-ca/--tls-peer-cn;
 *   3. the host monitor connects to the agent over mutual TLS
 *      (http_client with the manager's client certificate, verifying the
 *      agent's certificate against the CA and the host's name), reads its
 *      facts (GET /v1/host) and marks it 'connected'.
 * A token that is unknown, expired or already used is refused (401) and a
 * refused join changes nothing (the token stays unused).
 *
 * The monitor polls every host, all at once (one thread per host per
 * round): GET /v1/host/stats is the heartbeat; success records last_seen_at,
 * the statistics (hosts.stats) and the agent's applied generation, and
 * 'connected', failure 'disconnected' (a host in maintenance keeps that
 * state); each transition is an event.  After a successful heartbeat the
 * monitor refreshes datastore usage, re-pushes the host's datastores and
 * networks when it reconnected or is behind its desired generation
 * (resources.h: res_host_resync) and calls vms_host_sync() (vms.h).
 *
 * Neighbours: ca.h (certificates), agent_client.h (calls), resources.h,
 * vms.h, api_hosts.c (routes), manager.c (owns the monitor), store.h (tables
 * hosts, join_tokens). */
#ifndef STRATA_MANAGER_HOSTS_H
#define STRATA_MANAGER_HOSTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/store.h"
#include "util/error.h"
#include "util/uuid.h"

#define HOST_JOIN_PREFIX "sjt_"
#define HOST_JOIN_TTL_S 3600
#define HOST_JOIN_MAX_TTL_S (7 * 24 * 3600)
#define HOST_AGENT_PORT 16509

struct manager;
struct host_monitor;

/* Creates a join token valid until 'expires_at' (ms), for 'cluster_id'
 * (may be NULL).  Returns the new token (shown once; the caller frees it);
 * 'id_out' receives its id. */
char *host_join_token_create(struct store_txn *t, const char *cluster_id, int64_t expires_at,
                             const char *actor, char id_out[UUID_STRLEN + 1],
                             struct error **errp);

/* Joins a host from {"token", "name", "address", "port"?, "addresses"?,
 * "csr"?}.  On success '*reply' gets a new {"host": {...}, "ca_pem",
 * "cert_pem", "key_pem" (null with a CSR), "manager_cn"}. */
int host_enroll(struct manager *m, const json_t *body, json_t **reply, struct error **errp);

/* Returns a new PEM CRL listing the certificates of deleted hosts
 * (revoked_certs), valid 30 days. */
char *host_crl_make(struct manager *m, struct error **errp);
/* Writes that CRL to ca_crl_file(): the manager then refuses an agent
 * presenting a revoked certificate (at start-up and after each revocation). */
int host_crl_write(struct manager *m, struct error **errp);

/* One monitoring round over every host (what the monitor thread does every
 * interval); for tests.  Returns the number of hosts reached, or -1. */
int host_monitor_poll(struct manager *m, struct error **errp);

/* Starts a thread calling host_monitor_poll() every 'interval_ms'. */
struct host_monitor *host_monitor_start(struct manager *m, int interval_ms,
                                        struct error **errp);
void host_monitor_stop(struct host_monitor *hm);   /* Accepts NULL. */

#endif
