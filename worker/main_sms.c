/*
 * notifyhub-sms: delivers SMS notifications through the Twilio Messages
 * API. Configuration comes from the environment and the optional file
 * named by NH_CONFIG_FILE. The variables are listed in nh_worker.h and
 * nh_twilio.h.
 */

#include "nh_config.h"
#include "nh_error.h"
#include "nh_log.h"
#include "nh_twilio.h"
#include "nh_worker.h"

#include <stdio.h>
#include <stdlib.h>


int
main(void)
{
    nh_config_t       *cfg;
    nh_twilio_t       *twilio;
    nh_worker_conf_t   conf;
    nh_provider_t      provider;
    char               err[512];
    int                status;

    cfg = NULL;
    twilio = NULL;
    status = EXIT_FAILURE;

    if (nh_config_load(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "notifyhub-sms: invalid configuration: %s\n", err);
        goto done;
    }

    if (nh_worker_conf_load(cfg, "notifyhub-sms", "SMS", &conf, err,
                            sizeof(err))
        != NH_OK
        || nh_twilio_create(cfg, &twilio, err, sizeof(err)) != NH_OK)
    {
        fprintf(stderr, "notifyhub-sms: invalid configuration: %s\n", err);
        goto done;
    }

    nh_log_set_level(conf.log_level);
    nh_twilio_log_config(twilio);
    nh_twilio_provider(twilio, &provider);

    if (nh_worker_run(&conf, &provider) == NH_OK) {
        status = EXIT_SUCCESS;
    }

done:

    nh_twilio_destroy(twilio);
    nh_config_free(cfg);
    return status;
}
