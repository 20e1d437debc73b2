package lang

import (
	"fmt"
	"sort"
	"strings"
)

// Schema describes the keys a config may have, so a typo is caught with
// its position and a suggestion before any module runs. Each section's
// stdlib module checks meanings (a valid hostname, a crypt hash); this
// checks shapes.
type Schema struct {
	Kind   Kind
	Fields map[string]*Schema // KindTable: the allowed keys
	Elem   *Schema            // KindMap: every value; KindArray: every element
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

var (
	str      = &Schema{Kind: KindString}
	integer  = &Schema{Kind: KindInt}
	boolean  = &Schema{Kind: KindBool}
	anything = &Schema{Kind: KindAny}
	strOrB   = &Schema{Kind: KindStringOrBool}
	strList  = arrayOf(str)
	intList  = arrayOf(integer)
)

func table(fields map[string]*Schema) *Schema { return &Schema{Kind: KindTable, Fields: fields} }
func mapOf(elem *Schema) *Schema              { return &Schema{Kind: KindMap, Elem: elem} }
func arrayOf(elem *Schema) *Schema            { return &Schema{Kind: KindArray, Elem: elem} }

var serviceSchema = table(map[string]*Schema{
	"name": str, "type": str, "command": str, "stop_command": str,
	"depends": strList, "waits_for": strList, "start_timeout": integer,
	"stop_timeout": integer, "working_directory": str, "log_file": str,
	"restart": strOrB, "user": str, "group": str, "enable": boolean,
	"env": mapOf(str), "description": str, "pid_file": str,
	"restart_triggers": strList, "ports": intList, "open_firewall": boolean,
})

// ConfigSchema is the shape of a system config: the original README's
// example, made valid TOML, plus the keys users of NixOS expect.
var ConfigSchema = table(map[string]*Schema{
	"system": table(map[string]*Schema{
		"hostname": str, "timezone": str, "version": str, "arch": str,
		"kernel": str, "kernel_source": str, "kernel_hash": str, "kernel_config": str,
		"kernel_params": strList,
		"locale":        table(map[string]*Schema{"lang": str, "keyboard_layout": str, "extra_locales": strList}),
		"firewall": table(map[string]*Schema{
			"backend": str, "enable": boolean, "allowed_tcp_ports": intList,
			"allowed_udp_ports": intList, "trusted_interfaces": strList,
			"allow_ping": boolean, "extra_rules": strList, "log_refused": boolean,
		}),
		"selinux": table(map[string]*Schema{
			"mode": str, "policy_type": str, "immutable_paths": strList,
		}),
	}),
	"users": mapOf(table(map[string]*Schema{
		"password_hash": str, "shell": str, "home": str, "uid": integer, "gid": integer, "group": str,
		"groups": strList, "authorized_keys": strList, "description": str,
		"system": boolean, "create_home": boolean,
		"files": mapOf(table(map[string]*Schema{
			"content": str, "symlink": str, "source": str, "force": boolean, "mode": str, "secret": boolean,
		})),
	})),
	"groups":  mapOf(table(map[string]*Schema{"gid": integer, "members": strList})),
	"network": table(map[string]*Schema{"interface": str, "dhcp": boolean, "static_ip": str, "gateway": str, "dns": strList}),
	"packages": arrayOf(table(map[string]*Schema{
		"name": str, "version": str, "source": str, "hash": str, "rev": str,
		"build_system": str, "build_flags": strList, "dependencies": strList,
		"patches": strList, "pre_build_script": str, "post_build_script": str,
		"build_script": str, "env": mapOf(str), "prebuilt": str, "prebuilt_hash": str,
		"fallback_to_source": boolean, "runtime_dirs": strList, "context_file": str,
		"module": str, "args": mapOf(anything), "timeout": integer, "tools": strList,
		"make_flags": strList, "build_targets": strList, "install_flags": strList,
		"install_targets": strList, "source_subdir": str,
	})),
	"config_files": mapOf(table(map[string]*Schema{
		"path": str, "source": str, "content": str, "owner": str, "group": str,
		"mode": str, "variables": mapOf(anything), "secret": boolean,
	})),
	"dinit_services": mapOf(serviceSchema),
	"nexis": table(map[string]*Schema{
		"dinit":         mapOf(serviceSchema),
		"environment":   mapOf(str),
		"generations":   table(map[string]*Schema{"keep_last": integer, "auto_cleanup": boolean, "pinned": intList}),
		"substituters":  table(map[string]*Schema{"urls": strList, "trusted_keys": strList}),
		"sandbox_paths": strList,
		"stdenv": table(map[string]*Schema{
			"version": str, "name": str, "url": str, "sha256": str,
			"tools": mapOf(table(map[string]*Schema{"name": str, "url": str, "sha256": str})),
		}),
		"builders": mapOf(table(map[string]*Schema{
			"url": str, "systems": strList, "max_jobs": integer, "speed_factor": integer,
			"features": strList, "ssh_key": str, "host_key": str, "public_key": str,
			"remote_program": str,
		})),
	}),
	"log_rotation": arrayOf(table(map[string]*Schema{
		"path": str, "max_size_mb": integer, "max_files": integer, "compress": boolean,
		"rotate_interval_days": integer, "copytruncate": boolean, "missing_ok": boolean,
	})),
	"hooks": table(map[string]*Schema{"pre_switch": strList, "post_switch": strList}),
	"filesystems": arrayOf(table(map[string]*Schema{
		"device": str, "label": str, "uuid": str, "type": str, "options": strList, "mountpoint": str,
	})),
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
	best, bestD := "", 3
	keys := make([]string, 0, len(allowed))
	for a := range allowed {
		keys = append(keys, a)
	}
	sort.Strings(keys)
	for _, a := range keys {
		d := levenshtein(strings.ToLower(k), a)
		if d < bestD || (strings.HasPrefix(a, k) && len(k) >= 3 && bestD > 1) {
			best, bestD = a, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
