#!/usr/bin/env bash
# bench/gc/run.sh: nexis gc and Nix 2.8's nix-store --gc on the same
# generated workload, with the rm -rf floor of each store, in one run; one
# table at the end.
#
#   bench/gc/run.sh                      10k at 50% garbage; 1,000 garbage in 10k
#   bench/gc/run.sh --full               the issue's sizes: 10k and 100k at 50%,
#                                        1,000 garbage in 10k, 100k and 300k
#   bench/gc/run.sh --half "10000" --flat "10000 100000" [--nix-flat "100000"]
#
# Workloads come from ../shared/bench/nixgc/gen.py (default options, seed 1;
# set NIXGC to its directory if it is elsewhere). "half" uses gen.py's own
# roots (its live/dead split, ~50% garbage); "flat" makes the last
# --flat-garbage paths (1,000) garbage and roots every other path nothing
# else refers to (bench/gc/main.go, `gcbench roots`). For each workload and
# each store, a fresh copy of the registered store (cp -a) is made before
# every timed command:
#   nix gc       nix-store --gc (NIX_REMOTE=local, as ../shared/bench/nixgc/bench.sh)
#   nix floor    rm -rf of the dead paths in /nix/store
#   nexis gc     nexis gc (the wall time it makes its caller wait), and the time
#                until its background worker has emptied the trash
#   nexis floor  rm -rf of what nexis deletes: the dead paths' directories and
#                the pool entries only they used
# Before each timed command: sync, then a pause so that the previous copy's
# writeback and deletions are over. The nexis copy's roots are added in one
# batch, after which its database is settled (flushed, compactions done:
# GC_SETTLE=false leaves the batch in the log and the ingest's compactions
# pending, for the next command to replay and run). NEXIS_BIN times another
# nexis binary on the same setup.
#
# It needs root and Debian's nix-bin (scripts/install-deps --bench), and it
# WIPES /nix/store and the Nix database (as bench.sh does). Scratch space:
# $GC_WORK (default /var/tmp/gcbench; on the same filesystem as /nix) holds
# the nexis stores; /nix/nixgc-work the generated trees. Generated data is
# kept between runs and reused; the timed steps always start from fresh
# copies. Results: $GC_WORK/results-<date>.jsonl and the table on stdout.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
# ../shared beside the repository; a worktree finds it beside the main one.
NIXGC=${NIXGC:-$repo/../shared/bench/nixgc}
if [ ! -d "$NIXGC" ] && common=$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null); then
	NIXGC=$(dirname "$common")/../shared/bench/nixgc
fi
WORK=${GC_WORK:-/var/tmp/gcbench}
NIXWORK=${NIXWORK:-/nix/nixgc-work}
PAUSE=${GC_PAUSE:-5}
half="10000" flat="10000" nixflat="10000 100000" flatgarbage=1000
while [ $# -gt 0 ]; do
	case "$1" in
	--full) half="10000 100000" flat="10000 100000 300000" ;;
	--half) half=$2; shift ;;
	--flat) flat=$2; shift ;;
	--nix-flat) nixflat=$2; shift ;;
	--flat-garbage) flatgarbage=$2; shift ;;
	*) echo "usage: $0 [--full] [--half SIZES] [--flat SIZES] [--nix-flat SIZES] [--flat-garbage N]" >&2; exit 2 ;;
	esac
	shift
done
[ -f "$NIXGC/gen.py" ] || { echo "run.sh: no gen.py in $NIXGC (set NIXGC)" >&2; exit 1; }
command -v nix-store >/dev/null || { echo "run.sh: nix-store missing: scripts/install-deps --bench" >&2; exit 1; }
export NIX_REMOTE=local
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
cd "$repo"
make -s bin/nexis >/dev/null
"$GO" build -o bin/gcbench ./bench/gc
nexis=${NEXIS_BIN:-$repo/bin/nexis} gcbench=$repo/bin/gcbench
mkdir -p "$WORK"
results=$WORK/results-$(date -u +%Y%m%dT%H%M%S).jsonl
: >"$results"

log() { echo "[$(date +%T)] $*" >&2; }
settle() { sync; sleep "$PAUSE"; }

# The generated tree and manifest of size N; with Nix, also its registered
# canonical store and database snapshot (bench.sh setup + ingest-hashed).
prepare() {
	local n=$1 nix=$2 w=$NIXWORK/N$1
	if [ "$nix" = 1 ] && [ ! -d "$w/db-snap" ]; then
		log "preparing N=$n for Nix (gen.py, nix-store --register-validity)"
		WORK=$w RES=$WORK/nixprep-N$n bash "$NIXGC/bench.sh" "$n" 1 setup ingest-hashed >/dev/null
	elif [ ! -f "$w/meta/manifest.jsonl" ]; then
		log "generating N=$n (gen.py)"
		mkdir -p "$w"
		python3 "$NIXGC/gen.py" --n "$n" --seed 1 build --out "$w/meta" --store-dir /nix/store --populate "$w/canon" >/dev/null
	fi
	if [ ! -d "$WORK/nexis/N$n/canon" ]; then
		log "ingesting N=$n into a nexis store"
		mkdir -p "$WORK/nexis/N$n"
		"$gcbench" ingest -manifest "$w/meta/manifest.jsonl" -tree "$w/canon" -root "$WORK/nexis/N$n/canon.tmp"
		mv "$WORK/nexis/N$n/canon.tmp" "$WORK/nexis/N$n/canon"
	fi
}

# result LABEL WHAT SECONDS: one line of the table's input.
result() { printf '{"label":"%s","what":"%s","wall_seconds":%s}\n' "$1" "$2" "$3" >>"$results"; }

timed() { # timed CMD...: runs it, prints its wall seconds
	local t0 t1
	t0=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	t1=$(date +%s.%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

nix_fresh() {
	local w=$NIXWORK/N$1
	rm -rf /nix/store /nix/var/nix/db /nix/var/nix/gcroots/nixgc /nix/var/nix/temproots/*
	cp -a "$w/canon" /nix/store
	chown root:nixbld /nix/store
	chmod 1775 /nix/store
	cp -a "$w/db-snap" /nix/var/nix/db
}

# The database files are read once before a timed command, as the tree
# just copied is in the page cache: both sides start warm (the copies of
# the large stores otherwise push parts of either database out).
warm() { find "$@" -type f -exec cat {} + >/dev/null; }

nix_roots() {
	mkdir -p /nix/var/nix/gcroots/nixgc
	while read -r name target; do
		ln -s "/nix/store/$target" "/nix/var/nix/gcroots/nixgc/$name"
	done <"$1"
}

nexis_fresh() { # nexis_fresh N DIR ROOTSDIR
	rm -rf "$2"
	cp -a "$WORK/nexis/N$1/canon" "$2"
	"$gcbench" roots -manifest "$NIXWORK/N$1/meta/manifest.jsonl" -garbage "$4" -out "$3" -root "$2" -settle="${GC_SETTLE:-true}" 2>/dev/null
}

workload() { # workload LABEL N GARBAGE(0: gen.py's split) NIX(0|1)
	local label=$1 n=$2 garbage=$3 nix=$4 wl=$WORK/wl/$1 t
	prepare "$n" "$nix"
	"$gcbench" roots -manifest "$NIXWORK/N$n/meta/manifest.jsonl" -garbage "$garbage" -out "$wl"
	sort "$wl/live.txt" >"$wl/live.sorted"
	sed "s|^|/nix/store/|" "$wl/dead.txt" >"$wl/dead-nix.txt"
	if [ "$nix" = 1 ]; then
		log "$label: nix-store --gc"
		nix_fresh "$n"
		nix_roots "$wl/roots.txt"
		warm /nix/var/nix/db
		settle
		t=$(timed nix-store --gc)
		cmp -s <(ls /nix/store | grep -v '^\.links$' | sort) "$wl/live.sorted" || { echo "run.sh: nix-store --gc did not leave exactly the live set" >&2; exit 1; }
		result "$label" "nix gc" "$t"
		log "$label: Nix floor"
		nix_fresh "$n"
		settle
		t=$(timed xargs -a "$wl/dead-nix.txt" -d '\n' rm -rf --)
		result "$label" "nix floor" "$t"
		rm -rf /nix/store
	fi
	log "$label: nexis gc"
	nexis_fresh "$n" "$WORK/run" "$wl" "$garbage"
	warm "$WORK/run/store/.nexis/db"
	settle
	"$gcbench" gc -root "$WORK/run" -dead "$wl/dead.txt" -live "$wl/live.txt" -nexis "$nexis" -label "$label" -verify >>"$results"
	log "$label: nexis floor"
	nexis_fresh "$n" "$WORK/run" "$wl" "$garbage"
	"$gcbench" floorlist -root "$WORK/run" -dead "$wl/dead.txt" -out "$wl/floor.list"
	settle
	t=$(timed sh -c "xargs -0 rm -rf < '$wl/floor.list'")
	result "$label" "nexis floor" "$t"
	rm -rf "$WORK/run"
}

for n in $half; do
	workload "$((n / 1000))k, 50%" "$n" 0 1
done
for n in $flat; do
	nix=0
	case " $nixflat " in *" $n "*) nix=1 ;; esac
	workload "$((n / 1000))k, $flatgarbage dead" "$n" "$flatgarbage" "$nix"
done
log "results: $results"
echo
echo "N paths, gen.py options: defaults, seed 1; $(uname -r), $(nproc) cores, $(findmnt -no FSTYPE,OPTIONS -T "$WORK")"
"$gcbench" table "$results"
