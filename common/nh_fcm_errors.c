#include "nh_fcm_errors.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>


/*
 * FCM's error codes, as listed in the FCM HTTP v1 API reference
 * (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode). Code rows
 * come first because a code is more precise than the HTTP status it came
 * with. UNAUTHENTICATED is error.status of a 401 for an expired or revoked
 * OAuth2 token; THIRD_PARTY_AUTH_ERROR is a 401 too, but for the APNs or
 * web push credentials of the Firebase project, which a new OAuth2 token
 * does not fix.
 */
const nh_fcm_error_rule_t  nh_fcm_error_rules[] = {
    /* status range, code,                     transient, unregistered,
     *                                         reauthenticate */
    { 0, 999, "UNREGISTERED",             0, 1, 0 },
    { 0, 999, "INVALID_ARGUMENT",         0, 0, 0 },
    { 0, 999, "SENDER_ID_MISMATCH",       0, 0, 0 },
    { 0, 999, "THIRD_PARTY_AUTH_ERROR",   0, 0, 0 },
    { 0, 999, "QUOTA_EXCEEDED",           1, 0, 0 },
    { 0, 999, "UNAVAILABLE",              1, 0, 0 },
    { 0, 999, "INTERNAL",                 1, 0, 0 },
    { 401, 401, "UNAUTHENTICATED",        0, 0, 1 },
    { 0, 0, NULL,                         1, 0, 0 },
    { 429, 429, NULL,                     1, 0, 0 },
    { 500, 599, NULL,                     1, 0, 0 },
    { 400, 499, NULL,                     0, 0, 0 },
    /* 1xx, 3xx and anything unexpected: sending it again would not help. */
    { 0, 999, NULL,                       0, 0, 0 },
};

const size_t  nh_fcm_error_rules_count =
    sizeof(nh_fcm_error_rules) / sizeof(nh_fcm_error_rules[0]);


const nh_fcm_error_rule_t *
nh_fcm_error_classify(long http_status, const char *code)
{
    const nh_fcm_error_rule_t  *rule;
    size_t                      i;

    if (code != NULL && code[0] == '\0') {
        code = NULL;
    }

    for (i = 0; i < nh_fcm_error_rules_count; i++) {
        rule = &nh_fcm_error_rules[i];

        if (http_status < rule->status_min || http_status > rule->status_max) {
            continue;
        }

        if (rule->code != NULL
            && (code == NULL || strcmp(rule->code, code) != 0))
        {
            continue;
        }

        return rule;
    }

    /* Not reached: the last rule matches every status up to 999. */
    return &nh_fcm_error_rules[nh_fcm_error_rules_count - 1];
}


int
nh_fcm_error_parse(const char *body, size_t len,
    char code[NH_FCM_CODE_MAX], char *message, size_t message_size)
{
    cJSON  *json, *error, *details, *detail, *item;

    code[0] = '\0';
    if (message_size > 0) {
        message[0] = '\0';
    }

    json = cJSON_ParseWithLength(body, len);
    error = cJSON_GetObjectItemCaseSensitive(json, "error");

    if (!cJSON_IsObject(json) || !cJSON_IsObject(error)) {
        cJSON_Delete(json);
        return -1;
    }

    details = cJSON_GetObjectItemCaseSensitive(error, "details");
    if (!cJSON_IsArray(details)) {
        details = NULL;
    }

    cJSON_ArrayForEach(detail, details) {
        item = cJSON_GetObjectItemCaseSensitive(detail, "errorCode");
        if (cJSON_IsString(item) && item->valuestring[0] != '\0') {
            snprintf(code, NH_FCM_CODE_MAX, "%s", item->valuestring);
            break;
        }
    }

    if (code[0] == '\0') {
        item = cJSON_GetObjectItemCaseSensitive(error, "status");
        if (cJSON_IsString(item)) {
            snprintf(code, NH_FCM_CODE_MAX, "%s", item->valuestring);
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(error, "message");
    if (cJSON_IsString(item) && message_size > 0) {
        snprintf(message, message_size, "%s", item->valuestring);
    }

    cJSON_Delete(json);
    return 0;
}
