"""A plain (not editable) `pip install .` runs `duban init` and `duban demo` anywhere: the Alembic
migrations and the demo processes travel inside the wheel, nothing is read beside the source tree.

The project is copied, built into a wheel without build isolation (no network: the build uses
this venv's setuptools) and installed into a fresh venv that sees this venv's dependencies through
a .pth line (a plain path: the editable install's finder is not activated there)."""

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import click
import pytest

from webui.cli import processes_folder, shipped

ROOT = Path(__file__).resolve().parents[1]
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "node_modules", "artifacts", "bench", "build", "dist", "*.egg-info",
    "__pycache__", ".pytest_cache", ".ruff_cache", "*.db", "*.db-*",
)  # fmt: skip


def _run(*args: str | Path, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _can_build_wheels() -> bool:
    """setuptools ships bdist_wheel since 70.1; older ones need the `wheel` package."""
    try:
        import setuptools.command.bdist_wheel  # noqa: F401
    except ImportError:
        try:
            import wheel.bdist_wheel  # noqa: F401
        except ImportError:
            return False
    return True


def _packages(root: Path) -> set[str]:
    """engine's and webui's packages (folders with __init__.py) under ROOT, as relative paths."""
    return {
        init.parent.relative_to(root).as_posix()
        for top in ("engine", "webui")
        for init in (root / top).rglob("__init__.py")
    }


def _install(tmp_path: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """Build the wheel from a copy of the project and install it into a new venv: (venv, its
    site-packages)."""
    assert _can_build_wheels(), "setuptools>=70.1 (a test extra) is missing: run make install"
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=COPY_IGNORE)
    pip = [sys.executable, "-m", "pip"]
    wheels = tmp_path / "wheels"
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, source]
    _run(*pip, *build, cwd=tmp_path, env=env)
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    install = ["--python", python, "install", "-q", "--no-deps", *wheels.glob("duban-*.whl")]
    _run(*pip, *install, cwd=tmp_path, env=env)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = _run(python, "-c", where, cwd=tmp_path, env=env)
    site_packages = Path(purelib.strip()).resolve()
    # The dependencies: this venv's site-packages, as a plain path (its .pth files stay unread).
    (site_packages / "duban_test_dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    return venv, site_packages


def test_plain_install_runs_init_and_demo_outside_the_source_tree(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DUBAN_PROCESSES")}
    venv, site_packages = _install(tmp_path, env)
    assert _packages(site_packages) == _packages(ROOT), "pyproject.toml must list every package"

    work = tmp_path / "work"  # an empty working directory: no alembic.ini, no processes/
    work.mkdir()
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    where = "import engine, webui; print(engine.__file__, webui.__file__)"
    imported = _run(venv / "bin" / "python", "-c", where, cwd=work, env=env)
    for module in imported.split():
        assert Path(module).resolve().is_relative_to(site_packages), imported

    _run(venv / "bin" / "duban", "init", cwd=work, env=env)
    demo = _run(venv / "bin" / "duban", "demo", cwd=work, env=env)

    with sqlite3.connect(tmp_path / "x.db") as db:
        keys = {key for (key,) in db.execute("SELECT key FROM process_version")}
        instances = db.execute("SELECT count(*) FROM process_instance").fetchone()[0]
    assert keys == {p.stem for p in (ROOT / "processes").glob("*.bpmn")}, demo
    assert instances > 0, demo
    assert list(work.iterdir()) == []  # nothing was written into the working directory


def test_in_the_checkout_the_folders_are_the_checkouts_own() -> None:
    assert shipped("migrations") == ROOT / "migrations"
    assert shipped("processes") == ROOT / "processes"


def test_duban_processes_names_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUBAN_PROCESSES", raising=False)
    assert processes_folder() == ROOT / "processes"
    monkeypatch.setenv("DUBAN_PROCESSES", str(tmp_path))
    assert processes_folder() == tmp_path
    monkeypatch.setenv("DUBAN_PROCESSES", str(tmp_path / "missing"))
    with pytest.raises(click.ClickException, match="DUBAN_PROCESSES"):
        processes_folder()
