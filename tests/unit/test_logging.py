"""Warnings and errors are logged outside except clauses: oslo.log appends
the exception being handled to such a line, so the error would show twice
(LOG.exception, which means to show it, is the exception)."""

import ast
import pathlib

import inflight

PACKAGE = pathlib.Path(inflight.__file__).parent
LEVELS = {'warning', 'error', 'critical', 'log'}


def test_no_warning_is_logged_in_an_except_clause():
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        for handler in ast.walk(ast.parse(path.read_text())):
            if not isinstance(handler, ast.ExceptHandler):
                continue
            for node in ast.walk(handler):
                if (isinstance(node, ast.Call) and
                        isinstance(node.func, ast.Attribute) and
                        node.func.attr in LEVELS and
                        ast.unparse(node.func.value) == 'LOG'):
                    found.append('%s:%d' % (path.relative_to(PACKAGE),
                                            node.lineno))
    assert found == []
