#include "nh_tz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* The zone files of tzdata 2025b are at most 3872 bytes. */
#define NH_TZ_FILE_MAX  (1024 * 1024)

/*
 * RFC 8536 says UTC offsets SHOULD be in [-89999, 93599], a little under
 * -25 and +26 hours. Files with other offsets are rejected, so every wall time
 * lies within these bounds of its instant.
 */
#define NH_TZ_UTOFF_MIN  (-89999)
#define NH_TZ_UTOFF_MAX  93599

/* Transition type indices are one byte, so more types cannot be used. */
#define NH_TZ_TYPES_MAX  256

/* Magic, version, 15 reserved bytes and six 32-bit counts. */
#define NH_TZ_HEADER_LEN  44

/* Directory levels that nh_tz_names_load() walks without tzdata.zi. */
#define NH_TZ_WALK_DEPTH  4

#define NH_TZ_SECONDS_PER_DAY  86400


/* The day of a POSIX TZ rule: "Jn", "n" or "Mm.w.d". */
typedef enum {
    NH_TZ_RULE_JULIAN = 0,   /* Jn: 1 to 365, February 29 not counted */
    NH_TZ_RULE_DAY,          /* n: 0 to 365, February 29 counted */
    NH_TZ_RULE_MONTH         /* Mm.w.d: weekday d of week w of month m */
} nh_tz_rule_kind_e;

typedef struct {
    nh_tz_rule_kind_e  kind;
    int                day;
    int                month;
    int                week;       /* 1 to 5, where 5 is the last */
    int                weekday;    /* 0 (Sunday) to 6 */
    int32_t            time;       /* seconds after local midnight */
} nh_tz_rule_t;

/* A POSIX TZ string, with offsets east of UTC. */
typedef struct {
    int32_t       std_offset;
    int32_t       dst_offset;
    int           has_dst;
    nh_tz_rule_t  start;   /* in standard time */
    nh_tz_rule_t  end;     /* in daylight saving time */
} nh_tz_posix_t;

/*
 * One allocation contains the struct and the arrays behind it, in the order
 * transitions, type_offsets, transition_types, so each is aligned.
 */
struct nh_tz_s {
    size_t          transition_count;
    size_t          type_count;
    int64_t        *transitions;        /* strictly ascending */
    int32_t        *type_offsets;
    uint8_t        *transition_types;   /* index into type_offsets */
    int             has_footer;
    nh_tz_posix_t   footer;
};

struct nh_tz_names_s {
    char    **names;   /* sorted by strcmp(), no duplicates */
    size_t    count;
    size_t    capacity;
};

/* The counts of a TZif header. */
typedef struct {
    int       version;   /* 1, 2, 3 or 4 */
    uint32_t  isutcnt;
    uint32_t  isstdcnt;
    uint32_t  leapcnt;
    uint32_t  timecnt;
    uint32_t  typecnt;
    uint32_t  charcnt;
} nh_tz_header_t;

/* A change to or from daylight saving time computed from a TZ string. */
typedef struct {
    int64_t  when;
    int      to_dst;
} nh_tz_event_t;


static int nh_tz_read_header(const unsigned char *p, size_t avail,
    nh_tz_header_t *h);
static uint64_t nh_tz_block_size(const nh_tz_header_t *h, size_t time_size);
static int nh_tz_parse_block(const unsigned char *p,
    const nh_tz_header_t *h, size_t time_size, nh_tz_t **out);
static int nh_tz_check_footer(const nh_tz_t *tz);
static uint32_t nh_tz_get_u32(const unsigned char *p);
static int64_t nh_tz_get_i64(const unsigned char *p);

static int nh_tz_posix_parse(const char *s, size_t len, nh_tz_posix_t *out);
static int nh_tz_posix_name(const char **p, const char *end);
static int nh_tz_posix_time(const char **p, const char *end, int max_hours,
    int32_t *seconds);
static int nh_tz_posix_rule(const char **p, const char *end,
    nh_tz_rule_t *rule);
static int nh_tz_posix_number(const char **p, const char *end,
    int max_digits, int *value);
static int32_t nh_tz_posix_offset(const nh_tz_posix_t *pz, int64_t t);
static size_t nh_tz_posix_events(const nh_tz_posix_t *pz, int64_t first_year,
    int64_t last_year, nh_tz_event_t *events);
static int nh_tz_posix_next(const nh_tz_posix_t *pz, int64_t t,
    int64_t limit, int64_t *when, int32_t *offset);
static int64_t nh_tz_rule_day(const nh_tz_rule_t *rule, int64_t year);

static int32_t nh_tz_offset_at(const nh_tz_t *tz, int64_t t);
static int nh_tz_next_transition(const nh_tz_t *tz, int64_t t,
    int64_t limit, int64_t *when, int32_t *offset);

static int64_t nh_tz_floor_div(int64_t a, int64_t b);
static int nh_tz_is_leap_year(int64_t year);
static int nh_tz_days_in_month(int64_t year, int month);
static int64_t nh_tz_leap_days_before(int64_t year);
static int64_t nh_tz_days_from_civil(int64_t year, int month, int day);
static void nh_tz_civil_from_days(int64_t days, int64_t *year, int *month,
    int *day);
static int64_t nh_tz_year_of(int64_t t);

static int nh_tz_name_is_excluded(const char *name);
static int nh_tz_names_add(nh_tz_names_t *set, const char *name, size_t len);
static int nh_tz_names_read_zi(nh_tz_names_t *set, const char *dir,
    FILE *zi);
static int nh_tz_names_walk(nh_tz_names_t *set, const char *dir,
    const char *prefix, int depth);
static int nh_tz_file_has_magic(const char *path);
static int nh_tz_names_compare(const void *a, const void *b);


const char *
nh_tz_strerror(int rc)
{
    switch (rc) {

    case NH_TZ_OK:
        return "success";

    case NH_TZ_EINVAL:
        return "invalid argument";

    case NH_TZ_ENOENT:
        return "zone file not found";

    case NH_TZ_EFORMAT:
        return "malformed or unsupported zone file";

    case NH_TZ_ENOMEM:
        return "out of memory";

    case NH_TZ_EIO:
        return "read error";

    case NH_TZ_ERANGE:
        return "time outside years 0000 to 9999";

    default:
        return "unknown error";
    }
}


int
nh_tz_name_is_valid(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (name == NULL || len == 0 || len > NH_TZ_NAME_MAX) {
        return 0;
    }

    if (name[0] == '/' || name[len - 1] == '/') {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+')
        {
            continue;
        }

        if (c == '/' && name[i + 1] != '/') {
            continue;
        }

        return 0;
    }

    return 1;
}


int
nh_tz_load(const char *dir, const char *name, nh_tz_t **out)
{
    char            path[PATH_MAX];
    struct stat     st;
    unsigned char  *data;
    size_t          got;
    ssize_t         n;
    int             fd, rc, written;

    *out = NULL;
    data = NULL;
    fd = -1;

    if (name == NULL || !nh_tz_name_is_valid(name, strlen(name))) {
        return NH_TZ_EINVAL;
    }

    if (dir == NULL) {
        dir = NH_TZ_DEFAULT_DIR;
    }

    written = snprintf(path, sizeof(path), "%s/%s", dir, name);

    if (written < 0 || (size_t) written >= sizeof(path)) {
        return NH_TZ_EINVAL;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        rc = (errno == ENOENT || errno == ENOTDIR) ? NH_TZ_ENOENT : NH_TZ_EIO;
        goto failed;
    }

    if (fstat(fd, &st) == -1) {
        rc = NH_TZ_EIO;
        goto failed;
    }

    /* "America" names a directory, not a zone. */
    if (!S_ISREG(st.st_mode)) {
        rc = NH_TZ_ENOENT;
        goto failed;
    }

    if (st.st_size > NH_TZ_FILE_MAX) {
        rc = NH_TZ_EFORMAT;
        goto failed;
    }

    /* Reading one byte past the size detects a file that grew meanwhile. */
    data = malloc((size_t) st.st_size + 1);

    if (data == NULL) {
        rc = NH_TZ_ENOMEM;
        goto failed;
    }

    got = 0;

    while (got < (size_t) st.st_size + 1) {
        n = read(fd, data + got, (size_t) st.st_size + 1 - got);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n == -1) {
            rc = NH_TZ_EIO;
            goto failed;
        }

        if (n == 0) {
            break;
        }

        got += (size_t) n;
    }

    if (got != (size_t) st.st_size) {
        rc = NH_TZ_EIO;
        goto failed;
    }

    rc = nh_tz_parse(data, got, out);

failed:

    free(data);

    if (fd != -1) {
        close(fd);
    }

    return rc;
}


int
nh_tz_parse(const unsigned char *data, size_t len, nh_tz_t **out)
{
    nh_tz_header_t   h1, h2;
    const char      *footer, *newline;
    nh_tz_t         *tz;
    uint64_t         size;
    size_t           pos, footer_len;
    int              rc;

    *out = NULL;
    tz = NULL;

    if (data == NULL || nh_tz_read_header(data, len, &h1) != 0) {
        return NH_TZ_EFORMAT;
    }

    pos = NH_TZ_HEADER_LEN;
    size = nh_tz_block_size(&h1, 4);

    if (size > len - pos) {
        return NH_TZ_EFORMAT;
    }

    if (h1.version == 1) {
        if (pos + size != len) {
            return NH_TZ_EFORMAT;
        }

        return nh_tz_parse_block(data + pos, &h1, 4, out);
    }

    /*
     * Version 2 and later repeat the header and the data with 64-bit
     * times after the version 1 block, which readers of these versions
     * skip.
     */
    pos += (size_t) size;

    if (nh_tz_read_header(data + pos, len - pos, &h2) != 0
        || h2.version != h1.version)
    {
        return NH_TZ_EFORMAT;
    }

    pos += NH_TZ_HEADER_LEN;
    size = nh_tz_block_size(&h2, 8);

    if (size > len - pos) {
        return NH_TZ_EFORMAT;
    }

    rc = nh_tz_parse_block(data + pos, &h2, 8, &tz);

    if (rc != NH_TZ_OK) {
        return rc;
    }

    pos += (size_t) size;

    /* The footer is a TZ string between two newlines, ending the file. */
    if (len - pos < 2 || data[pos] != '\n' || data[len - 1] != '\n') {
        rc = NH_TZ_EFORMAT;
        goto failed;
    }

    footer = (const char *) data + pos + 1;
    footer_len = len - pos - 2;
    newline = memchr(footer, '\n', footer_len);

    if (newline != NULL) {
        rc = NH_TZ_EFORMAT;
        goto failed;
    }

    if (footer_len > 0) {
        if (nh_tz_posix_parse(footer, footer_len, &tz->footer) != 0) {
            rc = NH_TZ_EFORMAT;
            goto failed;
        }

        tz->has_footer = 1;

        rc = nh_tz_check_footer(tz);

        if (rc != NH_TZ_OK) {
            goto failed;
        }
    }

    *out = tz;

    return NH_TZ_OK;

failed:

    nh_tz_free(tz);

    return rc;
}


void
nh_tz_free(nh_tz_t *tz)
{
    free(tz);
}


int
nh_tz_offset(const nh_tz_t *tz, int64_t utc_sec, int32_t *off)
{
    if (utc_sec < NH_TZ_TIME_MIN || utc_sec > NH_TZ_TIME_MAX) {
        return NH_TZ_ERANGE;
    }

    *off = nh_tz_offset_at(tz, utc_sec);

    return NH_TZ_OK;
}


int
nh_tz_utc_to_local(const nh_tz_t *tz, int64_t utc_sec, nh_tz_wall_t *wall,
    int32_t *off)
{
    int64_t  local, days, year, seconds;
    int32_t  offset;
    int      month, day;

    if (utc_sec < NH_TZ_TIME_MIN || utc_sec > NH_TZ_TIME_MAX) {
        return NH_TZ_ERANGE;
    }

    offset = nh_tz_offset_at(tz, utc_sec);
    local = utc_sec + offset;

    days = nh_tz_floor_div(local, NH_TZ_SECONDS_PER_DAY);
    seconds = local - days * NH_TZ_SECONDS_PER_DAY;
    nh_tz_civil_from_days(days, &year, &month, &day);

    wall->year = (int) year;
    wall->month = month;
    wall->day = day;
    wall->hour = (int) (seconds / 3600);
    wall->minute = (int) (seconds / 60 % 60);
    wall->second = (int) (seconds % 60);

    if (off != NULL) {
        *off = offset;
    }

    return NH_TZ_OK;
}


/*
 * The local time of an instant, t + offset(t), rises with t except at a
 * transition, where it jumps by the change of offset. Every instant whose
 * local time is the wall time lies within the UTC offset bounds of it.
 * The search walks the spans of constant offset between those bounds. It
 * keeps each instant that falls inside the span whose offset produced it.
 * When none does, a forward jump skipped the wall time.
 */
int
nh_tz_local_to_utc(const nh_tz_t *tz, const nh_tz_wall_t *wall,
    nh_tz_overlap_e policy, int64_t *utc, nh_tz_match_e *match)
{
    int64_t  local, first, last, span_start, span_end, candidate;
    int64_t  earliest, latest, gap_end, transition;
    int32_t  offset, next_offset;
    size_t   found;
    int      more;

    if (wall->year < 0 || wall->year > 9999
        || wall->month < 1 || wall->month > 12
        || wall->day < 1
        || wall->day > nh_tz_days_in_month(wall->year, wall->month)
        || wall->hour < 0 || wall->hour > 23
        || wall->minute < 0 || wall->minute > 59
        || wall->second < 0 || wall->second > 59
        || (policy != NH_TZ_EARLIER && policy != NH_TZ_LATER))
    {
        return NH_TZ_EINVAL;
    }

    local = nh_tz_days_from_civil(wall->year, wall->month, wall->day)
            * NH_TZ_SECONDS_PER_DAY
            + wall->hour * 3600 + wall->minute * 60 + wall->second;

    first = local - NH_TZ_UTOFF_MAX;
    last = local - NH_TZ_UTOFF_MIN;

    span_start = first;
    offset = nh_tz_offset_at(tz, first);
    found = 0;
    earliest = 0;
    latest = 0;
    gap_end = 0;

    for ( ;; ) {
        more = nh_tz_next_transition(tz, span_start, last, &transition,
                                     &next_offset);
        span_end = more ? transition : last + 1;

        candidate = local - offset;

        if (candidate >= span_start && candidate < span_end) {
            if (found == 0) {
                earliest = candidate;
            }

            latest = candidate;
            found++;
        }

        if (!more) {
            break;
        }

        /* The jump at the transition skips wall times in [old, new). */
        if (local - offset >= transition && local - next_offset < transition) {
            gap_end = transition;
        }

        span_start = transition;
        offset = next_offset;
    }

    if (found > 1) {
        candidate = (policy == NH_TZ_EARLIER) ? earliest : latest;

    } else if (found == 1) {
        candidate = earliest;

    } else {
        candidate = gap_end;
    }

    if (candidate < NH_TZ_TIME_MIN || candidate > NH_TZ_TIME_MAX) {
        return NH_TZ_ERANGE;
    }

    *utc = candidate;

    if (match != NULL) {
        *match = (found > 1) ? NH_TZ_OVERLAP
                 : (found == 1) ? NH_TZ_UNIQUE : NH_TZ_GAP;
    }

    return NH_TZ_OK;
}


int
nh_tz_names_load(const char *dir, nh_tz_names_t **out)
{
    char            path[PATH_MAX];
    struct stat     st;
    nh_tz_names_t  *set;
    FILE           *zi;
    size_t          i, unique;
    int             rc, written;

    *out = NULL;
    zi = NULL;

    if (dir == NULL) {
        dir = NH_TZ_DEFAULT_DIR;
    }

    if (stat(dir, &st) == -1) {
        return (errno == ENOENT || errno == ENOTDIR) ? NH_TZ_ENOENT
                                                     : NH_TZ_EIO;
    }

    if (!S_ISDIR(st.st_mode)) {
        return NH_TZ_ENOENT;
    }

    written = snprintf(path, sizeof(path), "%s/tzdata.zi", dir);

    if (written < 0 || (size_t) written >= sizeof(path)) {
        return NH_TZ_EINVAL;
    }

    set = calloc(1, sizeof(nh_tz_names_t));

    if (set == NULL) {
        return NH_TZ_ENOMEM;
    }

    zi = fopen(path, "re");

    if (zi != NULL) {
        rc = nh_tz_names_read_zi(set, dir, zi);

    } else if (errno == ENOENT) {
        rc = nh_tz_names_walk(set, dir, "", 1);

    } else {
        rc = NH_TZ_EIO;
    }

    if (rc != NH_TZ_OK) {
        goto failed;
    }

    if (set->count == 0) {
        rc = NH_TZ_ENOENT;
        goto failed;
    }

    qsort(set->names, set->count, sizeof(char *), nh_tz_names_compare);

    /* Links in tzdata.zi may repeat a name. */
    unique = 1;

    for (i = 1; i < set->count; i++) {
        if (strcmp(set->names[i], set->names[unique - 1]) == 0) {
            free(set->names[i]);
            continue;
        }

        set->names[unique++] = set->names[i];
    }

    set->count = unique;

    if (zi != NULL) {
        fclose(zi);
    }

    *out = set;

    return NH_TZ_OK;

failed:

    if (zi != NULL) {
        fclose(zi);
    }

    nh_tz_names_free(set);

    return rc;
}


void
nh_tz_names_free(nh_tz_names_t *set)
{
    size_t  i;

    if (set == NULL) {
        return;
    }

    for (i = 0; i < set->count; i++) {
        free(set->names[i]);
    }

    free(set->names);
    free(set);
}


int
nh_tz_names_contains(const nh_tz_names_t *set, const char *name,
    size_t len)
{
    size_t  low, high, middle, entry_len;
    int     cmp;

    if (set == NULL || name == NULL || len == 0 || len > NH_TZ_NAME_MAX) {
        return 0;
    }

    low = 0;
    high = set->count;

    while (low < high) {
        middle = low + (high - low) / 2;
        entry_len = strlen(set->names[middle]);

        cmp = memcmp(set->names[middle], name,
                     (entry_len < len) ? entry_len : len);

        if (cmp == 0) {
            cmp = (entry_len < len) ? -1 : (entry_len > len) ? 1 : 0;
        }

        if (cmp == 0) {
            return 1;
        }

        if (cmp < 0) {
            low = middle + 1;

        } else {
            high = middle;
        }
    }

    return 0;
}


size_t
nh_tz_names_count(const nh_tz_names_t *set)
{
    return set->count;
}


const char *
nh_tz_names_get(const nh_tz_names_t *set, size_t i)
{
    return (i < set->count) ? set->names[i] : NULL;
}


/* TZif data */


static int
nh_tz_read_header(const unsigned char *p, size_t avail, nh_tz_header_t *h)
{
    if (avail < NH_TZ_HEADER_LEN || memcmp(p, "TZif", 4) != 0) {
        return -1;
    }

    switch (p[4]) {

    case 0:
        h->version = 1;
        break;

    case '2':
    case '3':
    case '4':
        h->version = p[4] - '0';
        break;

    default:
        return -1;
    }

    h->isutcnt = nh_tz_get_u32(p + 20);
    h->isstdcnt = nh_tz_get_u32(p + 24);
    h->leapcnt = nh_tz_get_u32(p + 28);
    h->timecnt = nh_tz_get_u32(p + 32);
    h->typecnt = nh_tz_get_u32(p + 36);
    h->charcnt = nh_tz_get_u32(p + 40);

    if (h->typecnt == 0 || h->typecnt > NH_TZ_TYPES_MAX || h->charcnt == 0
        || (h->isutcnt != 0 && h->isutcnt != h->typecnt)
        || (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
    {
        return -1;
    }

    return 0;
}


/* Every count is below 2^32, so the sum cannot overflow 64 bits. */
static uint64_t
nh_tz_block_size(const nh_tz_header_t *h, size_t time_size)
{
    return (uint64_t) h->timecnt * time_size
           + h->timecnt
           + (uint64_t) h->typecnt * 6
           + h->charcnt
           + (uint64_t) h->leapcnt * (time_size + 4)
           + h->isstdcnt
           + h->isutcnt;
}


/* Parses and checks one data block whose size the caller has checked. */
static int
nh_tz_parse_block(const unsigned char *p, const nh_tz_header_t *h,
    size_t time_size, nh_tz_t **out)
{
    const unsigned char  *times, *indices, *types, *chars, *flags;
    nh_tz_t              *tz;
    size_t                i, size;
    int64_t               t;
    int32_t               utoff;

    /* Leap-second records make transition times count leap seconds. */
    if (h->leapcnt != 0) {
        return NH_TZ_EFORMAT;
    }

    times = p;
    indices = times + (size_t) h->timecnt * time_size;
    types = indices + h->timecnt;
    chars = types + (size_t) h->typecnt * 6;
    flags = chars + h->charcnt;

    /* Designations are NUL-terminated within the block. */
    if (chars[h->charcnt - 1] != '\0') {
        return NH_TZ_EFORMAT;
    }

    /* The standard/wall and UT/local indicators are 0 or 1. */
    for (i = 0; i < (size_t) h->isstdcnt + h->isutcnt; i++) {
        if (flags[i] > 1) {
            return NH_TZ_EFORMAT;
        }
    }

    size = sizeof(nh_tz_t) + (size_t) h->timecnt * sizeof(int64_t)
           + (size_t) h->typecnt * sizeof(int32_t) + h->timecnt;

    tz = calloc(1, size);

    if (tz == NULL) {
        return NH_TZ_ENOMEM;
    }

    tz->transition_count = h->timecnt;
    tz->type_count = h->typecnt;
    tz->transitions = (int64_t *) (tz + 1);
    tz->type_offsets = (int32_t *) (tz->transitions + h->timecnt);
    tz->transition_types = (uint8_t *) (tz->type_offsets + h->typecnt);

    for (i = 0; i < h->typecnt; i++) {
        utoff = (int32_t) nh_tz_get_u32(types + i * 6);

        if (utoff < NH_TZ_UTOFF_MIN || utoff > NH_TZ_UTOFF_MAX
            || types[i * 6 + 4] > 1 || types[i * 6 + 5] >= h->charcnt)
        {
            goto failed;
        }

        tz->type_offsets[i] = utoff;
    }

    for (i = 0; i < h->timecnt; i++) {
        if (time_size == 4) {
            t = (int32_t) nh_tz_get_u32(times + i * 4);

        } else {
            t = nh_tz_get_i64(times + i * 8);
        }

        if (i > 0 && t <= tz->transitions[i - 1]) {
            goto failed;
        }

        if (indices[i] >= h->typecnt) {
            goto failed;
        }

        tz->transitions[i] = t;
        tz->transition_types[i] = indices[i];
    }

    *out = tz;

    return NH_TZ_OK;

failed:

    free(tz);

    return NH_TZ_EFORMAT;
}


/*
 * RFC 8536 requires the footer to agree with the last transition. A file
 * where it does not would change its offset at that instant without a
 * transition, so it is rejected.
 */
static int
nh_tz_check_footer(const nh_tz_t *tz)
{
    size_t   last;
    int64_t  t;

    if (tz->transition_count == 0) {
        return NH_TZ_OK;
    }

    last = tz->transition_count - 1;
    t = tz->transitions[last];

    /* Transitions outside the supported years are never looked up. */
    if (t < NH_TZ_TIME_MIN || t > NH_TZ_TIME_MAX) {
        return NH_TZ_OK;
    }

    if (nh_tz_posix_offset(&tz->footer, t)
        != tz->type_offsets[tz->transition_types[last]])
    {
        return NH_TZ_EFORMAT;
    }

    return NH_TZ_OK;
}


static uint32_t
nh_tz_get_u32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static int64_t
nh_tz_get_i64(const unsigned char *p)
{
    uint64_t  u;

    u = (uint64_t) nh_tz_get_u32(p) << 32 | nh_tz_get_u32(p + 4);

    return (int64_t) u;
}


/* POSIX TZ strings */


/*
 * Parses "std offset [dst [offset] ,start[/time],end[/time]]", with the
 * extensions of TZif version 3: rule times from -167 to 167 hours. A zone
 * with daylight saving time but no rules is rejected, because the POSIX
 * default rules are implementation-defined.
 */
static int
nh_tz_posix_parse(const char *s, size_t len, nh_tz_posix_t *out)
{
    const char  *p, *end;
    int32_t      seconds;

    p = s;
    end = s + len;

    memset(out, 0, sizeof(nh_tz_posix_t));

    if (nh_tz_posix_name(&p, end) != 0
        || nh_tz_posix_time(&p, end, 24, &seconds) != 0)
    {
        return -1;
    }

    /* POSIX offsets count west of UTC: "EST5" is UTC-5. */
    out->std_offset = -seconds;

    if (p == end) {
        return 0;
    }

    if (nh_tz_posix_name(&p, end) != 0) {
        return -1;
    }

    out->has_dst = 1;

    if (p < end && *p != ',') {
        if (nh_tz_posix_time(&p, end, 24, &seconds) != 0) {
            return -1;
        }

        out->dst_offset = -seconds;

    } else {
        out->dst_offset = out->std_offset + 3600;
    }

    if (p == end || *p != ',') {
        return -1;
    }

    p++;

    if (nh_tz_posix_rule(&p, end, &out->start) != 0
        || p == end || *p != ',')
    {
        return -1;
    }

    p++;

    if (nh_tz_posix_rule(&p, end, &out->end) != 0 || p != end) {
        return -1;
    }

    return 0;
}


/* A name of 3 or more letters, or of 3 or more [A-Za-z0-9+-] in "<>". */
static int
nh_tz_posix_name(const char **p, const char *end)
{
    const char  *q;
    size_t       n;

    q = *p;
    n = 0;

    if (q < end && *q == '<') {
        q++;

        while (q < end && ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z')
                           || (*q >= '0' && *q <= '9') || *q == '+'
                           || *q == '-'))
        {
            q++;
            n++;
        }

        if (q == end || *q != '>' || n < 3) {
            return -1;
        }

        *p = q + 1;

        return 0;
    }

    while (q < end && ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))) {
        q++;
        n++;
    }

    if (n < 3) {
        return -1;
    }

    *p = q;

    return 0;
}


/* "[+-]hh[:mm[:ss]]" with hours up to max_hours. */
static int
nh_tz_posix_time(const char **p, const char *end, int max_hours,
    int32_t *seconds)
{
    const char  *q;
    int          sign, hours, minutes, secs;

    q = *p;
    sign = 1;
    minutes = 0;
    secs = 0;

    if (q < end && (*q == '+' || *q == '-')) {
        sign = (*q == '-') ? -1 : 1;
        q++;
    }

    if (nh_tz_posix_number(&q, end, 3, &hours) != 0 || hours > max_hours) {
        return -1;
    }

    if (q < end && *q == ':') {
        q++;

        if (nh_tz_posix_number(&q, end, 2, &minutes) != 0 || minutes > 59) {
            return -1;
        }

        if (q < end && *q == ':') {
            q++;

            if (nh_tz_posix_number(&q, end, 2, &secs) != 0 || secs > 59) {
                return -1;
            }
        }
    }

    *seconds = sign * (hours * 3600 + minutes * 60 + secs);
    *p = q;

    return 0;
}


/* "Jn", "n" or "Mm.w.d", then an optional "/time", 02:00 by default. */
static int
nh_tz_posix_rule(const char **p, const char *end, nh_tz_rule_t *rule)
{
    const char  *q;

    q = *p;

    if (q < end && *q == 'J') {
        q++;
        rule->kind = NH_TZ_RULE_JULIAN;

        if (nh_tz_posix_number(&q, end, 3, &rule->day) != 0
            || rule->day < 1 || rule->day > 365)
        {
            return -1;
        }

    } else if (q < end && *q == 'M') {
        q++;
        rule->kind = NH_TZ_RULE_MONTH;

        if (nh_tz_posix_number(&q, end, 2, &rule->month) != 0
            || rule->month < 1 || rule->month > 12
            || q == end || *q++ != '.'
            || nh_tz_posix_number(&q, end, 1, &rule->week) != 0
            || rule->week < 1 || rule->week > 5
            || q == end || *q++ != '.'
            || nh_tz_posix_number(&q, end, 1, &rule->weekday) != 0
            || rule->weekday > 6)
        {
            return -1;
        }

    } else {
        rule->kind = NH_TZ_RULE_DAY;

        if (nh_tz_posix_number(&q, end, 3, &rule->day) != 0
            || rule->day > 365)
        {
            return -1;
        }
    }

    rule->time = 2 * 3600;

    if (q < end && *q == '/') {
        q++;

        if (nh_tz_posix_time(&q, end, 167, &rule->time) != 0) {
            return -1;
        }
    }

    *p = q;

    return 0;
}


/* 1 to max_digits decimal digits. */
static int
nh_tz_posix_number(const char **p, const char *end, int max_digits,
    int *value)
{
    const char  *q;
    int          n, digits;

    q = *p;
    n = 0;

    for (digits = 0; digits < max_digits && q < end; digits++, q++) {
        if (*q < '0' || *q > '9') {
            break;
        }

        n = n * 10 + (*q - '0');
    }

    if (digits == 0 || (q < end && *q >= '0' && *q <= '9')) {
        return -1;
    }

    *value = n;
    *p = q;

    return 0;
}


/*
 * The offset of a TZ string at instant t: the state after the last change
 * at or before t. Changes of the two years before t's year are included,
 * because a rule time of up to 167 hours can move a change of the year
 * before into January.
 */
static int32_t
nh_tz_posix_offset(const nh_tz_posix_t *pz, int64_t t)
{
    nh_tz_event_t  events[8];
    int64_t        year;
    size_t         i, n;
    int            dst;

    if (!pz->has_dst) {
        return pz->std_offset;
    }

    year = nh_tz_year_of(t + pz->std_offset);
    n = nh_tz_posix_events(pz, year - 2, year + 1, events);
    dst = 0;

    for (i = 0; i < n && events[i].when <= t; i++) {
        dst = events[i].to_dst;
    }

    return dst ? pz->dst_offset : pz->std_offset;
}


/*
 * Stores the changes of the years first_year to last_year, at most 4
 * years, sorted by time. At equal times the end of daylight saving time
 * comes first, so that a zone on daylight saving time all year, such as
 * "EST5EDT,0/0,J365/25", stays on it.
 */
static size_t
nh_tz_posix_events(const nh_tz_posix_t *pz, int64_t first_year,
    int64_t last_year, nh_tz_event_t *events)
{
    nh_tz_event_t  e;
    int64_t        year;
    size_t         n, i, j;

    n = 0;

    for (year = first_year; year <= last_year; year++) {
        events[n].when = nh_tz_rule_day(&pz->start, year)
                         * NH_TZ_SECONDS_PER_DAY
                         + pz->start.time - pz->std_offset;
        events[n].to_dst = 1;
        n++;

        events[n].when = nh_tz_rule_day(&pz->end, year)
                         * NH_TZ_SECONDS_PER_DAY
                         + pz->end.time - pz->dst_offset;
        events[n].to_dst = 0;
        n++;
    }

    for (i = 1; i < n; i++) {
        e = events[i];

        for (j = i; j > 0; j--) {
            if (events[j - 1].when < e.when
                || (events[j - 1].when == e.when
                    && events[j - 1].to_dst <= e.to_dst))
            {
                break;
            }

            events[j] = events[j - 1];
        }

        events[j] = e;
    }

    return n;
}


/*
 * Finds the first change of offset in (t, limit] under a TZ string, where
 * limit - t is at most a few days. Returns 1 and the instant and new
 * offset, or 0 when there is none.
 */
static int
nh_tz_posix_next(const nh_tz_posix_t *pz, int64_t t, int64_t limit,
    int64_t *when, int32_t *offset)
{
    nh_tz_event_t  events[8];
    int64_t        year;
    int32_t        before, after;
    size_t         i, n;

    if (!pz->has_dst) {
        return 0;
    }

    year = nh_tz_year_of(t + pz->std_offset);
    n = nh_tz_posix_events(pz, year - 1, year + 2, events);

    for (i = 0; i < n; i++) {
        if (events[i].when <= t) {
            continue;
        }

        if (events[i].when > limit) {
            break;
        }

        before = nh_tz_posix_offset(pz, events[i].when - 1);
        after = nh_tz_posix_offset(pz, events[i].when);

        if (before != after) {
            *when = events[i].when;
            *offset = after;
            return 1;
        }
    }

    return 0;
}


/* The day of a rule in a year, in days since 1970-01-01. */
static int64_t
nh_tz_rule_day(const nh_tz_rule_t *rule, int64_t year)
{
    int64_t  first, day;
    int      weekday, last;

    switch (rule->kind) {

    case NH_TZ_RULE_JULIAN:
        /* J60 is March 1, even in a leap year. */
        day = rule->day - 1;

        if (nh_tz_is_leap_year(year) && rule->day >= 60) {
            day++;
        }

        return nh_tz_days_from_civil(year, 1, 1) + day;

    case NH_TZ_RULE_DAY:
        return nh_tz_days_from_civil(year, 1, 1) + rule->day;

    default:
        first = nh_tz_days_from_civil(year, rule->month, 1);

        /* 1970-01-01 was a Thursday, weekday 4. */
        weekday = (int) (first + 4 - nh_tz_floor_div(first + 4, 7) * 7);
        day = (rule->weekday - weekday + 7) % 7 + (rule->week - 1) * 7;
        last = nh_tz_days_in_month(year, rule->month) - 1;

        /* Week 5 means the last such weekday, which may be the fourth. */
        while (day > last) {
            day -= 7;
        }

        return first + day;
    }
}


/* Transitions */


static int32_t
nh_tz_offset_at(const nh_tz_t *tz, int64_t t)
{
    size_t  n, low, high, middle;

    n = tz->transition_count;

    if (n == 0) {
        return tz->has_footer ? nh_tz_posix_offset(&tz->footer, t)
                              : tz->type_offsets[0];
    }

    if (t < tz->transitions[0]) {
        return tz->type_offsets[0];
    }

    if (t >= tz->transitions[n - 1]) {
        return tz->has_footer
               ? nh_tz_posix_offset(&tz->footer, t)
               : tz->type_offsets[tz->transition_types[n - 1]];
    }

    /* The last transition at or before t, with transitions[0] <= t. */
    low = 0;
    high = n - 1;

    while (high - low > 1) {
        middle = low + (high - low) / 2;

        if (tz->transitions[middle] <= t) {
            low = middle;

        } else {
            high = middle;
        }
    }

    return tz->type_offsets[tz->transition_types[low]];
}


/*
 * Finds the first change of offset in (t, limit], skipping transitions
 * that change only the abbreviation or the DST flag. Returns 1 and the
 * instant and new offset, or 0 when there is none.
 */
static int
nh_tz_next_transition(const nh_tz_t *tz, int64_t t, int64_t limit,
    int64_t *when, int32_t *offset)
{
    size_t   n, i, low, high, middle;
    int32_t  before, after;
    int64_t  from;

    n = tz->transition_count;
    from = t;

    if (n > 0) {
        /* The first transition after t. */
        low = 0;
        high = n;

        while (low < high) {
            middle = low + (high - low) / 2;

            if (tz->transitions[middle] <= t) {
                low = middle + 1;

            } else {
                high = middle;
            }
        }

        for (i = low; i < n && tz->transitions[i] <= limit; i++) {
            before = (i == 0) ? tz->type_offsets[0]
                              : tz->type_offsets[tz->transition_types[i - 1]];
            after = tz->type_offsets[tz->transition_types[i]];

            if (before != after) {
                *when = tz->transitions[i];
                *offset = after;
                return 1;
            }
        }

        if (i < n) {
            return 0;
        }

        if (tz->transitions[n - 1] > from) {
            from = tz->transitions[n - 1];
        }
    }

    if (!tz->has_footer) {
        return 0;
    }

    return nh_tz_posix_next(&tz->footer, from, limit, when, offset);
}


/* Calendar arithmetic in the proleptic Gregorian calendar */


static int64_t
nh_tz_floor_div(int64_t a, int64_t b)
{
    int64_t  q;

    q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }

    return q;
}


static int
nh_tz_is_leap_year(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}


static int
nh_tz_days_in_month(int64_t year, int month)
{
    static const int  days[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (month == 2 && nh_tz_is_leap_year(year)) {
        return 29;
    }

    return days[month - 1];
}


/* The leap years from year 1 (or before, for negative years) to year - 1. */
static int64_t
nh_tz_leap_days_before(int64_t year)
{
    return nh_tz_floor_div(year - 1, 4) - nh_tz_floor_div(year - 1, 100)
           + nh_tz_floor_div(year - 1, 400);
}


/* Days since 1970-01-01. */
static int64_t
nh_tz_days_from_civil(int64_t year, int month, int day)
{
    static const int  before_month[12] = {
        0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334
    };
    int64_t           days;

    days = (year - 1970) * 365 + nh_tz_leap_days_before(year)
           - nh_tz_leap_days_before(1970);

    days += before_month[month - 1] + day - 1;

    if (month > 2 && nh_tz_is_leap_year(year)) {
        days++;
    }

    return days;
}


static void
nh_tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t  y, rest;
    int      m, length;

    /* 146097 days are 400 years. The loops correct the estimate. */
    y = 1970 + nh_tz_floor_div(days * 400, 146097);

    while (nh_tz_days_from_civil(y, 1, 1) > days) {
        y--;
    }

    while (nh_tz_days_from_civil(y + 1, 1, 1) <= days) {
        y++;
    }

    rest = days - nh_tz_days_from_civil(y, 1, 1);

    for (m = 1; m < 12; m++) {
        length = nh_tz_days_in_month(y, m);

        if (rest < length) {
            break;
        }

        rest -= length;
    }

    *year = y;
    *month = m;
    *day = (int) rest + 1;
}


/* The calendar year of a local time in seconds since 1970-01-01. */
static int64_t
nh_tz_year_of(int64_t t)
{
    int64_t  year;
    int      month, day;

    nh_tz_civil_from_days(nh_tz_floor_div(t, NH_TZ_SECONDS_PER_DAY),
                          &year, &month, &day);

    return year;
}


/* Zone name sets */


static int
nh_tz_name_is_excluded(const char *name)
{
    return strncmp(name, "posix/", 6) == 0 || strncmp(name, "right/", 6) == 0
           || strcmp(name, "posixrules") == 0
           || strcmp(name, "localtime") == 0
           || strcmp(name, "Factory") == 0;
}


/* Adds a copy of a name unless it is invalid or excluded. */
static int
nh_tz_names_add(nh_tz_names_t *set, const char *name, size_t len)
{
    char    **names, *copy;
    size_t    capacity;

    if (!nh_tz_name_is_valid(name, len)) {
        return NH_TZ_OK;
    }

    copy = strndup(name, len);

    if (copy == NULL) {
        return NH_TZ_ENOMEM;
    }

    if (nh_tz_name_is_excluded(copy)) {
        free(copy);
        return NH_TZ_OK;
    }

    if (set->count == set->capacity) {
        capacity = (set->capacity == 0) ? 512 : set->capacity * 2;
        names = realloc(set->names, capacity * sizeof(char *));

        if (names == NULL) {
            free(copy);
            return NH_TZ_ENOMEM;
        }

        set->names = names;
        set->capacity = capacity;
    }

    set->names[set->count++] = copy;

    return NH_TZ_OK;
}


/*
 * Adds the names of "Z name ..." and "L target name" lines whose file
 * exists under dir. Debian ships some link names in a separate package,
 * tzdata-legacy, so tzdata.zi may list names without files.
 */
static int
nh_tz_names_read_zi(nh_tz_names_t *set, const char *dir, FILE *zi)
{
    static const char  separators[] = " \t\r\n";
    char               path[PATH_MAX];
    struct stat        st;
    char              *line, *tag, *first, *second, *name, *save;
    size_t             size;
    int                rc, written;

    line = NULL;
    size = 0;
    rc = NH_TZ_OK;

    while (getline(&line, &size, zi) != -1) {
        save = NULL;
        tag = strtok_r(line, separators, &save);

        if (tag == NULL || (strcmp(tag, "Z") != 0 && strcmp(tag, "L") != 0)) {
            continue;
        }

        first = strtok_r(NULL, separators, &save);
        second = (first != NULL) ? strtok_r(NULL, separators, &save) : NULL;

        /* A zone's name is its first field, a link's its second. */
        name = (tag[0] == 'Z') ? first : second;

        if (name == NULL) {
            continue;
        }

        written = snprintf(path, sizeof(path), "%s/%s", dir, name);

        if (written < 0 || (size_t) written >= sizeof(path)
            || stat(path, &st) == -1 || !S_ISREG(st.st_mode))
        {
            continue;
        }

        rc = nh_tz_names_add(set, name, strlen(name));

        if (rc != NH_TZ_OK) {
            break;
        }
    }

    if (rc == NH_TZ_OK && ferror(zi)) {
        rc = NH_TZ_EIO;
    }

    free(line);

    return rc;
}


/* Adds regular files with the TZif magic under dir/prefix. */
static int
nh_tz_names_walk(nh_tz_names_t *set, const char *dir, const char *prefix,
    int depth)
{
    char            path[PATH_MAX], name[PATH_MAX];
    struct stat     st;
    struct dirent  *entry;
    DIR            *d;
    int             rc, written;

    written = snprintf(path, sizeof(path), "%s%s%s", dir,
                       (prefix[0] != '\0') ? "/" : "", prefix);

    if (written < 0 || (size_t) written >= sizeof(path)) {
        return NH_TZ_OK;
    }

    d = opendir(path);

    /* An unreadable subdirectory is skipped, but not dir itself. */
    if (d == NULL) {
        return (depth == 1) ? NH_TZ_EIO : NH_TZ_OK;
    }

    rc = NH_TZ_OK;

    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.') {
            continue;
        }

        written = snprintf(name, sizeof(name), "%s%s%s", prefix,
                           (prefix[0] != '\0') ? "/" : "", entry->d_name);

        if (written < 0 || written > NH_TZ_NAME_MAX
            || strcmp(name, "posix") == 0 || strcmp(name, "right") == 0)
        {
            continue;
        }

        written = snprintf(path, sizeof(path), "%s/%s", dir, name);

        if (written < 0 || (size_t) written >= sizeof(path)
            || stat(path, &st) == -1)
        {
            continue;
        }

        if (S_ISDIR(st.st_mode)) {
            if (depth < NH_TZ_WALK_DEPTH) {
                rc = nh_tz_names_walk(set, dir, name, depth + 1);
            }

        } else if (S_ISREG(st.st_mode)
                   && nh_tz_name_is_valid(name, strlen(name))
                   && nh_tz_file_has_magic(path))
        {
            rc = nh_tz_names_add(set, name, strlen(name));
        }

        if (rc != NH_TZ_OK) {
            break;
        }
    }

    closedir(d);

    return rc;
}


static int
nh_tz_file_has_magic(const char *path)
{
    char     magic[4];
    ssize_t  n;
    int      fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        return 0;
    }

    n = read(fd, magic, sizeof(magic));
    close(fd);

    return n == (ssize_t) sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}


static int
nh_tz_names_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}
