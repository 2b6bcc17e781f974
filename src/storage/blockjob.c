/* blockjob.c - QMP sequences for live snapshots, streams, mirrors, resize.
 * See blockjob.h. */
#define LOG_MODULE "blockjob"
#include "storage/blockjob.h"

#include <string.h>
#include <time.h>

#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QMP_TIMEOUT_MS 10000
#define POLL_MS 50

static json_t *call(const struct blockjob_qmp *q, const char *cmd, json_t *args,
                    struct error **errp)
{
    return q->call(q->ctx, cmd, args, QMP_TIMEOUT_MS, errp);
}

static int call_do(const struct blockjob_qmp *q, const char *cmd, json_t *args,
                   struct error **errp)
{
    json_t *r = call(q, cmd, args, errp);
    json_decref(r);
    return r ? 0 : -1;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

char *blockjob_top_node(const struct blockjob_qmp *q, const char *dev_id, struct error **errp)
{
    AUTOJSON json_t *r = call(q, "query-block", NULL, errp);
    if (!r)
        return NULL;
    AUTOFREE char *prefix = xasprintf("/machine/peripheral/%s/", dev_id);
    size_t i;
    json_t *e;
    json_array_foreach(r, i, e) {
        const char *qdev = json_string_value(json_object_get(e, "qdev"));
        if (!qdev || (strcmp(qdev, dev_id) && strncmp(qdev, prefix, strlen(prefix))))
            continue;
        const char *node = json_string_value(
            json_object_get(json_object_get(e, "inserted"), "node-name"));
        if (node)
            return xstrdup(node);
    }
    return error_set(errp, ERR_NOT_FOUND, "QEMU has no disk device '%s'", dev_id), NULL;
}

/* The file a format node opens: its "file" field, or inside a json: name. */
static bool node_opens(const json_t *n, const char *filename)
{
    const char *f = json_string_value(json_object_get(n, "file"));
    if (!f)
        return false;
    if (!strcmp(f, filename))
        return true;
    if (strncmp(f, "json:", 5))
        return false;
    AUTOJSON json_t *j = json_loads(f + 5, 0, NULL);
    const char *inner = json_string_value(json_object_get(json_object_get(j, "file"),
                                                          "filename"));
    return inner && !strcmp(inner, filename);
}

char *blockjob_node_of_file(const struct blockjob_qmp *q, const char *filename, bool protocol,
                            struct error **errp)
{
    AUTOJSON json_t *r = call(q, "query-named-block-nodes", json_pack("{s:b}", "flat", 1), errp);
    if (!r)
        return NULL;
    size_t i;
    json_t *n;
    json_array_foreach(r, i, n) {
        const char *drv = json_string_value(json_object_get(n, "drv"));
        const char *name = json_string_value(json_object_get(n, "node-name"));
        if (!drv || !name)
            continue;
        bool is_proto = !strcmp(drv, "file");
        if (is_proto == protocol && node_opens(n, filename))
            return xstrdup(name);
    }
    return error_set(errp, ERR_NOT_FOUND, "QEMU has no block node for '%s'", filename), NULL;
}

int blockjob_snapshot(const struct blockjob_qmp *q, const struct blockjob_snap *v, size_t n,
                      long long *switch_ms, struct error **errp)
{
    size_t added = 0;
    int ret = -1;
    for (; added < n; added++) {
        json_t *args = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:n}", "driver", "qcow2",
                                 "node-name", v[added].node, "file", "driver", "file",
                                 "filename", v[added].overlay, "node-name",
                                 v[added].file_node, "backing");
        if (call_do(q, "blockdev-add", args, errp) < 0)
            goto undo;
    }
    json_t *actions = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(actions,
                              json_pack("{s:s, s:{s:s, s:s}}", "type", "blockdev-snapshot",
                                        "data", "node", v[i].top_node, "overlay", v[i].node));
    long long t0 = mono_ms();
    if (call_do(q, "transaction", json_pack("{s:o}", "actions", actions), errp) < 0)
        goto undo;
    if (switch_ms)
        *switch_ms = mono_ms() - t0;
    return 0;
undo:
    while (added-- > 0) {
        json_decref(call(q, "blockdev-del", json_pack("{s:s}", "node-name", v[added].node), NULL));
        json_decref(call(q, "blockdev-del", json_pack("{s:s}", "node-name", v[added].file_node),
                         NULL));
    }
    return ret;
}

bool blockjob_exists(const struct blockjob_qmp *q, const char *job_id)
{
    AUTOJSON json_t *r = call(q, "query-jobs", NULL, NULL);
    size_t i;
    json_t *j;
    json_array_foreach(r, i, j) {
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id && !strcmp(id, job_id))
            return true;
    }
    return false;
}

static void report(const struct image_progress *p, int pct)
{
    if (p && p->report) {
        int lo = p->lo, hi = p->hi > p->lo ? p->hi : 100;
        p->report(p->opaque, lo + (hi - lo) * pct / 100);
    }
}

int blockjob_wait(const struct blockjob_qmp *q, const char *job_id, bool until_ready,
                  const struct image_progress *p, struct error **errp)
{
    bool cancel_sent = false;
    for (;;) {
        json_t *r = call(q, "query-jobs", NULL, errp);
        if (!r)
            return -1;
        json_t *job = NULL;
        size_t i;
        json_t *j;
        json_array_foreach(r, i, j) {
            const char *id = json_string_value(json_object_get(j, "id"));
            if (id && !strcmp(id, job_id))
                job = j;
        }
        if (!job) {
            json_decref(r);
            return error_set(errp, ERR_QEMU, "block job '%s' disappeared", job_id);
        }
        const char *status = json_string_value(json_object_get(job, "status"));
        json_int_t cur = json_integer_value(json_object_get(job, "current-progress"));
        json_int_t tot = json_integer_value(json_object_get(job, "total-progress"));
        if (tot > 0)
            report(p, (int) (cur * 99 / tot));
        if (status && !strcmp(status, "concluded")) {
            const char *e = json_string_value(json_object_get(job, "error"));
            AUTOFREE char *msg = xstrdup(e);
            json_decref(r);
            json_decref(call(q, "job-dismiss", json_pack("{s:s}", "id", job_id), NULL));
            if (cancel_sent)
                return error_set(errp, ERR_BAD_STATE, "block job '%s' cancelled", job_id);
            if (msg)
                return error_set(errp, strstr(msg, "No space") ? ERR_NO_SPACE : ERR_QEMU,
                                 "block job '%s' failed: %s", job_id, msg);
            if (until_ready)
                return error_set(errp, ERR_QEMU, "block job '%s' ended before it was ready",
                                 job_id);
            report(p, 100);
            return 0;
        }
        bool ready = status && !strcmp(status, "ready");
        json_decref(r);
        if (until_ready && ready && !cancel_sent) {
            report(p, 100);
            return 0;
        }
        if (!cancel_sent && p && p->cancelled && p->cancelled(p->opaque)) {
            if (call_do(q, "job-cancel", json_pack("{s:s}", "id", job_id), errp) < 0)
                return -1;
            cancel_sent = true;
        }
        sleep_ms(POLL_MS);
    }
}

int blockjob_stream(const struct blockjob_qmp *q, const char *job_id, const char *node,
                    const char *base_node, const char *backing_file,
                    const struct image_progress *p, struct error **errp)
{
    json_t *args = json_pack("{s:s, s:s, s:b}", "job-id", job_id, "device", node,
                             "auto-dismiss", 0);
    if (base_node) {
        json_object_set_new(args, "base-node", json_string(base_node));
        if (backing_file)
            json_object_set_new(args, "backing-file", json_string(backing_file));
    }
    if (call_do(q, "block-stream", args, errp) < 0)
        return -1;
    return blockjob_wait(q, job_id, false, p, errp);
}

int blockjob_mirror(const struct blockjob_qmp *q, const char *job_id, const char *device_node,
                    const char *target, enum disk_format fmt, const char *target_node,
                    const char *target_file_node, unsigned long long speed,
                    const struct image_progress *p, struct error **errp)
{
    json_t *add = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}}", "driver",
                            disk_format_to_string(fmt), "node-name", target_node, "file",
                            "driver", "file", "filename", target, "node-name", target_file_node);
    if (call_do(q, "blockdev-add", add, errp) < 0)
        return -1;
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:b}", "job-id", job_id, "device",
                             device_node, "target", target_node, "sync", "full", "auto-dismiss",
                             0);
    if (speed)
        json_object_set_new(args, "speed", json_integer((json_int_t) speed));
    if (call_do(q, "blockdev-mirror", args, errp) < 0)
        goto drop;
    if (blockjob_wait(q, job_id, true, p, errp) < 0) {
        /* Still running (an error while polling)?  Cancel it: source stays. */
        if (blockjob_exists(q, job_id)) {
            json_decref(call(q, "job-cancel", json_pack("{s:s, s:b}", "id", job_id, "force", 1),
                             NULL));
            struct image_progress none = { 0 };
            blockjob_wait(q, job_id, false, &none, NULL);
        }
        goto drop;
    }
    /* Ready: from now on source and target are in sync; pivot. */
    if (call_do(q, "job-complete", json_pack("{s:s}", "id", job_id), errp) < 0)
        goto drop;
    return blockjob_wait(q, job_id, false, NULL, errp);
drop:
    json_decref(call(q, "blockdev-del", json_pack("{s:s}", "node-name", target_node), NULL));
    json_decref(call(q, "blockdev-del", json_pack("{s:s}", "node-name", target_file_node), NULL));
    return -1;
}

int blockjob_resize(const struct blockjob_qmp *q, const char *node, unsigned long long size,
                    struct error **errp)
{
    return call_do(q, "block_resize",
                   json_pack("{s:s, s:I}", "node-name", node, "size", (json_int_t) size), errp);
}

void blockjob_release_file(const struct blockjob_qmp *q, const char *filename)
{
    for (int proto = 0; proto < 2; proto++) {
        for (int tries = 0; tries < 4; tries++) {
            AUTOFREE char *node = blockjob_node_of_file(q, filename, proto, NULL);
            if (!node)
                break;
            AUTOERROR struct error *err = NULL;
            json_t *r = call(q, "blockdev-del", json_pack("{s:s}", "node-name", node), &err);
            if (!r) {
                LOG_DEBUG("not releasing node '%s' of '%s': %s", node, filename, err->message);
                break;
            }
            json_decref(r);
        }
    }
}
