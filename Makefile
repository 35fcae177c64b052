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

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the committed gRPC code from the proto (pinned grpcio-tools: no diff expected).
proto: install
	cd protos && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=../client/src \
	  --pyi_out=../client/src --grpc_python_out=../client/src recs/v1/recommendation_service.proto

proto-check: install
	$(BIN)/python -m pytest -q tests/test_proto_generated.py

$(SERVE_DIR)/raw/watch_log.csv: | $(STAMP)
	$(BIN)/recs synth --out $(SERVE_DIR)/raw --users $(SERVE_USERS) --items $(SERVE_ITEMS) \
	  --events $(SERVE_EVENTS) --seed 7

$(SERVE_DIR)/dataset/interactions.csv: $(SERVE_DIR)/raw/watch_log.csv
	$(BIN)/recs prepare --watch-log $(SERVE_DIR)/raw/watch_log.csv \
	  --items $(SERVE_DIR)/raw/items.csv --out $(SERVE_DIR)/dataset

$(SERVE_DIR)/model/meta.json: $(SERVE_DIR)/dataset/interactions.csv
	$(BIN)/recs train --data $(SERVE_DIR)/dataset --out $(SERVE_DIR)/model

# Every user's top 25, stored with the model: GetRecommendations answers by lookup.
$(SERVE_DIR)/model/answers.json: $(SERVE_DIR)/model/meta.json
	$(BIN)/recs precompute --model $(SERVE_DIR)/model

serve: install $(SERVE_DIR)/model/answers.json
	$(BIN)/recs serve --backend local --model $(SERVE_DIR)/model \
	  --catalog $(SERVE_DIR)/dataset/items.csv --host $(HOST) --port $(PORT)

# The Streamlit page on the `make serve` service (run `make serve` in another terminal first).
ui: install
	$(BIN)/recs ui --target $(HOST):$(PORT) --port $(UI_PORT)

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf build
