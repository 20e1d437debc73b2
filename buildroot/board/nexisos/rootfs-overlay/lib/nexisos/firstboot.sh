#!/bin/sh
# First boot (the dinit service "firstboot"): make generation 1 from
# /etc/nexis/config.toml. --force lets nexis take over the /etc entries
# the image shipped (hostname, hosts, ...) that the config now manages.
set -u

if [ -e /var/lib/nexis/profiles/system ]; then
	exit 0
fi
if ! grep -q ' /store xfs ' /proc/mounts; then
	echo "firstboot: /store is not the XFS store disk; not switching" >&2
	exit 1
fi
exec /usr/bin/nexis switch --force /etc/nexis/config.toml
