"""Every file spatialmix reads, writes, appends to or locks goes through here, so STYLE habit 9 lives once.

* **Writes** go to a temporary file in the target's folder, are fsynced and renamed over the target
  (:func:`atomic_write_bytes`, :func:`atomic_write_text`, :func:`atomic_write_figure`): a crash, SIGKILL or
  full disk at any moment leaves the old file or the new one, never a mix.
* **No write follows a symbolic link**: a link at the target is refused (neither written through nor
  replaced), and with ``root`` the target's folder must lie inside ``root`` once every link is resolved.
* **Appends** (JSONL) are whole lines handed to one ``os.write`` on an ``O_APPEND | O_NOFOLLOW``
  descriptor (:func:`append_lines`); a file whose last line was cut short first gets a newline, so a torn
  line never swallows the next one. :func:`read_jsonl` skips such a line and says which it was.
* **Reads and locks open regular files only** (:func:`open_regular`, :func:`open_lock`): a FIFO, device,
  socket or folder is refused before it can block (``O_NONBLOCK``, then ``fstat``); a lock is never a link.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import OutputPathError, UnsafePathError, write_error

TEMP_SUFFIX = ".tmp"
NAME_MAX = 255  # bytes in one file or folder name (Linux, macOS)
# Characters of the target's name kept in its temp file's name: a target named with the full 255 bytes a
# file name may have still gets a temp file (".NAME.XXXXXXXX.tmp" would otherwise be too long).
_NAME_IN_TEMP = 64
_NO_LINK = "spatialmix never writes through a symbolic link; remove the link or choose another output"


class NotRegularFile(OSError):
    """A path that must be a regular file is a FIFO, device, socket or folder. An ``OSError``, so every
    reader's ``except OSError`` turns it into that reader's own clean error."""

    def __init__(self, path: str | os.PathLike[str], kind: str) -> None:
        super().__init__(
            errno.EINVAL, f"{path} is {kind}, not a regular file (spatialmix opens regular files only)"
        )

    def __str__(self) -> str:
        return str(self.strerror)


class Figure(Protocol):  # matplotlib's Figure, without importing matplotlib here
    def savefig(self, fname: Any, **kwargs: Any) -> None: ...


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


# ---- reading ----------------------------------------------------------------------------------------------


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of ``path`` (links followed), or :class:`NotRegularFile` if it is anything but
    a regular file. Checked before opening (a device is never opened) and on the open descriptor (what was
    swapped in meanwhile cannot block: the open does not wait for a FIFO's writer)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, _kind(mode))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, _kind(mode))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a regular file: for paths handed to a library that opens them itself."""
    os.close(open_regular(path))


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    with os.fdopen(open_regular(path), "rb") as f:
        return f.read()


def read_text(path: str | os.PathLike[str]) -> str:
    return read_bytes(path).decode()


@dataclass
class JsonLines:
    """The JSON objects of a JSONL file, and the 1-based numbers of the lines that were not one (a line cut
    short by a killed writer or a full disk)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    bad: list[int] = field(default_factory=list)


def read_jsonl(path: str | os.PathLike[str]) -> JsonLines:
    """Every line of ``path`` that is a whole JSON object; the others are counted in ``bad``, never raised."""
    found = JsonLines()
    for number, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if isinstance(row, dict):
            found.rows.append(row)
        else:
            found.bad.append(number)
    return found


# ---- where a write may go ---------------------------------------------------------------------------------


def resolve_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """``path`` with every link resolved, or :class:`UnsafePathError` if that lies outside ``root`` (also
    resolved: a root that is itself a link, the user's choice, is followed)."""
    try:
        resolved, top = Path(path).resolve(), Path(root).resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise UnsafePathError(f"cannot resolve {path}: {exc}") from None
    if resolved != top and not resolved.is_relative_to(top):
        raise UnsafePathError(
            f"{path} leads outside {root} once symbolic links are resolved (to {resolved}); {_NO_LINK}"
        )
    return resolved


def check_target(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
    """Raise :class:`UnsafePathError` if writing ``path`` would go through a link: ``path`` itself is one,
    or (with ``root``) its folder resolves outside ``root``. Cheap: call it before long work too."""
    path = Path(path)
    if root is not None:
        resolve_inside(path.parent, root)
    try:
        mode = os.lstat(path).st_mode
    except OSError:  # absent (or unreachable: the write itself says why)
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        raise UnsafePathError(f"refusing to write {path}: it is a symbolic link ({_NO_LINK})")
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputPathError(f"cannot write {path}: it is a folder; give a file name")
    check_output_folder(path.parent, str(path))


def check_output_folder(folder: str | os.PathLike[str], what: str | None = None) -> None:
    """Refuse, before any work, a folder that cannot be made or written: a name longer than a file system
    allows, a file where a folder must be, a folder without write permission (:class:`OutputPathError`,
    exit 2). Missing folders are fine: they are made when the first file is written."""
    folder = Path(folder)
    what = what or str(folder)
    for part in folder.parts + ((Path(what).name,) if what != str(folder) else ()):
        if len(part.encode()) > NAME_MAX:
            raise OutputPathError(
                f"cannot write {what[:60]}...: the name '{part[:20]}...' has {len(part.encode())} bytes, more "
                f"than the {NAME_MAX} a file or folder name may have; choose a shorter name"
            )
    for ancestor in (folder, *folder.parents):
        if ancestor.exists() or ancestor.is_symlink():
            if not ancestor.is_dir():
                raise OutputPathError(f"cannot write {what}: {ancestor} is a file, not a folder")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise OutputPathError(f"cannot write {what}: no write permission in {ancestor}")
            return


# ---- writing ----------------------------------------------------------------------------------------------


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, root: str | os.PathLike[str] | None = None
) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, then rename over it.

    Refused (:class:`UnsafePathError`) where :func:`check_target` refuses. A crash or SIGKILL at any moment
    leaves either the old file or the new one, never a mix. A failed write (disk full, quota,
    permissions) removes the temp file, leaves the old file as it was, and raises
    :func:`..errors.write_error`'s error: StorageError (exit 1) for a full disk, OutputPathError (exit 2) for the path."""
    path = Path(path)
    check_target(path, root)
    try:
        _write_then_rename(path, data)
    except OSError as exc:
        kept = "the previous file is intact" if _exists(path) else "nothing was written"
        retry = "run the same command again (add --resume for a training run)"
        raise write_error(exc, str(path), kept=kept, retry=retry) from None


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, root: str | os.PathLike[str] | None = None
) -> None:
    atomic_write_bytes(path, text.encode(), root=root)


def atomic_write_figure(
    fig: Figure, path: str | os.PathLike[str], *, dpi: int, root: str | os.PathLike[str] | None = None
) -> Path:
    """Render a matplotlib figure in memory (format from the suffix, default PNG), then write it
    atomically: a report killed mid-figure never leaves a cut-short image that an older page links."""
    path = Path(path)
    check_target(path, root)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix[1:].lower() or "png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue(), root=root)
    return path


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long, say: then nothing is there
        return False


def _write_then_rename(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name[:_NAME_IN_TEMP]}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=path.parent)  # O_EXCL | O_NOFOLLOW
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600; give it the permissions a plain open() would (0666 minus umask),
        # so checkpoints and results can be shared like any other file.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)  # renames over a name: never writes through whatever is there
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files that a killed writer left in ``folder`` (``.NAME.XXXX.tmp``); returns them.
    (Unlinking a name never touches what a link there points to.)"""
    folder = Path(folder)
    stale = sorted(folder.glob(f".*{TEMP_SUFFIX}")) if folder.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it and put it back
    os.umask(mask)
    return mask


def _open_no_link(path: Path, flags: int, what: str) -> int:
    """``os.open`` that never follows a final link and never blocks, refusing anything but a regular file."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"refusing to {what} {path}: it is a symbolic link ({_NO_LINK})") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePathError(
                f"refusing to {what} {path}: it is {_kind(info.st_mode)}, not a regular file"
            )
        if info.st_nlink > 1:  # a hard link: the same file may also live outside the output folder
            raise UnsafePathError(
                f"refusing to {what} {path}: it has {info.st_nlink} hard links, so it may be a file elsewhere "
                "too; copy it (cp) to make it a file of its own"
            )
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_lines(
    path: str | os.PathLike[str], lines: list[str], *, root: str | os.PathLike[str] | None = None
) -> None:
    """Append ``lines`` (each without a newline inside) to ``path`` with one ``os.write`` on an
    ``O_APPEND | O_NOFOLLOW`` descriptor, then fsync. If the file's last line was cut short, a newline
    comes first. A link or non-regular file is refused (:class:`UnsafePathError`); a failed or short write
    raises :func:`..errors.write_error`'s error (the lines already there are intact)."""
    path = Path(path)
    if any("\n" in line.rstrip("\n") for line in lines):
        raise ValueError("append_lines takes single lines")
    if root is not None:
        resolve_inside(path.parent, root)
    data = "".join(line.rstrip("\n") + "\n" for line in lines).encode()
    try:
        fd = _open_no_link(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, "append to")
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # a torn last line (killed writer, full disk) stays a line of its own
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes were written")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        kept = (
            "the lines already there are intact; a cut-short last line is skipped by readers and the next "
            "append starts a new line"
        )
        raise write_error(exc, str(path), verb="append to", kept=kept) from None


def open_lock(path: str | os.PathLike[str], *, create: bool) -> int:
    """A descriptor of the lock file ``path`` to ``flock``: read-write and created if needed with
    ``create``, read-only otherwise (``FileNotFoundError`` if absent). Never a link, never a FIFO."""
    flags = os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
    return _open_no_link(Path(path), flags, "lock")


# ---- folders a command makes ------------------------------------------------------------------------------


def make_folders(folder: Path, *, what: str = "--out") -> list[Path]:
    """Create ``folder`` (and missing parents) and return the folders this call created, deepest first, for
    :func:`remove_made_folders`; a folder that cannot be made or written is refused (exit 2; exit 1 for a
    full disk)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists() and not p.is_symlink()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(errno.EACCES, "no write permission", str(folder))
    except OSError as exc:
        remove_made_folders(missing)
        raise write_error(exc, f"to {what} {folder}") from None
    return missing


def remove_made_folders(folders: list[Path]) -> None:
    """Remove folders :func:`make_folders` created (deepest first) that hold nothing but a claim's
    ``.lock``: a refused or failed command leaves no half-made run folder behind."""
    for folder in folders:
        try:
            names = {entry.name for entry in os.scandir(folder)}
        except OSError:
            continue
        if names - {".lock"}:
            return  # something real is in it: keep it and every folder above it
        try:
            if ".lock" in names:
                os.unlink(folder / ".lock")
            folder.rmdir()
        except OSError:
            return
