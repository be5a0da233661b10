# swarmbackup: backup and restore for Docker Swarm.
SHELL := /bin/bash
GO ?= go
MODULE := github.com/swarmbackup/swarmbackup
VERSION := $(shell cat VERSION)
COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -s -w -X $(MODULE)/shared/buildinfo.Version=$(VERSION) -X $(MODULE)/shared/buildinfo.Commit=$(COMMIT)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: all build install test test-unit test-e2e demo bench bench-many bench-prune bench-scale bench-index soak lab-up lab-down vet clean

all: build

build:
	$(GOBUILD) -o bin/docker-swarmbackup ./cli-plugin
	$(GOBUILD) -o bin/swarmbackup-volume-plugin ./volume-plugin

# Installs into the engine DOCKER_HOST points at; run once per engine.
install: build
	scripts/install

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; echo 'gofmt: files above need formatting'; exit 1; }

test-unit: vet
	$(GO) test -count=1 ./...

# Brings up a fresh 3-manager lab with MinIO, installs both plugins, runs the end-to-end tests.
test-e2e: build
	scripts/e2e

test: test-unit test-e2e

demo: build
	scripts/demo

# Speed and memory against restic, kopia and a tar+zstd archive; writes BENCHMARKS.md.
bench:
	scripts/bench

# ls, status and a snapshot with 10,000 snapshot records, on a fresh lab.
bench-many: build
	scripts/bench-many

# A million small files against restic and kopia (FILES=N for another count); takes long.
bench-scale:
	scripts/bench-scale

# The index of a repository of 10 million blobs inside the plugin's memory limit (BLOBS=N).
bench-index:
	scripts/bench-index

# The space prune gives back after half of the data is forgotten, beside restic's.
bench-prune:
	scripts/bench-prune

# A 30-minute soak with random faults on a fresh lab (SOAK=10m for another length); not part of test.
soak: build
	scripts/soak

lab-up:
	scripts/lab up 3

lab-down:
	scripts/lab down

clean:
	rm -rf bin
