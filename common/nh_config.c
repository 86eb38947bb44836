#include "nh_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    char      *key;
    char      *value;
    unsigned   line;
} nh_config_entry_t;

struct nh_config_s {
    char               *path;
    nh_config_entry_t  *entries;
    size_t              nentries;
    size_t              nalloc;
    /* Set for a view made by nh_config_overlay(), which has no entries. */
    const nh_config_t  *base;
    char               *prefix;
};


static int nh_config_read_file(nh_config_t *cfg, char *err, size_t errlen);
static int nh_config_parse_line(nh_config_t *cfg, char *line, unsigned lineno,
    char *err, size_t errlen);
static int nh_config_add(nh_config_t *cfg, const char *key, const char *value,
    unsigned lineno);
static const nh_config_entry_t *nh_config_find(const nh_config_t *cfg,
    const char *key);
static const char *nh_config_overlay_key(const nh_config_t *cfg,
    const char *key, char *buf, size_t size);
static int nh_config_is_space(int c);
static int nh_config_is_key_char(int c);
static void nh_config_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));


int
nh_config_load(nh_config_t **out, char *err, size_t errlen)
{
    nh_config_t  *cfg;
    const char   *path;

    cfg = calloc(1, sizeof(nh_config_t));

    if (cfg == NULL) {
        nh_config_error(err, errlen, "failed to allocate the configuration");
        goto failed;
    }

    path = getenv("NH_CONFIG_FILE");

    if (path != NULL && path[0] != '\0') {
        cfg->path = strdup(path);

        if (cfg->path == NULL) {
            nh_config_error(err, errlen,
                            "failed to allocate the configuration");
            goto failed;
        }

        if (nh_config_read_file(cfg, err, errlen) != 0) {
            goto failed;
        }
    }

    *out = cfg;

    return 0;

failed:

    nh_config_free(cfg);

    return -1;
}


void
nh_config_free(nh_config_t *cfg)
{
    size_t  i;

    if (cfg == NULL) {
        return;
    }

    for (i = 0; i < cfg->nentries; i++) {
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }

    free(cfg->entries);
    free(cfg->path);
    free(cfg->prefix);
    free(cfg);
}


int
nh_config_overlay(const nh_config_t *base, const char *prefix,
    nh_config_t **out)
{
    nh_config_t  *cfg;

    cfg = calloc(1, sizeof(nh_config_t));
    if (cfg == NULL) {
        return -1;
    }

    cfg->base = base;
    cfg->prefix = strdup(prefix);
    if (cfg->prefix == NULL) {
        free(cfg);
        return -1;
    }

    *out = cfg;

    return 0;
}


const char *
nh_config_get_own(const nh_config_t *cfg, const char *key)
{
    const char  *renamed;
    char         buf[256];

    if (cfg != NULL && cfg->prefix != NULL) {
        renamed = nh_config_overlay_key(cfg, key, buf, sizeof(buf));

        return renamed != NULL ? nh_config_get(cfg->base, renamed, NULL)
                               : NULL;
    }

    return nh_config_get(cfg, key, NULL);
}


const char *
nh_config_get(const nh_config_t *cfg, const char *key, const char *def)
{
    const nh_config_entry_t  *entry;
    const char               *value, *renamed;
    char                      buf[256];

    if (cfg != NULL && cfg->prefix != NULL) {
        renamed = nh_config_overlay_key(cfg, key, buf, sizeof(buf));
        value = renamed != NULL ? nh_config_get(cfg->base, renamed, NULL)
                                : NULL;

        return value != NULL ? value : nh_config_get(cfg->base, key, def);
    }

    value = getenv(key);

    if (value != NULL) {
        return value;
    }

    entry = nh_config_find(cfg, key);

    if (entry != NULL) {
        return entry->value;
    }

    return def;
}


int
nh_config_get_long(const nh_config_t *cfg, const char *key, long def,
    long min, long max, long *out, char *err, size_t errlen)
{
    const nh_config_entry_t  *entry;
    const char               *text, *p, *renamed;
    char                      source[512], buf[256];
    long                      value;

    if (cfg != NULL && cfg->prefix != NULL) {
        renamed = nh_config_overlay_key(cfg, key, buf, sizeof(buf));

        if (renamed != NULL
            && nh_config_get(cfg->base, renamed, NULL) != NULL)
        {
            return nh_config_get_long(cfg->base, renamed, def, min, max, out,
                                      err, errlen);
        }

        return nh_config_get_long(cfg->base, key, def, min, max, out, err,
                                  errlen);
    }

    text = getenv(key);

    if (text != NULL) {
        snprintf(source, sizeof(source), "the environment");

    } else {
        entry = nh_config_find(cfg, key);

        if (entry == NULL) {
            *out = def;
            return 0;
        }

        text = entry->value;
        snprintf(source, sizeof(source), "%s line %u", cfg->path,
                 entry->line);
    }

    /* An optional sign, then decimal digits only: no spaces, no "0x". */
    p = text;

    if (*p == '-' || *p == '+') {
        p++;
    }

    if (*p == '\0' || strspn(p, "0123456789") != strlen(p)) {
        nh_config_error(err, errlen,
                        "invalid %s \"%s\" in %s: expected an integer "
                        "from %ld to %ld", key, text, source, min, max);
        return -1;
    }

    errno = 0;
    value = strtol(text, NULL, 10);

    if (errno == ERANGE || value < min || value > max) {
        nh_config_error(err, errlen,
                        "%s \"%s\" in %s is out of range: expected an "
                        "integer from %ld to %ld", key, text, source, min,
                        max);
        return -1;
    }

    *out = value;

    return 0;
}


static int
nh_config_read_file(nh_config_t *cfg, char *err, size_t errlen)
{
    FILE      *file;
    char      *line;
    size_t     size;
    ssize_t    n;
    unsigned   lineno;
    int        rc;

    rc = -1;
    line = NULL;
    size = 0;
    lineno = 0;

    file = fopen(cfg->path, "r");

    if (file == NULL) {
        nh_config_error(err, errlen,
                        "failed to open config file \"%s\" named by "
                        "NH_CONFIG_FILE: %s", cfg->path, strerror(errno));
        goto failed;
    }

    for ( ;; ) {
        errno = 0;
        n = getline(&line, &size, file);

        if (n < 0) {
            break;
        }

        lineno++;

        if (strlen(line) != (size_t) n) {
            nh_config_error(err, errlen, "%s:%u: line contains a NUL byte",
                            cfg->path, lineno);
            goto failed;
        }

        if (nh_config_parse_line(cfg, line, lineno, err, errlen) != 0) {
            goto failed;
        }
    }

    if (ferror(file)) {
        nh_config_error(err, errlen, "failed to read config file \"%s\": %s",
                        cfg->path, strerror(errno ? errno : EIO));
        goto failed;
    }

    rc = 0;

failed:

    free(line);

    if (file != NULL) {
        fclose(file);
    }

    return rc;
}


/*
 * Parses one line in place and adds its setting. Blank lines and lines
 * whose first non-space character is '#' are skipped. A value in double
 * quotes keeps its spaces. Quoted values have no escape sequences, so they
 * cannot contain '"'.
 */
static int
nh_config_parse_line(nh_config_t *cfg, char *line, unsigned lineno,
    char *err, size_t errlen)
{
    const nh_config_entry_t  *previous;
    char                     *key, *key_end, *value, *value_end, *eq;
    char                     *closing;
    size_t                    i;

    key = line;

    while (nh_config_is_space((unsigned char) *key)) {
        key++;
    }

    if (*key == '\0' || *key == '#') {
        return 0;
    }

    eq = strchr(key, '=');

    if (eq == NULL) {
        nh_config_error(err, errlen,
                        "%s:%u: missing \"=\": expected \"key = value\"",
                        cfg->path, lineno);
        return -1;
    }

    key_end = eq;

    while (key_end > key && nh_config_is_space((unsigned char) key_end[-1])) {
        key_end--;
    }

    if (key_end == key) {
        nh_config_error(err, errlen, "%s:%u: missing key before \"=\"",
                        cfg->path, lineno);
        return -1;
    }

    for (i = 0; key + i < key_end; i++) {
        if (!nh_config_is_key_char((unsigned char) key[i])) {
            nh_config_error(err, errlen,
                            "%s:%u: invalid key: use only letters, digits "
                            "and \"_\"", cfg->path, lineno);
            return -1;
        }
    }

    *key_end = '\0';

    value = eq + 1;

    while (nh_config_is_space((unsigned char) *value)) {
        value++;
    }

    value_end = value + strlen(value);

    while (value_end > value
           && nh_config_is_space((unsigned char) value_end[-1]))
    {
        value_end--;
    }

    *value_end = '\0';

    if (*value == '"') {
        value++;
        closing = strchr(value, '"');

        if (closing == NULL) {
            nh_config_error(err, errlen,
                            "%s:%u: value of \"%s\" has no closing quote",
                            cfg->path, lineno, key);
            return -1;
        }

        if (closing + 1 != value_end) {
            nh_config_error(err, errlen,
                            "%s:%u: unexpected text after the closing quote "
                            "of \"%s\"", cfg->path, lineno, key);
            return -1;
        }

        *closing = '\0';
    }

    previous = nh_config_find(cfg, key);

    if (previous != NULL) {
        nh_config_error(err, errlen,
                        "%s:%u: duplicate key \"%s\", first set on line %u",
                        cfg->path, lineno, key, previous->line);
        return -1;
    }

    if (nh_config_add(cfg, key, value, lineno) != 0) {
        nh_config_error(err, errlen, "%s:%u: failed to allocate memory",
                        cfg->path, lineno);
        return -1;
    }

    return 0;
}


static int
nh_config_add(nh_config_t *cfg, const char *key, const char *value,
    unsigned lineno)
{
    nh_config_entry_t  *entries, *entry;
    size_t              nalloc;

    if (cfg->nentries == cfg->nalloc) {
        nalloc = cfg->nalloc ? 2 * cfg->nalloc : 16;
        entries = realloc(cfg->entries, nalloc * sizeof(nh_config_entry_t));

        if (entries == NULL) {
            return -1;
        }

        cfg->entries = entries;
        cfg->nalloc = nalloc;
    }

    entry = &cfg->entries[cfg->nentries];
    entry->key = strdup(key);
    entry->value = strdup(value);
    entry->line = lineno;

    if (entry->key == NULL || entry->value == NULL) {
        free(entry->key);
        free(entry->value);
        return -1;
    }

    cfg->nentries++;

    return 0;
}


static const nh_config_entry_t *
nh_config_find(const nh_config_t *cfg, const char *key)
{
    size_t  i;

    if (cfg == NULL) {
        return NULL;
    }

    for (i = 0; i < cfg->nentries; i++) {
        if (strcmp(cfg->entries[i].key, key) == 0) {
            return &cfg->entries[i];
        }
    }

    return NULL;
}


/*
 * Writes the overlay's name for key to buf: the prefix and the rest of a
 * key that starts with "NH_". Returns buf, or NULL when key has no such
 * name.
 */
static const char *
nh_config_overlay_key(const nh_config_t *cfg, const char *key, char *buf,
    size_t size)
{
    int  n;

    if (strncmp(key, "NH_", 3) != 0) {
        return NULL;
    }

    n = snprintf(buf, size, "%s%s", cfg->prefix, key + 3);
    if (n < 0 || (size_t) n >= size) {
        return NULL;
    }

    return buf;
}


static int
nh_config_is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v'
           || c == '\f';
}


static int
nh_config_is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}


static void
nh_config_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    if (err == NULL || errlen == 0) {
        return;
    }

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);
}
