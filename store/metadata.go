package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store/storepath"
)

// A store's metadata is the truth about which paths exist; the disk
// alone is not. A store whose database is missing, unreadable, emptied
// or another store's must therefore never be taken for an empty store:
// a writer would start generation 1 over the old ones and verify
// --repair would move every path to the trash. Open tells these cases
// apart before it creates or changes anything:
//
//	<store>/.nexis/store-id   the identity of the store's database: a copy of
//	                          the UUID RocksDB wrote to .nexis/db/IDENTITY when
//	                          it made the database
//
// A store is created only in an empty or absent directory (our own
// empty scaffolding aside). A database whose IDENTITY is not the one the
// store recorded is another one, refused before RocksDB opens it (a
// writable open replays and rewrites its files). A database without a
// recorded identity (made by an older nexis) is looked at read-only
// first and adopted unless it registers no path while the buckets hold
// some. Everything else is refused with ErrMetadataLost, naming the
// store and `nexis store recover` (Recover), which rebuilds the metadata
// and deletes nothing.

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
	return fmt.Sprintf("store %s: %s: refusing to use it, nothing was changed; `%s` rebuilds its metadata from the paths on disk and deletes nothing (see docs/security.md)", e.Dir, e.Why, hint.Command("store recover"))
}

// Is makes errors.Is(err, ErrMetadataLost) true.
func (e *MetadataError) Is(target error) bool { return target == ErrMetadataLost }

func idFile(dir string) string { return filepath.Join(dir, ".nexis", "store-id") }

// storeState is what diagnose found.
type storeState int

const (
	// stateFresh: nothing there; a store may be created.
	stateFresh storeState = iota
	// stateDB: the store's own database (its identity matches).
	stateDB
	// stateUnrecorded: a database whose identity the store never
	// recorded (an older nexis made it): look at it read-only first.
	stateUnrecorded
)

// dbIdentity reads the IDENTITY file of the database directory db
// ("" when there is none).
func dbIdentity(db string) (string, error) {
	b, err := os.ReadFile(filepath.Join(db, "IDENTITY"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// recordedIdentity reads .nexis/store-id ("" when there is none).
func recordedIdentity(dir string) (string, error) {
	b, err := os.ReadFile(idFile(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(b)), err
}

// diagnose looks at the store directory dir, changing nothing.
func diagnose(dir string) (storeState, error) {
	db := filepath.Join(dir, ".nexis", "db")
	recorded, err := recordedIdentity(dir)
	if err != nil {
		return 0, fmt.Errorf("store %s: reading its identity: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(db, "CURRENT")); err == nil {
		ident, err := dbIdentity(db)
		switch {
		case err != nil:
			return 0, fmt.Errorf("store %s: %w", dir, err)
		case recorded == "":
			return stateUnrecorded, nil
		case ident == "":
			return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s has no IDENTITY file", db)}
		case ident != recorded:
			return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s is another store's (identity %s, the store's is %s)", db, ident, recorded)}
		}
		return stateDB, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("store %s: %w", dir, err)
	}
	switch {
	case nonEmptyDir(db):
		return 0, &MetadataError{Dir: dir, Why: fmt.Sprintf("its database %s has no CURRENT file (RocksDB's pointer to its manifest)", db)}
	case recorded != "":
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
		if !b1.IsDir() || !storepath.IsBucket(b1.Name()) {
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
// without) registering anything, and the lost+found of a filesystem
// made for the store (mkfs.ext4 puts one at its top).
var scaffolding = map[string]bool{".nexis": true, ".trash": true, ".build": true, "lost+found": true}

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
		case storepath.IsBucket(e.Name()) && e.IsDir():
			// Empty buckets (holdsPaths looked inside).
		default:
			return filepath.Join(dir, e.Name()), nil
		}
	}
	return "", nil
}

// checkUnrecorded looks at a database the store never recorded the
// identity of, read-only: adopted unless it registers no path while the
// buckets hold some.
func checkUnrecorded(dir string) error {
	r := &Store{dir: dir, ro: true}
	if err := r.openDB(false); errors.Is(err, ErrNotInitialised) {
		// Made and never initialised (a crash right after): empty,
		// unless the buckets say otherwise.
	} else if err != nil {
		return err
	} else {
		st, err := r.readStats()
		r.closeAfterFailedOpen()
		if err != nil || st.Paths > 0 {
			return err
		}
	}
	held, err := holdsPaths(dir)
	if err != nil {
		return err
	}
	if held != "" {
		return &MetadataError{Dir: dir, Why: fmt.Sprintf("its database registers no path, but it holds %s", held)}
	}
	return nil
}

// recordIdentity records the open database's identity as the store's.
func (s *Store) recordIdentity() error {
	ident, err := dbIdentity(s.dbDir())
	if err != nil || ident == "" {
		return fmt.Errorf("store %s: reading its database's identity: %v", s.dir, err)
	}
	return writeIDFile(s.dir, ident)
}

// writeIDFile records id as the store's database identity, durably
// (internal/durable: a temporary file, synced, renamed, the directory
// synced).
func writeIDFile(dir, id string) error {
	r, err := durable.OpenRoot(filepath.Join(dir, ".nexis"))
	if err != nil {
		return fmt.Errorf("recording the store's identity: %w", err)
	}
	defer r.Close()
	if err := r.WriteFile(filepath.Base(idFile(dir)), []byte(id+"\n"), 0o644, nil); err != nil {
		return fmt.Errorf("recording the store's identity: %w", err)
	}
	return nil
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
