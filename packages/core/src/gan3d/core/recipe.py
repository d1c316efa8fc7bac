"""Method recipes: which implementation fills each slot, with what options, and how to train.

A recipe is plain data. It round-trips through JSON, is written into every work directory and
checkpoint, and is overridden from the command line with dotted keys::

    recipe = registry.get("method", "eg3d")()           # the method's default recipe
    recipe = recipe.override("point_embedder.resolution=64")
    recipe = recipe.override("point_embedder=volume")   # swap the implementation (options reset)
    recipe = recipe.override("training.batch_size=8")
    Recipe.from_json(recipe.to_json()) == recipe        # True
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ModuleSpec", "Recipe", "RecipeError", "GENERATOR_SLOTS", "SLOTS", "parse_value", "MAIN_GROUP",
           "GROUP_FAMILIES", "group_slot", "split_slot", "is_slot"]

#: Slots the assembled generator fills, in data-flow order.
GENERATOR_SLOTS = (
    "stochasticity_mapper",
    "pose_sampler",
    "point_sampler",
    "point_embedder",
    "feature_decoder",
    "volume_renderer",
    "upsampler",
)
#: Every fixed slot of a recipe.
SLOTS = GENERATOR_SLOTS + ("discriminator", "loss")
SECTIONS = ("generator", "training", "data")
#: The field group the unprefixed ``point_sampler``, ``point_embedder`` and ``feature_decoder`` form.
MAIN_GROUP = "main"
#: The families a field group has a slot of; another group's slots are named ``<group>/<family>``
#: (``background/point_embedder``). A group without its own ``point_sampler`` shares the main group's samples.
GROUP_FAMILIES = ("point_sampler", "point_embedder", "feature_decoder")


def group_slot(group: str, family: str) -> str:
    """The slot name of ``family`` in field group ``group``: ``'point_embedder'`` for the main group,
    ``'background/point_embedder'`` for another."""
    return family if group == MAIN_GROUP else f"{group}/{family}"


def split_slot(slot: str) -> tuple[str, str]:
    """``'background/point_embedder'`` -> ``('background', 'point_embedder')``; ``'upsampler'`` ->
    ``('main', 'upsampler')``."""
    group, sep, family = slot.partition("/")
    return (group, family) if sep else (MAIN_GROUP, slot)


def is_slot(name: str) -> bool:
    """Whether ``name`` is a slot: a fixed one or ``<group>/<family>`` of a field group."""
    if name in SLOTS:
        return True
    group, family = split_slot(name)
    return "/" in name and family in GROUP_FAMILIES and bool(group) and group.isidentifier() and group != MAIN_GROUP


class RecipeError(ValueError):
    """A recipe or an override is malformed; the message names the key."""


@dataclass
class ModuleSpec:
    """A registered implementation name and the keyword arguments to build it with."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    """A method as data.

    Attributes:
        method: the registered method name (``'eg3d'``).
        modules: slot -> :class:`ModuleSpec` for each of :data:`SLOTS`.
        generator: options of the assembled generator (``render_resolution``, ``num_importance``,
            ``chunk``, ...), see :class:`gan3d.core.generator.Generator`.
        training: the schedule and optimizer settings read by the trainer.
        variant: the named configuration the defaults come from (``'ffhq512'``), if any.
        data: how the method reads its data set (``labels``, ``preprocessing``, ``label_format``),
            see :func:`gan3d.core.data.open_training_dataset`.
    """

    method: str
    modules: dict[str, ModuleSpec]
    generator: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    variant: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [s for s in self.modules if not is_slot(s)]
        if unknown:
            raise RecipeError(
                f"recipe {self.method!r} has unknown slot(s) {sorted(unknown)}; slots: {', '.join(SLOTS)} and "
                f"field-group slots <group>/{{{', '.join(GROUP_FAMILIES)}}}"
            )
        missing = [s for s in GENERATOR_SLOTS if s not in self.modules]
        if missing:
            raise RecipeError(f"recipe {self.method!r} misses slot(s) {missing}")
        self.modules = {k: v if isinstance(v, ModuleSpec) else ModuleSpec(**v) for k, v in self.modules.items()}

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> Recipe:
        if not isinstance(data, dict):
            raise RecipeError(f"{source}: a recipe must be a JSON object, got {type(data).__name__}")
        known = {"method", "modules", "generator", "training", "variant", "data"}
        unknown = set(data) - known
        if unknown:
            raise RecipeError(f"{source}: unknown recipe key(s) {sorted(unknown)}")
        if "method" not in data or "modules" not in data:
            raise RecipeError(f"{source}: a recipe needs 'method' and 'modules'")
        try:
            modules = {k: ModuleSpec(**v) for k, v in data["modules"].items()}
        except TypeError as exc:
            raise RecipeError(f"{source}: malformed module entry: {exc}") from None
        return cls(data["method"], modules, dict(data.get("generator", {})), dict(data.get("training", {})),
                   data.get("variant"), dict(data.get("data", {})))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "recipe") -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{source}: not valid JSON: {exc}") from None
        return cls.from_dict(data, source)

    # ------------------------------------------------------------ overrides
    def override(self, assignment: str) -> Recipe:
        """A copy with one ``KEY=VALUE`` override applied.

        ``KEY`` is ``SLOT`` (swap the implementation, options reset), ``SLOT.OPTION[.SUB...]``,
        ``generator.OPTION`` or ``training.OPTION[.SUB...]``. ``VALUE`` is parsed as JSON when it
        can be (``64``, ``0.5``, ``true``, ``[1, 2]``), else taken as a string. When the key
        already has a value, the new one must have the same type (ints are accepted for floats).
        """
        if "=" not in assignment:
            raise RecipeError(f"override {assignment!r} must look like KEY=VALUE")
        key, raw = assignment.split("=", 1)
        key = key.strip().replace("-", "_")
        value = parse_value(raw)
        try:
            problem = _unusable_number(value)
        except RecursionError:
            problem = "the value is nested too deeply"
        if problem:
            raise RecipeError(f"override {key!r}: {problem}")
        parts = key.split(".")
        out = copy.deepcopy(self)
        head = parts[0]
        if is_slot(head):
            if len(parts) == 1:
                if not isinstance(value, str):
                    raise RecipeError(f"override {key!r}: an implementation name must be a string")
                out.modules[head] = ModuleSpec(value, {})
                return out
            if head not in out.modules:
                raise RecipeError(f"override {key!r}: recipe {self.method!r} has no {head!r} slot")
            _assign(out.modules[head].kwargs, parts[1:], value, key, strict=False)
            return out
        if head in SECTIONS and len(parts) > 1:
            _assign(getattr(out, head), parts[1:], value, key, strict=False)
            return out
        raise RecipeError(
            f"override {key!r}: unknown key; it must start with a slot ({', '.join(SLOTS)}, or "
            f"<group>/<{'|'.join(GROUP_FAMILIES)}> of a field group) or a section ({', '.join(SECTIONS)})"
        )

    def overrides(self, assignments: list[str] | None) -> Recipe:
        out = self
        for a in assignments or []:
            out = out.override(a)
        return out


def parse_value(raw: str) -> Any:
    """``'64'`` -> 64, ``'true'`` -> True, ``'[1,2]'`` -> [1, 2], ``'triplane'`` -> 'triplane'."""
    raw = raw.strip()
    try:
        return json.loads(raw)
    except RecursionError:
        raise RecipeError(f"value {raw[:40]!r}... is nested too deeply") from None
    except json.JSONDecodeError:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        if raw.lower() in ("none", "null"):
            return None
        return raw


#: The largest magnitude of an integer option: what a 64-bit integer (a torch size, a seed) holds.
_INT_LIMIT = 2**63 - 1


def _unusable_number(value: Any) -> str | None:
    """Why ``value`` (or a number inside it) cannot be an option value, or ``None``: NaN and
    infinities (JSON's ``NaN``, ``Infinity``, ``1e999``) and integers beyond 64 bits."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number; give a finite value"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT_LIMIT:
        return f"{value} is beyond the 64-bit integer range"
    if isinstance(value, (list, tuple)):
        return next((p for p in map(_unusable_number, value) if p), None)
    if isinstance(value, dict):
        return next((p for p in map(_unusable_number, value.values()) if p), None)
    return None


def _same_type(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, float):
        return isinstance(new, (int, float))
    if isinstance(old, (list, tuple)):
        return isinstance(new, (list, tuple))
    return isinstance(new, type(old))


def _assign(container: Any, path: list[str], value: Any, key: str, strict: bool) -> None:
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(container, list):
            try:
                idx = int(part)
                container[idx]
            except (ValueError, IndexError):
                raise RecipeError(f"override {key!r}: {part!r} is not an index of a list of {len(container)}") from None
            if last:
                if not _same_type(container[idx], value):
                    raise RecipeError(f"override {key!r}: expected {type(container[idx]).__name__}, got {value!r}")
                container[idx] = value
            else:
                container = container[idx]
            continue
        if not isinstance(container, dict):
            raise RecipeError(f"override {key!r}: {'.'.join(path[:i])} is not a mapping")
        if last:
            if part in container and not _same_type(container[part], value):
                raise RecipeError(
                    f"override {key!r}: expected {type(container[part]).__name__} "
                    f"(current value {container[part]!r}), got {type(value).__name__} {value!r}"
                )
            if strict and part not in container:
                raise RecipeError(f"override {key!r}: unknown key {part!r}; known: {', '.join(container)}")
            container[part] = value
        else:
            if part not in container:
                raise RecipeError(f"override {key!r}: unknown key {part!r}")
            container = container[part]
