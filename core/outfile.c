/* Temporary name, fsync, rename: see outfile.h. */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PENDING_MAX 8

/* Written by the threads that write files, read by a signal handler: each
 * slot holds a complete name once its flag is set. */
static char pending[PENDING_MAX][4112];
static volatile sig_atomic_t pending_used[PENDING_MAX];

int ct_outfile_register(const char *tmp)
{
    for (int i = 0; i < PENDING_MAX; i++)
        if (!__atomic_exchange_n(&pending_used[i], 2, __ATOMIC_ACQ_REL)) {
            snprintf(pending[i], sizeof pending[i], "%s", tmp);
            __atomic_store_n(&pending_used[i], 1, __ATOMIC_RELEASE);
            return i;
        }
    return -1;
}

void ct_outfile_unregister(int slot)
{
    if (slot >= 0 && slot < PENDING_MAX) __atomic_store_n(&pending_used[slot], 0, __ATOMIC_RELEASE);
}

void ct_outfile_unlink_pending(void)
{
    for (int i = 0; i < PENDING_MAX; i++)
        if (__atomic_load_n(&pending_used[i], __ATOMIC_ACQUIRE) == 1) unlink(pending[i]);
}

ct_status ct_mkdirs_for(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return CT_OK;
    *slash = 0;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return CT_OK;
        return CT_FAIL(CT_ERR_USAGE, "%s: cannot create %s: %s is not a directory", path, dir, dir);
    }
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0777);
            *p = '/';
        }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return CT_FAIL(CT_ERR_IO, "%s: cannot create directory %s: %s", path, dir, strerror(errno));
    return CT_OK;
}

static void tmp_name(char *tmp, size_t n, const char *path) { snprintf(tmp, n, "%s.tmp", path); }

ct_status ct_outfile_open(ct_outfile *o, const char *path)
{
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (strlen(path) >= sizeof o->path) return CT_FAIL(CT_ERR_USAGE, "%.64s...: path too long", path);
    snprintf(o->path, sizeof o->path, "%s", path);
    tmp_name(o->tmp, sizeof o->tmp, path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return CT_FAIL(CT_ERR_USAGE, "%s: is a directory; expected a file name to write", path);
    CT_TRY(ct_mkdirs_for(path));
    o->slot = ct_outfile_register(o->tmp);
    o->f = fopen(o->tmp, "wb");
    if (!o->f) {
        int e = errno;
        ct_outfile_unregister(o->slot);
        o->slot = -1;
        return CT_FAIL(CT_ERR_IO, "%s: cannot open for writing: %s", o->tmp, strerror(e));
    }
    return CT_OK;
}

ct_status ct_outfile_commit(ct_outfile *o)
{
    ct_status s = CT_OK;
    if (fflush(o->f) != 0 || ferror(o->f)) s = CT_FAIL(CT_ERR_IO, "%s: cannot write: %s", o->path, strerror(errno));
    /* fsync, then rename: the data is on disk before the name points at it */
    if (s == CT_OK && fsync(fileno(o->f)) != 0 && errno != EINVAL)
        s = CT_FAIL(CT_ERR_IO, "%s: cannot write: %s", o->path, strerror(errno));
    if (fclose(o->f) != 0 && s == CT_OK) s = CT_FAIL(CT_ERR_IO, "%s: cannot write: %s", o->path, strerror(errno));
    o->f = NULL;
    if (s == CT_OK && rename(o->tmp, o->path) != 0)
        s = CT_FAIL(CT_ERR_IO, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
    if (s != CT_OK) unlink(o->tmp);
    ct_outfile_unregister(o->slot);
    o->slot = -1;
    return s;
}

void ct_outfile_abort(ct_outfile *o)
{
    if (o->f) fclose(o->f);
    o->f = NULL;
    if (o->tmp[0]) unlink(o->tmp);
    ct_outfile_unregister(o->slot);
    o->slot = -1;
}

ct_status ct_write_file_atomic(const char *path, const void *buf, size_t len)
{
    ct_outfile o;
    CT_TRY(ct_outfile_open(&o, path));
    /* write(2) directly: the errno of a short write is the one to report */
    int fd = fileno(o.f);
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            ct_status s = CT_FAIL(CT_ERR_IO, "%s: cannot write: %s", path, w < 0 ? strerror(errno) : "short write");
            ct_outfile_abort(&o);
            return s;
        }
        p += w;
        len -= (size_t)w;
    }
    return ct_outfile_commit(&o);
}

int ct_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

ct_status ct_output_check(const char *what, const char *path, const char *const *inputs, int n_inputs)
{
    struct stat st;
    if (!path || !*path) return CT_FAIL(CT_ERR_USAGE, "%s: empty file name", what);
    size_t len = strlen(path);
    if (path[len - 1] == '/' || strcmp(path + (len >= 2 ? len - 2 : 0), "/.") == 0 || strcmp(path, ".") == 0)
        return CT_FAIL(CT_ERR_USAGE, "%s = %s: names a directory; expected a file name to write", what, path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return CT_FAIL(CT_ERR_USAGE, "%s = %s: is a directory; expected a file name to write", what, path);
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && ct_same_file(path, inputs[i]))
            return CT_FAIL(CT_ERR_USAGE, "%s = %s: is also an input of this run (%s); refusing to overwrite it", what,
                           path, inputs[i]);
    ct_status s = ct_mkdirs_for(path);
    if (s != CT_OK) {
        ct_error_prefix("%s: ", what);
        return s == CT_ERR_IO ? CT_ERR_USAGE : s;
    }
    /* the directory must take a new file */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    else snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK | X_OK) != 0)
        return CT_FAIL(CT_ERR_USAGE, "%s = %s: cannot write into %s: %s", what, path, dir, strerror(errno));
    return CT_OK;
}

ct_status ct_output_open(const char *what, const char *path, const char *const *inputs, int n_inputs, ct_outfile *o,
                         FILE **f)
{
    *f = stdout;
    memset(o, 0, sizeof *o);
    o->slot = -1;
    if (!path) return CT_OK;
    CT_TRY(ct_output_check(what, path, inputs, n_inputs));
    CT_TRY(ct_outfile_open(o, path));
    *f = o->f;
    return CT_OK;
}

ct_status ct_output_close(const char *path, ct_outfile *o, ct_status s)
{
    if (!path) {
        if (s == CT_OK && fflush(stdout) != 0)
            return CT_FAIL(CT_ERR_IO, "standard output: cannot write: %s", strerror(errno));
        return s;
    }
    if (s != CT_OK) {
        ct_outfile_abort(o);
        return s;
    }
    return ct_outfile_commit(o);
}
