/*
 * notifyhub-sms: delivers SMS notifications through the Twilio Messages
 * API, and through a second Twilio account (the NH_FALLBACK_TWILIO_*
 * settings) while the first one's circuit is open. Configuration comes
 * from the environment and the optional file named by NH_CONFIG_FILE. The
 * variables are listed in nh_worker.h, nh_providers.h and nh_twilio.h.
 */

#include "nh_config.h"
#include "nh_error.h"
#include "nh_log.h"
#include "nh_twilio.h"
#include "nh_providers.h"
#include "nh_worker.h"

#include <stdio.h>
#include <stdlib.h>


/* Any of these set under NH_FALLBACK_ configures the fallback. */
static const char *const  nh_sms_fallback_keys[] = {
    "TWILIO_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_STATUS_CALLBACK", NULL
};


int
main(void)
{
    nh_config_t       *cfg, *fallback_cfg;
    nh_twilio_t       *twilio, *fallback;
    nh_providers_t    *providers;
    nh_worker_conf_t   conf;
    nh_provider_t      provider, fallback_provider;
    char               err[512];
    int                status;

    cfg = NULL;
    fallback_cfg = NULL;
    twilio = NULL;
    fallback = NULL;
    providers = NULL;
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

    nh_twilio_provider(twilio, &provider);

    /* The fallback reads NH_FALLBACK_TWILIO_URL for NH_TWILIO_URL and so
     * on, and the primary's value for a key it does not set. Its sender
     * (From or MessagingServiceSid) is its own when it sets either. */
    if (nh_providers_fallback_configured(cfg, nh_sms_fallback_keys)) {
        if (nh_config_overlay(cfg, "NH_FALLBACK_", &fallback_cfg) != 0) {
            fprintf(stderr, "notifyhub-sms: out of memory\n");
            goto done;
        }

        if (nh_twilio_create(fallback_cfg, &fallback, err, sizeof(err))
            != NH_OK)
        {
            fprintf(stderr, "notifyhub-sms: invalid configuration of the "
                    "fallback provider (NH_FALLBACK_ names): %s\n", err);
            goto done;
        }

        nh_twilio_provider(fallback, &fallback_provider);
    }

    if (nh_providers_create(cfg, &provider,
                            fallback != NULL ? &fallback_provider : NULL,
                            conf.http_timeout_ms, &providers, err,
                            sizeof(err))
        != NH_OK)
    {
        fprintf(stderr, "notifyhub-sms: invalid configuration: %s\n", err);
        goto done;
    }

    nh_log_set_level(conf.log_level);
    nh_twilio_log_config(twilio);
    if (fallback != NULL) {
        nh_twilio_log_config(fallback);
    }
    nh_providers_log_config(providers);

    if (nh_worker_run(&conf, providers) == NH_OK) {
        status = EXIT_SUCCESS;
    }

done:

    nh_providers_destroy(providers);
    nh_twilio_destroy(fallback);
    nh_twilio_destroy(twilio);
    nh_config_free(fallback_cfg);
    nh_config_free(cfg);
    return status;
}
