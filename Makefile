# The two commands of the README:
#   make demo   -- set up (Python venv .venv) and run the README's relaxation workflow on the embedded local queue
#   make test   -- set up everything (venv, fitters, Slurm, SGE, sshd, pw.x) and run the whole test suite
.PHONY: demo test setup lint bench

demo:
	bash ci/setup-python.sh test
	bash examples/seed_workflow/run_demo.sh

test:
	bash ci/run-tests.sh

setup:
	bash ci/setup-python.sh test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench:
	.venv/bin/python bench/pool_speedup.py
