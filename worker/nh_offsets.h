#ifndef NH_OFFSETS_H
#define NH_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Per-partition bookkeeping of Kafka offsets that complete out of order.
 * Each consumed offset is begun, then finished when its outcome is
 * stored. The offset to commit for a partition is the first offset that
 * is still unfinished, or the last finished one plus 1: every message
 * below it is done. Each assignment of a partition gets a new generation,
 * so that messages of an earlier assignment cannot move the offsets of a
 * later one. The tracker does not call librdkafka: the caller stores the
 * offsets it returns.
 */

typedef struct nh_offsets_s  nh_offsets_t;

/* Creates an empty tracker. Returns 0 or NH_ENOMEM. */
int nh_offsets_create(nh_offsets_t **out);

/* Frees the tracker. Accepts NULL. */
void nh_offsets_destroy(nh_offsets_t *t);

/*
 * Starts tracking a newly assigned partition, dropping anything tracked
 * for it before. Returns 0 and its generation, or NH_ENOMEM.
 */
int nh_offsets_assign(nh_offsets_t *t, int32_t partition,
    uint64_t *generation);

/* Stops tracking a revoked partition. Unknown partitions are ignored. */
void nh_offsets_revoke(nh_offsets_t *t, int32_t partition);

/* Stops tracking every partition. */
void nh_offsets_revoke_all(nh_offsets_t *t);

/*
 * Records a consumed offset as unfinished. Returns 0 and the partition's
 * generation, or NH_ENOENT when the partition is not assigned. Returns
 * NH_EEXIST when the offset is already tracked, because the message was
 * consumed twice, and NH_ENOMEM when memory runs out.
 */
int nh_offsets_begin(nh_offsets_t *t, int32_t partition, int64_t offset,
    uint64_t *generation);

/*
 * Marks an offset of the given generation finished. Returns 0 and sets
 * *commit to the offset to store when the partition's commit point moved,
 * or to -1 when it did not; NH_ENOENT when the partition was revoked or
 * reassigned since the offset began, or the offset is not tracked.
 */
int nh_offsets_finish(nh_offsets_t *t, int32_t partition,
    uint64_t generation, int64_t offset, int64_t *commit);

/* Returns the number of offsets tracked over all partitions. */
size_t nh_offsets_count(const nh_offsets_t *t);

#endif /* NH_OFFSETS_H */
