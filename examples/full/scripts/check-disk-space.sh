#!/bin/sh
# pre_switch hook: refuse to switch with less than 100 MiB free in /.
set -e
free_kb=$(df -Pk / | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt 102400 ]; then
  echo "less than 100 MiB free on /: not switching" >&2
  exit 1
fi
