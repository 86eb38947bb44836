/*
 * notifyhub-email: delivers EMAIL notifications through Mailgun.
 * Configuration comes from the environment and the optional file named by
 * NH_CONFIG_FILE; the variables are listed in nh_worker.h and
 * nh_mailgun.h.
 */

#include "nh_config.h"
#include "nh_error.h"
#include "nh_log.h"
#include "nh_mailgun.h"
#include "nh_worker.h"

#include <stdio.h>
#include <stdlib.h>


int
main(void)
{
    nh_config_t       *cfg;
    nh_mailgun_t      *mailgun;
    nh_worker_conf_t   conf;
    nh_provider_t      provider;
    char               err[512];
    int                status;

    cfg = NULL;
    mailgun = NULL;
    status = EXIT_FAILURE;

    if (nh_config_load(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "notifyhub-email: invalid configuration: %s\n", err);
        goto done;
    }

    if (nh_worker_conf_load(cfg, "notifyhub-email", "EMAIL", &conf, err,
                            sizeof(err))
        != NH_OK
        || nh_mailgun_create(cfg, &mailgun, err, sizeof(err)) != NH_OK)
    {
        fprintf(stderr, "notifyhub-email: invalid configuration: %s\n", err);
        goto done;
    }

    nh_log_set_level(conf.log_level);
    nh_mailgun_log_config(mailgun);
    nh_mailgun_provider(mailgun, &provider);

    if (nh_worker_run(&conf, &provider) == NH_OK) {
        status = EXIT_SUCCESS;
    }

done:

    nh_mailgun_destroy(mailgun);
    nh_config_free(cfg);
    return status;
}
