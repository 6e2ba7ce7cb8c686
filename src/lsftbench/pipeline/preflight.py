"""Start-up checks: run by the Snakefile before the DAG is built, so bad configs never start a job.

* :func:`validate_config` — the JSON schema (defaults filled in, as ``snakemake.utils.validate``
  does); each problem is one line naming the key, where it is written and why, never a schema dump.
* :func:`check_names` — dataset and baseline names become parts of output paths and wildcards.
* :func:`check_paths` — every configured input file or directory exists now, so a file deleted
  after a successful run cannot let old outputs pass for a new run.

Each raises :class:`lsftbench.pipeline.config.ConfigError` listing every problem it found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import yaml

from ..formats import SCGPT_FILES
from .config import ConfigError

__all__ = [
    "NAME_PATTERN",
    "RESERVED_DATASET_NAMES",
    "validate_config",
    "check_names",
    "check_paths",
    "configured_paths",
]

#: Dataset and baseline names: they are wildcard values and path components.
NAME_PATTERN = r"[A-Za-z0-9_-]+"
#: Directories directly under the results directory; a dataset of that name would share them.
RESERVED_DATASET_NAMES = frozenset({"data", "figures", "logs", "resources", "splits", "tables"})
#: Configured paths with these values name a generated or downloaded resource, not a file.
_KEYWORDS = {"path": ("synthetic", "gears"), "checkpoint": ("synthetic",)}
_MAX_VALUE_CHARS = 120


# --------------------------------------------------------------------------------------------
# Schema validation
# --------------------------------------------------------------------------------------------


def validate_config(
    config: dict[str, Any],
    schema_path: str | os.PathLike[str],
    config_files: Sequence[str | os.PathLike[str]] = (),
    command_line: Mapping[str, Any] | None = None,
) -> None:
    """Validate ``config`` against the JSON schema and fill in its defaults (in place).

    Parameters
    ----------
    config
        The merged Snakemake config; schema ``default`` values are set in it, as
        ``snakemake.utils.validate(config, schema, set_default=True)`` does.
    schema_path
        The YAML/JSON schema file (JSON Schema draft 2020-12).
    config_files
        The YAML files the config came from; an offending key is located in them (``file:line``).
    command_line
        The values set with ``--config key=value`` (Snakemake's ``workflow.config_settings.config``); an
        offending key set there is said to come from the command line.

    Raises
    ------
    ConfigError
        One line per problem: the dotted key (e.g. ``lsft.centre``), its file and line when known,
        and the reason (an unknown key lists the keys allowed there).
    """
    import jsonschema

    schema = _load_yaml(Path(schema_path))
    validator_class = _with_defaults(jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator))
    validator = validator_class(schema, registry=_registry(schema, Path(schema_path)))
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.extend(_describe(error, config_files, command_line or {}))
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(dict.fromkeys(problems)))


def _load_yaml(path: Path) -> Any:
    with open(path) as handle:
        return yaml.safe_load(handle)


def _registry(schema: dict[str, Any], schema_path: Path) -> Any:
    """Resolve ``$ref`` within the schema and to files relative to it."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    def retrieve(uri: str) -> Any:
        return Resource.from_contents(_load_yaml(Path(url2pathname(urlparse(uri).path))), default_specification=DRAFT202012)

    uri = schema_path.resolve().as_uri()
    schema.setdefault("$id", uri)
    return Registry(retrieve=retrieve).with_resource(uri, Resource.from_contents(schema, default_specification=DRAFT202012))


def _with_defaults(validator_class: Any) -> Any:
    """A validator class that fills in ``default`` values while it validates ``properties``."""
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict[str, Any], instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def _describe(
    error: Any, config_files: Sequence[str | os.PathLike[str]], command_line: Mapping[str, Any] | None = None
) -> list[str]:
    """One line per problem of a jsonschema ``ValidationError``."""
    path = list(error.absolute_path)
    from_command_line = bool(path) and str(path[0]) in (command_line or {})

    def located(key_path: list[Any]) -> str:
        # a value set with --config has no file line to point at
        return " (set with --config on the command line)" if from_command_line else _located(config_files, key_path)

    if error.validator == "additionalProperties" and error.validator_value is False and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        extras = [k for k in error.instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
        scope = f"under '{_dotted(path)}'" if path else "at the top level"
        return [
            f"unknown key '{_dotted([*path, k])}'{located([*path, k])}; allowed {scope}: {', '.join(allowed)}"
            for k in extras
        ]
    if error.validator == "required":
        missing = re.match(r"'([^']*)' is a required property", error.message)
        name = missing.group(1) if missing else error.message
        return [f"'{_dotted(path) or 'config'}'{located(path)} lacks the required key '{name}'"]
    key = _dotted(path) or "config"
    hint = ""
    if error.validator == "type" and isinstance(error.instance, str) and _YAML_FLOAT.fullmatch(error.instance.strip()):
        mantissa, _, exponent = error.instance.strip().lower().partition("e")
        dotted = mantissa if "." in mantissa else f"{mantissa}.0"
        hint = (f" (YAML reads {error.instance!r} as text, not a number: write {float(error.instance):g} or "
                f"{dotted}e{exponent}, with a dot in the mantissa)")
    return [f"'{key}'{located(path)}: {_shorten(error.message)}{hint}"]


#: A number in exponent notation that YAML 1.1 (PyYAML) reads as a string: no dot in the mantissa (``1e-1``).
_YAML_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 2 * _MAX_VALUE_CHARS else text[: 2 * _MAX_VALUE_CHARS] + " ..."


def _located(config_files: Sequence[str | os.PathLike[str]], path: list[Any]) -> str:
    """`` (file:line)`` of the key ``path`` in the last config file that has it, else ``""``."""
    if not path:
        return ""
    for name in reversed(list(config_files)):
        try:
            with open(name) as handle:
                node = yaml.compose(handle)
        except (OSError, yaml.YAMLError):
            continue
        line = _line_of(node, path)
        if line is not None:
            return f" ({name}:{line})"
    return ""


def _line_of(node: Any, path: list[Any]) -> int | None:
    """1-based line of the key (or list item) ``path`` in a composed YAML node tree."""
    mark = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if hit is None:
                return None
            mark, node = hit[0].start_mark, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            return None
    return None if mark is None else mark.line + 1


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def check_names(config: dict[str, Any]) -> None:
    """Dataset, baseline and model names must match :data:`NAME_PATTERN`; dataset names must not be reserved.

    Raises
    ------
    ConfigError
        Naming each offending name, its key and the allowed pattern.
    """
    problems = []
    allowed = f"names may contain only letters, digits, '_' and '-' (pattern {NAME_PATTERN}), because they become parts of output paths"
    for section in ("datasets", "baselines", "models"):
        for name in config.get(section) or {}:
            if not re.fullmatch(NAME_PATTERN, str(name)):
                problems.append(f"{section}: the name {str(name)!r} is not allowed: {allowed}")
    for name in config.get("datasets") or {}:
        if str(name) in RESERVED_DATASET_NAMES:
            problems.append(
                f"datasets: the name {str(name)!r} is reserved (it is a directory of the results: "
                f"{', '.join(sorted(RESERVED_DATASET_NAMES))}); rename the dataset"
            )
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def configured_paths(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every input path the config declares: ``(dotted key, path, kind)``.

    ``kind`` is ``"file"`` or ``"scgpt"`` (a checkpoint directory holding
    :data:`lsftbench.formats.SCGPT_FILES`). Keywords (``synthetic``, ``gears``) that stand for generated or
    downloaded resources are not paths and are left out.
    """
    found = []
    for name, ds in (config.get("datasets") or {}).items():
        if ds.get("source") == "local" and ds.get("path"):
            found.append((f"datasets.{name}.path", str(ds["path"]), "file"))
        if ds.get("split_file"):
            found.append((f"datasets.{name}.split_file", str(ds["split_file"]), "file"))
    for name, spec in (config.get("baselines") or {}).items():
        for side in ("gene", "pert"):
            part = spec.get(side) or {}
            kind, key = part.get("type"), f"baselines.{name}.{side}"
            if kind in ("table", "go_graph") and part.get("path") and part["path"] not in _KEYWORDS["path"]:
                found.append((f"{key}.path", str(part["path"]), "file"))
            checkpoint = part.get("checkpoint")
            if kind in ("scgpt", "scfoundation") and checkpoint and checkpoint not in _KEYWORDS["checkpoint"]:
                found.append((f"{key}.checkpoint", str(checkpoint), "scgpt" if kind == "scgpt" else "file"))
                if kind == "scfoundation" and part.get("gene_list"):
                    found.append((f"{key}.gene_list", str(part["gene_list"]), "file"))
    return found


def check_paths(config: dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> None:
    """Every configured input path (:func:`configured_paths`) must exist and be readable now.

    Parameters
    ----------
    config
        The validated config.
    base_dir
        Directory relative paths are taken from (default: the working directory, which is where
        Snakemake resolves them).

    Raises
    ------
    ConfigError
        One line per missing or unusable path, naming the key and the path.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    problems = []
    for key, value, kind in configured_paths(config):
        path = Path(value) if Path(value).is_absolute() else base / value
        shown = repr(value) if Path(value).is_absolute() else f"{value!r} (= {path})"
        problem = _path_problem(path, kind)
        if problem:
            problems.append(f"{key}: {shown} {problem}")
    if problems:
        raise ConfigError("configured input paths are missing:\n  - " + "\n  - ".join(problems))


def _path_problem(path: Path, kind: str) -> str | None:
    if not path.exists():
        return "does not exist"
    if kind == "file":
        if path.is_dir():
            return "is a directory, expected a file"
        return None if os.access(path, os.R_OK) else "is not readable"
    if not path.is_dir():
        return "is not a directory (an scGPT checkpoint is a directory with " + ", ".join(SCGPT_FILES) + ")"
    missing = [name for name in SCGPT_FILES if not (path / name).is_file()]
    if missing:
        return f"lacks {', '.join(missing)} (an scGPT checkpoint directory holds {', '.join(SCGPT_FILES)})"
    return None
