# Every target installs what it needs: a fresh clone needs only `make serve` or `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export OPENBLAS_NUM_THREADS := 1

# Built-in data for `make serve` (kept under build/, reused when already built).
SERVE_DIR := build/serve
SERVE_USERS ?= 2000
SERVE_ITEMS ?= 1000
SERVE_EVENTS ?= 100000
HOST ?= 127.0.0.1
PORT ?= 50051
UI_PORT ?= 8501

# buf (npm package @bufbuild/buf, pinned in package.json and package-lock.json) keeps the proto
# a contract: `make lint` lints it and checks it against the committed API snapshot.
BUF := node_modules/.bin/buf
API_SNAPSHOT := protos/api-snapshot.json
# The API as a readable JSON image without source info (comments, line numbers): it changes only
# when the descriptors do, so an edit to comments or layout needs no new snapshot.
API_IMAGE = $(BUF) build protos --exclude-source-info -o '-\#format=json' | \
  $(PYTHON) -m json.tool --indent 2 --no-ensure-ascii

.PHONY: install test lint format proto proto-check serve ui bench clean

install: $(STAMP)

# Two distributions, both editable: recs-client (client/: recs.v1, recs.client) and recs.
$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ./client -e '.[dev,ui]'
	$(BIN)/python -c 'from recs.backends.local.kernels import warm_up; warm_up()'  # compile once, cached
	touch $@

test: install
	$(BIN)/python -m pytest -q

lint: install $(BUF)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo  # the layers, .importlinter
	$(BUF) lint protos
	$(BUF) breaking protos --against $(API_SNAPSHOT)
	@set -o pipefail; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; $(API_IMAGE) > "$$tmp" && \
	  if diff -u $(API_SNAPSHOT) "$$tmp"; then echo "$(API_SNAPSHOT) is the current API"; \
	  else echo "$(API_SNAPSHOT) is not the current API: run 'make proto-snapshot'" \
	    "and commit the snapshot with the proto" >&2; exit 1; fi

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the committed gRPC code from the proto (pinned grpcio-tools: no diff expected).
proto: install
	cd protos && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=../client/src \
	  --pyi_out=../client/src --grpc_python_out=../client/src recs/v1/recommendation_service.proto
	@echo "Changed the API? 'make proto-snapshot' checks it with buf breaking, then updates" \
	  "$(API_SNAPSHOT) (make lint fails until the snapshot matches the proto)."

proto-check: install
	$(BIN)/python -m pytest -q tests/test_proto_generated.py

# Installs buf from the npm registry (npm ci: exactly package-lock.json); touch: newer than the lock.
$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# A deliberate API change: buf breaking against the old snapshot first, then the new snapshot.
# A breaking change fails here: it needs a new package (recs.v2), not a new snapshot.
.PHONY: proto-snapshot
proto-snapshot: $(BUF)
	$(BUF) lint protos
	$(BUF) breaking protos --against $(API_SNAPSHOT)
	set -o pipefail; $(API_IMAGE) > $(API_SNAPSHOT).tmp || { rm -f $(API_SNAPSHOT).tmp; exit 1; }
	mv $(API_SNAPSHOT).tmp $(API_SNAPSHOT)

$(SERVE_DIR)/raw/watch_log.csv: | $(STAMP)
	$(BIN)/recs synth --out $(SERVE_DIR)/raw --users $(SERVE_USERS) --items $(SERVE_ITEMS) \
	  --events $(SERVE_EVENTS) --seed 7

$(SERVE_DIR)/dataset/interactions.csv: $(SERVE_DIR)/raw/watch_log.csv
	$(BIN)/recs prepare --watch-log $(SERVE_DIR)/raw/watch_log.csv \
	  --items $(SERVE_DIR)/raw/items.csv --out $(SERVE_DIR)/dataset

# artifacts.py holds the model FORMAT_VERSION: a model of an older format is retrained.
$(SERVE_DIR)/model/meta.json: $(SERVE_DIR)/dataset/interactions.csv backends/local/artifacts.py
	$(BIN)/recs train --data $(SERVE_DIR)/dataset --out $(SERVE_DIR)/model

# Every user's top 25, stored with the model: GetRecommendations answers by lookup.
$(SERVE_DIR)/model/answers.json: $(SERVE_DIR)/model/meta.json
	$(BIN)/recs precompute --model $(SERVE_DIR)/model

serve: install $(SERVE_DIR)/model/answers.json
	$(BIN)/recs serve --config config/serve.toml --backend local --model $(SERVE_DIR)/model \
	  --catalog $(SERVE_DIR)/dataset/items.csv --host $(HOST) --port $(PORT)

# The Streamlit page on the `make serve` service (run `make serve` in another terminal first).
ui: install
	$(BIN)/recs ui --target $(HOST):$(PORT) --port $(UI_PORT)

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build
