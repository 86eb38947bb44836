#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "../../common/nh_time.h"
#include "../../common/nh_uuid.h"
#include "check_suites.h"


#define THREADS             4
#define IDS_PER_THREAD      5000


typedef struct {
    unsigned char  ids[IDS_PER_THREAD][NH_UUID_LEN];
    int            failures;
} uuid_thread_t;


static int
compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, NH_UUID_LEN);
}


static int64_t
uuid_unix_ms(const unsigned char id[NH_UUID_LEN])
{
    int64_t  ms;
    int      i;

    ms = 0;

    for (i = 0; i < 6; i++) {
        ms = ms << 8 | id[i];
    }

    return ms;
}


static void *
generate_ids(void *arg)
{
    uuid_thread_t  *thread;
    int             i;

    thread = arg;

    for (i = 0; i < IDS_PER_THREAD; i++) {
        if (nh_uuid7_generate(thread->ids[i]) != 0) {
            thread->failures++;
        }
    }

    return NULL;
}


START_TEST(uuid7_sets_version_and_variant)
{
    unsigned char  id[NH_UUID_LEN];
    int            i;

    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(nh_uuid7_generate(id), 0);
        ck_assert_int_eq(id[6] >> 4, 7);
        ck_assert_int_eq(id[8] >> 6, 2);
    }
}
END_TEST


START_TEST(uuid7_timestamp_is_unix_ms)
{
    unsigned char  id[NH_UUID_LEN];
    int64_t        before, after, stamp;

    before = nh_time_now_ms();
    ck_assert_int_eq(nh_uuid7_generate(id), 0);
    after = nh_time_now_ms();

    stamp = uuid_unix_ms(id);

    /* The counter may carry one millisecond ahead under heavy use. */
    ck_assert_int_ge(stamp, before);
    ck_assert_int_le(stamp, after + 1);
}
END_TEST


START_TEST(uuid7_consecutive_ids_increase)
{
    static unsigned char  ids[20000][NH_UUID_LEN];
    size_t                i;

    for (i = 0; i < 20000; i++) {
        ck_assert_int_eq(nh_uuid7_generate(ids[i]), 0);
    }

    /* 20000 ids take a few milliseconds, so many share one timestamp. */
    for (i = 1; i < 20000; i++) {
        ck_assert_msg(memcmp(ids[i - 1], ids[i], NH_UUID_LEN) < 0,
                      "id %zu does not sort after id %zu", i, i - 1);
    }
}
END_TEST


START_TEST(uuid7_formatted_ids_sort_in_order)
{
    char           previous[NH_UUID_STR_LEN + 1], current[NH_UUID_STR_LEN + 1];
    unsigned char  id[NH_UUID_LEN];
    int            i;

    ck_assert_int_eq(nh_uuid7_generate(id), 0);
    nh_uuid_format(id, previous);

    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(nh_uuid7_generate(id), 0);
        nh_uuid_format(id, current);
        ck_assert_str_lt(previous, current);
        memcpy(previous, current, sizeof(current));
    }
}
END_TEST


START_TEST(uuid7_threads_get_unique_ordered_ids)
{
    static uuid_thread_t   threads[THREADS];
    static unsigned char   all[THREADS * IDS_PER_THREAD][NH_UUID_LEN];
    pthread_t              tids[THREADS];
    size_t                 t, i;

    memset(threads, 0, sizeof(threads));

    for (t = 0; t < THREADS; t++) {
        ck_assert_int_eq(pthread_create(&tids[t], NULL, generate_ids,
                                        &threads[t]), 0);
    }

    for (t = 0; t < THREADS; t++) {
        ck_assert_int_eq(pthread_join(tids[t], NULL), 0);
    }

    for (t = 0; t < THREADS; t++) {
        ck_assert_int_eq(threads[t].failures, 0);

        for (i = 1; i < IDS_PER_THREAD; i++) {
            ck_assert(memcmp(threads[t].ids[i - 1], threads[t].ids[i],
                             NH_UUID_LEN) < 0);
        }

        memcpy(all[t * IDS_PER_THREAD], threads[t].ids,
               sizeof(threads[t].ids));
    }

    qsort(all, THREADS * IDS_PER_THREAD, NH_UUID_LEN, compare_ids);

    for (i = 1; i < THREADS * IDS_PER_THREAD; i++) {
        ck_assert(memcmp(all[i - 1], all[i], NH_UUID_LEN) != 0);
    }
}
END_TEST


START_TEST(uuid_format_is_lower_case_8_4_4_4_12)
{
    /* The example version 7 UUID of RFC 9562, appendix A.6. */
    static const unsigned char  id[NH_UUID_LEN] = {
        0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3,
        0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f
    };
    char                        text[NH_UUID_STR_LEN + 1];

    nh_uuid_format(id, text);

    ck_assert_str_eq(text, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
}
END_TEST


START_TEST(uuid_parse_accepts_either_case)
{
    static const unsigned char  expected[NH_UUID_LEN] = {
        0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3,
        0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f
    };
    static const char          *texts[] = {
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F",
        "017f22E2-79b0-7CC3-98c4-Dc0C0c07398F",
    };
    unsigned char               id[NH_UUID_LEN];
    size_t                      i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        memset(id, 0, sizeof(id));
        ck_assert_int_eq(nh_uuid_parse(texts[i], strlen(texts[i]), id), 0);
        ck_assert_mem_eq(id, expected, NH_UUID_LEN);
    }
}
END_TEST


START_TEST(uuid_parse_round_trips_generated_ids)
{
    unsigned char  id[NH_UUID_LEN], parsed[NH_UUID_LEN];
    char           text[NH_UUID_STR_LEN + 1];
    int            i;

    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(nh_uuid7_generate(id), 0);
        nh_uuid_format(id, text);
        ck_assert_uint_eq(strlen(text), NH_UUID_STR_LEN);
        ck_assert_int_eq(nh_uuid_parse(text, NH_UUID_STR_LEN, parsed), 0);
        ck_assert_mem_eq(parsed, id, NH_UUID_LEN);
    }
}
END_TEST


START_TEST(uuid_parse_accepts_nil_and_max)
{
    unsigned char  id[NH_UUID_LEN], expected[NH_UUID_LEN];

    memset(expected, 0, sizeof(expected));
    ck_assert_int_eq(nh_uuid_parse("00000000-0000-0000-0000-000000000000",
                                   NH_UUID_STR_LEN, id), 0);
    ck_assert_mem_eq(id, expected, NH_UUID_LEN);

    memset(expected, 0xff, sizeof(expected));
    ck_assert_int_eq(nh_uuid_parse("ffffffff-ffff-ffff-ffff-ffffffffffff",
                                   NH_UUID_STR_LEN, id), 0);
    ck_assert_mem_eq(id, expected, NH_UUID_LEN);
}
END_TEST


START_TEST(uuid_parse_rejects_wrong_length)
{
    static const char  *texts[] = {
        "",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398f0",
        "017f22e279b07cc398c4dc0c0c07398f",
        "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
        "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    };
    unsigned char       id[NH_UUID_LEN];
    size_t              i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        ck_assert_msg(nh_uuid_parse(texts[i], strlen(texts[i]), id) == -1,
                      "accepted \"%s\"", texts[i]);
    }

    /* len, not the NUL, bounds the text. */
    ck_assert_int_eq(nh_uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
                                   35, id), -1);
    ck_assert_int_eq(nh_uuid_parse(NULL, NH_UUID_STR_LEN, id), -1);
}
END_TEST


START_TEST(uuid_parse_rejects_non_hex_characters)
{
    static const char  *texts[] = {
        "g17f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398G",
        "017f22e2-79b0-7cc3-98c4-dc0c0c0 398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c0+398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c0-398f",
        "0x7f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    };
    unsigned char       id[NH_UUID_LEN];
    char                with_nul[NH_UUID_STR_LEN + 1];
    size_t              i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        ck_assert_msg(nh_uuid_parse(texts[i], strlen(texts[i]), id) == -1,
                      "accepted \"%s\"", texts[i]);
    }

    memcpy(with_nul, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f", sizeof(with_nul));
    with_nul[20] = '\0';
    ck_assert_int_eq(nh_uuid_parse(with_nul, NH_UUID_STR_LEN, id), -1);
}
END_TEST


START_TEST(uuid_parse_failure_keeps_output)
{
    unsigned char  id[NH_UUID_LEN], expected[NH_UUID_LEN];

    memset(id, 0xa5, sizeof(id));
    memset(expected, 0xa5, sizeof(expected));

    /* Invalid only in the last character, after 15 good bytes. */
    ck_assert_int_eq(nh_uuid_parse("017f22e2-79b0-7cc3-98c4-dc0c0c07398x",
                                   NH_UUID_STR_LEN, id), -1);
    ck_assert_mem_eq(id, expected, NH_UUID_LEN);
}
END_TEST


START_TEST(uuid_parse_rejects_misplaced_hyphens)
{
    static const char  *texts[] = {
        "017f22e-279b0-7cc3-98c4-dc0c0c07398f",
        "017f22e27-9b0-7cc3-98c4-dc0c0c07398f",
        "017f22e2-79b07-cc3-98c4-dc0c0c07398f",
        "017f22e2-79b0-7cc39-8c4-dc0c0c07398f",
        "017f22e2-79b0-7cc3-98c4d-c0c0c07398f",
        "017f22e2079b0-7cc3-98c4-dc0c0c07398f",
        "017f22e2-79b0-7cc3-98c4-dc0c0c07398-",
        "-17f22e2-79b0-7cc3-98c4-dc0c0c07398f",
    };
    unsigned char       id[NH_UUID_LEN];
    size_t              i;

    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        ck_assert_msg(nh_uuid_parse(texts[i], strlen(texts[i]), id) == -1,
                      "accepted \"%s\"", texts[i]);
    }
}
END_TEST


Suite *
nh_uuid_suite(void)
{
    Suite  *suite;
    TCase  *tc;

    suite = suite_create("uuid");

    tc = tcase_create("generate");
    tcase_add_test(tc, uuid7_sets_version_and_variant);
    tcase_add_test(tc, uuid7_timestamp_is_unix_ms);
    tcase_add_test(tc, uuid7_consecutive_ids_increase);
    tcase_add_test(tc, uuid7_formatted_ids_sort_in_order);
    tcase_add_test(tc, uuid7_threads_get_unique_ordered_ids);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(suite, tc);

    tc = tcase_create("format");
    tcase_add_test(tc, uuid_format_is_lower_case_8_4_4_4_12);
    suite_add_tcase(suite, tc);

    tc = tcase_create("parse");
    tcase_add_test(tc, uuid_parse_accepts_either_case);
    tcase_add_test(tc, uuid_parse_round_trips_generated_ids);
    tcase_add_test(tc, uuid_parse_accepts_nil_and_max);
    tcase_add_test(tc, uuid_parse_rejects_wrong_length);
    tcase_add_test(tc, uuid_parse_rejects_non_hex_characters);
    tcase_add_test(tc, uuid_parse_rejects_misplaced_hyphens);
    tcase_add_test(tc, uuid_parse_failure_keeps_output);
    suite_add_tcase(suite, tc);

    return suite;
}
