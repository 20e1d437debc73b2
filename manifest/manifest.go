// Package manifest defines manifest.json, the part of a system output that
// tells activation what a generation needs beyond its etc/ and sw/ trees:
// accounts, files with owners and modes, services, hooks, the kernel, the
// retention policy.
//
// # Where it comes from
//
// The stdlib module system.star builds it during evaluation and passes its
// JSON text to the system derivation (builder "builtin:system") as env
// "manifest"; realise writes that text unchanged to $out/manifest.json.
// Activation reads it with Decode. The package knows nothing of Starlark
// or of the store: it is the format, shared by both ends.
//
// # A system output
//
//	$out/etc/            the managed /etc tree: one entry per generated file,
//	                     a symlink into the store or a copy with a mode
//	$out/sw/             the package profile: bin/, sbin/, lib/, share/, ...
//	                     of every package, merged as symlinks
//	$out/kernel          (when [system] names a kernel) → the kernel output
//	$out/manifest.json   this format
//
// # Secrets
//
// manifest.json and etc/ are world-readable. Nothing secret is ever in
// them: a password hash, a file marked secret = true, or any file whose
// mode denies others read is stored as a root-only (0400) store file, and
// the manifest names that file's store path (User.PasswordHashFile,
// File.Source with File.Secret set). Activation copies such files into
// place with their owner and mode; it never links to them.
//
// # Format, version 1
//
// One JSON object; every key below is always present (lists may be
// empty, "kernel" and "network" may be null). Store paths are absolute
// paths in the logical store directory of the evaluation. "origin" fields
// name the config key a thing comes from, for activation's messages.
//
//	{
//	  "version": 1,
//	  "system": {"hostname": "myhost", "version": "0.1.0", "timezone": "UTC",
//	             "localtime": "/usr/share/zoneinfo/UTC"},
//	  "kernel": {"name": "linux", "version": "6.9.2", "path": "<store path>",
//	             "image": "kernel", "params": ["quiet"]} | null,
//	  "locale": {"lang": "en_US.UTF-8", "keyboard_layout": "us", "locales": [...]},
//	  "etc": [{"path": "hostname", "source": "<store path>", "mode": "0555" (optional),
//	             "origin": "system.hostname"}],
//	  "users": [{"name": "alice", "uid": 1000 (optional: activation allocates
//	             and keeps it stable), "group": "alice", "groups": ["wheel"],
//	             "home": "/home/alice", "shell": "/bin/sh", "description": "",
//	             "system": false, "create_home": true,
//	             "password_hash_file": "<store path, 0400>" | "password_lock": "!"}],
//	  "groups": [{"name": "alice", "gid": 1000 (optional), "members": [], "system": false}],
//	             (members are those of [groups.NAME]; a user's "groups" add it too)
//	  "files": [{"path": "/home/alice/.gitconfig", "type": "file" | "symlink" | "directory",
//	             "source": "<store path>" (file), "target": "/x" (symlink),
//	             "owner": "alice", "group": "alice", "mode": "0644" (file, directory),
//	             "force": true (replace what is there), "secret": true (source is root-only),
//	             "origin": "users.alice.files.\".gitconfig\""}],
//	  "services": [{"name": "sshd", "type": "process", "file": "dinit.d/sshd",
//	             "source": "<store path>", "enable": true, "depends": ["network"],
//	             "waits_for": [], "user": "alice" (optional), "origin": "dinit_services.sshd"}],
//	  "boot": ["firewall", "network", "sshd"],
//	  "hooks": {"pre_switch": [{"name": "hook-pre-switch-0", "source": "<store path>",
//	             "file": "./scripts/x.sh" (absent for inline), "origin": "hooks.pre_switch[0]"}],
//	            "post_switch": [...]},
//	  "generations": {"keep_last": 10, "auto_cleanup": true, "pinned": [3]},
//	  "firewall": {"enable": true, "backend": "nftables", "ruleset": "<store path>",
//	             "ruleset_v6": "<store path>" (iptables), "rich_rules": [...] (firewalld)},
//	  "selinux": {"mode": "enforcing", "policy_type": "targeted",
//	             "immutable_paths": ["/etc", "/usr", "/boot"],
//	             "modules": [{"name": "immutable_paths", "format": "cil",
//	                          "cil": "<store path>", "origin": "system.selinux.immutable_paths"},
//	                         {"name": "vim", "format": "cil", "cil": "<store path>", "origin": ...}]},
//	  "network": {"interface": "eth0", "dhcp": true, "address": "192.168.1.100/24",
//	             "gateway": "192.168.1.1", "dns": ["9.9.9.9"]} | null,
//	  "environment": {"EDITOR": "vim"},
//	  "log_rotation": ["/var/log/sshd.log"],
//	  "packages": [{"name": "vim", "version": "9.1.0", "path": "<store path>",
//	                "runtime_dirs": ["/var/log/vim", "$XDG_RUNTIME_DIR/vim"]}],
//	  "filesystems": [{"spec": "LABEL=home", "mountpoint": "/home", "type": "ext4",
//	                   "options": ["defaults"]}]      (only when declared)
//	}
//
// # What activation does with it
//
//   - etc: the index of the generation's etc/ tree, every entry root-owned
//     and world-readable; /etc/<path> is made to point through
//     /etc/static into the generation, or is copied when mode is set.
//     An entry of the previous generation that is missing here is removed.
//   - users and groups: merged into /etc/passwd, /etc/group and /etc/shadow;
//     an entry without uid/gid gets a free id the first time and keeps it in
//     later generations; the shadow field is the content of
//     password_hash_file, or password_lock.
//   - files: placed in order after users exist; a directory is created with
//     its mode; a file is copied from source (never linked: it needs its
//     owner and mode); a symlink points at target. An existing different
//     file is replaced only with force, else activation reports it.
//   - services: etc/dinit.d holds the files; boot is the enablement set (the
//     generated dinit.d/boot service waits for each); activation restarts a
//     running service whose source changed.
//   - hooks: each source is run with /bin/sh -e: pre_switch in order before
//     the generation becomes current (a failure aborts the switch),
//     post_switch in order after.
//   - system.localtime: /etc/localtime becomes a symlink to it.
//   - selinux: every module was compiled with secilc when the system was
//     built (realise refuses a module secilc rejects, naming its key).
//     With mode other than disabled, on a kernel with SELinux enabled,
//     activation installs the modules that changed since the last
//     activation with semodule (-p ROOT for a mounted root), removes the
//     ones dropped, and relabels immutable_paths (restorecon; setfiles -r
//     for a mounted root). On a kernel without SELinux it says so once
//     per activation, installs nothing, and keeps the modules pending
//     for the next activation on a kernel with SELinux.
//   - packages: an absolute runtime_dirs entry is created (root, 0755) if
//     missing; one under $XDG_RUNTIME_DIR or $HOME is created in each
//     user's session by the profile.
//   - filesystems: etc/fstab holds them, which boot mounts. An activation
//     of the running system (not --root) also mounts each one that is
//     not mounted yet when its mount point is absent (it is made) or an
//     empty directory, never over anything, and never unmounts or
//     remounts; each gets a line saying what was mounted or why not.
//   - generations: the last keep_last generations and every pinned one keep
//     their roots; with auto_cleanup the others are pruned after a switch.
package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// Version is the format version this package reads and writes.
const Version = 1

// Manifest is manifest.json.
type Manifest struct {
	Version     int               `json:"version"`
	System      System            `json:"system"`
	Kernel      *Kernel           `json:"kernel"`
	Locale      Locale            `json:"locale"`
	Etc         []EtcEntry        `json:"etc"`
	Users       []User            `json:"users"`
	Groups      []Group           `json:"groups"`
	Files       []File            `json:"files"`
	Services    []Service         `json:"services"`
	Boot        []string          `json:"boot"`
	Hooks       Hooks             `json:"hooks"`
	Generations Generations       `json:"generations"`
	Firewall    Firewall          `json:"firewall"`
	SELinux     SELinux           `json:"selinux"`
	Network     *Network          `json:"network"`
	Environment map[string]string `json:"environment"`
	LogRotation []string          `json:"log_rotation"`
	Packages    []Package         `json:"packages"`
	Filesystems []Filesystem      `json:"filesystems,omitempty"`
}

// Filesystem is one [[filesystems]] entry, a line of the generated
// /etc/fstab. Boot mounts it; an activation of the running system mounts
// it too when it is not mounted yet and that hides nothing.
type Filesystem struct {
	Spec       string   `json:"spec"` // /dev/sdb1, LABEL=home, UUID=..., tmpfs
	Mountpoint string   `json:"mountpoint"`
	Type       string   `json:"type"`
	Options    []string `json:"options"`
}

// System is the identity of the machine.
type System struct {
	Hostname  string `json:"hostname"`
	Version   string `json:"version"`
	Timezone  string `json:"timezone"`
	Localtime string `json:"localtime"` // target of /etc/localtime
}

// Kernel is the kernel the bootloader entries of the generation boot.
type Kernel struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Path    string   `json:"path"`  // store path of the kernel output
	Image   string   `json:"image"` // the image inside Path
	Params  []string `json:"params"`
}

// Locale is [system.locale].
type Locale struct {
	Lang           string   `json:"lang"`
	KeyboardLayout string   `json:"keyboard_layout"`
	Locales        []string `json:"locales"`
}

// EtcEntry is one file of the generation's etc/ tree; Path is relative
// to /etc.
type EtcEntry struct {
	Path   string `json:"path"`
	Source string `json:"source"`
	Mode   string `json:"mode,omitempty"`
	Origin string `json:"origin"`
}

// User is one account. Exactly one of PasswordHashFile and PasswordLock
// is set.
type User struct {
	Name             string   `json:"name"`
	UID              *int64   `json:"uid,omitempty"`
	Group            string   `json:"group"`
	Groups           []string `json:"groups"`
	Home             string   `json:"home"`
	Shell            string   `json:"shell"`
	Description      string   `json:"description"`
	System           bool     `json:"system"`
	CreateHome       bool     `json:"create_home"`
	PasswordHashFile string   `json:"password_hash_file,omitempty"` // root-only store file
	PasswordLock     string   `json:"password_lock,omitempty"`      // "!" or "*"
}

// Group is one group.
type Group struct {
	Name    string   `json:"name"`
	GID     *int64   `json:"gid,omitempty"`
	Members []string `json:"members"`
	System  bool     `json:"system"`
}

// File types.
const (
	TypeFile      = "file"
	TypeSymlink   = "symlink"
	TypeDirectory = "directory"
)

// File is a file activation places itself, outside etc/ or needing an
// owner or a private mode.
type File struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Source string `json:"source,omitempty"`
	Target string `json:"target,omitempty"`
	Owner  string `json:"owner"`
	Group  string `json:"group"`
	Mode   string `json:"mode,omitempty"`
	Force  bool   `json:"force,omitempty"`
	Secret bool   `json:"secret,omitempty"`
	Origin string `json:"origin"`
}

// Service is one dinit service; its file is etc/<File> of the generation.
type Service struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	File     string   `json:"file"`
	Source   string   `json:"source"`
	Enable   bool     `json:"enable"`
	Depends  []string `json:"depends"`
	WaitsFor []string `json:"waits_for"`
	User     string   `json:"user,omitempty"`
	Origin   string   `json:"origin"`
}

// Hooks are the scripts run around a switch, in order.
type Hooks struct {
	PreSwitch  []Hook `json:"pre_switch"`
	PostSwitch []Hook `json:"post_switch"`
}

// Hook is one script; File is how the config named it, empty for inline.
type Hook struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	File   string `json:"file,omitempty"`
	Origin string `json:"origin"`
}

// Generations is the retention policy.
type Generations struct {
	KeepLast    int64   `json:"keep_last"`
	AutoCleanup bool    `json:"auto_cleanup"`
	Pinned      []int64 `json:"pinned"`
}

// Firewall says which backend's ruleset the generation carries.
type Firewall struct {
	Enable    bool     `json:"enable"`
	Backend   string   `json:"backend"`
	Ruleset   string   `json:"ruleset,omitempty"`
	RulesetV6 string   `json:"ruleset_v6,omitempty"`
	RichRules []string `json:"rich_rules,omitempty"`
}

// SELinux is [system.selinux] and the policy modules to install.
type SELinux struct {
	Mode           string   `json:"mode"`
	PolicyType     string   `json:"policy_type"`
	ImmutablePaths []string `json:"immutable_paths"`
	Modules        []Module `json:"modules"`
}

// Module formats.
const (
	// FormatRefpolicy (Te and Fc) is what generations of an older nexis
	// hold for immutable_paths; it is read, never installed: switching
	// to a system built by this nexis replaces it with CIL.
	FormatRefpolicy = "refpolicy"
	FormatCIL       = "cil" // CIL, compiled at build time, installed as it is
)

// Module is one SELinux policy module.
type Module struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Te     string `json:"te,omitempty"`
	Fc     string `json:"fc,omitempty"`
	CIL    string `json:"cil,omitempty"`
	Origin string `json:"origin"`
}

// Network is [network].
type Network struct {
	Interface string   `json:"interface"`
	DHCP      bool     `json:"dhcp"`
	Address   string   `json:"address,omitempty"`
	Gateway   string   `json:"gateway,omitempty"`
	DNS       []string `json:"dns"`
}

// Package is one package of the profile.
type Package struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Path        string   `json:"path"`
	RuntimeDirs []string `json:"runtime_dirs"`
}

// Decode reads a manifest strictly: an unknown key, a newer version or
// an inconsistent entry is an error, so activation never half-understands
// a generation.
func Decode(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if probe.Version > Version {
		return nil, fmt.Errorf("manifest.json has format version %d, this nexis reads up to %d: activate it with a newer nexis", probe.Version, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	return &m, nil
}

// Encode writes m as indented JSON.
func (m *Manifest) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// Validate checks what activation relies on: names unique, references
// resolvable, paths absolute, exactly one password form per user, every
// account field something passwd, group and shadow can hold, and no
// entry claiming what nexis or the system owns (guard.go).
func (m *Manifest) Validate() error {
	if m.Version < 1 {
		return fmt.Errorf("version %d: want 1 or more", m.Version)
	}
	if m.System.Hostname == "" {
		return fmt.Errorf("system.hostname is empty")
	}
	etc := map[string]bool{}
	for _, e := range m.Etc {
		if e.Path == "" || path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path || strings.HasPrefix(e.Path, "../") || e.Path == ".." {
			return fmt.Errorf("etc entry %q: want a clean path relative to /etc", e.Path)
		}
		if etc[e.Path] {
			return fmt.Errorf("etc entry %q is listed twice", e.Path)
		}
		etc[e.Path] = true
		if e.Source == "" || (e.Mode != "" && !validMode(e.Mode)) {
			return fmt.Errorf("etc entry %q: want a source and an optional 4-digit octal mode", e.Path)
		}
	}
	groups := map[string]bool{}
	for _, g := range m.Groups {
		if groups[g.Name] {
			return fmt.Errorf("group %q is listed twice", g.Name)
		}
		groups[g.Name] = true
	}
	users := map[string]bool{}
	for _, u := range m.Users {
		if users[u.Name] {
			return fmt.Errorf("user %q is listed twice", u.Name)
		}
		users[u.Name] = true
		if (u.PasswordHashFile == "") == (u.PasswordLock == "") {
			return fmt.Errorf("user %q: want exactly one of password_hash_file and password_lock", u.Name)
		}
		if u.PasswordLock != "" && u.PasswordLock != "!" && u.PasswordLock != "*" {
			return fmt.Errorf("user %q: password_lock %q: want \"!\" or \"*\"", u.Name, u.PasswordLock)
		}
		if !path.IsAbs(u.Home) || !path.IsAbs(u.Shell) {
			return fmt.Errorf("user %q: home and shell must be absolute", u.Name)
		}
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path {
			return fmt.Errorf("file %q: want a clean absolute path", f.Path)
		}
		if seen[f.Path] {
			return fmt.Errorf("file %q is listed twice", f.Path)
		}
		seen[f.Path] = true
		switch f.Type {
		case TypeFile:
			if f.Source == "" || f.Mode == "" {
				return fmt.Errorf("file %q: a file needs source and mode", f.Path)
			}
		case TypeSymlink:
			if f.Target == "" {
				return fmt.Errorf("file %q: a symlink needs target", f.Path)
			}
		case TypeDirectory:
			if f.Mode == "" {
				return fmt.Errorf("file %q: a directory needs mode", f.Path)
			}
		default:
			return fmt.Errorf("file %q: type %q: want file, symlink or directory", f.Path, f.Type)
		}
		if f.Mode != "" && !validMode(f.Mode) {
			return fmt.Errorf("file %q: mode %q: want 4 octal digits", f.Path, f.Mode)
		}
	}
	services := map[string]bool{}
	for _, s := range m.Services {
		if services[s.Name] {
			return fmt.Errorf("service %q is listed twice", s.Name)
		}
		services[s.Name] = true
	}
	for _, s := range m.Services {
		for _, d := range append(append([]string(nil), s.Depends...), s.WaitsFor...) {
			if !services[d] {
				return fmt.Errorf("service %q depends on unknown service %q", s.Name, d)
			}
		}
	}
	for _, b := range m.Boot {
		if !services[b] {
			return fmt.Errorf("boot names unknown service %q", b)
		}
	}
	if m.Generations.KeepLast < 1 {
		return fmt.Errorf("generations.keep_last %d: want 1 or more", m.Generations.KeepLast)
	}
	switch m.SELinux.Mode {
	case "enforcing", "permissive", "disabled":
	default:
		return fmt.Errorf("selinux.mode %q: want enforcing, permissive or disabled", m.SELinux.Mode)
	}
	for _, mod := range m.SELinux.Modules {
		switch {
		case mod.Format == FormatRefpolicy && mod.Te != "":
		case mod.Format == FormatCIL && mod.CIL != "":
		default:
			return fmt.Errorf("selinux module %q: format %q without its files", mod.Name, mod.Format)
		}
	}
	mounts := map[string]bool{}
	for _, f := range m.Filesystems {
		if !path.IsAbs(f.Mountpoint) || path.Clean(f.Mountpoint) != f.Mountpoint {
			return fmt.Errorf("filesystem %q: want a clean absolute mount point", f.Mountpoint)
		}
		if mounts[f.Mountpoint] {
			return fmt.Errorf("filesystem %q is listed twice", f.Mountpoint)
		}
		mounts[f.Mountpoint] = true
		// They become mount(8)'s arguments: none may read as an option.
		if f.Spec == "" || f.Type == "" || strings.HasPrefix(f.Spec, "-") || strings.HasPrefix(f.Type, "-") {
			return fmt.Errorf("filesystem %q: want a device, label or uuid and a type", f.Mountpoint)
		}
		for _, o := range f.Options {
			if o == "" || strings.ContainsAny(o, ", \t\n") {
				return fmt.Errorf("filesystem %q: option %q: want one option without commas or white space", f.Mountpoint, o)
			}
		}
	}
	if err := m.checkFields(); err != nil {
		return err
	}
	return m.checkClaims(nil)
}

func validMode(s string) bool {
	return len(s) == 4 && strings.Trim(s, "01234567") == ""
}
