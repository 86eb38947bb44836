#include "nh_twilio_errors.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>


/*
 * Twilio's error codes, each described at
 * https://www.twilio.com/docs/api/errors/<code>. Code rows come first
 * because a code is more precise than the HTTP status it came with.
 *
 *   20429  too many concurrent API requests from the account
 *   30001  queue overflow: the sender's queue is full. Twilio reports it
 *          mostly as the ErrorCode of a message that failed after it was
 *          created, and the row applies when a reply carries it.
 *   20003  authentication failed (a wrong AccountSid or AuthToken)
 *   21211  invalid "To" phone number
 *   21408  sending to the region of the "To" number is not enabled
 *   21610  the recipient replied STOP and is unsubscribed from the sender
 *   21614  the "To" number is not a mobile number
 */
const nh_twilio_error_rule_t  nh_twilio_error_rules[] = {
    /* status range, code, transient */
    { 0, 999, 20429, 1 },
    { 0, 999, 30001, 1 },
    { 0, 999, 20003, 0 },
    { 0, 999, 21211, 0 },
    { 0, 999, 21408, 0 },
    { 0, 999, 21610, 0 },
    { 0, 999, 21614, 0 },
    { 0, 0, 0, 1 },
    { 429, 429, 0, 1 },
    { 500, 599, 0, 1 },
    { 400, 499, 0, 0 },
    /* 1xx, 3xx and anything unexpected: sending it again would not help. */
    { 0, 999, 0, 0 },
};

const size_t  nh_twilio_error_rules_count =
    sizeof(nh_twilio_error_rules) / sizeof(nh_twilio_error_rules[0]);


const nh_twilio_error_rule_t *
nh_twilio_error_classify(long http_status, long code)
{
    const nh_twilio_error_rule_t  *rule;
    size_t                         i;

    for (i = 0; i < nh_twilio_error_rules_count; i++) {
        rule = &nh_twilio_error_rules[i];

        if (http_status < rule->status_min || http_status > rule->status_max) {
            continue;
        }

        if (rule->code != 0 && rule->code != code) {
            continue;
        }

        return rule;
    }

    /* Not reached: the last rule matches every status up to 999. */
    return &nh_twilio_error_rules[nh_twilio_error_rules_count - 1];
}


int
nh_twilio_error_parse(const char *body, size_t len, long *code,
    char *message, size_t message_size)
{
    cJSON   *json, *item, *text;
    double   value;

    *code = 0;
    if (message_size > 0) {
        message[0] = '\0';
    }

    json = cJSON_ParseWithLength(body, len);
    item = cJSON_GetObjectItemCaseSensitive(json, "code");
    text = cJSON_GetObjectItemCaseSensitive(json, "message");

    if (!cJSON_IsObject(json) || (item == NULL && text == NULL)) {
        cJSON_Delete(json);
        return -1;
    }

    /* Twilio's codes are positive whole numbers of five digits. */
    if (cJSON_IsNumber(item)) {
        value = item->valuedouble;
        if (value >= 1 && value <= 999999
            && value == (double) (long) value)
        {
            *code = (long) value;
        }
    }

    if (cJSON_IsString(text) && message_size > 0) {
        snprintf(message, message_size, "%s", text->valuestring);
    }

    cJSON_Delete(json);
    return 0;
}
