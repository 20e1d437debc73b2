#!/bin/sh
# Early boot (the dinit service "early"): mount what /etc/fstab lists,
# make / writable, set the hostname, load the SELinux policy.
set -u

mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -o remount,rw / || echo "early: / stays read-only" >&2
# Everything else in /etc/fstab: /run, /tmp, the store (XFS) and /home
# (ext4). A missing store disk is reported, not fatal: the console must
# still come up.
mount -a || echo "early: mount -a failed: is the store disk (LABEL=nexis-store) attached?" >&2
mkdir -p /run/nexis /var/lib/nexis

if [ -s /etc/hostname ]; then
	hostname -F /etc/hostname
fi

# SELinux: the policy refpolicy installed, in the mode /etc/selinux/config
# names (permissive in these images). load_policy is policycoreutils' or,
# on riscv64, busybox's.
PATH=/usr/sbin:/sbin:/usr/bin:/bin
if command -v load_policy >/dev/null && [ -f /etc/selinux/config ] &&
	! grep -q '^SELINUX=disabled' /etc/selinux/config; then
	load_policy -i || echo "early: load_policy failed" >&2
	if command -v restorecon >/dev/null; then
		restorecon -R /store /home /var/lib/nexis 2>/dev/null || true
	fi
fi
exit 0
