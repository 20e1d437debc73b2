package lang

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLargeFilePositions: a file too large to be held for its positions
// is read again when they are asked for, and places every key where
// scanning the text it was decoded from does; once it has changed, its
// keys are placed at the file.
func TestLargeFilePositions(t *testing.T) {
	config := generate(t, 2000)
	src, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	if len(src) <= heldPositions {
		t.Fatalf("the config is %d bytes, want more than %d", len(src), heldPositions)
	}
	want := scanPositions("config.toml", src)
	keys := []string{"system.hostname", "packages[0].name", "packages[1001].build_flags", "packages[1999].version"}
	c, err := LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := c.Pos(k); got != want[k] || got.Line == 0 {
			t.Errorf("Pos(%s) = %v, want %v", k, got, want[k])
		}
	}

	c, err = LoadConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, append(src, "# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if got := c.Pos(k); got != (Pos{File: filepath.Base(config)}) {
			t.Errorf("after an edit, Pos(%s) = %v, want the file", k, got)
		}
	}
}
