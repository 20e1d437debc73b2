#!/usr/bin/env bash
# stdenv.sh OUTDIR SYSTEM: packs the image's toolchain as a nexis stdenv
# (docs/build-model.md), in the layout scripts/make-stdenv gives Debian's
# packages (scripts/pack-stdenv: merged /usr, relative links, no docs,
# sorted entries, mtime 0, owner 0:0), so `nexis build` works on NexisOS
# with no network: it writes OUTDIR/stdenv-core-SYSTEM.tar.gz and
# OUTDIR/stdenv-SYSTEM.json (the shape of [nexis] stdenv; `nexis store
# add-stdenv` registers it), and prints the tarball's sha256.
#
# The tree is the image's own userland and C library (TARGET_DIR: the
# shell, busybox's coreutils, sed, grep, awk, tar and compressors, make
# and binutils), the C library's headers and link-time files
# (STAGING_DIR: Buildroot's sysroot), and a native compiler for the
# target: Buildroot builds cross compilers only, so the package
# nexis-native-gcc builds one into BASE_DIR/nexis-native-toolchain, the
# default of NEXIS_NATIVE_TOOLCHAIN (usr/bin/gcc, usr/lib/gcc/...; a
# Bootlin "native" toolchain does as well). Without one this script says
# so and makes nothing: a stdenv without a compiler would only fail later.
#
# post-build.sh runs it with Buildroot's environment (TARGET_DIR,
# STAGING_DIR, BASE_DIR, BR2_EXTERNAL_NEXISOS_PATH) into
# TARGET_DIR/usr/share/nexis, so the stdenv is in the root filesystem;
# `make br-check` and realise's TestBuildrootStdenvFakeSysroot run it on
# stand-in trees offline.
set -euo pipefail

out=$1
system=$2
version=${NEXIS_STDENV_VERSION:-nexisos}
pack=${NEXIS_PACK_STDENV:-$BR2_EXTERNAL_NEXISOS_PATH/../scripts/pack-stdenv}
say() { echo "stdenv: $*" >&2; }

if [ -z "${NEXIS_NATIVE_TOOLCHAIN:-}" ] && [ -n "${BASE_DIR:-}" ] && [ -d "$BASE_DIR/nexis-native-toolchain" ]; then
	NEXIS_NATIVE_TOOLCHAIN=$BASE_DIR/nexis-native-toolchain
fi
if [ -z "${NEXIS_NATIVE_TOOLCHAIN:-}" ]; then
	say "no native compiler for $system (BR2_PACKAGE_NEXIS_NATIVE_GCC, or NEXIS_NATIVE_TOOLCHAIN): the image ships no stdenv, and builds from source need one from [nexis] stdenv"
	exit 0
fi
[ -e "$NEXIS_NATIVE_TOOLCHAIN/usr/bin/gcc" ] || { say "$NEXIS_NATIVE_TOOLCHAIN/usr/bin/gcc is missing: not a native toolchain"; exit 1; }

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
# The image's own state is not the toolchain's, nor is a stdenv packed
# into the image before (post-build runs again on the same TARGET_DIR).
rm -rf "${tree:?}/store" "${tree:?}/home" "${tree:?}/var" "${tree:?}/etc" "${tree:?}/dev" "${tree:?}/proc" "${tree:?}/sys" "${tree:?}/run" "${tree:?}/tmp" \
	"${tree:?}/usr/share/nexis"
# A build links with ld and assembles with as: binutils must be there,
# from the image (BR2_PACKAGE_BINUTILS_TARGET) or the toolchain.
for f in ld as; do
	[ -e "$tree/usr/bin/$f" ] || [ -e "$tree/bin/$f" ] || { say "no $f in the image or $NEXIS_NATIVE_TOOLCHAIN (BR2_PACKAGE_BINUTILS_TARGET): not a stdenv"; exit 1; }
done

file=stdenv-core-$system.tar.gz
mkdir -p "$out"
sha=$("$pack" "$tree" "$out/$file")
# The URL is never fetched on the image: its first boot registers the
# tarball and roots it. It must still be one evaluation accepts (a
# file:// URL outside the config directory is not), and says where a
# copy would be published (NEXIS_STDENV_URL).
url=${NEXIS_STDENV_URL:-https://stdenv.nexisos.invalid/$sha}/$file
printf '{\n  "version": "%s",\n  "system": "%s",\n  "name": "stdenv-%s", "file": "%s", "url": "%s", "sha256": "%s",\n  "tools": {}\n}\n' \
	"$version" "$system" "$version" "$file" "$url" "$sha" >"$out/stdenv-$system.json"
say "$out/$file: sha256 $sha"
echo "$sha"
