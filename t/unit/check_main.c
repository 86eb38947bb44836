#include <stdlib.h>

#include <check.h>

#include "check_suites.h"


/*
 * Runs every suite of common/. Check's own variables apply: CK_FORK=no runs
 * the tests in this process (for valgrind), CK_RUN_SUITE and CK_RUN_CASE
 * select a suite or a test case, CK_VERBOSITY=verbose lists each test.
 */
int
main(void)
{
    SRunner  *runner;
    int       failed;

    runner = srunner_create(nh_uuid_suite());
    srunner_add_suite(runner, nh_crypto_suite());
    srunner_add_suite(runner, nh_validate_suite());
    srunner_add_suite(runner, nh_time_suite());
    srunner_add_suite(runner, nh_config_suite());
    srunner_add_suite(runner, nh_template_suite());
    srunner_add_suite(runner, nh_json_suite());
    srunner_add_suite(runner, nh_tz_suite());
    srunner_add_suite(runner, nh_quiet_suite());
    srunner_add_suite(runner, nh_fcm_suite());
    srunner_add_suite(runner, nh_callback_suite());
    srunner_add_suite(runner, nh_twilio_suite());
    srunner_add_suite(runner, nh_backoff_suite());
    srunner_add_suite(runner, nh_breaker_suite());

    srunner_run_all(runner, CK_ENV);
    failed = srunner_ntests_failed(runner);
    srunner_free(runner);

    return (failed == 0) ? EXIT_SUCCESS : EXIT_FAILURE;
}
