/* guest.c - console log, statistics and guest-agent operations.
 *
 * Console: QEMU appends the serial output to <vm dir>/console.log (chardev
 * logfile=); reads are by byte offset so a client can follow it.
 * Stats: CPU time and RSS from /proc/<pid> (host/proc.c), block counters
 * from QMP query-blockstats, network counters from each tap's sysfs
 * statistics (the tap's rx is the guest's tx).
 * Guest agent: qmp/qga.c over <run dir>/<vm>/qga.sock, one conversation at a
 * time per VM. */
#define LOG_MODULE "guest"
#include "agent/guest.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/lifecycle.h"
#include "host/proc.h"
#include "qmp/qga.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

/* Runs one command; with 'no_reply' returns json_true() once it is sent. */
static json_t *guest_agent_do(struct agent *a, struct vm *vm, const char *command, json_t *args,
                              int timeout_ms, bool no_reply, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    bool enabled = vm->def->guest_agent;
    bool active = vm->state == VM_STATE_RUNNING || vm->state == VM_STATE_SHUTTING_DOWN;
    pthread_mutex_unlock(&vm->lock);
    if (!enabled) {
        json_decref(args);
        return error_set(errp, ERR_UNSUPPORTED, "VM '%s' has no guest agent channel",
                         vm->name), NULL;
    }
    if (!active) {
        json_decref(args);
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is not running", vm->name), NULL;
    }
    AUTOFREE char *path = vm_path(a, vm, "qga.sock");
    pthread_mutex_lock(&vm->qga_lock);
    json_t *ret = NULL;
    struct qga_client *c = qga_client_connect(path, timeout_ms, errp);
    if (c) {
        if (no_reply)
            ret = qga_call_no_reply(c, command, args, timeout_ms, errp) == 0 ? json_true() : NULL;
        else
            ret = qga_call(c, command, args, timeout_ms, errp);
        args = NULL;
        qga_client_free(c);
    }
    pthread_mutex_unlock(&vm->qga_lock);
    json_decref(args);
    if (!ret)
        error_prefix(errp, "VM '%s': guest agent '%s'", vm->name, command);
    return ret;
}

json_t *guest_agent_call(struct agent *a, struct vm *vm, const char *command, json_t *args,
                         int timeout_ms, struct error **errp)
{
    return guest_agent_do(a, vm, command, args, timeout_ms, false, errp);
}

int guest_agent_send(struct agent *a, struct vm *vm, const char *command, json_t *args,
                     int timeout_ms, struct error **errp)
{
    json_t *r = guest_agent_do(a, vm, command, args, timeout_ms, true, errp);
    json_decref(r);
    return r ? 0 : -1;
}

bool guest_agent_available(struct agent *a, struct vm *vm, int timeout_ms)
{
    json_t *r = guest_agent_call(a, vm, "guest-ping", NULL, timeout_ms, NULL);
    json_decref(r);
    return r != NULL;
}

char *vm_console_read(struct agent *a, struct vm *vm, long long offset, size_t max,
                      size_t *len, long long *next, long long *size, struct error **errp)
{
    AUTOFREE char *path = vm_path(a, vm, "console.log");
    AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    *len = 0;
    if (fd < 0) {
        if (errno != ENOENT)
            return error_set_errno(errp, ERR_IO, errno, "cannot open '%s'", path), NULL;
        *next = 0;
        *size = 0;
        return xstrdup("");
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot stat '%s'", path), NULL;
    *size = st.st_size;
    if (offset < 0)   /* negative: the last -offset bytes */
        offset = st.st_size + offset < 0 ? 0 : st.st_size + offset;
    if (offset > st.st_size)
        offset = st.st_size;
    size_t want = (size_t) (st.st_size - offset) < max ? (size_t) (st.st_size - offset) : max;
    char *buf = xmalloc(want + 1);
    ssize_t n = pread(fd, buf, want, offset);
    if (n < 0) {
        free(buf);
        return error_set_errno(errp, ERR_IO, errno, "cannot read '%s'", path), NULL;
    }
    buf[n] = '\0';
    *len = (size_t) n;
    *next = offset + n;
    return buf;
}

static long long read_ll(const char *path)
{
    AUTOFREE char *t = file_read_all(path, 64, NULL, NULL);
    return t ? strtoll(t, NULL, 10) : -1;
}

json_t *vm_stats(struct agent *a, struct vm *vm, struct error **errp)
{
    (void) a;
    pthread_mutex_lock(&vm->lock);
    pid_t pid = vm->pid;
    enum vm_state state = vm->state;
    json_t *taps = json_array();
    for (size_t i = 0; i < vm->def->n_nics; i++)
        json_array_append_new(taps, json_pack("{s:s, s:s}", "id", vm->def->nics[i].id,
                                              "tap", vm->def->nics[i].tap));
    pthread_mutex_unlock(&vm->lock);
    json_t *j = json_pack("{s:s, s:I}", "state", vm_state_to_string(state), "time_ms",
                          (json_int_t) wall_ms());
    if (pid > 0) {
        struct proc_stat st;
        if (proc_read_stat(pid, &st, NULL) == 0) {
            json_object_set_new(j, "cpu_time_ns", json_integer((json_int_t) st.cpu_time_ns));
            json_object_set_new(j, "rss_bytes", json_integer((json_int_t) st.rss_bytes));
        }
        json_t *bs = vm_qmp_call(vm, "query-blockstats", NULL, 5000, NULL);
        json_t *blocks = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(bs, i, e) {
            const char *dev = json_string_value(json_object_get(e, "qdev"));
            json_t *s = json_object_get(e, "stats");
            if (!s)
                continue;
            json_array_append_new(blocks, json_pack(
                "{s:s, s:O, s:O, s:O, s:O}", "device", dev ? dev : "",
                "rd_bytes", json_object_get(s, "rd_bytes"),
                "wr_bytes", json_object_get(s, "wr_bytes"),
                "rd_operations", json_object_get(s, "rd_operations"),
                "wr_operations", json_object_get(s, "wr_operations")));
        }
        json_decref(bs);
        json_object_set_new(j, "block", blocks);
    }
    json_t *nets = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(taps, i, t) {
        const char *tap = json_string_value(json_object_get(t, "tap"));
        AUTOFREE char *rxb = xasprintf("/sys/class/net/%s/statistics/rx_bytes", tap);
        AUTOFREE char *txb = xasprintf("/sys/class/net/%s/statistics/tx_bytes", tap);
        AUTOFREE char *rxp = xasprintf("/sys/class/net/%s/statistics/rx_packets", tap);
        AUTOFREE char *txp = xasprintf("/sys/class/net/%s/statistics/tx_packets", tap);
        long long rb = read_ll(rxb);
        if (rb < 0)
            continue;
        /* The tap's receive side is what the guest transmitted. */
        json_array_append_new(nets, json_pack("{s:O, s:O, s:I, s:I, s:I, s:I}",
                                              "id", json_object_get(t, "id"),
                                              "tap", json_object_get(t, "tap"),
                                              "tx_bytes", (json_int_t) rb,
                                              "rx_bytes", (json_int_t) read_ll(txb),
                                              "tx_packets", (json_int_t) read_ll(rxp),
                                              "rx_packets", (json_int_t) read_ll(txp)));
    }
    json_decref(taps);
    json_object_set_new(j, "net", nets);
    (void) errp;
    return j;
}

json_t *guest_interfaces(struct agent *a, struct vm *vm, struct error **errp)
{
    json_t *r = guest_agent_call(a, vm, "guest-network-get-interfaces", NULL, 5000, errp);
    if (!r)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *ifc;
    json_array_foreach(r, i, ifc) {
        json_t *addrs = json_array();
        size_t k;
        json_t *ad;
        json_array_foreach(json_object_get(ifc, "ip-addresses"), k, ad)
            json_array_append_new(addrs, json_pack("{s:O, s:O, s:O}",
                                                   "type", json_object_get(ad, "ip-address-type"),
                                                   "address", json_object_get(ad, "ip-address"),
                                                   "prefix", json_object_get(ad, "prefix")));
        json_t *mac = json_object_get(ifc, "hardware-address");
        json_array_append_new(out, json_pack("{s:O, s:O, s:o}", "name", json_object_get(ifc, "name"),
                                             "mac", mac ? mac : json_null(), "addresses", addrs));
    }
    json_decref(r);
    return out;
}

json_t *guest_fsfreeze(struct agent *a, struct vm *vm, const char *op, struct error **errp)
{
    const char *cmd = !strcmp(op, "freeze") ? "guest-fsfreeze-freeze"
                    : !strcmp(op, "thaw")   ? "guest-fsfreeze-thaw"
                                            : "guest-fsfreeze-status";
    json_t *r = guest_agent_call(a, vm, cmd, NULL, 10000, errp);
    if (!r)
        return NULL;
    json_t *out = json_is_integer(r) ? json_pack("{s:O}", "filesystems", r)
                                     : json_pack("{s:O}", "status", r);
    json_decref(r);
    return out;
}

json_t *vm_vnc_info(struct agent *a, struct vm *vm, struct error **errp)
{
    pthread_mutex_lock(&vm->lock);
    enum vnc_listen l = vm->def->vnc;
    bool active = vm_state_is_active(vm->state);
    pthread_mutex_unlock(&vm->lock);
    if (l == VNC_LISTEN_NONE)
        return error_set(errp, ERR_BAD_STATE, "VM '%s' has no VNC display", vm->name), NULL;
    if (!active)
        return error_set(errp, ERR_BAD_STATE, "VM '%s' is not running", vm->name), NULL;
    if (l == VNC_LISTEN_UNIX) {
        AUTOFREE char *p = vm_path(a, vm, "vnc.sock");
        return json_pack("{s:s}", "unix", p);
    }
    json_t *r = vm_qmp_call(vm, "query-vnc", NULL, 5000, errp);
    if (!r)
        return NULL;
    json_t *out = json_pack("{s:O, s:O}", "host", json_object_get(r, "host"), "port",
                            json_object_get(r, "service"));
    json_decref(r);
    return out;
}
