/* test_storage_golden.c - golden test of the qemu-img command lines the
 * storage operations run.
 *
 * Each case runs real storage-library operations with command.h's dry-run
 * hook installed: every qemu-img invocation is recorded (one line, arguments
 * quoted when needed) instead of executed; "qemu-img info" is answered with
 * canned JSON and "qemu-img create" leaves a sparse file of the requested size
 * so eager zeroing can run on it.  The temporary datastore directory is
 * written as $DS.  The record is compared with tests/golden/storage/<case>.cmds;
 * lines "! <code>: <message>" record an operation's refusal.
 * REGENERATE=1 rewrites the files; a .cmds file without a case fails. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/blockjob.h"
#include "storage/image.h"
#include "storage/volume.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

static char ds[] = "/tmp/strata-golden-XXXXXX";
static char *out;           /* the record of the current case */
static json_t *infos;       /* basename -> canned "qemu-img info" JSON */
static int failures, n_tests;

static void emit(const char *line)
{
    /* The temporary directory reads $DS. */
    size_t dl = strlen(ds);
    char *buf = xmalloc(strlen(line) * 2 + 8);
    size_t k = 0;
    for (const char *p = line; *p;) {
        if (!strncmp(p, ds, dl)) {
            memcpy(buf + k, "$DS", 3);
            k += 3;
            p += dl;
        } else {
            buf[k++] = *p++;
        }
    }
    buf[k] = '\0';
    char *n = xasprintf("%s%s\n", out ? out : "", buf);
    free(buf);
    free(out);
    out = n;
}

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int dry_run(char *const *argv, char **stdout_text, void *opaque)
{
    (void) opaque;
    AUTOFREE char *line = NULL;
    size_t argc = 0;
    while (argv[argc])
        argc++;
    for (size_t i = 0; i < argc; i++) {
        const char *a = argv[i];
        bool quote = !*a || strpbrk(a, " '\"\\$") != NULL;
        char *n = xasprintf("%s%s%s%s%s", line ? line : "", i ? " " : "", quote ? "'" : "", a,
                            quote ? "'" : "");
        free(line);
        line = n;
    }
    emit(line);
    if (argc > 2 && !strcmp(argv[1], "info")) {
        json_t *j = json_object_get(infos, base_of(argv[argc - 1]));
        if (!j)
            return 1;
        *stdout_text = json_dumps(j, JSON_COMPACT);
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "create")) {
        /* The size is last (absent for an overlay); leave a sparse file. */
        char *end;
        unsigned long long size = strtoull(argv[argc - 1], &end, 10);
        const char *path = *end ? argv[argc - 1] : argv[argc - 2];
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd >= 0) {
            if (!*end && ftruncate(fd, (off_t) size) < 0)
                perror("ftruncate");
            close(fd);
        }
    }
    return 0;
}

static void refusal(struct error *err)
{
    if (!err) {
        emit("! (no error)");
        return;
    }
    AUTOFREE char *l = xasprintf("! %s: %s%s%s", err_code_to_string(err->code), err->message,
                                 err->field ? " [" : "", err->field ? err->field : "");
    AUTOFREE char *l2 = err->field ? xasprintf("%s]", l) : xstrdup(l);
    emit(l2);
    error_free(err);
}

static void step(const char *what)
{
    AUTOFREE char *l = xasprintf("# %s", what);
    emit(l);
}

static struct volume *vol(const char *json)
{
    bool imp;
    AUTOJSON json_t *j = json_loads(json, 0, NULL);
    struct error *err = NULL;
    struct volume *v = volume_from_request(j, &imp, &err);
    if (!v) {
        fprintf(stderr, "bad test volume: %s\n", err->message);
        exit(1);
    }
    return v;
}

static void clean_ds(void)
{
    rm_rf(ds, NULL);
    mkdir(ds, 0700);
}

/* ---- cases ---- */

static void case_volume_create(void)
{
    static const char *const reqs[] = {
        "{\"name\": \"thin\", \"capacity\": 1073741824}",
        "{\"name\": \"thinraw\", \"capacity\": 1073741824, \"format\": \"raw\"}",
        "{\"name\": \"lazy\", \"capacity\": 1073741824, \"provisioning\": \"thick-lazy\"}",
        "{\"name\": \"lazyraw\", \"capacity\": 1073741824, \"format\": \"raw\", "
        "\"provisioning\": \"thick-lazy\"}",
        "{\"name\": \"eager\", \"capacity\": 4194304, \"provisioning\": \"thick-eager\"}",
        "{\"name\": \"eagerraw\", \"capacity\": 4194304, \"format\": \"raw\", "
        "\"provisioning\": \"thick-eager\"}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
        struct volume *v = vol(reqs[i]);
        AUTOFREE char *what = xasprintf("create %s %s %s", v->name,
                                        disk_format_to_string(v->format),
                                        volume_prov_to_string(v->prov));
        step(what);
        struct error *err = NULL;
        if (volume_create_files(ds, v, NULL, &err) < 0)
            refusal(err);
        if (v->prov == VOLUME_THICK_EAGER) {
            AUTOFREE char *p = volume_root_path(ds, v);
            AUTOFREE char *l = xasprintf("# then every hole written with zeros: %s",
                                         image_allocated_bytes(p) >= (long long) v->capacity
                                             ? "all allocated" : "NOT ALLOCATED");
            emit(l);
        }
        volume_free(v);
    }
    step("create thin again: the file exists");
    struct volume *v = vol(reqs[0]);
    struct error *err = NULL;
    if (volume_create_files(ds, v, NULL, &err) < 0)
        refusal(err);
    volume_free(v);
}

static void case_linked_clone(void)
{
    struct volume *base = vol("{\"name\": \"base\", \"capacity\": 1073741824}");
    struct volume *c1 = vol("{\"name\": \"c1\", \"base\": \"base\"}");
    struct volume *c2 = vol("{\"name\": \"c2\", \"base\": \"base\", \"capacity\": 2147483648}");
    c1->capacity = base->capacity;
    step("base");
    volume_create_files(ds, base, NULL, NULL);
    step("clone c1 (the base's size)");
    volume_create_clone(ds, c1, base, NULL);
    step("clone c2, larger than its base");
    volume_create_clone(ds, c2, base, NULL);
    volume_free(base);
    volume_free(c1);
    volume_free(c2);
}

static void case_grow(void)
{
    static const char *const reqs[] = {
        "{\"name\": \"thin\", \"capacity\": 1073741824}",
        "{\"name\": \"lazy\", \"capacity\": 1073741824, \"provisioning\": \"thick-lazy\", "
        "\"format\": \"raw\"}",
        "{\"name\": \"eager\", \"capacity\": 1073741824, \"provisioning\": \"thick-eager\"}",
    };
    for (size_t i = 0; i < ARRAY_SIZE(reqs); i++) {
        struct volume *v = vol(reqs[i]);
        AUTOFREE char *what = xasprintf("grow %s (%s) offline to 2 GiB", v->name,
                                        volume_prov_to_string(v->prov));
        step(what);
        AUTOFREE char *p = volume_root_path(ds, v);
        volume_grow_file(p, v->format, v, v->capacity, 2ULL << 30, NULL);
        volume_free(v);
    }
}

static void add_info(const char *name, const char *fmt, const char *backing, const char *bfmt)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "filename", name, "format", fmt,
                          "virtual-size", (json_int_t) 1073741824, "actual-size",
                          (json_int_t) 200704);
    if (backing) {
        json_object_set_new(j, "backing-filename", json_string(backing));
        AUTOFREE char *full = backing[0] == '/' ? xstrdup(backing)
                                                : xasprintf("%s/%s", ds, backing);
        json_object_set_new(j, "full-backing-filename", json_string(full));
        if (bfmt)
            json_object_set_new(j, "backing-filename-format", json_string(bfmt));
    }
    json_object_set_new(infos, name, j);
}

static void touch(const char *name)
{
    AUTOFREE char *p = xasprintf("%s/%s", ds, name);
    file_write_atomic(p, "", 0, 0600, NULL);
}

static void case_chain_check(void)
{
    json_object_clear(infos);
    touch("v.qcow2");
    touch("v.s1.qcow2");
    touch("v.s2.qcow2");
    add_info("v.s2.qcow2", "qcow2", "v.s1.qcow2", "qcow2");
    add_info("v.s1.qcow2", "qcow2", "v.qcow2", "qcow2");
    add_info("v.qcow2", "qcow2", NULL, NULL);
    AUTOFREE char *top = xasprintf("%s/v.s2.qcow2", ds);
    step("a three-layer chain inside the datastore: every layer opened with its recorded "
         "format, no --backing-chain");
    struct error *err = NULL;
    struct image_chain c;
    if (image_chain_check(top, DISK_FORMAT_QCOW2, ds, "disks[0].path", &c, &err) == 0) {
        AUTOFREE char *l = xasprintf("# accepted: %zu layers", c.n);
        emit(l);
        image_chain_clear(&c);
    } else {
        refusal(err);
    }
    step("a backing file outside the datastore");
    touch("evil.qcow2");
    add_info("evil.qcow2", "qcow2", "/etc/passwd", "raw");
    AUTOFREE char *evil = xasprintf("%s/evil.qcow2", ds);
    err = NULL;
    if (image_chain_check(evil, DISK_FORMAT_QCOW2, ds, "disks[0].path", NULL, &err) < 0)
        refusal(err);
    step("a backing file given as a protocol");
    touch("nbd.qcow2");
    add_info("nbd.qcow2", "qcow2", "nbd://10.0.0.1/x", "raw");
    AUTOFREE char *nbd = xasprintf("%s/nbd.qcow2", ds);
    err = NULL;
    if (image_chain_check(nbd, DISK_FORMAT_QCOW2, ds, "import", NULL, &err) < 0)
        refusal(err);
    step("a backing file without a recorded format is never probed");
    touch("nofmt.qcow2");
    add_info("nofmt.qcow2", "qcow2", "v.qcow2", NULL);
    AUTOFREE char *nofmt = xasprintf("%s/nofmt.qcow2", ds);
    err = NULL;
    if (image_chain_check(nofmt, DISK_FORMAT_QCOW2, ds, "import", NULL, &err) < 0)
        refusal(err);
    step("an external data file outside the datastore");
    touch("data.qcow2");
    add_info("data.qcow2", "qcow2", NULL, NULL);
    json_object_set_new(json_object_get(infos, "data.qcow2"), "format-specific",
                        json_pack("{s:s, s:{s:s}}", "type", "qcow2", "data", "data-file",
                                  "/etc/passwd"));
    AUTOFREE char *data = xasprintf("%s/data.qcow2", ds);
    err = NULL;
    if (image_chain_check(data, DISK_FORMAT_QCOW2, ds, "import", NULL, &err) < 0)
        refusal(err);
}

static void case_snapshot_offline(void)
{
    AUTOFREE char *top = xasprintf("%s/v.qcow2", ds);
    AUTOFREE char *ov = xasprintf("%s/v.0a1b2c3d.qcow2", ds);
    step("take: a qcow2 overlay on the active layer, backing named relative");
    AUTOCOMMAND struct command *c = image_cmd_create_overlay(ov, "v.qcow2", DISK_FORMAT_QCOW2);
    image_run(c, NULL, NULL);
    step("take on a raw volume");
    AUTOFREE char *ov2 = xasprintf("%s/r.0a1b2c3d.qcow2", ds);
    AUTOCOMMAND struct command *c2 = image_cmd_create_overlay(ov2, "r.raw", DISK_FORMAT_RAW);
    image_run(c2, NULL, NULL);
    step("delete offline: the child is rebased (safe mode) onto the layer's parent");
    AUTOFREE char *child = xasprintf("%s/v.99887766.qcow2", ds);
    AUTOCOMMAND struct command *r = image_cmd_rebase(child, "v.qcow2", DISK_FORMAT_QCOW2);
    image_run_long(r, NULL, NULL);
    step("delete the bottom snapshot offline: the child takes in everything");
    AUTOCOMMAND struct command *r2 = image_cmd_rebase(child, NULL, DISK_FORMAT_QCOW2);
    image_run_long(r2, NULL, NULL);
    step("check");
    AUTOCOMMAND struct command *k = image_cmd_check(child, DISK_FORMAT_QCOW2);
    image_run(k, NULL, NULL);
}

static void case_migrate_cold(void)
{
    static const enum image_prealloc pre[] = { IMAGE_PREALLOC_OFF, IMAGE_PREALLOC_FALLOC,
                                               IMAGE_PREALLOC_FULL };
    AUTOFREE char *src = xasprintf("%s/v.1a2b3c4d.qcow2", ds);
    for (size_t i = 0; i < ARRAY_SIZE(pre); i++) {
        AUTOFREE char *what = xasprintf("cold copy, chain flattened, preallocation %s",
                                        image_prealloc_to_string(pre[i]));
        step(what);
        AUTOFREE char *dst = xasprintf("/var/lib/strata/ds2/v.%s.part",
                                       i == 1 ? "raw" : "qcow2");
        AUTOCOMMAND struct command *c = image_cmd_convert(
            src, DISK_FORMAT_QCOW2, dst, i == 1 ? DISK_FORMAT_RAW : DISK_FORMAT_QCOW2, pre[i]);
        image_run_long(c, NULL, NULL);
    }
}

/* ---- driver ---- */

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    { "volume-create", case_volume_create },
    { "linked-clone", case_linked_clone },
    { "grow", case_grow },
    { "chain-check", case_chain_check },
    { "snapshot-offline", case_snapshot_offline },
    { "migrate-cold", case_migrate_cold },
};

static void run_case(const char *dir, size_t i, bool regen)
{
    free(out);
    out = NULL;
    clean_ds();
    cases[i].fn();
    AUTOFREE char *path = xasprintf("%s/%s.cmds", dir, cases[i].name);
    n_tests++;
    if (regen) {
        file_write_atomic(path, out ? out : "", out ? strlen(out) : 0, 0644, NULL);
        printf("ok %d - %s (regenerated)\n", n_tests, cases[i].name);
        return;
    }
    AUTOFREE char *want = file_read_all(path, 1 << 20, NULL, NULL);
    if (!want || strcmp(want, out ? out : "")) {
        failures++;
        printf("not ok %d - %s\n# expected (%s):\n%s# got:\n%s", n_tests, cases[i].name, path,
               want ? want : "(missing)\n", out ? out : "");
    } else {
        printf("ok %d - %s\n", n_tests, cases[i].name);
    }
}

int main(void)
{
    const char *src = getenv("STRATA_SRCDIR");
    if (!src || !mkdtemp(ds)) {
        printf("Bail out! STRATA_SRCDIR unset or no temporary directory\n");
        return 1;
    }
    AUTOFREE char *dir = xasprintf("%s/tests/golden/storage", src);
    bool regen = getenv("REGENERATE") && !strcmp(getenv("REGENERATE"), "1");
    infos = json_object();
    command_set_dry_run(dry_run, NULL);
    image_set_synchronous(true);
    printf("1..%zu\n", ARRAY_SIZE(cases) + 1);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        run_case(dir, i, regen);
    /* Every .cmds file has a case. */
    DIR *d = opendir(dir);
    struct dirent *de;
    int unused = 0;
    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".cmds"))
            continue;
        bool known = false;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
            known |= !strncmp(de->d_name, cases[i].name, l - 5) && !cases[i].name[l - 5];
        if (!known) {
            printf("# %s has no case\n", de->d_name);
            unused++;
        }
    }
    if (d)
        closedir(d);
    n_tests++;
    printf("%s %d - every .cmds file has a case\n", unused ? "not ok" : "ok", n_tests);
    failures += unused;
    rm_rf(ds, NULL);
    json_decref(infos);
    free(out);
    return failures ? 1 : 0;
}
