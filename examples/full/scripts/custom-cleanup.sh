#!/bin/sh
# Runs after vim's build: drop what the system does not need.
set -e
rm -rf "$out/share/man/fr" "$out/share/man/it" 2>/dev/null || true
