#!/usr/bin/env bash
# Stop the single-node SLURM cluster that slurm/cluster_up.sh started in DIR (default
# /tmp/ttr-slurm): cancel its jobs, then stop slurmd, slurmctld, slurmdbd, mariadbd and munged in
# that order, each by its pid file under DIR (SIGTERM, then SIGKILL after a timeout). Only
# processes named in DIR's pid files are signalled, and only if their name matches the daemon.
# Files under DIR are kept (state, logs, database); remove DIR to start from scratch.
set -uo pipefail

DIR="${1:-/tmp/ttr-slurm}"
DIR="$(realpath -m "$DIR")"
TERM_TIMEOUT_S="${TTR_SLURM_STOP_TIMEOUT_S:-20}"

say() { printf 'cluster_down: %s\n' "$*"; }
[ -d "$DIR" ] || {
    say "no cluster directory $DIR; nothing to stop"
    exit 0
}
[ "$(id -u)" -eq 0 ] || say "warning: not root; stopping daemons started by root will fail"

# same paths as cluster_up.sh
declare -A PIDFILE=(
    [slurmd]="$DIR/run/slurmd.pid"
    [slurmctld]="$DIR/run/slurmctld.pid"
    [slurmdbd]="$DIR/run/slurmdbd.pid"
    [mariadbd]="$DIR/mysql/mariadbd.pid"
    [munged]="$DIR/munge/munged.pid"
)

# running PID: the process exists and is not a zombie (pid 1 may not reap orphans here)
running() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# pid_of NAME: the live pid from NAME's pid file whose process is really NAME, else nothing
pid_of() {
    local f="${PIDFILE[$1]}" pid comm
    [ -f "$f" ] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [ -n "$pid" ] && running "$pid" || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)"
    # /proc/PID/comm is cut at 15 characters; mariadbd may also show as mysqld
    case "$1:$comm" in
    slurmd:slurmd | slurmctld:slurmctld | slurmdbd:slurmdbd | munged:munged) ;;
    mariadbd:mariadbd | mariadbd:mysqld) ;;
    *) return 1 ;;
    esac
    echo "$pid"
}

stopped_any=0
# cancel what is still queued or running so that no job step outlives slurmd
if [ -f "$DIR/slurm.conf" ] && pid_of slurmctld >/dev/null; then
    export SLURM_CONF="$DIR/slurm.conf"
    jobs="$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')"
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 1 100); do
            [ -z "$(timeout 5 squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

for name in slurmd slurmctld slurmdbd mariadbd munged; do
    pid="$(pid_of "$name")" || continue
    start=$(date +%s.%N)
    kill -TERM "$pid" 2>/dev/null
    deadline=$(($(date +%s) + TERM_TIMEOUT_S))
    while running "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    if running "$pid"; then
        say "$name ($pid) still running after ${TERM_TIMEOUT_S}s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        while running "$pid"; do sleep 0.1; done
    fi
    say "stopped $name ($pid) in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}') s"
    rm -f "${PIDFILE[$name]}"
    stopped_any=1
done
[ "$stopped_any" = 1 ] || say "nothing was running in $DIR"
exit 0
