package activate

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Every write activation makes to the live system goes through replace:
// the new content is built beside its destination under a temporary
// name, made durable, and renamed over the destination, so a reader (or
// a crash) sees the old entry or the new one, never a torn one
// (gokrazy's renameio, one helper for everything).

// Owner is who a written entry belongs to; nil means leave it to the
// process (root).
type Owner struct{ UID, GID int }

func tmpName(dst string) string {
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(filepath.Dir(dst), ".nexis-tmp-"+hex.EncodeToString(b[:])+"-"+filepath.Base(dst))
}

// replace makes dst atomically become what create writes at the temporary
// path it is given.
func replace(dst string, create func(tmp string) error) error {
	tmp := tmpName(dst)
	if err := create(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing %s: %w", dst, err)
	}
	return syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// WriteFile atomically replaces dst with data, mode and owner.
func WriteFile(dst string, data []byte, mode fs.FileMode, owner *Owner) error {
	return writeFrom(dst, mode, owner, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// CopyFile atomically replaces dst with a copy of src, with mode and owner.
func CopyFile(src, dst string, mode fs.FileMode, owner *Owner) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFrom(dst, mode, owner, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

func writeFrom(dst string, mode fs.FileMode, owner *Owner, fill func(io.Writer) error) error {
	return replace(dst, func(tmp string) error {
		// Created 0600 and given its mode and owner only once complete:
		// a secret is never readable by others, not even for a moment.
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("writing %s: %w", dst, err)
		}
		err = fill(f)
		if err == nil && owner != nil {
			err = f.Chown(owner.UID, owner.GID)
		}
		if err == nil {
			err = f.Chmod(mode)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", dst, err)
		}
		return nil
	})
}

// Symlink atomically makes dst a symbolic link to target.
func Symlink(target, dst string) error {
	return replace(dst, func(tmp string) error {
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		return nil
	})
}

// SymlinkOwned is Symlink with the link itself owned by owner (a home
// file's link belongs to the user).
func SymlinkOwned(target, dst string, owner *Owner) error {
	return replace(dst, func(tmp string) error {
		if err := os.Symlink(target, tmp); err != nil {
			return fmt.Errorf("linking %s: %w", dst, err)
		}
		if owner != nil {
			if err := os.Lchown(tmp, owner.UID, owner.GID); err != nil {
				return fmt.Errorf("linking %s: %w", dst, err)
			}
		}
		return nil
	})
}

// removeEntry removes a file or link; a missing one is success.
func removeEntry(p string) error {
	err := os.Remove(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// cleanTemps removes temporary files an interrupted replace left in dir.
func cleanTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if len(e.Name()) > 11 && e.Name()[:11] == ".nexis-tmp-" {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
