"""Fixtures of the functional tests: processes, and a services table."""

import pytest

from harness import Processes
from inflight import db


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def services_db(sqlite_url):
    engine = db.create_engine(sqlite_url, read_only=False)
    db.sync(engine)
    yield sqlite_url, engine
    engine.dispose()
