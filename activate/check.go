package activate

import "fmt"

// Check walks the root and reports every way it differs from what sys
// says: the checker of the tests, and `nexis activate --check`. Links
// are resolved inside the root, as they would be with the root mounted
// as /. An empty result means the root is exactly the generation.
func (t *Target) Check(sys *System) ([]string, error) {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	m := sys.Manifest

	if cur, err := t.Root.Readlink("/etc/static"); err != nil || cur != sys.Logical+"/etc" {
		bad("/etc/static points at %q, want %s/etc", cur, sys.Logical)
	}
	if cur, err := t.Root.Readlink("/run/current-system"); err != nil || cur != sys.Logical {
		bad("/run/current-system points at %q, want %s", cur, sys.Logical)
	}
	st, err := t.LoadState()
	if err != nil {
		return nil, err
	}
	if st.Status != statusActive || st.System != sys.Logical {
		bad("activation record: status %q of %s, want active of %s", st.Status, st.System, sys.Logical)
	}

	probs = append(probs, t.checkEtc(sys, st)...)
	probs = append(probs, t.checkRuntimeDirs(m)...)
	probs = append(probs, t.checkAccounts(m)...)
	probs = append(probs, t.checkFiles(m)...)
	probs = append(probs, t.checkSecrets(m)...)
	probs = append(probs, t.checkServices(m, st)...)
	return probs, nil
}
