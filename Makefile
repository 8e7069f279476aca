# `make run` and `make test` bootstrap .venv from nothing (only python3 >= 3.11 is needed).
# The interpreter it is made from: the system's own CPython when it is 3.11 or newer and can
# make a venv, else python3 from PATH (`make PYTHON=...` picks another). Distributions build
# theirs optimised (profile-guided, link-time, the interpreter not a shared library);
# pyenv's default build is neither, and ran this gateway's order hops about 25% and its
# browsing hops 5-10% slower (README, Benchmark: the eighth session).
SYSTEM_PYTHON := /usr/bin/python3
PYTHON ?= $(shell $(SYSTEM_PYTHON) -c 'import sys, ensurepip, venv; \
	sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo $(SYSTEM_PYTHON) || echo python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test test-cluster lint bench phone diagram clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

DEMO_ENV := OKRYU_DEMO=$${OKRYU_DEMO:-1} OKRYU_SEED_IF_EMPTY=$${OKRYU_SEED_IF_EMPTY:-1} \
	OKRYU_LOG_FORMAT=$${OKRYU_LOG_FORMAT:-text} OKRYU_SIMULATOR=$${OKRYU_SIMULATOR:-1} \
	OKRYU_ACCESS_LOG=$${OKRYU_ACCESS_LOG:-1}

# `make run SMPP=deliver_sm` (or SMPP=data_sm): the operator's link instead of an aggregator.
# The USSD centre simulator starts beside the gateway (SMPP on 2776, handsets on 8776), the
# gateway binds to it for USSD and sends its SMS over the same bind; dial with
# `.venv/bin/okryu phone --dialect smpp`. The simulator stops with the gateway.
SMPP_DIALOGUE = $(if $(filter data_sm,$(SMPP)),its_session_info,user_message_reference)
SMPP_ENV := OKRYU_USSD_SMPP_HOST=127.0.0.1 OKRYU_USSD_SMPP_PORT=2776 \
	OKRYU_USSD_SMPP_SYSTEM_ID=okryu OKRYU_USSD_SMPP_PASSWORD=secret \
	OKRYU_USSD_SMPP_PROFILE=$(SMPP) OKRYU_USSD_SMPP_DIALOGUE=$(SMPP_DIALOGUE) \
	OKRYU_SMS_PROVIDER=smpp

run: $(STAMP)
ifdef SMPP
	$(BIN)/python -m simulators.ussdc --port 2776 --http-port 8776 --profile $(SMPP) \
		--dialogue $(SMPP_DIALOGUE) & centre=$$!; trap 'kill $$centre' EXIT; \
	$(DEMO_ENV) $(SMPP_ENV) $(BIN)/okryu serve
else
	$(DEMO_ENV) $(BIN)/okryu serve
endif

phone: $(STAMP)
	$(BIN)/okryu phone

# The suite runs on every core, up to four processes (pytest-xdist; each its own PostgreSQL
# database). One process: make test WORKERS=0
WORKERS ?= auto
XDIST    = -n $(WORKERS) $(if $(filter auto,$(WORKERS)),--maxprocesses=4)
test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The whole suite against a 3-master, 3-replica Redis Cluster this starts on loopback (and
# stops, however the run ends). Another set of ports: make test-cluster CLUSTER_PORTS=7200-7205
CLUSTER_PORTS ?= 7100-7105
CLUSTER_DIR   ?= var/redis-cluster
test-cluster: $(STAMP)
	@url=$$($(BIN)/okryu redis-cluster start --ports $(CLUSTER_PORTS) --dir $(CLUSTER_DIR)) && \
	trap '$(BIN)/okryu redis-cluster stop --ports $(CLUSTER_PORTS) --dir $(CLUSTER_DIR)' EXIT && \
	echo "test-cluster: OKRYU_TEST_REDIS_URL=$$url" && \
	OKRYU_TEST_REDIS_URL=$$url $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/okryu flow check

diagram: $(STAMP)
	$(BIN)/okryu flow diagram

bench: $(STAMP)
	$(BIN)/python bench/hop.py

clean:
	rm -rf $(VENV) var .pytest_cache
