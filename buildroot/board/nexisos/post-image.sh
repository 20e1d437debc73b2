#!/bin/sh
# Buildroot post-image script (BR2_ROOTFS_POST_IMAGE_SCRIPT), run with
# $1 = BINARIES_DIR: makes the store disk (XFS, mkfs.xfs -m reflink=1) and
# the home disk (ext4), on x86_64 the EFI disk image (GRUB + the root, store
# and home partitions), and images/run-qemu.sh for `make run-qemu`.
set -eu

images=$1
board=$(dirname "$0")
arch=$(sed -n 's/^BR2_ARCH="\(.*\)"$/\1/p' "$BR2_CONFIG")
mkfs_xfs=$HOST_DIR/sbin/mkfs.xfs
mkfs_ext4=$HOST_DIR/sbin/mkfs.ext4

# The store: XFS with reflinks, so nexis dedups identical files by sharing
# extents. Empty: the first boot's `nexis switch` fills it.
rm -f "$images/store.xfs"
truncate -s 2G "$images/store.xfs"
"$mkfs_xfs" -q -f -m crc=1,reflink=1 -L nexis-store "$images/store.xfs"

# Homes: ext4.
rm -f "$images/home.ext4"
"$mkfs_ext4" -q -F -L nexis-home "$images/home.ext4" 512M

case "$arch" in
x86_64)
	# GRUB (EFI) boots the kernel from the EFI system partition; the
	# root is found by its partition UUID.
	partuuid=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$images/efi-part/EFI/BOOT"
	sed "s/%PARTUUID%/$partuuid/g" "$board/x86_64/grub.cfg.in" >"$images/efi-part/EFI/BOOT/grub.cfg"
	sed "s/%PARTUUID%/$partuuid/g" "$board/x86_64/genimage.cfg.in" >"$images/genimage.cfg"
	support/scripts/genimage.sh -c "$images/genimage.cfg"
	;;
aarch64 | riscv64) ;;
*)
	echo "post-image: no NexisOS board for $arch" >&2
	exit 1
	;;
esac

install -m 0755 "$board/$arch/run-qemu.sh" "$images/run-qemu.sh"
echo "post-image: $images/run-qemu.sh boots the image ($arch)"
