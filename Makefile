# One command each: `make run` starts a demo, `make test` runs everything CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
BUNDLE := portal/static/portal.js
CATALOGUES := $(wildcard portal/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)
# Debian packages the browser and onion tests drive; installed only when running as root.
SYSTEM_PACKAGES := tor firefox-esr chromium fonts-noto-core fonts-noto-cjk

.PHONY: help setup system-deps lint format test test-python test-js bench run clean translations dist verify-bundle

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[server,dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(BUNDLE): $(NODE_STAMP) $(wildcard js/*.js)
	npm run --silent build

portal/translations/%/LC_MESSAGES/messages.mo: portal/translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --statistics -l $* -i $< -o $@

setup: system-deps $(STAMP) $(BUNDLE) $(COMPILED) ## Install everything the portal and its tests need

dist: $(STAMP) $(BUNDLE) $(COMPILED) ## The wheel and an offline wheelhouse for both profiles, in dist/
	$(BIN)/python tools/dist.py --out dist

translations: $(STAMP) ## Re-extract the public site's texts into the six catalogues (then translate)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --add-location=file -c TRANSLATORS: -w 100 \
		--project="Reprisals portal" --copyright-holder="the reprisals portal's authors" \
		-o portal/translations/messages.pot .
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations -w 100 \
		--previous --ignore-obsolete

system-deps: ## Install tor, Firefox ESR and Chromium from Debian when running as root
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "Not root: the tests that need$$missing will be skipped (apt-get install$$missing)"; \
	fi

lint: $(STAMP) ## Ruff (lint and format check) and mypy, strict on portal/
	$(BIN)/ruff check portal tests bench tools
	$(BIN)/ruff format --check portal tests bench tools
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix portal tests bench tools
	$(BIN)/ruff format portal tests bench tools

verify-bundle: $(STAMP) $(BUNDLE) $(COMPILED) ## Rebuild portal.js, sealer.js and sealer.html from the tracked source in a temporary folder and compare (KEY=, URL=)
	$(BIN)/python tools/verify_bundle.py $(if $(KEY),--key $(KEY),$(if $(wildcard keys/team.pub),--key keys/team.pub)) $(if $(URL),--url $(URL))

test-js: $(BUNDLE) ## JavaScript unit tests (Node's test runner) against tests/vectors
	npm test --silent

test-python: setup ## The Python suite, including browsers and the private Tor network
	$(BIN)/pytest

test: setup lint test-js test-python ## Everything: lint, JavaScript tests, Python tests

bench: setup ## Benchmarks: throughput, memory, bundle size (figures printed as ratios)
	$(BIN)/python -m bench

run: setup ## Set up a demo (demo key, demo staff account) and serve both sites on loopback
	$(BIN)/python -m portal.demo

clean: ## Remove build output and local state (not keys)
	rm -rf $(VENV) node_modules $(BUNDLE) $(COMPILED) build dist instance .pytest_cache .mypy_cache .ruff_cache test-artifacts
