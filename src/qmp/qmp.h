/* qmp.h - asynchronous QMP client.
 *
 * A qmp_client owns one connected QMP socket.  It is a state machine driven by
 * its owner's event loop: qmp_client_fd() is polled for input (and for output
 * when qmp_client_want_write()), qmp_client_run() reads what is there,
 * completes capability negotiation, matches replies to pending commands by
 * "id" and calls their callbacks, and hands asynchronous events (SHUTDOWN,
 * STOP, RESUME, RESET, DEVICE_DELETED, BALLOON_CHANGE, JOB_STATUS_CHANGE, ...)
 * to the event callback.
 *
 * Threads: one thread runs the loop; other threads use qmp_client_call(),
 * which queues a command, wakes the loop (see qmp_client_set_waker) and sleeps
 * on a condition until the loop thread has its reply, the timeout passes, or
 * the monitor closes.  Callbacks run on the loop thread and must not block.
 * Never call qmp_client_call() from the loop thread.
 *
 * File descriptors travel with SCM_RIGHTS along with a command (getfd,
 * add-fd): qmp_client_call_fd(). */
#ifndef STRATA_QMP_H
#define STRATA_QMP_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

struct qmp_client;

/* Called on the loop thread for each event.  'event' and 'data' are borrowed. */
typedef void qmp_event_cb(const char *event, const json_t *data, double timestamp,
                          void *opaque);
/* Called on the loop thread once when the monitor closes (EOF or error). */
typedef void qmp_close_cb(void *opaque);
/* Reply to an async command: 'ret' the "return" value (borrowed) or NULL with
 * 'err' set (borrowed; ERR_QEMU whose message holds QMP's class and desc). */
typedef void qmp_reply_cb(const json_t *ret, const struct error *err, void *opaque);

/* Connects to the unix socket 'path', retrying until 'timeout_ms' passes
 * (QEMU creates it a few ms after spawn).  Capability negotiation is queued;
 * it completes inside qmp_client_run(). */
struct qmp_client *qmp_client_connect(const char *path, int timeout_ms, struct error **errp);
/* Wraps an already-connected socket; takes ownership of 'fd'. */
struct qmp_client *qmp_client_new(int fd);
void qmp_client_set_callbacks(struct qmp_client *c, qmp_event_cb *on_event,
                              qmp_close_cb *on_close, void *opaque);
void qmp_client_set_waker(struct qmp_client *c, void (*wake)(void *opaque), void *opaque);
void qmp_client_free(struct qmp_client *c);   /* Closes the socket; accepts NULL. */

int qmp_client_fd(const struct qmp_client *c);
/* Non-blocking: processes available input and flushes pending output.
 * Returns 0, or -1 once the monitor is closed (callbacks already run; pending
 * commands fail with ERR_QEMU "monitor closed"). */
int qmp_client_run(struct qmp_client *c);
/* True once the greeting is read and qmp_capabilities answered. */
bool qmp_client_ready(const struct qmp_client *c);
bool qmp_client_closed(const struct qmp_client *c);
/* True if output is queued. */
bool qmp_client_want_write(const struct qmp_client *c);

/* Queues a command from the loop thread; 'args' may be NULL; takes ownership
 * of 'args'.  'cb' may be NULL. */
void qmp_client_send(struct qmp_client *c, const char *command, json_t *args,
                     qmp_reply_cb *cb, void *opaque);

/* Synchronous call from a thread other than the loop thread.  Takes ownership
 * of 'args'.  Returns a new reference to the "return" value or NULL with
 * 'errp' set (ERR_QEMU for a QMP error reply, ERR_TIMEOUT, ERR_IO). */
json_t *qmp_client_call(struct qmp_client *c, const char *command, json_t *args,
                        int timeout_ms, struct error **errp);
/* Same, passing 'fd' (borrowed) with SCM_RIGHTS alongside the command. */
json_t *qmp_client_call_fd(struct qmp_client *c, const char *command, json_t *args,
                           int fd, int timeout_ms, struct error **errp);

/* Blocking helper for a client with no loop thread (tools, tests, bench):
 * runs the client until it is ready or 'timeout_ms' passes. */
int qmp_client_wait_ready(struct qmp_client *c, int timeout_ms, struct error **errp);

#endif
