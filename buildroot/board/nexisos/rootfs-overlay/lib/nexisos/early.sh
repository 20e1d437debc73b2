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

# The generation this boot runs. /run is a fresh tmpfs, so
# /run/current-system (the profile every login shell's PATH goes
# through) is remade by activating the current generation again; a boot
# menu entry of another generation (nexis.generation=N on the kernel
# command line, which nexis' GRUB menu passes) is a boot-time rollback
# to it. Services are only written here: dinit starts the generation's
# "boot" once early is done.
gen=
read -r cmdline </proc/cmdline
for arg in $cmdline; do
	case "$arg" in
	nexis.generation=*) gen=${arg#nexis.generation=} ;;
	esac
done
if [ -e /var/lib/nexis/profiles/system ]; then
	cur=$(nexis generations list | sed -n 's/^\* *\([0-9][0-9]*\) .*/\1/p')
	if [ -n "$gen" ] && [ "$gen" != "$cur" ]; then
		echo "early: the boot menu picked generation $gen (current: $cur): rolling back to it" >&2
		nexis switch --live=false --generation "$gen" || echo "early: nexis switch --generation $gen failed" >&2
	else
		nexis activate --live=false || echo "early: nexis activate failed" >&2
	fi
fi
exit 0
