#!/usr/bin/env bash
# run.sh: what nexis costs over the floor when it builds real software.
#
# Builds the corpus (realise/testdata/corpus) twice, one package at a
# time with every core each:
#   floor  bench/corpus/floor.sh, a plain shell script with the same
#          flags, in a chroot of the same stdenv (core, cmake and
#          autotools layers unpacked together), no sandbox, no store
#   nexis  the corpus test (TestCorpus, NEXIS_CORPUS_JOBS=1): evaluation,
#          fetches from loopback, one sandbox per build, the compiler
#          wrapper, ingest into a fresh store, then running the results
# and prints each package's seconds side by side, with the whole
# processes' wall, user and system times (/usr/bin/time).
#
#   scripts/make-stdenv && scripts/fetch-corpus
#   ROUNDS=2 bench/corpus/run.sh
#
# Needs root (the chroot and the sandbox).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
stdenv=${NEXIS_STDENV_DIR:-$repo/.cache/stdenv}
corpus=$(scripts/fetch-corpus --print-dir)
case "$(uname -m)" in
x86_64) system=x86_64-linux ;;
aarch64) system=aarch64-linux ;;
*) echo "run.sh: no stdenv for $(uname -m)" >&2; exit 1 ;;
esac
work=$(mktemp -d /tmp/nexis-corpus-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

root=$work/root
mkdir -p "$root"
for layer in core cmake autotools; do
	tar -xzf "$stdenv/stdenv-$layer-$system.tar.gz" -C "$root" --strip-components=1
done
mkdir -p "$root/dev" "$root/proc" "$root/tmp" "$root/src" "$root/prefix"
for d in bin sbin lib lib64; do
	[ -e "$root/usr/$d" ] && ln -s "usr/$d" "$root/$d"
done
cp "$corpus"/*.orig.tar.* "$root/src/"
cp -R realise/testdata/corpus/demo "$root/src/"
cp bench/corpus/floor.sh "$root/src/"

fmt='%e %U %S'
floor() {
	# shellcheck disable=SC2016 # expanded by the inner sh
	/usr/bin/time -f "$fmt" -o "$work/floor.time.$1" unshare --mount --fork sh -c '
		mount --rbind /dev "$1/dev"
		mount -t proc proc "$1/proc"
		rm -rf "$1/prefix" && mkdir "$1/prefix"
		exec chroot "$1" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/tmp TMPDIR=/tmp JOBS="$2" /bin/sh /src/floor.sh /src /prefix
	' sh "$root" "$(nproc)" >"$work/floor.times.$1"
}
go test -c -tags realworld -o "$work/realise.test" ./realise
nexis() {
	(cd realise && NEXIS_CORPUS_DIR="$corpus" NEXIS_CORPUS_TIMES="$work/nexis.times.$1" NEXIS_CORPUS_JOBS=1 \
		/usr/bin/time -f "$fmt" -o "$work/nexis.time.$1" "$work/realise.test" -test.run '^TestCorpus$' -test.count=1 >"$work/nexis.log" 2>&1) ||
		{ tail -n 50 "$work/nexis.log" >&2; exit 1; }
}

# Rounds alternate which goes first, so a machine that gets busier or
# quieter during the run favours neither; each figure is the least of
# its rounds.
rounds=${ROUNDS:-2}
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then order="floor nexis"; else order="nexis floor"; fi
	for what in $order; do
		echo "run.sh: round $r: $what" >&2
		"$what" "$r"
	done
done

for r in $(seq 1 "$rounds"); do
	# One line per figure: "name<TAB>seconds"; the whole processes' as
	# wall/user/sys lines.
	awk '{ print $1 "\t" $2 }' "$work/floor.times.$r"
	read -r e u sy <"$work/floor.time.$r"
	printf 'whole process, wall\t%s\nwhole process, user\t%s\nwhole process, sys\t%s\n' "$e" "$u" "$sy"
done >"$work/floor.all"
for r in $(seq 1 "$rounds"); do
	cat "$work/nexis.times.$r"
	read -r e u sy <"$work/nexis.time.$r"
	printf 'whole process, wall\t%s\nwhole process, user\t%s\nwhole process, sys\t%s\n' "$e" "$u" "$sy"
done >"$work/nexis.all"

awk -F '\t' -v rounds="$rounds" '
	function keep(m, k, v) { if (!(k in m) || v + 0 < m[k] + 0) m[k] = v }
	FNR == 1 { file++ }
	file == 1 { keep(floor, $1, $2); if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 }; next }
	{ keep(nexis, $1, $2) }
	END {
		printf "least of %d rounds, seconds\n", rounds
		printf "%-24s %9s %9s %7s\n", "", "floor", "nexis", "ratio"
		for (i = 1; i <= n; i++) {
			p = order[i]
			if (p ~ /^whole/) continue
			fs += floor[p]; ns += nexis[p]
			printf "%-24s %9.2f %9.2f %7.2f\n", p, floor[p], nexis[p], nexis[p] / floor[p]
		}
		printf "%-24s %9.2f %9.2f %7.2f\n", "sum of the builds", fs, ns, ns / fs
		for (k in nexis) if (k ~ /^all/) printf "%-24s %9s %9.2f\n", "nexis build, wall", "", nexis[k]
		printf "%-24s %9s %9.3f\n", "nexis evaluation", "", nexis["evaluation"]
		for (i = 1; i <= n; i++) {
			p = order[i]
			if (p !~ /^whole/) continue
			printf "%-24s %9.2f %9.2f %7.2f\n", p, floor[p], nexis[p], nexis[p] / floor[p]
		}
	}' "$work/floor.all" "$work/nexis.all"
