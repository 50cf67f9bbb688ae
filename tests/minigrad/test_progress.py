"""The one progress bar (minigrad.instruments.progress), as a terminal, a log file and the
tokenizer trainer see it."""

import io

from bpe.progress import StderrProgress
from minigrad.instruments.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_file_output_is_throttled_lines_without_carriage_returns():
    stream = io.StringIO()
    bar = ProgressBar(1000, stream=stream, file_interval=3600)
    for step in range(1, 1001):
        bar.update(step, loss=1.0 / step)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split(" [")[0] for line in lines] == ["step 1/1000", "step 1000/1000"]


def test_file_output_close_draws_a_state_that_throttling_held_back():
    stream = io.StringIO()
    bar = ProgressBar(10, stream=stream, file_interval=3600)
    bar.update(1)
    bar.update(7, loss=0.5)
    bar.close()
    assert stream.getvalue().splitlines()[-1].startswith("step 7/10")


def test_terminal_redraws_in_place_and_messages_do_not_tear_it():
    stream = Terminal()
    bar = ProgressBar(4, stream=stream, interval=0.0)
    bar.update(1)
    bar.write("checkpoint saved")
    bar.update(4)
    bar.close()
    text = stream.getvalue()
    assert text.count("\n") == 2  # the message's line and the closing one
    assert "checkpoint saved\n\rstep 1/4" in text
    assert text.rstrip("\n").rsplit("\r", 1)[-1].startswith("step 4/4 [####################] 100%")


def test_unknown_total_is_a_counter():
    stream = io.StringIO()
    ProgressBar(0, label="count", unit="characters", stream=stream).update(1234567)
    assert stream.getvalue().startswith("count 1,234,567 characters | 0:00")


def test_tokenizer_training_reports_through_the_same_bar():
    stream = io.StringIO()
    report = StderrProgress(stream)
    report("count", 500, 0)
    report("merge", 0, 3)
    report("merge", 3, 3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[bpe] count: 500 characters")
    assert lines[-1].startswith("[bpe] merge: 3/3 merges [####################] 100%")
