package deploy

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSwitchBuildHostConfigTar: the config directory survives the trip
// to a build host (files, modes, directories, links inside it); a link
// out of it stays behind; and the receiving side refuses every entry
// that would reach outside its directory.
func TestSwitchBuildHostConfigTar(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "pkgs/sub"), 0o755)
	os.WriteFile(filepath.Join(src, "config.toml"), []byte("[system]\n"), 0o644)
	os.WriteFile(filepath.Join(src, "pkgs/sub/build.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("sub/build.sh", filepath.Join(src, "pkgs/build.sh"))
	os.Symlink("/store/x-result", filepath.Join(src, "result"))
	os.Symlink("../..", filepath.Join(src, "pkgs/up"))

	var buf bytes.Buffer
	var skipped []string
	if err := SendConfig(&buf, src, func(name string, _ error) { skipped = append(skipped, name) }); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := ReceiveConfig(&buf, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "pkgs/build.sh")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("pkgs/build.sh through its link: %q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "pkgs/sub/build.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Fatalf("the script lost its executable bit: %v %v", fi, err)
	}
	for _, gone := range []string{"result", "pkgs/up"} {
		if _, err := os.Lstat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s links out of the config directory but was sent", gone)
		}
	}
	if strings.Join(skipped, " ") != "pkgs/up result" {
		t.Errorf("the links left out were reported as %v", skipped)
	}

	type entry struct {
		name, link string
		dir        bool
	}
	for _, c := range []struct {
		what    string
		entries []entry
	}{
		{"an absolute name", []entry{{name: "/etc/passwd"}}},
		{"a name with ..", []entry{{name: "pkgs/../../x"}}},
		{"an absolute link", []entry{{name: "l", link: "/etc"}}},
		{"a link climbing out", []entry{{name: "l", link: "../x"}}},
		// Each link alone stays inside; together they lead out.
		{"a chain of links", []entry{{name: "d", dir: true}, {name: "d/l", link: ".."}, {name: "d/l/l2", link: ".."}}},
		{"a file written through a link out", []entry{{name: "l", link: "../evil"}, {name: "l/x"}}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range c.entries {
			h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg}
			switch {
			case e.dir:
				h.Typeflag, h.Mode = tar.TypeDir, 0o755
			case e.link != "":
				h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
		}
		tw.Close()
		parent := t.TempDir()
		dst, evil := filepath.Join(parent, "config"), filepath.Join(parent, "evil")
		os.Mkdir(dst, 0o755)
		os.Mkdir(evil, 0o755)
		err := ReceiveConfig(&b, dst)
		if err == nil || !strings.Contains(err.Error(), "the config tar") {
			t.Errorf("%s: got %v, want a refusal", c.what, err)
		}
		if fs, _ := os.ReadDir(parent); len(fs) != 2 {
			t.Errorf("%s: something was written beside the config directory: %v", c.what, fs)
		}
		if fs, _ := os.ReadDir(evil); len(fs) != 0 {
			t.Errorf("%s: something was written outside the config directory: %v", c.what, fs)
		}
	}
}
