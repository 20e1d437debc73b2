package host

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Store paths complete level by level from the buckets' directories:
// the store directory, then ab/, then cd/, then the paths; inside a
// path, and outside the store, the shell's own file completion fits.
func TestCompleteStorePath(t *testing.T) {
	root := t.TempDir()
	h := &Host{Root: root, Store: "/store", State: "/var/lib/nexis"}
	p := "abcd" + "0000000000000000000000000000" + "-hello"
	if err := os.MkdirAll(filepath.Join(root, "store", "ab", "cd", p, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "store", "not-a-bucket"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typed    string
		words    []string
		dirs, ok bool
	}{
		{"/st", []string{"/store/"}, true, true},
		{"/store/", []string{"/store/ab/"}, true, true},
		{"/store/ab/", []string{"/store/ab/cd/"}, true, true},
		{"/store/ab/cd/ab", []string{"/store/ab/cd/" + p}, false, true},
		{"/store/ab/cd/" + p + "/b", nil, false, false},
		{"/etc/", nil, false, false},
	} {
		words, dirs, ok := h.CompleteStorePath(c.typed)
		if !slices.Equal(words, c.words) || dirs != c.dirs || ok != c.ok {
			t.Errorf("CompleteStorePath(%q) = %q, %v, %v; want %q, %v, %v", c.typed, words, dirs, ok, c.words, c.dirs, c.ok)
		}
	}
}
