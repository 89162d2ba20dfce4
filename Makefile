# machineid-host front door. CMake + CTest do the work underneath.
#   make            build everything into build/
#   make check      run every test (SANITIZE=1: under ASan+UBSan, in build-sanitize/)
#   make bench      benchmarks next to their baselines
#   make fuzz       each libFuzzer target for FUZZ_SECONDS from the seed corpus
#   make install DESTDIR=...
#   make demo       end-to-end demonstration on this machine

JOBS        ?= $(shell nproc)
BUILD_TYPE  ?= RelWithDebInfo
FUZZ_SECONDS ?= 60
PREFIX      ?= /usr

ifeq ($(SANITIZE),1)
BUILD_DIR   ?= build-sanitize
CMAKE_FLAGS += -DMID_SANITIZE=ON
else
BUILD_DIR   ?= build
endif

.PHONY: all bootstrap configure check bench fuzz install demo deb rpm format clean

all: configure
	cmake --build $(BUILD_DIR) -j$(JOBS)

bootstrap:
	@scripts/bootstrap

configure: bootstrap
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null

check: all
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS)

bench: bootstrap
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DMID_TESTS=OFF -DMID_BENCH=ON >/dev/null
	cmake --build build-bench -j$(JOBS)
	scripts/bench build-bench

fuzz: bootstrap
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DMID_TESTS=OFF -DMID_FUZZ=ON >/dev/null
	cmake --build build-fuzz -j$(JOBS)
	scripts/fuzz build-fuzz $(FUZZ_SECONDS)

install: all
	DESTDIR=$(DESTDIR) cmake --install $(BUILD_DIR)

demo: all
	scripts/demo $(BUILD_DIR)

deb rpm:
	@echo "make $@: packaging is not implemented yet (see README, 'Status')" >&2; exit 2

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-sanitize build-bench build-fuzz
