"""Where a timm model's pretrained weights (``--set pretrained=true``) come from, decided before the
network is used: the local cache when they are in it (then nothing is downloaded, online or not), else a
download that is only started once the host is known to answer. Offline without them, the answer is one
line within seconds, instead of huggingface_hub's minutes of retries and their log lines.

The Hugging Face cache is found as huggingface_hub finds it (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``), read from the environment when asked; ``HF_HUB_OFFLINE=1`` (or
``TRANSFORMERS_OFFLINE=1``) means: never the network. Weights timm fetches from a plain URL (a few older
models) are looked for in torch's hub cache (``torch.hub.get_dir()/checkpoints``).
"""

from __future__ import annotations

import inspect
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import torch

from ..errors import ConfigError

PROBE_SECONDS = 4.0  # how long the one request that asks whether the weights' host answers may take
_HF_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "ON", "YES", "TRUE"}
# timm's own choice among a Hub repository's files (timm.models._hub): the safetensors twin first
_SAFE_TWINS = {
    "pytorch_model.bin": "model.safetensors",
    "open_clip_pytorch_model.bin": "open_clip_model.safetensors",
}


def hub_cache() -> Path:
    """The Hugging Face hub cache folder, as huggingface_hub resolves it, from the environment of now."""
    env = os.environ
    explicit = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    cache_home = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    home = env.get("HF_HOME") or os.path.join(cache_home, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids the network."""
    return any(
        os.environ.get(k, "").strip().upper() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


@lru_cache(maxsize=8)
def reachable(base_url: str) -> bool:
    """Whether ``base_url`` answers one HEAD request within :data:`PROBE_SECONDS` (any HTTP status is an
    answer; proxies from the environment are used as huggingface_hub uses them). Asked once a process."""
    try:
        urllib.request.urlopen(urllib.request.Request(base_url, method="HEAD"), timeout=PROBE_SECONDS).close()
    except urllib.error.HTTPError:
        return True  # the host answered, with an error status: it is reachable
    except (OSError, ValueError):  # no route, no name, refused, timed out; a malformed endpoint
        return False
    return True


def pretrained_kwargs(timm: ModuleType, name: str) -> dict[str, Any]:
    """Extra ``timm.create_model(name, pretrained=True, ...)`` arguments that load ``name``'s pretrained
    weights: from the cached file when there is one (never the network), else from where timm downloads
    them, once that host answers. A ConfigError in one line when timm has no weights for ``name``, or they
    are not cached and the network is off (``HF_HUB_OFFLINE``) or does not answer."""
    cfg = _pretrained_cfg(timm, name)
    found = _cached_file(cfg)
    if found is not None:
        path, from_hub = found
        overlay: dict[str, Any] = {"file": path}
        if from_hub and cfg.get("custom_load") is True:  # a Hub file is a state dict (the custom load is
            overlay["custom_load"] = False  # for the original URL's format, e.g. a ViT's .npz)
        return {"pretrained_cfg_overlay": overlay}
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        source = f"'{hub_id}' on the Hugging Face Hub"
        where, missing = os.environ.get("HF_ENDPOINT", _HF_ENDPOINT).rstrip("/"), f"in {hub_cache()}"
    else:
        url = urlsplit(cfg["url"])
        source, where = f"'{cfg['url']}'", f"{url.scheme}://{url.netloc}"
        missing = f"in {Path(torch.hub.get_dir()) / 'checkpoints'}"
    if hub_id and hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    elif not reachable(where):
        reason = f"{urlsplit(where).netloc or where} cannot be reached"
    else:  # timm downloads them; into the cache looked in above, where its version takes the argument
        takes_cache_dir = "cache_dir" in inspect.signature(timm.create_model).parameters
        return {"cache_dir": str(hub_cache())} if hub_id and takes_cache_dir else {}
    raise ConfigError(
        f"timm model '{name}': its pretrained weights ({source}) are not cached {missing} and {reason}; "
        "they need the network once (then they are cached), or train without --set pretrained=true"
    )


@contextmanager
def quiet_downloads() -> Iterator[None]:
    """huggingface_hub's retry and HTTP warnings held back: a failure is reported once, by the caller."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _pretrained_cfg(timm: ModuleType, name: str) -> dict[str, Any]:
    """timm's pretrained config of ``name`` (its default weights, or the tag it names), as a dict."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as exc:  # an architecture with weights, but not under this tag
        raise ConfigError(
            f"timm model '{name}': {exc} timm.list_pretrained('{name.split('.')[0]}*') lists its weights"
        ) from None
    found = cfg.to_dict() if cfg is not None else {}
    if not (found.get("hf_hub_id") or found.get("url") or found.get("file")):
        raise ConfigError(
            f"timm model '{name}' has no pretrained weights in timm; train it without --set pretrained=true "
            f"(timm.list_pretrained('*pattern*') lists the models that have them)"
        )
    return found


def _hub_files(cfg: Mapping[str, Any]) -> list[str]:
    """The files of the Hub repository that timm would load, in its order of preference."""
    filename = cfg.get("hf_hub_filename") or "pytorch_model.bin"
    twin = _SAFE_TWINS.get(filename) or (
        filename[:-4] + ".safetensors" if filename.endswith(".bin") else None
    )
    return [twin, filename] if twin else [filename]


def _cached_file(cfg: Mapping[str, Any]) -> tuple[str, bool] | None:
    """``(path, from the Hub?)`` of the weights already on disk: in the Hugging Face cache, else (for a
    model timm fetches from a URL) in torch's hub cache; None when they are in neither."""
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return str(cfg["file"]), False
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        # timm's own dependency, imported only when pretrained weights are asked for
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        for filename in _hub_files(cfg):
            found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache(), revision=revision or None)
            if isinstance(found, str) and os.path.isfile(found):
                return found, True
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlsplit(url).path)
        if path.is_file():
            return str(path), False
    return None
