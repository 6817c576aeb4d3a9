from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from scoring.cli.jobs import JOB_COMMANDS
from tests.deploy.checks import parse_cli

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def test_every_job_file_is_a_listed_command_and_every_listed_command_has_one():
    assert sorted(p.stem for p in JOBS.glob("*.py")) == sorted(JOB_COMMANDS)


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_job_file_only_hands_its_arguments_to_the_cli_command_of_its_name(command):
    text = (JOBS / f"{command}.py").read_text()
    assert 'if __name__ == "__main__":\n' in text
    assert f'    sys.exit(main(["{command}", *sys.argv[1:]]))\n' in text
    assert "from scoring.cli import main\n" in text


@pytest.mark.parametrize("command", JOB_COMMANDS)
def test_job_command_is_registered_in_the_cli_and_takes_the_use_case_folder(command):
    # A cluster job names its use case: an installed engine has no default one.
    args = parse_cli(
        [command, "--usecase", "./usecase", "--env", "local", "--run-date", "2026-03-02"]
    )
    assert (args.command, args.usecase) == (command, Path("usecase"))


def test_console_script_scoring_calls_the_cli_main():
    pyproject = tomllib.loads((JOBS.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"scoring": "scoring.cli:main"}


def test_the_wheels_entry_point_raises_the_exit_code_when_called_like_a_wheel_task(
    tmp_path, monkeypatch
):
    """Databricks' python_wheel_task loads the entry point and calls it, with the task's
    parameters in sys.argv; a returned code would be ignored, so it must raise."""
    from importlib.metadata import entry_points

    (entry,) = entry_points(group="console_scripts", name="scoring")
    function = entry.load()
    monkeypatch.setattr("sys.argv", ["scoring", "doctor", "--usecase", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        function()
    assert exit_.value.code == 2  # tmp_path holds no usecase.yaml
