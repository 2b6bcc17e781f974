/* rest_load.c - a concurrent HTTP load generator that measures the latency
 * of every request, for bench/manager-bench.sh.
 *
 *   rest_load --socket PATH [--token TOKEN] [--clients N] [--duration S]
 *             [--rounds R] [--warmup S] [--ids FILE] [--pid PID]
 *             LABEL=PATH [LABEL=PATH ...]
 *
 * N client threads (default 4), each with one libcurl easy handle kept for
 * the whole run (HTTP/1.1 keep-alive over the unix socket PATH, so a client
 * opens one connection), send GET PATH with "Authorization: Bearer TOKEN" as
 * fast as the server answers, for S seconds (default 3) per route.  Routes
 * take turns: round 1 runs every route in the order given, then round 2, ...
 * (R rounds, default 2), so each sees the same host load; a warm-up of
 * --warmup seconds per route (default 1) comes first and is not counted.
 * "{id}" in PATH is replaced, request by request, by a random line of FILE.
 *
 * Each request is timed from just before curl_easy_perform() to its return
 * (CLOCK_MONOTONIC): request sent, whole response read.  A request that fails
 * or answers anything but 200 counts as an error, and its time is not kept.
 * For each route it prints: requests, requests/s, p50, p99 (nearest rank)
 * and max latency in ms, errors, mean response size, and with --pid the
 * server's CPU time (utime + stime of /proc/PID/stat) per request; then the
 * same p50/p99 as a multiple of the first route's (the baseline).
 *
 * Neighbours: bench/manager-bench.sh (runs it), bench/mgr_seed.c (writes
 * FILE). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define MAX_ROUTES 16
#define MAX_CLIENTS 256

struct route {
    const char *label, *path;
    uint64_t *ns;               /* latencies of successful requests */
    size_t n, cap;
    uint64_t errors, bytes;
    double seconds;             /* measured wall time */
    double server_cpu_s;        /* with --pid */
};

struct client {
    pthread_t thread;
    CURL *curl;
    struct curl_slist *headers;
    uint32_t rnd;
    /* per run */
    const struct route *route;
    uint64_t end_ns;
    uint64_t *ns;
    size_t n, cap;
    uint64_t errors, bytes, last_size;
    char last_error[CURL_ERROR_SIZE];
    long last_status;
};

static const char *sock_path;
static char **ids;
static size_t n_ids;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void *xrealloc_or_die(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "rest_load: out of memory\n");
        exit(1);
    }
    return q;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct client *c = arg;
    (void) data;
    c->last_size += size * nmemb;
    return size * nmemb;
}

static uint32_t xorshift(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* The URL of the next request: PATH with "{id}" replaced by a random id. */
static void make_url(struct client *c, char *url, size_t size)
{
    const char *p = c->route->path;
    const char *hole = strstr(p, "{id}");
    if (!hole || n_ids == 0) {
        snprintf(url, size, "http://manager%s", p);
        return;
    }
    const char *id = ids[xorshift(&c->rnd) % n_ids];
    snprintf(url, size, "http://manager%.*s%s%s", (int) (hole - p), p, id, hole + 4);
}

static void *client_run(void *arg)
{
    struct client *c = arg;
    char url[1024];
    while (now_ns() < c->end_ns) {
        make_url(c, url, sizeof url);
        curl_easy_setopt(c->curl, CURLOPT_URL, url);
        c->last_size = 0;
        uint64_t t0 = now_ns();
        CURLcode rc = curl_easy_perform(c->curl);
        uint64_t t1 = now_ns();
        long status = 0;
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200) {
            c->errors++;
            c->last_status = status;
            if (rc != CURLE_OK && !c->last_error[0])
                snprintf(c->last_error, sizeof c->last_error, "%s", curl_easy_strerror(rc));
            continue;
        }
        if (c->n == c->cap) {
            c->cap = c->cap ? 2 * c->cap : 4096;
            c->ns = xrealloc_or_die(c->ns, c->cap * sizeof(*c->ns));
        }
        c->ns[c->n++] = t1 - t0;
        c->bytes += c->last_size;
    }
    return NULL;
}

/* utime + stime of 'pid' in seconds, or -1. */
static double proc_cpu_s(long pid)
{
    if (pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    const char *p = strrchr(buf, ')');      /* comm may contain spaces */
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

/* Runs 'r' on every client for 'seconds'; 'keep' adds the results to 'r'. */
static void run(struct client *cl, int n_clients, struct route *r, double seconds, bool keep,
                long pid)
{
    uint64_t start = now_ns();
    double cpu0 = proc_cpu_s(pid);
    for (int i = 0; i < n_clients; i++) {
        cl[i].route = r;
        cl[i].end_ns = start + (uint64_t) (seconds * 1e9);
        cl[i].n = 0;
        cl[i].errors = cl[i].bytes = 0;
        if (pthread_create(&cl[i].thread, NULL, client_run, &cl[i]) != 0) {
            fprintf(stderr, "rest_load: cannot start a client thread\n");
            exit(1);
        }
    }
    for (int i = 0; i < n_clients; i++)
        pthread_join(cl[i].thread, NULL);
    double wall = (double) (now_ns() - start) / 1e9;
    double cpu1 = proc_cpu_s(pid);
    if (!keep)
        return;
    r->seconds += wall;
    if (cpu0 >= 0 && cpu1 >= 0)
        r->server_cpu_s += cpu1 - cpu0;
    for (int i = 0; i < n_clients; i++) {
        if (r->n + cl[i].n > r->cap) {
            r->cap = (r->n + cl[i].n) * 2;
            r->ns = xrealloc_or_die(r->ns, r->cap * sizeof(*r->ns));
        }
        memcpy(r->ns + r->n, cl[i].ns, cl[i].n * sizeof(*r->ns));
        r->n += cl[i].n;
        r->errors += cl[i].errors;
        r->bytes += cl[i].bytes;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n-1], in ms. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t) (p / 100.0 * (double) n);
    if ((double) rank < p / 100.0 * (double) n)
        rank++;
    if (rank < 1)
        rank = 1;
    return (double) v[rank - 1] / 1e6;
}

static void load_ids(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "rest_load: cannot open '%s': %s\n", file, strerror(errno));
        exit(1);
    }
    char line[256];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (n_ids == cap) {
            cap = cap ? 2 * cap : 1024;
            ids = xrealloc_or_die(ids, cap * sizeof(*ids));
        }
        ids[n_ids] = strdup(line);
        if (!ids[n_ids++]) {
            fprintf(stderr, "rest_load: out of memory\n");
            exit(1);
        }
    }
    fclose(f);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: rest_load --socket PATH [--token TOKEN] [--clients N] [--duration S]\n"
                 "                 [--rounds R] [--warmup S] [--ids FILE] [--pid PID]\n"
                 "                 LABEL=PATH [LABEL=PATH ...]\n");
}

int main(int argc, char **argv)
{
    const char *token = NULL, *ids_file = NULL;
    int n_clients = 4, rounds = 2;
    double duration = 3, warmup = 1;
    long pid = 0;
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' }, { "token", required_argument, NULL, 't' },
        { "clients", required_argument, NULL, 'c' }, { "duration", required_argument, NULL, 'd' },
        { "rounds", required_argument, NULL, 'r' }, { "warmup", required_argument, NULL, 'w' },
        { "ids", required_argument, NULL, 'i' }, { "pid", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': sock_path = optarg; break;
        case 't': token = optarg; break;
        case 'c': n_clients = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'i': ids_file = optarg; break;
        case 'p': pid = atol(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int n_routes = argc - optind;
    if (!sock_path || n_routes < 1 || n_routes > MAX_ROUTES || n_clients < 1 ||
        n_clients > MAX_CLIENTS || rounds < 1 || !(duration > 0) || warmup < 0) {
        usage(stderr);
        return 2;
    }
    struct route routes[MAX_ROUTES] = { { 0 } };
    for (int i = 0; i < n_routes; i++) {
        char *arg = argv[optind + i], *eq = strchr(arg, '=');
        if (!eq || eq == arg || eq[1] != '/') {
            fprintf(stderr, "rest_load: route '%s' is not LABEL=/PATH\n", arg);
            return 2;
        }
        *eq = '\0';
        routes[i].label = arg;
        routes[i].path = eq + 1;
        if (strstr(routes[i].path, "{id}") && !ids_file) {
            fprintf(stderr, "rest_load: route '%s' needs --ids\n", arg);
            return 2;
        }
    }
    if (ids_file)
        load_ids(ids_file);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct client *cl = calloc((size_t) n_clients, sizeof(*cl));
    if (!cl)
        return 1;
    char auth[512] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    for (int i = 0; i < n_clients; i++) {
        struct client *c = &cl[i];
        c->rnd = 2463534242u + 7919u * (uint32_t) i;
        c->curl = curl_easy_init();
        if (!c->curl)
            return 1;
        if (token)
            c->headers = curl_slist_append(NULL, auth);
        curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, sock_path);
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->last_error);
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 30L);
        curl_easy_setopt(c->curl, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    }

    if (warmup > 0)
        for (int r = 0; r < n_routes; r++)
            run(cl, n_clients, &routes[r], warmup, false, pid);
    for (int round = 0; round < rounds; round++)
        for (int r = 0; r < n_routes; r++)
            run(cl, n_clients, &routes[r], duration, true, pid);

    printf("%d clients (one keep-alive connection each), %d x %.1f s per route, routes "
           "alternating\n", n_clients, rounds, duration);
    printf("  %-12s %9s %9s %8s %8s %8s %7s %9s %9s %10s %10s\n", "route", "requests", "req/s",
           "p50 ms", "p99 ms", "max ms", "errors", "bytes", "cpu us/r", "p50 x base",
           "p99 x base");
    double base50 = 0, base99 = 0;
    int rc = 0;
    for (int r = 0; r < n_routes; r++) {
        struct route *rt = &routes[r];
        qsort(rt->ns, rt->n, sizeof(*rt->ns), cmp_u64);
        double p50 = pct_ms(rt->ns, rt->n, 50), p99 = pct_ms(rt->ns, rt->n, 99);
        double mx = rt->n ? (double) rt->ns[rt->n - 1] / 1e6 : 0;
        if (r == 0) {
            base50 = p50;
            base99 = p99;
        }
        char cpu[32] = "-";
        if (pid > 0 && rt->n)
            snprintf(cpu, sizeof cpu, "%.0f", rt->server_cpu_s * 1e6 / (double) rt->n);
        printf("  %-12s %9zu %9.0f %8.3f %8.3f %8.2f %7" PRIu64 " %9.0f %9s %10.1f %10.1f\n",
               rt->label, rt->n, (double) rt->n / (rt->seconds > 0 ? rt->seconds : 1), p50, p99,
               mx, rt->errors, rt->n ? (double) rt->bytes / (double) rt->n : 0.0, cpu,
               base50 > 0 ? p50 / base50 : 0.0, base99 > 0 ? p99 / base99 : 0.0);
        if (rt->n == 0)
            rc = 1;
    }
    for (int i = 0; i < n_clients; i++) {
        if (cl[i].last_error[0] || cl[i].last_status)
            fprintf(stderr, "rest_load: client %d: last failure: %s (HTTP %ld)\n", i,
                    cl[i].last_error[0] ? cl[i].last_error : "-", cl[i].last_status);
        curl_slist_free_all(cl[i].headers);
        curl_easy_cleanup(cl[i].curl);
        free(cl[i].ns);
    }
    for (int r = 0; r < n_routes; r++)
        free(routes[r].ns);
    for (size_t i = 0; i < n_ids; i++)
        free(ids[i]);
    free(ids);
    free(cl);
    curl_global_cleanup();
    return rc;
}
