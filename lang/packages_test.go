package lang

import "testing"

// TestPackageKeyPath: onePackage writes a package's key path without
// KeyPath, as KeyPath writes it.
func TestPackageKeyPath(t *testing.T) {
	for _, i := range []int{0, 7, 10000, 123456} {
		if got, want := "packages"+index(i), KeyPath("packages", index(i)); got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}
