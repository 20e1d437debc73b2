################################################################################
#
# dinit
#
################################################################################

DINIT_VERSION = 0.22.1
DINIT_SOURCE = dinit-$(DINIT_VERSION).tar.xz
DINIT_SITE = https://github.com/davmac314/dinit/releases/download/v$(DINIT_VERSION)
DINIT_LICENSE = Apache-2.0
DINIT_LICENSE_FILES = LICENSE

# Installed after busybox, so that dinit's shutdown, halt, reboot and
# poweroff replace busybox's applets of the same names.
DINIT_DEPENDENCIES = $(if $(BR2_PACKAGE_BUSYBOX),busybox)

# dinit's configure is hand-written: --platform marks a cross build, and
# the *_EXTRA variables add to its own flags instead of replacing them.
DINIT_CONF_OPTS = \
	--platform=Linux \
	--prefix=/usr \
	--exec-prefix=/usr \
	--sbindir=/sbin \
	--mandir=/usr/share/man \
	--syscontrolsocket=/run/dinitctl \
	--enable-shutdown \
	--enable-cgroups \
	--disable-strip \
	CXX="$(TARGET_CXX)" \
	CXX_FOR_BUILD="$(HOSTCXX)" \
	CXXFLAGS_EXTRA="$(TARGET_CXXFLAGS)" \
	LDFLAGS_EXTRA="$(TARGET_LDFLAGS)"

ifeq ($(BR2_PACKAGE_LIBCAP),y)
DINIT_DEPENDENCIES += libcap
DINIT_CONF_OPTS += --enable-capabilities
else
DINIT_CONF_OPTS += --disable-capabilities
endif

define DINIT_CONFIGURE_CMDS
	cd $(@D) && $(TARGET_MAKE_ENV) ./configure $(DINIT_CONF_OPTS)
endef

define DINIT_BUILD_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D)
endef

define DINIT_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) DESTDIR=$(TARGET_DIR) install
	mkdir -p $(TARGET_DIR)/etc/dinit.d
endef

ifeq ($(BR2_INIT_DINIT),y)
define DINIT_INSTALL_INIT
	ln -sf dinit $(TARGET_DIR)/sbin/init
endef
DINIT_POST_INSTALL_TARGET_HOOKS += DINIT_INSTALL_INIT
endif

$(eval $(generic-package))
