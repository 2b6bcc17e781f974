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
 * Never call qmp_client_call() from the loop thread: it fails with
 * ERR_INTERNAL when called from the thread that last ran the client
 * (qmp_client_run, also through qmp_client_wait_ready/execute), so a thread
 * that ran the client and then hands it to a loop must let the loop run it
 * once before calling.  Commands get ids
 * "strata-<n>"; a reply that comes after its caller timed out is dropped.
 *
 * File descriptors travel with SCM_RIGHTS along with a command (getfd,
 * add-fd): qmp_client_call_fd(). */
#ifndef STRATA_QMP_H
#define STRATA_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct qmp_client;

/* Called on the loop thread for each event.  'event' and 'data' are borrowed;
 * 'data' is NULL for an event without one (STOP, RESUME, POWERDOWN);
 * 'timestamp' is QEMU's, in seconds since the epoch. */
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
/* Closes the socket; accepts NULL.  Pending async commands fail with
 * "monitor closed" (their callbacks run; the close callback does not).  No
 * other thread may be inside qmp_client_call() on 'c'. */
void qmp_client_free(struct qmp_client *c);

int qmp_client_fd(const struct qmp_client *c);
/* Non-blocking: processes available input and flushes pending output.
 * Returns 0, or -1 once the monitor is closed (callbacks already run; pending
 * commands fail with ERR_QEMU "monitor closed"). */
int qmp_client_run(struct qmp_client *c);
/* True once the greeting is read and qmp_capabilities answered. */
bool qmp_client_ready(const struct qmp_client *c);
bool qmp_client_closed(const struct qmp_client *c);
/* True if output is queued (or a write error waits to be reported by run). */
bool qmp_client_want_write(const struct qmp_client *c);

/* Queues a command from the loop thread; 'args' may be NULL; takes ownership
 * of 'args'.  'cb' may be NULL.  On a closed monitor 'cb' runs at once with
 * "monitor closed". */
void qmp_client_send(struct qmp_client *c, const char *command, json_t *args,
                     qmp_reply_cb *cb, void *opaque);

/* Synchronous call from a thread other than the loop thread.  Takes ownership
 * of 'args'.  Returns a new reference to the "return" value or NULL with
 * 'errp' set: ERR_QEMU "<class>: <desc>" for a QMP error reply, ERR_QEMU
 * "monitor closed[: <reason>]", ERR_TIMEOUT (a command already sent may still
 * run in QEMU; its late reply is dropped), ERR_IO when the fd of
 * qmp_client_call_fd() cannot be duplicated. */
json_t *qmp_client_call(struct qmp_client *c, const char *command, json_t *args,
                        int timeout_ms, struct error **errp);
/* Same, passing 'fd' (borrowed; a duplicate is queued) with SCM_RIGHTS in the
 * same sendmsg() as the command's first byte. */
json_t *qmp_client_call_fd(struct qmp_client *c, const char *command, json_t *args,
                           int fd, int timeout_ms, struct error **errp);

/* Blocking helper for a client with no loop thread (tools, tests, bench):
 * runs the client until it is ready or 'timeout_ms' passes. */
int qmp_client_wait_ready(struct qmp_client *c, int timeout_ms, struct error **errp);

/* Blocking helper for a client with no loop thread: sends 'command' (takes
 * ownership of 'args') and runs the client, dispatching events, until the
 * reply arrives.  Returns a new reference to the "return" value or NULL with
 * 'errp' set as qmp_client_call().  Must not be used while another thread
 * runs the loop. */
json_t *qmp_client_execute(struct qmp_client *c, const char *command, json_t *args,
                           int timeout_ms, struct error **errp);

/* QEMU's greeting {"QMP": {"version": ..., "capabilities": ...}} once read,
 * else NULL.  Borrowed; valid until the client is freed.  Loop thread only. */
const json_t *qmp_client_greeting(const struct qmp_client *c);

/* Longest line accepted from QEMU, in bytes (default QMP_MAX_LINE_DEFAULT).
 * A longer line closes the monitor ("monitor closed: QMP line ... exceeds the
 * limit ..."): the stream cannot be resynchronised after it. */
#define QMP_MAX_LINE_DEFAULT ((size_t) 16 << 20)
void qmp_client_set_max_line(struct qmp_client *c, size_t max_line);

#endif
