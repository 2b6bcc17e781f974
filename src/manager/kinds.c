/* kinds.c - every kind of task the manager runs, from the modules that
 * define them (vms.c: VM provisioning and operations; resources.c:
 * datastores, volumes and networks pushed to hosts).
 *
 * Neighbours: task_engine.h (what a kind is), main.c (hands the list to
 * manager_open()). */
#include <pthread.h>

#include "manager/manager.h"
#include "manager/resources.h"
#include "manager/vms.h"
#include "util/mem.h"

static const struct task_kind_def **all;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void)
{
    const struct task_kind_def *const *parts[] = { vm_task_kinds, resource_task_kinds };
    size_t n = 0;
    for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
        for (const struct task_kind_def *const *k = parts[p]; *k; k++)
            n++;
    all = xcalloc(n + 1, sizeof *all);
    size_t i = 0;
    for (size_t p = 0; p < ARRAY_SIZE(parts); p++)
        for (const struct task_kind_def *const *k = parts[p]; *k; k++)
            all[i++] = *k;
}

const struct task_kind_def *const *manager_task_kinds(void)
{
    pthread_once(&once, build);
    return all;
}
