#ifndef NH_UUID_H
#define NH_UUID_H

#include <stddef.h>

#define NH_UUID_LEN      16
#define NH_UUID_STR_LEN  36

/*
 * Generates a version 7 UUID: 48 bits of Unix time in milliseconds, a
 * 12-bit counter in rand_a, then 62 random bits from OpenSSL. Ids made by
 * one process, from any thread, sort in creation order, even within one
 * millisecond. After 2048 to 4096 ids in one millisecond the counter
 * carries into the timestamp, which then runs ahead of the clock. Returns
 * 0, or -1 when the random source fails. Thread-safe and lock-free.
 */
int nh_uuid7_generate(unsigned char out[NH_UUID_LEN]);

/* Writes the canonical lower-case form (36 characters) and a NUL. */
void nh_uuid_format(const unsigned char in[NH_UUID_LEN],
    char out[NH_UUID_STR_LEN + 1]);

/*
 * Parses the canonical 8-4-4-4-12 hexadecimal form, either case, of exactly
 * len bytes, of any UUID version. Returns 0, or -1 when the text is not a
 * UUID, and then leaves out unchanged.
 */
int nh_uuid_parse(const char *text, size_t len, unsigned char out[NH_UUID_LEN]);

#endif /* NH_UUID_H */
