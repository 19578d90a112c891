.PHONY: run test lint fmt bench bench-quick
run:
	scripts/run
test:
	scripts/test
lint:
	scripts/lint
fmt:
	scripts/fmt
bench:
	scripts/bootstrap && .venv/bin/python -m bench.run $(BENCH_ARGS)
bench-quick:
	scripts/bootstrap && .venv/bin/python -m bench.run --quick $(BENCH_ARGS)
