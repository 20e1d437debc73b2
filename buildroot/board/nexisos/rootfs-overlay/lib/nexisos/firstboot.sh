#!/bin/sh
# First boot (the dinit service "firstboot"): make generation 1 from
# /etc/nexis/config.toml. --force lets nexis take over the /etc entries
# the image shipped (hostname, hosts, fstab, ...) that the config now
# manages. --live=false writes the services without starting them: the
# service "generation" starts the generation's "boot" after this. The
# file systems the config declares are mounted by the switch (the root
# is /) where that is safe.
set -u

if [ -e /var/lib/nexis/profiles/system ]; then
	exit 0
fi
if ! grep -q ' /store xfs ' /proc/mounts; then
	echo "firstboot: /store is not the XFS store disk; not switching" >&2
	exit 1
fi
# The image's stdenv (board/nexisos/stdenv.sh), registered and rooted
# before anything is built: the config names it, and nothing fetches it.
for manifest in /usr/share/nexis/stdenv-*.json; do
	[ -e "$manifest" ] || continue
	name=$(sed -n 's/.*"name": "\([^"]*\)".*/\1/p' "$manifest")
	file=$(sed -n 's/.*"file": "\([^"]*\)".*/\1/p' "$manifest")
	sha=$(sed -n 's/.*"sha256": "\([^"]*\)".*/\1/p' "$manifest")
	added=$(/usr/bin/nexis store add-fixed --unpack --name "$name" "/usr/share/nexis/$file") || added=""
	path=$(printf '%s\n' "$added" | cut -f1)
	if [ "$(printf '%s\n' "$added" | cut -f2)" != "sha256:$sha" ] ||
		! /usr/bin/nexis store add-root image-stdenv "$path" >/dev/null; then
		echo "firstboot: registering the image's stdenv ($manifest) failed: $added" >&2
		exit 1
	fi
done
exec /usr/bin/nexis switch --live=false --force /etc/nexis/config.toml
