package builtins

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

var update = flag.Bool("update", false, "rewrite testdata/identities.golden")

// run executes src with the builtins and a context as evaluation makes
// one, and returns its global "result". Files are not read: path()
// resolves a name to itself and its tree hash is BLAKE3 of the name (a
// stand-in for the evaluator's hashing, which store/treehash tests).
func run(t *testing.T, src string) starlark.Value {
	t.Helper()
	ctx := &Context{
		StoreDir: "/store",
		System:   "x86_64-linux",
		Resolve: func(_ *starlark.Thread, rel, _ string) (File, error) {
			return File{Display: rel, Abs: "/config/" + rel}, nil
		},
		TreeHash: func(f File) (treehash.Digest, error) { return treehash.Sum([]byte(f.Display)), nil },
		Limits:   Limits{MaxDepth: 100, MaxBytes: 1 << 30},
	}
	thread := &starlark.Thread{Name: "test"}
	ctx.Attach(thread)
	g, err := starlark.ExecFileOptions(fileOpts, thread, "test.star", src, Predeclared())
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return g["result"]
}

var fileOpts = &syntax.FileOptions{}

func drv(t *testing.T, src string) *Derivation {
	t.Helper()
	d, ok := run(t, src).(*Derivation)
	if !ok {
		t.Fatalf("%s: result is not a derivation", src)
	}
	return d
}

// identityCases are the derivations whose canonical encodings, identities
// and output paths testdata/identities.golden holds byte for byte (see
// doc.go): a change there changes every store path on every machine.
var identityCases = []struct{ name, src string }{
	{"minimal", `result = derivation(name = "hello", builder = "/bin/sh")`},
	{"everything", `result = derivation(name = "hello", version = "2.12", builder = "/bin/sh",
		args = ["-e", "build.sh"], env = {"Z": "last", "A": "first <&> \"quoted\" é \u2028"},
		outputs = ["out", "dev", "man"], timeout = 30, passthru = {"not": "hashed"})`},
	{"input by interpolation", `
lib = derivation(name = "lib", version = "1", builder = "/bin/sh", outputs = ["out", "dev"])
result = derivation(name = "app", builder = "/bin/sh", env = {"CFLAGS": "-I%s/include" % lib.outputs["dev"], "LIB": str(lib)})`},
	{"fetch_url sha256", `result = fetch_url("https://example.org/src/hello-2.12.tar.gz", sha256 = "` + strings.Repeat("ab", 32) + `")`},
	{"fetch_url unpacked", `result = fetch_url("https://example.org/src/hello-2.12.tar.gz", sha256 = "` + strings.Repeat("ab", 32) + `", unpack = True, name = "hello-src")`},
	{"fetch_git", `result = fetch_git("https://example.org/hello.git", rev = "` + strings.Repeat("1", 40) + `", hash = "blake3:` + strings.Repeat("cd", 32) + `")`},
	{"write_file", `result = write_file(name = "motd", content = "hello\n", mode = "0644")`},
	{"write_file secret", `result = write_file(name = "shadow", content = "root:$6$x", secret = True)`},
	{"source", `
src = path("./src")
result = derivation(name = "app", builder = "/bin/sh", args = [str(src) + "/build.sh"])`},
}

// TestIdentities compares every case's encoding, identity and output
// paths with the golden file (go test ./builtins -update rewrites it).
func TestIdentities(t *testing.T) {
	var b bytes.Buffer
	for _, c := range identityCases {
		d := drv(t, c.src)
		if !json.Valid(d.Encoding()) {
			t.Errorf("%s: the encoding is not JSON: %s", c.name, d.Encoding())
		}
		// doc.go: the identity is BLAKE3 of a prefix and the encoding;
		// a derivation's output path hashes the output name and it.
		if id := treehash.Sum([]byte("nexis-drv-1\x00"), d.Encoding()); hex.EncodeToString(id[:]) != d.ID() {
			t.Errorf("%s: identity %s is not BLAKE3(\"nexis-drv-1\\x00\" + encoding)", c.name, d.ID())
		}
		if d.Fixed == nil {
			for _, o := range d.Outputs {
				sum := treehash.Sum([]byte("nexis-out-1:" + o + ":" + d.ID()))
				if p, _ := d.OutputPath(o); !strings.Contains(p, "/"+storepath.EncodeHash(sum[:])+"-") {
					t.Errorf("%s: output %s at %s, not at the hash of its name and the identity", c.name, o, p)
				}
			}
		}
		fmt.Fprintf(&b, "== %s\n%s\nid %s\n", c.name, d.Encoding(), d.ID())
		for _, o := range d.Outputs {
			p, _ := d.OutputPath(o)
			fmt.Fprintf(&b, "%s %s\n", o, p)
		}
	}
	golden := filepath.Join("testdata", "identities.golden")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("identities changed (go test ./builtins -update, then review the diff):\n%s", b.Bytes())
	}
}

// TestIdentityRules: what enters an identity and what does not.
func TestIdentityRules(t *testing.T) {
	base := `derivation(name = "p", version = "1", builder = "/bin/sh", env = {"A": "1", "B": "2"}`
	same := []struct{ what, a, b string }{
		{"env order", base + `)`, `derivation(name = "p", version = "1", builder = "/bin/sh", env = {"B": "2", "A": "1"})`},
		{"passthru", base + `)`, base + `, passthru = {"x": 1})`},
		{"timeout", base + `)`, base + `, timeout = 99)`},
		{"default outputs", base + `)`, base + `, outputs = ["out"])`},
	}
	for _, c := range same {
		a, b := drv(t, "result = "+c.a), drv(t, "result = "+c.b)
		if a.ID() != b.ID() || a.Out() != b.Out() {
			t.Errorf("%s changed the identity or the path", c.what)
		}
	}
	// A fixed output's path names what it holds, not where it came from.
	a := drv(t, `result = fetch_url("https://a.example/x.tar", sha256 = "`+strings.Repeat("0", 64)+`", name = "x")`)
	b := drv(t, `result = fetch_url("https://b.example/x.tar", sha256 = "`+strings.Repeat("0", 64)+`", name = "x")`)
	if a.ID() == b.ID() || a.Out() != b.Out() {
		t.Errorf("another URL: identities %s %s (want different), paths %s %s (want the same)", a.ID(), b.ID(), a.Out(), b.Out())
	}
	differ := []struct{ what, a, b string }{
		{"an env value", base + `)`, `derivation(name = "p", version = "1", builder = "/bin/sh", env = {"A": "1", "B": "3"})`},
		{"the version", base + `)`, `derivation(name = "p", version = "2", builder = "/bin/sh", env = {"A": "1", "B": "2"})`},
		{"args", base + `)`, base + `, args = ["x"])`},
		{"output order", base + `, outputs = ["out", "dev"])`, base + `, outputs = ["dev", "out"])`},
		{"unpacking a fetch", `fetch_url("https://a.example/x.tar", sha256 = "` + strings.Repeat("0", 64) + `", name = "x")`,
			`fetch_url("https://a.example/x.tar", sha256 = "` + strings.Repeat("0", 64) + `", name = "x", unpack = True)`},
		{"a secret", `write_file(name = "f", content = "x", mode = "0400")`, `write_file(name = "f", content = "x", secret = True)`},
	}
	for _, c := range differ {
		a, b := drv(t, "result = "+c.a), drv(t, "result = "+c.b)
		if a.ID() == b.ID() || a.Out() == b.Out() {
			t.Errorf("%s did not change the identity and path", c.what)
		}
	}
}

// TestEncodingContracts: the builtin builders' derivations carry the
// names realise dispatches on and the env keys it reads.
func TestEncodingContracts(t *testing.T) {
	for _, c := range []struct {
		src, builder string
		env          map[string]string
		secret       bool
	}{
		{`write_file(name = "f", content = "x", mode = 0o755)`, BuilderWriteFile, map[string]string{EnvContent: "x", EnvMode: "0755"}, false},
		{`write_file(name = "f", content = "x", secret = True)`, BuilderWriteFile, map[string]string{EnvContent: "x", EnvMode: "0400", EnvSecret: "1"}, true},
		{`fetch_url("https://e.org/f", sha256 = "` + strings.Repeat("0", 64) + `")`, BuilderFetchURL, map[string]string{EnvURL: "https://e.org/f"}, false},
		{`fetch_git("https://e.org/r.git", rev = "` + strings.Repeat("a", 40) + `", hash = "blake3:` + strings.Repeat("0", 64) + `")`, BuilderFetchGit, map[string]string{EnvURL: "https://e.org/r.git", EnvRev: strings.Repeat("a", 40)}, false},
	} {
		d := drv(t, "result = "+c.src)
		if d.Builder != c.builder || !IsBuiltin(d.Builder) {
			t.Errorf("%s: builder %q, want %q", c.src, d.Builder, c.builder)
		}
		if !slices.Equal(d.Env, EnvFromMap(c.env)) {
			t.Errorf("%s: env %v, want %v", c.src, d.Env, c.env)
		}
		for k, v := range c.env {
			if got, ok := d.LookupEnv(k); !ok || got != v || d.Getenv(k) != v {
				t.Errorf("%s: env %s = %q, %v; want %q", c.src, k, got, ok, v)
			}
		}
		if _, ok := d.LookupEnv("unset"); ok || d.Getenv("unset") != "" {
			t.Errorf("%s: an unset variable is set", c.src)
		}
		if d.WritesSecret() != c.secret || d.IsSecret() != c.secret {
			t.Errorf("%s: secret %v, want %v", c.src, d.WritesSecret(), c.secret)
		}
	}
	if IsBuiltin("/bin/sh") {
		t.Error("/bin/sh is not a builtin builder")
	}
}

// TestBadInputNamesItsPlace: an input that is not a derivation or a
// source is named by its indices, however deep in the lists it is.
func TestBadInputNamesItsPlace(t *testing.T) {
	ctx := &Context{StoreDir: "/store", System: "x86_64-linux", Limits: Limits{MaxDepth: 100, MaxBytes: 1 << 30}}
	thread := &starlark.Thread{Name: "test"}
	ctx.Attach(thread)
	for _, c := range []struct{ inputs, want string }{
		{`[lib, 3]`, "inputs[1]: got int, want a derivation"},
		{`[lib, [None, (lib, "x")]]`, "inputs[1][1][1]: got string, want a derivation"},
		{`{"a": 1}`, "inputs: got dict, want a derivation"},
	} {
		src := `lib = derivation(name = "lib", builder = "/bin/sh")
result = derivation(name = "app", builder = "/bin/sh", inputs = ` + c.inputs + `)`
		_, err := starlark.ExecFileOptions(fileOpts, thread, "test.star", src, Predeclared())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("inputs = %s: got %v, want an error with %q", c.inputs, err, c.want)
		}
	}
}

// TestBytesAreNotAList: bytes are indexable, each element bytes again;
// converting them must fail, not recurse without end.
func TestBytesAreNotAList(t *testing.T) {
	if _, err := ToGo(starlark.Tuple{starlark.Bytes("x")}); err == nil || !strings.Contains(err.Error(), "cannot use a bytes here") {
		t.Errorf("ToGo(b\"x\"): got %v, want an error", err)
	}
}

// BenchmarkSystemDerivation is the system's derivation() of a config of
// 10,000 packages: a manifest and a package list naming every package,
// each found in what the system's scope was given.
func BenchmarkSystemDerivation(b *testing.B) {
	pkgs, ok := run(&testing.T{}, `result = {str(i): derivation(name = "p%d" % i, version = "1", builder = "/bin/sh") for i in range(10000)}`).(*starlark.Dict)
	if !ok {
		b.Fatal("no packages")
	}
	var manifest, list strings.Builder
	for _, d := range pkgs.Entries() {
		fmt.Fprintf(&manifest, `{"package":%q,"files":["%s/bin/x","%s/share/doc"]},`, d.String(), d.String(), d.String())
		list.WriteString(d.String() + " ")
	}
	env := []envItem{
		{starlark.String(EnvManifest), starlark.String(manifest.String())},
		{starlark.String(EnvPackages), starlark.String(list.String())},
	}
	for b.Loop() {
		ctx := &Context{StoreDir: "/store", System: "x86_64-linux", Scope: NewScope()}
		ctx.Scope.See(pkgs)
		d, err := newDerivation(ctx, "derivation", "system", "", BuilderSystem, nil, env, nil, starlark.None, nil, 0)
		if err != nil || len(d.Drvs) != pkgs.Len() {
			b.Fatalf("%v, %d inputs", err, len(d.Drvs))
		}
	}
}

// TestScopeFewAndMany: a scope finds what it made and what it was given
// the same way whether it holds them in slices (few) or maps (many):
// the last made of a path, the first given.
func TestScopeFewAndMany(t *testing.T) {
	for _, n := range []int{1, fewMade, fewMade + 1, 40} {
		src := fmt.Sprintf(`result = [derivation(name = "p%%d" %% i, builder = "/bin/sh") for i in range(%d)]`, n)
		list := run(t, src).(*starlark.List)
		var drvs []*Derivation
		for i := range list.Len() {
			drvs = append(drvs, list.Index(i).(*Derivation))
		}
		made := NewScope()
		for _, d := range drvs {
			made.remember(hashPart(d.Out()), drvs[0])
			made.remember(hashPart(d.Out()), d)
		}
		given := NewScope()
		given.See(list)
		given.See(drvs[len(drvs)-1])
		loaded := NewScope()
		loaded.Use(made)
		for _, d := range drvs {
			h := hashPart(d.Out())
			if got := made.lookup(h); got != d {
				t.Errorf("%d made: %s found %v", n, d.Name, got)
			}
			if got := loaded.lookup(h); got != d {
				t.Errorf("%d loaded: %s found %v", n, d.Name, got)
			}
			if got := given.lookup(h); got != d {
				t.Errorf("%d given: %s found %v", n, d.Name, got)
			}
		}
		if made.lookup(strings.Repeat("0", storepath.HashLen)) != nil || given.lookup(strings.Repeat("0", storepath.HashLen)) != nil {
			t.Errorf("%d: an unknown path is found", n)
		}
	}
	// What a given derivation reaches, past those given.
	top := drv(t, `dep = derivation(name = "dep", builder = "/bin/sh")
result = derivation(name = "top", builder = "/bin/sh", env = {"D": str(dep)})`)
	given := NewScope()
	given.See(top)
	if len(top.Drvs) != 1 || given.lookup(hashPart(top.Drvs[0].Out())) != top.Drvs[0] || given.lookup(hashPart(top.Out())) != top {
		t.Errorf("an input of a given derivation is not found")
	}
}
