"""Find the kind of mixing each layer of *any* ``nn.Module`` does, from its structure, and tag it.

spatialmix's own layers carry a class-level ``role`` (:mod:`.separable`). A model from elsewhere (timm's
MobileNetV3, ConvNeXt, EfficientNet, ...) is made of plain ``nn.Conv2d`` / ``nn.Linear`` layers, so
:func:`tag_roles` decides each one's role by the rule of Sec. 3 of Cazenavette et al. 2025 and writes it on
the instance (``module.role``), where :func:`~.learn.apply_learn_mode` and :func:`~.learn.param_report`
read it exactly as for spatialmix's own layers:

- ``spatial``: a depthwise conv, ``groups == in_channels`` and a kernel larger than 1×1 (stems and strided
  ones included; ``out_channels`` a multiple of ``in_channels``, the depth multiplier). These also get
  ``filter_bank = True``: the filter banks initialise them and ``spectrum`` analyses them. A conv on a
  single input channel (a stem on grayscale images) is depthwise by this rule: it mixes no channels.
- ``channel``: a pointwise conv (1×1, any groups), and every ``nn.Linear`` except the classifier: in vision
  backbones a Linear outside the head acts per position (ConvNeXt's MLP on NHWC tensors, a ViT's MLP and
  attention projections).
- ``dense``: any other conv (k×k with groups < in_channels: a plain or grouped conv mixing both at once).
- ``head``: the classifier, which always learns: the modules named in ``heads``, else timm's
  ``get_classifier()``, else the last ``nn.Linear`` of the model.

Not tagged, so always learned: norms, and layers of other types (``nn.Conv1d``, timm's ``CondConv2d``,
positional embeddings). Known limit: an MLP-Mixer's token-mixing Linear acts across positions, i.e. it
mixes space, but is tagged ``channel`` by the rule above.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from torch import nn

ROLES: tuple[str, ...] = ("spatial", "channel", "dense", "head")


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


def tag_roles(model: nn.Module, heads: Iterable[str] | None = None) -> Counter[str]:
    """Write ``role`` (and ``filter_bank`` on depthwise convs) on every conv / Linear of ``model`` that has
    no role yet; layers that already declare one (spatialmix's own) keep it. Returns the number of modules
    per role, over the whole model. Idempotent."""
    head_names = classifier_names(model, heads)
    for name, module in model.named_modules():
        if getattr(module, "role", None) is not None:
            continue
        if isinstance(module, nn.Conv2d):
            module.role = conv_role(module)
            module.filter_bank = module.role == "spatial"
        elif isinstance(module, nn.Linear):
            module.role = "head" if name in head_names else "channel"
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
