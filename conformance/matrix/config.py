"""``interop.toml``: which servers and which clients the matrix runs against each other.

    [matrix]
    timeout = 10            # seconds a client run may take before it is killed

    [[server]]
    name = "reference"
    command = "{python} -m reference_server --host {host} --port {port} --db {tmpdir}/book.db"

    [[client]]
    name = "reference"
    argv = "{python} -m reference_client --host {host} --port {port} {op} -- {name} {entry}"

    [[client]]
    name = "tutorial"
    menu = "{python} -m conformance.corpus.tutorial.addressbook_client --port {port}"

Placeholders: ``{python}`` is the Python running the matrix; a server gets
``{host} {port}`` (required) and ``{tmpdir}`` (a fresh directory per start);
an argv client ``{host} {port} {op} {name} {entry}``; a menu client ``{host}
{port}`` (``{port}`` required: the matrix puts a recording relay between
client and server). Words are split like a shell's, then filled in, so values
never need quoting.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only (tomli is a dependency there)
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

from conformance.harness.process import render

BUNDLED = "interop.toml"
DEFAULT_TIMEOUT = 10.0


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: tuple[str, ...]  # argv template: {host} {port} left to fill


@dataclass(frozen=True)
class ClientSpec:
    name: str
    contract: str  # "argv" or "menu"
    command: tuple[str, ...]

    @property
    def template(self) -> str:
        return shlex.join(self.command)


@dataclass(frozen=True)
class MatrixConfig:
    servers: tuple[ServerSpec, ...]
    clients: tuple[ClientSpec, ...]
    timeout: float
    source: str  # where it was read from, for the reports


def bundled_text() -> str:
    return resources.files("conformance.matrix").joinpath(BUNDLED).read_text(encoding="utf-8")


def load(path: str | Path | None = None) -> MatrixConfig:
    """The config at ``path``, or the bundled one."""
    if path is None:
        return parse(bundled_text(), f"(bundled) {BUNDLED}")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    return parse(text, str(path))


def _words(where: str, template: object, fill: dict[str, str], needs: tuple[str, ...]) -> list[str]:
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{where}: the command must be a non-empty string")
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise ConfigError(f"{where}: cannot split the command: {exc}") from None
    for placeholder in needs:
        if not any("{" + placeholder + "}" in word for word in words):
            raise ConfigError(f"{where}: the command needs {{{placeholder}}}")
    # Fill {python} (and check every placeholder is known) now; the rest per run.
    probe = {"host": "h", "port": "1", "tmpdir": "t", "op": "o", "name": "n", "entry": "e"}
    try:
        render(words, **{**probe, **fill})
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{where}: bad placeholder in the command: {exc}") from None
    return [word.replace("{python}", fill["python"]) for word in words]


def _table_list(data: dict[str, Any], key: str, source: str) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{source}: [[{key}]] must be an array of tables")
    if not items:
        raise ConfigError(f"{source}: no [[{key}]] given")
    return items


def _name(item: dict[str, Any], where: str, seen: set[str]) -> str:
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: needs a non-empty name")
    if name in seen:
        raise ConfigError(f"{where}: the name {name!r} is used twice")
    seen.add(name)
    return name


def parse(text: str, source: str = "<config>") -> MatrixConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"matrix", "server", "client"}
    if unknown:
        raise ConfigError(f"{source}: unknown section(s): {', '.join(sorted(unknown))}")
    fill = {"python": sys.executable}
    settings = data.get("matrix", {})
    timeout = settings.get("timeout", DEFAULT_TIMEOUT) if isinstance(settings, dict) else None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{source}: [matrix] timeout must be a positive number of seconds")

    servers: list[ServerSpec] = []
    seen: set[str] = set()
    for n, item in enumerate(_table_list(data, "server", source), 1):
        where = f"{source}: server #{n}"
        name = _name(item, where, seen)
        where = f"{source}: server {name!r}"
        extra = set(item) - {"name", "command"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(extra))}")
        servers.append(ServerSpec(name, tuple(_words(where, item.get("command"), fill, ("port",)))))

    clients: list[ClientSpec] = []
    seen = set()
    for n, item in enumerate(_table_list(data, "client", source), 1):
        where = f"{source}: client #{n}"
        name = _name(item, where, seen)
        where = f"{source}: client {name!r}"
        extra = set(item) - {"name", "argv", "menu"}
        if extra:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(sorted(extra))}")
        kinds = [k for k in ("argv", "menu") if k in item]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: give exactly one of argv = '...' or menu = '...'")
        contract = kinds[0]
        needs = ("port", "op", "name", "entry") if contract == "argv" else ("port",)
        words = _words(where, item[contract], fill, needs)
        clients.append(ClientSpec(name, contract, tuple(words)))
    return MatrixConfig(tuple(servers), tuple(clients), float(timeout), source)


def check_programs(config: MatrixConfig) -> None:
    """Every command's program exists (checked before anything starts)."""
    for kind, name, command in [
        *(("server", s.name, s.command) for s in config.servers),
        *(("client", c.name, c.command) for c in config.clients),
    ]:
        if shutil.which(command[0]) is None:
            raise ConfigError(
                f"{config.source}: {kind} {name!r}: cannot find the program {command[0]!r}"
            )
