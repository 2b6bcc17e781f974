/* qmp_sock.c - unix-socket connect-with-retry and deadline helpers for qmp.c
 * and qga.c; see qmp_sock.h. */
#include "qmp/qmp_sock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

long long qmp_sock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int qmp_sock_left_ms(long long deadline_ms)
{
    long long left = deadline_ms - qmp_sock_now_ms();
    if (left < 0)
        return 0;
    return left > 1000000000 ? 1000000000 : (int) left;
}

int qmp_sock_set_nonblock(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

int qmp_sock_connect(const char *path, int timeout_ms, const char *what, struct error **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sun.sun_path)
        return error_set(errp, ERR_INVALID_ARG, "%s socket path '%s' is longer than %zu bytes",
                         what, path, sizeof sun.sun_path - 1);
    strcpy(sun.sun_path, path);

    long long deadline = qmp_sock_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return error_set_errno(errp, ERR_IO, errno, "cannot create a socket for %s", what);
        if (connect(fd, (struct sockaddr *) &sun, sizeof sun) == 0)
            return fd;
        int err = errno;
        close(fd);
        if (err == EINTR)
            continue;
        if (err != ENOENT && err != ECONNREFUSED && err != EAGAIN)
            return error_set_errno(errp, ERR_IO, err, "cannot connect to %s socket '%s'",
                                   what, path);
        int left = qmp_sock_left_ms(deadline);
        if (left == 0)
            return error_set_errno(errp, ERR_TIMEOUT, err,
                                   "cannot connect to %s socket '%s' within %d ms", what, path,
                                   timeout_ms);
        struct timespec pause = { 0, (left < 5 ? left : 5) * 1000000L };
        nanosleep(&pause, NULL);
    }
}
