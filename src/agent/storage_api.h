/* storage_api.h - the agent's storage module: datastores, volumes, VM
 * snapshots and disk migration behind the HTTP API (docs/storage.md).
 *
 * Plugged in through agent_modules[] (modules.c): its routes, its start-up
 * (datastores registered as image roots before VMs are recovered, then
 * interrupted operations finished or rolled back), its VM hooks (start-time
 * image checks and throw-away overlays; dropping them at power-off) and two
 * threads: the storage heartbeat of shared datastores and a watcher that
 * turns QEMU's ENOSPC pauses into "storage-full" events. */
#ifndef STRATA_STORAGE_API_H
#define STRATA_STORAGE_API_H

#include "agent/agent.h"

extern const struct agent_module storage_module;

#endif
