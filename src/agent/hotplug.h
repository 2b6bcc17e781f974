/* hotplug.h - online (and offline) changes to a VM's hardware.
 *
 * On a running VM each change is made live through QMP and then written to
 * the stored definition, so the next cold start keeps it; on a stopped VM
 * only the definition changes.  What was added live is also remembered as
 * extra QEMU arguments (vm->hotplug_extra) so a hibernated VM is restored with
 * the same hardware.  A live change that fails half-way is rolled back. */
#ifndef STRATA_HOTPLUG_H
#define STRATA_HOTPLUG_H

#include "agent/agent.h"

/* Validates 'def' (a whole definition, as JSON) with the host's limits and
 * installs it as the VM's definition, written to disk; the caller holds the
 * VM's job token.  Takes ownership of 'def'. */
int vm_commit_def(struct agent *a, struct vm *vm, json_t *def, struct error **errp);

int vm_set_vcpus(struct agent *a, struct vm *vm, unsigned count, struct error **errp);
/* Grows memory to 'mib' by hot-adding one DIMM of the difference. */
int vm_set_memory(struct agent *a, struct vm *vm, unsigned long long mib, struct error **errp);
int vm_set_balloon(struct agent *a, struct vm *vm, unsigned long long mib, struct error **errp);
int vm_attach_disk(struct agent *a, struct vm *vm, const json_t *disk, struct error **errp);
int vm_detach_disk(struct agent *a, struct vm *vm, const char *id, struct error **errp);
int vm_attach_nic(struct agent *a, struct vm *vm, const json_t *nic, struct error **errp);
int vm_detach_nic(struct agent *a, struct vm *vm, const char *id, struct error **errp);
/* Inserts 'path' (raw ISO) into CD-ROM 'id', or ejects when 'path' is NULL. */
int vm_change_media(struct agent *a, struct vm *vm, const char *id, const char *path,
                    struct error **errp);

#endif
