/* format.c - what `strata` prints for people: tables, "Field: value"
 * listings, sizes and the progress line of a task.  Pure functions from
 * JSON to new strings; client.c decides where they go (and --json bypasses
 * all of this, printing the API's own JSON).
 *
 * Neighbours: cli.h (column types), verbs.c (the columns of each verb),
 * client.c (the caller). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/mem.h"

/* A growing string. */
struct buf {
    char *s;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_pad(struct buf *b, size_t n)
{
    while (n--)
        buf_add(b, " ", 1);
}

static char *buf_take(struct buf *b)
{
    if (!b->s)
        return xstrdup("");
    return b->s;
}

char *cli_fmt_bytes(unsigned long long bytes)
{
    static const char units[] = "KMGTPE";
    if (bytes < 1024)
        return xasprintf("%llu", bytes);
    double v = (double) bytes;
    int u = -1;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (v >= 100.0 || v == (double) (unsigned long long) v)
        return xasprintf("%.0f%c", v, units[u]);
    return xasprintf("%.1f%c", v, units[u]);
}

/* The value at dotted path 'key' in 'obj', or NULL. */
static const json_t *lookup(const json_t *obj, const char *key)
{
    char part[128];
    const json_t *j = obj;
    while (j && *key) {
        const char *dot = strchr(key, '.');
        size_t n = dot ? (size_t) (dot - key) : strlen(key);
        if (n >= sizeof part)
            return NULL;
        memcpy(part, key, n);
        part[n] = '\0';
        j = json_is_object(j) ? json_object_get(j, part) : NULL;
        key += n + (dot ? 1 : 0);
    }
    return j;
}

/* One line: control characters (a name never has them, a message might)
 * shown as '?'. */
static char *clean(const char *s)
{
    char *c = xstrdup(s);
    for (char *p = c; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

static char *scalar_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return xstrdup("-");
    if (json_is_string(v))
        return *json_string_value(v) ? clean(json_string_value(v)) : xstrdup("-");
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%g", json_real_value(v));
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "yes" : "no");
    AUTOFREE char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    return clean(s ? s : "?");
}

char *cli_cell(const json_t *obj, const struct cli_col *col)
{
    const json_t *v = lookup(obj, col->key);
    switch (col->fmt) {
    case COL_BOOL:
        if (!v || json_is_null(v))
            return xstrdup("-");
        return xstrdup(json_is_true(v) ? "yes" : "no");
    case COL_BYTES:
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            return cli_fmt_bytes((unsigned long long) json_integer_value(v));
        break;
    case COL_PERCENT:
        if (json_is_integer(v))
            return xasprintf("%" JSON_INTEGER_FORMAT "%%", json_integer_value(v));
        break;
    case COL_VM_MEMORY:
        if (json_is_object(v))
            v = json_object_get(v, "mib");
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            return cli_fmt_bytes((unsigned long long) json_integer_value(v) << 20);
        break;
    case COL_VM_VCPUS:
        if (json_is_object(v))
            v = json_object_get(v, "count");
        break;
    case COL_HOSTS:
        if (json_is_array(v)) {
            struct buf b = { 0 };
            size_t i;
            const json_t *h;
            json_array_foreach(v, i, h) {
                const json_t *n = json_is_object(h) ? json_object_get(h, "host_name") : h;
                if (json_is_object(h) && !json_is_string(n))
                    n = json_object_get(h, "name");
                if (json_is_object(h) && !json_is_string(n))
                    n = json_object_get(h, "host_id");
                AUTOFREE char *t = scalar_text(n);
                if (i)
                    buf_str(&b, ",");
                buf_str(&b, t);
            }
            return b.s ? buf_take(&b) : xstrdup("-");
        }
        break;
    case COL_ERROR:
        if (json_is_object(json_object_get(v, "error")))
            v = json_object_get(v, "error");
        if (json_is_object(v))
            v = json_object_get(v, "message");
        break;
    case COL_TEXT:
        break;
    }
    return scalar_text(v);
}

char *cli_table(const struct cli_col *cols, const json_t *items)
{
    size_t ncols = 0;
    while (cols[ncols].header)
        ncols++;
    size_t nrows = json_array_size(items);
    char **cells = xcalloc((nrows + 1) * ncols + 1, sizeof *cells);
    size_t *width = xcalloc(ncols + 1, sizeof *width);
    for (size_t c = 0; c < ncols; c++) {
        cells[c] = xstrdup(cols[c].header);
        width[c] = strlen(cols[c].header);
    }
    for (size_t r = 0; r < nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            char *t = cli_cell(json_array_get(items, r), &cols[c]);
            cells[(r + 1) * ncols + c] = t;
            if (strlen(t) > width[c])
                width[c] = strlen(t);
        }
    }
    struct buf b = { 0 };
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *t = cells[r * ncols + c];
            buf_str(&b, t);
            if (c + 1 < ncols)
                buf_pad(&b, width[c] - strlen(t) + 2);
        }
        buf_str(&b, "\n");
    }
    for (size_t i = 0; i < (nrows + 1) * ncols; i++)
        free(cells[i]);
    free(cells);
    free(width);
    return buf_take(&b);
}

char *cli_kv(const struct cli_col *cols, const json_t *obj)
{
    size_t w = 0;
    for (size_t c = 0; cols[c].header; c++)
        if (strlen(cols[c].header) > w)
            w = strlen(cols[c].header);
    struct buf b = { 0 };
    for (size_t c = 0; cols[c].header; c++) {
        AUTOFREE char *t = cli_cell(obj, &cols[c]);
        buf_str(&b, cols[c].header);
        buf_str(&b, ":");
        buf_pad(&b, w - strlen(cols[c].header) + 1);
        buf_str(&b, t);
        buf_str(&b, "\n");
    }
    return buf_take(&b);
}

char *cli_progress_line(const char *label, int pct, const char *detail, int width)
{
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    if (width < 1)
        width = 1;
    int fill = pct * width / 100;
    struct buf b = { 0 };
    if (label && *label) {
        buf_str(&b, label);
        buf_str(&b, " ");
    }
    buf_str(&b, "[");
    for (int i = 0; i < width; i++)
        buf_str(&b, i < fill ? "#" : ".");
    char num[16];
    snprintf(num, sizeof num, "] %3d%%", pct);
    buf_str(&b, num);
    if (detail && *detail) {
        AUTOFREE char *d = clean(detail);
        buf_str(&b, " ");
        buf_str(&b, d);
    }
    return buf_take(&b);
}

const char *cli_task_step(const json_t *task)
{
    const json_t *steps = json_object_get(task, "steps");
    const char *last = NULL;
    size_t i;
    const json_t *s;
    json_array_foreach(steps, i, s) {
        const char *st = json_string_value(json_object_get(s, "state"));
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!st || !name)
            continue;
        if (!strcmp(st, "running"))
            return name;
        if (strcmp(st, "pending"))
            last = name;
    }
    return last;
}

bool cli_task_state_final(const char *state)
{
    return state && (!strcmp(state, "succeeded") || !strcmp(state, "failed") ||
                     !strcmp(state, "cancelled"));
}
