#!/usr/bin/env bash
# stdenv.sh OUTDIR SYSTEM: packs the image's toolchain as a nexis stdenv
# (docs/build-model.md), in the layout scripts/make-stdenv gives Debian's
# packages, so `nexis build` works on NexisOS with no network: it writes
# OUTDIR/stdenv-core-SYSTEM.tar.gz and OUTDIR/stdenv-SYSTEM.json (the
# shape of [nexis] stdenv; `nexis store add-stdenv` registers it).
#
# The tree is the image's own userland and C library (TARGET_DIR: the
# shell, coreutils or busybox, make, sed, grep, awk, tar and the
# compressors the defconfig selects), the C library's headers and
# link-time files (STAGING_DIR), and a native compiler and binutils for
# the target: Buildroot builds cross toolchains only (it dropped its
# target gcc package), so NEXIS_NATIVE_TOOLCHAIN names a directory holding
# one (usr/bin/gcc, usr/bin/ld, usr/lib/gcc/...; a Bootlin "native"
# toolchain, or gcc and binutils built with --host=<target>). Without it
# this script says so and makes nothing: a stdenv without a compiler would
# only fail later.
#
# Run by post-image.sh with Buildroot's environment (TARGET_DIR,
# STAGING_DIR, BR2_EXTERNAL_NEXISOS_PATH); `make br-check` runs it on a
# stand-in tree offline.
set -euo pipefail

out=$1
system=$2
version=${NEXIS_STDENV_VERSION:-nexisos}
pack=${NEXIS_PACK_STDENV:-$BR2_EXTERNAL_NEXISOS_PATH/../scripts/pack-stdenv}
say() { echo "stdenv: $*" >&2; }

if [ -z "${NEXIS_NATIVE_TOOLCHAIN:-}" ]; then
	say "no NEXIS_NATIVE_TOOLCHAIN (a gcc and binutils that run on $system): the image ships no stdenv, and builds from source need one from [nexis] stdenv"
	exit 0
fi
for f in usr/bin/gcc usr/bin/ld; do
	[ -e "$NEXIS_NATIVE_TOOLCHAIN/$f" ] || { say "$NEXIS_NATIVE_TOOLCHAIN/$f is missing: not a native toolchain"; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/stdenv-core
mkdir -p "$tree"
# The image's userland and libc, then the headers and link-time files,
# then the compiler: a later tree wins where two hold the same file.
cp -a "$TARGET_DIR/." "$tree/"
mkdir -p "$tree/usr/include" "$tree/usr/lib"
cp -a "$STAGING_DIR/usr/include/." "$tree/usr/include/"
find "$STAGING_DIR/usr/lib" "$STAGING_DIR/lib" -maxdepth 1 \( -name '*.o' -o -name '*.a' -o -name 'lib*.so' \) \
	-exec cp -a {} "$tree/usr/lib/" \; 2>/dev/null || true
cp -a "$NEXIS_NATIVE_TOOLCHAIN/." "$tree/"
[ -e "$tree/usr/bin/cc" ] || ln -s gcc "$tree/usr/bin/cc"
# The image's own state is not the toolchain's.
rm -rf "${tree:?}/store" "${tree:?}/home" "${tree:?}/var" "${tree:?}/etc" "${tree:?}/dev" "${tree:?}/proc" "${tree:?}/sys" "${tree:?}/run" "${tree:?}/tmp"

file=stdenv-core-$system.tar.gz
sha=$("$pack" "$tree" "$out/$file")
printf '{\n  "version": "%s",\n  "system": "%s",\n  "name": "stdenv-%s", "file": "%s", "url": "file:///usr/share/nexis/%s", "sha256": "%s",\n  "tools": {}\n}\n' \
	"$version" "$system" "$version" "$file" "$file" "$sha" >"$out/stdenv-$system.json"
say "$out/$file: sha256 $sha"
