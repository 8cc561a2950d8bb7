"""kpkt's pytest plugin, installed with kpkt (the `pytest11` entry point `kpkt`): golden runs in
any project's tests.

The fixture `kpkt_golden` runs a topology and compares the run with a golden folder committed
beside the test (kpkt/golden.py): a difference fails the test naming the file and the field.
`pytest --kpkt-update-golden` rewrites the golden folders from this run instead. The fixture
returns a kpkt.run_checks.RunFolder for the assertions a test adds (`assert_saw`,
`assert_outcome`, `assert_drops`).

This module is imported by every pytest session where kpkt is installed: it imports nothing
of kpkt (nor Scapy) until a test asks for the fixture. `pytest -p no:kpkt` turns it off.
"""

from __future__ import annotations

from pathlib import Path

import pytest

UPDATE = "--kpkt-update-golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kpkt").addoption(
        UPDATE,
        action="store_true",
        dest="kpkt_update_golden",
        help="kpkt_golden: rewrite the golden folders from this run (then review `git diff`)",
    )


@pytest.fixture
def kpkt_golden(request: pytest.FixtureRequest, tmp_path: Path):
    """`kpkt_golden(topology, golden=None)`: run `topology` (a topology file's path, relative
    to the test file's folder) and compare the run with the folder `golden` (default
    `golden/<topology file's stem>` beside the test file). Returns the run's RunFolder."""
    from kpkt.errors import KpktError
    from kpkt.golden import compare, produce, report, update
    from kpkt.run_checks import RunFolder
    from kpkt.topology.load import load_topology

    here = request.path.parent
    runs = 0

    def golden(topology: str | Path, golden: str | Path | None = None) -> RunFolder:
        nonlocal runs
        source = here / topology
        expected = here / (golden if golden is not None else Path("golden") / source.stem)
        runs += 1
        actual = tmp_path / f"run{runs}" / expected.name
        try:
            produce(load_topology(source), actual)
        except KpktError as error:
            problem = str(error)
        else:
            problem = None
        if problem:  # failed outside the handler: the message alone, no exception chain
            pytest.fail(f"kpkt_golden: {problem}", pytrace=False)
        if request.config.getoption("kpkt_update_golden"):
            update(expected, actual)
        elif not expected.is_dir():
            pytest.fail(
                f"kpkt_golden: no golden folder {_shown(expected)} for {_shown(source)}: "
                f"run pytest {UPDATE} to write it, review it and commit it",
                pytrace=False,
            )
        else:
            problems = compare(expected, actual)
            if problems:
                pytest.fail(report(_shown(source), _shown(expected), problems), pytrace=False)
        return RunFolder(actual)

    return golden


def _shown(path: Path) -> str:
    """`path` relative to the working folder when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
