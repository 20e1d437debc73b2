#!/usr/bin/env bash
# Store benchmarks, run from anywhere in the repository:
#
#   bench/store/ingest.sh            modest sizes (2,000 files / 50 MB, 20,000 paths)
#   bench/store/ingest.sh --full     the issue's sizes (20,000 files / 500 MB, 100,000 paths)
#
# 1. Ingest: `nexis store add` of a generated tree (30% duplicate files)
#    against `cp -a` of the same tree on the same filesystem (the floor).
#    cp -a leaves its data in the page cache; nexis makes the tree durable
#    (one syncfs) before registering it, so "cp -a + sync" is printed too.
# 2. Registration: paths per second, 3 references each, batches of 1000.
# 3. path-info: one process end to end (start, open RocksDB read-only,
#    query, print) in the store of step 2; the median of 11 runs.
#
# Options: --files N --size BYTES --dup FRACTION --paths N --dir DIR (work
# directory, default under /var/tmp; it must be on the filesystem you want
# to measure) --keep (do not delete it).
set -euo pipefail

files=2000 size=$((50 << 20)) dup=0.3 paths=20000 dir="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --full) files=20000 size=$((500 << 20)) paths=100000 ;;
    --files) files=$2; shift ;;
    --size) size=$2; shift ;;
    --dup) dup=$2; shift ;;
    --paths) paths=$2; shift ;;
    --dir) dir=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "usage: $0 [--full] [--files N] [--size BYTES] [--dup F] [--paths N] [--dir DIR] [--keep]" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ -z "$dir" ]; then dir=$(mktemp -d /var/tmp/nexis-store-bench.XXXXXX); fi
mkdir -p "$dir/bin"
if [ "$keep" = 0 ]; then trap 'rm -rf "$dir"' EXIT; fi

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
fmt() { printf '%.3f' "$1"; }

echo "building nexis and the generators..." >&2
# nexis as `make` builds it: fully static (see the Makefile).
(cd "$repo" && CGO_ENABLED=1 "$GO" build -ldflags '-linkmode external -extldflags "-static -lbz2"' \
    -tags 'osusergo netgo' -o "$dir/bin/nexis" ./cmd/nexis \
  && "$GO" build -o "$dir/bin/gentree" ./bench/store/gentree \
  && "$GO" build -o "$dir/bin/regbench" ./bench/store/regbench)

echo "fs: $(df -T "$dir" | awk 'NR==2 {print $2, $1}'), cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Ingest against cp -a.
"$dir/bin/gentree" -files "$files" -size "$size" -dup "$dup" "$dir/tree"
sync
# Warm the page cache equally for both.
find "$dir/tree" -type f -exec cat {} + > /dev/null

# timed CMD...: wall, user and system seconds of CMD into $timed.
TIMEFORMAT='%R %U %S'
timed() { timed=$( { time "$@" > /dev/null; } 2>&1 | tail -1); }

t0=$(now); timed cp -a "$dir/tree" "$dir/cp"; t1=$(now); sync; t2=$(now)
cp_time=$(secs "$t0" "$t1"); cp_sync=$(secs "$t0" "$t2")
read -r _ cp_user cp_sys <<< "$timed"
rm -rf "$dir/cp"; sync

# Ingest into an existing store, as in use: creating the database (ten
# column families) is a one-time cost, not part of an ingest.
echo warm > "$dir/warm"
"$dir/bin/nexis" --root "$dir/root" store add "$dir/warm" > /dev/null
t0=$(now)
timed "$dir/bin/nexis" --root "$dir/root" store add "$dir/tree"
t1=$(now)
add_time=$(secs "$t0" "$t1")
read -r _ add_user add_sys <<< "$timed"
"$dir/bin/nexis" --root "$dir/root" store info | sed 's/^/  /'

echo "ingest of $files files / $((size >> 20)) MB, ${dup} duplicates:"
echo "  cp -a           $(fmt "$cp_time") s wall, ${cp_user} s user, ${cp_sys} s sys   (floor)"
echo "  cp -a + sync    $(fmt "$cp_sync") s wall"
echo "  nexis store add $(fmt "$add_time") s wall, ${add_user} s user, ${add_sys} s sys   (hash, dedup, durable, registered)"
echo "  ratio to cp -a        $(fmt "$(echo "$add_time / $cp_time" | bc -l)")"
echo "  ratio to cp -a + sync $(fmt "$(echo "$add_time / $cp_sync" | bc -l)")"

# 2. Registration.
out=$("$dir/bin/regbench" -n "$paths" "$dir/reg/store")
echo "$out" | head -1
sample=$(echo "$out" | sed -n 's/^sample: //p')

# 3. path-info, one process each, with the process-start floors beside
# it: on a busy machine even /bin/true takes a while.
median_ms() {
  local times=() t0 t1
  for i in $(seq 11); do
    t0=$(now); "$@" > /dev/null; t1=$(now)
    times+=("$(secs "$t0" "$t1")")
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 6p | awk '{printf "%.1f", $1 * 1000}'
}
echo "path-info in a store of $paths paths (median of 11 runs, one process each):"
echo "  /bin/true              $(median_ms /bin/true) ms"
echo "  nexis --version        $(median_ms "$dir/bin/nexis" --version) ms"
echo "  nexis store path-info  $(median_ms "$dir/bin/nexis" --root "$dir/reg" store path-info "$sample") ms"
