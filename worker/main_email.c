/*
 * notifyhub-email: delivers EMAIL notifications through Mailgun, and
 * through a second Mailgun instance (the NH_FALLBACK_MAILGUN_* settings)
 * while the first one's circuit is open. Configuration comes from the
 * environment and the optional file named by NH_CONFIG_FILE; the
 * variables are listed in nh_worker.h, nh_providers.h and nh_mailgun.h.
 */

#include "nh_config.h"
#include "nh_error.h"
#include "nh_log.h"
#include "nh_mailgun.h"
#include "nh_providers.h"
#include "nh_worker.h"

#include <stdio.h>
#include <stdlib.h>


/* Any of these set under NH_FALLBACK_ configures the fallback. */
static const char *const  nh_email_fallback_keys[] = {
    "MAILGUN_URL", "MAILGUN_DOMAIN", "MAILGUN_API_KEY", "MAILGUN_FROM", NULL
};


int
main(void)
{
    nh_config_t       *cfg, *fallback_cfg;
    nh_mailgun_t      *mailgun, *fallback;
    nh_providers_t    *providers;
    nh_worker_conf_t   conf;
    nh_provider_t      provider, fallback_provider;
    char               err[512];
    int                status;

    cfg = NULL;
    fallback_cfg = NULL;
    mailgun = NULL;
    fallback = NULL;
    providers = NULL;
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

    nh_mailgun_provider(mailgun, &provider);

    /* The fallback reads NH_FALLBACK_MAILGUN_URL for NH_MAILGUN_URL and so
     * on, and the primary's value for a key it does not set. */
    if (nh_providers_fallback_configured(cfg, nh_email_fallback_keys)) {
        if (nh_config_overlay(cfg, "NH_FALLBACK_", &fallback_cfg) != 0) {
            fprintf(stderr, "notifyhub-email: out of memory\n");
            goto done;
        }

        if (nh_mailgun_create(fallback_cfg, &fallback, err, sizeof(err))
            != NH_OK)
        {
            fprintf(stderr, "notifyhub-email: invalid configuration of the "
                    "fallback provider (NH_FALLBACK_ names): %s\n", err);
            goto done;
        }

        nh_mailgun_provider(fallback, &fallback_provider);
    }

    if (nh_providers_create(cfg, &provider,
                            fallback != NULL ? &fallback_provider : NULL,
                            conf.http_timeout_ms, &providers, err,
                            sizeof(err))
        != NH_OK)
    {
        fprintf(stderr, "notifyhub-email: invalid configuration: %s\n", err);
        goto done;
    }

    nh_log_set_level(conf.log_level);
    nh_mailgun_log_config(mailgun);
    if (fallback != NULL) {
        nh_mailgun_log_config(fallback);
    }
    nh_providers_log_config(providers);

    if (nh_worker_run(&conf, providers) == NH_OK) {
        status = EXIT_SUCCESS;
    }

done:

    nh_providers_destroy(providers);
    nh_mailgun_destroy(fallback);
    nh_mailgun_destroy(mailgun);
    nh_config_free(fallback_cfg);
    nh_config_free(cfg);
    return status;
}
