// Package durable is the one way nexis changes files that must survive a
// crash, and the one way it reaches into a target system: every path is
// resolved inside a root as chroot(2) would resolve it, by the kernel.
//
// # Durability
//
// A file or link is never changed in place. Its new content is written
// beside the destination, unnamed (O_TMPFILE) where the file system can,
// made durable (fsync), given its owner and mode, named with a temporary
// name (".nexis-tmp-<random>-<name>") and renamed over the destination;
// then the directory is fsynced. A reader, or a
// crash, sees the old entry or the new one, never a torn one (gokrazy's
// renameio, containerd's content commit). A file is created 0600 and gets
// its mode only once complete, so a secret is never readable by others,
// not even for a moment. Removals and renames fsync their directories too.
// RemoveTemps deletes what an interrupted write left behind.
//
// # Confinement
//
// A Root is an open directory. A path given to its methods ("/etc/passwd",
// "etc/passwd" alike) is a path of the system that lives there: a
// symbolic link to "/x" means <root>/x, ".." stops at the root, and
// /proc's magic links are refused. The kernel does this
// (openat2(2) with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, Linux 5.6 or
// later) for every directory above the entry an operation names; the
// entry itself is then reached with an *at(2) call relative to that
// directory, so a race that swaps a component for a link cannot lead
// outside the root.
//
// The entry an operation names is never followed when it changes it:
// writing, linking or removing /etc/passwd replaces or removes the entry
// /etc/passwd, even when it is a symbolic link; Lchown and Mkdir's owner
// and mode apply to the entry itself. Reads (Open, ReadFile, Stat) follow
// links, inside the root, as a program of the target system would.
//
// Go's os.Root was considered: it refuses absolute links as escapes
// rather than resolving them inside the root, and a system tree is full
// of absolute links (/etc/static, /etc/localtime, /run/current-system), so
// it cannot read a target as that target's own programs do. Its Chmod and
// Chown also follow a link swapped in at the last moment; here they do not.
package durable

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Owner is who a created entry belongs to; a nil *Owner leaves it to the
// process (root).
type Owner struct{ UID, GID int }

// Root is a directory that paths are resolved in, as chroot(2) would.
// Its methods are safe for concurrent use.
type Root struct {
	dir     string // as given, for messages
	fd      int    // O_PATH of the directory
	resolve uint64 // openat2's RESOLVE_ flags
	// unsynced roots replace files atomically but not durably (see
	// WriteVerified).
	unsynced bool
}

// OpenRoot opens dir as a root. An empty dir is an error, never the
// current directory or the host's /.
func OpenRoot(dir string) (*Root, error) {
	if dir == "" {
		return nil, errors.New("the root directory is empty: name the directory of the system (/ for this machine)")
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: dir, Err: err}
	}
	r := &Root{dir: dir, fd: fd, resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	// Fail here, not on the first write, when the kernel lacks openat2.
	probe, err := r.openat2(".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	unix.Close(probe)
	return r, nil
}

// OpenNoLinks opens dir (resolved inside r) as a root in which no path
// may pass through a symbolic link at all, nor climb out with "..": a
// user's home, where the user may plant links and root must not follow
// them. An operation that meets a link fails with an error wrapping
// ELOOP (see IsLink).
func (r *Root) OpenNoLinks(dir string) (*Root, error) {
	fd, err := r.openat2(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, r.pathErr("open", dir, err)
	}
	return &Root{dir: r.host(dir), fd: fd, resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}, nil
}

// IsLink reports whether err is a root made by OpenNoLinks refusing a
// symbolic link on the way.
func IsLink(err error) bool { return errors.Is(err, unix.ELOOP) }

// Dir is the directory the root was opened on.
func (r *Root) Dir() string { return r.dir }

// Close releases the root's descriptor.
func (r *Root) Close() error {
	if r.fd < 0 {
		return nil
	}
	err := unix.Close(r.fd)
	r.fd = -1
	return err
}

// host is p as this machine names it, for messages.
func (r *Root) host(p string) string {
	return filepath.Join(r.dir, filepath.FromSlash(p))
}

func (r *Root) pathErr(op, p string, err error) error {
	return &fs.PathError{Op: op, Path: r.host(p), Err: err}
}

// rel is p relative to the root's descriptor.
func rel(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// openat2 opens p inside the root, following links inside it.
func (r *Root) openat2(p string, flags int) (int, error) {
	how := &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: r.resolve,
	}
	for {
		fd, err := unix.Openat2(r.fd, rel(p), how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			// A rename elsewhere raced with a ".." of the lookup: the
			// kernel asks to retry rather than risk an escape.
			continue
		case errors.Is(err, unix.ENOSYS):
			return -1, fmt.Errorf("openat2: this kernel cannot resolve paths inside a root (Linux 5.6 or later is needed): %w", err)
		default:
			return -1, err
		}
	}
}

// split cuts p into the directory above its entry and the entry's name,
// without cleaning it: ".." and links in the directory are the kernel's
// to resolve. A path that names no entry (the root itself, ".", "..")
// is an error.
func split(p string) (dir, name string, err error) {
	t := strings.TrimRight(p, "/")
	i := strings.LastIndexByte(t, '/')
	dir, name = t[:i+1], t[i+1:]
	if name == "" || name == "." || name == ".." {
		return "", "", fmt.Errorf("%q names no entry of a directory", p)
	}
	return dir, name, nil
}

// parent opens the directory above p's entry for reading (so it can be
// fsynced) and returns it with the entry's name.
func (r *Root) parent(op, p string) (int, string, error) {
	dir, name, err := split(p)
	if err != nil {
		return -1, "", r.pathErr(op, p, err)
	}
	fd, err := r.openat2(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, "", r.pathErr(op, p, err)
	}
	return fd, name, nil
}

// Open opens p for reading, following links inside the root.
func (r *Root) Open(p string) (*os.File, error) {
	fd, err := r.openat2(p, unix.O_RDONLY|unix.O_NOCTTY)
	if err != nil {
		return nil, r.pathErr("open", p, err)
	}
	return os.NewFile(uintptr(fd), r.host(p)), nil
}

// OpenFile opens the entry p with os.OpenFile's flag and perm; a link
// at p itself is not followed (a lock file, say, is the entry named).
func (r *Root) OpenFile(p string, flag int, perm fs.FileMode) (*os.File, error) {
	dfd, name, err := r.parent("open", p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, uint32(perm.Perm()))
	if err != nil {
		return nil, r.pathErr("open", p, err)
	}
	return os.NewFile(uintptr(fd), r.host(p)), nil
}

// ReadFile reads p, following links inside the root.
func (r *Root) ReadFile(p string) ([]byte, error) {
	f, err := r.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// FS is the root as an fs.FS, for fs.WalkDir and fs.ReadFile: links
// are followed inside the root (a walk does not descend into them).
func (r *Root) FS() fs.FS { return rootFS{r} }

type rootFS struct{ r *Root }

func (f rootFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return f.r.Open(name)
}

// ReadDir lists the directory p, following links inside the root.
func (r *Root) ReadDir(p string) ([]fs.DirEntry, error) {
	fd, err := r.openat2(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, r.pathErr("open", p, err)
	}
	f := os.NewFile(uintptr(fd), r.host(p))
	defer f.Close()
	return f.ReadDir(-1)
}

// Stat describes p, following links inside the root.
func (r *Root) Stat(p string) (fs.FileInfo, error) {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return nil, r.pathErr("stat", p, err)
	}
	f := os.NewFile(uintptr(fd), r.host(p))
	defer f.Close()
	return f.Stat()
}

// Lstat describes p's entry itself: a link is not followed.
func (r *Root) Lstat(p string) (fs.FileInfo, error) {
	if rel(p) == "." {
		return r.Stat(p)
	}
	dfd, name, err := r.parent("lstat", p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	// An O_PATH descriptor of the entry itself, link or not: fstat on
	// it gives an ordinary FileInfo (with *syscall.Stat_t).
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, r.pathErr("lstat", p, err)
	}
	f := os.NewFile(uintptr(fd), r.host(p))
	defer f.Close()
	return f.Stat()
}

// Readlink reads the link p.
func (r *Root) Readlink(p string) (string, error) {
	dfd, name, err := r.parent("readlink", p)
	if err != nil {
		return "", err
	}
	defer unix.Close(dfd)
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", r.pathErr("readlink", p, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Resolve is the host path of p resolved inside the root, for code that
// takes paths (the store, build logs). Missing components are resolved
// as far as they exist, a dangling link included, so creating the rest
// stays inside the root. It is a snapshot: whoever may change the
// directories on that path after it resolved could lead later accesses
// elsewhere, so hand only directories the root's owner controls.
func (r *Root) Resolve(p string) (string, error) {
	var rest []string
	cur := p
	for hops := 0; ; {
		fd, err := r.openat2(cur, unix.O_PATH)
		if err == nil {
			phys, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
			unix.Close(fd)
			if err != nil {
				return "", r.pathErr("resolve", p, fmt.Errorf("reading the resolved path (is /proc mounted?): %w", err))
			}
			out := filepath.Join(append([]string{phys}, rest...)...)
			if err := r.inside(out); err != nil {
				return "", r.pathErr("resolve", p, err)
			}
			return out, nil
		}
		if !errors.Is(err, unix.ENOENT) {
			return "", r.pathErr("resolve", p, err)
		}
		dir, name, serr := split(cur)
		if serr != nil {
			return "", r.pathErr("resolve", p, err)
		}
		if target, lerr := r.Readlink(cur); lerr == nil {
			// A dangling link: what it names, inside the root.
			if hops++; hops > 40 {
				return "", r.pathErr("resolve", p, unix.ELOOP)
			}
			if !strings.HasPrefix(target, "/") {
				target = dir + target
			}
			cur = target
			continue
		}
		rest = append([]string{name}, rest...)
		cur = dir
	}
}

// inside checks that host path phys is the root or below it.
func (r *Root) inside(phys string) error {
	top, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(r.fd))
	if err != nil {
		return fmt.Errorf("reading the root's path (is /proc mounted?): %w", err)
	}
	if phys != top && !strings.HasPrefix(phys, strings.TrimSuffix(top, "/")+"/") {
		return fmt.Errorf("resolves to %s, outside the root %s", phys, top)
	}
	return nil
}

func tmpName(name string) string {
	var b [6]byte
	rand.Read(b[:])
	// NAME_MAX is 255: a long name is shortened in its temporary one.
	if len(name) > 200 {
		name = name[:200]
	}
	return TempPrefix + hex.EncodeToString(b[:]) + "-" + name
}

// TempPrefix starts the names of temporary files a write makes beside
// its destination.
const TempPrefix = ".nexis-tmp-"

// replace makes the entry name of directory dfd what create makes at
// the temporary name it is given, then syncs the directory.
func (r *Root) replace(op, p string, create func(dfd int, tmp string) error) error {
	dfd, name, err := r.parent(op, p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := tmpName(name)
	if err := create(dfd, tmp); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return r.pathErr(op, p, err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		return r.pathErr(op, p, err)
	}
	if r.unsynced {
		return nil
	}
	if err := unix.Fsync(dfd); err != nil {
		return r.pathErr("sync directory of", p, err)
	}
	return nil
}

// WriteFile atomically replaces p with data, mode and owner.
func (r *Root) WriteFile(p string, data []byte, mode fs.FileMode, owner *Owner) error {
	return r.Write(p, mode, owner, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces p with what fill writes, with mode and
// owner. When fill fails, p is left as it was.
func (r *Root) Write(p string, mode fs.FileMode, owner *Owner, fill func(io.Writer) error) error {
	return r.replace("write", p, func(dfd int, tmp string) error {
		return writeTemp(dfd, tmp, mode, owner, !r.unsynced, fill)
	})
}

// writeTemp creates the file tmp in the directory dfd, 0600 until it is
// complete: what fill writes, then its owner and mode, then fsync if
// sync. The file is made unnamed (O_TMPFILE) and given its name only
// once complete, so a process killed while it writes (an evaluation
// writes its package cache as it goes, for seconds) leaves nothing
// behind; where the file system cannot make unnamed files, it is named
// from the start.
func writeTemp(dfd int, tmp string, mode fs.FileMode, owner *Owner, sync bool, fill func(io.Writer) error) error {
	fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	named := err != nil
	if named {
		fd, err = unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
	}
	f := os.NewFile(uintptr(fd), tmp)
	err = fill(f)
	if err == nil && owner != nil {
		err = f.Chown(owner.UID, owner.GID)
	}
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if err == nil && !named {
		err = linkUnnamed(f, dfd, tmp)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// linkUnnamed gives the unnamed file f the name tmp in directory dfd:
// through its descriptor where the caller may (CAP_DAC_READ_SEARCH),
// else through /proc, as any user may.
func linkUnnamed(f *os.File, dfd int, tmp string) error {
	err := unix.Linkat(int(f.Fd()), "", dfd, tmp, unix.AT_EMPTY_PATH)
	if err == nil {
		return nil
	}
	if perr := linkThroughProc(f, dfd, tmp); perr != nil {
		return fmt.Errorf("name the file written: %w", err)
	}
	return nil
}

func linkThroughProc(f *os.File, dfd int, tmp string) error {
	return unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), dfd, tmp, unix.AT_SYMLINK_FOLLOW)
}

// Symlink atomically makes p a symbolic link to target, the link itself
// owned by owner when it is not nil. Whatever p was (a file, another
// link) is replaced; a directory is not.
func (r *Root) Symlink(target, p string, owner *Owner) error {
	return r.replace("symlink", p, func(dfd int, tmp string) error {
		return symlinkOwned(target, dfd, tmp, owner)
	})
}

func symlinkOwned(target string, dfd int, tmp string, owner *Owner) error {
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return err
	}
	if owner != nil {
		return unix.Fchownat(dfd, tmp, owner.UID, owner.GID, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// ErrNotOurs is returned by ReplaceLink for an entry it may not replace.
var ErrNotOurs = errors.New("exists and is not a link this program made")

// ReplaceLink atomically makes p a symbolic link to target when p does
// not exist or is a symbolic link whose target ours accepts; anything
// else (a file, a directory, someone else's link) is left exactly as it
// was and the error wraps ErrNotOurs. The check and the replacement are
// one step: the old entry is exchanged with the new link
// (renameat2(RENAME_EXCHANGE)) and exchanged back when it is not ours.
func (r *Root) ReplaceLink(target, p string, ours func(old string) bool) error {
	dfd, name, err := r.parent("symlink", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := tmpName(name)
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return r.pathErr("symlink", p, err)
	}
	err = unix.Renameat2(dfd, tmp, dfd, name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) || noFlags(err) {
		err = r.exchangeIfOurs(dfd, tmp, name, p, ours)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
		if errors.Is(err, ErrNotOurs) {
			return err
		}
		return r.pathErr("symlink", p, err)
	}
	if err := unix.Fsync(dfd); err != nil {
		return r.pathErr("sync directory of", p, err)
	}
	return nil
}

// exchangeIfOurs swaps the new link tmp with the existing entry name,
// keeps the swap when the old entry (now at tmp) is a link ours accepts,
// and removes it; else it swaps back.
func (r *Root) exchangeIfOurs(dfd int, tmp, name, p string, ours func(string) bool) error {
	notOurs := func(what string) error {
		return fmt.Errorf("%s %s: %w", r.host(p), what, ErrNotOurs)
	}
	isOurs := func(at string) (bool, string) {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, at, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, "cannot be inspected"
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return false, "is a directory"
			}
			return false, "is not a symbolic link"
		}
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(dfd, at, buf)
		if err != nil || !ours(string(buf[:n])) {
			return false, "is a symbolic link to " + strconv.Quote(string(buf[:max(n, 0)]))
		}
		return true, ""
	}
	err := unix.Renameat2(dfd, tmp, dfd, name, unix.RENAME_EXCHANGE)
	if noFlags(err) {
		// A filesystem without exchange: look, then rename. Someone
		// who can change this directory could race the look.
		var st unix.Stat_t
		if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if ok, why := isOurs(name); !ok {
				return notOurs(why)
			}
		}
		return unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		return err
	}
	if ok, why := isOurs(tmp); !ok {
		if err := unix.Renameat2(dfd, tmp, dfd, name, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("putting back what was at %s (now at %s): %w", r.host(p), tmp, err)
		}
		return notOurs(why)
	}
	return unix.Unlinkat(dfd, tmp, 0)
}

// noFlags reports a renameat2 flag the filesystem (or kernel) lacks.
func noFlags(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)
}

// Mkdir makes p a directory with mode and owner: it is created when
// missing, and an existing directory gets the mode and owner. An entry
// that is not a directory, a link included, is an error.
func (r *Root) Mkdir(p string, mode fs.FileMode, owner *Owner) error {
	dfd, name, err := r.parent("mkdir", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, name, uint32(mode.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
		return r.pathErr("mkdir", p, err)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			err = fmt.Errorf("exists and is not a directory (a link is not followed): %w", err)
		}
		return r.pathErr("mkdir", p, err)
	}
	defer unix.Close(fd)
	if owner != nil {
		if err := unix.Fchown(fd, owner.UID, owner.GID); err != nil {
			return r.pathErr("chown", p, err)
		}
	}
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		return r.pathErr("chmod", p, err)
	}
	if err := unix.Fsync(dfd); err != nil {
		return r.pathErr("sync directory of", p, err)
	}
	return nil
}

// MkdirAll makes p and its missing parents directories (mode before
// the umask, owned by the process), following existing links inside
// the root.
func (r *Root) MkdirAll(p string, mode fs.FileMode) error {
	if fd, err := r.openat2(p, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		unix.Close(fd)
		return nil
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		if part == "" {
			continue
		}
		cur += "/" + part
		fd, err := r.openat2(cur, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return r.pathErr("mkdir", cur, err)
		}
		dfd, name, err := r.parent("mkdir", cur)
		if err != nil {
			return err
		}
		err = unix.Mkdirat(dfd, name, uint32(mode.Perm()))
		if err == nil {
			err = unix.Fsync(dfd)
		}
		unix.Close(dfd)
		if errors.Is(err, unix.EEXIST) {
			// Made meanwhile, or a link to nothing inside the root,
			// which mkdir -p does not follow either: say so.
			if fd, oerr := r.openat2(cur, unix.O_PATH|unix.O_DIRECTORY); oerr == nil {
				unix.Close(fd)
				continue
			}
			if target, lerr := r.Readlink(cur); lerr == nil {
				return r.pathErr("mkdir", cur, fmt.Errorf("a link to %s, which does not exist inside the root: %w", target, unix.ENOENT))
			}
			continue
		}
		if err != nil {
			return r.pathErr("mkdir", cur, err)
		}
	}
	return nil
}

// Lchown changes the owner of p's entry itself: a link is not followed.
func (r *Root) Lchown(p string, uid, gid int) error {
	dfd, name, err := r.parent("lchown", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Fchownat(dfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return r.pathErr("lchown", p, err)
	}
	return nil
}

// Chown changes the owner of what p names, following links inside the
// root.
func (r *Root) Chown(p string, uid, gid int) error {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return r.pathErr("chown", p, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return r.pathErr("chown", p, err)
	}
	return nil
}

// Chmod changes the mode of what p names, following links inside the
// root. The file changed is the one resolved: a link swapped in later
// is not followed.
func (r *Root) Chmod(p string, mode fs.FileMode) error {
	fd, err := r.openat2(p, unix.O_PATH)
	if err != nil {
		return r.pathErr("chmod", p, err)
	}
	defer unix.Close(fd)
	err = unix.Fchmodat(fd, "", uint32(mode.Perm()), unix.AT_EMPTY_PATH)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		// Before fchmodat2 (Linux 6.6): through the descriptor's
		// /proc link, which names this very inode.
		err = unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), uint32(mode.Perm()))
	}
	if err != nil {
		return r.pathErr("chmod", p, err)
	}
	return nil
}

// Remove removes the file, link or empty directory p (a link itself,
// never what it points at) and syncs its directory.
func (r *Root) Remove(p string) error {
	dfd, name, err := r.parent("remove", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	err = unix.Unlinkat(dfd, name, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
	}
	if err != nil {
		return r.pathErr("remove", p, err)
	}
	if err := unix.Fsync(dfd); err != nil {
		return r.pathErr("sync directory of", p, err)
	}
	return nil
}

// Rename moves the entry oldp to newp (replacing what is there, as
// rename(2) does) and syncs both directories.
func (r *Root) Rename(oldp, newp string) error {
	ofd, oname, err := r.parent("rename", oldp)
	if err != nil {
		return err
	}
	defer unix.Close(ofd)
	nfd, nname, err := r.parent("rename", newp)
	if err != nil {
		return err
	}
	defer unix.Close(nfd)
	if err := unix.Renameat(ofd, oname, nfd, nname); err != nil {
		return &os.LinkError{Op: "rename", Old: r.host(oldp), New: r.host(newp), Err: err}
	}
	if err := unix.Fsync(nfd); err != nil {
		return r.pathErr("sync directory of", newp, err)
	}
	if err := unix.Fsync(ofd); err != nil {
		return r.pathErr("sync directory of", oldp, err)
	}
	return nil
}

// RemoveTemps removes the temporary files interrupted writes left in the
// directory dir; a missing directory has none. Only call it while no
// other writer can be writing there (under the lock that orders writers).
func (r *Root) RemoveTemps(dir string) error {
	fd, err := r.openat2(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return r.pathErr("open", dir, err)
	}
	f := os.NewFile(uintptr(fd), r.host(dir))
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return r.pathErr("read", dir, err)
	}
	removed := false
	for _, n := range names {
		if strings.HasPrefix(n, TempPrefix) {
			if err := unix.Unlinkat(fd, n, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return r.pathErr("remove", dir+"/"+n, err)
			}
			removed = true
		}
	}
	if removed {
		return f.Sync()
	}
	return nil
}
