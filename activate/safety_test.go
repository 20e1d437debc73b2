package activate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/manifest"
	"github.com/nexisos/nexis/store/storepath"
)

// sentinel is a directory outside the root holding one file: a test
// that plants links to it in the root ends by checking it is exactly as
// it was (nothing written, replaced, chowned or deleted there).
type sentinel struct{ dir string }

func newSentinel(t *testing.T) sentinel {
	t.Helper()
	s := sentinel{dir: t.TempDir()}
	os.Chmod(s.dir, 0o755)
	if err := os.WriteFile(filepath.Join(s.dir, "passwd"), []byte("sentinel\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s sentinel) check(t *testing.T) {
	t.Helper()
	var got []string
	filepath.Walk(s.dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != s.dir {
			st := fi.Sys().(*syscall.Stat_t)
			got = append(got, strings.TrimPrefix(p, s.dir)+" "+fi.Mode().String()+" "+string(rune('0'+st.Uid)))
		}
		return nil
	})
	if want := []string{"/passwd -rw-r--r-- 0"}; !slices.Equal(got, want) {
		t.Errorf("outside the root, %s now holds %q, want %q", s.dir, got, want)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dir, "passwd")); string(b) != "sentinel\n" {
		t.Errorf("the file outside the root now holds %q", b)
	}
	if fi, _ := os.Stat(s.dir); fi.Mode().Perm() != 0o755 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the directory outside the root is now %v uid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
}

// withService is minimal with a service (a file in /etc/dinit.d), a
// config file and a home file: every kind of writer has work to do.
func withService(s string) string {
	return s + `
[config_files.web]
path = "/etc/web/web.conf"
content = "port 80"

[dinit_services.web]
type = "process"
command = "/bin/web -c /etc/web/web.conf"

[users.alice.files.".profile"]
content = "PS1='$ '\n"
`
}

// Class 2: with ROOT/etc, ROOT/etc/dinit.d, ROOT/home or
// ROOT/var/lib/nexis a link to a directory outside the root, nothing is
// written outside: the absolute link means that path inside the root.
// While it is missing there, the switch fails naming it; once it exists
// inside the root, the switch writes there and the root checks clean.
func TestPlantedLinksStayInsideTheRoot(t *testing.T) {
	for _, link := range []string{"etc", "etc/dinit.d", "home", "var/lib/nexis"} {
		t.Run(strings.ReplaceAll(link, "/", "-"), func(t *testing.T) {
			tg := newTarget(t)
			out := newSentinel(t)
			root := tg.Root.Dir()
			p := realiseReal(t, tg, minimalCopy(t, withService))
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(out.dir, filepath.Join(root, link)); err != nil {
				t.Fatal(err)
			}
			_, err := tg.Switch(p, opts())
			out.check(t)
			if err != nil && !strings.Contains(err.Error(), filepath.Join(root, link)) {
				t.Errorf("the failed switch does not name the path inside the root: %v", err)
			}
			inside := filepath.Join(root, out.dir)
			if err := os.MkdirAll(inside, 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.Switch(p, opts()); err != nil {
				t.Fatalf("with %s inside the root: %v", out.dir, err)
			}
			out.check(t)
			if ents, _ := os.ReadDir(inside); len(ents) == 0 {
				t.Errorf("nothing was written to %s, where ROOT/%s leads inside the root", inside, link)
			}
			check(t, tg, p, "through the link")
		})
	}
}

// adopt gives a fresh target on tg's root the manifest of p changed by
// edit: a hand-made manifest, as a store path holding one would give.
func adopt(t *testing.T, tg *activate.Target, p storepath.Path, edit func(m *manifest.Manifest)) *activate.Target {
	t.Helper()
	sys, err := tg.LoadSystem(p)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sys.Manifest.Encode(&b)
	m, err := manifest.Decode(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	nt := &activate.Target{Root: tg.Root, Store: tg.Store, StateDir: tg.StateDir, Version: "test"}
	nt.AdoptManifest(p, m)
	return nt
}

// Class 3 and 4 at activation, as defence in depth: a manifest that
// claims what nexis or the system owns, or carries fields the account
// files cannot hold, is refused before anything changes.
func TestActivationRefusesClaimsAndBadFields(t *testing.T) {
	tg := newTarget(t)
	p := realiseReal(t, tg, minimalCopy(t, withService))
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	sys, _ := tg.LoadSystem(p)
	src := sys.Manifest.Etc[0].Source
	file := func(path string) func(m *manifest.Manifest) {
		return func(m *manifest.Manifest) {
			m.Files = append(m.Files, manifest.File{Path: path, Type: manifest.TypeFile, Source: src, Owner: "root", Group: "root", Mode: "0644", Force: true, Origin: "config_files.evil"})
		}
	}
	user := func(f func(u *manifest.User)) func(m *manifest.Manifest) {
		return func(m *manifest.Manifest) { f(&m.Users[0]) }
	}
	for _, c := range []struct {
		name, want string
		edit       func(m *manifest.Manifest)
	}{
		{"etc shadow", `etc entry "shadow" (config_files.evil): /etc/shadow is the account database`, func(m *manifest.Manifest) {
			m.Etc = append(m.Etc, manifest.EtcEntry{Path: "shadow", Source: src, Origin: "config_files.evil"})
		}},
		{"etc static", `/etc/static/hostname is inside /etc/static`, func(m *manifest.Manifest) {
			m.Etc = append(m.Etc, manifest.EtcEntry{Path: "static/hostname", Source: src, Origin: "config_files.evil"})
		}},
		{"file passwd", `file "/etc/passwd" (config_files.evil)`, file("/etc/passwd")},
		{"state dir", `/var/lib/nexis/ids.json is inside /var/lib/nexis, nexis's state directory`, file("/var/lib/nexis/ids.json")},
		{"store", `is inside /store, the store`, file("/store/x")},
		{"proc", `/proc/sys/kernel/x is under /proc`, file("/proc/sys/kernel/x")},
		{"home etc", `user "alice": home: /etc is not a place for a home`, user(func(u *manifest.User) { u.Home = "/etc" })},
		{"home of another in /root", `/root is root's home`, user(func(u *manifest.User) { u.Home = "/root" })},
		{"shell colon", `shell: "/bin/sh:0:0" contains ':'`, user(func(u *manifest.User) { u.Shell = "/bin/sh:0:0" })},
		{"home newline", `contains a control character`, user(func(u *manifest.User) { u.Home = "/home/alice\nroot::0:0::/:/bin/sh" })},
		{"description newline", `description:`, user(func(u *manifest.User) { u.Description = "x\nroot::0:0::/:/bin/sh" })},
		{"log path tab", `log_rotation: "/var/log/a\t/etc/shadow"`, func(m *manifest.Manifest) { m.LogRotation = []string{"/var/log/a\t/etc/shadow"} }},
		{"env value newline", `environment A: a value is one line`, func(m *manifest.Manifest) { m.Environment = map[string]string{"A": "x\nrm -rf /"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t, tg.Root.Dir())
			_, err := adopt(t, tg, p, c.edit).Switch(p, opts())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one saying %q", err, c.want)
			}
			if after := snapshot(t, tg.Root.Dir()); after != before {
				t.Errorf("a refused activation changed the root:\n%s\nwant\n%s", after, before)
			}
		})
	}
	check(t, tg, p, "after the refusals")
}

// The target's own state directory is nexis's too, wherever it is.
func TestActivationRefusesTheTargetsStateDir(t *testing.T) {
	tg := newTarget(t)
	tg.StateDir = "/srv/nexis-state"
	p := realiseReal(t, tg, minimalCopy(t, nil))
	sys, _ := tg.LoadSystem(p)
	src := sys.Manifest.Etc[0].Source
	nt := adopt(t, tg, p, func(m *manifest.Manifest) {
		m.Files = append(m.Files, manifest.File{Path: "/srv/nexis-state/activation.json", Type: manifest.TypeFile, Source: src, Owner: "root", Group: "root", Mode: "0644", Origin: "config_files.evil"})
	})
	if _, err := nt.Switch(p, opts()); err == nil || !strings.Contains(err.Error(), "inside /srv/nexis-state") {
		t.Fatalf("err = %v, want a refusal naming the state directory", err)
	}
}

// Class 9: a link a user made in their home (~/.config -> somewhere)
// keeps that user's files below it out, with a warning naming the user
// and the link; the rest of the activation, other users' files
// included, finishes, and later switches keep working. Once the link is
// gone the file is placed.
func TestHomeLinkSkipsThatUsersFiles(t *testing.T) {
	tg := newTarget(t)
	out := newSentinel(t)
	cfg := minimalCopy(t, func(s string) string {
		return s + `
[users.alice.files.".config/app/conf"]
content = "x"

[users.bob]
shell = "/bin/sh"

[users.bob.files.".config/app/conf"]
content = "bob's"
`
	})
	p := realiseReal(t, tg, cfg)
	root := tg.Root.Dir()
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	// Then alice replaces her ~/.config with a link to /etc.
	home := filepath.Join(root, "home/alice")
	os.RemoveAll(filepath.Join(home, ".config"))
	victim := filepath.Join(root, "etc")
	for _, l := range []struct{ link, to string }{{".config", "/etc"}, {".cache", out.dir}} {
		if err := os.Symlink(l.to, filepath.Join(home, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		res, err := tg.Switch(p, opts())
		if err != nil {
			t.Fatalf("switch %d: %v, want it to finish with a warning", i, err)
		}
		var w strings.Builder
		res.Plan.ReportConflicts(&w)
		if !strings.Contains(w.String(), "/home/alice/.config/app/conf is not placed: /home/alice/.config is a symbolic link in alice's home") {
			t.Errorf("switch %d: warnings %q do not name alice's link", i, w.String())
		}
		if _, err := os.Lstat(filepath.Join(victim, "app")); err == nil {
			t.Fatal("the write followed ~/.config into /etc")
		}
		if b, err := os.ReadFile(filepath.Join(root, "home/bob/.config/app/conf")); err != nil || string(b) != "bob's" {
			t.Errorf("switch %d: bob's file: %q, %v", i, b, err)
		}
		if b, _ := os.ReadFile(filepath.Join(root, "etc/passwd")); !strings.Contains(string(b), "\nbob:") {
			t.Errorf("switch %d: bob is not in /etc/passwd", i)
		}
	}
	out.check(t)
	os.Remove(filepath.Join(home, ".config"))
	if _, err := tg.Switch(p, opts()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(home, ".config/app/conf"))
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid == 0 {
		t.Fatalf("alice's file once the link is gone: %v", err)
	}
	check(t, tg, p, "link removed")
}

// Class 9: a hook on a root whose /bin/sh cannot start there says what
// is missing and where, instead of "fork/exec /bin/sh".
func TestHookShellMissingInsideTheRoot(t *testing.T) {
	dash, err := exec.LookPath("dash")
	if err != nil {
		t.Skip("dash (a dynamically linked shell) is not installed")
	}
	cfg := minimalCopy(t, func(s string) string {
		return s + "\n[hooks]\npre_switch = [\"echo pre\"]\n"
	})
	for _, c := range []struct {
		name, want string
		plant      func(t *testing.T, root string)
	}{
		{"dangling absolute link", "/bin/sh in the root %s is a link to /usr/bin/dash, which does not exist inside the root", func(t *testing.T, root string) {
			// It exists on this machine: only inside the root is it missing.
			os.Symlink("/usr/bin/dash", filepath.Join(root, "bin/sh"))
		}},
		{"missing loader", "needs the dynamic loader", func(t *testing.T, root string) {
			if out, err := exec.Command("cp", dash, filepath.Join(root, "bin/sh")).CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := newTarget(t)
			p := realiseReal(t, tg, cfg)
			os.MkdirAll(filepath.Join(tg.Root.Dir(), "bin"), 0o755)
			c.plant(t, tg.Root.Dir())
			var out strings.Builder
			o := opts()
			o.Out = &out
			if _, err := tg.Switch(p, o); err != nil {
				t.Fatal(err)
			}
			want := c.want
			if strings.Contains(want, "%s") {
				want = strings.ReplaceAll(want, "%s", tg.Root.Dir())
			}
			if !strings.Contains(out.String(), "pre_switch: hook-pre-switch-0 skipped: ") || !strings.Contains(out.String(), want) {
				t.Errorf("hook output %q does not say %q", out.String(), want)
			}
		})
	}
}

// Class 4: the account files read back with the real tools as written:
// pwck and grpck (read-only, on the root's files) find no malformed or
// duplicated entry after switches that add, change and drop accounts
// with every character a field may hold.
func TestAccountFilesPassPwckAndGrpck(t *testing.T) {
	pwck, err := exec.LookPath("pwck")
	if err != nil {
		t.Skip("pwck (Debian package passwd) is not installed")
	}
	grpck, _ := exec.LookPath("grpck")
	tg := newTarget(t)
	first := realiseReal(t, tg, minimalCopy(t, func(s string) string {
		return s + `
[users.bob]
shell = "/bin/sh"
description = "Bob Dupont, Room 42, +33 1 23, café"

[users.svc]
system = true
home = "/var/lib/svc"
create_home = true

[groups.team]
members = ["alice", "bob"]
`
	}))
	second := realiseReal(t, tg, minimalCopy(t, func(s string) string {
		return s + "\n[users.carol]\nshell = \"/bin/sh\"\ngroups = [\"wheel\", \"audio\"]\n"
	}))
	for i, p := range []storepath.Path{first, second, first, first} {
		if _, err := tg.Switch(p, opts()); err != nil {
			t.Fatalf("switch %d: %v", i, err)
		}
		root := tg.Root.Dir()
		for _, c := range [][]string{{pwck, "-r", "-q", "-R", root}, {grpck, "-r", "-R", root}} {
			if c[0] == "" {
				continue
			}
			out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				// Homes and shells of a scratch root do not exist: the
				// only complaints allowed.
				if l == "" || strings.HasSuffix(l, "does not exist") || strings.HasSuffix(l, "no changes") {
					continue
				}
				t.Errorf("switch %d: %s: %s", i, filepath.Base(c[0]), l)
			}
		}
		b, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
		for _, name := range []string{"alice", "bob", "root"} {
			if n := strings.Count("\n"+string(b), "\n"+name+":"); n != 1 {
				t.Errorf("switch %d: %s has %d passwd lines", i, name, n)
			}
		}
	}
}
