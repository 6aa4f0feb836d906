# lua-campaign: thin wrapper over scripts/ and cmake.
#   make demo    the ACS "update a profile" workflow against the bundled emulator
#   make test    the unit, integration and Lua-layer specs on each Lua of FLAVOURS, the others
#                once on Lua 5.4; last line `N passed, N failed`
#   make bench   benchmarks, printed as ratios against baselines measured in the same run
# The Luas to build (build/<flavour>/campaign.so) and to test: 5.1 5.2 5.3 5.4 jit.
FLAVOURS ?= 5.4 jit 5.1 5.2 5.3
PREFIX   ?= /usr/local
FUZZ_SECONDS ?= 30
BUILD    := build

.PHONY: all bootstrap build test demo bench memcheck fuzz lint install clean $(addprefix build-,$(FLAVOURS))

all: build

bootstrap:
	@scripts/bootstrap

build: bootstrap $(addprefix build-,$(FLAVOURS))

$(addprefix build-,$(FLAVOURS)): build-%:
	@mkdir -p $(BUILD)
	@cmake -S . -B $(BUILD)/cmake-$* -DLUA_FLAVOUR=$* \
	  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$(CURDIR)/$(BUILD)/$* >$(BUILD)/cmake-$*.log 2>&1 \
	  || { cat $(BUILD)/cmake-$*.log; exit 1; }
	@cmake --build $(BUILD)/cmake-$* -j2 >$(BUILD)/build-$*.log 2>&1 \
	  || { cat $(BUILD)/build-$*.log; exit 1; }
	@test -f $(BUILD)/$*/campaign.so || { echo "build: $(BUILD)/$*/campaign.so was not built" >&2; exit 1; }

test: build
	@FLAVOURS="$(FLAVOURS)" scripts/run-tests

demo: build
	@scripts/demo

bench: build
	@scripts/bootstrap --bench
	@scripts/bench

memcheck: build
	@scripts/bootstrap --bench
	@scripts/memcheck

fuzz: build
	@scripts/bootstrap --bench
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz

lint:
	@luacheck -q lua bin spec emulator examples bench

install: bootstrap
	cmake -S . -B $(BUILD)/cmake-install -DLUA_FLAVOUR=5.4 -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD)/cmake-install
	cmake --install $(BUILD)/cmake-install
	install -D -m 0755 bin/campaign $(DESTDIR)$(PREFIX)/bin/campaign

clean:
	rm -rf $(BUILD)
