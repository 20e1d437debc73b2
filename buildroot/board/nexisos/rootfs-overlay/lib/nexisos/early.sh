#!/bin/sh
# Early boot (the dinit service "early"): make / writable, mount the
# image's file systems and what /etc/fstab lists, set the hostname, load
# the SELinux policy, activate the generation this boot runs.
set -u

# mounted DIR: something is mounted on DIR.
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }

mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -o remount,rw / || echo "early: / stays read-only" >&2
# The image's own mounts, whatever /etc/fstab says: once a generation
# declares [[filesystems]], /etc/fstab is the config's and lists only
# what it declares.
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620,ptmxmode=0666 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs -o mode=0777 tmpfs /dev/shm
mounted /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
# The store, which nexis reads every generation from. A missing store
# disk is reported, not fatal: the console must still come up.
mounted /store || mount -t xfs LABEL=nexis-store /store ||
	echo "early: the store is not mounted: is its disk (LABEL=nexis-store) attached?" >&2
# Everything else /etc/fstab lists (mounted entries are skipped): /home
# on the image's own, the current generation's [[filesystems]] after it.
mount -a || echo "early: mount -a of /etc/fstab failed (above)" >&2
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
# to it. The activation mounts the file systems of the generation's
# /etc/fstab that are not mounted yet where that is safe, and mount -a
# then mounts the rest, as boot does with any /etc/fstab. Services are
# only written here: the service "generation" starts the generation's
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
mount -a || echo "early: mount -a of the generation's /etc/fstab failed (above)" >&2
exit 0
