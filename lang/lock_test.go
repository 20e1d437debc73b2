package lang

import "testing"

// TestLockRule: which entries the resolver pins, and what evaluation
// takes from a pin, from the one rule both ask.
func TestLockRule(t *testing.T) {
	const git = "https://example.org/p.git"
	const tarball = "https://example.org/p-1.0.tar.gz"
	for _, c := range []struct {
		what  string
		e     PackageEntry
		needs bool
		git   bool
	}{
		{"a local source", PackageEntry{Name: "p", Source: "./src"}, false, false},
		{"no source", PackageEntry{Name: "p"}, false, false},
		{"a tarball with its hash", PackageEntry{Name: "p", Source: tarball, Hash: "sha256:x"}, false, false},
		{"a tarball without a hash", PackageEntry{Name: "p", Source: tarball}, true, false},
		{"git with rev and hash", PackageEntry{Name: "p", Source: git, Rev: "abc", Hash: "blake3:x"}, false, true},
		{"git without a rev", PackageEntry{Name: "p", Source: git, Hash: "blake3:x"}, true, true},
		{"git without a hash", PackageEntry{Name: "p", Source: git, Rev: "abc"}, true, true},
		{"a URL pinned to a commit is git", PackageEntry{Name: "p", Source: "https://example.org/p", Rev: "abc"}, true, true},
		{"latest", PackageEntry{Name: "p", Source: git, Version: "latest"}, true, true},
		{"a prebuilt without its hash", PackageEntry{Name: "p", Source: "./src", Prebuilt: "https://x/{arch}.tar"}, true, false},
		{"a prebuilt with its hash", PackageEntry{Name: "p", Prebuilt: "https://x/{arch}.tar", PrebuiltHash: "sha256:x"}, false, false},
		{"a module pins its own", PackageEntry{Name: "p", Module: "p.star", Version: "latest", Source: git}, false, true},
	} {
		if got := c.e.NeedsLock(); got != c.needs {
			t.Errorf("%s: NeedsLock = %v, want %v", c.what, got, c.needs)
		}
		if got := c.e.Git(nil); got != c.git {
			t.Errorf("%s: Git = %v, want %v", c.what, got, c.git)
		}
	}

	e := PackageEntry{Name: "rg", Version: "latest", Source: "https://example.org/rg", Prebuilt: "https://x/{tag}/rg-{version}-{arch}.tar.gz"}
	l := &LockedPackage{Version: "14.1.0", Tag: "v14.1.0", Rev: "abc", SourceHash: "blake3:s", PrebuiltHash: "sha256:p"}
	want := Pin{Locked: true, Version: "14.1.0", Tag: "v14.1.0", Git: true, Rev: "abc", SourceHash: "blake3:s",
		PrebuiltURL: "https://x/v14.1.0/rg-14.1.0-aarch64.tar.gz", PrebuiltHash: "sha256:p"}
	if got := e.Pin(l, "aarch64-linux"); got != want {
		t.Errorf("Pin with a lock entry:\n got %+v\nwant %+v", got, want)
	}
	// The entry's own values win over the lock's; without a lock entry
	// "latest" stays unresolved and the stdlib says to run nexis update.
	e = PackageEntry{Name: "p", Version: "1.0", Source: tarball, Hash: "sha256:mine"}
	if got := e.Pin(&LockedPackage{Version: "1.0", SourceHash: "sha256:lock"}, DefaultSystem); got.SourceHash != "sha256:mine" || got.Tag != "1.0" {
		t.Errorf("the entry's hash should win: %+v", got)
	}
	if got := (PackageEntry{Name: "p", Version: "latest", Source: git}).Pin(nil, DefaultSystem); got.Locked || got.Version != "latest" {
		t.Errorf("an unlocked latest: %+v", got)
	}
}
