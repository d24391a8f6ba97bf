.PHONY: install demo test lint up down status
SHELL := /bin/bash

install:
	scripts/install.sh

demo: install
	scripts/demo.sh

test: install
	scripts/test.sh

lint:
	.venv/bin/ruff check tgstream tests benchmarks
	.venv/bin/ruff format --check tgstream tests benchmarks
	.venv/bin/mypy

up:
	.venv/bin/tgstream dev up

down:
	.venv/bin/tgstream dev down

status:
	.venv/bin/tgstream dev status
