"""`interp.report.write_result` writes an analyzer's folder atomically: an interrupt leaves the
earlier result whole, a rerun drops the earlier result's stale files, and what interp did not
write (a user's notes, a nested result) is kept."""

import json

import plotly.graph_objects as go
import pytest

from interp.errors import InvalidArgumentError
from interp.report import OutputPathError, check_out, write_result


class Toy:
    """An AnalysisResult with the figures and data files it is given."""

    analyzer = "toy"

    def __init__(self, value, figures=("a",), data=None):
        self.value, self._figures, self._data = value, figures, data

    def numbers(self):
        return {"value": self.value}

    def figures(self):
        return {name: go.Figure() for name in self._figures}

    def provenance(self):
        return {"model": "tiny", "data": {}, "seeds": {}}

    def write_files(self, out):
        if self._data is not None:
            self._data(out)


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_summary_lists_every_file_written(tmp_path):
    def data(out):
        (out / "sub").mkdir()
        (out / "sub" / "x.json").write_text("{}")

    path = write_result(Toy(1, data=data), tmp_path / "out")
    files = json.loads(path.read_text())["files"]
    assert files == ["a.html", "plotly.min.js", "sub/x.json", "summary.json"]
    assert sorted(_tree(tmp_path / "out")) == files


@pytest.mark.parametrize("stage", ["figure", "data file", "keyboard interrupt"])
def test_an_interrupted_rerun_leaves_the_earlier_result_whole(tmp_path, stage):
    out = tmp_path / "out"
    write_result(Toy(1, figures=("a", "b")), out)
    before = _tree(out)

    class Broken(Toy):
        def figures(self):
            if stage == "figure":
                raise RuntimeError("crash while drawing")
            return super().figures()

    def data(folder):
        (folder / "partial.json").write_text("{")
        raise (KeyboardInterrupt if stage == "keyboard interrupt" else RuntimeError)("stop")

    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        write_result(Broken(2, data=None if stage == "figure" else data), out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left behind


def test_a_rerun_drops_stale_files_and_keeps_what_interp_did_not_write(tmp_path):
    out = tmp_path / "out"
    write_result(Toy(1, figures=("a", "b")), out)
    (out / "notes.txt").write_text("the user's notes")
    (out / "probe").mkdir()
    (out / "probe" / "summary.json").write_text("{}")  # a nested result of its own
    path = write_result(Toy(2, figures=("a",)), out)
    assert json.loads(path.read_text())["numbers"]["value"] == 2
    assert sorted(_tree(out)) == [
        "a.html",
        "notes.txt",
        "plotly.min.js",
        "probe/summary.json",
        "summary.json",
    ]  # b.html, the earlier result's figure, is gone
    assert (out / "notes.txt").read_text() == "the user's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_older_summary_without_a_file_list_drops_its_figures(tmp_path):
    out = tmp_path / "out"
    write_result(Toy(1, figures=("a", "b")), out)
    summary = json.loads((out / "summary.json").read_text())
    del summary["files"]  # as summaries written before the list existed
    (out / "summary.json").write_text(json.dumps(summary))
    write_result(Toy(2, figures=("a",)), out)
    assert not (out / "b.html").exists() and (out / "a.html").exists()


def test_check_out_is_a_typed_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="is a file") as err:
        check_out(tmp_path / "f")
    assert isinstance(err.value, InvalidArgumentError)
    assert check_out(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
    with pytest.raises(OutputPathError, match="is a file"):
        write_result(Toy(1), tmp_path / "f")
