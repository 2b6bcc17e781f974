/* fake_monitor.h - plays QEMU's side of a QMP socketpair from a script.
 *
 * A test builds a script of steps, starts it, and drives the real client
 * (qmp.c) on the other end of the socketpair.  The script's thread plays the
 * steps in order: send a captured file, expect a command by name and answer
 * it with a captured file, expect a command carrying an fd, stay silent,
 * close.  Captured files are tests/data/qmp/<name>.jsonl, recorded once from
 * QEMU 7.2 by tests/data/qmp/capture.sh; every line of a file is sent as QEMU
 * sent it, except that a line with an "id" (a reply) gets the id of the
 * command it answers.  The first deviation (wrong command, missing or extra
 * fd, a timeout, EOF) stops the script; fake_monitor_finish() returns it.
 *
 * Lower-level helpers (fake_data_load, fake_read_command, fake_write_all) let
 * a test play QEMU's side by hand from its own thread, e.g. to split a
 * stream at every byte. */
#ifndef STRATA_FAKE_MONITOR_H
#define STRATA_FAKE_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct fake_monitor;

/* Creates the socketpair; '*client_fd' receives the client's end (hand it to
 * qmp_client_new(), which takes ownership). */
struct fake_monitor *fake_monitor_new(int *client_fd);
void fake_monitor_free(struct fake_monitor *fm);   /* Joins; accepts NULL. */

/* Script steps. */
void fake_monitor_send(struct fake_monitor *fm, const char *name);
/* Sends only the event lines of tests/data/qmp/<name>.jsonl. */
void fake_monitor_send_events(struct fake_monitor *fm, const char *name);
void fake_monitor_send_raw(struct fake_monitor *fm, const char *text);
void fake_monitor_expect(struct fake_monitor *fm, const char *command, const char *reply);
/* Like fake_monitor_expect(), and the command's first byte must come with an
 * SCM_RIGHTS fd (kept; see fake_monitor_received_fd). */
void fake_monitor_expect_fd(struct fake_monitor *fm, const char *command, const char *reply);
/* Reads the command and answers nothing. */
void fake_monitor_expect_silent(struct fake_monitor *fm, const char *command);
/* Sends the greeting and answers qmp_capabilities. */
void fake_monitor_greet(struct fake_monitor *fm);
/* Waits until fake_monitor_release() is called (to order steps against the
 * test's own actions). */
void fake_monitor_wait(struct fake_monitor *fm);
void fake_monitor_release(struct fake_monitor *fm);
/* Closes the socket (the client sees EOF). */
void fake_monitor_close(struct fake_monitor *fm);

void fake_monitor_start(struct fake_monitor *fm);
/* Waits for the script to end; returns NULL if every step played, else a new
 * string describing the first deviation. */
char *fake_monitor_finish(struct fake_monitor *fm);
/* The fd received by the last fake_monitor_expect_fd step, or -1.  Owned by
 * the fake monitor. */
int fake_monitor_received_fd(const struct fake_monitor *fm);
/* The 'n'th command received (0-based), or NULL.  Borrowed. */
const json_t *fake_monitor_command(const struct fake_monitor *fm, size_t n);

/* Returns a new string: the content of tests/data/qmp/<name>.jsonl with every
 * "id" replaced by 'id' (unchanged when 'id' is NULL).  Aborts if missing.
 * Records 'name' as used (fake_data_unused). */
char *fake_data_load(const char *name, const char *id);
/* The parsed lines of tests/data/qmp/<name>.jsonl.  New reference. */
json_t *fake_data_lines(const char *name);
/* Returns a new NULL-terminated list of the data files (names without
 * ".jsonl") that no fake_data_load()/fake_data_lines() call has used. */
char **fake_data_unused(void);

/* Reads one command line from 'fd' (a byte at a time, so an fd that arrives
 * is attributed to the exact byte it came with), waiting up to 'timeout_ms'.
 * '*got_fd' receives an fd that came with the line's first byte (else -1);
 * an fd arriving with any later byte is an error.  Returns a new reference
 * or NULL with '*why' set (a new string). */
json_t *fake_read_command(int fd, int timeout_ms, int *got_fd, char **why);
/* Writes everything (blocking); false on error. */
bool fake_write_all(int fd, const char *data, size_t len);

#endif
