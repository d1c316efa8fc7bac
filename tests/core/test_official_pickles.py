"""The restricted unpickler for official checkpoints: it reads the three containers (network
pickles, zip and legacy torch.save files) into inert stand-ins, and refuses any other global
without running anything -- proven by payloads that would create a file."""

from __future__ import annotations

import io
import os
import pickle
import re
import sys
import types

import pytest
import torch

from gan3d.core.checkpoint import CheckpointError
from gan3d.core.official import KnownClasses, OfficialObject, UnsafePickleError, load_pickled, torch_nn

MODULE = "officialpkg.nets"
# Legacy torch.save warns that it cannot find the source of the throw-away module's class.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")


def _official_module():
    """A throw-away module standing for an official code base (only the writer side imports it)."""
    module = types.ModuleType(MODULE)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)
            self.seq = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.LeakyReLU(0.2))
            self.register_buffer("scale", torch.arange(3.0))
            self.register_buffer("scratch", torch.zeros(2), persistent=False)
            self.half = torch.full((2,), 0.5, dtype=torch.float16)
            self.tied = self.fc.weight
            self.device = torch.device("cpu")
            self.options = {"z_dim": 8, "mode": "x"}

    Net.__module__ = MODULE
    Net.__qualname__ = "Net"
    module.Net = Net
    return module


@pytest.fixture
def official(monkeypatch):
    module = _official_module()
    monkeypatch.setitem(sys.modules, MODULE, module)
    monkeypatch.setitem(sys.modules, "officialpkg", types.ModuleType("officialpkg"))
    torch.manual_seed(0)
    return module.Net()


KNOWN = KnownClasses(objects={f"{MODULE}.Net"} | torch_nn("Linear", "Sequential", "LeakyReLU"))


def _write(path, obj, container: str) -> None:
    if container == "zip":
        torch.save(obj, path)
    elif container == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f)


@pytest.mark.parametrize("container", ["zip", "legacy", "pickle"])
def test_reads_a_whole_module_into_a_stand_in_with_its_state_dict(tmp_path, official, container):
    path = tmp_path / "net"
    _write(path, {"G": official, "step": 7} if container == "pickle" else official, container)
    loaded = load_pickled(path, KNOWN)
    net = loaded["G"] if container == "pickle" else loaded
    assert isinstance(net, OfficialObject) and net.official_name == f"{MODULE}.Net" and net.class_name == "Net"
    ours, theirs = net.state_dict(), official.state_dict()
    assert list(ours) == list(theirs)  # same names, same order, the non-persistent buffer left out
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]) and ours[key].dtype == theirs[key].dtype
    # Parameters in nn.Module.parameters() order, the tied one once; plain attributes as data.
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in official.named_parameters()]
    assert net.get("options") == {"z_dim": 8, "mode": "x"} and net.get("device") == torch.device("cpu")
    assert net.get("half").dtype == torch.float16
    assert net.submodule("seq.1").class_name == "LeakyReLU" and net.submodule("seq.1").get("negative_slope") == 0.2
    with pytest.raises(CheckpointError, match="no submodule 'nope'"):
        net.submodule("seq.nope")


def test_an_undeclared_class_is_refused_by_name(tmp_path, official):
    path = tmp_path / "net.pt"
    torch.save(official, path)
    with pytest.raises(UnsafePickleError, match=r"'torch\.nn\.modules\.linear\.Linear'.*ran nothing"):
        load_pickled(path, KnownClasses(objects={f"{MODULE}.Net"}))


# ------------------------------------------------------------------ malicious files
class _System:
    """Unpickling calls os.system(command) (the classic payload)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Exec:
    """Unpickling calls exec(source)."""

    def __init__(self, source: str):
        self.source = source

    def __reduce__(self):
        return exec, (self.source,)


def _payloads(marker):
    return {
        "os.system": _System(f"touch {marker}"),
        "builtins.exec": _Exec(f"open({str(marker)!r}, 'w').close()"),
    }


@pytest.mark.parametrize("container", ["zip", "legacy", "pickle"])
@pytest.mark.parametrize("payload", ["os.system", "builtins.exec"])
def test_a_malicious_reduce_is_refused_and_nothing_runs(tmp_path, official, container, payload):
    marker = tmp_path / "pwned"
    evil = _payloads(marker)[payload]
    # Hidden where a real file keeps its data: next to the network, and inside a known module's state.
    official.options = {"z_dim": 8, "hook": evil}
    path = tmp_path / "evil"
    _write(path, {"G": official} if container == "pickle" else official, container)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError) as info:
        load_pickled(path, KNOWN)
    assert not marker.exists(), "the payload ran"
    # Protocol 2 (torch.save) spells builtins as __builtin__; os.system lives in posix (or nt).
    named = {"os.system": r"'(posix|nt)\.system'", "builtins.exec": r"'(builtins|__builtin__)\.exec'"}[payload]
    assert re.search(named, str(info.value)) and str(path) in str(info.value)
    # The plain pickle module would have run it: the file is what the test says it is.
    if container == "pickle":
        with open(path, "rb") as f:
            pickle.load(f)  # noqa: S301 -- proving the payload is live, in a temporary folder
        assert marker.exists()


def test_a_payload_inside_an_embedded_storage_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    blob = io.BytesIO()
    torch.save(_System(f"touch {marker}"), blob, _use_new_zipfile_serialization=False)

    class Tensorish:
        def __reduce__(self):
            from torch.storage import _load_from_bytes

            return _load_from_bytes, (blob.getvalue(),)

    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps({"G": Tensorish()}))
    with pytest.raises(UnsafePickleError, match="posix.system|nt.system"):
        load_pickled(path, KNOWN)
    assert not marker.exists()


class _Persistent:
    """What torch_utils.persistence writes: _reconstruct_persistent_obj(meta), meta holding the
    module source that the official unpickler would exec."""

    def __init__(self, class_name: str, source: str, state: dict):
        self.meta = dict(type="class", version=6, module_src=source, class_name=class_name, state=state)

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


def _reconstruct_persistent_obj(meta):  # pragma: no cover - only its name is pickled
    raise AssertionError("never called")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


@pytest.fixture
def persistence_module(monkeypatch):
    module = types.ModuleType("torch_utils.persistence")
    module._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", module)


def test_persistent_objects_are_read_without_running_their_embedded_source(tmp_path, persistence_module):
    marker = tmp_path / "pwned"
    source = f"open({str(marker)!r}, 'w').close()\nclass TriPlaneGenerator: pass\n"
    weight = torch.nn.Parameter(torch.randn(2, 3))
    state = {"_parameters": {"weight": weight}, "_buffers": {}, "_modules": {}, "_init_kwargs": {"z_dim": 8}}
    path = tmp_path / "net.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Persistent("TriPlaneGenerator", source, state)}))
    known = KnownClasses(persistent={"TriPlaneGenerator"})
    net = load_pickled(path, known)["G_ema"]
    assert not marker.exists()
    assert net.official_name == "persistent:TriPlaneGenerator" and net.get("_init_kwargs") == {"z_dim": 8}
    assert torch.equal(net.state_dict()["weight"], weight.detach()) and len(net.source_sha256) == 64
    with pytest.raises(UnsafePickleError, match="persistent:TriPlaneGenerator"):
        load_pickled(path, KnownClasses(persistent={"OSGDecoder"}))
    assert not marker.exists()


def test_truncated_and_foreign_files_get_a_clear_error(tmp_path, official):
    path = tmp_path / "net.pt"
    torch.save(official, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(CheckpointError, match="truncated"):
        load_pickled(cut, KNOWN)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="neither a pickle nor a torch.save file"):
        load_pickled(text, KNOWN)
    with pytest.raises(CheckpointError, match="no such file"):
        load_pickled(tmp_path / "missing.pkl", KNOWN)


def test_a_tensor_cannot_reach_outside_its_storage(tmp_path):
    from gan3d.core.official.pickles import _rebuild_tensor_v2

    storage = torch.zeros(4)
    assert _rebuild_tensor_v2(storage, 1, (3,), (1,)).shape == (3,)
    with pytest.raises(CheckpointError, match="outside its storage"):
        _rebuild_tensor_v2(storage, 2, (3,), (1,))
    with pytest.raises(CheckpointError, match="malformed"):
        _rebuild_tensor_v2(storage, -1, (1,), (1,))


def test_declared_type_names_read_as_inert_markers_and_defaultdicts_as_dicts(tmp_path):
    """EpiGRAF's pickled OmegaConf metadata holds typing.Any and builtins.dict as values and a defaultdict(dict)
    cache: the declared type names become markers, the defaultdict a plain dict whose factory never runs."""
    import collections
    import typing

    from gan3d.core.official import TypeReference

    path = tmp_path / "meta.pkl"
    path.write_bytes(pickle.dumps({"ref_type": typing.Any, "object_type": dict,
                                   "cache": collections.defaultdict(dict, {"a": {"b": 1}})}))
    with pytest.raises(UnsafePickleError, match="typing.Any"):
        load_pickled(path, KnownClasses())
    data = load_pickled(path, KnownClasses(types={"typing.Any", "builtins.dict"}))
    assert data["ref_type"] == TypeReference("typing.Any") and data["object_type"] == TypeReference("builtins.dict")
    assert type(data["cache"]) is dict and data["cache"] == {"a": {"b": 1}}

    # A declared type name is never called: a pickle that tries gets an error, and nothing is built.
    class _CallsInt:
        def __reduce__(self):
            return (int, ("7",))

    path.write_bytes(pickle.dumps([_CallsInt()]))
    with pytest.raises(CheckpointError, match="builtins.int, which gan3d reads only as a type name"):
        load_pickled(path, KnownClasses(types={"builtins.int"}))


def test_network_pickle_nets_keeps_the_declared_networks_and_names_what_is_wrong():
    from gan3d.core.official.importer import network_pickle_nets

    def stand_in(name):
        return type(name, (OfficialObject,), {"official_name": f"persistent:{name}"})()

    classes = {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}
    g, d = stand_in("Generator"), stand_in("Discriminator")
    nets = network_pickle_nets({"G_ema": g, "D": d, "augment_pipe": None}, "snap.pkl", classes, label="an X")
    assert nets == {"G_ema": g, "D": d}  # absent entries skipped, others ignored
    with pytest.raises(CheckpointError, match=r"snap.pkl: not an X network pickle \(no 'G_ema' or 'G' entry\)"):
        network_pickle_nets({"D": d}, "snap.pkl", classes, label="an X")
    with pytest.raises(CheckpointError, match="snap.pkl: not an X network pickle"):
        network_pickle_nets([g], "snap.pkl", classes, label="an X")
    with pytest.raises(CheckpointError, match="snap.pkl: D is <official persistent:Generator>, not an X Discriminator"):
        network_pickle_nets({"G": g, "D": g}, "snap.pkl", classes, label="an X")
    with pytest.raises(CheckpointError, match="snap.pkl: G is 3, not an X Generator"):
        network_pickle_nets({"G": 3}, "snap.pkl", classes, label="an X")
