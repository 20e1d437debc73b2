################################################################################
#
# nexis
#
################################################################################

# The nexis source tree this external tree lives in.
NEXIS_VERSION = $(shell git -C $(BR2_EXTERNAL_NEXISOS_PATH) describe --always --dirty 2>/dev/null || echo dev)
NEXIS_SITE = $(realpath $(BR2_EXTERNAL_NEXISOS_PATH)/..)
NEXIS_SITE_METHOD = local
NEXIS_GOMOD = github.com/nexisos/nexis
NEXIS_BUILD_TARGETS = cmd/nexis realise/sandbox/nexis-sandbox-init
NEXIS_LDFLAGS = -X main.version=$(NEXIS_VERSION)
NEXIS_DEPENDENCIES = nexis-rocksdb

# Not copied into the build directory: Buildroot itself, its outputs, and
# local build products.
NEXIS_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude /buildroot \
	--exclude /buildroot_backup_imgs \
	--exclude /bin \
	--exclude /vendor \
	--exclude '*.test'

# Buildroot builds Go packages with GOFLAGS=-mod=vendor and GOPROXY=off, and
# a local site is not vendored at download time: copy the vendor directory
# that `make iso` made (go mod vendor -o $(O)/nexis-vendor).
NEXIS_VENDOR_DIR ?= $(BASE_DIR)/nexis-vendor

define NEXIS_COPY_VENDOR
	if [ ! -f $(NEXIS_VENDOR_DIR)/modules.txt ]; then \
		echo "nexis: no vendored Go modules in $(NEXIS_VENDOR_DIR):" \
			"build with 'make iso' in the nexis tree, or run" \
			"'go mod vendor -o $(NEXIS_VENDOR_DIR)' there first" >&2; \
		exit 1; \
	fi
	rm -rf $(@D)/vendor
	cp -a $(NEXIS_VENDOR_DIR) $(@D)/vendor
endef
NEXIS_POST_RSYNC_HOOKS += NEXIS_COPY_VENDOR

# The store, nexis' state and its configuration.
define NEXIS_INSTALL_DIRS
	mkdir -p $(TARGET_DIR)/store $(TARGET_DIR)/var/lib/nexis $(TARGET_DIR)/etc/nexis
endef
NEXIS_POST_INSTALL_TARGET_HOOKS += NEXIS_INSTALL_DIRS

$(eval $(golang-package))
