# nexis: `make` builds bin/nexis, `make test` runs every test (installing
# the Debian packages the tests need when they are missing).

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all deps stdenv test corpus vet fmt demo clean fuzz-store fuzz-eval pgo

all: bin/nexis

# bin/nexis is fully static, as images ship it: besides running on any
# root, it starts 10-15 ms sooner than a dynamically linked one (no shared
# libraries to map and relocate), which is a tenth of a no-op switch.
# Debian's librocksdb.a needs libbz2 after it; osusergo and netgo keep
# glibc's NSS lookups out of the binary. The sandbox init (C, in
# realise/sandbox/init.c) is also a small static program installed beside
# nexis, which each build starts instead of mapping all of nexis.
bin/nexis: deps FORCE
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static -lbz2"' \
		-tags 'osusergo netgo' -o bin/nexis ./cmd/nexis
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '-linkmode external -extldflags -static' \
		-o bin/nexis-sandbox-init ./realise/sandbox/nexis-sandbox-init

FORCE:

# cmd/nexis/default.pgo is the CPU profile every `go build ./cmd/nexis`
# optimises with (PGO): evaluations of the bench/evalcmp workload and of
# the examples. `make pgo` records it again, after the evaluator changed.
pgo: deps
	@scripts/pgo

deps:
	@scripts/install-deps
	@$(GO) mod download

# The stdenv builds run with (docs/build-model.md): tarballs packed from
# Debian packages into .cache/stdenv, once per machine (a later run only
# checks that Debian's package set did not move).
stdenv:
	@scripts/make-stdenv

# -p 4: the longest packages (crash tests of the store and the collector)
# mostly wait on fsync and child processes, so they overlap well.
# staticcheck's U1000 finds code nothing calls or reads, tests included:
# dead code does not land (pinned, from the Go module proxy).
STATICCHECK = honnef.co/go/tools/cmd/staticcheck@v0.8.2

test: deps stdenv
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) -checks U1000 ./...
	$(GO) test -count=1 -p 4 -timeout 20m ./...

# The corpus (realise/testdata/corpus): real releases (zlib, pcre2,
# nginx, libpng, json-c, lua, expat) built from Debian's .orig tarballs,
# fetched once into .cache/corpus, and run from the store. About 2-4
# minutes on two cores; bench/corpus/run.sh compares it with a plain
# shell script.
corpus: deps stdenv
	@scripts/fetch-corpus
	$(GO) vet -tags realworld ./realise/
	$(GO) test -tags realworld -count=1 -run '^TestCorpus' -timeout 30m ./realise/

# The store's fuzz targets (archive unpacking, export import), FUZZTIME
# each (default 30s): what CI runs after the tests.
fuzz-store: deps
	FUZZTIME=$(or $(FUZZTIME),30s) scripts/fuzz-store

# The evaluator's fuzz targets (config loading, evaluation), the same way.
fuzz-eval: deps
	FUZZTIME=$(or $(FUZZTIME),30s) scripts/fuzz-eval

fmt:
	gofmt -w $$(git ls-files '*.go')

demo: bin/nexis stdenv
	scripts/demo

clean:
	rm -rf bin

# --- NexisOS images and the VM test (docs/images.md) -------------------------
# `make iso [ARCH=x86_64|aarch64|riscv64]` builds an image with Buildroot
# (the buildroot/buildroot submodule and the network: Buildroot downloads
# its ~83 source archives); `make run-qemu [ARCH=...]` boots it. Output:
# buildroot_backup_imgs/<x86|aarch64|riscv64>/output/images/.
# `make br-check` configures every defconfig offline and fails when Kconfig
# dropped a wanted option; `make vm-test` boots Debian's kernel with a
# static nexis on XFS, then the installed generations from GRUB's
# generated menu under OVMF, and proves the config in force inside the
# booted system (offline; CI runs it after `make test`).

.PHONY: iso run-qemu br-check vm-test

ARCH    ?= x86_64
BR_ARCH := $(if $(filter x86 x86_64 amd64,$(ARCH)),x86_64,$(ARCH))
BR_DIR  := buildroot/buildroot
BR_EXT  := $(CURDIR)/buildroot
BR_OUT  := $(CURDIR)/buildroot_backup_imgs/$(if $(filter x86_64,$(BR_ARCH)),x86,$(BR_ARCH))/output
BR_MAKE  = $(MAKE) -C $(BR_DIR) O=$(BR_OUT) BR2_EXTERNAL=$(BR_EXT)
VM_SHELL_SCRIPTS := vmtest/run vmtest/guest/init vmtest/guest/stage1 vmtest/guest/image/init vmtest/guest/image/proofs \
	vmtest/guest/image/su-with-password vmtest/guest/image/profile vmtest/guest/configs/extra.sh scripts/install-deps scripts/make-stdenv scripts/pack-stdenv \
	$(wildcard buildroot/br-check buildroot/board/nexisos/*.sh buildroot/board/nexisos/*/*.sh \
		buildroot/board/nexisos/rootfs-overlay/sbin/init buildroot/board/nexisos/rootfs-overlay/lib/nexisos/*.sh)

# nexis is built from this tree (SITE_METHOD=local) with GOPROXY=off: its
# modules are vendored beside the output, here, where the network is.
iso:
	@test -f $(BR_DIR)/Makefile || { echo "make iso: the Buildroot submodule is missing: git submodule update --init $(BR_DIR) (needs the network)" >&2; exit 1; }
	@test -f $(BR_EXT)/configs/nexisos_$(BR_ARCH)_defconfig || { echo "make iso: unknown ARCH=$(ARCH) (want x86_64, aarch64 or riscv64)" >&2; exit 1; }
	@scripts/install-deps --iso
	mkdir -p $(BR_OUT)
	@# Outputs stay out of git and out of the nexis module's ./... (Buildroot
	@# copies Go sources there).
	@printf '*\n' >buildroot_backup_imgs/.gitignore
	@printf 'module nexisos.invalid/buildroot_backup_imgs\n' >buildroot_backup_imgs/go.mod
	rm -rf $(BR_OUT)/nexis-vendor && $(GO) mod vendor -o $(BR_OUT)/nexis-vendor
	$(BR_MAKE) nexisos_$(BR_ARCH)_defconfig
	$(BR_MAKE)
	@echo "make iso: images in $(BR_OUT)/images (boot with: make run-qemu ARCH=$(BR_ARCH))"

run-qemu:
	@test -x $(BR_OUT)/images/run-qemu.sh || { echo "make run-qemu: no $(BR_OUT)/images/run-qemu.sh: run make iso ARCH=$(BR_ARCH) first" >&2; exit 1; }
	$(BR_OUT)/images/run-qemu.sh

br-check:
	@scripts/install-deps --vm
	shellcheck $(VM_SHELL_SCRIPTS)
	buildroot/br-check

vm-test: deps stdenv
	@scripts/install-deps --vm
	shellcheck $(VM_SHELL_SCRIPTS)
	vmtest/run
