#ifndef NH_CONFIG_H
#define NH_CONFIG_H

#include <stddef.h>

/*
 * Worker configuration: environment variables, over an optional file of
 * "key = value" lines named by NH_CONFIG_FILE. Spaces around the key and
 * the value are trimmed. A value may be put in double quotes to keep its
 * spaces. Quoted values have no escape sequences, so they cannot contain
 * '"'. Blank lines and lines whose first non-space character is '#' are
 * skipped, but a '#' later in a line is part of the value. Keys use
 * letters, digits and '_', and each key may appear once.
 */
typedef struct nh_config_s  nh_config_t;

/*
 * Loads the file named by NH_CONFIG_FILE, if that variable is set and not
 * empty. Returns 0 and a new config, or -1 and a message in err (errlen
 * bytes) when the file cannot be read or has a malformed line. The message
 * for a malformed line starts with "<path>:<line>:" and names no value,
 * because values may be secrets.
 */
int nh_config_load(nh_config_t **out, char *err, size_t errlen);

/*
 * Creates a view of base for a second instance of the same settings: a
 * key "NH_<rest>" reads "<prefix><rest>" where that is set, and else the
 * key itself, so prefix "NH_FALLBACK_" turns NH_MAILGUN_URL into
 * NH_FALLBACK_MAILGUN_URL. base must outlive the view, which is freed
 * with nh_config_free(). Returns 0, or -1 when out of memory.
 */
int nh_config_overlay(const nh_config_t *base, const char *prefix,
    nh_config_t **out);

/*
 * Returns the value that cfg itself sets for key, or NULL. A view of
 * nh_config_overlay() returns only the prefixed key's value, never the
 * base's key. Any other configuration returns nh_config_get(cfg, key,
 * NULL).
 */
const char *nh_config_get_own(const nh_config_t *cfg, const char *key);

/* Frees cfg and its strings. Accepts NULL. */
void nh_config_free(nh_config_t *cfg);

/*
 * Returns the environment's value (an empty variable counts as set), else
 * the file's, else def. cfg may be NULL to read only the environment. The
 * string lives until nh_config_free or a change of that variable.
 */
const char *nh_config_get(const nh_config_t *cfg, const char *key,
    const char *def);

/*
 * Reads a decimal integer setting (optional sign, digits only) within
 * [min, max], from the same sources as nh_config_get. Stores def, which is
 * not range-checked, when the key is set nowhere. Returns 0, or -1 and a
 * message in err that names the key, its value and its source when the
 * value is not an integer or is out of range.
 */
int nh_config_get_long(const nh_config_t *cfg, const char *key, long def,
    long min, long max, long *out, char *err, size_t errlen);

#endif /* NH_CONFIG_H */
