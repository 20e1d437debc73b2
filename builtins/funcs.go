package builtins

import (
	"bytes"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/nexisos/nexis/internal/suggest"
	"github.com/nexisos/nexis/store/storepath"
)

// Predeclared returns the builtins every nexis module sees, in addition
// to Starlark's universe.
func Predeclared() starlark.StringDict {
	return starlark.StringDict{
		"derivation":      starlark.NewBuiltin("derivation", derivationFn),
		"fetch_url":       starlark.NewBuiltin("fetch_url", fetchURL),
		"fetch_git":       starlark.NewBuiltin("fetch_git", fetchGit),
		"gather_packages": starlark.NewBuiltin("gather_packages", gatherPackages),
		"generic_builder": starlark.NewBuiltin("generic_builder", genericBuilder),
		"path":            starlark.NewBuiltin("path", pathFn),
		"write_file":      starlark.NewBuiltin("write_file", writeFile),
		"template":        starlark.NewBuiltin("template", templateFn),
		"struct":          starlark.NewBuiltin("struct", starlarkstruct.Make),
		"json":            json.Module,
	}
}

func derivationFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var (
		name, version, builder string
		argv                   *starlark.List
		env                    *starlark.Dict
		inputs                 starlark.Value = starlark.None
		outputs                *starlark.List
		passthru               *starlark.Dict
		timeout                int
	)
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"name", &name, "version?", &version, "builder", &builder, "args?", &argv,
		"env?", &env, "inputs?", &inputs, "outputs?", &outputs, "passthru?", &passthru,
		"timeout?", &timeout); err != nil {
		return nil, err
	}
	var argVals []starlark.Value
	if argv != nil {
		argVals = slices.Collect(argv.Elements())
	}
	var envItems []envItem
	if env != nil {
		envItems = make([]envItem, 0, env.Len())
		for k, v := range env.Entries() {
			envItems = append(envItems, envItem{k, v})
		}
	}
	var outs []starlark.Value
	if outputs != nil {
		outs = slices.Collect(outputs.Elements())
	}
	return newDerivation(ctx, b.Name(), name, version, builder, argVals, envItems, outs, inputs, passthru, timeout)
}

// envItem is a variable of a derivation being made: its name and the
// value toEnvString turns into its text.
type envItem struct{ k, v starlark.Value }

// newDerivation is derivation(...) with its arguments unpacked: args and
// env are converted in order (the first that fails is the one
// reported), and inputs added to what their strings mention.
func newDerivation(ctx *Context, fn, name, version, builder string, args []starlark.Value, env []envItem, outputs []starlark.Value, inputs starlark.Value, passthru *starlark.Dict, timeout int) (*Derivation, error) {
	d := &Derivation{Name: name, Version: version, Builder: builder}
	if len(args) > 0 {
		d.Args = make([]string, len(args))
		for i, a := range args {
			s, err := toEnvString(a)
			if err != nil {
				return nil, fmt.Errorf("%s: args[%d]: %w", fn, i, err)
			}
			d.Args[i] = s
		}
	}
	if len(env) > 0 {
		d.Env = make([]EnvVar, len(env))
		for i, e := range env {
			k, ok := starlark.AsString(e.k)
			if !ok {
				return nil, fmt.Errorf("%s: env key %s is a %s, want string", fn, e.k, e.k.Type())
			}
			s, err := toEnvString(e.v)
			if err != nil {
				return nil, fmt.Errorf("%s: env[%q]: %w", fn, k, err)
			}
			d.Env[i] = EnvVar{k, s}
		}
		d.Env = sortEnv(d.Env)
	}
	for i, v := range outputs {
		o, ok := starlark.AsString(v)
		if !ok || !validOutputName(o) {
			return nil, fmt.Errorf("%s: outputs[%d] = %s: want a lowercase name such as \"out\" or \"dev\"", fn, i, v)
		}
		d.Outputs = append(d.Outputs, o)
	}
	if timeout < 0 {
		return nil, fmt.Errorf("%s: timeout = %d: want seconds >= 0", fn, timeout)
	}
	d.Timeout = timeout
	switch in := inputs.(type) {
	case *starlark.List, starlark.Tuple:
		// Room for the inputs given and three that strings name: a
		// package's libc, its source and the builder script (with two,
		// every package's slice grew, to twice the size, at the third).
		d.Drvs = make([]*Derivation, 0, in.(starlark.Indexable).Len()+3)
	}
	if err := addInputs(d, inputs, "inputs"); err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return finish(ctx, fn, d, passthru)
}

// finish fills the common fields, adds the inputs mentioned in strings,
// checks the result and seals it.
func finish(ctx *Context, fn string, d *Derivation, passthru *starlark.Dict) (*Derivation, error) {
	d.System, d.Store = ctx.System, ctx.StoreDir
	if len(d.Outputs) == 0 {
		d.Outputs = defaultOutputs
	}
	for i, o := range d.Outputs {
		if slices.Contains(d.Outputs[:i], o) {
			return nil, fmt.Errorf("%s: output %q listed twice", fn, o)
		}
	}
	name := d.FullName()
	if err := storepath.ValidName(name); err != nil {
		return nil, fmt.Errorf("%s: name and version: %w", fn, err)
	}
	if d.Builder == "" {
		return nil, fmt.Errorf("%s(%s): builder is empty", fn, d.Name)
	}
	if err := checkUTF8(d); err != nil {
		return nil, fmt.Errorf("%s(%s): %w", fn, d.Name, err)
	}
	if passthru == nil {
		passthru = emptyPassthru
	}
	passthru.Freeze()
	d.Passthru = passthru
	scanInputs(ctx, d)
	d.seal(name)
	for _, p := range d.paths {
		ctx.remember(p, d)
	}
	return d, nil
}

// defaultOutputs are the outputs of every derivation that names none:
// one slice serves all, its capacity its length so that an append
// copies it.
var defaultOutputs = []string{"out"}[:1:1]

// emptyPassthru is the passthru of every derivation given none: frozen,
// so one serves all.
var emptyPassthru = func() *starlark.Dict {
	d := starlark.NewDict(0)
	d.Freeze()
	return d
}()

// checkUTF8 refuses strings that are not UTF-8 anywhere in d. The
// canonical encoding is JSON, which would replace each invalid byte by
// U+FFFD: two different byte strings would make one derivation, and the
// file built would not hold the bytes the module wrote.
func checkUTF8(d *Derivation) error {
	valid := utf8.ValidString(d.Name) && utf8.ValidString(d.Version) && utf8.ValidString(d.Builder)
	for _, a := range d.Args {
		valid = valid && utf8.ValidString(a)
	}
	for _, e := range d.Env {
		valid = valid && utf8.ValidString(e.Name) && utf8.ValidString(e.Value)
	}
	if valid {
		return nil
	}
	// The first invalid string is named, in the order of the encoding.
	check := func(what, s string) error {
		if utf8.ValidString(s) {
			return nil
		}
		i := 0
		for i < len(s) {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				break
			}
			i += n
		}
		return fmt.Errorf("%s is not valid UTF-8 (byte 0x%02x at offset %d): a derivation holds text only; put binary data in a file and use path()", what, s[i], i)
	}
	for _, f := range [][2]string{{"name", d.Name}, {"version", d.Version}, {"builder", d.Builder}} {
		if err := check(f[0], f[1]); err != nil {
			return err
		}
	}
	for i, a := range d.Args {
		if err := check(fmt.Sprintf("args[%d]", i), a); err != nil {
			return err
		}
	}
	for _, e := range d.Env {
		if err := check(fmt.Sprintf("env key %q", e.Name), e.Name); err != nil {
			return err
		}
		what := fmt.Sprintf("env[%q]", e.Name)
		if d.Builder == BuilderWriteFile && e.Name == EnvContent {
			what = "content"
		}
		if err := check(what, e.Value); err != nil {
			return err
		}
	}
	return nil
}

// scanInputs adds every known derivation or source whose path is mentioned
// in the builder, args or env. The order they are found in does not
// matter: seal sorts the inputs.
func scanInputs(ctx *Context, d *Derivation) {
	sc := scanner{ctx: ctx, d: d}
	sc.scan(d.Builder)
	for _, a := range d.Args {
		sc.scan(a)
	}
	for _, e := range d.Env {
		sc.scan(e.Value)
	}
}

// scanner is scanInputs' state: what d has, once there is much of it.
type scanner struct {
	ctx *Context
	d   *Derivation
	// haveDrv holds d's inputs by id, once there are more than a few.
	haveDrv map[string]bool
	hint    int // how many paths the strings scanned name, when that is many
	// A large value (the system's manifest) names most paths more than
	// once, and a lookup may ask every scope loaded: each hash is
	// looked up once, past the first few.
	looked map[string]bool
	n      int
}

func (sc *scanner) scan(s string) {
	if !strings.Contains(s, sc.ctx.StoreDir) {
		return
	}
	if len(s) > 64<<10 && sc.looked == nil {
		// The maps are made about as large as they will be, not grown
		// to it: growing them was most of what scanning a system's
		// 10,000 packages cost.
		sc.hint = strings.Count(s, sc.ctx.StoreDir)
		sc.looked = make(map[string]bool, sc.hint)
	}
	for i := 0; ; {
		h, next := nextHash(s, i)
		if next < 0 {
			return
		}
		i = next
		sc.found(h)
	}
}

// found adds what the path of hash h is, if the scope knows it.
func (sc *scanner) found(h string) {
	if sc.n++; sc.n > 32 {
		if sc.looked == nil {
			sc.looked = map[string]bool{}
		}
		if sc.looked[h] {
			return
		}
		sc.looked[h] = true
	}
	d := sc.d
	switch v := sc.ctx.lookup(h).(type) {
	case *Derivation:
		if !sc.hasDrv(v) {
			d.Drvs = append(d.Drvs, v)
			if sc.haveDrv != nil {
				sc.haveDrv[v.id] = true
			}
		}
	case *Source:
		if !slices.ContainsFunc(d.Srcs, func(x *Source) bool { return x.Path == v.Path }) {
			d.Srcs = append(d.Srcs, v)
		}
	}
}

func (sc *scanner) hasDrv(v *Derivation) bool {
	d := sc.d
	if sc.haveDrv == nil && len(d.Drvs) > 16 {
		sc.haveDrv = make(map[string]bool, max(len(d.Drvs), sc.hint))
		for _, x := range d.Drvs {
			sc.haveDrv[x.id] = true
		}
	}
	if sc.haveDrv != nil {
		return sc.haveDrv[v.id]
	}
	for _, x := range d.Drvs {
		if x.id == v.id {
			return true
		}
	}
	return false
}

// nextHash returns the hash part of the first store path in s[i:] (a
// "/", storepath.HashLen characters of the hash alphabet, a "-"), and
// where to look for the next; next is -1 when there is none. It finds
// what storepath.ScanHashes finds, in the same order, from the dashes:
// a string of paths has half as many of them as slashes.
func nextHash(s string, i int) (h string, next int) {
	const n = storepath.HashLen
	i = max(i, n+1)
	for i < len(s) {
		j := strings.IndexByte(s[i:], '-')
		if j < 0 {
			break
		}
		p := i + j
		i = p + 1
		if s[p-n-1] != '/' {
			continue
		}
		h := s[p-n : p]
		ok := true
		for k := 0; k < len(h); k++ {
			if !storepath.IsHashChar(h[k]) {
				ok = false
				break
			}
		}
		if ok {
			return h, i
		}
	}
	return "", -1
}

func addInputs(d *Derivation, v starlark.Value, where string) error {
	var at []int
	bad := addInputsAt(d, v, &at)
	if bad == nil {
		return nil
	}
	for _, i := range slices.Backward(at) {
		where += "[" + strconv.Itoa(i) + "]"
	}
	return fmt.Errorf("%s: got %s, want a derivation, a source or a list of them", where, bad.Type())
}

// addInputsAt adds what v holds to d's inputs. It returns the first
// value that is not an input, and its indices in at, innermost first:
// the path is spelt only for the error, not for every input added.
func addInputsAt(d *Derivation, v starlark.Value, at *[]int) starlark.Value {
	switch x := v.(type) {
	case starlark.NoneType:
	case *Derivation:
		d.Drvs = appendUniqueDrv(d.Drvs, x)
	case *Source:
		for _, s := range d.Srcs {
			if s.Path == x.Path {
				return nil
			}
		}
		d.Srcs = append(d.Srcs, x)
	case starlark.String, starlark.Bytes:
		// Indexable too, each element a string again: without this
		// case a string would be taken apart without end.
		return v
	case starlark.Indexable:
		for i := 0; i < x.Len(); i++ {
			if bad := addInputsAt(d, x.Index(i), at); bad != nil {
				*at = append(*at, i)
				return bad
			}
		}
	default:
		return v
	}
	return nil
}

func appendUniqueDrv(list []*Derivation, d *Derivation) []*Derivation {
	for _, x := range list {
		if x.id == d.id {
			return list
		}
	}
	return append(list, d)
}

// toEnvString converts what a builder can receive as a string: strings,
// numbers, booleans ("1" or ""), store objects (their path), and lists of
// those (space-separated).
func toEnvString(v starlark.Value) (string, error) {
	switch x := v.(type) {
	case starlark.String:
		return string(x), nil
	case starlark.Int:
		return x.String(), nil
	case starlark.Bool:
		if x {
			return "1", nil
		}
		return "", nil
	case *Derivation:
		return x.Out(), nil
	case *Source:
		return x.Path, nil
	case *starlark.List, starlark.Tuple:
		it := v.(starlark.Indexable)
		// The few parts of a package's list (its dependencies' paths)
		// are held on the stack until joined.
		var few [8]string
		parts := few[:0]
		if it.Len() > len(few) {
			parts = make([]string, it.Len())
		}
		parts = parts[:it.Len()]
		for i := range parts {
			s, err := toEnvString(it.Index(i))
			if err != nil {
				return "", fmt.Errorf("[%d]: %w", i, err)
			}
			parts[i] = s
		}
		return strings.Join(parts, " "), nil
	}
	return "", fmt.Errorf("got %s, want a string, number, bool, derivation or a list of them", v.Type())
}

// parseHash accepts "sha256:<hex>" or "blake3:<hex>" (64 hex digits).
func parseHash(s string) (algo, digest string, err error) {
	algo, digest, ok := strings.Cut(s, ":")
	if !ok || (algo != "sha256" && algo != "blake3") {
		return "", "", fmt.Errorf("hash %q: want \"sha256:<64 hex digits>\" or \"blake3:<64 hex digits>\"", s)
	}
	if err := checkHex(digest); err != nil {
		return "", "", fmt.Errorf("hash %q: %w", s, err)
	}
	return algo, digest, nil
}

func checkHex(digest string) error {
	if len(digest) != 64 {
		return fmt.Errorf("digest has %d hex digits, want 64", len(digest))
	}
	for i := 0; i < len(digest); i++ {
		if c := digest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("digest is not lowercase hex")
		}
	}
	return nil
}

// nameFromURL makes a store name from the last element of a URL.
func nameFromURL(u string) string {
	p := u
	if parsed, err := url.Parse(u); err == nil && parsed.Path != "" {
		p = parsed.Path
	}
	base := path.Base(strings.TrimSuffix(p, "/"))
	base = strings.TrimSuffix(base, ".git")
	var b strings.Builder
	for i := 0; i < len(base); i++ {
		c := base[i]
		if storepath.ValidName(string(c)) == nil || (c == '.' && i > 0) {
			b.WriteByte(c)
		} else {
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 || base == "." || base == "/" {
		return "source"
	}
	return b.String()
}

func fetchURL(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var rawURL, sha, b3, name string
	var unpack bool
	var passthru *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "url", &rawURL, "sha256?", &sha, "blake3?", &b3,
		"unpack?", &unpack, "name?", &name, "passthru?", &passthru); err != nil {
		return nil, err
	}
	return newFetchURL(ctx, b.Name(), rawURL, sha, b3, unpack, name, passthru)
}

// plainHTTP says whether rawURL is an http or https URL of a host name
// and a path of plain characters, which url.Parse always takes, as one
// of those schemes: nearly every source's URL is, and parsing each was
// a sixtieth of what making a package cost.
func plainHTTP(rawURL string) bool {
	rest, ok := strings.CutPrefix(rawURL, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(rawURL, "http://"); !ok {
			return false
		}
	}
	host, path, _ := strings.Cut(rest, "/")
	if host == "" {
		return false
	}
	plain := func(s, also string) bool {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(also, c) >= 0) {
				return false
			}
		}
		return true
	}
	return plain(host, ".-") && plain(path, "._~/+-")
}

// newFetchURL is fetch_url(...) with its arguments unpacked.
func newFetchURL(ctx *Context, fn, rawURL, sha, b3 string, unpack bool, name string, passthru *starlark.Dict) (*Derivation, error) {
	if !plainHTTP(rawURL) {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
			return nil, fmt.Errorf("%s: url %q: want an http, https or file URL", fn, rawURL)
		}
		if u.Scheme == "file" {
			// A hash does not make reading any file of the host harmless:
			// whoever knows a secret file's digest would get it copied into
			// the world-readable store.
			if _, err := ctx.Local(u.Path); err != nil {
				return nil, fmt.Errorf("%s(%q): %w", fn, rawURL, err)
			}
		}
	}
	fixed, err := fixedFromArgs(fn, rawURL, sha, b3)
	if err != nil {
		return nil, err
	}
	fixed.Unpack = unpack
	if name == "" {
		name = nameFromURL(rawURL)
	}
	d := &Derivation{Name: name, Builder: BuilderFetchURL, Env: []EnvVar{{EnvURL, rawURL}}, Fixed: fixed}
	return finish(ctx, fn, d, passthru)
}

func fixedFromArgs(fn, what, sha, b3 string) (*Fixed, error) {
	switch {
	case sha != "" && b3 != "":
		return nil, fmt.Errorf("%s(%s): give sha256 or blake3, not both", fn, what)
	case sha != "":
		if err := checkHex(strings.TrimPrefix(sha, "sha256:")); err != nil {
			return nil, fmt.Errorf("%s(%s): sha256: %w", fn, what, err)
		}
		return &Fixed{Algo: "sha256", Hash: strings.TrimPrefix(sha, "sha256:")}, nil
	case b3 != "":
		if err := checkHex(strings.TrimPrefix(b3, "blake3:")); err != nil {
			return nil, fmt.Errorf("%s(%s): blake3: %w", fn, what, err)
		}
		return &Fixed{Algo: "blake3", Hash: strings.TrimPrefix(b3, "blake3:")}, nil
	}
	return nil, fmt.Errorf("%s(%s): no hash: a fetch must name what it expects, add sha256 = \"<hex>\" or blake3 = \"<hex>\" (or pin it in nexis.lock with `nexis update`)", fn, what)
}

func fetchGit(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var rawURL, rev, hash, name string
	var passthru *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "url", &rawURL, "rev", &rev, "hash?", &hash,
		"name?", &name, "passthru?", &passthru); err != nil {
		return nil, err
	}
	if len(rev) != 40 || strings.Trim(rev, "0123456789abcdef") != "" {
		return nil, fmt.Errorf("%s(%s): rev %q: want a full 40-digit commit id (tags and branches move)", b.Name(), rawURL, rev)
	}
	if hash == "" {
		return nil, fmt.Errorf("%s(%s): no hash: a fetch must name what it expects, add hash = \"blake3:<hex>\" (the tree hash of the checkout; `nexis update` computes it)", b.Name(), rawURL)
	}
	algo, digest, err := parseHash(hash)
	if err != nil {
		return nil, fmt.Errorf("%s(%s): %w", b.Name(), rawURL, err)
	}
	if name == "" {
		name = nameFromURL(rawURL)
	}
	d := &Derivation{Name: name, Builder: BuilderFetchGit, Env: []EnvVar{{EnvRev, rev}, {EnvURL, rawURL}},
		Fixed: &Fixed{Algo: algo, Hash: digest, Unpack: true}}
	return finish(ctx, b.Name(), d, passthru)
}

func pathFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	var rel, name, relativeTo string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &rel, "name?", &name, "relative_to?", &relativeTo); err != nil {
		return nil, err
	}
	f, err := ctx.Resolve(thread, rel, relativeTo)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), rel, err)
	}
	if name == "" {
		name = nameFromURL(f.Display)
	}
	s, err := newSource(ctx, name, f)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), rel, err)
	}
	ctx.remember(s.Path, s)
	return s, nil
}

// parseMode accepts an int (0o644) or an octal string ("0644").
func parseMode(v starlark.Value) (int64, error) {
	switch x := v.(type) {
	case starlark.Int:
		m, ok := x.Int64()
		if ok && m >= 0 && m <= 0o7777 {
			return m, nil
		}
	case starlark.String:
		m, err := strconv.ParseInt(string(x), 8, 32)
		if err == nil && m >= 0 && m <= 0o7777 && len(x) >= 3 {
			return m, nil
		}
	}
	return 0, fmt.Errorf("mode %s: want an octal mode such as \"0644\" or 0o644", v)
}

func writeFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var name, content string
	var mode starlark.Value = starlark.MakeInt(0o444)
	var secret bool
	var passthru *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "content", &content, "mode?", &mode,
		"secret?", &secret, "passthru?", &passthru); err != nil {
		return nil, err
	}
	m, err := parseMode(mode)
	if err != nil {
		return nil, fmt.Errorf("%s(%s): %w", b.Name(), name, err)
	}
	if secret {
		// A secret is readable by root only in the store; activation
		// copies it into place with its owner.
		m = 0o400
	}
	// In the order of their names.
	env := []EnvVar{{EnvContent, content}, {EnvMode, fmt.Sprintf("%04o", m)}}
	if secret {
		env = append(env, EnvVar{EnvSecret, "1"})
	}
	d := &Derivation{Name: name, Builder: BuilderWriteFile, Env: env}
	return finish(ctx, b.Name(), d, passthru)
}

func templateFn(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	ctx, err := FromThread(thread)
	if err != nil {
		return nil, err
	}
	if err := CheckArgs(ctx.Limits, args, kwargs); err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	var src, relativeTo string
	var vars *starlark.Dict
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src, "vars?", &vars, "relative_to?", &relativeTo); err != nil {
		return nil, err
	}
	f, err := ctx.Resolve(thread, src, relativeTo)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), src, err)
	}
	text, err := ctx.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s(%q): %w", b.Name(), src, err)
	}
	data := map[string]any{}
	if vars != nil {
		for _, item := range vars.Items() {
			k, ok := starlark.AsString(item[0])
			if !ok {
				return nil, fmt.Errorf("%s(%q): variable name %s is not a string", b.Name(), src, item[0])
			}
			v, err := ToGo(item[1])
			if err != nil {
				return nil, fmt.Errorf("%s(%q): variable %s: %w", b.Name(), src, k, err)
			}
			data[k] = v
		}
	}
	// text/template's errors already start with "template: <file>:<line>".
	tmpl, err := template.New(f.Display).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, missingVarHint(err, data))
	}
	return starlark.String(out.String()), nil
}

// missingKey is how text/template names a variable the data lacks.
var missingKey = regexp.MustCompile(`map has no entry for key "([^"]*)"`)

// missingVarHint says what to do about a template's failed execution:
// the variable it probably meant, when one of those given is close.
func missingVarHint(err error, data map[string]any) string {
	m := missingKey.FindStringSubmatch(err.Error())
	if m == nil {
		return "pass it in the template's variables"
	}
	names := make([]string, 0, len(data))
	for k := range data {
		names = append(names, k)
	}
	if c := suggest.Closest(m[1], names); c != "" {
		return fmt.Sprintf("did you mean %q? or pass %q in the template's variables", c, m[1])
	}
	return fmt.Sprintf("pass %q in the template's variables", m[1])
}
