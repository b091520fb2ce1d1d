"""The Pi install, followed in a clean temporary root: systemd/install.sh --root, everything but
the hardware and the Debian packages.

What is real: the script itself, `python -m venv --system-site-packages`, pip building deskcue
from this repository and installing it into that venv (offline: the build backend's wheel
comes from .venv/wheelhouse, which `bash .ci/setup` fills), systemd-sysusers,
systemd-tmpfiles and systemctl working on the temporary root, and the installed `deskcue`
answering. What stands in: deskcue's own dependencies (numpy, scipy, paho ...) are not
downloaded again; pip finds them already installed through PYTHONPATH, which points at links to
this project's .venv packages (deskcue itself left out), as PyPI or piwheels would provide them
on a Pi. apt-get is not run (--root leaves it out). systemd-tmpfiles resolves user names from
this machine's database, not the root's, so the owner of /etc/deskcue is not checked here.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "systemd" / "install.sh"
WHEELHOUSE = REPO / ".venv" / "wheelhouse"
SITE = Path(sysconfig.get_paths()["purelib"])  # this project's venv
INSTALL_COMMAND = "sudo bash systemd/install.sh"
needs_systemd = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("systemd-sysusers", "systemd-tmpfiles", "systemctl")),
    reason="systemd's tools are not installed")


def head_commit() -> str | None:
    """This checkout's commit (7 hex digits), or None in a tree without git history."""
    head = subprocess.run(["git", "-c", f"safe.directory={REPO}", "rev-parse", "--short=7",
                           "HEAD"], cwd=REPO, capture_output=True, text=True)
    return head.stdout.strip() if head.returncode == 0 else None


needs_git = pytest.mark.skipif(head_commit() is None, reason="built from a tree without git")


def dependencies(into: Path) -> Path:
    """Links to every package of this project's venv except deskcue itself and the tools
    that make a venv (pip, setuptools): deskcue's dependencies, installed."""
    into.mkdir()
    for entry in SITE.iterdir():
        name = entry.name
        if (name.startswith(("deskcue", "__editable__", "pip", "setuptools", "_distutils_hack",
                             "__pycache__")) or name.endswith(".pth")):
            continue
        (into / name).symlink_to(entry.resolve())
    return into


@functools.cache
def checkout_copy() -> Path:
    """This checkout as it is now (uncommitted changes too), cloned into the session's
    temporary directory once per test process: install.sh without --from has pip build
    deskcue in the tree it sits in (build/, deskcue.egg-info), and in this checkout that
    rewrote the egg-info other tests read `version("deskcue")` from while they ran (xdist),
    and two builds at once failed on each other's build/ tree."""
    dst = Path(tempfile.mkdtemp(prefix="checkout-"))
    if head_commit() is None:
        shutil.copytree(REPO, dst, dirs_exist_ok=True, symlinks=True, ignore=shutil.ignore_patterns(
            ".venv", "build", "*.egg-info", "__pycache__"))
        return dst
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dst)], check=True,
                   capture_output=True, timeout=120)

    def files(*which: str) -> list[str]:
        out = subprocess.run(["git", "-c", f"safe.directory={REPO}", "ls-files", "-z", *which],
                             cwd=REPO, check=True, capture_output=True, timeout=60).stdout
        return [f for f in out.decode().split("\0") if f]

    for name in files("-d"):
        (dst / name).unlink(missing_ok=True)
    for name in files("-c", "-o", "--exclude-standard"):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    return dst


def offline_env(tmp: Path) -> dict[str, str]:
    """The environment the script runs in: no network for pip, no cache outside ``tmp``, no
    pip config of this machine; the hermetic guard (PYTHONPATH) kept for every Python."""
    deps = dependencies(tmp / "deps")
    (tmp / "tmp").mkdir()
    (tmp / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        # the Python the dependencies were built for
        PYTHON=getattr(sys, "_base_executable", sys.executable),
        PYTHONPATH=os.pathsep.join([str(deps), *filter(None, [env.get("PYTHONPATH")])]),
        PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1",
        PIP_FIND_LINKS=str(WHEELHOUSE), PIP_DISABLE_PIP_VERSION_CHECK="1",
        TMPDIR=str(tmp / "tmp"), HOME=str(tmp / "home"))
    return env


@needs_systemd
@pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root (it makes a user)")
def test_the_install_script_installs_a_whole_desk_into_a_clean_root(tmp_path: Path) -> None:
    assert any(WHEELHOUSE.glob("setuptools-*.whl")), "run `bash .ci/setup` (fills the wheelhouse)"
    root = tmp_path / "root"
    env = offline_env(tmp_path)
    script = checkout_copy() / "systemd" / "install.sh"  # builds deskcue in its own tree
    proc = subprocess.run(["bash", str(script), "--root", str(root)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'deskcue' runs /opt/deskcue/bin/deskcue" in proc.stdout
    # which build it installed, as info and Home Assistant will say it: this checkout's commit
    installed = re.search(r"^deskcue install: deskcue (\S+) installed", proc.stdout, re.M)
    assert installed is not None, proc.stdout
    head = head_commit()
    assert installed.group(1) == "0.1.0" if head is None else f"+g{head}" in installed.group(1)
    assert "WARNING" not in proc.stderr

    # the venv: made with the system site packages (python3-lgpio comes from Debian), and
    # deskcue installed into it (not this checkout)
    venv = root / "opt/deskcue"
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    where = subprocess.run([venv / "bin/python", "-c", "import firmware; print(firmware.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    # `deskcue` on the PATH, as the units call it, and it runs
    link = root / "usr/local/bin/deskcue"
    assert os.readlink(link) == "/opt/deskcue/bin/deskcue"
    help_ = subprocess.run([root / "opt/deskcue/bin/deskcue", "--help"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0, help_.stderr
    for verb in ("run", "selftest", "status", "config", "snooze"):
        assert verb in help_.stdout
    units = [SCRIPT.parent / "deskcue.service", SCRIPT.parent / "deskcue-config-import.service"]
    for unit in units:
        assert "ExecStart=/usr/local/bin/deskcue " in unit.read_text()

    # the units, as shipped, enabled
    for unit in units:
        assert (root / "etc/systemd/system" / unit.name).read_text() == unit.read_text()
        wants = root / "etc/systemd/system/multi-user.target.wants" / unit.name
        assert os.readlink(wants) == f"/etc/systemd/system/{unit.name}"

    # the service user, in the groups that own the sound card and the GPIO chip
    for src, dst in (("deskcue.sysusers", "usr/lib/sysusers.d/deskcue.conf"),
                     ("deskcue.tmpfiles", "usr/lib/tmpfiles.d/deskcue.conf")):
        assert (root / dst).read_bytes() == (SCRIPT.parent / src).read_bytes()
    user = next(line.split(":") for line in (root / "etc/passwd").read_text().splitlines()
                if line.startswith("deskcue:"))
    assert user[5] == "/var/lib/deskcue" and user[6].endswith("nologin")
    groups = {g[0]: g[3].split(",") for g in
              (line.split(":") for line in (root / "etc/group").read_text().splitlines())}
    assert "deskcue" in groups["audio"] and "deskcue" in groups["gpio"]

    # its directories and the empty secret files (systemd hands them to the service only)
    mode = {p: stat.S_IMODE((root / p).stat().st_mode) for p in (
        "etc/deskcue", "etc/credstore", "etc/credstore/deskcue-mqtt",
        "etc/credstore/deskcue-config-signing.pub")}
    assert mode == {"etc/deskcue": 0o755, "etc/credstore": 0o700,
                    "etc/credstore/deskcue-mqtt": 0o600,
                    "etc/credstore/deskcue-config-signing.pub": 0o644}
    assert (root / "etc/credstore/deskcue-mqtt").read_bytes() == b""
    config = root / "etc/deskcue/deskcue.toml"
    assert config.read_bytes() == (REPO / "config/deskcue.toml").read_bytes()
    assert config.stat().st_uid == int(user[2])
    # and as the last good config: a hand edit it cannot use runs the desk on the default
    last_good = root / "etc/deskcue/deskcue.toml.last-good"
    assert last_good.read_bytes() == config.read_bytes()
    assert last_good.stat().st_uid == int(user[2])
    assert (root / "usr/share/doc/deskcue/field-tech.md").exists()  # the units' Documentation=
    # Every directory the card import may write under its ProtectSystem=strict sandbox
    # exists from the install on, not only once deskcue.service has run (its StateDirectory=
    # makes /var/lib/deskcue): a "-" path that is missing is left read-only, and the first
    # boot's import could not record what it installed or refused. (The boot partition is
    # the Pi's, not the install's.)
    import_unit = (SCRIPT.parent / "deskcue-config-import.service").read_text()
    writable = re.search(r"^ReadWritePaths=(.*)$", import_unit, re.M)
    assert writable is not None
    for path in writable.group(1).split():
        path = path.lstrip("-")
        if not path.startswith("/boot"):
            assert (root / path.lstrip("/")).is_dir(), f"{path} is not made by the install"
    assert stat.S_IMODE((root / "var/lib/deskcue").stat().st_mode) == 0o750

    # run again (an upgrade): the venv is reused, the desk's own config and secrets are kept
    config.write_text('[device]\nsite = "lyon"\ndesk = "d07"\n')
    (root / "etc/credstore/deskcue-mqtt").write_text("username = d07\npassword = pw\n")
    python_before = (venv / "bin/python").lstat()
    again = subprocess.run(["bash", str(script), "--root", str(root)], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert config.read_text() == '[device]\nsite = "lyon"\ndesk = "d07"\n'
    assert (root / "etc/credstore/deskcue-mqtt").read_text().startswith("username = d07")
    assert (venv / "bin/python").lstat().st_ino == python_before.st_ino
    assert [line.startswith("deskcue:") for line in
            (root / "etc/passwd").read_text().splitlines()].count(True) == 1


def fenced_block_with(text: str, needle: str) -> str:
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    found = [b for b in blocks if needle in b]
    assert len(found) == 1, f"one sh block with {needle!r}, found {len(found)}"
    return found[0]


def test_readme_and_the_field_tech_guide_give_the_same_install() -> None:
    readme = (REPO / "README.md").read_text()
    guide = (REPO / "docs/field-tech.md").read_text()
    block = fenced_block_with(readme, INSTALL_COMMAND)
    assert fenced_block_with(guide, INSTALL_COMMAND) == block
    # the old hand-written procedures are gone from both
    for text in (readme, guide):
        assert "python3 -m venv" not in text and "pip install /path" not in text
    # and a developer's checkout says where its command is
    assert ".venv/bin/deskcue" in readme


def test_the_readmes_first_two_commands_exist() -> None:
    readme = (REPO / "README.md").read_text()
    first = fenced_block_with(readme, "bash .ci/demo")
    assert [line.split("#")[0].strip() for line in first.strip().splitlines()] == [
        "bash .ci/demo", "bash .ci/run"]
    for name in ("demo", "run", "setup"):
        assert (REPO / ".ci" / name).is_file()


def run_install(root: Path, env: dict[str, str], cwd: Path, *args: str
                ) -> subprocess.CompletedProcess[str]:
    # without --from (and not removing) the script builds deskcue in the tree it sits in
    builds_here = not {"--from", "--remove", "--purge"} & set(args)
    script = checkout_copy() / "systemd" / "install.sh" if builds_here else SCRIPT
    proc = subprocess.run(["bash", str(script), "--root", str(root), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


# A desk's own config, as `sudo deskcue config apply d07.toml` left it on desks installed by
# hand (docs/field-tech.md §1 up to commit 5183c61): no deskcue.toml.last-good beside it.
DESK_CONFIG = '[device]\nsite = "lyon"\ndesk = "d07"\n\n[mqtt]\nhost = "broker.lyon"\n'
CREDENTIALS = "username = lyon-d07\npassword = pw\n"


@needs_systemd
@pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root (it makes a user)")
def test_an_upgrade_over_a_desk_installed_by_hand_by_an_earlier_version(tmp_path: Path) -> None:
    """The hand-written install of docs/field-tech.md §1 before install.sh (commit 5183c61):
    `python3 -m venv /opt/deskcue` (no --system-site-packages), pip, the link, the units;
    the desk's config applied; secrets and a drop-in written by the tech. install.sh over it
    upgrades it into what a fresh install makes, and keeps what is the desk's own."""
    env = offline_env(tmp_path)
    root = tmp_path / "root"
    venv = root / "opt/deskcue"
    subprocess.run([env["PYTHON"], "-m", "venv", str(venv)], env=env, check=True, timeout=300)
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/deskcue").symlink_to("/opt/deskcue/bin/deskcue")
    (root / "etc/deskcue").mkdir(parents=True)
    config = root / "etc/deskcue/deskcue.toml"
    config.write_text(DESK_CONFIG)
    (root / "etc/credstore").mkdir(mode=0o700)
    secret = root / "etc/credstore/deskcue-mqtt"
    secret.write_text(CREDENTIALS)
    secret.chmod(0o600)
    dropin = root / "etc/systemd/system/deskcue.service.d/client-key.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nLoadCredential=mqtt.key:deskcue-mqtt.key\n")

    run_install(root, env, tmp_path)

    # the venv sees Debian's python3-lgpio now, and is the same venv
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    # the desk's own config is kept, and is its last good config from now on
    assert config.read_text() == DESK_CONFIG
    last_good = root / "etc/deskcue/deskcue.toml.last-good"
    assert last_good.read_text() == DESK_CONFIG
    # the secrets and the drop-in as the tech left them
    assert secret.read_text() == CREDENTIALS
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert dropin.read_text().startswith("[Service]\nLoadCredential=mqtt.key:")

    # a config on trial is not proven: it does not become the last good config
    last_good.unlink()
    (root / "etc/deskcue/deskcue.toml.trial").write_text("{}\n")
    run_install(root, env, tmp_path)
    assert not last_good.exists()
    # nor does one this version cannot run; the script says so
    (root / "etc/deskcue/deskcue.toml.trial").unlink()
    config.write_text('[device]\nsite = "lyon"\ndesk = "d07"\nbogus = 1\n')
    again = run_install(root, env, tmp_path)
    assert not last_good.exists()
    assert "cannot run /etc/deskcue/deskcue.toml" in again.stderr


@needs_systemd
@pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root (it makes a user)")
def test_remove_keeps_the_desks_data_and_purge_leaves_no_secret(tmp_path: Path) -> None:
    env = offline_env(tmp_path)
    root = tmp_path / "root"
    run_install(root, env, tmp_path)
    (root / "etc/deskcue/deskcue.toml").write_text(DESK_CONFIG)
    (root / "etc/credstore/deskcue-mqtt").write_text(CREDENTIALS)
    (root / "etc/credstore/deskcue-mqtt.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    dropin = root / "etc/systemd/system/deskcue.service.d/client-key.conf"
    dropin.parent.mkdir(parents=True)
    dropin.write_text("[Service]\nLoadCredential=mqtt.key:deskcue-mqtt.key\n")
    state = root / "var/lib/deskcue"
    for name in ("baseline.json", "outbox.db", "snooze.json"):
        (state / name).write_text("{}\n")
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/deskcue.toml.rejected-20261205T000000Z").write_text(DESK_CONFIG)
    (root / "boot/firmware/config.txt").write_text("# the Pi's own\n")
    other = root / "etc/credstore/other-service"  # another service's secret: not deskcue's
    other.write_text("x\n")

    # a unit copied by hand where the install of earlier versions allowed it
    (root / "usr/lib/systemd/system").mkdir(parents=True, exist_ok=True)
    shutil.copy(SCRIPT.parent / "deskcue.service", root / "usr/lib/systemd/system")

    removed = run_install(root, env, tmp_path, "--remove")
    assert "kept" in removed.stdout
    for gone in ("opt/deskcue", "usr/local/bin/deskcue", "usr/lib/tmpfiles.d/deskcue.conf",
                 "usr/lib/sysusers.d/deskcue.conf", "usr/share/doc/deskcue",
                 "etc/systemd/system/deskcue.service",
                 "etc/systemd/system/deskcue-config-import.service",
                 "usr/lib/systemd/system/deskcue.service",
                 "etc/systemd/system/multi-user.target.wants/deskcue.service",
                 "etc/systemd/system/multi-user.target.wants/deskcue-config-import.service"):
        assert not os.path.lexists(root / gone), gone
    # a remove is not a retirement: a reinstall finds the desk as it was
    assert (root / "etc/deskcue/deskcue.toml").read_text() == DESK_CONFIG
    assert (root / "etc/credstore/deskcue-mqtt").read_text() == CREDENTIALS
    assert (state / "outbox.db").exists() and dropin.exists()
    # and a reinstall takes the desk back as it was
    run_install(root, env, tmp_path)
    assert (root / "etc/deskcue/deskcue.toml").read_text() == DESK_CONFIG
    assert (root / "etc/credstore/deskcue-mqtt").read_text() == CREDENTIALS
    assert (root / "etc/systemd/system/multi-user.target.wants/deskcue.service").is_symlink()

    purged = run_install(root, env, tmp_path, "--purge")
    assert "account on the broker" in purged.stdout
    for gone in ("etc/deskcue", "var/lib/deskcue", "etc/credstore/deskcue-mqtt",
                 "etc/credstore/deskcue-mqtt.key", "etc/credstore/deskcue-config-signing.pub",
                 "etc/systemd/system/deskcue.service.d",
                 "boot/firmware/deskcue.toml.rejected-20261205T000000Z"):
        assert not os.path.lexists(root / gone), gone
    assert other.read_text() == "x\n" and (root / "boot/firmware/config.txt").exists()
    assert not [p for p in root.rglob("*deskcue*") if p.name not in ("passwd", "group")]


@needs_systemd
@pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root (it makes a user)")
def test_an_upgrade_from_a_wheel_of_the_same_version_replaces_the_code(tmp_path: Path) -> None:
    """Two builds can share a version (every build up to 378d892 said 0.1.0; a rebuild at one
    commit says that commit): `install.sh --from WHEEL` over a desk then runs pip on a wheel
    of the version it has, which pip alone skips."""
    env = offline_env(tmp_path)
    root = tmp_path / "root"
    version = build_wheel(checkout_copy(), tmp_path / "new", env)
    # An earlier build as pip sees it: a wheel of that version whose firmware says which it is
    old_src = tmp_path / "old-src"
    (old_src / "firmware").mkdir(parents=True)
    (old_src / "firmware/__init__.py").write_text('BUILD = "old"\n')
    (old_src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "deskcue"\nversion = "{version}"\n'
        '[tool.setuptools]\npackages = ["firmware"]\n')
    assert build_wheel(old_src, tmp_path / "old", env) == version
    wheels = {name: next((tmp_path / name).glob("deskcue-*.whl")) for name in ("old", "new")}
    run_install(root, env, tmp_path, "--from", str(wheels["old"]))
    venv_python = root / "opt/deskcue/bin/python"
    probe = ["-c", "import firmware; print(getattr(firmware, 'BUILD', 'new'))"]
    assert subprocess.run([venv_python, *probe], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip() == "old"
    run_install(root, env, tmp_path, "--from", str(wheels["new"]))
    assert subprocess.run([venv_python, *probe], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=True).stdout.strip() == "new"


def build_wheel(src: Path, out: Path, env: dict[str, str]) -> str:
    """Builds deskcue's wheel from ``src`` offline as `pip wheel` would on a desk; its version
    (from the wheel's file name, which pip takes from the package metadata)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    str(src)], env=env, cwd=out.parent, check=True, capture_output=True,
                   timeout=300)
    (wheel,) = out.glob("deskcue-*.whl")
    with zipfile.ZipFile(wheel) as z:
        (metadata,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        found = re.search(r"^Version: (.*)$", z.read(metadata).decode(), re.M)
    assert found is not None
    return found.group(1).strip()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t",
                           "-c", f"safe.directory={cwd}", *args], cwd=cwd, check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


@needs_git
def test_two_builds_at_two_commits_say_which_they_are(tmp_path: Path) -> None:
    """Every build said 0.1.0 (pyproject.toml), so `info`'s `firmware` and Home Assistant's
    `sw_version` could not tell a desk upgraded to this week's build from last month's. A build
    from a git checkout carries its commit in its version, and two commits make two versions
    that sort above every earlier 0.1.0 build."""
    from packaging.version import Version

    assert any(WHEELHOUSE.glob("setuptools*scm*.whl")), "run `bash .ci/setup` (the wheelhouse)"
    env = offline_env(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], env=env,
                   check=True, capture_output=True, timeout=120)
    first = git(clone, "rev-parse", "--short=7", "HEAD")
    one = build_wheel(clone, tmp_path / "one", env)
    git(clone, "commit", "-q", "--allow-empty", "-m", "the next build")
    second = git(clone, "rev-parse", "--short=7", "HEAD")
    two = build_wheel(clone, tmp_path / "two", env)
    assert one != two
    assert f"+g{first}" in one and f"+g{second}" in two, (one, two)
    assert Version("0.1.0") < Version(one) < Version(two)


@needs_git
def test_a_wheel_built_from_an_sdist_keeps_the_commits_version(tmp_path: Path) -> None:
    """An sdist has no git history: the wheel pip builds from it (a desk installing from
    PyPI-style archives, or piwheels) must say the commit the sdist was cut at, from its
    PKG-INFO, not fall back to 0.1.0."""
    env = offline_env(tmp_path)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], env=env,
                   check=True, capture_output=True, timeout=120)
    at_commit = build_wheel(clone, tmp_path / "from-git", env)
    # the build backend as pip's isolated build gets it, from the wheelhouse
    tools = tmp_path / "tools"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, timeout=120)
    subprocess.run([tools / "bin/python", "-m", "pip", "install", "-q", *build_requires()],
                   env={k: v for k, v in env.items() if k != "PYTHONPATH"}, check=True,
                   capture_output=True, timeout=300)
    dist = tmp_path / "dist"
    subprocess.run([tools / "bin/python", "-c", "import sys, setuptools.build_meta as b; "
                    "b.build_sdist(sys.argv[1])", str(dist)], cwd=clone, check=True,
                   capture_output=True, timeout=300)
    (sdist,) = dist.glob("deskcue-*.tar.gz")
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(sdist, unpacked)
    (tree,) = unpacked.iterdir()
    assert not (tree / ".git").exists()
    assert build_wheel(tree, tmp_path / "from-sdist", env) == at_commit


def build_requires() -> list[str]:
    import tomllib

    requires: list[str] = tomllib.loads((REPO / "pyproject.toml").read_text())[
        "build-system"]["requires"]
    return requires


@needs_systemd
@needs_git
@pytest.mark.skipif(os.geteuid() != 0, reason="the install runs as root (it makes a user)")
def test_a_copy_without_git_history_installs_with_a_warning(tmp_path: Path) -> None:
    """Files copied without `.git` cannot say which build they are: the install goes on (a
    desk must not stay dark for it) but says so, since supervisors will see 0.1.0 as every
    build up to 2026-12-05 said."""
    env = offline_env(tmp_path)
    copy = tmp_path / "copy"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(copy)], env=env,
                   check=True, capture_output=True, timeout=120)
    shutil.rmtree(copy / ".git")
    proc = run_install(tmp_path / "root", env, tmp_path, "--from", str(copy))
    assert "deskcue install: deskcue 0.1.0 installed" in proc.stdout
    assert "WARNING: built from a copy without its git history" in proc.stderr
