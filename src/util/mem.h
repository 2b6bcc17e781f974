/* mem.h - allocation that aborts on out-of-memory, and cleanup helpers.
 *
 * Strata never handles OOM locally: x*alloc() abort.  Scope-bound cleanup uses
 * gcc's cleanup attribute: `AUTOFREE char *p = NULL;` frees 'p' when it leaves
 * scope; `steal_pointer(&p)` hands ownership out and leaves NULL behind. */
#ifndef STRATA_MEM_H
#define STRATA_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

void *xmalloc(size_t n);
void *xzalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);          /* NULL in, NULL out. */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static inline void *steal_pointer_impl(void **pp)
{
    void *p = *pp;
    *pp = NULL;
    return p;
}
#define steal_pointer(pp) steal_pointer_impl((void **) (pp))

static inline void autofree_impl(void *pp) { free(*(void **) pp); }
#define AUTOFREE __attribute__((cleanup(autofree_impl)))

static inline void autoclose_impl(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define AUTOCLOSE __attribute__((cleanup(autoclose_impl)))

/* Frees a NULL-terminated array of strings and the array.  Accepts NULL. */
void strv_free(char **v);
size_t strv_len(char *const *v);
static inline void autostrv_impl(char ***pv) { strv_free(*pv); }
#define AUTOSTRV __attribute__((cleanup(autostrv_impl)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
