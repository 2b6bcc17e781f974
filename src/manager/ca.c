/* ca.c - see ca.h: the manager's certificate authority over GnuTLS x509.
 *
 * Every certificate is X.509 v3, ECDSA P-256 signed with SHA-256, with a
 * random 16-byte serial, subject and authority key identifiers, and an
 * activation time five minutes in the past (clock skew between hosts).
 *
 * Neighbours: util/fileutil.c (atomic writes), api_hosts.c (the caller). */
#define LOG_MODULE "ca"
#include "manager/ca.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/fileutil.h"
#include "util/log.h"
#include "util/mem.h"

#define CA_DAYS 3650
#define LEAF_DAYS 825
#define SKEW_S 300
#define PEM_MAX ((size_t) 64 * 1024)

struct ca {
    pthread_mutex_t lock;
    char *dir, *cert_file, *key_file, *client_cert_file, *client_key_file, *crl_file;
    char *cert_pem;
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t key;
};

static int gt_error(int r, const char *what, struct error **errp)
{
    return error_set(errp, ERR_INTERNAL, "%s: %s", what, gnutls_strerror(r));
}

#define GT(call, what)                                \
    do {                                              \
        int r_ = (call);                              \
        if (r_ < 0)                                   \
            return gt_error(r_, (what), errp);        \
    } while (0)

static char *datum_string(gnutls_datum_t *d)
{
    char *s = xstrndup((const char *) d->data, d->size);
    gnutls_free(d->data);
    d->data = NULL;
    return s;
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static int new_key(gnutls_x509_privkey_t *key, struct error **errp)
{
    GT(gnutls_x509_privkey_init(key), "gnutls_x509_privkey_init");
    GT(gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
                                    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
       "generating an ECDSA key");
    return 0;
}

/* Version, serial, validity and subject CN of a new certificate. */
static int crt_basics(gnutls_x509_crt_t crt, const char *cn, unsigned days,
                      char serial_out[CA_SERIAL_HEX + 1], int64_t *not_after_ms,
                      struct error **errp)
{
    unsigned char serial[CA_SERIAL_HEX / 2];
    GT(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial), "gnutls_rnd");
    serial[0] = (unsigned char) ((serial[0] & 0x7f) | 0x01);   /* positive, full length */
    time_t now = time(NULL);
    time_t until = now + (time_t) days * 86400;
    GT(gnutls_x509_crt_set_version(crt, 3), "set version");
    GT(gnutls_x509_crt_set_serial(crt, serial, sizeof serial), "set serial");
    GT(gnutls_x509_crt_set_activation_time(crt, now - SKEW_S), "set activation time");
    GT(gnutls_x509_crt_set_expiration_time(crt, until), "set expiration time");
    GT(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                     (unsigned) strlen(cn)), "set common name");
    GT(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "Strata", 6),
       "set organization");
    if (serial_out)
        hex(serial, sizeof serial, serial_out);
    if (not_after_ms)
        *not_after_ms = (int64_t) until * 1000;
    return 0;
}

static int write_pem(const char *path, const char *pem, int mode, struct error **errp)
{
    return file_write_atomic(path, pem, strlen(pem), mode, errp);
}

/* ---- creating and loading ----------------------------------------------- */

static int ca_create(struct ca *ca, struct error **errp)
{
    if (new_key(&ca->key, errp) < 0)
        return -1;
    GT(gnutls_x509_crt_init(&ca->crt), "gnutls_x509_crt_init");
    if (crt_basics(ca->crt, "Strata CA", CA_DAYS, NULL, NULL, errp) < 0)
        return -1;
    GT(gnutls_x509_crt_set_key(ca->crt, ca->key), "set key");
    GT(gnutls_x509_crt_set_basic_constraints(ca->crt, 1, 0), "set basic constraints");
    GT(gnutls_x509_crt_set_key_usage(ca->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
       "set key usage");
    unsigned char id[64];
    size_t id_size = sizeof id;
    GT(gnutls_x509_privkey_get_key_id(ca->key, 0, id, &id_size), "key id");
    GT(gnutls_x509_crt_set_subject_key_id(ca->crt, id, id_size), "set subject key id");
    GT(gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), "self-signing");

    gnutls_datum_t d = { NULL, 0 };
    GT(gnutls_x509_privkey_export2(ca->key, GNUTLS_X509_FMT_PEM, &d), "export key");
    AUTOFREE char *key_pem = datum_string(&d);
    GT(gnutls_x509_crt_export2(ca->crt, GNUTLS_X509_FMT_PEM, &d), "export certificate");
    ca->cert_pem = datum_string(&d);
    int r = write_pem(ca->key_file, key_pem, 0600, errp);
    explicit_bzero(key_pem, strlen(key_pem));
    if (r < 0 || write_pem(ca->cert_file, ca->cert_pem, 0644, errp) < 0)
        return -1;
    LOG_INFO("created the Strata CA in '%s'", ca->dir);
    return 0;
}

static int ca_load(struct ca *ca, struct error **errp)
{
    AUTOFREE char *key_pem = file_read_all(ca->key_file, PEM_MAX, NULL, errp);
    if (!key_pem || !(ca->cert_pem = file_read_all(ca->cert_file, PEM_MAX, NULL, errp)))
        return -1;
    gnutls_datum_t kd = { (unsigned char *) key_pem, (unsigned) strlen(key_pem) };
    gnutls_datum_t cd = { (unsigned char *) ca->cert_pem, (unsigned) strlen(ca->cert_pem) };
    GT(gnutls_x509_privkey_init(&ca->key), "gnutls_x509_privkey_init");
    int r = gnutls_x509_privkey_import(ca->key, &kd, GNUTLS_X509_FMT_PEM);
    explicit_bzero(key_pem, strlen(key_pem));
    if (r < 0)
        return error_set(errp, ERR_INVALID_ARG, "'%s' holds no usable private key: %s",
                         ca->key_file, gnutls_strerror(r));
    GT(gnutls_x509_crt_init(&ca->crt), "gnutls_x509_crt_init");
    r = gnutls_x509_crt_import(ca->crt, &cd, GNUTLS_X509_FMT_PEM);
    if (r < 0)
        return error_set(errp, ERR_INVALID_ARG, "'%s' holds no usable certificate: %s",
                         ca->cert_file, gnutls_strerror(r));
    unsigned is_ca = 0;
    if (gnutls_x509_crt_get_basic_constraints(ca->crt, NULL, &is_ca, NULL) < 0 || !is_ca)
        return error_set(errp, ERR_INVALID_ARG, "'%s' is not a CA certificate", ca->cert_file);
    return 0;
}

static int make_client_cert(struct ca *ca, struct error **errp)
{
    struct ca_issued out = { 0 };
    struct ca_request req = { .cn = CA_MANAGER_CN, .purpose = CA_CLIENT, .days = CA_DAYS };
    int r = -1;
    if (ca_issue(ca, &req, &out, errp) == 0 &&
        write_pem(ca->client_key_file, out.key_pem, 0600, errp) == 0 &&
        write_pem(ca->client_cert_file, out.cert_pem, 0644, errp) == 0)
        r = 0;
    ca_issued_clear(&out);
    if (r == 0)
        LOG_INFO("issued the manager's client certificate '%s'", ca->client_cert_file);
    return r;
}

struct ca *ca_open(const char *dir, struct error **errp)
{
    if (mkdir_p(dir, 0700, errp) < 0)
        return NULL;
    struct ca *ca = xzalloc(sizeof *ca);
    pthread_mutex_init(&ca->lock, NULL);
    ca->dir = xstrdup(dir);
    ca->cert_file = xasprintf("%s/ca.pem", dir);
    ca->key_file = xasprintf("%s/ca-key.pem", dir);
    ca->client_cert_file = xasprintf("%s/manager.pem", dir);
    ca->client_key_file = xasprintf("%s/manager-key.pem", dir);
    ca->crl_file = xasprintf("%s/agents-crl.pem", dir);
    bool have_cert = file_exists(ca->cert_file), have_key = file_exists(ca->key_file);
    int r;
    if (have_cert != have_key)
        r = error_set(errp, ERR_CONFLICT, "CA in '%s' is incomplete: '%s' without '%s'", dir,
                      have_cert ? ca->cert_file : ca->key_file,
                      have_cert ? ca->key_file : ca->cert_file);
    else
        r = have_cert ? ca_load(ca, errp) : ca_create(ca, errp);
    if (r == 0 && (!file_exists(ca->client_cert_file) || !file_exists(ca->client_key_file)))
        r = make_client_cert(ca, errp);
    if (r < 0) {
        error_prefix(errp, "certificate authority");
        ca_free(ca);
        return NULL;
    }
    return ca;
}

void ca_free(struct ca *ca)
{
    if (!ca)
        return;
    if (ca->crt)
        gnutls_x509_crt_deinit(ca->crt);
    if (ca->key)
        gnutls_x509_privkey_deinit(ca->key);
    pthread_mutex_destroy(&ca->lock);
    free(ca->dir);
    free(ca->cert_file);
    free(ca->key_file);
    free(ca->client_cert_file);
    free(ca->client_key_file);
    free(ca->crl_file);
    free(ca->cert_pem);
    free(ca);
}

const char *ca_cert_pem(const struct ca *ca) { return ca->cert_pem; }
const char *ca_dir(const struct ca *ca) { return ca->dir; }
const char *ca_cert_file(const struct ca *ca) { return ca->cert_file; }
const char *ca_client_cert_file(const struct ca *ca) { return ca->client_cert_file; }
const char *ca_client_key_file(const struct ca *ca) { return ca->client_key_file; }
const char *ca_crl_file(const struct ca *ca) { return ca->crl_file; }

/* ---- issuing ------------------------------------------------------------ */

void ca_issued_clear(struct ca_issued *out)
{
    if (!out)
        return;
    free(out->cert_pem);
    if (out->key_pem) {
        explicit_bzero(out->key_pem, strlen(out->key_pem));
        free(out->key_pem);
    }
    memset(out, 0, sizeof *out);
}

static int add_sans(gnutls_x509_crt_t crt, const struct ca_request *req, struct error **errp)
{
    for (const char *const *n = req->dns_names; n && *n; n++)
        GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, *n,
                                                (unsigned) strlen(*n), GNUTLS_FSAN_APPEND),
           "set DNS name");
    for (const char *const *a = req->ip_addresses; a && *a; a++) {
        unsigned char bin[16];
        unsigned len;
        if (inet_pton(AF_INET, *a, bin) == 1)
            len = 4;
        else if (inet_pton(AF_INET6, *a, bin) == 1)
            len = 16;
        else
            return error_set(errp, ERR_INVALID_ARG, "'%s' is not an IP address", *a);
        GT(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, bin, len,
                                                GNUTLS_FSAN_APPEND), "set IP address");
    }
    return 0;
}

/* Puts the request's public key into 'crt' and writes its key id. */
static int key_from_csr(gnutls_x509_crt_t crt, const char *csr_pem, unsigned char *id,
                        size_t *id_size, struct error **errp)
{
    gnutls_x509_crq_t crq = NULL;
    gnutls_pubkey_t pub = NULL;
    int ret = -1, r;
    gnutls_datum_t d = { (unsigned char *) csr_pem, (unsigned) strlen(csr_pem) };
    if ((r = gnutls_x509_crq_init(&crq)) < 0 ||
        (r = gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM)) < 0) {
        error_set(errp, ERR_INVALID_ARG, "the certificate request cannot be read: %s",
                  gnutls_strerror(r));
        goto cleanup;
    }
    if ((r = gnutls_x509_crq_verify(crq, 0)) < 0) {
        error_set(errp, ERR_INVALID_ARG, "the certificate request's signature is not valid: %s",
                  gnutls_strerror(r));
        goto cleanup;
    }
    if ((r = gnutls_pubkey_init(&pub)) < 0 ||
        (r = gnutls_pubkey_import_x509_crq(pub, crq, 0)) < 0 ||
        (r = gnutls_x509_crt_set_pubkey(crt, pub)) < 0 ||
        (r = gnutls_pubkey_get_key_id(pub, 0, id, id_size)) < 0) {
        error_set(errp, ERR_INVALID_ARG, "the certificate request's key cannot be used: %s",
                  gnutls_strerror(r));
        goto cleanup;
    }
    ret = 0;
cleanup:
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (crq)
        gnutls_x509_crq_deinit(crq);
    return ret;
}

static int issue_locked(struct ca *ca, const struct ca_request *req, gnutls_x509_crt_t crt,
                        gnutls_x509_privkey_t *key, struct ca_issued *out, struct error **errp)
{
    if (!req->cn || !*req->cn || strlen(req->cn) > 64)
        return error_set(errp, ERR_INVALID_ARG, "a certificate needs a common name of 1..64 "
                         "characters");
    unsigned char id[64];
    size_t id_size = sizeof id;
    if (req->csr_pem) {
        if (key_from_csr(crt, req->csr_pem, id, &id_size, errp) < 0)
            return -1;
    } else {
        if (new_key(key, errp) < 0)
            return -1;
        GT(gnutls_x509_crt_set_key(crt, *key), "set key");
        GT(gnutls_x509_privkey_get_key_id(*key, 0, id, &id_size), "key id");
    }
    if (crt_basics(crt, req->cn, req->days ? req->days : LEAF_DAYS, out->serial,
                   &out->not_after_ms, errp) < 0 ||
        add_sans(crt, req, errp) < 0)
        return -1;
    GT(gnutls_x509_crt_set_subject_key_id(crt, id, id_size), "set subject key id");
    unsigned char aid[64];
    size_t aid_size = sizeof aid;
    unsigned critical = 0;
    GT(gnutls_x509_crt_get_subject_key_id(ca->crt, aid, &aid_size, &critical),
       "CA key id");
    GT(gnutls_x509_crt_set_authority_key_id(crt, aid, aid_size), "set authority key id");
    GT(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "set basic constraints");
    GT(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "set key usage");
    GT(gnutls_x509_crt_set_key_purpose_oid(crt, req->purpose == CA_SERVER
                                                    ? GNUTLS_KP_TLS_WWW_SERVER
                                                    : GNUTLS_KP_TLS_WWW_CLIENT, 0),
       "set key purpose");
    GT(gnutls_x509_crt_sign2(crt, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), "signing");
    gnutls_datum_t d = { NULL, 0 };
    GT(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d), "export certificate");
    out->cert_pem = datum_string(&d);
    if (*key) {
        GT(gnutls_x509_privkey_export2(*key, GNUTLS_X509_FMT_PEM, &d), "export key");
        out->key_pem = datum_string(&d);
    }
    return 0;
}

int ca_issue(struct ca *ca, const struct ca_request *req, struct ca_issued *out,
             struct error **errp)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t key = NULL;
    int r = gnutls_x509_crt_init(&crt);
    if (r < 0)
        return gt_error(r, "gnutls_x509_crt_init", errp);
    pthread_mutex_lock(&ca->lock);
    r = issue_locked(ca, req, crt, &key, out, errp);
    pthread_mutex_unlock(&ca->lock);
    gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    if (r < 0)
        ca_issued_clear(out);
    else
        LOG_INFO("issued a %s certificate for '%s' (serial %s)",
                 req->purpose == CA_SERVER ? "server" : "client", req->cn, out->serial);
    return r;
}

/* ---- revocation --------------------------------------------------------- */

static int crl_locked(struct ca *ca, gnutls_x509_crl_t crl, const char *const *serials,
                      unsigned days, char **out, struct error **errp)
{
    time_t now = time(NULL);
    GT(gnutls_x509_crl_set_version(crl, 2), "set CRL version");
    GT(gnutls_x509_crl_set_this_update(crl, now - SKEW_S), "set this update");
    GT(gnutls_x509_crl_set_next_update(crl, now + (time_t) days * 86400), "set next update");
    for (const char *const *s = serials; s && *s; s++) {
        unsigned char bin[64];
        size_t n = strlen(*s);
        if (n == 0 || n % 2 || n / 2 > sizeof bin)
            return error_set(errp, ERR_INVALID_ARG, "'%s' is not a certificate serial", *s);
        for (size_t i = 0; i < n / 2; i++) {
            unsigned v;
            if (sscanf(*s + 2 * i, "%2x", &v) != 1)
                return error_set(errp, ERR_INVALID_ARG, "'%s' is not a certificate serial", *s);
            bin[i] = (unsigned char) v;
        }
        GT(gnutls_x509_crl_set_crt_serial(crl, bin, n / 2, now), "revoke serial");
    }
    unsigned char aid[64];
    size_t aid_size = sizeof aid;
    unsigned critical = 0;
    GT(gnutls_x509_crt_get_subject_key_id(ca->crt, aid, &aid_size, &critical), "CA key id");
    GT(gnutls_x509_crl_set_authority_key_id(crl, aid, aid_size), "set CRL authority key id");
    GT(gnutls_x509_crl_sign2(crl, ca->crt, ca->key, GNUTLS_DIG_SHA256, 0), "signing the CRL");
    gnutls_datum_t d = { NULL, 0 };
    GT(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &d), "export CRL");
    *out = datum_string(&d);
    return 0;
}

char *ca_crl(struct ca *ca, const char *const *serials, unsigned next_update_days,
             struct error **errp)
{
    gnutls_x509_crl_t crl = NULL;
    int r = gnutls_x509_crl_init(&crl);
    if (r < 0)
        return gt_error(r, "gnutls_x509_crl_init", errp), NULL;
    char *out = NULL;
    pthread_mutex_lock(&ca->lock);
    r = crl_locked(ca, crl, serials, next_update_days ? next_update_days : 30, &out, errp);
    pthread_mutex_unlock(&ca->lock);
    gnutls_x509_crl_deinit(crl);
    return r < 0 ? NULL : out;
}
