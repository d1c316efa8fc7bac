"""The registry: which implementation of each module family is installed, and from where.

Plugins are found through entry points in the group ``gan3d`` the first time anything is looked up
(not when ``gan3d.core`` is imported). Each plugin's ``gan3d_register`` hook adds implementations by
family and name; the registry remembers the distribution that provided each one.

Environment switches:

* ``GAN3D_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points; only plugins registered in code count.
* ``GAN3D_STRICT_PLUGINS=1``: a plugin that fails to import or register is fatal (for CI).

Example:
    >>> from gan3d.core.registry import get_registry
    >>> registry = get_registry()
    >>> registry.names("point_embedder")          # doctest: +SKIP
    ['coordinate', 'triplane', 'volume']
    >>> embedder = registry.build("point_embedder", "triplane", channels=32)  # doctest: +SKIP
"""

from __future__ import annotations

import collections.abc
import inspect
import logging
import os
import threading
import traceback
import types
import typing
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .catalogue import FIRST_PARTY

__all__ = ["Registry", "RegistryError", "PluginFailure", "Entry", "get_registry", "reset_registry"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "gan3d"
DISABLE_ENV = "GAN3D_DISABLE_PLUGIN_AUTOLOAD"
STRICT_ENV = "GAN3D_STRICT_PLUGINS"

#: The families gan3d-core defines, with a one-line description for ``tools/run.py plugins``. A plugin
#: declares more with :meth:`Registry.add_family` from its ``gan3d_declare_families`` hook.
FAMILIES: dict[str, str] = {
    "method": "method recipes (a full assembly of modules, losses and schedule)",
    "stochasticity_mapper": "noise to per-layer latents",
    "pose_sampler": "camera poses",
    "point_sampler": "rays and sample points, importance sampling",
    "point_embedder": "points to features",
    "feature_decoder": "features to density/SDF and colour",
    "volume_renderer": "compositing along rays",
    "upsampler": "feature image to final image",
    "discriminator": "real/fake critics",
    "loss": "method objectives and regularizers",
    "evaluator": "metrics",
    "visualizer": "images, videos, shapes",
    "estimator": "depth and pose estimators for DE/PE",
    "importer": "readers of a method's officially released checkpoints (tools/run.py import)",
}


class RegistryError(LookupError):
    """A lookup, registration or build failed; the message says what to do."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Entry:
    """One registered implementation."""

    family: str
    name: str
    obj: Any
    distribution: str
    plugin: str


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or could not register."""

    plugin: str
    distribution: str
    error: str


class Registry:
    """Implementations by family and name, loaded lazily from ``gan3d`` entry points."""

    def __init__(self, autoload: bool | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._entries: dict[tuple[str, str], Entry] = {}
        self._families: dict[str, str] = dict(FAMILIES)
        self._family_bases: dict[str, type] = {}
        self._family_owners: dict[str, str] = {f: "gan3d-core" for f in FAMILIES}
        self._distributions: dict[str, str] = {}  # plugin name -> distribution
        self._failures: list[PluginFailure] = []
        self._autoload = (not _truthy(os.environ.get(DISABLE_ENV))) if autoload is None else autoload
        self._loaded = False
        self._lock = threading.RLock()
        self._current: tuple[str, str] | None = None  # (plugin, distribution) while registering

    # ------------------------------------------------------------------ loading
    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self._autoload:
                self._load_entry_points()
            self._pm.check_pending()

    def _load_entry_points(self) -> None:
        strict = _truthy(os.environ.get(STRICT_ENV))
        loaded: list[tuple[Any, str, str]] = []
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "<unknown distribution>"
            if self._pm.has_plugin(ep.name):
                other = self._distributions.get(ep.name, "?")
                msg = (f"entry point {ep.name!r} of {dist} has the same name as the one of {other}; "
                       "entry-point names must be unique across distributions")
                self._fail(ep.name, dist, msg, strict)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the host down
                self._fail(ep.name, dist, f"import failed: {exc!r}\n{traceback.format_exc()}", strict)
                continue
            self._pm.register(plugin, name=ep.name)
            self._distributions[ep.name] = dist
            loaded.append((plugin, ep.name, dist))
        # Families first, from every plugin, so that any plugin may add to a family another one declares.
        for _, name, dist in list(loaded):
            if not self._declare_families(name, dist, strict):
                loaded = [x for x in loaded if x[1] != name]
        for plugin, name, dist in loaded:
            self._add_plugin(plugin, name, dist, strict)

    def _fail(self, plugin: str, dist: str, error: str, strict: bool) -> None:
        self._failures.append(PluginFailure(plugin, dist, error))
        if strict:
            raise RegistryError(f"plugin {plugin!r} from {dist} failed ({STRICT_ENV}=1): {error}")
        logger.warning("gan3d plugin %r from %s failed: %s", plugin, dist, error.splitlines()[0])

    def _declare_families(self, name: str, dist: str, strict: bool) -> bool:
        """Run plugin ``name``'s ``gan3d_declare_families``; False (and the plugin unregistered) when it fails."""
        impls = [i for i in self._pm.hook.gan3d_declare_families.get_hookimpls() if i.plugin_name == name]
        before = (dict(self._families), dict(self._family_bases), dict(self._family_owners))
        try:
            for impl in impls:
                self._current = (name, dist)
                impl.function(registry=self)
            return True
        except Exception as exc:
            self._families, self._family_bases, self._family_owners = before
            self._pm.unregister(name=name)
            self._distributions.pop(name, None)
            if isinstance(exc, RegistryError):
                raise
            self._fail(name, dist, f"gan3d_declare_families failed: {exc!r}\n{traceback.format_exc()}", strict)
            return False
        finally:
            self._current = None

    def _add_plugin(self, plugin: Any, name: str, dist: str, strict: bool) -> None:
        if not self._pm.has_plugin(name):
            self._pm.register(plugin, name=name)
            self._distributions[name] = dist
        impls = [i for i in self._pm.hook.gan3d_register.get_hookimpls() if i.plugin_name == name]
        before = dict(self._entries)
        try:
            for impl in impls:
                self._current = (name, dist)
                impl.function(registry=self)
        except Exception as exc:
            # Roll back whatever the plugin added before it failed, so it is all or nothing.
            self._entries = before
            self._pm.unregister(name=name)
            self._distributions.pop(name, None)
            if isinstance(exc, RegistryError):
                raise
            self._fail(name, dist, f"gan3d_register failed: {exc!r}\n{traceback.format_exc()}", strict)
        finally:
            self._current = None

    # ------------------------------------------------------------------ registering
    def register(self, plugin: Any, name: str | None = None, distribution: str | None = None) -> str:
        """Register a plugin object in code (a module or any object with ``@hookimpl`` functions).

        Returns the plugin name, for :meth:`unregister`. Its implementations are added at once.
        """
        self._ensure_loaded()
        name = name or getattr(plugin, "__name__", None) or f"plugin-{id(plugin)}"
        if self._pm.has_plugin(name):
            raise RegistryError(f"a plugin named {name!r} is already registered")
        dist = distribution or "<registered in code>"
        self._pm.register(plugin, name=name)
        self._distributions[name] = dist
        self._declare_families(name, dist, strict=True)
        self._add_plugin(plugin, name, dist, strict=True)
        self._pm.check_pending()
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered under ``name`` and everything it added."""
        self._ensure_loaded()
        if not self._pm.has_plugin(name):
            raise RegistryError(f"no plugin named {name!r} is registered")
        self._pm.unregister(name=name)
        self._distributions.pop(name, None)
        self._entries = {k: e for k, e in self._entries.items() if e.plugin != name}

    def add_family(self, name: str, description: str, base: type | None = None) -> None:
        """Declare a new family ``name`` (called from a plugin's ``gan3d_declare_families`` hook), with a
        one-line ``description`` and, for families of modules, the ``base`` class implementations subclass
        (:meth:`add` then refuses other classes)."""
        if not name.isidentifier():
            raise RegistryError(f"a family name must be an identifier, got {name!r}")
        plugin, dist = self._current or ("<direct>", "<registered in code>")
        if name in self._families:
            raise RegistryError(f"family {name!r} is declared twice: by {self._family_owners.get(name, '?')} and by "
                                f"{dist} (plugin {plugin!r})")
        self._families[name] = description
        self._family_owners[name] = dist
        if base is not None:
            self._family_bases[name] = base

    def families(self) -> dict[str, str]:
        """Every known family and its description: gan3d-core's and those plugins declared."""
        self._ensure_loaded()
        return dict(self._families)

    def family_base(self, family: str) -> type | None:
        """The base class implementations of ``family`` subclass, where one is declared."""
        from .interfaces import FAMILY_BASES

        return FAMILY_BASES.get(family) or self._family_bases.get(family)

    def add(self, family: str, name: str, obj: Any) -> None:
        """Add implementation ``obj`` under ``family``/``name``; called from ``gan3d_register``."""
        if family not in self._families:
            raise RegistryError(f"unknown family {family!r}; families: {', '.join(self._families)} (a plugin "
                                "declares a new one with registry.add_family in its gan3d_declare_families hook)")
        base = self._family_bases.get(family)
        if base is not None and isinstance(obj, type) and not issubclass(obj, base):
            raise RegistryError(f"{family} {name!r}: {obj.__name__} must subclass the family's base {base.__name__}")
        plugin, dist = self._current or ("<direct>", "<registered in code>")
        key = (family, name)
        if key in self._entries:
            first = self._entries[key]
            raise RegistryError(
                f"{family} {name!r} is registered twice: by {first.distribution} (plugin "
                f"{first.plugin!r}) and by {dist} (plugin {plugin!r}); uninstall one of them"
            )
        self._entries[key] = Entry(family, name, obj, dist, plugin)

    def call_hook(self, hook: str, **kwargs: Any) -> list[Any]:
        """Call hook ``hook`` of every loaded plugin (e.g. ``gan3d_add_commands``); returns the results."""
        self._ensure_loaded()
        return getattr(self._pm.hook, hook)(**kwargs)

    # ------------------------------------------------------------------ lookup
    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to import or register, with their errors."""
        self._ensure_loaded()
        return list(self._failures)

    def plugins(self) -> dict[str, str]:
        """Registered plugin names and the distribution of each."""
        self._ensure_loaded()
        return dict(self._distributions)

    def entries(self, family: str | None = None) -> list[Entry]:
        """Every registered implementation (of ``family`` when given), sorted by family and name."""
        self._ensure_loaded()
        if family is not None and family not in self._families:
            raise RegistryError(f"unknown family {family!r}; families: {', '.join(self._families)}")
        out = [e for e in self._entries.values() if family is None or e.family == family]
        order = list(self._families)
        return sorted(out, key=lambda e: (order.index(e.family), e.name))

    def names(self, family: str) -> list[str]:
        """The names installed for ``family``."""
        return [e.name for e in self.entries(family)]

    def entry(self, family: str, name: str) -> Entry:
        """The :class:`Entry` for ``family``/``name``, or a :class:`RegistryError` that says what is
        installed and which distribution provides the name when it is one of gan3d's."""
        self._ensure_loaded()
        if family not in self._families:
            raise RegistryError(f"unknown family {family!r}; families: {', '.join(self._families)}")
        try:
            return self._entries[(family, name)]
        except KeyError:
            raise RegistryError(self._missing_message(family, name)) from None

    def get(self, family: str, name: str) -> Any:
        """The registered object (usually a class) for ``family``/``name``."""
        return self.entry(family, name).obj

    def _missing_message(self, family: str, name: str) -> str:
        installed = self.entries(family)
        listing = ", ".join(f"{e.name} ({e.distribution})" for e in installed) or "none"
        label = family.replace("_", " ")
        msg = f"{label} {name!r} is not installed; installed {label}s: {listing}."
        provider = FIRST_PARTY.get(family, {}).get(name)
        if provider:
            msg += f" It is provided by {provider}: pip install {provider}."
        else:
            msg += " Install a plugin that provides it."
        failed = [f for f in self._failures]
        if failed:
            msg += " Plugins that failed to load: " + ", ".join(f"{f.plugin} ({f.distribution})" for f in failed)
            msg += "; see `tools/run.py plugins`."
        return msg

    def build(self, family: str, name: str, **kwargs: Any) -> Any:
        """Instantiate ``family``/``name`` with ``kwargs``, checking names and types first.

        An unknown option or a value of the wrong type is a :class:`RegistryError` that names the
        option, the implementation and the accepted options.
        """
        obj = self.get(family, name)
        check_kwargs(obj, kwargs, f"{family} {name!r}")
        return obj(**kwargs)


def _accepted_types(default: Any) -> tuple[type, ...] | None:
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, int):
        return (int,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, str):
        return (str,)
    if isinstance(default, (list, tuple)):
        return (list, tuple)
    if isinstance(default, dict):
        return (dict,)
    return None


def _annotated_types(obj: Any, name: str) -> tuple[tuple[type, ...], bool] | None:
    """The plain types an option's annotation allows (``int | None`` -> ``((int,), True)``), or
    ``None`` when the annotation is absent or not made of plain types."""
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        hint = typing.get_type_hints(target).get(name)
    except Exception:  # unresolvable annotations (names only known under TYPE_CHECKING): no check
        return None
    if hint is None:
        return None
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    plain: list[type] = []
    optional = False
    for arg in args:
        if arg is type(None):
            optional = True
            continue
        origin = typing.get_origin(arg) or arg
        if origin in (int, float, str, bool, list, tuple, dict):
            plain.append(origin)
        else:
            return None  # a tensor, a callable, a literal...: not checked here
    if float in plain and int not in plain:
        plain.append(int)
    if list in plain or tuple in plain:
        plain += [list, tuple]
    return tuple(dict.fromkeys(plain)), optional


def _type_fits(value: Any, types_: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types_
    return isinstance(value, types_)


def _annotated_element_type(obj: Any, name: str) -> type | None:
    """The element type of an option annotated as a sequence of one plain type (``Sequence[float]``,
    ``list[int] | None``, ``tuple[float, float]``), or ``None``."""
    try:
        target = obj.__init__ if inspect.isclass(obj) else obj
        hint = typing.get_type_hints(target).get(name)
    except Exception:
        return None
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        origin = typing.get_origin(option)
        if origin in (list, tuple, collections.abc.Sequence):
            kinds = {a for a in typing.get_args(option) if a is not Ellipsis}
            if len(kinds) == 1 and next(iter(kinds)) in (int, float, str):
                return next(iter(kinds))
    return None


def _element_problem(default: Any, value: Any, annotated: type | None = None) -> str | None:
    """Why the elements of a list ``value`` do not fit those of a list ``default`` of numbers or
    strings (``[4, 8]`` takes ints), or the ``annotated`` element type, or ``None``."""
    if not isinstance(value, (list, tuple)):
        return None
    kinds = {type(d) for d in default} if isinstance(default, (list, tuple)) and default else (
        {annotated} if annotated else set())
    if len(kinds) != 1 or next(iter(kinds)) not in (int, float, str):
        return None
    kind = next(iter(kinds))
    accepted = (int, float) if kind is float else (kind,)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, accepted)]
    if bad:
        return f"must hold {kind.__name__}s, got {bad[0]!r} in {value!r:.120}"
    return None


def check_kwargs(obj: Any, kwargs: dict[str, Any], what: str) -> None:
    """Raise :class:`RegistryError` when ``kwargs`` do not fit the signature of ``obj``.

    Unknown names are refused (unless ``obj`` takes ``**kwargs``). A value whose type differs from
    the default's (an int is accepted for a float) is refused, as is ``None`` for an option whose
    default is not ``None``, a list whose elements differ in type from the default list's, and, for
    options that default to ``None``, a value outside the option's annotated types (``int | None``).
    """
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key, value in kwargs.items():
        if key not in params:
            raise RegistryError(f"{what} has no option {key!r}; its options: {', '.join(accepted) or 'none'}")
        default = params[key].default
        types_ = _accepted_types(default)
        optional = default is None
        if types_ is None and default is None:
            annotated = _annotated_types(obj, key)
            if annotated is not None:
                types_, optional = annotated[0], True
        if value is None:
            if types_ is not None and not optional:
                raise RegistryError(f"{what} option {key!r} must be {' or '.join(t.__name__ for t in types_)}, "
                                    "got null (None)")
            continue
        if types_ is not None and types_ and not _type_fits(value, types_):
            raise RegistryError(
                f"{what} option {key!r} must be {' or '.join(t.__name__ for t in types_)}, "
                f"got {type(value).__name__} {value!r:.120}"
            )
        empty = not (isinstance(default, (list, tuple)) and default)
        problem = _element_problem(default, value, _annotated_element_type(obj, key) if empty else None)
        if problem:
            raise RegistryError(f"{what} option {key!r} {problem}")
    missing = [n for n, p in params.items()
               if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and n not in kwargs]
    if missing:
        raise RegistryError(f"{what} needs option(s) {', '.join(missing)}")


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry (created on first call; entry points load on first lookup)."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None:
            _REGISTRY = Registry()
        return _REGISTRY


def reset_registry(registry: Registry | None = None) -> Registry | None:
    """Replace the process-wide registry (tests); returns the previous one."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        previous, _REGISTRY = _REGISTRY, registry
        return previous
