package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// init turns this process into the sandbox init when it was started as
// one. It runs before main (and before a test binary's TestMain), so
// every program that links the sandbox can start sandboxes.
func init() {
	if len(os.Args) > 0 && os.Args[0] == InitArg0 {
		os.Exit(initMain())
	}
}

// Main is the whole of the standalone init program (nexis-sandbox-init):
// the same init, in a small static binary that starts in a fraction of
// the time nexis itself takes to load.
func Main() {
	os.Exit(initMain())
}

// initMain runs in the new namespaces as root: read the spec, make the
// root, then become the builder, as the build user.
func initMain() int {
	status := os.NewFile(4, "status")
	fail := func(err error) int {
		if status != nil {
			fmt.Fprintf(status, "%v", err)
			status.Close()
		}
		return setupFailed
	}
	specFile := os.NewFile(3, "spec")
	if specFile == nil || status == nil {
		fmt.Fprintln(os.Stderr, "nexis-sandbox-init: started without a spec; this program is run by nexis, not by hand")
		return setupFailed
	}
	var spec Spec
	err := json.NewDecoder(specFile).Decode(&spec)
	specFile.Close()
	if err != nil {
		return fail(fmt.Errorf("reading spec: %w", err))
	}
	unix.CloseOnExec(4)
	if err := setup(&spec); err != nil {
		return fail(err)
	}
	// The builder replaces the init as PID 1 of the namespace, as Nix's
	// builders are: one process fewer to start, run and reap per build.
	// Orphans it leaves unreaped die with the namespace; killing PID 1
	// from outside (timeouts, cancellation) kills everything in it.
	builder := lookPath(spec.Args[0], spec.Env)
	// The parent-death signal belongs to a thread, and exec keeps only
	// the calling thread: set it and exec from the same one.
	runtime.LockOSThread()
	if spec.Dir != "" {
		if err := os.Chdir(spec.Dir); err != nil {
			return fail(fmt.Errorf("entering %s: %w", spec.Dir, err))
		}
	}
	if err := dropPrivileges(spec.UID, spec.GID); err != nil {
		return fail(err)
	}
	err = syscall.Exec(builder, spec.Args, spec.Env)
	return fail(fmt.Errorf("starting builder %s: %w", spec.Args[0], err))
}

// dropPrivileges makes this process the build user for good. Changing
// credentials clears the parent-death signal, so it is set again: the
// builder must still die with nexis.
func dropPrivileges(uid, gid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("dropping groups: %w", err)
	}
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return fmt.Errorf("becoming group %d: %w", gid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("becoming user %d: %w", uid, err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the parent-death signal: %w", err)
	}
	return nil
}

// setup builds the sandbox root on a tmpfs and pivots into it.
func setup(spec *Spec) error {
	// Nothing we mount may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	root := spec.RootDir
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID, "mode=0755,size=64m"); err != nil {
		return fmt.Errorf("mounting the sandbox root: %w", err)
	}
	for _, p := range spec.HostPaths {
		if err := hostPath(root, p); err != nil {
			return err
		}
	}
	for _, b := range spec.Binds {
		if err := bind(root, b.Source, b.Target, b.Writable); err != nil {
			return err
		}
	}
	if err := makeDev(root); err != nil {
		return err
	}
	if err := mkdirMount(root, "/proc", "proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mkdirMount(root, "/tmp", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	if err := makeEtc(root, spec); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return fmt.Errorf("setting the hostname: %w", err)
	}
	if err := unix.Setdomainname([]byte("(none)")); err != nil {
		return fmt.Errorf("setting the domain name: %w", err)
	}
	if !spec.Network {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	old := filepath.Join(root, ".old-root")
	if err := os.Mkdir(old, 0o700); err != nil {
		return fmt.Errorf("pivot: %w", err)
	}
	if err := unix.PivotRoot(root, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount("/.old-root", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the host root: %w", err)
	}
	if err := os.Remove("/.old-root"); err != nil {
		return err
	}
	// The root itself is read-only; only the binds marked writable and
	// /tmp are not.
	if err := unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID, ""); err != nil {
		return fmt.Errorf("making the sandbox root read-only: %w", err)
	}
	// Inherited by the builder: setuid programs cannot give it root back.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	return nil
}

func mkdirMount(root, target, source, fstype string, flags uintptr, data string) error {
	p := filepath.Join(root, target)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(source, p, fstype, flags, data); err != nil {
		return fmt.Errorf("mounting %s at %s: %w", fstype, target, err)
	}
	return nil
}

// hostPath makes host path p visible at the same place, read-only; a host
// symlink (/bin -> usr/bin on merged-/usr systems) is recreated as is.
func hostPath(root, p string) error {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sandbox path %s: %w", p, err)
	}
	dst := filepath.Join(root, p)
	if st.Mode()&fs.ModeSymlink != 0 {
		t, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.Symlink(t, dst)
	}
	return bind(root, p, p, false)
}

// bind mounts source at target inside root, read-only unless writable.
func bind(root, source, target string, writable bool) error {
	st, err := os.Stat(source)
	if err != nil {
		return fmt.Errorf("bind %s: %w", source, err)
	}
	dst := filepath.Join(root, target)
	if st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o444)
		if err != nil {
			return err
		}
		f.Close()
	}
	if err := unix.Mount(source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s at %s: %w", source, target, err)
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remounting %s: %w", target, err)
	}
	return nil
}

// makeDev gives the sandbox the few devices builds use.
func makeDev(root string) error {
	if err := mkdirMount(root, "/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return err
	}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if _, err := os.Stat("/dev/" + n); err != nil {
			continue
		}
		if err := bind(root, "/dev/"+n, "/dev/"+n, true); err != nil {
			return err
		}
	}
	if err := mkdirMount(root, "/dev/shm", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777,size=64m"); err != nil {
		return err
	}
	// A private devpts instance: test suites that need a terminal get
	// one, and see no other session's.
	if err := mkdirMount(root, "/dev/pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := os.Symlink("pts/ptmx", filepath.Join(root, "dev", "ptmx")); err != nil {
		return err
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(root, "dev", name)); err != nil {
			return err
		}
	}
	return nil
}

// makeEtc writes the user database and hosts file builds expect, and for
// fixed-output builds with network, the host's resolver configuration.
func makeEtc(root string, spec *Spec) error {
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"passwd": fmt.Sprintf("root:x:0:0:root:/build:/noshell\nnexisbld:x:%d:%d:NexisOS build user:/build:/noshell\nnobody:x:65534:65534:nobody:/:/noshell\n", spec.UID, spec.GID),
		"group":  fmt.Sprintf("root:x:0:\nnexisbld:x:%d:\nnogroup:x:65534:\n", spec.GID),
		"hosts":  "127.0.0.1 localhost\n::1 localhost\n",
	}
	if spec.Network {
		for _, n := range []string{"resolv.conf", "nsswitch.conf", "services"} {
			if b, err := os.ReadFile("/etc/" + n); err == nil {
				files[n] = string(b)
			}
		}
	}
	for n, content := range files {
		if err := os.WriteFile(filepath.Join(etc, n), []byte(content), 0o644); err != nil {
			return err
		}
	}
	if spec.Network {
		if st, err := os.Stat("/etc/ssl"); err == nil && st.IsDir() {
			if err := bind(root, "/etc/ssl", "/etc/ssl", false); err != nil {
				return err
			}
		}
	}
	return nil
}

// loopbackUp brings up lo in the new network namespace (it starts down).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	return nil
}

// HostName is the hostname builds see; kept constant so that nothing of
// the machine leaks into outputs.
const HostName = "localhost"
