"""CPU detection: the model name and native bf16 units, read from /proc/cpuinfo."""

from __future__ import annotations

from pathlib import Path

from spatialmix_cli.training.hardware import cpu_info

X86 = "processor\t: {i}\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma{extra}\n\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_x86_bf16_units_come_from_the_flags(tmp_path: Path) -> None:
    with_bf16 = cpu_info(
        _write(tmp_path, "".join(X86.format(i=i, extra=" avx512f avx512_bf16") for i in range(2)))
    )
    assert with_bf16.name == "AMD EPYC" and with_bf16.bf16 and "avx2" in with_bf16.flags
    assert cpu_info(_write(tmp_path, X86.format(i=0, extra=" amx_bf16 amx_tile"))).bf16
    without = cpu_info(_write(tmp_path, X86.format(i=0, extra=" avx512f avx512bw")))  # AVX-512 but no bf16
    assert without.name == "AMD EPYC" and not without.bf16


def test_arm_features_and_a_missing_file(tmp_path: Path) -> None:
    arm = cpu_info(
        _write(tmp_path, "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd4f\n")
    )
    assert arm.bf16 and arm.name is None
    assert not cpu_info(_write(tmp_path, "processor\t: 0\nFeatures\t: fp asimd\n")).bf16
    absent = cpu_info(tmp_path / "nope")
    assert absent.name is None and not absent.flags and not absent.bf16
