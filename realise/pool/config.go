package pool

import (
	"fmt"
	"strings"

	"github.com/nexisos/nexis/store/cache"
)

// Spec is one machine of [nexis.builders] as a config writes it
// (lang.Builder), one table per machine, by name:
//
//	[nexis.builders.fast]
//	url = "ssh://build@fast.example:22"   # required
//	systems = ["x86_64-linux"]            # required
//	max_jobs = 4                          # default: lang's schema
//	speed_factor = 2                      # default: lang's schema
//	features = ["big-parallel", "kvm"]
//	ssh_key = "/etc/nexis/builder_ed25519"
//	host_key = "ssh-ed25519 AAAA..."
//	public_key = "fast-1:BASE64"          # the key it signs outputs with
//	remote_program = "nexis"
type Spec struct {
	Name, URL                                 string
	Systems, Features                         []string
	MaxJobs, SpeedFactor                      *int64 // lang.Config.Builders fills unset ones from the schema
	SSHKey, HostKey, PublicKey, RemoteProgram string
}

// ParseMachines checks the machines of [nexis.builders] (their shape
// checked by lang's schema) and gives them in order. Errors name the key.
func ParseMachines(specs []Spec) ([]Machine, error) {
	var out []Machine
	for _, t := range specs {
		key := func(k string) string { return fmt.Sprintf("nexis.builders.%s.%s", t.Name, k) }
		integer := func(k string, v *int64) (int, error) {
			if v == nil {
				return 0, fmt.Errorf("%s is missing (lang.Config.Builders gives the schema's default)", key(k))
			}
			if *v < 1 || *v > 1<<16 {
				return 0, fmt.Errorf("%s = %d: want a number from 1 to 65536", key(k), *v)
			}
			return int(*v), nil
		}
		m := Machine{Name: t.Name, Systems: t.Systems, Features: t.Features,
			SSHKey: t.SSHKey, HostKey: t.HostKey, PublicKey: t.PublicKey, RemoteProgram: t.RemoteProgram}
		if t.URL == "" {
			return nil, fmt.Errorf("%s is missing: the builder's ssh://[user@]host[:port]", key("url"))
		}
		u, err := cache.ParseSSHHost(t.URL)
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
		if m.MaxJobs, err = integer("max_jobs", t.MaxJobs); err != nil {
			return nil, err
		}
		if m.SpeedFactor, err = integer("speed_factor", t.SpeedFactor); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
