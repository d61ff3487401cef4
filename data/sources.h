/* Data sources: stages that read files.
 *
 * Errors (CT_ERR_DATA / CT_ERR_IO) name the file and the byte offset or
 * line, and say what was expected: "train-images.gz: offset 0: magic
 * 0x00000903 is not an IDX magic (expected 00 00 type ndims)". */
#ifndef CT_SOURCES_H
#define CT_SOURCES_H

#include <stddef.h>

#include "stage.h"

/* IDX (MNIST, Fashion-MNIST), plain or gzip (detected by content through
 * zlib). `images` holds N samples of any rank (uint8, int8, int16, int32,
 * float32, float64; converted to float); `labels` (may be NULL) holds N
 * integer labels, which become y = (1) floats; num_classes = max label + 1.
 * The file is decoded into memory once at open. */
ct_status ct_idx_open(const char *images, const char *labels, ct_stage **out);

typedef struct ct_csv_options {
    char delimiter;          /* ',' */
    int header;              /* 1: the first line names the columns */
    const char *label_column;/* header name or 0-based index; NULL: last column */
    int skip_rows;           /* lines skipped before the header (sklearn's CSVs start with "n,d,...") */
    int no_label;            /* 1: every column is a feature (predict input); y is 0 */
    int text;                /* 1: text mode (boosted trees): empty fields, NA, N/A, NaN, NULL, None, ?
                              * (pandas's spellings) read as NaN in feature columns, and a feature
                              * column with any other non-number is a text column: its values are
                              * codes 0..L-1 of its distinct texts in byte order (ct_csv_levels) */
} ct_csv_options;

/* CSV with numeric fields. x = all columns but the label column, y = the
 * label column as (1). Empty lines are skipped; a row with another number
 * of fields, or a field that is not a number, is an error naming the line
 * and column. Quoted fields ("1.5") are accepted. */
ct_status ct_csv_open(const char *path, const ct_csv_options *opt, ct_stage **out);

/* A whole file in memory, NUL-terminated (*len excludes the NUL); the
 * caller frees *text. CT_ERR_DATA when it cannot be opened. */
ct_status ct_file_slurp(const char *path, char **text, size_t *len);

/* Of a CSV stage (NULL / 0 for other stages): the header name of feature
 * k (the columns without the label, in order; NULL without a header);
 * in text mode, the L levels of feature k (0 for a numeric column), in
 * code order, with the line where each first appears; the line of a row.
 * Owned by the stage. */
const char *ct_csv_feature_name(const ct_stage *s, int64_t k);
int64_t ct_csv_levels(const ct_stage *s, int64_t k, const char *const **levels, const long **first_line);
long ct_csv_line(const ct_stage *s, int64_t row);

/* CIFAR-10 / CIFAR-100 binary batches. `pattern` is a file name or a glob
 * ("cifar-10-batches-bin/data_batch_*.bin"); matching files are read in
 * sorted order. Records: a label byte (CIFAR-100: coarse then fine) and
 * 3072 pixel bytes in R, G, B planes of 32x32; samples come out as
 * (32, 32, 3) HWC floats 0..255 and y = (1) class index. A file whose size
 * is not a whole number of records, or a label out of range, is an error
 * naming the file and the byte offset. */
typedef enum ct_cifar_kind { CT_CIFAR10 = 10, CT_CIFAR100_FINE = 100, CT_CIFAR100_COARSE = 20 } ct_cifar_kind;
ct_status ct_cifar_open(const char *pattern, ct_cifar_kind kind, ct_stage **out);
ct_status ct_cifar_open_memory(const unsigned char *data, size_t len, const char *name, ct_cifar_kind kind,
                               ct_stage **out);

/* Read IDX or CSV from memory (used by fuzz targets and tests). `name` is
 * used in messages. */
ct_status ct_idx_open_memory(const unsigned char *images, size_t images_len,
                             const unsigned char *labels, size_t labels_len, const char *name,
                             ct_stage **out);
ct_status ct_csv_open_memory(const char *text, size_t len, const char *name,
                             const ct_csv_options *opt, ct_stage **out);

/* ---- NumPy, HDF5 and image folders --------------------------------- */

/* More data sources: NumPy .npy files, HDF5 data sets and folders of
 * images (Keras's flow_from_directory layout).
 *
 * Like the sources in sources.h, each is a stage with random access
 * (get(pos) is thread-safe) whose samples come out as float32, and whose
 * errors (CT_ERR_DATA, CT_ERR_IO) name the file, the byte offset where one
 * applies, and what was expected. Without labels, y_shape has rank 0 and
 * y is left untouched. */




/* NumPy .npy files, format versions 1.0, 2.0 and 3.0. dtypes: |u1 |i1 |b1
 * and <u2 <i2 <u4 <i4 <u8 <i8 <f2 <f4 <f8 and their big-endian '>'
 * variants; C order only (fortran_order True is refused). The first axis
 * holds the samples; x_shape is the rest ((1) for a 1-D file). The data
 * must be exactly product(shape) * itemsize bytes.
 *
 * `y_path` (may be NULL): a 1-D integer array of class indices (>= 0;
 * y_shape (1), num_classes = max + 1), a 1-D float array of targets
 * (y_shape (1), num_classes 0), or an array of rank >= 2 with one row per
 * sample (one-hot rows, say; y_shape = the row's shape, num_classes 0).
 * Its sample count must equal x's.
 *
 * The files stay open and each get() reads its sample with pread(), so a
 * file larger than memory streams. */
ct_status ct_npy_open(const char *x_path, const char *y_path, ct_stage **out);

/* The same from memory (tests, fuzzing): the bytes are copied, so the
 * buffers may be freed after the call. `y` may be NULL; `name` (may be
 * NULL) is used in messages, and "<name> (labels)" for y. */
ct_status ct_npy_open_memory(const unsigned char *x, size_t xlen, const unsigned char *y, size_t ylen,
                             const char *name, ct_stage **out);

/* HDF5 data sets: `x_dataset` ("images" or "/train/images") holds samples
 * along its first axis, any numeric type (converted by HDF5 to float);
 * `y_dataset` (may be NULL) is read as for .npy labels: a rank-1 integer
 * data set holds class indices, a rank-1 float one targets, a higher rank
 * one rows. Rows are read in blocks of up to 256 consecutive samples (at
 * most 16 MB) through a cache, so sequential reading is cheap and the
 * file need not fit in memory. Every HDF5 call of these sources is
 * serialised by one process-wide mutex (serial HDF5 is not thread-safe).
 * Errors: no such file, not an HDF5 file, no such data set (naming the
 * file, the data set, and the data sets at the root), a scalar data set,
 * a non-numeric type, sample counts that differ, negative labels. */
ct_status ct_hdf5_open(const char *path, const char *x_dataset, const char *y_dataset, ct_stage **out);

/* Sources side by side (data/concat.c): parts[0, n_x) form each sample's
 * x, parts[n_x, n_x + n_y) its y (a model's several inputs and targets,
 * concatenated in order). Parts need random access, no labels and the
 * same length; they are owned by the new stage (closed on failure too). */
ct_status ct_concat_open(ct_stage **parts, int n_x, int n_y, const char *name, ct_stage **out);

/* The process-wide HDF5 mutex of the source above. Other code that calls
 * HDF5 while an HDF5 source may be read on another thread (checkpoints
 * written during training) must hold it around its HDF5 calls. Not
 * recursive. */
void ct_hdf5_lock(void);
void ct_hdf5_unlock(void);

typedef struct ct_image_folder_options {
    int height, width; /* 0, 0: the size of the first image (every image must
                        * have it); otherwise resize to height x width with
                        * nearest-neighbour sampling, as Keras does by default */
    int channels;      /* 3 RGB (0 means 3), or 1 grayscale */
} ct_image_folder_options;

/* A folder of images as Keras's flow_from_directory reads it:
 * root/<class>/.../<file>. Classes are the sub-directories of root sorted
 * by name (byte order, as Python's sorted); within a class, directories
 * are walked in sorted path order and files sorted by name; files ending
 * in .png, .jpg or .jpeg (any case) are taken, others ignored, as are
 * names starting with '.' and symbolic links to directories. x = (height,
 * width, channels) floats 0..255 (HWC), y = (1) class index,
 * num_classes = the number of classes. `o` may be NULL (defaults).
 *
 * PNG: any bit depth and colour type; palettes are expanded, 16-bit
 * samples keep their high byte, alpha is dropped. JPEG: grayscale and
 * RGB/YCbCr (CMYK is refused). Grayscale output from colour uses PIL's
 * weights (L = 0.299 R + 0.587 G + 0.114 B). Each get() reads and decodes
 * its file (no shared state), so decoding runs on the pipeline's worker
 * threads; a corrupt or truncated file, or one whose size differs from
 * the first image's without a target size, fails get() with CT_ERR_DATA
 * naming the file. Open fails on an empty root, a class with no images, or
 * (without a target size) a first image that cannot be read. */
ct_status ct_image_folder_open(const char *root, const ct_image_folder_options *o, ct_stage **out);

/* The name of class `i` of an image-folder stage, or NULL (another kind of
 * stage, or i out of range). Owned by the stage. */
const char *ct_image_folder_class_name(const ct_stage *s, int i);

/* The size of a PNG or JPEG held in memory (reads the header only). */
ct_status ct_image_info_memory(const unsigned char *d, size_t n, const char *name, int *height, int *width);

/* Decode a PNG or JPEG held in memory into HWC floats 0..255 with
 * `channels` (1 or 3) channels. height, width > 0: resize (nearest) to
 * that size, `out` holds height * width * channels floats; 0, 0: the
 * image's own size, `out` holds as many floats as ct_image_info_memory's
 * size implies. *h and *w (may be NULL) receive the image's own size.
 * `name` is used in messages. Images of more than 2^27 pixels are
 * refused. */
ct_status ct_image_decode_memory(const unsigned char *d, size_t n, const char *name, int channels, int height,
                                 int width, float *out, int *h, int *w);

#endif
