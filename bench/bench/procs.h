/*
 * procs.h: the processes infergate-bench starts (model, gateway, nginx,
 * HAProxy), and the process-level odds and ends around them: free loopback
 * ports, readiness polls, VmRSS, and the SIGINT/SIGTERM handler.
 *
 * Every child is registered when spawned and stopped by pid, never by name:
 * ig_proc_stop on the normal path, and ig_proc_stop_all from the atexit hook
 * and after an interrupt, so nothing is left behind even on error or Ctrl-C.
 */
#ifndef IG_BENCH_PROCS_H
#define IG_BENCH_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;          /* 0 when not running */
    char name[32];      /* "nginx", for messages */
    char log_path[512]; /* the child's stdout and stderr */
    int exit_status;    /* waitpid status once reaped */
    bool reaped;
    bool reported; /* an abnormal exit was already reported */
} ig_proc_t;

/* Installs the SIGINT/SIGTERM handler (sets the interrupted flag) and the
 * atexit hook that stops every registered child. Raises RLIMIT_NOFILE to its
 * hard limit, since thousands of connections need as many descriptors. */
void ig_proc_setup(void);

/* Whether SIGINT or SIGTERM arrived since ig_proc_setup. Long waits and
 * the load loop poll it and wind down. */
bool ig_bench_interrupted(void);

/* Starts argv[0] (a path) with stdout/stderr appended to `log_path`, stdin
 * from /dev/null and the INFERGATE_* environment removed (the gateway treats
 * unknown ones as config errors). 0, or IG_EIO with `err` filled. */
int ig_proc_spawn(ig_proc_t *p, const char *name, char *const argv[], const char *log_path,
                  char *err, size_t errlen);

/* Whether the child still runs (reaps it when it has exited). */
bool ig_proc_alive(ig_proc_t *p);

/* SIGTERM, then SIGKILL after `grace_ms`; reaps the child. Safe to call twice. */
void ig_proc_stop(ig_proc_t *p, unsigned grace_ms);

/* Stops every child still registered (atexit and interrupt path). */
void ig_proc_stop_all(void);

/* Waits until 127.0.0.1:`port` accepts a connection. Gives up with IG_EIO
 * when the child exits first (message: its log tail) or with IG_ETIMEDOUT
 * after `timeout_ms`, and with IG_ECANCELED on interrupt. */
int ig_proc_wait_port(ig_proc_t *p, int port, unsigned timeout_ms, char *err, size_t errlen);

/* Waits until the file holds a port number (the model's --port-file). */
int ig_proc_wait_port_file(ig_proc_t *p, const char *path, int *port, unsigned timeout_ms,
                           char *err, size_t errlen);

/* Waits until GET `path` on 127.0.0.1:`port` answers `status`. */
int ig_proc_wait_http(ig_proc_t *p, int port, const char *path, int status, unsigned timeout_ms,
                      char *err, size_t errlen);

/* One blocking GET of `path` on 127.0.0.1:`port` with Connection: close
 * (2 s socket timeouts), read to EOF. Sets *status; when `body` is not
 * NULL, *body gets the body, NUL-terminated, which the caller frees. 0,
 * IG_EIO (no connection), IG_EPROTO (not an HTTP answer) or IG_ETOOLARGE
 * (over IG_PROC_HTTP_MAX bytes). */
#define IG_PROC_HTTP_MAX (4u << 20)
int ig_proc_http_get(int port, const char *path, int *status, char **body);

/* A loopback TCP port that was free a moment ago (bind to 0, read, close).
 * Callers retry with a fresh port when the child then fails to bind. */
int ig_proc_free_port(void);

/* VmRSS of `pid` plus that of its direct children (nginx's worker), in KiB.
 * 0 or IG_ENOTFOUND. */
int ig_proc_rss_kb(pid_t pid, uint64_t *kb);

/* The last `max` bytes of the child's log, NUL-terminated, into `out`. */
void ig_proc_log_tail(const ig_proc_t *p, char *out, size_t max);

/* Directory of the running executable (from /proc/self/exe), into `out`. */
int ig_proc_self_dir(char *out, size_t len);

/* Whether `path` is an executable regular file. */
bool ig_proc_executable(const char *path);

#endif
