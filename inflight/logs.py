"""How inflight's log lines read: counts in words, and no library noise."""

import logging
import re

# Said by amqp whenever a delivery races a channel being closed, as on every
# stop: harmless, and nothing an operator can act on. Said by tooz's heartbeat
# thread every second while the coordination backend is away: the partition
# says so once instead.
_NOISE = {'amqp': ('during closing channel',),
          'tooz.coordination': ('seconds as it raised',)}


# SQLAlchemy's link to its error pages, on a line of its own in every error.
_BACKGROUND = re.compile(r'\s*\(Background on this error at: [^)]*\)')


def reason(error):
    """`error` as one line of a log line: SQLAlchemy's link to its error
    pages left out."""
    return ' '.join(_BACKGROUND.sub('', str(error)).split())


def plural(count, noun, nouns=None):
    """'1 probe', '2 probes' (or `nouns` where the plural is not noun+s)."""
    return '%d %s' % (count, noun if count == 1 else nouns or noun + 's')


def tally(counts):
    """A prober's counts as a sentence: '7 probes sent, 6 received, 1 lost'
    (late and rejected only when there were some)."""
    words = [plural(counts.get('sent', 0), 'probe') + ' sent',
             '%d received' % counts.get('received', 0),
             '%d lost' % counts.get('lost', 0)]
    words += ['%d %s' % (counts[k], k) for k in ('late', 'rejected')
              if counts.get(k)]
    return ', '.join(words)


class _Quiet(logging.Filter):
    """Drops one library's records that carry one of its noisy phrases."""

    def __init__(self, phrases):
        super().__init__()
        self.phrases = phrases

    def filter(self, record):
        message = record.getMessage()
        return not any(phrase in message for phrase in self.phrases)


def quiet_library_noise():
    """Filter out the library lines listed in _NOISE (once per process)."""
    for name, phrases in _NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(_Quiet(phrases))
