"""Typed configuration: frozen dataclasses hold defaults, YAML files hold values.

Rules (DESIGN.md, "Configs"):
- every field of a config dataclass has a default and a comment with its unit;
- unknown keys in YAML or in ``--set`` overrides are errors that list the valid keys;
- ``--set a.b=value`` overrides are parsed as YAML scalars and type-checked against the field;
- the resolved config is written next to every output (:func:`save_config`);
- numeric fields with a valid range name it in the class's ``RANGES`` (interval notation,
  ``"(0, inf)"``, ``"[0, 1]"``): a value outside is an error when the config is loaded, before any
  data is read.

Nested dataclasses are sections: ``--set model.hidden_dim=1024``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from asrkd.errors import AsrkdError

T = TypeVar("T")


# Scientific notation that YAML 1.1 (PyYAML) leaves a string: a mantissa without a dot (1e-7, -2E3).
_YAML11_MISSED_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against type annotation ``tp`` and return it converted (int -> float,
    list -> tuple, dict -> dataclass). Raises AsrkdError naming ``where`` on mismatch."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise AsrkdError(f"config {where}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, where)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except AsrkdError as e:
                errors.append(str(e))
        raise AsrkdError(f"config {where}: {value!r} does not fit {_type_name(tp)}")
    if origin is typing.Literal:
        if isinstance(value, bool) and all(isinstance(a, str) for a in args):
            # YAML 1.1 reads an unquoted off/no/on/yes as a boolean; among string choices it is the word
            words = ("on", "yes", "true") if value else ("off", "no", "false")
            value = next((w for w in words if w in args), value)
        if value not in args:
            raise AsrkdError(f"config {where}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise AsrkdError(f"config {where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise AsrkdError(f"config {where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise AsrkdError(f"config {where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str) and _YAML11_MISSED_FLOAT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-7 (no dot) as a string; a float field means the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise AsrkdError(f"config {where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AsrkdError(f"config {where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise AsrkdError(f"config {where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise AsrkdError(f"config {where}: expected a string, got {value!r}")
        return value
    raise AsrkdError(f"config {where}: unsupported field type {_type_name(tp)}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys are errors."""
    data = dict(data or {})
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        section = where or cls.__name__
        raise AsrkdError(
            f"config {section}: unknown key(s) {unknown}; valid keys: {sorted(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, hints[name], f"{where}.{name}" if where else name)
        check_range(cls, name, kwargs[name], f"{where}.{name}" if where else name)
    return cls(**kwargs)


def check_range(cls: type, name: str, value: Any, where: str) -> None:
    """AsrkdError when field ``name`` of config class ``cls`` has a ``RANGES`` entry and
    ``value`` lies outside that interval, e.g. ``"(0, inf)"`` (open) or ``"[0, 1]"`` (closed)."""
    spec = getattr(cls, "RANGES", {}).get(name)
    if spec is None or value is None:
        return
    lo_s, hi_s = (s.strip() for s in spec[1:-1].split(","))
    lo, hi = float(lo_s), float(hi_s)
    ok_lo = value > lo if spec[0] == "(" else value >= lo
    ok_hi = value < hi if spec[-1] == ")" else value <= hi
    if not (ok_lo and ok_hi):
        raise AsrkdError(f"config {where}: {value!r} is outside the valid range {spec}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (tuples become lists) suitable for YAML/JSON and checkpoints."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def apply_overrides(data: dict[str, Any], overrides: list[str], cls: type) -> dict[str, Any]:
    """Apply ``a.b=value`` strings to the mapping ``data`` (copied), checking each path
    against the dataclass ``cls`` so a typo fails here, not silently later."""
    out = to_dict(from_dict(cls, data))  # full tree so every path exists
    for item in overrides:
        if "=" not in item:
            raise AsrkdError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        path = key.strip().split(".")
        node_cls: Any = cls
        node = out
        for depth, part in enumerate(path):
            names = [f.name for f in dataclasses.fields(node_cls)]
            if part not in names:
                where = ".".join(path[:depth]) or node_cls.__name__
                raise AsrkdError(f"--set {key}: unknown key {part!r} in {where}; valid keys: {sorted(names)}")
            ftype = _hints(node_cls)[part]
            if depth == len(path) - 1:
                try:
                    value = yaml.safe_load(raw) if raw.strip() else ""
                except yaml.YAMLError as e:
                    raise AsrkdError(f"--set {key}: cannot parse {raw!r}: {e}") from None
                # A string field given something YAML reads as a number keeps its text.
                if ftype is str and not isinstance(value, str):
                    value = raw
                node[part] = to_dict(_coerce(value, ftype, key))
            else:
                if not dataclasses.is_dataclass(ftype):
                    raise AsrkdError(f"--set {key}: {part!r} is a value, not a section")
                node_cls = ftype
                node = node[part]
    return out


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping in YAML file ``path`` ({} for an empty file); clear errors otherwise."""
    p = Path(path)
    if not p.is_file():
        raise AsrkdError(f"config file not found: {p}")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise AsrkdError(f"config file {p} is not valid YAML: {e}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise AsrkdError(f"config file {p}: top level must be a mapping")
    return loaded or {}


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, then the YAML file at ``path`` (if any), then ``overrides``."""
    data = read_yaml_mapping(path) if path is not None else {}
    try:
        if overrides:
            data = apply_overrides(data, overrides, cls)
        return from_dict(cls, data)
    except AsrkdError as e:
        if path is not None:
            raise AsrkdError(f"{e} (in {path})") from None
        raise


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically: temp file then rename)."""
    from asrkd.fileio import atomic_write_text

    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))


def config_section(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config from the plain dict stored in a checkpoint or meta.json."""
    return from_dict(cls, data)
