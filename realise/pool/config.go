package pool

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nexisos/nexis/store/cache"
)

// ParseMachines reads the [nexis.builders] table of a config (its shape
// checked by lang's schema): one table per machine, by name,
//
//	[nexis.builders.fast]
//	url = "ssh://build@fast.example:22"   # required
//	systems = ["x86_64-linux"]            # required
//	max_jobs = 4                          # default 1
//	speed_factor = 2                      # default 1
//	features = ["big-parallel", "kvm"]
//	ssh_key = "/etc/nexis/builder_ed25519"
//	host_key = "ssh-ed25519 AAAA..."
//	public_key = "fast-1:BASE64"          # the key it signs outputs with
//	remote_program = "nexis"
//
// Errors name the key.
func ParseMachines(builders map[string]any) ([]Machine, error) {
	names := make([]string, 0, len(builders))
	for n := range builders {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Machine
	for _, name := range names {
		t, _ := builders[name].(map[string]any)
		key := func(k string) string { return fmt.Sprintf("nexis.builders.%s.%s", name, k) }
		str := func(k string) string { s, _ := t[k].(string); return s }
		strs := func(k string) []string {
			raw, _ := t[k].([]any)
			var l []string
			for _, v := range raw {
				if s, ok := v.(string); ok {
					l = append(l, s)
				}
			}
			return l
		}
		integer := func(k string, def int) (int, error) {
			v, ok := t[k].(int64)
			if !ok {
				return def, nil
			}
			if v < 1 || v > 1<<16 {
				return 0, fmt.Errorf("%s = %d: want a number from 1 to 65536", key(k), v)
			}
			return int(v), nil
		}
		m := Machine{Name: name, Systems: strs("systems"), Features: strs("features"),
			SSHKey: str("ssh_key"), HostKey: str("host_key"), PublicKey: str("public_key"), RemoteProgram: str("remote_program")}
		if str("url") == "" {
			return nil, fmt.Errorf("%s is missing: the builder's ssh://[user@]host[:port]", key("url"))
		}
		u, err := cache.ParseSSHHost(str("url"))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key("url"), err)
		}
		m.URL = u
		if len(m.Systems) == 0 {
			return nil, fmt.Errorf("%s is missing: the systems the builder builds for, e.g. [\"x86_64-linux\"]", key("systems"))
		}
		if m.HostKey != "" && len(strings.Fields(m.HostKey)) < 2 {
			return nil, fmt.Errorf("%s = %q: want the host's public key as ssh prints it, \"ssh-ed25519 AAAA...\"", key("host_key"), m.HostKey)
		}
		if m.MaxJobs, err = integer("max_jobs", 1); err != nil {
			return nil, err
		}
		if m.SpeedFactor, err = integer("speed_factor", 1); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
