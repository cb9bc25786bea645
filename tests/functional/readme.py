"""The command lines README.md shows, what it shows them print, and running
them as shown."""

import os
import re
import shlex
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
README = os.path.join(ROOT, 'README.md')
PROMPT = '$ '
_COMMAND = re.compile(
    r'(inflight|nova-inflight)( |$)|bin/|(\S*/bin/)?pip install|python3 -m ')
_SHELL_BLOCKS = ('', 'console', 'sh', 'shell', 'bash')
# The commands `pip install .` installs, and the modules they run.
PROGRAMS = {'inflight': 'inflight.cmd.manage',
            'nova-inflight': 'inflight.cmd.inflight'}
# Other programs README.md shows run, taken from the PATH.
TOOLS = ('promtool',)


def _blocks_and_prose(text):
    """([lines of each shell code block], prose outside the blocks)."""
    blocks, prose, block = [], [], None
    for line in text.splitlines():
        if line.startswith('```'):
            if block is None:
                block = [] if line[3:].strip() in _SHELL_BLOCKS else False
            else:
                if block is not False:
                    blocks.append(block)
                block = None
        elif block is None:
            prose.append(line)
        elif block is not False:
            block.append(line)
    return blocks, '\n'.join(prose)


def files(language, path=README):
    """The text of each code block of `language` (```yaml, say): files
    README.md shows, not commands."""
    with open(path) as f:
        text = f.read()
    return [match.group(1) for match in re.finditer(
        r'^```%s\n(.*?)^```$' % re.escape(language), text, re.M | re.S)]


def commands(path=README):
    """[(command line, the lines README.md shows it print, or None)].

    In a code block with `$ ` prompts, each prompted line is a command and
    the lines up to the next prompt its output; a code block whose every
    line starts with inflight, nova-inflight, bin/, python3 -m or
    [.../bin/]pip install is a block of commands; in the prose, a `code span` starting so and giving
    an option (a word starting with -) is one too.
    """
    with open(path) as f:
        blocks, prose = _blocks_and_prose(f.read())
    found = []
    for block in blocks:
        lines = [line for line in block if line.strip()]
        if any(line.startswith(PROMPT) for line in lines):
            for line in lines:
                if line.startswith(PROMPT):
                    found.append((line[len(PROMPT):], []))
                elif found:
                    found[-1][1].append(line)
        elif lines and all(_COMMAND.match(line) for line in lines):
            found += [(line, None) for line in lines]
    for span in re.findall(r'`([^`]+)`', prose):
        span = ' '.join(span.split())
        if _COMMAND.match(span) and any(w.startswith('-')
                                        for w in span.split()):
            found.append((span, None))
    return found


def shown(line):
    """What README.md shows `line` print (None for no output shown);
    fails unless README.md shows that command line."""
    for command, output in commands():
        if command == line:
            return output
    raise AssertionError('README.md shows no command line %r' % line)


def argv(line, **paths):
    """The argv that runs `line` here: its paths replaced by `paths`
    ({'/etc/inflight.conf': ...}), inflight and nova-inflight run by this
    Python, bin/ scripts from this checkout."""
    words = [paths.get(word, word) for word in shlex.split(line)]
    if words[0] in PROGRAMS:
        return [sys.executable, '-m', PROGRAMS[words[0]], *words[1:]]
    if words[0].startswith('bin/'):
        return [os.path.join(ROOT, words[0]), *words[1:]]
    if words[0] == 'python3':
        return [sys.executable, *words[1:]]
    if words[0] in TOOLS and shutil.which(words[0]):
        return [shutil.which(words[0]), *words[1:]]
    if os.path.isabs(words[0]) and os.path.exists(words[0]):
        return words                # a command in a folder of the test's
    raise AssertionError('no way to run %r here' % line)


# A service's figures on inflight ping's lines (busy=2/64 waiting=0
# hub_timers=57): counts that change from run to run, as timings do.
_FIGURE = re.compile(r'\b(busy|waiting|hub_timers|hub_listeners)=\d+')


def shape(lines):
    """Lines compared for shape: each decimal number N.N, the count of each
    of a service's figures N (busy=N/64), blanks as one."""
    return [' '.join(_FIGURE.sub(r'\1=N', re.sub(r'\d+\.\d+', 'N.N',
                                                  line)).split())
            for line in lines]
