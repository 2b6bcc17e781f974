/* kvm_probe.c - boots the probe guest of kvm_probe_guest.S through /dev/kvm.
 *
 * The parent forks; the child opens the device, creates a VM with 2 MiB of
 * memory at guest-physical 0, gives the vCPU the host-supported CPUID (without
 * it KVM refuses EFER.LME, as on real hardware without the LM bit), points it
 * at the guest in real mode and runs it, sending a fixed-size message through
 * a pipe for each stage the guest reports and one for the verdict.  The child
 * only makes system calls (no allocation, no stdio), so forking from a
 * multi-threaded agent is safe.  The parent waits on the pipe with a deadline,
 * then SIGKILLs and reaps the child whatever happened, so the probe takes at
 * most the timeout plus a few milliseconds and leaves nothing behind.  All
 * text (error names, exit reasons) is made in the parent. */
#include "host/kvm_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/mem.h"

extern const unsigned char kvm_probe_guest_std_start[], kvm_probe_guest_std_end[];
extern const unsigned char kvm_probe_guest_realmode_start[], kvm_probe_guest_realmode_end[];
extern const unsigned char kvm_probe_guest_spin_start[], kvm_probe_guest_spin_end[];

#define GUEST_MEM_SIZE  (2u << 20)
#define GUEST_LOAD_ADDR 0x1000
#define GUEST_PORT      0xe9
#define GUEST_FAIL      0xee
#define GUEST_TSS_ADDR  0xfffbd000u  /* outside the memory slot; Intel real mode */
#define CPUID_MAX_ENTRIES 512
#define MAX_EXITS 64

/* Setup steps, named in the parent's message when one fails. */
enum probe_step {
    STEP_OPEN, STEP_API_VERSION, STEP_CREATE_VM, STEP_SET_TSS_ADDR, STEP_MMAP_MEM,
    STEP_SET_MEMORY, STEP_CREATE_VCPU, STEP_GET_CPUID, STEP_SET_CPUID, STEP_MMAP_SIZE,
    STEP_MMAP_RUN, STEP_GET_SREGS, STEP_SET_SREGS, STEP_SET_REGS, STEP_RUN,
};

static const char *const step_names[] = {
    [STEP_OPEN] = "open", [STEP_API_VERSION] = "KVM_GET_API_VERSION",
    [STEP_CREATE_VM] = "KVM_CREATE_VM", [STEP_SET_TSS_ADDR] = "KVM_SET_TSS_ADDR",
    [STEP_MMAP_MEM] = "mmap of guest memory", [STEP_SET_MEMORY] = "KVM_SET_USER_MEMORY_REGION",
    [STEP_CREATE_VCPU] = "KVM_CREATE_VCPU", [STEP_GET_CPUID] = "KVM_GET_SUPPORTED_CPUID",
    [STEP_SET_CPUID] = "KVM_SET_CPUID2", [STEP_MMAP_SIZE] = "KVM_GET_VCPU_MMAP_SIZE",
    [STEP_MMAP_RUN] = "mmap of kvm_run", [STEP_GET_SREGS] = "KVM_GET_SREGS",
    [STEP_SET_SREGS] = "KVM_SET_SREGS", [STEP_SET_REGS] = "KVM_SET_REGS",
    [STEP_RUN] = "KVM_RUN",
};

enum msg_kind {
    MSG_STAGE,          /* the guest reported 'stage' */
    MSG_PASSED,         /* halted after its last stage */
    MSG_SETUP_ERROR,    /* 'step' failed with 'err' */
    MSG_EXIT,           /* unexpected exit: 'exit_reason', 'suberror', 'rip', 'extra' */
    MSG_BAD_IO,         /* I/O other than one byte out to GUEST_PORT: 'port' */
    MSG_BAD_STAGE,      /* stage value out of order: 'extra' */
    MSG_SELF_CHECK,     /* the guest wrote GUEST_FAIL */
    MSG_EARLY_HLT,      /* halted before its last stage */
    MSG_TOO_MANY_EXITS,
};

struct probe_msg {
    int32_t kind;
    int32_t stage;
    int32_t step;
    int32_t err;
    uint32_t exit_reason;
    uint32_t suberror;
    uint32_t port;
    uint32_t pad;
    uint64_t rip;
    uint64_t extra;
};

const char *kvm_probe_status_to_string(enum kvm_probe_status s)
{
    static const char *const names[] = {
        [KVM_PROBE_NOT_RUN] = "not-run", [KVM_PROBE_PASSED] = "passed",
        [KVM_PROBE_FAILED] = "failed", [KVM_PROBE_TIMED_OUT] = "timed-out",
        [KVM_PROBE_ERROR] = "error",
    };
    return (unsigned) s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

const char *kvm_probe_stage_to_string(enum kvm_probe_stage s)
{
    static const char *const names[] = {
        [KVM_PROBE_STAGE_NONE] = "none", [KVM_PROBE_STAGE_REAL_MODE] = "real mode",
        [KVM_PROBE_STAGE_PROTECTED_MODE] = "protected mode",
        [KVM_PROBE_STAGE_LONG_MODE] = "long mode",
        [KVM_PROBE_STAGE_INTERRUPT] = "interrupt in long mode", [KVM_PROBE_STAGE_DONE] = "done",
    };
    return (unsigned) s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

int kvm_probe_check_dev(const char *dev, struct error **errp)
{
    if (!dev)
        dev = KVM_PROBE_DEV;
    AUTOCLOSE int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(errp, ERR_UNSUPPORTED, errno, "cannot open '%s'", dev);
    int v = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (v < 0)
        return error_set_errno(errp, ERR_UNSUPPORTED, errno,
                               "'%s' does not answer KVM_GET_API_VERSION", dev);
    if (v != KVM_API_VERSION)
        return error_set(errp, ERR_UNSUPPORTED, "'%s' has KVM API version %d, expected %d",
                         dev, v, KVM_API_VERSION);
    return 0;
}

/* ---- child side: system calls only ------------------------------------ */

static void child_send(int fd, const struct probe_msg *m)
{
    ssize_t n;
    do {
        n = write(fd, m, sizeof *m);
    } while (n < 0 && errno == EINTR);
}

static void child_fail_step(int fd, enum probe_step step, int err, int stage)
{
    struct probe_msg m = { .kind = MSG_SETUP_ERROR, .step = step, .err = err, .stage = stage };
    child_send(fd, &m);
    _exit(1);
}

static void child_main(int wfd, const char *dev, const unsigned char *code, size_t code_len,
                       int last_stage, struct kvm_cpuid2 *cpuid)
{
    int kvm = open(dev, O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        child_fail_step(wfd, STEP_OPEN, errno, 0);
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
        child_fail_step(wfd, STEP_API_VERSION, errno, 0);
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        child_fail_step(wfd, STEP_CREATE_VM, errno, 0);
    /* Needed by Intel hosts without unrestricted guest to run real mode;
     * harmless elsewhere, and a failure shows up as a failed first stage. */
    (void) ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long) GUEST_TSS_ADDR);

    unsigned char *mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        child_fail_step(wfd, STEP_MMAP_MEM, errno, 0);
    memcpy(mem + GUEST_LOAD_ADDR, code, code_len);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0, .memory_size = GUEST_MEM_SIZE,
        .userspace_addr = (uintptr_t) mem,
    };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        child_fail_step(wfd, STEP_SET_MEMORY, errno, 0);

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        child_fail_step(wfd, STEP_CREATE_VCPU, errno, 0);
    cpuid->nent = CPUID_MAX_ENTRIES;
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
        child_fail_step(wfd, STEP_GET_CPUID, errno, 0);
    if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
        child_fail_step(wfd, STEP_SET_CPUID, errno, 0);
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int) sizeof(struct kvm_run))
        child_fail_step(wfd, STEP_MMAP_SIZE, errno, 0);
    struct kvm_run *run = mmap(NULL, (size_t) run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                               vcpu, 0);
    if (run == MAP_FAILED)
        child_fail_step(wfd, STEP_MMAP_RUN, errno, 0);

    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
        child_fail_step(wfd, STEP_GET_SREGS, errno, 0);
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
        child_fail_step(wfd, STEP_SET_SREGS, errno, 0);
    struct kvm_regs regs;
    memset(&regs, 0, sizeof regs);
    regs.rip = GUEST_LOAD_ADDR;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
        child_fail_step(wfd, STEP_SET_REGS, errno, 0);

    int stage = 0;
    for (int exits = 0; exits < MAX_EXITS; exits++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            child_fail_step(wfd, STEP_RUN, errno, stage);
        }
        struct probe_msg m = { .stage = stage };
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.port != GUEST_PORT
                || run->io.size != 1 || run->io.count != 1) {
                m.kind = MSG_BAD_IO;
                m.port = run->io.port;
                child_send(wfd, &m);
                _exit(1);
            }
            unsigned v = ((const unsigned char *) run)[run->io.data_offset];
            if (v == GUEST_FAIL) {
                m.kind = MSG_SELF_CHECK;
                child_send(wfd, &m);
                _exit(1);
            }
            if ((int) v != stage + 1) {
                m.kind = MSG_BAD_STAGE;
                m.extra = v;
                child_send(wfd, &m);
                _exit(1);
            }
            stage = (int) v;
            m.kind = MSG_STAGE;
            m.stage = stage;
            child_send(wfd, &m);
            continue;
        }
        case KVM_EXIT_HLT:
            m.kind = stage == last_stage ? MSG_PASSED : MSG_EARLY_HLT;
            child_send(wfd, &m);
            _exit(0);
        default:
            m.kind = MSG_EXIT;
            m.exit_reason = run->exit_reason;
            if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
                m.suberror = run->internal.suberror;
            else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
                m.extra = run->fail_entry.hardware_entry_failure_reason;
            if (ioctl(vcpu, KVM_GET_REGS, &regs) == 0)
                m.rip = regs.rip;
            child_send(wfd, &m);
            _exit(1);
        }
    }
    struct probe_msg m = { .kind = MSG_TOO_MANY_EXITS, .stage = stage };
    child_send(wfd, &m);
    _exit(1);
}

/* ---- parent side -------------------------------------------------------- */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *exit_reason_name(uint32_t r)
{
    switch (r) {
    case KVM_EXIT_UNKNOWN: return "KVM_EXIT_UNKNOWN";
    case KVM_EXIT_EXCEPTION: return "KVM_EXIT_EXCEPTION";
    case KVM_EXIT_MMIO: return "KVM_EXIT_MMIO";
    case KVM_EXIT_SHUTDOWN: return "KVM_EXIT_SHUTDOWN (triple fault)";
    case KVM_EXIT_FAIL_ENTRY: return "KVM_EXIT_FAIL_ENTRY";
    case KVM_EXIT_INTERNAL_ERROR: return "KVM_EXIT_INTERNAL_ERROR";
    default: return NULL;
    }
}

static const char *suberror_name(uint32_t s)
{
    switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "simultaneous exceptions";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failure";
    default: return "unknown";
    }
}

static void describe_exit(const struct probe_msg *m, struct kvm_probe_result *out)
{
    char what[96];
    const char *name = exit_reason_name(m->exit_reason);
    if (m->exit_reason == KVM_EXIT_INTERNAL_ERROR)
        snprintf(what, sizeof what, "%s suberror %u (%s)", name, m->suberror,
                 suberror_name(m->suberror));
    else if (m->exit_reason == KVM_EXIT_FAIL_ENTRY)
        snprintf(what, sizeof what, "%s hardware reason 0x%llx", name,
                 (unsigned long long) m->extra);
    else if (name)
        snprintf(what, sizeof what, "%s", name);
    else
        snprintf(what, sizeof what, "unexpected exit reason %u", m->exit_reason);
    snprintf(out->detail, sizeof out->detail, "%s at rip 0x%llx", what,
             (unsigned long long) m->rip);
}

/* Applies one message; returns true when it is the verdict. */
static bool apply_msg(const struct probe_msg *m, struct kvm_probe_result *out)
{
    out->stage = (enum kvm_probe_stage) m->stage;
    switch ((enum msg_kind) m->kind) {
    case MSG_STAGE:
        return false;
    case MSG_PASSED:
        out->status = KVM_PROBE_PASSED;
        out->detail[0] = '\0';
        return true;
    case MSG_SETUP_ERROR: {
        const char *step = (unsigned) m->step < ARRAY_SIZE(step_names) ? step_names[m->step]
                                                                        : "setup";
        /* A KVM_RUN failure is the guest's fault, not the setup's. */
        out->status = m->step == STEP_RUN ? KVM_PROBE_FAILED : KVM_PROBE_ERROR;
        snprintf(out->detail, sizeof out->detail, "%s failed: %s", step, strerror(m->err));
        return true;
    }
    case MSG_EXIT:
        out->status = KVM_PROBE_FAILED;
        describe_exit(m, out);
        return true;
    case MSG_BAD_IO:
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "unexpected I/O on port 0x%x", m->port);
        return true;
    case MSG_BAD_STAGE:
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "guest reported stage %llu out of order",
                 (unsigned long long) m->extra);
        return true;
    case MSG_SELF_CHECK:
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "guest self-check failed");
        return true;
    case MSG_EARLY_HLT:
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "guest halted before its last stage");
        return true;
    case MSG_TOO_MANY_EXITS:
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "more than %d VM exits", MAX_EXITS);
        return true;
    }
    out->status = KVM_PROBE_ERROR;
    snprintf(out->detail, sizeof out->detail, "unknown message %d from the probe process",
             m->kind);
    return true;
}

/* Waits for messages until the verdict, EOF or the deadline. */
static void parent_collect(int rfd, long long deadline, int timeout_ms,
                           struct kvm_probe_result *out)
{
    for (;;) {
        long long left = deadline - mono_ms();
        if (left <= 0) {
            out->status = KVM_PROBE_TIMED_OUT;
            snprintf(out->detail, sizeof out->detail,
                     "guest did not finish within %d ms", timeout_ms);
            return;
        }
        struct pollfd pfd = { .fd = rfd, .events = POLLIN };
        int r = poll(&pfd, 1, (int) left);
        if (r < 0 && errno != EINTR) {
            out->status = KVM_PROBE_ERROR;
            snprintf(out->detail, sizeof out->detail, "poll failed: %s", strerror(errno));
            return;
        }
        if (r <= 0)
            continue;
        struct probe_msg m;
        ssize_t n = read(rfd, &m, sizeof m);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == (ssize_t) sizeof m) {
            if (apply_msg(&m, out))
                return;
            continue;
        }
        out->status = KVM_PROBE_FAILED;
        snprintf(out->detail, sizeof out->detail, "probe process ended without a verdict");
        return;
    }
}

void kvm_probe_run(const char *dev, enum kvm_probe_guest guest, int timeout_ms,
                   struct kvm_probe_result *out)
{
    memset(out, 0, sizeof *out);
    if (!dev)
        dev = KVM_PROBE_DEV;
    if (timeout_ms <= 0)
        timeout_ms = KVM_PROBE_DEFAULT_TIMEOUT_MS;

    const unsigned char *code;
    size_t code_len;
    int last_stage;
    switch (guest) {
    case KVM_PROBE_GUEST_REAL_MODE:
        code = kvm_probe_guest_realmode_start;
        code_len = (size_t) (kvm_probe_guest_realmode_end - kvm_probe_guest_realmode_start);
        last_stage = KVM_PROBE_STAGE_REAL_MODE;
        break;
    case KVM_PROBE_GUEST_SPIN:
        code = kvm_probe_guest_spin_start;
        code_len = (size_t) (kvm_probe_guest_spin_end - kvm_probe_guest_spin_start);
        last_stage = -1;
        break;
    case KVM_PROBE_GUEST_STANDARD:
    default:
        code = kvm_probe_guest_std_start;
        code_len = (size_t) (kvm_probe_guest_std_end - kvm_probe_guest_std_start);
        last_stage = KVM_PROBE_STAGE_DONE;
        break;
    }

    long long start = mono_ms();
    /* Allocated here: the child must not call malloc. */
    AUTOFREE struct kvm_cpuid2 *cpuid =
        xzalloc(sizeof *cpuid + CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2));
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        out->status = KVM_PROBE_ERROR;
        snprintf(out->detail, sizeof out->detail, "cannot create pipe: %s", strerror(errno));
        return;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        out->status = KVM_PROBE_ERROR;
        snprintf(out->detail, sizeof out->detail, "cannot fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        close(p[0]);
        /* Hold none of the caller's sockets or files open while we run. */
        if (p[1] > 3)
            close_range(3, (unsigned) p[1] - 1, 0);
        close_range((unsigned) p[1] + 1, ~0U, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        child_main(p[1], dev, code, code_len, last_stage, cpuid);
        _exit(1);
    }
    close(p[1]);
    parent_collect(p[0], start + timeout_ms, timeout_ms, out);
    close(p[0]);
    /* Whatever the verdict, the child goes now; it cannot be reaped yet, so
     * its PID cannot have been reused. */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    out->duration_ms = (unsigned) (mono_ms() - start);
}
