/* test_storage.c - unit tests of the storage library: name and record
 * validation, datastore identity and overcommit, volume requests and files,
 * qemu-img JSON parsing, image chain safety (real qemu-img on temporary
 * files), zero-fill and wipe, and the QMP sequences of blockjob.c against a
 * scripted fake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/blockjob.h"
#include "storage/datastore.h"
#include "storage/image.h"
#include "storage/volume.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

static char tmpdir[] = "/tmp/strata-storage-test-XXXXXX";

static int setup(void **state)
{
    (void) state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    rm_rf(tmpdir, NULL);
    return 0;
}

static char *tpath(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static json_t *J(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void run(const char *const *argv)
{
    AUTOCOMMAND struct command *c = command_new(argv[0]);
    for (size_t i = 1; argv[i]; i++)
        command_add_arg(c, argv[i]);
    AUTOERROR struct error *err = NULL;
    if (command_run(c, NULL, NULL, NULL, &err) < 0)
        fail_msg("%s", err->message);
}

/* ---- names and records ---- */

static void test_names(void **state)
{
    (void) state;
    assert_int_equal(storage_name_validate("ds-1_a", "x", "name", NULL), 0);
    assert_int_equal(storage_name_validate("A9", "x", "name", NULL), 0);
    static const char *const bad[] = { "", "-a", "_a", "a.b", "a,b", "a/b", "..", "a b",
                                       "a:b", NULL };
    for (size_t i = 0; bad[i]; i++) {
        struct error *err = NULL;
        assert_int_equal(storage_name_validate(bad[i], "volume", "name", &err), -1);
        assert_string_equal(err->field, "name");
        error_free(err);
    }
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    assert_int_equal(storage_name_validate(longname, "x", "n", NULL), -1);
    assert_true(image_name_ok("v0.1234abcd.qcow2"));
    assert_false(image_name_ok(".hidden"));
    assert_false(image_name_ok("a..b"));
    assert_false(image_name_ok("a,b"));
}

static void test_datastore_json(void **state)
{
    (void) state;
    AUTOJSON json_t *ok = J("{\"name\": \"ds1\", \"path\": \"/srv/ds1\"}");
    struct datastore *ds = datastore_from_json(ok, false, NULL);
    assert_non_null(ds);
    assert_int_equal(ds->type, DATASTORE_LOCAL);
    assert_true(ds->overcommit_ratio == DATASTORE_DEFAULT_OVERCOMMIT);
    assert_true(uuid_is_valid(ds->uuid));
    datastore_free(ds);
    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{\"name\": \"d\", \"path\": \"/srv/../etc\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"relative\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"/srv/a,b\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"/srv/a:b\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"/etc/strata\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"/\"}", "path" },
        { "{\"name\": \"d\", \"path\": \"/srv/x\", \"type\": \"nfs\"}", "type" },
        { "{\"name\": \"d\", \"path\": \"/srv/x\", \"overcommit_ratio\": 0.5}", "overcommit_ratio" },
        { "{\"name\": \"d\", \"path\": \"/srv/x\", \"heartbeat_interval_s\": 0}",
          "heartbeat_interval_s" },
        { "{\"name\": \"d\", \"path\": \"/srv/x\", \"uuid\": \"x\"}", "uuid" },
        { "{\"name\": \"d e\", \"path\": \"/srv/x\"}", "name" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOJSON json_t *j = J(bad[i].body);
        struct error *err = NULL;
        assert_null(datastore_from_json(j, false, &err));
        assert_non_null(err);
        if (!err->field || strcmp(err->field, bad[i].field))
            fail_msg("case %zu: field '%s', want '%s' (%s)", i, err->field ? err->field : "",
                     bad[i].field, err->message);
        error_free(err);
    }
}

static void test_datastore_records(void **state)
{
    (void) state;
    AUTOFREE char *state_dir = tpath("state");
    AUTOFREE char *dir = tpath("dsA");
    mkdir(dir, 0700);
    AUTOFREE char *body = xasprintf("{\"name\": \"dsA\", \"path\": \"%s\", \"type\": \"shared\"}",
                                    dir);
    AUTOJSON json_t *j = J(body);
    struct datastore *ds = datastore_from_json(j, false, NULL);
    assert_non_null(ds);
    assert_int_equal(datastore_prepare_dir(ds, NULL), 0);
    assert_int_equal(datastore_save(ds, state_dir, NULL), 0);
    /* A second host registering the same directory adopts its identity. */
    struct datastore *other = datastore_from_json(j, false, NULL);
    assert_string_not_equal(other->uuid, ds->uuid);
    assert_int_equal(datastore_prepare_dir(other, NULL), 0);
    assert_string_equal(other->uuid, ds->uuid);
    /* ... but not as another type. */
    other->type = DATASTORE_LOCAL;
    struct error *err = NULL;
    assert_int_equal(datastore_prepare_dir(other, &err), -1);
    assert_int_equal(err->code, ERR_CONFLICT);
    error_free(err);
    datastore_free(other);
    size_t n;
    struct datastore **all = datastore_load_all(state_dir, &n);
    assert_int_equal(n, 1);
    assert_string_equal(all[0]->uuid, ds->uuid);
    assert_int_equal(all[0]->type, DATASTORE_SHARED);
    datastore_free(all[0]);
    free(all);
    /* Heartbeat record, read back with its age. */
    assert_int_equal(datastore_heartbeat_write(ds, "host-1", "h1", 7, NULL), 0);
    AUTOJSON json_t *hb = datastore_heartbeats_read(ds);
    assert_int_equal(json_array_size(hb), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(hb, 0), "seq")), 7);
    /* Overcommit: provisioned counts volume records. */
    struct datastore_usage u;
    assert_int_equal(datastore_usage_get(ds, &u, NULL), 0);
    assert_true(u.capacity > 0);
    assert_int_equal(u.provisioned, 0);
    AUTOJSON json_t *vr = J("{\"name\": \"big\", \"capacity\": 1048576}");
    bool imp;
    struct volume *v = volume_from_request(vr, &imp, NULL);
    assert_non_null(v);
    v->capacity = u.capacity;   /* a thin volume as large as the filesystem */
    assert_int_equal(volume_save(ds->path, v, NULL), 0);
    ds->overcommit_ratio = 1.5;
    assert_int_equal(datastore_check_alloc(ds, u.capacity / 4, false, "capacity", NULL), 0);
    err = NULL;
    assert_int_equal(datastore_check_alloc(ds, u.capacity, false, "capacity", &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    assert_string_equal(err->field, "capacity");
    error_free(err);
    ds->overcommit_ratio = 100;
    err = NULL;
    assert_int_equal(datastore_check_alloc(ds, u.capacity * 2, true, "capacity", &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);   /* thick: beyond free space */
    error_free(err);
    assert_int_equal(datastore_usage_get(ds, &u, NULL), 0);
    assert_int_equal(u.volumes, 1);
    volume_free(v);
    datastore_free(ds);
}

static void test_volume_requests(void **state)
{
    (void) state;
    bool imp = false;
    AUTOJSON json_t *a = J("{\"name\": \"v1\", \"capacity\": 1048576, \"format\": \"raw\", "
                           "\"provisioning\": \"thick-eager\"}");
    struct volume *v = volume_from_request(a, &imp, NULL);
    assert_non_null(v);
    assert_string_equal(v->file, "v1.raw");
    assert_string_equal(v->state, "creating");
    assert_int_equal(volume_create_prealloc(v), IMAGE_PREALLOC_OFF);   /* then filled */
    v->format = DISK_FORMAT_QCOW2;
    assert_int_equal(volume_create_prealloc(v), IMAGE_PREALLOC_METADATA);
    v->prov = VOLUME_THICK_LAZY;
    assert_int_equal(volume_create_prealloc(v), IMAGE_PREALLOC_FALLOC);
    /* Round trip through the record. */
    AUTOJSON json_t *rec = volume_to_json(v);
    struct volume *back = volume_from_json(rec, NULL);
    assert_non_null(back);
    assert_string_equal(back->uuid, v->uuid);
    assert_int_equal(back->prov, VOLUME_THICK_LAZY);
    volume_free(back);
    volume_free(v);
    static const struct {
        const char *body, *field;
    } bad[] = {
        { "{\"name\": \"v\"}", "capacity" },
        { "{\"name\": \"v\", \"capacity\": 1000}", "capacity" },
        { "{\"name\": \"v\", \"capacity\": 1048577}", "capacity" },
        { "{\"name\": \"v\", \"capacity\": 1048576, \"format\": \"vmdk\"}", "format" },
        { "{\"name\": \"v\", \"capacity\": 1048576, \"type\": \"shared\"}", "type" },
        { "{\"name\": \"v\", \"capacity\": 1048576, \"type\": \"shared\", \"format\": \"raw\", "
          "\"provisioning\": \"thick-lazy\"}", "mode" },
        { "{\"name\": \"v\", \"base\": \"b\", \"format\": \"raw\"}", "format" },
        { "{\"name\": \"v\", \"base\": \"b\", \"import\": true}", "base" },
        { "{\"name\": \"v\", \"base\": \"../b\"}", "base" },
        { "{\"name\": \"v.1\", \"capacity\": 1048576}", "name" },
        { "{\"name\": \"v\", \"capacity\": 1048576, \"x\": 1}", "x" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOJSON json_t *j = J(bad[i].body);
        struct error *err = NULL;
        assert_null(volume_from_request(j, &imp, &err));
        if (!err || !err->field || strcmp(err->field, bad[i].field))
            fail_msg("case %zu: field '%s', want '%s' (%s)", i, err && err->field ? err->field : "",
                     bad[i].field, err ? err->message : "");
        error_free(err);
    }
    AUTOJSON json_t *badrec = J("{\"name\": \"v\", \"file\": \"w.qcow2\", \"capacity\": 1}");
    assert_null(volume_from_json(badrec, NULL));   /* a file of another volume */
}

static void test_volume_files(void **state)
{
    (void) state;
    AUTOFREE char *dir = tpath("dsF");
    mkdir(dir, 0700);
    static const char *const names[] = { "v.qcow2", "v.1234.qcow2", "vv.qcow2", "v", "w.raw" };
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        AUTOFREE char *p = xasprintf("%s/%s", dir, names[i]);
        assert_int_equal(file_write_atomic(p, "x", 1, 0600, NULL), 0);
    }
    AUTOSTRV char **files = volume_files(dir, "v");
    assert_int_equal(strv_len(files), 2);
    AUTOFREE char *p1 = xasprintf("%s/v.1234.qcow2", dir);
    AUTOFREE char *name = volume_name_of_file(dir, p1);
    assert_string_equal(name, "v");
    AUTOFREE char *deeper = xasprintf("%s/sub/v.qcow2", dir);
    assert_null(volume_name_of_file(dir, deeper));
    assert_null(volume_name_of_file("/other", p1));
}

/* ---- images ---- */

static void test_info_parse(void **state)
{
    (void) state;
    const char *text = "{\"virtual-size\": 67108864, \"filename\": \"/ds/v.1.qcow2\", "
                       "\"format\": \"qcow2\", \"actual-size\": 200704, "
                       "\"backing-filename\": \"v.qcow2\", "
                       "\"full-backing-filename\": \"/ds/v.qcow2\", "
                       "\"backing-filename-format\": \"qcow2\", \"format-specific\": "
                       "{\"type\": \"qcow2\", \"data\": {\"data-file\": \"/x/d\", "
                       "\"corrupt\": false}}}";
    struct image_info info;
    assert_int_equal(image_info_parse(text, &info, NULL), 0);
    assert_int_equal(info.format, DISK_FORMAT_QCOW2);
    assert_int_equal(info.virtual_size, 67108864);
    assert_string_equal(info.backing, "v.qcow2");
    assert_string_equal(info.full_backing, "/ds/v.qcow2");
    assert_int_equal(info.backing_format, DISK_FORMAT_QCOW2);
    assert_string_equal(info.data_file, "/x/d");
    image_info_clear(&info);
    struct error *err = NULL;
    assert_int_equal(image_info_parse("{\"format\": \"qcow2\"}", &info, &err), -1);
    error_free(err);
    err = NULL;
    assert_int_equal(image_info_parse("not json", &info, &err), -1);
    assert_int_equal(err->code, ERR_QEMU);
    error_free(err);
    assert_int_equal(image_info_parse("{\"format\": \"vmdk\", \"virtual-size\": 1}", &info, NULL),
                     0);
    assert_int_equal(info.format, -1);
    image_info_clear(&info);
}

static void test_chain_check(void **state)
{
    (void) state;
    AUTOFREE char *ds = tpath("dsC");
    AUTOFREE char *out = tpath("outside.raw");
    mkdir(ds, 0700);
    AUTOFREE char *base = xasprintf("%s/b.qcow2", ds);
    AUTOFREE char *top = xasprintf("%s/b.1.qcow2", ds);
    AUTOFREE char *evil = xasprintf("%s/evil.qcow2", ds);
    AUTOFREE char *raw = xasprintf("%s/r.raw", ds);
    AUTOFREE char *link = xasprintf("%s/l.raw", ds);
    AUTOFREE char *nofmt = xasprintf("%s/nofmt.qcow2", ds);
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", base, "4M", NULL });
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                                "b.qcow2", top, NULL });
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "raw", out, "1M", NULL });
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                                out, evil, NULL });
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "raw", raw, "1M", NULL });
    assert_int_equal(symlink(out, link), 0);

    struct image_chain chain;
    assert_int_equal(image_chain_check(top, DISK_FORMAT_QCOW2, ds, "path", &chain, NULL), 0);
    assert_int_equal(chain.n, 2);
    assert_int_equal(chain.layers[1].format, DISK_FORMAT_QCOW2);
    image_chain_clear(&chain);

    struct error *err = NULL;
    assert_int_equal(image_chain_check(evil, DISK_FORMAT_QCOW2, ds, "disks[0].path", NULL, &err),
                     -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    assert_string_equal(err->field, "disks[0].path");
    assert_non_null(strstr(err->message, "outside the datastore"));
    error_free(err);

    err = NULL;
    assert_int_equal(image_chain_check(link, DISK_FORMAT_RAW, ds, "path", NULL, &err), -1);
    assert_non_null(strstr(err->message, "outside the datastore"));
    error_free(err);

    err = NULL;   /* recorded qcow2, really raw */
    assert_int_equal(image_chain_check(raw, DISK_FORMAT_QCOW2, ds, "path", NULL, &err), -1);
    assert_int_equal(err->code, ERR_INVALID_ARG);
    error_free(err);
    assert_true(image_has_qcow2_magic(base));
    assert_false(image_has_qcow2_magic(raw));

    /* A backing file whose format is not recorded: the header extension is
     * renamed so qemu ignores it; the chain is refused, never probed. */
    run((const char *const[]) { "qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                                "b.qcow2", nofmt, NULL });
    {
        int fd = open(nofmt, O_RDWR);
        assert_true(fd >= 0);
        unsigned char buf[4096];
        assert_int_equal(pread(fd, buf, sizeof buf, 0), sizeof buf);
        static const unsigned char magic[4] = { 0xe2, 0x79, 0x2a, 0xca };
        bool patched = false;
        for (size_t i = 72; i + 4 <= sizeof buf && !patched; i++)
            if (!memcmp(buf + i, magic, 4)) {
                static const unsigned char other[4] = { 0x12, 0x34, 0x56, 0x78 };
                assert_int_equal(pwrite(fd, other, 4, (off_t) i), 4);
                patched = true;
            }
        close(fd);
        assert_true(patched);
    }
    err = NULL;
    assert_int_equal(image_chain_check(nofmt, DISK_FORMAT_QCOW2, ds, "path", NULL, &err), -1);
    assert_non_null(strstr(err->message, "without a format"));
    error_free(err);
}

static int last_pct;
static void note_pct(void *opaque, int pct)
{
    (void) opaque;
    assert_true(pct >= last_pct);
    last_pct = pct;
}

static void test_fill_and_wipe(void **state)
{
    (void) state;
    AUTOFREE char *p = tpath("fill.raw");
    int fd = open(p, O_CREAT | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 24 << 20), 0);
    /* Some data in the middle: fill must keep it. */
    char data[4096];
    memset(data, 'Q', sizeof data);
    assert_int_equal(pwrite(fd, data, sizeof data, 8 << 20), sizeof data);
    fsync(fd);
    close(fd);
    assert_true(image_allocated_bytes(p) < (1 << 20));
    struct image_progress prog = { .report = note_pct, .lo = 0, .hi = 100 };
    last_pct = 0;
    assert_int_equal(image_fill_holes(p, &prog, NULL), 0);
    assert_int_equal(last_pct, 100);
    assert_true(image_allocated_bytes(p) >= (24 << 20));
    fd = open(p, O_RDONLY);
    char back[4096];
    assert_int_equal(pread(fd, back, sizeof back, 8 << 20), sizeof back);
    assert_memory_equal(back, data, sizeof data);
    close(fd);

    unsigned long long wiped = 0;
    assert_int_equal(image_wipe(p, NULL, &wiped, NULL), 0);
    assert_true(wiped >= (24ULL << 20));
    fd = open(p, O_RDONLY);
    assert_int_equal(pread(fd, back, sizeof back, 8 << 20), sizeof back);
    close(fd);
    char zero[4096] = { 0 };
    assert_memory_equal(back, zero, sizeof zero);

    /* A sparse file: only its data extent is written. */
    AUTOFREE char *s = tpath("sparse.raw");
    fd = open(s, O_CREAT | O_RDWR, 0600);
    assert_int_equal(ftruncate(fd, 64 << 20), 0);
    assert_int_equal(pwrite(fd, data, sizeof data, 32 << 20), sizeof data);
    fsync(fd);
    close(fd);
    assert_int_equal(image_wipe(s, NULL, &wiped, NULL), 0);
    assert_true(wiped >= sizeof data && wiped < (1 << 20));
    assert_int_equal(image_prealloc_range(s, 64 << 20, 80 << 20, true, NULL), 0);
    struct stat st;
    assert_int_equal(stat(s, &st), 0);
    assert_int_equal(st.st_size, 80 << 20);
}

/* ---- blockjob.c against a scripted fake ---- */

struct fake {
    json_t *log;                  /* commands received */
    const char *fail_cmd;         /* this command answers an error */
    json_t *replies;              /* command -> list of replies (consumed in order) */
};

static json_t *fake_call(void *ctx, const char *cmd, json_t *args, int timeout_ms,
                         struct error **errp)
{
    (void) timeout_ms;
    struct fake *f = ctx;
    json_array_append_new(f->log, json_pack("{s:s, s:o}", "execute", cmd, "arguments",
                                            args ? args : json_object()));
    if (f->fail_cmd && !strcmp(f->fail_cmd, cmd))
        return error_set(errp, ERR_QEMU, "%s failed", cmd), NULL;
    json_t *list = json_object_get(f->replies, cmd);
    if (json_array_size(list)) {
        json_t *r = json_incref(json_array_get(list, 0));
        if (json_array_size(list) > 1)
            json_array_remove(list, 0);
        return r;
    }
    return json_object();
}

static const char *cmd_at(struct fake *f, size_t i)
{
    return json_string_value(json_object_get(json_array_get(f->log, i), "execute"));
}

static void test_blockjob_snapshot(void **state)
{
    (void) state;
    struct fake f = { .log = json_array(), .replies = json_object() };
    struct blockjob_qmp q = { fake_call, &f };
    struct blockjob_snap s[2] = {
        { "drive-d0", "/ds/v.1.qcow2", "sn1-0", "sf1-0" },
        { "drive-d1", "/ds/w.1.qcow2", "sn1-1", "sf1-1" },
    };
    long long ms = -1;
    assert_int_equal(blockjob_snapshot(&q, s, 2, &ms, NULL), 0);
    assert_true(ms >= 0);
    assert_int_equal(json_array_size(f.log), 3);
    assert_string_equal(cmd_at(&f, 0), "blockdev-add");
    assert_true(json_is_null(json_object_get(
        json_object_get(json_array_get(f.log, 0), "arguments"), "backing")));
    assert_string_equal(cmd_at(&f, 2), "transaction");
    json_t *acts = json_object_get(json_object_get(json_array_get(f.log, 2), "arguments"),
                                   "actions");
    assert_int_equal(json_array_size(acts), 2);
    json_decref(f.log);
    /* A failed transaction deletes what was added, newest first. */
    f.log = json_array();
    f.fail_cmd = "transaction";
    assert_int_equal(blockjob_snapshot(&q, s, 2, NULL, NULL), -1);
    assert_string_equal(cmd_at(&f, 3), "blockdev-del");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(f.log, 3), "arguments"), "node-name")),
                        "sn1-1");
    assert_int_equal(json_array_size(f.log), 7);
    json_decref(f.log);
    json_decref(f.replies);
}

static void test_blockjob_nodes_and_jobs(void **state)
{
    (void) state;
    struct fake f = { .log = json_array(), .replies = json_object() };
    struct blockjob_qmp q = { fake_call, &f };
    json_object_set_new(f.replies, "query-named-block-nodes", J(
        "[[{\"node-name\": \"#block1\", \"drv\": \"qcow2\", \"file\": \"/ds/v.qcow2\"},"
        "  {\"node-name\": \"#block2\", \"drv\": \"file\", \"file\": \"/ds/v.qcow2\"},"
        "  {\"node-name\": \"drive-d0\", \"drv\": \"qcow2\", \"file\": "
        "\"json:{\\\"backing\\\": {}, \\\"driver\\\": \\\"qcow2\\\", \\\"file\\\": "
        "{\\\"driver\\\": \\\"file\\\", \\\"filename\\\": \\\"/ds/v.1.qcow2\\\"}}\"}]]"));
    AUTOFREE char *a = blockjob_node_of_file(&q, "/ds/v.qcow2", false, NULL);
    assert_string_equal(a, "#block1");
    AUTOFREE char *b = blockjob_node_of_file(&q, "/ds/v.qcow2", true, NULL);
    assert_string_equal(b, "#block2");
    AUTOFREE char *c = blockjob_node_of_file(&q, "/ds/v.1.qcow2", false, NULL);
    assert_string_equal(c, "drive-d0");
    struct error *err = NULL;
    assert_null(blockjob_node_of_file(&q, "/ds/none", false, &err));
    assert_int_equal(err->code, ERR_NOT_FOUND);
    error_free(err);

    json_object_set_new(f.replies, "query-block", J(
        "[[{\"qdev\": \"/machine/peripheral/d0/virtio-backend\", "
        "   \"inserted\": {\"node-name\": \"sn1-0\"}}]]"));
    AUTOFREE char *top = blockjob_top_node(&q, "d0", NULL);
    assert_string_equal(top, "sn1-0");

    /* A stream that fails: the error message of the concluded job. */
    json_object_set_new(f.replies, "query-jobs", J(
        "[[{\"id\": \"j1\", \"status\": \"running\", \"current-progress\": 1, "
        "\"total-progress\": 4}],"
        " [{\"id\": \"j1\", \"status\": \"concluded\", \"error\": \"No space left on device\", "
        "\"current-progress\": 2, \"total-progress\": 4}]]"));
    err = NULL;
    assert_int_equal(blockjob_stream(&q, "j1", "drive-d0", "#block1", "v.qcow2", NULL, &err), -1);
    assert_int_equal(err->code, ERR_NO_SPACE);
    error_free(err);
    bool dismissed = false;
    for (size_t i = 0; i < json_array_size(f.log); i++)
        dismissed |= !strcmp(cmd_at(&f, i), "job-dismiss");
    assert_true(dismissed);
    json_decref(f.log);
    json_decref(f.replies);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_datastore_json),
        cmocka_unit_test(test_datastore_records),
        cmocka_unit_test(test_volume_requests),
        cmocka_unit_test(test_volume_files),
        cmocka_unit_test(test_info_parse),
        cmocka_unit_test(test_chain_check),
        cmocka_unit_test(test_fill_and_wipe),
        cmocka_unit_test(test_blockjob_snapshot),
        cmocka_unit_test(test_blockjob_nodes_and_jobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
