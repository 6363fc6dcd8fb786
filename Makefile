# spatialmix — set-up, tests, demo. Everything runs inside .venv (made by `make setup`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: setup test test-fast demo reproduce-cpu report-cpu report-screenshot timm-cpu timm-report ladder-cpu ladder-report bench lint clean

## setup: create .venv and install spatialmix with its dependencies (torch pinned by constraints.txt)
setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	@$(BIN)/python -c "import torch, torchvision, spatialmix_cli; print('spatialmix', spatialmix_cli.__version__, '| torch', torch.__version__, '| torchvision', torchvision.__version__)"

## test: the whole test suite (CPU, synthetic data; real-data tests skip when ../shared/datasets is absent)
test:
	$(BIN)/python -m pytest -q

## test-fast: skip the tests marked slow
test-fast:
	$(BIN)/python -m pytest -q -m "not slow"

## demo: a short real run: channels-only vs fully learned ConvMixer on Fashion-MNIST; prints both accuracies
demo:
	@mkdir -p $(dir $(DEMO_OUT))
	$(BIN)/spatialmix train --recipe recipes/demo.yaml --out $(DEMO_OUT) --overwrite --json > $(DEMO_OUT).jsonl
	@$(BIN)/python -c "import json,sys; [print(f\"{r['learn']:>5}: test accuracy {100*r['test_acc']:.2f}%  ({r['seconds']:.0f}s, {r['params_trainable']:,} trainable params)\") for r in map(json.loads, open(sys.argv[1]))]" $(DEMO_OUT).jsonl

## reproduce-cpu: every *-cpu.yaml twin on real (Fashion-)MNIST, 3 seeds each (5 for fig3 / fig5), then the report in
## docs/reproduction-cpu. One target per twin (make repro-fig5-cpu, ...), each under an hour on 2 cores;
## resumable: finished runs are skipped, so a killed target continues where it stopped (attacks re-run).
## The small run records (config, result, metrics, attack lines) land in docs/reproduction-cpu/runs and are
## committed, so `make report-cpu` rebuilds the report without retraining and later work can add seeds.
REPRO_OUT  ?= docs/reproduction-cpu
REPRO_RUNS := $(REPRO_OUT)/runs
# Each twin's recipe names the command that runs it (its `command:`), so `spatialmix run` needs no list.
TWINS := fig3-cpu fig5-cpu fig4-cpu fig2-cpu fig7-cpu fig6-cpu figB4-cpu figB5-cpu

.PHONY: $(addprefix repro-,$(TWINS))
$(addprefix repro-,$(TWINS)): repro-%:
	@mkdir -p $(REPRO_RUNS); start=$$(date +%s); \
	echo "== spatialmix run recipes/$*.yaml --out $(REPRO_RUNS)/$*"; \
	$(BIN)/spatialmix run recipes/$*.yaml --out $(REPRO_RUNS)/$* --json > $(REPRO_RUNS)/$*.jsonl; \
	echo "{\"target\": \"repro-$*\", \"seconds\": $$(( $$(date +%s) - start )), \"date\": \"$$(date -u +%FT%TZ)\"}" \
	  | tee -a $(REPRO_OUT)/times.jsonl

## report-cpu: the report from the committed run records alone (no training)
report-cpu:
	$(BIN)/spatialmix report $(REPRO_RUNS) --out $(REPRO_OUT) --format both --draws 32

reproduce-cpu: $(addprefix repro-,$(TWINS))
	@$(MAKE) --no-print-directory report-cpu

## report-screenshot: the report-cpu report, then report.html rendered in headless Chromium; fails if an image is missing
report-screenshot:
	$(BIN)/spatialmix report $(REPRO_RUNS) --out $(REPRO_OUT) --format both --draws 32 --screenshot $(REPRO_OUT)/report-screenshot.png

## timm-cpu: full / chans / space for two timm families (MobileNetV3-small, ConvNeXt-atto) on real Fashion-MNIST,
## 3 seeds (recipes/timm-cpu.yaml; ~35 min on an idle 2-core CPU); resumable like the twins: finished runs are
## skipped. Records land in docs/timm-cpu/runs (committed), then the report in docs/timm-cpu.
TIMM_OUT ?= docs/timm-cpu
timm-cpu:
	@mkdir -p $(TIMM_OUT)/runs; start=$$(date +%s); \
	$(BIN)/spatialmix run recipes/timm-cpu.yaml --out $(TIMM_OUT)/runs/timm-cpu --json > $(TIMM_OUT)/runs/timm-cpu.jsonl; \
	echo "{\"target\": \"timm-cpu\", \"seconds\": $$(( $$(date +%s) - start )), \"date\": \"$$(date -u +%FT%TZ)\"}" \
	  | tee -a $(TIMM_OUT)/times.jsonl
	@$(MAKE) --no-print-directory timm-report

## timm-report: the timm-cpu report from its committed run records (no training)
timm-report:
	$(BIN)/spatialmix report $(TIMM_OUT)/runs --out $(TIMM_OUT) --format both --draws 32

## ladder-cpu: the learn-mode ladder beyond the paper (recipes/ladder-cpu.yaml): the fig5-cpu ConvMixer under
## head / norm / chans / full / space and an MLP-Mixer under full / chans / space on real Fashion-MNIST, 3 seeds;
## resumable like the twins. Records land in docs/ladder-cpu/runs (committed), then the report in docs/ladder-cpu.
LADDER_OUT ?= docs/ladder-cpu
ladder-cpu:
	@mkdir -p $(LADDER_OUT)/runs; start=$$(date +%s); \
	$(BIN)/spatialmix run recipes/ladder-cpu.yaml --out $(LADDER_OUT)/runs/ladder-cpu --json > $(LADDER_OUT)/runs/ladder-cpu.jsonl; \
	echo "{\"target\": \"ladder-cpu\", \"seconds\": $$(( $$(date +%s) - start )), \"date\": \"$$(date -u +%FT%TZ)\"}" \
	  | tee -a $(LADDER_OUT)/times.jsonl
	@$(MAKE) --no-print-directory ladder-report

## ladder-report: the ladder-cpu report from its committed run records (no training)
ladder-report:
	$(BIN)/spatialmix report $(LADDER_OUT)/runs --out $(LADDER_OUT) --format both --draws 32

## bench: training / eval / PGD-2 throughput of the project's paths vs plain PyTorch (ConvMixer-256/8, full and
## chans, CIFAR-shaped random data); writes docs/bench/bench.json
## (PEAK_GFLOPS: the machine's float32 peak for the "% of peak" column; 150 ≈ 2 Zen 3 cores — set it for yours)
BENCH_OUT ?= docs/bench/bench.json
PEAK_GFLOPS ?= 150
bench:
	@mkdir -p $(dir $(BENCH_OUT))
	$(BIN)/spatialmix bench --preset convmixer_256_8_k5_p2 --learn full,chans --peak-gflops $(PEAK_GFLOPS) --out $(BENCH_OUT)

lint:
	$(BIN)/ruff check spatialmix_cli tests
	$(BIN)/ruff format --check spatialmix_cli tests

clean:
	rm -rf runs .pytest_cache build *.egg-info
