package durable

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/internal/proctest"
)

// TestHostWriteFile: a file of this machine is replaced whole, with its
// mode, a link at its name is replaced rather than followed, and a fill
// that fails leaves the old file and no temporary beside it; the same
// holds of WriteVerified, which only leaves out the fsyncs.
func TestHostWriteFile(t *testing.T) {
	for name, write := range map[string]func(string, fs.FileMode, func(io.Writer) error) error{"Write": Write, "WriteVerified": WriteVerified} {
		t.Run(name, func(t *testing.T) {
			s := newScratch(t)
			p := s.in("nexis.lock")
			writeFile := func(p string, data []byte, mode fs.FileMode) error {
				return write(p, mode, func(w io.Writer) error {
					_, err := w.Write(data)
					return err
				})
			}
			if name == "Write" {
				writeFile = WriteFile
			}
			if err := writeFile(p, []byte("one\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := writeFile(p, []byte("two\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			if got := s.mustRead(t, "nexis.lock"); got != "two\n" {
				t.Fatalf("content %q", got)
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
				t.Fatalf("mode %v", fi.Mode().Perm())
			}
			err := write(p, 0o644, func(w io.Writer) error {
				w.Write([]byte("half"))
				return errors.New("cut short")
			})
			if err == nil {
				t.Fatal("a failing fill succeeded")
			}
			if got := s.mustRead(t, "nexis.lock"); got != "two\n" {
				t.Fatalf("after a failed write: %q", got)
			}
			link := s.in("link")
			os.Symlink(filepath.Join(s.outside, "passwd"), link)
			if err := writeFile(link, []byte("mine\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Lstat(link); !fi.Mode().IsRegular() {
				t.Fatalf("the link was followed, not replaced: %v", fi.Mode())
			}
			ents, _ := os.ReadDir(s.root)
			for _, e := range ents {
				if e.Name() != "nexis.lock" && e.Name() != "link" {
					t.Errorf("left behind: %s", e.Name())
				}
			}
		})
	}
}

// TestHostWriteNew: a new file appears complete with its mode; an
// existing one (a file, or a link to one outside) is never replaced.
func TestHostWriteNew(t *testing.T) {
	s := newScratch(t)
	p := s.in("k.secret")
	if err := WriteNew(p, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := WriteNew(p, []byte("other\n"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over an existing file: %v", err)
	}
	if got := s.mustRead(t, "k.secret"); got != "secret\n" {
		t.Fatalf("the existing file changed: %q", got)
	}
	link := s.in("link")
	os.Symlink(filepath.Join(s.outside, "passwd"), link)
	if err := WriteNew(link, []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("over a link: %v", err)
	}
	ents, _ := os.ReadDir(s.root)
	if len(ents) != 2 {
		t.Errorf("left behind: %v", ents)
	}
}

// TestKilledWriterLeavesNothing: a process killed while it fills a file
// (as an evaluation fills its package cache, for seconds) leaves neither
// the file nor a temporary one beside it, and the old file stays.
func TestKilledWriterLeavesNothing(t *testing.T) {
	if dir := os.Getenv("NEXIS_DURABLE_CHILD"); dir != "" {
		Write(filepath.Join(dir, "cache"), 0o600, func(w io.Writer) error {
			w.Write(make([]byte, 1<<20))
			fmt.Println("filling")
			select {}
		})
		return
	}
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "cache"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLeavesNothing$")
	cmd.Env = append(os.Environ(), "NEXIS_DURABLE_CHILD="+dir)
	lines, stderr := proctest.Start(t, cmd)
	if l, ok := <-lines; !ok || l != "filling" {
		cmd.Wait()
		t.Fatalf("child: %q: %s", l, stderr)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "cache" {
		t.Fatalf("left in the directory: %q", names)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "cache")); string(b) != "old" {
		t.Fatalf("the old file became %q", b)
	}
}

// TestLinkThroughProc: an unnamed file gets its name through /proc, the
// way a user without CAP_DAC_READ_SEARCH (any user but root) names it.
// The test runs as root, which takes the other way in writeTemp.
func TestLinkThroughProc(t *testing.T) {
	dir := t.TempDir()
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Skipf("no O_TMPFILE here: %v", err)
	}
	f := os.NewFile(uintptr(fd), "unnamed")
	defer f.Close()
	if _, err := f.Write([]byte("whole")); err != nil {
		t.Fatal(err)
	}
	if err := linkThroughProc(f, dfd, "named"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "named")); err != nil || string(b) != "whole" {
		t.Fatalf("named file: %q, %v", b, err)
	}
}
