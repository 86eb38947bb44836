#ifndef NH_TZ_H
#define NH_TZ_H

#include <stddef.h>
#include <stdint.h>

/*
 * IANA time zones read from TZif files of versions 1 to 4 (RFC 9636,
 * which replaced RFC 8536), as installed by the tzdata package. Version 2
 * and later files are read from their 64-bit data block, and their
 * footer, a POSIX TZ string such as
 * "CET-1CEST,M3.5.0,M10.5.0/3", gives the offsets after the last
 * transition. The code keeps no global state and never reads the TZ
 * environment variable or calls localtime(). A loaded zone is read-only,
 * so threads may share it.
 *
 * Instants are seconds since the Unix epoch, leap seconds not counted.
 * Offsets are seconds east of UTC (Berlin in winter is +3600).
 */

typedef struct nh_tz_s        nh_tz_t;
typedef struct nh_tz_names_s  nh_tz_names_t;

#define NH_TZ_DEFAULT_DIR  "/usr/share/zoneinfo"

/* Maximum length of a zone name in bytes. */
#define NH_TZ_NAME_MAX  64

/*
 * The supported instants: 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z,
 * the range of nh_time_format_rfc3339().
 */
#define NH_TZ_TIME_MIN  (-62167219200LL)
#define NH_TZ_TIME_MAX  253402300799LL

/* Results of the functions below. */
#define NH_TZ_OK        0
#define NH_TZ_EINVAL   -1   /* invalid argument: name, wall time, window */
#define NH_TZ_ENOENT   -2   /* no zone file of that name */
#define NH_TZ_EFORMAT  -3   /* malformed or unsupported zone file */
#define NH_TZ_ENOMEM   -4   /* out of memory */
#define NH_TZ_EIO      -5   /* reading a file or directory failed */
#define NH_TZ_ERANGE   -6   /* instant or year outside the supported range */

/* Which instant a wall time that happens twice resolves to. */
typedef enum {
    NH_TZ_EARLIER = 0,
    NH_TZ_LATER
} nh_tz_overlap_e;

/* How nh_tz_local_to_utc() resolved a wall time. */
typedef enum {
    NH_TZ_UNIQUE = 0,   /* the wall time happens once */
    NH_TZ_GAP,          /* skipped by a forward shift, e.g. 02:30 in spring */
    NH_TZ_OVERLAP       /* repeated by a backward shift, e.g. 01:30 in fall */
} nh_tz_match_e;

/* A wall-clock time in a zone, in the proleptic Gregorian calendar. */
typedef struct {
    int  year;     /* 0 to 9999 */
    int  month;    /* 1 to 12 */
    int  day;      /* 1 to 31 */
    int  hour;     /* 0 to 23 */
    int  minute;   /* 0 to 59 */
    int  second;   /* 0 to 59 */
} nh_tz_wall_t;

/*
 * Returns a static, lower-case English description of an NH_TZ_* result,
 * for log lines, e.g. "zone file not found".
 */
const char *nh_tz_strerror(int rc);

/*
 * Checks the syntax of a zone name of len bytes, without file access:
 * 1 to NH_TZ_NAME_MAX bytes of ASCII letters, digits, '/', '_', '-' and
 * '+', with no '/' at either end and no "//". Dots are invalid, so "."
 * and ".." cannot name a directory. Returns 1 if valid, else 0.
 */
int nh_tz_name_is_valid(const char *name, size_t len);

/*
 * Reads the zone file dir/name, where dir is NULL for NH_TZ_DEFAULT_DIR
 * and name is NUL-terminated. Returns NH_TZ_OK and a zone in *out, or an
 * error with *out NULL: NH_TZ_EINVAL when nh_tz_name_is_valid() rejects
 * the name, NH_TZ_ENOENT when no such file exists, NH_TZ_ENOMEM, or
 * NH_TZ_EIO. NH_TZ_EFORMAT means a file that is not valid TZif, is over
 * 1 MiB, or has leap-second records, as the "right/" zones do.
 */
int nh_tz_load(const char *dir, const char *name, nh_tz_t **out);

/*
 * Parses len bytes of TZif data, as nh_tz_load() does after reading the
 * file. Returns NH_TZ_OK and a zone in *out, or NH_TZ_EFORMAT or
 * NH_TZ_ENOMEM with *out NULL.
 */
int nh_tz_parse(const unsigned char *data, size_t len, nh_tz_t **out);

/* Frees a zone. NULL is allowed. */
void nh_tz_free(nh_tz_t *tz);

/*
 * Stores the UTC offset in effect at instant utc_sec in *off. Before the
 * first transition the file's first time type applies. At and after the
 * last transition the footer's TZ string applies, or the last transition's
 * type when the file has no footer (version 1) or an empty one. Returns
 * NH_TZ_OK, or NH_TZ_ERANGE when utc_sec is outside NH_TZ_TIME_MIN to
 * NH_TZ_TIME_MAX.
 */
int nh_tz_offset(const nh_tz_t *tz, int64_t utc_sec, int32_t *off);

/*
 * Converts an instant to the wall time in the zone and stores it in
 * *wall, and the offset in *off, which may be NULL. Returns NH_TZ_OK or
 * NH_TZ_ERANGE, as nh_tz_offset() does.
 */
int nh_tz_utc_to_local(const nh_tz_t *tz, int64_t utc_sec,
    nh_tz_wall_t *wall, int32_t *off);

/*
 * Resolves a wall time in the zone to an instant in *utc. A wall time
 * that happens once resolves to that instant. A wall time that a forward
 * shift skips resolves to the instant of the shift, the first instant
 * after the gap: 02:30 on the day New York moves from 02:00 to 03:00
 * resolves to 03:00 EDT. A wall time that happens twice resolves to the
 * earlier or the later of its two instants, as policy selects. *match,
 * which may be NULL, receives which of these cases applied.
 *
 * Returns NH_TZ_OK, NH_TZ_EINVAL when a field of wall is out of range or
 * the date does not exist (February 30), or NH_TZ_ERANGE when the result
 * is outside NH_TZ_TIME_MIN to NH_TZ_TIME_MAX.
 */
int nh_tz_local_to_utc(const nh_tz_t *tz, const nh_tz_wall_t *wall,
    nh_tz_overlap_e policy, int64_t *utc, nh_tz_match_e *match);

/*
 * Reads the set of zone names that nh_tz_load() accepts from dir (NULL
 * for NH_TZ_DEFAULT_DIR), so that callers can validate names without file
 * access. The names come from the "Z" (zone) and "L" (link) lines of
 * dir/tzdata.zi, keeping those whose file exists. Without tzdata.zi, the
 * directory is walked, up to 4 levels deep, for files that start with the
 * TZif magic. Either way, names that nh_tz_name_is_valid() rejects, names
 * under "posix/" and "right/", and "posixrules", "localtime" and "Factory"
 * are left out.
 *
 * Returns NH_TZ_OK and the set in *out, or NH_TZ_ENOENT (dir not found or
 * without zone names), NH_TZ_EIO (reading tzdata.zi or dir failed) or
 * NH_TZ_ENOMEM. *out is NULL after a failure.
 */
int nh_tz_names_load(const char *dir, nh_tz_names_t **out);

/* Frees a name set. NULL is allowed. */
void nh_tz_names_free(nh_tz_names_t *set);

/*
 * Checks whether the set contains the name of len bytes, which need not
 * be NUL-terminated. The comparison is case-sensitive, as zone file names
 * are. Returns 1 if so, else 0.
 */
int nh_tz_names_contains(const nh_tz_names_t *set, const char *name,
    size_t len);

/* Returns the number of names in the set. */
size_t nh_tz_names_count(const nh_tz_names_t *set);

/*
 * Returns the i-th name in byte order, NUL-terminated and valid until the
 * set is freed, or NULL when i is out of range.
 */
const char *nh_tz_names_get(const nh_tz_names_t *set, size_t i);

#endif /* NH_TZ_H */
