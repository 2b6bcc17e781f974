/* volume.h - volumes: the named disks of a datastore.
 *
 * A volume's record lives in its datastore (so every host sharing the
 * directory sees it): <ds>/.strata/volumes/<name>.json.  Its image files
 * are <ds>/<name>.<fmt> (the root, recorded as 'file') plus, once snapshots
 * are taken, overlays <ds>/<name>.<id>.qcow2: every file of volume 'name' is
 * named "<name>." something, and volume names contain no '.', so the files of
 * a volume are found by prefix.  Overlays refer to their backing file by a
 * name relative to their own directory.
 *
 * Provisioning:  thin          qemu-img create, preallocation=off
 *                thick-lazy    preallocation=falloc (space reserved)
 *                thick-eager   qcow2: preallocation=metadata, raw: off, then
 *                              every hole written with zeros (image.c), so all
 *                              space is allocated and zeroed, with progress
 * Types:  normal (one VM), shared (raw + thick, opened share-rw by several).
 * Modes:  dependent (in snapshots), independent-persistent (left out of
 *         snapshots), independent-nonpersistent (a throw-away overlay is
 *         made at power-on and dropped at power-off).
 * Linked clones: a qcow2 overlay whose backing file is a read-only 'base'
 * volume of the same datastore; a base with clones cannot be deleted.
 *
 * A record's 'state' is "ready", or what a running or interrupted operation
 * is doing ("creating", "deleting", "migrating"); the agent module resumes or
 * cleans up interrupted ones when it starts. */
#ifndef STRATA_STORAGE_VOLUME_H
#define STRATA_STORAGE_VOLUME_H

#include <jansson.h>
#include <stdbool.h>

#include "model/vm_def.h"
#include "storage/image.h"
#include "util/error.h"
#include "util/uuid.h"

enum volume_prov { VOLUME_THIN, VOLUME_THICK_LAZY, VOLUME_THICK_EAGER, VOLUME_PROV__COUNT };
enum volume_type { VOLUME_NORMAL, VOLUME_SHARED, VOLUME_TYPE__COUNT };
enum volume_mode {
    VOLUME_DEPENDENT, VOLUME_INDEPENDENT_PERSISTENT, VOLUME_INDEPENDENT_NONPERSISTENT,
    VOLUME_MODE__COUNT
};
const char *volume_prov_to_string(enum volume_prov p);
int volume_prov_from_string(const char *s);
const char *volume_type_to_string(enum volume_type t);
int volume_type_from_string(const char *s);
const char *volume_mode_to_string(enum volume_mode m);
int volume_mode_from_string(const char *s);

#define VOLUME_MIN_CAPACITY (1ULL << 20)
#define VOLUME_MAX_CAPACITY (64ULL << 40)

struct volume {
    char *name;
    char uuid[UUID_STRLEN + 1];
    enum disk_format format;
    enum volume_prov prov;
    enum volume_type type;
    enum volume_mode mode;
    unsigned long long capacity;    /* virtual size, bytes */
    char *base;                     /* linked clone: base volume's name, or NULL */
    bool readonly;                  /* a base/template: never opened writable */
    char *file;                     /* root image file name in the datastore */
    char *state;                    /* "ready", "creating", "deleting", "migrating" */
    long long created_ms;
};

/* The API body of a new volume: name, capacity (bytes, multiple of 512),
 * format, provisioning, type, mode, base (clone), import (adopt the existing
 * file <name>.<format>).  Fills a new volume (state "creating", file set);
 * '*import' tells whether the file exists already. */
struct volume *volume_from_request(const json_t *j, bool *import, struct error **errp);
struct volume *volume_from_json(const json_t *j, struct error **errp);   /* record */
json_t *volume_to_json(const struct volume *v);
void volume_free(struct volume *v);   /* Accepts NULL. */
struct volume *volume_copy(const struct volume *v);

/* Records in <ds_path>/.strata/volumes. */
int volume_save(const char *ds_path, const struct volume *v, struct error **errp);
struct volume *volume_load(const char *ds_path, const char *name, struct error **errp);
int volume_remove_record(const char *ds_path, const char *name, struct error **errp);
struct volume **volume_list(const char *ds_path, size_t *n);
void volume_list_free(struct volume **v, size_t n);

/* "<ds_path>/<file>" (new string). */
char *volume_root_path(const char *ds_path, const struct volume *v);
/* Every file of volume 'name' in the datastore (root and overlays); new
 * NULL-terminated list of full paths. */
char **volume_files(const char *ds_path, const char *name);
/* The volume a file of the datastore belongs to ("<name>." prefix), or NULL
 * (new string). */
char *volume_name_of_file(const char *ds_path, const char *path);

/* The qemu-img step(s) of creating the volume's root file: what
 * volume_create_files() runs, for golden tests. */
enum image_prealloc volume_create_prealloc(const struct volume *v);

/* Creates the root file (thin/lazy/eager; eager fills with progress); a
 * failure removes what was created. */
int volume_create_files(const char *ds_path, const struct volume *v,
                        const struct image_progress *p, struct error **errp);
/* Creates a linked clone's qcow2 overlay on 'base'. */
int volume_create_clone(const char *ds_path, const struct volume *v, const struct volume *base,
                        struct error **errp);
/* Removes every file of the volume; 'secure' overwrites each one first.
 * '*wiped' (optional): bytes overwritten; '*wipe_ms' (optional): how long
 * the overwriting took (before the files are unlinked). */
int volume_delete_files(const char *ds_path, const char *name, bool secure,
                        const struct image_progress *p, unsigned long long *wiped,
                        long long *wipe_ms, struct error **errp);
/* Grows image 'path' (the volume's active layer, format 'format') offline to
 * 'capacity' keeping the volume's provisioning. */
int volume_grow_file(const char *path, enum disk_format format, const struct volume *v,
                     unsigned long long old_capacity, unsigned long long capacity,
                     struct error **errp);

long long storage_wall_ms(void);

#endif
