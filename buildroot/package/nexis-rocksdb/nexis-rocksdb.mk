################################################################################
#
# nexis-rocksdb
#
################################################################################

# RocksDB pinned to the C API of nexis' binding (grocksdb v1.7.15, the
# same RocksDB as Debian 12's librocksdb-dev that CI builds against).
# Modelled on Buildroot's package/rocksdb.
NEXIS_ROCKSDB_VERSION = 7.8.3
NEXIS_ROCKSDB_SOURCE = rocksdb-$(NEXIS_ROCKSDB_VERSION).tar.gz
NEXIS_ROCKSDB_SITE = $(call github,facebook,rocksdb,v$(NEXIS_ROCKSDB_VERSION))
NEXIS_ROCKSDB_LICENSE = GPL-2.0 or Apache-2.0
NEXIS_ROCKSDB_LICENSE_FILES = COPYING LICENSE.Apache LICENSE.leveldb
NEXIS_ROCKSDB_CPE_ID_VENDOR = facebook
NEXIS_ROCKSDB_CPE_ID_PRODUCT = rocksdb
NEXIS_ROCKSDB_INSTALL_STAGING = YES
NEXIS_ROCKSDB_DEPENDENCIES = zstd lz4 zlib snappy

# GCC >= 13 no longer pulls <cstdint> in through other headers, and
# RocksDB 7.8 relies on that in a few places (fixed upstream in 8.0).
NEXIS_ROCKSDB_EXTRA_CXXFLAGS = -include cstdint

# USE_RTTI=1 as Debian builds it: nexis subclasses rocksdb::Logger
# (store/infolog.cc), which needs RocksDB's typeinfo, and release builds
# drop RTTI without it.
#
# build_detect_platform tests `test $ROCKSDB_DISABLE_X`: any value, even
# 0, disables X, so the wanted libraries (zstd, lz4, zlib, snappy: the
# ones the binding links) are left unset and the others set to 1.
NEXIS_ROCKSDB_MAKE_OPTS = \
	PORTABLE=1 \
	PREFIX=/usr \
	ROCKSDB_DISABLE_BZIP=1 \
	ROCKSDB_DISABLE_GFLAGS=1 \
	ROCKSDB_DISABLE_JEMALLOC=1 \
	ROCKSDB_DISABLE_TCMALLOC=1 \
	ROCKSDB_DISABLE_MEMKIND=1 \
	ROCKSDB_DISABLE_NUMA=1 \
	ROCKSDB_DISABLE_TBB=1 \
	ROCKSDB_DISABLE_BENCHMARK=1 \
	ROCKSDB_USE_IO_URING=0 \
	DISABLE_WARNING_AS_ERROR=1 \
	USE_RTTI=1

# riscv64 (and others) need libatomic for std::atomic of small types.
ifeq ($(BR2_TOOLCHAIN_HAS_LIBATOMIC),y)
NEXIS_ROCKSDB_MAKE_OPTS += EXTRA_LDFLAGS=-latomic
endif

ifeq ($(BR2_ENABLE_LTO),y)
NEXIS_ROCKSDB_MAKE_OPTS += USE_LTO=1
else
NEXIS_ROCKSDB_MAKE_OPTS += USE_LTO=0
endif

ifeq ($(BR2_STATIC_LIBS),y)
NEXIS_ROCKSDB_BUILD_TARGETS = static_lib
NEXIS_ROCKSDB_INSTALL_TARGETS = install-static
NEXIS_ROCKSDB_EXTRA_CXXFLAGS += -DROCKSDB_NO_DYNAMIC_EXTENSION
else ifeq ($(BR2_SHARED_LIBS),y)
NEXIS_ROCKSDB_BUILD_TARGETS = shared_lib
NEXIS_ROCKSDB_INSTALL_TARGETS = install-shared
else
NEXIS_ROCKSDB_BUILD_TARGETS = shared_lib static_lib
NEXIS_ROCKSDB_INSTALL_TARGETS = install-shared install-static
endif

NEXIS_ROCKSDB_MAKE_OPTS += EXTRA_CXXFLAGS="$(NEXIS_ROCKSDB_EXTRA_CXXFLAGS)"

define NEXIS_ROCKSDB_BUILD_CMDS
	$(TARGET_CONFIGURE_OPTS) $(MAKE) $(NEXIS_ROCKSDB_MAKE_OPTS) -C $(@D) \
		$(NEXIS_ROCKSDB_BUILD_TARGETS)
endef

define NEXIS_ROCKSDB_INSTALL_STAGING_CMDS
	$(TARGET_CONFIGURE_OPTS) $(MAKE) $(NEXIS_ROCKSDB_MAKE_OPTS) -C $(@D) \
		DESTDIR=$(STAGING_DIR) $(NEXIS_ROCKSDB_INSTALL_TARGETS)
endef

define NEXIS_ROCKSDB_INSTALL_TARGET_CMDS
	$(TARGET_CONFIGURE_OPTS) $(MAKE) $(NEXIS_ROCKSDB_MAKE_OPTS) -C $(@D) \
		DESTDIR=$(TARGET_DIR) $(NEXIS_ROCKSDB_INSTALL_TARGETS)
endef

$(eval $(generic-package))
