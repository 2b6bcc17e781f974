/* monitor.h - the agent's event loop: QMP sockets of all running VMs.
 *
 * One thread polls every attached VM's QMP client plus a wake-up pipe.  It
 * dispatches QMP events to the VM (state changes, DEVICE_DELETED, balloon),
 * notices a monitor closing, then waits for the QEMU process to be gone (reaps
 * it when it is our child; watches its PID otherwise, after an agent restart)
 * and marks the VM stopped with its exit reason.
 *
 * The QMP client of a VM is shared: job threads borrow it with
 * vm_qmp_acquire()/vm_qmp_release(); the monitor frees it only once it is
 * closed and nobody holds it. */
#ifndef STRATA_MONITOR_H
#define STRATA_MONITOR_H

#include "agent/agent.h"

struct monitor *monitor_start(struct agent *a, struct error **errp);
void monitor_stop(struct monitor *m);   /* Accepts NULL. */
/* Hands 'client' (ownership) to the loop for 'vm' (a reference is taken) and
 * sets vm->qmp.  vm->lock must not be held. */
void monitor_attach(struct monitor *m, struct vm *vm, struct qmp_client *client);
/* Wakes the loop (output queued, new client). */
void monitor_wake(struct monitor *m);

/* A VM's monitor connection, reference counted: the loop holds one reference
 * while it polls it, vm->qmp one, each borrower one. */
struct vm_qmp {
    struct qmp_client *client;
    int refs;                       /* atomic */
};
/* Returns vm->qmp with a reference taken, or NULL with ERR_BAD_STATE when the
 * VM has no live monitor.  Use q->client; drop it with vm_qmp_unref(). */
struct vm_qmp *vm_qmp_acquire(struct vm *vm, struct error **errp);
void vm_qmp_unref(struct vm_qmp *q);   /* Accepts NULL; frees the client at zero. */
static inline void autovmqmp_impl(struct vm_qmp **q) { vm_qmp_unref(*q); }
#define AUTOVMQMP __attribute__((cleanup(autovmqmp_impl)))

/* Waits (vm->lock held, via vm->cond) until 'pred' holds or 'timeout_ms'
 * passes; returns true if it holds. */
bool vm_wait_locked(struct vm *vm, bool (*pred)(struct vm *vm, void *arg), void *arg,
                    int timeout_ms);

#endif
