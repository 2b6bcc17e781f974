/* host_caps.h - what a host's QEMU can do, as the argv builder needs it.
 *
 * Filled by host/host_facts.c from probes of the real host; filled by hand in
 * golden tests so the same definition gives the same argv everywhere. */
#ifndef STRATA_HOST_CAPS_H
#define STRATA_HOST_CAPS_H

#include <stdbool.h>

enum accel { ACCEL_TCG, ACCEL_KVM };

struct host_caps {
    enum accel accel;
    const char *qemu_binary;     /* e.g. "/usr/bin/qemu-system-x86_64" */
    unsigned qemu_version;       /* major * 1000000 + minor * 1000 + micro */
    bool sandbox;                /* QEMU built with seccomp (-sandbox) */
};

const char *accel_to_string(enum accel a);

#endif
