#include "nh_uuid.h"
#include "nh_time.h"

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/rand.h>


/*
 * Ordering within one millisecond follows RFC 9562, section 6.2, method 1
 * (a fixed bit-length dedicated counter): the 12 rand_a bits are a
 * counter. nh_uuid_last packs the last id's timestamp and counter as
 * (unix_ms << 12) | counter, so that one atomic compare-and-swap orders
 * all threads of the process. A new millisecond seeds the counter with 11
 * random bits, which leaves at least 2048 increments before it overflows.
 * An overflow carries into the timestamp, so under more than 2048 ids per
 * millisecond the stored time runs ahead of the clock instead of
 * repeating a value. When the clock steps back, the counter goes on from
 * the last id, so ids still increase.
 */
#define NH_UUID_COUNTER_BITS  12
#define NH_UUID_TIME_MASK     0xffffffffffffULL


static _Atomic uint64_t  nh_uuid_last;


static int nh_uuid_hex_value(int c);


int
nh_uuid7_generate(unsigned char out[NH_UUID_LEN])
{
    unsigned char  random[10];
    uint64_t       now_ms, last, fresh, next;
    unsigned       seed;
    int            i;

    if (RAND_bytes(random, sizeof(random)) != 1) {
        return -1;
    }

    now_ms = (uint64_t) nh_time_now_ms() & NH_UUID_TIME_MASK;
    seed = ((unsigned) random[8] << 8 | random[9]) & 0x7ff;
    fresh = now_ms << NH_UUID_COUNTER_BITS | seed;

    last = atomic_load(&nh_uuid_last);

    do {
        next = (fresh > last) ? fresh : last + 1;
    } while (!atomic_compare_exchange_weak(&nh_uuid_last, &last, next));

    /* unix_ts_ms: 48 bits, big-endian. */
    for (i = 0; i < 6; i++) {
        out[i] = (unsigned char) (next >> (NH_UUID_COUNTER_BITS + 8 * (5 - i)));
    }

    /* ver (0111) and the 12-bit counter in rand_a. */
    out[6] = (unsigned char) (0x70 | ((next >> 8) & 0x0f));
    out[7] = (unsigned char) (next & 0xff);

    /* var (10) and 62 random bits in rand_b. */
    out[8] = (unsigned char) (0x80 | (random[0] & 0x3f));

    for (i = 9; i < NH_UUID_LEN; i++) {
        out[i] = random[i - 8];
    }

    return 0;
}


void
nh_uuid_format(const unsigned char in[NH_UUID_LEN],
    char out[NH_UUID_STR_LEN + 1])
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i, n;

    n = 0;

    for (i = 0; i < NH_UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[n++] = '-';
        }

        out[n++] = digits[in[i] >> 4];
        out[n++] = digits[in[i] & 0x0f];
    }

    out[n] = '\0';
}


int
nh_uuid_parse(const char *text, size_t len, unsigned char out[NH_UUID_LEN])
{
    unsigned char  bytes[NH_UUID_LEN];
    size_t         i, n;
    int            high, low;

    if (text == NULL || len != NH_UUID_STR_LEN) {
        return -1;
    }

    n = 0;

    for (i = 0; i < NH_UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            if (text[n++] != '-') {
                return -1;
            }
        }

        high = nh_uuid_hex_value((unsigned char) text[n++]);
        low = nh_uuid_hex_value((unsigned char) text[n++]);

        if (high < 0 || low < 0) {
            return -1;
        }

        bytes[i] = (unsigned char) (high << 4 | low);
    }

    for (i = 0; i < NH_UUID_LEN; i++) {
        out[i] = bytes[i];
    }

    return 0;
}


static int
nh_uuid_hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return -1;
}
