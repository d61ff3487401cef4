/* Output files that never damage what is already there.
 *
 * Every file ctrain writes (models, checkpoints, predictions, dumps, CSV
 * logs) is written under a temporary name next to it ("<path>.tmp"),
 * flushed with fsync and renamed over the real name only when complete,
 * so a full disk, a crash or a signal leaves the old file as it was. The
 * temporary names in flight are registered so that a signal handler can
 * remove them (ct_outfile_unlink_pending is async-signal-safe).
 *
 * ct_output_check refuses, before any work is done, an output that is a
 * directory, lies in a directory that cannot be created, or is the same
 * file as one of the run's inputs. Errors name the path and the reason
 * (errno text); a refused path is bad input (CT_ERR_USAGE), a failed
 * write a runtime failure (CT_ERR_IO). */
#ifndef CT_OUTFILE_H
#define CT_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

typedef struct ct_outfile {
    FILE *f;        /* write here between open and commit */
    char path[4096];
    char tmp[4112];
    int slot;       /* in the pending registry, -1 when not registered */
} ct_outfile;

/* Creates "<path>.tmp" (and missing parent directories). */
ct_status ct_outfile_open(ct_outfile *o, const char *path);
/* Flushes, fsyncs, closes and renames onto path; on any failure removes
 * the temporary file and leaves path untouched. */
ct_status ct_outfile_commit(ct_outfile *o);
/* Closes and removes the temporary file (after a failure elsewhere). */
void ct_outfile_abort(ct_outfile *o);

/* Writes `len` bytes as the whole new content of `path`, atomically as
 * above (used for HDF5 images built in memory). */
ct_status ct_write_file_atomic(const char *path, const void *buf, size_t len);

/* Registry of temporary names being written (at most a few at once). */
int ct_outfile_register(const char *tmp);
void ct_outfile_unregister(int slot);
void ct_outfile_unlink_pending(void);

/* `what` names the output in messages ("[train] save_model"). inputs may
 * hold NULLs. The parent directory is created when missing. */
ct_status ct_output_check(const char *what, const char *path, const char *const *inputs, int n_inputs);

/* An optional output (--output FILE): path NULL writes to stdout. Checks
 * the path (ct_output_check, `what` in messages), opens it through a
 * temporary name; ct_output_close commits it when s is CT_OK (else
 * removes the temporary file) and returns the first failure. */
ct_status ct_output_open(const char *what, const char *path, const char *const *inputs, int n_inputs, ct_outfile *o,
                         FILE **f);
ct_status ct_output_close(const char *path, ct_outfile *o, ct_status s);

/* 1 when both paths name the same existing file (device and inode). */
int ct_same_file(const char *a, const char *b);

/* Creates the directories leading to path (not path itself). */
ct_status ct_mkdirs_for(const char *path);

#endif
