/* A folder of PNG and JPEG images as a source stage (Keras's
 * flow_from_directory layout: root/<class>/.../<image>).
 *
 * Open only lists the files; every get() reads and decodes its own file
 * with its own libpng or libjpeg state, so decoding runs in parallel on
 * the pipeline's worker threads and nothing is shared but the immutable
 * file list. Both libraries report errors through callbacks that would
 * print and exit by default; here they longjmp back with the message, and
 * warnings are dropped, so a corrupt file becomes CT_ERR_DATA naming it
 * and nothing reaches stderr. The setjmp lives in a function that only
 * touches state through a pointer parameter, so no local is clobbered.
 *
 * Pixel rules follow Keras (PIL): colour conversion with PIL's weights,
 * alpha dropped, nearest-neighbour resizing with pixel centres
 * (src = floor((dst + 0.5) * src_size / dst_size)). */
#include "memsource.h"
#include "sources.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#define IMG_MAX_PIXELS (1ull << 27)
#define IMG_MAX_FILE_BYTES (1ll << 30)
#define IMG_MAX_JPEG_SCANS 500

/* A decoded image: h x w x nc bytes, nc 1 gray, 2 gray+alpha, 3 RGB,
 * 4 RGBA. */
typedef struct img_raw {
    unsigned char *pix;
    int h, w, nc;
} img_raw;

/* --- PNG ----------------------------------------------------------------- */

typedef struct png_ctx {
    const unsigned char *d;
    size_t n, pos;
    int header_only;
    img_raw *out;
    png_bytep *rows;
    int nomem;
    char msg[200];
} png_ctx;

static void png_ctx_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_ctx_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_ctx_read(png_structp png, png_bytep buf, size_t len)
{
    png_ctx *c = png_get_io_ptr(png);
    if (len > c->n - c->pos) png_error(png, "the file ends early (truncated)");
    memcpy(buf, c->d + c->pos, len);
    c->pos += len;
}

/* Asks libpng for 8-bit gray, gray+alpha, RGB or RGBA. */
static void png_set_transforms(png_structp png, png_infop info)
{
    int ct = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bd == 16) png_set_strip_16(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* 0 ok; 1 on an error (message in c->msg). */
static int png_run(png_structp png, png_infop info, png_ctx *c)
{
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_read_fn(png, c, png_ctx_read);
    png_read_info(png, info);
    img_raw *r = c->out;
    r->w = (int)png_get_image_width(png, info);
    r->h = (int)png_get_image_height(png, info);
    if (c->header_only) return 0;
    if ((uint64_t)r->w * (uint64_t)r->h > IMG_MAX_PIXELS) {
        snprintf(c->msg, sizeof c->msg, "%dx%d pixels is more than the 2^27 allowed", r->h, r->w);
        return 1;
    }
    png_set_transforms(png, info);
    r->nc = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || r->nc < 1 || r->nc > 4 ||
        png_get_rowbytes(png, info) != (size_t)r->w * (size_t)r->nc) {
        snprintf(c->msg, sizeof c->msg, "unsupported pixel layout");
        return 1;
    }
    r->pix = malloc((size_t)r->w * (size_t)r->h * (size_t)r->nc);
    c->rows = malloc((size_t)r->h * sizeof *c->rows);
    if (!r->pix || !c->rows) {
        c->nomem = 1;
        snprintf(c->msg, sizeof c->msg, "out of memory for %dx%d pixels", r->h, r->w);
        return 1;
    }
    for (int y = 0; y < r->h; y++) c->rows[y] = r->pix + (size_t)y * (size_t)r->w * (size_t)r->nc;
    png_read_image(png, c->rows);
    return 0;
}

static ct_status png_decode(const unsigned char *d, size_t n, const char *name, int header_only, img_raw *r)
{
    png_ctx c = {d, n, 0, header_only, r, NULL, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_ctx_error, png_ctx_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return CT_FAIL(CT_ERR_NOMEM, "%s: cannot start libpng", name);
    }
    int bad = png_run(png, info, &c);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    if (!bad) return CT_OK;
    free(r->pix);
    r->pix = NULL;
    return CT_FAIL(c.nomem ? CT_ERR_NOMEM : CT_ERR_DATA, "%s: corrupt or unsupported PNG: %s", name, c.msg);
}

/* --- JPEG ---------------------------------------------------------------- */

typedef struct jpg_ctx {
    struct jpeg_error_mgr err; /* first: libjpeg hands us &err */
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    const unsigned char *d;
    size_t n;
    int header_only;
    img_raw *out;
    int nomem;
    char msg[JMSG_LENGTH_MAX + 64];
} jpg_ctx;

static void jpg_error_exit(j_common_ptr ci)
{
    jpg_ctx *c = (jpg_ctx *)ci->err;
    ci->err->format_message(ci, c->msg);
    longjmp(c->jb, 1);
}

/* Warnings are dropped, except that the data ran out: libjpeg would pad a
 * truncated file with gray and carry on. */
static void jpg_emit_message(j_common_ptr ci, int level)
{
    if (level < 0 && ci->err->msg_code == JWRN_JPEG_EOF) jpg_error_exit(ci);
}

static void jpg_output_message(j_common_ptr ci) { (void)ci; }

/* A progressive file can hold thousands of tiny scans, each a full pass
 * over the coefficients; refuse rather than spin (as TurboJPEG does). */
static void jpg_progress(j_common_ptr ci)
{
    jpg_ctx *c = (jpg_ctx *)ci->err;
    if (ci->is_decompressor && ((j_decompress_ptr)ci)->input_scan_number > IMG_MAX_JPEG_SCANS) {
        snprintf(c->msg, sizeof c->msg, "a progressive JPEG with more than %d scans", IMG_MAX_JPEG_SCANS);
        longjmp(c->jb, 1);
    }
}

static int jpg_choose_output(j_decompress_ptr ci, jpg_ctx *c)
{
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: ci->out_color_space = JCS_GRAYSCALE; return 0;
    case JCS_YCbCr:
    case JCS_RGB: ci->out_color_space = JCS_RGB; return 0;
    case JCS_CMYK:
    case JCS_YCCK: snprintf(c->msg, sizeof c->msg, "CMYK JPEGs are not supported (convert to RGB)"); return 1;
    default:
        if (ci->num_components == 1) ci->out_color_space = JCS_GRAYSCALE;
        else if (ci->num_components == 3) ci->out_color_space = JCS_RGB;
        else {
            snprintf(c->msg, sizeof c->msg, "a JPEG with %d colour components is not supported",
                     ci->num_components);
            return 1;
        }
        return 0;
    }
}

static void jpg_read_rows(j_decompress_ptr ci, img_raw *r)
{
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = r->pix + (size_t)ci->output_scanline * (size_t)r->w * (size_t)r->nc;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) break;
    }
}

/* 0 ok; 1 on an error (message in c->msg). */
static int jpg_run(j_decompress_ptr ci, jpg_ctx *c)
{
    if (setjmp(c->jb)) return 1;
    jpeg_create_decompress(ci);
    jpeg_mem_src(ci, c->d, (unsigned long)c->n);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
        snprintf(c->msg, sizeof c->msg, "no image in the file");
        return 1;
    }
    img_raw *r = c->out;
    r->w = (int)ci->image_width;
    r->h = (int)ci->image_height;
    if (c->header_only) return 0;
    if ((uint64_t)r->w * (uint64_t)r->h > IMG_MAX_PIXELS) {
        snprintf(c->msg, sizeof c->msg, "%dx%d pixels is more than the 2^27 allowed", r->h, r->w);
        return 1;
    }
    if (jpg_choose_output(ci, c)) return 1;
    ci->progress = &c->progress;
    jpeg_start_decompress(ci);
    r->nc = ci->output_components;
    if ((r->nc != 1 && r->nc != 3) || (int)ci->output_width != r->w || (int)ci->output_height != r->h) {
        snprintf(c->msg, sizeof c->msg, "unsupported pixel layout");
        return 1;
    }
    r->pix = malloc((size_t)r->w * (size_t)r->h * (size_t)r->nc);
    if (!r->pix) {
        c->nomem = 1;
        snprintf(c->msg, sizeof c->msg, "out of memory for %dx%d pixels", r->h, r->w);
        return 1;
    }
    jpg_read_rows(ci, r);
    if (ci->output_scanline < ci->output_height) {
        snprintf(c->msg, sizeof c->msg, "the image data ends early");
        return 1;
    }
    return 0;
}

static ct_status jpg_decode(const unsigned char *d, size_t n, const char *name, int header_only, img_raw *r)
{
    struct jpeg_decompress_struct ci;
    jpg_ctx c;
    memset(&ci, 0, sizeof ci);
    memset(&c, 0, sizeof c);
    c.d = d;
    c.n = n;
    c.header_only = header_only;
    c.out = r;
    ci.err = jpeg_std_error(&c.err);
    c.err.error_exit = jpg_error_exit;
    c.err.emit_message = jpg_emit_message;
    c.err.output_message = jpg_output_message;
    c.progress.progress_monitor = jpg_progress;
    int bad = jpg_run(&ci, &c);
    /* Not jpeg_finish_decompress: it would insist on the EOI marker, which
     * PIL does not; the pixels are all in by now. */
    jpeg_destroy_decompress(&ci);
    if (!bad) return CT_OK;
    free(r->pix);
    r->pix = NULL;
    return CT_FAIL(c.nomem ? CT_ERR_NOMEM : CT_ERR_DATA, "%s: corrupt or unsupported JPEG: %s", name, c.msg);
}

/* --- decoding ------------------------------------------------------------ */

static ct_status image_decode(const unsigned char *d, size_t n, const char *name, int header_only, img_raw *r)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    memset(r, 0, sizeof *r);
    if (n >= 8 && memcmp(d, png_sig, 8) == 0) return png_decode(d, n, name, header_only, r);
    if (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) return jpg_decode(d, n, name, header_only, r);
    if (n == 0) return CT_FAIL(CT_ERR_DATA, "%s: empty file (expected a PNG or JPEG image)", name);
    return CT_FAIL(CT_ERR_DATA, "%s: offset 0: not a PNG or JPEG file (unknown signature %02x %02x %02x)", name,
                   d[0], n > 1 ? d[1] : 0, n > 2 ? d[2] : 0);
}

/* HWC floats with `channels` channels, resampled (nearest) to th x tw. */
static void raw_to_float(const img_raw *r, int channels, int th, int tw, float *out)
{
    for (int y = 0; y < th; y++) {
        int64_t sy = ((2 * (int64_t)y + 1) * r->h) / (2 * (int64_t)th);
        const unsigned char *row = r->pix + (size_t)sy * (size_t)r->w * (size_t)r->nc;
        for (int x = 0; x < tw; x++, out += channels) {
            int64_t sx = ((2 * (int64_t)x + 1) * r->w) / (2 * (int64_t)tw);
            const unsigned char *p = row + (size_t)sx * (size_t)r->nc;
            if (r->nc <= 2) {
                for (int c = 0; c < channels; c++) out[c] = p[0];
            } else if (channels == 3) {
                out[0] = p[0], out[1] = p[1], out[2] = p[2];
            } else { /* PIL's L = R * 299/1000 + G * 587/1000 + B * 114/1000, in fixed point */
                out[0] = (float)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
            }
        }
    }
}

ct_status ct_image_info_memory(const unsigned char *d, size_t n, const char *name, int *height, int *width)
{
    img_raw r;
    CT_TRY(image_decode(d, n, name ? name : "image", 1, &r));
    *height = r.h;
    *width = r.w;
    return CT_OK;
}

static ct_status check_channels(const char *name, int channels)
{
    if (channels != 1 && channels != 3)
        return CT_FAIL(CT_ERR_USAGE, "%s: %d channels (expected 1 for grayscale or 3 for RGB)", name, channels);
    return CT_OK;
}

ct_status ct_image_decode_memory(const unsigned char *d, size_t n, const char *name, int channels, int height,
                                 int width, float *out, int *h, int *w)
{
    img_raw r;
    if (!name) name = "image";
    CT_TRY(check_channels(name, channels));
    if (height < 0 || width < 0 || (height == 0) != (width == 0))
        return CT_FAIL(CT_ERR_USAGE, "%s: target size %dx%d (expected both > 0, or 0x0 for the image's own)", name,
                       height, width);
    CT_TRY(image_decode(d, n, name, 0, &r));
    if (h) *h = r.h;
    if (w) *w = r.w;
    raw_to_float(&r, channels, height ? height : r.h, width ? width : r.w, out);
    free(r.pix);
    return CT_OK;
}

/* --- files --------------------------------------------------------------- */

static ct_status read_file(const char *path, unsigned char **data, size_t *len)
{
    struct stat sb;
    *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return CT_FAIL(CT_ERR_DATA, "cannot open %s: %s", path, strerror(errno));
    ct_status st = CT_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) st = CT_FAIL(CT_ERR_DATA, "%s: not a regular file", path);
    else if (sb.st_size > IMG_MAX_FILE_BYTES) st = CT_FAIL(CT_ERR_DATA, "%s: file larger than 1 GB", path);
    else if (!(*data = malloc(sb.st_size ? (size_t)sb.st_size : 1)))
        st = CT_FAIL(CT_ERR_NOMEM, "%s: %lld bytes", path, (long long)sb.st_size);
    size_t got = 0;
    while (st == CT_OK && got < (size_t)sb.st_size) {
        ssize_t k = read(fd, *data + got, (size_t)sb.st_size - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) st = CT_FAIL(CT_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (k <= 0) break;
        got += (size_t)k;
    }
    close(fd);
    *len = got;
    if (st != CT_OK) {
        free(*data);
        *data = NULL;
    }
    return st;
}

/* --- listing ------------------------------------------------------------- */

typedef struct str_vec {
    char **v;
    size_t n, cap;
} str_vec;

static int str_vec_push(str_vec *s, char *str)
{
    if (!str) return -1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            free(str);
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = str;
    return 0;
}

static void str_vec_free(str_vec *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

enum { LIST_DIRS, LIST_SUBDIRS, LIST_IMAGES };

/* Full paths of the entries of `dir` of one kind, sorted. LIST_DIRS
 * follows symbolic links (class folders may be links, as os.path.isdir
 * allows); LIST_SUBDIRS does not (os.walk's default). Names starting with
 * '.' are skipped. */
static ct_status list_dir(const char *dir, int kind, str_vec *out)
{
    DIR *d = opendir(dir);
    if (!d) return CT_FAIL(CT_ERR_DATA, "cannot open directory %s: %s", dir, strerror(errno));
    ct_status st = CT_OK;
    size_t first = out->n;
    struct dirent *e;
    while (st == CT_OK && (e = readdir(d))) {
        struct stat sb;
        if (e->d_name[0] == '.') continue;
        if (kind == LIST_IMAGES && !has_image_extension(e->d_name)) continue;
        char *p = join(dir, e->d_name);
        if (!p) {
            st = CT_FAIL(CT_ERR_NOMEM, "listing %s", dir);
            break;
        }
        int ok = (kind == LIST_SUBDIRS ? lstat(p, &sb) : stat(p, &sb)) == 0 &&
                 (kind == LIST_IMAGES ? S_ISREG(sb.st_mode) : S_ISDIR(sb.st_mode));
        if (!ok) free(p);
        else if (str_vec_push(out, p)) st = CT_FAIL(CT_ERR_NOMEM, "listing %s", dir);
    }
    closedir(d);
    if (st == CT_OK && out->n > first) qsort(out->v + first, out->n - first, sizeof *out->v, cmp_str);
    return st;
}

/* The images of one class: directories in sorted path order, files
 * sorted within each (Keras: sorted(os.walk(class_dir)), sorted(files)). */
static ct_status list_class(const char *class_dir, str_vec *files)
{
    str_vec dirs = {0};
    ct_status st = str_vec_push(&dirs, strdup(class_dir)) ? CT_FAIL(CT_ERR_NOMEM, "listing %s", class_dir) : CT_OK;
    for (size_t i = 0; st == CT_OK && i < dirs.n; i++) st = list_dir(dirs.v[i], LIST_SUBDIRS, &dirs);
    if (st == CT_OK) qsort(dirs.v, dirs.n, sizeof *dirs.v, cmp_str);
    for (size_t i = 0; st == CT_OK && i < dirs.n; i++) st = list_dir(dirs.v[i], LIST_IMAGES, files);
    str_vec_free(&dirs);
    return st;
}

/* --- the stage ----------------------------------------------------------- */

typedef struct folder {
    ct_mem_source src;  /* base, name (the root), cursor */
    str_vec files;      /* full paths */
    int *labels;        /* per file */
    str_vec classes;    /* class names */
    int h, w, channels;
    int resize;         /* 0: every image must be h x w */
} folder;

static ct_status folder_get(ct_stage *st, int64_t pos, ct_sample *out)
{
    folder *f = (folder *)st;
    const char *path = f->files.v[pos];
    unsigned char *data;
    size_t n;
    img_raw r;
    CT_TRY(read_file(path, &data, &n));
    ct_status s = image_decode(data, n, path, 0, &r);
    free(data);
    if (s != CT_OK) return s;
    if (!f->resize && (r.h != f->h || r.w != f->w)) {
        free(r.pix);
        return CT_FAIL(CT_ERR_DATA, "%s: image is %dx%d, but the first image (%s) is %dx%d; give a target size "
                       "to resize", path, r.h, r.w, f->files.v[0], f->h, f->w);
    }
    raw_to_float(&r, f->channels, f->h, f->w, out->x);
    free(r.pix);
    out->y[0] = (float)f->labels[pos];
    out->index = pos;
    out->rows = 1;
    return CT_OK;
}

static void folder_close(ct_stage *st)
{
    folder *f = (folder *)st;
    if (!f) return;
    str_vec_free(&f->files);
    str_vec_free(&f->classes);
    free(f->labels);
    free(f->src.name);
    free(f);
}

static const ct_stage_vtable folder_vtable = {"image_folder", ct_mem_source_next, ct_mem_source_reset,
                                              ct_mem_source_tell, ct_mem_source_seek, folder_close, folder_get};

const char *ct_image_folder_class_name(const ct_stage *s, int i)
{
    if (!s || s->vt != &folder_vtable) return NULL;
    const folder *f = (const folder *)s;
    return i >= 0 && (size_t)i < f->classes.n ? f->classes.v[i] : NULL;
}

/* Classes and their files, labels by class index. */
static ct_status folder_list(folder *f, const char *root)
{
    str_vec dirs = {0};
    ct_status st = list_dir(root, LIST_DIRS, &dirs);
    if (st == CT_OK && dirs.n == 0)
        st = CT_FAIL(CT_ERR_DATA, "%s: no class sub-directories (expected root/<class>/<images>)", root);
    for (size_t c = 0; st == CT_OK && c < dirs.n; c++) {
        size_t before = f->files.n;
        const char *cname = dirs.v[c] + strlen(root) + 1;
        st = list_class(dirs.v[c], &f->files);
        if (st == CT_OK && f->files.n == before)
            st = CT_FAIL(CT_ERR_DATA, "%s: class '%s' holds no images (expected .png, .jpg or .jpeg files)",
                         dirs.v[c], cname);
        if (st == CT_OK && str_vec_push(&f->classes, strdup(cname))) st = CT_FAIL(CT_ERR_NOMEM, "%s", root);
        int *lab = st == CT_OK ? realloc(f->labels, f->files.n * sizeof *lab) : NULL;
        if (st == CT_OK && !lab) st = CT_FAIL(CT_ERR_NOMEM, "%s: %zu files", root, f->files.n);
        if (st != CT_OK) break;
        f->labels = lab;
        for (size_t i = before; i < f->files.n; i++) f->labels[i] = (int)c;
    }
    str_vec_free(&dirs);
    return st;
}

/* Without a target size, the first image's size is everyone's. */
static ct_status folder_first_size(folder *f)
{
    unsigned char *data;
    size_t n;
    CT_TRY(read_file(f->files.v[0], &data, &n));
    ct_status st = ct_image_info_memory(data, n, f->files.v[0], &f->h, &f->w);
    free(data);
    return st;
}

static ct_status check_options(const char *root, const ct_image_folder_options *o)
{
    if (o->height < 0 || o->width < 0 || (o->height == 0) != (o->width == 0))
        return CT_FAIL(CT_ERR_USAGE, "%s: target size %dx%d (expected both > 0, or 0x0 for the first image's)",
                       root, o->height, o->width);
    return check_channels(root, o->channels ? o->channels : 3);
}

ct_status ct_image_folder_open(const char *root, const ct_image_folder_options *o, ct_stage **out)
{
    static const ct_image_folder_options defaults = {0, 0, 3};
    *out = NULL;
    if (!o) o = &defaults;
    CT_TRY(check_options(root, o));
    folder *f = calloc(1, sizeof *f);
    if (!f) return CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", root);
    f->src.base.vt = &folder_vtable;
    f->src.name = strdup(root);
    f->channels = o->channels ? o->channels : 3;
    f->h = o->height;
    f->w = o->width;
    f->resize = o->height > 0;
    ct_status st = f->src.name ? folder_list(f, root) : CT_FAIL(CT_ERR_NOMEM, "%s: out of memory", root);
    if (st == CT_OK && !f->resize) st = folder_first_size(f);
    if (st != CT_OK) {
        folder_close(&f->src.base);
        return st;
    }
    ct_stage *b = &f->src.base;
    b->x_shape = ct_shape3(f->h, f->w, f->channels);
    b->y_shape = ct_shape1(1);
    b->length = (int64_t)f->files.n;
    b->num_classes = (int64_t)f->classes.n;
    *out = b;
    return CT_OK;
}
