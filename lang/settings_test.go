package lang

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBuildersDefaultsFromSchema: a builder's unset numbers are the
// schema's defaults (what `nexis option` prints), not a second copy.
func TestBuildersDefaultsFromSchema(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	os.WriteFile(cfg, []byte("[nexis.builders.b]\nurl = \"ssh://h\"\nsystems = [\"x86_64-linux\"]\nspeed_factor = 3\n"), 0o644)
	c, err := LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bs := c.Builders()
	if len(bs) != 1 || bs[0].MaxJobs == nil || bs[0].SpeedFactor == nil {
		t.Fatalf("%+v", bs)
	}
	want, err := ConfigSchema.DefaultOf("nexis.builders.b.max_jobs")
	if err != nil {
		t.Fatal(err)
	}
	if *bs[0].MaxJobs != want.(int64) || *bs[0].SpeedFactor != 3 {
		t.Fatalf("max_jobs %d (schema %v), speed_factor %d", *bs[0].MaxJobs, want, *bs[0].SpeedFactor)
	}
}
