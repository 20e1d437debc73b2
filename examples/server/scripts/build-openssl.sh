#!/bin/sh
# OpenSSL has its own Configure script.
set -e
./Configure --prefix="$out" --openssldir=/etc/ssl no-tests shared
make -j"${NEXIS_BUILD_CORES:-1}"
make install_sw
