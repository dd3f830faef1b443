# Two commands do all set-up: `make demo` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
# Test workers (pytest-xdist). Each worker is a process of its own with JAX's threads, so more
# workers than cores only adds contention; `make test TEST_WORKERS=0` runs serially.
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast bench lint clean

$(PY):
	@interp=$$(bash .ci/find_python); \
	if [ -z "$$interp" ]; then \
	  echo "error: bpinn needs Python >= 3.12; none of python3.13, python3.12, python3 is new enough." >&2; \
	  echo "Install Python 3.12+ (e.g. 'pyenv install 3.12') and run make again." >&2; exit 1; fi; \
	echo "Creating $(VENV) with $$interp"; \
	$$interp -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bpinn run case_studies/heat_diffusion/config.toml -o results/heat_diffusion --overwrite

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=20

# The suite without the tests marked slow (those that sample a posterior): a quick check while
# developing. CI and a release run `make test`, which runs everything.
test-fast: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" --durations=10

bench: $(STAMP)
	$(PY) benchmarks/heat_demo.py
	$(PY) benchmarks/heat_samplers.py

lint: $(STAMP)
	$(VENV)/bin/ruff check bpinn tests case_studies benchmarks

clean:
	rm -rf $(VENV) results
