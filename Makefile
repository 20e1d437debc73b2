# nexis: `make` builds bin/nexis, `make test` runs every test (installing
# the Debian packages the tests need when they are missing).

GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all deps test vet fmt static demo clean

all: bin/nexis

# The sandbox init is a small static program installed beside nexis: each
# build starts it instead of re-executing nexis, about half the CPU.
bin/nexis: deps FORCE
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/nexis ./cmd/nexis
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/nexis-sandbox-init ./realise/sandbox/nexis-sandbox-init

FORCE:

deps:
	@scripts/install-deps
	@$(GO) mod download

# A fully static binary for images and the VM test.
static: deps
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS) -linkmode external -extldflags "-static"' \
		-tags static -o bin/nexis-static ./cmd/nexis

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

demo: bin/nexis
	scripts/demo

clean:
	rm -rf bin
