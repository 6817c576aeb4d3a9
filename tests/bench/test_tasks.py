"""The task-start benchmark times whole jobs of one-row UDF tasks, in either mode."""

from __future__ import annotations

import pytest

from bench.tasks import main, time_jobs


@pytest.mark.parametrize("mode", ["eager", "lazy"])
def test_each_job_of_one_row_tasks_is_timed(spark, mode):
    seconds = time_jobs(spark, mode, tasks=3, jobs=2)
    assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_an_unknown_mode_is_refused_by_the_command_line(capsys):
    with pytest.raises(SystemExit):
        main(["--child", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err
