#!/usr/bin/env bash
# `make samples`: build and check every sample on every available backend.
#
#   samples/run.sh [SAMPLE...]        (default: redis voting hadoop spark)
#
# SAMPLE_BACKENDS="docker namespace" picks the backends (default: docker when an engine
# answers, namespace when running as root). Images are built once per backend and kept,
# and the base tarball is cached (see base/build-base.sh), so a second run on the same
# machine spends its time in the checks. Exits non-zero when any check fails.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PYCOMPOSE=${PYCOMPOSE:-$here/../.venv/bin/pycompose}
samples=("$@")
[ ${#samples[@]} -gt 0 ] || samples=(redis voting hadoop spark)
if [ -z "${SAMPLE_BACKENDS:-}" ]; then
  SAMPLE_BACKENDS=""
  docker info >/dev/null 2>&1 && SAMPLE_BACKENDS="docker"
  [ "$(id -u)" = 0 ] && SAMPLE_BACKENDS="$SAMPLE_BACKENDS namespace"
fi
[ -n "${SAMPLE_BACKENDS// /}" ] || { echo "samples: no backend available" >&2; exit 1; }
results=()
failed=0
for backend in $SAMPLE_BACKENDS; do
  start=$SECONDS
  if ! bash "$here/base/build-base.sh" "$backend"; then
    results+=("$backend base-image FAIL $((SECONDS - start))s")
    failed=1
    continue
  fi
  results+=("$backend base-image ok $((SECONDS - start))s")
  for sample in "${samples[@]}"; do
    start=$SECONDS
    if BACKEND=$backend bash "$here/$sample/check.sh"; then
      results+=("$backend $sample ok $((SECONDS - start))s")
    else
      results+=("$backend $sample FAIL $((SECONDS - start))s")
      failed=1
    fi
  done
done
echo
printf '%-10s %-12s %-5s %s\n' BACKEND SAMPLE RESULT TIME
for row in "${results[@]}"; do
  # shellcheck disable=SC2086
  printf '%-10s %-12s %-5s %s\n' $row
done
exit $failed
