package stdlib_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nexisos/nexis/lang"
)

// configIn writes config.toml with text to a fresh directory.
func configIn(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte("[system]\nhostname = \"t\"\n\n"+text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The environment profile, sourced by the shells a login may run, sets
// every value exactly as written: only $NAME and ${NAME} expand, and
// nothing else of a value (quotes, ;, globs, $ alone, pieces that join
// into "$(...)") is ever run or expanded.
func TestEnvironmentProfileInRealShells(t *testing.T) {
	ev := evalConfig(t, configIn(t, `[nexis.environment]
PLAIN = "a b  c"
QUOTES = "it's \"quoted\" \\ back"
GLOB = "*"
SEMI = "x; touch pwned-semi"
DOLLAR_END = "cost $"
DOLLAR_SPACE = "a $ b/$/c"
REF = "${PLAIN}/x"
REF2 = "$PLAIN$QUOTES"
TILDE = "~/x"
BANG = "!! %s"
A1 = "$"
A2 = "(touch pwned-joined)"
A3 = "${A1}${A2}"
BACKSLASH_DOLLAR = "\\$HOME"
PATH = "/opt/bin"
UTF8 = "café ☕"
`))
	prof, ok := ev.etcFile(t, "profile.d/nexis-environment.sh")
	if !ok {
		t.Fatal("no profile")
	}
	want := map[string]string{
		"PLAIN":            "a b  c",
		"QUOTES":           `it's "quoted" \ back`,
		"GLOB":             "*",
		"SEMI":             "x; touch pwned-semi",
		"DOLLAR_END":       "cost $",
		"DOLLAR_SPACE":     "a $ b/$/c",
		"REF":              "a b  c/x",
		"REF2":             `a b  cit's "quoted" \ back`,
		"TILDE":            "~/x",
		"BANG":             "!! %s",
		"A1":               "$",
		"A2":               "(touch pwned-joined)",
		"A3":               "$(touch pwned-joined)",
		"BACKSLASH_DOLLAR": `\/home/test`,
		"PATH":             "/usr/bin:/bin:/opt/bin",
		"UTF8":             "café ☕",
	}
	p := writeTemp(t, "env.sh", prof)
	shells := [][]string{{"bash"}, {"bash", "--posix"}, {"dash"}, {"busybox", "sh"}}
	ran := 0
	for _, sh := range shells {
		bin, err := exec.LookPath(sh[0])
		if err != nil {
			continue
		}
		ran++
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			dir := t.TempDir()
			args := append(sh[1:], "-c", `. "$1" && env`, "sh", p)
			cmd := exec.Command(bin, args...)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/home/test"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("sourcing the profile: %v\n%s\n--- profile:\n%s", err, out, prof)
			}
			got := map[string]string{}
			for _, l := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					got[k] = v
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("sourcing the profile ran a command: %s made %v", sh[0], ents)
			}
		})
	}
	if ran == 0 {
		t.Skip("no shell to source the profile with")
	}
}

// Values and references that would run or expand something are refused
// at evaluation, naming the key.
func TestEnvironmentRefusesExpansions(t *testing.T) {
	for _, c := range []struct{ value, want string }{
		{`${A@P}`, `nexis.environment.V: "${A@P}": only references to variables`},
		{`${A:-$(id)}`, `nexis.environment.V`},
		{`$(id)`, `not run commands`},
		{"`id`", `not run commands`},
		{`$1`, `only references to variables`},
		{`$$`, `only references to variables`},
		{`a\nb`, `a value is one line`},
	} {
		t.Run(c.value, func(t *testing.T) {
			value := strings.ReplaceAll(c.value, `\n`, "\n")
			err := evalErr(t, configIn(t, "[nexis.environment]\nV = "+tomlString(value)+"\n"))
			if !strings.Contains(err, c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

// logrotate reads every path the stdlib accepts as one file name (or
// one glob), and the stdlib refuses what would change its meaning.
func TestLogRotationPathsWithLogrotate(t *testing.T) {
	logrotate := tool(t, "logrotate", "logrotate")
	ok := []string{"/var/log/app.log", "/var/log/app/*.log", "/srv/app/log/caf\u00e9.log", "/var/log/a?c.log", "/home/alice/logs/x.log"}
	var entries strings.Builder
	for _, p := range ok {
		entries.WriteString("[[log_rotation]]\npath = \"" + p + "\"\n\n")
	}
	ev := evalConfig(t, configIn(t, entries.String()))
	conf, _ := ev.etcFile(t, "logrotate.d/nexis")
	f := writeTemp(t, "nexis", conf)
	out, err := run(t, "", logrotate, "-d", "-s", filepath.Join(t.TempDir(), "state"), f)
	if err != nil || regexp.MustCompile(`(?m)^error:`).MatchString(out) {
		t.Fatalf("logrotate -d: %v\n%s\n--- config:\n%s", err, out, conf)
	}
	for _, p := range ok {
		// The whole path is one pattern: nothing split it.
		if !strings.Contains(out, "rotating pattern: "+p+"  ") {
			t.Errorf("logrotate did not read %s as one pattern:\n%s", p, out)
		}
	}
	for _, bad := range []string{"/var/log/a.log\t/etc/shadow", "/var/log/a.log /etc/shadow", "/var/log/\"x\"", "/var/log/{a,b}.log", "/var/log/x.log#", "/var/*/x.log", "/etc/shadow", "/var/lib/nexis/x.log", "/var/log", "/boot/x.log", "/var/log/../../etc/shadow"} {
		err := evalErr(t, configIn(t, "[[log_rotation]]\npath = "+tomlString(bad)+"\n"))
		if !strings.Contains(err, "log_rotation[0].path") {
			t.Errorf("%q: error %q does not name log_rotation[0].path", bad, err)
		}
	}
}

// evalErr evaluates config and returns its error as nexis prints it.
func evalErr(t *testing.T, config string) string {
	t.Helper()
	_, err := lang.Eval(config, lang.Options{StoreDir: "/store"})
	if err == nil {
		t.Fatalf("%s evaluated; want an error", config)
	}
	return err.Error()
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\t", `\t`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
