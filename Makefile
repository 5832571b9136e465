# rsession — see README.md. Every target installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := build

SO        := $(CURDIR)/target/release/librsession.so
PHP       ?= php
DEMO_PORT ?= 8080
PACKAGES  := php8.2-dev php8.2-cli clang libclang-dev redis-server memcached \
             php8.2-redis php8.2-memcached openssl postgresql mariadb-server \
             php8.2-pgsql php8.2-mysql

.PHONY: deps build test test-valgrind install deb demo bench fuzz clean

## deps: installs the Debian packages rsession needs (as root, via apt-get).
deps:
	@./tests/deps.sh $(PACKAGES)

## build: target/release/librsession.so
build: deps
	cargo build --release

## test: Rust unit tests, then every phpt against the built extension, on
## every store, with the servers started on loopback and stopped after;
## then the install paths (phpize/PIE build of a clean copy, the .deb).
test: build
	@./tests/services.sh start
	@trap './tests/services.sh stop' EXIT; \
	  set -e; source .run/services.env; \
	  cargo test --release --lib; \
	  ./tests/run-phpt.sh $(SO); \
	  ./tests/install.sh

## test-valgrind: the phpt suites with every PHP process under valgrind
## memcheck (USE_ZEND_ALLOC=0): invalid accesses or definite leaks fail.
test-valgrind: build
	@./tests/services.sh start
	@trap './tests/services.sh stop' EXIT; \
	  set -e; source .run/services.env; \
	  RSESSION_VALGRIND=1 ./tests/run-phpt.sh $(SO)

install: build
	install -m 0755 $(SO) "$$(php-config --extension-dir)/rsession.so"
	printf 'extension=rsession.so\n' > /etc/php/8.2/mods-available/rsession.ini
	phpenmod rsession
	@echo "installed; set session.save_handler = rsession in php.ini"

## deb: target/deb/php8.2-rsession_<version>_<arch>.deb (dpkg-deb; see pkg/deb.sh).
deb: build
	@./pkg/deb.sh $(SO)

## demo: serves php/demo on http://127.0.0.1:$(DEMO_PORT) with the files store.
demo: build
	@mkdir -p -m 0700 $(CURDIR)/.run/demo-sessions
	@echo "rsession demo on http://127.0.0.1:$(DEMO_PORT) (files store in .run/demo-sessions); Ctrl-C stops it"
	PHP_CLI_SERVER_WORKERS=4 $(PHP) -n -d extension=$(SO) \
	  -d session.save_handler=rsession \
	  -d session.save_path=$(CURDIR)/.run/demo-sessions \
	  -S 127.0.0.1:$(DEMO_PORT) -t php/demo

## bench: prints figures (never asserts them); php-fpm under nginx with wrk too.
BENCH_PACKAGES := nginx php8.2-fpm wrk
bench: build
	@./tests/deps.sh $(BENCH_PACKAGES)
	@./tests/services.sh start
	@trap './tests/services.sh stop' EXIT; source .run/services.env; \
	  ./php/bench/run.sh $(SO)

## fuzz: each libFuzzer target for FUZZ_SECONDS (default 60); corpus in fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@# cargo-fuzz needs nightly flags; the stable toolchain accepts them this way.
	cd fuzz && for t in save_path session_id settings meta resp_reply memcached_reply; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=512 || exit 1; \
	done

clean:
	cargo clean
	rm -rf .run

# Longer proofs (issue 6) live in their own makefiles.
-include tests/e2e/e2e.mk
