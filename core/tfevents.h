/* TensorBoard event files: a writer, a checking reader and CRC32C.
 *
 * An event file (FORMATS.md §1) is a TFRecord stream of serialized
 * tensorboard.Event messages (core/tensorboard.proto). Each record is
 *
 *   uint64 LE length | masked crc32c(length bytes) | payload | masked crc32c(payload)
 *
 * and the first event of every file carries file_version "brain.Event:2".
 * Scalars and histograms are written in the legacy form (simple_value,
 * HistogramProto), which TensorBoard reads without any plugin metadata.
 *
 *   ct_tfevents *w;
 *   CT_TRY(ct_tfevents_open("logs/train", &w));      // mkdir -p, new file
 *   ct_tfevents_scalar(w, "epoch_loss", epoch, loss);
 *   ct_tfevents_flush(w);                            // once per epoch
 *   ct_tfevents_close(w);
 *
 * A writer is not thread-safe; use one per thread (or lock around it).
 * Opening writers from several threads at once is safe. */
#ifndef CT_TFEVENTS_H
#define CT_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* --- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) --------------- */

/* Extend `crc` by n bytes. Start with crc = 0; the pre- and post-inversion
 * happen inside, so calls chain: crc32c(crc32c(0, a), b) = crc32c(0, a|b).
 * ct_crc32c("123456789") = 0xE3069283. Uses the SSE4.2 crc32 instruction
 * when the CPU has it, the table otherwise; both give the same result. */
uint32_t ct_crc32c(uint32_t crc, const void *data, size_t n);

/* The portable table-driven version (what ct_crc32c falls back to). */
uint32_t ct_crc32c_sw(uint32_t crc, const void *data, size_t n);

/* 1 when ct_crc32c runs on the SSE4.2 instruction on this machine. */
int ct_crc32c_hw_available(void);

/* TFRecord's masked CRC of a whole buffer:
 * rotate_right(crc32c(data), 15) + 0xA282EAD8 (mod 2^32). */
uint32_t ct_crc32c_masked(const void *data, size_t n);

/* --- writer ------------------------------------------------------------ */

/* A write error leaves a partial record behind, so after the first failure
 * every later call on the same writer fails too (CT_ERR_IO) rather than
 * append records a reader would reject. */
typedef struct ct_tfevents ct_tfevents;

/* Create `dir` (and its parents, like mkdir -p) and a new file
 * <dir>/events.out.tfevents.<%010lld unix time>.<hostname>.<pid>.<n>.v2
 * where n counts the writers this process has opened. Writes and flushes
 * the file_version event. *out owns the file; release it with
 * ct_tfevents_close. Errors: CT_ERR_IO naming the path and the OS reason;
 * CT_ERR_NOMEM. */
ct_status ct_tfevents_open(const char *dir, ct_tfevents **out);

/* The file's path (owned by the writer, valid until close). */
const char *ct_tfevents_path(const ct_tfevents *w);

/* One legacy scalar (Summary.Value.simple_value, stored as float). */
ct_status ct_tfevents_scalar(ct_tfevents *w, const char *tag, int64_t step, double value);

/* A legacy histogram of values[0..n): min, max, num, sum, sum_squares and
 * `buckets` (>= 1) equal-width buckets between min and max, the last limit
 * being max. A value is counted in the first bucket whose limit is >= the
 * value. All-equal values give a single bucket; no finite values give an
 * empty histogram (num = 0, no buckets). Non-finite values (NaN, +-Inf)
 * are left out of every field. Errors: CT_ERR_USAGE for buckets < 1,
 * n < 0, or a NULL tag / values. */
ct_status ct_tfevents_histogram(ct_tfevents *w, const char *tag, int64_t step,
                                const float *values, int64_t n, int buckets);

/* Push buffered records to the OS so a running TensorBoard sees them.
 * Events are buffered by stdio until then (or until close). */
ct_status ct_tfevents_flush(ct_tfevents *w);

/* Flush, close and free. Errors at this point cannot be reported: call
 * ct_tfevents_flush first when they matter. close(NULL) does nothing. */
void ct_tfevents_close(ct_tfevents *w);

/* --- reader ------------------------------------------------------------ */

/* Walk the records of an event file, check both CRCs of each, and hand
 * each payload (a serialized tensorboard.Event, valid only during the
 * call) to cb. cb returns 0 to go on, non-zero to stop early (the walk
 * still returns CT_OK). An incomplete last record (a writer may still be
 * appending) ends the walk quietly. Errors: CT_ERR_IO (open/read),
 * CT_ERR_DATA "<path>: record at byte <offset>: ..." for a CRC mismatch,
 * CT_ERR_NOMEM. */
ct_status ct_tfevents_read(const char *path,
                           int (*cb)(void *ctx, const uint8_t *payload, size_t len),
                           void *ctx);

#endif
