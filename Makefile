# Build, test and package scopewatch.
#
#   make build                    bin/scopewatch, static, version-stamped
#   make test                     the whole test suite, as CI runs it
#   make package VERSION=1.2.3    dist/scopewatch_1.2.3_amd64.deb and dist/scopewatch-1.2.3-1.x86_64.rpm
#   GOARCH=arm64 make package     the same for another architecture
#
# VERSION defaults to `git describe`: a tag v1.2.3 gives 1.2.3, commits
# after it 1.2.3.4.gabcdef1, a repository without tags 0.0.0~git<commit>
# and a tree outside git 0.0.0~dev; the last two sort before every release
# in dpkg and rpm.

GO ?= go
DESCRIBE := $(shell git describe --tags --always --dirty 2>/dev/null)
VERSION ?= $(if $(DESCRIBE),$(shell echo '$(DESCRIBE)' | \
	sed -E 's/^v([0-9])/\1/; /^[0-9]+\.[0-9]/!s/^/0.0.0~git/; s/-/./g'),0.0.0~dev)
BIN := bin/scopewatch

.PHONY: build test package clean

# Static (no cgo), without local paths, with the VCS revision (whatever
# GOFLAGS says), and stamped so that
# `scopewatch version` prints VERSION.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN) ./cmd/scopewatch

test:
	$(GO) test -race ./...

# cmd/mkpackage is a module of its own, so that nfpm's dependencies stay
# out of the daemon's.
package: build
	cd cmd/mkpackage && $(GO) run . --version '$(VERSION)' --binary '$(CURDIR)/$(BIN)' --out '$(CURDIR)/dist' --src '$(CURDIR)'

clean:
	rm -rf bin dist
