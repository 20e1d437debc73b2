package lang

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/internal/parallel"
	"github.com/nexisos/nexis/stdlib"
	"github.com/nexisos/nexis/store/treehash"
)

// Parsing, resolving and compiling the stdlib's 100 KB of Starlark is
// about a quarter of a no-op `nexis switch`, and its result depends only
// on the source, the module name and the predeclared names. So compiled
// programs are kept: in memory for the process (the repl's :reload, tests
// that evaluate many configs) and, for stdlib modules, on disk under the
// user's cache directory. The disk cache holds only stdlib modules: they
// are a fixed set per nexis build, so it stays small, whereas caching
// every edit of a user's module would grow without bound. A cache entry
// that cannot be read or decoded is compiled again; the cache is never
// needed for correctness.

var compiled sync.Map // cache key → *progEntry

// A progEntry is one program, compiled once however many threads ask
// for it at once (precompileStdlib and the evaluation's loads).
type progEntry struct {
	once sync.Once
	p    *starlark.Program
	err  error
}

// starlarkVersion names the interpreter that compiled a cached program:
// its bytecode changes between versions.
var starlarkVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "go.starlark.net" {
				return d.Version + d.Sum
			}
		}
	}
	return "unknown"
})

// cacheDir is nexis's cache directory ("" for none): NEXIS_CACHE_DIR, or
// nexis under the user's cache directory.
var cacheDir = sync.OnceValue(func() string {
	if d := os.Getenv("NEXIS_CACHE_DIR"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "nexis")
})

// progCacheDir is where compiled stdlib modules are kept ("" for none).
func progCacheDir() string {
	if d := cacheDir(); d != "" {
		return filepath.Join(d, "starlark")
	}
	return ""
}

// compileModule returns the compiled program of module name.
func compileModule(name string, src []byte, pre starlark.StringDict) (*starlark.Program, error) {
	key := programKey(name, src, pre)
	v, _ := compiled.LoadOrStore(key, &progEntry{})
	e := v.(*progEntry)
	e.once.Do(func() { e.p, e.err = compile(key, name, src, pre) })
	if e.err != nil {
		// Only programs are kept: the next load reports its error anew.
		compiled.CompareAndDelete(key, e)
	}
	return e.p, e.err
}

func compile(key, name string, src []byte, pre starlark.StringDict) (*starlark.Program, error) {
	disk := ""
	if strings.HasPrefix(name, stdlibPrefix) && progCacheDir() != "" {
		disk = filepath.Join(progCacheDir(), key)
		if f, _, ok := openCacheFile(disk); ok {
			p, err := starlark.CompiledProgram(f)
			f.Close()
			if err == nil {
				return p, nil
			}
		}
	}
	f, err := fileOptions.Parse(name, src, 0)
	if err != nil {
		return nil, err
	}
	LowerFile(f)
	p, err := starlark.FileProgram(f, pre.Has)
	if err != nil {
		return nil, err
	}
	if disk != "" {
		writeCompiled(disk, p)
	}
	return p, nil
}

// lowering names the rewriting of LowerFile: a cached program compiled
// before it changed must not be used.
const lowering = "lower-1"

func programKey(name string, src []byte, pre starlark.StringDict) string {
	names := pre.Keys()
	sort.Strings(names)
	return treehash.Sum([]byte(starlarkVersion()+"\x00"+lowering+"\x00"+name+"\x00"+strings.Join(names, ",")+"\x00"), src).Hex()
}

// writeCompiled stores p at file (see writeCacheFile).
func writeCompiled(file string, p *starlark.Program) {
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return
	}
	writeCacheFile(file, buf.Bytes())
}

// precompileStdlib compiles every stdlib module, or reads it from the
// disk cache, on other goroutines, for an evaluation whose predeclared
// names are those of pre: every evaluation loads them all, one after the
// other on the thread that needs them, and compiling them there is 15 ms
// of a cold evaluation's critical path. Done is closed when all are
// compiled, so that no cache file is left half written at exit.
func precompileStdlib(pre starlark.StringDict) (done <-chan struct{}) {
	ch := make(chan struct{})
	mods, _ := fs.Glob(stdlib.FS, "*.star")
	go func() {
		defer close(ch)
		parallel.Do(len(mods), runtime.GOMAXPROCS(0), func(i int) error {
			if src, err := fs.ReadFile(stdlib.FS, mods[i]); err == nil {
				compileModule(stdlibPrefix+mods[i], src, pre)
			}
			return nil
		})
	}()
	return ch
}
