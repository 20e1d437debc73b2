echo "generation two" > "$out/extra.txt"
