#ifndef NH_QUIET_H
#define NH_QUIET_H

#include <stddef.h>
#include <stdint.h>

#include "nh_tz.h"

/*
 * Quiet hours: a daily window of wall-clock time in a recipient's zone,
 * given as minutes after midnight, 0 ("00:00") to 1439 ("23:59"). A window
 * whose end is before its start crosses midnight: 22:00 to 07:00 runs from
 * 22:00 on one day to 07:00 on the next.
 *
 * Each local day D has one occurrence of the window. It starts at the
 * instant of wall time "start" on D and ends at the instant of wall time
 * "end" on D, or on D + 1 when the window crosses midnight, and includes
 * its start but not its end. A wall time that a forward shift skips means
 * the instant the shift happens at. So on the day clocks move from 02:00
 * to 03:00, a window starting at 02:30 starts at 03:00, and one ending at
 * 02:30 ends at 03:00. A wall time that happens twice means the earlier
 * of its two instants, for the start as for the end. So a window from
 * 00:00 to 01:30 on the night clocks move back from 02:00 to 01:00 ends
 * at the first 01:30, and the second pass through 01:00 to 01:30 is
 * outside it. An occurrence whose start and end both fall into the same
 * skipped hour is empty.
 */

/* Minutes in a day: the window fields are below this. */
#define NH_QUIET_MINUTES_PER_DAY  1440

/*
 * Parses "HH:MM" of exactly len bytes, with two digits each, from "00:00"
 * to "23:59", into minutes after midnight. "24:00", "7:00", "07:0" and
 * "07:00:00" are invalid. Returns 0, or NH_TZ_EINVAL when the text is not
 * a valid time.
 */
int nh_quiet_parse_hhmm(const char *s, size_t len, int *minutes);

/*
 * Formats minutes after midnight, 0 to 1439, as "HH:MM" and a NUL.
 * Returns 0, or NH_TZ_EINVAL when minutes is out of range.
 */
int nh_quiet_format_hhmm(int minutes, char out[6]);

/*
 * Checks a window: both ends from 0 to 1439 and start != end, because a
 * window from a time to itself would be either empty or the whole day.
 * Returns 1 if valid, else 0.
 */
int nh_quiet_window_is_valid(int start_min, int end_min);

/*
 * Checks whether instant now_utc_sec is inside the window in zone tz, as
 * described at the top of this file. Stores 1 or 0 in *inside. When
 * inside, stores in *end_utc_sec the instant the current occurrence ends,
 * which is the next time the wall clock shows end_min after now, adjusted
 * for shifts as above. When outside, stores 0 there.
 *
 * Returns 0, NH_TZ_EINVAL when the window is not valid by
 * nh_quiet_window_is_valid(), or NH_TZ_ERANGE when now_utc_sec is outside
 * NH_TZ_TIME_MIN to NH_TZ_TIME_MAX less three days at either end.
 */
int nh_quiet_check(const nh_tz_t *tz, int start_min, int end_min,
    int64_t now_utc_sec, int *inside, int64_t *end_utc_sec);

#endif /* NH_QUIET_H */
