/* test_cli.c - the pure parts of the `strata` CLI (src/cli): the command
 * line of every verb (accepted forms give the right REST request, refused
 * ones a usage error, exit status 2), sizes, tables and "Field: value"
 * listings, the progress line, connection URLs, the config file, the VM
 * spec built by `strata create`, and the exit status of API errors.
 *
 * No manager runs here: plans are checked as (method, path, body); the real
 * daemon is exercised by tests/system/test-cli.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/mem.h"

/* Splits 'line' on spaces into argv (argv[0] = "strata"); a '~' inside a
 * word stands for a space. */
struct argv_buf {
    char *copy;
    char *argv[64];
    int argc;
};

static void split(struct argv_buf *b, const char *line)
{
    b->copy = xstrdup(line);
    b->argc = 0;
    b->argv[b->argc++] = (char *) "strata";
    char *save = NULL;
    for (char *t = strtok_r(b->copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        for (char *p = t; *p; p++)
            if (*p == '~')
                *p = ' ';
        b->argv[b->argc++] = t;
    }
    b->argv[b->argc] = NULL;
}

/* Parses and plans 'line'; returns 0 or -1 with '*err'. */
static int plan_line(const char *line, struct argv_buf *b, struct cli_args *a,
                     struct cli_request *rq, struct error **err)
{
    split(b, line);
    memset(rq, 0, sizeof *rq);
    if (cli_parse(b->argc, b->argv, a, err) < 0)
        return -1;
    if (!a->verb->plan)
        return 0;
    return a->verb->plan(a, rq, err);
}

/* ---- argument parsing ---------------------------------------------------- */

static void test_parse_basics(void **state)
{
    (void) state;
    struct argv_buf b;
    struct cli_args a;
    AUTOERROR struct error *err = NULL;

    split(&b, "--json list --all --connect unix:/x.sock");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    assert_string_equal(a.verb->name, "list");
    assert_true(a.json);
    assert_true(cli_flag(&a, "all"));
    assert_string_equal(a.connect, "unix:/x.sock");
    free(b.copy);

    split(&b, "attach-disk web1 --datastore=ds1 --size 1G --no-wait --ca=/ca.pem");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    assert_string_equal(cli_opt(&a, "datastore"), "ds1");
    assert_string_equal(cli_opt(&a, "size"), "1G");
    assert_null(cli_opt(&a, "bus"));
    assert_true(a.no_wait);
    assert_string_equal(a.ca, "/ca.pem");
    assert_int_equal(a.npos, 1);
    assert_string_equal(a.pos[0], "web1");
    free(b.copy);

    /* "--" ends the options: a VM may be called "-x"... at least it parses. */
    split(&b, "dominfo -- --weird");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    assert_string_equal(a.pos[0], "--weird");
    free(b.copy);

    /* Repeatable options keep every value in order. */
    split(&b, "create --name a --disk datastore=d1,size=1G --disk datastore=d2,size=2G");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    size_t it = 0;
    assert_string_equal(cli_opt_next(&a, "disk", &it), "datastore=d1,size=1G");
    assert_string_equal(cli_opt_next(&a, "disk", &it), "datastore=d2,size=2G");
    assert_null(cli_opt_next(&a, "disk", &it));
    free(b.copy);

    split(&b, "--help");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    assert_true(a.help);
    assert_null(a.verb);
    free(b.copy);
    split(&b, "start -h");
    assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
    assert_true(a.help);
    assert_string_equal(a.verb->name, "start");
    free(b.copy);
}

/* Command lines refused before any request: usage errors, exit status 2. */
static const char *const refused[] = {
    "pool-create ds1 --host node1",                 /* no --path */
    "pool-create ds1 --path rel/dir --host node1",   /* not absolute */
    "pool-create ds1 --path /srv/ds1",               /* no --host */
    "pool-create ds1 --path /srv/ds1 --host node1 --type nfs",
    "pool-create ds1 --path /srv/ds1 --host node1 --overcommit-ratio 0.5",
    "nat-create n1 --subnet 10.0.0.0/24",            /* no --host */
    "nat-create a,b --host node1",
    "",                                   /* no verb */
    "frobnicate",                         /* unknown verb */
    "list --bogus",                       /* unknown option */
    "list -x",
    "list extra",                         /* too many arguments */
    "list --all --all",                   /* twice */
    "list --all=yes",                     /* a flag with a value */
    "list --limit",                       /* a value missing */
    "list --limit 0",
    "list --limit=",
    "list --connect",
    "dominfo",                            /* missing argument */
    "dominfo a b",
    "dominfo bad/name",                   /* names checked before a URL */
    "dominfo ..",
    "dominfo .hidden",
    "dominfo a..b",
    "start",
    "start web%2f1",
    "shutdown web1 --timeout 0",
    "shutdown web1 --timeout soon",
    "setmem web1",
    "setmem web1 lots",
    "setmem web1 0",
    "setmem web1 1536K",                  /* not whole MiB */
    "setmem web1 5X",
    "setvcpus web1 0",
    "setvcpus web1 two",
    "attach-disk web1 --size 1G",         /* no datastore */
    "attach-disk web1 --datastore ds1",   /* no size/volume/base */
    "attach-disk web1 --datastore ds1 --size 1G --volume v1",
    "attach-disk web1 --datastore ds1 --size 0",
    "attach-disk web1 --datastore ds1 --size 1G --format vmdk",
    "attach-disk web1 --datastore ds1 --size 1G --provisioning fat",
    "attach-disk web1 --datastore d/1 --size 1G",
    "detach-disk web1",
    "attach-interface web1",
    "attach-interface web1 --nat default --dvs d1 --portgroup p",
    "attach-interface web1 --dvs d1",
    "attach-interface web1 --nat default --mac 52:54:00:zz:00:01",
    "change-media web1 cd0",              /* neither path nor --eject */
    "change-media web1 cd0 /a.iso --eject",
    "change-media web1 cd0 relative.iso",
    "snapshot-create-as web1",            /* no name */
    "snapshot-create-as web1 s1 --name s2",
    "snapshot-create-as web1 s1 --kind everything",
    "snapshot-revert web1",
    "snapshot-delete web1 s/1",
    "clone web1",
    "clone web1 bad/name",
    "deploy tpl",
    "deploy tpl vm1 --linked --full",
    "template-create web1 --name bad/name",
    "vol-create-as ds1 v1",
    "vol-create-as ds1 v1 1G --allocation fat",
    "vol-create-as ds1 v1 1G --format vmdk",
    "vol-create-as ds1 v1 1G --allocation thin --provisioning thin",
    "vol-create-as ds1 v1 lots",
    "vol-create-as ds1 v1 99999999999T",
    "vol-resize ds1 v1",
    "vol-delete ds1",
    "host-maintenance node1 maybe",
    "join-token-create --expires 5",
    "join-token-create --cluster c/1",
    "cluster-create c1",                  /* no --site */
    "cluster-create c1 --site dc1 --startup-policy random",
    "site-create",
    "task-info not-a-uuid",
    "task-cancel 123",
    "join-token-delete notauuid",
    "token-delete nope",
    "token-create",
    "token-create t1 --expires 1",
    "user-update u1",                     /* nothing to change */
    "user-update u1 --enable --disable",
    "user-update u1 --role god",
    "console",
    "event-list extra",
    "login a b",
};

static void test_parse_refused(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
        struct argv_buf b;
        struct cli_args a;
        struct cli_request rq;
        AUTOERROR struct error *err = NULL;
        int rc = plan_line(refused[i], &b, &a, &rq, &err);
        if (rc == 0 || !err || err->code != ERR_INVALID_ARG) {
            fprintf(stderr, "not refused as a usage error: 'strata %s'\n", refused[i]);
            fail();
        }
        assert_int_equal(err_code_exit_code(err->code), 2);
        assert_non_null(strchr(err->message, ' '));   /* a sentence, not a code */
        cli_request_clear(&rq);
        free(b.copy);
    }
}

/* Accepted command lines and the request each one plans.  'body' is the
 * expected JSON body (compact, sorted keys) or NULL for none. */
static const struct {
    const char *line;
    const char *method;
    const char *path;
    const char *body;
    enum cli_rq_kind kind;
} planned[] = {
    { "list", "GET", "/api/v1/vms", NULL, RQ_LIST },
    { "list --all --cluster c1", "GET", "/api/v1/vms?cluster=c1", NULL, RQ_LIST },
    { "list --state running --host node1 --limit 5", "GET",
      "/api/v1/vms?state=running&host=node1&limit=5", NULL, RQ_LIST },
    { "dominfo web1", "GET", "/api/v1/vms/web1", NULL, RQ_SHOW },
    { "start web1", "POST", "/api/v1/vms/web1/start", NULL, RQ_TASK },
    { "shutdown web1", "POST", "/api/v1/vms/web1/shutdown", NULL, RQ_TASK },
    { "shutdown web1 --timeout 30", "POST", "/api/v1/vms/web1/shutdown", "{\"timeout_s\":30}",
      RQ_TASK },
    { "destroy web1", "POST", "/api/v1/vms/web1/destroy", NULL, RQ_TASK },
    { "reboot web1", "POST", "/api/v1/vms/web1/reboot", NULL, RQ_TASK },
    { "suspend web1", "POST", "/api/v1/vms/web1/suspend", NULL, RQ_TASK },
    { "resume web1", "POST", "/api/v1/vms/web1/resume", NULL, RQ_TASK },
    { "save web1", "POST", "/api/v1/vms/web1/save", NULL, RQ_TASK },
    { "restore web1", "POST", "/api/v1/vms/web1/restore", NULL, RQ_TASK },
    { "setmem web1 512M", "POST", "/api/v1/vms/web1/memory", "{\"mib\":512}", RQ_TASK },
    { "setmem web1 2G", "POST", "/api/v1/vms/web1/memory", "{\"mib\":2048}", RQ_TASK },
    { "setmem web1 768", "POST", "/api/v1/vms/web1/memory", "{\"mib\":768}", RQ_TASK },
    { "setvcpus web1 4", "POST", "/api/v1/vms/web1/vcpus", "{\"count\":4}", RQ_TASK },
    { "attach-disk web1 --datastore ds1 --size 1G", "POST", "/api/v1/vms/web1/disks",
      "{\"datastore\":\"ds1\",\"size\":1073741824}", RQ_TASK },
    { "attach-disk web1 --datastore ds1 --size 10G --format qcow2 --allocation thin --bus "
      "virtio --id data1 --readonly", "POST", "/api/v1/vms/web1/disks",
      "{\"bus\":\"virtio\",\"datastore\":\"ds1\",\"format\":\"qcow2\",\"id\":\"data1\","
      "\"provisioning\":\"thin\",\"readonly\":true,\"size\":10737418240}", RQ_TASK },
    { "attach-disk web1 --datastore ds1 --volume shared1 --shared", "POST",
      "/api/v1/vms/web1/disks", "{\"datastore\":\"ds1\",\"shared\":true,\"volume\":\"shared1\"}",
      RQ_TASK },
    { "detach-disk web1 data1", "DELETE", "/api/v1/vms/web1/disks/data1", NULL, RQ_TASK },
    { "attach-interface web1 --nat default", "POST", "/api/v1/vms/web1/nics",
      "{\"network\":{\"nat\":\"default\"}}", RQ_TASK },
    { "attach-interface web1 --dvs dvs1 --portgroup pg10 --mac 52:54:00:12:34:56 --model "
      "virtio", "POST", "/api/v1/vms/web1/nics",
      "{\"mac\":\"52:54:00:12:34:56\",\"model\":\"virtio\",\"network\":{\"dvs\":\"dvs1\","
      "\"portgroup\":\"pg10\"}}", RQ_TASK },
    { "detach-interface web1 nic1", "DELETE", "/api/v1/vms/web1/nics/nic1", NULL, RQ_TASK },
    { "change-media web1 cd0 /iso/debian.iso", "POST", "/api/v1/vms/web1/cdroms/cd0/media",
      "{\"path\":\"/iso/debian.iso\"}", RQ_TASK },
    { "change-media web1 cd0 --eject", "POST", "/api/v1/vms/web1/cdroms/cd0/media",
      "{\"path\":null}", RQ_TASK },
    { "snapshot-create-as web1 s1", "POST", "/api/v1/vms/web1/snapshots", "{\"name\":\"s1\"}",
      RQ_TASK },
    { "snapshot-create-as web1 --name s1 --kind memory --description before~upgrade", "POST",
      "/api/v1/vms/web1/snapshots",
      "{\"description\":\"before upgrade\",\"kind\":\"memory\",\"name\":\"s1\"}", RQ_TASK },
    { "snapshot-list web1", "GET", "/api/v1/vms/web1/snapshots", NULL, RQ_LIST },
    { "snapshot-revert web1 s1", "POST", "/api/v1/vms/web1/snapshots/s1/revert", "{}",
      RQ_TASK },
    { "snapshot-revert web1 s1 --start", "POST", "/api/v1/vms/web1/snapshots/s1/revert",
      "{\"start\":true}", RQ_TASK },
    { "snapshot-delete web1 s1", "DELETE", "/api/v1/vms/web1/snapshots/s1", NULL, RQ_TASK },
    { "undefine web1", "DELETE", "/api/v1/vms/web1", NULL, RQ_TASK },
    { "undefine web1 --keep-disks", "DELETE", "/api/v1/vms/web1?keep_disks=true", NULL,
      RQ_TASK },
    { "clone web1 web2 --start", "POST", "/api/v1/vms/web1/clone",
      "{\"name\":\"web2\",\"start\":true}", RQ_TASK },
    { "template-list", "GET", "/api/v1/templates", NULL, RQ_LIST },
    { "template-info tpl1", "GET", "/api/v1/templates/tpl1", NULL, RQ_SHOW },
    { "template-create web1 --name tpl1", "POST", "/api/v1/vms/web1/template",
      "{\"name\":\"tpl1\"}", RQ_TASK },
    { "template-create web1", "POST", "/api/v1/vms/web1/template", "{}", RQ_TASK },
    { "template-delete tpl1", "DELETE", "/api/v1/templates/tpl1", NULL, RQ_TASK },
    { "template-to-vm tpl1 --name web9", "POST", "/api/v1/templates/tpl1/vm",
      "{\"name\":\"web9\"}", RQ_TASK },
    { "deploy tpl1 web3 --linked", "POST", "/api/v1/vms",
      "{\"clone\":\"linked\",\"name\":\"web3\",\"template\":\"tpl1\"}", RQ_TASK },
    { "deploy tpl1 web4 --full --cluster c1 --start", "POST", "/api/v1/vms",
      "{\"clone\":\"full\",\"cluster\":\"c1\",\"name\":\"web4\",\"start\":true,"
      "\"template\":\"tpl1\"}", RQ_TASK },
    { "pool-list", "GET", "/api/v1/datastores", NULL, RQ_LIST },
    { "pool-info ds1", "GET", "/api/v1/datastores/ds1", NULL, RQ_SHOW },
    { "vol-list ds1", "GET", "/api/v1/datastores/ds1/volumes", NULL, RQ_LIST },
    { "vol-create-as ds1 v1 1G --format qcow2 --allocation thin", "POST",
      "/api/v1/datastores/ds1/volumes",
      "{\"capacity\":1073741824,\"format\":\"qcow2\",\"name\":\"v1\",\"provisioning\":\"thin\"}",
      RQ_TASK },
    { "vol-create-as ds1 c1 1G --base golden", "POST", "/api/v1/datastores/ds1/volumes",
      "{\"base\":\"golden\",\"capacity\":1073741824,\"name\":\"c1\"}", RQ_TASK },
    { "vol-delete ds1 v1", "DELETE", "/api/v1/datastores/ds1/volumes/v1", NULL, RQ_TASK },
    { "vol-delete ds1 v1 --secure", "DELETE", "/api/v1/datastores/ds1/volumes/v1?secure=true",
      NULL, RQ_TASK },
    { "vol-wipe ds1 v1", "POST", "/api/v1/datastores/ds1/volumes/v1/wipe", NULL, RQ_TASK },
    { "vol-resize ds1 v1 2G", "POST", "/api/v1/datastores/ds1/volumes/v1/resize",
      "{\"capacity\":2147483648}", RQ_TASK },
    { "net-list", "GET", "/api/v1/networks", NULL, RQ_LIST },
    { "secgroup-list", "GET", "/api/v1/security-groups", NULL, RQ_LIST },
    { "pool-create ds1 --path /srv/ds1 --host node1 --host node2 --type shared", "POST",
      "/api/v1/datastores",
      "{\"hosts\":[\"node1\",\"node2\"],\"name\":\"ds1\",\"path\":\"/srv/ds1\",\"type\":\"shared\"}",
      RQ_WRITE },
    { "pool-delete ds1", "DELETE", "/api/v1/datastores/ds1", NULL, RQ_WRITE },
    { "nat-create default --subnet 192.168.122.0/24 --host node1", "POST", "/api/v1/nat-networks",
      "{\"hosts\":[\"node1\"],\"name\":\"default\",\"subnet\":\"192.168.122.0/24\"}",
      RQ_WRITE },
    { "nat-delete default", "DELETE", "/api/v1/nat-networks/default", NULL, RQ_WRITE },
    { "vlan-pool-list", "GET", "/api/v1/vlan-pools", NULL, RQ_LIST },
    { "host-list --cluster c1 --state connected", "GET",
      "/api/v1/hosts?cluster=c1&state=connected", NULL, RQ_LIST },
    { "host-info node1", "GET", "/api/v1/hosts/node1", NULL, RQ_SHOW },
    { "host-maintenance node1", "POST", "/api/v1/hosts/node1/maintenance", NULL, RQ_WRITE },
    { "host-maintenance node1 off", "DELETE", "/api/v1/hosts/node1/maintenance", NULL,
      RQ_WRITE },
    { "host-delete node1", "DELETE", "/api/v1/hosts/node1", NULL, RQ_WRITE },
    { "join-token-create", "POST", "/api/v1/join-tokens", "{}", RQ_WRITE },
    { "join-token-create --cluster c1 --expires 600", "POST", "/api/v1/join-tokens",
      "{\"cluster\":\"c1\",\"expires_in_s\":600}", RQ_WRITE },
    { "join-token-list", "GET", "/api/v1/join-tokens", NULL, RQ_LIST },
    { "join-token-delete 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "DELETE",
      "/api/v1/join-tokens/6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", NULL, RQ_WRITE },
    { "cluster-list --site dc1 --startup-policy automatic", "GET",
      "/api/v1/clusters?site=dc1&startup_policy=automatic", NULL, RQ_LIST },
    { "cluster-info c1", "GET", "/api/v1/clusters/c1", NULL, RQ_SHOW },
    { "cluster-create c1 --site dc1 --startup-policy load-balancing --memory-overcommit",
      "POST", "/api/v1/clusters",
      "{\"memory_overcommit\":true,\"name\":\"c1\",\"site\":\"dc1\","
      "\"startup_policy\":\"load-balancing\"}", RQ_WRITE },
    { "cluster-delete c1", "DELETE", "/api/v1/clusters/c1", NULL, RQ_WRITE },
    { "site-list", "GET", "/api/v1/sites", NULL, RQ_LIST },
    { "site-create dc1 --description lab", "POST", "/api/v1/sites",
      "{\"description\":\"lab\",\"name\":\"dc1\"}", RQ_WRITE },
    { "site-delete dc1", "DELETE", "/api/v1/sites/dc1", NULL, RQ_WRITE },
    { "task-list --state running --kind vm.start", "GET",
      "/api/v1/tasks?state=running&kind=vm.start", NULL, RQ_LIST },
    { "task-info 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "GET",
      "/api/v1/tasks/6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", NULL, RQ_SHOW },
    { "task-cancel 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "POST",
      "/api/v1/tasks/6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c/cancel", NULL, RQ_WRITE },
    { "user-list --role viewer", "GET", "/api/v1/users?role=viewer", NULL, RQ_LIST },
    { "user-update vera --role operator --disable", "PATCH", "/api/v1/users/vera",
      "{\"enabled\":false,\"role\":\"operator\"}", RQ_WRITE },
    { "user-delete vera", "DELETE", "/api/v1/users/vera", NULL, RQ_WRITE },
    { "token-create ci --expires 3600", "POST", "/api/v1/tokens",
      "{\"expires_in_s\":3600,\"name\":\"ci\"}", RQ_WRITE },
    { "token-list", "GET", "/api/v1/tokens", NULL, RQ_LIST },
    { "token-delete 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "DELETE",
      "/api/v1/tokens/6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", NULL, RQ_WRITE },
};

/* Verbs that run themselves, with a command line each that parses. */
static const char *const run_lines[] = {
    "create vm.json --start", "console web1 --follow --until login: --timeout 60",
    "task-wait 6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "event-list --follow --type task.failed",
    "user-create vera --role viewer --password-stdin", "login admin --password-file /pw",
    "logout", "version", "help start",
    "host-join node1 --token sjt_x --address 10.0.0.1 --port 16509 --dir /etc/strata",
};

static void test_plans(void **state)
{
    (void) state;
    for (size_t i = 0; i < ARRAY_SIZE(planned); i++) {
        struct argv_buf b;
        struct cli_args a;
        struct cli_request rq;
        AUTOERROR struct error *err = NULL;
        if (plan_line(planned[i].line, &b, &a, &rq, &err) < 0) {
            fprintf(stderr, "'strata %s' refused: %s\n", planned[i].line, err->message);
            fail();
        }
        if (strcmp(rq.method, planned[i].method) || strcmp(rq.path, planned[i].path)) {
            fprintf(stderr, "'strata %s': %s %s\n", planned[i].line, rq.method, rq.path);
            fail();
        }
        assert_int_equal(rq.kind, planned[i].kind);
        AUTOFREE char *body = rq.body ? json_to_string(rq.body) : NULL;
        if (planned[i].body || body) {
            if (!body || !planned[i].body || strcmp(body, planned[i].body)) {
                fprintf(stderr, "'strata %s': body %s\n", planned[i].line, body ? body : "none");
                fail();
            }
        }
        if (rq.kind == RQ_LIST || rq.kind == RQ_SHOW)
            assert_non_null(rq.cols);
        if (rq.kind == RQ_TASK)
            assert_non_null(rq.label);
        cli_request_clear(&rq);
        free(b.copy);
    }
    /* Every verb of the table has an accepted command line above. */
    for (size_t v = 0; cli_verbs[v].name; v++) {
        const char *name = cli_verbs[v].name;
        bool seen = false;
        size_t n = strlen(name);
        for (size_t i = 0; i < ARRAY_SIZE(planned) && !seen; i++)
            seen = !strncmp(planned[i].line, name, n) &&
                   (planned[i].line[n] == ' ' || !planned[i].line[n]);
        for (size_t i = 0; i < ARRAY_SIZE(run_lines) && !seen; i++) {
            seen = !strncmp(run_lines[i], name, n) &&
                   (run_lines[i][n] == ' ' || !run_lines[i][n]);
            if (seen) {
                struct argv_buf b;
                struct cli_args a;
                AUTOERROR struct error *err = NULL;
                split(&b, run_lines[i]);
                assert_int_equal(cli_parse(b.argc, b.argv, &a, &err), 0);
                assert_non_null(a.verb->run);
                free(b.copy);
            }
        }
        if (!seen) {
            fprintf(stderr, "verb '%s' has no test command line\n", name);
            fail();
        }
        assert_true((cli_verbs[v].plan == NULL) != (cli_verbs[v].run == NULL));
        assert_non_null(cli_verbs[v].help);
    }
}

static void test_list_flags(void **state)
{
    (void) state;
    struct argv_buf b;
    struct cli_args a;
    struct cli_request rq;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(plan_line("list", &b, &a, &rq, &err), 0);
    assert_true(rq.only_active);
    assert_true(rq.paged);
    cli_request_clear(&rq);
    free(b.copy);
    assert_int_equal(plan_line("list --all", &b, &a, &rq, &err), 0);
    assert_false(rq.only_active);
    cli_request_clear(&rq);
    free(b.copy);
    assert_int_equal(plan_line("list --limit 10", &b, &a, &rq, &err), 0);
    assert_false(rq.paged);
    cli_request_clear(&rq);
    free(b.copy);
    /* Sub-resource lists are not paged (their routes may not take limit). */
    assert_int_equal(plan_line("vol-list ds1", &b, &a, &rq, &err), 0);
    assert_false(rq.paged);
    cli_request_clear(&rq);
    free(b.copy);
    /* Query values are escaped. */
    assert_int_equal(plan_line("task-list --object a&b=c", &b, &a, &rq, &err), 0);
    assert_string_equal(rq.path, "/api/v1/tasks?object=a%26b%3Dc");
    cli_request_clear(&rq);
    free(b.copy);
    /* Join and API tokens print the secret alone. */
    assert_int_equal(plan_line("join-token-create", &b, &a, &rq, &err), 0);
    assert_string_equal(rq.print_key, "token");
    cli_request_clear(&rq);
    free(b.copy);
}

/* ---- values -------------------------------------------------------------- */

static void test_sizes(void **state)
{
    (void) state;
    static const struct {
        const char *s;
        unsigned long long unit, want;
    } ok[] = {
        { "0", 1, 0 }, { "512", 1, 512 }, { "1K", 1, 1024 }, { "1k", 1, 1024 },
        { "1M", 1, 1ULL << 20 }, { "1G", 1, 1ULL << 30 }, { "2T", 1, 2ULL << 40 },
        { "1GiB", 1, 1ULL << 30 }, { "1GB", 1, 1ULL << 30 }, { "10B", 1, 10 },
        { "512", 1ULL << 20, 512ULL << 20 }, { "16777215T", 1, 16777215ULL << 40 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
        unsigned long long v = 1;
        AUTOERROR struct error *err = NULL;
        assert_int_equal(cli_parse_size(ok[i].s, ok[i].unit, "size", &v, &err), 0);
        assert_true(v == ok[i].want);
    }
    static const char *const bad[] = {
        "", "G", "-1", "1.5G", "1X", "1GG", "1 G", "1Gix", "16777216T",
        "99999999999999999999999", " 1",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        unsigned long long v;
        AUTOERROR struct error *err = NULL;
        assert_int_equal(cli_parse_size(bad[i], 1, "size", &v, &err), -1);
        assert_int_equal(err->code, ERR_INVALID_ARG);
        assert_non_null(strstr(err->message, "size"));
    }
    unsigned long long mib;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(cli_parse_mib("1G", "memory", &mib, &err), 0);
    assert_int_equal(mib, 1024);
    assert_int_equal(cli_parse_mib("256", "memory", &mib, &err), 0);
    assert_int_equal(mib, 256);
    assert_int_equal(cli_parse_mib("2048K", "memory", &mib, &err), 0);
    assert_int_equal(mib, 2);
    assert_int_equal(cli_parse_mib("1000K", "memory", &mib, &err), -1);

    unsigned long long n;
    error_free(err);
    err = NULL;
    assert_int_equal(cli_parse_uint("42", 1, 100, "n", &n, &err), 0);
    assert_int_equal(n, 42);
    assert_int_equal(cli_parse_uint("101", 1, 100, "n", &n, &err), -1);
    error_free(err);
    err = NULL;
    assert_int_equal(cli_parse_uint("4x", 1, 100, "n", &n, &err), -1);
}

static void test_names(void **state)
{
    (void) state;
    static const char *const good[] = {
        "a", "web1", "Web-1.prod_2", "6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c",
        "a234567890123456789012345678901234567890123456789012345678901234",
    };
    static const char *const bad[] = {
        "", ".a", "-a", "_a", "a/b", "a b", "a..b", "a%2f", "a\n", "é",
        "a2345678901234567890123456789012345678901234567890123456789012345",
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        assert_int_equal(cli_check_name(good[i], "VM", NULL), 0);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *err = NULL;
        assert_int_equal(cli_check_name(bad[i], "VM", &err), -1);
        assert_int_equal(err->code, ERR_INVALID_ARG);
    }
    assert_int_equal(cli_check_uuid("6f1c2b9e-6a43-4c59-9d8f-0d1e2f3a4b5c", "id", NULL), 0);
    assert_int_equal(cli_check_uuid("web1", "id", NULL), -1);
}

/* ---- formatting ---------------------------------------------------------- */

static void test_bytes(void **state)
{
    (void) state;
    static const struct {
        unsigned long long n;
        const char *s;
    } cases[] = {
        { 0, "0" }, { 1023, "1023" }, { 1024, "1K" }, { 1536, "1.5K" },
        { 1ULL << 30, "1G" }, { 10ULL << 30, "10G" }, { (1ULL << 30) + (1ULL << 29), "1.5G" },
        { 200ULL << 20, "200M" }, { 3ULL << 40, "3T" },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        AUTOFREE char *s = cli_fmt_bytes(cases[i].n);
        assert_string_equal(s, cases[i].s);
    }
}

static void test_table(void **state)
{
    (void) state;
    static const struct cli_col cols[] = {
        { "NAME", "name", COL_TEXT }, { "STATE", "state", COL_TEXT },
        { "MEMORY", "definition.memory", COL_VM_MEMORY },
        { "VCPUS", "definition.vcpus", COL_VM_VCPUS }, { "HA", "ha", COL_BOOL },
        { NULL, NULL, 0 },
    };
    AUTOJSON json_t *items = json_loads(
        "[{\"name\": \"web1\", \"state\": \"running\", \"ha\": true,"
        "  \"definition\": {\"memory\": {\"mib\": 1024}, \"vcpus\": {\"count\": 2}}},"
        " {\"name\": \"database-01\", \"state\": \"stopped\", \"ha\": false,"
        "  \"definition\": {\"memory\": 256, \"vcpus\": 1}},"
        " {\"name\": \"x\", \"state\": null}]", 0, NULL);
    assert_non_null(items);
    AUTOFREE char *t = cli_table(cols, items);
    assert_string_equal(t,
        "NAME         STATE    MEMORY  VCPUS  HA\n"
        "web1         running  1G      2      yes\n"
        "database-01  stopped  256M    1      no\n"
        "x            -        -       -      -\n");
    AUTOJSON json_t *empty = json_array();
    AUTOFREE char *e = cli_table(cols, empty);
    assert_string_equal(e, "NAME  STATE  MEMORY  VCPUS  HA\n");

    /* Control characters never reach the terminal. */
    static const struct cli_col one[] = { { "MESSAGE", "message", COL_TEXT }, { NULL, NULL, 0 } };
    AUTOJSON json_t *evil = json_pack("[{s:s}]", "message", "a\033[2Jb\nc");
    AUTOFREE char *te = cli_table(one, evil);
    assert_string_equal(te, "MESSAGE\na?[2Jb?c\n");

    static const struct cli_col hosts[] = {
        { "HOSTS", "hosts", COL_HOSTS }, { "CAP", "cap", COL_BYTES },
        { "P", "p", COL_PERCENT }, { NULL, NULL, 0 },
    };
    AUTOJSON json_t *ds = json_loads(
        "{\"hosts\": [{\"host_id\": \"1\", \"host_name\": \"n1\"}, {\"name\": \"n2\"}, \"n3\"],"
        " \"cap\": 5368709120, \"p\": 40}", 0, NULL);
    AUTOFREE char *kv = cli_kv(hosts, ds);
    assert_string_equal(kv, "HOSTS: n1,n2,n3\nCAP:   5G\nP:     40%\n");

    /* A task's error, in either of its two shapes. */
    static const struct cli_col errc[] = { { "E", "error", COL_ERROR }, { NULL, NULL, 0 } };
    AUTOJSON json_t *e1 = json_loads("{\"error\": {\"code\": \"x\", \"message\": \"m1\"}}", 0,
                                     NULL);
    AUTOJSON json_t *e2 = json_loads("{\"error\": {\"error\": {\"message\": \"m2\"}}}", 0, NULL);
    AUTOJSON json_t *e3 = json_loads("{\"error\": null}", 0, NULL);
    AUTOFREE char *k1 = cli_kv(errc, e1);
    AUTOFREE char *k2 = cli_kv(errc, e2);
    AUTOFREE char *k3 = cli_kv(errc, e3);
    assert_string_equal(k1, "E: m1\n");
    assert_string_equal(k2, "E: m2\n");
    assert_string_equal(k3, "E: -\n");
}

static void test_progress(void **state)
{
    (void) state;
    AUTOFREE char *a = cli_progress_line("start web1", 0, "queued", 10);
    assert_string_equal(a, "start web1 [..........]   0% queued");
    AUTOFREE char *b = cli_progress_line("start web1", 45, "copy-disk", 10);
    assert_string_equal(b, "start web1 [####......]  45% copy-disk");
    AUTOFREE char *c = cli_progress_line("start web1", 100, "succeeded", 10);
    assert_string_equal(c, "start web1 [##########] 100% succeeded");
    AUTOFREE char *d = cli_progress_line(NULL, 150, NULL, 4);
    assert_string_equal(d, "[####] 100%");
    AUTOFREE char *e = cli_progress_line("", -5, "", 4);
    assert_string_equal(e, "[....]   0%");

    AUTOJSON json_t *task = json_loads(
        "{\"state\": \"running\", \"steps\": [{\"name\": \"copy-disk\", \"state\": \"done\"},"
        " {\"name\": \"define-vm\", \"state\": \"running\"}, {\"name\": \"start\", \"state\":"
        " \"pending\"}]}", 0, NULL);
    assert_string_equal(cli_task_step(task), "define-vm");
    AUTOJSON json_t *failed = json_loads(
        "{\"steps\": [{\"name\": \"a\", \"state\": \"undone\"}, {\"name\": \"b\","
        " \"state\": \"failed\"}, {\"name\": \"c\", \"state\": \"pending\"}]}", 0, NULL);
    assert_string_equal(cli_task_step(failed), "b");
    AUTOJSON json_t *none = json_object();
    assert_null(cli_task_step(none));
    assert_true(cli_task_state_final("succeeded"));
    assert_true(cli_task_state_final("failed"));
    assert_true(cli_task_state_final("cancelled"));
    assert_false(cli_task_state_final("running"));
    assert_false(cli_task_state_final("queued"));
    assert_false(cli_task_state_final(NULL));
}

static void test_console_match(void **state)
{
    (void) state;
    /* A needle split over reads, one byte at a time included. */
    static const char text[] = "boot\nSTRATA-READY 1\n";
    for (size_t step = 1; step <= sizeof text - 1; step++) {
        AUTOFREE char *carry = xstrdup("");
        bool found = false;
        size_t at = 0;
        for (size_t off = 0; off < sizeof text - 1 && !found; off += step) {
            size_t n = sizeof text - 1 - off < step ? sizeof text - 1 - off : step;
            found = cli_console_match(&carry, text + off, n, "STRATA-READY");
            at = off;
        }
        assert_true(found);
        assert_true(at + step >= 5 + 12);
        assert_true(strlen(carry) <= 11);
    }
    AUTOFREE char *carry = xstrdup("");
    assert_false(cli_console_match(&carry, "STRATA-READ", 11, "STRATA-READY"));
    assert_false(cli_console_match(&carry, "\0Y", 2, "STRATA-READY"));   /* NUL in between */
    assert_false(cli_console_match(&carry, "", 0, "STRATA-READY"));
    assert_true(cli_console_match(&carry, "STRATA-READY", 12, "STRATA-READY"));
    AUTOFREE char *c2 = xstrdup("");
    assert_true(cli_console_match(&c2, "a", 1, "a"));
}

/* ---- connection and config ----------------------------------------------- */

static void test_urls(void **state)
{
    (void) state;
    struct cli_url u;
    AUTOERROR struct error *err = NULL;
    assert_int_equal(cli_url_parse("unix:/run/strata/manager.sock", &u, &err), 0);
    assert_string_equal(u.unix_path, "/run/strata/manager.sock");
    assert_null(u.host);
    cli_url_clear(&u);
    assert_int_equal(cli_url_parse("unix:///tmp/m.sock", &u, &err), 0);
    assert_string_equal(u.unix_path, "/tmp/m.sock");
    cli_url_clear(&u);
    assert_int_equal(cli_url_parse("https://mgr.lab:8443", &u, &err), 0);
    assert_string_equal(u.host, "mgr.lab");
    assert_int_equal(u.port, 8443);
    cli_url_clear(&u);
    assert_int_equal(cli_url_parse("https://10.0.0.1/", &u, &err), 0);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 443);
    cli_url_clear(&u);
    assert_int_equal(cli_url_parse("https://[::1]:8443", &u, &err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 8443);
    cli_url_clear(&u);
    static const char *const bad[] = {
        "http://mgr:80", "unix:relative.sock", "unix:", "https://", "https://:8443",
        "https://mgr:0", "https://mgr:99999", "https://mgr:84x3", "https://mgr/api/v1",
        "https://[::1", "ftp://x", "mgr:8443", "unix:/a\nb",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *e = NULL;
        if (cli_url_parse(bad[i], &u, &e) == 0) {
            fprintf(stderr, "URL '%s' accepted\n", bad[i]);
            fail();
        }
        assert_int_equal(e->code, ERR_INVALID_ARG);
        assert_null(u.host);
        assert_null(u.unix_path);
    }
}

static void test_config(void **state)
{
    (void) state;
    struct cli_config cfg = { 0 };
    AUTOERROR struct error *err = NULL;
    assert_int_equal(cli_config_parse("# comment\n\n url = unix:/x.sock \ntoken=stk_abc\r\n"
                                      "ca=/etc/strata/ca.pem", &cfg, &err), 0);
    assert_string_equal(cfg.url, "unix:/x.sock");
    assert_string_equal(cfg.token, "stk_abc");
    assert_string_equal(cfg.ca, "/etc/strata/ca.pem");
    AUTOFREE char *text = cli_config_format(&cfg);
    struct cli_config again = { 0 };
    assert_int_equal(cli_config_parse(text, &again, &err), 0);
    assert_string_equal(again.url, cfg.url);
    assert_string_equal(again.token, cfg.token);
    assert_string_equal(again.ca, cfg.ca);
    cli_config_clear(&again);
    cli_config_clear(&cfg);

    struct cli_config partial = { .url = (char *) "unix:/y" };
    AUTOFREE char *pt = cli_config_format(&partial);
    assert_non_null(strstr(pt, "url=unix:/y\n"));
    assert_null(strstr(pt, "token="));

    static const char *const bad[] = { "colour=red\n", "url\n", "token=a\x01b\n" };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *e = NULL;
        struct cli_config c = { 0 };
        assert_int_equal(cli_config_parse(bad[i], &c, &e), -1);
        assert_non_null(strstr(e->message, "line 1"));
        cli_config_clear(&c);
    }

    /* The path follows STRATA_CONFIG, then XDG_CONFIG_HOME, then HOME. */
    setenv("STRATA_CONFIG", "/a/b", 1);
    AUTOFREE char *p1 = cli_config_path();
    assert_string_equal(p1, "/a/b");
    unsetenv("STRATA_CONFIG");
    setenv("XDG_CONFIG_HOME", "/xdg", 1);
    AUTOFREE char *p2 = cli_config_path();
    assert_string_equal(p2, "/xdg/strata/config");
    unsetenv("XDG_CONFIG_HOME");
    setenv("HOME", "/home/u", 1);
    AUTOFREE char *p3 = cli_config_path();
    assert_string_equal(p3, "/home/u/.config/strata/config");

    /* Save: mode 0600 in a directory made 0700; load reads it back; a
     * missing file is an empty config. */
    char dir[] = "/tmp/strata-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    AUTOFREE char *path = xasprintf("%s/sub/config", dir);
    struct cli_config w = { .url = (char *) "unix:/m.sock", .token = (char *) "stk_1" };
    assert_int_equal(cli_config_save(path, &w, &err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    AUTOFREE char *sub = xasprintf("%s/sub", dir);
    assert_int_equal(stat(sub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    struct cli_config r;
    assert_int_equal(cli_config_load(path, &r, &err), 0);
    assert_string_equal(r.token, "stk_1");
    assert_null(r.ca);
    cli_config_clear(&r);
    AUTOFREE char *missing = xasprintf("%s/none", dir);
    assert_int_equal(cli_config_load(missing, &r, &err), 0);
    assert_null(r.url);
    assert_int_equal(rm_rf(dir, &err), 0);
}

/* ---- create -------------------------------------------------------------- */

static json_t *spec_of(const char *line, const char *base, struct error **err)
{
    struct argv_buf b;
    struct cli_args a;
    split(&b, line);
    json_t *out = NULL;
    if (cli_parse(b.argc, b.argv, &a, err) == 0) {
        AUTOJSON json_t *bj = base ? json_loads(base, 0, NULL) : NULL;
        out = cli_vm_spec(&a, bj, err);
    }
    free(b.copy);
    return out;
}

static void test_vm_spec(void **state)
{
    (void) state;
    AUTOERROR struct error *err = NULL;
    AUTOJSON json_t *s = spec_of(
        "create --name web1 --memory 512M --vcpus 2 --disk datastore=ds1,size=1G "
        "--disk datastore=ds1,volume=data,shared --nic nat=default "
        "--nic dvs=dvs1,portgroup=pg10,model=e1000 --kernel /k/vmlinuz --initrd /k/initrd "
        "--cmdline console=ttyS0~quiet --cluster c1 --start --cdrom empty", NULL, &err);
    assert_non_null(s);
    AUTOFREE char *txt = json_to_string(s);
    assert_string_equal(txt,
        "{\"boot\":{\"cmdline\":\"console=ttyS0 quiet\",\"initrd\":\"/k/initrd\","
        "\"kernel\":\"/k/vmlinuz\"},\"cdroms\":[{\"id\":\"cd0\",\"path\":null}],"
        "\"cluster\":\"c1\",\"disks\":[{\"datastore\":\"ds1\",\"size\":1073741824},"
        "{\"datastore\":\"ds1\",\"shared\":true,\"volume\":\"data\"}],\"memory\":512,"
        "\"name\":\"web1\",\"nics\":[{\"network\":{\"nat\":\"default\"}},{\"model\":\"e1000\","
        "\"network\":{\"dvs\":\"dvs1\",\"portgroup\":\"pg10\"}}],\"start\":true,\"vcpus\":2}");

    /* A file gives the base, flags add to it and override. */
    AUTOJSON json_t *f = spec_of("create vm.json --memory 1G --disk datastore=d2,size=2G",
                                 "{\"name\": \"fromfile\", \"memory\": 256, \"boot\": "
                                 "{\"order\": [\"disk\"]}, \"disks\": [{\"datastore\": \"d1\","
                                 " \"size\": 1}]}", &err);
    assert_non_null(f);
    assert_int_equal(json_integer_value(json_object_get(f, "memory")), 1024);
    assert_int_equal(json_array_size(json_object_get(f, "disks")), 2);
    assert_string_equal(json_string_value(json_object_get(f, "name")), "fromfile");
    AUTOJSON json_t *k = spec_of("create vm.json --kernel /vmlinuz",
                                 "{\"name\": \"n\", \"boot\": {\"order\": [\"disk\"]}}", &err);
    assert_non_null(k);
    assert_null(json_object_get(json_object_get(k, "boot"), "order"));

    static const char *const bad[] = {
        "create --memory 1G",                            /* no name */
        "create --name a/b",
        "create --name a --memory 1T5",
        "create --name a --vcpus 0",
        "create --name a --disk size=1G,colour=red",
        "create --name a --disk datastore=d1,size=1G,size=2G",
        "create --name a --disk datastore=d1,size=big",
        "create --name a --disk ''",
        "create --name a --nic nat=default,dvs=x,portgroup=y",
        "create --name a --nic dvs=x",
        "create --name a --nic bridge=br0",
        "create --name a --kernel vmlinuz",
        "create --name a --initrd /i",
        "create --name a --cdrom relative.iso",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        AUTOERROR struct error *e = NULL;
        AUTOJSON json_t *x = spec_of(bad[i], NULL, &e);
        if (x || !e || e->code != ERR_INVALID_ARG) {
            fprintf(stderr, "'strata %s' not refused\n", bad[i]);
            fail();
        }
    }
    AUTOERROR struct error *e2 = NULL;
    AUTOJSON json_t *notobj = spec_of("create x.json", "[1]", &e2);
    assert_null(notobj);
    assert_int_equal(e2->code, ERR_INVALID_ARG);
}

/* ---- exit codes ---------------------------------------------------------- */

static void test_exit_codes(void **state)
{
    (void) state;
    /* The one table of src/util/error.h, as docs/cli.md documents it. */
    static const struct {
        const char *body;
        int status;
    } cases[] = {
        { "{\"error\": {\"code\": \"invalid-argument\", \"message\": \"m\", \"field\": \"f\"}}",
          2 },
        { "{\"error\": {\"code\": \"too-large\", \"message\": \"m\"}}", 2 },
        { "{\"error\": {\"code\": \"not-found\", \"message\": \"no VM 'x'\"}}", 3 },
        { "{\"error\": {\"code\": \"conflict\", \"message\": \"m\"}}", 4 },
        { "{\"error\": {\"code\": \"bad-state\", \"message\": \"m\"}}", 4 },
        { "{\"error\": {\"code\": \"unauthorized\", \"message\": \"m\"}}", 5 },
        { "{\"error\": {\"code\": \"forbidden\", \"message\": \"m\"}}", 5 },
        { "{\"error\": {\"code\": \"internal-error\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"io-error\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"qemu-error\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"timeout\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"no-space\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"unsupported\", \"message\": \"m\"}}", 1 },
        { "{\"error\": {\"code\": \"from-the-future\", \"message\": \"m\"}}", 1 },
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        AUTOJSON json_t *j = json_loads(cases[i].body, 0, NULL);
        struct error *e = error_from_json(j);
        assert_non_null(e);
        assert_int_equal(err_code_exit_code(e->code), cases[i].status);
        error_free(e);
    }
    /* A failed task carries {"error": {"error": {...}}}: same mapping. */
    AUTOJSON json_t *task = json_loads(
        "{\"state\": \"failed\", \"error\": {\"error\": {\"code\": \"no-space\", \"message\":"
        " \"step 'copy-disk': datastore full\"}}}", 0, NULL);
    struct error *te = error_from_json(json_object_get(task, "error"));
    assert_non_null(te);
    assert_int_equal(te->code, ERR_NO_SPACE);
    assert_int_equal(err_code_exit_code(te->code), 1);
    error_free(te);
    /* Usage errors of the CLI itself are the same code 2. */
    assert_int_equal(err_code_exit_code(ERR_INVALID_ARG), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basics),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_plans),
        cmocka_unit_test(test_list_flags),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_console_match),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_vm_spec),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
