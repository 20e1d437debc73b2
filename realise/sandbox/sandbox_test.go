package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func testSpec(t *testing.T, script string) (*Spec, string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	build := filepath.Join(dir, "build")
	out := filepath.Join(dir, "out")
	input := filepath.Join(dir, "input")
	for _, d := range []string{root, build, out, input} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chown(build, 30001, 30001)
	os.Chown(out, 30001, 30001)
	os.WriteFile(filepath.Join(input, "data"), []byte("input data\n"), 0o644)
	return &Spec{
		RootDir:   root,
		Args:      []string{"/bin/sh", "-e", "-c", script},
		Env:       []string{"PATH=/usr/bin:/bin", "out=/store/aa/bb/out", "HOME=/homeless-shelter"},
		Dir:       "/build",
		Binds:     []Bind{{Source: input, Target: "/store/cc/dd/input"}, {Source: out, Target: "/store/aa/bb/out", Writable: true}, {Source: build, Target: "/build", Writable: true}},
		HostPaths: []string{"/bin", "/usr", "/lib", "/lib64"},
		UID:       30001, GID: 30001, Hostname: HostName,
	}, out
}

func TestSandboxBasics(t *testing.T) {
	spec, out := testSpec(t, `
cat /store/cc/dd/input/data > $out/copy
id -u > $out/uid
hostname > $out/host
echo $$ > $out/pid
ls / > $out/root
if echo x > /store/cc/dd/input/data 2>/dev/null; then echo writable; exit 3; fi
if touch /usr/x 2>/dev/null; then echo usr writable; exit 4; fi
echo tmp > /tmp/x
test -c /dev/null && test -e /dev/ptmx && test -d /dev/pts
`)
	var log bytes.Buffer
	if err := Run(context.Background(), spec, &log); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	check := func(name, want string) {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
	check("copy", "input data")
	check("uid", "30001")
	check("host", "localhost")
	// Go's init threads take the first PIDs of the namespace.
	if b, _ := os.ReadFile(filepath.Join(out, "pid")); len(strings.TrimSpace(string(b))) > 2 {
		t.Errorf("builder pid %s: not in a fresh PID namespace", b)
	}
	b, _ := os.ReadFile(filepath.Join(out, "root"))
	if strings.Contains(string(b), "work") || strings.Contains(string(b), "root\n") {
		t.Errorf("host root visible in sandbox: %s", b)
	}
}

func TestSandboxExitStatus(t *testing.T) {
	spec, _ := testSpec(t, `echo failing; exit 7`)
	var log bytes.Buffer
	err := Run(context.Background(), spec, &log)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("err = %v, want exit 7", err)
	}
	if !strings.Contains(log.String(), "failing") {
		t.Errorf("log = %q", log.String())
	}
}

// reachHost returns a shell command that connects to a listener on the
// host's loopback (and fails when it cannot).
func reachHost(t *testing.T) string {
	t.Helper()
	// bash's /dev/tcp would be simpler, but /bin/sh is dash here.
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no bash for /dev/tcp")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return `bash -c 'echo > /dev/tcp/127.0.0.1/` + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + `'`
}

func TestSandboxNoNetwork(t *testing.T) {
	spec, _ := testSpec(t, reachHost(t)+` && exit 9; exit 0`)
	var log bytes.Buffer
	if err := Run(context.Background(), spec, &log); err != nil {
		t.Fatalf("reached the host's loopback from the sandbox: %v\n%s", err, log.String())
	}
}

// A fixed-output build keeps the host's network and resolver setup.
func TestSandboxWithNetwork(t *testing.T) {
	spec, out := testSpec(t, reachHost(t)+` || exit 9; cat /etc/resolv.conf /etc/services > $out/etc 2>/dev/null; echo ok >> $out/etc`)
	spec.Network = true
	var log bytes.Buffer
	if err := Run(context.Background(), spec, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	got, err := os.ReadFile(filepath.Join(out, "etc"))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, f := range []string{"/etc/resolv.conf", "/etc/services"} {
		b, _ := os.ReadFile(f)
		want = append(want, b...)
	}
	if string(got) != string(want)+"ok\n" {
		t.Errorf("the sandbox's resolver files differ from the host's (%d bytes, want %d)", len(got), len(want)+3)
	}
}

func TestSandboxTimeoutKillsAll(t *testing.T) {
	spec, _ := testSpec(t, `sleep 100 & sleep 100`)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, spec, &bytes.Buffer{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

// BenchmarkSandboxOverhead runs one small builder snippet in the sandbox
// (through the standalone init, as nexis does) and, as the floor, the same
// snippet with /bin/sh directly; it reports both and their difference
// per run, wall and CPU (the children's user and system time).
func BenchmarkSandboxOverhead(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	initBin := filepath.Join(dir, InitProgramName)
	build := exec.Command("go", "build", "-o", initBin, "./nexis-sandbox-init")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the init: %v\n%s", err, out)
	}
	b.Setenv("NEXIS_SANDBOX_INIT", initBin)
	initOnce = sync.Once{}
	b.Cleanup(func() { initOnce = sync.Once{} })
	for _, d := range []string{"root", "build", "out", "floor"} {
		os.Mkdir(filepath.Join(dir, d), 0o755)
	}
	os.Chown(filepath.Join(dir, "out"), 30001, 30001)
	const snippet = "echo hi > $out/x"
	spec := &Spec{
		RootDir: filepath.Join(dir, "root"), Args: []string{"/bin/sh", "-c", snippet},
		Env: []string{"PATH=/usr/bin:/bin", "out=/store/aa/bb/out"}, Dir: "/build",
		Binds:     []Bind{{Source: filepath.Join(dir, "out"), Target: "/store/aa/bb/out", Writable: true}, {Source: filepath.Join(dir, "build"), Target: "/build", Writable: true}},
		HostPaths: []string{"/bin", "/usr", "/lib", "/lib64"}, UID: 30001, GID: 30001, Hostname: HostName,
	}
	var sandboxWall, floorWall, sandboxCPU, floorCPU time.Duration
	for i := 0; i < b.N; i++ {
		c0, t0 := childCPU(), time.Now()
		if err := Run(context.Background(), spec, io.Discard); err != nil {
			b.Fatal(err)
		}
		c1, t1 := childCPU(), time.Now()
		floor := exec.Command("/bin/sh", "-c", snippet)
		floor.Env = []string{"PATH=/usr/bin:/bin", "out=" + filepath.Join(dir, "floor")}
		if err := floor.Run(); err != nil {
			b.Fatal(err)
		}
		sandboxWall += t1.Sub(t0)
		floorWall += time.Since(t1)
		sandboxCPU += c1 - c0
		floorCPU += childCPU() - c1
	}
	per := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(per(sandboxWall), "sandbox-ms/op")
	b.ReportMetric(per(floorWall), "floor-ms/op")
	b.ReportMetric(per(sandboxWall-floorWall), "overhead-ms/op")
	b.ReportMetric(per(sandboxCPU-floorCPU), "overhead-cpu-ms/op")
}

func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// init.c recognises its argv[0] before Go runs, so it cannot read
// InitArg0: the two spellings must agree.
func TestInitNameMatchesC(t *testing.T) {
	src, err := os.ReadFile("init.c")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), `strcmp(argv[0], "`+InitArg0+`")`) {
		t.Fatalf("init.c does not take over processes named %q", InitArg0)
	}
}

// Layers are merged read-only at /usr, the first winning, with /bin,
// /lib and /lib64 linking into it; nothing else of the host is there.
func TestSandboxUsrLayers(t *testing.T) {
	spec, out := testSpec(t, `
cat /usr/share/layer/which > $out/which
cat /bin/../share/layer/only-second > $out/second
readlink /bin > $out/bin
if touch /usr/share/layer/x 2>/dev/null; then echo usr writable; exit 3; fi
umask > $out/umask
`)
	first, second := t.TempDir(), t.TempDir()
	for dir, files := range map[string]map[string]string{
		first:  {"which": "first\n"},
		second: {"which": "second\n", "only-second": "from the second layer\n"},
	} {
		os.MkdirAll(filepath.Join(dir, "usr/share/layer"), 0o755)
		for name, content := range files {
			os.WriteFile(filepath.Join(dir, "usr/share/layer", name), []byte(content), 0o644)
		}
	}
	// The host's /usr is the last layer: it has the shell.
	spec.Usr = []string{filepath.Join(first, "usr"), filepath.Join(second, "usr"), "/usr"}
	spec.HostPaths = nil
	var log bytes.Buffer
	old := syscall.Umask(0o077)
	err := Run(context.Background(), spec, &log)
	syscall.Umask(old)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	for name, want := range map[string]string{"which": "first", "second": "from the second layer", "bin": "usr/bin", "umask": "0022"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
