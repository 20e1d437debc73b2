// Package profile writes a CPU profile of a whole nexis process when
// the environment asks for one: the switch and store benchmarks are
// whole processes, and this is how their time is taken apart
// (go tool pprof bin/nexis FILE).
package profile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// StartFromEnv starts a CPU profile into the file the variable env
// names, when it is set; stop ends it (a no-op when none was started).
func StartFromEnv(env string) (stop func(), err error) {
	name := os.Getenv(env)
	if name == "" {
		return func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", env, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
