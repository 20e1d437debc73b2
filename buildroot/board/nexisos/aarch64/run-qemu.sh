#!/bin/sh
# Boots the aarch64 image on QEMU's virt machine: the kernel directly,
# then three virtio-blk-pci disks in this order: /dev/vda the root
# (ext4), the store (XFS, LABEL=nexis-store), /home (ext4,
# LABEL=nexis-home). ssh: port 2222 on localhost. Extra arguments go to
# QEMU. Uses Buildroot's host QEMU when it was built.
set -eu
cd "$(dirname "$0")"
PATH=$(pwd)/../host/bin:$PATH
exec qemu-system-aarch64 \
	-M virt -cpu cortex-a53 -m 2048 -smp 2 \
	-kernel Image \
	-append "rootwait root=/dev/vda console=ttyAMA0" \
	-drive file=rootfs.ext4,if=none,format=raw,id=root \
	-device virtio-blk-pci,drive=root \
	-drive file=store.xfs,if=none,format=raw,id=store \
	-device virtio-blk-pci,drive=store \
	-drive file=home.ext4,if=none,format=raw,id=home \
	-device virtio-blk-pci,drive=home \
	-netdev user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22 \
	-device virtio-net-pci,netdev=net0 \
	-nographic "$@"
