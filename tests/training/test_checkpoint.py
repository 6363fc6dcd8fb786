"""safetensors checkpoints: round trips give identical outputs, need no other input, and every kind of
bad file is one clear CheckpointError."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from spatialmix_cli.data.info import dataset_info
from spatialmix_cli.errors import CheckpointError
from spatialmix_cli.models import create_model
from spatialmix_cli.safefiles import atomic_write_text
from spatialmix_cli.store.checkpoint import load_checkpoint, load_model, read_metadata, save_checkpoint

KWARGS = dict(width=8, depth=2, kernel=3, patch=2, learn="chans", filters="smooth:0.7", seed=4)


def saved(tmp_path: Path, name: str = "convmixer", **kwargs) -> tuple[Path, torch.nn.Module]:
    kwargs = kwargs or KWARGS
    model = create_model(name, **kwargs)
    with torch.no_grad():  # move off the init so a round trip is not trivially equal
        for p in model.parameters():
            p.add_(0.01)
        model.blocks[0][3].running_mean.add_(0.3) if name == "convmixer" else None
    path = tmp_path / "m.safetensors"
    meta = {
        "kind": "model",
        "model": {"name": name, "kwargs": kwargs},
        "dataset": dataset_info("synthetic").to_dict(),
    }
    save_checkpoint(path, model, meta)
    return path, model.eval()


def test_round_trip_gives_identical_outputs_with_no_other_input(tmp_path: Path) -> None:
    path, model = saved(tmp_path)
    ckpt = load_checkpoint(path)
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(ckpt.model(x), model(x))
    assert not ckpt.model.training and ckpt.learn == "chans" and ckpt.filters == "smooth:0.7"
    assert ckpt.info.name == "synthetic"
    assert not ckpt.model.blocks[0][0].fn[0].weight.requires_grad  # the learn mode is rebuilt too
    assert torch.equal(load_model(path)(x), model(x))


def test_round_trip_sep_resnet(tmp_path: Path) -> None:
    path, model = saved(tmp_path, "sep_resnet", depth=8, width=4, learn="space")
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(load_model(path)(x), model(x))


def test_no_pickle_in_the_file(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["spatialmix"])
    assert meta["model"]["name"] == "convmixer" and meta["spatialmix_version"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "checkpoint not found"),
        (lambda p: p.write_bytes(b""), "not a readable safetensors file"),
        (lambda p: p.write_text("hello, I am a text file"), "not a readable safetensors file"),
        (lambda p: save_file({"w": torch.zeros(2)}, str(p)), "not a spatialmix checkpoint"),
        (
            lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"spatialmix": "{oops"}),
            "damaged spatialmix metadata",
        ),
        (
            lambda p: save_file(
                {"w": torch.zeros(2)},
                str(p),
                metadata={"spatialmix": json.dumps({"model": {"name": "vit_huge", "kwargs": {}}})},
            ),
            "does not know",
        ),
        (
            lambda p: save_file(
                {"w": torch.zeros(2)},
                str(p),
                metadata={"spatialmix": json.dumps({"model": {"name": "convmixer", "kwargs": {"widht": 3}}})},
            ),
            "do not build",
        ),
    ],
)
def test_bad_files_are_clear_errors(tmp_path: Path, make, message: str) -> None:
    path = tmp_path / "x.safetensors"
    make(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = path.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="not a readable safetensors file"):
            load_checkpoint(path)


def test_checkpoint_of_another_model_shape(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    meta = read_metadata(path)
    meta["model"]["kwargs"]["width"] = 16  # metadata now names a wider model than the tensors hold
    other = tmp_path / "other.safetensors"
    tensors = {k: v for k, v in load_model(path).state_dict().items()}
    save_file(tensors, str(other), metadata={"spatialmix": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="does not match model 'convmixer'"):
        load_checkpoint(other)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)


def test_written_files_get_ordinary_permissions(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (0600); the final file must honour the umask like open() does."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "x.json"
        atomic_write_text(path, "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    finally:
        os.umask(old)


COMMITTED = sorted((Path(__file__).resolve().parents[2] / "docs").rglob("model.safetensors"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_every_committed_checkpoint_still_loads(path: Path) -> None:
    """Checkpoints written by earlier versions (the report's own banks and figures read them) load as they are."""
    checkpoint = load_checkpoint(path)
    assert checkpoint.meta["kind"] == "model" and sum(p.numel() for p in checkpoint.model.parameters()) > 0
