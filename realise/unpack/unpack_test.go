package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name     string
	typ      byte
	body     string
	linkname string
	mode     int64
}

func writeTar(t *testing.T, entries []entry, compress string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: mode, Linkname: e.linkname, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	switch compress {
	case "gz":
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		os.WriteFile(p, z.Bytes(), 0o644)
	case "xz", "bzip2", "zstd":
		if _, err := exec.LookPath(compress); err != nil {
			t.Skipf("no %s", compress)
		}
		if out, err := exec.Command(compress, "-f", "-k", p).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v %s", compress, err, out)
		}
		ext := map[string]string{"xz": ".xz", "bzip2": ".bz2", "zstd": ".zst"}[compress]
		return p + ext
	}
	return p
}

func TestUnpackFormatsAndStrip(t *testing.T) {
	entries := []entry{
		{name: "pkg-1.0/", typ: tar.TypeDir},
		{name: "pkg-1.0/README", typ: tar.TypeReg, body: "hi\n"},
		{name: "pkg-1.0/bin/run", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o755},
		{name: "pkg-1.0/bin/alias", typ: tar.TypeSymlink, linkname: "run"},
		{name: "pkg-1.0/copy", typ: tar.TypeLink, linkname: "pkg-1.0/README"},
		{name: "pkg-1.0/up", typ: tar.TypeSymlink, linkname: "bin/../README"},
	}
	for _, c := range []string{"", "gz", "xz", "bzip2", "zstd"} {
		t.Run("tar."+c, func(t *testing.T) {
			src := writeTar(t, entries, c)
			dst := filepath.Join(t.TempDir(), "out")
			if err := File(src, dst); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "README")); err != nil || string(b) != "hi\n" {
				t.Fatalf("README: %q %v (top directory not stripped?)", b, err)
			}
			if st, err := os.Stat(filepath.Join(dst, "bin/run")); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("bin/run not executable: %v", err)
			}
			if l, _ := os.Readlink(filepath.Join(dst, "bin/alias")); l != "run" {
				t.Errorf("alias -> %q", l)
			}
			if b, _ := os.ReadFile(filepath.Join(dst, "copy")); string(b) != "hi\n" {
				t.Errorf("hard link copy = %q", b)
			}
		})
	}
}

func TestUnpackRefusesMalicious(t *testing.T) {
	cases := map[string]struct {
		entries []entry
		want    string
	}{
		"traversal":       {[]entry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, "climbs out"},
		"deep traversal":  {[]entry{{name: "a/../../evil", typ: tar.TypeReg, body: "x"}}, "climbs out"},
		"absolute":        {[]entry{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, "absolute path"},
		"absolute link":   {[]entry{{name: "l", typ: tar.TypeSymlink, linkname: "/etc/passwd"}}, "absolute path"},
		"escaping link":   {[]entry{{name: "a/l", typ: tar.TypeSymlink, linkname: "../../etc"}}, "escapes"},
		"write via link":  {[]entry{{name: "d", typ: tar.TypeSymlink, linkname: "."}, {name: "d/x", typ: tar.TypeReg, body: "x"}}, "used as a directory"},
		"chained escape":  {[]entry{{name: "a", typ: tar.TypeSymlink, linkname: "."}, {name: "b", typ: tar.TypeSymlink, linkname: "a/a/.."}}, "escapes"},
		"char device":     {[]entry{{name: "null", typ: tar.TypeChar}}, "device node"},
		"block device":    {[]entry{{name: "sda", typ: tar.TypeBlock}}, "device node"},
		"fifo":            {[]entry{{name: "fifo", typ: tar.TypeFifo}}, "FIFO"},
		"hardlink out":    {[]entry{{name: "h", typ: tar.TypeLink, linkname: "../etc/passwd"}}, "climbs out"},
		"hardlink abs":    {[]entry{{name: "h", typ: tar.TypeLink, linkname: "/etc/passwd"}}, "absolute path"},
		"hardlink dangle": {[]entry{{name: "h", typ: tar.TypeLink, linkname: "nothing"}}, "does not name a regular file"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			src := writeTar(t, c.entries, "gz")
			dst := filepath.Join(parent, "out")
			err := File(src, dst)
			if err == nil {
				t.Fatal("unpacked a malicious archive")
			}
			if !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrUnsafe mentioning %q", err, c.want)
			}
			// Nothing was written outside dst.
			ents, _ := os.ReadDir(parent)
			for _, e := range ents {
				if e.Name() != "out" {
					t.Errorf("left %s beside the output", e.Name())
				}
			}
		})
	}
}

func TestUnpackZip(t *testing.T) {
	mk := func(t *testing.T, files map[string]string, links map[string]string) string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for n, body := range files {
			w, _ := zw.Create(n)
			w.Write([]byte(body))
		}
		for n, target := range links {
			h := &zip.FileHeader{Name: n}
			h.SetMode(fs.ModeSymlink | 0o777)
			w, _ := zw.CreateHeader(h)
			w.Write([]byte(target))
		}
		zw.Close()
		p := filepath.Join(t.TempDir(), "a.zip")
		os.WriteFile(p, buf.Bytes(), 0o644)
		return p
	}
	t.Run("ok", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "out")
		if err := File(mk(t, map[string]string{"a/x": "1", "b/y": "2"}, map[string]string{"a/l": "x"}), dst); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "b/y")); string(b) != "2" {
			t.Errorf("b/y = %q", b)
		}
	})
	t.Run("traversal", func(t *testing.T) {
		err := File(mk(t, map[string]string{"../../evil": "x"}, nil), filepath.Join(t.TempDir(), "out"))
		if !errors.Is(err, ErrUnsafe) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("escaping link", func(t *testing.T) {
		err := File(mk(t, nil, map[string]string{"l": "../../../etc/shadow"}), filepath.Join(t.TempDir(), "out"))
		if !errors.Is(err, ErrUnsafe) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestStripDoesNotLetLinksEscape(t *testing.T) {
	// Inside the archive "top/l -> ../top/x" stays inside; once top/ is
	// stripped it would point beside the output.
	src := writeTar(t, []entry{
		{name: "top/", typ: tar.TypeDir},
		{name: "top/x", typ: tar.TypeReg, body: "x"},
		{name: "top/l", typ: tar.TypeSymlink, linkname: "../top/x"},
	}, "")
	err := File(src, filepath.Join(t.TempDir(), "out"))
	if !errors.Is(err, ErrUnsafe) {
		t.Fatalf("err = %v", err)
	}
}
