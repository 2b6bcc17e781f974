/* lifecycle.h - VM power operations on the node agent.
 *
 * Each operation takes the VM's job token for its whole duration (one job per
 * VM at a time), never holds vm->lock while waiting, and leaves the VM in a
 * defined state on failure (a start that fails kills what it spawned).  States
 * driven by the guest (a poweroff from inside, a crash) arrive through the
 * monitor loop (monitor.c), which these functions wait on. */
#ifndef STRATA_LIFECYCLE_H
#define STRATA_LIFECYCLE_H

#include "agent/agent.h"

enum shutdown_mode { SHUTDOWN_AUTO, SHUTDOWN_ACPI, SHUTDOWN_AGENT };
int shutdown_mode_from_string(const char *s);   /* -1 if unknown */

/* Starts a stopped VM (QEMU started paused, monitor attached, then resumed);
 * a hibernated VM is restored instead. */
int vm_start(struct agent *a, struct vm *vm, struct error **errp);
/* Graceful: ACPI power button or guest agent; after 'timeout_s' either forces
 * ('force') or fails with ERR_TIMEOUT leaving the VM running. */
int vm_shutdown(struct agent *a, struct vm *vm, enum shutdown_mode mode, int timeout_s,
                bool force, struct error **errp);
/* Force stop: QMP quit, then SIGTERM, then SIGKILL. */
int vm_destroy(struct agent *a, struct vm *vm, struct error **errp);
/* mode: "auto" (guest agent when it answers, else reset), "agent", "reset". */
int vm_reboot(struct agent *a, struct vm *vm, const char *mode, struct error **errp);
int vm_pause(struct agent *a, struct vm *vm, struct error **errp);
int vm_resume(struct agent *a, struct vm *vm, struct error **errp);
/* Saves memory to <vm dir>/save.img through migration to a file descriptor
 * passed over QMP (getfd + migrate fd:), then stops QEMU: state "saved". */
int vm_hibernate(struct agent *a, struct vm *vm, struct error **errp);
/* Starts QEMU with -incoming fd:N on the save file; resumes if it was running. */
int vm_restore(struct agent *a, struct vm *vm, struct error **errp);

/* QMP call on the VM's live monitor (borrowing it).  Takes ownership of 'args'. */
json_t *vm_qmp_call(struct vm *vm, const char *command, json_t *args, int timeout_ms,
                    struct error **errp);

#endif
