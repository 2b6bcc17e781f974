/* resources.c - see resources.h. */
#include "manager/resources.h"

const struct task_kind_def *const resource_task_kinds[] = { NULL };
