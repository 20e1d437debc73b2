package lang

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/nexisos/nexis/builtins"
)

// TestNestingOfTOML: documents nested past the limit are refused at the
// place the limit is passed, however the nesting is written; brackets
// inside strings and comments do not count; a document at the limit
// evaluates.
func TestNestingOfTOML(t *testing.T) {
	arrays := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		name, doc string
		max       int
		want      string // "" for no error; else the position
	}{
		{"arrays at the limit", "x = " + arrays(9), 10, ""},
		{"arrays past the limit", "x = " + arrays(10), 10, "1:14"},
		{"inline tables", "x = {a = {b = {c = {d = 1}}}}", 4, "1:20"},
		{"dotted keys in an inline table", "x = {a.b.c.d = {e = 1}}", 5, "1:16"},
		{"a dotted key", "a.b.c.d.e.f = [1]", 6, "1:15"},
		{"a table header", "[a.b.c.d.e.f]\nx = 1\n", 5, "1:1"},
		{"an array of tables", "[[a.b.c.d]]\nx = 1\n", 6, ""},
		{"an array of tables past the limit", "[[a.b.c.d.e]]\nx = 1\n", 6, "1:1"},
		{"values under a header", "[a.b]\nx = [[1]]\n", 4, "2:6"},
		{"brackets in strings", `x = ["[[[[[[[[", '{{{{{{{{{', """[[[[[[""", '''{{{{{{{{'''] # [[[[[[[[[`, 3, ""},
		{"brackets in a multi-line array", "x = [\n  [ # ]]]]\n    [1],\n  ],\n]\n", 4, ""},
		{"escaped quotes", `x = ["\"[[[[[[[["]`, 3, ""},
		{"not TOML", "]]]] = {{{ [[ '\n\"\"\"", 10, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkNesting("c.toml", []byte(c.doc), c.max)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && err == nil:
				t.Fatal("accepted")
			case c.want != "" && !strings.HasPrefix(err.Error(), "c.toml:"+c.want+": values nest more than"):
				t.Fatalf("got %v, want it at %s", err, c.want)
			}
		})
	}
}

// TestTOMLBomb: the 200 KB document that took 15 GB is refused before
// the TOML library reads it, through an include as well.
func TestTOMLBomb(t *testing.T) {
	dir := t.TempDir()
	bomb := "x = " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n"
	os.WriteFile(filepath.Join(dir, "bomb.toml"), []byte(bomb), 0o644)
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[includes]\npaths = [\"bomb.toml\"]\n"), 0o644)
	_, err := Eval(filepath.Join(dir, "config.toml"), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "bomb.toml:1:104: values nest more than 100 deep") {
		t.Fatalf("got %v", err)
	}
	// The lock file is TOML too.
	os.WriteFile(filepath.Join(dir, "config.toml"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, LockFile), []byte(bomb), 0o644)
	if _, err := Eval(filepath.Join(dir, "config.toml"), Options{}); err == nil || !strings.Contains(err.Error(), "values nest more than 100 deep") {
		t.Fatalf("lock: got %v", err)
	}
}

// evalModule evaluates a config whose one package comes from src.
func evalModule(t *testing.T, src string, opts Options) (*System, error) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[[packages]]\nname = \"p\"\nmodule = \"m.star\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "t.tpl"), []byte("{{.x}}"), 0o644)
	os.WriteFile(filepath.Join(dir, "m.star"), []byte(src), 0o644)
	return Eval(filepath.Join(dir, "config.toml"), opts)
}

const deepList = `
def deep():
    x = []
    for i in range(100000):
        x = [x]
    return x
`

const sharedList = `
def shared():
    x = ["0123456789"]
    for i in range(60):
        x = [x, x]
    return x
`

// TestResourceBombs: each way found to make one step allocate without
// bound, or Go code recurse without bound, is an error at the line that
// does it.
func TestResourceBombs(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"list repetition", `x = [0] * 1000000000`, `m.star:\d+:13: repeating a list of 1 elements 1000000000 times would take more than 2 GiB`},
		{"repetition the other way", `x = 1000000000 * [0, 1]`, `repeating a list of 2 elements 1000000000 times`},
		{"string repetition", `x = "ab" * 10000000000`, `repeating a string of 2 bytes 10000000000 times`},
		{"augmented repetition", "x = [0]\n    x *= 1000000000", `m.star:\d+:7: repeating a list`},
		{"augmented repetition of an element", "d = {\"k\": [[0]]}\n    d[\"k\"][0] *= 1000000000", `repeating a list`},
		{"str of a deep list", `x = str(deep())`, `m.star:\d+:\d+: str: the value nests more than 100 deep`},
		{"repr of a deep list", `x = repr(deep())`, `repr: the value nests more than 100 deep`},
		{"print of a deep list", `print(deep())`, `print: the value nests more than 100 deep`},
		{"fail with a deep list", `fail(deep())`, `m.star:\d+:9: the value nests more than 100 deep`},
		{"json of a deep list", `x = json.encode(deep())`, `json.encode: the value nests more than 100 deep`},
		{"json.indent of a deep text", `x = json.indent("[" * 100000 + "]" * 100000)`, `json.indent: .*exceeded max depth`},
		{"json.decode of a deep text", `x = json.decode("[" * 100000 + "]" * 100000)`, `json.decode: the value nests more than 100 deep`},
		{"formatting a shared list", `x = "%s" % (shared(),)`, `%: the value would take more than 2 GiB as text`},
		{"str of a shared list", `x = str(shared())`, `str: the value would take more than 2 GiB as text`},
		{"a derivation given a deep value", `return derivation(name = "p", builder = "/bin/sh", args = deep())`, `derivation: args: the value nests more than 100 deep`},
		{"a template given a deep value", `x = template("t.tpl", {"x": deep()})`, `template: the value nests more than 100 deep`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := deepList + sharedList + "\ndef package():\n    " + c.body + "\n    return write_file(\"p\", \"p\")\n"
			_, err := evalModule(t, src, Options{})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("evaluated")
			}
			if !regexp.MustCompile(c.want).MatchString(err.Error()) {
				t.Fatalf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

// TestDeepGlobal: a module global too deep to freeze is refused by name.
func TestDeepGlobal(t *testing.T) {
	_, err := evalModule(t, deepList+"X = deep()\ndef package():\n    return write_file(\"p\", \"p\")\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "m.star: global X: the value nests more than 100 deep") {
		t.Fatalf("got %v", err)
	}
}

// TestMemoryLimit: a value that grows step by step past --max-memory
// stops the evaluation where it was.
func TestMemoryLimit(t *testing.T) {
	_, err := evalModule(t, `
def package():
    s = "x"
    for i in range(40):
        s = s + s
    return write_file("p", s)
`, Options{MaxMemory: 64 << 20})
	if err == nil || !regexp.MustCompile(`^m\.star:5:\d+: Starlark computation cancelled: evaluation used more than 64 MiB of memory`).MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
}

// TestLoweringKeepsMeaning: the rewritten operators compute what the
// interpreter's do, errors included.
func TestLoweringKeepsMeaning(t *testing.T) {
	sys, err := evalModule(t, `
def package():
    x = [1, 2]
    x *= 2
    d = {"k": [1], "s": "ab"}
    d["k"] *= 3
    d["s"] *= 2
    l = [1, 2, 3]
    l[-1] *= 5
    checks = [
        x == [1, 2, 1, 2],
        d == {"k": [1, 1, 1], "s": "abab"},
        l == [1, 2, 15],
        2 * [0] == [0, 0],
        3 * 4 == 12,
        "%d-%s" % (1, "a") == "1-a",
        7 % 3 == 1,
        "ab" * 0 == "",
        [1] * -1 == [],
        (1, 2) * 2 == (1, 2, 1, 2),
    ]
    return write_file("p", str(checks))
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, _, _ := sys.Packages.Get(starlark.String("p"))
	if got := v.(*builtins.Derivation).Getenv("content"); strings.Contains(got, "False") {
		t.Fatalf("checks: %s", got)
	}
	for _, c := range []struct{ body, want string }{
		{`x = "a" * "b"`, `unknown binary op: string \* string`},
		{"d = {}\n    d[\"k\"] *= 2", `key "k" not in dict`},
		{"l = []\n    l[0] *= 2", `list index 0 out of range`},
		{"t = (1,)\n    t[0] *= 2", `tuple value does not support item assignment`},
	} {
		_, err := evalModule(t, "def package():\n    "+c.body+"\n    return write_file(\"p\", \"p\")\n", Options{})
		if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) {
			t.Errorf("%s: got %v, want %s", c.body, err, c.want)
		}
	}
}

// TestExprIsGuarded: -e expressions are lowered and watched too.
func TestExprIsGuarded(t *testing.T) {
	sys, err := evalModule(t, "def package():\n    return write_file(\"p\", \"p\")\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.EvalExpr(`[0] * 1000000000`); err == nil || !strings.Contains(err.Error(), "repeating a list") {
		t.Fatalf("got %v", err)
	}
}

// TestRunawayStep: one step that allocates past twice the limit, which
// nothing inside the evaluation can stop, is reported through Runaway.
func TestRunawayStep(t *testing.T) {
	// The watchdog counts growth from the lowest heap it sees: garbage
	// left by earlier tests, collected while this one allocates, would
	// hide the growth and leave it waiting for ever.
	runtime.GC()
	got := make(chan string, 1)
	stop := watch(func(string) {}, 1<<20, func(msg string) { got <- msg })
	defer stop()
	hold := make([][]byte, 0, 64)
	var msg string
	for msg == "" {
		hold = append(hold, make([]byte, 1<<20))
		select {
		case msg = <-got:
		default:
		}
		if len(hold) == cap(hold) {
			msg = <-got
		}
	}
	if !strings.Contains(msg, "one step allocated more than 2 MiB") {
		t.Fatalf("runaway said %q", msg)
	}
}

// TestPanicBecomesError: a panic inside an evaluation is an internal
// error, not a crash.
func TestPanicBecomesError(t *testing.T) {
	ev := &evaluator{thread: &starlark.Thread{}, opts: withDefaults(Options{})}
	err := ev.run(func() error { panic("boom") })
	var le *Error
	if !errors.As(err, &le) || !strings.Contains(le.Msg, "internal error: nexis failed while evaluating (boom)") {
		t.Fatalf("got %v", err)
	}
}

// TestWriteFileNotUTF8: bytes that are not UTF-8 (a string sliced inside
// a character, a file read by template) are refused, not replaced: two different
// contents made one derivation before.
func TestWriteFileNotUTF8(t *testing.T) {
	for _, content := range []string{"\"\u00ff\"[1:]", "\"ok\u00fe\"[:3]", "template(\"bin.tpl\", {})"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.toml"), []byte("[[packages]]\nname = \"p\"\nmodule = \"m.star\"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "bin.tpl"), []byte("\xff\xfe"), 0o644)
		os.WriteFile(filepath.Join(dir, "m.star"), []byte("def package():\n    return write_file(\"p\", "+content+")\n"), 0o644)
		_, err := Eval(filepath.Join(dir, "config.toml"), Options{})
		if err == nil || !regexp.MustCompile(`^m\.star:2:22: write_file\(p\): content is not valid UTF-8 \(byte 0x(bf at offset 0|c3 at offset 2|ff at offset 0)\)`).MatchString(err.Error()) {
			t.Errorf("%q: got %v", content, err)
		}
	}
}

// TestNestingPositions: the depth check passes strings and comments a
// run of bytes at a time and still counts lines and byte columns as one
// byte at a time does: through escapes, literal backslashes, multi-byte
// characters, and a backslash before a newline in a basic string.
func TestNestingPositions(t *testing.T) {
	for _, c := range []struct {
		doc       string
		line, col int
	}{
		{"x = \"esc\\\"aped\" # comment [\nd = [[[[1]]]]\n", 2, 7},
		{"y = 'lit\\' # not a string'\nz = [\"é\\\\\", 'a\"b', [[1]]]\n", 2, 22},
		{"w = \"a\\\nb\" , v = [[[[1]]]]\nu = [[[[1]]]]\n", 3, 7},
		{"s = \"\"\"\nmulti \\\"\"\" [[[[\n\"\"\"\nt = {a = [[[1]]]}\n", 4, 11},
		{"[[a]]\nk = \"[[[[\"\nl = [[1]]\n", 3, 5},
	} {
		err := checkNesting("c.toml", []byte(c.doc), 3)
		le, ok := err.(*Error)
		if !ok || le.Pos.Line != c.line || le.Pos.Col != c.col {
			t.Errorf("%q: %v, want c.toml:%d:%d", c.doc, err, c.line, c.col)
		}
	}
}
