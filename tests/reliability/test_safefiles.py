"""spatialmix_cli.safefiles: the one module that reads, writes, appends to and locks files (STYLE habit 9)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from spatialmix_cli import safefiles as sf
from spatialmix_cli.errors import OutputPathError, StorageError, UnsafePathError


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the output folder that a planted link points at; it must never change."""
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_a_write_refuses_a_link_at_the_target_and_leaves_its_target_alone(out: Path, victim: Path) -> None:
    (out / "result.json").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        sf.atomic_write_text(out / "result.json", "{}")
    assert victim.read_text() == "precious\n" and (out / "result.json").is_symlink()


def test_a_write_refuses_a_folder_that_leads_out_of_its_root(out: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "figures").symlink_to(elsewhere)
    with pytest.raises(UnsafePathError, match="outside"):
        sf.atomic_write_bytes(out / "figures" / "a.png", b"png", root=out)
    assert list(elsewhere.iterdir()) == []
    sf.atomic_write_bytes(out / "sub" / "a.png", b"png", root=out)  # a real sub-folder is fine
    assert (out / "sub" / "a.png").read_bytes() == b"png"


def test_a_root_that_is_itself_a_link_is_the_users_choice(tmp_path: Path) -> None:
    real = tmp_path / "scratch"
    real.mkdir()
    (tmp_path / "runs").symlink_to(real)
    sf.atomic_write_text(tmp_path / "runs" / "x" / "config.yaml", "a: 1\n", root=tmp_path / "runs")
    assert (real / "x" / "config.yaml").read_text() == "a: 1\n"


def test_the_longest_file_name_still_gets_a_temp_file(out: Path) -> None:
    path = out / ("n" * 255)
    sf.atomic_write_text(path, "ok")  # the temp file's name keeps only part of the target's
    assert path.read_text() == "ok" and not list(out.glob("*.tmp"))
    with pytest.raises(OutputPathError, match="more than the 255"):
        sf.atomic_write_text(out / ("n" * 256), "no")


def test_readers_refuse_a_fifo_without_blocking(out: Path) -> None:
    fifo = out / "r.yaml"
    os.mkfifo(fifo)
    with pytest.raises(sf.NotRegularFile, match="FIFO"):
        sf.read_text(fifo)
    with pytest.raises(OSError, match="is a folder"):
        sf.check_regular(out)
    (out / "link").symlink_to(fifo)
    with pytest.raises(
        sf.NotRegularFile, match="FIFO"
    ):  # links are followed for reading, to regular files only
        sf.read_bytes(out / "link")


def test_lock_files_are_never_links_or_fifos(out: Path, victim: Path) -> None:
    (out / ".lock").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        sf.open_lock(out / ".lock", create=True)
    os.mkfifo(out / ".fifo")
    with pytest.raises(UnsafePathError, match="FIFO"):
        sf.open_lock(out / ".fifo", create=True)
    assert victim.read_text() == "precious\n"
    fd = sf.open_lock(out / ".real", create=True)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(fd)


def test_appends_are_whole_lines_and_a_torn_last_line_stays_apart(out: Path, victim: Path) -> None:
    path = out / "attacks.jsonl"
    sf.append_lines(path, ['{"a": 1}', '{"a": 2}'])
    with path.open("ab") as f:
        f.write(b'{"a": 3, "cut')  # what a writer killed mid-line (or a full disk) leaves
    sf.append_lines(path, ['{"a": 4}'])
    found = sf.read_jsonl(path)
    assert [r["a"] for r in found.rows] == [1, 2, 4] and found.bad == [3]
    (out / "linked.jsonl").symlink_to(victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        sf.append_lines(out / "linked.jsonl", ['{"a": 5}'])
    assert victim.read_text() == "precious\n"
    with pytest.raises(ValueError):
        sf.append_lines(path, ['{"a":\n 6}'])


def test_a_short_append_is_a_storage_error_and_the_next_one_starts_a_new_line(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = out / "attacks.jsonl"
    sf.append_lines(path, ['{"a": 1}'])
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:  # write(2) on a nearly full disk: part of it, then ENOSPC
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(StorageError, match="only .* bytes were written.*lines already there are intact"):
        sf.append_lines(path, ['{"a": 2, "padding": "xxxxxxxxxxxxxxxx"}'])
    monkeypatch.setattr(os, "write", real_write)
    sf.append_lines(path, ['{"a": 3}'])
    found = sf.read_jsonl(path)
    assert [r["a"] for r in found.rows] == [1, 3] and found.bad == [2]


def test_a_failed_write_is_a_storage_error_and_keeps_the_old_file(
    out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = out / "summary.json"
    sf.atomic_write_text(path, "old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match="previous file is intact"):
        sf.atomic_write_text(path, "new")
    assert path.read_text() == "old" and not list(out.glob(".*.tmp"))


def test_figures_are_rendered_in_memory_then_renamed(out: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.add_subplot(1, 1, 1).plot([0, 1])
    path = sf.atomic_write_figure(fig, out / "f.png", dpi=20)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND"
    assert sf.atomic_write_figure(fig, out / "f.pdf", dpi=20).read_bytes()[:4] == b"%PDF"
