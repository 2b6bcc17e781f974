/* vms.c - see vms.h. */
#define LOG_MODULE "vms"
#include "manager/vms.h"

const struct task_kind_def *const vm_task_kinds[] = { NULL };

void vms_host_sync(struct manager *m, const char *host_id, struct agent_conn *a,
                   bool reconnected)
{
    (void) m, (void) host_id, (void) a, (void) reconnected;
}
