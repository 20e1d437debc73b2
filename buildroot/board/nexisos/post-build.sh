#!/bin/sh
# Buildroot post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT), run with
# $1 = TARGET_DIR after the overlay is copied: mount points, state
# directories, and a check that the image can boot into nexis.
set -eu

target=$1

# Mount points of the store (XFS) and /home (ext4), and nexis' state.
mkdir -p "$target/store" "$target/home" "$target/var/lib/nexis" "$target/var/log"
chmod 0755 "$target/store"

for f in sbin/init sbin/dinit usr/bin/nexis usr/bin/nexis-sandbox-init etc/nexis/config.toml lib/dinit.d/nexisos; do
	if [ ! -e "$target/$f" ]; then
		echo "post-build: /$f is missing from the image" >&2
		exit 1
	fi
done
