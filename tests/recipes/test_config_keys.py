"""One coercion engine and one option maker for every class of ``key()`` fields: the training config, the
attack plan and the bench settings are read, checked and offered as options the same way."""

from __future__ import annotations

import pytest
import typer
from typer.main import get_command

from spatialmix_cli.cli.app import app
from spatialmix_cli.config.attack import AttackPlan
from spatialmix_cli.config.bench import BenchSettings
from spatialmix_cli.config.coercion import OPTION, coerce
from spatialmix_cli.config.keys import choices_help, describe_keys
from spatialmix_cli.config.limits import MAX_BENCH_BATCH, MAX_STEPS
from spatialmix_cli.config.train import TrainConfig
from spatialmix_cli.errors import ConfigError


def test_one_engine_reads_every_key_class() -> None:
    assert coerce(TrainConfig, "adv_eps", "2/255") == pytest.approx(2 / 255)
    assert coerce(TrainConfig, "lr", 1) == 1.0 and isinstance(coerce(TrainConfig, "lr", 1), float)
    assert coerce(AttackPlan, "eps", "1/255, 0.5") == pytest.approx([1 / 255, 0.5])
    assert coerce(AttackPlan, "methods", "FGSM, pgd") == ["fgsm", "pgd"]
    assert coerce(AttackPlan, "large_eps", "1/4") == 0.25
    assert coerce(BenchSettings, "peak_gflops", "1e3") == 1000.0
    with pytest.raises(ConfigError, match=r"bench.iters must be an integer, got True \(bool\)"):
        coerce(BenchSettings, "iters", True, "bench")
    with pytest.raises(ConfigError, match=r"--peak-gflops must be a finite number"):
        coerce(BenchSettings, "peak_gflops", float("nan"), label="--peak-gflops")
    with pytest.raises(ConfigError, match="attack.pgd_variant must be one of paper, madry, got 3"):
        coerce(AttackPlan, "pgd_variant", 3, "attack")
    with pytest.raises(ConfigError, match="attack: unknown key 'metods' .did you mean 'method"):
        coerce(AttackPlan, "metods", "fgsm", "attack")


def test_a_key_given_by_its_option_name_and_errors_naming_options() -> None:
    plan = AttackPlan.from_dict({"method": "pgd", "eps": ["1/255"], "steps": 3})
    assert (plan.methods, plan.steps) == (["pgd"], 3)
    assert AttackPlan().methods is not AttackPlan().methods  # a list default is each plan's own
    with pytest.raises(ConfigError, match=f"--large-eps-steps must be at most {MAX_STEPS:,}"):
        AttackPlan().updated({"large_eps_steps": MAX_STEPS + 1}, OPTION)
    with pytest.raises(ConfigError, match=r"r.yaml: attack.seed must be in \[0, 2\*\*63\)"):
        AttackPlan.from_dict({"seed": -1}, "r.yaml: attack")
    with pytest.raises(ConfigError, match=r"--batch-size must be >= 2, got 1"):
        BenchSettings.from_dict({"batch_size": 1}, OPTION)
    with pytest.raises(ConfigError, match=f"--batch-size must be at most {MAX_BENCH_BATCH:,}"):
        BenchSettings(batch_size=MAX_BENCH_BATCH + 1).validate(OPTION)
    with pytest.raises(ConfigError, match="--device must be auto, cpu, cuda or cuda:N"):
        BenchSettings.from_dict({"device": "gpu"}, OPTION)
    assert BenchSettings.from_dict({"iters": 5, "compile": False}) == BenchSettings(iters=5, compile=False)


def test_help_lists_a_registrys_values_with_their_notes() -> None:
    assert choices_help({"full": "", "chans": "spatial frozen"}) == "full | chans (spatial frozen)"
    learn = next(row for row in describe_keys(TrainConfig) if row["key"] == "learn")
    assert learn["help"] == (
        "head (only the classifier learns) | norm (only norms and the classifier learn) | "
        "chans (spatial frozen) | full | space (channel mixing frozen)."
    )
    methods = next(row for row in describe_keys(AttackPlan) if row["key"] == "methods")
    assert methods["type"] == "list of str" and methods["default"] == ["fgsm"]


@pytest.mark.parametrize(
    ("command", "keys", "renamed"),
    [("attack", AttackPlan, {"methods": "--method"}), ("bench", BenchSettings, {})],
)
def test_a_commands_settings_are_its_options(command: str, keys: type, renamed: dict[str, str]) -> None:
    group = get_command(app)
    cmd = group.get_command(typer.Context(group), command)
    shown = {o for p in cmd.params if not getattr(p, "hidden", False) for o in p.opts}
    wanted = {renamed.get(k, "--" + k.replace("_", "-")) for k in keys.__dataclass_fields__}
    assert wanted <= shown
    batch = next(p for p in cmd.params if "--batch-size" in p.opts)
    assert "-b" in batch.opts and batch.default is None  # "not given": the settings' default applies
