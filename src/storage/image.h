/* image.h - disk image files: qemu-img, chain safety, zero-fill and wipe.
 *
 * Everything the storage module does to an image file goes through here.
 * Each qemu-img invocation is built by a pure image_cmd_*() function (an argv,
 * never a shell string) so golden tests pin it through command.h's dry-run
 * hook; every image is opened with an explicit format (-f, -F), and every
 * "qemu-img info" runs with resource limits (1 GiB of address space, 30 s of
 * CPU: a crafted image cannot exhaust the host) and its JSON is parsed, not
 * scraped.
 *
 * Chain safety (image_chain_check): walking from an image to the bottom of its
 * backing chain, every file - and every qcow2 external data file - must lie
 * inside the containment directory (the datastore) after symlinks are
 * resolved, must have the format recorded for it (the top's by the caller,
 * each backing file's in its overlay's header: a backing file without a
 * recorded format is refused rather than probed), and the chain must be at
 * most IMAGE_CHAIN_MAX deep.  qemu-img info is run without --backing-chain,
 * so no backing file is ever opened before it has been checked.
 *
 * Long qemu-img runs (convert, rebase) go through image_run_long(): qemu-img
 * with -p is spawned, its progress lines are read as it goes, and it is
 * killed when the caller cancels.  image_fill_holes() (eager zeroing) and
 * image_wipe() (secure delete) are done here with pwrite(), with progress.
 *
 * Neighbours: volume.c and snapshot.c decide what to run; blockjob.c does the
 * same things live through QMP. */
#ifndef STRATA_STORAGE_IMAGE_H
#define STRATA_STORAGE_IMAGE_H

#include <stdbool.h>
#include <sys/types.h>

#include "model/vm_def.h"
#include "util/command.h"
#include "util/error.h"

#define IMAGE_CHAIN_MAX 64
#define IMAGE_INFO_AS_LIMIT (1ULL << 30)
#define IMAGE_INFO_CPU_LIMIT 30

/* Provisioning of a new or grown image. */
enum image_prealloc {
    IMAGE_PREALLOC_OFF,       /* thin */
    IMAGE_PREALLOC_METADATA,  /* qcow2 metadata only */
    IMAGE_PREALLOC_FALLOC,    /* thick, lazy-zeroed: space reserved */
    IMAGE_PREALLOC_FULL,      /* thick, eager-zeroed: written with zeros */
};
const char *image_prealloc_to_string(enum image_prealloc p);

/* What "qemu-img info --output=json" says about one file. */
struct image_info {
    char *filename;
    int format;                         /* enum disk_format, -1 if not raw/qcow2 */
    unsigned long long virtual_size;
    unsigned long long actual_size;
    char *backing;                      /* backing file as written in the header, or NULL */
    char *full_backing;                 /* resolved by qemu-img, or NULL */
    int backing_format;                 /* enum disk_format; -1: not recorded/unknown */
    char *backing_format_name;          /* as recorded, or NULL */
    char *data_file;                    /* qcow2 external data file, or NULL */
    bool corrupt;
};
void image_info_clear(struct image_info *info);   /* Accepts zeroed structs. */

/* Parses qemu-img's JSON (pure; unit-tested). */
int image_info_parse(const char *json_text, struct image_info *out, struct error **errp);

/* Runs "qemu-img info -U -f FMT --output=json PATH" with limits and parses it.
 * -U: works while a VM has the image open. */
int image_info_get(const char *path, enum disk_format format, struct image_info *out,
                   struct error **errp);

/* One checked chain, top first. */
struct image_chain {
    struct image_info *layers;
    size_t n;
};
void image_chain_clear(struct image_chain *c);

/* Checks 'path' (format 'format') and its whole backing chain as described
 * above; 'root' is the containment directory (clean, absolute).  Fills 'out'
 * (may be NULL).  Refusals are ERR_INVALID_ARG naming 'field' and quoting the
 * offending file. */
int image_chain_check(const char *path, enum disk_format format, const char *root,
                      const char *field, struct image_chain *out, struct error **errp);

/* Pure argv builders; each returns a new command the caller frees.
 * 'backing' is written into the header as given (the storage module always
 * passes a name relative to the overlay's directory). */
struct command *image_cmd_info(const char *path, enum disk_format format);
struct command *image_cmd_check(const char *path, enum disk_format format);
struct command *image_cmd_create(const char *path, enum disk_format format,
                                 unsigned long long size, enum image_prealloc prealloc);
/* qcow2 overlay on 'backing' (format 'backing_format'); size of the backing. */
struct command *image_cmd_create_overlay(const char *path, const char *backing,
                                         enum disk_format backing_format);
struct command *image_cmd_resize(const char *path, enum disk_format format,
                                 unsigned long long size, enum image_prealloc prealloc);
/* Safe rebase of qcow2 'path' onto 'backing' (NULL: none, i.e. copy in
 * everything the old chain provides); -p for progress. */
struct command *image_cmd_rebase(const char *path, const char *backing,
                                 enum disk_format backing_format);
/* Copy 'src' (read through its chain) into a new 'dst'; -p for progress. */
struct command *image_cmd_convert(const char *src, enum disk_format src_format,
                                  const char *dst, enum disk_format dst_format,
                                  enum image_prealloc prealloc);

/* Runs a short qemu-img command (create, resize, check ...). */
int image_run(struct command *cmd, char **out, struct error **errp);

/* Progress reporting and cancellation for long operations.  Both callbacks
 * may be NULL. */
struct image_progress {
    void (*report)(void *opaque, int percent);
    bool (*cancelled)(void *opaque);
    void *opaque;
    int lo, hi;                         /* map 0..100% of this step into lo..hi */
};

/* Runs a long qemu-img command that prints -p progress.  On cancellation the
 * child is killed and ERR_BAD_STATE "cancelled" is returned. */
int image_run_long(struct command *cmd, const struct image_progress *p, struct error **errp);
/* Tests: run long commands through command_run() (so the dry-run hook sees
 * them), without progress. */
void image_set_synchronous(bool on);

/* Eager zeroing: writes zeros into every hole of 'path' below its size, so
 * every byte is allocated and zeroed; fdatasync at the end. */
int image_fill_holes(const char *path, const struct image_progress *p, struct error **errp);
/* Secure wipe: overwrites every allocated byte of 'path' with zeros (holes
 * hold no data) and fdatasyncs, in place (same inode, same blocks), before
 * the caller unlinks it.  '*wiped' (optional) receives the bytes written. */
int image_wipe(const char *path, const struct image_progress *p, unsigned long long *wiped,
               struct error **errp);
/* Bytes of data (not holes) in 'path'; -1 on error. */
long long image_allocated_bytes(const char *path);

/* Reserves [from, to) of 'path' (fallocate), and with 'zero' also writes
 * zeros there: keeps a grown raw image thick. */
int image_prealloc_range(const char *path, unsigned long long from, unsigned long long to,
                         bool zero, struct error **errp);

/* True if the file starts with the qcow2 magic "QFI\xfb". */
bool image_has_qcow2_magic(const char *path);

/* Validates a file name component used for images: [A-Za-z0-9_.-], no
 * leading '.', at most 128 bytes. */
bool image_name_ok(const char *name);

#endif
