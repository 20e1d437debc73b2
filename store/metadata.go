package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A store's metadata is the truth about which paths exist; the disk
// alone is not. A store whose database is missing, unreadable, emptied
// or another store's must therefore never be taken for an empty store:
// a writer would start generation 1 over the old ones and verify
// --repair would move every path to the trash. Open tells these cases
// apart before it creates anything:
//
//	<store>/.nexis/store-id   the store's identity, random, written when its
//	                          database is made and kept in the database too
//	                          (default "id")
//
// A store is created only in an empty or absent directory (our own
// empty scaffolding aside). The database must hold the id the marker
// names; a database without one (made by an older nexis) is adopted
// unless it registers no path while the buckets hold some. Everything
// else is refused with ErrMetadataLost, naming the store and `nexis
// store recover` (Recover), which rebuilds the metadata and deletes
// nothing.

// ErrMetadataLost is wrapped by the refusal to use a store whose
// metadata is missing, unreadable or not its own.
var ErrMetadataLost = errors.New("the store's metadata is lost")

// ErrNotAStore is wrapped by the refusal to create a store in a
// directory that holds something else.
var ErrNotAStore = errors.New("not a nexis store")

// MetadataError says why a store's metadata cannot be used.
type MetadataError struct {
	Dir string
	Why string
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("store %s: %s: refusing to use it, nothing was changed; `nexis store recover` rebuilds its metadata from the paths on disk and deletes nothing (see docs/security.md)", e.Dir, e.Why)
}

// Is makes errors.Is(err, ErrMetadataLost) true.
func (e *MetadataError) Is(target error) bool { return target == ErrMetadataLost }

var keyID = []byte("id")

func idFile(dir string) string { return filepath.Join(dir, ".nexis", "store-id") }

// storeState is what diagnose found.
type storeState int

const (
	// stateFresh: nothing there; a store may be created.
	stateFresh storeState = iota
	// stateDB: the database's CURRENT file is there: open it and check.
	stateDB
)

// diagnose looks at the store directory dir, changing nothing.
func diagnose(dir string) (storeState, error) {
	db := filepath.Join(dir, ".nexis", "db")
	if _, err := os.Stat(filepath.Join(db, "CURRENT")); err == nil {
		return stateDB, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("store %s: %w", dir, err)
	}
	dbFiles := nonEmptyDir(db)
	_, markerErr := os.Lstat(idFile(dir))
	switch {
	case dbFiles:
		return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s has no CURRENT file (RocksDB's pointer to its manifest)", db)}
	case markerErr == nil:
		return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s is missing", db)}
	}
	held, err := holdsPaths(dir)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", dir, err)
	}
	if held != "" {
		return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s is missing, but it holds %s", db, held)}
	}
	if other, err := foreignEntry(dir); err != nil {
		return 0, fmt.Errorf("store %s: %w", dir, err)
	} else if other != "" {
		return 0, fmt.Errorf("store %s: %w and not empty (it holds %s): a store is created only in an empty or absent directory", dir, ErrNotAStore, other)
	}
	return stateFresh, nil
}

// nonEmptyDir reports whether d is a directory with entries.
func nonEmptyDir(d string) bool {
	f, err := os.Open(d)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

// holdsPaths returns a path in the buckets or an entry of the content
// pool, "" when there is neither. Empty buckets are left by collections
// and hold nothing.
func holdsPaths(dir string) (string, error) {
	top, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, b1 := range top {
		if !b1.IsDir() || !isBucket(b1.Name()) {
			continue
		}
		sub, err := os.ReadDir(filepath.Join(dir, b1.Name()))
		if err != nil {
			return "", err
		}
		for _, b2 := range sub {
			d := filepath.Join(dir, b1.Name(), b2.Name())
			if !b2.IsDir() || nonEmptyDir(d) {
				if ents, _ := os.ReadDir(d); len(ents) > 0 {
					return "store paths (" + filepath.Join(d, ents[0].Name()) + ")", nil
				}
				return "store paths (" + d + ")", nil
			}
		}
	}
	pool := filepath.Join(dir, ".nexis", "content")
	pds, _ := os.ReadDir(pool)
	for _, pd := range pds {
		if nonEmptyDir(filepath.Join(pool, pd.Name())) {
			return "content pool entries (" + filepath.Join(pool, pd.Name()) + ")", nil
		}
	}
	return "", nil
}

// scaffolding are the top-level entries a store makes before (or
// without) registering anything.
var scaffolding = map[string]bool{".nexis": true, ".trash": true, ".build": true}

// foreignEntry returns an entry of dir that no store would have made
// without a database, "" when there is none.
func foreignEntry(dir string) (string, error) {
	top, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, e := range top {
		switch {
		case scaffolding[e.Name()] && e.IsDir():
		case isBucket(e.Name()) && e.IsDir():
			// Empty buckets (holdsPaths looked inside).
		default:
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", nil
}

// checkIdentity compares the opened database with the marker and the
// buckets (see the top of this file). A writable store adopts a
// database without an id and restores a lost marker.
func (s *Store) checkIdentity() error {
	id, err := s.get(cfDefault, keyID)
	if err != nil {
		return err
	}
	marker, merr := os.ReadFile(idFile(s.dir))
	if merr != nil && !errors.Is(merr, fs.ErrNotExist) {
		return fmt.Errorf("store %s: reading its identity: %w", s.dir, merr)
	}
	have := strings.TrimSpace(string(marker))
	switch {
	case id != nil && merr == nil && have == string(id):
		return nil
	case id != nil && merr == nil:
		return &MetadataError{Dir: s.dir, Why: fmt.Sprintf("its database is another store's (identity %s, the store's is %s)", id, have)}
	case id != nil:
		if s.ro {
			return nil
		}
		return writeIDFile(s.dir, string(id))
	case merr == nil:
		return &MetadataError{Dir: s.dir, Why: "its database was replaced: it lacks the identity the store's was made with"}
	}
	// An older nexis made the database: adopt it, unless it registers
	// nothing while the buckets hold paths.
	st, err := s.readStats()
	if err != nil {
		return err
	}
	if st.Paths == 0 {
		held, err := holdsPaths(s.dir)
		if err != nil {
			return err
		}
		if held != "" {
			return &MetadataError{Dir: s.dir, Why: fmt.Sprintf("its database registers no path, but it holds %s", held)}
		}
	}
	if s.ro {
		return nil
	}
	return s.newIdentity()
}

// newIdentity gives the store a fresh identity: in the database (synced)
// first, then the marker, so a crash between leaves a database whose id
// the next open copies to the marker.
func (s *Store) newIdentity() error {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	t := s.newTxn()
	defer t.destroy()
	t.put(cfDefault, keyID, []byte(id))
	if err := t.commit(); err != nil {
		return fmt.Errorf("recording the store's identity: %w", err)
	}
	return writeIDFile(s.dir, id)
}

// writeIDFile writes the marker durably: a temporary file, synced,
// renamed into place, the directory synced.
func writeIDFile(dir, id string) error {
	p := idFile(dir)
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("recording the store's identity: %w", err)
	}
	_, err = f.WriteString(id + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recording the store's identity: %w", err)
	}
	return fsyncPath(filepath.Dir(p))
}

// unreadable turns a failure to open an existing database into a
// MetadataError when it says the database is damaged, not busy.
func unreadable(dir string, err error) error {
	msg := err.Error()
	for _, s := range []string{"Corruption", "No such file", "does not exist", "Invalid argument"} {
		if strings.Contains(msg, s) {
			return &MetadataError{Dir: dir, Why: fmt.Sprintf("its database cannot be read (%v)", err)}
		}
	}
	return err
}
