package activate

import (
	"fmt"
	"io"
	"sort"

	"github.com/nexisos/nexis/store/storepath"
)

// Upgrade is a package whose version changed.
type Upgrade struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Diff is what differs between two generations (or systems).
type Diff struct {
	From             string    `json:"from"`
	To               string    `json:"to"`
	PackagesAdded    []string  `json:"packages_added"`
	PackagesRemoved  []string  `json:"packages_removed"`
	PackagesUpgraded []Upgrade `json:"packages_upgraded"`
	PackagesRebuilt  []string  `json:"packages_rebuilt"` // same version, new store path
	EtcAdded         []string  `json:"etc_added"`
	EtcRemoved       []string  `json:"etc_removed"`
	EtcChanged       []string  `json:"etc_changed"`
	FilesChanged     []string  `json:"files_changed"`
	ServicesAdded    []string  `json:"services_added"`
	ServicesRemoved  []string  `json:"services_removed"`
	ServicesChanged  []string  `json:"services_changed"`
	UsersAdded       []string  `json:"users_added"`
	UsersRemoved     []string  `json:"users_removed"`
	ClosureBytesFrom int64     `json:"closure_bytes_from"`
	ClosureBytesTo   int64     `json:"closure_bytes_to"`
	ClosurePathsFrom int       `json:"closure_paths_from"`
	ClosurePathsTo   int       `json:"closure_paths_to"`
	HostnameFrom     string    `json:"hostname_from"`
	HostnameTo       string    `json:"hostname_to"`
}

// emptyLists makes every list that has nothing [] rather than null in
// JSON, as every query's JSON is.
func (d *Diff) emptyLists() {
	for _, l := range []*[]string{&d.PackagesAdded, &d.PackagesRemoved, &d.PackagesRebuilt, &d.EtcAdded, &d.EtcRemoved,
		&d.EtcChanged, &d.FilesChanged, &d.ServicesAdded, &d.ServicesRemoved, &d.ServicesChanged, &d.UsersAdded, &d.UsersRemoved} {
		if *l == nil {
			*l = []string{}
		}
	}
	if d.PackagesUpgraded == nil {
		d.PackagesUpgraded = []Upgrade{}
	}
}

// DiffSystems compares two realised systems.
// With closure, the closures' sizes are summed too (a walk of both).
func (t *Target) DiffSystems(a, b *System, closure bool) (*Diff, error) {
	d := &Diff{From: a.Logical, To: b.Logical, HostnameFrom: a.Manifest.System.Hostname, HostnameTo: b.Manifest.System.Hostname}
	pa, pb := map[string][2]string{}, map[string][2]string{}
	for _, p := range a.Manifest.Packages {
		pa[p.Name] = [2]string{p.Version, p.Path}
	}
	for _, p := range b.Manifest.Packages {
		pb[p.Name] = [2]string{p.Version, p.Path}
	}
	for _, n := range keys(pb) {
		old, ok := pa[n]
		switch {
		case !ok:
			d.PackagesAdded = append(d.PackagesAdded, n+" "+pb[n][0])
		case old[0] != pb[n][0]:
			d.PackagesUpgraded = append(d.PackagesUpgraded, Upgrade{n, old[0], pb[n][0]})
		case old[1] != pb[n][1]:
			d.PackagesRebuilt = append(d.PackagesRebuilt, n)
		}
	}
	for _, n := range keys(pa) {
		if _, ok := pb[n]; !ok {
			d.PackagesRemoved = append(d.PackagesRemoved, n+" "+pa[n][0])
		}
	}
	ea, eb := map[string]string{}, map[string]string{}
	for _, e := range a.Manifest.Etc {
		ea[e.Path] = e.Source + e.Mode
	}
	for _, e := range b.Manifest.Etc {
		eb[e.Path] = e.Source + e.Mode
	}
	d.EtcAdded, d.EtcRemoved, d.EtcChanged = mapDiff(ea, eb)
	fa, fb := map[string]string{}, map[string]string{}
	for _, f := range a.Manifest.Files {
		fa[f.Path] = fmt.Sprint(f.Type, f.Source, f.Target, f.Owner, f.Group, f.Mode)
	}
	for _, f := range b.Manifest.Files {
		fb[f.Path] = fmt.Sprint(f.Type, f.Source, f.Target, f.Owner, f.Group, f.Mode)
	}
	added, removed, changed := mapDiff(fa, fb)
	d.FilesChanged = union(added, removed, changed)
	sa, sb := map[string]string{}, map[string]string{}
	for _, s := range a.Manifest.Services {
		sa[s.Name] = s.Source
	}
	for _, s := range b.Manifest.Services {
		sb[s.Name] = s.Source
	}
	d.ServicesAdded, d.ServicesRemoved, d.ServicesChanged = mapDiff(sa, sb)
	ua, ub := map[string]string{}, map[string]string{}
	for _, u := range a.Manifest.Users {
		ua[u.Name] = ""
	}
	for _, u := range b.Manifest.Users {
		ub[u.Name] = ""
	}
	d.UsersAdded, d.UsersRemoved, _ = mapDiff(ua, ub)
	d.emptyLists()
	if !closure {
		return d, nil
	}
	var err error
	if d.ClosurePathsFrom, d.ClosureBytesFrom, err = t.closureSize(a.Path); err != nil {
		return nil, err
	}
	if d.ClosurePathsTo, d.ClosureBytesTo, err = t.closureSize(b.Path); err != nil {
		return nil, err
	}
	return d, nil
}

func mapDiff(a, b map[string]string) (added, removed, changed []string) {
	for _, k := range keys(b) {
		if v, ok := a[k]; !ok {
			added = append(added, k)
		} else if v != b[k] {
			changed = append(changed, k)
		}
	}
	for _, k := range keys(a) {
		if _, ok := b[k]; !ok {
			removed = append(removed, k)
		}
	}
	return
}

func (t *Target) closureSize(p storepath.Path) (int, int64, error) {
	cl, err := t.Store.Closure([]storepath.Path{p})
	if err != nil {
		return 0, 0, err
	}
	var n int64
	for _, q := range cl {
		pi, err := t.Store.QueryPathInfo(q)
		if err != nil {
			return 0, 0, err
		}
		n += pi.Size
	}
	return len(cl), n, nil
}

// Print writes the diff for people.
func (d *Diff) Print(w io.Writer) {
	if d.HostnameFrom != d.HostnameTo {
		fmt.Fprintf(w, "hostname: %s -> %s\n", d.HostnameFrom, d.HostnameTo)
	}
	list := func(title string, l []string) {
		if len(l) == 0 {
			return
		}
		sort.Strings(l)
		fmt.Fprintf(w, "%s (%d):\n", title, len(l))
		for _, s := range l {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	list("packages added", d.PackagesAdded)
	list("packages removed", d.PackagesRemoved)
	if len(d.PackagesUpgraded) > 0 {
		fmt.Fprintf(w, "packages upgraded (%d):\n", len(d.PackagesUpgraded))
		for _, u := range d.PackagesUpgraded {
			fmt.Fprintf(w, "  %s %s -> %s\n", u.Name, u.From, u.To)
		}
	}
	list("packages rebuilt", d.PackagesRebuilt)
	list("/etc files added", d.EtcAdded)
	list("/etc files removed", d.EtcRemoved)
	list("/etc files changed", d.EtcChanged)
	list("files changed", d.FilesChanged)
	list("services added", d.ServicesAdded)
	list("services removed", d.ServicesRemoved)
	list("services changed", d.ServicesChanged)
	list("users added", d.UsersAdded)
	list("users removed", d.UsersRemoved)
	if d.ClosurePathsFrom == 0 {
		return
	}
	delta := d.ClosureBytesTo - d.ClosureBytesFrom
	sign := "+"
	if delta < 0 {
		sign = "-"
		delta = -delta
	}
	fmt.Fprintf(w, "closure: %d paths, %d bytes -> %d paths, %d bytes (%s%d bytes)\n",
		d.ClosurePathsFrom, d.ClosureBytesFrom, d.ClosurePathsTo, d.ClosureBytesTo, sign, delta)
}

// Short is a one-line account of the package changes.
func (d *Diff) Short() string {
	s := fmt.Sprintf("packages: %d added, %d removed, %d upgraded", len(d.PackagesAdded), len(d.PackagesRemoved), len(d.PackagesUpgraded))
	if d.HostnameFrom != d.HostnameTo {
		s += fmt.Sprintf("; hostname %s -> %s", d.HostnameFrom, d.HostnameTo)
	}
	return s
}
