package activate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// The accounts of NexisOS's base root filesystem (Buildroot's skeleton,
// the udev groups, and shadow for /etc/shadow's group): they exist whether
// or not a config declares them, with these ids. stdlib/users.star's
// BASE_USERS and BASE_GROUPS name the same ones (a test keeps them equal).
var baseUsers = []pwEnt{
	{Name: "root", UID: 0, GID: 0, Gecos: "root", Home: "/root", Shell: "/bin/sh"},
	{Name: "daemon", UID: 1, GID: 1, Gecos: "daemon", Home: "/usr/sbin", Shell: "/bin/false"},
	{Name: "bin", UID: 2, GID: 2, Gecos: "bin", Home: "/bin", Shell: "/bin/false"},
	{Name: "sys", UID: 3, GID: 3, Gecos: "sys", Home: "/dev", Shell: "/bin/false"},
	{Name: "sync", UID: 4, GID: 100, Gecos: "sync", Home: "/bin", Shell: "/bin/sync"},
	{Name: "mail", UID: 8, GID: 8, Gecos: "mail", Home: "/var/spool/mail", Shell: "/bin/false"},
	{Name: "www-data", UID: 33, GID: 33, Gecos: "www-data", Home: "/var/www", Shell: "/bin/false"},
	{Name: "operator", UID: 37, GID: 37, Gecos: "Operator", Home: "/var", Shell: "/bin/false"},
	{Name: "sshd", UID: 74, GID: 74, Gecos: "SSH privilege separation", Home: "/var/empty", Shell: "/sbin/nologin"},
	{Name: "dbus", UID: 81, GID: 81, Gecos: "D-Bus", Home: "/var/run/dbus", Shell: "/bin/false"},
	{Name: "nobody", UID: 65534, GID: 65534, Gecos: "nobody", Home: "/home", Shell: "/bin/false"},
}

var baseGroups = map[string]int64{
	"root": 0, "daemon": 1, "bin": 2, "sys": 3, "adm": 4, "tty": 5, "disk": 6,
	"lp": 7, "mail": 8, "kmem": 9, "wheel": 10, "cdrom": 11, "dialout": 18,
	"floppy": 19, "video": 28, "audio": 29, "tape": 32, "www-data": 33,
	"operator": 37, "shadow": 42, "utmp": 43, "plugdev": 46, "staff": 50, "lock": 54,
	"sshd": 74, "dbus": 81, "netdev": 82, "input": 97, "kvm": 98, "render": 99,
	"users": 100, "nogroup": 65534,
}

// Id ranges for accounts without a declared id: system accounts count
// down from 999, people up from 1000, as useradd does.
const (
	firstUserID   = 1000
	lastUserID    = 59999
	lastSystemID  = 999
	firstSystemID = 100
)

type pwEnt struct {
	Name, Pass         string
	UID, GID           int64
	Gecos, Home, Shell string
}

func (e pwEnt) line() string {
	return fmt.Sprintf("%s:%s:%d:%d:%s:%s:%s", e.Name, e.Pass, e.UID, e.GID, e.Gecos, e.Home, e.Shell)
}

type grEnt struct {
	Name, Pass string
	GID        int64
	Members    []string
}

func (e grEnt) line() string {
	return fmt.Sprintf("%s:%s:%d:%s", e.Name, e.Pass, e.GID, strings.Join(e.Members, ","))
}

// spEnt is a shadow line: the password field and the eight others.
type spEnt struct {
	Name, Pass string
	Rest       []string // lastchg, min, max, warn, inactive, expire, reserved
}

func (e spEnt) line() string { return e.Name + ":" + e.Pass + ":" + strings.Join(e.Rest, ":") }

// db is one of the account files, parsed; lines that are not entries
// (comments, blank) and entries of unknown shape are kept as they are.
type db[E any] struct {
	order []string // entry names and raw lines ("\x00" + line), in file order
	ents  map[string]*E
}

func readDB[E any](r *durable.Root, p string, parse func(f []string) (*E, bool), name func(*E) string) (*db[E], error) {
	d := &db[E]{ents: map[string]*E{}}
	b, err := r.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		e, ok := parse(strings.Split(l, ":"))
		if !ok || strings.HasPrefix(l, "#") {
			d.order = append(d.order, "\x00"+l)
			continue
		}
		n := name(e)
		if _, dup := d.ents[n]; dup {
			continue
		}
		d.ents[n] = e
		d.order = append(d.order, n)
	}
	return d, nil
}

func (d *db[E]) put(n string, e *E) {
	if _, ok := d.ents[n]; !ok {
		d.order = append(d.order, n)
	}
	d.ents[n] = e
}

func (d *db[E]) del(n string) {
	delete(d.ents, n)
	d.order = slices.DeleteFunc(d.order, func(s string) bool { return s == n })
}

func (d *db[E]) text(line func(*E) string) string {
	var sb strings.Builder
	for _, n := range d.order {
		if n[0] == 0 {
			sb.WriteString(n[1:])
		} else {
			sb.WriteString(line(d.ents[n]))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func parsePw(f []string) (*pwEnt, bool) {
	if len(f) != 7 {
		return nil, false
	}
	uid, err1 := strconv.ParseInt(f[2], 10, 64)
	gid, err2 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, false
	}
	return &pwEnt{Name: f[0], Pass: f[1], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]}, true
}

func parseGr(f []string) (*grEnt, bool) {
	if len(f) != 4 {
		return nil, false
	}
	gid, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return nil, false
	}
	var members []string
	if f[3] != "" {
		members = strings.Split(f[3], ",")
	}
	return &grEnt{Name: f[0], Pass: f[1], GID: gid, Members: members}, true
}

func parseSp(f []string) (*spEnt, bool) {
	if len(f) != 9 {
		return nil, false
	}
	return &spEnt{Name: f[0], Pass: f[1], Rest: f[2:]}, true
}

// IDMap keeps the ids given to accounts without a declared one, so they
// stay the same in every later generation (and are never given to
// another name), in <state>/ids.json.
type IDMap struct {
	Users  map[string]int64 `json:"users"`
	Groups map[string]int64 `json:"groups"`
}

func (t *Target) idMapPath() string { return t.inState("ids.json") }

func (t *Target) loadIDMap() (*IDMap, error) {
	m := &IDMap{Users: map[string]int64{}, Groups: map[string]int64{}}
	if err := t.readStateFile(t.idMapPath(), "id map", m); err != nil {
		return nil, err
	}
	if m.Users == nil {
		m.Users = map[string]int64{}
	}
	if m.Groups == nil {
		m.Groups = map[string]int64{}
	}
	return m, nil
}

// Accounts is the planned content of the account files.
type Accounts struct {
	Passwd, Group, Shadow string
	ShadowGID             int64
	IDs                   *IDMap
	// What changes, for the plan's summary.
	AddUsers, ChangeUsers, LockUsers []string
	AddGroups, RemoveGroups          []string
	// UIDs and GIDs of every account after activation, for chown.
	UID map[string]int64
	GID map[string]int64
	// Homes to create: user → home.
	Homes map[string]string
	// LockedHomes are the homes of locked users: kept with what is in
	// them, home files included.
	LockedHomes []string
}

func allocate(used map[int64]bool, system bool) (int64, error) {
	if system {
		for id := int64(lastSystemID); id >= firstSystemID; id-- {
			if !used[id] {
				return id, nil
			}
		}
	} else {
		for id := int64(firstUserID); id <= lastUserID; id++ {
			if !used[id] {
				return id, nil
			}
		}
	}
	return 0, errors.New("no free id left")
}

// planAccounts merges the generation's users and groups into the root's
// account files. Entries nexis did not make are kept; users a previous
// generation declared and this one does not are locked, not deleted.
func (t *Target) planAccounts(m *manifest.Manifest, st *State) (*Accounts, error) {
	pw, err := readDB(t.Root, "/etc/passwd", parsePw, func(e *pwEnt) string { return e.Name })
	if err != nil {
		return nil, fmt.Errorf("/etc/passwd: %w", err)
	}
	gr, err := readDB(t.Root, "/etc/group", parseGr, func(e *grEnt) string { return e.Name })
	if err != nil {
		return nil, fmt.Errorf("/etc/group: %w", err)
	}
	sp, err := readDB(t.Root, "/etc/shadow", parseSp, func(e *spEnt) string { return e.Name })
	if err != nil {
		return nil, fmt.Errorf("/etc/shadow: %w", err)
	}
	ids, err := t.loadIDMap()
	if err != nil {
		return nil, err
	}
	a := &Accounts{IDs: ids, UID: map[string]int64{}, GID: map[string]int64{}, Homes: map[string]string{}}
	today := strconv.FormatInt(time.Now().Unix()/86400, 10)

	// Groups first: a user's primary gid comes from its group.
	usedG := map[int64]bool{}
	for _, e := range gr.ents {
		usedG[e.GID] = true
	}
	for _, id := range ids.Groups {
		usedG[id] = true
	}
	for _, id := range baseGroups {
		usedG[id] = true
	}
	declaredG := map[string]*manifest.Group{}
	for i := range m.Groups {
		declaredG[m.Groups[i].Name] = &m.Groups[i]
	}
	byID := keys(baseGroups)
	sort.SliceStable(byID, func(i, j int) bool { return baseGroups[byID[i]] < baseGroups[byID[j]] })
	for _, n := range byID {
		if _, ok := gr.ents[n]; !ok {
			if _, decl := declaredG[n]; !decl {
				gr.put(n, &grEnt{Name: n, Pass: "x", GID: baseGroups[n]})
			}
		}
	}
	// The ids of users, to give a user's own group the same number when
	// it is free.
	usedU := map[int64]bool{}
	for _, e := range pw.ents {
		usedU[e.UID] = true
	}
	for _, id := range ids.Users {
		usedU[id] = true
	}
	for _, b := range baseUsers {
		usedU[b.UID] = true
	}
	uidOf := map[string]int64{}
	for _, u := range m.Users {
		var id int64
		switch {
		case u.UID != nil:
			id = *u.UID
		case ids.Users[u.Name] != 0 || u.Name == "root":
			id = ids.Users[u.Name]
		default:
			if e, ok := pw.ents[u.Name]; ok {
				id = e.UID // an account that exists keeps its id (one made by hand is taken over)
			} else if b := baseUser(u.Name); b != nil {
				id = b.UID
			} else {
				n, err := allocate(usedU, u.System)
				if err != nil {
					return nil, fmt.Errorf("user %s: %w", u.Name, err)
				}
				id = n
			}
		}
		if other, ok := pwByUID(pw, id); ok && other != u.Name && !slices.Contains(st.Users, other) && !slices.Contains(st.Locked, other) && baseUser(other) == nil {
			return nil, fmt.Errorf("user %s: uid %d is already used by %s in /etc/passwd (an account nexis did not make)", u.Name, id, other)
		}
		usedU[id] = true
		uidOf[u.Name] = id
		if u.UID == nil {
			ids.Users[u.Name] = id
		}
	}
	for _, g := range m.Groups {
		var id int64
		switch {
		case g.GID != nil:
			id = *g.GID
		case ids.Groups[g.Name] != 0 || g.Name == "root":
			id = ids.Groups[g.Name]
		default:
			if bg, ok := baseGroups[g.Name]; ok {
				id = bg
			} else if e, ok := gr.ents[g.Name]; ok {
				id = e.GID
			} else if uid, ok := uidOf[g.Name]; ok && !usedG[uid] {
				id = uid
			} else {
				n, err := allocate(usedG, g.System)
				if err != nil {
					return nil, fmt.Errorf("group %s: %w", g.Name, err)
				}
				id = n
			}
		}
		usedG[id] = true
		if g.GID == nil {
			ids.Groups[g.Name] = id
		}
		old, existed := gr.ents[g.Name]
		e := &grEnt{Name: g.Name, Pass: "x", GID: id}
		if existed {
			e.Pass = old.Pass
		} else {
			a.AddGroups = append(a.AddGroups, g.Name)
		}
		gr.put(g.Name, e)
	}
	// Groups a previous generation declared and this one does not go,
	// unless an account still has it as its primary group.
	for _, n := range st.Groups {
		if _, ok := declaredG[n]; ok {
			continue
		}
		if _, base := baseGroups[n]; base {
			continue
		}
		e, ok := gr.ents[n]
		if !ok {
			continue
		}
		primary := false
		for _, u := range pw.ents {
			if u.GID == e.GID {
				if _, declared := uidOf[u.Name]; !declared {
					primary = true
				}
			}
		}
		for _, u := range m.Users {
			if u.Group == n {
				primary = true
			}
		}
		if !primary {
			gr.del(n)
			a.RemoveGroups = append(a.RemoveGroups, n)
		}
	}

	// Users.
	for _, b := range baseUsers {
		if _, ok := pw.ents[b.Name]; !ok {
			e := b
			e.Pass = "x"
			pw.put(b.Name, &e)
		}
		if _, ok := sp.ents[b.Name]; !ok {
			lock := "*"
			if b.Name == "root" {
				lock = "!"
			}
			sp.put(b.Name, &spEnt{Name: b.Name, Pass: lock, Rest: []string{today, "0", "99999", "7", "", "", ""}})
		}
	}
	declaredU := map[string]bool{}
	for _, u := range m.Users {
		declaredU[u.Name] = true
		g, ok := gr.ents[u.Group]
		if !ok {
			return nil, fmt.Errorf("user %s: primary group %s does not exist", u.Name, u.Group)
		}
		e := &pwEnt{Name: u.Name, Pass: "x", UID: uidOf[u.Name], GID: g.GID, Gecos: u.Description, Home: u.Home, Shell: u.Shell}
		old, existed := pw.ents[u.Name]
		switch {
		case !existed:
			a.AddUsers = append(a.AddUsers, u.Name)
		case *old != *e:
			a.ChangeUsers = append(a.ChangeUsers, u.Name)
		}
		pw.put(u.Name, e)
		pass := u.PasswordLock
		if u.PasswordHashFile != "" {
			src, err := t.storeFile(u.PasswordHashFile)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			b, err := t.Root.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("user %s: password hash: %w", u.Name, err)
			}
			pass = strings.TrimSpace(string(b))
			if strings.ContainsAny(pass, ":\n") {
				return nil, fmt.Errorf("user %s: the password hash file holds a ':' or a newline", u.Name)
			}
		}
		se := &spEnt{Name: u.Name, Pass: pass, Rest: []string{today, "0", "99999", "7", "", "", ""}}
		if old, ok := sp.ents[u.Name]; ok {
			// Keep the aging fields (the date of the last change), but an
			// expiry nexis set to lock a dropped user goes with the lock.
			se.Rest = slices.Clone(old.Rest)
			if slices.Contains(st.Locked, u.Name) {
				se.Rest[5] = ""
			}
			if old.Pass != pass && existed && !slices.Contains(a.ChangeUsers, u.Name) {
				a.ChangeUsers = append(a.ChangeUsers, u.Name)
			}
		}
		sp.put(u.Name, se)
		if u.CreateHome {
			a.Homes[u.Name] = u.Home
		}
	}
	for _, n := range union(st.Users, st.Locked) {
		if declaredU[n] {
			continue
		}
		pe, ok := pw.ents[n]
		if !ok {
			continue
		}
		a.LockedHomes = append(a.LockedHomes, pe.Home)
		se, ok := sp.ents[n]
		if !ok {
			se = &spEnt{Name: n, Rest: []string{today, "0", "99999", "7", "", "", ""}}
		}
		locked := *se
		locked.Rest = slices.Clone(se.Rest)
		locked.Pass = "!"
		locked.Rest[5] = "1" // expired on 1970-01-02: no login, keys included
		if se.Pass != locked.Pass || se.Rest[5] != "1" {
			a.LockUsers = append(a.LockUsers, n)
		}
		sp.put(n, &locked)
	}

	// Memberships: a declared group's members plus every declared user
	// that names the group; members nexis does not manage are kept.
	managedU := setOf(union(st.Users, st.Locked, keys(declaredU)))
	want := map[string][]string{}
	for _, g := range m.Groups {
		want[g.Name] = append(want[g.Name], g.Members...)
	}
	for _, u := range m.Users {
		for _, g := range u.Groups {
			want[g] = append(want[g], u.Name)
		}
	}
	for _, n := range gr.order {
		if n[0] == 0 {
			continue
		}
		e := gr.ents[n]
		var ms []string
		for _, x := range e.Members {
			if !managedU[x] {
				ms = append(ms, x)
			}
		}
		ms = union(ms, want[n])
		if len(ms) == 0 {
			ms = nil
		}
		e.Members = ms
	}
	for g := range want {
		if _, ok := gr.ents[g]; !ok {
			return nil, fmt.Errorf("group %s (named by a user) does not exist", g)
		}
	}

	for n, e := range pw.ents {
		a.UID[n] = e.UID
	}
	for n, e := range gr.ents {
		a.GID[n] = e.GID
	}
	a.ShadowGID = a.GID["shadow"]
	a.Passwd = pw.text(func(e *pwEnt) string { return e.line() })
	a.Group = gr.text(func(e *grEnt) string { return e.line() })
	a.Shadow = sp.text(func(e *spEnt) string { return e.line() })
	sort.Strings(a.AddUsers)
	sort.Strings(a.ChangeUsers)
	sort.Strings(a.LockUsers)
	sort.Strings(a.AddGroups)
	sort.Strings(a.RemoveGroups)
	return a, nil
}

func baseUser(n string) *pwEnt {
	for i := range baseUsers {
		if baseUsers[i].Name == n {
			return &baseUsers[i]
		}
	}
	return nil
}

func pwByUID(d *db[pwEnt], uid int64) (string, bool) {
	for n, e := range d.ents {
		if e.UID == uid {
			return n, true
		}
	}
	return "", false
}

// HasBaseAccount reports whether name is a base user (or group) with id.
func HasBaseAccount(user bool, name, id string) bool {
	if user {
		b := baseUser(name)
		return b != nil && strconv.FormatInt(b.UID, 10) == id
	}
	g, ok := baseGroups[name]
	return ok && strconv.FormatInt(g, 10) == id
}

// owner resolves a manifest file's owner and group with the planned
// accounts.
func (a *Accounts) owner(user, group string) (*durable.Owner, error) {
	uid, ok := a.UID[user]
	if !ok {
		return nil, fmt.Errorf("unknown user %s", user)
	}
	gid, ok := a.GID[group]
	if !ok {
		return nil, fmt.Errorf("unknown group %s", group)
	}
	return &durable.Owner{UID: int(uid), GID: int(gid)}, nil
}

// fileIs reports whether the root's file p holds exactly text.
func (t *Target) fileIs(p, text string) bool {
	b, err := t.Root.ReadFile(p)
	return err == nil && string(b) == text
}

// shadowMode is /etc/shadow's mode: readable by root and the shadow
// group (for unix_chkpwd and friends), by nobody else.
const shadowMode = 0o640

func (t *Target) shadowModeOK(gid int64) bool {
	fi, err := t.Root.Stat("/etc/shadow")
	if err != nil {
		return false
	}
	s, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().Perm() == shadowMode && s.Uid == 0 && int64(s.Gid) == gid
}

// planAccountFiles lists the account files whose content or mode
// changes with acc, and the homes to make.
func (t *Target) planAccountFiles(p *Plan, acc *Accounts) {
	for _, f := range []struct{ name, text string }{{"group", acc.Group}, {"passwd", acc.Passwd}, {"shadow", acc.Shadow}} {
		if !t.fileIs("/etc/"+f.name, f.text) {
			p.AccountFiles = append(p.AccountFiles, f.name)
		}
	}
	if !t.shadowModeOK(acc.ShadowGID) && !contains(p.AccountFiles, "shadow") {
		p.AccountFiles = append(p.AccountFiles, "shadow")
	}
	for _, u := range keys(acc.Homes) {
		if _, err := t.Root.Lstat(acc.Homes[u]); errors.Is(err, fs.ErrNotExist) {
			p.Homes = append(p.Homes, u)
		}
	}
}

// writeAccounts replaces the account files that change, the id map
// first so an id handed out is never handed out again.
func (t *Target) writeAccounts(p *Plan) error {
	a := p.Accounts
	b, err := json.MarshalIndent(a.IDs, "", "  ")
	if err != nil {
		return err
	}
	if !t.fileIs(t.idMapPath(), string(b)+"\n") {
		if err := t.Root.MkdirAll(t.StateDir, 0o755); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if err := t.Root.WriteFile(t.idMapPath(), append(b, '\n'), 0o644, nil); err != nil {
			return err
		}
	}
	if len(p.AccountFiles) == 0 {
		return nil
	}
	if err := t.Root.MkdirAll("/etc", 0o755); err != nil {
		return err
	}
	for _, f := range p.AccountFiles {
		var err error
		switch f {
		case "group":
			err = t.Root.WriteFile("/etc/group", []byte(a.Group), 0o644, &durable.Owner{})
		case "passwd":
			err = t.Root.WriteFile("/etc/passwd", []byte(a.Passwd), 0o644, &durable.Owner{})
		case "shadow":
			err = t.Root.WriteFile("/etc/shadow", []byte(a.Shadow), shadowMode, &durable.Owner{GID: int(a.ShadowGID)})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// makeHomes makes the homes the plan lists, owned by their users.
func (t *Target) makeHomes(p *Plan) error {
	m := p.System.Manifest
	for _, u := range p.Homes {
		own, err := p.Accounts.owner(u, groupOf(m, u))
		if err != nil {
			return err
		}
		home := m.Users[indexUser(m, u)].Home
		if _, err := t.mkParents("", strings.TrimPrefix(home, "/"), nil); err != nil {
			return err
		}
		if err := t.Root.Mkdir(home, 0o700, own); err != nil {
			return err
		}
	}
	return nil
}

func groupOf(m *manifest.Manifest, user string) string {
	return m.Users[indexUser(m, user)].Group
}

func indexUser(m *manifest.Manifest, user string) int {
	for i, u := range m.Users {
		if u.Name == user {
			return i
		}
	}
	return -1
}

func (t *Target) checkAccounts(m *manifest.Manifest) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	pw, err1 := readDB(t.Root, "/etc/passwd", parsePw, func(e *pwEnt) string { return e.Name })
	gr, err2 := readDB(t.Root, "/etc/group", parseGr, func(e *grEnt) string { return e.Name })
	sp, err3 := readDB(t.Root, "/etc/shadow", parseSp, func(e *spEnt) string { return e.Name })
	if err := errors.Join(err1, err2, err3); err != nil {
		return []string{err.Error()}
	}
	if fi, err := t.Root.Stat("/etc/shadow"); err != nil {
		bad("/etc/shadow: %v", err)
	} else {
		s := fi.Sys().(*syscall.Stat_t)
		shadowGID := int64(-1)
		if g, ok := gr.ents["shadow"]; ok {
			shadowGID = g.GID
		}
		if fi.Mode().Perm()&0o037 != 0 || s.Uid != 0 || (s.Gid != 0 && int64(s.Gid) != shadowGID) {
			bad("/etc/shadow is %v %d:%d, want 0640 root:shadow or stricter", fi.Mode().Perm(), s.Uid, s.Gid)
		}
	}
	for _, b := range baseUsers {
		e, ok := pw.ents[b.Name]
		if !ok {
			bad("base user %s is missing from /etc/passwd", b.Name)
		} else if e.UID != b.UID {
			bad("base user %s has uid %d, want %d", b.Name, e.UID, b.UID)
		}
	}
	uids := map[int64]string{}
	for n, e := range pw.ents {
		if o, dup := uids[e.UID]; dup {
			bad("uid %d is both %s and %s", e.UID, o, n)
		}
		uids[e.UID] = n
	}
	for _, u := range m.Users {
		e, ok := pw.ents[u.Name]
		if !ok {
			bad("user %s is missing from /etc/passwd", u.Name)
			continue
		}
		if u.UID != nil && e.UID != *u.UID {
			bad("user %s has uid %d, want %d", u.Name, e.UID, *u.UID)
		}
		g, ok := gr.ents[u.Group]
		if !ok || g.GID != e.GID {
			bad("user %s: primary group %s (gid %d) does not match", u.Name, u.Group, e.GID)
		}
		if e.Home != u.Home || e.Shell != u.Shell || e.Gecos != u.Description {
			bad("user %s: passwd line %s does not match the generation", u.Name, e.line())
		}
		for _, sg := range u.Groups {
			if g, ok := gr.ents[sg]; !ok || !slices.Contains(g.Members, u.Name) {
				bad("user %s is not a member of %s", u.Name, sg)
			}
		}
		s, ok := sp.ents[u.Name]
		wantPass := u.PasswordLock
		if u.PasswordHashFile != "" {
			src, err := t.storeFile(u.PasswordHashFile)
			if err == nil {
				b, _ := t.Root.ReadFile(src)
				wantPass = strings.TrimSpace(string(b))
				if fi, err := t.Root.Stat(src); err != nil || fi.Mode().Perm() != 0o400 || !ownedBy(fi, 0, 0) {
					bad("user %s: the password hash's store file is not root-only (0400)", u.Name)
				}
			}
		}
		if !ok || s.Pass != wantPass || s.Rest[5] != "" {
			bad("user %s: /etc/shadow does not hold the generation's password", u.Name)
		}
		if u.CreateHome {
			fi, err := t.Root.Stat(u.Home)
			if err != nil || !fi.IsDir() || !ownedBy(fi, e.UID, e.GID) {
				bad("user %s: home %s missing or not owned by the user", u.Name, u.Home)
			}
		}
	}
	for _, g := range m.Groups {
		e, ok := gr.ents[g.Name]
		if !ok {
			bad("group %s is missing from /etc/group", g.Name)
			continue
		}
		if g.GID != nil && e.GID != *g.GID {
			bad("group %s has gid %d, want %d", g.Name, e.GID, *g.GID)
		}
		for _, mb := range g.Members {
			if !slices.Contains(e.Members, mb) {
				bad("group %s lacks member %s", g.Name, mb)
			}
		}
	}
	return probs
}
