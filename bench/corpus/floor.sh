#!/bin/sh
# floor.sh: builds the corpus's release tarballs the way a person would
# by hand, with the same flags as realise/testdata/corpus/config.toml,
# one after another with make -j$JOBS, into $PREFIX/<name>: no nexis, no
# sandbox, no store, no compiler wrapper. bench/corpus/run.sh runs it in
# a chroot of the same stdenv the builds use, as the floor of the corpus
# test's times.
#
#   floor.sh SRC PREFIX   SRC holds the .orig tarballs and demo/
#
# Prints "name seconds" per package on stdout.
set -eu
src=$1
prefix=$2
jobs=${JOBS:-2}
work=${TMPDIR:-/tmp}/floor.$$
mkdir -p "$work" "$prefix"
now() { date +%s.%N; }

# unpack FILE: extracted as the builder does; cd into its one top directory.
unpack() {
	rm -rf "$work/src" && mkdir "$work/src"
	tar -xf "$1" -C "$work/src"
	cd "$work/src"/*
}

# deps NAME...: the dependencies on the compiler's and tools' paths.
deps() {
	CPATH='' LIBRARY_PATH='' PKG_CONFIG_PATH='' CMAKE_PREFIX_PATH=''
	for d in "$@"; do
		CPATH=$prefix/$d/include${CPATH:+:$CPATH}
		LIBRARY_PATH=$prefix/$d/lib${LIBRARY_PATH:+:$LIBRARY_PATH}
		PKG_CONFIG_PATH=$prefix/$d/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
		CMAKE_PREFIX_PATH=$prefix/$d${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
	done
	LD_LIBRARY_PATH=$LIBRARY_PATH
	export CPATH LIBRARY_PATH PKG_CONFIG_PATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH
}

configure_make() {
	name=$1
	shift
	./configure --prefix="$prefix/$name" "$@" >"$work/$name.log" 2>&1
	make -j"$jobs" >>"$work/$name.log" 2>&1
	make install >>"$work/$name.log" 2>&1
}

cmake_build() {
	name=$1
	shift
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX="$prefix/$name" -DCMAKE_INSTALL_LIBDIR=lib \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_SKIP_RPATH=ON "$@" >"$work/$name.log" 2>&1
	cmake --build build -j "$jobs" >>"$work/$name.log" 2>&1
	cmake --install build >>"$work/$name.log" 2>&1
}

timed() {
	name=$1
	shift
	t0=$(now)
	("$@") || { echo "floor: $name failed; its log:" >&2; tail -n 25 "$work/$name.log" >&2; exit 1; }
	echo "$name $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')"
}

zlib() { deps; unpack "$src/zlib_1.2.13.dfsg.orig.tar.bz2"; configure_make zlib; }
pcre2() { deps; unpack "$src/pcre2_10.42.orig.tar.gz"; configure_make pcre2 --disable-static --enable-jit; }
nginx() {
	deps zlib pcre2
	unpack "$src/nginx_1.22.1.orig.tar.gz"
	configure_make nginx --with-pcre-jit --with-http_gzip_static_module \
		--http-client-body-temp-path=/var/lib/nginx/body --http-proxy-temp-path=/var/lib/nginx/proxy \
		--http-fastcgi-temp-path=/var/lib/nginx/fastcgi --http-uwsgi-temp-path=/var/lib/nginx/uwsgi \
		--http-scgi-temp-path=/var/lib/nginx/scgi
}
libpng() { deps zlib; unpack "$src/libpng1.6_1.6.39.orig.tar.gz"; configure_make libpng --disable-static; }
jsonc() { deps; unpack "$src/json-c_0.16.orig.tar.gz"; cmake_build json-c -DBUILD_STATIC_LIBS=OFF -DBUILD_TESTING=OFF; }
lua() {
	deps
	unpack "$src/lua5.4_5.4.4.orig.tar.gz"
	make -j"$jobs" linux >"$work/lua.log" 2>&1
	make INSTALL_TOP="$prefix/lua" install >>"$work/lua.log" 2>&1
}
expat() {
	deps
	unpack "$src/expat_2.5.0.orig.tar.gz"
	cd expat
	autoreconf -fi >"$work/expat.log" 2>&1
	configure_make expat --without-docbook --disable-static
}
demo_jsonc() {
	deps json-c
	rm -rf "$work/jsonc" && cp -R "$src/demo/jsonc" "$work/jsonc" && cd "$work/jsonc"
	cmake_build demo-jsonc
}
demo_xmlpng() {
	deps expat libpng zlib
	rm -rf "$work/xmlpng" && cp -R "$src/demo/xmlpng" "$work/xmlpng" && cd "$work/xmlpng"
	make -j"$jobs" >"$work/demo-xmlpng.log" 2>&1
	make PREFIX="$prefix/demo-xmlpng" install >>"$work/demo-xmlpng.log" 2>&1
}

timed zlib zlib
timed pcre2 pcre2
timed nginx nginx
timed libpng libpng
timed json-c jsonc
timed lua lua
timed expat expat
timed demo-jsonc demo_jsonc
timed demo-xmlpng demo_xmlpng
rm -rf "$work"
