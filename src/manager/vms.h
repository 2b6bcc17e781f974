/* vms.h - virtual machines and templates in the manager: the VM
 * specification, its translation into an agent definition, the task kinds
 * that provision and operate VMs on agents, and the reconciliation of the
 * manager's records with what agents run.
 *
 * The specification (vms.definition) is what the user asked for, in the
 * manager's terms: the agent definition's fields (docs/vm-definition.md)
 * except that disks name a datastore and a volume instead of a path
 * ({"id", "datastore_id", "datastore", "volume", "format", "origin", ...})
 * and NICs carry no tap (the manager names taps "st<8 hex of the VM id>n<i>").
 * vm_agent_def() turns it into the agent's definition for one host, with
 * the VM's id as the agent's uuid: that uuid is how reconciliation matches
 * an agent's VM to the manager's record.
 *
 * The agent stays the source of truth for what runs.  vms_host_sync() runs
 * after every heartbeat: states and statistics come from the agent, a VM the
 * agent runs but the manager does not know is adopted (recorded, never
 * duplicated: matched by uuid), a VM the agent no longer has is marked
 * 'missing'.
 *
 * Neighbours: api_vms.c (routes), placement.h (host choice), agent_client.h
 * (calls), task_engine.h (steps), docs/manager.md (Compute). */
#ifndef STRATA_MANAGER_VMS_H
#define STRATA_MANAGER_VMS_H

#include <jansson.h>
#include <stdbool.h>

#include "manager/store.h"
#include "manager/task_engine.h"
#include "util/error.h"
#include "util/uuid.h"

struct manager;
struct agent_conn;

/* How a new VM gets its disks from a template or another VM. */
enum vm_source { VM_SOURCE_NONE, VM_SOURCE_LINKED, VM_SOURCE_FULL };

/* Validates a creation request (POST /api/v1/vms) and records the VM
 * 'creating' inside the write transaction 't': resolves the cluster, a
 * pinned host, the template and datastores, names volumes, reserves MAC
 * addresses.  'id_out' receives the new VM's id.  Every refusal names the
 * field. */
int vm_prepare_create(struct store_txn *t, const json_t *body, const char *actor,
                      char id_out[UUID_STRLEN + 1], struct error **errp);

/* The same for a full clone of VM 'src_ref' named by 'body' {"name",
 * "start"?}: the new VM's disks are copies of the source's. */
int vm_prepare_clone(struct store_txn *t, const char *src_ref, const json_t *body,
                     const char *actor, char id_out[UUID_STRLEN + 1], struct error **errp);

/* A disk (as in a creation request) to attach to VM 'vm_id': normalised
 * into '*disk_out' (new) and its volume reserved.  Fields are named
 * "disks[0]...". */
int vm_prepare_disk(struct store_txn *t, const char *vm_id, const json_t *body,
                    json_t **disk_out, struct error **errp);
/* A NIC to attach to VM 'vm_id': normalised, its MAC reserved. */
int vm_prepare_nic(struct store_txn *t, const char *vm_id, const json_t *body, json_t **nic_out,
                   struct error **errp);

/* Returns a new agent definition for 'spec' of VM 'vm_id': disks at
 * '<datastore path on the host>/<volume>.<format>' as 'ds_path' answers.
 * The result is not yet validated (the agent does; vm_spec_check() does it
 * here first). */
typedef char *vm_ds_path_fn(void *opaque, const char *datastore_id, struct error **errp);
json_t *vm_agent_def(const json_t *spec, const char *vm_id, vm_ds_path_fn *ds_path,
                     void *opaque, struct error **errp);

/* Validates 'spec' as an agent would (vm_def_from_json) with placeholder
 * datastore paths; errors name the field. */
int vm_spec_check(const json_t *spec, const char *vm_id, struct error **errp);

/* Called by the host monitor after every successful heartbeat of a host
 * ('a' is connected to its agent; 'reconnected' when the host was not
 * 'connected' before).  Errors are logged, not returned. */
void vms_host_sync(struct manager *m, const char *host_id, struct agent_conn *a,
                   bool reconnected);

/* In the write transaction 't': marks 'unknown' every VM of host 'host_id'
 * (named 'host_name') whose state the manager knew, with an event each.
 * Returns how many changed, or -1. */
int64_t vms_mark_unknown(struct store_txn *t, const char *host_id, const char *host_name,
                         struct error **errp);

/* Removes VMs left 'creating' without a task (a crash between recording the
 * VM and its task); at start-up.  Returns how many, or -1. */
int vms_startup_sweep(struct manager *m, struct error **errp);

/* The VM task kinds, NULL-terminated. */
extern const struct task_kind_def *const vm_task_kinds[];

#endif
