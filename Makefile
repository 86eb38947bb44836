# NotifyHub build.
#
#   make deps      install the Debian packages (scripts/deps)
#   make kafka     download the Kafka broker jars into .cache/kafka/libs
#   make build     libnhcommon.a, the nginx module, the workers
#   make unit      build and run the Check unit tests
#   make fuzz      run the libFuzzer targets for a short time (clang)
#   make test      unit and integration tests against the test stack
#   make run       start the run stack and print example requests
#   make stop      stop the run stack
#   make clean     remove build/
#
# Sources are found with wildcards: a new .c file in common/, worker/,
# t/unit/ or ngx_http_notifyhub_module/ is built without editing this file.

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := build

CC ?= cc
AR ?= ar
NH_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror
NH_DEPFLAGS = -MMD -MP
# Evaluated only when a rule needs them, so "make deps" works before
# libpq-dev and check are installed.
PG_INCLUDEDIR = $(shell pg_config --includedir)
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS = $(shell pkg-config --libs check)

# libnhcommon.a: plain C shared by the nginx module and the workers. It is
# compiled with -fPIC because the module is a shared object.
COMMON_SRCS := $(wildcard common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/%.o)
LIBNHCOMMON := $(BUILD)/libnhcommon.a

# Workers: every worker/*.c except the main_<channel>.c files is shared by
# all workers; build/notifyhub-<channel> adds worker/main_<channel>.c.
WORKER_MAINS := $(wildcard worker/main_*.c)
WORKER_SRCS := $(filter-out $(WORKER_MAINS),$(wildcard worker/*.c))
WORKER_OBJS := $(WORKER_SRCS:%.c=$(BUILD)/%.o)
WORKERS := $(sort $(BUILD)/notifyhub-email $(BUILD)/notifyhub-push \
                  $(BUILD)/notifyhub-sms \
                  $(WORKER_MAINS:worker/main_%.c=$(BUILD)/notifyhub-%))
KAFKA_TAIL := $(BUILD)/kafka-tail
WORKER_LIBS := -lrdkafka -lpq -lcurl -lcjson -lcrypto -lpthread -lm

UNIT_SRCS := $(wildcard t/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
CHECK_COMMON := $(BUILD)/check_common

# The nginx module is compiled by nginx's own build system, against a copy
# of the nginx-dev source tree, with the configure flags of Debian's nginx
# binary so that the module's signature matches it.
NGX_SRC := /usr/share/nginx/src
NGX_DIR := $(BUILD)/nginx
NGX_MAKEFILE := $(NGX_DIR)/objs/Makefile
MODULE_NAME := ngx_http_notifyhub_module
MODULE_SO := $(BUILD)/$(MODULE_NAME).so
MODULE_SRCS := $(wildcard $(MODULE_NAME)/*.c)
MODULE_HDRS := $(wildcard $(MODULE_NAME)/*.h)
# The module's file list as of the last configure run; see the rule below.
MODULE_FILE_LIST := $(BUILD)/module-files.list

.PHONY: all build deps kafka unit test run stop bench clean FORCE

all: build

build: $(LIBNHCOMMON) $(MODULE_SO) $(WORKERS) $(KAFKA_TAIL)

deps:
	scripts/deps

kafka:
	scripts/fetch-kafka


# Our own C

$(BUILD)/common/%.o: common/%.c
	@mkdir -p $(@D)
	$(CC) $(NH_CFLAGS) $(NH_DEPFLAGS) -fPIC -Icommon -c $< -o $@

$(LIBNHCOMMON): $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/worker/%.o: worker/%.c
	@mkdir -p $(@D)
	$(CC) $(NH_CFLAGS) $(NH_DEPFLAGS) -Iworker -Icommon -I$(PG_INCLUDEDIR) -c $< -o $@

$(BUILD)/notifyhub-%: $(BUILD)/worker/main_%.o $(WORKER_OBJS) $(LIBNHCOMMON)
	$(CC) $(NH_CFLAGS) -o $@ $^ $(WORKER_LIBS)

# A test tool that prints what a Kafka topic holds.
$(KAFKA_TAIL): t/tools/kafka_tail.c
	@mkdir -p $(@D)
	$(CC) $(NH_CFLAGS) -o $@ $< -lrdkafka

$(BUILD)/t/unit/%.o: t/unit/%.c
	@mkdir -p $(@D)
	$(CC) $(NH_CFLAGS) $(NH_DEPFLAGS) -Icommon -It/unit $(CHECK_CFLAGS) -c $< -o $@

$(CHECK_COMMON): $(UNIT_OBJS) $(LIBNHCOMMON)
	$(CC) $(NH_CFLAGS) -o $@ $^ $(CHECK_LIBS) -lcrypto -lcjson -lm

# The worker objects are prerequisites of a pattern rule only, which makes
# them intermediate files that GNU make would delete after linking.
.SECONDARY: $(WORKER_OBJS) $(WORKER_MAINS:worker/%.c=$(BUILD)/worker/%.o)

-include $(COMMON_OBJS:.o=.d) $(WORKER_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) \
         $(WORKER_MAINS:worker/%.c=$(BUILD)/worker/%.d)


# The nginx module

# configure writes the module's source list into objs/Makefile, so it must
# run again when a module file is added or removed. This file changes only
# then: the recipe runs every time but rewrites it only on a difference.
$(MODULE_FILE_LIST): FORCE
	@mkdir -p $(@D)
	@printf '%s\n' $(MODULE_SRCS) $(MODULE_HDRS) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

# CFLAGS is unset because nginx's configure uses a CFLAGS from the
# environment instead of its own flags, which include -Werror. The grep
# makes sure that module warnings still fail the build. --with-cc-opt=-O2
# raises nginx's default -O; Debian builds its nginx with -O2 as well.
$(NGX_MAKEFILE): config $(MODULE_FILE_LIST) $(NGX_SRC)/src/core/nginx.h
	rm -rf $(NGX_DIR)
	mkdir -p $(BUILD)
	cp -R $(NGX_SRC) $(NGX_DIR)
	cd $(NGX_DIR) && env -u CFLAGS bash -c \
	    '. ./conf_flags && ./configure "$${NGX_CONF_FLAGS[@]}" --with-cc-opt=-O2 --add-dynamic-module="$$1"' \
	    configure $(ROOT) > configure.log 2>&1 || \
	    { tail -n 30 configure.log; exit 1; }
	grep -q -- '-Werror' $@ || { echo "$@: nginx CFLAGS lack -Werror" >&2; exit 1; }

# nginx's objs/Makefile recompiles a module source when it or a header in
# the config's ngx_module_deps changes, but it does not relink when
# libnhcommon.a changes, so the old .so is removed first.
$(MODULE_SO): $(NGX_MAKEFILE) $(MODULE_SRCS) $(MODULE_HDRS) $(LIBNHCOMMON)
	rm -f $(NGX_DIR)/objs/$(MODULE_NAME).so
	$(MAKE) -C $(NGX_DIR) -f objs/Makefile modules
	@# A running nginx maps this file: writing into it crashes the workers,
	@# so the new module gets a new inode and replaces the old name.
	cp $(NGX_DIR)/objs/$(MODULE_NAME).so $@.tmp
	mv -f $@.tmp $@


# Tests and the local stack

unit: $(CHECK_COMMON)
	$(CHECK_COMMON)

test:
	scripts/test

run:
	$(MAKE) deps
	$(MAKE) kafka
	$(MAKE) build
	scripts/stack run start
	scripts/run-help

stop:
	scripts/stack run stop

bench:
	@if [ -x bench/run ]; then bench/run; else echo "bench/run does not exist yet" >&2; exit 1; fi

# Bulk ingestion and list reads on the bench stack, about 2 minutes.
.PHONY: bench-more bench-delivery
bench-more:
	bench/run-reads-bulk

bench-delivery:
	bench/run-delivery

clean:
	rm -rf $(BUILD)

FORCE:


# Fuzzing, not part of "make test"

# libFuzzer targets, built with clang (Debian: clang, libclang-rt-14-dev)
# against the common sources they exercise. "make fuzz" runs each for
# FUZZ_TIME seconds. New inputs go to build/fuzz/corpus/<target>; the seeds
# in fuzz/corpus/<target> are only read.
FUZZ_CC ?= clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=all
FUZZ_TIME ?= 60
FUZZ_TEMPLATE := $(BUILD)/fuzz/fuzz_template
FUZZ_TEMPLATE_SRCS := fuzz/fuzz_template.c common/nh_template.c \
                      common/nh_json.c

.PHONY: fuzz

fuzz: $(FUZZ_TEMPLATE)
	@mkdir -p $(BUILD)/fuzz/corpus/template
	$(FUZZ_TEMPLATE) -max_total_time=$(FUZZ_TIME) \
	    $(BUILD)/fuzz/corpus/template fuzz/corpus/template

$(FUZZ_TEMPLATE): $(FUZZ_TEMPLATE_SRCS) $(wildcard common/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Icommon -o $@ $(FUZZ_TEMPLATE_SRCS) -lcjson -lm
