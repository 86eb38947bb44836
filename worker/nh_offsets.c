#include "nh_offsets.h"

#include "nh_error.h"

#include <stdlib.h>
#include <string.h>


typedef struct {
    int64_t  offset;
    int      done;
} nh_offset_entry_t;

typedef struct nh_partition_s  nh_partition_t;

struct nh_partition_s {
    nh_partition_t     *next;
    int32_t             partition;
    uint64_t            generation;
    /* Entries [head, len) are tracked, sorted by offset. */
    nh_offset_entry_t  *entries;
    size_t              head;
    size_t              len;
    size_t              size;
};

struct nh_offsets_s {
    nh_partition_t  *partitions;
    uint64_t         generation;
    size_t           count;
};


static nh_partition_t *nh_offsets_find(const nh_offsets_t *t,
    int32_t partition);
static void nh_offsets_unlink(nh_offsets_t *t, int32_t partition);
static size_t nh_offsets_search(const nh_partition_t *p, int64_t offset);
static int nh_offsets_reserve(nh_partition_t *p);


int
nh_offsets_create(nh_offsets_t **out)
{
    nh_offsets_t  *t;

    t = calloc(1, sizeof(nh_offsets_t));
    if (t == NULL) {
        return NH_ENOMEM;
    }

    *out = t;
    return NH_OK;
}


void
nh_offsets_destroy(nh_offsets_t *t)
{
    if (t == NULL) {
        return;
    }

    nh_offsets_revoke_all(t);
    free(t);
}


int
nh_offsets_assign(nh_offsets_t *t, int32_t partition, uint64_t *generation)
{
    nh_partition_t  *p;

    nh_offsets_unlink(t, partition);

    p = calloc(1, sizeof(nh_partition_t));
    if (p == NULL) {
        return NH_ENOMEM;
    }

    p->partition = partition;
    p->generation = ++t->generation;
    p->next = t->partitions;
    t->partitions = p;

    *generation = p->generation;
    return NH_OK;
}


void
nh_offsets_revoke(nh_offsets_t *t, int32_t partition)
{
    nh_offsets_unlink(t, partition);
}


void
nh_offsets_revoke_all(nh_offsets_t *t)
{
    while (t->partitions != NULL) {
        nh_offsets_unlink(t, t->partitions->partition);
    }
}


int
nh_offsets_begin(nh_offsets_t *t, int32_t partition, int64_t offset,
    uint64_t *generation)
{
    nh_partition_t  *p;
    size_t           i;

    p = nh_offsets_find(t, partition);
    if (p == NULL) {
        return NH_ENOENT;
    }

    i = nh_offsets_search(p, offset);
    if (i < p->len && p->entries[i].offset == offset) {
        return NH_EEXIST;
    }

    if (nh_offsets_reserve(p) != NH_OK) {
        return NH_ENOMEM;
    }

    /* Offsets almost always arrive in order, so this moves nothing. */
    i = nh_offsets_search(p, offset);
    memmove(&p->entries[i + 1], &p->entries[i],
            (p->len - i) * sizeof(nh_offset_entry_t));

    p->entries[i].offset = offset;
    p->entries[i].done = 0;
    p->len++;
    t->count++;

    *generation = p->generation;
    return NH_OK;
}


int
nh_offsets_finish(nh_offsets_t *t, int32_t partition, uint64_t generation,
    int64_t offset, int64_t *commit)
{
    nh_partition_t  *p;
    int64_t          last;
    size_t           i;

    *commit = -1;

    p = nh_offsets_find(t, partition);
    if (p == NULL || p->generation != generation) {
        return NH_ENOENT;
    }

    i = nh_offsets_search(p, offset);
    if (i == p->len || p->entries[i].offset != offset
        || p->entries[i].done)
    {
        return NH_ENOENT;
    }

    p->entries[i].done = 1;

    if (i != p->head) {
        return NH_OK;
    }

    last = offset;
    while (p->head < p->len && p->entries[p->head].done) {
        last = p->entries[p->head].offset;
        p->head++;
        t->count--;
    }

    *commit = (p->head < p->len) ? p->entries[p->head].offset : last + 1;

    return NH_OK;
}


size_t
nh_offsets_count(const nh_offsets_t *t)
{
    return t->count;
}


static nh_partition_t *
nh_offsets_find(const nh_offsets_t *t, int32_t partition)
{
    nh_partition_t  *p;

    for (p = t->partitions; p != NULL; p = p->next) {
        if (p->partition == partition) {
            return p;
        }
    }

    return NULL;
}


static void
nh_offsets_unlink(nh_offsets_t *t, int32_t partition)
{
    nh_partition_t  **link, *p;

    for (link = &t->partitions; *link != NULL; link = &(*link)->next) {
        p = *link;

        if (p->partition == partition) {
            *link = p->next;
            t->count -= p->len - p->head;
            free(p->entries);
            free(p);
            return;
        }
    }
}


/* Returns the index of the first tracked entry not below offset. */
static size_t
nh_offsets_search(const nh_partition_t *p, int64_t offset)
{
    size_t  lo, hi, mid;

    lo = p->head;
    hi = p->len;

    if (lo < hi && p->entries[hi - 1].offset < offset) {
        return hi;
    }

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (p->entries[mid].offset < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return lo;
}


/* Makes room for one more entry at the end, reusing the finished prefix
 * before growing the array. */
static int
nh_offsets_reserve(nh_partition_t *p)
{
    nh_offset_entry_t  *entries;
    size_t              size;

    if (p->len < p->size) {
        return NH_OK;
    }

    if (p->head > 0) {
        memmove(p->entries, &p->entries[p->head],
                (p->len - p->head) * sizeof(nh_offset_entry_t));
        p->len -= p->head;
        p->head = 0;

        if (p->len < p->size) {
            return NH_OK;
        }
    }

    size = p->size ? p->size * 2 : 64;

    entries = realloc(p->entries, size * sizeof(nh_offset_entry_t));
    if (entries == NULL) {
        return NH_ENOMEM;
    }

    p->entries = entries;
    p->size = size;

    return NH_OK;
}
