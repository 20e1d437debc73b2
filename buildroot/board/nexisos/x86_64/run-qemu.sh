#!/bin/sh
# Boots the x86_64 image: UEFI (OVMF from EDK2) and GRUB from disk.img,
# whose partitions are the root (ext4), the store (XFS) and /home (ext4).
# The serial console is this terminal; ssh: port 2222 on localhost.
# Extra arguments go to QEMU. Uses Buildroot's host QEMU when it was built.
set -eu
cd "$(dirname "$0")"
PATH=$(pwd)/../host/bin:$PATH
exec qemu-system-x86_64 \
	-M pc -m 2048 -smp 2 \
	-bios OVMF.fd \
	-drive file=disk.img,format=raw,if=virtio \
	-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 \
	-device virtio-net-pci,netdev=net0 \
	-nographic "$@"
