package manifest

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// What a generation may claim, and what the files activation writes can
// hold. The stdlib makes the same checks at evaluation, naming the config
// key (stdlib/lib.star: OWNED_PATHS, KERNEL_TREES, SYSTEM_DIRS,
// HOME_PREFIXES; a test keeps the lists equal); Validate makes them again
// because a manifest can be written by hand, and activation once more
// with the target's own state and store directories.

// Owned are the paths nexis writes itself, with what they are: a config
// entry at or below one would overwrite them (and deleting the entry in
// a later generation would delete them).
var Owned = map[string]string{
	"/etc/passwd":             "the account database nexis writes from [users] and [groups]",
	"/etc/group":              "the account database nexis writes from [users] and [groups]",
	"/etc/shadow":             "the account database nexis writes from [users] and [groups]",
	"/etc/gshadow":            "an account database of the system",
	"/etc/static":             "nexis's link to the generation's /etc tree",
	"/etc/nexis/trusted-keys": "the keys this machine trusts, kept by nexis key",
	"/run/current-system":     "nexis's link to the active system",
	"/boot/grub/grub.cfg":     "the boot menu nexis writes",
	"/boot/nexis":             "the kernels nexis copies for the boot menu",
	"/var/lib/nexis":          "nexis's state directory",
	"/store":                  "the store",
}

// KernelTrees hold the kernel's views, not files: nothing is placed in
// them.
var KernelTrees = []string{"/dev", "/proc", "/sys"}

// SystemDirs are directories a system needs as they are: an entry may
// place files below them but not replace, own or chmod the directory.
var SystemDirs = []string{
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64",
	"/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys",
	"/tmp", "/usr", "/usr/bin", "/usr/lib", "/usr/lib64", "/usr/libexec",
	"/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/cache", "/var/empty",
	"/var/lib", "/var/lock", "/var/log", "/var/run", "/var/spool", "/var/tmp",
}

// HomePrefixes are the directories below which nexis creates homes and
// places a user's files; root's home is /root.
var HomePrefixes = []string{"/home", "/srv", "/var/lib"}

// under reports whether p is dir or below it (both clean and absolute).
func under(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Unclaimable says why a config entry may not place anything at the
// absolute path p ("" when it may). owned are more trees nexis writes
// (a target's state and store directories when they are not the
// defaults).
func Unclaimable(p string, owned ...string) string {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fmt.Sprintf("%q is not a clean absolute path", p)
	}
	for _, o := range keysOf(Owned) {
		if under(p, o) {
			return fmt.Sprintf("%s is %s: no config entry may replace it", p, describe(p, o))
		}
	}
	for _, o := range owned {
		if under(p, o) {
			return fmt.Sprintf("%s is %s: no config entry may replace it", p, describe(p, o))
		}
	}
	for _, k := range KernelTrees {
		if under(p, k) {
			return fmt.Sprintf("%s is under %s, which the kernel provides: nothing is placed there", p, k)
		}
	}
	for _, d := range SystemDirs {
		if p == d {
			return fmt.Sprintf("%s is a directory the system needs as it is: name a file or directory below it", p)
		}
	}
	return ""
}

func describe(p, o string) string {
	what := Owned[o]
	if what == "" {
		what = "a directory nexis keeps"
	}
	if p == o {
		return what
	}
	return "inside " + o + ", " + what
}

func keysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// HomeProblem says why home may not be the home of user name ("" when
// it may). When nexis creates the home or places files in it (writes),
// it must be below one of HomePrefixes (and claimable), or /root for
// root: a home is chowned to its user. A home nexis never writes to is
// only a field of /etc/passwd.
func HomeProblem(name, home string, writes bool, owned ...string) string {
	if why := FieldProblem(home); why != "" {
		return why
	}
	if !path.IsAbs(home) || path.Clean(home) != home {
		return fmt.Sprintf("%q is not a clean absolute path", home)
	}
	if !writes {
		return ""
	}
	if home == "/root" {
		if name == "root" {
			return ""
		}
		return "/root is root's home: another user's home there would be chowned to that user"
	}
	for _, pre := range HomePrefixes {
		if strings.HasPrefix(home, pre+"/") {
			return Unclaimable(home, owned...)
		}
	}
	return fmt.Sprintf("%s is not a place for a home nexis creates and chowns to %s: use a directory below %s (or /root for root), or set create_home = false and place no files there",
		home, name, strings.Join(HomePrefixes, "/, ")+"/")
}

// FieldProblem says why s cannot be a field of /etc/passwd, /etc/group
// or /etc/shadow: a ':' would split it into two fields and a newline
// start another entry; other control characters confuse the tools that
// read them.
func FieldProblem(s string) string {
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Sprintf("%q contains a control character (newline, tab...), which the account files cannot hold", s)
		}
	}
	if strings.Contains(s, ":") {
		return fmt.Sprintf("%q contains ':', which separates the fields of /etc/passwd", s)
	}
	return ""
}

// NameProblem says why s is not an account name as shadow-utils accepts
// it by default (the stdlib's check_account_name).
func NameProblem(s string) string {
	if s == "" || len(s) > 32 {
		return fmt.Sprintf("%q: a name has 1 to 32 characters", s)
	}
	for i, c := range s {
		lower := c >= 'a' && c <= 'z'
		if !lower && c != '_' && (i == 0 || (c < '0' || c > '9') && c != '-') {
			return fmt.Sprintf("%q: a name is lowercase letters, digits, _ and -, starting with a letter or _", s)
		}
	}
	return ""
}

// EnvNameProblem says why s is not an environment variable name.
func EnvNameProblem(s string) string {
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return fmt.Sprintf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", s)
		}
	}
	if s == "" {
		return "an environment variable name is empty"
	}
	return ""
}

// LogPathProblem says why p cannot be a [[log_rotation]] path. logrotate
// splits its file list at whitespace and reads quotes, braces and '#'
// as syntax, so none may appear; a glob (* ? [) may name the files of
// one directory but not the directory itself, which must be neither a
// system directory nor one nexis owns (rotating /etc/shadow moves the
// system's passwords aside).
func LogPathProblem(p string, owned ...string) string {
	for _, c := range p {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("\"'{}\\#", c) {
			return fmt.Sprintf("%q: a logrotate path may not contain whitespace, control characters, quotes, braces, '\\' or '#'", p)
		}
	}
	dir, file := path.Split(p)
	dir = path.Clean(dir)
	if strings.ContainsAny(dir, "*?[") {
		return fmt.Sprintf("%q: a glob may name the files of one directory, not the directory (write the directory out)", p)
	}
	if !path.IsAbs(p) || path.Clean(p) != p || file == "" {
		return fmt.Sprintf("%q is not a clean absolute path of a file", p)
	}
	for _, sys := range []string{"/boot", "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"} {
		if under(dir, sys) {
			return fmt.Sprintf("%s is under %s: logrotate renames and recreates the files it rotates, which a system file must not undergo; log to /var/log", p, sys)
		}
	}
	probe := dir + "/" + strings.Map(func(c rune) rune {
		if strings.ContainsRune("*?[]", c) {
			return 'x'
		}
		return c
	}, file)
	if why := Unclaimable(path.Clean(probe), owned...); why != "" {
		return fmt.Sprintf("%s: %s", p, why)
	}
	return ""
}

// checkClaims is the part of Validate that asks what the generation
// touches, with owned trees of the target besides the defaults.
func (m *Manifest) checkClaims(owned []string) error {
	for _, e := range m.Etc {
		if why := Unclaimable("/etc/"+e.Path, owned...); why != "" {
			return fmt.Errorf("etc entry %q (%s): %s", e.Path, e.Origin, why)
		}
	}
	for _, f := range m.Files {
		if why := Unclaimable(f.Path, owned...); why != "" {
			return fmt.Errorf("file %q (%s): %s", f.Path, f.Origin, why)
		}
	}
	for _, u := range m.Users {
		writes := u.CreateHome
		for _, f := range m.Files {
			writes = writes || under(f.Path, u.Home)
		}
		if why := HomeProblem(u.Name, u.Home, writes, owned...); why != "" {
			return fmt.Errorf("user %q: home: %s", u.Name, why)
		}
	}
	for _, pkg := range m.Packages {
		for _, d := range pkg.RuntimeDirs {
			if !path.IsAbs(d) {
				continue
			}
			if why := Unclaimable(d, owned...); why != "" {
				return fmt.Errorf("package %s: runtime directory %s", pkg.Name, why)
			}
		}
	}
	for _, p := range m.LogRotation {
		if why := LogPathProblem(p, owned...); why != "" {
			return fmt.Errorf("log_rotation: %s", why)
		}
	}
	return nil
}

// CheckClaims checks what the generation places against the defaults
// and owned, more trees nexis writes on the target it is activated on
// (its state and store directories).
func (m *Manifest) CheckClaims(owned ...string) error { return m.checkClaims(owned) }

// checkFields checks the values activation writes into files other
// programs parse.
func (m *Manifest) checkFields() error {
	for _, u := range m.Users {
		if why := NameProblem(u.Name); why != "" {
			return fmt.Errorf("user %s", why)
		}
		if why := FieldProblem(u.Shell); why != "" {
			return fmt.Errorf("user %q: shell: %s", u.Name, why)
		}
		if why := FieldProblem(u.Description); why != "" {
			return fmt.Errorf("user %q: description: %s", u.Name, why)
		}
		if why := NameProblem(u.Group); why != "" {
			return fmt.Errorf("user %q: group %s", u.Name, why)
		}
		for _, g := range u.Groups {
			if why := NameProblem(g); why != "" {
				return fmt.Errorf("user %q: group %s", u.Name, why)
			}
		}
	}
	for _, g := range m.Groups {
		if why := NameProblem(g.Name); why != "" {
			return fmt.Errorf("group %s", why)
		}
		for _, mb := range g.Members {
			if why := NameProblem(mb); why != "" {
				return fmt.Errorf("group %q: member %s", g.Name, why)
			}
		}
	}
	for _, n := range keysOf(m.Environment) {
		if why := EnvNameProblem(n); why != "" {
			return fmt.Errorf("environment: %s", why)
		}
		if strings.ContainsAny(m.Environment[n], "\x00\n\r") {
			return fmt.Errorf("environment %s: a value is one line", n)
		}
	}
	return nil
}
