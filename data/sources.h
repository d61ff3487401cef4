/* Data sources: stages that read files.
 *
 * Errors (CT_ERR_DATA / CT_ERR_IO) name the file and the byte offset or
 * line, and say what was expected: "train-images.gz: offset 0: magic
 * 0x00000903 is not an IDX magic (expected 00 00 type ndims)". */
#ifndef CT_SOURCES_H
#define CT_SOURCES_H

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
} ct_csv_options;

/* CSV with numeric fields. x = all columns but the label column, y = the
 * label column as (1). Empty lines are skipped; a row with another number
 * of fields, or a field that is not a number, is an error naming the line
 * and column. Quoted fields ("1.5") are accepted. */
ct_status ct_csv_open(const char *path, const ct_csv_options *opt, ct_stage **out);

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

#endif
