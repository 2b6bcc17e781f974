/* fileutil.h - small file helpers: whole-file read, atomic durable write,
 * mkdir -p, path checks.
 *
 * file_write_atomic() writes to "<path>.tmp", fsyncs it, renames it over
 * 'path' and fsyncs the directory, so a crash leaves the old or the new
 * content, never a torn file.  Everything the agent must find again after a
 * kill -9 is written this way. */
#ifndef STRATA_FILEUTIL_H
#define STRATA_FILEUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* Returns a new NUL-terminated buffer with the file's content (at most
 * 'max_size' bytes, else ERR_TOO_LARGE); '*len' optional. */
char *file_read_all(const char *path, size_t max_size, size_t *len, struct error **errp);
int file_write_atomic(const char *path, const char *data, size_t len, int mode,
                      struct error **errp);
/* Same rename-into-place, without fsync: survives a crash of the process,
 * not of the host. */
int file_write_replace(const char *path, const char *data, size_t len, int mode,
                       struct error **errp);
int mkdir_p(const char *path, int mode, struct error **errp);
/* Removes a directory tree (no symlink following). */
int rm_rf(const char *path, struct error **errp);
bool file_exists(const char *path);

/* True if 'path' is absolute, has no "." or ".." component, no empty
 * component, and no control characters. */
bool path_is_clean(const char *path);
/* True if clean 'path' lies strictly inside clean directory 'root'. */
bool path_is_under(const char *path, const char *root);

#endif
