.PHONY: run test lint fmt bench
run:
	scripts/run
test:
	scripts/test
lint:
	scripts/lint
fmt:
	scripts/fmt
bench:
	scripts/bootstrap && .venv/bin/python -m bench.pipeline
