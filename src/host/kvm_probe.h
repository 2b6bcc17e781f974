/* kvm_probe.h - does /dev/kvm run a normal x86-64 guest on this host?
 *
 * A usable /dev/kvm is not proof that KVM works: the paravirtual nested KVM of
 * some cloud machines opens, creates VMs and runs a real-mode loop, yet hangs
 * every Linux guest.  kvm_probe_run() therefore boots a tiny guest through the
 * KVM ioctl API (no QEMU) that walks the path of a normal OS boot - real mode,
 * protected mode, paging and long mode, an interrupt through a 64-bit IDT gate
 * - and reports how far it got (see kvm_probe_guest.S for the guest itself).
 *
 * The guest runs in a forked child that is SIGKILLed and reaped when it has
 * not finished within the timeout, so the probe is bounded in time and leaves
 * no process behind.  It needs no privileges beyond opening the device.
 * Neighbours: host_facts.c calls it (only when the CPU has vmx/svm) and turns
 * the result into the accelerator decision. */
#ifndef STRATA_KVM_PROBE_H
#define STRATA_KVM_PROBE_H

#include "util/error.h"

#define KVM_PROBE_DEV "/dev/kvm"
#define KVM_PROBE_DEFAULT_TIMEOUT_MS 2000

enum kvm_probe_status {
    KVM_PROBE_NOT_RUN,      /* skipped: the decision did not need it */
    KVM_PROBE_PASSED,       /* the guest reached its last stage and halted */
    KVM_PROBE_FAILED,       /* the guest stopped early (bad exit, triple fault, ...) */
    KVM_PROBE_TIMED_OUT,    /* the guest did not finish in time; child killed */
    KVM_PROBE_ERROR,        /* the VM could not be set up (an ioctl failed) */
};

/* Stages the standard guest reports, in order. */
enum kvm_probe_stage {
    KVM_PROBE_STAGE_NONE,
    KVM_PROBE_STAGE_REAL_MODE,
    KVM_PROBE_STAGE_PROTECTED_MODE,
    KVM_PROBE_STAGE_LONG_MODE,
    KVM_PROBE_STAGE_INTERRUPT,
    KVM_PROBE_STAGE_DONE,
};

/* Which guest to run.  Only STANDARD decides anything; the others are for
 * tests (a real-mode-only guest, and one that never finishes). */
enum kvm_probe_guest {
    KVM_PROBE_GUEST_STANDARD,
    KVM_PROBE_GUEST_REAL_MODE,
    KVM_PROBE_GUEST_SPIN,
};

struct kvm_probe_result {
    enum kvm_probe_status status;
    enum kvm_probe_stage stage;     /* last stage the guest reported */
    unsigned duration_ms;           /* fork to verdict */
    char detail[192];               /* one line: what stopped it; "" when passed */
};

const char *kvm_probe_status_to_string(enum kvm_probe_status s);
/* "real mode", "protected mode", "long mode", "interrupt in long mode", "done". */
const char *kvm_probe_stage_to_string(enum kvm_probe_stage s);

/* Opens 'dev' (NULL: KVM_PROBE_DEV) read-write and checks the KVM API version.
 * Returns 0 when usable, else -1 with ERR_UNSUPPORTED saying why. */
int kvm_probe_check_dev(const char *dev, struct error **errp);

/* Runs 'guest' on 'dev' (NULL: KVM_PROBE_DEV) for at most 'timeout_ms'
 * (<= 0: KVM_PROBE_DEFAULT_TIMEOUT_MS) and fills '*out'.  Never fails: every
 * problem is a status with a detail.  Blocks the calling thread meanwhile.
 * It forks and reaps its own child by PID: a process-wide SIGCHLD handler
 * that reaps every child (waitpid(-1, ...)) must not run at the same time. */
void kvm_probe_run(const char *dev, enum kvm_probe_guest guest, int timeout_ms,
                   struct kvm_probe_result *out);

#endif
