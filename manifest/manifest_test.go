package manifest

import (
	"bytes"
	"strings"
	"testing"
)

const valid = `{
  "version": 1,
  "system": {"hostname": "h", "version": "", "timezone": "UTC", "localtime": "/usr/share/zoneinfo/UTC"},
  "kernel": null,
  "locale": {"lang": "C.UTF-8", "keyboard_layout": "us", "locales": ["C.UTF-8"]},
  "etc": [{"path": "hostname", "source": "/store/aa/bb/x-etc-hostname", "origin": "system.hostname"}],
  "users": [{"name": "alice", "uid": 1000, "group": "alice", "groups": ["wheel"], "home": "/home/alice",
             "shell": "/bin/sh", "description": "", "system": false, "create_home": true,
             "password_hash_file": "/store/aa/bb/x-shadow-alice"}],
  "groups": [{"name": "alice", "members": [], "system": false}],
  "files": [{"path": "/home/alice/.ssh", "type": "directory", "owner": "alice", "group": "alice", "mode": "0700", "origin": "users.alice"}],
  "services": [{"name": "sshd", "type": "process", "file": "dinit.d/sshd", "source": "/store/x", "enable": true,
                "depends": [], "waits_for": [], "origin": "dinit_services.sshd"}],
  "boot": ["sshd"],
  "hooks": {"pre_switch": [], "post_switch": []},
  "generations": {"keep_last": 10, "auto_cleanup": false, "pinned": []},
  "firewall": {"enable": false, "backend": "nftables"},
  "selinux": {"mode": "disabled", "policy_type": "", "immutable_paths": [], "modules": []},
  "network": null,
  "environment": {},
  "log_rotation": [],
  "packages": []
}`

func TestDecodeRoundTrip(t *testing.T) {
	m, err := Decode(strings.NewReader(valid))
	if err != nil {
		t.Fatal(err)
	}
	if m.Users[0].UID == nil || *m.Users[0].UID != 1000 || m.Groups[0].GID != nil {
		t.Errorf("ids: uid %v gid %v", m.Users[0].UID, m.Groups[0].GID)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	first := buf.String()
	again, err := Decode(&buf)
	if err != nil {
		t.Fatalf("re-decoding the encoded manifest: %v", err)
	}
	var b2 bytes.Buffer
	if err := again.Encode(&b2); err != nil {
		t.Fatal(err)
	}
	if b2.String() != first {
		t.Errorf("encode → decode → encode changed the manifest:\n%s\n---\n%s", first, b2.String())
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, c := range map[string]struct{ from, to, want string }{
		"unknown key":        {`"boot": ["sshd"]`, `"boot": ["sshd"], "bogus": 1`, "unknown field"},
		"newer version":      {`"version": 1`, `"version": 2`, "format version 2"},
		"two passwords":      {`"password_hash_file": "/store/aa/bb/x-shadow-alice"`, `"password_hash_file": "/x", "password_lock": "!"`, "exactly one of"},
		"no password":        {"\"create_home\": true,\n             \"password_hash_file\": \"/store/aa/bb/x-shadow-alice\"", `"create_home": true`, "exactly one of"},
		"relative file":      {`"path": "/home/alice/.ssh"`, `"path": "home/alice/.ssh"`, "clean absolute path"},
		"bad mode":           {`"mode": "0700"`, `"mode": "999"`, "4 octal digits"},
		"unknown dependency": {`"depends": []`, `"depends": ["network"]`, "unknown service"},
		"unknown boot":       {`"boot": ["sshd"]`, `"boot": ["sshd", "x"]`, "boot names unknown"},
		"keep none":          {`"keep_last": 10`, `"keep_last": 0`, "keep_last"},
		"bad selinux mode":   {`"mode": "disabled"`, `"mode": "off"`, "selinux.mode"},
		"etc escapes":        {`"path": "hostname"`, `"path": "../shadow"`, "relative to /etc"},
		"etc claims shadow":  {`"path": "hostname"`, `"path": "shadow"`, "/etc/shadow is the account database"},
		"etc in static":      {`"path": "hostname"`, `"path": "static/hostname"`, "inside /etc/static"},
		"file in the store":  {`"path": "/home/alice/.ssh"`, `"path": "/store/aa"`, "inside /store, the store"},
		"file chmods /etc":   {`"path": "/home/alice/.ssh"`, `"path": "/etc"`, "/etc is a directory the system needs"},
		"file in state":      {`"path": "/home/alice/.ssh"`, `"path": "/var/lib/nexis/ids.json"`, "nexis's state directory"},
		"home is /etc":       {`"home": "/home/alice"`, `"home": "/etc"`, "not a place for a home"},
		"home with colon":    {`"home": "/home/alice"`, `"home": "/home/alice:x"`, "contains ':'"},
		"shell with newline": {`"shell": "/bin/sh"`, `"shell": "/bin/sh\nx::0:0::/:/bin/sh"`, "control character"},
		"description colon":  {`"description": ""`, `"description": "a:b"`, "description"},
		"bad user name":      {`"name": "alice", "uid"`, `"name": "Alice:0", "uid"`, "a name is lowercase"},
		"bad member":         {`"members": []`, `"members": ["a,b"]`, "member"},
		"env name":           {`"environment": {}`, `"environment": {"A B": "x"}`, "not an environment variable name"},
		"env value":          {`"environment": {}`, `"environment": {"A": "x\ny"}`, "one line"},
		"log tab":            {`"log_rotation": []`, `"log_rotation": ["/var/log/a\t/etc/shadow"]`, "whitespace"},
		"log in etc":         {`"log_rotation": []`, `"log_rotation": ["/etc/shadow"]`, "under /etc"},
	} {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(valid, c.from, c.to, 1)
			if in == valid {
				t.Fatalf("test case does not change the manifest")
			}
			_, err := Decode(strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode error %v, want one containing %q", err, c.want)
			}
		})
	}
}
