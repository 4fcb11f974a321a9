"""Write the state-dict keys and shapes of torchvision's `inception_v3` (tests/reference/).

The teacher (edgefer.train.models.teacher) must load torchvision's ImageNet state dict, but torchvision
does not import beside the CPU torch edgefer is developed with (its compiled ops fail to register). This
script loads only the pure-Python modules that `torchvision/models/inception.py` needs from an unpacked
torchvision wheel, builds `inception_v3(weights=None, aux_logits=True)` and writes every state-dict key
with its shape. The file holds names and shapes only (facts of the architecture; torchvision is
BSD-3-Clause); no weights.

    pip download --no-deps torchvision==0.29.1 -d /tmp/tv
    unzip -q /tmp/tv/torchvision-*.whl 'torchvision/*' -d /tmp/tv/src
    python tools/torchvision_inception_keys.py /tmp/tv/src/torchvision \
        tests/reference/torchvision_inception_v3_keys.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path


def _package(name: str, path: Path) -> None:
    module = types.ModuleType(name)
    module.__path__ = [str(path)]  # a namespace stand-in: its submodules load, its __init__ does not run
    sys.modules[name] = module


def _load(name: str, file: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def inception_keys(root: Path) -> dict[str, list[int]]:
    """key -> shape of torchvision's inception_v3(aux_logits=True), from the package folder ``root``."""
    _package("torchvision", root)
    _package("torchvision.models", root / "models")
    _package("torchvision.transforms", root / "transforms")
    presets = types.ModuleType("torchvision.transforms._presets")  # only named in weight metadata
    presets.ImageClassification = type("ImageClassification", (), {"__init__": lambda self, **kw: None})
    sys.modules[presets.__name__] = presets
    _load("torchvision.utils", root / "utils.py")
    inception = _load("torchvision.models.inception", root / "models" / "inception.py")
    model = inception.inception_v3(weights=None, aux_logits=True, init_weights=False)
    return {key: list(value.shape) for key, value in model.state_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torchvision", type=Path, help="the unpacked torchvision package folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    version = (args.torchvision / "version.py").read_text().split("__version__ = ")[1].split("\n")[0].strip("'\"")
    data = {"torchvision": version, "model": "inception_v3(aux_logits=True)", "keys": inception_keys(args.torchvision)}
    lines = [f"  {json.dumps(key)}: {json.dumps(shape)}" for key, shape in data["keys"].items()]
    head = f'{{"torchvision": {json.dumps(version)}, "model": {json.dumps(data["model"])}, "keys": {{\n'
    args.out.write_text(head + ",\n".join(lines) + "\n}}\n")  # one key a line: diffs stay readable
    print(f"{args.out}: {len(data['keys'])} keys from torchvision {version}")


if __name__ == "__main__":
    main()
