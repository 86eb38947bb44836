#ifndef NH_JSON_H
#define NH_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Maximum length of the text nh_json_format_number writes, NUL included. */
#define NH_JSON_NUMBER_MAX  32

/*
 * Formats a JSON number in its shortest form: an integral value below
 * 2^53 in magnitude without a fraction, others with the fewest significant
 * digits (15 to 17) that read back as the same double. Returns the length.
 */
size_t nh_json_format_number(double value, char out[NH_JSON_NUMBER_MAX]);

/*
 * Serialises a JSON value canonically. There is no white space, and object
 * members are sorted by name in byte order; of a repeated name the last
 * value is kept. Numbers are written as nh_json_format_number writes them
 * and strings are escaped as cJSON escapes them. So two documents that
 * differ only in spacing, member order or number spelling give one text. Returns 0 and a malloc'ed
 * NUL-terminated string in *out, or -1 when memory runs out.
 */
int nh_json_canonical(const cJSON *item, char **out, size_t *outlen);

#endif /* NH_JSON_H */
