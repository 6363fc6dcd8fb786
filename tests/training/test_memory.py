"""Memory bombs that pass validation are refused from their sizes, before anything is allocated: one line
``error: ... needs about <estimate> (<how it was counted>), more than the <budget>; <fix>``, exit 2, nothing
written. The estimates stay within 2x of what is really allocated; idx and YAML files are read with bounds.
"""

from __future__ import annotations

import gzip
import json
import struct
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from spatialmix_cli.analysis.spectra import envelope
from spatialmix_cli.config.safeyaml import parse_yaml
from spatialmix_cli.data import budget, load_dataset, make_synthetic
from spatialmix_cli.errors import ConfigError, DataError, ResourceError
from spatialmix_cli.store.checkpoint import load_model, read_metadata
from spatialmix_cli.training import memory
from spatialmix_cli.training.loop import train

from conftest import disk_snapshot, tiny_config

TINY = ["--dataset", "synthetic", "--device", "cpu", "--width", "16", "--depth", "2", "--set", "kernel=3",
        "--set", "patch=4", "--epochs", "1", "--set", "subset=64", "--set", "test_subset=32",
        "--logger", "none"]  # fmt: skip


@pytest.fixture(autouse=True)
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same 1 GiB budget on every machine, so a refusal does not depend on its memory."""
    monkeypatch.setenv(budget.ENV_VAR, "1G")


@pytest.fixture(scope="module")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("good") / "run"
    train(tiny_config(epochs=1, subset=64, test_subset=32), run_dir)
    return run_dir


def _refused(cli, tmp_path: Path, args: list, *messages: str) -> str:
    """Run ``args``; assert the one-line refusal (exit 2, nothing on stdout, no file changed), fast."""
    before = disk_snapshot(tmp_path)
    started = time.perf_counter()
    result = cli(*args)
    seconds = time.perf_counter() - started
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for message in messages:
        assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert disk_snapshot(tmp_path) == before, "a refused command changed files on disk"
    assert seconds < 5, f"the refusal took {seconds:.1f} s: something was allocated or computed first"
    return lines[0]


# --- the bombs, through the real CLI -------------------------------------------------------------------
def test_huge_synthetic_subset_is_refused_from_its_size(cli, tmp_path: Path) -> None:
    line = _refused(cli, tmp_path, ["train", *TINY, "--set", "subset=1000000000", "--out", "run"],
                    "needs about 3.1 TB", "1000000032 images x 3 x 32 x 32 bytes", "lower subset")  # fmt: skip
    assert "allowed by $SPATIALMIX_MEMORY_LIMIT" in line


def test_drawing_huge_synthetic_data_is_refused_for_every_command() -> None:
    with pytest.raises(
        ResourceError, match=r"drawing 1000000000 \+ 256 synthetic images needs about 52\.2 TB"
    ):
        make_synthetic(10**9, 256)


def test_dry_run_of_a_huge_model_counts_on_the_meta_device(cli) -> None:
    """Width 65536 with 1024-tap kernels is 146e9 parameters (584 GB of weights): counted, not built."""
    started = time.perf_counter()
    # image_size 4096: an 8x8 feature map (32 px / patch 4) could not use more than 15 of the 1024 taps
    result = cli(
        "train",
        *TINY,
        "--width",
        "65536",
        "--set",
        "kernel=1024",
        "--set",
        "image_size=4096",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["params_trainable"] == 146_033_672_202
    assert report["memory_bytes"] > 4 * 4 * report["params_trainable"]  # weights, grads, 2 AdamW moments
    assert time.perf_counter() - started < 5


def test_training_a_huge_model_is_refused_before_it_is_built(cli, tmp_path: Path) -> None:
    _refused(cli, tmp_path, ["train", *TINY, "--width", "65536", "--set", "kernel=1024", "--set", "image_size=4096",
                             "--out", "run"], "146033672202 trainable parameters x 4 bytes x 4")  # fmt: skip


def test_huge_image_size_is_refused_before_resizing(cli, tmp_path: Path) -> None:
    _refused(cli, tmp_path, ["train", *TINY, "--set", "image_size=4000", "--out", "run"],
             "needs about", "96 images x 3 x 4000 x 4000 bytes", "lower")  # fmt: skip
    _refused(cli, tmp_path, ["train", *TINY, "--set", "image_size=5000", "--out", "run"],
             "image_size must be at most 4096")  # fmt: skip


def test_huge_crop_pad_is_refused_before_padding(cli, tmp_path: Path) -> None:
    _refused(cli, tmp_path, ["train", *TINY, "--set", "crop_pad=1000000", "--out", "run"],
             "needs about 768.0 TB", "64 x 3 x 2000032^2 bytes", "lower crop_pad")  # fmt: skip


def test_crop_pad_beyond_the_image_side_is_refused(cli, tmp_path: Path) -> None:
    _refused(cli, tmp_path, ["train", *TINY, "--set", "crop_pad=40", "--out", "run"],
             "crop_pad 40 is larger than the image side (32 pixels)")  # fmt: skip


def test_spectrum_pad_beyond_the_limit_is_refused(cli, tmp_path: Path, good_run: Path) -> None:
    _refused(cli, tmp_path, ["spectrum", good_run, "--pad", "1000000"], "<= 8192, got 1000000")


def test_spectrum_pad_that_cannot_fit_is_refused_with_the_estimate(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(budget.ENV_VAR, "100M")  # one 8192² FFT needs 1.6 GB + 1.6 GB for the two envelopes
    _refused(cli, tmp_path, ["spectrum", "--random", "4", "--kernel", "3", "--pad", "8192"],
             "the spectrum at pad 8192 needs about 3.2 GB", "1 x 8192^2 x 24 bytes", "lower --pad")  # fmt: skip


def test_spectrum_of_a_billion_random_filters_is_refused(cli, tmp_path: Path) -> None:
    _refused(cli, tmp_path, ["spectrum", "--random", "1000000000", "--kernel", "3"],
             "a bank of 1000000000 filters of 3x3 needs about 36.0 GB", "lower N")  # fmt: skip


def test_checkpoint_with_a_huge_image_size_is_refused_on_load(cli, tmp_path: Path, good_run: Path) -> None:
    src, path = good_run / "model.safetensors", tmp_path / "ckpt.safetensors"
    meta = read_metadata(src)
    meta["dataset"]["image_size"] = 2**20  # resizing to it would need petabytes
    save_file(dict(load_model(src).state_dict()), str(path), metadata={"spatialmix": json.dumps(meta)})
    # refused on load by image_size's own bounds (issue 31: the options' bounds hold for stored sizes too),
    # before the memory check would have priced the resize
    _refused(cli, tmp_path, ["attack", path, "--n", "8"],
             "dataset.image_size must be at most 4096 pixels, got 1048576", "damaged spatialmix metadata")  # fmt: skip


# --- estimates against what is really allocated ---------------------------------------------------------
def _peak_rss_delta(fn) -> int:
    """Bytes the peak resident set grew by while ``fn`` ran (Linux: VmHWM, reset via clear_refs)."""

    def status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap pages back to the OS: reuse must fault again
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("cannot reset the peak RSS here (glibc, /proc/self/clear_refs)")
    base = status("VmRSS:")
    fn()
    return status("VmHWM:") - base


def test_saved_activations_on_meta_match_a_real_forward() -> None:
    """The meta-device count is exactly what autograd saves on the CPU."""
    from spatialmix_cli.models import create_model

    cfg = tiny_config()
    kwargs = cfg.model_kwargs(make_synthetic(2, 2).info)
    real = memory.saved_activations(create_model(cfg.arch, **kwargs).train(), torch.rand(8, 3, 32, 32))
    with torch.device("meta"):
        meta = memory.saved_activations(create_model(cfg.arch, **kwargs).train(), torch.empty(8, 3, 32, 32))
    assert meta == real and real[0] > 0


@pytest.mark.parametrize("case", ["synthetic", "resize", "fft"])
def test_estimates_are_within_2x_of_the_measured_peak(case: str) -> None:
    if case == "synthetic":
        n, estimate = 4096, budget.images_bytes(4096 + 8, 3, 32, budget.SYNTHETIC_BYTES_PER_PIXEL)
        measured = _peak_rss_delta(lambda: make_synthetic(n, 8))
    elif case == "resize":
        data = make_synthetic(24, 8)
        estimate = budget.resize_bytes(32, 3, 32, 768)
        measured = _peak_rss_delta(lambda: data.resized(768))
    else:
        from spatialmix_cli.analysis.spectra import spectral_envelope

        bank = torch.rand(16, 3, 3)
        estimate = envelope.fft_bytes(16, 1024)
        measured = _peak_rss_delta(lambda: spectral_envelope(bank, 1024))
    print(f"{case}: estimate {estimate}, measured {measured}, ratio {measured / estimate:.2f}")
    assert estimate / 2 <= measured <= estimate * 2, (estimate, measured)


def test_training_step_estimate_is_within_2x_of_the_measured_peak() -> None:
    """One AdamW step of a ConvMixer-64/2 on a batch of 64: activations, gradients, moments, float batch."""
    from spatialmix_cli.training.loop import build_model, build_optimizer, train_step
    from spatialmix_cli.training.runtime import to_float
    from spatialmix_cli.training.tasks import Classify

    cfg = tiny_config(width=64, depth=2, patch=2, batch_size=64, crop_pad=0)
    estimate = memory.training_estimate(cfg)
    model = build_model(cfg, make_synthetic(2, 2).info)
    opt = build_optimizer(cfg, model)
    images, labels = torch.zeros(64, 3, 32, 32, dtype=torch.uint8), torch.zeros(64, dtype=torch.long)
    weights = 4 * sum(p.numel() for p in model.parameters())  # allocated before the step: not measured
    expected = sum(p.nbytes for p in estimate.parts if p.name in ("model", "step")) - weights

    def step() -> None:
        train_step(model, opt, Classify(), to_float(images), labels, device=torch.device("cpu"), bf16=False)

    measured = _peak_rss_delta(step)
    print(f"train step: estimate {expected}, measured {measured}, ratio {measured / expected:.2f}")
    assert expected / 2 <= measured <= expected * 2, (expected, measured)


def test_fft_chunk_shrinks_to_what_fits_and_the_envelope_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from spatialmix_cli.analysis.spectra import spectral_envelope
    from spatialmix_cli.analysis.spectra.envelope import fft_chunk

    bank = torch.rand(100, 7, 7)
    whole = spectral_envelope(bank, 256)
    monkeypatch.setenv(budget.ENV_VAR, str(envelope.fft_bytes(3, 256)))
    assert fft_chunk(100, 256) == 3
    assert torch.equal(spectral_envelope(bank, 256), whole)


def test_memory_limit_parsing() -> None:
    assert budget.parse_size("2G") == 2 << 30 and budget.parse_size("512M") == 512 << 20
    assert budget.parse_size("1000") == 1000 and budget.parse_size("1.5GiB") == 3 << 29
    with pytest.raises(ConfigError, match="SPATIALMIX_MEMORY_LIMIT"):
        budget.parse_size("lots")
    assert budget.format_bytes(12_345_678_901) == "12.3 GB"


# --- idx files ----------------------------------------------------------------------------------------
def _idx(dims: tuple[int, ...], body: bytes, magic: bytes = b"\x00\x00\x08") -> bytes:
    return magic + bytes([len(dims)]) + struct.pack(">" + "I" * len(dims), *dims) + body


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(data)


def _fake_mnist(root: Path, n: int = 20, **replace: bytes) -> Path:
    """Valid idx .gz files in torchvision's layout; ``replace`` swaps one file's bytes (by stem)."""
    raw = root / "MNIST" / "raw"
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", n), ("t10k", n // 2)):
        images = torch.randint(0, 256, (count, 28, 28), generator=g, dtype=torch.uint8).numpy().tobytes()
        labels = (torch.arange(count) % 10).to(torch.uint8).numpy().tobytes()
        files = {f"{split}-images-idx3-ubyte": _idx((count, 28, 28), images),
                 f"{split}-labels-idx1-ubyte": _idx((count,), labels)}  # fmt: skip
        for stem, data in files.items():
            _write(raw / f"{stem}.gz", replace.get(stem, data))
    return raw


IDX_CASES = {
    "zero-images": ("train-images-idx3-ubyte", _idx((0, 28, 28), b""), "holds no items"),
    "overflowing-dims": (
        "train-images-idx3-ubyte", _idx((2**32 - 1, 2**32 - 1, 2**32 - 1), b"\x00" * 16),
        "has dims 4294967295 x 4294967295 x 4294967295, expected N x 28 x 28",
    ),
    "too-few-bytes": ("train-images-idx3-ubyte", _idx((20, 28, 28), b"\x00" * 100), "declares 15680 bytes of data, found 100"),
    "too-many-bytes": ("train-labels-idx1-ubyte", _idx((20,), bytes(21)), "more data than the 20 bytes"),
    "label-out-of-range": ("train-labels-idx1-ubyte", _idx((20,), bytes([10] * 20)), "label 10, outside the classes 0..9"),
    "counts-differ": ("train-labels-idx1-ubyte", _idx((19,), bytes(19)), "has 20 images but"),
    "wrong-magic": ("train-images-idx3-ubyte", _idx((20, 28, 28), bytes(15680), magic=b"\x00\x00\x0d"), "not an unsigned-byte idx file"),
    "wrong-ndim": ("train-labels-idx1-ubyte", _idx((20, 1, 1), bytes(20)), "3-dimensional, expected 1"),
    "empty-file": ("t10k-images-idx3-ubyte", b"", "shorter than an idx header"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(IDX_CASES))
def test_corrupt_idx_files_are_data_errors_naming_the_file(tmp_path: Path, case: str) -> None:
    stem, data, message = IDX_CASES[case]
    _fake_mnist(tmp_path, **{stem: data})
    with pytest.raises(DataError, match=message) as err:
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert "MNIST/raw/" in str(err.value) and ("labels" if case == "counts-differ" else stem) in str(
        err.value
    )


def test_valid_idx_files_still_load(tmp_path: Path) -> None:
    _fake_mnist(tmp_path)
    data = load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert data.train_x.shape == (20, 1, 28, 28) and data.train_y.tolist() == [i % 10 for i in range(20)]


def test_idx_header_declaring_terabytes_is_refused_without_reading_on(cli, tmp_path: Path) -> None:
    """A few real bytes behind a header that declares 4e9 images: refused from the header alone."""
    _fake_mnist(tmp_path, **{"train-images-idx3-ubyte": _idx((2**32 - 1, 28, 28), b"\x00" * 64)})
    _refused(cli, tmp_path, ["train", "--dataset", "mnist", "--data-dir", tmp_path, "--set", "download=false",
                             "--device", "cpu", "--width", "8", "--depth", "1", "--epochs", "1", "--out", "run"],
             "train-images-idx3-ubyte.gz needs about 3.4 TB", "4294967295 x 28 x 28 bytes")  # fmt: skip


def test_gzip_bomb_is_never_inflated_past_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """64 MiB of zeros (64 kB compressed) behind a header of 20 images: at most the declared 15680 bytes
    (+ the one that proves there is more) are decompressed, not the 64 MiB."""
    raw = _fake_mnist(tmp_path)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(_idx((20, 28, 28), b""))
        for _ in range(64):
            f.write(bytes(1 << 20))
    from spatialmix_cli.data import sources

    inflated = []

    class Counting(gzip.GzipFile):
        def read(self, size: int = -1) -> bytes:
            data = super().read(size)
            inflated.append(len(data))
            return data

    monkeypatch.setattr(sources.gzip, "GzipFile", Counting)
    with pytest.raises(DataError, match="more data than the 15680 bytes its header declares"):
        load_dataset("mnist", data_dir=str(tmp_path), download=False)
    assert sum(inflated) <= 16 + 15680 + 1


# --- YAML ---------------------------------------------------------------------------------------------
_LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)).replace(
    "*l0", "lol"
)


def test_yaml_billion_laughs_is_refused_quickly(cli, tmp_path: Path) -> None:
    """Ten levels of ten aliases: 1e9 strings if expanded (a validation message's repr would)."""
    (tmp_path / "r.yaml").write_text(_LAUGHS + "base: {epochs: 1}\nnotes: *l9\n")
    _refused(
        cli,
        tmp_path,
        ["train", "--recipe", "r.yaml"],
        "r.yaml: the YAML document holds more than 100000 values",
    )


def test_recursive_yaml_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="more than 100000 values"):
        parse_yaml("notes: &a [*a]\n", "r.yaml")


@pytest.mark.parametrize(
    ("text", "where"),
    [("base: {epochs: 1, epochs: 2}\n", "line 1, column 19: duplicate key 'epochs' (first at line 1)"),
     ("base:\n  epochs: 1\n  lr: 0.1\n  epochs: 2\n", "line 4, column 3: duplicate key 'epochs' (first at line 2)"),
     ("name: a\nbase: {}\nname: b\n", "line 3, column 1: duplicate key 'name'")],
)  # fmt: skip
def test_duplicate_yaml_keys_are_errors_naming_key_and_line(
    cli, tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / "r.yaml").write_text(text)
    _refused(cli, tmp_path, ["train", "--recipe", "r.yaml"], f"r.yaml: invalid YAML at {where}")


def test_merge_keys_may_still_be_overridden() -> None:
    data = parse_yaml("a: &x {epochs: 1, lr: 2}\nb:\n  <<: *x\n  epochs: 3\n", "r.yaml")
    assert data["b"] == {"epochs": 3, "lr": 2}
