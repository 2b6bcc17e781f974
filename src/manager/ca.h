/* ca.h - the manager's certificate authority (GnuTLS x509).
 *
 * There is one Strata CA and the manager owns it (docs/internals/http.md,
 * "TLS model").  At the manager's first start ca_open() creates, in its PKI
 * directory (mode 0700):
 *   ca.pem, ca-key.pem            the self-signed CA (ECDSA P-256, 10 years,
 *                                 basic constraints CA, cert and CRL signing)
 *   manager.pem, manager-key.pem  the manager's client certificate for calling
 *                                 agents: CN "strata-manager", tls_www_client
 * Later starts load them (and make the client certificate again if it is
 * missing).  Private keys are written 0600, atomically.
 *
 * ca_issue() signs a leaf certificate: for an agent (server: CN = host name,
 * subjectAltName = its names and addresses, key purpose tls_www_server only,
 * so a stolen agent key cannot act as a client) or for a client.  The key is
 * either generated here or, better, comes from the host as a PKCS#10 request
 * whose public key alone is used (its subject and extensions are ignored:
 * the manager decides the names).  ca_crl() makes a CRL listing revoked
 * serial numbers, for the agents' --tls-crl.
 *
 * Thread safety: a CA may be used by several threads (signing is locked).
 *
 * Neighbours: api_hosts.c (host join), http/http_server.c and http_client.c
 * (which verify what this signs), tools/make-test-pki.sh (the same layout
 * for tests). */
#ifndef STRATA_MANAGER_CA_H
#define STRATA_MANAGER_CA_H

#include <stdint.h>

#include "util/error.h"

#define CA_MANAGER_CN "strata-manager"
#define CA_SERIAL_HEX 32        /* 16-byte serials, as hex */

struct ca;

/* Opens the CA in 'dir', creating it (and the manager's client certificate)
 * the first time.  Returns a new CA; free it with ca_free(). */
struct ca *ca_open(const char *dir, struct error **errp);
void ca_free(struct ca *ca);    /* Accepts NULL. */

/* Borrowed, valid while the CA is open. */
const char *ca_cert_pem(const struct ca *ca);
const char *ca_dir(const struct ca *ca);
/* Paths (borrowed) of ca.pem, manager.pem and manager-key.pem. */
const char *ca_cert_file(const struct ca *ca);
const char *ca_client_cert_file(const struct ca *ca);
const char *ca_client_key_file(const struct ca *ca);

enum ca_purpose { CA_SERVER, CA_CLIENT };

struct ca_request {
    const char *cn;
    const char *const *dns_names;   /* NULL-terminated, may be NULL */
    const char *const *ip_addresses;/* NULL-terminated IPv4/IPv6 literals, may be NULL */
    enum ca_purpose purpose;
    unsigned days;                  /* 0: 825 */
    const char *csr_pem;            /* optional: sign this request's public key */
};

struct ca_issued {
    char *cert_pem;                 /* owned */
    char *key_pem;                  /* owned; NULL when a CSR was signed */
    char serial[CA_SERIAL_HEX + 1];
    int64_t not_after_ms;
};
void ca_issued_clear(struct ca_issued *out);   /* frees and wipes; accepts zeroed */

/* Issues a certificate for 'req' into 'out' (cleared by the caller). */
int ca_issue(struct ca *ca, const struct ca_request *req, struct ca_issued *out,
             struct error **errp);

/* Where the manager keeps the CRL of revoked agent certificates (written by
 * host_crl_write(); may not exist yet). */
const char *ca_crl_file(const struct ca *ca);

/* Returns a new PEM CRL revoking the NULL-terminated hex 'serials', valid
 * for 'next_update_days' (0: 30). */
char *ca_crl(struct ca *ca, const char *const *serials, unsigned next_update_days,
             struct error **errp);

#endif
