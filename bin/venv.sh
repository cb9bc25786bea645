# Sourced by bin/demo and bin/run-tests: make .venv, with inflight installed
# in it (editable, extras "$1"), the first time and whenever setup.py changes.
# An install with extras (bin/run-tests') holds the plain one (bin/demo's).
python=${PYTHON:-python3}
stamp=".venv/.installed${1:+-$1}"
if [ -n "$1" ]; then
    stamps=("$stamp")
else
    stamps=(.venv/.installed .venv/.installed-*)
fi
installed=
for made in "${stamps[@]}"; do
    if [ -f "$made" ] && [ ! setup.py -nt "$made" ]; then
        installed=yes
    fi
done
if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$python" --version)..." >&2
    "$python" -m venv .venv
fi
if [ -z "$installed" ]; then
    echo "Installing inflight${1:+[$1]} and its requirements in .venv..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet --editable ".${1:+[$1]}"
    touch "$stamp"
fi
