#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd) with
# every config, state, spool, log, socket and pid file under one directory.
#
#   sudo bash slurm/cluster_up.sh [DIR]        # DIR defaults to /tmp/ttr-slurm
#   export SLURM_CONF=DIR/slurm.conf           # printed at the end; clients need it
#   bash slurm/cluster_down.sh [DIR]           # stops everything this script started
#
# Debian 12 / Slurm 22.05, run as root, no systemd: each daemon is started directly. Ports are
# picked free at start, and munge and MariaDB get their own socket and data under DIR, so two
# clusters in two directories do not collide. Idempotent: if the cluster in DIR is already up it
# says so and exits 0. Exit status: 0 up; 2 not root / no apt-get; 3 packages; 4 a daemon failed
# (the last lines of its log are printed).
set -euo pipefail

DIR="${1:-/tmp/ttr-slurm}"
DIR="$(realpath -m "$DIR")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
CLUSTER_NAME="${TTR_SLURM_CLUSTER_NAME:-ttr}"

say() { printf 'cluster_up: %s\n' "$*"; }
die() {
    local code="$1"
    shift
    printf 'cluster_up: ERROR: %s\n' "$*" >&2
    exit "$code"
}
now() { date +%s.%N; }
T_START=$(now)
T_PHASE=$T_START
phase() { # phase NAME: prints the time since the previous phase
    local t
    t=$(now)
    awk -v n="$1" -v a="$T_PHASE" -v b="$t" 'BEGIN { printf "cluster_up: phase %-12s %6.2f s\n", n, b - a }'
    T_PHASE=$t
}
# tail_log NAME FILE: the last lines of a daemon log, for error messages
tail_log() { [ -f "$2" ] && { printf -- '--- last lines of %s (%s) ---\n' "$1" "$2"; tail -n 25 "$2"; } >&2 || true; }
# alive PIDFILE: the process named in PIDFILE runs (a zombie does not count)
alive() {
    local pid
    [ -f "$1" ] && pid="$(tr -dc '0-9' <"$1")" && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
# wait_for SECONDS CMD...: retries CMD every 0.1 s until it succeeds
wait_for() {
    local deadline
    deadline=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
port_free() { ! ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
# pick_port VAR BASE: sets VAR to the first port >= BASE nobody listens on and not picked yet
PICKED=" "
pick_port() {
    local p=$2
    while ! port_free "$p" || [[ "$PICKED" == *" $p "* ]]; do p=$((p + 1)); done
    PICKED+="$p "
    printf -v "$1" '%s' "$p"
}

[ "$(id -u)" -eq 0 ] || die 2 "must run as root (it installs Debian packages and starts daemons);" \
    "try: sudo bash $0 $DIR"
[ ${#DIR} -le 60 ] || die 2 "DIR '$DIR' is too long (socket paths are limited to 108 bytes); use a short path"

export SLURM_CONF="$DIR/slurm.conf"
PIDS="$DIR/run"
LOGS="$DIR/log"
# pid files (cluster_down.sh reads the same paths); munged and mariadbd write their own as
# unprivileged users, so theirs live in the directories those users own
PID_munged="$DIR/munge/munged.pid"
PID_mariadbd="$DIR/mysql/mariadbd.pid"
PID_slurmdbd="$PIDS/slurmdbd.pid"
PID_slurmctld="$PIDS/slurmctld.pid"
PID_slurmd="$PIDS/slurmd.pid"
pidfile() { local v="PID_$1"; echo "${!v}"; }

# --- already up? ------------------------------------------------------------------------------
node_state() { sinfo -h -N -o %T 2>/dev/null | head -n1; }
all_alive() {
    for d in munged mariadbd slurmdbd slurmctld slurmd; do alive "$(pidfile $d)" || return 1; done
}
if [ -f "$SLURM_CONF" ] && all_alive && [[ "$(timeout 10 sinfo -h -N -o %T 2>/dev/null)" =~ ^(idle|mixed|allocated|completing) ]]; then
    say "cluster in $DIR is already up ($(node_state))"
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
fi
# anything half up from an earlier run in DIR goes down first
for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if alive "$(pidfile $d)"; then
        say "found part of a cluster running in $DIR; stopping it first"
        bash "$HERE/cluster_down.sh" "$DIR"
        phase stop-old
        break
    fi
done

# --- packages -----------------------------------------------------------------------------------
have_all() {
    command -v slurmctld && command -v slurmd && command -v slurmdbd && command -v sinfo &&
        command -v munged && command -v mariadbd && command -v mariadb-install-db &&
        [ -f /usr/lib/x86_64-linux-gnu/slurm-wlm/accounting_storage_mysql.so ] ||
        dpkg -s "${PACKAGES[@]}"
} >/dev/null 2>&1
if ! have_all; then
    command -v apt-get >/dev/null || die 2 "apt-get not found: install ${PACKAGES[*]} by hand"
    say "installing ${PACKAGES[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"/tmp/ttr-slurm-apt.log" 2>&1 ||
        { tail -n 20 /tmp/ttr-slurm-apt.log >&2; die 3 "apt-get update failed (log: /tmp/ttr-slurm-apt.log)"; }
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"/tmp/ttr-slurm-apt.log" 2>&1 ||
        { tail -n 20 /tmp/ttr-slurm-apt.log >&2; die 3 "apt-get install failed (log: /tmp/ttr-slurm-apt.log)"; }
    have_all || die 3 "packages installed but the daemons are still missing"
fi
phase packages

# --- directories and configuration ---------------------------------------------------------
HOST="$(hostname -s)"
NCPU="$(nproc)"
MEM_MB="$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')"
pick_port CTLD_PORT 6817
pick_port SLURMD_PORT 6818
pick_port DBD_PORT 6819
pick_port DB_PORT 3306

mkdir -p "$DIR" "$PIDS" "$LOGS" "$DIR/state" "$DIR/spool" "$DIR/munge" "$DIR/mysql"
chmod 755 "$DIR" "$PIDS" "$LOGS"
chmod 700 "$DIR/state" "$DIR/spool"
# munged insists on its own directories: owned by munge, not writable by others
chown munge:munge "$DIR/munge"
chmod 755 "$DIR/munge"
chown mysql:mysql "$DIR/mysql"
chmod 750 "$DIR/mysql"

MUNGE_SOCK="$DIR/munge/munge.socket.2"
DB_SOCK="$DIR/mysql/mysqld.sock"
DB_PASS_FILE="$DIR/.dbpass"
if [ ! -s "$DB_PASS_FILE" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DB_PASS_FILE")
fi
DB_PASS="$(cat "$DB_PASS_FILE")"

cat >"$DIR/slurm.conf" <<EOF
# Single-node test cluster written by slurm/cluster_up.sh; every path is under $DIR.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire=10: a requeued job restarts after ~20 s instead of ~120 s (the default)
AuthInfo=cred_expire=10,socket=$MUNGE_SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$PID_slurmctld
SlurmdPidFile=$PID_slurmd
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups without systemd: track processes by parent id, bind nothing
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
LaunchType=launch/slurm
SwitchType=switch/none
MailProg=/bin/true
# accounting is what lets submitit see a job that died without writing its result
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# for slurmdbd connections the munge socket is given here (AuthInfo's socket= is not used)
AccountingStoragePass=$MUNGE_SOCK
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# batch jobs are requeueable by default (submitit requeues with 'scontrol requeue')
JobRequeue=1
MinJobAge=30
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
MessageTimeout=10
NodeName=$HOST NodeAddr=127.0.0.1 Port=$SLURMD_PORT CPUs=$NCPU RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

(umask 077 && cat >"$DIR/slurmdbd.conf" <<EOF
# slurmdbd for the single-node test cluster written by slurm/cluster_up.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOGS/slurmdbd.log
PidFile=$PID_slurmdbd
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
)
chmod 600 "$DIR/slurmdbd.conf"
chmod 644 "$DIR/slurm.conf"
phase config

# --- munged -------------------------------------------------------------------------------------
rm -f "$PID_munged" "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
[ -s /etc/munge/munge.key ] || mungekey --create >/dev/null 2>&1 || true
mkdir -p /run/munge && chown munge:munge /run/munge
runuser -u munge -- munged --socket="$MUNGE_SOCK" --pid-file="$PID_munged" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" ||
    { tail_log munged "$DIR/munge/munged.log"; die 4 "munged did not start"; }
wait_for 10 test -S "$MUNGE_SOCK" || { tail_log munged "$DIR/munge/munged.log"; die 4 "munged socket missing"; }
phase munged

# --- mariadbd -----------------------------------------------------------------------------------
DB_ARGS=(--no-defaults --user=mysql --datadir="$DIR/mysql/data" --skip-name-resolve
    --innodb-log-file-size=64M --innodb-buffer-pool-size=256M --innodb-lock-wait-timeout=900
    --innodb-flush-log-at-trx-commit=2)
if [ ! -d "$DIR/mysql/data/mysql" ]; then
    mariadb-install-db "${DB_ARGS[@]}" --skip-test-db --auth-root-authentication-method=socket \
        >"$LOGS/mariadb-install.log" 2>&1 ||
        { tail_log mariadb-install-db "$LOGS/mariadb-install.log"; die 4 "mariadb-install-db failed"; }
    phase mariadb-init
fi
rm -f "$PID_mariadbd"
touch "$LOGS/mariadb.log" && chown mysql:mysql "$LOGS/mariadb.log"
setsid mariadbd "${DB_ARGS[@]}" --bind-address=127.0.0.1 --port="$DB_PORT" --socket="$DB_SOCK" \
    --pid-file="$PID_mariadbd" --log-error="$LOGS/mariadb.log" </dev/null >/dev/null 2>&1 &
sql() { mariadb --no-defaults --protocol=socket -S "$DB_SOCK" -u root -e "$1"; }
wait_for 30 sql "SELECT 1" || { tail_log mariadbd "$LOGS/mariadb.log"; die 4 "mariadbd did not answer"; }
wait_for 5 test -s "$PID_mariadbd" || true
sql "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
     CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
     CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
     ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
     ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';" ||
    die 4 "could not create the accounting database"
phase mariadbd

# --- slurmdbd -----------------------------------------------------------------------------------
rm -f "$PID_slurmdbd"
slurmdbd </dev/null || { tail_log slurmdbd "$LOGS/slurmdbd.log"; die 4 "slurmdbd did not start"; }
wait_for 30 sacctmgr -n list cluster ||
    { tail_log slurmdbd "$LOGS/slurmdbd.log"; die 4 "slurmdbd did not answer 'sacctmgr list cluster'"; }
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER_NAME"; then
    sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null ||
        { tail_log slurmdbd "$LOGS/slurmdbd.log"; die 4 "could not add cluster $CLUSTER_NAME"; }
fi
phase slurmdbd

# --- slurmctld ----------------------------------------------------------------------------------
rm -f "$PID_slurmctld"
slurmctld </dev/null || { tail_log slurmctld "$LOGS/slurmctld.log"; die 4 "slurmctld did not start"; }
wait_for 30 scontrol ping || { tail_log slurmctld "$LOGS/slurmctld.log"; die 4 "slurmctld did not answer"; }
phase slurmctld

# --- slurmd ---------------------------------------------------------------------------------------
rm -f "$PID_slurmd"
SLURMD_T0=$(date +%s)
slurmd </dev/null || { tail_log slurmd "$LOGS/slurmd.log"; die 4 "slurmd did not start"; }
# idle (no '*': responding), and registered by this slurmd: after a restart slurmctld shows the
# saved state of the node before the new slurmd has registered
node_idle() {
    local t
    [[ "$(sinfo -h -N -o %T 2>/dev/null)" =~ ^(idle|mixed|allocated)$ ]] || return 1
    t="$(scontrol show node "$HOST" -o 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)"
    [ -n "$t" ] && [ "$(date -d "$t" +%s 2>/dev/null || echo 0)" -ge "$SLURMD_T0" ]
}
if ! wait_for 30 node_idle; then
    tail_log slurmd "$LOGS/slurmd.log"
    tail_log slurmctld "$LOGS/slurmctld.log"
    die 4 "node $HOST not idle after 30 s (state: $(node_state); reason: $(sinfo -h -N -o %E 2>/dev/null))"
fi
phase slurmd

say "cluster '$CLUSTER_NAME' up in $DIR: node $HOST ($NCPU CPUs, ${MEM_MB} MB), partition debug;" \
    "total $(awk "BEGIN{printf \"%.2f\", $(now) - $T_START}") s"
echo "export SLURM_CONF=$SLURM_CONF"
