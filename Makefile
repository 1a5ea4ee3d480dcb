# The two commands a newcomer types: `make run` and `make test`.
# Both install the Debian packages that are missing (deps/debian-packages.txt), then build.

BUILD_DIR ?= build
JOBS ?= $(shell nproc)
AGORA := $(BUILD_DIR)/bin/agora

.PHONY: all deps configure build test unit integration fuzz run stop bench docs clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@if [ ! -f $(BUILD_DIR)/build.ninja ]; then cmake --preset default; fi

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 300
	@scripts/fuzz 5

# Each fuzzer for FUZZ_SECONDS (tests/fuzz; `make test` runs them for 5 seconds).
FUZZ_SECONDS ?= 120
fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS)

unit: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L unit

integration: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L integration

# Brings up a local cluster (a master and two agents) and runs the example framework on it.
run: build
	@scripts/demo $(BUILD_DIR)

stop:
	@$(AGORA) stop

bench: build
	$(BUILD_DIR)/bin/agora-bench-launch --agents=100 --tasks=10000
	$(BUILD_DIR)/bin/agora-bench-launch --agents=1000 --tasks=10000

# docs/sdk-reference.md, from the SDK's headers (make test checks that it is current).
docs:
	scripts/sdk-reference

clean:
	rm -rf $(BUILD_DIR)
