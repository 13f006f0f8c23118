#!/usr/bin/env bash
# RadRelay next to Orthanc on the same work; see bench/README.md.
#
#   bench/compare_orthanc.sh            # the full run, about 13 minutes on 2 cores
#   bench/compare_orthanc.sh --quick    # smoke run, about 2 minutes
#   bench/compare_orthanc.sh --help     # the driver's options (bench/compare_orthanc.py)
#
# Installs Debian's orthanc and orthanc-dicomweb when missing, then runs the driver inside a
# private network namespace holding only loopback: Orthanc binds 0.0.0.0 and has no setting to
# bind loopback alone, and in there 0.0.0.0 is loopback. A private mount namespace hides the
# host's PostgreSQL and Redis unix sockets too, so RadRelay runs on its embedded default and
# cannot reach them. The run holds /tmp/radrelay-bench.lock, as the other benchmarks on this
# shared machine do. Needs root (apt-get, unshare).
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "compare_orthanc.sh needs root (apt-get, unshare --net)" >&2
  exit 2
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
if ! installed orthanc || ! installed orthanc-dicomweb || ! command -v storescu >/dev/null; then
  apt-get update -q
  # Debian's maintainer scripts start the packaged service where an init system runs; it keeps
  # its own ports (8042, 4242) and data and takes no part in the run.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    orthanc orthanc-dicomweb dcmtk
fi
plugin=$(dpkg -L orthanc-dicomweb | grep -m1 '/libOrthancDicomWeb\.so$' || true)
if [[ -z $plugin ]]; then
  echo "orthanc-dicomweb ships no libOrthancDicomWeb.so (dpkg -L orthanc-dicomweb)" >&2
  exit 2
fi
python=.venv/bin/python
[[ -x $python ]] || { echo "no $python: run make install first" >&2; exit 2; }

lock=/tmp/radrelay-bench.lock
exec 9>"$lock"
if ! flock -n 9; then
  echo "waiting for $lock (another benchmark is running) ..." >&2
  flock 9
fi

# Inside: bring lo up, cover the host's socket directories with empty tmpfs (the mount
# namespace is private, so the host keeps its own), then hand over to the driver.
exec unshare --net --mount --propagation private -- bash -c '
  set -euo pipefail
  ip link set lo up
  for dir in /run/postgresql /run/redis; do
    if [[ -d $dir ]]; then mount -t tmpfs -o size=1m tmpfs "$dir"; fi
  done
  exec "$0" bench/compare_orthanc.py --orthanc-plugin "$@"
' "$python" "$plugin" "$@"
