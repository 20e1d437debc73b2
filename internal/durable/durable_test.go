package durable

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// scratch is a root and, beside it, a sentinel directory outside it
// holding one file: every test ends by checking the sentinel is exactly
// as it was.
type scratch struct {
	root    string
	outside string
	r       *Root
}

func newScratch(t *testing.T) *scratch {
	t.Helper()
	s := &scratch{root: t.TempDir(), outside: t.TempDir()}
	if err := os.WriteFile(filepath.Join(s.outside, "passwd"), []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(s.root)
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	t.Cleanup(func() {
		r.Close()
		s.checkOutside(t)
	})
	return s
}

// checkOutside fails the test unless the sentinel directory holds its
// one file, unchanged, with its mode and owner.
func (s *scratch) checkOutside(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(s.outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "passwd" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the directory outside the root now holds %v, want only passwd", names)
	}
	fi, err := os.Lstat(filepath.Join(s.outside, "passwd"))
	if err != nil {
		t.Fatalf("the file outside the root: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || st.Uid != uint32(os.Getuid()) {
		t.Errorf("the file outside the root changed: %v uid %d", fi.Mode(), st.Uid)
	}
	if b, _ := os.ReadFile(filepath.Join(s.outside, "passwd")); string(b) != "sentinel\n" {
		t.Errorf("the file outside the root now holds %q", b)
	}
	di, _ := os.Stat(s.outside)
	if di.Mode().Perm() != 0o700 && di.Mode().Perm() != 0o755 {
		t.Errorf("the directory outside the root has mode %v", di.Mode().Perm())
	}
}

func (s *scratch) in(p string) string { return filepath.Join(s.root, p) }

func (s *scratch) mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(s.in(p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOpenRootEmptyIsAnError(t *testing.T) {
	if _, err := OpenRoot(""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("OpenRoot(\"\") = %v, want an error saying the root is empty", err)
	}
}

// An absolute link in a parent means the same path inside the root: a
// planted ROOT/etc -> /outside writes ROOT/outside/passwd, or nothing.
func TestAbsoluteLinkInParentStaysInside(t *testing.T) {
	s := newScratch(t)
	if err := os.Symlink(s.outside, s.in("etc")); err != nil {
		t.Fatal(err)
	}
	err := s.r.WriteFile("/etc/passwd", []byte("root::0:0::/root:/bin/sh\n"), 0o644, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("write through a link to a directory missing inside the root: %v, want not exist", err)
	}
	if err := s.r.MkdirAll("/etc/sub", 0o755); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist inside the root") {
		t.Fatalf("MkdirAll through a link to a directory missing inside the root: %v", err)
	}
	// Once the link's target exists inside the root, that is where the
	// write lands, as it would for a program chrooted there.
	if err := os.MkdirAll(s.in(s.outside), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.r.WriteFile("/etc/passwd", []byte("new\n"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.mustRead(t, filepath.Join(s.outside, "passwd")); got != "new\n" {
		t.Errorf("ROOT%s/passwd holds %q", s.outside, got)
	}
	if b, err := s.r.ReadFile("etc/passwd"); err != nil || string(b) != "new\n" {
		t.Errorf("reading back through the link: %q, %v", b, err)
	}
	if err := s.r.MkdirAll("/etc/sub/dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.root, s.outside, "sub/dir")); err != nil || !fi.IsDir() {
		t.Errorf("MkdirAll through the link: %v", err)
	}
}

// ".." stops at the root, in a path and in a relative link.
func TestDotDotStopsAtTheRoot(t *testing.T) {
	s := newScratch(t)
	up := strings.Repeat("../", strings.Count(s.root, "/")+2)
	rel, err := filepath.Rel(s.root, s.outside)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.r.WriteFile(up+"passwd", []byte("a\n"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if s.mustRead(t, "passwd") != "a\n" {
		t.Error("a path of .. did not land at the root")
	}
	// rel climbs out of the root and into the outside directory: inside
	// the root, the climb stops at / and the rest is missing.
	if err := os.Symlink(rel, s.in("up")); err != nil {
		t.Fatal(err)
	}
	if err := s.r.WriteFile("up/passwd", []byte("b\n"), 0o644, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("write through a relative link that climbs out: %v, want not exist", err)
	}
	if err := s.r.Remove("up/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("remove through a relative link that climbs out: %v", err)
	}
	if _, err := s.r.Stat(rel + "/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of a path that climbs out: %v", err)
	}
	if err := s.r.Rename("passwd", "up/passwd"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rename through a relative link that climbs out: %v", err)
	}
}

// The entry an operation names is replaced or changed itself, never
// written through, even when it links outside.
func TestLastComponentLinkIsReplacedNotFollowed(t *testing.T) {
	s := newScratch(t)
	os.MkdirAll(s.in("etc"), 0o755)
	target := filepath.Join(s.outside, "passwd")
	link := func(t *testing.T) {
		t.Helper()
		os.Remove(s.in("etc/passwd"))
		if err := os.Symlink(target, s.in("etc/passwd")); err != nil {
			t.Fatal(err)
		}
	}
	link(t)
	if err := s.r.WriteFile("/etc/passwd", []byte("mine\n"), 0o600, &Owner{UID: 1, GID: 2}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(s.in("etc/passwd"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("etc/passwd after the write: %v, %v", fi, err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1 || st.Gid != 2 {
		t.Errorf("owner %d:%d, want 1:2", st.Uid, st.Gid)
	}

	link(t)
	if err := s.r.Symlink("/etc/static/passwd", "/etc/passwd", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(s.in("etc/passwd")); got != "/etc/static/passwd" {
		t.Errorf("link is %q", got)
	}

	link(t)
	if err := s.r.Lchown("/etc/passwd", 7, 8); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(s.in("etc/passwd")); fi.Sys().(*syscall.Stat_t).Uid != 7 {
		t.Error("Lchown did not change the link itself")
	}

	link(t)
	if err := s.r.Mkdir("/etc/passwd", 0o700, &Owner{UID: 5, GID: 5}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Mkdir over a link: %v, want an error", err)
	}

	// Chmod and Chown follow the link inside the root: there it names
	// ROOT/<outside>/passwd, which does not exist.
	if err := s.r.Chmod("/etc/passwd", 0o777); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Chmod through a link to outside: %v, want not exist", err)
	}
	if err := s.r.Chown("/etc/passwd", 9, 9); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Chown through a link to outside: %v, want not exist", err)
	}

	if err := s.r.Remove("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.in("etc/passwd")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove left %v", err)
	}
}

func TestChmodChownFollowInside(t *testing.T) {
	s := newScratch(t)
	os.MkdirAll(s.in("data"), 0o755)
	os.WriteFile(s.in("data/f"), []byte("x"), 0o644)
	os.Symlink("/data/f", s.in("l"))
	if err := s.r.Chmod("l", 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.r.Chown("l", 3, 4); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(s.in("data/f"))
	if fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 3 {
		t.Errorf("data/f is %v uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
}

func TestMkdirOwnerAndMode(t *testing.T) {
	s := newScratch(t)
	if err := s.r.Mkdir("/home", 0o755, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.r.Mkdir("/home/alice", 0o700, &Owner{UID: 1000, GID: 1000}); err != nil {
		t.Fatal(err)
	}
	// An existing directory is adjusted.
	if err := s.r.Mkdir("/home/alice", 0o750, &Owner{UID: 1001, GID: 1001}); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(s.in("home/alice"))
	if fi.Mode().Perm() != 0o750 || fi.Sys().(*syscall.Stat_t).Uid != 1001 {
		t.Errorf("home/alice is %v uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	os.WriteFile(s.in("file"), nil, 0o644)
	if err := s.r.Mkdir("/file", 0o700, nil); err == nil {
		t.Error("Mkdir over a file succeeded")
	}
}

func TestReadsFollowLinksInside(t *testing.T) {
	s := newScratch(t)
	os.MkdirAll(s.in("store/abc/etc"), 0o755)
	os.WriteFile(s.in("store/abc/etc/hostname"), []byte("h\n"), 0o644)
	os.MkdirAll(s.in("etc"), 0o755)
	os.Symlink("/store/abc/etc", s.in("etc/static"))
	os.Symlink("/etc/static/hostname", s.in("etc/hostname"))
	if b, err := s.r.ReadFile("/etc/hostname"); err != nil || string(b) != "h\n" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	fi, err := s.r.Lstat("/etc/hostname")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Name() != "hostname" {
		t.Fatalf("Lstat = %v, %v", fi, err)
	}
	fi, err = s.r.Stat("/etc/hostname")
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 2 {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if got, err := s.r.Readlink("/etc/static"); err != nil || got != "/store/abc/etc" {
		t.Fatalf("Readlink = %q, %v", got, err)
	}
	ents, err := s.r.ReadDir("/etc/static")
	if err != nil || len(ents) != 1 || ents[0].Name() != "hostname" {
		t.Fatalf("ReadDir = %v, %v", ents, err)
	}
	// A link to a file outside is missing inside the root.
	os.Symlink(filepath.Join(s.outside, "passwd"), s.in("etc/leak"))
	if _, err := s.r.ReadFile("/etc/leak"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reading a link to outside: %v, want not exist", err)
	}
	if fi, err := s.r.Lstat("/"); err != nil || !fi.IsDir() {
		t.Errorf("Lstat(/) = %v, %v", fi, err)
	}
}

func TestResolve(t *testing.T) {
	s := newScratch(t)
	real, _ := filepath.EvalSymlinks(s.root)
	os.MkdirAll(s.in("var/lib"), 0o755)
	// A dangling absolute link: what it names, inside the root.
	os.Symlink(s.outside+"/state", s.in("var/lib/nexis"))
	got, err := s.r.Resolve("/var/lib/nexis/logs")
	if want := filepath.Join(real, s.outside, "state/logs"); err != nil || got != want {
		t.Fatalf("Resolve = %q, %v, want %q", got, err, want)
	}
	os.Symlink("/", s.in("store"))
	if got, err := s.r.Resolve("/store"); err != nil || got != real {
		t.Fatalf("Resolve(/store -> /) = %q, %v, want the root %s", got, err, real)
	}
	os.Symlink("loop", s.in("loop"))
	if _, err := s.r.Resolve("/loop/x"); err == nil {
		t.Error("a link loop resolved")
	}
}

// ReplaceLink replaces only a missing entry or a link ours accepts.
func TestReplaceLink(t *testing.T) {
	s := newScratch(t)
	ours := func(old string) bool { return strings.HasPrefix(old, "/store/") }
	os.WriteFile(s.in("result"), []byte("precious\n"), 0o644)
	if err := s.r.ReplaceLink("/store/a", "result", ours); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("over a file: %v, want ErrNotOurs", err)
	}
	if s.mustRead(t, "result") != "precious\n" {
		t.Fatal("the file was changed")
	}
	os.Mkdir(s.in("dir"), 0o755)
	os.WriteFile(s.in("dir/x"), []byte("x"), 0o644)
	if err := s.r.ReplaceLink("/store/a", "dir", ours); !errors.Is(err, ErrNotOurs) || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("over a directory: %v, want ErrNotOurs naming a directory", err)
	}
	if s.mustRead(t, "dir/x") != "x" {
		t.Fatal("the directory was changed")
	}
	os.Symlink("/home/me/elsewhere", s.in("theirs"))
	if err := s.r.ReplaceLink("/store/a", "theirs", ours); !errors.Is(err, ErrNotOurs) {
		t.Fatalf("over a foreign link: %v", err)
	}
	if got, _ := os.Readlink(s.in("theirs")); got != "/home/me/elsewhere" {
		t.Fatalf("the foreign link now points at %q", got)
	}
	if err := s.r.ReplaceLink("/store/a", "new", ours); err != nil {
		t.Fatal(err)
	}
	if err := s.r.ReplaceLink("/store/b", "new", ours); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(s.in("new")); got != "/store/b" {
		t.Fatalf("our link points at %q", got)
	}
	ents, _ := os.ReadDir(s.root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), TempPrefix) {
			t.Errorf("left %s", e.Name())
		}
	}
}

func TestRemoveTemps(t *testing.T) {
	s := newScratch(t)
	os.MkdirAll(s.in("etc"), 0o755)
	os.WriteFile(s.in("etc/"+TempPrefix+"abc-passwd"), nil, 0o600)
	os.WriteFile(s.in("etc/keep"), nil, 0o644)
	if err := s.r.RemoveTemps("/etc"); err != nil {
		t.Fatal(err)
	}
	if err := s.r.RemoveTemps("/missing"); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(s.in("etc"))
	if len(ents) != 1 || ents[0].Name() != "keep" {
		t.Errorf("etc holds %v", ents)
	}
}

func TestLongNameTemp(t *testing.T) {
	s := newScratch(t)
	name := strings.Repeat("n", 255)
	if err := s.r.WriteFile(name, []byte("x"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.r.Symlink("t", name, nil); err != nil {
		t.Fatal(err)
	}
}

// A component is swapped between a directory and a link to outside, and
// the entry between a file and a link to outside, while writes run: no
// write ever lands outside. Counted iterations, no clock.
func TestLinkSwapsRace(t *testing.T) {
	s := newScratch(t)
	os.MkdirAll(s.in("real"), 0o755)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			os.Remove(s.in("etc"))
			os.Symlink(s.outside, s.in("etc"))
			os.Remove(s.in("etc"))
			os.Symlink("real", s.in("etc"))
		}
	}()
	go func() {
		defer wg.Done()
		for !stop.Load() {
			os.Remove(s.in("real/passwd"))
			os.Symlink(filepath.Join(s.outside, "passwd"), s.in("real/passwd"))
			os.Remove(s.in("real/passwd"))
			os.WriteFile(s.in("real/passwd"), nil, 0o644)
		}
	}()
	for i := 0; i < 3000; i++ {
		s.r.WriteFile("/etc/passwd", []byte("attacker\n"), 0o666, nil)
		s.r.Symlink("/x", "/etc/passwd", nil)
		s.r.Lchown("/etc/passwd", 9, 9)
		s.r.Chmod("/etc/passwd", 0o777)
		s.r.Mkdir("/etc/passwd", 0o777, nil)
		s.r.Remove("/etc/passwd")
	}
	stop.Store(true)
	wg.Wait()
}

// A root mounted for installation has /proc inside it: a link through
// /proc/self/root would lead back to the host's /. Magic links are
// refused. Runs in a private mount namespace (unshare -m) so the bind
// mount is nobody else's.
func TestMagicLinksRefused(t *testing.T) {
	if os.Getenv("DURABLE_MAGIC_ROOT") != "" {
		magicChild(t)
		return
	}
	if os.Getuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) is not installed")
	}
	s := newScratch(t)
	os.Mkdir(s.in("proc"), 0o755)
	os.Symlink("/proc/self/root"+s.outside, s.in("etc"))
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0], "-test.run=^TestMagicLinksRefused$", "-test.v")
	cmd.Env = append(os.Environ(), "DURABLE_MAGIC_ROOT="+s.root, "DURABLE_MAGIC_OUTSIDE="+s.outside)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func magicChild(t *testing.T) {
	root := os.Getenv("DURABLE_MAGIC_ROOT")
	if err := syscall.Mount("/proc", filepath.Join(root, "proc"), "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting /proc: %v", err)
	}
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.WriteFile("/etc/passwd", []byte("escaped\n"), 0o644, nil)
	if err == nil {
		t.Fatal("a write through /proc/self/root succeeded")
	}
	if _, err := r.ReadFile("/etc/passwd"); err == nil {
		t.Fatal("a read through /proc/self/root succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(os.Getenv("DURABLE_MAGIC_OUTSIDE"), "passwd")); string(b) != "sentinel\n" {
		t.Fatalf("the file outside holds %q", b)
	}
}
