/* `ctrain serve DIR [--port N]`: a small static file server for the TF.js
 * web page (examples/tfjs/), bound to 127.0.0.1 only, so nothing outside
 * this machine can reach it. GET and HEAD of files under DIR (no
 * directory listings, no path with ".." or a hidden component), one
 * request per connection, until the process is stopped. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "launcher.h"

static const struct {
    const char *ext, *type;
} mime[] = {{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
            {".json", "application/json"},         {".bin", "application/octet-stream"},
            {".png", "image/png"},                 {".css", "text/css"},
            {".csv", "text/csv"},                  {".txt", "text/plain; charset=utf-8"}};

static const char *mime_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof mime / sizeof mime[0]; i++)
        if (strcmp(dot, mime[i].ext) == 0) return mime[i].type;
    return "application/octet-stream";
}

static void reply(int fd, int code, const char *status, const char *type, const void *body, size_t n, int head)
{
    char hdr[512];
    int k = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n",
                     code, status, type, n);
    if (write(fd, hdr, (size_t)k) != k) return;
    for (size_t off = 0; !head && off < n;) {
        ssize_t w = write(fd, (const char *)body + off, n - off);
        if (w <= 0) return;
        off += (size_t)w;
    }
}

static int safe_path(const char *p)
{
    if (p[0] != '/') return 0;
    for (const char *s = p; *s; s++) {
        if (s[0] == '/' && s[1] == '.') return 0; /* "..", ".hidden" */
        if ((unsigned char)*s < 0x20 || *s == '\\') return 0;
    }
    return 1;
}

static void serve_one(int fd, const char *root)
{
    char req[4096];
    size_t n = 0;
    while (n < sizeof req - 1) { /* up to the end of the request line */
        ssize_t r = read(fd, req + n, sizeof req - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        req[n] = 0;
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) break;
    }
    req[n] = 0;
    char method[8], target[2048];
    if (sscanf(req, "%7s %2047s", method, target) != 2) {
        reply(fd, 400, "Bad Request", "text/plain", "bad request\n", 12, 0);
        return;
    }
    int head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        reply(fd, 405, "Method Not Allowed", "text/plain", "GET only\n", 9, 0);
        return;
    }
    char *q = strpbrk(target, "?#");
    if (q) *q = 0;
    if (strcmp(target, "/") == 0) strcpy(target, "/index.html");
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", root, target);
    if (!safe_path(target) || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        reply(fd, 404, "Not Found", "text/plain", "not found\n", 10, 0);
        return;
    }
    FILE *f = fopen(path, "rb");
    char *body = f ? malloc((size_t)st.st_size + 1) : NULL;
    size_t got = body ? fread(body, 1, (size_t)st.st_size, f) : 0;
    if (f) fclose(f);
    if (!body || got != (size_t)st.st_size) reply(fd, 500, "Internal Server Error", "text/plain", "read error\n", 11, 0);
    else reply(fd, 200, "OK", mime_type(path), body, got, head);
    free(body);
}

ct_status ct_serve_command(int argc, char **argv)
{
    const char *root = NULL;
    int port = 8080;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 1 || p > 65535) return CT_FAIL(CT_ERR_USAGE, "--port needs 1 to 65535, got '%s'", argv[i]);
            port = (int)p;
        } else if (argv[i][0] == '-') {
            return CT_FAIL(CT_ERR_USAGE, "serve: unknown option '%s' (--port)", argv[i]);
        } else if (!root) {
            root = argv[i];
        } else {
            return CT_FAIL(CT_ERR_USAGE, "serve: unexpected argument '%s'", argv[i]);
        }
    }
    struct stat st;
    if (!root) return CT_FAIL(CT_ERR_USAGE, "usage: ctrain serve DIR [--port N]");
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) return CT_FAIL(CT_ERR_USAGE, "serve: %s is not a directory", root);
    signal(SIGPIPE, SIG_IGN);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return CT_FAIL(CT_ERR_IO, "serve: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 16) != 0) {
        int e = errno;
        close(s);
        return CT_FAIL(CT_ERR_IO, "serve: cannot listen on 127.0.0.1:%d: %s", port, strerror(e));
    }
    printf("serving %s at http://127.0.0.1:%d/ (loopback only; Ctrl-C stops)\n", root, port);
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(s);
            return CT_FAIL(CT_ERR_IO, "serve: accept: %s", strerror(e));
        }
        struct timeval tv = {5, 0}; /* a silent client does not hold the server */
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve_one(c, root);
        close(c);
    }
}
