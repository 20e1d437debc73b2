#!/bin/sh
# Runs before vim's build: point configure at the features we want.
set -e
echo "setting up vim build environment"
export CFLAGS="${CFLAGS:-} -O2"
