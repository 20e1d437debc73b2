// Package suggest finds the name a user probably meant: the one
// did-you-mean of every layer (config keys, -A, REPL names, template
// variables) so that they all suggest alike.
package suggest

import (
	"sort"
	"strings"
)

// Closest returns the name closest to k (by edit distance, or of which
// k is a prefix), "" when none is close enough to suggest.
func Closest(k string, names []string) string {
	best, bestD := "", 3
	keys := append([]string(nil), names...)
	sort.Strings(keys)
	for _, a := range keys {
		if a == k {
			continue
		}
		d := levenshtein(strings.ToLower(k), a)
		if d < bestD || (strings.HasPrefix(a, k) && len(k) >= 3 && bestD > 1) {
			best, bestD = a, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
