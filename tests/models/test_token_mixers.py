"""Token mixers are spatial mixing: MLP-Mixer's ``mlp_tokens``, ResMLP's ``linear_tokens`` and gMLP's spatial
gating ``proj`` are Linears across the token axis, frozen by ``chans`` and learned under ``space``; models
whose tokens are mixed without weights of their own (attention, pooling) refuse ``chans`` with the reason.
Random init, tiny inputs, the meta device where no arithmetic is needed: nothing is downloaded."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from spatialmix_cli import TrainConfig, adapt_model, create_model, load_checkpoint, param_report, train
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.layers import roles
from spatialmix_cli.layers.roles import filter_bank_layers

timm = pytest.importorskip("timm")

# timm name -> the part of a parameter name that marks its token mixer (read from timm's module names,
# not from the tagging). At img_size 64 and patch 16 there are 16 tokens, a size no channel width of these
# models has, so the token axis shows in the weight shapes too.
MARKERS = {
    "mixer_s16_224": ".mlp_tokens.",
    "resmlp_12_224": ".linear_tokens.",
    "gmlp_ti16_224": ".gate.proj.",
}
NAMES = list(MARKERS)
TOKENS, SIZE = 16, 64


def build(name: str, *, in_chans: int = 3, size: int = SIZE, meta: bool = True, **kwargs) -> nn.Module:
    with torch.device("meta" if meta else "cpu"):
        return create_model(f"timm:{name}", in_chans=in_chans, num_classes=10, model_args={"img_size": size},
                            **kwargs)  # fmt: skip


def token_params(model: nn.Module, name: str) -> dict[str, int]:
    """Parameter sizes of the token mixers, by name, checked against the weight shapes: every 2-D weight
    with a side of TOKENS is under the marker, and every weight under the marker has one."""
    marker = MARKERS[name]
    by_name = {n: p.numel() for n, p in model.named_parameters() if marker in n}
    by_shape = {n for n, p in model.named_parameters() if p.dim() == 2 and TOKENS in p.shape}
    assert by_shape == {n for n in by_name if n.endswith("weight")} and by_shape
    return by_name


def frozen_params(model: nn.Module) -> dict[str, int]:
    return {n: p.numel() for n, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("name", NAMES)
def test_chans_freezes_exactly_the_token_mixers(name: str) -> None:
    model = build(name, learn="chans")
    expected = token_params(model, name)
    assert frozen_params(model) == expected  # on RGB input: the token mixers, and nothing else
    report = param_report(model)
    assert report["params_frozen"] == report["by_type"]["spatial"]["frozen"] == sum(expected.values())
    assert report["by_type"]["spatial"]["trainable"] == 0
    # on grayscale input the patch stem (a conv on one channel: depthwise by the rule) is frozen as well
    gray = build(name, in_chans=1, learn="chans")
    stem = {n: p.numel() for n, p in gray.named_parameters() if n.startswith("model.stem.")}
    assert stem and frozen_params(gray) == {**expected, **stem}


@pytest.mark.parametrize("name", NAMES)
def test_space_freezes_the_channel_mlps_not_the_token_mixers(name: str) -> None:
    model = build(name, learn="space")
    tokens = token_params(model, name)
    frozen = frozen_params(model)
    assert not frozen.keys() & tokens.keys()
    linears = {f"{n}.{kind}": m for n, m in model.named_modules() if isinstance(m, nn.Linear)
               for kind in ("weight", "bias")}  # fmt: skip
    channel = {n for n in linears if ".mlp_channels." in n and n not in tokens}
    assert channel and set(frozen) == channel  # every channel-MLP Linear, nothing else


@pytest.mark.parametrize("name", NAMES)
def test_structure_and_table_find_the_same_token_mixers(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def spatial(model: nn.Module) -> set[str]:
        return {n for n, m in model.named_modules() if roles.is_token_mixer(m)}

    def raw() -> nn.Module:  # timm's model as it comes: adapt_model has no size to rebuild it at
        with torch.device("meta"):
            return timm.create_model(name, img_size=SIZE, num_classes=10)

    expected = {n.rpartition(".")[0] for n in token_params(build(name), name)}
    assert {f"model.{n}" for n in spatial(adapt_model(raw()))} == expected  # the table alone
    monkeypatch.setattr(roles, "TOKEN_MIXERS", {})
    assert spatial(build(name)) == expected  # the structure alone: the rebuild at twice the size
    assert spatial(adapt_model(raw())) == set()  # (and without either, nothing would be found)


def test_models_with_no_token_axis_linears() -> None:
    from spatialmix_cli.models.timm_models import token_mixing_linears

    vit = build("vit_tiny_patch16_224", size=32)
    assert token_mixing_linears(timm, "vit_tiny_patch16_224", vit.model, {"img_size": 32}) == set()
    with torch.device("meta"):  # per-position Linears, and no img_size argument: the table decides
        convnext = create_model("timm:convnext_atto", num_classes=10, model_args={"conv_mlp": False}).model
    assert token_mixing_linears(timm, "convnext_atto", convnext, {"conv_mlp": False}) is None


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("learn", ["chans", "space"])
def test_frozen_weights_stay_bit_identical_under_adamw(name: str, learn: str) -> None:
    torch.manual_seed(0)
    model = build(name, size=32, meta=False, learn=learn).train()  # 4 tokens: small and fast
    tokens = {n for n, p in model.named_parameters() if MARKERS[name] in n}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert (set(frozen) == tokens) == (learn == "chans") and frozen
    learned = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        x, y = torch.rand(2, 3, 32, 32, generator=gen), torch.randint(0, 10, (2,), generator=gen)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before) for n, before in frozen.items())
    changed = {n for n, before in learned.items() if not torch.equal(after[n], before)}
    assert changed & (tokens if learn == "space" else set(learned) - tokens)  # ... and the others learn


# --- models whose tokens are mixed without weights of their own --------------------------------------
WEIGHTLESS = [
    ("vit_tiny_patch16_224", {"img_size": 32}, "attention", "model.blocks.0.attn"),
    ("deit_tiny_patch16_224", {"img_size": 32}, "attention", "model.blocks.0.attn"),
    ("swin_tiny_patch4_window7_224", {}, "attention", "model.layers.0.blocks.0.attn"),
    ("poolformer_s12", {}, "pooling", "model.stages.0.blocks.0.token_mixer.pool"),
]


@pytest.mark.parametrize(("name", "args", "kind", "example"), WEIGHTLESS, ids=[w[0] for w in WEIGHTLESS])
@pytest.mark.parametrize("in_chans", [3, 1])
def test_chans_refuses_attention_and_pooling(name: str, args: dict, kind: str, example: str,
                                             in_chans: int) -> None:  # fmt: skip
    def make(learn: str) -> nn.Module:
        with torch.device("meta"):
            return create_model(
                f"timm:{name}", in_chans=in_chans, num_classes=10, model_args=args, learn=learn
            )

    with pytest.raises(ConfigError) as caught:
        make("chans")
    message = str(caught.value)
    assert "\n" not in message and f"mixes tokens by {kind}" in message and f"'{example}'" in message
    assert "no spatial-mixing weights to freeze" in message and "use learn=full, learn=space" in message
    if in_chans == 1:  # today's silent experiment: only the grayscale stem frozen
        assert "would freeze only 'model." in message and "1-channel input" in message
    # space is explicit: every Linear but the head (attention's qkv / proj, the MLPs) and every 1x1 conv
    model = make("space")
    frozen = {n.rpartition(".")[0] for n, p in model.named_parameters() if not p.requires_grad}
    channel = {n for n, m in model.named_modules() if getattr(m, "role", None) == "channel"}
    assert frozen == channel and frozen
    assert all(
        isinstance(m, nn.Linear) or m.kernel_size == (1, 1) for n, m in model.named_modules() if n in frozen
    )
    assert f"{example}.qkv" in frozen or kind == "pooling"


def test_chans_refuses_a_grayscale_stem_alone_on_a_convnet() -> None:
    with torch.device("meta"):  # RegNetX: grouped 3x3 convs (dense); on 1 channel its stem is "depthwise"
        with pytest.raises(
            ConfigError, match="would freeze only 'model.stem.conv'.*no depthwise convolutions"
        ):
            create_model("timm:regnetx_002", in_chans=1, num_classes=10, learn="chans")
        own = create_model("convmixer", in_chans=1, width=16, depth=2, kernel=3, patch=2, learn="chans")
    assert param_report(own)["params_frozen"] > 0  # a stem with depthwise blocks behind it is fine


# --- filter banks, checkpoints, spectrum, the CLI -----------------------------------------------------
def test_filter_banks_leave_token_mixers_alone() -> None:
    kept = build("mixer_s16_224", in_chans=1, size=32, meta=False, filters="pretrained", learn="chans")
    drawn = build("mixer_s16_224", in_chans=1, size=32, meta=False, filters="random", learn="chans")
    assert [n for n, _ in filter_bank_layers(drawn)] == ["model.stem.proj"]  # the grayscale stem, no Linear
    assert not torch.equal(kept.model.stem.proj.weight, drawn.model.stem.proj.weight)
    for (n, a), b in zip(kept.named_parameters(), drawn.parameters(), strict=True):
        if ".mlp_tokens." in n:
            assert torch.equal(a, b), n  # timm's own random init, untouched by the banks
    for bank in ("box", "identity", "same", "smooth:1"):
        with pytest.raises(ConfigError, match=f"filter bank '{bank.split(':')[0]}' sets depthwise conv.*"
                                              "token-mixing Linears.*'model.blocks.0.mlp_tokens.fc1'"):  # fmt: skip
            build("mixer_s16_224", filters=bank)


def test_adapt_model_takes_token_mixer_names() -> None:
    class TinyMixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem, self.tokens = nn.Conv2d(3, 8, 4, stride=4), nn.Linear(16, 16)
            self.channels, self.head = nn.Linear(8, 8), nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem(x).flatten(2)  # (B, 8, 16 tokens)
            x = x + self.tokens(x)
            return self.head(self.channels(x.transpose(1, 2)).mean(1))

    model = adapt_model(TinyMixer(), learn="chans", token_mixers=["tokens"])
    assert [m.role for m in (model.stem, model.tokens, model.channels, model.head)] == [
        "dense", "spatial", "channel", "head"]  # fmt: skip
    assert frozen_params(model) == {"tokens.weight": 256, "tokens.bias": 16}
    with pytest.raises(ConfigError, match="token mixer 'stem' is not an nn.Linear"):
        adapt_model(TinyMixer(), token_mixers=["stem"])


@pytest.mark.slow  # heavy timm; fast: test_timm_models' round trip
def test_checkpoint_round_trip_and_spectrum(tmp_path: Path, cli) -> None:
    cfg = TrainConfig.from_dict({
        "arch": "timm:gmlp_ti16_224", "model_args": {"img_size": 32}, "learn": "chans", "dataset": "synthetic",
        "subset": 32, "test_subset": 16, "epochs": 1, "batch_size": 16, "device": "cpu", "logger": "none"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    meta = ckpt.meta["model"]
    rebuilt = create_model(meta["name"], **meta["kwargs"])  # the same seed: the weights training started from
    trained = dict(ckpt.model.named_parameters())
    changed = {n for n, p in rebuilt.named_parameters() if not torch.equal(p, trained[n])}
    assert changed and not any(".gate.proj." in n for n in changed)  # the trainer's AdamW (weight decay 0.01)
    rebuilt.load_state_dict(ckpt.model.state_dict())
    assert param_report(rebuilt) == param_report(ckpt.model)  # the same roles, the same frozen set
    assert frozen_params(rebuilt) == {
        n: p.numel() for n, p in rebuilt.named_parameters() if ".gate.proj." in n
    }
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rebuilt.eval()(x), ckpt.model.eval()(x))
    result = cli("spectrum", tmp_path / "run", "--json")
    assert result.exit_code != 0
    assert "no depthwise" in result.stderr and "token-mixing Linears, e.g. 'model.blocks.0." in result.stderr


def test_dry_run_shows_the_token_mixers_and_refuses_vit_chans(cli) -> None:
    args = (
        "--dataset",
        "synthetic",
        "--dry-run",
        "--json",
        "--set",
        "model.img_size=64",
        "--set",
        "image_size=64",
    )
    result = cli("train", "--arch", "timm:mixer_s16_224", "--learn", "chans", *args)
    assert result.exit_code == 0, result.stderr
    import json

    line = json.loads(result.stdout.strip().splitlines()[-1])
    token_mixers = 8 * ((16 * 256 + 256) + (256 * 16 + 16))  # 8 blocks of fc1 (16 -> 256) and fc2 (256 -> 16)
    assert line["by_type"]["spatial"] == {"trainable": 0, "frozen": token_mixers}
    assert line["layers"]["spatial"] == 16 and line["params_frozen"] == token_mixers
    vit = cli("train", "--arch", "timm:vit_tiny_patch16_224", "--learn", "chans", *args)
    assert vit.exit_code != 0 and not vit.stdout
    lines = vit.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "mixes tokens by attention" in lines[0]
