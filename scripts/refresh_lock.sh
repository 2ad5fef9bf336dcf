#!/usr/bin/env bash
# Re-resolve requirements.lock: a fresh venv installs torch==2.13.0 and .[test] with no lock, and its
# freeze becomes the lock. Run it after changing pyproject's dependencies, then run the tests and commit.
# The torch line drops the wheel's local label (+cpu) so a CUDA build of the same release satisfies it.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${PYTHON:-python3}" -m venv "$tmp/venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$tmp/venv/bin/pip" install -q torch==2.13.0 -e '.[test]'
{
  echo "# Every distribution the tested install of bdc[test] holds, exactly (pip constraints: pip install -c requirements.lock ...)."
  echo "# Made by scripts/refresh_lock.sh from a fresh resolve on $("$tmp/venv/bin/python" -c 'import platform; print(platform.python_version(), platform.system(), platform.machine())'); tests/test_lock.py checks an install against it."
  "$tmp/venv/bin/pip" freeze --all --exclude-editable | grep -v '^pip==' | sed -E 's/^(torch==[^+]*)\+.*/\1/' | LC_ALL=C sort -f
} > requirements.lock.new
mv requirements.lock.new requirements.lock
echo "requirements.lock: $(grep -vc '^#' requirements.lock) pins"
