#!/bin/sh
# bench/gc/run.sh: nexis gc against its floor, and its flatness as the
# store grows. Sizes are modest by default; set them for the full runs:
#
#   GC_FLOOR_SIZES="10000 100000"  GC_FLAT_SIZES="10000 100000 300000" bench/gc/run.sh
#
# GC_SEED picks the generator's seed, GC_WORK where stores are built
# (the store's filesystem matters: run it on the one /store lives on),
# GC_WORKERS nexis gc's --workers.
set -eu
cd "$(dirname "$0")/../.."
FLOOR_SIZES=${GC_FLOOR_SIZES:-10000}
FLAT_SIZES=${GC_FLAT_SIZES:-10000 30000}
SEED=${GC_SEED:-1}
WORK=${GC_WORK:-${TMPDIR:-/tmp}}
WORKERS=${GC_WORKERS:-0}
go build -o bin/nexis ./cmd/nexis
go build -o bin/gcbench ./bench/gc
for n in $FLOOR_SIZES; do
	echo "== floor: n=$n, 50% garbage"
	bin/gcbench -mode floor -n "$n" -seed "$SEED" -work "$WORK" -workers "$WORKERS"
done
for n in $FLAT_SIZES; do
	echo "== flat: n=$n, 1000 garbage"
	bin/gcbench -mode flat -n "$n" -garbage 1000 -seed "$SEED" -work "$WORK" -workers "$WORKERS"
done
