"""The slot a worker hands on to the next: shared across fork, and never
half a value."""

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from inflight import handover

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53) |
    st.floats(allow_nan=False) | st.text(max_size=200),
    lambda inner: st.lists(inner, max_size=5) |
    st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20)


def test_a_value_saved_in_a_forked_process_is_loaded_here():
    slot = handover.SharedSlot()
    assert slot.load() is None
    pid = os.fork()
    if pid == 0:                                  # the worker
        try:
            slot.save([['compute', 'cmp1.example.org'], 3])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert slot.load() == [['compute', 'cmp1.example.org'], 3]


@given(JSON)
def test_any_value_comes_back_or_nothing_when_too_big(value):
    slot = handover.SharedSlot(size=512)
    slot.save('an earlier value')
    kept = slot.save(value)
    if kept:
        assert slot.load() == value
    else:
        assert len(json.dumps(value).encode()) > 512 - 4
        assert slot.load() is None


def test_a_torn_or_foreign_value_loads_as_none():
    slot = handover.SharedSlot()
    for data in (b'[1, 2', b'\xff\xfe', b'{"a": '):
        handover._LENGTH.pack_into(slot._memory, 0, len(data))
        slot._memory[4:4 + len(data)] = data
        assert slot.load() is None
    handover._LENGTH.pack_into(slot._memory, 0, 10 ** 6)   # past the end
    assert slot.load() is None
