package realise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise/fetch"
	"github.com/nexisos/nexis/realise/unpack"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// fetchURL downloads env url, checks the hash of the downloaded file and
// only then unpacks it (when asked).
func (j *job) fetchURL(ctx context.Context) (map[string]string, error) {
	d := j.d
	u := d.Getenv(builtins.EnvURL)
	if d.Fixed == nil {
		return nil, errors.New("builtin:fetchurl needs a fixed hash")
	}
	from := u
	if f, ok := j.s.opts.LocalFiles[d.Fixed.Algo+":"+d.Fixed.Hash]; ok {
		// A file made here stands in for the download; the hash is
		// checked all the same.
		from = (&url.URL{Scheme: "file", Path: f}).String()
		fmt.Fprintf(j.log, "nexis: fetch %s (from the local file %s)\n", u, f)
	} else {
		fmt.Fprintf(j.log, "nexis: fetch %s\n", u)
	}
	dl := filepath.Join(j.dir, "download")
	got, err := fetch.URL(ctx, from, dl, d.Fixed.Algo)
	if err != nil {
		return nil, err
	}
	if got != d.Fixed.Hash {
		return nil, &fetch.HashMismatchError{URL: u, Algo: d.Fixed.Algo, Want: d.Fixed.Hash, Got: got}
	}
	if !d.Fixed.Unpack {
		return map[string]string{d.Outputs[0]: dl}, nil
	}
	fmt.Fprintf(j.log, "nexis: unpack %s\n", path.Base(u))
	out := filepath.Join(j.dir, "out")
	if err := unpack.File(dl, out); err != nil {
		return nil, err
	}
	return map[string]string{d.Outputs[0]: out}, nil
}

// fetchGit checks out env rev of env url; the fixed hash is the tree hash
// of the checkout without .git.
func (j *job) fetchGit(ctx context.Context) (map[string]string, error) {
	d := j.d
	if d.Fixed == nil || d.Fixed.Algo != "blake3" {
		return nil, errors.New("builtin:fetchgit needs a blake3 tree hash")
	}
	fmt.Fprintf(j.log, "nexis: fetch %s at %s\n", d.Getenv(builtins.EnvURL), d.Getenv(builtins.EnvRev))
	out := filepath.Join(j.dir, "out")
	if err := fetch.Git(ctx, d.Getenv(builtins.EnvURL), d.Getenv(builtins.EnvRev), out); err != nil {
		return nil, err
	}
	h, err := treehash.TreeHash(out)
	if err != nil {
		return nil, err
	}
	if h.Hex() != d.Fixed.Hash {
		return nil, &fetch.HashMismatchError{URL: d.Getenv(builtins.EnvURL) + "#" + d.Getenv(builtins.EnvRev), Algo: "blake3", Want: d.Fixed.Hash, Got: h.Hex()}
	}
	return map[string]string{d.Outputs[0]: out}, nil
}

// writeFile writes env content as a single file. The store keeps only the
// execute bit of mode; a secret's real mode and owner are applied by
// activation when it copies the file into place.
func (j *job) writeFile() (map[string]string, error) {
	d := j.d
	mode, err := strconv.ParseUint(d.Getenv(builtins.EnvMode), 8, 32)
	if err != nil || d.Getenv(builtins.EnvMode) == "" {
		mode = 0o444
	}
	if d.IsSecret() {
		mode = 0o400
	}
	out := filepath.Join(j.dir, "out")
	if err := os.WriteFile(out, []byte(d.Getenv(builtins.EnvContent)), 0o600); err != nil {
		return nil, err
	}
	if err := os.Chmod(out, fs.FileMode(mode)&0o777); err != nil {
		return nil, err
	}
	return map[string]string{d.Outputs[0]: out}, nil
}

// copyInput copies env src (a path of an input) as the output: what a
// package made of a prebuilt archive is, so its path is its own (the
// archive's URL and hash are in its identity) and not the fetch's.
func (j *job) copyInput() (map[string]string, error) {
	from, err := j.physicalOf(j.d.Getenv(builtins.EnvSrc))
	if err != nil {
		return nil, fmt.Errorf("builtin:copy: src: %w", err)
	}
	out := filepath.Join(j.dir, "out")
	err = filepath.WalkDir(from, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(out, rel)
		switch {
		case de.IsDir():
			return os.Mkdir(dst, 0o755)
		case de.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, dst)
		case de.Type().IsRegular():
			fi, err := de.Info()
			if err != nil {
				return err
			}
			return copyFile(p, dst, fi.Mode()&0o555)
		}
		return fmt.Errorf("builtin:copy: %s is not a file, directory or symbolic link", p)
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{j.d.Outputs[0]: out}, nil
}

// etcEntry is one file of the system's etc/.
type etcEntry struct {
	Source string `json:"source"`
	Mode   string `json:"mode,omitempty"`
}

// system assembles a generation: etc/ (symlinks into the store, copies
// when a mode is given), sw/ (the union of the packages' top-level
// directories as symlinks), manifest.json and the kernel link. Absent env
// keys are skipped.
func (j *job) system() (map[string]string, error) {
	d := j.d
	out := filepath.Join(j.dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	if raw := d.Getenv(builtins.EnvEtc); raw != "" {
		var etc map[string]etcEntry
		if err := json.Unmarshal([]byte(raw), &etc); err != nil {
			return nil, fmt.Errorf("builtin:system: env etc: %w", err)
		}
		if err := j.systemEtc(out, etc); err != nil {
			return nil, err
		}
		if err := j.checkLogrotate(etc); err != nil {
			return nil, err
		}
	}
	var wrap map[string]map[string]string
	if raw := d.Getenv(builtins.EnvWrappers); raw != "" {
		if err := json.Unmarshal([]byte(raw), &wrap); err != nil {
			return nil, fmt.Errorf("builtin:system: env wrappers: %w", err)
		}
	}
	if pkgs := strings.Fields(d.Getenv(builtins.EnvPackages)); len(pkgs) > 0 {
		if err := j.mergePackages(filepath.Join(out, "sw"), pkgs, wrap); err != nil {
			return nil, err
		}
	}
	if m, ok := d.LookupEnv(builtins.EnvManifest); ok {
		if err := os.WriteFile(filepath.Join(out, "manifest.json"), []byte(m), 0o644); err != nil {
			return nil, err
		}
		if err := j.checkFirewall(m); err != nil {
			return nil, err
		}
		if err := j.checkSELinux(m); err != nil {
			return nil, err
		}
	}
	if k := d.Getenv(builtins.EnvKernel); k != "" {
		if _, err := j.physicalOf(k); err != nil {
			return nil, fmt.Errorf("builtin:system: kernel: %w", err)
		}
		if err := os.Symlink(k, filepath.Join(out, "kernel")); err != nil {
			return nil, err
		}
	}
	return map[string]string{d.Outputs[0]: out}, nil
}

// checkFirewall has nft check the generation's nftables ruleset, as it
// will load it at boot: a ruleset nft rejects would leave the machine
// without a firewall, since nft loads all of a file or nothing. The
// evaluation cannot run nft (it is pure) and checks only that each of
// extra_rules stays one rule inside the inbound chain; nft checks what
// the rules say. It runs in a private network namespace, so it never
// touches this machine's firewall. A build host without nft or without
// namespaces (not root) says in the build log that it did not check.
func (j *job) checkFirewall(manifest string) error {
	var m struct {
		Firewall struct {
			Enable  bool   `json:"enable"`
			Backend string `json:"backend"`
			Ruleset string `json:"ruleset"`
		} `json:"firewall"`
	}
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		return fmt.Errorf("builtin:system: manifest: %w", err)
	}
	fw := m.Firewall
	if !fw.Enable || fw.Backend != "nftables" || fw.Ruleset == "" {
		return nil
	}
	ruleset, err := j.physicalOf(fw.Ruleset)
	if err != nil {
		return fmt.Errorf("builtin:system: firewall ruleset: %w", err)
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		fmt.Fprintf(j.log, "nexis: the firewall ruleset is not checked: nft is not installed on this build host\n")
		return nil
	}
	unshare, err := exec.LookPath("unshare")
	if err == nil {
		err = exec.Command(unshare, "-n", "true").Run()
	}
	if err != nil {
		fmt.Fprintf(j.log, "nexis: the firewall ruleset is not checked: no private network namespace for nft -c here (%v)\n", err)
		return nil
	}
	out, err := exec.Command(unshare, "-n", "--", nft, "-c", "-f", ruleset).CombinedOutput()
	if err != nil {
		return fmt.Errorf("[system.firewall]: nft rejects the generated ruleset, so the machine would boot without a firewall; look at system.firewall.extra_rules:\n%s", strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(j.log, "nexis: nft -c accepts the firewall ruleset\n")
	return nil
}

// physicalOf maps a logical path inside a valid store path to this
// machine's location.
func (j *job) physicalOf(logical string) (string, error) {
	st := j.s.st
	p, rest, err := storepath.Parse(st.LogicalDir(), logical)
	if err != nil {
		return "", err
	}
	if ok, err := st.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s is not a valid store path", logical)
		}
		return "", err
	}
	return st.Physical(p) + filepath.FromSlash(rest), nil
}

func (j *job) systemEtc(out string, etc map[string]etcEntry) error {
	names := make([]string, 0, len(etc))
	for n := range etc {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := etc[n]
		rel := path.Clean(n)
		if path.IsAbs(n) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return fmt.Errorf("builtin:system: etc entry %q must be a relative path inside /etc", n)
		}
		dst := filepath.Join(out, "etc", filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		phys, err := j.physicalOf(e.Source)
		if err != nil {
			return fmt.Errorf("builtin:system: etc/%s: %w", n, err)
		}
		if e.Mode == "" {
			if err := os.Symlink(e.Source, dst); err != nil {
				return fmt.Errorf("builtin:system: etc/%s: %w", n, err)
			}
			continue
		}
		mode, err := strconv.ParseUint(e.Mode, 8, 32)
		if err != nil {
			return fmt.Errorf("builtin:system: etc/%s: mode %q is not octal", n, e.Mode)
		}
		if err := copyFile(phys, dst, fs.FileMode(mode)&0o777); err != nil {
			return fmt.Errorf("builtin:system: etc/%s: %w", n, err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", src)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// swEntry is what the merged profile holds at a relative path so far.
type swEntry struct {
	dir    bool
	pkg    string // the package providing a leaf
	target string // logical path a leaf links to
	phys   string // physical path of that leaf
	// wrapper, when set, is the script written in place of the link.
	wrapper string
}

// mergePackages builds sw/ as real directories with a symlink per file,
// like a Nix profile: two packages providing the same file is an error
// naming both, unless the two files are identical. A program (bin/,
// sbin/) of a package with a runtime env (wrap) is a wrapper script
// instead, which sets that env and runs the program: the env is in force
// wherever the program is started from the profile, a login shell, a
// service or a script, and nowhere else (a TERM meant for vim does not
// reach the whole session).
func (j *job) mergePackages(sw string, pkgs []string, wrap map[string]map[string]string) error {
	entries := map[string]*swEntry{"": {dir: true}}
	var order []string
	for _, pkg := range pkgs {
		phys, err := j.physicalOf(pkg)
		if err != nil {
			return fmt.Errorf("builtin:system: package %s: %w", pkg, err)
		}
		st, err := os.Lstat(phys)
		if err != nil {
			return err
		}
		if !st.IsDir() {
			continue // a package that is a single file has nothing to link
		}
		name := path.Base(pkg)
		if p, _, err := storepath.Parse(j.s.st.LogicalDir(), pkg); err == nil {
			name = p.Name
		}
		top, err := os.ReadDir(phys)
		if err != nil {
			return err
		}
		for _, t := range top {
			if !t.IsDir() {
				continue // only directories (bin, lib, share, ...) enter the profile
			}
			err := filepath.WalkDir(filepath.Join(phys, t.Name()), func(p string, de fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(phys, p)
				rel = filepath.ToSlash(rel)
				cur := entries[rel]
				if de.IsDir() {
					if cur == nil {
						entries[rel] = &swEntry{dir: true}
						order = append(order, rel)
						return nil
					}
					if !cur.dir {
						return fmt.Errorf("builtin:system: sw/%s is a file in %s but a directory in %s", rel, cur.pkg, name)
					}
					return nil
				}
				leaf := &swEntry{pkg: name, target: pkg + "/" + rel, phys: p}
				if env := wrap[pkg]; len(env) > 0 && (strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "sbin/")) {
					leaf.wrapper = wrapperScript(name, leaf.target, env)
				}
				if cur == nil {
					entries[rel] = leaf
					order = append(order, rel)
					return nil
				}
				if cur.dir {
					return fmt.Errorf("builtin:system: sw/%s is a directory in %s but a file in %s", rel, cur.pkg, name)
				}
				if !sameFile(cur.phys, p) {
					return fmt.Errorf("builtin:system: conflict: sw/%s is provided by both %s and %s", rel, cur.pkg, name)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(sw, 0o755); err != nil {
		return err
	}
	for _, rel := range order {
		e := entries[rel]
		dst := filepath.Join(sw, filepath.FromSlash(rel))
		if e.dir {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			continue
		}
		if e.wrapper != "" {
			if err := os.WriteFile(dst, []byte(e.wrapper), 0o555); err != nil {
				return err
			}
			continue
		}
		if err := os.Symlink(e.target, dst); err != nil {
			return err
		}
	}
	return nil
}

// wrapperScript runs target with env set; values are single-quoted, so
// the shell expands nothing in them.
func wrapperScript(pkg, target string, env map[string]string) string {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# Generated by nexis: runs %s with the runtime env of package %s.\n", path.Base(target), pkg)
	for _, k := range names {
		fmt.Fprintf(&b, "export %s=%s\n", k, shQuote(env[k]))
	}
	fmt.Fprintf(&b, "exec %s \"$@\"\n", shQuote(target))
	return b.String()
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// sameFile reports whether two leaves have the same contents (or the same
// link target), which is no conflict.
func sameFile(a, b string) bool {
	sa, err1 := os.Lstat(a)
	sb, err2 := os.Lstat(b)
	if err1 != nil || err2 != nil || sa.Mode().Type() != sb.Mode().Type() {
		return false
	}
	if sa.Mode()&fs.ModeSymlink != 0 {
		ta, _ := os.Readlink(a)
		tb, _ := os.Readlink(b)
		return ta == tb
	}
	if sa.Size() != sb.Size() {
		return false
	}
	ba, err1 := os.ReadFile(a)
	bb, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(ba, bb)
}
