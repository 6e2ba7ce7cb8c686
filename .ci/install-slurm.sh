#!/usr/bin/env bash
# Install what tests/test_slurm.py needs for its throw-away one-node Slurm cluster:
# the Debian packages slurmctld, slurmd, munge and slurm-client.
#
# Idempotent (does nothing when the commands are already there) and never fails the CI run:
# when Slurm cannot be installed it says so loudly and exits 0; tests/test_slurm.py then skips
# loudly too (or fails, with LSFT_REQUIRE_SLURM=1).
set -u

PACKAGES=(slurmctld slurmd munge slurm-client)
COMMANDS=(slurmctld slurmd munged munge unmunge sbatch squeue sinfo srun scancel scontrol)

loud() {
    {
        printf '%.0s!' {1..100}; printf '\n'
        printf 'install-slurm: %s\n' "$*"
        printf 'install-slurm: tests/test_slurm.py will be SKIPPED (or fail with LSFT_REQUIRE_SLURM=1).\n'
        printf '%.0s!' {1..100}; printf '\n'
    } >&2
}

missing_commands() {
    local c missing=()
    for c in "${COMMANDS[@]}"; do
        command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || missing+=("$c")
    done
    echo "${missing[*]:-}"
}

missing=$(missing_commands)
if [ -z "$missing" ]; then
    echo "install-slurm: Slurm and munge are installed (slurmd $(dpkg-query -W -f='${Version}' slurmd 2>/dev/null || echo "version unknown"))."
    exit 0
fi
echo "install-slurm: missing commands: $missing; installing ${PACKAGES[*]}."

if [ "$(id -u)" -ne 0 ]; then
    loud "not root, cannot apt-get install ${PACKAGES[*]} (missing: $missing)."
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    loud "no apt-get on this machine, cannot install ${PACKAGES[*]} (missing: $missing)."
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -q; then
    loud "apt-get update failed."
    exit 0
fi
if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; then
    loud "apt-get install ${PACKAGES[*]} failed."
    exit 0
fi

missing=$(missing_commands)
if [ -n "$missing" ]; then
    loud "installed ${PACKAGES[*]}, but these commands are still missing: $missing."
    exit 0
fi
echo "install-slurm: installed slurmd $(dpkg-query -W -f='${Version}' slurmd 2>/dev/null)."
