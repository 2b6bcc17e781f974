/* api_net.c - REST routes for DVSs, port groups and NAT networks. */
#include "manager/api.h"

const struct api_route api_net_routes[] = {
    { NULL, NULL, API_DENY, NULL },
};
