/* api_storage.c - REST routes for datastores and volumes. */
#include "manager/api.h"

const struct api_route api_storage_routes[] = {
    { NULL, NULL, API_DENY, NULL },
};
