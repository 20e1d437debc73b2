package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/nexisos/nexis/store/storepath"
)

// Generation is one numbered generation of a profile.
type Generation struct {
	Profile      string
	Number       uint64
	Path         storepath.Path
	Time         time.Time
	ConfigHash   string
	NexisVersion string
	Pinned       bool
}

// RootName is the root a generation holds on its path.
func (g *Generation) RootName() string {
	return fmt.Sprintf("%s%s/%d", GenerationRootPrefix, g.Profile, g.Number)
}

// genMaxKey holds the highest number profile ever recorded.
func genMaxKey(profile string) []byte { return []byte("genmax/" + profile) }

func genKey(profile string, n uint64) []byte {
	k := append([]byte(profile), 0)
	return binary.BigEndian.AppendUint64(k, n)
}

func validProfile(p string) error {
	if p == "" || strings.ContainsAny(p, "\x00/") || len(p) > 255 {
		return fmt.Errorf("profile name %q: want 1 to 255 bytes without '/' or NUL", p)
	}
	return nil
}

func encodeGen(g *Generation) []byte {
	b := []byte{1}
	b = appendString(b, g.Path.Base())
	b = binary.AppendVarint(b, g.Time.UnixNano())
	b = appendString(b, g.ConfigHash)
	b = appendString(b, g.NexisVersion)
	if g.Pinned {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return b
}

func decodeGen(profile string, n uint64, b []byte) (Generation, error) {
	g := Generation{Profile: profile, Number: n}
	d := decoder{b: b}
	if d.byte() != 1 {
		return g, fmt.Errorf("generation %s/%d: %w", profile, n, errCorrupt)
	}
	p, err := parseBase(d.string())
	if err != nil {
		return g, fmt.Errorf("generation %s/%d: %w", profile, n, err)
	}
	g.Path = p
	g.Time = time.Unix(0, d.varint())
	g.ConfigHash = d.string()
	g.NexisVersion = d.string()
	g.Pinned = d.byte() == 1
	if d.err != nil {
		return g, fmt.Errorf("generation %s/%d: %w", profile, n, d.err)
	}
	return g, nil
}

// PutGeneration records g (replacing an earlier record of the same
// number) and, in the same batch, makes its path a root.
func (s *Store) PutGeneration(g Generation) error {
	if err := s.writable(); err != nil {
		return err
	}
	if err := validProfile(g.Profile); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.newTxn()
	defer t.destroy()
	if err := s.addRootTxn(t, g.RootName(), g.Path); err != nil {
		return err
	}
	t.put(cfGenerations, genKey(g.Profile, g.Number), encodeGen(&g))
	high, err := s.getUint(cfDefault, genMaxKey(g.Profile))
	if err != nil {
		return err
	}
	if g.Number > high {
		t.put(cfDefault, genMaxKey(g.Profile), appendUvarint(nil, g.Number))
	}
	return t.commit()
}

// MaxGeneration is the highest generation number profile ever recorded,
// deleted ones included (0 for none): numbers are never reused, so a
// number in a log or a boot menu names one system forever. A store from
// before this record counts its remaining generations only.
func (s *Store) MaxGeneration(profile string) (uint64, error) {
	if err := validProfile(profile); err != nil {
		return 0, err
	}
	high, err := s.getUint(cfDefault, genMaxKey(profile))
	if err != nil {
		return 0, err
	}
	gens, err := s.ListGenerations(profile)
	if err != nil {
		return 0, err
	}
	if n := len(gens); n > 0 && gens[n-1].Number > high {
		high = gens[n-1].Number
	}
	return high, nil
}

// GetGeneration returns one generation.
func (s *Store) GetGeneration(profile string, n uint64) (Generation, bool, error) {
	b, err := s.get(cfGenerations, genKey(profile, n))
	if err != nil || b == nil {
		return Generation{}, false, err
	}
	g, err := decodeGen(profile, n, b)
	return g, err == nil, err
}

// ListGenerations returns a profile's generations in ascending order.
func (s *Store) ListGenerations(profile string) ([]Generation, error) {
	if err := validProfile(profile); err != nil {
		return nil, err
	}
	var out []Generation
	prefix := append([]byte(profile), 0)
	err := s.iterate(cfGenerations, prefix, func(k, v []byte) error {
		if len(k) != len(prefix)+8 {
			return nil
		}
		g, err := decodeGen(profile, binary.BigEndian.Uint64(k[len(prefix):]), v)
		if err != nil {
			return err
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// DeleteGeneration drops a generation and its root in one batch.
func (s *Store) DeleteGeneration(profile string, n uint64) error {
	if err := s.writable(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := genKey(profile, n)
	b, err := s.get(cfGenerations, k)
	if err != nil {
		return err
	}
	if b == nil {
		return fmt.Errorf("no generation %d of profile %q", n, profile)
	}
	g := Generation{Profile: profile, Number: n}
	t := s.newTxn()
	defer t.destroy()
	if err := s.removeRootTxn(t, g.RootName()); err != nil {
		return err
	}
	t.del(cfGenerations, k)
	return t.commit()
}
