/* volume.c - volume records and the offline file operations on volumes.
 * See volume.h. */
#define LOG_MODULE "volume"
#include "storage/volume.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/datastore.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

long long storage_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static const char *const prov_names[VOLUME_PROV__COUNT] = { "thin", "thick-lazy", "thick-eager" };
static const char *const type_names[VOLUME_TYPE__COUNT] = { "normal", "shared" };
static const char *const mode_names[VOLUME_MODE__COUNT] = {
    "dependent", "independent-persistent", "independent-nonpersistent"
};

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

const char *volume_prov_to_string(enum volume_prov p)
{
    return (unsigned) p < VOLUME_PROV__COUNT ? prov_names[p] : "unknown";
}
int volume_prov_from_string(const char *s) { return lookup(prov_names, VOLUME_PROV__COUNT, s); }
const char *volume_type_to_string(enum volume_type t)
{
    return (unsigned) t < VOLUME_TYPE__COUNT ? type_names[t] : "unknown";
}
int volume_type_from_string(const char *s) { return lookup(type_names, VOLUME_TYPE__COUNT, s); }
const char *volume_mode_to_string(enum volume_mode m)
{
    return (unsigned) m < VOLUME_MODE__COUNT ? mode_names[m] : "unknown";
}
int volume_mode_from_string(const char *s) { return lookup(mode_names, VOLUME_MODE__COUNT, s); }

static int get_enum(const json_t *j, const char *key, const char *const *names, int n, int *out,
                    struct error **errp)
{
    const char *s = NULL;
    if (json_get_string(j, key, "", false, &s, errp) < 0)
        return -1;
    if (!s)
        return 0;
    int v = lookup(names, n, s);
    if (v < 0) {
        AUTOFREE char *list = NULL;
        for (int i = 0; i < n; i++) {
            char *next = xasprintf("%s%s%s", list ? list : "", list ? ", " : "", names[i]);
            free(list);
            list = next;
        }
        return error_set_field(errp, ERR_INVALID_ARG, key, "%s '%.40s' must be one of %s", key,
                               s, list);
    }
    *out = v;
    return 0;
}

static const char *const format_names[] = { "raw", "qcow2" };

/* Fields shared by requests and records. */
static struct volume *parse_common(const json_t *j, bool record, struct error **errp)
{
    const char *name = NULL;
    if (json_get_string(j, "name", "", true, &name, errp) < 0
        || storage_name_validate(name, "volume", "name", errp) < 0)
        return NULL;
    int fmt = DISK_FORMAT_QCOW2, prov = VOLUME_THIN, type = VOLUME_NORMAL,
        mode = VOLUME_DEPENDENT;
    unsigned long long cap = 0;
    bool ro = false;
    const char *base = NULL;
    if (get_enum(j, "format", format_names, 2, &fmt, errp) < 0
        || get_enum(j, "provisioning", prov_names, VOLUME_PROV__COUNT, &prov, errp) < 0
        || get_enum(j, "type", type_names, VOLUME_TYPE__COUNT, &type, errp) < 0
        || get_enum(j, "mode", mode_names, VOLUME_MODE__COUNT, &mode, errp) < 0
        || json_get_uint(j, "capacity", "", false, record ? 0 : VOLUME_MIN_CAPACITY,
                         VOLUME_MAX_CAPACITY, &cap, errp) < 0
        || json_get_bool(j, "readonly", "", false, &ro, errp) < 0
        || json_get_string(j, "base", "", false, &base, errp) < 0
        || (base && storage_name_validate(base, "base volume", "base", errp) < 0))
        return NULL;
    if (cap % 512)
        return error_set_field(errp, ERR_INVALID_ARG, "capacity",
                               "capacity %llu is not a multiple of 512", cap), NULL;
    struct volume *v = xzalloc(sizeof *v);
    v->name = xstrdup(name);
    v->format = (enum disk_format) fmt;
    v->prov = (enum volume_prov) prov;
    v->type = (enum volume_type) type;
    v->mode = (enum volume_mode) mode;
    v->capacity = cap;
    v->readonly = ro;
    v->base = xstrdup(base);
    return v;
}

struct volume *volume_from_request(const json_t *j, bool *import, struct error **errp)
{
    static const char *const keys[] = { "name", "capacity", "format", "provisioning", "type",
                                        "mode", "base", "import", "readonly", NULL };
    if (!json_is_object(j))
        return error_set(errp, ERR_INVALID_ARG, "a volume object is required"), NULL;
    if (json_check_keys(j, keys, "", errp) < 0)
        return NULL;
    bool imp = false;
    if (json_get_bool(j, "import", "", false, &imp, errp) < 0)
        return NULL;
    struct volume *v = parse_common(j, false, errp);
    if (!v)
        return NULL;
    *import = imp;
    uuid_generate(v->uuid);
    v->created_ms = storage_wall_ms();
    v->state = xstrdup("creating");
    v->file = xasprintf("%s.%s", v->name, disk_format_to_string(v->format));
    const char *bad = NULL, *field = NULL;
    if (v->base && imp)
        bad = "a volume is either imported or cloned from a base", field = "base";
    else if (v->base && v->format != DISK_FORMAT_QCOW2)
        bad = "a linked clone is a qcow2 overlay: format must be qcow2", field = "format";
    else if (v->base && v->prov != VOLUME_THIN)
        bad = "a linked clone is thin", field = "provisioning";
    else if (v->base && v->type == VOLUME_SHARED)
        bad = "a linked clone cannot be shared", field = "type";
    else if (!v->base && !imp && !v->capacity)
        bad = "capacity (bytes) is required", field = "capacity";
    else if (v->type == VOLUME_SHARED && (v->format != DISK_FORMAT_RAW || v->prov == VOLUME_THIN))
        bad = "a shared volume must be raw and thick", field = "type";
    else if (v->type == VOLUME_SHARED && v->mode != VOLUME_INDEPENDENT_PERSISTENT)
        bad = "a shared volume cannot be snapshotted: its mode must be independent-persistent",
        field = "mode";
    if (bad) {
        error_set_field(errp, ERR_INVALID_ARG, field, "volume '%s': %s", v->name, bad);
        volume_free(v);
        return NULL;
    }
    return v;
}

struct volume *volume_from_json(const json_t *j, struct error **errp)
{
    struct volume *v = parse_common(j, true, errp);
    if (!v)
        return NULL;
    const char *u = json_string_value(json_object_get(j, "uuid"));
    if (u && uuid_is_valid(u))
        snprintf(v->uuid, sizeof v->uuid, "%s", u);
    else
        uuid_generate(v->uuid);
    const char *file = json_string_value(json_object_get(j, "file"));
    if (!file || !image_name_ok(file)
        || strncmp(file, v->name, strlen(v->name)) || file[strlen(v->name)] != '.') {
        error_set_field(errp, ERR_INVALID_ARG, "file", "volume '%s' has a bad file name '%s'",
                        v->name, file ? file : "");
        volume_free(v);
        return NULL;
    }
    v->file = xstrdup(file);
    const char *st = json_string_value(json_object_get(j, "state"));
    v->state = xstrdup(st ? st : "ready");
    v->created_ms = json_integer_value(json_object_get(j, "created_ms"));
    return v;
}

json_t *volume_to_json(const struct volume *v)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:s, s:s, s:I}", "name",
                          v->name, "uuid", v->uuid, "format", disk_format_to_string(v->format),
                          "provisioning", volume_prov_to_string(v->prov), "type",
                          volume_type_to_string(v->type), "mode", volume_mode_to_string(v->mode),
                          "capacity", (json_int_t) v->capacity, "readonly", v->readonly, "file",
                          v->file, "state", v->state ? v->state : "ready", "created_ms",
                          (json_int_t) v->created_ms);
    if (v->base)
        json_object_set_new(j, "base", json_string(v->base));
    return j;
}

void volume_free(struct volume *v)
{
    if (!v)
        return;
    free(v->name);
    free(v->base);
    free(v->file);
    free(v->state);
    free(v);
}

struct volume *volume_copy(const struct volume *v)
{
    struct volume *c = xmalloc(sizeof *c);
    *c = *v;
    c->name = xstrdup(v->name);
    c->base = xstrdup(v->base);
    c->file = xstrdup(v->file);
    c->state = xstrdup(v->state);
    return c;
}

static char *record_path(const char *ds_path, const char *name)
{
    return xasprintf("%s/.strata/volumes/%s.json", ds_path, name);
}

int volume_save(const char *ds_path, const struct volume *v, struct error **errp)
{
    AUTOJSON json_t *j = volume_to_json(v);
    AUTOFREE char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    AUTOFREE char *path = record_path(ds_path, v->name);
    return file_write_atomic(path, text, strlen(text), 0600, errp);
}

struct volume *volume_load(const char *ds_path, const char *name, struct error **errp)
{
    AUTOFREE char *path = record_path(ds_path, name);
    AUTOERROR struct error *err = NULL;
    AUTOFREE char *text = file_read_all(path, 1 << 20, NULL, &err);
    if (!text) {
        if (err->code == ERR_NOT_FOUND)
            return error_set_field(errp, ERR_NOT_FOUND, "volume", "volume '%s' not found",
                                   name), NULL;
        error_propagate(errp, steal_pointer(&err));
        return NULL;
    }
    AUTOJSON json_t *j = json_from_string(text, strlen(text), errp);
    if (!j)
        return NULL;
    struct volume *v = volume_from_json(j, errp);
    if (v && strcmp(v->name, name)) {
        error_set(errp, ERR_INTERNAL, "record '%s' names volume '%s'", path, v->name);
        volume_free(v);
        return NULL;
    }
    return v;
}

int volume_remove_record(const char *ds_path, const char *name, struct error **errp)
{
    AUTOFREE char *path = record_path(ds_path, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", path);
    return 0;
}

static int cmp_vol(const void *a, const void *b)
{
    return strcmp((*(struct volume *const *) a)->name, (*(struct volume *const *) b)->name);
}

struct volume **volume_list(const char *ds_path, size_t *n)
{
    AUTOFREE char *dir = xasprintf("%s/.strata/volumes", ds_path);
    struct volume **v = xcalloc(1, sizeof *v);
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return v;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
            continue;
        AUTOFREE char *name = xstrndup(de->d_name, l - 5);
        AUTOERROR struct error *err = NULL;
        struct volume *vol = volume_load(ds_path, name, &err);
        if (!vol) {
            LOG_RL_WARN("skipping volume record '%s/%s': %s", dir, de->d_name, err->message);
            continue;
        }
        v = xrealloc(v, (*n + 2) * sizeof *v);
        v[(*n)++] = vol;
        v[*n] = NULL;
    }
    closedir(d);
    qsort(v, *n, sizeof *v, cmp_vol);
    return v;
}

void volume_list_free(struct volume **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        volume_free(v[i]);
    free(v);
}

char *volume_root_path(const char *ds_path, const struct volume *v)
{
    return xasprintf("%s/%s", ds_path, v->file);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

char **volume_files(const char *ds_path, const char *name)
{
    size_t n = 0, nl = strlen(name);
    char **v = xcalloc(1, sizeof *v);
    DIR *d = opendir(ds_path);
    if (!d)
        return v;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, name, nl) || de->d_name[nl] != '.')
            continue;
        AUTOFREE char *p = xasprintf("%s/%s", ds_path, de->d_name);
        struct stat st;
        if (lstat(p, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
            continue;
        v = xrealloc(v, (n + 2) * sizeof *v);
        v[n++] = steal_pointer(&p);
        v[n] = NULL;
    }
    closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

char *volume_name_of_file(const char *ds_path, const char *path)
{
    size_t dl = strlen(ds_path);
    if (strncmp(path, ds_path, dl) || path[dl] != '/' || strchr(path + dl + 1, '/'))
        return NULL;
    const char *base = path + dl + 1;
    const char *dot = strchr(base, '.');
    if (!dot || dot == base)
        return NULL;
    return xstrndup(base, (size_t) (dot - base));
}

enum image_prealloc volume_create_prealloc(const struct volume *v)
{
    switch (v->prov) {
    case VOLUME_THICK_LAZY:
        return IMAGE_PREALLOC_FALLOC;
    case VOLUME_THICK_EAGER:
        /* Then every hole is written with zeros (image_fill_holes). */
        return v->format == DISK_FORMAT_QCOW2 ? IMAGE_PREALLOC_METADATA : IMAGE_PREALLOC_OFF;
    case VOLUME_THIN:
    case VOLUME_PROV__COUNT:
        break;
    }
    return IMAGE_PREALLOC_OFF;
}

int volume_create_files(const char *ds_path, const struct volume *v,
                        const struct image_progress *p, struct error **errp)
{
    AUTOFREE char *path = volume_root_path(ds_path, v);
    if (file_exists(path))
        return error_set_field(errp, ERR_CONFLICT, "name", "file '%s' already exists", path);
    AUTOCOMMAND struct command *c = image_cmd_create(path, v->format, v->capacity,
                                                     volume_create_prealloc(v));
    if (image_run(c, NULL, errp) < 0) {
        unlink(path);
        return -1;
    }
    if (v->prov == VOLUME_THICK_EAGER && image_fill_holes(path, p, errp) < 0) {
        unlink(path);
        return -1;
    }
    return 0;
}

int volume_create_clone(const char *ds_path, const struct volume *v, const struct volume *base,
                        struct error **errp)
{
    AUTOFREE char *path = volume_root_path(ds_path, v);
    if (file_exists(path))
        return error_set_field(errp, ERR_CONFLICT, "name", "file '%s' already exists", path);
    AUTOCOMMAND struct command *c = image_cmd_create_overlay(path, base->file, base->format);
    if (image_run(c, NULL, errp) < 0) {
        unlink(path);
        return -1;
    }
    if (v->capacity > base->capacity) {
        AUTOCOMMAND struct command *r = image_cmd_resize(path, DISK_FORMAT_QCOW2, v->capacity,
                                                         IMAGE_PREALLOC_OFF);
        if (image_run(r, NULL, errp) < 0) {
            unlink(path);
            return -1;
        }
    }
    return 0;
}

int volume_delete_files(const char *ds_path, const char *name, bool secure,
                        const struct image_progress *p, unsigned long long *wiped,
                        long long *wipe_ms, struct error **errp)
{
    AUTOSTRV char **files = volume_files(ds_path, name);
    long long t0 = storage_wall_ms();
    unsigned long long total = 0, done = 0;
    if (wiped)
        *wiped = 0;
    if (secure) {
        for (size_t i = 0; files[i]; i++) {
            long long b = image_allocated_bytes(files[i]);
            total += b > 0 ? (unsigned long long) b : 0;
        }
        for (size_t i = 0; files[i]; i++) {
            struct stat st;
            if (lstat(files[i], &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            long long b = image_allocated_bytes(files[i]);
            struct image_progress sub = { 0 };
            if (p) {
                sub = *p;
                int span = (p->hi > p->lo ? p->hi : 100) - p->lo;
                sub.lo = p->lo + (int) (total ? (double) span * done / total : 0);
                sub.hi = p->lo + (int) (total ? (double) span * (done + (b > 0 ? b : 0)) / total
                                              : span);
            }
            unsigned long long w = 0;
            if (image_wipe(files[i], p ? &sub : NULL, &w, errp) < 0)
                return -1;
            done += b > 0 ? (unsigned long long) b : 0;
            if (wiped)
                *wiped += w;
        }
    }
    if (wipe_ms)
        *wipe_ms = storage_wall_ms() - t0;
    for (size_t i = 0; files[i]; i++)
        if (unlink(files[i]) < 0 && errno != ENOENT)
            return error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", files[i]);
    return 0;
}

int volume_grow_file(const char *path, enum disk_format format, const struct volume *v,
                     unsigned long long old_capacity, unsigned long long capacity,
                     struct error **errp)
{
    (void) old_capacity;
    enum image_prealloc pre = v->prov == VOLUME_THICK_EAGER  ? IMAGE_PREALLOC_FULL
                              : v->prov == VOLUME_THICK_LAZY ? IMAGE_PREALLOC_FALLOC
                                                             : IMAGE_PREALLOC_OFF;
    AUTOCOMMAND struct command *c = image_cmd_resize(path, format, capacity, pre);
    return image_run(c, NULL, errp);
}
