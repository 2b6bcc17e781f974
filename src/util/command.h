/* command.h - the one way Strata runs programs.
 *
 * No shell, ever: a command is an argv array built argument by argument.  The
 * child gets a clean environment (LC_ALL=C, a fixed PATH, plus what the caller
 * adds), stdin from /dev/null, and only the file descriptors the caller names.
 * command_run() waits and captures stdout and stderr; on failure the error
 * carries the program's stderr.  command_spawn() starts a long-lived child in a
 * new session (it survives the agent) and returns its PID.
 *
 * Dry-run hook: tests install command_set_dry_run(); every command_run() is then
 * handed to the hook instead of executed, so a test can record the qemu-img or
 * ovs-vsctl argv an operation would run and compare it with a golden file. */
#ifndef STRATA_COMMAND_H
#define STRATA_COMMAND_H

#include <stdbool.h>
#include <sys/types.h>

#include "util/error.h"

struct command;

struct command *command_new(const char *program);
void command_free(struct command *cmd);   /* Accepts NULL. */
static inline void autocommand_impl(struct command **c) { command_free(*c); }
#define AUTOCOMMAND __attribute__((cleanup(autocommand_impl)))

void command_add_arg(struct command *cmd, const char *arg);
void command_add_argf(struct command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Adds each argument up to a terminating NULL. */
void command_add_args(struct command *cmd, ...) __attribute__((sentinel));
/* Adds "NAME=VALUE" to the child's environment. */
void command_add_env(struct command *cmd, const char *name, const char *value);
/* Passes 'fd' to the child under the same number.  Borrowed. */
void command_keep_fd(struct command *cmd, int fd);
/* Sends the child's stdout and stderr to 'path' (appended; created 0600). */
void command_set_output_file(struct command *cmd, const char *path);
/* Caps the child's address space (RLIMIT_AS, bytes) and CPU time (seconds). */
void command_set_limits(struct command *cmd, unsigned long long as_bytes, unsigned cpu_s);
/* Kill the child if it runs longer than 'ms' (command_run only). */
void command_set_timeout(struct command *cmd, int ms);

/* Borrowed; NULL-terminated; valid until the command is freed. */
char *const *command_argv(const struct command *cmd);
/* Returns a new string "prog 'arg with space' ..." for logs; caller frees. */
char *command_to_string(const struct command *cmd);

/* Runs the command and waits.  '*out'/'*err_out' (optional) receive new strings
 * with its stdout/stderr.  If 'exit_status' is NULL a non-zero exit is an error
 * (ERR_IO naming the program and quoting stderr); otherwise it is stored there
 * and only failing to run is an error. */
int command_run(struct command *cmd, int *exit_status, char **out, char **err_out,
                struct error **errp);

/* Starts the command in its own session; returns its PID or -1. */
pid_t command_spawn(struct command *cmd, struct error **errp);

/* Dry-run hook: returns the exit status; may set '*out' to a new string. */
typedef int (*command_dry_run_fn)(char *const *argv, char **out, void *opaque);
void command_set_dry_run(command_dry_run_fn fn, void *opaque);

#endif
