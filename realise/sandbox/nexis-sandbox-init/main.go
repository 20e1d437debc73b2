// Command nexis-sandbox-init is the init of nexis build sandboxes as a
// program of its own. nexis starts it (from beside its own executable)
// inside the fresh namespaces of every sandboxed build; without it, nexis
// re-executes itself, which works the same. The init is the C constructor
// in realise/sandbox/init.c, which takes over before main. It is not
// meant to be run by hand.
//
//	go build -ldflags '-linkmode external -extldflags -static' -o bin/nexis-sandbox-init ./realise/sandbox/nexis-sandbox-init
package main

import "github.com/nexisos/nexis/realise/sandbox"

func main() { sandbox.Main() }
