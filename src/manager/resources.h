/* resources.h - storage and network resources the manager pushes to hosts:
 * datastores and volumes, DVSs and port groups, NAT networks.
 *
 * Neighbours: api_storage.c, api_net.c (routes), agent_client.h (calls). */
#ifndef STRATA_MANAGER_RESOURCES_H
#define STRATA_MANAGER_RESOURCES_H

#include "manager/task_engine.h"

/* The resource task kinds, NULL-terminated. */
extern const struct task_kind_def *const resource_task_kinds[];

#endif
