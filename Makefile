# crimecast: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean-outputs

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -c constraints.txt
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/crimecast demo --out demo_out

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy src
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/bench_generate.py
	$(BIN)/python benchmarks/bench_clean.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_serving.py
	mkdir -p bench_out && $(BIN)/crimecast generate --start 2020-01-01 --end 2024-12-31 \
		--out bench_out/la_2020_2024.csv.gz
	$(BIN)/python benchmarks/bench_scale.py bench_out/la_2020_2024.csv.gz 3 area_1h grid250_1d
	$(BIN)/python benchmarks/bench_original.py bench_out/la_2020_2024.csv.gz 3

clean-outputs:
	rm -rf demo_out runs bench_out
