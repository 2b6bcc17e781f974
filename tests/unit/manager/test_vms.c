/* test_vms.c - the manager's VM specifications without agents: what a
 * creation request becomes (vm_prepare_create(): references resolved,
 * volumes named and reserved, MAC addresses generated and unique, template
 * deployments), the refusals and the field each names, and the agent
 * definition made from a specification (vm_agent_def(): disk paths, taps,
 * the VM id as uuid, nothing of the manager's own fields).
 *
 * Neighbours: src/manager/vms.c; tests/system/test-manager-e2e.sh and
 * test-manager-ops.sh drive the same code against a real agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "manager/inventory.h"
#include "manager/manager.h"
#include "manager/vms.h"
#include "util/json_util.h"
#include "util/mem.h"

struct fixture {
    char *dir;
    struct manager *m;
};

static void exec(struct fixture *f, const char *sql)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    assert_non_null(t);
    if (store_exec(t, sql, STORE_NO_ARGS, &err) < 0)
        fail_msg("%s: %s", sql, err->message);
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
}

static int64_t count(struct fixture *f, const char *sql)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    int64_t n = -1;
    assert_int_equal(store_query_int(t, sql, STORE_NO_ARGS, &n, &err), 1);
    return n;
}

static int setup(void **state)
{
    struct fixture *f = xzalloc(sizeof *f);
    char tmpl[] = "/tmp/strata-vms-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = xstrdup(tmpl);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    struct error *err = NULL;
    struct manager_config mc = { .db = db, .admin_password = "admin-password" };
    f->m = manager_open(&mc, &err);
    assert_non_null(f->m);
    exec(f, "INSERT INTO sites (id, name, created_at, updated_at) VALUES ('s1', 'dc1', 0, 0)");
    exec(f, "INSERT INTO clusters (id, site_id, name, created_at, updated_at) "
            "VALUES ('c1', 's1', 'c1', 0, 0)");
    exec(f, "INSERT INTO datastores (id, name, kind, created_at, updated_at) "
            "VALUES ('d1', 'ds1', 'local', 0, 0)");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    manager_close(f->m);
    AUTOFREE char *db = xasprintf("%s/m.db", f->dir);
    AUTOFREE char *wal = xasprintf("%s-wal", db), *shm = xasprintf("%s-shm", db);
    unlink(db);
    unlink(wal);
    unlink(shm);
    rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Runs vm_prepare_create() on 'body' in its own transaction (committed on
 * success).  Returns 0 and the id, or the error (the caller frees). */
static struct error *create(struct fixture *f, const char *body, char id[UUID_STRLEN + 1])
{
    struct error *err = NULL;
    AUTOJSON json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_WRITE, &err);
    assert_non_null(t);
    if (vm_prepare_create(t, b, "tester", id, &err) < 0)
        return err;
    assert_int_equal(store_commit(steal_pointer(&t), &err), 0);
    return NULL;
}

static json_t *spec_of(struct fixture *f, const char *id)
{
    AUTOERROR struct error *err = NULL;
    AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
    AUTOSTMT struct store_stmt *st = store_query(
        t, "SELECT definition FROM vms WHERE id = ?", STORE_ARGS(SV_TEXT(id)), &err);
    assert_int_equal(store_step(st, &err), 1);
    return json_loads(store_col_text(st, 0), 0, NULL);
}

static void test_create(void **state)
{
    struct fixture *f = *state;
    char id[UUID_STRLEN + 1];
    struct error *err = create(f, "{\"name\": \"web1\", \"memory\": 256, \"vcpus\": 2,"
                                  " \"disks\": [{\"datastore\": \"ds1\", \"size\": 1073741824},"
                                  "             {\"id\": \"logs\", \"datastore\": \"d1\","
                                  "              \"size\": 1048576, \"format\": \"raw\","
                                  "              \"provisioning\": \"thick-lazy\"}],"
                                  " \"nics\": [{}, {\"mac\": \"52:54:00:AA:BB:CC\","
                                  "             \"model\": \"e1000\"}]}", id);
    if (err)
        fail_msg("%s (%s)", err->message, err->field ? err->field : "-");
    AUTOJSON json_t *s = spec_of(f, id);
    json_t *d0 = json_array_get(json_object_get(s, "disks"), 0);
    json_t *d1 = json_array_get(json_object_get(s, "disks"), 1);
    /* Defaults: disk ids, qcow2, thin; volumes named after the VM. */
    assert_string_equal(json_string_value(json_object_get(d0, "id")), "disk0");
    assert_string_equal(json_string_value(json_object_get(d0, "volume")), "web1-disk0");
    assert_string_equal(json_string_value(json_object_get(d0, "format")), "qcow2");
    assert_string_equal(json_string_value(json_object_get(d0, "datastore_id")), "d1");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(d0, "origin"), "create"),
                            "provisioning")), "thin");
    assert_string_equal(json_string_value(json_object_get(d1, "volume")), "web1-logs");
    assert_string_equal(json_string_value(json_object_get(d1, "format")), "raw");
    /* MACs: generated in 52:54:00, given ones lowercased; both reserved. */
    json_t *n0 = json_array_get(json_object_get(s, "nics"), 0);
    json_t *n1 = json_array_get(json_object_get(s, "nics"), 1);
    assert_string_equal(json_string_value(json_object_get(n0, "id")), "nic0");
    assert_int_equal(strncmp(json_string_value(json_object_get(n0, "mac")), "52:54:00:", 9), 0);
    assert_string_equal(json_string_value(json_object_get(n1, "mac")), "52:54:00:aa:bb:cc");
    assert_int_equal(count(f, "SELECT COUNT(*) FROM vm_nics"), 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM disks WHERE path LIKE 'web1-%'"), 2);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM vms WHERE state = 'creating' AND "
                              "cluster_id = 'c1' AND host_id IS NULL"), 1);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM events WHERE type = 'vm.creating'"), 1);
}

/* Each refusal names its field and records nothing. */
static void test_refusals(void **state)
{
    struct fixture *f = *state;
    char id[UUID_STRLEN + 1];
    struct error *e0 = create(f, "{\"name\": \"taken\", \"memory\": 128, "
                                 "\"nics\": [{\"mac\": \"52:54:00:00:00:01\"}]}", id);
    assert_null(e0);
    static const struct { const char *body, *field; enum err_code code; } cases[] = {
        { "{\"memory\": 128}", "name", ERR_INVALID_ARG },
        { "{\"name\": \"a..b\", \"memory\": 128}", "name", ERR_INVALID_ARG },
        { "{\"name\": \"taken\", \"memory\": 128}", "name", ERR_CONFLICT },
        { "{\"name\": \"x\"}", "memory", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"color\": 1}", "color", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 8}", "memory", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"cluster\": \"nope\"}", "cluster",
          ERR_NOT_FOUND },
        { "{\"name\": \"x\", \"memory\": 128, \"host\": \"nope\"}", "host", ERR_NOT_FOUND },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"nods\", "
          "\"size\": 1048576}]}", "disks[0].datastore", ERR_NOT_FOUND },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\"}]}",
          "disks[0]", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\", "
          "\"size\": 1048576, \"base\": \"b\"}]}", "disks[0]", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\", "
          "\"size\": 1048576, \"format\": \"vmdk\"}]}", "disks[0].format", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\", "
          "\"volume\": \"../etc\"}]}", "disks[0].volume", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\", "
          "\"size\": 1048576, \"cache\": \"sometimes\"}]}", "disks[0].cache",
          ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"disks\": [{\"datastore\": \"ds1\", "
          "\"size\": 1048576}, {\"datastore\": \"ds1\", \"size\": 1048576, \"id\": \"disk0\"}]}",
          "disks[1].id", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"nics\": [{\"mac\": \"52:54:00:00:00:01\"}]}",
          "nics[0].mac", ERR_CONFLICT },
        { "{\"name\": \"x\", \"memory\": 128, \"nics\": [{\"mac\": \"01:00:5e:00:00:01\"}]}",
          "nics[0].mac", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"nics\": [{\"network\": {\"nat\": \"a,b\"}}]}",
          "nics[0].network.nat", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"nics\": [{\"network\": {\"dvs\": \"d\", "
          "\"portgroup\": \"p\", \"security_group\": \"nosuch\"}}]}",
          "nics[0].network.security_group", ERR_NOT_FOUND },
        { "{\"name\": \"x\", \"memory\": 128, \"boot\": {\"kernel\": \"/a/../b\"}}",
          "boot.kernel", ERR_INVALID_ARG },
        { "{\"name\": \"x\", \"memory\": 128, \"template\": \"nope\"}", "template",
          ERR_NOT_FOUND },
        { "{\"name\": \"x\", \"memory\": 128, \"clone\": \"linked\"}", "clone",
          ERR_INVALID_ARG },
    };
    int64_t vms = count(f, "SELECT COUNT(*) FROM vms");
    int64_t nics = count(f, "SELECT COUNT(*) FROM vm_nics");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        AUTOERROR struct error *err = create(f, cases[i].body, id);
        if (!err)
            fail_msg("case %zu accepted: %s", i, cases[i].body);
        if (!err->field || strcmp(err->field, cases[i].field) || err->code != cases[i].code)
            fail_msg("case %zu: field '%s' code %d (%s), wanted '%s' %d", i,
                     err->field ? err->field : "", err->code, err->message, cases[i].field,
                     cases[i].code);
    }
    assert_int_equal(count(f, "SELECT COUNT(*) FROM vms"), vms);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM vm_nics"), nics);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM disks"), 0);

    /* Two clusters: one must be named. */
    exec(f, "INSERT INTO clusters (id, site_id, name, created_at, updated_at) "
            "VALUES ('c2', 's1', 'c2', 0, 0)");
    AUTOERROR struct error *err = create(f, "{\"name\": \"y\", \"memory\": 128}", id);
    assert_non_null(err);
    assert_string_equal(err->field, "cluster");
    assert_null(create(f, "{\"name\": \"y\", \"memory\": 128, \"cluster\": \"c2\"}", id));
}

/* A deployment from a template: the template's hardware and NICs (new
 * addresses), disks as overlays (linked) or copies (full) of its volumes. */
static void test_template_deploy(void **state)
{
    struct fixture *f = *state;
    exec(f, "INSERT INTO templates (id, name, cluster_id, datastore_id, definition, created_at, "
            "updated_at) VALUES ('t1', 'tpl', 'c1', 'd1', '{\"name\":\"tpl\",\"memory\":512,"
            "\"vcpus\":2,\"disks\":[{\"id\":\"disk0\",\"datastore\":\"ds1\",\"datastore_id\":"
            "\"d1\",\"volume\":\"gold-disk0\",\"format\":\"raw\"}],\"nics\":[{\"id\":\"nic0\","
            "\"model\":\"virtio\"}]}', 0, 0)");
    char id[UUID_STRLEN + 1], id2[UUID_STRLEN + 1];
    assert_null(create(f, "{\"name\": \"lc1\", \"template\": \"tpl\"}", id));
    AUTOJSON json_t *s = spec_of(f, id);
    assert_int_equal(json_integer_value(json_object_get(s, "memory")), 512);
    json_t *d = json_array_get(json_object_get(s, "disks"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "volume")), "lc1-disk0");
    assert_string_equal(json_string_value(json_object_get(d, "format")), "qcow2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "origin"), "base")),
                        "gold-disk0");
    json_t *n = json_array_get(json_object_get(s, "nics"), 0);
    assert_int_equal(strncmp(json_string_value(json_object_get(n, "mac")), "52:54:00:", 9), 0);
    assert_int_equal(count(f, "SELECT COUNT(*) FROM vms WHERE template_id = 't1'"), 1);

    struct error *e2 = create(f, "{\"name\": \"fc1\", \"template\": \"tpl\", \"clone\": \"full\", "
                                 "\"memory\": 1024}", id2);
    if (e2)
        fail_msg("%s (%s)", e2->message, e2->field ? e2->field : "-");
    AUTOJSON json_t *s2 = spec_of(f, id2);
    assert_int_equal(json_integer_value(json_object_get(s2, "memory")), 1024);  /* override */
    d = json_array_get(json_object_get(s2, "disks"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "format")), "raw");
    assert_string_equal(json_string_value(json_object_get(json_object_get(d, "origin"),
                                                          "source")), "gold-disk0");
    /* Disks come from the template only. */
    char id3[UUID_STRLEN + 1];
    AUTOERROR struct error *err = create(f, "{\"name\": \"z\", \"template\": \"tpl\", \"disks\": "
                                            "[]}", id3);
    assert_non_null(err);
    assert_string_equal(err->field, "disks");
}

static char *ds_dir(void *opaque, const char *ds_id, struct error **errp)
{
    (void) opaque, (void) errp;
    return xasprintf("/srv/%s", ds_id);
}

/* The agent definition: paths in the host's datastore directory, stable
 * tap names, the VM id as uuid, none of the manager's own fields. */
static void test_agent_def(void **state)
{
    (void) state;
    const char *vm_id = "6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c";
    AUTOJSON json_t *spec = json_loads(
        "{\"name\": \"web1\", \"description\": \"x\", \"memory\": 256, \"vcpus\": 1,"
        " \"boot\": {\"kernel\": \"/k/vmlinuz\"},"
        " \"disks\": [{\"id\": \"disk0\", \"datastore\": \"ds1\", \"datastore_id\": \"d1\","
        "   \"volume\": \"web1-disk0\", \"format\": \"qcow2\", \"cache\": \"writeback\","
        "   \"origin\": {\"create\": {\"capacity\": 1048576, \"provisioning\": \"thin\"}}}],"
        " \"nics\": [{\"id\": \"nic0\", \"mac\": \"52:54:00:00:00:01\"},"
        "            {\"id\": \"nic1\", \"mac\": \"52:54:00:00:00:02\","
        "             \"network\": {\"nat\": \"default\"}}]}", 0, NULL);
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *def = vm_agent_def(spec, vm_id, ds_dir, NULL, &err);
    assert_non_null(def);
    assert_string_equal(json_string_value(json_object_get(def, "uuid")), vm_id);
    assert_null(json_object_get(def, "description"));
    json_t *d = json_array_get(json_object_get(def, "disks"), 0);
    assert_string_equal(json_string_value(json_object_get(d, "path")), "/srv/d1/web1-disk0.qcow2");
    assert_string_equal(json_string_value(json_object_get(d, "cache")), "writeback");
    assert_null(json_object_get(d, "origin"));
    assert_null(json_object_get(d, "datastore"));
    json_t *n0 = json_array_get(json_object_get(def, "nics"), 0);
    json_t *n1 = json_array_get(json_object_get(def, "nics"), 1);
    const char *t0 = json_string_value(json_object_get(n0, "tap"));
    const char *t1 = json_string_value(json_object_get(n1, "tap"));
    assert_int_equal(strncmp(t0, "st6f1c2b9e", 10), 0);
    assert_true(strlen(t0) <= 15 && strcmp(t0, t1) != 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(n1, "network"), "nat")),
                        "default");
    /* The same NIC id gives the same tap wherever it sits in the list. */
    json_array_remove(json_object_get(spec, "nics"), 0);
    AUTOJSON json_t *def2 = vm_agent_def(spec, vm_id, ds_dir, NULL, &err);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(def2, "nics"), 0),
                                          "tap")), t1);
    /* And the agent's own parser accepts it (with this datastore as a root). */
    assert_int_equal(vm_spec_check(spec, vm_id, &err), 0);
}

/* The list routes answer inv_list_text(): the same document as inv_list(),
 * with stored JSON spliced in and strings escaped by hand. */
static void test_list_text(void **state)
{
    struct fixture *f = *state;
    exec(f, "INSERT INTO templates (id, name, description, definition, created_at, updated_at) "
            "VALUES ('t1', 'tq', 'quote \" back \\ nl \n tab \t ctl \x01 utf8 \xc3\xa9\xe2\x82\xac', "
            "'{\"a\":[1,2,{\"b\":null}],\"s\":\"x\\\"y\"}', 1763780000123, 0)");
    exec(f, "INSERT INTO templates (id, name, definition, created_at, updated_at) "
            "VALUES ('t2', 'tr', 'not json', 0, 0)");
    exec(f, "INSERT INTO hosts (id, name, address, port, created_at, updated_at) "
            "VALUES ('h1', 'node1', '127.0.0.1', 1, 0, 0)");
    char id[UUID_STRLEN + 1];
    assert_null(create(f, "{\"name\": \"v1\", \"memory\": 128, \"nics\": [{}]}", id));
    const struct inv_kind *kinds[] = { &inv_templates, &inv_hosts, &inv_vms, &inv_events,
                                       &inv_clusters };
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        AUTOERROR struct error *err = NULL;
        AUTOTXN struct store_txn *t = store_begin(f->m->store, STORE_READ, &err);
        struct inv_page p = { .limit = 50 };
        AUTOJSON json_t *a = inv_list(t, kinds[i], &p, &err);
        size_t len = 0;
        AUTOFREE char *text = inv_list_text(t, kinds[i], &p, &len, &err);
        assert_non_null(a);
        assert_non_null(text);
        assert_int_equal(strlen(text), len);
        json_error_t je;
        AUTOJSON json_t *b = json_loadb(text, len, 0, &je);
        if (!b)
            fail_msg("%s: not JSON (%s): %s", kinds[i]->table, je.text, text);
        if (!json_equal(a, b)) {
            AUTOFREE char *sa = json_dumps(a, JSON_SORT_KEYS);
            fail_msg("%s differs:\n%s\n%s", kinds[i]->table, sa, text);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_template_deploy, setup, teardown),
        cmocka_unit_test(test_agent_def),
        cmocka_unit_test_setup_teardown(test_list_text, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
