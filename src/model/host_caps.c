/* host_caps.c - see host_caps.h. */
#include "model/host_caps.h"

const char *accel_to_string(enum accel a)
{
    return a == ACCEL_KVM ? "kvm" : "tcg";
}
