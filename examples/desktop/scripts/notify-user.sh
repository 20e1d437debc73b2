#!/bin/sh
# post_switch: tell the desktop user a new generation is active.
set -e
gen=$(readlink /nexis/profiles/system 2>/dev/null || echo "a new generation")
for u in $(who | awk '{print $1}' | sort -u); do
  echo "NexisOS switched to $gen" | write "$u" 2>/dev/null || true
done
