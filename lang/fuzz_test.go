package lang

import (
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets feed the evaluator what a hostile or careless config
// writer could: any bytes as a config file (FuzzLoadConfig: the nesting
// measure, the key position scanner, the TOML library, includes), and a
// config with any module (FuzzEval: the whole evaluation, stdlib
// included). Neither may crash, hang or grow without bound: the limits
// are small, and a runaway step fails the run. `make fuzz-eval` runs each for
// a bounded time; seeds are in testdata/fuzz/<target>/.

// fuzzLimits keep one input cheap: a thousand times fewer steps and a
// tenth of the memory an evaluation may use.
var fuzzLimits = Options{MaxSteps: 500_000, MaxMemory: 256 << 20}

func fuzzOptions() Options {
	opts := fuzzLimits
	opts.Runaway = func(msg string) { panic("runaway evaluation: " + msg) }
	return opts
}

func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		"",
		"[system]\nhostname = \"x\"\n",
		"[[packages]]\nname = \"a\"\nversion = \"1\"\n\n[[packages]]\nname = \"b\"\ndependencies = [\"a\"]\n",
		"x = [[1, 2], {a = {b = [3]}}]\n",
		"a.b.\"c d\".e = '''\nmulti\n'''\n[t.u]\nv = \"\"\"x\"\"\"\n",
		"[includes]\npaths = [\"inc.toml\"]\n",
		"x = [[[[[[[[[[1]]]]]]]]]]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.toml"), doc, 0o644)
		os.WriteFile(filepath.Join(dir, "inc.toml"), doc, 0o644)
		cfg, err := loadConfig(filepath.Join(dir, "config.toml"), nil, DefaultMaxDepth, nil)
		if err != nil {
			return
		}
		defer cfg.Close()
		if err := cfg.Check(ConfigSchema); err != nil {
			return
		}
		ToStarlark(cfg.data)
	})
}

func FuzzEval(f *testing.F) {
	const pkg = "[[packages]]\nname = \"p\"\nmodule = \"m.star\"\n"
	for _, seed := range [][2]string{
		{pkg, "def package():\n    return write_file(\"p\", \"hello\")\n"},
		{pkg + "args = { n = 3 }\n", "def package(n):\n    return derivation(name = \"p\", builder = \"/bin/sh\", args = [str(i) for i in range(n)])\n"},
		{pkg, "def package():\n    x = []\n    for i in range(200):\n        x = [x]\n    return write_file(\"p\", json.encode(x))\n"},
		{pkg, "def package():\n    return write_file(\"p\", \"%s\" % ([0] * 100,) + \"x\" * 10)\n"},
		{pkg, "def package():\n    return write_file(\"p\", template(\"t.tpl\", {\"x\": 1}))\n"},
		{pkg, "load(\"../m.star\", \"package\")\n"},
		{"[system]\nhostname = \"h\"\n[system.firewall]\nextra_rules = [\"tcp dport 22 accept\"]\n[users.alice]\nhome = \"/home/alice\"\n", ""},
		{"[config_files.x]\npath = \"/etc/x\"\nsource = \"t.tpl\"\nvariables = { x = 1 }\n", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, config, mod string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644)
		os.WriteFile(filepath.Join(dir, "m.star"), []byte(mod), 0o644)
		os.WriteFile(filepath.Join(dir, "t.tpl"), []byte("{{.x}}\n"), 0o644)
		sys, err := Eval(filepath.Join(dir, "config.toml"), fuzzOptions())
		if err != nil {
			FormatError(err, true)
			return
		}
		defer sys.Close()
		if sys.Drv == nil {
			t.Fatal("no error and no system")
		}
	})
}
