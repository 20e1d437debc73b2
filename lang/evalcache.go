package lang

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/stdlib"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// An evaluation reads nothing but its inputs: the config and its includes,
// the lock file, the user's modules, the files builtins read and the
// sources they hash, all resolved inside the config directory. Builtins
// reach no environment variable, clock or network. So what a config
// evaluates to is a function of those files, the options and the nexis
// binary, and `nexis switch` of a config whose inputs are unchanged since
// its last evaluation can take the result from a cache instead of
// evaluating again (a third of a switch). Checking a cache entry reads
// and hashes every input again; any difference, a damaged entry or
// another nexis binary means evaluating as usual.

// Input is one thing an evaluation read, as it was.
type Input struct {
	Path string `json:"path"` // relative to the config directory
	// Kind is "file" (Digest: BLAKE3 of the contents), "tree" (Digest:
	// the tree hash of a source) or "stat" (Digest: the file type and
	// the name the path resolved to, or "absent").
	Kind string `json:"kind"`
	// Digest is "absent" when there was no such file and "error" when
	// reading or hashing failed otherwise: an evaluation may go on after
	// a failure (a missing lock file is an empty lock; try_call), so a
	// failure is an input too.
	Digest string `json:"digest"`
}

// Inputs records what an evaluation reads (Options.Inputs); it is safe
// for concurrent use.
type Inputs struct {
	mu   sync.Mutex
	list []Input
	seen map[[2]string]string // kind, path → digest
	// conflict: one path read twice gave two digests (it changed
	// during the evaluation), so no single state of the files explains
	// the result and it is not cached.
	conflict bool
}

func (in *Inputs) add(i Input) {
	in.mu.Lock()
	defer in.mu.Unlock()
	k := [2]string{i.Kind, i.Path}
	if d, ok := in.seen[k]; ok {
		in.conflict = in.conflict || d != i.Digest
		return
	}
	if in.seen == nil {
		in.seen = map[[2]string]string{}
	}
	in.seen[k] = i.Digest
	in.list = append(in.list, i)
}

// List returns the inputs recorded so far.
func (in *Inputs) List() []Input {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Input(nil), in.list...)
}

// file records a file the evaluation read; like stat, it does nothing
// (and hashes nothing) when in is nil, as in every evaluation but a
// switch's.
func (in *Inputs) file(name string, data []byte, err error) {
	if in != nil {
		in.add(fileInput(name, data, err))
	}
}

// tree records a source's tree hash.
func (in *Inputs) tree(name string, d treehash.Digest, err error) {
	if in != nil {
		in.add(treeInput(name, d, err))
	}
}

// stat records what resolving name gave.
func (in *Inputs) stat(name, resolved string, fi fs.FileInfo, err error) {
	if in != nil {
		in.add(statOf(name, resolved, fi, err))
	}
}

func fileInput(name string, data []byte, err error) Input {
	return input(name, "file", err, func() string { return treehash.Sum(data).Hex() })
}

func treeInput(name string, d treehash.Digest, err error) Input {
	return input(name, "tree", err, d.Hex)
}

func statOf(name, resolved string, fi fs.FileInfo, err error) Input {
	return input(name, "stat", err, func() string { return fi.Mode().Type().String() + " " + resolved })
}

// input records how name read: "absent", "error", or what digest says of
// it when it read.
func input(name, kind string, err error, digest func() string) Input {
	d := "error"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d = "absent"
	case err == nil:
		d = digest()
	}
	return Input{Path: name, Kind: kind, Digest: d}
}

// now is what i would record if it were read now from dir.
func (i Input) now(dir *configDir) Input {
	switch i.Kind {
	case "file":
		b, err := dir.read(i.Path)
		return fileInput(i.Path, b, err)
	case "tree":
		d, err := dir.hashTree(i.Path)
		return treeInput(i.Path, d, err)
	case "stat":
		resolved, fi, err := dir.lstatResolved(i.Path)
		return statOf(i.Path, resolved, fi, err)
	}
	return Input{}
}

// CachedEval is what an evaluation of a config gave, kept for `nexis
// switch`: the system it evaluated to and what it printed.
type CachedEval struct {
	Out    string   `json:"out"` // the system derivation's output path
	ID     string   `json:"id"`  // its derivation ID
	Prints []string `json:"prints"`
	Inputs []Input  `json:"inputs"`
}

// evalCacheVersion changes when what an entry means changes.
const evalCacheVersion = "nexis eval cache 2"

// evalCacheFile is where the entry for configPath under opts lives (""
// when there is no cache directory or no way to tell this binary apart).
func evalCacheFile(configPath string, opts Options) string {
	dir := cacheDir()
	if dir == "" {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return ""
	}
	opts = withDefaults(opts)
	// The binary is named by where it is, its inode, size and
	// modification time, the commit it was built from and the stdlib it
	// embeds, so that a rebuilt or upgraded nexis (other builtins,
	// another stdlib) does not reuse an entry; hashing the 30 MB binary
	// itself would cost more than the evaluation it saves.
	stdenv, _ := builtins.CanonicalJSON(opts.Stdenv)
	id := fmt.Sprintf("%s\x00%s\x00%d\x00%d\x00%d\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00%s",
		evalCacheVersion, exe, inode(fi), fi.Size(), fi.ModTime().UnixNano(), buildIdentity(),
		abs, opts.StoreDir, opts.System, opts.MaxSteps, opts.MaxDepth, opts.MaxMemory, stdenv)
	d := treehash.Sum([]byte(id))
	return filepath.Join(dir, "eval", hex.EncodeToString(d[:16]))
}

// buildIdentity is the commit nexis was built from (with whether the tree
// was modified) and a digest of the embedded stdlib.
var buildIdentity = sync.OnceValue(func() string {
	h := treehash.NewHasher()
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if strings.HasPrefix(s.Key, "vcs.") {
				fmt.Fprintf(h, "%s=%s\x00", s.Key, s.Value)
			}
		}
	}
	// Streamed through one buffer: reading each module whole would copy
	// the 100 KB stdlib out of the binary on every switch.
	buf := make([]byte, 4<<10)
	fs.WalkDir(stdlib.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f, err := stdlib.FS.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fmt.Fprintf(h, "%s\x00%d\x00", p, fi.Size())
		_, err = io.CopyBuffer(h, f, buf)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))
})

// openCacheFile opens a cache entry if it may be believed: a regular
// file of this user that nobody else can write. A cache whose directory
// another user controls (a HOME kept across sudo) must not choose the
// system root switches to, nor the code it runs. The checks are made on
// the open file, so what is read is what was checked; O_NONBLOCK keeps a
// FIFO planted there from hanging the open.
func openCacheFile(p string) (*os.File, int64, bool) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, false
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 == 0 {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
			return f, fi.Size(), true
		}
	}
	f.Close()
	return nil, 0, false
}

func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// LookupEval returns the cached evaluation of configPath under opts if
// every input it read is as it was.
func LookupEval(configPath string, opts Options) (*CachedEval, bool) {
	name := evalCacheFile(configPath, opts)
	if name == "" {
		return nil, false
	}
	f, size, ok := openCacheFile(name)
	if !ok {
		return nil, false
	}
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	f.Close()
	if err != nil {
		return nil, false
	}
	var c CachedEval
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || len(c.Inputs) == 0 {
		return nil, false
	}
	if _, rest, err := storepath.Parse(withDefaults(opts).StoreDir, c.Out); err != nil || rest != "" {
		return nil, false
	}
	dir, err := configDirOf(configPath, nil)
	if err != nil {
		return nil, false
	}
	defer dir.close()
	for _, i := range c.Inputs {
		if i.now(dir) != i {
			return nil, false
		}
	}
	return &c, true
}

// SaveEval keeps the result of an evaluation that recorded its inputs in
// opts.Inputs. Failing to write the cache is not an error: the next
// switch evaluates.
func SaveEval(configPath string, opts Options, sys *System, prints []string) {
	f := evalCacheFile(configPath, opts)
	if f == "" || opts.Inputs == nil || opts.Inputs.conflict {
		return
	}
	b, err := json.Marshal(CachedEval{Out: sys.Drv.Out(), ID: sys.Drv.ID(), Prints: prints, Inputs: opts.Inputs.List()})
	if err != nil {
		return
	}
	writeCacheFile(f, b)
}

// writeCacheFile stores data at file (mode 0600) atomically
// (internal/durable), so a concurrent nexis never reads half an entry.
// Failures only cost the next process the work the entry saves.
func writeCacheFile(file string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return
	}
	durable.WriteFile(file, data, 0o600)
}
