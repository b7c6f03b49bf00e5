# hearth — plain Makefile. `make` builds bin/hearth; `make test` runs every test; `make asan` builds
# with ASan+UBSan and runs the tests against that build; `make fuzz` builds the libFuzzer targets;
# `make bench` measures the MQTT endpoint under load beside Mosquitto (bench/run.sh; never part of
# `make test`).

O        ?= build
BIN      ?= bin/hearth
CC       ?= cc
PKG_CONFIG ?= pkg-config
WERROR   ?= -Werror

# mbedTLS 2.28 ships no .pc file in Debian bookworm; everything else is found through pkg-config.
PKGS      = sqlite3 jansson libmicrohttpd gnutls libmosquitto
MBEDTLS_LIBS = -lmbedtls -lmbedx509 -lmbedcrypto

WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wno-format-nonliteral -Wvla $(WERROR)
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE \
           $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -I. $(shell $(PKG_CONFIG) --cflags $(PKGS))
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS) $(EXTRA_LDFLAGS)
LIBS     = $(shell $(PKG_CONFIG) --libs $(PKGS)) $(MBEDTLS_LIBS) -lpthread

COMMON_SRC = common/herr.c common/log.c common/rng.c common/fsutil.c common/strmap.c
CA_SRC     = ca/key.c ca/cert.c ca/csr.c ca/crl.c ca/der.c
OTA_SRC    = ota/dsse.c
# The reference device's trust core (device/core.h): mbedTLS only, in the library so that unit
# tests and fuzz targets reach it; the agent around it is bin/hearth-agent.
DEVICE_CORE_SRC = device/json.c device/core.c
# The agent's parsers of what it reads (HTTPS answers, its trust file), also in the library for
# their fuzz target; mbedTLS and common/ only.
DEVICE_IO_SRC = device/https.c device/state.c
SERVER_SRC = server/store.c server/store_sqlite.c server/datadir.c server/pki.c server/cli.c \
             server/cmd_init.c server/cmd_serve.c server/cmd_device.c server/cmd_ca.c server/cmd_model.c server/cmd_telemetry.c \
             server/mqtt_codec.c server/acl.c server/tls.c server/broker.c server/conn.c \
             server/endpoint.c server/handshake.c server/addrlimit.c server/config.c server/cmd_config.c \
             server/policy.c server/minimize.c server/ingest.c server/foldbuf.c server/sensitive.c server/record.c server/feed.c server/hadisc.c server/token.c server/metrics.c server/net.c server/ack.c server/manifest.c server/pins.c server/keys.c \
             server/cmd_token.c server/cmd_manifest.c server/cmd_pins.c server/rest.c server/rest_devices.c server/rest_telemetry.c server/rest_models.c \
             server/rest_enroll.c server/rest_ca.c server/rest_audit.c server/rest_device_self.c server/rest_pins.c server/rest_parse.c \
             server/firmware.c server/cmd_firmware.c server/rest_firmware.c server/ticker.c server/bridge_config.c server/bridge.c \
             server/backup.c server/cmd_backup.c server/cmd_bridge.c
LIB_SRC    = $(COMMON_SRC) $(CA_SRC) $(OTA_SRC) $(DEVICE_CORE_SRC) $(DEVICE_IO_SRC) $(SERVER_SRC)
LIB_OBJ    = $(LIB_SRC:%.c=$(O)/%.o) $(O)/gen/migrations.o
MAIN_OBJ   = $(O)/server/main.o
AGENT      ?= $(dir $(BIN))hearth-agent
AGENT_SRC  = device/agent.c
AGENT_LIBS = $(shell $(PKG_CONFIG) --libs libmosquitto openssl)

MIGRATIONS = $(sort $(wildcard schema/migrations/*.sql))

UNIT_SRC   = $(wildcard tests/unit/test_*.c)
UNIT_BIN   = $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   = $(shell $(PKG_CONFIG) --libs check)

FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all test unit integration asan fuzz fuzz-run run clean
all: $(BIN) $(AGENT)

$(BIN): $(MAIN_OBJ) $(O)/libhearth.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# The reference device agent (device/): libmosquitto (OpenSSL underneath) for MQTT, mbedTLS for
# its HTTPS and for every trust decision (device/core.c).
$(AGENT): $(AGENT_SRC:%.c=$(O)/%.o) $(O)/libhearth.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(AGENT_LIBS)

$(O)/libhearth.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# The migrations are compiled in, so the binary carries the schema it expects.
$(O)/gen/migrations.c: $(MIGRATIONS) schema/embed.sh
	@mkdir -p $(dir $@)
	sh schema/embed.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(O)/gen/migrations.o: $(O)/gen/migrations.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/tests/unit.o: tests/unit/unit.c tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -c -o $@ $<

$(O)/tests/%: tests/unit/%.c $(O)/tests/unit.o $(O)/libhearth.a tests/unit/unit.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(O)/tests/unit.o $(O)/libhearth.a $(LIBS) $(CHECK_LIBS)

# Fuzz targets also build with a plain main() (tests/fuzz/replay.c) so `make test` replays their
# seed corpora on every run; `make fuzz` builds the real libFuzzer binaries with clang.
$(O)/fuzz-replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(O)/libhearth.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/replay.c $(O)/libhearth.a $(LIBS)

# libFuzzer targets (clang), built once in build/fuzz whatever O is: they carry their own
# sanitizers. They link only what a parser needs.
FUZZ_CC ?= clang
FUZZ_BIN  = $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_DEPS = $(COMMON_SRC) $(CA_SRC) $(OTA_SRC) $(DEVICE_CORE_SRC) $(DEVICE_IO_SRC) server/mqtt_codec.c server/config.c \
            server/policy.c server/minimize.c server/sensitive.c server/ack.c server/bridge_config.c \
            server/rest_parse.c server/token.c server/acl.c
build/fuzz/%: tests/fuzz/%.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-o $@ $< $(FUZZ_DEPS) $(MBEDTLS_LIBS) $(shell pkg-config --libs jansson)

FUZZ_REPLAY = $(FUZZ_SRC:tests/fuzz/%.c=$(O)/fuzz-replay/%)

# A libmosquitto client for the black-box tests (tests/integration/14-libmosquitto.sh).
MOSQ_CLIENT = $(O)/tests/mosq_client
$(MOSQ_CLIENT): tests/integration/mosq_client.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags libmosquitto) $(ALL_LDFLAGS) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs libmosquitto)

# An LD_PRELOAD shim that makes malloc/calloc/realloc fail on command (tests/integration/
# 36-alloc-fail.sh). Test code, built plain whatever the build: a sanitizer would own malloc.
ALLOCFAIL = $(O)/tests/liballocfail.so
$(ALLOCFAIL): tests/fault/allocfail.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -fPIC -shared -o $@ $<

TEST_ENV = UNIT_BINS="$(UNIT_BIN)" HEARTH=$(abspath $(BIN)) AGENT=$(abspath $(AGENT)) FUZZ_REPLAY_DIR=$(abspath $(O)/fuzz-replay) \
           FUZZ_DIR=$(abspath build/fuzz) MOSQ_CLIENT=$(abspath $(MOSQ_CLIENT)) ALLOCFAIL=$(abspath $(ALLOCFAIL)) \
           LOADGEN=$(abspath $(O)/bench/loadgen)

unit: $(UNIT_BIN)
	@$(TEST_ENV) ONLY=unit bash tests/run.sh

integration: $(BIN) $(AGENT) $(FUZZ_REPLAY) $(FUZZ_BIN) $(MOSQ_CLIENT) $(ALLOCFAIL) $(O)/bench/loadgen
	@$(TEST_ENV) ONLY=integration bash tests/run.sh

test: $(BIN) $(AGENT) $(UNIT_BIN) $(FUZZ_REPLAY) $(FUZZ_BIN) $(MOSQ_CLIENT) $(ALLOCFAIL) $(O)/bench/loadgen
	@$(TEST_ENV) bash tests/run.sh

# The integration tests with every hearth process under valgrind's memcheck, one log per process
# in build/valgrind/ (tests/valgrind/run.sh says which tests and bounds); fails on any definitely
# lost byte or memory error. About 20 minutes on 2 cores; never part of make test.
.PHONY: valgrind
valgrind: $(BIN) $(AGENT) $(FUZZ_REPLAY) $(FUZZ_BIN) $(MOSQ_CLIENT) $(ALLOCFAIL)
	@$(TEST_ENV) bash tests/valgrind/run.sh

asan:
	@$(MAKE) --no-print-directory O=build/asan BIN=build/asan/hearth \
		CFLAGS="-O1 -g -fno-omit-frame-pointer" \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" AGENT=build/asan/hearth-agent test

fuzz: $(FUZZ_BIN)
	@echo "run: build/fuzz/fuzz_csr -max_total_time=60 tests/fuzz/corpus/csr (a copy: it adds files)"

# Every fuzz target for FUZZ_SECONDS (60) from a copy of its seed corpus, as make test's short run
# (tests/integration/07-fuzz-short.sh) does for 15 s; CI runs it after make test.
.PHONY: fuzz-smoke
fuzz-smoke: $(FUZZ_BIN)
	@res=$$(mktemp) && FUZZ_SECONDS=$${FUZZ_SECONDS:-60} FUZZ_DIR=$(abspath build/fuzz) HEARTH=$(abspath $(BIN)) \
		RESULT_FILE=$$res bash tests/integration/07-fuzz-short.sh; read -r p f < $$res; rm -f $$res; \
		echo "fuzz-smoke: $${p:-0} passed, $${f:-1} failed"; [ "$${f:-1}" = 0 ]

# The hour-long runs (issue 9): FUZZ_SECONDS (3600) per target, FUZZ_JOBS (2) at once; name targets
# with FUZZ_TARGETS="mqtt rest" (default: all). Corpora and logs stay in build/fuzz-long.
.PHONY: fuzz-long
fuzz-long: $(FUZZ_BIN)
	@sh scripts/fuzz-long.sh $(FUZZ_TARGETS)

# kill -9 under QoS 1 load for KILL9_ROUNDS (200) rounds; make test runs the same test with 10.
.PHONY: kill9
kill9: $(BIN) $(MOSQ_CLIENT)
	@$(TEST_ENV) KILL9_ROUNDS=$${KILL9_ROUNDS:-200} bash tests/integration/33-kill9.sh

# The load generator is a client and uses OpenSSL, so the server is measured by a TLS stack other
# than its own; OpenSSL stays in bench/ and is never linked into hearth.
LOADGEN   = $(O)/bench/loadgen
.PHONY: bench
$(LOADGEN): bench/loadgen.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags openssl) $(ALL_LDFLAGS) -o $@ $< \
		$(shell $(PKG_CONFIG) --libs openssl)

# The ceiling mbedTLS's P-256 arithmetic puts on full handshakes, with the mbedTLS hearth links.
P256      = $(O)/bench/p256
$(P256): bench/p256.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< -lmbedcrypto -lpthread

# hearth and Mosquitto side by side; BENCH_QUICK=1 for small sizes (bench/run.sh lists the rest).
bench: $(BIN) $(LOADGEN) $(P256)
	@HEARTH=$(abspath $(BIN)) LOADGEN=$(abspath $(LOADGEN)) P256=$(abspath $(P256)) bash bench/run.sh

# 500 TLS devices for an hour (SOAK_DEVICES, SOAK_SECONDS, SOAK_RATE): descriptors and memory
# drift, errors logged. By hand, like bench.
.PHONY: soak
soak: $(BIN) $(LOADGEN)
	@HEARTH=$(abspath $(BIN)) LOADGEN=$(abspath $(LOADGEN)) bash bench/soak.sh

# The presence-inference check alone (tests/privacy/; also part of `make test`). PRIVACY_KEEP=DIR
# keeps its data and result.json; PRIVACY_HOUSEHOLDS, PRIVACY_DAYS, PRIVACY_SEED vary the simulation.
.PHONY: privacy
privacy: $(BIN)
	@HEARTH=$(abspath $(BIN)) bash tests/privacy/check.sh

# The home-lab image end to end (docker/, tests/docker/run.sh): builds it, runs it under compose,
# enrolls a device and restarts it. Needs root (it may install Debian packages and start its own
# dockerd) or a running Docker engine; about a minute; never part of `make test`.
.PHONY: docker-test
docker-test:
	@bash tests/docker/run.sh

DATA ?= ./hearth-data
run: $(BIN)
	$(BIN) serve --data $(DATA)

clean:
	rm -rf build bin

-include $(shell find $(O) -name '*.d' 2>/dev/null)
