/* uuid.h - RFC 4122 version 4 UUIDs as 36-character lowercase strings. */
#ifndef STRATA_UUID_H
#define STRATA_UUID_H

#include <stdbool.h>

#define UUID_STRLEN 36

/* Writes a new random UUID into 'out' (UUID_STRLEN + 1 bytes). */
void uuid_generate(char out[UUID_STRLEN + 1]);
/* True if 's' is a canonical 8-4-4-4-12 hex UUID (either case). */
bool uuid_is_valid(const char *s);

#endif
