package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/nexisos/nexis/store/storepath"
)

// MakePrivate makes the registered single-file path p readable by root
// only (mode 0400), on an inode of its own. Secrets are ingested private
// (IngestOptions.Private); activation calls this for every secret it
// copies into place, which also fixes a secret a store made before
// ingest knew about privacy: such a file may share its inode with the
// content pool and with public paths of the same bytes, and a shared
// inode has one mode, so it first gets a copy of its own (renamed over
// it, atomically). The tree hash records only the execute bit, so the
// path stays valid and verifies.
func (s *Store) MakePrivate(p storepath.Path) error {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return err
	}
	phys := s.Physical(p)
	var st unix.Stat_t
	if err := unix.Lstat(phys, &st); err != nil {
		return fmt.Errorf("making %s private: %w", s.Logical(p), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a single file: only a file can be made private", s.Logical(p))
	}
	// No writer lock is needed (activation may hold the store
	// read-only): the bytes do not change, the path's registration
	// neither, and a crash leaves at worst a ".private-" file in the
	// bucket, which verify reports as garbage.
	switch {
	case st.Mode&0o7777 == modePrivate && st.Nlink == 1:
	case st.Nlink == 1:
		if err := os.Chmod(phys, modePrivate); err != nil {
			return fmt.Errorf("making %s private: %w", s.Logical(p), err)
		}
	default:
		if err := s.privateCopy(phys); err != nil {
			return fmt.Errorf("making %s private: %w", s.Logical(p), err)
		}
	}
	if err := s.dropSecretFromPool(p); err != nil {
		return fmt.Errorf("making %s private: %w", s.Logical(p), err)
	}
	return nil
}

// dropSecretFromPool removes the pool entry of private p's content when
// no other registered file holds those bytes: a pool entry is readable
// by everyone, and a secret that came in public (imported, or made by an
// older nexis) left one. An entry other files link to (hard links) or
// count (reflinks) stays: those bytes are public already.
func (s *Store) dropSecretFromPool(p storepath.Path) error {
	files, err := s.Manifest(p)
	if err != nil || len(files) != 1 || !files[0].Type.IsRegular() || files[0].Size == 0 {
		return err
	}
	k := keyOf(&files[0])
	var st unix.Stat_t
	if err := unix.Lstat(s.poolPath(k), &st); err != nil {
		return nil
	}
	if st.Nlink > 1 {
		return nil
	}
	if n, err := s.ContentRefcount(files[0].Digest, files[0].Type); err != nil || n > 1 {
		return err
	}
	if err := os.Remove(s.poolPath(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// privateCopy replaces the file at phys with a copy of its own, mode
// 0400 and mtime 1, synced before the rename and the bucket after it.
func (s *Store) privateCopy(phys string) error {
	tmp := filepath.Join(filepath.Dir(phys), randomName(".private-"))
	sfd, err := unix.Open(phys, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	dfd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, modePrivate)
	if err != nil {
		return err
	}
	err = copyDataFD(dfd, sfd, st.Size)
	if err == nil {
		err = unix.Fchmod(dfd, modePrivate)
	}
	if err == nil {
		err = setMtimeFd(dfd)
	}
	if err == nil {
		err = unix.Fsync(dfd)
	}
	unix.Close(dfd)
	if err == nil {
		err = os.Rename(tmp, phys)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return fsyncPath(filepath.Dir(phys))
}
