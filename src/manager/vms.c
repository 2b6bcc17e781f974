/* vms.c - see vms.h. */
#define LOG_MODULE "vms"
#include "manager/vms.h"

const struct task_kind_def *const vm_task_kinds[] = { NULL };
