# Quick start: `make demo` (set up + run the bundled demo + build report.html), `make test`.
PYTHON ?= python3
VENV := .venvs/workflow
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: setup demo report test clean

setup: $(VENV)/ready

$(VENV)/ready: envs/workflow.yaml tools/build_env.py
	bash tools/install_system_deps.sh
	$(PYTHON) tools/build_env.py envs/workflow.yaml $(VENV) --ready $@

demo: setup
	$(SNAKEMAKE) --cores all
	$(MAKE) report

report: setup
	$(SNAKEMAKE) --report report.html
	@echo "Results: results/  Report: report.html"

test: setup
	$(VENV)/bin/python -m pytest

clean:
	rm -rf results logs .snakemake report.html
