/* qmp_sock.h - unix-socket plumbing shared by the QMP and guest-agent clients.
 *
 * QEMU creates its chardev sockets a few milliseconds after it is spawned, so
 * qmp_sock_connect() retries ENOENT and ECONNREFUSED until a deadline.  The
 * other helpers are the monotonic clock and the "milliseconds left until a
 * deadline" arithmetic both clients use for their timeouts.  Internal to
 * src/qmp (qmp.c and qga.c); not part of the module's public contract. */
#ifndef STRATA_QMP_SOCK_H
#define STRATA_QMP_SOCK_H

#include <stdbool.h>

#include "util/error.h"

/* Milliseconds on CLOCK_MONOTONIC. */
long long qmp_sock_now_ms(void);
/* Milliseconds left until 'deadline_ms' (never negative). */
int qmp_sock_left_ms(long long deadline_ms);

/* Connects a SOCK_STREAM, close-on-exec socket to 'path', retrying while the
 * socket does not exist yet or refuses connections, until 'timeout_ms' passes.
 * 'what' names the peer in messages ("QMP", "guest agent").  Returns the
 * blocking fd or -1 (ERR_INVALID_ARG for a path too long, ERR_TIMEOUT when the
 * deadline passes, ERR_IO otherwise). */
int qmp_sock_connect(const char *path, int timeout_ms, const char *what, struct error **errp);

/* Sets or clears O_NONBLOCK; returns 0 or -1 with errno set. */
int qmp_sock_set_nonblock(int fd, bool on);

#endif
