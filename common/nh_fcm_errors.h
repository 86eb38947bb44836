#ifndef NH_FCM_ERRORS_H
#define NH_FCM_ERRORS_H

#include <stddef.h>

/*
 * Classification of Firebase Cloud Messaging HTTP v1 send errors. FCM
 * replies to a failed send with a JSON body
 *
 *   {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
 *              "details": [{"@type": "...FcmError",
 *                           "errorCode": "UNREGISTERED"}]}}
 *
 * The error code is the first details[].errorCode, else error.status. The
 * rows of nh_fcm_error_rules decide, first match wins, whether a send is
 * worth repeating later and whether the device token is dead.
 */

/* Maximum size of the error code that nh_fcm_error_parse stores, NUL
 * included. */
#define NH_FCM_CODE_MAX     64

typedef struct {
    /* Matches when the HTTP status is in [status_min, status_max]. Status
     * 0 means that no response arrived (a timeout or a connection
     * failure). */
    long         status_min;
    long         status_max;
    /* Matches only this error code; NULL matches any code and none. */
    const char  *code;
    /* The same request may succeed later. */
    unsigned     transient:1;
    /* FCM no longer accepts the device token: deactivate the device. */
    unsigned     unregistered:1;
    /* The OAuth2 access token was rejected: fetch a new one and send the
     * request once more. */
    unsigned     reauthenticate:1;
} nh_fcm_error_rule_t;

extern const nh_fcm_error_rule_t  nh_fcm_error_rules[];
extern const size_t               nh_fcm_error_rules_count;

/*
 * Returns the first rule of nh_fcm_error_rules that matches an HTTP
 * status (0 when no response arrived) and an error code (NULL or "" when
 * the body had none). The last rule matches everything, so the result is
 * never NULL.
 */
const nh_fcm_error_rule_t *nh_fcm_error_classify(long http_status,
    const char *code);

/*
 * Reads an FCM error body of len bytes: the error code (see above) into
 * code and error.message into message, each cut to its size and ""
 * when missing. Returns 0, or -1 when the body is not a JSON object with
 * an "error" object (both outputs are then "").
 */
int nh_fcm_error_parse(const char *body, size_t len,
    char code[NH_FCM_CODE_MAX], char *message, size_t message_size);

#endif /* NH_FCM_ERRORS_H */
