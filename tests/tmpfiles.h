/* A temporary directory for tests that write files: tmp_make("name")
 * creates /tmp/ct_<name>_XXXXXX, tmp_path("f") names a file in it,
 * write_file writes (checked), tmp_remove deletes the directory. Include
 * after ct_test.h, once, in the test's .c file. */
#ifndef CT_TMPFILES_H
#define CT_TMPFILES_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[64];

static int tmp_make(const char *name)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ct_%s_XXXXXX", name);
    if (mkdtemp(tmpdir)) return 1;
    perror("mkdtemp");
    return 0;
}

/* Eight names can be in use at once. */
static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(data, 1, n, f) == n);
    fclose(f);
}

static void tmp_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

#endif
