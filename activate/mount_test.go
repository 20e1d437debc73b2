package activate_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// inPrivateMountNamespace runs the calling test again in a process of
// its own under unshare -m with private propagation, and reports
// whether this is that process: every mount the test makes is the
// namespace's and goes with it, and the host's mounts are never
// touched. In the parent it waits for the child and passes on its
// result.
func inPrivateMountNamespace(t *testing.T) bool {
	t.Helper()
	if os.Getenv("NEXIS_TEST_MOUNT_NS") == t.Name() {
		return true
	}
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		err = exec.Command(unshare, "-m", "true").Run()
	}
	if err != nil {
		t.Skipf("no private mount namespace here (not root?): %v", err)
	}
	cmd := exec.Command(unshare, "-m", "--propagation", "private", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "NEXIS_TEST_MOUNT_NS="+t.Name())
	out, err := cmd.CombinedOutput()
	switch {
	case bytes.Contains(out, []byte("--- SKIP: "+t.Name())):
		t.Skipf("in the private mount namespace:\n%s", out)
	case err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name())):
		t.Fatalf("in the private mount namespace: %v\n%s", err, out)
	}
	return false
}

// mountsUnder maps each mount point under root (as the target names
// it) to its file system type, from this namespace's mountinfo.
func mountsUnder(t *testing.T, root string) map[string][]string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID parent dev root MOUNTPOINT opts... - TYPE SOURCE superopts
		l := sc.Text()
		fields := strings.Fields(l)
		_, after, _ := strings.Cut(l, " - ")
		if rel, ok := strings.CutPrefix(fields[4], root+"/"); ok {
			got["/"+rel] = append(got["/"+rel], strings.Fields(after)[0])
		}
	}
	return got
}

// An activation of the running system mounts the declared file systems
// that are not mounted yet: a real ext4 image (loop-mounted by mount(8))
// on an empty directory, a tmpfs on a mount point it makes, and not a
// tmpfs over a directory that holds something; switching again mounts
// nothing twice. On a target that is not the running system (--root) it
// mounts nothing and says so once. The test runs in a private mount
// namespace (inPrivateMountNamespace): the target's root stands in for
// /, and nothing of the host's mounts changes.
func TestActivationMountsDeclaredFilesystems(t *testing.T) {
	if !inPrivateMountNamespace(t) {
		return
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 is not installed (e2fsprogs): run scripts/install-deps")
	}
	img := filepath.Join(t.TempDir(), "srv.ext4")
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img, "8M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	cfg := minimalCopy(t, func(s string) string {
		return s + `
[[filesystems]]
device = "` + img + `"
type = "ext4"
mountpoint = "/srv"
options = ["defaults", "noatime"]

[[filesystems]]
device = "tmpfs"
type = "tmpfs"
mountpoint = "/mnt/scratch"
options = ["mode=1777", "size=4m"]

[[filesystems]]
device = "tmpfs"
type = "tmpfs"
mountpoint = "/data"
`
	})

	tg := newTarget(t)
	root := tg.Root.Dir()
	// The mounts go before the temporary directories are removed.
	t.Cleanup(func() {
		for mp := range mountsUnder(t, root) {
			exec.Command("umount", "-l", root+mp).Run()
		}
	})
	for _, d := range []string{"srv", "data"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "data", "keep"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := realiseReal(t, tg, cfg)
	var out bytes.Buffer
	o := opts()
	o.Out, o.Mount = &out, true
	res, err := tg.Switch(p, o)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Plan.Mounts) != 3 {
		t.Errorf("the plan mounts %v, want the three declared file systems", res.Plan.Mounts)
	}
	got := mountsUnder(t, root)
	if strings.Join(got["/srv"], " ") != "ext4" || strings.Join(got["/mnt/scratch"], " ") != "tmpfs" || got["/data"] != nil {
		t.Errorf("mounted under the root: %v, want /srv ext4 and /mnt/scratch tmpfs only", got)
	}
	for _, want := range []string{
		"nexis: mounted " + img + " on /srv (ext4)\n",
		"nexis: mounted tmpfs on /mnt/scratch (tmpfs)\n",
		"nexis: tmpfs not mounted on /data: it is not empty (1 entries the mount would hide)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("activation said\n%s\nwant a line %q", out.String(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "data", "keep")); err != nil || string(b) != "mine\n" {
		t.Errorf("/data/keep: %q, %v: want it untouched", b, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "mnt/scratch")); err != nil || fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Errorf("/mnt/scratch: %v, %v: want the tmpfs's mode=1777", fi, err)
	}

	// Again: what is mounted stays mounted once, /data is refused again.
	out.Reset()
	res, err = tg.Switch(p, o)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Plan.Mounts) != 1 || res.Plan.Mounts[0].Mountpoint != "/data" {
		t.Errorf("the second plan mounts %v, want /data only (the others are mounted)", res.Plan.Mounts)
	}
	if again := mountsUnder(t, root); len(again["/srv"]) != 1 || len(again["/mnt/scratch"]) != 1 || again["/data"] != nil {
		t.Errorf("after switching again: %v, want each mounted once, /data not", again)
	}
	if strings.Contains(out.String(), "nexis: mounted") {
		t.Errorf("switching again mounted something:\n%s", out.String())
	}

	// A target that is not the running system: nothing is mounted, and
	// the activation says so once.
	scratch := newTarget(t)
	out.Reset()
	o.Mount = false
	if _, err := scratch.Switch(realiseReal(t, scratch, cfg), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "are not mounted on "+scratch.Root.Dir()+", which is not the running system"); n != 1 {
		t.Errorf("the activation of a --root target said %d times that it mounts nothing, want once:\n%s", n, out.String())
	}
	if got := mountsUnder(t, scratch.Root.Dir()); len(got) != 0 {
		t.Errorf("mounted under a --root target: %v", got)
	}
	if _, err := os.Stat(filepath.Join(scratch.Root.Dir(), "mnt/scratch")); err == nil {
		t.Error("/mnt/scratch was made on a --root target")
	}
}
