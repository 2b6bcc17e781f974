/* net_api.c - the agent's network module (see net_api.h): desired network
 * configuration, plugged VM NICs, the apply worker and the /v1/net routes.
 *
 * Locks: 'nm->lock' guards the configuration, the plugged NICs, indexes,
 * MACs and counters, and is held for short updates only (vm_stopped takes it
 * on the monitor loop).  'nm->apply_lock' serializes applies: it is held while
 * ovs-vsctl, ovs-ofctl, ip, nft or dnsmasq run, on a snapshot taken under
 * 'nm->lock', never the other way round (apply_lock before lock). */
#define LOG_MODULE "net"
#include "agent/net_api.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http/http_server.h"
#include "net/host_nics.h"
#include "net/mac_alloc.h"
#include "net/nat.h"
#include "net/net_apply.h"
#include "net/net_config.h"
#include "net/net_flows.h"
#include "util/command.h"
#include "util/fileutil.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/mem.h"

#define CHECK_INTERVAL_MS 3000
#define STALE_PLUG_MS 60000

/* A VM NIC plugged on a bridge (or waiting to be). */
struct plug {
    char *vm;
    char *nic, *tap;
    char mac[18];
    struct vm_nic_network *net;
    unsigned index;
    long long since_ms;
};

struct netmgr {
    struct agent *a;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct net_config *cfg;
    bool managed;                   /* this host has a network configuration file */
    struct plug *plugs;
    size_t n_plugs;
    json_t *indexes;                /* {"vm/nic": index} of plugged NICs */
    json_t *macs;                   /* MACs handed out by POST /v1/net/macs */
    uint32_t mac_cursor;
    unsigned long long desired_gen, applied_gen;
    char *last_error;
    bool dirty, save_pending, stop;
    char *state_path, *run_dir, *state_dir, *ovs_rundir;

    pthread_mutex_t apply_lock;
    struct net_engine *engine;
    pthread_t worker;
    bool worker_started;
};

static struct netmgr *nm_of(struct agent *a)
{
    return a->net;
}

/* ---- persistence ---------------------------------------------------------------- */

static json_t *state_json_locked(struct netmgr *nm)
{
    return json_pack("{s:o, s:O, s:O, s:I, s:I}", "config", net_config_to_json(nm->cfg),
                     "indexes", nm->indexes, "macs", nm->macs, "mac_cursor",
                     (json_int_t) nm->mac_cursor, "desired_generation",
                     (json_int_t) nm->desired_gen);
}

static int save_locked(struct netmgr *nm, struct error **errp)
{
    AUTOJSON json_t *j = state_json_locked(nm);
    AUTOFREE char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (file_write_atomic(nm->state_path, text, strlen(text), 0600, errp) < 0)
        return -1;
    nm->managed = true;
    return 0;
}

static int load(struct netmgr *nm, struct error **errp)
{
    if (!file_exists(nm->state_path))
        return 0;
    AUTOFREE char *text = file_read_all(nm->state_path, 16 << 20, NULL, errp);
    if (!text)
        return -1;
    AUTOJSON json_t *j = json_from_string(text, strlen(text), errp);
    if (!j)
        return -1;
    struct net_config *c = net_config_from_json(json_object_get(j, "config"), errp);
    if (!c) {
        error_prefix(errp, "%s", nm->state_path);
        return -1;
    }
    net_config_free(nm->cfg);
    nm->cfg = c;
    json_t *idx = json_object_get(j, "indexes");
    if (json_is_object(idx)) {
        json_decref(nm->indexes);
        nm->indexes = json_incref(idx);
    }
    json_t *macs = json_object_get(j, "macs");
    if (json_is_array(macs)) {
        json_decref(nm->macs);
        nm->macs = json_incref(macs);
    }
    json_t *cur = json_object_get(j, "mac_cursor");
    if (json_is_integer(cur))
        nm->mac_cursor = (uint32_t) json_integer_value(cur) & 0xffffff;
    nm->desired_gen = (unsigned long long) json_integer_value(
        json_object_get(j, "desired_generation"));
    nm->managed = true;
    return 0;
}

/* ---- plugged NICs ----------------------------------------------------------------- */

static void plug_clear(struct plug *p)
{
    free(p->vm);
    free(p->nic);
    free(p->tap);
    vm_nic_network_free(p->net);
    memset(p, 0, sizeof(*p));
}

static char *index_key(const char *vm, const char *nic)
{
    return xasprintf("%s/%s", vm, nic);
}

static unsigned index_get_locked(struct netmgr *nm, const char *vm, const char *nic, bool make)
{
    AUTOFREE char *key = index_key(vm, nic);
    json_t *v = json_object_get(nm->indexes, key);
    if (v)
        return (unsigned) json_integer_value(v);
    if (!make)
        return 0;
    /* Smallest free index. */
    size_t n = json_object_size(nm->indexes);
    bool *used = xcalloc(n + 2, sizeof(bool));
    const char *k;
    json_t *e;
    json_object_foreach(nm->indexes, k, e) {
        json_int_t i = json_integer_value(e);
        if (i >= 1 && (size_t) i <= n + 1)
            used[i] = true;
    }
    unsigned idx = 1;
    while (used[idx])
        idx++;
    free(used);
    if (idx > NET_MAX_PORTS)
        return 0;
    json_object_set_new(nm->indexes, key, json_integer(idx));
    nm->save_pending = true;
    return idx;
}

static void unplug_locked(struct netmgr *nm, const char *vm, const char *nic)
{
    for (size_t i = 0; i < nm->n_plugs;) {
        struct plug *p = &nm->plugs[i];
        if (strcmp(p->vm, vm) || (nic && strcmp(p->nic, nic))) {
            i++;
            continue;
        }
        AUTOFREE char *key = index_key(p->vm, p->nic);
        json_object_del(nm->indexes, key);
        plug_clear(p);
        memmove(p, p + 1, (nm->n_plugs - i - 1) * sizeof(*p));
        nm->n_plugs--;
        nm->dirty = true;
        nm->save_pending = true;
    }
}

/* The bridge a NIC's network puts it on, or NULL (unknown names). */
static const char *nic_bridge(const struct net_config *c, const struct vm_nic_network *n)
{
    if (n->dvs) {
        const struct net_dvs *d = net_config_dvs(c, n->dvs);
        return d && net_dvs_portgroup(d, n->portgroup) ? d->bridge : NULL;
    }
    const struct net_nat *nat = net_config_nat(c, n->nat);
    return nat ? nat->bridge : NULL;
}

/* Checks that 'nic' of 'vm' can be plugged now (names exist, MAC and tap not
 * used by another VM's port on the host). */
static int check_nic_locked(struct netmgr *nm, const char *vm, const struct vm_nic *nic,
                            const char *f, struct error **errp)
{
    const struct vm_nic_network *n = nic->network;
    if (n->dvs) {
        const struct net_dvs *d = net_config_dvs(nm->cfg, n->dvs);
        if (!d)
            return error_set_field(errp, ERR_NOT_FOUND, f, "NIC '%s': this host has no DVS '%s'",
                                   nic->id, n->dvs);
        if (!net_dvs_portgroup(d, n->portgroup))
            return error_set_field(errp, ERR_NOT_FOUND, f,
                                   "NIC '%s': DVS '%s' has no port group '%s'", nic->id, n->dvs,
                                   n->portgroup);
    } else if (!net_config_nat(nm->cfg, n->nat)) {
        return error_set_field(errp, ERR_NOT_FOUND, f,
                               "NIC '%s': this host has no NAT network '%s'", nic->id, n->nat);
    }
    if (n->security_group && !net_config_sg(nm->cfg, n->security_group))
        return error_set_field(errp, ERR_NOT_FOUND, f,
                               "NIC '%s': no security group '%s'", nic->id, n->security_group);
    const char *br = nic_bridge(nm->cfg, n);
    for (size_t k = 0; k < nm->n_plugs; k++) {
        const struct plug *p = &nm->plugs[k];
        if (!strcmp(p->vm, vm))
            continue;
        if (!strcmp(p->tap, nic->tap))
            return error_set_field(errp, ERR_CONFLICT, f,
                                   "NIC '%s': tap '%s' is already plugged for VM '%s'", nic->id,
                                   nic->tap, p->vm);
        const char *pbr = nic_bridge(nm->cfg, p->net);
        if (pbr && br && !strcmp(pbr, br) && !strcmp(p->mac, nic->mac))
            return error_set_field(errp, ERR_CONFLICT, f,
                                   "NIC '%s': MAC %s is already used on bridge '%s' by VM '%s' "
                                   "NIC '%s'", nic->id, nic->mac, br, p->vm, p->nic);
    }
    return 0;
}

static int plug_locked(struct netmgr *nm, const char *vm, const struct vm_nic *nic,
                       struct error **errp)
{
    unplug_locked(nm, vm, nic->id);
    unsigned idx = index_get_locked(nm, vm, nic->id, true);
    if (!idx)
        return error_set(errp, ERR_NO_SPACE, "no free port index (at most %d ports)",
                         NET_MAX_PORTS);
    nm->plugs = xrealloc(nm->plugs, (nm->n_plugs + 1) * sizeof(*nm->plugs));
    struct plug *p = &nm->plugs[nm->n_plugs++];
    memset(p, 0, sizeof(*p));
    p->vm = xstrdup(vm);
    p->nic = xstrdup(nic->id);
    p->tap = xstrdup(nic->tap);
    memcpy(p->mac, nic->mac, sizeof p->mac);
    p->net = vm_nic_network_copy(nic->network);
    p->index = idx;
    p->since_ms = now_ms();
    nm->dirty = true;
    nm->save_pending = true;
    return 0;
}

/* Resolves the plugs against 'cfg' (a snapshot): ports with pointers into it. */
static struct net_port *resolve_ports(const struct netmgr *nm, const struct net_config *cfg,
                                      size_t *n_out)
{
    struct net_port *ports = xcalloc(nm->n_plugs + 1, sizeof(*ports));
    size_t n = 0;
    for (size_t i = 0; i < nm->n_plugs; i++) {
        const struct plug *pl = &nm->plugs[i];
        const struct vm_nic_network *net = pl->net;
        struct net_port *p = &ports[n];
        const char *br;
        unsigned mtu;
        const struct net_portgroup *pg = NULL;
        if (net->dvs) {
            const struct net_dvs *d = net_config_dvs(cfg, net->dvs);
            pg = d ? net_dvs_portgroup(d, net->portgroup) : NULL;
            if (!pg)
                continue;
            br = d->bridge;
            mtu = d->mtu;
        } else {
            const struct net_nat *nat = net_config_nat(cfg, net->nat);
            if (!nat)
                continue;
            br = nat->bridge;
            mtu = nat->mtu;
        }
        const struct net_sg *sg = NULL;
        if (net->security_group && !(sg = net_config_sg(cfg, net->security_group)))
            continue;
        p->vm = xstrdup(pl->vm);
        p->nic = xstrdup(pl->nic);
        p->tap = xstrdup(pl->tap);
        memcpy(p->mac, pl->mac, sizeof p->mac);
        p->index = pl->index;
        p->bridge = xstrdup(br);
        p->pg = pg;
        p->sg = sg;
        size_t k = net->ips ? strv_len(net->ips) : 0;
        p->ips = xcalloc(k + 1, sizeof(char *));
        for (size_t m = 0; m < k; m++)
            p->ips[m] = xstrdup(net->ips[m]);
        p->mtu = mtu;
        n++;
    }
    *n_out = n;
    return ports;
}

static void ports_free(struct net_port *ports, size_t n)
{
    for (size_t i = 0; i < n; i++)
        net_port_clear(&ports[i]);
    free(ports);
}

/* ---- applying ------------------------------------------------------------------------ */

/* Applies the current desired state; records the outcome. */
static int apply_now(struct netmgr *nm, bool force, struct error **errp)
{
    pthread_mutex_lock(&nm->apply_lock);
    pthread_mutex_lock(&nm->lock);
    struct net_config *cfg = net_config_copy(nm->cfg);
    size_t n_ports;
    struct net_port *ports = resolve_ports(nm, cfg, &n_ports);
    unsigned long long gen = nm->desired_gen;
    bool managed = nm->managed;
    nm->dirty = false;
    pthread_mutex_unlock(&nm->lock);

    struct error *err = NULL;
    long long t0 = now_ms();
    int r = net_engine_apply(nm->engine, cfg, ports, n_ports, managed, force, &err);
    long long dt = now_ms() - t0;

    pthread_mutex_lock(&nm->lock);
    free(nm->last_error);
    nm->last_error = err ? xstrdup(err->message) : NULL;
    if (r == 0 && gen > nm->applied_gen)
        nm->applied_gen = gen;
    pthread_mutex_unlock(&nm->lock);
    pthread_mutex_unlock(&nm->apply_lock);
    if (r == 0)
        LOG_DEBUG("network applied (generation %llu, %zu ports, %lld ms)", gen, n_ports, dt);
    else
        LOG_RL_WARN("network apply failed: %s", err->message);
    error_propagate(errp, err);
    ports_free(ports, n_ports);
    net_config_free(cfg);
    return r;
}

static int check_now(struct netmgr *nm)
{
    pthread_mutex_lock(&nm->apply_lock);
    pthread_mutex_lock(&nm->lock);
    struct net_config *cfg = net_config_copy(nm->cfg);
    size_t n_ports;
    struct net_port *ports = resolve_ports(nm, cfg, &n_ports);
    pthread_mutex_unlock(&nm->lock);
    AUTOERROR struct error *err = NULL;
    int r = net_engine_check(nm->engine, cfg, ports, n_ports, &err);
    pthread_mutex_unlock(&nm->apply_lock);
    if (r < 0)
        LOG_RL_WARN("network check failed: %s", err->message);
    ports_free(ports, n_ports);
    net_config_free(cfg);
    return r;
}

/* Drops plugs of VMs that are not running (a start that failed after
 * vm_prepare, a VM undefined meanwhile). */
static void drop_stale_plugs(struct netmgr *nm)
{
    struct agent *a = nm->a;
    pthread_mutex_lock(&nm->lock);
    size_t n = nm->n_plugs;
    char **vms = xcalloc(n + 1, sizeof(char *));
    long long *since = xcalloc(n + 1, sizeof(long long));
    for (size_t i = 0; i < n; i++) {
        vms[i] = xstrdup(nm->plugs[i].vm);
        since[i] = nm->plugs[i].since_ms;
    }
    pthread_mutex_unlock(&nm->lock);
    for (size_t i = 0; i < n; i++) {
        if (now_ms() - since[i] < STALE_PLUG_MS)
            continue;
        struct vm *vm = agent_vm_get(a, vms[i], NULL);
        bool active = false;
        if (vm) {
            pthread_mutex_lock(&vm->lock);
            active = vm_state_is_active(vm->state) || vm->busy;
            pthread_mutex_unlock(&vm->lock);
            vm_unref(a, vm);
        }
        if (!active) {
            LOG_INFO("VM '%s' is not running: its NICs are unplugged", vms[i]);
            pthread_mutex_lock(&nm->lock);
            unplug_locked(nm, vms[i], NULL);
            pthread_mutex_unlock(&nm->lock);
        }
    }
    strv_free(vms);
    free(since);
}

static void *worker(void *opaque)
{
    struct netmgr *nm = opaque;
    long long next_check = now_ms() + CHECK_INTERVAL_MS;
    pthread_mutex_lock(&nm->lock);
    while (!nm->stop) {
        if (!nm->dirty && !nm->save_pending) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long long wait = next_check - now_ms();
            if (wait > 0) {
                ts.tv_sec += wait / 1000;
                ts.tv_nsec += (wait % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&nm->cond, &nm->lock, &ts);
                continue;
            }
        }
        bool dirty = nm->dirty, save = nm->save_pending;
        nm->save_pending = false;
        if (save) {
            AUTOERROR struct error *err = NULL;
            if (save_locked(nm, &err) < 0)
                LOG_RL_WARN("%s", err->message);
        }
        pthread_mutex_unlock(&nm->lock);
        if (dirty) {
            apply_now(nm, false, NULL);
        } else if (now_ms() >= next_check) {
            next_check = now_ms() + CHECK_INTERVAL_MS;
            drop_stale_plugs(nm);
            if (check_now(nm) == 1) {
                LOG_INFO("network drifted from the applied state (ovs-vswitchd restarted?): "
                         "re-applying");
                apply_now(nm, true, NULL);
            }
        }
        pthread_mutex_lock(&nm->lock);
    }
    pthread_mutex_unlock(&nm->lock);
    return NULL;
}

static void kick(struct netmgr *nm)
{
    pthread_cond_broadcast(&nm->cond);
}

/* ---- module hooks ---------------------------------------------------------------------- */

/* Plugs the NICs of 'vm' that have a network; applies at once. */
static int nm_vm_prepare(struct agent *a, struct vm *vm, struct error **errp)
{
    struct netmgr *nm = nm_of(a);
    if (!nm)
        return 0;
    pthread_mutex_lock(&vm->lock);
    struct vm_def *def = vm_def_copy(vm->def);
    pthread_mutex_unlock(&vm->lock);
    bool any = false;
    int r = 0;
    pthread_mutex_lock(&nm->lock);
    for (size_t i = 0; i < def->n_nics && r == 0; i++)
        if (def->nics[i].network) {
            any = true;
            AUTOFREE char *f = xasprintf("nics[%zu].network", i);
            r = check_nic_locked(nm, vm->name, &def->nics[i], f, errp);
        }
    if (r == 0) {
        unplug_locked(nm, vm->name, NULL);
        for (size_t i = 0; i < def->n_nics && r == 0; i++)
            if (def->nics[i].network)
                r = plug_locked(nm, vm->name, &def->nics[i], errp);
        if (r < 0)
            unplug_locked(nm, vm->name, NULL);
    }
    pthread_mutex_unlock(&nm->lock);
    vm_def_free(def);
    if (r < 0 || !any)
        return r;
    if (apply_now(nm, false, errp) < 0) {
        pthread_mutex_lock(&nm->lock);
        unplug_locked(nm, vm->name, NULL);
        pthread_mutex_unlock(&nm->lock);
        kick(nm);
        error_prefix(errp, "plugging the NICs of VM '%s'", vm->name);
        return -1;
    }
    return 0;
}

/* QEMU creates a missing tap DOWN, and the lifecycle may try to bring it up
 * before QEMU created it: make sure the plugged taps are up. */
static void nm_vm_started(struct agent *a, struct vm *vm)
{
    struct netmgr *nm = nm_of(a);
    if (!nm)
        return;
    pthread_mutex_lock(&nm->lock);
    char **taps = xcalloc(nm->n_plugs + 1, sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < nm->n_plugs; i++)
        if (!strcmp(nm->plugs[i].vm, vm->name))
            taps[n++] = xstrdup(nm->plugs[i].tap);
    if (n)
        nm->dirty = true;
    pthread_mutex_unlock(&nm->lock);
    for (size_t i = 0; i < n; i++) {
        AUTOCOMMAND struct command *cmd = command_new("ip");
        command_add_args(cmd, "link", "set", "dev", taps[i], "up", NULL);
        AUTOERROR struct error *err = NULL;
        if (command_run(cmd, NULL, NULL, NULL, &err) < 0)
            LOG_WARN("VM '%s': %s", vm->name, err->message);
    }
    strv_free(taps);
    if (n)
        kick(nm);
}

/* On the monitor loop: short lock only; the worker unplugs from OVS. */
static void nm_vm_stopped(struct agent *a, struct vm *vm)
{
    struct netmgr *nm = nm_of(a);
    if (!nm)
        return;
    pthread_mutex_lock(&nm->lock);
    unplug_locked(nm, vm->name, NULL);
    pthread_mutex_unlock(&nm->lock);
    kick(nm);
}

static int nm_nic_plug(struct agent *a, struct vm *vm, const struct vm_nic *nic,
                       struct error **errp)
{
    struct netmgr *nm = nm_of(a);
    if (!nm || !nic->network)
        return 0;
    pthread_mutex_lock(&nm->lock);
    int r = check_nic_locked(nm, vm->name, nic, "network", errp);
    if (r == 0)
        r = plug_locked(nm, vm->name, nic, errp);
    pthread_mutex_unlock(&nm->lock);
    if (r < 0)
        return -1;
    if (apply_now(nm, false, errp) < 0) {
        pthread_mutex_lock(&nm->lock);
        unplug_locked(nm, vm->name, nic->id);
        pthread_mutex_unlock(&nm->lock);
        kick(nm);
        return -1;
    }
    return 0;
}

static void nm_nic_unplug(struct agent *a, struct vm *vm, const char *nic_id)
{
    struct netmgr *nm = nm_of(a);
    if (!nm)
        return;
    pthread_mutex_lock(&nm->lock);
    unplug_locked(nm, vm->name, nic_id);
    pthread_mutex_unlock(&nm->lock);
    kick(nm);
}

static int nm_init(struct agent *a, struct error **errp)
{
    struct netmgr *nm = xzalloc(sizeof(*nm));
    nm->a = a;
    pthread_mutex_init(&nm->lock, NULL);
    pthread_mutex_init(&nm->apply_lock, NULL);
    pthread_cond_init(&nm->cond, NULL);
    nm->cfg = net_config_new();
    nm->indexes = json_object();
    nm->macs = json_array();
    nm->state_path = xasprintf("%s/net.json", a->cfg.state_dir);
    nm->run_dir = xasprintf("%s/net", a->cfg.run_dir);
    nm->state_dir = xasprintf("%s/net", a->cfg.state_dir);
    const char *ovs = getenv("OVS_RUNDIR");
    nm->ovs_rundir = xstrdup(ovs && *ovs ? ovs : "/var/run/openvswitch");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    AUTOFREE char *id = xasprintf("%s:%s", host, a->cfg.state_dir);
    nm->mac_cursor = net_mac_seed(id);
    if (load(nm, errp) < 0 || mkdir_p(nm->state_dir, 0700, errp) < 0 ||
        mkdir_p(nm->run_dir, 0700, errp) < 0)
        goto fail;
    struct net_engine_config ec = { nm->ovs_rundir, nm->run_dir, nm->state_dir,
                                    getenv("STRATA_OVS_DATAPATH"), NULL };
    nm->engine = net_engine_new(&ec);
    a->net = nm;

    /* Re-plug the NICs of running VMs (recovered before this hook). */
    size_t n;
    struct vm **vms = agent_vm_list(a, &n);
    struct vm_def **defs = xcalloc(n + 1, sizeof(*defs));
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&vms[i]->lock);
        if (vm_state_is_active(vms[i]->state))
            defs[i] = vm_def_copy(vms[i]->def);
        pthread_mutex_unlock(&vms[i]->lock);
    }
    pthread_mutex_lock(&nm->lock);
    json_t *old = nm->indexes;
    nm->indexes = json_object();
    for (size_t i = 0; i < n; i++) {
        struct vm *vm = vms[i];
        struct vm_def *def = defs[i];
        for (size_t k = 0; def && k < def->n_nics; k++) {
            const struct vm_nic *nic = &def->nics[k];
            if (!nic->network)
                continue;
            /* Keep the index it had: same OpenFlow port, zone and meters. */
            AUTOFREE char *key = index_key(vm->name, nic->id);
            json_t *was = json_object_get(old, key);
            if (was)
                json_object_set(nm->indexes, key, was);
            AUTOERROR struct error *err = NULL;
            if (plug_locked(nm, vm->name, nic, &err) < 0)
                LOG_WARN("VM '%s' NIC '%s': %s", vm->name, nic->id, err->message);
        }
        vm_def_free(def);
    }
    free(defs);
    json_decref(old);
    nm->save_pending = nm->managed;
    pthread_mutex_unlock(&nm->lock);
    agent_vm_list_free(a, vms, n);
    LOG_INFO("network: OVS at %s (%s), datapath auto = %s, %zu NICs plugged",
             net_engine_db(nm->engine),
             net_engine_ovs_present(nm->engine) ? "present" : "absent",
             net_engine_auto_datapath(nm->engine), nm->n_plugs);
    {
        AUTOERROR struct error *err = NULL;
        if (apply_now(nm, true, &err) < 0)
            LOG_WARN("network: first apply failed (retried by the worker): %s", err->message);
    }
    if (pthread_create(&nm->worker, NULL, worker, nm) != 0) {
        error_set(errp, ERR_INTERNAL, "cannot start the network worker thread");
        a->net = NULL;
        goto fail;
    }
    nm->worker_started = true;
    return 0;
fail:
    net_engine_free(nm->engine);
    net_config_free(nm->cfg);
    json_decref(nm->indexes);
    json_decref(nm->macs);
    free(nm->state_path);
    free(nm->run_dir);
    free(nm->state_dir);
    free(nm->ovs_rundir);
    free(nm);
    return -1;
}

static void nm_fini(struct agent *a)
{
    struct netmgr *nm = nm_of(a);
    if (!nm)
        return;
    pthread_mutex_lock(&nm->lock);
    nm->stop = true;
    pthread_cond_broadcast(&nm->cond);
    pthread_mutex_unlock(&nm->lock);
    if (nm->worker_started)
        pthread_join(nm->worker, NULL);
    pthread_mutex_lock(&nm->lock);
    if (nm->save_pending) {
        AUTOERROR struct error *err = NULL;
        if (save_locked(nm, &err) < 0)
            LOG_WARN("%s", err->message);
    }
    pthread_mutex_unlock(&nm->lock);
    a->net = NULL;
    for (size_t i = 0; i < nm->n_plugs; i++)
        plug_clear(&nm->plugs[i]);
    free(nm->plugs);
    net_engine_free(nm->engine);
    net_config_free(nm->cfg);
    json_decref(nm->indexes);
    json_decref(nm->macs);
    free(nm->last_error);
    free(nm->state_path);
    free(nm->run_dir);
    free(nm->state_dir);
    free(nm->ovs_rundir);
    pthread_mutex_destroy(&nm->lock);
    pthread_mutex_destroy(&nm->apply_lock);
    pthread_cond_destroy(&nm->cond);
    free(nm);
}

/* ---- configuration changes --------------------------------------------------------------- */

/* Installs 'next' (checked) as the configuration, saves and applies it.
 * Takes ownership of 'next'.  The configuration stays even if applying fails
 * (the error says so; the worker retries). */
static int commit(struct netmgr *nm, struct net_config *next, struct error **errp)
{
    if (net_config_check(next, errp) < 0) {
        net_config_free(next);
        return -1;
    }
    pthread_mutex_lock(&nm->lock);
    struct net_config *old = nm->cfg;
    nm->cfg = next;
    nm->desired_gen++;
    if (save_locked(nm, errp) < 0) {
        nm->cfg = old;
        nm->desired_gen--;
        pthread_mutex_unlock(&nm->lock);
        net_config_free(next);
        return -1;
    }
    pthread_mutex_unlock(&nm->lock);
    net_config_free(old);
    if (apply_now(nm, false, errp) < 0) {
        error_prefix(errp, "configuration saved, applying it failed");
        return -1;
    }
    return 0;
}

/* A copy of the configuration to modify (caller commits or frees). */
static struct net_config *config_copy(struct netmgr *nm)
{
    pthread_mutex_lock(&nm->lock);
    struct net_config *c = net_config_copy(nm->cfg);
    pthread_mutex_unlock(&nm->lock);
    return c;
}

/* The first plugged NIC matching, as "VM 'x' NIC 'y'", or NULL. */
static char *used_by_locked(struct netmgr *nm, const char *dvs, const char *pg, const char *nat,
                            const char *sg)
{
    for (size_t i = 0; i < nm->n_plugs; i++) {
        const struct plug *p = &nm->plugs[i];
        const struct vm_nic_network *n = p->net;
        bool hit = (dvs && n->dvs && !strcmp(n->dvs, dvs) &&
                    (!pg || !strcmp(n->portgroup, pg))) ||
                   (nat && n->nat && !strcmp(n->nat, nat)) ||
                   (sg && n->security_group && !strcmp(n->security_group, sg));
        if (hit)
            return xasprintf("VM '%s' NIC '%s'", p->vm, p->nic);
    }
    return NULL;
}

static int refuse_if_used(struct netmgr *nm, const char *what, const char *dvs, const char *pg,
                          const char *nat, const char *sg, struct error **errp)
{
    pthread_mutex_lock(&nm->lock);
    AUTOFREE char *user = used_by_locked(nm, dvs, pg, nat, sg);
    pthread_mutex_unlock(&nm->lock);
    if (user)
        return error_set(errp, ERR_BAD_STATE, "%s is in use by %s", what, user);
    return 0;
}

/* ---- routes ---------------------------------------------------------------------------------- */

static struct netmgr *req_nm(void *opaque, struct error **errp)
{
    struct agent *a = opaque;
    if (!a->net)
        error_set(errp, ERR_UNSUPPORTED, "the network module is not running");
    return a->net;
}

static json_t *empty_body;
static pthread_once_t empty_once = PTHREAD_ONCE_INIT;

static void make_empty(void)
{
    empty_body = json_object();
}

static const json_t *body_or_empty(const struct http_request *req)
{
    if (req->body)
        return req->body;
    pthread_once(&empty_once, make_empty);
    return empty_body;
}

static json_t *status_json(struct netmgr *nm)
{
    pthread_mutex_lock(&nm->lock);
    json_t *dvs = json_array(), *nats = json_array(), *sgs = json_array();
    for (size_t i = 0; i < nm->cfg->n_dvs; i++)
        json_array_append_new(dvs, json_string(nm->cfg->dvs[i].name));
    for (size_t i = 0; i < nm->cfg->n_nats; i++)
        json_array_append_new(nats, json_string(nm->cfg->nats[i].name));
    for (size_t i = 0; i < nm->cfg->n_sgs; i++)
        json_array_append_new(sgs, json_string(nm->cfg->sgs[i].name));
    json_t *j = json_pack("{s:{s:s, s:s, s:b}, s:s, s:b, s:I, s:I, s:o, s:o, s:o, s:o, s:I}",
                          "ovs", "rundir", nm->ovs_rundir, "db", net_engine_db(nm->engine),
                          "present", net_engine_ovs_present(nm->engine), "auto_datapath",
                          net_engine_auto_datapath(nm->engine), "managed", nm->managed,
                          "desired_generation", (json_int_t) nm->desired_gen,
                          "applied_generation", (json_int_t) nm->applied_gen, "last_error",
                          nm->last_error ? json_string(nm->last_error) : json_null(), "dvs", dvs,
                          "nat", nats, "security_groups", sgs, "ports",
                          (json_int_t) nm->n_plugs);
    pthread_mutex_unlock(&nm->lock);
    return j;
}

static int h_status(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    resp->status = 200;
    resp->body = status_json(nm);
    return 0;
}

static int h_apply(const struct http_request *req, struct http_response *resp, void *opaque,
                   struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    static const char *const keys[] = { NULL };
    if (json_check_keys(body_or_empty(req), keys, "", errp) < 0)
        return -1;
    if (apply_now(nm, true, errp) < 0)
        return -1;
    resp->status = 200;
    resp->body = status_json(nm);
    return 0;
}

/* -- DVS -- */

static int h_dvs_list(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    json_t *a = json_array();
    pthread_mutex_lock(&nm->lock);
    for (size_t i = 0; i < nm->cfg->n_dvs; i++)
        json_array_append_new(a, net_dvs_to_json(&nm->cfg->dvs[i], true));
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "dvs", a);
    return 0;
}

static int h_dvs_get(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_dvs *d = net_config_dvs(nm->cfg, req->params[0]);
    json_t *j = d ? net_dvs_to_json(d, true) : NULL;
    pthread_mutex_unlock(&nm->lock);
    if (!j)
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no DVS '%s'", req->params[0]);
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_dvs_put(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    struct net_dvs d;
    if (net_dvs_from_json(body_or_empty(req), req->params[0], "", false, &d, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_dvs *old = net_config_dvs(c, d.name);
    bool created = !old;
    if (old) {
        /* Port groups are kept: they have their own routes. */
        d.pgs = old->pgs;
        d.n_pgs = old->n_pgs;
        old->pgs = NULL;
        old->n_pgs = 0;
        net_dvs_clear(old);
        *old = d;
    } else {
        if (c->n_dvs >= NET_MAX_DVS) {
            net_dvs_clear(&d);
            net_config_free(c);
            return error_set(errp, ERR_NO_SPACE, "at most %d DVSs per host", NET_MAX_DVS);
        }
        d.pgs = xcalloc(1, sizeof(*d.pgs));
        c->dvs = xrealloc(c->dvs, (c->n_dvs + 1) * sizeof(*c->dvs));
        c->dvs[c->n_dvs++] = d;
    }
    AUTOFREE char *name = xstrdup(req->params[0]);
    if (commit(nm, c, errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_dvs *now = net_config_dvs(nm->cfg, name);
    resp->body = now ? net_dvs_to_json(now, true) : json_null();
    pthread_mutex_unlock(&nm->lock);
    resp->status = created ? 201 : 200;
    return 0;
}

static int h_dvs_delete(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    const char *name = req->params[0];
    AUTOFREE char *what = xasprintf("DVS '%s'", name);
    if (refuse_if_used(nm, what, name, NULL, NULL, NULL, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_dvs *d = net_config_dvs(c, name);
    if (!d) {
        net_config_free(c);
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no DVS '%s'", name);
    }
    size_t i = (size_t) (d - c->dvs);
    net_dvs_clear(d);
    memmove(&c->dvs[i], &c->dvs[i + 1], (c->n_dvs - i - 1) * sizeof(*c->dvs));
    c->n_dvs--;
    if (commit(nm, c, errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* -- port groups -- */

static int h_pg_get(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0 ||
        net_name_validate(req->params[1], "portgroup", errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_dvs *d = net_config_dvs(nm->cfg, req->params[0]);
    const struct net_portgroup *pg = d ? net_dvs_portgroup(d, req->params[1]) : NULL;
    json_t *j = pg ? net_portgroup_to_json(pg) : NULL;
    pthread_mutex_unlock(&nm->lock);
    if (!j)
        return error_set_field(errp, ERR_NOT_FOUND, d ? "portgroup" : "name",
                               d ? "DVS '%s' has no port group '%s'" : "no DVS '%s'%.0s",
                               req->params[0], req->params[1]);
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_pg_put(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0 ||
        net_name_validate(req->params[1], "portgroup", errp) < 0)
        return -1;
    struct net_portgroup pg;
    if (net_portgroup_from_json(body_or_empty(req), req->params[1], "", &pg, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_dvs *d = net_config_dvs(c, req->params[0]);
    if (!d) {
        net_portgroup_clear(&pg);
        net_config_free(c);
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no DVS '%s'", req->params[0]);
    }
    struct net_portgroup *old = net_dvs_portgroup(d, pg.name);
    bool created = !old;
    if (old) {
        net_portgroup_clear(old);
        *old = pg;
    } else {
        if (d->n_pgs >= NET_MAX_PORTGROUPS) {
            net_portgroup_clear(&pg);
            net_config_free(c);
            return error_set(errp, ERR_NO_SPACE, "at most %d port groups per DVS",
                             NET_MAX_PORTGROUPS);
        }
        d->pgs = xrealloc(d->pgs, (d->n_pgs + 1) * sizeof(*d->pgs));
        d->pgs[d->n_pgs++] = pg;
    }
    AUTOFREE char *dvs = xstrdup(req->params[0]);
    AUTOFREE char *name = xstrdup(req->params[1]);
    if (commit(nm, c, errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_dvs *nd = net_config_dvs(nm->cfg, dvs);
    const struct net_portgroup *now = nd ? net_dvs_portgroup(nd, name) : NULL;
    resp->body = now ? net_portgroup_to_json(now) : json_null();
    pthread_mutex_unlock(&nm->lock);
    resp->status = created ? 201 : 200;
    return 0;
}

static int h_pg_delete(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0 ||
        net_name_validate(req->params[1], "portgroup", errp) < 0)
        return -1;
    AUTOFREE char *what = xasprintf("port group '%s' of DVS '%s'", req->params[1],
                                    req->params[0]);
    if (refuse_if_used(nm, what, req->params[0], req->params[1], NULL, NULL, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_dvs *d = net_config_dvs(c, req->params[0]);
    struct net_portgroup *pg = d ? net_dvs_portgroup(d, req->params[1]) : NULL;
    if (!pg) {
        net_config_free(c);
        return error_set_field(errp, ERR_NOT_FOUND, d ? "portgroup" : "name",
                               d ? "DVS '%s' has no port group '%s'" : "no DVS '%s'%.0s",
                               req->params[0], req->params[1]);
    }
    size_t i = (size_t) (pg - d->pgs);
    net_portgroup_clear(pg);
    memmove(&d->pgs[i], &d->pgs[i + 1], (d->n_pgs - i - 1) * sizeof(*d->pgs));
    d->n_pgs--;
    if (commit(nm, c, errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* -- security groups -- */

static int h_sg_list(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    json_t *a = json_array();
    pthread_mutex_lock(&nm->lock);
    for (size_t i = 0; i < nm->cfg->n_sgs; i++)
        json_array_append_new(a, net_sg_to_json(&nm->cfg->sgs[i]));
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "security_groups", a);
    return 0;
}

static int h_sg_get(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_sg *sg = net_config_sg(nm->cfg, req->params[0]);
    json_t *j = sg ? net_sg_to_json(sg) : NULL;
    pthread_mutex_unlock(&nm->lock);
    if (!j)
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no security group '%s'",
                               req->params[0]);
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_sg_put(const struct http_request *req, struct http_response *resp, void *opaque,
                    struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    struct net_sg sg;
    if (net_sg_from_json(body_or_empty(req), req->params[0], "", &sg, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_sg *old = net_config_sg(c, sg.name);
    bool created = !old;
    if (old) {
        net_sg_clear(old);
        *old = sg;
    } else {
        if (c->n_sgs >= NET_MAX_SGS) {
            net_sg_clear(&sg);
            net_config_free(c);
            return error_set(errp, ERR_NO_SPACE, "at most %d security groups", NET_MAX_SGS);
        }
        c->sgs = xrealloc(c->sgs, (c->n_sgs + 1) * sizeof(*c->sgs));
        c->sgs[c->n_sgs++] = sg;
    }
    AUTOFREE char *name = xstrdup(req->params[0]);
    if (commit(nm, c, errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_sg *now = net_config_sg(nm->cfg, name);
    resp->body = now ? net_sg_to_json(now) : json_null();
    pthread_mutex_unlock(&nm->lock);
    resp->status = created ? 201 : 200;
    return 0;
}

static int h_sg_delete(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    const char *name = req->params[0];
    AUTOFREE char *what = xasprintf("security group '%s'", name);
    if (refuse_if_used(nm, what, NULL, NULL, NULL, name, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_sg *sg = net_config_sg(c, name);
    if (!sg) {
        net_config_free(c);
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no security group '%s'", name);
    }
    for (size_t i = 0; i < c->n_sgs; i++)
        for (size_t r = 0; r < c->sgs[i].n_rules; r++)
            if (c->sgs[i].rules[r].remote_group &&
                !strcmp(c->sgs[i].rules[r].remote_group, name) && &c->sgs[i] != sg) {
                AUTOFREE char *other = xstrdup(c->sgs[i].name);
                net_config_free(c);
                return error_set(errp, ERR_BAD_STATE,
                                 "security group '%s' is a remote group of '%s'", name, other);
            }
    size_t i = (size_t) (sg - c->sgs);
    net_sg_clear(sg);
    memmove(&c->sgs[i], &c->sgs[i + 1], (c->n_sgs - i - 1) * sizeof(*c->sgs));
    c->n_sgs--;
    if (commit(nm, c, errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

/* -- NAT networks -- */

static int h_nat_list(const struct http_request *req, struct http_response *resp, void *opaque,
                      struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    json_t *a = json_array();
    pthread_mutex_lock(&nm->lock);
    for (size_t i = 0; i < nm->cfg->n_nats; i++)
        json_array_append_new(a, net_nat_to_json(&nm->cfg->nats[i]));
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "nat", a);
    return 0;
}

static int h_nat_get(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_nat *n = net_config_nat(nm->cfg, req->params[0]);
    json_t *j = n ? net_nat_to_json(n) : NULL;
    pthread_mutex_unlock(&nm->lock);
    if (!j)
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no NAT network '%s'",
                               req->params[0]);
    resp->status = 200;
    resp->body = j;
    return 0;
}

static int h_nat_put(const struct http_request *req, struct http_response *resp, void *opaque,
                     struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    struct net_nat n;
    if (net_nat_from_json(body_or_empty(req), req->params[0], "", &n, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_nat *old = net_config_nat(c, n.name);
    bool created = !old;
    if (old) {
        net_nat_clear(old);
        *old = n;
    } else {
        if (c->n_nats >= NET_MAX_NATS) {
            net_nat_clear(&n);
            net_config_free(c);
            return error_set(errp, ERR_NO_SPACE, "at most %d NAT networks", NET_MAX_NATS);
        }
        c->nats = xrealloc(c->nats, (c->n_nats + 1) * sizeof(*c->nats));
        c->nats[c->n_nats++] = n;
    }
    AUTOFREE char *name = xstrdup(req->params[0]);
    if (commit(nm, c, errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_nat *now = net_config_nat(nm->cfg, name);
    resp->body = now ? net_nat_to_json(now) : json_null();
    pthread_mutex_unlock(&nm->lock);
    resp->status = created ? 201 : 200;
    return 0;
}

static int h_nat_delete(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    const char *name = req->params[0];
    AUTOFREE char *what = xasprintf("NAT network '%s'", name);
    if (refuse_if_used(nm, what, NULL, NULL, name, NULL, errp) < 0)
        return -1;
    struct net_config *c = config_copy(nm);
    struct net_nat *n = net_config_nat(c, name);
    if (!n) {
        net_config_free(c);
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no NAT network '%s'", name);
    }
    size_t i = (size_t) (n - c->nats);
    net_nat_clear(n);
    memmove(&c->nats[i], &c->nats[i + 1], (c->n_nats - i - 1) * sizeof(*c->nats));
    c->n_nats--;
    if (commit(nm, c, errp) < 0)
        return -1;
    resp->status = 204;
    return 0;
}

static int h_nat_leases(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm || net_name_validate(req->params[0], "name", errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    const struct net_nat *n = net_config_nat(nm->cfg, req->params[0]);
    char *path = n ? net_nat_lease_path(nm->state_dir, n) : NULL;
    pthread_mutex_unlock(&nm->lock);
    if (!path)
        return error_set_field(errp, ERR_NOT_FOUND, "name", "no NAT network '%s'",
                               req->params[0]);
    AUTOFREE char *text = file_exists(path) ? file_read_all(path, 16 << 20, NULL, errp)
                                            : xstrdup("");
    free(path);
    if (!text)
        return -1;
    resp->status = 200;
    resp->body = json_pack("{s:o}", "leases", net_nat_leases_parse(text));
    return 0;
}

/* -- ports, host NICs, planes, MACs -- */

static int h_ports(const struct http_request *req, struct http_response *resp, void *opaque,
                   struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    json_t *a = json_array();
    pthread_mutex_lock(&nm->lock);
    for (size_t i = 0; i < nm->n_plugs; i++) {
        const struct plug *p = &nm->plugs[i];
        const char *br = nic_bridge(nm->cfg, p->net);
        json_t *ips = json_array();
        for (size_t k = 0; p->net->ips && p->net->ips[k]; k++)
            json_array_append_new(ips, json_string(p->net->ips[k]));
        json_array_append_new(
            a, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:b}",
                         "vm", p->vm, "nic", p->nic, "tap", p->tap, "mac", p->mac, "bridge",
                         br ? json_string(br) : json_null(), "dvs",
                         p->net->dvs ? json_string(p->net->dvs) : json_null(), "portgroup",
                         p->net->portgroup ? json_string(p->net->portgroup) : json_null(),
                         "nat", p->net->nat ? json_string(p->net->nat) : json_null(),
                         "security_group",
                         p->net->security_group ? json_string(p->net->security_group)
                                                : json_null(),
                         "ips", ips, "index", (int) p->index, "ofport",
                         (int) (NET_OFPORT_BASE + p->index), "zone", (int) p->index,
                         "resolved", br != NULL));
    }
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "ports", a);
    return 0;
}

static int h_host_nics(const struct http_request *req, struct http_response *resp,
                       void *opaque, struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    json_t *nics = net_host_nics_list(errp);
    if (!nics)
        return -1;
    size_t i;
    json_t *e;
    pthread_mutex_lock(&nm->lock);
    json_array_foreach(nics, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *roles = json_array();
        for (size_t p = 0; p < NET_PLANE__COUNT; p++)
            for (size_t k = 0; nm->cfg->planes[p][k]; k++)
                if (!strcmp(nm->cfg->planes[p][k], name))
                    json_array_append_new(roles, json_string(net_plane_to_string(p)));
        const char *uplink_of = NULL;
        for (size_t d = 0; d < nm->cfg->n_dvs; d++)
            for (size_t k = 0; nm->cfg->dvs[d].uplink_nics[k]; k++)
                if (!strcmp(nm->cfg->dvs[d].uplink_nics[k], name))
                    uplink_of = nm->cfg->dvs[d].name;
        json_object_set_new(e, "roles", roles);
        json_object_set_new(e, "uplink_of", uplink_of ? json_string(uplink_of) : json_null());
    }
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    resp->body = json_pack("{s:o}", "nics", nics);
    return 0;
}

static int h_planes_get(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    (void) req;
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    pthread_mutex_lock(&nm->lock);
    resp->body = net_planes_to_json(nm->cfg->planes);
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    return 0;
}

static int h_planes_put(const struct http_request *req, struct http_response *resp,
                        void *opaque, struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    char **planes[NET_PLANE__COUNT];
    if (net_planes_from_json(body_or_empty(req), "", planes, errp) < 0)
        return -1;
    AUTOJSON json_t *nics = net_host_nics_list(errp);
    int r = nics ? 0 : -1;
    for (size_t p = 0; r == 0 && p < NET_PLANE__COUNT; p++)
        for (size_t k = 0; r == 0 && planes[p][k]; k++) {
            bool found = false;
            size_t i;
            json_t *e;
            json_array_foreach(nics, i, e)
                found |= !strcmp(json_string_value(json_object_get(e, "name")), planes[p][k]);
            if (!found) {
                AUTOFREE char *f = xasprintf("%s[%zu]", net_plane_to_string(p), k);
                r = error_set_field(errp, ERR_NOT_FOUND, f, "this host has no NIC '%s'",
                                    planes[p][k]);
            }
        }
    if (r < 0) {
        for (size_t p = 0; p < NET_PLANE__COUNT; p++)
            strv_free(planes[p]);
        return -1;
    }
    struct net_config *c = config_copy(nm);
    for (size_t p = 0; p < NET_PLANE__COUNT; p++) {
        strv_free(c->planes[p]);
        c->planes[p] = planes[p];
    }
    if (commit(nm, c, errp) < 0)
        return -1;
    pthread_mutex_lock(&nm->lock);
    resp->body = net_planes_to_json(nm->cfg->planes);
    pthread_mutex_unlock(&nm->lock);
    resp->status = 200;
    return 0;
}

static int h_macs(const struct http_request *req, struct http_response *resp, void *opaque,
                  struct error **errp)
{
    struct netmgr *nm = req_nm(opaque, errp);
    if (!nm)
        return -1;
    const json_t *b = body_or_empty(req);
    static const char *const keys[] = { "count", "prefix", NULL };
    unsigned long long count = 1;
    const char *prefix = NET_MAC_PREFIX_DEFAULT;
    if (json_check_keys(b, keys, "", errp) < 0 ||
        json_get_uint(b, "count", "", false, 1, 256, &count, errp) < 0 ||
        json_get_string(b, "prefix", "", false, &prefix, errp) < 0 ||
        net_mac_prefix_validate(prefix, "prefix", errp) < 0)
        return -1;
    /* In use: every NIC of every VM defined here, and what was handed out. */
    size_t n_vms;
    struct vm **vms = agent_vm_list(nm->a, &n_vms);
    size_t n_used = 0;
    char **used = NULL;
    for (size_t i = 0; i < n_vms; i++) {
        pthread_mutex_lock(&vms[i]->lock);
        for (size_t k = 0; vms[i]->def && k < vms[i]->def->n_nics; k++) {
            used = xrealloc(used, (n_used + 1) * sizeof(char *));
            used[n_used++] = xstrdup(vms[i]->def->nics[k].mac);
        }
        pthread_mutex_unlock(&vms[i]->lock);
    }
    agent_vm_list_free(nm->a, vms, n_vms);
    json_t *out = json_array();
    pthread_mutex_lock(&nm->lock);
    size_t i;
    json_t *e;
    json_array_foreach(nm->macs, i, e) {
        used = xrealloc(used, (n_used + 1) * sizeof(char *));
        used[n_used++] = xstrdup(json_string_value(e));
    }
    int r = 0;
    for (unsigned long long k = 0; k < count && r == 0; k++) {
        char mac[18];
        r = net_mac_alloc(prefix, &nm->mac_cursor, used, n_used, mac, errp);
        if (r == 0) {
            json_array_append_new(out, json_string(mac));
            json_array_append_new(nm->macs, json_string(mac));
            used = xrealloc(used, (n_used + 1) * sizeof(char *));
            used[n_used++] = xstrdup(mac);
        }
    }
    /* Remember the last 4096 handed out. */
    while (json_array_size(nm->macs) > 4096)
        json_array_remove(nm->macs, 0);
    if (r == 0)
        r = save_locked(nm, errp);
    pthread_mutex_unlock(&nm->lock);
    for (size_t k = 0; k < n_used; k++)
        free(used[k]);
    free(used);
    if (r < 0) {
        json_decref(out);
        return -1;
    }
    resp->status = 200;
    resp->body = json_pack("{s:o}", "macs", out);
    return 0;
}

static const struct http_route net_routes[] = {
    { "GET", "/v1/net", h_status },
    { "POST", "/v1/net/apply", h_apply },
    { "GET", "/v1/net/dvs", h_dvs_list },
    { "GET", "/v1/net/dvs/{name}", h_dvs_get },
    { "PUT", "/v1/net/dvs/{name}", h_dvs_put },
    { "DELETE", "/v1/net/dvs/{name}", h_dvs_delete },
    { "GET", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_pg_get },
    { "PUT", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_pg_put },
    { "DELETE", "/v1/net/dvs/{name}/portgroups/{portgroup}", h_pg_delete },
    { "GET", "/v1/net/security-groups", h_sg_list },
    { "GET", "/v1/net/security-groups/{name}", h_sg_get },
    { "PUT", "/v1/net/security-groups/{name}", h_sg_put },
    { "DELETE", "/v1/net/security-groups/{name}", h_sg_delete },
    { "GET", "/v1/net/nat", h_nat_list },
    { "GET", "/v1/net/nat/{name}", h_nat_get },
    { "PUT", "/v1/net/nat/{name}", h_nat_put },
    { "DELETE", "/v1/net/nat/{name}", h_nat_delete },
    { "GET", "/v1/net/nat/{name}/leases", h_nat_leases },
    { "GET", "/v1/net/ports", h_ports },
    { "GET", "/v1/net/host-nics", h_host_nics },
    { "GET", "/v1/net/planes", h_planes_get },
    { "PUT", "/v1/net/planes", h_planes_put },
    { "POST", "/v1/net/macs", h_macs },
    { NULL, NULL, NULL },
};

const struct agent_module net_module = {
    .name = "network",
    .routes = net_routes,
    .init = nm_init,
    .fini = nm_fini,
    .vm_prepare = nm_vm_prepare,
    .vm_started = nm_vm_started,
    .vm_stopped = nm_vm_stopped,
    .nic_plug = nm_nic_plug,
    .nic_unplug = nm_nic_unplug,
};
