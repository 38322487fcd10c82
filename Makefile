# Genesis Temporal: the two commands are `make start` and `make test`.
# Every target installs what is missing first (tools/install-deps.sh is idempotent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: deps build build-asan start start-sqlite-file test unit-test unit-test-asan e2e-test clean
.PHONY: install-schema-postgresql start-postgresql crash-test

deps:
	@bash tools/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DGT_SANITIZE=ON -DGT_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Serves the Temporal API on 127.0.0.1:7233 with an in-memory SQLite database.
start: build
	./$(BUILD)/genesis-temporal --config config/development.yaml

# The same, on a durable SQLite file (./genesis-temporal.db, WAL).
start-sqlite-file: build
	./$(BUILD)/genesis-temporal --config config/development-sqlite-file.yaml

# Production: PostgreSQL at the address of config/production.yaml (127.0.0.1:5432, user
# temporal, password temporal, database temporal), provided by you: e.g. as the postgres
# user, CREATE ROLE temporal LOGIN PASSWORD 'temporal' CREATEDB;
# install-schema-postgresql creates the database when missing and installs the schema
# (persistence/schema/postgres/v2.sql), in the visibility database too when
# persistence.visibilityStore names another one; on a version 1 schema it upgrades it
# (upgrade-v1-to-v2.sql, one transaction); again, it says "already at version 2".
# `bash tools/schema-postgresql.sh upgrade|version [--config FILE]` checks it. The server
# would create the same schema at first open, and refuses any other schema version.
install-schema-postgresql: deps
	bash tools/schema-postgresql.sh setup --config config/production.yaml

start-postgresql: build
	./$(BUILD)/genesis-temporal --config config/production.yaml

unit-test: build
	cd $(BUILD) && ctest --output-on-failure

unit-test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure

e2e-test: build
	bash tests/e2e/run.sh $(BUILD)/genesis-temporal
	BUILD=$(BUILD) bash tools/bench.sh --smoke

# kill -9 under load (SQLite file and a throwaway PostgreSQL), fencing, bad stores.
crash-test: build
	bash tests/crash/run.sh $(BUILD)/genesis-temporal

test: deps
	@$(MAKE) --no-print-directory unit-test
	@$(MAKE) --no-print-directory unit-test-asan
	@$(MAKE) --no-print-directory e2e-test
	@$(MAKE) --no-print-directory crash-test

# Load numbers: gtbench against a fresh server per store (SQLite memory, SQLite file,
# PostgreSQL when available); prints a Markdown table.
.PHONY: bench
bench: build
	BUILD=$(BUILD) bash tools/bench.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
