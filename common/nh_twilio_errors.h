#ifndef NH_TWILIO_ERRORS_H
#define NH_TWILIO_ERRORS_H

#include <stddef.h>

/*
 * Classification of Twilio Messages API errors. Twilio replies to a
 * rejected request with a JSON body
 *
 *   {"code": 21211, "message": "...", "more_info": "...", "status": 400}
 *
 * where "code" is Twilio's numeric error code. The rows of
 * nh_twilio_error_rules decide, first match wins, whether the same request
 * may succeed when it is sent again later.
 */

typedef struct {
    /* Matches when the HTTP status is in [status_min, status_max]. Status
     * 0 means that no response arrived (a timeout or a connection
     * failure). */
    long      status_min;
    long      status_max;
    /* Matches only this Twilio error code; 0 matches any code and none. */
    long      code;
    /* The same request may succeed later. */
    unsigned  transient:1;
} nh_twilio_error_rule_t;

extern const nh_twilio_error_rule_t  nh_twilio_error_rules[];
extern const size_t                  nh_twilio_error_rules_count;

/*
 * Returns the first rule of nh_twilio_error_rules that matches an HTTP
 * status (0 when no response arrived) and a Twilio error code (0 when the
 * body had none). The last rule matches everything, so the result is
 * never NULL.
 */
const nh_twilio_error_rule_t *nh_twilio_error_classify(long http_status,
    long code);

/*
 * Reads a Twilio error body of len bytes: "code" into *code (0 when it is
 * missing or not a positive integer) and "message" into message, cut to
 * message_size and "" when missing. Returns 0, or -1 when the body is not
 * a JSON object with a "code" or a "message" member (the outputs are then
 * 0 and "").
 */
int nh_twilio_error_parse(const char *body, size_t len, long *code,
    char *message, size_t message_size);

#endif /* NH_TWILIO_ERRORS_H */
