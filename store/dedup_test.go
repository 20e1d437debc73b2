package store

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nexisos/nexis/store/storepath"
)

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// ingestTwins stores two paths that share a file's content (and a
// third copy inside the first path) and returns the three file paths.
func ingestTwins(t *testing.T, s *Store) (a, a2, b string) {
	t.Helper()
	tmp := t.TempDir()
	big := bytes.Repeat([]byte("nexis dedup "), 100_000) // 1.2 MB: several extents
	for _, n := range []string{"one", "two"} {
		src := filepath.Join(tmp, n)
		writeTree(t, src, map[string]string{"own": "unique to " + n})
		os.WriteFile(filepath.Join(src, "big"), big, 0o644)
		os.WriteFile(filepath.Join(src, "big-copy"), big, 0o644)
		if _, err := s.Ingest(src, fakePath(n), IngestOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(s.Physical(fakePath("one")), "big"),
		filepath.Join(s.Physical(fakePath("one")), "big-copy"),
		filepath.Join(s.Physical(fakePath("two")), "big")
}

func TestDedupHardlinkExt4(t *testing.T) {
	dir := t.TempDir()
	var st syscall.Statfs_t
	syscall.Statfs(dir, &st)
	s := openTest(t, dir, Options{})
	if s.Dedup() == DedupReflink {
		t.Skip("the test directory's filesystem supports reflinks; the hard link case needs ext4 or similar")
	}
	if s.Dedup() != DedupHardlink {
		t.Fatalf("auto dedup picked %v on a filesystem with hard links", s.Dedup())
	}
	a, a2, b := ingestTwins(t, s)
	if inode(t, a) != inode(t, b) || inode(t, a) != inode(t, a2) {
		t.Errorf("identical files do not share an inode: %d %d %d", inode(t, a), inode(t, a2), inode(t, b))
	}
	files, _ := s.Manifest(fakePath("one"))
	for _, f := range files {
		if f.Path == "big" {
			if n, _ := s.ContentRefcount(f.Digest, f.Type); n != 4 {
				t.Errorf("content refcount %d, want 4", n)
			}
		}
	}
	st2, _ := s.Stats()
	if st2.Bytes-st2.ContentBytes != 3*1_200_000 {
		t.Errorf("dedup savings %d, want %d", st2.Bytes-st2.ContentBytes, 3*1_200_000)
	}
	mustVerify(t, s, true)
}

// TestDedupNoneThenOptimise stores copies with dedup off, then optimise
// shares them.
func TestDedupNoneThenOptimise(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Dedup: DedupNone})
	if err != nil {
		t.Fatal(err)
	}
	a, _, b := ingestTwins(t, s)
	if inode(t, a) == inode(t, b) {
		t.Fatalf("dedup none shared an inode")
	}
	s.Close()
	s = openTest(t, dir, Options{})
	if s.Dedup() != DedupHardlink {
		t.Skipf("optimise test needs hard links; the store uses %v", s.Dedup())
	}
	rep, err := s.Optimise(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shared < 3 {
		t.Errorf("optimise shared %d files, want at least 3: %+v", rep.Shared, rep)
	}
	if inode(t, a) != inode(t, b) {
		t.Errorf("after optimise, identical files do not share an inode")
	}
	mustVerify(t, s, true)
	if fi, _ := os.Lstat(filepath.Dir(a)); fi.ModTime().Unix() != 1 || fi.Mode().Perm() != 0o555 {
		t.Errorf("optimise left the directory with mtime %v mode %v", fi.ModTime(), fi.Mode())
	}
}

// TestDedupReflinkXFS makes an XFS image with reflink=1, loop-mounts it
// and checks that identical files share extents but not inodes.
func TestDedupReflinkXFS(t *testing.T) {
	dir := filepath.Join(mountXFS(t), "store")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dedup() != DedupReflink {
		t.Fatalf("auto dedup picked %v on XFS with reflink=1", s.Dedup())
	}
	a, a2, b := ingestTwins(t, s)
	if inode(t, a) == inode(t, b) || inode(t, a) == inode(t, a2) {
		t.Errorf("reflinked files share an inode")
	}
	for _, p := range []string{a, a2, b} {
		shared, err := ExtentsShared(p)
		if err != nil {
			t.Fatal(err)
		}
		if !shared {
			t.Errorf("%s: extents not shared", p)
		}
	}
	mustVerify(t, s, true)
	// Collecting one path on XFS: its unique content leaves the pool,
	// the content it shares with the other path stays.
	res, err := s.CollectBatch([]storepath.Path{fakePath("two")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Paths) != 1 || len(res.Contents) != 1 {
		t.Errorf("collect: %+v", res)
	}
	fst, err := s.FinishCollect(2)
	if err != nil {
		t.Fatal(err)
	}
	if fst.Moved != 1 || fst.PoolRemoved != 1 {
		t.Errorf("finish: %+v", fst)
	}
	if err := os.RemoveAll(s.TrashDir()); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, s, true)
	rep, _ := s.Verify(VerifyOptions{})
	if len(rep.Garbage) > 0 {
		t.Errorf("garbage after collection: %v", rep.Garbage)
	}
}

// mountXFS loop-mounts a fresh XFS image made with reflink=1 and returns
// the mount point (unmounted when the test ends); it skips where that
// cannot be done.
func mountXFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop-mounting an XFS image needs root")
	}
	if _, err := exec.LookPath("mkfs.xfs"); err != nil {
		t.Skip("mkfs.xfs is not installed (xfsprogs)")
	}
	tmp := t.TempDir()
	img := filepath.Join(tmp, "xfs.img")
	mnt := filepath.Join(tmp, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 320<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.xfs", "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.xfs -m reflink=1 failed: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount an XFS image here (losetup or mount not allowed): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt
}

// TestOptimiseReflinkXFS: copies stored with dedup off on XFS come to
// share extents (separate inodes) after optimise.
func TestOptimiseReflinkXFS(t *testing.T) {
	dir := filepath.Join(mountXFS(t), "store")
	s, err := Open(dir, Options{Dedup: DedupNone})
	if err != nil {
		t.Fatal(err)
	}
	a, a2, b := ingestTwins(t, s)
	for _, p := range []string{a, a2, b} {
		if shared, err := ExtentsShared(p); err != nil || shared {
			t.Fatalf("%s: extents shared before optimise (%v)", p, err)
		}
	}
	s.Close()
	s = openTest(t, dir, Options{})
	if s.Dedup() != DedupReflink {
		t.Fatalf("auto dedup picked %v on XFS with reflink=1", s.Dedup())
	}
	rep, err := s.Optimise(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shared < 3 {
		t.Errorf("optimise shared %d files, want at least 3: %+v", rep.Shared, rep)
	}
	if inode(t, a) == inode(t, b) || inode(t, a) == inode(t, a2) {
		t.Errorf("reflinked files share an inode")
	}
	for _, p := range []string{a, a2, b} {
		if shared, err := ExtentsShared(p); err != nil || !shared {
			t.Errorf("%s: extents not shared after optimise (%v)", p, err)
		}
	}
	mustVerify(t, s, true)
}
