"""One exception tree, and the command line turning each family into one line and an exit code.

Each case is one that, without the tree, ends in "internal error" (exit 70), a raw
``[Errno N]`` text, or a silent wrong result; each is run through the real command line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from broker import dead_port
from cli_process import DESKCUE
from cli_process import deskcue as run  # in a process of its own, as a field tech types it
from wav_file import write_pcm16

from firmware import errors
from firmware.cli.main import main as deskcue
from firmware.flashing.signing import generate_keypair

DESK_TOML = '[device]\nsite = "s1"\ndesk = "d1"\n'


def one_line(stderr: str, *needles: str) -> str:
    """The single ``deskcue:`` line of ``stderr``; it holds every needle and no raw errno."""
    assert "Traceback" not in stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("deskcue:")]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert "internal error" not in line and "[Errno" not in line, line
    assert line.isascii(), line  # read on serial consoles in a C locale too
    for n in needles:
        assert n in line, line
    return line


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``deskcue ARGS`` in this process: (exit code, its one error line)."""
    code = deskcue(list(args))
    return code, one_line(capsys.readouterr().err)


@pytest.fixture
def desk_toml(tmp_path: Path) -> Path:
    p = tmp_path / "desk.toml"
    p.write_text(DESK_TOML)
    return p


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A plain file, so that ``a_file / "x"`` is a path under something not a directory (a
    path nobody can create, even root - unlike a read-only directory)."""
    p = tmp_path / "plain"
    p.write_text("x")
    return p


def small_wav(path: Path) -> Path:
    return write_pcm16(path, np.random.default_rng(0).standard_normal(16000) * 0.01 * 32767)


# -- the tree ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "family", "builtin"), [
    (errors.ConfigError, errors.DeskcueError, ValueError),
    (errors.ConfigNotFound, errors.ConfigError, FileNotFoundError),
    (errors.AudioError, errors.DeskcueError, OSError),
    (errors.AudioFileNotFound, errors.AudioError, FileNotFoundError),
    (errors.CredentialsError, errors.LinkError, ValueError),
    (errors.OutboxLocked, errors.LinkError, RuntimeError),
    (errors.NotRunning, errors.LinkError, ConnectionError),
    (errors.SigningError, errors.FlashingError, ValueError),
    (errors.KeyNotFound, errors.SigningError, FileNotFoundError),
    (errors.BootNotFound, errors.FlashingError, FileNotFoundError),
    (errors.IndicatorError, errors.DeskcueError, OSError),
    (errors.ReportError, errors.DeskcueError, RuntimeError),
    (errors.SpeechSynthError, errors.DemoError, RuntimeError),
    (errors.ToolMissing, errors.DemoError, FileNotFoundError),
])
def test_every_error_is_in_its_family_and_the_matching_builtin(cls, family, builtin):
    assert issubclass(cls, family) and issubclass(cls, builtin)
    assert issubclass(cls, errors.DeskcueError)


def test_the_modules_raise_the_tree_s_classes():
    from firmware.audio.source import AudioError, EndOfStream
    from firmware.config.load import ConfigError
    from firmware.demo.recording import SpeechSynthError
    from firmware.flashing.signing import SigningError
    from firmware.link.credentials import CredentialsError
    from firmware.link.outbox import OutboxLocked

    assert (AudioError, ConfigError, SigningError, CredentialsError, OutboxLocked,
            SpeechSynthError) == (errors.AudioError, errors.ConfigError, errors.SigningError,
                                  errors.CredentialsError, errors.OutboxLocked,
                                  errors.SpeechSynthError)
    # the end of a recording is control flow, not an error
    assert issubclass(EndOfStream, EOFError) and not issubclass(EndOfStream, errors.DeskcueError)


def test_attributes_callers_use_are_kept(tmp_path):
    from firmware.config.load import load_settings

    with pytest.raises(errors.ConfigNotFound) as err:
        load_settings(tmp_path / "nope.toml")
    assert err.value.problems[0].message == "file not found"
    assert err.value.path == str(tmp_path / "nope.toml")
    assert isinstance(err.value, FileNotFoundError)
    e = errors.SigningError("bad_key", "k: bad")
    assert e.code == "bad_key" and str(e) == "k: bad"


# -- config sign / keygen ---------------------------------------------------------------------
def test_sign_with_a_key_that_is_not_pem_names_the_file(tmp_path, desk_toml):
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    proc = run("config", "sign", str(desk_toml), "--key", str(key))
    assert proc.returncode == 1
    one_line(proc.stderr, str(key), "not a PEM private key")
    assert proc.stdout == ""


def test_sign_with_a_missing_key_names_the_file(capsys, tmp_path, desk_toml):
    code, line = cli(capsys, "config", "sign", str(desk_toml), "--key", str(tmp_path / "k.pem"))
    assert code == 1 and str(tmp_path / "k.pem") in line and "no such file" in line


def test_sign_with_a_directory_as_key(capsys, tmp_path, desk_toml):
    code, line = cli(capsys, "config", "sign", str(desk_toml), "--key", str(tmp_path))
    assert code == 1 and "is a directory" in line


@pytest.mark.parametrize("command", ["sign", "apply"])
def test_sign_or_apply_a_config_that_is_not_text(capsys, tmp_path, command):
    binary = tmp_path / "config.toml"
    binary.write_bytes(b"\x82\x00\xff binary")
    key = tmp_path / "key.pem"
    generate_keypair(key, tmp_path / "key.pub")
    extra = ["--key", str(key)] if command == "sign" else ["--etc", str(tmp_path / "etc")]
    code, line = cli(capsys, "config", command, str(binary), *extra)
    assert code == 2 and "not UTF-8 text" in line and str(binary) in line


def test_sign_a_missing_config(capsys, tmp_path):
    code, line = cli(capsys, "config", "sign", str(tmp_path / "nope.toml"), "--key", "k.pem")
    assert code == 2 and "config error" in line and "file not found" in line


def test_keygen_where_no_file_can_be_made_says_so(tmp_path, a_file):
    proc = run("config", "keygen", "--private", str(a_file / "k"), "--public",
               str(a_file / "k.pub"))
    assert proc.returncode == 1
    one_line(proc.stderr, f"{a_file / 'k'}: not a directory")


def test_keygen_that_cannot_write_the_public_key_leaves_no_half_pair(capsys, tmp_path, a_file):
    private = tmp_path / "k"
    code, line = cli(capsys, "config", "keygen", "--private", str(private),
                     "--public", str(a_file / "k.pub"))
    assert code == 1 and f"{a_file / 'k.pub'}: not a directory" in line
    # the private key is gone again, so trying once more (with a good path) works
    assert not private.exists()
    assert deskcue(["config", "keygen", "--private", str(private), "--public",
                    str(tmp_path / "k.pub")]) == 0


@pytest.mark.parametrize("public", ["the private key itself", "an existing private key"])
def test_keygen_never_writes_over_a_key(capsys, tmp_path, public):
    """`--public` naming a private key (the same path, or the site's existing key by a slip)
    replaced it with a public key line, exit 0: the site's signing key was gone."""
    private = tmp_path / "new.pem"
    if public == "the private key itself":
        target = private
    else:
        target = tmp_path / "site.pem"
        assert deskcue(["config", "keygen", "--private", str(target), "--public",
                        str(tmp_path / "site.pub")]) == 0
        capsys.readouterr()
    before = target.read_bytes() if target.exists() else None
    code, line = cli(capsys, "config", "keygen", "--private", str(private), "--public",
                     str(target))
    assert code == 1 and f"{target} exists" in line and "never overwrites" in line
    assert (target.read_bytes() if target.exists() else None) == before
    assert not private.exists() or private == target


@pytest.mark.parametrize("command", [["config", "schema"], ["config", "check", "DESK"]])
def test_a_reader_that_went_away_is_not_an_error(desk_toml, command):
    """`deskcue analyze call.wav --events | head`: the reader closes its end. That printed
    "deskcue: [Errno 32] Broken pipe", exit 1 (or Python's "Exception ignored" at exit for
    output still buffered: `config check`). Now quiet, 141 as a shell reports for cat."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # no reader at all: the first write (or the last flush) meets EPIPE
    args = [str(desk_toml) if a == "DESK" else a for a in command]
    proc = run(*args, stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""


def test_a_command_started_with_standard_output_closed_still_works(desk_toml):
    """`deskcue config check d.toml >&-`: Python gives no sys.stdout; print writes nothing,
    and the flush at the end must not turn that into an internal error."""
    proc = run("config", "check", str(desk_toml), stderr=subprocess.PIPE,
               preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _parsers(parser, path=("deskcue",)):
    """Every (command words, parser) under ``parser``, itself first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, (*path, name))


def test_every_help_says_what_the_command_does_in_a_user_s_words():
    """`deskcue --help` printed the developers' exit-code table from the module docstring,
    flowed into one paragraph of ``====`` and class names; `deskcue status --help` and most
    `deskcue config X --help` said nothing of what the command does."""
    from firmware.cli.main import build_parser

    for words, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert parser.description, f"{' '.join(words)} --help has no description"
        for dev in ("====", "Error`", "``"):
            assert dev not in text, f"{' '.join(words)} --help: {dev!r} in\n{text}"
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):  # its verbs have their help
                assert action.help, f"{' '.join(words)} --help: {action.dest} is not explained"


@pytest.mark.parametrize(("verb", "option", "value"), [
    ("selftest", "--seconds", "0"), ("selftest", "--seconds", "-1"),
    ("selftest", "--seconds", "nan"), ("monitor", "--seconds", "-1"),
    ("monitor", "--seconds", "nan"), ("monitor", "--width", "0"),
    ("monitor", "--events", "-1"), ("monitor", "--port", "99999"),
    ("monitor", "--prefix", "#"), ("monitor", "--prefix", "deskcue/+"),
    ("selftest", "--broker", "127.0.0.1:0"), ("selftest", "--broker", ":1883"),
    ("selftest", "--broker", "127.0.0.1:70000"),
])
def test_a_number_an_option_cannot_mean_is_a_usage_error(tmp_path, capsys, verb, option,
                                                          value):
    """`selftest --seconds 0` listened to nothing and FAILed "no audio at all from ...",
    sending a tech to check the cable; `monitor --seconds -1` or `nan` was an internal error
    (exit 70); `--width 0` drew a garbled view; `selftest --broker 127.0.0.1:0` (or an empty
    host) tested the config's broker instead and PASSed; `monitor --prefix '#'` failed to
    subscribe with an internal error (exit 70)."""
    wav = small_wav(tmp_path / "call.wav")
    with dead_port() as port:  # no broker is ever reached, whatever the code does
        where = {"selftest": ["--pins", "mock", "--source", str(wav), "--yes", "--skip",
                              "broker"],
                 "monitor": ["--host", "127.0.0.1", "--once", "--port", str(port)]}[verb]
        with pytest.raises(SystemExit) as exit_:
            deskcue([verb, *where, f"{option}={value}"])
    assert exit_.value.code == 2
    assert f"argument {option}: {value}" in capsys.readouterr().err


def test_flash_onto_a_card_that_fills_up_names_the_card_file_and_leaves_no_litter(tmp_path):
    """A card that fills during the write: the line named nothing ("[Errno 27] File too
    large"), and a half-written deskcue.toml.tmp stayed on the card."""
    boot = tmp_path / "boot"
    boot.mkdir()
    big = tmp_path / "d.toml"
    big.write_text(DESK_TOML + "# a long comment\n" * 400)  # over the 4 kB the child may write
    proc = run("config", "flash", str(big), "--boot", str(boot), preexec_fn=_small_files_only)
    assert proc.returncode == 1
    one_line(proc.stderr, f"{boot / 'deskcue.toml'}: file too large")
    assert list(boot.iterdir()) == []


# -- config flash -------------------------------------------------------------------------------
def test_flash_a_site_file_whose_name_is_not_utf8(capsys, tmp_path):
    """The resolved desk file names its site file in a comment; a Latin-1 name could not be
    written into it: internal error, exit 70 (also `config apply`)."""
    site = tmp_path / os.fsdecode(b"site-lyon-\xe9t\xe9.toml")
    site.write_text('[device]\nsite = "lyon"\n[desks.d01]\n')
    boot = tmp_path / "boot"
    boot.mkdir()
    assert deskcue(["config", "flash", str(site), "--desk", "d01", "--boot", str(boot)]) == 0
    assert "site-lyon-\ufffdt\ufffd.toml" in (boot / "deskcue.toml").read_text(encoding="utf-8")


def test_flash_of_a_missing_file(tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    proc = run("config", "flash", str(tmp_path / "nope.toml"), "--boot", str(boot))
    assert proc.returncode == 2
    one_line(proc.stderr, "config error", str(tmp_path / "nope.toml"), "file not found")
    assert list(boot.iterdir()) == []


def test_flash_to_a_card_that_is_not_mounted_writes_nothing(capsys, tmp_path, desk_toml):
    boot = tmp_path / "media" / "bootfs"
    code, line = cli(capsys, "config", "flash", str(desk_toml), "--boot", str(boot))
    assert code == 1 and f"flashing: {boot}: no such directory" in line
    assert not boot.exists()  # no made-up directory that looks like a flashed card


def test_flash_to_a_file_instead_of_the_boot_partition(capsys, desk_toml, a_file):
    code, line = cli(capsys, "config", "flash", str(desk_toml), "--boot", str(a_file))
    assert code == 1 and f"{a_file}: not a directory" in line
    assert a_file.read_text() == "x"


# -- analyze ----------------------------------------------------------------------------------
def test_analyze_a_missing_file(capsys, tmp_path):
    code, line = cli(capsys, "analyze", str(tmp_path / "nope.wav"), "--events")
    assert code == 1 and line == f"deskcue: audio: {tmp_path / 'nope.wav'}: no such file"


def test_analyze_a_directory(capsys, tmp_path):
    code, line = cli(capsys, "analyze", str(tmp_path), "--events")
    assert code == 1 and f"{tmp_path}: cannot read (is a directory)" in line


def test_analyze_a_wav_cut_short_inside_its_header(capsys, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(b"RIFF")
    code, line = cli(capsys, "analyze", str(cut), "--events")
    assert code == 1 and "a WAV file cut short inside its header" in line


def test_analyze_a_file_that_is_not_audio(tmp_path, desk_toml):
    proc = run("analyze", str(desk_toml), "--events")
    assert proc.returncode == 1
    one_line(proc.stderr, str(desk_toml), "not a recording deskcue can read", "it reads WAV",
             f"sox {desk_toml} -b 16")


@pytest.mark.parametrize("option", ["--features", "--plot"])
def test_analyze_output_where_no_file_can_be_made(capsys, tmp_path, a_file, option):
    wav = small_wav(tmp_path / "call.wav")
    code, line = cli(capsys, "analyze", str(wav), option, str(a_file / "out"))
    assert code == 1 and str(a_file) in line and "not a directory" in line


@pytest.mark.parametrize("option", ["--features", "--plot", "--report"])
def test_analyze_never_writes_over_the_recording_it_reads(capsys, tmp_path, option):
    """`--features call.wav` (a slip of the fingers, or a link to the recording) truncated the
    recording before reading it and then called it "cut short"."""
    wav = small_wav(tmp_path / "call.wav")
    before = wav.read_bytes()
    (tmp_path / "link.wav").symlink_to(wav)
    code, line = cli(capsys, "analyze", str(tmp_path / "link.wav"), "--events", option,
                     str(wav))
    assert code == 2 and f"{option} {wav} is the recording being analysed" in line
    assert wav.read_bytes() == before


def test_analyze_never_writes_over_the_usual_from_recording(capsys, tmp_path):
    wav, earlier = small_wav(tmp_path / "call.wav"), small_wav(tmp_path / "earlier.wav")
    before = earlier.read_bytes()
    code, line = cli(capsys, "analyze", str(wav), "--usual-from", str(earlier),
                     "--features", str(earlier))
    assert code == 2 and "is the --usual-from file" in line
    assert earlier.read_bytes() == before


def test_analyze_plot_and_report_to_one_file_is_refused(capsys, tmp_path):
    wav = small_wav(tmp_path / "call.wav")
    out = tmp_path / "out"
    code, line = cli(capsys, "analyze", str(wav), "--plot", str(out), "--report", str(out))
    assert code == 2 and "name the same file" in line and not out.exists()


def _small_files_only() -> None:
    """In the child: files may not grow past 4 kB (EFBIG: a full card as a write meets it)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize("option", ["--features", "--report"])
def test_analyze_output_that_cannot_be_written_names_the_file(tmp_path, option):
    """A full card fails a write or a flush with an OSError without a file name; the line
    must name the output ("deskcue: [Errno 27] File too large" names none)."""
    wav = small_wav(tmp_path / "call.wav")
    out = tmp_path / "out"
    proc = run("analyze", str(wav), option, str(out), preexec_fn=_small_files_only)
    assert proc.returncode == 1
    one_line(proc.stderr, f"{out}: file too large")


def test_a_recording_whose_name_is_not_utf8_gets_its_plot_and_report(tmp_path, capsys):
    """A Latin-1 file name (a Windows share, a USB stick): the plot's title could not be
    drawn, and the whole analysis ended in an internal error (exit 70) of several lines."""
    wav = small_wav(tmp_path / os.fsdecode(b"appel-r\xe9clamation.wav"))
    plot, report = tmp_path / "p.png", tmp_path / "r.html"
    code = deskcue(["analyze", str(wav), "--plot", str(plot), "--report", str(report)])
    err = capsys.readouterr().err
    assert code == 0 and "internal error" not in err, err
    assert plot.stat().st_size > 0
    assert "appel-r\ufffdclamation.wav" in report.read_text(encoding="utf-8")


def test_plot_without_matplotlib_says_what_to_install(capsys, monkeypatch, tmp_path):
    wav = small_wav(tmp_path / "call.wav")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, line = cli(capsys, "analyze", str(wav), "--plot", str(tmp_path / "p.png"))
    assert code == 1 and "--plot needs matplotlib" in line and "deskcue[plot]" in line


def test_report_without_matplotlib_is_said_before_the_analysis(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # the recording is not even read: a long call is not analysed only to fail at the end
    code, line = cli(capsys, "analyze", str(tmp_path / "not-there.wav"), "--events",
                     "--report", str(tmp_path / "r.html"))
    assert code == 1 and line.startswith("deskcue: --report needs matplotlib: pip install "
                                         "'deskcue[plot]'")


# -- --config and the control socket ------------------------------------------------------------
@pytest.mark.parametrize("command", [["run"], ["analyze", "x.wav", "--events"], ["snooze"]])
def test_config_pointing_to_a_directory(capsys, tmp_path, command):
    code, line = cli(capsys, *command, "--config", str(tmp_path))
    assert code == 2 and line == (f"deskcue: config error: {tmp_path}: (file): "
                                  "is a directory, not a file")


@pytest.mark.parametrize("option", ["--state-dir", "--runtime-dir"])
def test_run_with_a_file_for_a_directory_is_refused(capsys, tmp_path, a_file, option):
    """Not a desk running with storage faults ("File exists") for its whole life."""
    code, line = cli(capsys, "run", "--source", str(a_file), "--pins", "mock", option,
                     str(a_file))
    assert code == 2 and line == f"deskcue: run: {option} {a_file} is not a directory"


def test_snooze_with_no_appliance_running(capsys, tmp_path):
    code, line = cli(capsys, "snooze", "--runtime-dir", str(tmp_path))
    assert code == 1 and line.startswith("deskcue: link: no running deskcue listens on")


def test_a_bug_is_still_one_line_with_exit_70(capsys, monkeypatch):
    import firmware.cli.config as config_cmd

    def broken(*_a: object, **_k: object) -> int:
        raise KeyError("oops")

    monkeypatch.setattr(config_cmd, "check", broken)
    assert deskcue(["config", "check", "x.toml"]) == 70
    err = capsys.readouterr().err
    assert err.strip() == ("deskcue: internal error: KeyError: 'oops' (run with -v for "
                           "details)")


def test_demo_without_espeak_says_what_to_install(capsys, monkeypatch, tmp_path):
    import firmware.demo.recording as recording

    monkeypatch.setattr(recording.shutil, "which", lambda _name: None)
    code, line = cli(capsys, "demo", "--fast", "--cache-dir", str(tmp_path))
    assert code == 1 and line == ("deskcue: espeak-ng is not installed "
                                  "(apt-get install espeak-ng)")


@pytest.mark.parametrize("argv, usage", [([], "deskcue [-h] [--version] [-v] COMMAND ..."),
                                         (["config"], "deskcue config [-h] SUBCOMMAND ...")])
def test_a_missing_command_is_named_as_the_usage_line_names_it(capsys, argv, usage):
    """Not the parser's internal names ("required: config_command")."""
    with pytest.raises(SystemExit) as exc:
        deskcue(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"usage: {usage}" in err
    what = usage.split()[-2]
    assert err.splitlines()[-1].endswith(f"error: the following arguments are required: {what}")


@pytest.mark.parametrize("verb", ["sign", "apply", "flash"])
def test_a_site_file_without_desk_is_told_the_option_this_command_takes(capsys, tmp_path, verb):
    site = tmp_path / "site.toml"
    site.write_text('[device]\nsite = "lyon"\n[mqtt]\nenabled = false\n[desks.d01]\n')
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    (tmp_path / "etc").mkdir()
    (tmp_path / "boot").mkdir()
    extra = {"sign": ["--key", str(tmp_path / "k.pem")],
             "apply": ["--etc", str(tmp_path / "etc"), "--state", str(tmp_path / "state")],
             "flash": ["--boot", str(tmp_path / "boot")]}[verb]
    assert deskcue(["config", verb, str(site), *extra]) != 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert "this is a site file: name the desk with --desk NAME" in text
    assert "--boot" not in text


@pytest.mark.parametrize(("option", "name", "needle"), [
    ("--plot", "out.svg", "ends in .svg, but it is written as a PNG image"),
    ("--plot", "out.PDF", "ends in .PDF, but it is written as a PNG image"),
    ("--report", "out.png", "ends in .png, but it is written as an HTML page"),
    ("--features", "other-call.wav", "names a recording, but it is written as a CSV table"),
    ("--features", "other-call.flac", "names a recording"),
])
def test_analyze_output_named_as_another_kind_of_file_is_refused(capsys, tmp_path, option,
                                                                 name, needle):
    """`--plot out.svg` wrote PNG bytes a browser will not open as an SVG, and
    `--features other-call.wav` wrote a table over another recording."""
    wav = small_wav(tmp_path / "call.wav")
    out = small_wav(tmp_path / name)
    before = out.read_bytes()
    code, line = cli(capsys, "analyze", str(wav), option, str(out))
    assert code == 2 and needle in line, line
    assert out.read_bytes() == before


@pytest.mark.parametrize(("option", "name"), [("--plot", "out.PNG"), ("--report", "r.htm"),
                                              ("--features", "f.txt"),
                                              ("--features", "call.2024-06-01")])
def test_analyze_output_named_as_its_kind_or_unknown_is_written(capsys, tmp_path, option, name):
    wav = small_wav(tmp_path / "call.wav")
    code, _ = cli(capsys, "analyze", str(wav), option, str(tmp_path / name))
    assert code == 0 and (tmp_path / name).stat().st_size > 0


def test_analyze_features_to_standard_output_with_a_dash(tmp_path):
    """`--features - | grep caller`: the CSV comes down the pipe, not into a file called "-"
    in the working directory (which would leave the pipe empty)."""
    wav = small_wav(tmp_path / "call.wav")
    work = tmp_path / "work"
    work.mkdir()
    proc = run("analyze", str(wav), "--features", "-", cwd=work,
               env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0].startswith("t,channel,level_dbfs,") and len(rows) > 90
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["--features", "-", "--events"], "would both write to standard output"),
    (["--plot", "-"], "--plot -: a PNG image goes to a file"),
    (["--report", "-"], "--report -: an HTML page goes to a file"),
])
def test_analyze_dash_where_standard_output_cannot_take_it(capsys, tmp_path, monkeypatch, args,
                                                          needle):
    wav = small_wav(tmp_path / "call.wav")
    monkeypatch.chdir(tmp_path)  # were "-" taken as a file name, it lands here
    code, line = cli(capsys, "analyze", str(wav), *args)
    assert code == 2 and needle in line


@pytest.mark.parametrize("option", ["--plot", "--report"])
def test_analyze_output_that_is_a_directory_is_refused_before_the_analysis(tmp_path, option,
                                                                           demo_wav):
    """`--report reports/` (a directory) is refused before the analysis, naming the option,
    not after the whole call is analysed and its events printed."""
    out = tmp_path / "reports"
    out.mkdir()
    proc = run("analyze", str(demo_wav), "--events", option, str(out))
    assert proc.returncode == 1
    assert proc.stdout == ""  # refused before a single event
    one_line(proc.stderr, f"{option} {out} is a directory")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("args", "needle"), [
    (["--events", "--features", "/dev/stdout"],
     "--events and --features /dev/stdout would both write to standard output"),
    (["--features", "-", "--plot", "/dev/stdout"],
     "--features - and --plot /dev/stdout would both write to standard output"),
    (["--events", "--features", "{same}"],
     "--events and --features {same} would both write to standard output"),
])
def test_analyze_two_outputs_to_the_same_stream_are_refused_before_the_analysis(tmp_path, args,
                                                                                needle):
    """`--events --features /dev/stdout` (or a file standard output is redirected to)
    interleaved JSON lines and CSV rows on one stream; refused like `--features -`."""
    wav = small_wav(tmp_path / "call.wav")
    same = tmp_path / "out.txt"
    with open(same, "wb") as out:  # the shell's `> out.txt`
        proc = run("analyze", str(wav), *(a.format(same=same) for a in args), stdout=out,
                   stderr=subprocess.PIPE)
    assert proc.returncode == 2
    one_line(proc.stderr, needle.format(same=same))
    assert same.read_bytes() == b""  # nothing analysed, nothing written


def test_analyze_features_to_dev_null_beside_events_is_not_a_clash(tmp_path):
    """Standard output sent to /dev/null and --features /dev/null: nothing is mixed."""
    wav = small_wav(tmp_path / "call.wav")
    proc = run("analyze", str(wav), "--events", "--features", os.devnull,
               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("command", "shown"), [
    (["analyze", "{recording}", "--events"], b"q\xff.wav"),
    (["analyze", "{tmp}/m\udcff.wav", "--events"], b"m\xff.wav"),
    (["config", "check", "{tmp}/d\udcff.toml"], b"d\xff.toml"),
    (["snooze", "--config", "{tmp}/d\udcff.toml"], b"d\xff.toml"),
    (["analyze", "{wav}", "--features", "{tmp}/a\udcff"], b"a\xff is a directory"),
])
def test_a_name_that_is_not_utf8_is_printed_as_its_bytes(tmp_path, command, shown):
    """`deskcue analyze $'q\\xff.wav'`: the error line said q\\udcff.wav, a name no shell
    gives back (nor can paste into the sox line). The name's own bytes go out, as ls prints
    them, whatever the command."""
    recording = tmp_path / os.fsdecode(b"q\xff.wav")  # a Latin-1 name, as a Windows share gives
    recording.write_bytes(b"not a recording\n")
    (tmp_path / os.fsdecode(b"a\xff")).mkdir()
    names = {"recording": str(recording), "tmp": str(tmp_path),
             "wav": str(small_wav(tmp_path / "call.wav"))}
    argv = [os.fsencode(a.format(**names)) for a in command]
    proc = subprocess.run([*DESKCUE, *argv], capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    err = proc.stderr.splitlines()
    assert err and all(b"\\udc" not in ln for ln in err), proc.stderr
    assert any(shown in ln for ln in err), proc.stderr


def test_analyze_features_into_a_directory_not_made_yet(tmp_path):
    """`--features out/day1/f.csv` passed the check ("missing directories are made when
    writing", as for --plot and --report), then failed: no such file or directory."""
    wav = small_wav(tmp_path / "call.wav")
    out = tmp_path / "out" / "day1" / "f.csv"
    proc = run("analyze", str(wav), "--features", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("t,channel,")
