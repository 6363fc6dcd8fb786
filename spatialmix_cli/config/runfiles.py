"""The names of a run directory's files (what :mod:`.rundir` reads and writes), free of torch so that the
CLI's help can name them."""

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
STEPS_FILE = "steps.jsonl"  # one line per logged step: step, fractional epoch, running train metrics, lr
LAST_FILE = "last.safetensors"
MODEL_FILE = "model.safetensors"
ATTACKS_FILE = "attacks.jsonl"  # appended to by `spatialmix attack`
RESULT_FILE = "result.json"
UNSHUFFLE_FILE = "unshuffle.json"  # written by `spatialmix unshuffle`: PSNR and its baselines
GRID_FILE = "reconstructions.png"  # written by `spatialmix unshuffle`
RUN_FILES = (
    CONFIG_FILE,
    METRICS_FILE,
    STEPS_FILE,
    LAST_FILE,
    MODEL_FILE,
    RESULT_FILE,
    ATTACKS_FILE,
    UNSHUFFLE_FILE,
    GRID_FILE,
)
