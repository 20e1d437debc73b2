package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/nexisos/nexis/internal/parallel"
	"golang.org/x/sys/unix"
)

// Normalised attributes of stored files.
const (
	modeFile = 0o444
	modeExec = 0o555
	modeDir  = 0o555
	// modePrivate is a secret's: readable by root only, on an inode no
	// other file shares.
	modePrivate = 0o400
)

// epochOne is the mtime of every stored file: 1 s after the epoch, as Nix
// does, so that tools treating 0 as "unknown" still work.
var epochOne = []unix.Timespec{{Sec: 1}, {Sec: 1}}

func setMtime(p string) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, epochOne, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting mtime of %s: %w", p, err)
	}
	return nil
}

func setMtimeFd(fd int) error {
	return unix.UtimesNanoAt(fd, "", epochOne, unix.AT_EMPTY_PATH)
}

// fsyncPath fsyncs a file or directory by name.
func fsyncPath(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("syncing %s: %w", p, err)
	}
	return nil
}

// syncFS flushes the whole filesystem holding p: for a large tree one
// syncfs is far cheaper than an fsync per file.
func syncFS(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("syncing filesystem of %s: %w", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing filesystem of %s: %w", p, err)
	}
	return nil
}

// mkdirAllSynced creates dir and missing parents up to (not including)
// stop, fsyncing each parent whose entries changed so that the new
// directories survive a crash.
func mkdirAllSynced(dir, stop string) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != stop && parent != dir {
		if err := mkdirAllSynced(parent, stop); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return fsyncPath(parent)
}

func randomName(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// removeTree deletes p even when it is a read-only stored tree: as root
// modes do not matter, otherwise directories are made writable first.
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(q, 0o755)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// clone makes dst share src's extents (FICLONE).
func clone(dst, src *os.File) error {
	return unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
}

// copyDataFD copies size bytes from offset 0 of sfd to dfd, in the
// kernel when it can (copy_file_range), else through a buffer.
func copyDataFD(dfd, sfd int, size int64) error {
	var off int64
	for off < size {
		roff := off
		n, err := unix.CopyFileRange(sfd, &roff, dfd, nil, int(min(size-off, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				break
			}
			return err
		}
		if n == 0 {
			break
		}
		off += int64(n)
	}
	if off < size {
		buf := make([]byte, 256<<10)
		for off < size {
			m, err := unix.Pread(sfd, buf[:min(int64(len(buf)), size-off)], off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if m == 0 {
				break
			}
			if _, err := unix.Pwrite(dfd, buf[:m], off); err != nil {
				return err
			}
			off += int64(m)
		}
	}
	if off != size {
		return fmt.Errorf("copied %d bytes, expected %d: the source changed", off, size)
	}
	return nil
}

// fiemap flags and ioctl, not in x/sys.
const (
	fsIocFiemap        = 0xC020660B
	fiemapExtentLast   = 0x1
	fiemapExtentShared = 0x2000
	fiemapFlagSync     = 0x1
)

type fiemapHdr struct {
	start, length           uint64
	flags, mappedExtents    uint32
	extentCount, reserved32 uint32
}

type fiemapExtent struct {
	logical, physical, length uint64
	reserved64                [2]uint64
	flags                     uint32
	reserved                  [3]uint32
}

// ExtentsShared reports whether every extent of the file at p is marked
// shared by FIEMAP: reflinked data. Files without extents report false.
func ExtentsShared(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	const n = 64
	buf := make([]byte, int(unsafe.Sizeof(fiemapHdr{}))+n*int(unsafe.Sizeof(fiemapExtent{})))
	hdr := (*fiemapHdr)(unsafe.Pointer(&buf[0]))
	hdr.length = ^uint64(0)
	hdr.flags = fiemapFlagSync
	hdr.extentCount = n
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0]))); e != 0 {
		return false, fmt.Errorf("FIEMAP %s: %w", p, e)
	}
	if hdr.mappedExtents == 0 {
		return false, nil
	}
	exts := unsafe.Slice((*fiemapExtent)(unsafe.Pointer(&buf[unsafe.Sizeof(fiemapHdr{})])), hdr.mappedExtents)
	for _, e := range exts {
		if e.flags&fiemapExtentShared == 0 {
			return false, nil
		}
	}
	return true, nil
}

// probeDedup finds the best mode the store's filesystem supports by
// trying it in tmp.
func (s *Store) probeDedup() DedupMode {
	dir, err := os.MkdirTemp(s.tmpDir(), "probe-")
	if err != nil {
		return DedupCopy
	}
	defer os.RemoveAll(dir)
	a, err := os.Create(filepath.Join(dir, "a"))
	if err != nil {
		return DedupCopy
	}
	defer a.Close()
	a.Write(make([]byte, 4096))
	b, err := os.Create(filepath.Join(dir, "b"))
	if err != nil {
		return DedupCopy
	}
	defer b.Close()
	if clone(b, a) == nil {
		return DedupReflink
	}
	if os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "c")) == nil {
		return DedupHardlink
	}
	return DedupCopy
}

// resolveDedupReadOnly reports what a writer would pick without writing:
// read-only stores never dedupe, this only feeds `store info`.
func (s *Store) resolveDedupReadOnly() DedupMode {
	if s.dedup != DedupAuto {
		return s.dedup
	}
	var st unix.Statfs_t
	if unix.Statfs(s.dir, &st) == nil && (st.Type == unix.XFS_SUPER_MAGIC || st.Type == unix.BTRFS_SUPER_MAGIC) {
		return DedupReflink
	}
	return DedupHardlink
}

// parallelDo runs fn(0..n-1) on GOMAXPROCS goroutines (at least two, as
// file I/O waits) and returns the first error.
func parallelDo(n int, fn func(i int) error) error {
	return parallel.Do(n, max(runtime.GOMAXPROCS(0), 2)*2, fn)
}

// fsTopdirFl is FS_TOPDIR_FL (chattr +T), missing from x/sys.
const fsTopdirFl = 0x00020000

// spreadSubdirs marks dir so that ext4 places its subdirectories as it
// places top-level ones (the Orlov allocator), in block groups with free
// inodes. Without it every staged tree nests in the block group of
// .nexis/tmp, where the churn of earlier ingests leaves recently deleted
// inodes that ext4 scans past on every file created: half the system
// time of a large ingest. Best effort: other filesystems ignore or refuse
// the flag, which changes nothing.
func spreadSubdirs(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopdirFl != 0 {
		return
	}
	unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopdirFl)
}

// LockFile opens (creating it and its directory) the lock file at path
// and takes an flock of kind how (unix.LOCK_EX or unix.LOCK_SH), waiting
// for other holders and retrying when a signal interrupts the wait.
// Closing the file releases the lock, as does the process's death.
func LockFile(path string, perm os.FileMode, how int) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, perm)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
