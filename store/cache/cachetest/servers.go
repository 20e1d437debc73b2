// Package cachetest starts the real servers the cache tests and
// benchmarks talk to: Debian's nginx serving (and accepting PUTs into) a
// cache directory, Debian's OpenSSH server with a throwaway host key
// and one authorised client key, and versitygw, an S3 server over a
// directory (built from its Go module). All listen on 127.0.0.1 high
// ports, run from files in a temporary directory, and stop when the
// test ends. A missing server binary fails the test loudly: CI installs
// them with scripts/install-deps.
package cachetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// T is what the helpers need of a test: T has it, and so can a
// benchmark program's small adapter.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// need fails t when a program is missing.
func need(t T, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s is not installed: run scripts/install-deps (it installs nginx, openssh-server, openssh-client, curl and versitygw)", prog)
	}
	return p
}

// freePort asks the kernel for an unused loopback port.
func freePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts on addr; an error when
// the process exits first or never listens.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("does not listen on %s after 20s", addr)
}

// Nginx is a running nginx serving Root.
type Nginx struct {
	Root string
	Port int
	URL  string
	dir  string
	conf string
	cmd  *exec.Cmd
	done chan struct{}
	t    T
	rate string
}

// NginxOptions tune StartNginx.
type NginxOptions struct {
	// LimitRate slows every response down (nginx's limit_rate, e.g.
	// "200k"), so that a test can interrupt a download.
	LimitRate string
}

// StartNginx serves root (created if missing) on a loopback port, GET
// and HEAD for everyone, PUT through the dav module.
func StartNginx(t T, root string, opts NginxOptions) *Nginx {
	t.Helper()
	need(t, "nginx")
	dir := t.TempDir()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	n := &Nginx{Root: root, dir: dir, conf: filepath.Join(dir, "nginx.conf"), t: t, rate: opts.LimitRate}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

func (n *Nginx) start() {
	t := n.t
	t.Helper()
	for attempt := 0; ; attempt++ {
		n.Port = freePort(t)
		n.URL = "http://127.0.0.1:" + strconv.Itoa(n.Port)
		rate := ""
		if n.rate != "" {
			rate = "limit_rate " + n.rate + ";"
		}
		// master_process off: one process, running as the test's user,
		// so that it reads and writes the test's directories.
		conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000;
	server {
		listen 127.0.0.1:%[2]d;
		root %[3]s;
		client_max_body_size 0;
		location / {
			dav_methods PUT;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
			%[4]s
		}
	}
}
`, n.dir, n.Port, n.Root, rate)
		if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
		os.Remove(filepath.Join(n.dir, "error.log"))
		n.cmd = exec.Command("nginx", "-p", n.dir, "-c", n.conf)
		out := &strings.Builder{}
		n.cmd.Stdout, n.cmd.Stderr = out, out
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			t.Fatalf("starting nginx: %v", err)
		}
		n.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.cmd, n.done)
		logs := func() string {
			b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
			return out.String() + string(b)
		}
		if err := waitListening(fmt.Sprintf("127.0.0.1:%d", n.Port), n.done); err != nil {
			// Another process may take the port between freePort and
			// nginx's bind: try another.
			if attempt < 3 && strings.Contains(logs(), "Address already in use") {
				continue
			}
			t.Fatalf("nginx %v:\n%s", err, logs())
		}
		return
	}
}

// Kill stops nginx at once (SIGKILL), like a crashed server.
func (n *Nginx) Kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		<-n.done
	}
}

// Restart starts nginx again after Kill, with new options, on a new
// port (URL changes).
func (n *Nginx) Restart(opts NginxOptions) {
	n.Kill()
	n.rate = opts.LimitRate
	n.start()
}

// Stop stops nginx.
func (n *Nginx) Stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			n.Kill()
		}
	}
}

// SSHD is a running OpenSSH server that lets ClientKey in as the
// current user.
type SSHD struct {
	Port int
	// Host is what ssh connects to: "<user>@127.0.0.1".
	Host string
	// Opts are the ssh client options that reach it: port excluded (in
	// URLs), key, known hosts, no user config.
	Opts []string
	// ClientKey is the identity file it lets in; HostKey its public
	// host key ("ssh-ed25519 AAAA...").
	ClientKey string
	HostKey   string
	dir       string
	cmd       *exec.Cmd
	done      chan struct{}
}

// StartSSHD starts /usr/sbin/sshd on a loopback port with a host key
// and a client key made for the test.
func StartSSHD(t T) *SSHD {
	t.Helper()
	need(t, "ssh")
	need(t, "ssh-keygen")
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Fatalf("/usr/sbin/sshd is missing: run scripts/install-deps (openssh-server)")
	}
	dir := t.TempDir()
	keygen := func(name string) {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "nexis-test", "-f", filepath.Join(dir, name)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	keygen("host_key")
	keygen("client_key")
	pub, err := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	// sshd refuses to start without its privilege separation directory,
	// which the Debian package makes at boot, not at install.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	user := os.Getenv("USER")
	if user == "" {
		out, err := exec.Command("id", "-un").Output()
		if err != nil {
			t.Fatalf("%v", err)
		}
		user = strings.TrimSpace(string(out))
	}
	s := &SSHD{dir: dir, Host: user + "@127.0.0.1"}
	for attempt := 0; ; attempt++ {
		s.Port = freePort(t)
		conf := fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %[1]s/host_key
PidFile %[1]s/sshd.pid
AuthorizedKeysFile %[1]s/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
LogLevel ERROR
`, dir)
		cfg := filepath.Join(dir, "sshd_config")
		if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
			t.Fatalf("%v", err)
		}
		s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg, "-p", strconv.Itoa(s.Port))
		out := &strings.Builder{}
		s.cmd.Stdout, s.cmd.Stderr = out, out
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("starting sshd: %v", err)
		}
		s.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
		if err := waitListening(fmt.Sprintf("127.0.0.1:%d", s.Port), s.done); err != nil {
			if attempt < 3 && strings.Contains(out.String(), "Address already in use") {
				continue
			}
			t.Fatalf("sshd %v:\n%s", err, out.String())
		}
		break
	}
	hostPub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	f := strings.Fields(string(hostPub))
	s.ClientKey, s.HostKey = filepath.Join(dir, "client_key"), f[0]+" "+f[1]
	known := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.Port, f[0], f[1])
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(known), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	s.Opts = []string{
		"-F", "/dev/null",
		"-i", filepath.Join(dir, "client_key"),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR",
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
			return // killed
		default:
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
		}
	})
	return s
}

// Kill stops the server and every session it started, the commands
// run in them included, at once (SIGKILL): the machine went away.
func (s *SSHD) Kill() {
	for _, pid := range descendants(s.cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	s.cmd.Process.Kill()
	<-s.done
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// URL is the ssh:// URL of the server.
func (s *SSHD) URL() string { return fmt.Sprintf("ssh://%s:%d", s.Host, s.Port) }

// OptsString is Opts as NEXIS_SSHOPTS wants them (space-separated).
func (s *SSHD) OptsString() string { return strings.Join(s.Opts, " ") }

// Pid is the listening sshd's process id: its sessions' CPU time shows
// in its children's times (/proc/<pid>/stat) once they end.
func (s *SSHD) Pid() int { return s.cmd.Process.Pid }

// S3 is a running versitygw, an S3 server over a directory (its posix
// backend): every directory under Root is a bucket, every file below it
// an object. Endpoint stays the same across Kill and Restart, as a
// restarted server's would.
type S3 struct {
	Root string
	// Endpoint is "127.0.0.1:<port>".
	Endpoint  string
	AccessKey string
	SecretKey string
	dir       string
	cmd       *exec.Cmd
	done      chan struct{}
	out       *strings.Builder
	t         T
}

// StartS3 serves root (created if missing) on a loopback port, with
// one account whose keys are in AccessKey and SecretKey.
func StartS3(t T, root string) *S3 {
	t.Helper()
	need(t, "versitygw")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	s := &S3{Root: root, AccessKey: "nexis-test", SecretKey: "nexis-test-secret", dir: t.TempDir(), t: t}
	for attempt := 0; ; attempt++ {
		s.Endpoint = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		err := s.start()
		if err == nil {
			break
		}
		if attempt < 3 && strings.Contains(s.out.String(), "address already in use") {
			continue
		}
		t.Fatalf("versitygw %v:\n%s", err, s.out.String())
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *S3) start() error {
	s.cmd = exec.Command("versitygw", "--port", s.Endpoint, "--quiet", "posix", s.Root)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.out = &strings.Builder{}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	return waitListening(s.Endpoint, s.done)
}

// Bucket makes the bucket name (a directory under Root).
func (s *S3) Bucket(name string) {
	if err := os.MkdirAll(filepath.Join(s.Root, name), 0o755); err != nil {
		s.t.Fatalf("%v", err)
	}
}

// Env is the environment that gives a client the server's credentials.
func (s *S3) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey}
}

// URL is the s3:// URL of prefix in bucket on this server.
func (s *S3) URL(bucket, prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=http://%s&region=us-east-1", bucket, prefix, s.Endpoint)
}

// Kill stops the server at once (SIGKILL), like a crash.
func (s *S3) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart starts the server again on the same endpoint.
func (s *S3) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting versitygw: %v:\n%s", err, s.out.String())
	}
}

// Stop stops the server.
func (s *S3) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.Kill()
		}
	}
}
