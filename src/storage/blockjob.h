/* blockjob.h - live disk operations through QMP: external snapshots, block
 * jobs (stream, mirror), resize, and releasing nodes.
 *
 * The caller supplies how to send one QMP command ('struct blockjob_qmp':
 * the agent passes vm_qmp_call on the VM's shared monitor; unit tests a fake),
 * so this file holds the QMP sequences and nothing about VMs.
 *
 * Node names.  A disk booted by the agent has the protocol node "file-<id>"
 * and the format node "drive-<id>" (qemu/qemu_device.h).  Overlays added by a
 * live snapshot get the names the caller chooses.  Backing files opened by
 * QEMU itself (a chain opened at a cold start) have generated names, so
 * nodes are found by the file they open: blockjob_node_of_file().
 *
 * Jobs are started with auto-dismiss off and followed with query-jobs until
 * they conclude, so a failure's message is never lost; they are dismissed
 * afterwards.  Cancellation (image_progress.cancelled) sends job-cancel and
 * waits for the job to conclude: a cancelled mirror leaves the VM on its
 * source, a cancelled stream leaves the chain as it was (each step of a
 * stream is consistent). */
#ifndef STRATA_STORAGE_BLOCKJOB_H
#define STRATA_STORAGE_BLOCKJOB_H

#include <jansson.h>

#include "model/vm_def.h"
#include "storage/image.h"
#include "util/error.h"

struct blockjob_qmp {
    /* Takes ownership of 'args'; returns a new reference to "return". */
    json_t *(*call)(void *ctx, const char *command, json_t *args, int timeout_ms,
                    struct error **errp);
    void *ctx;
};

/* The format node at the top of device 'dev_id' (query-block); new string. */
char *blockjob_top_node(const struct blockjob_qmp *q, const char *dev_id, struct error **errp);
/* The format node (or with 'protocol', the file node) that opens 'filename';
 * new string, or NULL with ERR_NOT_FOUND. */
char *blockjob_node_of_file(const struct blockjob_qmp *q, const char *filename, bool protocol,
                            struct error **errp);

/* One disk of an external snapshot: the overlay file (created by the caller
 * with qemu-img, backing = the current top) is added as 'node' over the
 * protocol node 'file_node' with no backing, then all disks switch at once in
 * one transaction of blockdev-snapshot actions.  On failure, the nodes added
 * are deleted again and the VM keeps writing to its old tops. */
struct blockjob_snap {
    const char *top_node;
    const char *overlay;
    const char *node;
    const char *file_node;
};
/* '*switch_ms' (optional): how long the transaction took (guest I/O pause). */
int blockjob_snapshot(const struct blockjob_qmp *q, const struct blockjob_snap *v, size_t n,
                      long long *switch_ms, struct error **errp);

/* block-stream into 'node' from everything below it down to 'base_node'
 * (NULL: the whole chain); the header then names 'backing_file' (relative
 * name), and waits for it. */
int blockjob_stream(const struct blockjob_qmp *q, const char *job_id, const char *node,
                    const char *base_node, const char *backing_file,
                    const struct image_progress *p, struct error **errp);

/* Starts blockdev-mirror of 'device_node' to a new node on 'target' (format
 * 'fmt', created by the caller), whole chain flattened (sync full), at most
 * 'speed' bytes/s (0: unlimited); waits until it is ready (source and target
 * in sync), then pivots (job-complete).  On cancel or failure the target
 * nodes are deleted and the VM stays on its source. */
int blockjob_mirror(const struct blockjob_qmp *q, const char *job_id, const char *device_node,
                    const char *target, enum disk_format fmt, const char *target_node,
                    const char *target_file_node, unsigned long long speed,
                    const struct image_progress *p, struct error **errp);

/* Waits for job 'job_id' (already started) to conclude (or, with
 * 'until_ready', to be ready); dismisses a concluded job. */
int blockjob_wait(const struct blockjob_qmp *q, const char *job_id, bool until_ready,
                  const struct image_progress *p, struct error **errp);
/* True if QEMU has a job of that id (e.g. still running after an agent restart). */
bool blockjob_exists(const struct blockjob_qmp *q, const char *job_id);

int blockjob_resize(const struct blockjob_qmp *q, const char *node, unsigned long long size,
                    struct error **errp);

/* Deletes the monitor-owned format and protocol nodes that open 'filename'
 * (after a pivot or a stream they keep the file open otherwise).  Errors
 * (a node that is not monitor-owned or still in use) are ignored. */
void blockjob_release_file(const struct blockjob_qmp *q, const char *filename);

#endif
