"""Read the pickled checkpoints of the official implementations without running any of their code.

The released networks of the nine methods come in three containers:

* **network pickles** (EG3D, StyleNeRF, EpiGRAF: ``pickle.dump`` of a dict of modules). Their
  classes are written by ``torch_utils.persistence``, whose ``__reduce__`` replaces each object by
  ``_reconstruct_persistent_obj(meta)`` with ``meta = {type, version, module_src, class_name,
  state}``: unpickling normally would ``exec`` the embedded ``module_src``. Tensors inside are
  ``torch._utils._rebuild_tensor_v2`` over storages stored as ``torch.storage._load_from_bytes(b)``,
  ``b`` being a legacy ``torch.save`` file of the one storage.
* **zip ``torch.save`` files** (torch >= 1.6): ``<archive>/data.pkl`` plus one file per storage under
  ``<archive>/data/``. pi-GAN and GRAM save whole modules this way (their classes pickled by name),
  StyleSDF, GIRAFFE, GRAF and VolumeGAN state dicts.
* **legacy ``torch.save`` files** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five
  pickles in a row (magic number, protocol, system info, the object, the storage keys), then the
  raw storages.

:func:`load_pickled` reads all three with :class:`RestrictedUnpickler`, whose ``find_class`` is the
only way a pickle can reach a Python global: it returns

* a few inert constructors of plain data (``collections.OrderedDict``, the tensor and parameter
  rebuilders, storage types, numpy arrays and scalars, ``set``, ``slice``...), re-implemented or
  checked here so that no argument can make them do anything else;
* for the class names a format declares (:class:`KnownClasses`), a stand-in class
  (:class:`OfficialObject`) that only records the arguments and state it is given;
* for the type names a format declares as mere values (``typing.Any``, ``builtins.dict`` in the metadata
  of EpiGRAF's pickled OmegaConf configurations), an inert :class:`TypeReference` that cannot be called;
* for ``_reconstruct_persistent_obj``, a function that records ``class_name`` and ``state`` (the
  class name must be declared too) and the SHA-256 of ``module_src``, which it never executes;

and refuses every other global with :class:`UnsafePickleError`, naming it. Nothing from the file is
ever imported, called or executed; ``pickle.load`` and ``torch.load`` are never used on it.

Example:
    >>> known = KnownClasses(objects={"generators.generators.ImplicitGenerator3d"})
    >>> generator = load_pickled("generator.pth", known, what="a pi-GAN generator.pth")  # doctest: +SKIP
    >>> generator.official_name, list(generator.state_dict())[:2]                       # doctest: +SKIP
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import CheckpointError

__all__ = [
    "KnownClasses",
    "OfficialObject",
    "TypeReference",
    "OfficialDict",
    "RestrictedUnpickler",
    "UnsafePickleError",
    "load_pickled",
    "torch_nn",
]

#: The first pickle of a legacy ``torch.save`` file (torch/serialization.py ``MAGIC_NUMBER``).
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
#: The second one (``PROTOCOL_VERSION``).
LEGACY_PROTOCOL_VERSION = 1001

#: Storage types a ``torch.save`` file names in its persistent ids, with their element dtype.
_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128, "UntypedStorage": torch.uint8,
}


class UnsafePickleError(CheckpointError):
    """A pickle names a global that is not a known, inert class or data constructor; nothing from it
    was run."""


def torch_nn(*names: str) -> frozenset[str]:
    """Qualified names of ``torch.nn`` layer classes as pickles spell them, for :class:`KnownClasses`.

    ``torch_nn("Linear", "Sequential")`` ->
    ``{"torch.nn.modules.linear.Linear", "torch.nn.modules.container.Sequential"}``.
    """
    out = set()
    for name in names:
        cls = getattr(torch.nn, name, None)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise ValueError(f"torch.nn has no layer class {name!r}")
        out.add(f"{cls.__module__}.{cls.__qualname__}")
    return frozenset(out)


@dataclass(frozen=True)
class KnownClasses:
    """The classes one official format may name; everything else is refused.

    Attributes:
        objects: qualified names (``module.Class``) of pickled classes, read into
            :class:`OfficialObject` stand-ins (``siren.siren.FiLMLayer``, ``torch.nn.modules.linear.Linear``).
        dicts: qualified names of ``dict`` subclasses, read into :class:`OfficialDict`
            (``dnnlib.util.EasyDict``).
        persistent: bare class names allowed in ``torch_utils.persistence`` objects (``TriPlaneGenerator``).
        persistence_modules: modules whose ``_reconstruct_persistent_obj`` the pickle may name.
        types: qualified names of types the pickle holds only as values (a type annotation kept in an
            object's state: ``typing.Any``, ``builtins.dict``), read into :class:`TypeReference` markers,
            which refuse to be called.
    """

    objects: frozenset[str] | set[str] = frozenset()
    dicts: frozenset[str] | set[str] = frozenset()
    persistent: frozenset[str] | set[str] = frozenset()
    persistence_modules: frozenset[str] | set[str] = frozenset({"torch_utils.persistence"})
    types: frozenset[str] | set[str] = frozenset()

    def __or__(self, other: KnownClasses) -> KnownClasses:
        return KnownClasses(frozenset(self.objects) | frozenset(other.objects),
                            frozenset(self.dicts) | frozenset(other.dicts),
                            frozenset(self.persistent) | frozenset(other.persistent),
                            frozenset(self.persistence_modules) | frozenset(other.persistence_modules),
                            frozenset(self.types) | frozenset(other.types))


class OfficialObject:
    """An inert stand-in for one pickled object of an official class: the class name, the
    constructor arguments and the state the pickle gave it, nothing else.

    Attributes:
        official_name: ``module.Class`` (pickled classes) or ``persistent:Class``
            (``torch_utils.persistence`` objects).
        args: positional arguments the pickle passed to the class.
        state: the object's state (``__dict__`` of an ``nn.Module``: ``_parameters``, ``_buffers``,
            ``_modules``, and plain attributes), ``{}`` when none was given.
        source_sha256: for persistent objects, the SHA-256 of the embedded module source (never run).
    """

    official_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        obj = super().__new__(cls)
        obj.args = args
        obj.state = {}
        obj.items = {}
        obj.list_items = []
        obj.source_sha256 = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # REDUCE calls the class: record only
        pass

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict | type(None)):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
        self.state = state if isinstance(state, dict) else {"__state__": state}

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list_items.append(value)

    def extend(self, values: Iterable[Any]) -> None:
        self.list_items.extend(values)

    def __repr__(self) -> str:
        return f"<official {self.official_name}>"

    @property
    def class_name(self) -> str:
        """The bare class name (``FiLMLayer``)."""
        return self.official_name.rsplit(".", 1)[-1].rsplit(":", 1)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        """An attribute of the official object (an entry of its state)."""
        return self.state.get(name, default)

    def require(self, name: str) -> Any:
        """An attribute that must be there; :class:`CheckpointError` naming it otherwise."""
        if name not in self.state:
            raise CheckpointError(f"the official {self.class_name} object has no attribute {name!r}; "
                                  "is this the checkpoint format the importer expects?")
        return self.state[name]

    # ------------------------------------------------------------ nn.Module views
    @property
    def is_module(self) -> bool:
        """Whether the state is an ``nn.Module``'s (it has ``_parameters`` and ``_modules``)."""
        return "_parameters" in self.state and "_modules" in self.state

    def children(self) -> dict[str, OfficialObject]:
        """The submodules by attribute name (``_modules``), in registration order."""
        return {k: v for k, v in (self.state.get("_modules") or {}).items() if isinstance(v, OfficialObject)}

    def submodule(self, path: str) -> OfficialObject:
        """The submodule at a dotted ``path`` (``"siren.mapping_network"``)."""
        node = self
        for part in path.split(".") if path else []:
            child = node.children().get(part)
            if child is None:
                raise CheckpointError(f"the official {node.class_name} has no submodule {part!r} (looking up {path!r})")
            node = child
        return node

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, OfficialObject]]:
        """``(dotted name, module)`` depth first, the module itself first (``nn.Module.named_modules``)."""
        yield prefix, self
        for name, child in self.children().items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> list[tuple[str, Tensor]]:
        """Parameters in ``nn.Module.named_parameters`` order, shared ones listed once."""
        seen: set[int] = set()
        out = []
        for prefix, module in self.named_modules():
            for name, p in (module.state.get("_parameters") or {}).items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                out.append((f"{prefix}.{name}" if prefix else name, p))
        return out

    def state_dict(self) -> dict[str, Tensor]:
        """What ``nn.Module.state_dict()`` of the official module would give: parameters and
        persistent buffers by dotted name, as plain tensors."""
        out: dict[str, Tensor] = collections.OrderedDict()
        for prefix, module in self.named_modules():
            skip = set(module.state.get("_non_persistent_buffers_set") or ())
            entries = list((module.state.get("_parameters") or {}).items())
            entries += [(k, v) for k, v in (module.state.get("_buffers") or {}).items() if k not in skip]
            for name, t in entries:
                if isinstance(t, Tensor):
                    out[f"{prefix}.{name}" if prefix else name] = t.detach()
        return out


class OfficialDict(dict):
    """A stand-in for a pickled ``dict`` subclass (``dnnlib.util.EasyDict``): its items, nothing else."""

    official_name = "?"

    def __setstate__(self, state: Any) -> None:  # a dict subclass may carry an (empty) __dict__
        pass


@dataclass(frozen=True)
class TypeReference:
    """What a declared type name (:attr:`KnownClasses.types`) reads as: its name, nothing callable."""

    name: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise CheckpointError(f"the file asks to call {self.name}, which gan3d reads only as a type name")


@dataclass(frozen=True)
class _StorageType:
    """What a pickle's ``torch.FloatStorage`` (and friends) resolves to: only its dtype."""

    name: str
    dtype: torch.dtype


def _flat(storage: Any, what: str) -> Tensor:
    if not isinstance(storage, Tensor) or storage.ndim != 1:
        raise CheckpointError(f"{what}: a tensor refers to something that is not a storage")
    return storage


def _rebuild_tensor(storage: Any, offset: int, size: tuple, stride: tuple) -> Tensor:
    flat = _flat(storage, "tensor")
    size, stride = tuple(size), tuple(stride)
    if not (isinstance(offset, int) and offset >= 0 and len(size) == len(stride)
            and all(isinstance(s, int) and s >= 0 for s in (*size, *stride))):
        raise CheckpointError("a tensor in the file has a malformed size, stride or offset")
    if 0 in size:
        needed = offset
    else:
        needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if needed > flat.numel():
        raise CheckpointError("a tensor in the file reaches outside its storage")
    return flat.as_strided(size, stride, offset)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
    if not isinstance(data, Tensor):
        raise CheckpointError("a parameter in the file holds something that is not a tensor")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad) and data.is_floating_point())


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1'): that and only that.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("the file asks _codecs.encode for something other than latin-1 bytes")
    return text.encode("latin1")


def _defaultdict(default_factory: Any = None, *args: Any) -> dict:
    # collections.defaultdict(factory) as pickled (REDUCE with the factory, then SETITEMS): read as a plain
    # dict, so the factory (whatever the file names) is never called.
    if args:
        raise CheckpointError("the file builds a defaultdict with more than a factory")
    return {}


def _plain_data_globals() -> dict[str, Any]:
    """Inert globals every format may name: containers, tensor/parameter rebuilding, dtypes."""
    table: dict[str, Any] = {
        "collections.OrderedDict": collections.OrderedDict,
        "collections.defaultdict": _defaultdict,
        "builtins.set": set, "builtins.frozenset": frozenset, "builtins.slice": slice,
        "__builtin__.set": set, "__builtin__.frozenset": frozenset, "__builtin__.slice": slice,
        "_codecs.encode": _codecs_encode,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
        "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        table[f"torch.{name}"] = _StorageType(name, dtype)
        table[f"torch.storage.{name}"] = _StorageType(name, dtype)
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            table[f"torch.{name}"] = getattr(torch, name)
    try:  # numpy arrays and scalars in pickled attributes (numpy's own constructors take only data)
        import numpy

        try:
            from numpy._core import multiarray
        except ImportError:  # numpy < 2
            from numpy.core import multiarray
        for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
            table[f"{core}._reconstruct"] = multiarray._reconstruct
            table[f"{core}.scalar"] = multiarray.scalar
        table["numpy.ndarray"] = numpy.ndarray
        table["numpy.dtype"] = numpy.dtype
    except ImportError:
        pass
    return table


_PLAIN_DATA = _plain_data_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only declared names to inert stand-ins (see the module doc).

    Args:
        file: the binary stream holding one pickle.
        known: the classes this format may name.
        source: the file, for messages.
        storage: ``persistent_load``'s resolver of a storage id (``(dtype, key, numel) -> Tensor``
            ``[numel]``); ``None`` for pickles without persistent ids.
    """

    def __init__(self, file, known: KnownClasses, source: str, storage=None) -> None:
        super().__init__(file)
        self.known = known
        self.source = source
        self.storage = storage
        self._stand_ins: dict[str, type] = {}

    def _refuse(self, name: str, why: str) -> UnsafePickleError:
        return UnsafePickleError(
            f"{self.source}: refused: the pickle names the global {name!r}, {why}; gan3d reads only the "
            "classes the importer declares, as inert data, and ran nothing from the file")

    def stand_in(self, name: str, base: type = OfficialObject) -> type:
        if name not in self._stand_ins:
            short = name.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
            self._stand_ins[name] = type(short, (base,), {"official_name": name, "__module__": __name__})
        return self._stand_ins[name]

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in _PLAIN_DATA:
            return _PLAIN_DATA[qualified]
        if name == "_reconstruct_persistent_obj" and module in self.known.persistence_modules:
            return self._reconstruct_persistent_obj
        if qualified in self.known.objects:
            return self.stand_in(qualified)
        if qualified in self.known.dicts:
            return self.stand_in(qualified, OfficialDict)
        if qualified in self.known.types:
            return TypeReference(qualified)
        if name == "_load_from_bytes" and module == "torch.storage":
            return self._load_from_bytes
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            return self._reconstructor
        if module in ("builtins", "__builtin__") and name == "object":
            return object
        raise self._refuse(qualified, "which is not a class this importer knows")

    def _reconstructor(self, cls: Any, base: Any, state: Any) -> Any:
        # copyreg._reconstructor(cls, base, state) (protocol 0/1 objects): only for stand-ins.
        if not (isinstance(cls, type) and issubclass(cls, OfficialObject | OfficialDict)):
            raise self._refuse(f"copyreg._reconstructor({getattr(cls, '__name__', cls)!r})",
                               "used to build something that is not a known class")
        return cls.__new__(cls)

    def _reconstruct_persistent_obj(self, meta: Any) -> OfficialObject:
        if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
            raise CheckpointError(f"{self.source}: a torch_utils.persistence object has malformed metadata")
        name = meta["class_name"]
        if name not in self.known.persistent:
            raise self._refuse(f"persistent:{name}",
                               "a torch_utils.persistence class this importer does not know (its embedded source "
                               "was not run)")
        cls = self.stand_in(f"persistent:{name}")
        obj = cls.__new__(cls)
        obj.__setstate__(dict(meta.get("state") or {}))
        src = meta.get("module_src")
        obj.source_sha256 = hashlib.sha256(src.encode("utf-8")).hexdigest() if isinstance(src, str) else None
        obj.persistence_version = meta.get("version")
        return obj

    def _load_from_bytes(self, blob: Any) -> Tensor:
        if not isinstance(blob, bytes | bytearray):
            raise CheckpointError(f"{self.source}: torch.storage._load_from_bytes was given no bytes")
        storage = _read_legacy(io.BytesIO(bytes(blob)), KnownClasses(), f"{self.source} (an embedded storage)")
        return _flat(storage, self.source)

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "module":
            # Legacy torch.save records each nn.Module class with its source file and text, to warn
            # when they changed: the class (a stand-in, resolved by find_class) is all that counts.
            if isinstance(pid[1], type) and issubclass(pid[1], OfficialObject):
                return pid[1]
            raise CheckpointError(f"{self.source}: a module record names something that is not a known class")
        if self.storage is None:
            raise CheckpointError(f"{self.source}: the pickle refers to external storage where none can be")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0):
            raise CheckpointError(f"{self.source}: malformed storage reference {pid!r:.80}")
        if len(pid) > 5 and pid[5] is not None:
            raise CheckpointError(f"{self.source}: storage views (torch < 0.4 files) are not supported")
        return self.storage(pid[1].dtype, pid[2], pid[4])


def _unpickle(stream, known: KnownClasses, source: str, storage=None) -> Any:
    try:
        return RestrictedUnpickler(stream, known, source, storage).load()
    except (UnsafePickleError, CheckpointError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, RuntimeError) as exc:
        raise CheckpointError(f"{source}: not a readable pickle (truncated or corrupt?): "
                              f"{type(exc).__name__}: {exc}") from None


def _read_zip(path: Path, known: KnownClasses, source: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise CheckpointError(f"{source}: a zip file, but not a torch.save file (no single <archive>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and archive.read(order).decode().strip() not in ("little", ""):
            raise CheckpointError(f"{source}: big-endian torch files are not supported")
        loaded: dict[str, Tensor] = {}

        def storage(dtype: torch.dtype, key: str, numel: int) -> Tensor:
            if key not in loaded:
                member = f"{prefix}data/{key}"
                if member not in names:
                    raise CheckpointError(f"{source}: storage {key!r} is missing from the archive")
                data = archive.read(member)
                itemsize = torch.empty((), dtype=dtype).element_size()
                if len(data) < numel * itemsize:
                    raise CheckpointError(f"{source}: storage {key!r} is shorter than its {numel} elements")
                loaded[key] = torch.frombuffer(bytearray(data[: numel * itemsize]), dtype=dtype) if numel else \
                    torch.empty(0, dtype=dtype)
            elif loaded[key].dtype != dtype:
                loaded[key] = loaded[key].view(dtype)
            return loaded[key]

        with archive.open(pickles[0]) as stream:
            return _unpickle(io.BytesIO(stream.read()), known, source, storage)


def _plain_pickle(stream, source: str) -> Any:
    """One pickle of plain data (the header pickles of a legacy file)."""
    return _unpickle(stream, KnownClasses(), source)


def _read_legacy(stream, known: KnownClasses, source: str) -> Any:
    """A legacy ``torch.save`` stream: magic, protocol, sys info, object, storage keys, storages.

    Each storage after the keys is its element count (int64, little-endian) and its bytes; the
    element size comes from the dtype in the object's persistent ids. So the object is read twice:
    first to learn each storage's dtype (storages are then uninitialised placeholders), then, after
    the storages are read, for real.
    """
    if _plain_pickle(stream, source) != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"{source}: not a torch.save file")
    if _plain_pickle(stream, source) != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"{source}: unsupported legacy torch.save protocol")
    info = _plain_pickle(stream, source)
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise CheckpointError(f"{source}: big-endian torch files are not supported")
    start = stream.tell()
    dtypes: dict[str, torch.dtype] = {}

    def placeholder(dtype: torch.dtype, key: str, numel: int) -> Tensor:
        dtypes[key] = dtype
        return torch.empty(numel, dtype=dtype)

    _unpickle(stream, known, source, placeholder)
    keys = _plain_pickle(stream, source)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise CheckpointError(f"{source}: malformed storage key list")
    storages: dict[str, Tensor] = {}
    for key in keys:
        head = stream.read(8)
        if len(head) != 8 or key not in dtypes:
            raise CheckpointError(f"{source}: truncated or unreferenced storage {key!r}")
        (count,) = struct.unpack("<q", head)
        itemsize = torch.empty((), dtype=dtypes[key]).element_size()
        data = stream.read(count * itemsize)
        if count < 0 or len(data) != count * itemsize:
            raise CheckpointError(f"{source}: truncated storage {key!r}")
        storages[key] = torch.frombuffer(bytearray(data), dtype=dtypes[key]) if count else \
            torch.empty(0, dtype=dtypes[key])

    def storage(dtype: torch.dtype, key: str, numel: int) -> Tensor:
        if key not in storages or storages[key].numel() != numel:
            raise CheckpointError(f"{source}: storage {key!r} is missing or has the wrong size")
        return storages[key]

    stream.seek(start)
    return _unpickle(stream, known, source, storage)


def load_pickled(path: Path | str, known: KnownClasses, *, what: str = "an official checkpoint") -> Any:
    """Read ``path`` (network pickle, zip or legacy ``torch.save`` file) with the restricted unpickler.

    Returns the unpickled object, with :class:`OfficialObject` / :class:`OfficialDict` stand-ins for
    the declared classes and CPU tensors. Raises :class:`UnsafePickleError` naming the first global
    the file names that ``known`` does not declare (nothing from the file runs), and
    :class:`~gan3d.core.checkpoint.CheckpointError` for a missing, truncated or malformed file.
    """
    path = Path(path)
    source = f"{path} ({what})"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file ({what})")
    if zipfile.is_zipfile(path):
        return _read_zip(path, known, source)
    with path.open("rb") as f:
        head = f.read(2)
        if len(head) < 2 or head[0] != 0x80:
            raise CheckpointError(f"{source}: neither a pickle nor a torch.save file")
        f.seek(0)
        # A legacy torch.save file opens with its magic number: PROTO 2, LONG1 of 10 bytes.
        if f.read(4) == b"\x80\x02\x8a\x0a":
            f.seek(0)
            if _plain_pickle(f, source) == LEGACY_MAGIC_NUMBER:
                f.seek(0)
                return _read_legacy(f, known, source)
        f.seek(0)
        return _unpickle(f, known, source)
