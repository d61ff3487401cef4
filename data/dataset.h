/* An in-memory data set: every sample of a stage drained into two arrays.
 * Validation and test sets are held this way (training streams through
 * the pipeline); test_split works on these arrays. */
#ifndef CT_DATASET_H
#define CT_DATASET_H

#include "stage.h"

typedef struct ct_dataset {
    int64_t n;
    ct_shape x_shape, y_shape;
    int64_t x_size, y_size;   /* numel per sample */
    int64_t num_classes;      /* from the source; 0 when not class labels */
    float *x;                 /* n * x_size */
    float *y;                 /* n * y_size */
} ct_dataset;

/* Drain `src` (after reset(0)) into *out. */
ct_status ct_dataset_from_stage(ct_stage *src, ct_dataset *out);
void ct_dataset_free(ct_dataset *d);

/* A source stage with random access over d's rows (d is not owned and
 * must outlive the stage). */
ct_status ct_dataset_stage_open(const ct_dataset *d, ct_stage **out);

/* Split off the rows [int(n * (1 - fraction)), n) into *tail (Keras's
 * validation_split: the last fraction, before any shuffling). */
ct_status ct_dataset_split_tail(ct_dataset *d, double fraction, ct_dataset *tail);
/* Move a seeded random fraction of rows into *held (the rest stays, in
 * permuted order), as Keras's dataset loaders' test_split does. */
ct_status ct_dataset_split_random(ct_dataset *d, double fraction, uint64_t seed, ct_dataset *held);


#endif
