/* image.c - qemu-img invocations, chain safety checks, zero-fill and wipe.
 * See image.h. */
#define LOG_MODULE "image"
#include "storage/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define QEMU_IMG "qemu-img"
#define IO_CHUNK (8u << 20)

static bool synchronous;

void image_set_synchronous(bool on)
{
    synchronous = on;
}

static const char *const prealloc_names[] = { "off", "metadata", "falloc", "full" };

const char *image_prealloc_to_string(enum image_prealloc p)
{
    return (unsigned) p < ARRAY_SIZE(prealloc_names) ? prealloc_names[p] : "off";
}

bool image_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 128 || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return strstr(name, "..") == NULL;
}

/* ---- info ------------------------------------------------------------------ */

void image_info_clear(struct image_info *info)
{
    if (!info)
        return;
    free(info->filename);
    free(info->backing);
    free(info->full_backing);
    free(info->backing_format_name);
    free(info->data_file);
    memset(info, 0, sizeof *info);
    info->format = -1;
    info->backing_format = -1;
}

static char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? xstrdup(s) : NULL;
}

int image_info_parse(const char *json_text, struct image_info *out, struct error **errp)
{
    memset(out, 0, sizeof *out);
    out->format = -1;
    out->backing_format = -1;
    AUTOERROR struct error *perr = NULL;
    AUTOJSON json_t *j = json_from_string(json_text, strlen(json_text), &perr);
    if (!j || !json_is_object(j))
        return error_set(errp, ERR_QEMU, "qemu-img info gave no JSON object: %s",
                         perr ? perr->message : "not an object");
    const char *fmt = json_string_value(json_object_get(j, "format"));
    json_t *vs = json_object_get(j, "virtual-size");
    if (!fmt || !json_is_integer(vs) || json_integer_value(vs) < 0)
        return error_set(errp, ERR_QEMU, "qemu-img info output lacks 'format' or 'virtual-size'");
    out->filename = jstr(j, "filename");
    out->format = disk_format_from_string(fmt);
    out->virtual_size = (unsigned long long) json_integer_value(vs);
    json_t *as = json_object_get(j, "actual-size");
    out->actual_size = json_is_integer(as) && json_integer_value(as) > 0
                           ? (unsigned long long) json_integer_value(as) : 0;
    out->backing = jstr(j, "backing-filename");
    out->full_backing = jstr(j, "full-backing-filename");
    out->backing_format_name = jstr(j, "backing-filename-format");
    if (out->backing_format_name)
        out->backing_format = disk_format_from_string(out->backing_format_name);
    json_t *data = json_object_get(json_object_get(j, "format-specific"), "data");
    out->data_file = jstr(data, "data-file");
    out->corrupt = json_is_true(json_object_get(data, "corrupt"));
    return 0;
}

/* "No space left" anywhere in qemu-img's message means the datastore is full. */
static enum err_code code_for(const char *msg)
{
    return msg && strstr(msg, "No space left") ? ERR_NO_SPACE : ERR_QEMU;
}

static char *one_line(char *s)
{
    size_t l = strlen(s);
    while (l && (s[l - 1] == '\n' || s[l - 1] == '\r' || s[l - 1] == ' '))
        s[--l] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return s;
}

int image_run(struct command *cmd, char **out, struct error **errp)
{
    int st = 0;
    AUTOFREE char *o = NULL;
    AUTOFREE char *e = NULL;
    if (command_run(cmd, &st, &o, &e, errp) < 0)
        return -1;
    if (st != 0) {
        char *const *argv = command_argv(cmd);
        return error_set(errp, code_for(e), "%s %s failed (exit status %d): %s", argv[0],
                         argv[1] ? argv[1] : "", st, one_line(e));
    }
    if (out)
        *out = steal_pointer(&o);
    return 0;
}

struct command *image_cmd_info(const char *path, enum disk_format format)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "info", "-U", "-f", disk_format_to_string(format), "--output=json",
                     path, NULL);
    command_set_limits(c, IMAGE_INFO_AS_LIMIT, IMAGE_INFO_CPU_LIMIT);
    command_set_timeout(c, 60000);
    return c;
}

int image_info_get(const char *path, enum disk_format format, struct image_info *out,
                   struct error **errp)
{
    AUTOCOMMAND struct command *c = image_cmd_info(path, format);
    AUTOFREE char *text = NULL;
    if (image_run(c, &text, errp) < 0)
        return -1;
    if (image_info_parse(text, out, errp) < 0) {
        error_prefix(errp, "'%s'", path);
        return -1;
    }
    return 0;
}

/* ---- chain safety ------------------------------------------------------------ */

void image_chain_clear(struct image_chain *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        image_info_clear(&c->layers[i]);
    free(c->layers);
    c->layers = NULL;
    c->n = 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t) (slash - path));
}

/* Resolves 'name' (as written in a header) against the directory of 'from'. */
static char *resolve_relative(const char *from, const char *name)
{
    if (name[0] == '/')
        return xstrdup(name);
    AUTOFREE char *dir = dir_of(from);
    return xasprintf("%s/%s", dir, name);
}

/* The real path of 'path' if it is a regular file inside 'root_real'. */
static char *contained(const char *path, const char *root_real, const char *what,
                       const char *field, struct error **errp)
{
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return error_set_field(errp, errno == ENOENT ? ERR_INVALID_ARG : ERR_IO, field,
                               "%s '%s' cannot be resolved: %s", what, path, strerror(errno)),
               NULL;
    if (!path_is_under(buf, root_real))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "%s '%s' resolves to '%s', outside the datastore '%s'", what,
                               path, buf, root_real), NULL;
    struct stat st;
    if (stat(buf, &st) < 0 || !S_ISREG(st.st_mode))
        return error_set_field(errp, ERR_INVALID_ARG, field, "%s '%s' is not a regular file",
                               what, path), NULL;
    return xstrdup(buf);
}

int image_chain_check(const char *path, enum disk_format format, const char *root,
                      const char *field, struct image_chain *out, struct error **errp)
{
    char rootbuf[PATH_MAX];
    if (!realpath(root, rootbuf))
        return error_set_errno(errp, ERR_IO, errno, "cannot resolve datastore directory '%s'",
                               root);
    struct image_chain chain = { 0 };
    AUTOFREE char *cur = xstrdup(path);
    int fmt = (int) format;
    int ret = -1;
    for (;;) {
        if (chain.n >= IMAGE_CHAIN_MAX) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "image '%s' has a backing chain deeper than %d", path,
                            IMAGE_CHAIN_MAX);
            goto out;
        }
        AUTOFREE char *real = contained(cur, rootbuf, chain.n ? "backing file" : "image", field,
                                        errp);
        if (!real)
            goto out;
        chain.layers = xrealloc(chain.layers, (chain.n + 1) * sizeof *chain.layers);
        struct image_info *info = &chain.layers[chain.n];
        if (image_info_get(real, (enum disk_format) fmt, info, errp) < 0) {
            /* e.g. "Image is not in qcow2 format": the record's format is wrong. */
            if (*errp && (*errp)->code == ERR_QEMU) {
                (*errp)->code = ERR_INVALID_ARG;
                free((*errp)->field);
                (*errp)->field = xstrdup(field);
            }
            goto out;
        }
        chain.n++;
        if (info->format != fmt) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "image '%s' is %s, not %s as recorded", cur,
                            info->format >= 0 ? disk_format_to_string(info->format) : "unknown",
                            disk_format_to_string((enum disk_format) fmt));
            goto out;
        }
        if (info->corrupt) {
            error_set_field(errp, ERR_INVALID_ARG, field, "image '%s' is marked corrupt", cur);
            goto out;
        }
        if (info->data_file) {
            if (strchr(info->data_file, ':') || !strncmp(info->data_file, "json", 4)) {
                error_set_field(errp, ERR_INVALID_ARG, field,
                                "image '%s' names the data file '%s', which is not a plain file",
                                cur, info->data_file);
                goto out;
            }
            AUTOFREE char *dp = resolve_relative(real, info->data_file);
            AUTOFREE char *dr = contained(dp, rootbuf, "data file", field, errp);
            if (!dr)
                goto out;
        }
        if (!info->backing)
            break;
        if (strchr(info->backing, ':') || !strncmp(info->backing, "json", 4)) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "image '%s' names the backing file '%s', which is not a plain file",
                            cur, info->backing);
            goto out;
        }
        if (info->backing_format < 0) {
            error_set_field(errp, ERR_INVALID_ARG, field,
                            "image '%s' names the backing file '%s' without a format (%s): "
                            "it is never probed", cur, info->backing,
                            info->backing_format_name ? info->backing_format_name : "none");
            goto out;
        }
        /* Relative names are resolved against the overlay's own directory. */
        char *next = resolve_relative(real, info->backing);
        free(cur);
        cur = next;
        fmt = info->backing_format;
    }
    ret = 0;
out:
    if (ret == 0 && out)
        *out = chain;
    else
        image_chain_clear(&chain);
    return ret;
}

/* ---- builders ----------------------------------------------------------------- */

struct command *image_cmd_check(const char *path, enum disk_format format)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "check", "-U", "-f", disk_format_to_string(format), "--output=json",
                     path, NULL);
    command_set_limits(c, 2 * IMAGE_INFO_AS_LIMIT, 300);
    return c;
}

struct command *image_cmd_create(const char *path, enum disk_format format,
                                 unsigned long long size, enum image_prealloc prealloc)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "create", "-q", "-f", disk_format_to_string(format), NULL);
    if (prealloc != IMAGE_PREALLOC_OFF) {
        command_add_arg(c, "-o");
        command_add_argf(c, "preallocation=%s", image_prealloc_to_string(prealloc));
    }
    command_add_arg(c, path);
    command_add_argf(c, "%llu", size);
    return c;
}

struct command *image_cmd_create_overlay(const char *path, const char *backing,
                                         enum disk_format backing_format)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "create", "-q", "-f", "qcow2", "-F",
                     disk_format_to_string(backing_format), "-b", backing, path, NULL);
    return c;
}

struct command *image_cmd_resize(const char *path, enum disk_format format,
                                 unsigned long long size, enum image_prealloc prealloc)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "resize", "-q", "-f", disk_format_to_string(format), NULL);
    if (prealloc != IMAGE_PREALLOC_OFF)
        command_add_argf(c, "--preallocation=%s", image_prealloc_to_string(prealloc));
    command_add_arg(c, path);
    command_add_argf(c, "%llu", size);
    return c;
}

struct command *image_cmd_rebase(const char *path, const char *backing,
                                 enum disk_format backing_format)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "rebase", "-p", "-f", "qcow2", NULL);
    if (backing)
        command_add_args(c, "-F", disk_format_to_string(backing_format), "-b", backing, NULL);
    else
        command_add_args(c, "-b", "", NULL);
    command_add_arg(c, path);
    return c;
}

struct command *image_cmd_convert(const char *src, enum disk_format src_format,
                                  const char *dst, enum disk_format dst_format,
                                  enum image_prealloc prealloc)
{
    struct command *c = command_new(QEMU_IMG);
    command_add_args(c, "convert", "-p", "-f", disk_format_to_string(src_format), "-O",
                     disk_format_to_string(dst_format), NULL);
    if (prealloc != IMAGE_PREALLOC_OFF) {
        command_add_arg(c, "-o");
        command_add_argf(c, "preallocation=%s", image_prealloc_to_string(prealloc));
    }
    command_add_args(c, src, dst, NULL);
    return c;
}

/* ---- long runs ------------------------------------------------------------------ */

static void report(const struct image_progress *p, int pct)
{
    if (p && p->report) {
        int lo = p->lo, hi = p->hi > p->lo ? p->hi : 100;
        p->report(p->opaque, lo + (hi - lo) * pct / 100);
    }
}

static bool is_cancelled(const struct image_progress *p)
{
    return p && p->cancelled && p->cancelled(p->opaque);
}

/* The last "(NN.NN/100%)" in qemu-img's -p output, or -1. */
static int parse_progress(const char *text)
{
    int pct = -1;
    for (const char *s = text; (s = strchr(s, '(')); s++) {
        double v;
        if (sscanf(s, "(%lf/100%%)", &v) == 1 && v >= 0 && v <= 100)
            pct = (int) v;
    }
    return pct;
}

int image_run_long(struct command *cmd, const struct image_progress *p, struct error **errp)
{
    if (synchronous)
        return image_run(cmd, NULL, errp);
    char logpath[] = "/tmp/strata-qemu-img-XXXXXX";
    int lfd = mkstemp(logpath);
    if (lfd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot create a temporary file");
    close(lfd);
    command_set_output_file(cmd, logpath);
    pid_t pid = command_spawn(cmd, errp);
    if (pid < 0) {
        unlink(logpath);
        return -1;
    }
    int status = 0, ret = 0;
    bool killed = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            break;
        AUTOFREE char *text = file_read_all(logpath, 1 << 20, NULL, NULL);
        int pct = text ? parse_progress(text) : -1;
        if (pct >= 0)
            report(p, pct);
        if (!killed && is_cancelled(p)) {
            kill(pid, SIGKILL);
            killed = true;
        }
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    AUTOFREE char *text = file_read_all(logpath, 1 << 20, NULL, NULL);
    unlink(logpath);
    char *const *argv = command_argv(cmd);
    if (killed) {
        ret = error_set(errp, ERR_BAD_STATE, "%s %s cancelled", argv[0], argv[1]);
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        /* The progress lines end in '\r': keep what follows the last one. */
        const char *msg = text ? text : "";
        const char *cr = strrchr(msg, '\r');
        if (cr)
            msg = cr + 1;
        AUTOFREE char *m = one_line(xstrdup(msg));
        ret = error_set(errp, code_for(m), "%s %s failed (%s %d): %s", argv[0], argv[1],
                        WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), m);
    } else {
        report(p, 100);
    }
    return ret;
}

/* ---- zero-fill and wipe ---------------------------------------------------------- */

struct extent {
    off_t start, end;
};

/* Lists the data extents (holes == false) or the holes of 'fd' below 'size'. */
static struct extent *list_extents(int fd, off_t size, bool holes, size_t *n_out,
                                   unsigned long long *total)
{
    struct extent *v = NULL;
    size_t n = 0;
    *total = 0;
    off_t pos = 0;
    while (pos < size) {
        off_t d = lseek(fd, pos, SEEK_DATA);
        if (d < 0 || d > size)
            d = size;
        if (holes && d > pos) {
            v = xrealloc(v, (n + 1) * sizeof *v);
            v[n++] = (struct extent) { pos, d };
            *total += (unsigned long long) (d - pos);
        }
        if (d >= size)
            break;
        off_t h = lseek(fd, d, SEEK_HOLE);
        if (h < 0 || h > size)
            h = size;
        if (!holes && h > d) {
            v = xrealloc(v, (n + 1) * sizeof *v);
            v[n++] = (struct extent) { d, h };
            *total += (unsigned long long) (h - d);
        }
        pos = h;
    }
    *n_out = n;
    return v;
}

/* Never written: zero-filled .bss. */
static char zero_buf[IO_CHUNK];

/* Writes zeros over each extent; progress over 'total' bytes. */
static int zero_extents(int fd, const char *path, const struct extent *v, size_t n,
                        unsigned long long total, const struct image_progress *p,
                        unsigned long long *written, struct error **errp)
{
    const char *zero = zero_buf;
    unsigned long long done = 0;
    int last = -1;
    for (size_t i = 0; i < n; i++) {
        for (off_t off = v[i].start; off < v[i].end;) {
            size_t len = (size_t) (v[i].end - off < IO_CHUNK ? v[i].end - off : IO_CHUNK);
            ssize_t w = pwrite(fd, zero, len, off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return error_set_errno(errp, errno == ENOSPC ? ERR_NO_SPACE : ERR_IO, errno,
                                       "cannot write to '%s'", path);
            }
            off += w;
            done += (unsigned long long) w;
            int pct = total ? (int) (done * 99 / total) : 99;
            if (pct != last) {
                report(p, pct);
                last = pct;
                if (is_cancelled(p))
                    return error_set(errp, ERR_BAD_STATE, "writing '%s' cancelled", path);
            }
        }
    }
    if (fdatasync(fd) < 0)
        return error_set_errno(errp, errno == ENOSPC ? ERR_NO_SPACE : ERR_IO, errno,
                               "cannot sync '%s'", path);
    if (written)
        *written = done;
    report(p, 100);
    return 0;
}

static int zero_file(const char *path, bool holes, const struct image_progress *p,
                     unsigned long long *written, struct error **errp)
{
    AUTOCLOSE int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot open '%s'", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot stat '%s'", path);
    if (!S_ISREG(st.st_mode))
        return error_set(errp, ERR_INVALID_ARG, "'%s' is not a regular file", path);
    size_t n;
    unsigned long long total;
    AUTOFREE struct extent *v = list_extents(fd, st.st_size, holes, &n, &total);
    return zero_extents(fd, path, v, n, total, p, written, errp);
}

int image_fill_holes(const char *path, const struct image_progress *p, struct error **errp)
{
    return zero_file(path, true, p, NULL, errp);
}

int image_wipe(const char *path, const struct image_progress *p, unsigned long long *wiped,
               struct error **errp)
{
    return zero_file(path, false, p, wiped, errp);
}

long long image_allocated_bytes(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    return (long long) st.st_blocks * 512;
}

int image_prealloc_range(const char *path, unsigned long long from, unsigned long long to,
                         bool zero, struct error **errp)
{
    if (to <= from)
        return 0;
    AUTOCLOSE int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot open '%s'", path);
    if (!zero && fallocate(fd, 0, (off_t) from, (off_t) (to - from)) == 0)
        return 0;
    if (!zero && errno != EOPNOTSUPP)
        return error_set_errno(errp, errno == ENOSPC ? ERR_NO_SPACE : ERR_IO, errno,
                               "cannot reserve space in '%s'", path);
    struct extent e = { (off_t) from, (off_t) to };
    return zero_extents(fd, path, &e, 1, to - from, NULL, NULL, errp);
}

bool image_has_qcow2_magic(const char *path)
{
    AUTOCLOSE int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char m[4];
    return fd >= 0 && pread(fd, m, 4, 0) == 4 && m[0] == 'Q' && m[1] == 'F' && m[2] == 'I'
           && m[3] == 0xfb;
}
