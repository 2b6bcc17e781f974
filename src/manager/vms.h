/* vms.h - virtual machines and templates in the manager: the VM
 * specification, its translation into an agent definition, the task kinds
 * that provision and operate VMs on agents, and the reconciliation of the
 * manager's records with what agents run.
 *
 * Neighbours: api_vms.c (routes), placement.h (host choice), agent_client.h
 * (calls), task_engine.h (steps), docs/manager.md (Compute). */
#ifndef STRATA_MANAGER_VMS_H
#define STRATA_MANAGER_VMS_H

#include <jansson.h>
#include <stdbool.h>

#include "manager/task_engine.h"
#include "util/error.h"

struct manager;

struct agent_conn;

/* Called by the host monitor after every successful heartbeat of a host
 * ('a' is connected to its agent; 'reconnected' when the host was not
 * 'connected' before): reads what the agent runs and brings the manager's
 * VM records for that host in line (states, statistics, VMs the manager did
 * not know, VMs the agent no longer has).  Errors are logged, not returned. */
void vms_host_sync(struct manager *m, const char *host_id, struct agent_conn *a,
                   bool reconnected);

/* The VM task kinds, NULL-terminated. */
extern const struct task_kind_def *const vm_task_kinds[];

#endif
