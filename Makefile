# machineid-host front door. CMake + CTest do the work underneath.
#   make            build everything into build/
#   make check      run every test (SANITIZE=1: under ASan+UBSan, in build-sanitize/)
#   make bench      benchmarks next to their baselines (MID_BENCH_QUICK=1: a short trial)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS from the seed corpus
#   make install DESTDIR=...
#   make demo       end-to-end demonstration on this machine
#   make deb / rpm  packages; make selinux: the SELinux policy module

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

.PHONY: all bootstrap configure check bench fuzz install demo deb rpm selinux format clean

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

# make deb / make rpm: packages built from a copy of the tree under
# $(PKG_DIR), so no debian/ or packaging build files land in the tree. The
# version is the project's, from CMakeLists.txt.
PKG_DIR     ?= build-pkg
PKG_VERSION := $(shell sed -n '/^project/s/.* VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
PKG_TREE    := tar -c --exclude-vcs --exclude=./build --exclude='./build-*' .

deb: bootstrap
	rm -rf $(PKG_DIR)/deb && mkdir -p $(PKG_DIR)/deb/src
	$(PKG_TREE) | tar -x -C $(PKG_DIR)/deb/src
	cp -r packaging/debian $(PKG_DIR)/deb/src/debian
	cd $(PKG_DIR)/deb/src && dpkg-buildpackage -b -us -uc -j$(JOBS)
	lintian --fail-on error --info $(PKG_DIR)/deb/machineid-host_$(PKG_VERSION)_*.deb
	@ls $(PKG_DIR)/deb/*.deb

# rpmbuild on a Debian host has no RPM database of build dependencies to
# check against: --nodeps. An RPM distribution's builder checks them.
rpm: bootstrap
	rm -rf $(PKG_DIR)/rpm && mkdir -p $(PKG_DIR)/rpm/SOURCES
	$(PKG_TREE) --transform='s,^\.,machineid-host-$(PKG_VERSION),' -z \
	  >$(PKG_DIR)/rpm/SOURCES/machineid-host-$(PKG_VERSION).tar.gz
	cp packaging/sysusers.d/machineid.conf packaging/rpm/machineid-host.spec packaging/rpm/sysusers-compat \
	  $(PKG_DIR)/rpm/SOURCES/
	rpmbuild -bb --nodeps --define '_topdir $(CURDIR)/$(PKG_DIR)/rpm' \
	  --define 'mid_version $(PKG_VERSION)' --define '_smp_mflags -j$(JOBS)' \
	  $(PKG_DIR)/rpm/SOURCES/machineid-host.spec
	rpmlint -r packaging/rpm/machineid-host.rpmlintrc \
	  $(PKG_DIR)/rpm/SOURCES/machineid-host.spec $(PKG_DIR)/rpm/RPMS/*/*.rpm
	@ls $(PKG_DIR)/rpm/RPMS/*/*.rpm

# make selinux: the SELinux policy module, built with the reference
# policy's devel Makefile (Debian: selinux-policy-dev; RHEL:
# selinux-policy-devel) into build-selinux/machineid.pp.
SELINUX_DEVEL ?= /usr/share/selinux/devel/Makefile
selinux: bootstrap
	rm -rf build-selinux && mkdir -p build-selinux
	cp packaging/selinux/machineid.te packaging/selinux/machineid.fc packaging/selinux/machineid.if build-selinux/
	$(MAKE) -C build-selinux -f $(SELINUX_DEVEL) machineid.pp
	@ls build-selinux/machineid.pp

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-sanitize build-bench build-fuzz build-selinux
