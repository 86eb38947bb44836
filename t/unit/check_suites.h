#ifndef CHECK_SUITES_H
#define CHECK_SUITES_H

#include <check.h>

/* One suite per unit of common/, added to one runner by check_main.c. */
Suite *nh_uuid_suite(void);
Suite *nh_crypto_suite(void);
Suite *nh_validate_suite(void);
Suite *nh_time_suite(void);
Suite *nh_config_suite(void);
Suite *nh_template_suite(void);
Suite *nh_json_suite(void);
Suite *nh_tz_suite(void);
Suite *nh_quiet_suite(void);
Suite *nh_fcm_suite(void);
Suite *nh_callback_suite(void);
Suite *nh_twilio_suite(void);
Suite *nh_backoff_suite(void);
Suite *nh_breaker_suite(void);

#endif /* CHECK_SUITES_H */
