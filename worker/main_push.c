/*
 * notifyhub-push: delivers PUSH notifications through Firebase Cloud
 * Messaging. Configuration comes from the environment and the optional
 * file named by NH_CONFIG_FILE; the variables are listed in nh_worker.h
 * and nh_fcm.h.
 */

#include "nh_config.h"
#include "nh_error.h"
#include "nh_fcm.h"
#include "nh_log.h"
#include "nh_worker.h"

#include <stdio.h>
#include <stdlib.h>


int
main(void)
{
    nh_config_t       *cfg;
    nh_fcm_t          *fcm;
    nh_worker_conf_t   conf;
    nh_provider_t      provider;
    char               err[512];
    int                status;

    cfg = NULL;
    fcm = NULL;
    status = EXIT_FAILURE;

    if (nh_config_load(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "notifyhub-push: invalid configuration: %s\n", err);
        goto done;
    }

    if (nh_worker_conf_load(cfg, "notifyhub-push", "PUSH", &conf, err,
                            sizeof(err))
        != NH_OK
        || nh_fcm_create(cfg, "notifyhub-push", &fcm, err, sizeof(err))
           != NH_OK)
    {
        fprintf(stderr, "notifyhub-push: invalid configuration: %s\n", err);
        goto done;
    }

    nh_log_set_level(conf.log_level);
    nh_fcm_log_config(fcm);
    nh_fcm_provider(fcm, &provider);

    if (nh_worker_run(&conf, &provider) == NH_OK) {
        status = EXIT_SUCCESS;
    }

done:

    nh_fcm_destroy(fcm);
    nh_config_free(cfg);
    return status;
}
