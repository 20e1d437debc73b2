#!/bin/sh
# Buildroot post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT), run with
# $1 = TARGET_DIR after the overlay is copied: mount points, state
# directories, the image's stdenv, and a check that the image can boot
# into nexis.
set -eu

target=$1
board=$(dirname "$0")
arch=$(sed -n 's/^BR2_ARCH="\(.*\)"$/\1/p' "$BR2_CONFIG")

# Mount points of the store (XFS) and /home (ext4), and nexis' state.
mkdir -p "$target/store" "$target/home" "$target/var/lib/nexis" "$target/var/log"
chmod 0755 "$target/store"

# The image's toolchain as a nexis stdenv, in the root filesystem
# (/usr/share/nexis), when it has a native compiler (stdenv.sh says why
# Buildroot alone has none). The first boot registers and roots it
# (lib/nexisos/firstboot.sh), and the image's config names it, so
# `nexis build` compiles with no network.
rm -rf "$target/usr/share/nexis"
sha=$("$board/stdenv.sh" "$target/usr/share/nexis" "$arch-linux")
config=$target/etc/nexis/config.toml
if [ -n "$sha" ] && ! grep -q '^\[nexis\.stdenv\]' "$config"; then
	url=$(sed -n 's/.*"url": "\([^"]*\)".*/\1/p' "$target/usr/share/nexis/stdenv-$arch-linux.json")
	cat >>"$config" <<TOML

# The image's own toolchain (Buildroot's C library, headers and userland,
# and the native gcc of nexis-native-gcc), shipped in
# /usr/share/nexis and registered at the first boot.
[nexis.stdenv]
version = "nexisos"
url = "$url"
sha256 = "$sha"
TOML
fi

for f in sbin/init sbin/dinit usr/bin/nexis usr/bin/nexis-sandbox-init etc/nexis/config.toml lib/dinit.d/nexisos; do
	if [ ! -e "$target/$f" ]; then
		echo "post-build: /$f is missing from the image" >&2
		exit 1
	fi
done
