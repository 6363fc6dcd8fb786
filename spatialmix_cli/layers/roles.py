"""Find the kind of mixing each layer of *any* ``nn.Module`` does, from its structure, and tag it.

spatialmix's own layers carry a class-level ``role`` (:mod:`.separable`). A model from elsewhere (timm's
MobileNetV3, ConvNeXt, MLP-Mixer, ...) is made of plain ``nn.Conv2d`` / ``nn.Linear`` layers, so
:func:`tag_roles` decides each one's role by the rule of Sec. 3 of Cazenavette et al. 2025 and writes it on
the instance (``module.role``), where :func:`~.learn.apply_learn_mode` and :func:`~.learn.param_report`
read it exactly as for spatialmix's own layers:

- ``spatial``: a depthwise conv, ``groups == in_channels`` and a kernel larger than 1×1 (stems and strided
  ones included; ``out_channels`` a multiple of ``in_channels``, the depth multiplier). These also get
  ``filter_bank = True``: the filter banks initialise them and ``spectrum`` analyses them. A conv on a
  single input channel (a stem on grayscale images) is depthwise by this rule: it mixes no channels.
  Also spatial: a *token-mixing* ``nn.Linear``, one applied across the token axis (MLP-Mixer's
  ``mlp_tokens``, ResMLP's ``linear_tokens``, gMLP's spatial gating projection): it mixes positions, with
  weights of its own. It is no filter bank (it has no kernel). Which Linears these are is not visible on
  the module (an ``nn.Linear(196, 196)`` looks like any other): the caller names them
  (``token_mixers``; for ``timm:`` models :mod:`~spatialmix_cli.models.timm_models` finds them by
  structure, the Linears whose size follows the number of tokens), else the table :data:`TOKEN_MIXERS`
  of known families finds them.
- ``channel``: a pointwise conv (1×1, any groups), and every other ``nn.Linear`` except the classifier: in
  vision backbones such a Linear acts per position (ConvNeXt's MLP on NHWC tensors, the channel MLPs of
  MLP-Mixer, a ViT's MLP and attention projections).
- ``dense``: any other conv (k×k with groups < in_channels: a plain or grouped conv mixing both at once).
- ``head``: the classifier, which always learns: the modules named in ``heads``, else timm's
  ``get_classifier()``, else the last ``nn.Linear`` of the model.

Not tagged, so always learned: norms, and layers of other types (``nn.Conv1d``, timm's ``CondConv2d``,
positional embeddings). Attention and pooling mix tokens too, but with no weights of their own (attention
computes its mixing weights from the data; pooling averages): :func:`weightless_mixers` finds them so that
``learn=chans`` can say why such a model has nothing for it to freeze.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from torch import nn

from ..errors import ConfigError

ROLES: tuple[str, ...] = ("spatial", "channel", "dense", "head")
# Token-mixing sub-modules of known families, by class (module and name) and attribute: every nn.Linear
# inside is spatial mixing. The fallback when the caller names no token mixers (adapt_model on a model
# built elsewhere; a timm model that cannot be rebuilt at another img_size).
TOKEN_MIXERS: dict[str, str] = {
    "timm.models.mlp_mixer.MixerBlock": "mlp_tokens",  # MLP-Mixer: an MLP across the tokens
    "timm.models.mlp_mixer.ResBlock": "linear_tokens",  # ResMLP: one Linear across the tokens
    "timm.models.mlp_mixer.SpatialGatingUnit": "proj",  # gMLP: the spatial gating projection
}


def is_depthwise(module: nn.Module) -> bool:
    """A depthwise k×k conv (k > 1): one group per input channel, ``out_channels`` a multiple of them."""
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == module.in_channels
        and module.out_channels % module.in_channels == 0
        and max(module.kernel_size) > 1
    )


def conv_role(module: nn.Conv2d) -> str:
    """``spatial`` (depthwise), ``channel`` (1×1) or ``dense`` (any other conv), from the structure."""
    if is_depthwise(module):
        return "spatial"
    if tuple(module.kernel_size) == (1, 1):
        return "channel"
    return "dense"


def classifier_names(model: nn.Module, heads: Iterable[str] | None = None) -> set[str]:
    """Names of the head modules: ``heads`` if given, else timm's ``get_classifier()``, else the last
    ``nn.Linear`` (none if the model has no Linear)."""
    names = {name: module for name, module in model.named_modules()}
    if heads is not None:
        return set(heads)
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        head = get_classifier()
        found = {name for name, module in names.items() if module is head and name}
        # timm returns the head Linear itself, or a module holding it (or nn.Identity for no head)
        found |= {f"{n}.{sub}".strip(".") for n in found for sub, m in head.named_modules() if sub}
        return found
    linears = [name for name, module in names.items() if isinstance(module, nn.Linear)]
    return set(linears[-1:])


def known_token_mixers(model: nn.Module) -> set[str]:
    """Names of the ``nn.Linear`` layers inside the token-mixing sub-modules of :data:`TOKEN_MIXERS`."""
    found: set[str] = set()
    for name, module in model.named_modules():
        attribute = TOKEN_MIXERS.get(f"{type(module).__module__}.{type(module).__qualname__}")
        mixer = getattr(module, attribute, None) if attribute else None
        if isinstance(mixer, nn.Module):
            prefix = f"{name}.{attribute}".lstrip(".")
            linears = [sub for sub, m in mixer.named_modules() if isinstance(m, nn.Linear)]
            found |= {f"{prefix}.{sub}".rstrip(".") for sub in linears}
    return found


def tag_roles(
    model: nn.Module, heads: Iterable[str] | None = None, token_mixers: Iterable[str] | None = None
) -> Counter[str]:
    """Write ``role`` (and ``filter_bank`` on depthwise convs) on every conv / Linear of ``model`` that has
    no role yet; layers that already declare one (spatialmix's own) keep it. ``token_mixers``: names of
    the Linears that act across the token axis (spatial mixing); None: those :data:`TOKEN_MIXERS` finds.
    Returns the number of modules per role, over the whole model. Idempotent."""
    head_names = classifier_names(model, heads)
    linears = {name for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    across_tokens = known_token_mixers(model) if token_mixers is None else set(token_mixers)
    for name in sorted(across_tokens - linears):
        raise ConfigError(f"token mixer '{name}' is not an nn.Linear of {type(model).__name__}")
    for name, module in model.named_modules():
        if getattr(module, "role", None) is not None:
            continue
        if isinstance(module, nn.Conv2d):
            module.role = conv_role(module)
            module.filter_bank = module.role == "spatial"
        elif isinstance(module, nn.Linear):
            module.role = "head" if name in head_names else "spatial" if name in across_tokens else "channel"
    return role_counts(model)


def role_counts(model: nn.Module) -> Counter[str]:
    """How many modules of ``model`` have each role."""
    return Counter(str(m.role) for m in model.modules() if getattr(m, "role", None) in ROLES)


def filter_bank_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """``(name, conv)`` of every depthwise layer the filter banks set (spatialmix's ``DepthwiseConv2d``
    and every conv :func:`tag_roles` found depthwise), in module order."""
    return [(n, m) for n, m in model.named_modules() if getattr(m, "filter_bank", False)]


def depth_multiplier(conv: nn.Conv2d) -> int:
    """Filters per input channel of a depthwise conv."""
    return conv.out_channels // conv.in_channels


def is_token_mixer(module: nn.Module) -> bool:
    """A Linear tagged spatial: it mixes tokens (no filter bank, no kernel)."""
    return isinstance(module, nn.Linear) and getattr(module, "role", None) == "spatial"


def is_one_channel_conv(module: nn.Module) -> bool:
    """A conv on one input channel (a stem on grayscale images): depthwise by the rule, since it mixes no
    channels, but not the spatial mixing of the model's blocks."""
    return isinstance(module, nn.Conv2d) and module.in_channels == 1 and is_depthwise(module)


def _pools_in_place(module: nn.Module) -> bool:
    if not isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        return False
    stride, kernel = module.stride, module.kernel_size
    return set(stride if isinstance(stride, tuple) else (stride,)) == {1} and kernel not in (1, (1, 1))


def weightless_mixers(model: nn.Module) -> dict[str, list[str]]:
    """Modules that mix tokens with no weights of their own, by kind (outermost names): ``attention``
    (``nn.MultiheadAttention`` and any module whose class name ends in ``Attention``: its mixing weights
    are computed from the data) and ``pooling`` (a stride-1 average / max pool, PoolFormer's token mixer)."""
    found: dict[str, list[str]] = {}
    for name, module in model.named_modules():
        if any(name.startswith(f"{outer}.") for names in found.values() for outer in names):
            continue
        attention = isinstance(module, nn.MultiheadAttention) or type(module).__name__.endswith("Attention")
        kind = "attention" if attention else "pooling" if _pools_in_place(module) else None
        if kind is not None:
            found.setdefault(kind, []).append(name)
    return found
