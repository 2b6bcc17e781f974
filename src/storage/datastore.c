/* datastore.c - datastore records, identity, usage, overcommit and the
 * storage heartbeat file.  See datastore.h. */
#define LOG_MODULE "datastore"
#include "storage/datastore.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage/volume.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"



static const char *const type_names[DATASTORE__COUNT] = { "local", "shared" };

const char *datastore_type_to_string(enum datastore_type t)
{
    return (unsigned) t < DATASTORE__COUNT ? type_names[t] : "unknown";
}

int datastore_type_from_string(const char *s)
{
    for (int i = 0; s && i < DATASTORE__COUNT; i++)
        if (!strcmp(s, type_names[i]))
            return i;
    return -1;
}

int storage_name_validate(const char *name, const char *what, const char *field,
                          struct error **errp)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n <= DATASTORE_NAME_MAX
              && ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')
                  || (name[0] >= '0' && name[0] <= '9'));
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
             || c == '_' || c == '-';
    }
    if (!ok)
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "%s name '%.80s' must match [A-Za-z0-9][A-Za-z0-9_-]{0,63}", what,
                               name);
    return 0;
}

/* A directory usable as a datastore: clean, absolute, nothing QEMU or
 * qemu-img would read as an option separator or protocol. */
static int path_validate(const char *path, const char *field, struct error **errp)
{
    if (strlen(path) > 1024)
        return error_set_field(errp, ERR_INVALID_ARG, field, "path is longer than 1024 bytes");
    for (const char *p = path; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == ',' || *p == '=' || *p == ':')
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "path '%.200s' contains a control character, ',', '=' or ':'",
                                   path);
    if (!path_is_clean(path) || !strcmp(path, "/"))
        return error_set_field(errp, ERR_INVALID_ARG, field,
                               "path '%.200s' must be a clean absolute directory other than '/'",
                               path);
    static const char *const system_dirs[] = { "/proc", "/sys", "/dev", "/run", "/etc", "/boot" };
    for (size_t i = 0; i < ARRAY_SIZE(system_dirs); i++)
        if (!strcmp(path, system_dirs[i]) || path_is_under(path, system_dirs[i]))
            return error_set_field(errp, ERR_INVALID_ARG, field,
                                   "path '%.200s' is a system directory", path);
    return 0;
}

struct datastore *datastore_from_json(const json_t *j, bool stored, struct error **errp)
{
    static const char *const api_keys[] = { "name", "type", "path", "overcommit_ratio",
                                            "heartbeat_interval_s", NULL };
    static const char *const rec_keys[] = { "name", "type", "path", "overcommit_ratio",
                                            "heartbeat_interval_s", "uuid", "created_ms", NULL };
    if (!json_is_object(j))
        return error_set(errp, ERR_INVALID_ARG, "a datastore object is required"), NULL;
    if (json_check_keys(j, stored ? rec_keys : api_keys, "", errp) < 0)
        return NULL;
    const char *name = NULL, *type = "local", *path = NULL;
    unsigned long long hb = DATASTORE_DEFAULT_HEARTBEAT_S;
    if (json_get_string(j, "name", "", true, &name, errp) < 0
        || storage_name_validate(name, "datastore", "name", errp) < 0
        || json_get_string(j, "type", "", false, &type, errp) < 0
        || json_get_string(j, "path", "", true, &path, errp) < 0
        || path_validate(path, "path", errp) < 0
        || json_get_uint(j, "heartbeat_interval_s", "", false, 1, 60, &hb, errp) < 0)
        return NULL;
    int t = datastore_type_from_string(type);
    if (t < 0)
        return error_set_field(errp, ERR_INVALID_ARG, "type",
                               "type '%.40s' must be local or shared", type), NULL;
    double ratio = DATASTORE_DEFAULT_OVERCOMMIT;
    json_t *r = json_object_get(j, "overcommit_ratio");
    if (r && !json_is_null(r)) {
        if (!json_is_number(r) || !isfinite(json_number_value(r)) || json_number_value(r) < 1.0
            || json_number_value(r) > 100.0)
            return error_set_field(errp, ERR_INVALID_ARG, "overcommit_ratio",
                                   "overcommit_ratio must be a number from 1.0 to 100.0"), NULL;
        ratio = json_number_value(r);
    }
    struct datastore *ds = xzalloc(sizeof *ds);
    ds->name = xstrdup(name);
    ds->type = (enum datastore_type) t;
    ds->path = xstrdup(path);
    ds->overcommit_ratio = ratio;
    ds->heartbeat_interval_s = (unsigned) hb;
    if (stored) {
        const char *u = json_string_value(json_object_get(j, "uuid"));
        if (u && uuid_is_valid(u))
            snprintf(ds->uuid, sizeof ds->uuid, "%s", u);
        ds->created_ms = json_integer_value(json_object_get(j, "created_ms"));
    }
    if (!ds->uuid[0])
        uuid_generate(ds->uuid);
    if (!ds->created_ms)
        ds->created_ms = storage_wall_ms();
    return ds;
}

json_t *datastore_to_json(const struct datastore *ds)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:f, s:I}", "name", ds->name, "uuid", ds->uuid,
                          "type", datastore_type_to_string(ds->type), "path", ds->path,
                          "overcommit_ratio", ds->overcommit_ratio, "created_ms",
                          (json_int_t) ds->created_ms);
    if (ds->type == DATASTORE_SHARED)
        json_object_set_new(j, "heartbeat_interval_s", json_integer(ds->heartbeat_interval_s));
    return j;
}

void datastore_free(struct datastore *ds)
{
    if (!ds)
        return;
    free(ds->name);
    free(ds->path);
    free(ds);
}

static char *record_dir(const char *state_dir)
{
    return xasprintf("%s/storage/datastores", state_dir);
}

int datastore_save(const struct datastore *ds, const char *state_dir, struct error **errp)
{
    AUTOFREE char *dir = record_dir(state_dir);
    if (mkdir_p(dir, 0700, errp) < 0)
        return -1;
    AUTOJSON json_t *j = datastore_to_json(ds);
    AUTOFREE char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    AUTOFREE char *path = xasprintf("%s/%s.json", dir, ds->name);
    return file_write_atomic(path, text, strlen(text), 0600, errp);
}

int datastore_remove_record(const char *name, const char *state_dir, struct error **errp)
{
    AUTOFREE char *dir = record_dir(state_dir);
    AUTOFREE char *path = xasprintf("%s/%s.json", dir, name);
    if (unlink(path) < 0 && errno != ENOENT)
        return error_set_errno(errp, ERR_IO, errno, "cannot remove '%s'", path);
    return 0;
}

struct datastore **datastore_load_all(const char *state_dir, size_t *n)
{
    AUTOFREE char *dir = record_dir(state_dir);
    struct datastore **v = xcalloc(1, sizeof *v);
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return v;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
            continue;
        AUTOFREE char *path = xasprintf("%s/%s", dir, de->d_name);
        AUTOERROR struct error *err = NULL;
        AUTOFREE char *text = file_read_all(path, 1 << 20, NULL, &err);
        AUTOJSON json_t *j = text ? json_from_string(text, strlen(text), &err) : NULL;
        struct datastore *ds = j ? datastore_from_json(j, true, &err) : NULL;
        if (!ds) {
            LOG_ERROR("skipping datastore record '%s': %s", path, err->message);
            continue;
        }
        v = xrealloc(v, (*n + 2) * sizeof *v);
        v[(*n)++] = ds;
        v[*n] = NULL;
    }
    closedir(d);
    return v;
}

char *datastore_meta_path(const struct datastore *ds, const char *sub)
{
    return sub ? xasprintf("%s/.strata/%s", ds->path, sub) : xasprintf("%s/.strata", ds->path);
}

int datastore_prepare_dir(struct datastore *ds, struct error **errp)
{
    struct stat st;
    if (stat(ds->path, &st) < 0)
        return error_set_errno(errp, errno == ENOENT ? ERR_INVALID_ARG : ERR_IO, errno,
                               "datastore directory '%s' is not usable", ds->path);
    if (!S_ISDIR(st.st_mode))
        return error_set_field(errp, ERR_INVALID_ARG, "path", "'%s' is not a directory",
                               ds->path);
    static const char *const subs[] = { "volumes", "heartbeat", "tmp" };
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
        AUTOFREE char *p = datastore_meta_path(ds, subs[i]);
        if (mkdir_p(p, 0700, errp) < 0)
            return -1;
    }
    AUTOFREE char *idpath = datastore_meta_path(ds, "datastore.json");
    AUTOFREE char *text = file_read_all(idpath, 1 << 16, NULL, NULL);
    AUTOJSON json_t *id = text ? json_loads(text, 0, NULL) : NULL;
    const char *u = json_string_value(json_object_get(id, "uuid"));
    if (u && uuid_is_valid(u)) {
        snprintf(ds->uuid, sizeof ds->uuid, "%s", u);
        const char *t = json_string_value(json_object_get(id, "type"));
        if (t && datastore_type_from_string(t) >= 0
            && datastore_type_from_string(t) != (int) ds->type)
            return error_set_field(errp, ERR_CONFLICT, "type",
                                   "directory '%s' holds a %s datastore, not %s", ds->path, t,
                                   datastore_type_to_string(ds->type));
        return 0;
    }
    AUTOJSON json_t *nid = json_pack("{s:s, s:s, s:s, s:I}", "uuid", ds->uuid, "name", ds->name,
                                     "type", datastore_type_to_string(ds->type), "created_ms",
                                     (json_int_t) ds->created_ms);
    AUTOFREE char *ntext = json_dumps(nid, JSON_INDENT(2) | JSON_SORT_KEYS);
    return file_write_atomic(idpath, ntext, strlen(ntext), 0600, errp);
}

int datastore_usage_get(const struct datastore *ds, struct datastore_usage *u,
                        struct error **errp)
{
    memset(u, 0, sizeof *u);
    struct statvfs sv;
    if (statvfs(ds->path, &sv) < 0)
        return error_set_errno(errp, ERR_IO, errno, "cannot read the usage of '%s'", ds->path);
    u->capacity = (unsigned long long) sv.f_blocks * sv.f_frsize;
    u->free = (unsigned long long) sv.f_bavail * sv.f_frsize;
    u->used = u->capacity - (unsigned long long) sv.f_bfree * sv.f_frsize;
    size_t n = 0;
    struct volume **vols = volume_list(ds->path, &n);
    for (size_t i = 0; i < n; i++)
        u->provisioned += vols[i]->capacity;
    u->volumes = (unsigned) n;
    volume_list_free(vols, n);
    return 0;
}

int datastore_check_alloc(const struct datastore *ds, unsigned long long bytes, bool thick,
                          const char *field, struct error **errp)
{
    struct datastore_usage u;
    if (datastore_usage_get(ds, &u, errp) < 0)
        return -1;
    double limit = (double) u.capacity * ds->overcommit_ratio;
    if ((double) u.provisioned + (double) bytes > limit)
        return error_set_field(errp, ERR_NO_SPACE, field,
                               "datastore '%s' cannot provision %llu more bytes: %llu of %.0f "
                               "(capacity %llu x overcommit %.2f) are provisioned",
                               ds->name, bytes, u.provisioned, limit, u.capacity,
                               ds->overcommit_ratio);
    if (thick && bytes > u.free)
        return error_set_field(errp, ERR_NO_SPACE, field,
                               "datastore '%s' has %llu bytes free, a thick disk needs %llu",
                               ds->name, u.free, bytes);
    return 0;
}

int datastore_heartbeat_write(const struct datastore *ds, const char *host_id,
                              const char *hostname, unsigned long long seq,
                              struct error **errp)
{
    AUTOFREE char *path = xasprintf("%s/.strata/heartbeat/%s.json", ds->path, host_id);
    AUTOJSON json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i}", "host_id", host_id,
                                   "hostname", hostname, "datastore", ds->uuid, "time_ms",
                                   (json_int_t) storage_wall_ms(), "seq", (json_int_t) seq,
                                   "interval_s", (int) ds->heartbeat_interval_s);
    AUTOFREE char *text = json_dumps(j, JSON_SORT_KEYS);
    return file_write_atomic(path, text, strlen(text), 0644, errp);
}

json_t *datastore_heartbeats_read(const struct datastore *ds)
{
    json_t *arr = json_array();
    AUTOFREE char *dir = datastore_meta_path(ds, "heartbeat");
    DIR *d = opendir(dir);
    if (!d)
        return arr;
    struct dirent *de;
    long long now = storage_wall_ms();
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json"))
            continue;
        AUTOFREE char *path = xasprintf("%s/%s", dir, de->d_name);
        AUTOFREE char *text = file_read_all(path, 1 << 16, NULL, NULL);
        json_t *j = text ? json_loads(text, 0, NULL) : NULL;
        if (!json_is_object(j)) {
            json_decref(j);
            continue;
        }
        json_object_set_new(j, "age_ms",
                            json_integer(now - json_integer_value(json_object_get(j, "time_ms"))));
        json_array_append_new(arr, j);
    }
    closedir(d);
    return arr;
}
