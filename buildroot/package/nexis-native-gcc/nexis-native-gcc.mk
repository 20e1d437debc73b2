################################################################################
#
# nexis-native-gcc
#
################################################################################

# The source, version and patches of Buildroot's cross gcc (package/gcc):
# the stdenv compiles with the compiler that built the image.
NEXIS_NATIVE_GCC_VERSION = $(GCC_VERSION)
NEXIS_NATIVE_GCC_SITE = $(GCC_SITE)
NEXIS_NATIVE_GCC_SOURCE = $(GCC_SOURCE)
NEXIS_NATIVE_GCC_DL_SUBDIR = gcc
NEXIS_NATIVE_GCC_LICENSE = GPL-3.0+, GPL-3.0-with-GCC-exception
NEXIS_NATIVE_GCC_LICENSE_FILES = COPYING3 COPYING.RUNTIME
NEXIS_NATIVE_GCC_DEPENDENCIES = gmp mpfr mpc zlib binutils make
NEXIS_NATIVE_GCC_EXCLUDES = $(HOST_GCC_EXCLUDES)
NEXIS_NATIVE_GCC_POST_PATCH_HOOKS += HOST_GCC_APPLY_PATCHES
# gcc is not built in its source directory.
NEXIS_NATIVE_GCC_SUBDIR = build
NEXIS_NATIVE_GCC_PRE_CONFIGURE_HOOKS += HOST_GCC_CONFIGURE_SYMLINK

# Where stdenv.sh finds it (NEXIS_NATIVE_TOOLCHAIN's default).
NEXIS_NATIVE_GCC_DESTDIR = $(BASE_DIR)/nexis-native-toolchain

NEXIS_NATIVE_GCC_LANGUAGES = c,c++

# A native compiler of the target (build: this machine; host and target:
# the image), whose system headers and libraries are the image's own at
# / (the stdenv's /usr in the sandbox), found through $(STAGING_DIR)
# while it is built. No bootstrap: the cross gcc already built it from
# the same source.
NEXIS_NATIVE_GCC_CONF_OPTS = \
	--build=$(GNU_HOST_NAME) \
	--host=$(GNU_TARGET_NAME) \
	--target=$(GNU_TARGET_NAME) \
	--prefix=/usr \
	--with-build-sysroot=$(STAGING_DIR) \
	--with-native-system-header-dir=/usr/include \
	--enable-languages=$(NEXIS_NATIVE_GCC_LANGUAGES) \
	--enable-shared \
	--enable-__cxa_atexit \
	--enable-lto \
	--disable-bootstrap \
	--disable-multilib \
	--disable-nls \
	--disable-libsanitizer \
	--disable-libssp \
	--disable-libgomp \
	--disable-decimal-float \
	--with-system-zlib \
	--without-zstd \
	--with-gmp=$(STAGING_DIR)/usr \
	--with-mpfr=$(STAGING_DIR)/usr \
	--with-mpc=$(STAGING_DIR)/usr \
	--with-pkgversion="NexisOS stdenv, Buildroot $(BR2_VERSION_FULL)"

NEXIS_NATIVE_GCC_CONF_ENV = $(HOST_GCC_COMMON_CONF_ENV)
NEXIS_NATIVE_GCC_MAKE_OPTS = $(HOST_GCC_COMMON_MAKE_OPTS)

NEXIS_NATIVE_GCC_INSTALL_TARGET_OPTS = DESTDIR=$(NEXIS_NATIVE_GCC_DESTDIR) install-strip

# A fresh tree each install: what a previous build left must not reach
# the stdenv.
define NEXIS_NATIVE_GCC_CLEAN_DESTDIR
	rm -rf $(NEXIS_NATIVE_GCC_DESTDIR)
endef
NEXIS_NATIVE_GCC_PRE_INSTALL_TARGET_HOOKS += NEXIS_NATIVE_GCC_CLEAN_DESTDIR

# What Debian's stdenv has and builds call: cc and c++.
define NEXIS_NATIVE_GCC_CC_LINKS
	ln -sf gcc $(NEXIS_NATIVE_GCC_DESTDIR)/usr/bin/cc
	ln -sf g++ $(NEXIS_NATIVE_GCC_DESTDIR)/usr/bin/c++
endef
NEXIS_NATIVE_GCC_POST_INSTALL_TARGET_HOOKS += NEXIS_NATIVE_GCC_CC_LINKS

$(eval $(autotools-package))

# The tarball is Buildroot's gcc source, checked against Buildroot's own
# hashes of it.
NEXIS_NATIVE_GCC_HASH_FILES = $(TOPDIR)/package/gcc/gcc-final/gcc-final.hash
