/* mac_alloc.c - see mac_alloc.h. */
#include "net/mac_alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

int net_mac_prefix_validate(const char *prefix, const char *field, struct error **errp)
{
    unsigned b[3];
    char tail;
    if (strlen(prefix) != 8 || prefix[2] != ':' || prefix[5] != ':')
        goto bad;
    for (size_t i = 0; i < 8; i++)
        if (i % 3 != 2 && !isxdigit((unsigned char) prefix[i]))
            goto bad;
    if (sscanf(prefix, "%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &tail) != 3)
        goto bad;
    if (b[0] & 1)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "MAC prefix '%s' is multicast; NICs need unicast", prefix);
    if (!b[0] && !b[1] && !b[2])
        return error_set_field(errp, ERR_INVALID_ARG, field, "MAC prefix '%s' is all zeros",
                               prefix);
    return 0;
bad:
    return error_set_field(errp, ERR_INVALID_ARG, field,
                           "MAC prefix '%.20s' is not of the form xx:xx:xx", prefix);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int net_mac_alloc(const char *prefix, uint32_t *cursor, char *const *used, size_t n_used,
                  char out[18], struct error **errp)
{
    if (net_mac_prefix_validate(prefix, "prefix", errp) < 0)
        return -1;
    char p[9];
    for (size_t i = 0; i < 8; i++)
        p[i] = (char) tolower((unsigned char) prefix[i]);
    p[8] = '\0';
    /* Sorted copy of the used addresses for bsearch. */
    char **sorted = xcalloc(n_used + 1, sizeof(char *));
    if (n_used)
        memcpy(sorted, used, n_used * sizeof(char *));
    qsort(sorted, n_used, sizeof(char *), cmp_str);
    uint32_t c = *cursor & 0xffffff;
    for (uint32_t tries = 0; tries < 0x1000000; tries++, c = (c + 1) & 0xffffff) {
        if (c == 0 || c == 0xffffff)
            continue;
        char cand[18];
        snprintf(cand, sizeof cand, "%s:%02x:%02x:%02x", p, (c >> 16) & 255, (c >> 8) & 255,
                 c & 255);
        const char *key = cand;
        if (n_used && bsearch(&key, sorted, n_used, sizeof(char *), cmp_str))
            continue;
        memcpy(out, cand, 18);
        *cursor = (c + 1) & 0xffffff;
        free(sorted);
        return 0;
    }
    free(sorted);
    return error_set(errp, ERR_NO_SPACE, "every MAC address with prefix '%s' is in use", p);
}

uint32_t net_mac_seed(const char *host_id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *) host_id; *s; s++) {
        h ^= *s;
        h *= 16777619u;
    }
    return (h ^ (h >> 24)) & 0xffffff;
}
