/* qga.h - blocking client for the QEMU guest agent (qemu-ga).
 *
 * qemu-ga runs inside the guest and talks JSON over a virtio-serial port; on
 * the host QEMU serves that port as a unix socket:
 *   -chardev socket,path=<vm>/qga.sock,server=on,wait=off,id=qga0
 *   -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
 * The socket accepts a connection whether or not an agent runs in the guest,
 * and bytes from an earlier client, a previous boot or a timed-out call may
 * still be in flight.  So before the first call, and again after any timeout
 * or unparsable reply, the client resynchronises: it sends a 0xFF byte (which
 * resets the agent's JSON parser), then guest-sync-delimited with a random id,
 * and skips everything up to the 0xFF delimiter that precedes the reply
 * carrying that id.  Each command then carries an "id" ("strata-<n>") that
 * qemu-ga echoes; replies with another id are stale and skipped, as is junk
 * before a reply's '{', so a stray byte cannot shift later replies.
 *
 * One client at a time: QEMU's chardev serves a single connection.  While
 * one client is connected a second connect() still succeeds (the kernel's
 * listen backlog) but nothing answers it, so its sync times out.  Callers
 * serialise per VM (one job per VM holds the client; see
 * docs/internals/locking.md) and never hold a lock while calling.
 * A qga_client is not thread-safe. */
#ifndef STRATA_QGA_H
#define STRATA_QGA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

struct qga_client;

/* Connects to QEMU's socket for the agent channel at 'path', retrying while
 * it does not exist yet, until 'timeout_ms' passes.  Does not talk to the
 * agent (the first qga_call() synchronises). */
struct qga_client *qga_client_connect(const char *path, int timeout_ms, struct error **errp);
/* Wraps an already-connected socket; takes ownership of 'fd'. */
struct qga_client *qga_client_new(int fd);
void qga_client_free(struct qga_client *c);   /* Closes the socket; accepts NULL. */

/* Resynchronises now (see above); 0 or -1 with ERR_TIMEOUT if the agent does
 * not answer within 'timeout_ms' (no agent running is the usual cause). */
int qga_sync(struct qga_client *c, int timeout_ms, struct error **errp);

/* Runs 'command' (takes ownership of 'args', which may be NULL), synchronising
 * first if needed; the whole call, sync included, takes at most 'timeout_ms'.
 * Returns a new reference to the "return" value, or NULL with 'errp' set:
 * ERR_QEMU "<class>: <desc>" for an agent error, ERR_TIMEOUT, ERR_IO when the
 * connection broke (reconnect to go on). */
json_t *qga_call(struct qga_client *c, const char *command, json_t *args, int timeout_ms,
                 struct error **errp);

/* For commands that do not reply on success (guest-shutdown,
 * guest-suspend-*): synchronises, sends, and returns 0 without waiting. */
int qga_call_no_reply(struct qga_client *c, const char *command, json_t *args, int timeout_ms,
                      struct error **errp);

/* Longest reply line accepted (default QGA_MAX_LINE_DEFAULT); a longer one
 * fails the call with ERR_TOO_LARGE and forces a resync. */
#define QGA_MAX_LINE_DEFAULT ((size_t) 16 << 20)
void qga_client_set_max_line(struct qga_client *c, size_t max_line);

#endif
