package main

import (
	"testing"
	"time"
)

// TestParseAgeAndSize: every flag that takes an age or a size reads the
// same forms (gc --older-than and generations delete --older-than alike).
func TestParseAgeAndSize(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "12h": 12 * time.Hour, "30d": 30 * 24 * time.Hour,
		"2w": 14 * 24 * time.Hour, "1.5d": 36 * time.Hour, "0s": 0,
	} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"soon", "-1d", "2x", ""} {
		if _, err := parseAge(bad); err == nil {
			t.Errorf("parseAge(%q) succeeded", bad)
		}
	}
	for in, want := range map[string]int64{"1024": 1024, "500K": 500 << 10, "10G": 10 << 30, "1.5MiB": 3 << 19, "2t": 2 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"lots", "0", "-5M", ""} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) succeeded", bad)
		}
	}
}
