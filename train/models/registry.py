"""One registry of every model edgefer can build (timm-style): listing the zoo is a query.

Pure Python: listing needs no torch; building imports torch on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefer.errors import ModelError
from edgefer.train.models.configs import SIZES, VARIANTS, StudentConfig
from edgefer.train.models.teacher_params import inception_v3_param_count
from edgefer.zoo import PRETRAINED

TEACHER = "inception-v3"
ALIASES = {"microexpnet": "p12-xxs", "teacher": TEACHER}
PAPER_NAMES = {
    TEACHER: "TeacherExpNet", "p12-m": "StudentExpNet M", "p12-s": "StudentExpNet S",
    "p12-xs": "StudentExpNet XS", "p12-xxs": "MicroExpNet",
}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "student", "teacher" or "pretrained"
    variant: str
    size: str
    params: int
    description: str
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "variant": self.variant, "size": self.size,
                "params": self.params, "aliases": list(self.aliases), "description": self.description}


def _entries() -> list[ModelEntry]:
    entries = []
    for variant in VARIANTS:
        for size in SIZES:
            config = StudentConfig(variant, size)
            aliases = tuple(a for a, target in ALIASES.items() if target == config.name)
            paper = PAPER_NAMES.get(config.name)
            description = f"student, conv1 stride {config.conv1_stride}, fc1 {config.fc1_width}" + (
                f" (paper: {paper})" if paper else "")
            entries.append(ModelEntry(config.name, "student", variant, size.upper(),
                                      config.param_count(), description, aliases))
    entries.append(ModelEntry(TEACHER, "teacher", "inception-v3", "-", inception_v3_param_count(8, 3),
                              "Inception v3 teacher, 8 classes, no auxiliary head (paper: TeacherExpNet)",
                              ("teacher",)))
    for item in PRETRAINED.values():
        entries.append(ModelEntry(item.name, "pretrained", "p12", "XXS", StudentConfig("p12", "xxs").param_count(),
                                  item.description))
    return entries


def list_models() -> list[ModelEntry]:
    return _entries()


def canonical_name(name: str) -> str:
    """Resolve aliases and case; raise ModelError for a name the registry does not know."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in {e.name for e in _entries()}:
        raise ModelError(f"unknown model {name!r}; 'edgefer models' lists them")
    return key


def create_model(name: str, *, num_classes: int = 8, **kwargs):
    """Build a family member or the teacher (random weights) as a torch module."""
    key = canonical_name(name)
    if key == TEACHER:
        from edgefer.train.models.teacher import InceptionV3

        return InceptionV3(num_classes=num_classes, **kwargs)
    from edgefer.train.models.configs import parse_member
    from edgefer.train.models.family import StudentNet

    if key in PRETRAINED:
        raise ModelError(f"{key} is a pretrained model; load it with edgefer.train.models.weights.load_pretrained")
    config = parse_member(key)
    if num_classes != config.num_classes:
        config = StudentConfig(config.variant, config.size, num_classes=num_classes)
    return StudentNet(config, **kwargs)
