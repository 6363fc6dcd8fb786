"""``timm:NAME``: any model ``timm.create_model`` knows, with spatialmix's learn modes and filter banks.

The model is ``timm.create_model(NAME, pretrained=..., in_chans=..., num_classes=..., **model_args)``,
with ``img_size`` the data's image size where the model takes one (a ViT, an MLP-Mixer: their position
embeddings or token Linears are sized at build, and a 224-px ViT refuses 32-px images), behind
spatialmix's input normalisation (images come in [0, 1], as for every spatialmix model), tagged and
configured by :func:`~.adapt.adapt_model`. State-dict keys are timm's under ``model.`` (and the
normalisation's ``normalize.mean`` / ``normalize.std``).

Token-mixing Linears (MLP-Mixer, ResMLP, gMLP: spatial mixing) are found by structure
(:func:`token_mixing_linears`): the model is built a second time, on the meta device, at twice the image
size, and the Linears whose size changes follow the number of tokens. A model that takes no ``img_size``
falls back to the table of known families (:data:`~spatialmix_cli.layers.roles.TOKEN_MIXERS`).

Arguments timm refuses are a :class:`TimmBuildError`; the model check
(:func:`spatialmix_cli.models.check.check_model`) names the one at fault, and checks that the model
gives one logit per class, before anything is written. Pretrained weights come from the local cache, or
from the network once it is known to answer (:mod:`.timm_weights`).

timm is imported only when such a model is built or named, so commands that do not use it stay fast.
Checkpoints record the timm name, its kwargs and timm's version (:func:`provenance`); they are rebuilt
with ``pretrained=False`` (:func:`rebuild_kwargs`): the weights come from the file, never the network.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import torch
from torch import nn

from ..config.names import TIMM_PREFIX, check_model_args, is_timm_name
from ..errors import ConfigError, did_you_mean
from ..layers.roles import classifier_names, tag_roles
from . import timm_weights
from .common import DEFAULT_MIXING, MIXING_FIELDS, SpatialMixingArgs, split_mixing_args

_OWN_ARGS = ("in_chans", "num_classes", "pretrained", "model_args", "image_size")
_PROBE_TOKENS: ContextVar[bool] = ContextVar("probe_tokens", default=True)


def import_timm() -> ModuleType:
    try:
        import timm  # an optional dependency, imported only when a timm: model is named
    except ImportError:
        raise ConfigError("timm: models need the timm package: pip install timm") from None
    return timm


def timm_name(name: str) -> str:
    """``timm:convnext_atto`` → ``convnext_atto``; an unknown name (or weights tag: ``convnext_atto.d2_in1k``)
    is a ConfigError naming close ones."""
    timm = import_timm()
    base = name[len(TIMM_PREFIX) :]
    architecture = base.split(".")[0]  # a pretrained tag (convnext_atto.d2_in1k) names weights, not a model
    if not architecture or not timm.is_model(architecture):
        raise ConfigError(
            f"unknown timm model '{base}'{did_you_mean(architecture, timm.list_models())}; "
            "timm.list_models('*pattern*') lists them"
        )
    if base != architecture and base not in timm.list_pretrained(f"{architecture}.*"):
        raise ConfigError(
            f"timm model '{architecture}' has no weights tagged '{base[len(architecture) + 1 :]}'"
            f"{did_you_mean(base, timm.list_pretrained(f'{architecture}.*'))}; timm.list_pretrained("
            f"'{architecture}.*') lists them"
        )
    return base


class TimmBuildError(ConfigError):
    """timm refused to build a model with these arguments; ``reason`` is its own message, in one line (the
    model check names the argument at fault: :func:`spatialmix_cli.models.check.check_model`)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"timm model '{name}' does not build with these arguments ({reason})")
        self.reason = reason


# What timm's constructors raise for arguments they refuse (a wrong type, a size that does not divide, a
# negative depth, a zero patch...); with weights, a load that does not fit raises RuntimeError too.
BUILD_ERRORS = (TypeError, ValueError, IndexError, KeyError, AssertionError, RuntimeError, ArithmeticError)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, at most ``limit`` characters."""
    text = str(exc).strip().split("\n")[0]
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


class TimmClassifier(nn.Module):
    """A timm model behind spatialmix's input normalisation, tagged, with learn mode and filter banks.
    ``image_size`` (the data's) is passed to timm as ``img_size`` where the model takes one (a ViT, an
    MLP-Mixer: sizes fixed at build) unless ``model_args`` sets ``img_size`` itself."""

    def __init__(
        self,
        name: str,
        *,
        in_chans: int = 3,
        num_classes: int = 10,
        pretrained: bool = False,
        model_args: Mapping[str, Any] | None = None,
        image_size: int | None = None,
        mixing: SpatialMixingArgs = DEFAULT_MIXING,
    ) -> None:
        super().__init__()
        timm = import_timm()
        # A build on the meta device (config checks, --dry-run, the memory estimate) is shapes only: it
        # never fetches weights. Weights come from the local cache, or the network once it is known to answer.
        pretrained = pretrained and torch.get_default_device().type != "meta"
        weights = timm_weights.pretrained_kwargs(timm, name) if pretrained else None
        self.normalize = mixing.normalize(in_chans)
        args = dict(model_args or {}, in_chans=in_chans, num_classes=num_classes)
        self.model, args = _create(timm, name, args, image_size, weights)
        tag_roles(self.model, token_mixers=token_mixing_linears(timm, name, self.model, args))
        mixing.finish(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x))


def _create(
    timm: ModuleType, name: str, args: dict[str, Any], image_size: int | None, weights: dict[str, Any] | None
) -> tuple[nn.Module, dict[str, Any]]:
    """``timm.create_model(name, **args)`` with ``img_size=image_size`` where the model takes one (a model
    that does not is built again without it), loading ``weights`` (:func:`.timm_weights.pretrained_kwargs`)
    when given; returns the model and the arguments that built it. A refusal is a :class:`TimmBuildError`,
    a failed download or load one ConfigError line."""
    sized = dict(args, img_size=image_size) if image_size and "img_size" not in args else args
    pretrained = weights is not None
    try:
        with timm_weights.quiet_downloads():
            try:
                return timm.create_model(name, pretrained=pretrained, **(weights or {}), **sized), sized
            except TypeError as exc:  # "unexpected keyword argument 'img_size'": a size-agnostic model
                if sized is args or "'img_size'" not in str(exc):
                    raise
            return timm.create_model(name, pretrained=pretrained, **(weights or {}), **args), args
    except BUILD_ERRORS as exc:
        if not pretrained or isinstance(exc, (TypeError, AssertionError)):
            raise TimmBuildError(name, one_line(exc)) from None
        reason = one_line(exc)
    except OSError as exc:  # a download that broke off, a cached file that cannot be read
        if not pretrained:
            raise
        reason = one_line(exc)
    raise ConfigError(
        f"timm model '{name}': could not load its pretrained weights ({reason}); they come from the local "
        "cache or, once, from the network"
    )


@contextmanager
def shapes_only() -> Iterator[None]:
    """Models built inside skip :func:`token_mixing_linears`' second build (their token mixers come from
    the table): for a build that only reads parameter shapes, such as the checkpoint's check of its
    metadata against its tensors, which counts every parameter registered while it runs."""
    token = _PROBE_TOKENS.set(False)
    try:
        yield
    finally:
        _PROBE_TOKENS.reset(token)


def _twice(size: Any) -> Any:
    """An ``img_size`` (an int or (height, width)) with each side doubled."""
    return 2 * size if isinstance(size, int) else tuple(2 * side for side in size)


def token_mixing_linears(
    timm: ModuleType, name: str, model: nn.Module, args: Mapping[str, Any]
) -> set[str] | None:
    """Names of ``model``'s Linears that act across the token axis, found by structure: timm builds the
    same model (``timm.create_model(name, **args)``) on the meta device at twice the image size (4x the
    tokens), and a Linear whose ``in_features`` or ``out_features`` changes follows the number of tokens:
    MLP-Mixer's ``mlp_tokens``, ResMLP's ``linear_tokens``, gMLP's gating ``proj``. A ViT's Linears keep
    their sizes (attention mixes tokens without weights of its own). None, to fall back on the table of
    known families, when the model has no Linear but its classifier, or cannot be built at another
    ``img_size`` (a convnet without the argument) or comes out with other modules, or inside
    :func:`shapes_only`. The classifier is left out (a head on flattened features would change too)."""
    heads = classifier_names(model)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n not in heads}
    if not _PROBE_TOKENS.get() or not linears:
        return None
    default = (getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-2:]
    resized = dict(args, img_size=_twice(args.get("img_size") or default))
    try:  # shapes only: no memory, no weights; the global RNG is left as it was
        with torch.random.fork_rng(devices=[]), torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            other = timm.create_model(name, pretrained=False, **resized)
    except (TypeError, ValueError, AssertionError, RuntimeError, IndexError, KeyError):
        return None
    others = {n: m for n, m in other.named_modules() if isinstance(m, nn.Linear) and n not in heads}
    if others.keys() != linears.keys():
        return None
    return {
        n
        for n, m in linears.items()
        if (m.in_features, m.out_features) != (others[n].in_features, others[n].out_features)
    }


def create_timm_model(name: str, **kwargs: Any) -> TimmClassifier:
    """``create_model("timm:NAME", ...)``: the shared arguments (learn, filters, seed, mean, std) and
    ``in_chans``, ``num_classes``, ``pretrained``, ``model_args`` (timm's own)."""
    base = timm_name(name)
    for key in kwargs:
        if key not in (*_OWN_ARGS, *MIXING_FIELDS):
            raise ConfigError(
                f"model '{name}' takes no argument '{key}': a timm model's size is in its name or in timm's "
                f"own arguments (--set model.KEY=VALUE, e.g. model.drop_path_rate=0.1); "
                f"it takes: {', '.join((*_OWN_ARGS, *MIXING_FIELDS))}"
            )
    own, mixing = split_mixing_args(kwargs)
    model_args = check_model_args(own.pop("model_args", None) or {})
    return TimmClassifier(base, model_args=model_args, mixing=mixing, **own)


def provenance(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint of model ``name`` records besides its kwargs: for a timm model, the timm name,
    timm's own arguments and timm's version (weights of one timm version may not load in another)."""
    if not is_timm_name(name):
        return {}
    timm = import_timm()
    return {
        "timm": {
            "name": name[len(TIMM_PREFIX) :],
            "kwargs": dict(kwargs.get("model_args") or {}),
            "pretrained": bool(kwargs.get("pretrained", False)),
            "version": timm.__version__,
        }
    }


def rebuild_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments that rebuild a saved model without the network: its weights are in the file."""
    out = dict(kwargs)
    if is_timm_name(name) and out.get("pretrained"):
        out["pretrained"] = False
    return out


def check_timm_version(model_meta: Mapping[str, Any], path: Any) -> None:
    """Warn when a checkpoint was written with another timm version (its module layout may differ; the
    weights still load when the state-dict keys and shapes match, which the loader checks)."""
    saved = (model_meta.get("timm") or {}).get("version")
    if saved is None:
        return
    timm = import_timm()
    if saved != timm.__version__:
        warnings.warn(f"{path} was written with timm {saved}; this is timm {timm.__version__}", stacklevel=2)
