/* host_nics.c - list the host's NICs from `ip -j -d address show`. */
#include "net/host_nics.h"

#include <string.h>

#include "util/command.h"
#include "util/json_util.h"
#include "util/mem.h"

json_t *net_host_nics_parse(const char *ip_json, struct error **errp)
{
    AUTOJSON json_t *in = json_from_string(ip_json, strlen(ip_json), errp);
    if (!in)
        return NULL;
    if (!json_is_array(in)) {
        error_set(errp, ERR_INTERNAL, "unexpected output of 'ip -j address'");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(in, i, e) {
        const char *name = json_string_value(json_object_get(e, "ifname"));
        if (!name || !strcmp(name, "lo"))
            continue;
        const char *kind = json_string_value(
            json_object_get(json_object_get(e, "linkinfo"), "info_kind"));
        if (kind && !strcmp(kind, "tun"))
            continue;
        if (!kind)
            kind = json_object_get(e, "parentbus") ? "physical" : "other";
        json_t *addrs = json_array();
        size_t k;
        json_t *ai;
        json_array_foreach(json_object_get(e, "addr_info"), k, ai) {
            const char *local = json_string_value(json_object_get(ai, "local"));
            json_int_t pfx = json_integer_value(json_object_get(ai, "prefixlen"));
            if (local)
                json_array_append_new(addrs, json_sprintf("%s/%d", local, (int) pfx));
        }
        const char *mac = json_string_value(json_object_get(e, "address"));
        const char *state = json_string_value(json_object_get(e, "operstate"));
        const char *master = json_string_value(json_object_get(e, "master"));
        json_array_append_new(out, json_pack("{s:s, s:o, s:I, s:s, s:s, s:o, s:o}", "name", name,
                                             "mac", mac ? json_string(mac) : json_null(), "mtu",
                                             json_integer_value(json_object_get(e, "mtu")),
                                             "state", state ? state : "UNKNOWN", "kind", kind,
                                             "addresses", addrs, "master",
                                             master ? json_string(master) : json_null()));
    }
    return out;
}

json_t *net_host_nics_list(struct error **errp)
{
    AUTOCOMMAND struct command *cmd = command_new("ip");
    command_add_args(cmd, "-j", "-d", "address", "show", NULL);
    command_set_timeout(cmd, 10000);
    AUTOFREE char *out = NULL;
    if (command_run(cmd, NULL, &out, NULL, errp) < 0)
        return NULL;
    return net_host_nics_parse(out ? out : "[]", errp);
}
