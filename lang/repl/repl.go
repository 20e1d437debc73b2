// Package repl is the interactive loop of `nexis repl`: a config's
// environment preloaded, line editing, persistent history, completion of
// globals, attributes and dict keys, and a few colon commands. The loop is
// written here because go.starlark.net's own repl has no completion and
// cannot reload.
package repl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/chzyer/readline"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/suggest"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/lang/source"
)

const help = `Type Starlark expressions or statements; results are printed.
Preloaded: config (the TOML as dicts), packages (name → derivation),
system (the system derivation), and every builtin (derivation, fetch_url,
fetch_git, path, write_file, template, struct, json, try_call,
config_error, declared_in, default, nexis_command, target_system, build_settings).
  :doc NAME   what a builtin or stdlib function does (:doc alone lists them)
  :t EXPR     the type of EXPR
  :p EXPR     EXPR printed with indentation
  :b EXPR     build the derivation EXPR and print its output paths
  :l FILE     run a .star file here; its globals become yours
  :help       this text
  :reload     evaluate the config again (your own variables are kept)
  :quit       leave (or Ctrl-D)
Tab completes names, attributes (packages["vim"].<TAB>) and dict keys
(packages["<TAB>).`

// Session is one repl: a config's evaluation plus the user's variables.
type Session struct {
	// Load evaluates the config; :reload calls it again.
	Load func() (*lang.System, error)
	// Build realises a derivation with the evaluated config's caches
	// and builders and returns its output paths; nil when the session
	// cannot build (:b then says so).
	Build func(*lang.System, *builtins.Derivation) ([]string, error)
	Out   io.Writer
	Err   io.Writer

	sys  *lang.System
	user starlark.StringDict
}

var fileOptions = &syntax.FileOptions{Set: true, TopLevelControl: true, GlobalReassign: true, While: false}

// Start evaluates the config for the first time.
func (s *Session) Start() error {
	sys, err := s.Load()
	if err != nil {
		return err
	}
	s.sys = sys
	s.user = starlark.StringDict{}
	return nil
}

func (s *Session) globals() starlark.StringDict {
	g := make(starlark.StringDict, len(s.sys.Globals())+len(s.user))
	for k, v := range s.sys.Globals() {
		g[k] = v
	}
	for k, v := range s.user {
		g[k] = v
	}
	return g
}

// Run reads inputs until EOF or :quit. On a terminal it edits lines with
// history and completion; on a pipe it prints results only.
func (s *Session) Run(in io.Reader, interactive bool, historyFile string) error {
	if !interactive {
		br := bufio.NewReader(in)
		return s.loop(func(prompt string) (string, error) {
			line, err := br.ReadString('\n')
			if err == io.EOF && line != "" {
				return line, nil
			}
			return strings.TrimSuffix(line, "\n"), err
		})
	}
	if historyFile != "" {
		_ = os.MkdirAll(filepath.Dir(historyFile), 0o700)
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt:          ">>> ",
		HistoryFile:     historyFile,
		AutoComplete:    completer{s},
		InterruptPrompt: "^C",
		EOFPrompt:       "",
		Stdout:          s.Out,
		Stderr:          s.Err,
	})
	if err != nil {
		return fmt.Errorf("start line editor: %w", err)
	}
	defer rl.Close()
	fmt.Fprintln(s.Err, "nexis repl: config loaded; :help for help, :quit to leave")
	return s.loop(func(prompt string) (string, error) {
		rl.SetPrompt(prompt)
		line, err := rl.Readline()
		if errors.Is(err, readline.ErrInterrupt) {
			return "", nil
		}
		return line, err
	})
}

var errQuit = errors.New("quit")

func (s *Session) loop(read func(prompt string) (string, error)) error {
	for {
		err := s.one(read)
		switch {
		case err == nil:
		case errors.Is(err, errQuit), errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, errHandled):
		default:
			fmt.Fprintf(s.Err, "error: %v\n", err)
		}
	}
}

// one reads and runs one input: a command, or a Starlark chunk that may
// span several lines (a def, an open bracket). The parser turns errors of
// its line reader into syntax errors, so the reader's own outcomes travel
// beside it.
func (s *Session) one(read func(prompt string) (string, error)) error {
	first := true
	var readErr, cmdErr error
	readLine := func() ([]byte, error) {
		prompt := "... "
		if first {
			prompt = ">>> "
		}
		line, err := read(prompt)
		if err != nil {
			if errors.Is(err, io.EOF) && !first {
				// End of input inside a block: run what was read.
				readErr = err
				return nil, nil
			}
			readErr = err
			return nil, err
		}
		if first {
			first = false
			if cmd := strings.TrimSpace(line); strings.HasPrefix(cmd, ":") {
				cmdErr = s.command(cmd)
				return nil, cmdErr
			}
		}
		return []byte(line + "\n"), nil
	}
	f, err := fileOptions.ParseCompoundStmt("<repl>", readLine)
	switch {
	case cmdErr != nil:
		return cmdErr
	case err != nil && readErr != nil:
		return readErr
	case err != nil:
		return err
	}
	if err := s.exec(f); err != nil {
		s.report(err)
	}
	return readErr
}

func (s *Session) command(line string) error {
	cmd, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch cmd {
	case ":doc", ":d":
		s.doc(arg)
	case ":t", ":type":
		if v, ok := s.evalArg(cmd, arg); ok {
			fmt.Fprintln(s.Out, v.Type())
		}
	case ":p", ":print":
		if v, ok := s.evalArg(cmd, arg); ok {
			fmt.Fprintln(s.Out, lang.Indent(v))
		}
	case ":b", ":build":
		s.build(cmd, arg)
	case ":l", ":load":
		s.loadFile(arg)
	case ":q", ":quit", ":exit":
		return errQuit
	case ":h", ":help", ":?":
		fmt.Fprintln(s.Out, help)
	case ":r", ":reload":
		sys, err := s.Load()
		if err != nil {
			s.report(err)
			fmt.Fprintln(s.Err, "reload failed; the previous evaluation is still loaded")
		} else {
			s.sys = sys
			fmt.Fprintln(s.Err, "config reloaded")
		}
	default:
		msg := fmt.Sprintf("unknown command %s", cmd)
		if m := suggest.Closest(cmd, commands); m != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", m)
		}
		fmt.Fprintln(s.Err, msg+"; :help lists them")
	}
	return errHandled
}

var commands = []string{":doc", ":t", ":p", ":b", ":l", ":help", ":reload", ":quit"}

// evalArg evaluates a command's expression, reporting what goes wrong.
func (s *Session) evalArg(cmd, expr string) (starlark.Value, bool) {
	if expr == "" {
		fmt.Fprintf(s.Err, "%s needs an expression: %s EXPR\n", cmd, cmd)
		return nil, false
	}
	v, err := starlark.EvalOptions(fileOptions, s.sys.NewThread(), "<repl>", expr, s.globals())
	if err != nil {
		s.report(err)
		return nil, false
	}
	return v, true
}

// doc prints what a builtin or a stdlib function does.
func (s *Session) doc(name string) {
	docs := lang.BuiltinDocs()
	stdlib := source.StdlibDocs()
	if name == "" {
		names := make([]string, 0, len(docs))
		for k := range docs {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(s.Out, "builtins: %s\n", strings.Join(names, ", "))
		byModule := map[string][]string{}
		var mods []string
		for _, f := range stdlib {
			if byModule[f.Module] == nil {
				mods = append(mods, f.Module)
			}
			byModule[f.Module] = append(byModule[f.Module], f.Name)
		}
		for _, m := range mods {
			fmt.Fprintf(s.Out, "@stdlib//%s: %s\n", m, strings.Join(byModule[m], ", "))
		}
		return
	}
	if d, ok := docs[name]; ok {
		fmt.Fprintln(s.Out, d)
		return
	}
	found := false
	for _, f := range stdlib {
		if f.Name == name {
			found = true
			fmt.Fprintf(s.Out, "%s  (load(\"@stdlib//%s\", %q))\n", f.Signature, f.Module, f.Name)
			if f.Doc != "" {
				fmt.Fprintf(s.Out, "\n%s\n", f.Doc)
			}
		}
	}
	if found {
		return
	}
	if fn, ok := s.globals()[name].(*starlark.Function); ok {
		fmt.Fprintf(s.Out, "%s (defined at %s)\n", fn.Name(), fn.Position())
		if fn.Doc() != "" {
			fmt.Fprintf(s.Out, "\n%s\n", fn.Doc())
		}
		return
	}
	known := make([]string, 0, len(docs)+len(stdlib))
	for k := range docs {
		known = append(known, k)
	}
	for _, f := range stdlib {
		known = append(known, f.Name)
	}
	msg := fmt.Sprintf("no builtin or stdlib function %q", name)
	if m := suggest.Closest(name, known); m != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", m)
	}
	fmt.Fprintln(s.Err, msg+"; :doc lists them")
}

// build realises a derivation from the repl.
func (s *Session) build(cmd, expr string) {
	v, ok := s.evalArg(cmd, expr)
	if !ok {
		return
	}
	d, ok := v.(*builtins.Derivation)
	if !ok {
		fmt.Fprintf(s.Err, "%s is a %s, not a derivation\n", expr, v.Type())
		return
	}
	if s.Build == nil {
		fmt.Fprintln(s.Err, "this session cannot build")
		return
	}
	outs, err := s.Build(s.sys, d)
	if err != nil {
		fmt.Fprintf(s.Err, "error: %v\n", err)
		return
	}
	for _, o := range outs {
		fmt.Fprintln(s.Out, o)
	}
}

// loadFile runs a .star file in the session, as a chunk typed here
// would run.
func (s *Session) loadFile(name string) {
	if name == "" {
		fmt.Fprintln(s.Err, ":l needs a file: :l FILE.star")
		return
	}
	src, err := os.ReadFile(name)
	if err != nil {
		fmt.Fprintf(s.Err, "error: %v\n", err)
		return
	}
	f, err := fileOptions.Parse(name, src, 0)
	if err != nil {
		s.report(err)
		return
	}
	if err := s.exec(f); err != nil {
		s.report(err)
		return
	}
	fmt.Fprintf(s.Err, "loaded %s\n", name)
}

// hint is a did-you-mean for an undefined name or a missing dict key.
func (s *Session) hint(err error) string {
	msg := err.Error()
	if m := undefinedRE.FindStringSubmatch(msg); m != nil {
		names := make([]string, 0, len(s.sys.Globals())+len(s.user)+len(lang.BuiltinDocs()))
		for k := range s.globals() {
			names = append(names, k)
		}
		for k := range lang.BuiltinDocs() {
			names = append(names, k)
		}
		names = append(names, starlark.Universe.Keys()...)
		if c := suggest.Closest(m[1], names); c != "" {
			return fmt.Sprintf(" (did you mean %s?)", c)
		}
	}
	if m := missingKeyRE.FindStringSubmatch(msg); m != nil {
		if c := suggest.Closest(m[1], dictKeys(s.globals())); c != "" {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
	}
	return ""
}

// dictKeys are the keys of the dicts the globals hold (config, packages
// and what they contain), for a did-you-mean on a missing key.
func dictKeys(g starlark.StringDict) []string {
	seen := map[string]bool{}
	var walk func(v starlark.Value, depth int)
	walk = func(v starlark.Value, depth int) {
		d, ok := v.(*starlark.Dict)
		if !ok || depth > 6 {
			return
		}
		for _, kv := range d.Items() {
			if k, ok := starlark.AsString(kv[0]); ok {
				seen[k] = true
			}
			walk(kv[1], depth+1)
		}
	}
	for _, v := range g {
		walk(v, 0)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	return out
}

var missingKeyRE = regexp.MustCompile(`key "([^"]+)" not in dict`)

var undefinedRE = regexp.MustCompile(`undefined: (\w+)`)

// errHandled ends an input that was a colon command.
var errHandled = errors.New("command handled")

func (s *Session) exec(f *syntax.File) error {
	thread := s.sys.NewThread()
	lang.LowerFile(f)
	if len(f.Stmts) == 1 {
		if es, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			v, err := starlark.EvalExprOptions(fileOptions, thread, es.X, s.globals())
			if err != nil {
				return err
			}
			if v != starlark.None {
				fmt.Fprintln(s.Out, v.String())
			}
			return nil
		}
	}
	g := s.globals()
	if err := starlark.ExecREPLChunk(f, thread, g); err != nil {
		return err
	}
	for k, v := range g {
		if old, ok := s.sys.Globals()[k]; !ok || old != v {
			s.user[k] = v
		}
	}
	return nil
}

func (s *Session) report(err error) {
	hint := s.hint(err)
	var le *lang.Error
	if errors.As(lang.AsError(err), &le) {
		fmt.Fprintf(s.Err, "error: %s%s\n", le.Error(), hint)
		if le.Stack != "" {
			fmt.Fprintln(s.Err, le.Stack)
		}
		return
	}
	fmt.Fprintf(s.Err, "error: %v%s\n", err, hint)
}

type completer struct{ s *Session }

func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	prefix, cands := c.s.Complete(string(line[:pos]))
	out := make([][]rune, len(cands))
	for i, cand := range cands {
		out[i] = []rune(strings.TrimPrefix(cand, prefix))
	}
	return out, len([]rune(prefix))
}

var cmdList = []string{":help", ":quit", ":reload"}

// completionREs are compiled at the first completion rather than at
// start-up, which every nexis command would pay: the repl is linked into
// the one binary.
var completionREs = sync.OnceValue(func() (r struct{ tail, safe, key *regexp.Regexp }) {
	r.tail = regexp.MustCompile(`[A-Za-z0-9_."\[\]:-]*$`)
	r.safe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\["[^"\\]*"\])*$`)
	r.key = regexp.MustCompile(`^(.*)\["([^"\\]*)$`)
	return r
})

// Complete returns the word being completed at the end of line and the
// candidates that may replace it. It only evaluates names, attributes and
// string-keyed indexing, which cannot have effects.
func (s *Session) Complete(line string) (string, []string) {
	if strings.HasPrefix(strings.TrimSpace(line), ":") {
		w := strings.TrimSpace(line)
		return w, filter(cmdList, w)
	}
	re := completionREs()
	tail := re.tail.FindString(line)
	if m := re.key.FindStringSubmatch(tail); m != nil {
		base, partial := m[1], m[2]
		d, ok := s.safeEval(base).(*starlark.Dict)
		if !ok {
			return partial, nil
		}
		var keys []string
		for _, k := range d.Keys() {
			if ks, ok := starlark.AsString(k); ok {
				keys = append(keys, ks+`"]`)
			}
		}
		return partial, filter(keys, partial)
	}
	if i := strings.LastIndex(tail, "."); i >= 0 {
		base, partial := tail[:i], tail[i+1:]
		v := s.safeEval(base)
		if v == nil {
			return partial, nil
		}
		var names []string
		if ha, ok := v.(starlark.HasAttrs); ok {
			names = ha.AttrNames()
		}
		return partial, filter(names, partial)
	}
	var names []string
	for k := range s.globals() {
		names = append(names, k)
	}
	for k := range starlark.Universe {
		names = append(names, k)
	}
	return tail, filter(names, tail)
}

func (s *Session) safeEval(expr string) starlark.Value {
	if !completionREs().safe.MatchString(expr) {
		return nil
	}
	v, err := starlark.EvalOptions(fileOptions, s.sys.NewThread(), "<complete>", expr, s.globals())
	if err != nil {
		return nil
	}
	return v
}

func filter(names []string, prefix string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
