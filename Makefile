# Vireo — the two set-up commands:
#   make demo   install what is missing, build, build the demo guest, boot it
#   make test   the same set-up, then every test (unit, device, guest tiers),
#               then the whole suite again under ASan+UBSan
# Other targets: build, image, fuzz (libFuzzer, brief), bench, clean.

BUILD ?= build
ASAN  ?= build-asan
FUZZ  ?= build-fuzz
FUZZ_SECONDS ?= 20
MESON ?= meson
NINJA ?= ninja
DEMO_DIR ?= $(HOME)/.cache/vireo/demo-vm

.PHONY: all deps build build-asan image demo test test-main test-asan fuzz bench clean

all: build

deps:
	@sh installer/deps.sh

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) -Dflavor=release

$(ASAN)/build.ninja:
	$(MESON) setup $(ASAN) -Dflavor=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

build-asan: deps $(ASAN)/build.ninja
	$(NINJA) -C $(ASAN)

image: deps
	@tools/guest/image/build-demo.sh >/dev/null

demo: build image
	@sh tools/guest/image/run-demo.sh $(BUILD) "$(DEMO_DIR)"

# Every tier on the release build, then again on the sanitizer build; one
# summary line at the end (tests/summary.py reads meson's test logs).
test: build build-asan image
	@rc=0; \
	$(MESON) test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=1; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  VIREO_TIMEOUT_SCALE=4 \
	  $(MESON) test -C $(ASAN) --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
	    || rc=1; \
	python3 tests/summary.py $(BUILD) $(ASAN) || rc=1; \
	exit $$rc

fuzz: deps
	@[ -f $(FUZZ)/build.ninja ] || CC=clang $(MESON) setup $(FUZZ) -Dfuzz=true -Dflavor=debug \
	  -Db_sanitize=address,undefined -Db_lundef=false
	$(NINJA) -C $(FUZZ)
	@for f in $(FUZZ)/tests/fuzz/fuzz_*; do \
	  [ -f "$$f" ] && [ -x "$$f" ] || continue; echo "== $$f"; \
	  "$$f" -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 >/dev/null 2>$$f.log || { tail -30 $$f.log; exit 1; }; \
	done

bench: build image
	$(MESON) test -C $(BUILD) --benchmark --verbose

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
