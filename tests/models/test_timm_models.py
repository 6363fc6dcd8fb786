"""timm models (``--arch timm:NAME``) and any nn.Module (``adapt_model``): role tagging, learn modes, filter
banks, checkpoints, spectrum and attack. Random init and tiny inputs only: nothing is downloaded."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from spatialmix_cli import TrainConfig, adapt_model, create_model, load_checkpoint, param_report, train
from spatialmix_cli.errors import ConfigError
from spatialmix_cli.layers.roles import filter_bank_layers, role_counts
from spatialmix_cli.models import timm_weights

from conftest import json_lines

timm = pytest.importorskip("timm")

# (timm name, its own arguments): seven families with depthwise convs, each small enough to build in well
# under a second. ConvNeXt twice: its MLP as 1x1 convs (atto's default) and as per-position nn.Linear.
FAMILIES = [
    ("mobilenetv3_small_050", {}),
    ("mobilenetv2_050", {}),
    ("efficientnet_lite0", {}),
    ("convnext_atto", {}),
    ("convnext_atto", {"conv_mlp": False}),
    ("mixnet_s", {}),  # MixedConv2d: 3x3 / 5x5 / 7x7 / 9x9 depthwise splits
    ("ghostnet_050", {}),
    ("lcnet_050", {}),
]
IDS = [name + ("-linear-mlp" if args else "") for name, args in FAMILIES]


def build(name: str, args: dict, *, learn: str = "full", filters: str = "random", seed: int = 0) -> nn.Module:
    return create_model(f"timm:{name}", in_chans=3, num_classes=10, learn=learn, filters=filters, seed=seed,
                        model_args=args)  # fmt: skip


def shape_counts(model: nn.Module) -> dict[str, int]:
    """Depthwise / pointwise convs and Linears counted from the state dict's weight shapes alone (not from
    the module attributes the tagging reads): a conv weight is (out, in / groups, kh, kw), so a depthwise
    one is (out, 1, k, k) with k > 1 and a pointwise one (out, c, 1, 1); a Linear weight is 2-D."""
    conv_weights = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 4]
    return {
        "spatial": sum(1 for w in conv_weights if w.shape[1] == 1 and max(w.shape[2:]) > 1),
        "channel_convs": sum(1 for w in conv_weights if tuple(w.shape[2:]) == (1, 1)),
        "dense": sum(1 for w in conv_weights if w.shape[1] > 1 and max(w.shape[2:]) > 1),
        "linears": sum(1 for m in model.modules() if isinstance(m, nn.Linear)),
    }


@pytest.mark.parametrize(("name", "args"), FAMILIES, ids=IDS)
def test_tagging_finds_every_depthwise_and_pointwise_layer(name: str, args: dict) -> None:
    model = build(name, args)
    counts, expected = role_counts(model), shape_counts(model)
    assert expected["spatial"] > 0
    assert counts["spatial"] == expected["spatial"] == len(filter_bank_layers(model))
    assert (
        counts["channel"] == expected["channel_convs"] + expected["linears"] - 1
    )  # every Linear but the head
    assert counts["dense"] == expected["dense"]
    assert counts["head"] == 1
    head = model.model.get_classifier()
    assert head.role == "head" and head.out_features == 10
    if not args:
        return
    # ConvNeXt with conv_mlp=False: the MLP is nn.Linear on NHWC tensors, tagged channel mixing
    mlp = [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and ".mlp." in n]
    assert mlp and all(m.role == "channel" for m in mlp)


@pytest.mark.parametrize(  # heavy timm: one family in the fast run, the rest under slow
    ("name", "args"),
    [f if f[0] == "mobilenetv2_050" else pytest.param(*f, marks=pytest.mark.slow) for f in FAMILIES],
    ids=IDS,
)
@pytest.mark.parametrize("learn", ["chans", "space"])
def test_frozen_weights_stay_bit_identical_after_steps(name: str, args: dict, learn: str) -> None:
    model = build(name, args, learn=learn).train()
    frozen_role = {"chans": "spatial", "space": "channel"}[learn]
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    roles = {n: m.role for n, m in model.named_modules() if hasattr(m, "role")}
    assert frozen and all(roles[n.rpartition(".")[0]] == frozen_role for n in frozen)
    learned = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        x, y = torch.rand(4, 3, 32, 32, generator=gen), torch.randint(0, 10, (4,), generator=gen)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], before) for n, before in frozen.items())
    assert any(not torch.equal(after[n], before) for n, before in learned.items())
    norms_and_head = [
        n for n, p in after.items() if p.requires_grad and roles.get(n.rpartition(".")[0]) == "head"
    ]
    assert norms_and_head  # the classifier always learns


@pytest.mark.parametrize("learn", ["chans", "space"])
def test_norms_and_head_always_learn(learn: str) -> None:
    model = build("convnext_atto", {"conv_mlp": False}, learn=learn)
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)) or getattr(module, "role", None) == "head":
            assert all(p.requires_grad for p in module.parameters(recurse=False))


def test_chans_trainable_count_does_not_depend_on_kernel_size() -> None:
    def trainable(learn: str, kernel: int) -> int:
        model = build("convnext_atto", {"kernel_sizes": kernel, "conv_mlp": False}, learn=learn)
        return param_report(model)["params_trainable"]

    assert trainable("chans", 3) == trainable("chans", 7) == trainable("chans", 11)
    assert trainable("full", 3) < trainable("full", 7) < trainable("full", 11)  # the control: k does count
    # ... and the same for a spatialmix ConvMixer
    own = [param_report(create_model("convmixer", width=16, depth=2, kernel=k, patch=2, learn="chans"))
           ["params_trainable"] for k in (3, 5, 9)]  # fmt: skip
    assert len(set(own)) == 1


def test_filter_banks_set_every_depthwise_layer_and_pretrained_keeps_them() -> None:
    kept = build("mobilenetv3_small_050", {}, filters="pretrained")
    drawn = build("mobilenetv3_small_050", {}, filters="random")
    boxed = build("mobilenetv3_small_050", {}, filters="box")
    other_seed = build("mobilenetv3_small_050", {}, filters="random", seed=1)
    # the same seed builds the same model (timm's init runs on spatialmix's init stream) ...
    assert torch.equal(kept.model.conv_head.weight, drawn.model.conv_head.weight)
    for (name, a), (_, b), (_, c), (_, d) in zip(filter_bank_layers(kept), filter_bank_layers(drawn),
                                                 filter_bank_layers(boxed), filter_bank_layers(other_seed), strict=True):  # fmt: skip
        k = a.kernel_size[0]
        assert not torch.equal(a.weight, b.weight), name  # random re-draws the filters timm initialised
        assert torch.allclose(c.weight, torch.full_like(c.weight, 1 / k**2)), name
        assert b.weight.abs().max() <= 1 / k and not torch.equal(b.weight, d.weight), name


def test_mixnet_mixed_kernels_get_banks_of_their_own_size() -> None:
    model = build("mixnet_s", {}, filters="identity")
    sizes = set()
    for _, layer in filter_bank_layers(model):
        k = layer.kernel_size[0]
        sizes.add(k)
        centre = torch.zeros(k, k)
        centre[(k - 1) // 2, (k - 1) // 2] = 1
        assert torch.equal(layer.weight[0, 0], centre)
    assert sizes >= {3, 5, 7, 9}


def test_a_model_without_depthwise_convs_refuses_chans() -> None:
    model = create_model("timm:regnetx_002", num_classes=10)  # grouped 3x3 convs: dense, not depthwise
    counts = role_counts(model)
    assert counts["spatial"] == 0 and counts["dense"] > 0
    with pytest.raises(ConfigError, match="needs spatial-mixing layers"):
        create_model("timm:regnetx_002", num_classes=10, learn="chans")


def test_adapt_model_works_on_any_module() -> None:
    import torchvision

    model = adapt_model(torchvision.models.mobilenet_v3_small(num_classes=10), learn="chans", seed=3)
    report = param_report(model)["by_type"]
    assert report["spatial"]["trainable"] == 0 and report["spatial"]["frozen"] > 0
    assert report["head"]["frozen"] == 0
    # torchvision's classifier is Linear -> Hardswish -> Dropout -> Linear: the last Linear is the head; the
    # first, a hidden layer of the MLP head, mixes channels.
    assert model.classifier[-1].role == "head" and model.classifier[0].role == "channel"
    again = adapt_model(torchvision.models.mobilenet_v3_small(num_classes=10), learn="chans", seed=3)
    for (_, a), (_, b) in zip(filter_bank_layers(model), filter_bank_layers(again), strict=True):
        assert torch.equal(a.weight, b.weight)  # banks from derived seeds, not the global RNG


def test_heads_can_be_named() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, groups=8, padding=1),
                          nn.Conv2d(8, 8, 1), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))  # fmt: skip
    adapt_model(model, learn="space", heads=["4"])
    assert [getattr(m, "role", None) for m in model] == ["dense", "spatial", "channel", None, "head"]
    assert not model[2].weight.requires_grad and model[4].weight.requires_grad


def test_unknown_names_and_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown timm model 'mobilenetv3_smal'.*mobilenetv3_small"):
        create_model("timm:mobilenetv3_smal")
    with pytest.raises(ConfigError, match="does not build"):
        create_model("timm:convnext_atto", model_args={"no_such_argument": 1})
    with pytest.raises(ConfigError, match="takes no argument 'width'"):
        create_model("timm:convnext_atto", width=8)
    with pytest.raises(ConfigError, match="spatialmix sets 'num_classes' itself"):
        create_model("timm:convnext_atto", model_args={"num_classes": 3})


def test_config_keys_for_timm_models() -> None:
    cfg = TrainConfig.from_dict({"arch": "timm:convnext_atto", "dataset": "synthetic",
                                 "model_args": {"drop_path_rate": 0.1, "conv_mlp": False}})  # fmt: skip
    assert cfg.model_args == '{"conv_mlp":false,"drop_path_rate":0.1}'  # one spelling
    cfg.validate()
    with pytest.raises(ConfigError, match="takes its size from its name"):
        TrainConfig.from_dict({"arch": "timm:convnext_atto", "width": 64}).validate()
    with pytest.raises(ConfigError, match="'pretrained' is for timm: models"):
        TrainConfig.from_dict({"arch": "convmixer", "pretrained": True}).validate()
    from spatialmix_cli.config.recipes import parse_set

    assert parse_set(["model.drop_path_rate=0.2", "model.conv_mlp=false", "lr=0.1"]) == {
        "lr": 0.1, "model_args": '{"conv_mlp":false,"drop_path_rate":0.2}'}  # fmt: skip


def tiny_timm_run(tmp_path: Path, name: str, args: dict, learn: str = "chans") -> Path:
    cfg = TrainConfig.from_dict({
        "arch": f"timm:{name}", "model_args": args, "learn": learn, "dataset": "synthetic", "subset": 64,
        "test_subset": 32, "epochs": 1, "batch_size": 32, "device": "cpu", "logger": "none",
    })  # fmt: skip
    run_dir = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small maps' kernel note
        train(cfg, run_dir)
    return run_dir


def check_round_trip(run_dir: Path, name: str, args: dict) -> None:
    ckpt = load_checkpoint(run_dir / "model.safetensors")
    meta = ckpt.meta["model"]
    assert meta["name"] == f"timm:{name}"
    assert meta["timm"] == {"name": name, "kwargs": args, "pretrained": False, "version": timm.__version__}
    rebuilt = create_model(meta["name"], **meta["kwargs"])
    rebuilt.load_state_dict(ckpt.model.state_dict())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rebuilt.eval()(x), ckpt.model.eval()(x))
    assert param_report(rebuilt) == param_report(ckpt.model)  # same roles, same frozen set


@pytest.mark.slow  # heavy timm (a timm run through every command); fast: the tagging and frozen-weight tests
@pytest.mark.parametrize(("name", "args"), [FAMILIES[0], FAMILIES[4]], ids=[IDS[0], IDS[4]])
def test_checkpoint_round_trip_spectrum_and_attack(tmp_path: Path, cli, name: str, args: dict) -> None:
    run_dir = tiny_timm_run(tmp_path, name, args)
    check_round_trip(run_dir, name, args)
    spectra = json_lines(cli("spectrum", run_dir, "--pad", "32", "--json").stdout)[-1]
    names = [n for n, _ in filter_bank_layers(load_checkpoint(run_dir / "model.safetensors").model)]
    assert [layer["name"] for layer in spectra["layers"]] == names  # every depthwise layer, any kernel
    assert all(
        0 <= layer["coverage"] <= 1 and 0 < layer["peak_relative_coverage"] <= 1
        for layer in spectra["layers"]
    )
    result = cli(
        "attack", run_dir, "--method", "fgsm", "--eps", "1/255", "--n", "32", "--no-checks", "--json"
    )
    assert result.exit_code == 0, result.stderr
    line = json_lines(result.stdout)[-1]
    assert 0.0 <= line["robust_acc"] <= line["clean_acc"] <= 1.0
    info = cli("info", run_dir, "--json")
    assert info.exit_code == 0 and json.loads(info.stdout.splitlines()[-1])["arch"] == f"timm:{name}"
    evaluated = cli("eval", run_dir, "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    assert 0.0 <= json_lines(evaluated.stdout)[-1]["acc"] <= 1.0


@pytest.mark.slow  # heavy timm: two timm runs; fast: the round trip test
def test_report_reads_timm_runs(tmp_path: Path, cli) -> None:
    for learn in ("full", "chans"):
        cfg = TrainConfig.from_dict({
            "arch": "timm:mobilenetv3_small_050", "learn": learn, "dataset": "synthetic", "subset": 32,
            "test_subset": 16, "epochs": 1, "batch_size": 16, "device": "cpu", "logger": "none"})  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(cfg, tmp_path / "runs" / learn)
    result = cli("report", tmp_path / "runs", "--out", tmp_path / "report", "--json")
    assert result.exit_code == 0, result.stderr
    report = (tmp_path / "report" / "report.md").read_text()
    assert "timm:mobilenetv3_small_050" in report


@pytest.mark.slow  # every family trains, rebuilds and is attacked (~30 s)
@pytest.mark.parametrize(("name", "args"), FAMILIES, ids=IDS)
def test_every_family_round_trips_and_is_attacked(tmp_path: Path, cli, name: str, args: dict) -> None:
    run_dir = tiny_timm_run(tmp_path, name, args, learn="space")
    check_round_trip(run_dir, name, args)
    assert cli("spectrum", run_dir, "--pad", "32", "--json").exit_code == 0
    assert (
        cli(
            "attack", run_dir, "--method", "pgd", "--steps", "2", "--n", "16", "--no-checks", "--json"
        ).exit_code
        == 0
    )


# --- spatialmix's ConvMixer against timm's --------------------------------------------------------------
# The key mapping (docs/timm.md): timm's ConvMixer state dict *is* spatialmix's without the two
# normalisation buffers (normalize.mean / normalize.std; identity at mean 0, std 1): stem.0 / stem.2,
# blocks.i.0.fn.0 (depthwise) / blocks.i.0.fn.2 (its BN), blocks.i.1 (pointwise) / blocks.i.3, head.
def timm_keys(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in ours.items() if not k.startswith("normalize.")}


def randomise_bn_stats(model: nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial running statistics, so eval outputs test those keys too."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


@pytest.mark.parametrize(
    ("ours_name", "ours_args", "timm_settings"),
    [
        (
            "convmixer",
            dict(width=32, depth=2, kernel=5, patch=2),
            dict(dim=32, depth=2, kernel_size=5, patch_size=2),
        ),
        (
            "convmixer",
            dict(width=24, depth=3, kernel=4, patch=3, activation="relu"),
            dict(dim=24, depth=3, kernel_size=4, patch_size=3, act_layer=nn.ReLU),
        ),  # an even kernel: 'same' both
    ],
)
def test_convmixer_matches_timm_after_loading_weights_both_ways(ours_name, ours_args, timm_settings) -> None:
    from timm.models.convmixer import ConvMixer as TimmConvMixer

    ours = create_model(ours_name, num_classes=7, seed=1, **ours_args).eval()
    randomise_bn_stats(ours, 0)
    theirs = TimmConvMixer(num_classes=7, **timm_settings).eval()
    assert set(timm_keys(ours.state_dict())) == set(theirs.state_dict())
    theirs.load_state_dict(timm_keys(ours.state_dict()))  # strict: every key maps
    x = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(theirs(x), ours(x), rtol=0, atol=0)
    # and back: timm's init loaded into spatialmix's
    fresh = TimmConvMixer(num_classes=7, **timm_settings).eval()
    randomise_bn_stats(fresh, 1)
    ours.load_state_dict(
        {**fresh.state_dict(), **{k: v for k, v in ours.state_dict().items() if k.startswith("normalize.")}}
    )
    torch.testing.assert_close(ours(x), fresh(x), rtol=0, atol=0)


@pytest.mark.slow  # heavy timm; fast: the weight-loading test
def test_convmixer_preset_matches_timm_registered_model() -> None:
    """The registered names: spatialmix's convmixer_768_32_k7_p7 is timm's convmixer_768_32 (ReLU)."""
    ours = create_model("convmixer_768_32_k7_p7", num_classes=10).eval()
    theirs = timm.create_model("convmixer_768_32", num_classes=10).eval()
    theirs.load_state_dict(timm_keys(ours.state_dict()))
    x = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(theirs(x), ours(x), rtol=0, atol=0)
    # through spatialmix's own timm path too: timm:convmixer_768_32 holds the same model under model.
    wrapped = create_model("timm:convmixer_768_32", num_classes=10, filters="pretrained").eval()
    wrapped.model.load_state_dict(timm_keys(ours.state_dict()))
    torch.testing.assert_close(wrapped(x), ours(x), rtol=0, atol=0)


def fake_pretrained(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """timm.create_model that, asked for pretrained weights, sets every depthwise filter to 0.5 instead of
    downloading (tests never touch the network), as if the weights were at hand; returns the pretrained
    flags it was called with."""
    real, calls = timm.create_model, []
    monkeypatch.setattr(timm_weights, "pretrained_kwargs", lambda timm, name: {})

    def create(name: str, pretrained: bool = False, **kwargs):
        calls.append(pretrained)
        model = real(name, pretrained=False, **kwargs)
        if pretrained:
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, nn.Conv2d) and m.groups == m.in_channels and m.kernel_size[0] > 1:
                        m.weight.fill_(0.5)
        return model

    monkeypatch.setattr(timm, "create_model", create)
    return calls


@pytest.mark.slow  # heavy timm; fast: the filter-bank test
def test_pretrained_filters_stay_frozen_or_are_redrawn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = fake_pretrained(monkeypatch)
    kept = create_model("timm:mobilenetv3_small_050", pretrained=True, learn="chans", filters="pretrained")
    redrawn = create_model("timm:mobilenetv3_small_050", pretrained=True, learn="chans", filters="random")
    assert calls == [True, True]
    for (_, a), (_, b) in zip(filter_bank_layers(kept), filter_bank_layers(redrawn), strict=True):
        assert torch.all(a.weight == 0.5) and not a.weight.requires_grad  # the pretrained filters, frozen
        assert not torch.any(b.weight == 0.5) and not b.weight.requires_grad  # fresh random ones, frozen
    # a checkpoint of a pretrained run rebuilds without asking timm for weights: they are in the file
    cfg = TrainConfig.from_dict({"arch": "timm:mobilenetv3_small_050", "pretrained": True, "learn": "chans",
                                 "filters": "pretrained", "dataset": "synthetic", "subset": 32, "test_subset": 16,
                                 "epochs": 1, "batch_size": 16, "device": "cpu", "logger": "none"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(cfg, tmp_path / "run")
    calls.clear()
    ckpt = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert calls and not any(calls)
    assert ckpt.meta["model"]["timm"]["pretrained"] is True
    assert all(torch.all(m.weight == 0.5) for _, m in filter_bank_layers(ckpt.model))


def test_pretrained_weights_offline_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A download that breaks off after the network answered (not cached, no HF_HUB_OFFLINE, the probe
    passed): one ConfigError line. (Offline from the start: tests/reliability/test_timm_doors.py.)"""

    def offline(name: str, pretrained: bool = False, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(timm_weights, "pretrained_kwargs", lambda timm, name: {})
    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ConfigError, match="could not load its pretrained weights.*from the network"):
        create_model("timm:mobilenetv3_small_050", pretrained=True)


def test_set_model_key_adds_to_a_recipes_timm_arguments(tmp_path: Path) -> None:
    from spatialmix_cli.config.recipes import load_recipe, parse_set

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "base: {arch: 'timm:convnext_atto', dataset: synthetic, model_args: {conv_mlp: false, kernel_sizes: 5}}\n"
        "sweep: {learn: [full, chans]}\n"
    )
    points = load_recipe(recipe).points(
        parse_set(["model.kernel_sizes=3", "model.drop_path_rate=0.1"]), tmp_path
    )
    assert {p.config.model_args for p in points} == {
        '{"conv_mlp":false,"drop_path_rate":0.1,"kernel_sizes":3}'
    }
    assert all("model_args" in p.name for p in points)  # an override of the recipe: run folders of its own


def test_cli_warnings_are_one_line_on_stderr(cli) -> None:
    """A 7x7 kernel on ConvNeXt's 1x1 last-stage maps (32 px): a warning, not an error, in one line."""
    result = cli("train", "--arch", "timm:convnext_atto", "--dataset", "synthetic", "--dry-run")
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "depthwise kernel" in line]
    assert lines and all(
        line.startswith("warning: the 7x7 depthwise kernel of 'model.stages.") for line in lines
    )
    assert "UserWarning" not in result.stderr and "role" in result.stdout
