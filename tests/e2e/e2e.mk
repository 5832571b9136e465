# End-to-end proofs of issue 6, included by the Makefile.

.PHONY: soak e2e-serve

## soak: every handler under nginx + php-fpm with concurrent load, then the
## fault scenarios; report in .run/e2e/report.md. E2E_HANDLERS, E2E_FAULTS,
## E2E_DURATION (s per handler) narrow or lengthen it.
soak: build
	@./tests/e2e/soak.sh soak

## e2e-serve: the harness's nginx + php-fpm for one handler, left running
## for manual tests (Ctrl-C stops): make e2e-serve HANDLER=rsession-files
e2e-serve: build
	@./tests/e2e/soak.sh serve $(or $(HANDLER),rsession-files)
