/* fileutil.c - see fileutil.h. */
#include "util/fileutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"

char *file_read_all(const char *path, size_t max_size, size_t *len, struct error **errp)
{
    AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(errp, errno == ENOENT ? ERR_NOT_FOUND : ERR_IO, errno,
                               "cannot open '%s'", path), NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return error_set_errno(errp, ERR_IO, errno, "cannot read '%s'", path), NULL;
        }
        if (r == 0)
            break;
        n += (size_t) r;
        if (n > max_size) {
            free(buf);
            return error_set(errp, ERR_TOO_LARGE, "'%s' is larger than %zu bytes", path,
                             max_size), NULL;
        }
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static int write_replace(const char *path, const char *data, size_t len, int mode,
                         bool durable, struct error **errp);

int file_write_atomic(const char *path, const char *data, size_t len, int mode,
                      struct error **errp)
{
    return write_replace(path, data, len, mode, true, errp);
}

int file_write_replace(const char *path, const char *data, size_t len, int mode,
                       struct error **errp)
{
    return write_replace(path, data, len, mode, false, errp);
}

static int write_replace(const char *path, const char *data, size_t len, int mode,
                         bool durable, struct error **errp)
{
    AUTOFREE char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create '%s'", tmp);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return error_set_errno(errp, e == ENOSPC ? ERR_NO_SPACE : ERR_IO, e,
                                   "cannot write '%s'", tmp);
        }
        off += (size_t) w;
    }
    if ((durable && fsync(fd) < 0) || close(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return error_set_errno(errp, ERR_IO, e, "cannot sync '%s'", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return error_set_errno(errp, ERR_IO, e, "cannot rename '%s'", tmp);
    }
    if (!durable)
        return 0;
    AUTOFREE char *dcopy = xstrdup(path);
    int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int mkdir_p(const char *path, int mode, struct error **errp)
{
    AUTOFREE char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, (mode_t) mode) < 0 && errno != EEXIST)
            return error_set_errno(errp, ERR_IO, errno, "cannot create directory '%s'", p);
        *s = '/';
    }
    if (mkdir(p, (mode_t) mode) < 0 && errno != EEXIST)
        return error_set_errno(errp, ERR_IO, errno, "cannot create directory '%s'", p);
    return 0;
}

static int rm_rf_at(int dir_fd, const char *name, struct error **errp)
{
    if (unlinkat(dir_fd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", name);
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot open '%s'", name);
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return error_set_errno(errp, ERR_IO, errno, "cannot list '%s'", name);
    }
    struct dirent *de;
    int ret = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (rm_rf_at(dirfd(d), de->d_name, errp) < 0) {
            ret = -1;
            break;
        }
    }
    closedir(d);
    if (ret == 0 && unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", name);
    return ret;
}

int rm_rf(const char *path, struct error **errp)
{
    return rm_rf_at(AT_FDCWD, path, errp);
}

bool file_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

bool path_is_clean(const char *path)
{
    if (!path || path[0] != '/')
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            return false;
    const char *c = path + 1;
    if (!*c)
        return true;   /* "/" */
    for (;;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t) (e - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        if (!e)
            return true;
        c = e + 1;
        if (!*c)
            return false;   /* trailing slash */
    }
}

bool path_is_under(const char *path, const char *root)
{
    if (!path_is_clean(path) || !path_is_clean(root))
        return false;
    size_t rl = strlen(root);
    if (rl == 1)
        return path[1] != '\0';
    return strncmp(path, root, rl) == 0 && path[rl] == '/' && path[rl + 1] != '\0';
}
