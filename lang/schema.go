package lang

import (
	"fmt"
	"strings"

	"github.com/nexisos/nexis/internal/suggest"
)

// Schema describes the keys a config may have: the one place a key is
// declared, with its type, its default, what it means and an example.
// Everything else asks it: Check catches a typo with its position and a
// suggestion before any module runs; the stdlib reads defaults through
// the default() builtin; `nexis option`, docs/options.md, nexis-config(5)
// and the JSON Schema are generated from it. Each section's stdlib
// module checks meanings (a valid hostname, a crypt hash); this checks
// shapes.
//
// A key is named by its path: "system.locale.lang". A table of any keys
// (users, config_files) is written <name> in the path
// ("users.<name>.shell"), an array of tables [] ("packages[].version").
type Schema struct {
	Kind   Kind
	Fields map[string]*Schema // KindTable: the allowed keys
	Elem   *Schema            // KindMap: every value; KindArray: every element

	Doc string
	// Default is the value the stdlib uses when the key is not set, as
	// TOML decodes it (string, int64, bool, []any); nil when the key has
	// none or when it is worked out from other keys, which DefaultDoc
	// then says how. An unset list or table is empty.
	Default    any
	DefaultDoc string
	Example    any
	// ReadBy says what reads a key that does not change the system's
	// identity: Go code (lang.Config's typed views), or the stdlib
	// passing it where identities do not look (a build's time limit, a
	// fixed-output fetch's URL). Every other key changes the system.
	ReadBy string
}

// Kind is the TOML type a key must have.
type Kind int

const (
	KindAny Kind = iota
	KindString
	KindInt
	KindBool
	KindFloat
	KindTable // fixed keys
	KindMap   // any keys, values of Elem
	KindArray
	KindStringOrBool
)

// A keyOpt completes a key's declaration.
type keyOpt func(*Schema)

func def(v any) keyOpt           { return func(s *Schema) { s.Default = v } }
func computed(how string) keyOpt { return func(s *Schema) { s.DefaultDoc = how } }
func example(v any) keyOpt       { return func(s *Schema) { s.Example = v } }
func readBy(who string) keyOpt   { return func(s *Schema) { s.ReadBy = who } }

func leaf(k Kind, doc string, opts ...keyOpt) *Schema {
	s := &Schema{Kind: k, Doc: doc}
	for _, o := range opts {
		o(s)
	}
	return s
}

func str(doc string, opts ...keyOpt) *Schema       { return leaf(KindString, doc, opts...) }
func integer(doc string, opts ...keyOpt) *Schema   { return leaf(KindInt, doc, opts...) }
func boolean(doc string, opts ...keyOpt) *Schema   { return leaf(KindBool, doc, opts...) }
func strOrBool(doc string, opts ...keyOpt) *Schema { return leaf(KindStringOrBool, doc, opts...) }

func strList(doc string, opts ...keyOpt) *Schema {
	s := leaf(KindArray, doc, opts...)
	s.Elem = &Schema{Kind: KindString}
	return s
}

func intList(doc string, opts ...keyOpt) *Schema {
	s := leaf(KindArray, doc, opts...)
	s.Elem = &Schema{Kind: KindInt}
	return s
}

func strMap(doc string, opts ...keyOpt) *Schema {
	s := leaf(KindMap, doc, opts...)
	s.Elem = &Schema{Kind: KindString}
	return s
}

func table(doc string, fields map[string]*Schema, opts ...keyOpt) *Schema {
	s := leaf(KindTable, doc, opts...)
	s.Fields = fields
	return s
}

func mapOf(doc string, elem *Schema, opts ...keyOpt) *Schema {
	s := leaf(KindMap, doc, opts...)
	s.Elem = elem
	return s
}

func arrayOf(doc string, elem *Schema, opts ...keyOpt) *Schema {
	s := leaf(KindArray, doc, opts...)
	s.Elem = elem
	return s
}

func serviceSchema(doc string, user *Schema) *Schema {
	return mapOf(doc, table("One service, named by its table.", map[string]*Schema{
		"name":         str("The service's name; when given it must equal the table name.", example("sshd")),
		"type":         str("dinit's service type: process, bgprocess, scripted, internal or triggered.", def("process"), example("scripted")),
		"command":      str("The command line that starts the service, beginning with the program's absolute path (dinit does not search $PATH). Required for process, bgprocess and scripted services.", example("/usr/sbin/sshd -D")),
		"stop_command": str("The command that stops a scripted service, with an absolute program path.", example("/usr/sbin/nginx -s stop")),
		"depends":      strList("Services that must start first; if one stops, this one stops too.", example([]any{"network"})),
		"waits_for":    strList("Services started before this one, which does not stop with them.", example([]any{"network"})),
		"start_timeout": integer("Seconds dinit waits for the service to start; 0 for no limit.",
			computed("dinit's own (60 seconds)"), example(int64(30))),
		"stop_timeout": integer("Seconds dinit waits for the service to stop; 0 for no limit.",
			computed("dinit's own (10 seconds)"), example(int64(5))),
		"working_directory": str("The absolute directory the command runs in.", example("/var/lib/app")),
		"log_file":          str("The absolute file the service's output is appended to.", example("/var/log/app.log")),
		"restart":           strOrBool("Whether dinit restarts the service when it stops: true, false or \"on-failure\".", computed("dinit's own (true)"), example("on-failure")),
		"user":              user,
		"enable":            boolean("Whether the service starts at boot; a disabled service is still installed and can be started by hand.", def(true), example(false)),
		"env":               strMap("Environment variables of the service, written to an environment file that restarts it when it changes.", example(map[string]any{"RUST_LOG": "info"})),
		"description":       str("A line of text written as a comment at the top of the service file.", def(""), example("OpenSSH daemon")),
		"pid_file":          str("The absolute file a bgprocess daemon writes its pid to (required for bgprocess).", example("/run/app.pid")),
		"restart_triggers":  strList("Files nexis makes (under /etc, [config_files], users' files) whose change restarts the service on switch.", example([]any{"/etc/hostname"})),
		"ports": intList("TCP ports the service listens on, opened in the firewall unless open_firewall is false.",
			computed("none; for sshd the port its command names (-p, -oPort=), or 22"), example([]any{int64(8080)})),
		"open_firewall": boolean("Whether the service's ports are opened in the firewall, as NixOS's openFirewall; a firewall that would drop sshd's port is refused.", def(true), example(false)),
	}))
}

// fixedOutput is what reads a fetch's URL and name: a fixed-output path
// is named by its content's hash alone.
const fixedOutput = "the fetch: a fixed-output tarball is named by its hash alone"

// ConfigSchema is the shape of a system config: the original README's
// example, made valid TOML, plus the keys users of NixOS expect.
var ConfigSchema = table("A NexisOS system configuration.", map[string]*Schema{
	"system": table("The machine itself: its name, clock, release and kernel.", map[string]*Schema{
		"hostname": str("The machine's host name (RFC 1123: letters, digits, - and dots), written to /etc/hostname and /etc/hosts.", def("nexis"), example("workstation")),
		"timezone": str("An IANA time zone; activation links /etc/localtime to its zoneinfo file.", def("UTC"), example("Europe/Berlin")),
		"version":  str("The release written to /etc/os-release (letters, digits and . _ + - ~).", def(""), example("24.05")),
		"kernel":   str("The kernel to build, as linux-<version>; unset for a machine whose kernel is managed elsewhere (a container).", example("linux-6.9.2")),
		"kernel_source": str("URL of the kernel source tarball.", computed("https://cdn.kernel.org/pub/linux/kernel/v<major>.x/linux-<version>.tar.xz"),
			example("https://mirror.example.org/linux-6.9.2.tar.xz")),
		"kernel_hash":   str("Hash of the kernel tarball, \"sha256:<hex>\" or \"blake3:<hex>\" (required with kernel).", example("sha256:0000000000000000000000000000000000000000000000000000000000000000")),
		"kernel_config": str("The kernel's .config, a file relative to the config file that declares it (required with kernel).", example("configs/kernel.config")),
		"kernel_params": strList("Kernel command-line parameters, one per entry, written to the boot entries (needs kernel).", example([]any{"quiet"})),
		"locale": table("Language and console keyboard.", map[string]*Schema{
			"lang":            str("The system locale, written to /etc/locale.conf as LANG.", def("C.UTF-8"), example("en_US.UTF-8")),
			"keyboard_layout": str("The console keymap, written to /etc/vconsole.conf as KEYMAP.", def("us"), example("de-latin1")),
			"extra_locales":   strList("More locales to make available besides lang.", example([]any{"de_DE.UTF-8"})),
		}),
		"firewall": table("The packet filter: inbound traffic is refused unless it belongs to a connection this machine opened, comes from loopback or a trusted interface, or goes to an allowed port.", map[string]*Schema{
			"backend":            str("The tool that loads the rules: nftables, iptables or firewalld.", def("nftables"), example("iptables")),
			"enable":             boolean("Whether the firewall service starts at boot.", def(true), example(false)),
			"allowed_tcp_ports":  intList("TCP ports open to every interface.", example([]any{int64(22)})),
			"allowed_udp_ports":  intList("UDP ports open to every interface.", example([]any{int64(51820)})),
			"trusted_interfaces": strList("Interfaces whose traffic is always accepted.", example([]any{"wg0"})),
			"allow_ping":         boolean("Whether ICMP echo requests are answered.", def(true), example(false)),
			"extra_rules":        strList("Inbound rules added as written, in the backend's own language (nft statements, iptables-restore lines, firewalld rich rules).", example([]any{"ip saddr 10.0.0.0/8 accept"})),
			"log_refused":        boolean("Whether refused packets are logged.", def(false), example(true)),
		}),
		"selinux": table("SELinux; without this table SELinux is left alone.", map[string]*Schema{
			"mode":            str("enforcing, permissive or disabled, written to /etc/selinux/config.", def("permissive"), example("enforcing")),
			"policy_type":     str("The policy name written as SELINUXTYPE.", def("targeted"), example("mls")),
			"immutable_paths": strList("Paths the generated policy module makes read-only to every domain but activation.", computed(`["/etc", "/usr", "/boot"], or [] when mode is "disabled"`), example([]any{"/etc"})),
		}),
	}),
	"users": mapOf("User accounts, one table per user name.", table("One user account.", map[string]*Schema{
		"password_hash":   str("A crypt(3) hash (yescrypt, sha512-crypt...), never a plaintext password; kept in a root-only store file.", example("$6$Xq3vJ8kLmN2pQr5s$3K/6JS09Tq0bKXkzFjJgUDCcYBAjLCwCX7qiq2EBsgLJ2YzHNqdRq3lUgV1qdfae8UVHaY1AQ6byFqGStjt4C.")),
		"shell":           str("The login shell.", computed(`/bin/sh, or /sbin/nologin for a system user`), example("/bin/bash")),
		"home":            str("The home directory.", computed(`/home/<name>, /root for root, /var/empty for a system user`), example("/srv/alice")),
		"uid":             integer("The user id; activation keeps ids stable when unset.", computed("the next free id (system users below 1000)"), example(int64(1001))),
		"gid":             integer("The id of the user's own group, when nexis makes it.", computed("the next free id"), example(int64(1001))),
		"group":           str("The primary group.", computed("a group named like the user; root for root"), example("users")),
		"groups":          strList("Supplementary groups.", example([]any{"wheel"})),
		"authorized_keys": strList("SSH public keys written to ~/.ssh/authorized_keys.", example([]any{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG7e4r9pZ8Jm0n2h6yPq3K1tq0a0Hc9Yw1m0cR4Jx1bB alice@laptop"})),
		"description":     str("The GECOS field.", def(""), example("Alice Liddell")),
		"system":          boolean("A system account: id below 1000, no login shell and no home by default.", def(false), example(true)),
		"create_home":     boolean("Whether activation creates the home directory.", computed("true unless the user is a system user or home is /var/empty"), example(false)),
		"files": mapOf("Files in the user's home, keyed by their path relative to it.", table("One home file: exactly one of content, source or symlink.", map[string]*Schema{
			"content": str("The file's text.", example("set -o vi\n")),
			"symlink": str("Make the path a symbolic link to this target.", example("/etc/profile")),
			"source":  str("A file to copy, relative to the config file that declares it.", example("dotfiles/bashrc")),
			"force":   boolean("Replace a file the user changed or made by hand.", def(false), example(true)),
			"mode":    str("The octal mode.", def("0644"), example("0600")),
			"secret":  boolean("Keep the content in a root-only store file, never a world-readable one.", def(false), example(true)),
		}), computed("none")),
	})),
	"groups": mapOf("Groups, one table per group name.", table("One group.", map[string]*Schema{
		"gid":     integer("The group id.", computed("the next free id"), example(int64(2000))),
		"members": strList("Users that are members besides those naming it in users.<name>.groups.", example([]any{"alice"})),
	})),
	"network": table("The network interface, configured by ifupdown at boot.", map[string]*Schema{
		"interface": str("The interface to configure (required when the table is given).", example("eth0")),
		"dhcp":      boolean("Whether the interface takes its address by DHCP; it must agree with static_ip.", computed("true unless static_ip is set"), example(true)),
		"static_ip": str("A static address with its prefix length.", example("192.168.1.10/24")),
		"gateway":   str("The default gateway of a static address.", example("192.168.1.1")),
		"dns":       strList("DNS servers written to /etc/resolv.conf.", example([]any{"1.1.1.1"})),
	}),
	"packages": arrayOf("Packages to build or fetch; their outputs make the system profile.", table("One package.", map[string]*Schema{
		"name":               str("The package name (required), used by dependencies and -A.", example("ripgrep")),
		"version":            str("The version; \"latest\" is resolved into nexis.lock by `nexis update`.", example("14.1.0")),
		"source":             str("The source: a tarball URL, a git repository URL (ending in .git, or with rev), or a path beside the declaring config file.", example("https://example.org/ripgrep-14.1.0.tar.gz")),
		"hash":               str("Hash of the source, \"sha256:<hex>\" or \"blake3:<hex>\"; a git source's tree hash.", example("sha256:1111111111111111111111111111111111111111111111111111111111111111")),
		"rev":                str("The commit of a git source (40 hex digits; `nexis update` pins latest).", example("0123456789abcdef0123456789abcdef01234567")),
		"build_system":       str("How to build: make, configure, cmake, meson, custom or none.", computed(`make with a source, none without`), example("configure")),
		"build_flags":        strList("Extra arguments to the configure step (configure, cmake, meson).", example([]any{"--disable-nls"})),
		"dependencies":       strList("Names of other [[packages]] this one builds against.", example([]any{"zlib"})),
		"patches":            strList("Patch files applied to the source, relative to the declaring config file.", example([]any{"patches/fix.patch"})),
		"pre_build_script":   str("A script run before the build, relative to the declaring config file.", example("scripts/pre.sh")),
		"post_build_script":  str("A script run after the install, relative to the declaring config file.", example("scripts/post.sh")),
		"build_script":       str("The build script of build_system = \"custom\".", example("scripts/build.sh")),
		"env":                strMap("Environment variables of the build, also set for the package at run time.", example(map[string]any{"CFLAGS": "-O2"})),
		"prebuilt":           str("URL template of a prebuilt archive ({version}, {tag} and {arch} are filled in).", example("https://example.org/rg-{version}-{arch}.tar.gz")),
		"prebuilt_hash":      str("Hash of the prebuilt archive.", example("sha256:2222222222222222222222222222222222222222222222222222222222222222")),
		"fallback_to_source": boolean("Build from source when the lock pins no prebuilt archive.", def(false), example(true)),
		"runtime_dirs":       strList("Directories the package needs at run time; absolute ones are made by activation.", example([]any{"/var/lib/app"})),
		"context_file":       str("An SELinux CIL file installed with the package.", example("selinux/app.cil")),
		"module":             str("A .star module whose package(args) makes the derivation instead of the generic builder.", example("pkgs/app.star")),
		"args":               mapOf("Keyword arguments passed to module's package function.", &Schema{Kind: KindAny}, example(map[string]any{"features": []any{"pcre2"}})),
		"timeout":            integer("Seconds the build may run; 0 for no limit.", def(int64(0)), example(int64(3600)), readBy("the builder: a limit, not part of the package's identity")),
		"tools":              strList("stdenv tool sets the build needs beyond the base (kernel, ...).", example([]any{"kernel"})),
		"make_flags":         strList("Arguments to every make call (make and configure builds).", example([]any{"PREFIX=$out"})),
		"build_targets":      strList("Targets of the build's make call.", example([]any{"all"})),
		"install_flags":      strList("Arguments to the install's make call only.", example([]any{"DESTDIR="})),
		"install_targets":    strList("Targets of the install's make call.", computed(`["install"]`), example([]any{"install-strip"})),
		"source_subdir":      str("The directory below the source's top where the build runs.", example("src")),
	})),
	"config_files": mapOf("Files placed anywhere on the system, one table per name.", table("One file: a template (source, with variables) or content.", map[string]*Schema{
		"path":      str("The absolute path of the file (required).", example("/etc/app/app.conf")),
		"source":    str("A Go text/template file, relative to the declaring config file.", example("templates/app.conf.tmpl")),
		"content":   str("The file's text.", example("key = value\n")),
		"owner":     str("The owning user.", def("root"), example("www")),
		"group":     str("The owning group.", computed("the owner's primary group (root for root)"), example("www")),
		"mode":      str("The octal mode.", def("0644"), example("0640")),
		"variables": mapOf("Values the template reads as {{.name}}.", &Schema{Kind: KindAny}, example(map[string]any{"port": int64(8080)})),
		"secret":    boolean("Keep the content in a root-only store file.", def(false), example(true)),
	})),
	"dinit_services": serviceSchema("System services run by dinit, one table per service name.",
		str("The user the service runs as; it must be declared in [users].", computed("root"), example("www"))),
	"nexis": table("nexis itself: services run as a user, environment, generations, caches and builds.", map[string]*Schema{
		"dinit": serviceSchema("Services run as a user, by the system's dinit.",
			str("The user the service runs as (required); it must be declared in [users].", example("www"))),
		"environment": strMap("Variables of login shells, written to /etc/profile.d/nexis-environment.sh; PATH is extended, never replaced.", example(map[string]any{"EDITOR": "vim"})),
		"generations": table("How many generations are kept.", map[string]*Schema{
			"keep_last":    integer("Generations kept besides the pinned ones.", def(int64(10)), example(int64(5))),
			"auto_cleanup": boolean("Prune older generations after a switch.", def(false), example(true)),
			"pinned":       intList("Generations never pruned.", example([]any{int64(1)})),
		}),
		"substituters": table("Binary caches builds may take outputs from.", map[string]*Schema{
			"urls":         strList("Cache URLs (file://, http(s)://, ssh://, s3://), tried in order.", example([]any{"https://cache.example.org"}), readBy("lang.Config.Substituters")),
			"trusted_keys": strList("Public keys whose signatures are accepted, besides <root>/etc/nexis/trusted-keys.", example([]any{"cache.example.org-1:AAAA"}), readBy("lang.Config.Substituters")),
		}),
		"sandbox_paths": strList("Host directories builds see; the choice enters every identity, and such outputs are never shared.", example([]any{"/opt/toolchain"})),
		"stdenv": table("The build toolchain every derivation uses, a fixed-output tarball.", map[string]*Schema{
			"version": str("The stdenv's version.", example("2024.02")),
			"name":    str("The store name of the tarball.", computed("stdenv-<version>"), example("toolchain"), readBy(fixedOutput)),
			"system":  str("The system the stdenv runs on; an evaluation for another target refuses it.", computed("the evaluation's target"), example("x86_64-linux")),
			"url":     str("URL of the toolchain tarball.", example("https://example.org/stdenv.tar.xz"), readBy(fixedOutput)),
			"sha256":  str("Hash of the tarball (hex).", example("3333333333333333333333333333333333333333333333333333333333333333")),
			"tools": mapOf("Extra tool sets (kernel, ...) packages ask for with tools.", table("One tool set.", map[string]*Schema{
				"name":   str("The store name of its tarball.", computed("stdenv-<tool>-<version>"), example("kernel-tools"), readBy(fixedOutput)),
				"url":    str("URL of its tarball.", example("https://example.org/kernel-tools.tar.xz"), readBy(fixedOutput)),
				"sha256": str("Hash of the tarball (hex).", example("4444444444444444444444444444444444444444444444444444444444444444")),
			})),
		}),
		"builders": mapOf("Machines builds may run on, one table per name.", table("One build machine.", map[string]*Schema{
			"url":            str("ssh://user@host of the machine.", example("ssh://nexis@builder"), readBy("lang.Config.Builders")),
			"systems":        strList("Systems it builds for (required).", example([]any{"aarch64-linux"}), readBy("lang.Config.Builders")),
			"max_jobs":       integer("Builds it runs at once, 1 to 65536.", def(int64(1)), example(int64(4)), readBy("lang.Config.Builders")),
			"speed_factor":   integer("Preference among machines, 1 to 65536; higher is chosen first.", def(int64(1)), example(int64(2)), readBy("lang.Config.Builders")),
			"features":       strList("Features it supports (kvm, big-parallel...).", example([]any{"kvm"}), readBy("lang.Config.Builders")),
			"ssh_key":        str("The private key nexis logs in with.", example("/etc/nexis/builder_key"), readBy("lang.Config.Builders")),
			"host_key":       str("The machine's SSH host key, checked on connect.", example("ssh-ed25519 AAAA"), readBy("lang.Config.Builders")),
			"public_key":     str("The machine's signing key, whose signatures on outputs are accepted.", example("builder-1:AAAA"), readBy("lang.Config.Builders")),
			"remote_program": str("The nexis program on the machine.", computed("the path of the local nexis"), example("/usr/local/bin/nexis"), readBy("lang.Config.Builders")),
		})),
	}),
	"log_rotation": arrayOf("Log files rotated by logrotate, one entry per file or glob.", table("One log file.", map[string]*Schema{
		"path":                 str("The absolute path or glob of the log (required).", example("/var/log/app/*.log")),
		"max_size_mb":          integer("Rotate when the log grows past this many megabytes.", example(int64(100))),
		"max_files":            integer("Rotated files kept.", def(int64(7)), example(int64(14))),
		"compress":             boolean("Compress rotated files.", def(false), example(true)),
		"rotate_interval_days": integer("Rotate daily (1), weekly (7), monthly (30) or yearly (365).", computed("weekly, unless max_size_mb alone is set"), example(int64(30))),
		"copytruncate":         boolean("Copy then truncate the log, for programs that keep it open.", def(false), example(true)),
		"missing_ok":           boolean("Do not complain when the log is missing.", def(true), example(false)),
	})),
	"includes": table("Other TOML files merged into this one before anything reads it.", map[string]*Schema{
		"paths": strList("Files to include, relative to the file that names them; they may include others.", example([]any{"packages/editors.toml"}), readBy("lang.LoadConfig")),
	}),
	"filesystems": arrayOf("File systems mounted at boot, written to /etc/fstab (activation does not mount them on a running machine).", table("One file system, named by exactly one of device, label or uuid.", map[string]*Schema{
		"device":     str("The device (/dev/..., or tmpfs, proc, sysfs, none).", example("/dev/sdb1")),
		"label":      str("The file system's label, written as LABEL=.", example("home")),
		"uuid":       str("The file system's UUID, written as UUID=.", example("3f1c2a7e-5b9d-4e8a-9c1f-2d6b7a8e9f01")),
		"type":       str("The file system type (required).", example("ext4")),
		"options":    strList("Mount options, one per entry.", def([]any{"defaults"}), example([]any{"noatime"})),
		"mountpoint": str("The absolute directory it is mounted on (required), once per config.", example("/home")),
	})),
	"hooks": table("Scripts run around a switch: a file relative to the declaring config, or inline shell.", map[string]*Schema{
		"pre_switch":  strList("Run before the new generation is made current; a failure stops the switch.", example([]any{"./scripts/backup.sh"})),
		"post_switch": strList("Run after the switch.", example([]any{"echo switched"})),
	}),
})

// Check validates data against s, returning the first problem.
func (c *Config) Check(s *Schema) error {
	// Nearly every config is valid: it is walked once without naming
	// anything, and only an invalid one again to say where it fails.
	if valid(s, c.data) {
		return nil
	}
	return c.check(s, c.data, nil)
}

// valid says whether v conforms to s.
func valid(s *Schema, v any) bool {
	switch s.Kind {
	case KindAny:
		return true
	case KindString:
		_, ok := v.(string)
		return ok
	case KindInt:
		_, ok := v.(int64)
		return ok
	case KindBool:
		_, ok := v.(bool)
		return ok
	case KindStringOrBool:
		switch v.(type) {
		case string, bool:
			return true
		}
		return false
	case KindTable:
		t, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, e := range t {
			sub, ok := s.Fields[k]
			if !ok || !valid(sub, e) {
				return false
			}
		}
	case KindMap:
		t, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for _, e := range t {
			if !valid(s.Elem, e) {
				return false
			}
		}
	case KindArray:
		a, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range a {
			if !valid(s.Elem, e) {
				return false
			}
		}
	}
	return true
}

func (c *Config) check(s *Schema, v any, path []string) error {
	kp := KeyPath(path...)
	want := func(what string) error {
		return c.Errorf(kp, "got %s, want %s", describe(v), what)
	}
	switch s.Kind {
	case KindAny:
		return nil
	case KindString:
		if _, ok := v.(string); !ok {
			return want("a string")
		}
	case KindInt:
		if _, ok := v.(int64); !ok {
			return want("an integer")
		}
	case KindBool:
		if _, ok := v.(bool); !ok {
			return want("true or false")
		}
	case KindStringOrBool:
		switch v.(type) {
		case string, bool:
		default:
			return want("true, false or a string")
		}
	case KindTable:
		t, ok := v.(map[string]any)
		if !ok {
			return want("a table")
		}
		for _, k := range sortedKeys(t) {
			sub, ok := s.Fields[k]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k)
				if m := didYouMean(k, s.Fields); m != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", m)
				} else {
					msg += " (allowed: " + strings.Join(sortedKeys(s.Fields), ", ") + ")"
				}
				return c.Errorf(KeyPath(append(path, k)...), "%s", msg)
			}
			if err := c.check(sub, t[k], append(path, k)); err != nil {
				return err
			}
		}
	case KindMap:
		t, ok := v.(map[string]any)
		if !ok {
			return want("a table")
		}
		for _, k := range sortedKeys(t) {
			if err := c.check(s.Elem, t[k], append(path, k)); err != nil {
				return err
			}
		}
	case KindArray:
		a, ok := v.([]any)
		if !ok {
			return want("an array")
		}
		for i, e := range a {
			if err := c.check(s.Elem, e, append(path, index(i))); err != nil {
				return err
			}
		}
	}
	return nil
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the number %g", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case map[string]any:
		return "a table"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// didYouMean returns the allowed key closest to k, if close enough.
func didYouMean(k string, allowed map[string]*Schema) string {
	keys := make([]string, 0, len(allowed))
	for a := range allowed {
		keys = append(keys, a)
	}
	return suggest.Closest(k, keys)
}
