package activate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nexisos/nexis/activate"
)

// nexis boot records the generation and makes it the boot default; the
// running root is left alone. nexis test activates without either.
func TestBootAndTestModes(t *testing.T) {
	tg := newTarget(t)
	minP := realiseReal(t, tg, minimalCopy(t, nil))
	fullP := realiseFull(t, tg)
	if _, err := tg.Switch(minP, opts()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, tg.Root.Dir())

	o := opts()
	o.Mode = activate.ModeBoot
	res, err := tg.Switch(fullP, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Generation.Number != 2 || current(t, tg) != 2 {
		t.Fatalf("boot: generation %d, current %d; want 2, 2", res.Generation.Number, current(t, tg))
	}
	b, err := os.ReadFile(filepath.Join(tg.Root.Dir(), "boot/grub/grub.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if gens, def := activate.ParseMenu(string(b)); def != "nexis-2" || len(gens) != 1 || gens[0] != 2 {
		t.Errorf("boot: menu lists %v with default %q, want [2] and nexis-2", gens, def)
	}
	// The root is still generation 1 (the menu, kernels and profile are
	// all that changed).
	st, _ := tg.LoadState()
	if st.System != tg.Store.Logical(minP) {
		t.Errorf("boot activated %s", st.System)
	}
	for _, l := range strings.Split(before, "\n") {
		if strings.HasPrefix(l, "etc/") && !strings.Contains(snapshot(t, tg.Root.Dir()), l) {
			t.Errorf("boot changed the root: %s", l)
		}
	}
	menuBefore := string(b)

	// nexis test of generation 1's system: activated, no generation, the
	// boot default stays 2.
	o.Mode = activate.ModeTest
	res, err = tg.Switch(minP, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.New || current(t, tg) != 2 {
		t.Errorf("test: new=%v current=%d, want no generation and 2 current", res.New, current(t, tg))
	}
	res, err = tg.Switch(fullP, o)
	if err != nil {
		t.Fatal(err)
	}
	sys, _ := tg.LoadSystem(fullP)
	if probs, _ := tg.Check(sys); len(probs) != 0 {
		t.Errorf("test: the root is not full: %v", probs)
	}
	if b, _ := os.ReadFile(filepath.Join(tg.Root.Dir(), "boot/grub/grub.cfg")); string(b) != menuBefore {
		t.Errorf("test changed the boot menu")
	}
	if gens, _ := tg.Generations(); len(gens) != 2 {
		t.Errorf("test made a generation: %d", len(gens))
	}
	// An unrecorded system under test is held by the live root.
	cfg := minimalCopy(t, func(s string) string { return strings.Replace(s, `hostname = "minimal"`, `hostname = "tested"`, 1) })
	p3 := realiseReal(t, tg, cfg)
	if _, err := tg.Switch(p3, o); err != nil {
		t.Fatal(err)
	}
	if r, ok, _ := tg.Store.Root(activate.LiveRoot); !ok || r != p3 {
		t.Errorf("live root = %v %v, want %s", r, ok, tg.Store.Logical(p3))
	}
	if _, err := tg.SwitchTo(2, opts()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := tg.Store.Root(activate.LiveRoot); ok {
		t.Errorf("the live root outlived the test once a generation was switched to")
	}
	check(t, tg, fullP, "back to 2")
}

// The kernels must fit in /boot before any is copied: a /boot too small
// fails the menu and leaves the old one.
func TestBootSpaceIsCheckedBeforeCopying(t *testing.T) {
	tg := newTarget(t)
	boot := filepath.Join(tg.Root.Dir(), "boot")
	os.MkdirAll(boot, 0o755)
	if err := syscall.Mount("tmpfs", boot, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a small tmpfs on /boot: %v", err)
	}
	defer syscall.Unmount(boot, syscall.MNT_DETACH)
	fullP := realiseFull(t, tg)
	_, err := tg.Switch(fullP, opts())
	if err == nil || !strings.Contains(err.Error(), "/boot has") {
		t.Fatalf("switch with a full /boot: err = %v, want the space check", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(boot, "nexis")); len(ents) != 0 {
		t.Errorf("kernels were copied before the check: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(tg.Root.Dir(), "etc/static")); err == nil {
		t.Errorf("the root was activated although the kernels do not fit in /boot")
	}
}

// The menu passes grub-script-check (it is run before every rename).
func TestBootMenuPassesGrubScriptCheck(t *testing.T) {
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Skip("grub-script-check is not installed (Debian: grub-common)")
	}
	tg := newTarget(t)
	fullP := realiseFull(t, tg)
	if _, err := tg.Switch(fullP, opts()); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tg.Root.Dir(), "boot/grub/grub.cfg")
	if out, err := exec.Command(bin, cfg).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(cfg)
	for _, want := range []string{"nexis.generation=1", "linux '/boot/nexis/", "initrd '/boot/nexis/", "set default='nexis-1'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("grub.cfg lacks %q:\n%s", want, b)
		}
	}
	// Titles, paths and parameters with quotes and every other printable
	// ASCII character parse: a switch skips grub-script-check for such
	// menus, so this is the proof that they need none.
	var ascii strings.Builder
	for c := byte(0x20); c <= 0x7e; c++ {
		ascii.WriteByte(c)
	}
	all := ascii.String()
	rep := &activate.BootReport{Default: 1, Entries: []activate.BootEntry{
		{Generation: 1, Kernel: "/k", Title: `it's "quoted" $x`, Params: []string{"a='b c'"}},
		{Generation: 2, Kernel: "/k " + all, Initrd: "/i" + all, Title: all, Params: []string{all, "'", `\`, "}", "$(x)"}},
	}}
	f := filepath.Join(t.TempDir(), "grub.cfg")
	os.WriteFile(f, []byte(activate.MenuText(rep)), 0o644)
	if out, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check of quoted entries: %v\n%s", err, out)
	}
	gens, def := activate.ParseMenu(activate.MenuText(rep))
	if len(gens) != 2 || def != "nexis-1" {
		t.Errorf("ParseMenu of quoted entries: %v %q", gens, def)
	}
}

// A user dropped and declared again gets its old uid back, even when
// another user came in between.
func TestIDsStayStable(t *testing.T) {
	tg := newTarget(t)
	alice := realiseReal(t, tg, minimalCopy(t, nil))
	bob := realiseReal(t, tg, minimalCopy(t, func(s string) string {
		return strings.Replace(s, "[users.alice]", "[users.bob]", 1)
	}))
	both := realiseReal(t, tg, minimalCopy(t, func(s string) string {
		return s + "\n[users.bob]\nshell = \"/bin/sh\"\n"
	}))
	if _, err := tg.Switch(alice, opts()); err != nil {
		t.Fatal(err)
	}
	a1 := uidOf(t, tg, "alice")
	if _, err := tg.Switch(bob, opts()); err != nil {
		t.Fatal(err)
	}
	b1 := uidOf(t, tg, "bob")
	if b1 == a1 {
		t.Fatalf("bob got alice's uid %s while alice is locked", a1)
	}
	if _, err := tg.Switch(both, opts()); err != nil {
		t.Fatal(err)
	}
	if a, b := uidOf(t, tg, "alice"), uidOf(t, tg, "bob"); a != a1 || b != b1 {
		t.Errorf("uids alice %s bob %s, want %s and %s", a, b, a1, b1)
	}
	check(t, tg, both, "both")
}

// The secrets walk finds a password hash in a file others may read.
func TestSecretsWalkFindsALeak(t *testing.T) {
	tg := newTarget(t)
	p := realiseReal(t, tg, minimalCopy(t, nil))
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	sys, _ := tg.LoadSystem(p)
	if probs, _ := tg.Check(sys); len(probs) != 0 {
		t.Fatalf("clean root: %v", probs)
	}
	shadow, _ := os.ReadFile(filepath.Join(tg.Root.Dir(), "etc/shadow"))
	os.WriteFile(filepath.Join(tg.Root.Dir(), "etc/leak"), shadow, 0o644)
	probs, _ := tg.Check(sys)
	if len(probs) != 1 || !strings.Contains(probs[0], "/etc/leak is readable by others and holds a secret") {
		t.Errorf("the walk missed a world-readable copy of /etc/shadow: %v", probs)
	}
}
