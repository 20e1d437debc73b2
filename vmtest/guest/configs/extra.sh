# shellcheck shell=sh
# post_build_script of payload-2: one file more than payload-1. The
# builder sets $out, the output directory.
# shellcheck disable=SC2154
echo "generation two" > "$out/extra.txt"
