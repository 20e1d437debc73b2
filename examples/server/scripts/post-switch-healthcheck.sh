#!/bin/sh
# post_switch: the site must answer after a switch; a failure is reported
# so the operator can roll back.
set -e
for i in 1 2 3 4 5; do
  if wget -q -O /dev/null http://127.0.0.1/; then
    exit 0
  fi
  sleep 2
done
echo "web01: nginx does not answer after the switch" >&2
exit 1
