"""What made a file: the provenance attributes every file jaxattn writes carries, and the error of a
failed write.

Every netCDF file (and every ``.npz`` trajectory) the library or the ``jaxattn`` command writes has the
global attributes

* ``Conventions``: ``"CF-1.11"`` (CF conventions 1.11, §2.6.1);
* ``jaxattn_version``: the version that wrote it;
* ``source``: the method of production, ``"jaxattn <version>: <what>"`` (CF §2.6.2), e.g.
  ``"jaxattn 0.5.0: jaxattn.simulate of SelfAttention"``;
* ``history``: ``"<UTC time>: <command>"`` (CF §2.6.2): the full ``jaxattn ...`` command line when the
  console script wrote it, else the Python call that wrote it and the script it ran in.

The console script records its command line with `command_line` (a context manager); every
writer calls `provenance` (through [`jaxattn.io.stamp`][jaxattn.io.stamp] for datasets). `write_error`
turns an operating-system failure during a write (a full disk, a missing permission, netCDF's bare
"NetCDF: HDF error") into an ``OSError`` that names the file and the cause.

Layer 0 (imports nothing of jaxattn but the version), so that ``solve`` and ``io`` share it.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import errno
import os
import shlex
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ._version import __version__

__all__ = ["CONVENTIONS", "KEYS", "command_line", "current_command", "provenance", "write_error"]

#: the CF version the files follow
CONVENTIONS = "CF-1.11"
#: the global attributes `provenance` returns
KEYS = ("Conventions", "jaxattn_version", "source", "history")

_COMMAND: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxattn_command", default=None)


@contextlib.contextmanager
def command_line(argv: Sequence[str]) -> Iterator[str]:
    """Within the block, files record ``jaxattn <argv...>`` (shell-quoted) as their history."""
    text = shlex.join(["jaxattn", *map(str, argv)])
    token = _COMMAND.set(text)
    try:
        yield text
    finally:
        _COMMAND.reset(token)


def current_command() -> str:
    """The command that is running: the ``jaxattn ...`` command line inside the console script, else
    ``python <script> <args>`` (or "an interactive Python/Jupyter session")."""
    cmd = _COMMAND.get()
    if cmd is not None:
        return cmd
    if "ipykernel" in sys.modules or not sys.argv or sys.argv[0] in ("", "-c"):
        return "an interactive Python/Jupyter session"
    return shlex.join(["python", Path(sys.argv[0]).name, *sys.argv[1:]])


def provenance(source: str, call: str | None = None, attrs: Mapping[str, object] | None = None) -> dict[str, str]:
    """The provenance attributes of a file written now (module docstring).

    Args:
        source: what produced the data, e.g. ``"jaxattn.spectral.solve_circle"``.
        call: the Python call that writes the file (e.g. ``"Trajectory.save('run.nc')"``); recorded in
            ``history`` with the script it ran in. Inside the console script the command line alone is
            recorded.
        attrs: attributes the writer already set: ``source`` and ``history`` found there are kept (a
            file converted again keeps its origin), the others are filled in.
    """
    attrs = dict(attrs or {})
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cmd = _COMMAND.get()
    what = cmd if cmd is not None else (f"{call} in {current_command()}" if call else current_command())
    out = {"Conventions": CONVENTIONS, "jaxattn_version": __version__,
           "source": f"jaxattn {__version__}: {source}", "history": f"{now}: {what}"}
    for key in ("source", "history"):
        if str(attrs.get(key, "")).strip():
            out[key] = str(attrs[key])
    return out


def write_error(path: str | os.PathLike, err: BaseException) -> OSError:
    """An ``OSError`` naming ``path`` and the cause of ``err``, an error raised while writing it.

    A full disk is recognised from ``errno.ENOSPC`` or, for netCDF's bare ``RuntimeError("NetCDF: HDF
    error")``, from the free space left on the file's file system; the message then says so and gives the
    free space. Raise the result ``from err``.
    """
    path = Path(path)
    code = getattr(err, "errno", None)
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("."))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # pragma: no cover - the folder vanished
        free = None
    full = code == errno.ENOSPC or (not isinstance(err, OSError) and free is not None and free < 1 << 20)
    if full:
        left = "" if free is None else f" ({free / 2**20:.1f} MiB free on {folder})"
        return OSError(errno.ENOSPC, f"could not write {path}: the disk is full{left}; free some space or "
                                     "write to another folder, then rerun")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OSError(code, f"could not write {path}: permission denied ({err}); write to another folder")
    return OSError(code or errno.EIO, f"could not write {path}: {type(err).__name__}: {err}")
