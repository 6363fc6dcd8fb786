"""How long the un-shuffle twins would have to train: final test PSNR of full and chans after budgets of
4, 8, 16, 32 and 64 epochs (one-cycle schedule each; test PSNR every epoch from 32 on), on MNIST at
14×14, width 32, depth 5, kernel 7 (receptive field 31 ≥ the 27 pixels that 14 px need).

    .venv/bin/python docs/reproduction-cpu/sizing/unshuffle_budget.py mnist   # about 45 min on 2 cores

Writes run directories under runs/sizing/unshuffle-<dataset>-d5 and one JSON line per run on stdout; the
records of the run made for the recipes' notes are beside this file.
"""

import json
import sys
import time
from pathlib import Path

from spatialmix_cli import TrainConfig, train

dataset = sys.argv[1] if len(sys.argv) > 1 else "mnist"
out = Path("runs/sizing") / f"unshuffle-{dataset}-d5"
for epochs in (4, 8, 16, 32, 64):
    for learn in ("full", "chans"):
        cfg = TrainConfig.from_dict(dict(
            task="unshuffle", arch="convmixer_unshuffle", dataset=dataset, image_size=14, width=32, depth=5,
            kernel=7, subset=10000, test_subset=2000, epochs=epochs, batch_size=128, lr=0.02, weight_decay=0.01,
            eval_every=1 if epochs >= 32 else 0, learn=learn, device="cpu",
        ))  # fmt: skip
        start = time.time()
        result = train(cfg, out / f"{learn}-e{epochs}")
        print(json.dumps({"learn": learn, "epochs": epochs, "psnr": round(result.test_psnr, 3),
                          "train_seconds": result.seconds, "wall": round(time.time() - start, 1)}), flush=True)  # fmt: skip
