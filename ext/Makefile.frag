# Appended to the Makefile configure writes (see config.m4). `make` and
# `make install` reach this rule through $(PHP_MODULES); it runs cargo only
# when a source is newer than the module, so `sudo make install` after
# `make` does not need cargo on root's PATH.
RSESSION_SOURCES = $(RSESSION_CRATE_DIR)/Cargo.toml $(RSESSION_CRATE_DIR)/Cargo.lock \
	$(shell find $(RSESSION_CRATE_DIR)/src -name '*.rs')

# cargo metadata names the target directory whatever sets it
# (CARGO_TARGET_DIR, .cargo/config.toml, the default ../target).
$(phplibdir)/rsession.so: $(RSESSION_SOURCES)
	cd $(RSESSION_CRATE_DIR) && $(RSESSION_CARGO_ENV) $(CARGO) build --release --lib --locked
	@target_dir=`cd $(RSESSION_CRATE_DIR) && $(CARGO) metadata --format-version 1 --no-deps \
	  | $(PHP_EXECUTABLE) -n -r 'echo json_decode(stream_get_contents(STDIN))->target_directory;'` \
	  && test -n "$$target_dir" \
	  && $(mkinstalldirs) $(phplibdir) \
	  && cp "$$target_dir/release/librsession.so" $@.tmp && mv $@.tmp $@
	@echo "rsession: built $@"
