package lang

// Typed views of a config for Go code: the raw TOML data stays inside
// lang (the stdlib reads it as the frozen `config` value), and every
// setting Go reads is read here, once, with its type.

// DefaultSystem is the platform evaluation targets when none is named.
const DefaultSystem = "x86_64-linux"

// Substituters is [nexis.substituters]: the binary caches a build may
// take outputs from, and the keys (besides <root>/etc/nexis/trusted-keys)
// whose signatures it accepts.
type Substituters struct {
	URLs        []string
	TrustedKeys []string
}

// Substituters reads [nexis.substituters].
func (c *Config) Substituters() Substituters {
	t := c.nexisTable("substituters")
	return Substituters{URLs: stringList(t["urls"]), TrustedKeys: stringList(t["trusted_keys"])}
}

// SandboxPaths is [nexis] sandbox_paths: host directories builds see.
func (c *Config) SandboxPaths() []string {
	return stringList(c.nexis()["sandbox_paths"])
}

// Stdenv is [nexis] stdenv as written (version, name, url, sha256,
// tools), nil when the config names none.
func (c *Config) Stdenv() map[string]any {
	return c.nexisTable("stdenv")
}

// Builder is one machine of [nexis.builders], as the config writes it;
// realise/pool checks it (pool.Spec has these fields).
type Builder struct {
	Name, URL                                 string
	Systems, Features                         []string
	MaxJobs, SpeedFactor                      *int64 // nil when not given
	SSHKey, HostKey, PublicKey, RemoteProgram string
}

// Builders reads [nexis.builders], the machines builds may run on,
// sorted by name.
func (c *Config) Builders() []Builder {
	t := c.nexisTable("builders")
	out := make([]Builder, 0, len(t))
	for _, name := range sortedKeys(t) {
		m, _ := t[name].(map[string]any)
		s := func(k string) string {
			v, _ := m[k].(string)
			return v
		}
		// Unset numbers take the schema's default: the one place it is written.
		n := func(k string) *int64 {
			if v, ok := m[k].(int64); ok {
				return &v
			}
			if d, err := ConfigSchema.DefaultOf("nexis.builders." + name + "." + k); err == nil {
				if v, ok := d.(int64); ok {
					return &v
				}
			}
			return nil
		}
		out = append(out, Builder{
			Name: name, URL: s("url"), Systems: stringList(m["systems"]), Features: stringList(m["features"]),
			MaxJobs: n("max_jobs"), SpeedFactor: n("speed_factor"),
			SSHKey: s("ssh_key"), HostKey: s("host_key"), PublicKey: s("public_key"), RemoteProgram: s("remote_program"),
		})
	}
	return out
}

func (c *Config) nexis() map[string]any {
	t, _ := c.data["nexis"].(map[string]any)
	return t
}

func (c *Config) nexisTable(key string) map[string]any {
	t, _ := c.nexis()[key].(map[string]any)
	return t
}

// stringList keeps the strings of a TOML array (the schema checked their
// type).
func stringList(v any) []string {
	raw, _ := v.([]any)
	var out []string
	for _, e := range raw {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
