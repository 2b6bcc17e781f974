/* mac_alloc.h - collision-free MAC addresses for VM NICs.  Pure.
 *
 * A host hands out addresses "PP:PP:PP:xx:xx:xx": a 3-byte unicast prefix
 * (default 52:54:00, QEMU's) and a 24-bit counter.  The counter starts at a
 * per-host seed (so two hosts rarely walk the same sequence) and moves on
 * past every address already in use (by a defined NIC, or handed out
 * before).  The manager, which sees the whole cluster, owns the real pools;
 * this keeps a single host consistent. */
#ifndef STRATA_MAC_ALLOC_H
#define STRATA_MAC_ALLOC_H

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define NET_MAC_PREFIX_DEFAULT "52:54:00"

/* Checks "xx:xx:xx" (hex, either case): a unicast, non-zero prefix. */
int net_mac_prefix_validate(const char *prefix, const char *field, struct error **errp);

/* Writes the first address at or after '*cursor' (mod 2^24) that is not in
 * 'used' (lowercase strings, 'n_used' of them) into 'out' (lowercase) and
 * advances '*cursor' past it.  Counter values 0 and 0xffffff are skipped.
 * Fails (ERR_NO_SPACE) when all 2^24-2 addresses are used. */
int net_mac_alloc(const char *prefix, uint32_t *cursor, char *const *used, size_t n_used,
                  char out[18], struct error **errp);

/* A seed for the cursor from any host identity string (FNV-1a, 24 bits). */
uint32_t net_mac_seed(const char *host_id);

#endif
