################################################################################
#
# nexis-localedef
#
################################################################################

# Nothing to download: localedef is built with glibc (locale/Makefile's
# "others"), and the sources are glibc's localedata.
NEXIS_LOCALEDEF_SOURCE =
NEXIS_LOCALEDEF_VERSION = $(GLIBC_VERSION)
# The files are glibc's, under its licenses.
NEXIS_LOCALEDEF_LICENSE = $(GLIBC_LICENSE)
NEXIS_LOCALEDEF_DEPENDENCIES = glibc

# Charmaps are gzipped, as glibc's own install does: localedef reads
# them through gzip (busybox's), and they take a quarter of the space.
define NEXIS_LOCALEDEF_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(GLIBC_DIR)/build/locale/localedef \
		$(TARGET_DIR)/usr/bin/localedef
	rm -rf $(TARGET_DIR)/usr/share/i18n
	mkdir -p $(TARGET_DIR)/usr/share/i18n/charmaps \
		$(TARGET_DIR)/usr/lib/locale
	cp -a $(GLIBC_DIR)/localedata/locales $(TARGET_DIR)/usr/share/i18n/
	for f in $(GLIBC_DIR)/localedata/charmaps/*; do \
		gzip -9n -c $$f > $(TARGET_DIR)/usr/share/i18n/charmaps/$${f##*/}.gz || exit 1; \
	done
endef

$(eval $(generic-package))
