/* guest.h - what the agent reads from and through a running guest:
 * the serial console log, usage statistics, and the QEMU guest agent.
 *
 * qemu-ga conversations are serialised per VM (vm->qga_lock): QEMU's chardev
 * accepts one client at a time.  None of these take the VM's job token, so a
 * console or stats read never waits behind a long job. */
#ifndef STRATA_GUEST_H
#define STRATA_GUEST_H

#include "agent/agent.h"

/* One qemu-ga command.  Takes ownership of 'args'.  Returns a new reference. */
json_t *guest_agent_call(struct agent *a, struct vm *vm, const char *command, json_t *args,
                         int timeout_ms, struct error **errp);
/* For commands that do not reply when they work (guest-shutdown): sends it
 * after a successful sync.  Takes ownership of 'args'. */
int guest_agent_send(struct agent *a, struct vm *vm, const char *command, json_t *args,
                     int timeout_ms, struct error **errp);
/* True if the guest agent answers a guest-ping within 'timeout_ms'. */
bool guest_agent_available(struct agent *a, struct vm *vm, int timeout_ms);

/* Console log bytes from 'offset' (at most 'max'); '*next' is the offset to
 * ask for next, '*size' the log's current size.  Returns a new buffer. */
char *vm_console_read(struct agent *a, struct vm *vm, long long offset, size_t max,
                      size_t *len, long long *next, long long *size, struct error **errp);

/* Per-VM counters: CPU time, RSS, block and network I/O. */
json_t *vm_stats(struct agent *a, struct vm *vm, struct error **errp);

/* Guest tools (qemu-ga): interfaces with addresses; fsfreeze/thaw/status. */
json_t *guest_interfaces(struct agent *a, struct vm *vm, struct error **errp);
json_t *guest_fsfreeze(struct agent *a, struct vm *vm, const char *op, struct error **errp);

/* VNC: where to connect ({"unix": path} or {"host":..., "port":...}). */
json_t *vm_vnc_info(struct agent *a, struct vm *vm, struct error **errp);

#endif
