/*
 * procs.c: child processes of infergate-bench and how they are watched.
 *
 * Children are spawned with fork+execve so that each gets its own process
 * group (a Ctrl-C in the terminal reaches only infergate-bench, which then
 * stops them in order) and PR_SET_PDEATHSIG (if infergate-bench itself is
 * killed, they get SIGTERM from the kernel instead of living on).
 *
 * The registry of running children and the interrupted flag are the two
 * pieces of file-level state: a signal handler and an atexit hook can reach
 * nothing else.
 */
#include "procs.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "infergate/base/buf.h"
#include "infergate/base/error.h"
#include "load.h"

extern char **environ;

#define MAX_CHILDREN 16

static ig_proc_t *registry[MAX_CHILDREN];
static volatile sig_atomic_t interrupted;

bool ig_bench_interrupted(void)
{
    return interrupted != 0;
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void ig_proc_setup(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    atexit(ig_proc_stop_all);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void registry_add(ig_proc_t *p)
{
    for (int k = 0; k < MAX_CHILDREN; k++) {
        if (!registry[k]) {
            registry[k] = p;
            return;
        }
    }
}

static void registry_remove(ig_proc_t *p)
{
    for (int k = 0; k < MAX_CHILDREN; k++)
        if (registry[k] == p)
            registry[k] = NULL;
}

/* The environment minus INFERGATE_*, built before fork. */
static char **child_environ(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (strncmp(environ[k], "INFERGATE_", 10) != 0)
            env[m++] = environ[k];
    env[m] = NULL;
    return env;
}

int ig_proc_spawn(ig_proc_t *p, const char *name, char *const argv[], const char *log_path,
                  char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log_path, sizeof(p->log_path), "%s", log_path);
    int count = 0;
    for (int k = 0; k < MAX_CHILDREN; k++)
        count += registry[k] != NULL;
    if (count == MAX_CHILDREN) {
        snprintf(err, errlen, "%s: too many child processes", name);
        return IG_EIO;
    }
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open log %s: %s", name, log_path, strerror(errno));
        return IG_EIO;
    }
    char **env = child_environ();
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "%s: fork: %s", name, strerror(errno));
        close(fd);
        free(env);
        return IG_EIO;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls until execve. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execve(argv[0], argv, env ? env : environ);
        static const char msg[] = "infergate-bench: execve failed\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    close(fd);
    free(env);
    p->pid = pid;
    registry_add(p);
    fprintf(stderr, "infergate-bench: started %s (pid %d)\n", name, (int)pid);
    return 0;
}

bool ig_proc_alive(ig_proc_t *p)
{
    if (p->pid <= 0 || p->reaped)
        return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->reaped = true;
        p->exit_status = st;
        registry_remove(p);
        return false;
    }
    return r == 0;
}

/* A clean stop is exit 0 or death by our SIGTERM. Anything else (a
 * sanitizer abort, a crash, a hang that needed SIGKILL) is worth a line: the
 * figures of that peer may be suspect, and the tests look for it. */
static void report_exit(const ig_proc_t *p, bool killed, unsigned grace_ms)
{
    int st = p->exit_status;
    if (killed)
        fprintf(stderr, "infergate-bench: %s (pid %d) ignored SIGTERM for %u ms and was killed\n",
                p->name, (int)p->pid, grace_ms);
    else if (p->reaped && ((WIFEXITED(st) && WEXITSTATUS(st) != 0) ||
                           (WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM)))
        fprintf(stderr, "infergate-bench: %s (pid %d) exited abnormally (%s %d); log: %s\n",
                p->name, (int)p->pid, WIFSIGNALED(st) ? "signal" : "status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), p->log_path);
}

void ig_proc_stop(ig_proc_t *p, unsigned grace_ms)
{
    if (p->pid <= 0)
        return;
    if (!ig_proc_alive(p)) {
        if (p->reaped && !p->reported) {
            p->reported = true;
            report_exit(p, false, grace_ms);
        }
        registry_remove(p);
        return;
    }
    kill(p->pid, SIGTERM);
    uint64_t deadline = now_ms() + grace_ms;
    while (ig_proc_alive(p) && now_ms() < deadline)
        sleep_ms(10);
    bool killed = false;
    if (ig_proc_alive(p)) {
        kill(p->pid, SIGKILL);
        killed = true;
        int st;
        if (waitpid(p->pid, &st, 0) == p->pid) {
            p->reaped = true;
            p->exit_status = st;
        }
    }
    registry_remove(p);
    p->reported = true;
    report_exit(p, killed, grace_ms);
}

void ig_proc_stop_all(void)
{
    for (int k = 0; k < MAX_CHILDREN; k++) {
        ig_proc_t *p = registry[k];
        if (p)
            ig_proc_stop(p, 3000);
    }
}

static int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Explains why a wait ended: the child died, time ran out, or Ctrl-C. */
static int wait_failed(ig_proc_t *p, const char *what, char *err, size_t errlen)
{
    if (ig_bench_interrupted()) {
        snprintf(err, errlen, "interrupted");
        return IG_ECANCELED;
    }
    char tail[600];
    ig_proc_log_tail(p, tail, sizeof(tail));
    if (!ig_proc_alive(p)) {
        int st = p->exit_status;
        snprintf(err, errlen, "%s exited (%s %d) before %s; its log %s ends:\n%s", p->name,
                 WIFSIGNALED(st) ? "signal" : "status",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), what, p->log_path, tail);
        return IG_EIO;
    }
    snprintf(err, errlen, "%s: timed out waiting until %s; its log %s ends:\n%s", p->name, what,
             p->log_path, tail);
    return IG_ETIMEDOUT;
}

int ig_proc_wait_port(ig_proc_t *p, int port, unsigned timeout_ms, char *err, size_t errlen)
{
    uint64_t deadline = now_ms() + timeout_ms;
    char what[64];
    snprintf(what, sizeof(what), "port %d accepts", port);
    while (!ig_bench_interrupted() && ig_proc_alive(p) && now_ms() < deadline) {
        int fd = connect_loopback(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        sleep_ms(20);
    }
    return wait_failed(p, what, err, errlen);
}

int ig_proc_wait_port_file(ig_proc_t *p, const char *path, int *port, unsigned timeout_ms,
                           char *err, size_t errlen)
{
    uint64_t deadline = now_ms() + timeout_ms;
    while (!ig_bench_interrupted() && ig_proc_alive(p) && now_ms() < deadline) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[32] = {0};
            bool got = fgets(line, sizeof(line), f) != NULL;
            fclose(f);
            char *end = NULL;
            long v = got ? strtol(line, &end, 10) : 0;
            if (got && end != line && v > 0 && v < 65536) {
                *port = (int)v;
                return 0;
            }
        }
        sleep_ms(20);
    }
    return wait_failed(p, "it wrote its port file", err, errlen);
}

int ig_proc_http_get(int port, const char *path, int *status, char **body)
{
    if (body)
        *body = NULL;
    int fd = connect_loopback(port);
    if (fd < 0)
        return IG_EIO;
    char req[512];
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", path, port);
    if (n <= 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return IG_EIO;
    }
    /* Read to EOF (Connection: close). */
    ig_buf_t in;
    ig_buf_init(&in, IG_PROC_HTTP_MAX);
    int rc = 0;
    for (;;) {
        char chunk[16384];
        ssize_t r = recv(fd, chunk, sizeof(chunk), 0);
        if (r <= 0)
            break;
        if ((rc = ig_buf_append(&in, chunk, (size_t)r)) < 0)
            break;
        /* Only the status line is wanted: stop once it is in. */
        if (!body && in.len >= 12)
            break;
    }
    close(fd);
    const char *buf = in.base ? in.base : "";
    if (rc == 0 && (in.len < 12 || strncmp(buf, "HTTP/1.", 7) != 0))
        rc = IG_EPROTO;
    int st = 0;
    for (int k = 9; rc == 0 && k < 12; k++) {
        if (buf[k] < '0' || buf[k] > '9')
            rc = IG_EPROTO;
        st = st * 10 + (buf[k] - '0');
    }
    if (rc == 0) {
        *status = st;
        if (body) {
            const char *b = strstr(buf, "\r\n\r\n");
            *body = ig_xstrdup(b ? b + 4 : "");
        }
    }
    ig_buf_dispose(&in);
    return rc;
}

int ig_proc_wait_http(ig_proc_t *p, int port, const char *path, int status, unsigned timeout_ms,
                      char *err, size_t errlen)
{
    uint64_t deadline = now_ms() + timeout_ms;
    char what[160];
    snprintf(what, sizeof(what), "GET %s on port %d answers %d", path, port, status);
    while (!ig_bench_interrupted() && ig_proc_alive(p) && now_ms() < deadline) {
        int got = 0;
        if (ig_proc_http_get(port, path, &got, NULL) == 0 && got == status)
            return 0;
        sleep_ms(20);
    }
    return wait_failed(p, what, err, errlen);
}

int ig_proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int rss_one(pid_t pid, uint64_t *kb)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return IG_ENOTFOUND;
    char line[256];
    int rc = IG_ENOTFOUND;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            char *end = NULL;
            unsigned long long v = strtoull(line + 6, &end, 10);
            if (end != line + 6) {
                *kb = v;
                rc = 0;
            }
            break;
        }
    }
    fclose(f);
    return rc;
}

int ig_proc_rss_kb(pid_t pid, uint64_t *kb)
{
    uint64_t total = 0;
    int rc = rss_one(pid, &total);
    if (rc < 0)
        return rc;
    /* Direct children are listed per thread; the main thread's list is
     * enough for nginx (master -> worker) and single-process peers. */
    char path[96];
    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        long child;
        while (fscanf(f, "%ld", &child) == 1) {
            uint64_t c = 0;
            if (child > 0 && rss_one((pid_t)child, &c) == 0)
                total += c;
        }
        fclose(f);
    }
    *kb = total;
    return 0;
}

void ig_proc_log_tail(const ig_proc_t *p, char *out, size_t max)
{
    out[0] = '\0';
    if (max < 2)
        return;
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        long from = size > (long)(max - 1) ? size - (long)(max - 1) : 0;
        if (fseek(f, from, SEEK_SET) == 0) {
            size_t n = fread(out, 1, max - 1, f);
            out[n] = '\0';
        }
    }
    fclose(f);
}

int ig_proc_self_dir(char *out, size_t len)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0)
        return IG_ENOTFOUND;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return IG_ENOTFOUND;
    *slash = '\0';
    if ((size_t)snprintf(out, len, "%s", buf) >= len)
        return IG_ETOOLARGE;
    return 0;
}

bool ig_proc_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}
