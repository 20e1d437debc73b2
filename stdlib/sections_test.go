package stdlib_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
)

// Every example evaluates, its manifest decodes strictly, and everything
// the manifest and etc/ name is an output of the evaluation.
func TestExamplesEvaluate(t *testing.T) {
	for _, config := range examples(t) {
		t.Run(exampleName(config), func(t *testing.T) {
			ev := evalConfig(t, config)
			known := map[string]bool{}
			for _, d := range builtins.Closure(ev.sys.Drv) {
				for _, o := range d.Outputs {
					p, _ := d.OutputPath(o)
					known[p] = true
				}
				for _, s := range d.Srcs {
					known[s.Path] = true
				}
			}
			for rel, e := range ev.etc {
				if !known[e.Source] {
					t.Errorf("etc/%s: source %s is not in the closure", rel, e.Source)
				}
			}
			if len(ev.manifest.Etc) != len(ev.etc) {
				t.Errorf("manifest etc lists %d entries, the etc tree has %d", len(ev.manifest.Etc), len(ev.etc))
			}
			for _, e := range ev.manifest.Etc {
				if tree, ok := ev.etc[e.Path]; !ok || tree.Source != e.Source || tree.Mode != e.Mode {
					t.Errorf("manifest etc entry %+v does not match the etc tree (%+v)", e, tree)
				}
			}
			for _, f := range ev.manifest.Files {
				if f.Source != "" && !known[f.Source] {
					t.Errorf("file %s: source %s is not in the closure", f.Path, f.Source)
				}
			}
			for _, s := range ev.manifest.Services {
				if _, ok := ev.etc[s.File]; !ok {
					t.Errorf("service %s: etc/%s is missing", s.Name, s.File)
				}
			}
			if _, ok := ev.etc["dinit.d/boot"]; !ok {
				t.Errorf("etc/dinit.d/boot is missing")
			}
		})
	}
}

// Every example runs a firewall with a different backend between them,
// and the firewall test configs cover the rest: each ruleset passes its
// backend's own checker.
func TestFirewallRulesets(t *testing.T) {
	configs := append(examples(t), mustGlob(t, "testdata/firewall/*/config.toml")...)
	for _, config := range configs {
		name := filepath.Base(filepath.Dir(config))
		t.Run(name, func(t *testing.T) {
			ev := evalConfig(t, config)
			fw := ev.manifest.Firewall
			if !fw.Enable {
				return
			}
			switch fw.Backend {
			case "nftables":
				checkNftables(t, ev)
			case "iptables":
				checkIptables(t, ev)
			case "firewalld":
				checkFirewalld(t, ev)
			default:
				t.Fatalf("backend %q", fw.Backend)
			}
		})
	}
}

func checkNftables(t *testing.T, ev *evaluated) {
	nft := tool(t, "nft", "nftables")
	unshare := netns(t)
	rules, ok := ev.etcFile(t, "nftables.conf")
	if !ok {
		t.Fatal("etc/nftables.conf is missing")
	}
	f := writeTemp(t, "nftables.conf", rules)
	// A private network namespace: checking needs CAP_NET_ADMIN but must
	// not touch this machine's ruleset.
	if out, err := run(t, "", unshare, "-n", nft, "-c", "-f", f); err != nil {
		t.Fatalf("nft -c -f rejects the ruleset: %v\n%s\n--- ruleset:\n%s", err, out, rules)
	}
}

func checkIptables(t *testing.T, ev *evaluated) {
	unshare := netns(t)
	for _, fam := range []struct{ file, cmd string }{{"iptables/rules.v4", "iptables-restore"}, {"iptables/rules.v6", "ip6tables-restore"}} {
		restore := tool(t, fam.cmd, "iptables")
		rules, ok := ev.etcFile(t, fam.file)
		if !ok {
			t.Fatalf("etc/%s is missing", fam.file)
		}
		f := writeTemp(t, filepath.Base(fam.file), rules)
		if out, err := run(t, "", unshare, "-n", restore, "--test", f); err != nil {
			t.Fatalf("%s --test rejects %s: %v\n%s\n--- rules:\n%s", fam.cmd, fam.file, err, out, rules)
		}
	}
	script, _ := ev.etcFile(t, "iptables/nexis-firewall.sh")
	checkShell(t, "iptables/nexis-firewall.sh", script)
}

func checkFirewalld(t *testing.T, ev *evaluated) {
	offline := tool(t, "firewall-offline-cmd", "firewalld")
	xmllint := tool(t, "xmllint", "libxml2-utils")
	dir := t.TempDir()
	for rel := range ev.etc {
		if !strings.HasPrefix(rel, "firewalld/") {
			continue
		}
		content, _ := ev.etcFile(t, rel)
		p := filepath.Join(dir, strings.TrimPrefix(rel, "firewalld/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".xml") {
			if out, err := run(t, "", xmllint, "--noout", p); err != nil {
				t.Fatalf("xmllint: %s is not well-formed: %v\n%s", rel, err, out)
			}
		}
	}
	out, err := run(t, "", offline, "--system-config", dir, "--check-config")
	if err != nil || strings.Contains(strings.ToLower(out), "error") {
		t.Fatalf("firewall-offline-cmd --check-config: %v\n%s", err, out)
	}
	out, err = run(t, "", offline, "--system-config", dir, "--get-default-zone")
	if err != nil || strings.TrimSpace(out) != "nexis" {
		t.Fatalf("firewall-offline-cmd --get-default-zone = %q (%v), want nexis", out, err)
	}
	for _, r := range ev.manifest.Firewall.RichRules {
		// Activation adds rich rules with this very command.
		if out, err := run(t, "", offline, "--system-config", dir, "--zone=nexis", "--add-rich-rule="+r); err != nil {
			t.Fatalf("firewall-offline-cmd rejects rich rule %q: %v\n%s", r, err, out)
		}
	}
}

// Switching backend changes the firewall's outputs and nothing else.
func TestFirewallBackendSwitchChangesOnlyFirewall(t *testing.T) {
	base := evalConfig(t, "testdata/firewall/nftables/config.toml")
	for _, backend := range []string{"iptables", "firewalld"} {
		other := evalConfig(t, "testdata/firewall/"+backend+"/config.toml")
		ids := func(ev *evaluated) map[string]string {
			m := map[string]string{}
			for _, d := range builtins.Closure(ev.sys.Drv) {
				if d != ev.sys.Drv {
					m[d.ID()] = d.Name
				}
			}
			return m
		}
		a, b := ids(base), ids(other)
		firewall := regexp.MustCompile(`^etc-(nftables|iptables|firewalld|dinit\.d-firewall)`)
		for id, name := range a {
			if _, ok := b[id]; !ok && !firewall.MatchString(name) {
				t.Errorf("%s: switching to %s changed %s", "nftables", backend, name)
			}
		}
		for id, name := range b {
			if _, ok := a[id]; !ok && !firewall.MatchString(name) {
				t.Errorf("switching to %s added %s", backend, name)
			}
		}
	}
}

func TestLogrotate(t *testing.T) {
	logrotate := tool(t, "logrotate", "logrotate")
	n := 0
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		conf, ok := ev.etcFile(t, "logrotate.d/nexis")
		if !ok {
			continue
		}
		n++
		t.Run(exampleName(config), func(t *testing.T) {
			f := writeTemp(t, "nexis", conf)
			state := filepath.Join(t.TempDir(), "state")
			out, err := run(t, "", logrotate, "-d", "-s", state, f)
			if err != nil || regexp.MustCompile(`(?m)^error:`).MatchString(out) {
				t.Fatalf("logrotate -d: %v\n%s\n--- config:\n%s", err, out, conf)
			}
			for _, p := range ev.manifest.LogRotation {
				if !strings.Contains(out, p) {
					t.Errorf("logrotate did not read the stanza for %s:\n%s", p, out)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no example rotates logs")
	}
}

// Every SELinux module (the immutable-paths one and each package's
// context file) compiles with secilc against the base policy realise
// checks modules with.
func TestSELinuxModules(t *testing.T) {
	secilc := tool(t, "secilc", "secilc")
	base, err := filepath.Abs("../realise/selinux-base.cil")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		for _, mod := range ev.manifest.SELinux.Modules {
			n++
			t.Run(exampleName(config)+"/"+mod.Name, func(t *testing.T) {
				if mod.Format != "cil" {
					t.Fatalf("module format %q", mod.Format)
				}
				dir := t.TempDir()
				src := filepath.Join(dir, mod.Name+".cil")
				content := ""
				if mod.Name == "immutable_paths" {
					content = ev.content(t, mod.CIL)
				} else {
					b, err := os.ReadFile(sourceAbs(t, ev, mod.CIL))
					if err != nil {
						t.Fatal(err)
					}
					content = string(b)
				}
				if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := run(t, dir, secilc, "-o", filepath.Join(dir, "policy"), "-f", filepath.Join(dir, "file_contexts"), base, src)
				if err != nil {
					t.Fatalf("secilc rejects %s: %v\n%s\n--- module:\n%s", mod.Name, err, out, content)
				}
				if mod.Name == "immutable_paths" {
					fc, _ := os.ReadFile(filepath.Join(dir, "file_contexts"))
					if !strings.Contains(string(fc), "immutable_dir_t") {
						t.Errorf("the compiled file contexts do not label the immutable paths:\n%s", fc)
					}
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no example has an SELinux module")
	}
}

// sourceAbs finds where a source store path came from on this machine.
func sourceAbs(t *testing.T, ev *evaluated, storePath string) string {
	t.Helper()
	for _, d := range builtins.Closure(ev.sys.Drv) {
		for _, s := range d.Srcs {
			if s.Path == storePath {
				return s.Abs
			}
		}
	}
	for _, item := range ev.sys.Packages.Items() {
		d := item[1].(*builtins.Derivation)
		if v, found, _ := d.Passthru.Get(starlarkString("context_file")); found {
			if s, ok := v.(*builtins.Source); ok && s.Path == storePath {
				return s.Abs
			}
		}
	}
	t.Fatalf("%s is not a source of this evaluation", storePath)
	return ""
}

// Every authorized_keys file of every example is read by ssh-keygen, key
// by key.
func TestAuthorizedKeysFiles(t *testing.T) {
	keygen := tool(t, "ssh-keygen", "openssh-client")
	n := 0
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		for _, f := range ev.manifest.Files {
			if !strings.HasSuffix(f.Path, "/.ssh/authorized_keys") {
				continue
			}
			content := ev.content(t, f.Source)
			for i, line := range strings.Split(strings.TrimSpace(content), "\n") {
				n++
				p := writeTemp(t, "key.pub", line+"\n")
				if out, err := run(t, "", keygen, "-l", "-f", p); err != nil {
					t.Errorf("%s: %s line %d: ssh-keygen -l rejects it: %v\n%s", exampleName(config), f.Path, i+1, err, out)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no example has authorized keys")
	}
}

// check_ssh_key accepts what ssh-keygen makes and rejects what ssh-keygen
// cannot read.
func TestSSHKeyCheckAgainstSSHKeygen(t *testing.T) {
	keygen := tool(t, "ssh-keygen", "openssh-client")
	lib := starlarkModule(t, "lib.star")
	dir := t.TempDir()
	var good []string
	for _, kind := range [][]string{{"-t", "ed25519"}, {"-t", "rsa", "-b", "2048"}, {"-t", "rsa", "-b", "4096"}, {"-t", "ecdsa", "-b", "256"}, {"-t", "ecdsa", "-b", "384"}, {"-t", "ecdsa", "-b", "521"}} {
		key := filepath.Join(dir, "id-"+strings.Join(kind, ""))
		if out, err := run(t, "", keygen, append([]string{"-q", "-N", "", "-C", "test@example.com", "-f", key}, kind...)...); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", kind, err, out)
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		good = append(good, strings.TrimSpace(string(pub)))
	}
	good = append(good, `from="10.0.0.0/8,192.168.1.0/24",no-pty `+good[0], "restrict "+good[1])
	for _, k := range good {
		if msg := callCheck(t, lib, "check_ssh_key", k); msg != "" {
			t.Errorf("check_ssh_key rejects a key ssh-keygen made: %s\n%s", msg, k)
		}
	}
	var bad []string
	for _, k := range good[:6] {
		fields := strings.Fields(k)
		blob := fields[1]
		bad = append(bad,
			fields[0]+" "+blob[:len(blob)-8]+" truncated", // cut short
			fields[0]+" "+blob[:20]+"!"+blob[21:],         // not base64
			"ssh-ed25519 "+strings.Fields(good[1])[1],     // type does not match the blob
			fields[0]+" "+blob+"AAAA",                     // trailing bytes
		)
	}
	bad = append(bad, "AAAAC3NzaC1lZDI1NTE5AAAAIAjXjYocnZeXbrlRwsSKEJDPwYoPQ5QRmsDCfT91BZqx", "ssh-ed25519", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWJv... user@example.com")
	for _, k := range bad {
		p := writeTemp(t, "bad.pub", k+"\n")
		_, keygenErr := run(t, "", keygen, "-l", "-f", p)
		msg := callCheck(t, lib, "check_ssh_key", k)
		if keygenErr == nil {
			t.Logf("ssh-keygen accepts %q (check says %q)", k, msg)
			continue
		}
		if msg == "" {
			t.Errorf("check_ssh_key accepts a key ssh-keygen rejects: %s", k)
		}
	}
}

// check_password_hash accepts hashes of every strong scheme made by the
// real tools, each verified against its password by the system's
// libxcrypt (the one that checks logins), and refuses plaintext,
// argon2id (which libxcrypt cannot verify) and weak schemes.
func TestPasswordHashCheck(t *testing.T) {
	lib := starlarkModule(t, "lib.star")
	mkpasswd := tool(t, "mkpasswd", "whois")
	openssl := tool(t, "openssl", "openssl")
	const pw = "correct horse battery staple"
	var good []string
	for _, m := range []string{"yescrypt", "gost-yescrypt", "scrypt", "bcrypt", "bcrypt-a", "sha512crypt", "sha256crypt"} {
		cmd := exec.Command(mkpasswd, "-m", m, "-s")
		cmd.Stdin = strings.NewReader(pw + "\n")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mkpasswd -m %s: %v", m, err)
		}
		good = append(good, strings.TrimSpace(string(out)))
	}
	for _, alg := range []string{"-5", "-6"} {
		out, err := run(t, "", openssl, "passwd", alg, pw)
		if err != nil {
			t.Fatalf("openssl passwd %s: %v", alg, err)
		}
		good = append(good, strings.TrimSpace(out))
	}
	// bcrypt's $2y$ is $2b$ under another name (PHP's); libxcrypt reads both.
	for _, h := range good {
		if strings.HasPrefix(h, "$2b$") {
			good = append(good, "$2y$"+h[4:])
			break
		}
	}
	for _, h := range good {
		if !CryptVerifies(t, pw, h) {
			t.Fatalf("libxcrypt does not verify %q for its password: the test's hashes are wrong", h)
		}
		if msg := callCheck(t, lib, "check_password_hash", h); msg != "" {
			t.Errorf("check_password_hash(%q) = %q, want accepted", h, msg)
		}
	}
	for _, h := range []string{"!", "*", "!" + good[0], "$6$rounds=656000$Xq3vJ8kLmN2pQr5s$3K/6JS09Tq0bKXkzFjJgUDCcYBAjLCwCX7qiq2EBsgLJ2YzHNqdRq3lUgV1qdfae8UVHaY1AQ6byFqGStjt4C."} {
		if msg := callCheck(t, lib, "check_password_hash", h); msg != "" {
			t.Errorf("check_password_hash(%q) = %q, want accepted", h, msg)
		}
	}
	argon := "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHRzb21lc2FsdA$6zVh2Gq0qL9m1X3cKQw7bD8yJrT5uN4eFaPiHsZoW2k"
	if CryptVerifies(t, pw, argon) {
		t.Fatal("libxcrypt verifies argon2id here: refusing it is no longer needed")
	}
	md5 := strings.TrimSpace(mustRun(t, mkpasswd, "-m", "md5crypt", pw))
	for h, want := range map[string]string{
		"hunter2":                           "plaintext",
		"correct horse battery staple":      "plaintext",
		argon:                               "cannot be verified by libxcrypt",
		md5:                                 "too weak",
		"$6$salt$short":                     "not a well-formed sha512-crypt",
		"$2b$99$" + strings.Repeat("a", 53): "not a well-formed bcrypt",
		"$y$j9T$salt$short":                 "not a well-formed yescrypt",
		"":                                  "plaintext",
	} {
		msg := callCheck(t, lib, "check_password_hash", h)
		if !strings.Contains(msg, want) {
			t.Errorf("check_password_hash(%q) = %q, want it to say %q", h, msg, want)
		}
		if h != "" && len(h) > 3 && !strings.HasPrefix(h, "$") && strings.Contains(msg, h) {
			t.Errorf("the error repeats the plaintext password: %q", msg)
		}
	}
}

// Zone names: every zone of the tz database is accepted, every example's
// zone exists on this machine, and junk is refused. Only the test reads
// /usr/share/zoneinfo; evaluation never does.
func TestTimezones(t *testing.T) {
	host := starlarkModule(t, "host.star")
	tab := "/usr/share/zoneinfo/tzdata.zi"
	f, err := os.Open(tab)
	if err != nil {
		t.Skipf("validator %s (Debian package tzdata) is missing: run scripts/install-deps", tab)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var zone string
		switch {
		case len(fields) >= 2 && fields[0] == "Z":
			zone = fields[1]
		case len(fields) >= 3 && fields[0] == "L":
			zone = fields[2]
		default:
			continue
		}
		n++
		if msg := callCheck(t, host, "check_timezone", zone); msg != "" {
			t.Errorf("check_timezone rejects the tz database zone %q: %s", zone, msg)
		}
	}
	if n < 300 {
		t.Fatalf("read only %d zones from %s", n, tab)
	}
	for _, bad := range []string{"Mars/Olympus_Mons", "utc", "Europe/", "Europe/../../etc/passwd", "Europe/Ber lin", "/UTC", ""} {
		if msg := callCheck(t, host, "check_timezone", bad); msg == "" {
			t.Errorf("check_timezone accepts %q", bad)
		}
	}
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		if _, err := os.Stat(ev.manifest.System.Localtime); err != nil {
			t.Errorf("%s: /etc/localtime would point at %s, which is not a zone on this machine: %v", exampleName(config), ev.manifest.System.Localtime, err)
		}
	}
}

// parse_cidr agrees with Go's net/netip on what an address with a prefix
// is.
func TestCIDRCheck(t *testing.T) {
	lib := starlarkModule(t, "lib.star")
	cases := []string{
		"192.168.1.100/24", "10.0.0.1/8", "0.0.0.0/0", "255.255.255.255/32", "2001:db8::5/64", "::1/128",
		"fe80::1/10", "::ffff:192.0.2.1/96", "2001:db8:0:0:0:0:0:1/64", "1:2:3:4:5:6:7:8/64",
		"192.168.1.100", "192.168.1.300/24", "192.168.1/24", "192.168.1.1/33", "192.168.01.1/24",
		"2001:db8::/129", "2001:::1/64", "1:2:3:4:5:6:7:8:9/64", "1:2:3:4:5:6:7::8/64", "fe80::1%eth0/64",
		"/24", "10.0.0.1/", "10.0.0.1/024", "abc/8", "10.0.0.1/8/8", "::/0", "1::/64",
	}
	for _, c := range cases {
		msg := callCheck(t, lib, "parse_cidr", c)
		_, goErr := netipParsePrefix(c)
		if (msg == "") != (goErr == nil) {
			t.Errorf("parse_cidr(%q) error %q, net/netip error %v: they must agree", c, msg, goErr)
		}
	}
}

// The dinit service files: dinit is not packaged for Debian 12, so its
// own checker (dinitcheck) cannot run here; this parses every file with
// dinit's rules (setting names, types, values) and resolves every
// dependency to a service file of the generation.
func TestDinitServiceFiles(t *testing.T) {
	settings := map[string]*regexp.Regexp{
		"type":          regexp.MustCompile(`^(process|bgprocess|scripted|internal|triggered)$`),
		"command":       regexp.MustCompile(`^/\S`),
		"stop-command":  regexp.MustCompile(`^/\S`),
		"depends-on":    regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`),
		"waits-for":     regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`),
		"working-dir":   regexp.MustCompile(`^"?/`),
		"run-as":        regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`),
		"env-file":      regexp.MustCompile(`^/`),
		"logfile":       regexp.MustCompile(`^"?/`),
		"pid-file":      regexp.MustCompile(`^"?/`),
		"restart":       regexp.MustCompile(`^(true|false|on-failure)$`),
		"start-timeout": regexp.MustCompile(`^[0-9]+$`),
		"stop-timeout":  regexp.MustCompile(`^[0-9]+$`),
	}
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		t.Run(exampleName(config), func(t *testing.T) {
			for rel := range ev.etc {
				if !strings.HasPrefix(rel, "dinit.d/") || strings.HasSuffix(rel, ".sh") || strings.HasSuffix(rel, ".env") {
					continue
				}
				content, _ := ev.etcFile(t, rel)
				seen := map[string]bool{}
				for i, line := range strings.Split(content, "\n") {
					line = strings.TrimSpace(line)
					if line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					k, v, ok := strings.Cut(line, "=")
					k, v = strings.TrimSpace(k), strings.TrimSpace(v)
					re, known := settings[k]
					if !ok || !known {
						t.Errorf("%s:%d: %q is not a dinit setting", rel, i+1, line)
						continue
					}
					if !re.MatchString(v) {
						t.Errorf("%s:%d: %s = %q is not a valid value", rel, i+1, k, v)
					}
					if seen[k] && k != "depends-on" && k != "waits-for" {
						t.Errorf("%s:%d: %s is set twice", rel, i+1, k)
					}
					seen[k] = true
					if k == "depends-on" || k == "waits-for" {
						if _, ok := ev.etc["dinit.d/"+v]; !ok {
							t.Errorf("%s:%d: %s names %s, which has no service file", rel, i+1, k, v)
						}
					}
					if k == "env-file" {
						if _, ok := ev.etc[strings.TrimPrefix(v, "/etc/")]; !ok {
							t.Errorf("%s:%d: env-file %s is not generated", rel, i+1, v)
						}
					}
				}
				if !seen["type"] {
					t.Errorf("%s has no type", rel)
				}
			}
		})
	}
}

// TestDinitRestartTriggers: a service's restart_triggers (and its
// environment file) put what each file is made from into its service
// file, so a changed file changes the service file (which a live switch
// restarts), and nothing else does.
func TestDinitRestartTriggers(t *testing.T) {
	config := func(conf, home string) string {
		return writeTemp(t, "config.toml", `
[users.web]
home = "/var/lib/web"
[users.web.files."web.rc"]
content = "`+home+`"

[config_files.nginx]
path = "/etc/nginx/nginx.conf"
content = "`+conf+`"

[dinit_services.nginx]
command = "/usr/sbin/nginx -c /etc/nginx/nginx.conf"
restart_triggers = ["/etc/nginx/nginx.conf", "/var/lib/web/web.rc"]

[dinit_services.other]
command = "/usr/bin/other"
`)
	}
	service := func(ev *evaluated, name string) string {
		s, ok := ev.etcFile(t, "dinit.d/"+name)
		if !ok {
			t.Fatalf("no dinit.d/%s", name)
		}
		return s
	}
	a := evalConfig(t, config("worker_processes 1;", "a"))
	want := "# restarted when /etc/nginx/nginx.conf changes: " + a.etc["nginx/nginx.conf"].Source + "\n"
	if got := service(a, "nginx"); !strings.Contains(got, want) {
		t.Errorf("service file:\n%s\nwant the line %q", got, want)
	}
	for _, c := range []struct {
		name, conf, home string
		changes          bool
	}{
		{"same files", "worker_processes 1;", "a", false},
		{"/etc file changed", "worker_processes 2;", "a", true},
		{"user's file changed", "worker_processes 1;", "b", true},
	} {
		b := evalConfig(t, config(c.conf, c.home))
		if changed := service(b, "nginx") != service(a, "nginx"); changed != c.changes {
			t.Errorf("%s: nginx's service file changed = %v, want %v", c.name, changed, c.changes)
		}
		if service(b, "other") != service(a, "other") {
			t.Errorf("%s: a service without triggers changed", c.name)
		}
	}

	// A service's environment is a trigger of its own: dinit reads it
	// when it starts the service.
	withEnv := func(v string) string {
		return writeTemp(t, "config.toml", "[dinit_services.x]\ncommand = \"/bin/x\"\nenv = { A = \""+v+"\" }\n")
	}
	if service(evalConfig(t, withEnv("1")), "x") == service(evalConfig(t, withEnv("2")), "x") {
		t.Errorf("a changed environment left the service file as it was")
	}

	// The owner a file gets is part of what it is made from.
	owned := func(owner string) string {
		return writeTemp(t, "config.toml", `
[users.web]
home = "/var/lib/web"
[config_files.app]
path = "/srv/app.conf"
content = "x"
owner = "`+owner+`"
[dinit_services.x]
command = "/bin/x"
restart_triggers = ["/srv/app.conf"]
`)
	}
	if service(evalConfig(t, owned("root")), "x") == service(evalConfig(t, owned("web")), "x") {
		t.Errorf("a trigger's new owner left the service file as it was")
	}

	for _, c := range []struct{ triggers, want string }{
		{`["etc/x.conf"]`, "dinit_services.x.restart_triggers[0]"},
		{`["/var/lib/web/.ssh"]`, "is a directory, which does not change"},
		{`["/etc/dinit.d/x.env"]`, "is a service's own file"},
	} {
		bad := writeTemp(t, "config.toml", `
[users.web]
home = "/var/lib/web"
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl web@example"]
[dinit_services.x]
command = "/bin/x"
env = { A = "1" }
restart_triggers = `+c.triggers+"\n")
		if _, err := lang.Eval(bad, lang.Options{StoreDir: "/store"}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("restart_triggers = %s: %v, want an error saying %q", c.triggers, err, c.want)
		}
	}
}

// Shell files the generation runs: hooks, the network script, the
// environment profile; all parse with sh -n, and the profile extends PATH.
func TestShellFiles(t *testing.T) {
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		t.Run(exampleName(config), func(t *testing.T) {
			for rel := range ev.etc {
				if strings.HasSuffix(rel, ".sh") {
					c, _ := ev.etcFile(t, rel)
					checkShell(t, rel, c)
				}
			}
			for _, h := range append(append([]hookRef(nil), hooks(ev, "pre")...), hooks(ev, "post")...) {
				if d, ok := ev.byPath[h.source]; ok {
					checkShell(t, h.name, d.Getenv("content"))
				}
			}
			if prof, ok := ev.etcFile(t, "profile.d/nexis-environment.sh"); ok {
				p := writeTemp(t, "env.sh", prof)
				cmd := exec.Command("sh", "-c", `. "$1" && printf %s "$PATH"`, "sh", p)
				cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/home/test"}
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("sourcing the profile: %v", err)
				}
				if !strings.Contains(":"+string(out)+":", ":/usr/bin:/bin:") {
					t.Errorf("the profile replaces PATH instead of extending it: PATH=%s", out)
				}
			}
			if osr, ok := ev.etcFile(t, "os-release"); ok {
				p := writeTemp(t, "os-release", osr)
				out, err := exec.Command("sh", "-c", `. "$1" && printf '%s|%s' "$NAME" "$ID"`, "sh", p).Output()
				if err != nil || string(out) != "NexisOS|nexisos" {
					t.Errorf("os-release does not parse as shell assignments: %q %v", out, err)
				}
			}
		})
	}
}

type hookRef struct{ name, source string }

func hooks(ev *evaluated, phase string) []hookRef {
	var out []hookRef
	list := ev.manifest.Hooks.PreSwitch
	if phase == "post" {
		list = ev.manifest.Hooks.PostSwitch
	}
	for _, h := range list {
		out = append(out, hookRef{h.Name, h.Source})
	}
	return out
}

func checkShell(t *testing.T, name, content string) {
	t.Helper()
	p := writeTemp(t, "script.sh", content)
	if out, err := exec.Command("sh", "-n", p).CombinedOutput(); err != nil {
		t.Errorf("%s: sh -n: %v\n%s", name, err, out)
	}
}

// No password hash and no secret is in a world-readable output: every
// write_file output that holds one is root-only, and no other derivation
// (the system's etc and manifest included) carries the text at all.
func TestSecretsNeverWorldReadable(t *testing.T) {
	configs := append(examples(t), "testdata/secrets/config.toml")
	for _, config := range configs {
		t.Run(filepath.Base(filepath.Dir(config)), func(t *testing.T) {
			ev := evalConfig(t, config)
			secrets := secretsOf(t, ev)
			if len(secrets) == 0 {
				t.Skip("no secrets in this config")
			}
			for _, d := range builtins.Closure(ev.sys.Drv) {
				private := d.Builder == "builtin:write_file" && d.Getenv("secret") == "1"
				if private {
					if d.Getenv("mode") != "0400" {
						t.Errorf("%s is secret but mode %s", d.Name, d.Getenv("mode"))
					}
					continue
				}
				if d.Builder == "builtin:write_file" {
					m, err := strconv.ParseUint(d.Getenv("mode"), 8, 32)
					if err != nil {
						t.Errorf("%s: mode %q", d.Name, d.Getenv("mode"))
					}
					if m&0o004 == 0 {
						t.Errorf("%s is not world-readable yet not stored as a secret", d.Name)
					}
				}
				var texts []string
				texts = append(texts, d.Builder)
				texts = append(texts, d.Args...)
				for _, v := range d.Env {
					texts = append(texts, v.Value)
				}
				for _, s := range secrets {
					for _, x := range texts {
						if strings.Contains(x, s) {
							t.Errorf("%s (world-readable) contains the secret %.12q...", d.Name, s)
						}
					}
				}
			}
			for _, f := range ev.manifest.Files {
				if f.Secret {
					d, ok := ev.byPath[f.Source]
					if !ok || d.Getenv("secret") != "1" {
						t.Errorf("file %s is marked secret but its source is not a root-only write_file output", f.Path)
					}
				}
			}
			for _, u := range ev.manifest.Users {
				if u.PasswordHashFile != "" {
					d, ok := ev.byPath[u.PasswordHashFile]
					if !ok || d.Getenv("secret") != "1" || d.Getenv("mode") != "0400" {
						t.Errorf("user %s: password_hash_file is not a root-only write_file output", u.Name)
					}
				}
			}
		})
	}
}

// secretsOf collects the secret texts of a config: every password hash,
// and the content of every file marked secret (or private by mode).
func secretsOf(t *testing.T, ev *evaluated) []string {
	var out []string
	v, err := ev.sys.EvalExpr(`[u.get("password_hash", "") for u in config.get("users", {}).values()]`)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := builtins.ToGo(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes.([]any) {
		if h := h.(string); h != "" && h != "!" && h != "*" {
			out = append(out, h)
		}
	}
	for _, d := range ev.byName {
		if d.Getenv("secret") == "1" && !strings.HasSuffix(d.Name, "authorized_keys") {
			if c := strings.TrimSpace(d.Getenv("content")); len(c) > 8 {
				out = append(out, c)
			}
		}
	}
	sort.Strings(out)
	return out
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(m)
	return m
}

// Locale and keymap names: every locale glibc supports and every console
// keymap is accepted, and the examples use ones that exist.
func TestLocalesAndKeymaps(t *testing.T) {
	loc := starlarkModule(t, "locale.star")
	const supported = "/usr/share/i18n/SUPPORTED"
	data, err := os.ReadFile(supported)
	if err != nil {
		t.Skipf("validator %s (Debian package locales) is missing: run scripts/install-deps", supported)
	}
	known := map[string]bool{"C.UTF-8": true, "C": true, "POSIX": true}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		known[f[0]] = true
		if msg := callCheck(t, loc, "check_locale", f[0]); msg != "" {
			t.Errorf("check_locale rejects glibc's %q: %s", f[0], msg)
		}
	}
	keymaps := map[string]bool{}
	_ = filepath.WalkDir("/usr/share/keymaps", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".kmap.gz") && !strings.Contains(p, "/include/") {
			name := strings.TrimSuffix(filepath.Base(p), ".kmap.gz")
			keymaps[name] = true
			if msg := callCheck(t, loc, "check_keymap", name); msg != "" {
				t.Errorf("check_keymap rejects %s: %s", p, msg)
			}
		}
		return nil
	})
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		for _, l := range ev.manifest.Locale.Locales {
			if !known[l] {
				t.Errorf("%s: locale %s is not in %s", exampleName(config), l, supported)
			}
		}
		if len(keymaps) == 0 {
			t.Logf("validator /usr/share/keymaps (Debian package console-data) is missing: keymaps are checked by shape only")
		} else if km := ev.manifest.Locale.KeyboardLayout; !keymaps[km] {
			t.Errorf("%s: keymap %s is not in /usr/share/keymaps", exampleName(config), km)
		}
	}
	for _, bad := range []string{"english", "en-US", "en_us.UTF-8", "EN_US", "en_US.", "en_US@"} {
		if msg := callCheck(t, loc, "check_locale", bad); msg == "" {
			t.Errorf("check_locale accepts %q", bad)
		}
	}
}

// [network]: the interfaces file parses as ifupdown reads it, and a
// static IPv4 setup is applied for real in a private network namespace
// (on its loopback, the only device such a namespace has), where the
// kernel refuses a gateway it could not reach. Neither ifupdown's ifup
// nor Debian's busybox (built without inet support in ifup) can dry-run
// the file here, so its syntax is checked by this parser.
func TestNetwork(t *testing.T) {
	configs := append(examples(t), mustGlob(t, "testdata/network/*/config.toml")...)
	for _, config := range configs {
		t.Run(filepath.Base(filepath.Dir(config)), func(t *testing.T) {
			ev := evalConfig(t, config)
			n := ev.manifest.Network
			if n == nil {
				return
			}
			ifaces, ok := ev.etcFile(t, "network/interfaces")
			if !ok {
				t.Fatal("etc/network/interfaces is missing")
			}
			opts := map[string]string{}
			var method string
			for i, line := range strings.Split(ifaces, "\n") {
				f := strings.Fields(line)
				switch {
				case len(f) == 0 || strings.HasPrefix(f[0], "#"):
				case f[0] == "auto":
				case f[0] == "iface":
					if len(f) != 4 || (f[2] != "inet" && f[2] != "inet6") {
						t.Errorf("interfaces:%d: %q: want iface NAME inet|inet6 METHOD", i+1, line)
						continue
					}
					if f[1] == n.Interface {
						method = f[3]
					}
				case f[0] == "address" || f[0] == "netmask" || f[0] == "gateway":
					if len(f) != 2 {
						t.Errorf("interfaces:%d: %q", i+1, line)
					}
					opts[f[0]] = f[1]
				default:
					t.Errorf("interfaces:%d: unknown option %q", i+1, f[0])
				}
			}
			if n.DHCP != (method == "dhcp") || (!n.DHCP && method != "static") {
				t.Fatalf("interface %s has method %q, dhcp = %v", n.Interface, method, n.DHCP)
			}
			if n.DHCP || !strings.Contains(n.Address, ".") {
				return
			}
			unshare := netns(t)
			ipTool := tool(t, "ip", "iproute2")
			script := `set -e
ip link set lo up
ip addr add "$1/$2" dev lo
[ -z "$3" ] || ip route add default via "$3"`
			if out, err := run(t, "", unshare, "-n", "sh", "-c", script, "sh", opts["address"], opts["netmask"], opts["gateway"]); err != nil {
				t.Fatalf("the kernel refuses the static setup (%s): %v\n%s\n--- interfaces:\n%s", ipTool, err, out, ifaces)
			}
		})
	}
}

// Evaluation is pure: the same config gives the same system from any
// working directory, named by a relative or an absolute path.
func TestSameSystemFromAnywhere(t *testing.T) {
	abs, err := filepath.Abs("../examples/full/config.toml")
	if err != nil {
		t.Fatal(err)
	}
	a := evalConfig(t, "../examples/full/config.toml")
	t.Chdir(t.TempDir())
	b := evalConfig(t, abs)
	if a.sys.Drv.ID() != b.sys.Drv.ID() {
		t.Fatalf("relative and absolute config paths give different systems: %s vs %s", a.sys.Drv.Out(), b.sys.Drv.Out())
	}
}

// TestFirewallExtraRules: an extra rule stays one rule inside the
// inbound chain, whatever it says: a rule that would end the chain,
// start another statement or table, read a file or replace the ruleset
// is refused at its key. What evaluation accepts, nft then checks at
// build time (realise); here the real nft confirms the refused rules are
// the dangerous ones: each injection would load as a ruleset of its own.
func TestFirewallExtraRules(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	eval := func(backend, rule string) error {
		doc := fmt.Sprintf("[system.firewall]\nbackend = %q\nextra_rules = [%q]\n", backend, rule)
		os.WriteFile(cfg, []byte(doc), 0o644)
		_, err := lang.Eval(cfg, lang.Options{StoreDir: "/store"})
		return err
	}
	injections := []struct{ backend, rule, want string }{
		{"nftables", `accept; }; }; table ip evil { chain input { type filter hook input priority -10; policy accept; }; }; table inet again { chain input {`, "a ';' would start another statement"},
		{"nftables", `accept } chain other {`, "a '}' without its '{' would close the inbound chain"},
		{"nftables", `include "/etc/shadow"`, "include is an nft command, not a rule"},
		{"nftables", `flush ruleset`, "flush is an nft command"},
		{"nftables", `tcp dport { 22, 80 accept`, "a '{' is not closed"},
		{"nftables", `meta mark set "x accept`, "a quote is not closed"},
		{"iptables", `*nat`, "want an iptables-restore rule line"},
		{"iptables", `COMMIT`, "want an iptables-restore rule line"},
		{"iptables", `:OUTPUT DROP [0:0]`, "want an iptables-restore rule line"},
		{"firewalld", `<zone target="ACCEPT"/>`, "want a firewalld rich rule"},
	}
	for _, c := range injections {
		err := eval(c.backend, c.rule)
		if err == nil || !strings.Contains(err.Error(), "system.firewall.extra_rules[0]: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: got %v, want %q at the key", c.backend, c.rule, err, c.want)
		}
	}
	for _, rule := range []string{`tcp dport { 22, 80 } accept`, `ip saddr 10.0.0.0/8 meta l4proto { tcp, udp } th dport 53 accept`, `iifname "wg0" counter accept comment "vpn; ok"`} {
		if err := eval("nftables", rule); err != nil {
			t.Errorf("%q: %v", rule, err)
		}
	}

	// With the real nft: an accepted rule loads inside the chain; the
	// first injection, had it passed, would have loaded a second table
	// accepting everything.
	nft := tool(t, "nft", "nftables")
	unshare := netns(t)
	if err := eval("nftables", `tcp dport { 22, 80 } accept`); err != nil {
		t.Fatal(err)
	}
	ev := evalConfig(t, cfg)
	rules, _ := ev.etcFile(t, "nftables.conf")
	if out, err := run(t, "", unshare, "-n", nft, "-c", "-f", writeTemp(t, "ok.nft", rules)); err != nil {
		t.Fatalf("nft -c rejects an accepted rule: %v\n%s", err, out)
	}
	injected := strings.Replace(rules, "\t\ttcp dport { 22, 80 } accept\n", "\t\t"+injections[0].rule+"\n", 1)
	if out, err := run(t, "", unshare, "-n", "sh", "-c", nft+" -f "+writeTemp(t, "evil.nft", injected)+" && "+nft+" list tables"); err != nil || !strings.Contains(out, "table ip evil") {
		t.Fatalf("the injection did not load as a table of its own (so the test proves nothing): %v\n%s", err, out)
	}
}

// Every example's password hash is one libxcrypt verifies, for the
// password the examples document, so a user copying one can log in.
func TestExamplePasswordsVerify(t *testing.T) {
	n := 0
	for _, config := range examples(t) {
		ev := evalConfig(t, config)
		for _, u := range ev.manifest.Users {
			if u.PasswordHashFile == "" {
				continue
			}
			n++
			h := strings.TrimSpace(ev.content(t, u.PasswordHashFile))
			if !CryptVerifies(t, "change-me", h) {
				t.Errorf("%s: users.%s.password_hash does not verify for \"change-me\" with libxcrypt", exampleName(config), u.Name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no example sets a password")
	}
}

// A service that listens gets its port opened in every backend's
// ruleset (NixOS's openFirewall), unless it says open_firewall = false;
// sshd's port comes from its command line. TestFirewallRulesets checks
// the same rulesets with each backend's checker.
func TestServicePortsOpened(t *testing.T) {
	for backend, files := range map[string][]string{
		"nftables":  {"nftables.conf"},
		"iptables":  {"iptables/rules.v4", "iptables/rules.v6"},
		"firewalld": {"firewalld/zones/nexis.xml"},
	} {
		ev := evalConfig(t, "testdata/firewall/services-"+backend+"/config.toml")
		for _, f := range files {
			rules, ok := ev.etcFile(t, f)
			if !ok {
				t.Fatalf("%s: no etc/%s", backend, f)
			}
			for _, port := range []string{"2222", "8080", "8443"} {
				if !strings.Contains(rules, port) {
					t.Errorf("%s: etc/%s does not open port %s:\n%s", backend, f, port, rules)
				}
			}
			if strings.Contains(rules, "5432") {
				t.Errorf("%s: etc/%s opens 5432 though the service says open_firewall = false:\n%s", backend, f, rules)
			}
		}
	}
}
