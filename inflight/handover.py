"""What a worker hands on to the next one the launcher forks (after SIGHUP,
or a crash): the ring's place, and the last configuration found valid."""

import json
import mmap
import struct

_LENGTH = struct.Struct('=I')


class SharedSlot:
    """One JSON value, in memory shared with every process forked after the
    slot was made: the launcher makes it, its workers save and load."""

    def __init__(self, size=4096):
        self.size = size
        self._memory = mmap.mmap(-1, size)      # anonymous and MAP_SHARED

    def save(self, value):
        """Keep `value`; False, keeping nothing, when it is too big."""
        data = json.dumps(value, default=str).encode()
        fits = _LENGTH.size + len(data) <= self.size
        # Length 0 while writing: a worker killed mid-write leaves nothing.
        _LENGTH.pack_into(self._memory, 0, 0)
        if fits:
            self._memory[_LENGTH.size:_LENGTH.size + len(data)] = data
            _LENGTH.pack_into(self._memory, 0, len(data))
        return fits

    def load(self):
        """The value last saved, or None."""
        (length,) = _LENGTH.unpack_from(self._memory, 0)
        if not 0 < length <= self.size - _LENGTH.size:
            return None
        try:
            return json.loads(
                self._memory[_LENGTH.size:_LENGTH.size + length])
        except ValueError:
            return None
