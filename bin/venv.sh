# Sourced by bin/demo and bin/run-tests: make .venv, with inflight installed
# in it (editable, extras "$1"), the first time and whenever setup.py changes.
python=${PYTHON:-python3}
stamp=".venv/.installed${1:+-$1}"
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$python" --version)..." >&2
    "$python" -m venv .venv
fi
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
    echo "Installing inflight${1:+[$1]} and its requirements in .venv..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet --editable ".${1:+[$1]}"
    touch "$stamp"
fi
