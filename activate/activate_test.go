package activate_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/activate/activatetest"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/lang"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/realise/stdenvtest"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/storepath"
)

var examples = func() string {
	p, _ := filepath.Abs("../examples")
	return p
}()

// newTarget is an empty root with its store, as --root makes it.
func newTarget(t *testing.T) *activate.Target {
	t.Helper()
	root := t.TempDir()
	os.Chmod(root, 0o755)
	st, err := store.Open(filepath.Join(root, "store"), store.Options{LogicalDir: "/store"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &activate.Target{Root: openRoot(t, root), Store: st, StateDir: "/var/lib/nexis", Version: "test"}
}

func openRoot(t testing.TB, dir string) *durable.Root {
	t.Helper()
	r, err := durable.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func eval(t *testing.T, config string) *lang.System {
	t.Helper()
	sys, err := lang.Eval(config, lang.Options{StoreDir: "/store", Stdenv: stdenvtest.Spec(t)})
	if err != nil {
		t.Fatalf("evaluating %s: %v", config, err)
	}
	return sys
}

// realiseReal builds a config that builds offline (minimal and its
// copies) exactly as nexis switch does.
func realiseReal(t *testing.T, tg *activate.Target, config string) storepath.Path {
	t.Helper()
	sys := eval(t, config)
	stdenvtest.Add(t, tg.Store)
	if _, err := realise.Build(context.Background(), tg.Store, []*builtins.Derivation{sys.Drv}, realise.Options{Jobs: 2}); err != nil {
		t.Fatalf("realising %s: %v", config, err)
	}
	p, _, err := storepath.Parse("/store", sys.Drv.Out())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// realiseFull realises examples/full with FAKE package and kernel
// outputs: no network here (see activatetest).
func realiseFull(t *testing.T, tg *activate.Target) storepath.Path {
	t.Helper()
	sys := eval(t, filepath.Join(examples, "full/config.toml"))
	p, _, err := activatetest.RealiseOffline(context.Background(), tg.Store, sys.Drv, t.TempDir())
	if err != nil {
		t.Fatalf("realising examples/full offline: %v", err)
	}
	return p
}

// minimalCopy copies examples/minimal to a temporary directory and
// applies edit to its config.
func minimalCopy(t *testing.T, edit func(string) string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "minimal")
	if out, err := exec.Command("cp", "-a", filepath.Join(examples, "minimal"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	cfg := filepath.Join(dst, "config.toml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func opts() activate.SwitchOptions {
	return activate.SwitchOptions{Options: activate.Options{Hooks: true}, Out: os.Stderr}
}

// check fails the test unless the root is exactly generation p and the
// boot menu lists the kept generations.
func check(t *testing.T, tg *activate.Target, p storepath.Path, step string) {
	t.Helper()
	sys, err := tg.LoadSystem(p)
	if err != nil {
		t.Fatal(err)
	}
	probs, err := tg.Check(sys)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := tg.CheckBoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range append(probs, bp...) {
		t.Errorf("%s: %s", step, pr)
	}
}

func current(t *testing.T, tg *activate.Target) uint64 {
	t.Helper()
	n, ok, err := tg.Current()
	if err != nil || !ok {
		t.Fatalf("no current generation: %v", err)
	}
	return n
}

func TestSwitchMinimalFullRollbackAndByNumber(t *testing.T) {
	tg := newTarget(t)
	minP := realiseReal(t, tg, minimalCopy(t, nil))
	fullP := realiseFull(t, tg)

	res, err := tg.Switch(minP, opts())
	if err != nil {
		t.Fatal(err)
	}
	if !res.New || res.Generation.Number != 1 {
		t.Fatalf("first switch: generation %d new=%v", res.Generation.Number, res.New)
	}
	check(t, tg, minP, "minimal")

	res, err = tg.Switch(fullP, opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation.Number != 2 {
		t.Fatalf("second switch made generation %d", res.Generation.Number)
	}
	check(t, tg, fullP, "full")
	// full declares myuser with a home and a .gitconfig; clamav owns
	// /etc/clamav/clamd.conf, a private copy.
	if _, err := os.Stat(filepath.Join(tg.Root.Dir(), "home/myuser/.gitconfig")); err != nil {
		t.Errorf("full: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(tg.Root.Dir(), "etc/clamav/clamd.conf")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("full: clamd.conf: %v %v", fi, err)
	}

	prev, err := tg.Previous()
	if err != nil || prev != 1 {
		t.Fatalf("previous = %d, %v", prev, err)
	}
	if _, err := tg.SwitchTo(prev, opts()); err != nil {
		t.Fatal(err)
	}
	check(t, tg, minP, "rollback")
	// The users full declared are locked, their homes kept.
	shadow, _ := os.ReadFile(filepath.Join(tg.Root.Dir(), "etc/shadow"))
	if !regexp.MustCompile(`(?m)^myuser:!:[^:]*:[^:]*:[^:]*:[^:]*:[^:]*:1:`).Match(shadow) {
		t.Errorf("rollback: myuser is not locked:\n%s", shadow)
	}
	if _, err := os.Stat(filepath.Join(tg.Root.Dir(), "home/myuser/.gitconfig")); err != nil {
		t.Errorf("rollback: myuser's home was not kept: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(tg.Root.Dir(), "etc/clamav/clamd.conf")); err == nil {
		t.Errorf("rollback: /etc/clamav/clamd.conf of generation 2 is still there")
	}
	uidBefore := uidOf(t, tg, "myuser")

	if _, err := tg.SwitchTo(2, opts()); err != nil {
		t.Fatal(err)
	}
	check(t, tg, fullP, "switch to 2 by number")
	if u := uidOf(t, tg, "myuser"); u != uidBefore {
		t.Errorf("myuser's uid changed from %s to %s", uidBefore, u)
	}
	if _, err := tg.SwitchTo(1, opts()); err != nil {
		t.Fatal(err)
	}
	check(t, tg, minP, "switch to 1 by number")
	if n := current(t, tg); n != 1 {
		t.Errorf("current is %d, want 1", n)
	}
	gens, _ := tg.Generations()
	if len(gens) != 2 {
		t.Errorf("%d generations, want 2 (rollbacks make none)", len(gens))
	}
	verify(t, tg)
}

func uidOf(t *testing.T, tg *activate.Target, user string) string {
	b, _ := os.ReadFile(filepath.Join(tg.Root.Dir(), "etc/passwd"))
	m := regexp.MustCompile(`(?m)^` + user + `:x:(\d+):`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s is not in /etc/passwd", user)
	}
	return string(m[1])
}

// verify ends every destructive test, as restic's tests end with check.
func verify(t *testing.T, tg *activate.Target) {
	t.Helper()
	rep, err := tg.Store.Verify(store.VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Errorf("store verify: %v", rep.Errors)
	}
}

func TestSwitchTwiceChangesNothing(t *testing.T) {
	tg := newTarget(t)
	p := realiseReal(t, tg, minimalCopy(t, nil))
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, tg.Root.Dir())
	res, err := tg.Switch(p, opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.New || res.Generation.Number != 1 {
		t.Errorf("second switch: generation %d new=%v, want 1 and not new", res.Generation.Number, res.New)
	}
	if !res.Plan.Empty() {
		var sb strings.Builder
		res.Plan.Print(&sb)
		t.Errorf("second switch planned changes:\n%s", sb.String())
	}
	if after := snapshot(t, tg.Root.Dir()); after != before {
		t.Errorf("second switch changed the root:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	check(t, tg, p, "twice")
}

// snapshot lists every entry outside the store with its mode, owner,
// size, mtime and link target.
func snapshot(t *testing.T, root string) string {
	var sb strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "store" || strings.HasPrefix(rel, "var/lib/nexis/logs") {
			return filepath.SkipDir
		}
		if rel == "var/lib/nexis/activate.lock" {
			return nil
		}
		l, _ := os.Readlink(p)
		fmt.Fprintf(&sb, "%s %v %d %d %s\n", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano(), l)
		return nil
	})
	return sb.String()
}

func TestUserFileInEtcIsNotClobbered(t *testing.T) {
	tg := newTarget(t)
	p := realiseReal(t, tg, minimalCopy(t, nil))
	mine := filepath.Join(tg.Root.Dir(), "etc/hostname")
	os.MkdirAll(filepath.Dir(mine), 0o755)
	if err := os.WriteFile(mine, []byte("handmade\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := tg.Switch(p, opts())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mine); string(b) != "handmade\n" {
		t.Fatalf("/etc/hostname was overwritten: %q", b)
	}
	if len(res.Plan.Conflicts) != 1 || res.Plan.Conflicts[0].Path != "/etc/hostname" {
		t.Fatalf("conflicts = %+v, want /etc/hostname reported", res.Plan.Conflicts)
	}
	if !strings.Contains(res.Plan.Summary(), "/etc/hostname") {
		t.Errorf("summary does not report the conflict: %s", res.Plan.Summary())
	}
	// Switching again still leaves it; --force takes it over.
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mine); string(b) != "handmade\n" {
		t.Fatalf("/etc/hostname was overwritten by the second switch")
	}
	o := opts()
	o.Force = true
	if _, err := tg.Switch(p, o); err != nil {
		t.Fatal(err)
	}
	check(t, tg, p, "force")
}

func TestRetentionKeepLastThreeOverSixSwitchesOnePinned(t *testing.T) {
	tg := newTarget(t)
	var paths []storepath.Path
	for i := 1; i <= 6; i++ {
		cfg := minimalCopy(t, func(s string) string {
			s = strings.Replace(s, `hostname = "minimal"`, fmt.Sprintf(`hostname = "host%d"`, i), 1)
			return s + "\n[nexis.generations]\nkeep_last = 3\nauto_cleanup = true\n"
		})
		p := realiseReal(t, tg, cfg)
		paths = append(paths, p)
		o := opts()
		o.Cleanup = func(st *store.Store) (string, error) {
			s, err := gc.Run(st, gc.Options{})
			if err != nil {
				return "", err
			}
			return fmt.Sprint(s.Paths), nil
		}
		res, err := tg.Switch(p, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Generation.Number != uint64(i) {
			t.Fatalf("switch %d made generation %d", i, res.Generation.Number)
		}
		if i == 2 {
			if err := tg.SetPinned(2, true); err != nil {
				t.Fatal(err)
			}
		}
		check(t, tg, p, fmt.Sprintf("switch %d", i))
	}
	gens, err := tg.Generations()
	if err != nil {
		t.Fatal(err)
	}
	var nums []uint64
	for _, g := range gens {
		nums = append(nums, g.Number)
	}
	if !slices.Equal(nums, []uint64{2, 4, 5, 6}) {
		t.Fatalf("generations %v, want [2 4 5 6] (last 3 and pinned 2)", nums)
	}
	for i, p := range paths {
		n := i + 1
		kept := slices.Contains(nums, uint64(n))
		// A dropped generation's system is garbage: no root, no
		// referrer. (This process built it, so its temporary root keeps
		// it from the collector until the process exits; the CLI test
		// sees it collected.)
		if ok, err := tg.Store.IsValid(p); err != nil {
			t.Fatal(err)
		} else if ok {
			rc, err := tg.Store.Refcount(p)
			if err != nil {
				t.Fatal(err)
			}
			if (rc > 0) != kept {
				t.Errorf("generation %d's system has refcount %d, kept=%v", n, rc, kept)
			}
		} else if kept {
			t.Errorf("generation %d is kept but its system is gone", n)
		}
		_, err = tg.Root.Lstat(filepath.Join(tg.ProfilesDir(), fmt.Sprintf("system-%d-link", n)))
		if (err == nil) != kept {
			t.Errorf("profile link of generation %d: %v, want present=%v", n, err, kept)
		}
	}
	verify(t, tg)
}

// A recording dinitctl: dinit is not packaged for Debian, so the test
// checks the sequence of dinitctl calls activation makes on a live root
// with a stand-in on PATH that appends its arguments to a log.
func recordingDinitctl(t *testing.T) (string, func() []string) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	prog := filepath.Join(dir, "dinitctl")
	script := "#!/bin/sh\necho \"$*\" >> " + log + "\n"
	if err := os.WriteFile(prog, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return prog, func() []string {
		b, _ := os.ReadFile(log)
		os.Remove(log)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
	}
}

func TestLiveServicesThroughDinitctl(t *testing.T) {
	tg := newTarget(t)
	prog, calls := recordingDinitctl(t)
	minP := realiseReal(t, tg, minimalCopy(t, nil))
	fullP := realiseFull(t, tg)
	o := opts()
	o.Live = true
	o.Dinitctl = prog
	if _, err := tg.Switch(minP, o); err != nil {
		t.Fatal(err)
	}
	if got, want := calls(), []string{"start_firewall", "start_nexis-trash", "reload_boot"}; !slices.Equal(got, want) {
		t.Errorf("first switch: dinitctl %v, want %v", got, want)
	}
	if _, err := tg.Switch(fullP, o); err != nil {
		t.Fatal(err)
	}
	// full adds keymap, locales, logrotate, my-app, network and sshd (the
	// firewall's service file is the same): the new ones start, boot is
	// reloaded.
	want := []string{"start_keymap", "start_locales", "start_logrotate", "start_my-app", "start_network", "start_sshd", "reload_boot"}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("switch to full: dinitctl %v, want %v", got, want)
	}
	if _, err := tg.SwitchTo(1, o); err != nil {
		t.Fatal(err)
	}
	want = []string{"stop_keymap", "unload_keymap", "stop_locales", "unload_locales", "stop_logrotate", "unload_logrotate",
		"stop_my-app", "unload_my-app", "stop_network", "unload_network", "stop_sshd", "unload_sshd", "reload_boot"}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("rollback: dinitctl %v, want %v", got, want)
	}
	// A changed service file: stopped before /etc/static moves, reloaded
	// and started after.
	cfg := minimalCopy(t, func(s string) string {
		return s + "\n[dinit_services.web]\ntype = \"process\"\ncommand = \"/bin/web --port 80\"\n"
	})
	cfg2 := minimalCopy(t, func(s string) string {
		return s + "\n[dinit_services.web]\ntype = \"process\"\ncommand = \"/bin/web --port 8080\"\n"
	})
	if _, err := tg.Switch(realiseReal(t, tg, cfg), o); err != nil {
		t.Fatal(err)
	}
	calls()
	if _, err := tg.Switch(realiseReal(t, tg, cfg2), o); err != nil {
		t.Fatal(err)
	}
	want = []string{"stop_web", "reload_web", "start_web", "reload_boot"}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("changed service: dinitctl %v, want %v", got, want)
	}
	if _, err := tg.SwitchTo(1, o); err != nil {
		t.Fatal(err)
	}
	want = []string{"stop_web", "unload_web", "reload_boot"}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("rollback: dinitctl %v, want %v", got, want)
	}
	if _, err := tg.SwitchTo(1, o); err != nil {
		t.Fatal(err)
	}
	if got := calls(); len(got) != 0 {
		t.Errorf("unchanged switch called dinitctl %v", got)
	}
	check(t, tg, minP, "live")
}

// TestLiveRestartTriggers: a service whose restart_triggers name a file
// is stopped and started again when only that file changes, as a changed
// service file is; the other services are left alone.
func TestLiveRestartTriggers(t *testing.T) {
	tg := newTarget(t)
	prog, calls := recordingDinitctl(t)
	o := opts()
	o.Live = true
	o.Dinitctl = prog
	withConf := func(conf string) string {
		return minimalCopy(t, func(s string) string {
			return s + `
[config_files.web]
path = "/etc/web/web.conf"
content = "` + conf + `"

[dinit_services.web]
type = "process"
command = "/bin/web -c /etc/web/web.conf"
restart_triggers = ["/etc/web/web.conf"]
`
		})
	}
	if _, err := tg.Switch(realiseReal(t, tg, withConf("port 80")), o); err != nil {
		t.Fatal(err)
	}
	calls()
	p := realiseReal(t, tg, withConf("port 8080"))
	if _, err := tg.Switch(p, o); err != nil {
		t.Fatal(err)
	}
	want := []string{"stop_web", "reload_web", "start_web", "reload_boot"}
	if got := calls(); !slices.Equal(got, want) {
		t.Errorf("trigger changed: dinitctl %v, want %v", got, want)
	}
	check(t, tg, p, "after the restart")
}

// Hooks run in order, chrooted into the root, their output shown.
func TestHooksRunInOrderWithOutputShown(t *testing.T) {
	tg := newTarget(t)
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox (a static /bin/sh for the root) is not installed")
	}
	os.MkdirAll(filepath.Join(tg.Root.Dir(), "bin"), 0o755)
	if out, err := exec.Command("cp", busybox, filepath.Join(tg.Root.Dir(), "bin/busybox")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, applet := range []string{"sh", "cat"} {
		os.Symlink("busybox", filepath.Join(tg.Root.Dir(), "bin", applet))
	}
	cfg := minimalCopy(t, func(s string) string {
		return s + "\n[hooks]\npre_switch = [\"echo pre one\", \"echo pre two; echo on stderr >&2\"]\npost_switch = [\"echo post $(cat /etc/hostname)\"]\n"
	})
	p := realiseReal(t, tg, cfg)
	var out strings.Builder
	o := opts()
	o.Out = &out
	if _, err := tg.Switch(p, o); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	order := []string{"pre one", "pre two", "on stderr", "post minimal"}
	last := -1
	for _, w := range order {
		i := strings.Index(got, w)
		if i < 0 || i < last {
			t.Fatalf("hook output out of order or missing %q:\n%s", w, got)
		}
		last = i
	}
	// A failing pre_switch hook stops the switch before anything changes.
	cfg2 := minimalCopy(t, func(s string) string {
		s = strings.Replace(s, `hostname = "minimal"`, `hostname = "other"`, 1)
		return s + "\n[hooks]\npre_switch = [\"echo refusing; exit 3\"]\n"
	})
	p2 := realiseReal(t, tg, cfg2)
	if _, err := tg.Switch(p2, o); err == nil || !strings.Contains(err.Error(), "pre_switch") {
		t.Fatalf("failing pre_switch hook: err = %v", err)
	}
	if n := current(t, tg); n != 1 {
		t.Errorf("current generation %d after a refused switch, want 1", n)
	}
	check(t, tg, p, "after refused switch")
}

// The base accounts activation always creates are the ones stdlib lets
// configs name without declaring them.
func TestBaseAccountsMatchStdlib(t *testing.T) {
	b, err := os.ReadFile("../stdlib/users.star")
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"BASE_USERS", "BASE_GROUPS"} {
		m := regexp.MustCompile(`(?s)` + table + ` = \{(.*?)\}`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s not found in stdlib/users.star", table)
		}
		for _, kv := range regexp.MustCompile(`"([^"]+)": (\d+)`).FindAllSubmatch(m[1], -1) {
			name, id := string(kv[1]), string(kv[2])
			if !activate.HasBaseAccount(table == "BASE_USERS", name, id) {
				t.Errorf("%s %s=%s is not a base account of activate", table, name, id)
			}
		}
	}
}

// A deleted generation's number is never given to another system, even
// the newest one's, and even after the store is closed and opened again.
func TestGenerationNumbersNeverReused(t *testing.T) {
	tg := newTarget(t)
	var paths []storepath.Path
	for i := 1; i <= 3; i++ {
		cfg := minimalCopy(t, func(s string) string {
			return strings.Replace(s, `hostname = "minimal"`, fmt.Sprintf(`hostname = "host%d"`, i), 1)
		})
		p := realiseReal(t, tg, cfg)
		paths = append(paths, p)
		if _, err := tg.Switch(p, opts()); err != nil {
			t.Fatal(err)
		}
	}
	// Back to 1, then 2 and 3 (the newest) go.
	if _, err := tg.SwitchTo(1, opts()); err != nil {
		t.Fatal(err)
	}
	if err := tg.DeleteGenerations([]uint64{2, 3}); err != nil {
		t.Fatal(err)
	}
	dir, logical := tg.Store.Dir(), tg.Store.LogicalDir()
	if err := tg.Store.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{LogicalDir: logical})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tg.Store = st
	res, err := tg.Switch(paths[2], opts())
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation.Number != 4 {
		t.Fatalf("the switch after deleting generations 2 and 3 made generation %d, want 4", res.Generation.Number)
	}
	check(t, tg, paths[2], "after the delete")
}

// A login shell (dash and bash) that sources the generated profile finds
// the system's programs by name through /run/current-system/sw, and a
// program of a package with an env runs with that env (through its
// wrapper) while the session does not get it. The shells run chrooted
// into the activated root (in a private mount namespace, with this
// machine's /usr bound in for the shells), so /store and
// /run/current-system are the root's own.
func TestLoginProfileRunsPackagesWithTheirEnv(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		err = exec.Command(unshare, "-m", "true").Run()
	}
	if err != nil {
		t.Skipf("no private mount namespace here (not root?): %v", err)
	}
	tg := newTarget(t)
	cfg := minimalCopy(t, func(s string) string {
		return s + `
[[packages]]
name = "showenv"
version = "1"
build_system = "custom"
build_script = "showenv.sh"
env = { SHOWENV_RUNTIME = "it's set: $HOME stays literal" }
`
	})
	script := "mkdir -p $out/bin\nprintf '#!/bin/sh\\necho \"runtime=$SHOWENV_RUNTIME\"\\n' > $out/bin/showenv\nchmod 555 $out/bin/showenv\n"
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "showenv.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	p := realiseReal(t, tg, cfg)
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	root := tg.Root.Dir()
	// The host's top directories, bound (or linked, for merged /usr's
	// links) into the root, read-only.
	setup := "set -e\nfor d in bin sbin lib lib32 lib64 usr dev; do\n" +
		"  if [ -L /$d ]; then ln -sfn \"$(readlink /$d)\" \"$R/$d\"\n" +
		"  elif [ -d /$d ]; then mkdir -p \"$R/$d\"; mount --rbind -o ro /$d \"$R/$d\"; fi\n" +
		"done\n"
	for _, sh := range []string{"dash", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Skipf("%s is not installed: run scripts/install-deps", sh)
		}
		login := `. /etc/profile.d/nexis-system.sh; hello; showenv; echo "session=${SHOWENV_RUNTIME-unset}"; echo "man=$MANPATH"; command -v showenv`
		cmd := exec.Command(unshare, "-m", "--propagation", "private", "sh", "-c", setup+`exec chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/alice /bin/`+sh+` -c '`+login+`'`)
		cmd.Env = append(os.Environ(), "R="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sh, err, out)
		}
		want := "Hello from NexisOS\nruntime=it's set: $HOME stays literal\nsession=unset\nman=/run/current-system/sw/share/man:\n/run/current-system/sw/bin/showenv\n"
		if string(out) != want {
			t.Errorf("%s login shell printed\n%s\nwant\n%s", sh, out, want)
		}
	}
}
