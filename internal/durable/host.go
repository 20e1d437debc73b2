package durable

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Files of this machine that are not part of a target system (a lock
// file beside a config, an evaluation cache entry, a key pair, a binary
// cache's files) are written the same way: the directory that holds the
// file is opened as a root, so the entry named is the one thing that
// changes, and it changes atomically and durably.

// WriteFile atomically replaces the file at path (a path of this
// machine) with data and mode.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	return Write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces the file at path with what fill writes, with
// mode. When fill fails, the file is left as it was.
func Write(path string, mode fs.FileMode, fill func(io.Writer) error) error {
	r, name, err := openParent(path)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Write(name, mode, nil, fill)
}

// WriteVerified is Write without fsync, for files whose readers check
// what they read against a digest it carries and can do without the
// file: nexis's evaluation caches. A reader still never sees half a
// file, but after a crash the file may be missing, empty or damaged,
// which its reader finds and ignores. Syncing a cache of 10,000
// packages' evaluation cost a cold evaluation 15 ms of its 360.
func WriteVerified(path string, mode fs.FileMode, fill func(io.Writer) error) error {
	r, name, err := openParent(path)
	if err != nil {
		return err
	}
	defer r.Close()
	r.unsynced = true
	return r.Write(name, mode, nil, fill)
}

// WriteNew writes data to a new file at path with mode, atomically and
// durably; an existing entry at path is left as it is and the error
// wraps fs.ErrExist. A reader never sees the file before it is
// complete: a secret key, say, is never there half written.
func WriteNew(path string, data []byte, mode fs.FileMode) error {
	r, name, err := openParent(path)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.WriteNew(name, data, mode, nil)
}

// openParent opens the directory of path as a root, and gives the
// file's name in it.
func openParent(path string) (*Root, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	dir, name := filepath.Split(abs)
	if name == "" {
		return nil, "", fmt.Errorf("%s names no file", path)
	}
	r, err := OpenRoot(dir)
	if err != nil {
		return nil, "", err
	}
	return r, name, nil
}

// WriteNew makes p a new file holding data, with mode and owner: written
// under a temporary name, synced, then linked to p, which fails (wrapping
// fs.ErrExist) when p exists; the directory is synced after.
func (r *Root) WriteNew(p string, data []byte, mode fs.FileMode, owner *Owner) error {
	dfd, name, err := r.parent("write", p)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp := tmpName(name)
	defer unix.Unlinkat(dfd, tmp, 0)
	err = writeTemp(dfd, tmp, mode, owner, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err == nil {
		// A link, unlike a rename, never replaces what is there.
		err = unix.Linkat(dfd, tmp, dfd, name, 0)
	}
	if err != nil {
		return r.pathErr("write", p, err)
	}
	if err := unix.Unlinkat(dfd, tmp, 0); err != nil {
		return r.pathErr("write", p, err)
	}
	if err := unix.Fsync(dfd); err != nil {
		return r.pathErr("sync directory of", p, err)
	}
	return nil
}
