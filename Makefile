# tokenproxy: build and packaging. The tests are `go test ./...` (README.md).
#
#   make build     static binary dist/tokenproxy (CGO off, -trimpath)
#   make deb       dist/tokenproxy_<version>_<arch>.deb, built with nfpm's Go
#                  library (deploy/package, its own module)
#   make clean
#
# Variables: VERSION (Debian syntax, default 0.0.0~dev), ARCH (Go name,
# default the host's), DIST (output directory, default dist).
# SOURCE_DATE_EPOCH defaults to the last commit's time, so two builds of a
# commit give the same package.

GO      ?= go
VERSION ?= 0.0.0~dev
ARCH    ?= $(shell $(GO) env GOARCH)
DIST    ?= dist
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

.PHONY: all build deb clean

all: build

build:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -ldflags='-s -w' -o $(DIST)/tokenproxy ./cmd/proxy

# -root ../..: the package's sources (nfpm.yaml) are relative to the
# repository root, and so are DIST and the binary unless DIST is absolute.
deb: build
	cd deploy/package && $(GO) run . -root ../.. -config deploy/package/nfpm.yaml \
		-binary $(DIST)/tokenproxy -version '$(VERSION)' -arch $(ARCH) -out $(DIST)

clean:
	rm -rf $(DIST)
